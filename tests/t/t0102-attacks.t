#!/bin/sh
# Attacks of issue 6 that t0005 (store input), t0100 and t0101 (the SSH
# door) and t0300 (router tokens) do not cover yet: another user's app, a
# key revoked while its connection is open, invalid ref names and a tree
# with a .git folder in a push, broken pkt-line lengths, a gzip bomb in a
# gRPC message, and the admin API without a token, with SQL-looking input
# and with a 100 MB body. Each is refused with a clear message, nothing is
# written, and the daemons go on serving.
. "$(dirname "$0")/test-lib.sh"

# Test bodies write to a file; measurements go to fd 3, the TAP stream, so
# that prove -v shows them.
exec 3>&1

add_user() {
	api g1 POST /api/v1/users "{\"name\":\"$1\"}" >out && test_grep "^201$" out &&
	key=$(cat "$TRASH/keys/$1.pub") &&
	api g1 POST /api/v1/users/$1/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out
}

add_app() {
	api g1 POST /api/v1/apps "{\"name\":\"$1\",\"route\":\"$2\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/$1/collaborators/$3 "{\"access\":\"write\"}" >out && test_grep "^200$" out
}

# as USER git ARGS...: git with USER's key against the gate.
as() {
	u=$1; shift
	GIT_SSH_COMMAND="$(ssh_as $u $g1_SSH_PORT)" "$@"
}

url() {
	echo "ssh://git@127.0.0.1:$g1_SSH_PORT/$1.git"
}

# Everything in the repositories but logs: refs, config, hooks, objects.
snap() {
	find "$TRASH/s1/repositories" "$TRASH/g1/legacy" -type f ! -name "*.log" ! -path "*/+grove/run/*" |
		sort | xargs sha1sum
}

urlencode() {
	perl -e 'print join "", map { /[A-Za-z0-9_.~-]/ ? $_ : sprintf("%%%02X", ord) } split //, $ARGV[0]' "$1"
}

# raw_push NEW REF...: receive-pack's input that creates each REF at NEW
# (an object the repository has), asks for report-status, and sends the
# empty pack ("PACK", version 2, 0 objects, then the SHA-1 of those 12 bytes).
raw_push() {
	perl -MDigest::SHA=sha1 -e '
		my $new = shift; my $caps = "\0report-status";
		for my $r (@ARGV) {
			my $l = ("0" x 40) . " $new $r$caps\n"; $caps = "";
			printf "%04x%s", length($l) + 4, $l;
		}
		print "0000"; my $p = "PACK" . pack("NN", 2, 0); print $p, sha1($p);' "$@"
}

# The token format of lib/auth.h (see t0005), made with Perl.
token_for() {
	perl -MDigest::SHA=hmac_sha256_hex -e '
		open(my $f, "<", $ARGV[0]) or die; my $k = <$f>; chomp $k;
		my $m = "v1.$ARGV[1].$ARGV[2]"; print $m =~ s/\.\/.*//r, ".", hmac_sha256_hex($m, $k), "\n"' \
		"$GROVE_SECRET_FILE" "$(date +%s)" "$1"
}

# A gRPC frame with the compressed flag set holding a gzip stream of $1 MiB
# of zeros: deflate gives at most ~1000:1, so 1024 MiB take ~1 MiB. Each
# MiB after the first compresses (after a full flush) to the same bytes.
grpc_gzip_frame() {
	python3 -c '
import struct, sys, zlib
mib = int(sys.argv[1]); chunk = bytes(1 << 20)
c = zlib.compressobj(9, zlib.DEFLATED, 31)
head = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
rep = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
crc = 0
for _ in range(mib):
    crc = zlib.crc32(chunk, crc)
tail = c.flush()[:-8] + struct.pack("<II", crc, (mib << 20) & 0xffffffff)
body = head + rep * (mib - 1) + tail
sys.stdout.buffer.write(b"\x01" + struct.pack(">I", len(body)) + body)' "$1"
}

# grpc_post ADDR METHOD FILE [TOKEN]: the frame in FILE as a gRPC call with
# grpc-encoding gzip; headers and trailers in hdr, curl's exit code in rc.
grpc_post() {
	auth="x-grove-auth: ${4:-}"
	test -n "${4:-}" || auth="x-no-auth: none"
	curl -sS -m 30 --http2-prior-knowledge -o /dev/null -D hdr --data-binary @"$3" \
		-H "content-type: application/grpc" -H "te: trailers" -H "grpc-encoding: gzip" -H "$auth" \
		"http://$1$2" 2>curl.err
	echo $? >rc
}

kib() {
	sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" /proc/$1/status
}

test_setup 'a store, a gate, three users, apps on both routes' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 gate.loginGraceTime=20 &&
	new_key alice && new_key bob && new_key carol &&
	add_user alice && add_user bob && add_user carol &&
	add_app web cluster alice && add_app old legacy alice && add_app bobs cluster bob &&
	api g1 PUT /api/v1/apps/web/collaborators/carol "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	make_history src &&
	(cd src && as alice git push -q $(url web) main && as alice git push -q $(url old) main &&
	 as bob git push -q $(url bobs) main) &&
	MAIN=$(git -C src rev-parse main)
'

test_expect_success 'a key of one user pushing to another user'"'"'s app: refused like an unknown app' '
	(cd src && test_must_fail as alice git push $(url bobs) main:stolen 2>../err1 &&
	 test_must_fail as alice git push $(url no-such-app) main:stolen 2>../err2) &&
	grep "^ERROR" err1 | sed "s/bobs/APP/g" >m1 &&
	grep "^ERROR" err2 | sed "s/no-such-app/APP/g" >m2 &&
	test_grep "ERROR: Repository not found: APP" m1 &&
	test_cmp m2 m1 &&
	as bob git ls-remote $(url bobs) >refs &&
	test_grep refs/heads/main refs &&
	test_must_fail grep stolen refs
'

test_expect_success 'a key deleted while its connection is open runs nothing on that connection' '
	sock=$TRASH/cm-carol &&
	$(ssh_as carol $g1_SSH_PORT) -o ControlMaster=yes -o ControlPath=$sock -o ControlPersist=no \
		-N -f git@127.0.0.1 &&
	ssh -o ControlPath=$sock -O check git@127.0.0.1 2>check &&
	test_grep "Master running" check &&
	fp=$(ssh-keygen -l -E sha256 -f "$TRASH/keys/carol.pub" | cut -d" " -f2) &&
	api g1 DELETE /api/v1/keys/$(urlencode "$fp") >out && test_grep "^204$" out &&
	before=$(snap | sha1sum) &&
	(cd src && test_must_fail env GIT_SSH_COMMAND="ssh -o ControlPath=$sock -o ControlMaster=no -o BatchMode=yes" \
		git push $(url web) main:revoked 2>../rev.err) &&
	cat rev.err &&
	test_grep "ERROR: This key ($fp) was removed after the connection authenticated" rev.err &&
	test_must_fail grep "Permission denied" rev.err &&
	test "$(snap | sha1sum)" = "$before" &&
	wait_grep "\"what\":\"revoked key\"" "$TRASH/g1/gate.log" &&
	as alice git ls-remote $(url web) >refs &&
	test_must_fail grep revoked refs &&
	{ ssh -o ControlPath=$sock -O exit git@127.0.0.1 2>/dev/null || :; }
'

for app in old web; do
	test_expect_success "invalid ref names in a raw push to $app are refused, nothing written" '
		before=$(snap | sha1sum) &&
		raw_push $MAIN refs/heads/../../config refs/heads/a..b refs/heads/x.lock \
			"$(printf "refs/heads/c\001d")" refs/heads/../../hooks/pre-receive >push.in &&
		{ $(ssh_as alice $g1_SSH_PORT) git@127.0.0.1 "git-receive-pack '"'"'$app.git'"'"'" \
			<push.in >push.out 2>push.err; true; } &&
		tr "\0\001" "@^" <push.out | tr -c "[:print:]\n" "." >report &&
		cat report push.err &&
		for r in "\.\./\.\./config" "a\.\.b" "x\.lock" "c\^d" "\.\./\.\./hooks/pre-receive"; do
			test_grep "ng refs/heads/$r " report || return 1
		done &&
		test_must_fail grep "^....ok refs/" report &&
		test_grep "ERROR: \"\.\./\.\./config\" is not a valid branch name (it holds \"\.\.\"" push.err &&
		test_grep "ERROR: \"c?d\" is not a valid branch name (it holds a space, a control character" push.err &&
		test_must_fail grep "Pushed to" push.err &&
		test "$(snap | sha1sum)" = "$before" &&
		as alice git ls-remote $(url $app) >refs &&
		test $(wc -l <refs) = 2
	'
done

test_expect_success 'a tree with a .git folder (config, hooks) is refused on both routes' '
	git init -q evil &&
	cfg=$(printf "[core]\n\thooksPath = /tmp\n" | git -C evil hash-object -w --stdin) &&
	hook=$(printf "#!/bin/sh\ntouch $TRASH/pwned\n" | git -C evil hash-object -w --stdin) &&
	hooks=$(printf "100755 blob %s\tpost-receive\n" $hook | git -C evil mktree) &&
	dotgit=$(printf "100644 blob %s\tconfig\n040000 tree %s\thooks\n" $cfg $hooks | git -C evil mktree) &&
	root=$(printf "040000 tree %s\t.git\n" $dotgit | git -C evil mktree) &&
	commit=$(git -C evil commit-tree -m evil $root) &&
	before=$(snap | sha1sum) &&
	for app in old web; do
		(cd evil && test_must_fail as alice git push $(url $app) $commit:refs/heads/evil 2>../evil.err) &&
		cat evil.err &&
		test_grep "hasDotgit" evil.err &&
		test_grep "\[remote rejected\] *$commit -> evil\|unpack failed\|unpacker error" evil.err || return 1
	done &&
	test "$(snap | sha1sum)" = "$before" &&
	test ! -e "$TRASH/pwned"
'

test_expect_success 'broken pkt-line lengths end the session with an error; the gate serves on' '
	before=$(snap | sha1sum) &&
	printf "ffffshort" >ffff.in &&
	{ printf "fff0"; head -c 3000 /dev/urandom; } >fff0.in &&
	printf "zzzz0000" >nothex.in &&
	printf "0003" >tooshort.in &&
	for cmd in "git-receive-pack '"'"'old.git'"'"'" "git-receive-pack '"'"'web.git'"'"'" \
		   "git-upload-pack '"'"'web.git'"'"'" "git-upload-pack '"'"'old.git'"'"'"; do
		for f in ffff fff0 nothex tooshort; do
			test_must_fail $(ssh_as alice $g1_SSH_PORT) git@127.0.0.1 "$cmd" <$f.in >/dev/null 2>pkt.err ||
				{ echo "$cmd with $f: exit 0" >&2; return 1; }
			echo "# $cmd, $f: $(tr "\n" " " <pkt.err | cut -c1-150)" >&3
			grep -q -i "fatal\|error" pkt.err || { echo "$cmd with $f: no message" >&2; return 1; }
		done
	done &&
	kill -0 $g1_PID && kill -0 $s1_PID &&
	test "$(snap | sha1sum)" = "$before" &&
	as alice git clone -q $(url web) after-pkt &&
	test "$(git -C after-pkt rev-parse HEAD)" = "$MAIN"
'

# The refusal comes as the headers arrive: with a body, curl may still be
# sending when the stream is reset and then reports that instead (exit 92),
# so the message is read from a call whose body is empty.
test_expect_success 'a gzip-compressed gRPC call is refused by its headers, with a message' '
	: >empty.bin &&
	m=/grove.v1.RepositoryService/RepositoryExists &&
	grpc_post $s1_ADDR $m empty.bin "$(token_for $m)" &&
	cat hdr curl.err &&
	test_grep "grpc-status: 12" hdr &&
	test_grep "grpc-message: Compression algorithm .gzip. is disabled" hdr
'

test_expect_success 'a gzip bomb (1 MiB inflating to 1 GiB) leaves the store and the router small and serving' '
	start_cluster c1 s1 &&
	grpc_gzip_frame 1024 >bomb.bin &&
	echo "# bomb: $(wc -c <bomb.bin) bytes on the wire, 1073741824 inflated" >&3 &&
	m=/grove.v1.RepositoryService/RepositoryExists &&
	for target in s1 c1; do
		eval "addr=\$${target}_ADDR pid=\$${target}_PID" &&
		rss0=$(kib $pid VmRSS) && hwm0=$(kib $pid VmHWM) &&
		for tok in "$(token_for $m)" ""; do
			grpc_post $addr $m bomb.bin "$tok" &&
			how=with && { test -n "$tok" || how=without; } &&
			echo "# $target $how token: curl exit $(cat rc) $(grep -i "grpc-" hdr | tr "\r\n" "  ")" >&3 &&
			# refused by its headers (12), or the stream reset while curl still sent
			{ grep -q "grpc-status: 12" hdr || test "$(cat rc)" = 92; } &&
			test_must_fail grep "grpc-status: 0" hdr || return 1
		done &&
		rss1=$(kib $pid VmRSS) && hwm1=$(kib $pid VmHWM) &&
		echo "# $target RSS before ${rss0} kB, after ${rss1} kB; peak before ${hwm0} kB, after ${hwm1} kB" >&3 &&
		test $((hwm1 - hwm0)) -lt 65536 &&
		storage=s1 && { test $target = s1 || storage=default; } &&
		rpc $addr RepositoryService/RepositoryExists repository.storage_name=$storage \
			repository.relative_path=web.git >out &&
		test_grep "\"exists\":" out || return 1
	done
'

test_expect_success 'the admin API without a token or with a wrong one is 401 with a message' '
	curl -s -w "\n%{http_code}\n" $g1_ADMIN/api/v1/apps >out &&
	cat out && test_grep "^401$" out && test_grep "\"error\"" out &&
	curl -s -w "\n%{http_code}\n" -H "Authorization: Bearer wrong-token" $g1_ADMIN/api/v1/apps >out &&
	cat out && test_grep "^401$" out && test_grep "\"error\"" out &&
	curl -s -w "\n%{http_code}\n" -H "Authorization: Basic $g1_TOKEN" -X DELETE $g1_ADMIN/api/v1/apps/web >out &&
	test_grep "^401$" out &&
	api g1 GET /api/v1/apps/web >out && test_grep "^200$" out
'

test_expect_success 'SQL-looking names are 400 with a message; the tables stay intact' '
	api g1 POST /api/v1/apps "{\"name\":\"x'"'"'; DROP TABLE apps;--\"}" >out &&
	cat out && test_grep "^400$" out && test_grep "\"error\"" out &&
	api g1 POST /api/v1/users "{\"name\":\"o'"'"'brien\\\" OR 1=1 --\"}" >out &&
	cat out && test_grep "^400$" out && test_grep "\"error\"" out &&
	api g1 PUT "/api/v1/apps/web/collaborators/$(urlencode "x'"'"' OR '"'"'1'"'"'='"'"'1")" "{\"access\":\"write\"}" >out &&
	cat out && test_grep "^40[04]$" out &&
	api g1 GET "/api/v1/apps/$(urlencode "web'"'"' OR 1=1 --")" >out &&
	cat out && test_grep "^40[04]$" out &&
	api g1 GET /api/v1/apps >out &&
	test_grep "^200$" out &&
	for a in web old bobs; do test_grep "\"name\": *\"$a\"" out || return 1; done &&
	api g1 GET /api/v1/users >out &&
	test_grep "^200$" out && test_grep "\"name\": *\"alice\"" out
'

test_expect_success 'a 100 MB admin request body is refused at once; the api process stays small' '
	api_pid=$(ss -Htlnp "sport = :${g1_ADMIN##*:}" | sed -n "s/.*pid=\([0-9]*\).*/\1/p" | head -n1) &&
	test -n "$api_pid" &&
	hwm0=$(kib $api_pid VmHWM) &&
	head -c 100000000 /dev/zero | tr "\0" "a" >big.body &&
	start=$(date +%s%N) &&
	curl -s -m 30 -w "\n%{http_code}\n" -H "Authorization: Bearer $g1_TOKEN" -H "Content-Type: application/json" \
		--data-binary @big.body $g1_ADMIN/api/v1/apps >out &&
	ms=$((($(date +%s%N) - start) / 1000000)) &&
	cat out && test_grep "^413$" out && test_grep "larger than the limit of 1048576 bytes" out &&
	{ head -c 100000000 /dev/zero | curl -s -m 30 -w "\n%{http_code}\n" -H "Authorization: Bearer $g1_TOKEN" \
		-H "Content-Type: application/json" -H "Transfer-Encoding: chunked" -T - -X POST \
		$g1_ADMIN/api/v1/apps >out2; echo $? >rc2; } &&
	ms2=$((($(date +%s%N) - start) / 1000000 - ms)) &&
	hwm1=$(kib $api_pid VmHWM) &&
	echo "# admin api (pid $api_pid): peak RSS before ${hwm0} kB, after ${hwm1} kB; with a length: $(tail -n1 out) in ${ms} ms; chunked: curl exit $(cat rc2), status $(tail -n1 out2) in ${ms2} ms" >&3 &&
	test $ms -lt 5000 &&
	{ test_grep "^413$" out2 || test "$(cat rc2)" != 0; } &&
	test $((hwm1 - hwm0)) -lt 20480 &&
	kill -0 $api_pid &&
	api g1 GET /api/v1/apps >out && test_grep "^200$" out
'

# state: what the admin API shows of apps, users and the canary.
state() {
	for path in apps users canary apps/web apps/bobs; do
		api g1 GET /api/v1/$path || return 1
	done
}

test_expect_success 'malformed JSON bodies are 400 with a message naming JSON; nothing changes' '
	state >before &&
	# Deep nesting just under the size limit: a parser that recursed
	# without bound would fall over here.
	head -c 1000000 /dev/zero | tr "\0" "[" >deep.body &&
	for endpoint in "POST /api/v1/apps" "POST /api/v1/users" "PATCH /api/v1/apps/web" \
			"PUT /api/v1/apps/web/collaborators/bob" "PUT /api/v1/canary"; do
		for body in "{\"name\":" "[]" "\"x\"" "{\"name\":\"a\",\"name\":\"b\"}" "@deep.body"; do
			curl -s -X ${endpoint% *} -H "Authorization: Bearer $g1_TOKEN" -H "Content-Type: application/json" \
				--data-binary "$body" -w "\n%{http_code}\n" "$g1_ADMIN${endpoint#* }" >out || return 1
			test_grep "^400$" out || return 1
			test_grep "\"error\": *\"request body \(is not valid JSON\|must be a JSON object\)" out || return 1
		done
	done &&
	# 2 MB is past the 1 MiB limit: refused as too large before any parsing.
	{ printf "{\"name\":\""; head -c 2097152 /dev/zero | tr "\0" a; printf "\"}"; } >big2.body &&
	curl -s -H "Authorization: Bearer $g1_TOKEN" -H "Content-Type: application/json" \
		--data-binary @big2.body -w "\n%{http_code}\n" $g1_ADMIN/api/v1/apps >out &&
	test_grep "^413$" out && test_grep "larger than the limit of 1048576 bytes" out &&
	state >after &&
	test_cmp before after
'

test_expect_success 'GET and DELETE /api/v1/users/NAME: shown with its key, then gone, key and access too' '
	new_key dave && add_user dave &&
	api g1 PUT /api/v1/apps/web/collaborators/dave "{\"access\":\"read\"}" >out && test_grep "^200$" out &&
	fp=$(ssh-keygen -l -E sha256 -f "$TRASH/keys/dave.pub" | cut -d" " -f2) &&
	api g1 GET /api/v1/users/dave >out &&
	test_grep "^200$" out &&
	test_grep "\"name\": *\"dave\"" out &&
	test_grep "\"keys\": *\[\"$fp\"\]" out &&
	as dave git ls-remote $(url web) >refs && test_grep refs/heads/main refs &&
	api g1 DELETE /api/v1/users/dave >out && test_grep "^204$" out &&
	api g1 GET /api/v1/users/dave >out && test_grep "^404$" out && test_grep "no user named dave" out &&
	api g1 DELETE /api/v1/users/dave >out && test_grep "^404$" out &&
	api g1 GET /api/v1/apps/web >out && ! grep "dave" out &&
	test_must_fail as dave git ls-remote $(url web) 2>err &&
	test_grep "Permission denied (publickey)" err
'

test_expect_success 'DELETE a collaborator: refused like a stranger from then on, the others go on' '
	api g1 PUT /api/v1/apps/web/collaborators/bob "{\"access\":\"read\"}" >out && test_grep "^200$" out &&
	as bob git ls-remote $(url web) >refs && test_grep refs/heads/main refs &&
	api g1 DELETE /api/v1/apps/web/collaborators/bob >out && test_grep "^204$" out &&
	api g1 GET /api/v1/apps/web >out && ! grep "\"user\": *\"bob\"" out &&
	test_must_fail as bob git ls-remote $(url web) 2>err &&
	test_grep "^ERROR: Repository not found: web. Check the name, or ask its owner for access." err &&
	api g1 DELETE /api/v1/apps/web/collaborators/bob >out && test_grep "^404$" out &&
	test_grep "bob is no collaborator on app web" out &&
	as alice git ls-remote $(url web) >refs && test_grep refs/heads/main refs
'

test_expect_success 'PATCH deploy_branch: answered, and the push policy follows it' '
	api g1 PATCH /api/v1/apps/bobs "{\"deploy_branch\":\"refs/heads/trunk\"}" >out &&
	test_grep "^200$" out && test_grep "\"deploy_branch\": *\"trunk\"" out &&
	(cd src && as bob git push $(url bobs) main:trunk 2>../trunk.err &&
	 as bob git push $(url bobs) main:other 2>../other.err) &&
	! grep "Pushed to trunk" trunk.err &&
	test_grep "^remote: Pushed to other: only trunk deploys." other.err &&
	api g1 PATCH /api/v1/apps/bobs "{\"deploy_branch\":\"a..b\"}" >out &&
	test_grep "^400$" out && test_grep "\"error\"" out &&
	api g1 GET /api/v1/apps/bobs >out && test_grep "\"deploy_branch\": *\"trunk\"" out
'

test_expect_success 'PATCH route: answered, and git is served from the other route' '
	add_app moving cluster alice &&
	(cd src && as alice git push -q $(url moving) main) &&
	api g1 PATCH /api/v1/apps/moving "{\"route\":\"legacy\"}" >out &&
	test_grep "^200$" out && test_grep "\"route\": *\"legacy\"" out &&
	test_grep "\"repository\": *{\"exists\": *false" out &&
	# Pinned without a migration: the legacy directory has no code of it yet.
	test_must_fail as alice git ls-remote $(url moving) 2>err &&
	test_grep "^ERROR: app moving has no code yet: push to it first." err &&
	(cd src && as alice git push -q $(url moving) main~1:refs/heads/main) &&
	test "$(git --git-dir="$TRASH/g1/legacy/moving.git" rev-parse main)" = "$(git -C src rev-parse main~1)" &&
	api g1 PATCH /api/v1/apps/moving "{\"route\":\"cluster\"}" >out &&
	test_grep "^200$" out && test_grep "\"route\": *\"cluster\"" out &&
	as alice git ls-remote $(url moving) >refs &&
	test_grep "^$MAIN	refs/heads/main$" refs &&
	api g1 PATCH /api/v1/apps/moving "{\"route\":\"nfs\"}" >out &&
	test_grep "^400$" out && test_grep "route.* must be .*legacy.* or .*cluster" out
'

test_expect_success 'after all that the gate and the store are unharmed and serve a clone' '
	kill -0 $g1_PID && kill -0 $s1_PID &&
	as alice git clone -q $(url web) final-web &&
	as alice git clone -q $(url old) final-old &&
	test "$(git -C final-web rev-parse HEAD)" = "$MAIN" &&
	test "$(git -C final-old rev-parse HEAD)" = "$MAIN"
'

test_done
