#!/bin/sh
# Git over HTTPS (docs/http.md): real git and curl against the gate's smart
# HTTP door with TLS, access tokens as passwords; clones and pushes on the
# cluster route (a router in front of two stores) and the legacy route,
# protocol v0 and v2, gzip and chunked request bodies, a push large enough
# for git's probe; refusals that say why; malformed and oversized requests.
. "$(dirname "$0")/test-lib.sh"

# url USER TOKEN APP
url() {
	echo "https://$1:$2@127.0.0.1:$HTTP_PORT/$3.git"
}

# token GATE USER: a new access token of USER's, printed.
token() {
	api $1 POST /api/v1/users/$2/tokens '{"name":"test"}' >"$TRASH/.tok" && test_grep -q "^201$" "$TRASH/.tok" &&
	sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' "$TRASH/.tok"
}

# code ARGS…: curl's status code for a request to the door (body in .body).
code() {
	curl -s --cacert "$TRASH/tls/cert.pem" -o "$TRASH/.body" -D "$TRASH/.headers" -w '%{http_code}' "$@"
}

# hold_conn PORT USER:TOKEN NAME: a keep-alive connection that asks for
# kc's refs as USER, then stays open and idle until NAME.release exists;
# NAME.status gets the answer's status line.
hold_conn() {
	perl -MIO::Socket::INET -MMIME::Base64 -e '
		my ($port, $cred, $name) = @ARGV;
		my $s = IO::Socket::INET->new("127.0.0.1:$port") or die "connect: $!";
		my $auth = encode_base64($cred, "");
		print $s "GET /kc.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n" .
			"Authorization: Basic $auth\r\n\r\n";
		my $line = <$s>;
		open(my $f, ">", "$name.tmp") or die; print $f $line; close $f; rename("$name.tmp", "$name.status");
		for (1..6000) { last if -e "$name.release"; select(undef, undef, undef, 0.1) }
	' "$@" &
}

test_setup 'a router in front of two stores, a gate with HTTPS; alice writes web (cluster) and old (legacy), bob reads web' '
	mkdir tls &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout tls/key.pem -out tls/cert.pem 2>/dev/null &&
	start_store s1 && start_store s2 &&
	start_cluster c s1 s2 &&
	HTTP_PORT=$(free_port) &&
	start_gate g $c_ADDR default gate.httpListen=127.0.0.1:$HTTP_PORT gate.httpTlsCert=$TRASH/tls/cert.pem \
		gate.httpTlsKey=$TRASH/tls/key.pem gate.httpMaxRequestSize=65536 &&
	new_key alice && new_key bob &&
	user_app g alice web &&
	api g POST /api/v1/users "{\"name\":\"bob\"}" >/dev/null &&
	api g PUT /api/v1/apps/web/collaborators/bob "{\"access\":\"read\"}" >.api && test_grep "^200$" .api &&
	api g POST /api/v1/apps "{\"name\":\"old\",\"route\":\"legacy\"}" >.api && test_grep "^201$" .api &&
	api g PUT /api/v1/apps/old/collaborators/alice "{\"access\":\"write\"}" >.api && test_grep "^200$" .api &&
	ALICE=$(token g alice) && test -n "$ALICE" &&
	BOB=$(token g bob) && test -n "$BOB" &&
	export GIT_SSL_CAINFO=$TRASH/tls/cert.pem GIT_TERMINAL_PROMPT=0 &&
	make_history src
'

test_expect_success 'alice pushes to a cluster app over HTTPS with her token' '
	git -C src push "$(url alice $ALICE web)" main feature v1.0 2>err &&
	test_grep "new branch" err &&
	git -C src rev-parse main >want &&
	git ls-remote "$(url alice $ALICE web)" refs/heads/main | cut -f1 >got &&
	test_cmp want got
'

test_expect_success 'a clone over HTTPS, protocol v2 and v0, has what was pushed' '
	git -c protocol.version=2 clone -q "$(url bob $BOB web)" v2 &&
	git -c protocol.version=0 clone -q "$(url bob $BOB web)" v0 &&
	git -C src rev-parse main >want &&
	git -C v2 rev-parse HEAD >got && test_cmp want got &&
	git -C v0 rev-parse HEAD >got && test_cmp want got &&
	git -C v2 rev-parse -q --verify refs/tags/v1.0 &&
	wait_grep "\"command\":\"git-upload-pack\",\"route\":\"cluster\",\"result\":\"ok\"" g/gate.log
'

test_expect_success 'a fetch with many haves sends a gzip request body, and gets only what it lacks' '
	# 300 commits of its own: the negotiation rounds grow past the 1 KiB
	# over which git gzips a request.
	{ for i in $(seq 1 300); do
		printf "commit refs/heads/local\ncommitter t <t@t> %d +0000\ndata 4\nc%03d\n" $((1900000000 + i)) $i
		test $i = 1 && printf "from %s\n" "$(git -C v2 rev-parse HEAD)"
		printf "M 644 inline n\ndata 4\n%04d\n\n" $i
	done; } | git -C v2 fast-import --quiet &&
	git -C v2 checkout -q local &&
	(cd src && echo more >more && git add more && git commit -q -m more && git push -q "$(url alice $ALICE web)" main) &&
	GIT_TRACE_CURL=$TRASH/curl.trace git -C v2 -c protocol.version=0 fetch -q origin &&
	grep -q "Content-Encoding: gzip" curl.trace &&
	git -C src rev-parse main >want && git -C v2 rev-parse origin/main >got && test_cmp want got
'

test_expect_success 'a push of several MiB goes in chunks after git probes with "0000"' '
	head -c 3000000 /dev/urandom >src/big.bin && git -C src add big.bin && git -C src commit -q -m big &&
	GIT_TRACE_CURL=$TRASH/push.trace git -C src push -q "$(url alice $ALICE web)" main &&
	grep -q "Transfer-Encoding: chunked" push.trace &&
	git -C src rev-parse main >want &&
	git ls-remote "$(url bob $BOB web)" refs/heads/main | cut -f1 >got && test_cmp want got
'

test_expect_success 'a push over HTTPS is held to the app'"'"'s size limit, nothing of it kept' '
	api g PATCH /api/v1/apps/web "{\"max_push_mb\":1}" >.api && test_grep -q "\"max_push_mb\":1" .api &&
	git -C src rev-parse main >before &&
	base=$(pgrep -P $g_PID | wc -l) &&
	head -c 8000000 /dev/urandom >src/big2.bin && git -C src add big2.bin && git -C src commit -q -m big2 &&
	test_must_fail git -C src push "$(url alice $ALICE web)" main 2>err &&
	test_grep "rejected\|unpacker error\|pack exceeds" err &&
	: the gate says why after git, as over SSH, before the last packet of the answer &&
	test_grep "^remote: ERROR: This push sent .* MiB; web accepts at most 1 MiB: git refused the pack and nothing of it was kept" err &&
	: the connection has nothing left to do: its process ends, it does not spin on &&
	wait_for 30 "the refused push'"'"'s connection process to end" eval "test \$(pgrep -P $g_PID | wc -l) -le $base" &&
	git ls-remote "$(url bob $BOB web)" refs/heads/main | cut -f1 >got && test_cmp before got &&
	git -C src reset -q --hard HEAD~1 &&
	api g PATCH /api/v1/apps/web "{\"max_push_mb\":0}" >.api && test_grep -q "\"max_push_mb\":0" .api
'

test_expect_success 'a read-only token fetches, and is refused a push with why' '
	api g POST /api/v1/users/alice/tokens "{\"name\":\"ci\",\"read_only\":true}" >.ro && test_grep -q "^201$" .ro &&
	RO=$(sed -n "s/.*\"token\": *\"\([^\"]*\)\".*/\1/p" .ro) && test -n "$RO" &&
	git ls-remote "$(url alice $RO web)" refs/heads/main >/dev/null &&
	(cd src && echo ro >ro && git add ro && git commit -q -m ro) &&
	test_must_fail git -C src push "$(url alice $RO web)" main 2>err &&
	test_grep "remote: ERROR: This token is read-only" err &&
	git -C src reset -q --hard HEAD~1 &&
	api g GET /api/v1/users/alice/tokens >list && test_grep -q "\"read_only\": *true" list
'

test_expect_success 'the legacy route over HTTPS: push, then clone' '
	git -C src push -q "$(url alice $ALICE old)" main &&
	git clone -q "$(url alice $ALICE old)" oldclone &&
	git -C src rev-parse main >want && git -C oldclone rev-parse HEAD >got && test_cmp want got &&
	wait_grep "\"app\":\"old\",\"command\":\"git-upload-pack\",\"route\":\"legacy\",\"result\":\"ok\"" g/gate.log
'

test_expect_success 'a read-only collaborator cannot push, and is told why' '
	(cd v2 && git push "$(url bob $BOB web)" HEAD:refs/heads/bob 2>../err; test $? != 0) &&
	test_grep "remote: ERROR" err &&
	git ls-remote "$(url bob $BOB web)" >refs && ! grep -q refs/heads/bob refs
'

test_expect_success 'no credentials, or a token Grove does not know: 401 with a Basic challenge' '
	test "$(code "https://127.0.0.1:$HTTP_PORT/web.git/info/refs?service=git-upload-pack")" = 401 &&
	grep -qi "^WWW-Authenticate: Basic realm=\"Grove\"" .headers &&
	test_grep "access token" .body &&
	test "$(code -u alice:grove_nope "https://127.0.0.1:$HTTP_PORT/web.git/info/refs?service=git-upload-pack")" = 401 &&
	test_must_fail git ls-remote "$(url alice grove_nope web)" 2>err &&
	test_grep "Authentication failed" err &&
	wait_grep "gate.auth_failed.*\"method\":\"token\"" g/gate.log
'

test_expect_success 'an app that is not there, or not theirs: the same answer' '
	test_must_fail git ls-remote "$(url bob $BOB old)" 2>err1 &&
	test_must_fail git ls-remote "$(url bob $BOB nosuch)" 2>err2 &&
	test_grep "remote: ERROR: Repository not found: old" err1 &&
	test_grep "remote: ERROR: Repository not found: nosuch" err2 &&
	! grep -q "/var\|/tmp\|grpc" err1 err2
'

test_expect_success 'paths and methods git does not use: 404, 405, dumb HTTP refused' '
	test "$(code -u alice:$ALICE "https://127.0.0.1:$HTTP_PORT/web.git/HEAD")" = 404 &&
	test "$(code -u alice:$ALICE -X DELETE "https://127.0.0.1:$HTTP_PORT/web.git/git-upload-pack")" = 405 &&
	test "$(code -u alice:$ALICE "https://127.0.0.1:$HTTP_PORT/web.git/info/refs")" = 403 &&
	test_grep "smart HTTP" .body
'

test_expect_success 'a gzip body over gate.httpMaxRequestSize once inflated is refused (413), and the gate goes on' '
	# A protocol v2 fetch whose haves inflate to 5 MB: git would read
	# them all; the gate stops at 64 KiB.
	perl -e "print \"0012command=fetch\n0001\"; print \"0032have \" . (\"0\" x 40) . \"\n\" for 1..100000; print \"0000\"" |
		gzip >bomb.gz &&
	test "$(code -u alice:$ALICE -H "Content-Type: application/x-git-upload-pack-request" -H "Git-Protocol: version=2" \
		-H "Content-Encoding: gzip" --data-binary @bomb.gz \
		"https://127.0.0.1:$HTTP_PORT/web.git/git-upload-pack")" = 413 &&
	test_grep "httpMaxRequestSize" .body &&
	git ls-remote "$(url bob $BOB web)" >/dev/null
'

test_expect_success 'a malformed chunked body is refused (400)' '
	auth=$(printf "alice:%s" "$ALICE" | base64 -w0) &&
	printf "POST /web.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n" \
		"$auth" >chunk.req &&
	openssl s_client -quiet -connect 127.0.0.1:$HTTP_PORT -CAfile tls/cert.pem <chunk.req >chunk.out 2>/dev/null || : &&
	test_grep "^HTTP/1.1 400" chunk.out &&
	test_grep "malformed" chunk.out
'

test_expect_success 'malformed and oversized request heads get 400 and 431; plain HTTP on the TLS port gets nothing' '
	printf "GET /web.git/info/refs?service=git-upload-pack HTTP/1.x\r\nHost: x\r\n\r\n" >bad.req &&
	openssl s_client -quiet -connect 127.0.0.1:$HTTP_PORT -CAfile tls/cert.pem <bad.req >bad.out 2>/dev/null || : &&
	test_grep "^HTTP/1.1 400" bad.out &&
	: a request line that is not one at all: libmicrohttpd closes without a word &&
	printf "GARBAGE\r\n\r\n" >bad.req &&
	openssl s_client -quiet -connect 127.0.0.1:$HTTP_PORT -CAfile tls/cert.pem <bad.req >bad.out 2>/dev/null || : &&
	test_must_be_empty bad.out &&
	{ printf "GET /web.git/info/refs HTTP/1.1\r\n"; i=0; while test $i -lt 400; do
		printf "X-Filler-%d: %s\r\n" $i 0123456789012345678901234567890123456789; i=$((i + 1)); done; printf "\r\n"; } >big.req &&
	openssl s_client -quiet -connect 127.0.0.1:$HTTP_PORT -CAfile tls/cert.pem <big.req >big.out 2>/dev/null || : &&
	test_grep "^HTTP/1.1 431" big.out &&
	! curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/web.git/info/refs" &&
	git ls-remote "$(url bob $BOB web)" >/dev/null
'

test_expect_success 'keep-alive: two requests on one connection, also after a 401; a refused POST gets its answer before "100 Continue"' '
	u="https://127.0.0.1:$HTTP_PORT/web.git/info/refs?service=git-upload-pack" &&
	curl -s --cacert tls/cert.pem -u alice:$ALICE -o /dev/null -o /dev/null -w "%{http_code} %{num_connects}\n" "$u" "$u" >ka &&
	printf "200 1\n200 0\n" >want && test_cmp want ka &&
	: git asks without credentials first: the 401 keeps the connection for its retry &&
	curl -s --cacert tls/cert.pem -o /dev/null -o /dev/null -w "%{http_code} %{num_connects}\n" "$u" "$u" >ka &&
	printf "401 1\n401 0\n" >want && test_cmp want ka &&
	head -c 100000 /dev/zero >zeros &&
	curl -sv --cacert tls/cert.pem -u alice:grove_nope -H "Expect: 100-continue" --data-binary @zeros \
		-o /dev/null "https://127.0.0.1:$HTTP_PORT/web.git/git-upload-pack" 2>expect.err &&
	test_grep "< HTTP/1.1 401" expect.err &&
	! grep -q "HTTP/1.1 100" expect.err
'

test_expect_success 'git takes the token from a credential helper, as a CI system gives it' '
	GROVE_TOKEN=$ALICE git -c credential.helper= \
		-c "credential.helper=!f() { test \"\$1\" = get && echo username=alice && echo password=\$GROVE_TOKEN; }; f" \
		ls-remote "https://127.0.0.1:$HTTP_PORT/web.git" refs/heads/main >ls &&
	test_grep "refs/heads/main$" ls &&
	: a wrong one from the helper: refused, git says so &&
	test_must_fail git -c credential.helper= \
		-c "credential.helper=!f() { test \"\$1\" = get && echo username=alice && echo password=grove_wrong; }; f" \
		ls-remote "https://127.0.0.1:$HTTP_PORT/web.git" 2>err &&
	test_grep "Authentication failed" err
'

test_expect_success 'an expired token is refused like an unknown one' '
	api g POST /api/v1/users/alice/tokens "{\"name\":\"soon\",\"expires_in_days\":1}" >.tok &&
	test_grep "^201$" .tok &&
	SOON=$(sed -n "s/.*\"token\": *\"\([^\"]*\)\".*/\1/p" .tok) && test -n "$SOON" &&
	git ls-remote "$(url alice $SOON web)" >/dev/null &&
	: a day later, as the database sees it &&
	sqlite3 g/gate.db "UPDATE tokens SET expires_at = $(($(date +%s) - 60)) WHERE name = '"'"'soon'"'"'" &&
	test_must_fail git ls-remote "$(url alice $SOON web)" 2>err &&
	test_grep "Authentication failed" err &&
	test "$(code -u alice:$SOON "https://127.0.0.1:$HTTP_PORT/web.git/info/refs?service=git-upload-pack")" = 401 &&
	test_grep -i "^WWW-Authenticate: Basic" .headers
'

test_expect_success 'a revoked token no longer works' '
	api g DELETE /api/v1/users/bob/tokens/test >.api && test_grep "^204$" .api &&
	test_must_fail git ls-remote "$(url bob $BOB web)" 2>err &&
	test_grep "Authentication failed" err
'

test_expect_success 'plain HTTP (TLS ends in front), and a push over the rate limit: git says why' '
	hp=$(free_port) &&
	start_gate g2 $c_ADDR default gate.httpListen=127.0.0.1:$hp gate.pushesPerMinute=1 &&
	api g2 POST /api/v1/users "{\"name\":\"dave\"}" >/dev/null &&
	api g2 POST /api/v1/apps "{\"name\":\"rl\",\"route\":\"legacy\"}" >/dev/null &&
	api g2 PUT /api/v1/apps/rl/collaborators/dave "{\"access\":\"write\"}" >.api && test_grep -q "^200$" .api &&
	DAVE=$(token g2 dave) &&
	git -C src push -q "http://dave:$DAVE@127.0.0.1:$hp/rl.git" main &&
	(cd src && echo again >again && git add again && git commit -q -m again) &&
	test_must_fail git -C src push "http://dave:$DAVE@127.0.0.1:$hp/rl.git" main 2>err &&
	test_grep "^remote: ERROR: dave has pushed 1 times in the last minute, the most this platform takes: push again in [0-9]* s.$" err &&
	wait_grep "\"what\":\"rate\"" g2/gate.log
'

test_expect_success 'idle keep-alive connections count against gate.maxConnectionsPerUser; another user is served' '
	hp3=$(free_port) &&
	start_gate g3 $c_ADDR default gate.httpListen=127.0.0.1:$hp3 gate.maxConnectionsPerUser=2 gate.httpKeepAlive=600 &&
	api g3 POST /api/v1/users "{\"name\":\"kim\"}" >/dev/null &&
	api g3 POST /api/v1/users "{\"name\":\"lee\"}" >/dev/null &&
	api g3 POST /api/v1/apps "{\"name\":\"kc\",\"route\":\"legacy\"}" >/dev/null &&
	api g3 PUT /api/v1/apps/kc/collaborators/kim "{\"access\":\"write\"}" >.api && test_grep -q "^200$" .api &&
	api g3 PUT /api/v1/apps/kc/collaborators/lee "{\"access\":\"write\"}" >.api && test_grep -q "^200$" .api &&
	KIM=$(token g3 kim) && LEE=$(token g3 lee) &&
	git -C src push -q "http://kim:$KIM@127.0.0.1:$hp3/kc.git" main &&
	hold_conn $hp3 kim:$KIM k1 && hold_conn $hp3 kim:$KIM k2 &&
	wait_for 60 "two connections of kim answered" test -s k1.status -a -s k2.status &&
	test_grep "^HTTP/1.1 200" k1.status && test_grep "^HTTP/1.1 200" k2.status &&
	: both now idle, kept alive: a third of kim is refused at once, with why and when &&
	test "$(code "http://kim:$KIM@127.0.0.1:$hp3/kc.git/info/refs?service=git-upload-pack")" = 503 &&
	test_grep "kim has 2 connections open to this gate, the most one user may" .body &&
	test_grep -i "^Retry-After: 600" .headers &&
	test_must_fail git ls-remote "http://kim:$KIM@127.0.0.1:$hp3/kc.git" 2>kim.err &&
	test_grep "503" kim.err &&
	: another user is served meanwhile &&
	git ls-remote "http://lee:$LEE@127.0.0.1:$hp3/kc.git" >lee.out && test_grep -q refs/heads/main lee.out &&
	wait_grep "\"what\":\"user connections\"" g3/gate.log &&
	curl -sf "$g3_ADMIN/metrics" >m && test_grep "grove_gate_push_refusals_total{reason=\"user_connections\"} [1-9]" m &&
	: one of kim closes: kim gets in again &&
	touch k1.release &&
	wait_for 60 "kim to be let in again" git ls-remote "http://kim:$KIM@127.0.0.1:$hp3/kc.git" &&
	touch k2.release
'

test_expect_success 'grove gate --check-config reads the TLS files and says what is wrong, running nothing' '
	"$GROVE" gate -c g/gate.conf --check-config >check.out &&
	test_grep "good. SSH on 127.0.0.1:$g_SSH_PORT; git over HTTPS on 127.0.0.1:$HTTP_PORT" check.out &&
	cp g/gate.conf g/bad.conf &&
	git config -f g/bad.conf gate.httpTlsKey "$TRASH/tls/cert.pem" &&
	test_expect_code 1 "$GROVE" gate -c g/bad.conf --check-config >check.out 2>check.err &&
	test_grep "gate.httpTlsKey" check.err && test_must_be_empty check.out &&
	git config -f g/bad.conf --unset gate.httpTlsKey &&
	test_expect_code 1 "$GROVE" gate -c g/bad.conf --check-config 2>check.err &&
	test_grep "gate.httpTlsCert and gate.httpTlsKey go together" check.err &&
	: the running gate still serves &&
	git ls-remote "$(url alice $ALICE web)" >/dev/null
'

test_expect_success 'SIGHUP reads the TLS files again (a renewed certificate), and keeps the old ones if the new are wrong' '
	openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj /CN=renewed -addext subjectAltName=IP:127.0.0.1 \
		-keyout tls/new-key.pem -out tls/new-cert.pem 2>/dev/null &&
	cp tls/new-key.pem tls/key.pem && cp tls/new-cert.pem tls/cert.pem &&
	kill -HUP $g_PID &&
	wait_grep "\"event\":\"gate.reloaded\"" g/gate.log &&
	openssl x509 -in tls/new-cert.pem -noout -fingerprint -sha256 >want &&
	openssl s_client -connect 127.0.0.1:$HTTP_PORT </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 >got &&
	test_cmp want got &&
	git ls-remote "$(url alice $ALICE web)" >/dev/null &&
	: a key that does not match the certificate: the reload fails, the gate serves on &&
	cp tls/cert.pem tls/key.pem &&
	kill -HUP $g_PID &&
	wait_grep "\"event\":\"gate.reload_failed\".*gate.httpTlsKey is not a PEM private key" g/gate.log &&
	openssl s_client -connect 127.0.0.1:$HTTP_PORT </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 >got &&
	test_cmp want got &&
	git ls-remote "$(url alice $ALICE web)" >/dev/null &&
	: a listen address is not changed by a reload &&
	cp tls/new-key.pem tls/key.pem &&
	git config -f g/gate.conf gate.httpListen 127.0.0.1:1 &&
	kill -HUP $g_PID &&
	wait_grep "\"event\":\"gate.reload_failed\".*gate.httpListen changed: that takes a restart" g/gate.log &&
	git config -f g/gate.conf gate.httpListen 127.0.0.1:$HTTP_PORT &&
	git ls-remote "$(url alice $ALICE web)" >/dev/null
'

# reloaded N: the gate logged more than N successful reloads.
reloaded() {
	test $(grep -c "\"event\":\"gate.reloaded\"" g/gate.log) -gt $1
}

test_expect_success 'info/refs while the app has no free slot: 503 with Retry-After and why' '
	git config -f g/gate.conf gate.maxOpsPerApp 1 && git config -f g/gate.conf gate.opsQueueWait 1 &&
	n=$(grep -c "\"event\":\"gate.reloaded\"" g/gate.log) &&
	kill -HUP $g_PID && wait_for 30 "the gate to reload" reloaded $n &&
	: the one slot of web held by an SSH fetch that waits for a request that does not come &&
	{ perl -e "for (1..6000) { last if -e q(release.slot); select(undef, undef, undef, 0.1) }" |
		$(ssh_as alice $g_SSH_PORT) git@127.0.0.1 "git-upload-pack '"'"'web.git'"'"'" >held.out 2>held.err & } &&
	wait_for 30 "the held fetch to get its advertisement" test -s held.out &&
	test "$(code -u alice:$ALICE "https://127.0.0.1:$HTTP_PORT/web.git/info/refs?service=git-upload-pack")" = 503 &&
	test_grep -i "^Retry-After: 1" .headers &&
	test_grep "git operations running" .body &&
	touch release.slot &&
	git config -f g/gate.conf --unset gate.maxOpsPerApp && git config -f g/gate.conf --unset gate.opsQueueWait &&
	n=$(grep -c "\"event\":\"gate.reloaded\"" g/gate.log) &&
	kill -HUP $g_PID && wait_for 30 "the gate to reload" reloaded $n &&
	git ls-remote "$(url alice $ALICE web)" >/dev/null
'

test_expect_success 'each request has its log line with the token, the route and the result' '
	wait_grep "\"fingerprint\":\"token:[0-9]*\",\"app\":\"web\",\"command\":\"git-receive-pack\",\"route\":\"cluster\",\"result\":\"ok\"" g/gate.log
'

test_done
