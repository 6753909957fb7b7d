#!/bin/sh
# The gate wired to a hosting platform: the platform's API decides who a key
# is and what it may do (auth.url), deployments are POSTed to its webhook and
# the response streamed back as "remote:" lines, and the builder downloads
# the commit from a signed, short-lived archive URL on the gate's HTTP port.
# The platform is tests/tools/platform.pl, driven by files in $TRASH/platform.
. "$(dirname "$0")/test-lib.sh"

P=$TRASH/platform

fingerprint() {
	ssh-keygen -l -E sha256 -f "$TRASH/keys/$1.pub" | awk "{print \$2}"
}

# sign APP COMMIT EXPIRES: an archive URL's signature, made as the documented
# scheme says: HMAC-SHA256 under the gate's secret of "archive.v1.APP.COMMIT.EXPIRES".
sign() {
	printf "archive.v1.%s.%s.%s" "$1" "$2" "$3" |
		openssl dgst -sha256 -hmac "$(head -n 1 "$TRASH/g1/secret")" | sed "s/^.*= //"
}

# platform_up PID: the platform (PID) wrote its port; 125 once it exited.
platform_up() {
	test -s "$P/port" && return 0
	kill -0 "$1" 2>/dev/null || return 125
	return 1
}

# new_platform_user NAME ACCESS: a new key NAME that the platform knows as the
# user NAME, with ACCESS (read or write) to web. New to the gate, so nothing
# of it is in the gate's answer cache.
new_platform_user() {
	new_key $1 &&
	printf "%s %s\n" "$(fingerprint $1)" $1 >>"$P/keys" &&
	printf "%s web %s\n" $1 $2 >>"$P/access"
}

# refused_on GATE USER: USER's ls-remote of web through GATE fails (its
# stderr in err).
refused_on() {
	eval "port=\$${1}_SSH_PORT"
	! GIT_SSH_COMMAND="$(ssh_as $2 $port)" git ls-remote ssh://git@127.0.0.1:$port/web.git >/dev/null 2>err
}

push_as() {
	who=$1; shift
	(cd src && GIT_SSH_COMMAND="$(ssh_as $who $g1_SSH_PORT)" git push "$@")
}

test_setup 'a store, the platform and a gate that asks it' '
	mkdir -p "$P" &&
	{ perl "$TEST_DIR/../tools/platform.pl" "$P" >"$P/platform.log" 2>&1 & platform=$!; record_daemon $platform; } &&
	wait_for 20 "the platform to listen" platform_up $platform &&
	PORT=$(cat "$P/port") &&
	start_store s1 &&
	echo "webhook-signing-secret-0123456789" >"$TRASH/webhook-secret" &&
	start_gate g1 $s1_ADDR s1 auth.url=http://127.0.0.1:$PORT/allowed auth.cacheTtl=$((30 * TEST_SCALE)) \
		deploy.webhook=http://127.0.0.1:$PORT/deploy deploy.webhookSecretFile=$TRASH/webhook-secret \
		deploy.keepalive=1 &&
	new_key alice && new_key bob && new_key eve &&
	printf "%s alice\n%s bob\n" "$(fingerprint alice)" "$(fingerprint bob)" >"$P/keys" &&
	printf "alice web write\nbob web read\nalice old write\n" >"$P/access" &&
	api g1 POST /api/v1/apps "{\"name\":\"web\",\"route\":\"cluster\"}" | tail -n 1 | grep -q 201 &&
	api g1 POST /api/v1/apps "{\"name\":\"old\",\"route\":\"legacy\"}" | tail -n 1 | grep -q 201 &&
	make_history src
'

test_expect_success 'the platform knows alice: she is greeted by the name it gave' '
	test_expect_code 1 $(ssh_as alice $g1_SSH_PORT) git@127.0.0.1 </dev/null >out 2>&1 &&
	test_grep "Hi alice! You.ve successfully authenticated" out &&
	test_grep "POST /allowed .*\"action\":\"login\"" "$P/requests.log" &&
	test_grep "\"fingerprint\":\"$(fingerprint alice)\"" "$P/requests.log"
'

test_expect_success 'a key the platform does not know cannot log in' '
	test_expect_code 255 $(ssh_as eve $g1_SSH_PORT) git@127.0.0.1 </dev/null >out 2>&1 &&
	test_grep "Permission denied (publickey)" out &&
	wait_grep "gate.auth_refused.*$(fingerprint eve)" "$TRASH/g1/gate.log"
'

test_expect_success 'a push the platform allows deploys through the webhook, output live as remote: lines' '
	new=$(git -C src rev-parse main) &&
	push_as alice ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>push.err &&
	test_grep "^remote: -----> Deploying web ($(git -C src rev-parse --short=7 main))" push.err &&
	test_grep "^remote: -----> Building web at $new for alice" push.err &&
	test_grep "^remote: -----> fetched archive: [0-9]* bytes" push.err &&
	test_grep "^remote: -----> Released web *$" push.err &&
	test_grep "^remote: -----> Deployed web" push.err &&
	test_grep "\"action\":\"git-receive-pack\",\"app\":\"web\"" "$P/requests.log"
'

test_expect_success 'the webhook got the deployment as JSON, signed with the webhook secret' '
	new=$(git -C src rev-parse main) &&
	test_grep "\"app\":\"web\"" "$P/webhook.json" &&
	test_grep "\"ref\":\"refs/heads/main\"" "$P/webhook.json" &&
	test_grep "\"new\":\"$new\"" "$P/webhook.json" &&
	test_grep "\"pusher\":\"alice\"" "$P/webhook.json" &&
	test_grep "\"archive_url\":\"http://127.0.0.1:[0-9]*/archive/web/$new.tar.gz?expires=[0-9]*&signature=[0-9a-f]\{64\}\"" "$P/webhook.json" &&
	test_grep -i "^X-Grove-Deployment: [0-9]" "$P/webhook.headers" &&
	ts=$(sed -n "s/^X-Grove-Timestamp: \([0-9]*\).*/\1/ip" "$P/webhook.headers") &&
	test -n "$ts" && test $(( $(date +%s) - ts )) -lt 3600 && test $(( ts - $(date +%s) )) -lt 60 &&
	want=$( { printf "%s." $ts; cat "$P/webhook.json"; } | openssl dgst -sha256 -hmac "$(cat "$TRASH/webhook-secret")" | sed "s/^.*= //") &&
	test_grep -i "^X-Grove-Signature: sha256=$want" "$P/webhook.headers" &&
	body_only=$(openssl dgst -sha256 -hmac "$(cat "$TRASH/webhook-secret")" <"$P/webhook.json" | sed "s/^.*= //") &&
	! grep -i "sha256=$body_only" "$P/webhook.headers" &&
	api g1 GET /api/v1/apps/web/deployments >out && test_grep "\"status\":\"succeeded\"" out
'

test_expect_success 'the builder'"'"'s archive is the pushed commit, as git archive makes it' '
	tar tzf "$P/archive.tar.gz" | sort >actual &&
	git -C src archive --format=tar main | tar tf - | sort >expect &&
	test_cmp expect actual &&
	mkdir unpacked expected && tar xzf "$P/archive.tar.gz" -C unpacked &&
	git -C src archive --format=tar main | tar xf - -C expected &&
	diff -r expected unpacked
'

test_expect_success 'an archive URL with a wrong signature, another commit or past its expiry is refused' '
	url=$(sed -n "s/.*\"archive_url\":\"\([^\"]*\)\".*/\1/p" "$P/webhook.json") &&
	curl -s -o body -w "%{http_code}\n" "$url" >code && test_grep "^200$" code &&
	bad=$(echo "$url" | sed "s/signature=\(.\)/signature=0\1/; s/signature=\(.\{64\}\).*/signature=\1/") &&
	curl -s -w "\n%{http_code}\n" "$bad" >out && test_grep "^403$" out &&
	test_grep "signature is wrong" out &&
	other=$(echo "$url" | sed "s|/archive/web/[0-9a-f]\{40\}|/archive/web/$(git -C src rev-parse main~1)|") &&
	curl -s -w "\n%{http_code}\n" "$other" >out && test_grep "^403$" out &&
	new=$(git -C src rev-parse main) && past=$(($(date +%s) - 5)) &&
	curl -s -w "\n%{http_code}\n" "${url%%\?*}?expires=$past&signature=$(sign web $new $past)" >out &&
	test_grep "^403$" out && test_grep "expired" out &&
	curl -s -w "\n%{http_code}\n" "${url%%\?*}" >out && test_grep "^403$" out &&
	curl -s -w "\n%{http_code}\n" "${url%%/archive/*}/archive/web/../x.tar.gz" >out && test_grep "^404$" out
'

test_expect_success 'a signed URL for a commit the repository lacks is 404 and says so' '
	exp=$(($(date +%s) + 60)) && ghost=0123456789abcdef0123456789abcdef01234567 &&
	base=$(echo "$g1_ADMIN") &&
	curl -s -w "\n%{http_code}\n" "$base/archive/web/$ghost.tar.gz?expires=$exp&signature=$(sign web $ghost $exp)" >out &&
	test_grep "^404$" out && test_grep "has no commit $ghost" out
'

test_expect_success 'archives on the legacy route come from the legacy directory' '
	push_as alice ssh://git@127.0.0.1:$g1_SSH_PORT/old.git main 2>push.err &&
	test_grep "^remote: -----> fetched archive: [0-9]* bytes" push.err &&
	new=$(git -C src rev-parse main) && exp=$(($(date +%s) + 60)) &&
	curl -sf -o old.tgz "$g1_ADMIN/archive/old/$new.tar.gz?expires=$exp&signature=$(sign old $new $exp)" &&
	tar tzf old.tgz | sort >actual &&
	git -C src archive --format=tar main | tar tf - | sort >expect &&
	test_cmp expect actual
'

test_expect_success 'read access on the platform: bob clones, his push is refused with its message' '
	GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git bobs &&
	test "$(git -C bobs rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	(cd bobs && git commit -q --allow-empty -m bob &&
	 test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" git push origin HEAD:main 2>../push.err) &&
	test_grep "ERROR: You can only read web: ask its owner for write access." push.err
'

test_expect_success 'an app the platform does not list for the user: its message, nothing revealed' '
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/old.git 2>err &&
	test_grep "ERROR: You are not a collaborator of old." err &&
	printf "bob nosuchapp read\n" >>"$P/access" &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/nosuchapp.git 2>err &&
	test_grep "ERROR: Repository not found: nosuchapp" err
'

# g1 keeps answers for 30 s (scaled): two fetches one after the other come
# within it however busy the machine.
test_expect_success 'answers are cached for auth.cacheTtl: a second fetch at once does not ask again' '
	new_platform_user carol read &&
	: >"$P/requests.log" &&
	GIT_SSH_COMMAND="$(ssh_as carol $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >/dev/null &&
	GIT_SSH_COMMAND="$(ssh_as carol $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >/dev/null &&
	test "$(grep -c "git-upload-pack" "$P/requests.log")" = 1 &&
	test "$(grep -c "\"login\"" "$P/requests.log")" = 1
'

# On a gate that keeps answers for 1 s: alice'"'"'s access, asked and cached,
# then revoked on the platform, ends once the answer expired. The line is
# put back whatever happens: later tests push as alice.
test_expect_success 'access revoked on the platform ends within the cache time' '
	start_gate g2 $s1_ADDR s1 auth.url=http://127.0.0.1:$PORT/allowed auth.cacheTtl=1 &&
	api g2 POST /api/v1/apps "{\"name\":\"web\",\"route\":\"cluster\"}" | tail -n 1 | grep -q 201 &&
	GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g2_SSH_PORT/web.git >ls &&
	test_grep "refs/heads/main" ls &&
	sed -i "/^alice web write$/d" "$P/access" &&
	ended=0
	wait_for 30 "alice'"'"'s access to web through g2 to end" refused_on g2 alice || ended=1
	echo "alice web write" >>"$P/access" &&
	test $ended = 0 &&
	test_grep "ERROR: You are not a collaborator of web." err
'

# dave is new to g1: nothing of his is cached, so the gate must ask.
test_expect_success 'the platform down: a clear error, never "not found", and nothing cached' '
	new_platform_user dave read &&
	touch "$P/down" &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as dave $g1_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git 2>err &&
	test_grep "ERROR: Grove cannot check your access to web right now: the authorization service is unavailable. Try again in a minute." err &&
	test_expect_code 1 $(ssh_as dave $g1_SSH_PORT) git@127.0.0.1 </dev/null >out 2>&1 &&
	test_grep "authorization service is unavailable" out &&
	wait_grep "gate.authz_unavailable.*HTTP 503" "$TRASH/g1/gate.log" &&
	rm "$P/down" &&
	GIT_SSH_COMMAND="$(ssh_as dave $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >out &&
	test_grep "refs/heads/main" out &&
	curl -s "$g1_ADMIN/metrics" >m &&
	test_grep "grove_gate_authz_total{result=\"unavailable\"} [1-9]" m &&
	test_grep "grove_gate_authz_total{result=\"cached\"} [1-9]" m &&
	test_grep "grove_gate_authz_total{result=\"denied\"} [1-9]" m &&
	test_grep "grove_gate_authz_total{result=\"allowed\"} [1-9]" m
'

test_expect_success 'a slow webhook gets keep-alive lines; a failing one says so with its body' '
	touch "$P/deploy-slow" &&
	(cd src && git commit -q --allow-empty -m slow) &&
	{ push_as alice ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>push.err; echo $? >push.rc; } &
	{ wait_grep "^remote: -----> still deploying ([0-9]*s)" push.err || { rm -f "$P/deploy-slow"; false; }; } &&
	rm "$P/deploy-slow" &&
	wait_for 60 "the slow push to end" test -s push.rc &&
	test "$(cat push.rc)" = 0 &&
	test_grep "^remote: -----> Deployed web" push.err &&
	touch "$P/deploy-fail" &&
	(cd src && git commit -q --allow-empty -m fail) &&
	push_as alice ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>push.err &&
	test_grep "^remote: build failed: no Procfile" push.err &&
	test_grep "^remote: !      Deployment of web failed (the webhook answered HTTP 500)" push.err &&
	rm "$P/deploy-fail" &&
	api g1 GET /api/v1/apps/web/deployments >out && test_grep "\"status\":\"failed\"" out
'

test_expect_success 'a webhook that hangs up: the deployment could not start, and says why' '
	touch "$P/deploy-hangup" &&
	(cd src && git commit -q --allow-empty -m hangup) &&
	push_as alice ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>push.err &&
	test_grep "^remote: !      Deployment of web could not start: the deploy webhook http://127.0.0.1:[0-9]*/deploy cannot be reached" push.err &&
	rm "$P/deploy-hangup" &&
	git -C src rev-parse main >expect &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git refs/heads/main | cut -f1 >actual &&
	test_cmp expect actual
'

test_done
