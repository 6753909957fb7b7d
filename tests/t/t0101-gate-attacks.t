#!/bin/sh
# The gate's SSH door refuses everything but the three git commands on a
# valid app name, for a key it knows, and stays up whatever is thrown at it.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a gate with one user and one app' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 gate.maxStartups=20 &&
	new_key alice &&
	api g1 POST /api/v1/users "{\"name\":\"alice\"}" >/dev/null &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"web\",\"route\":\"cluster\"}" >/dev/null &&
	api g1 PUT /api/v1/apps/web/collaborators/alice "{\"access\":\"write\"}" >/dev/null &&
	SSH="$(ssh_as alice $g1_SSH_PORT) git@127.0.0.1" &&
	make_history src &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main)
'

refused() {
	# refused "command": exits non-zero with one ERROR line
	test_must_fail $SSH "$1" </dev/null >out 2>err &&
	test_grep "^ERROR: " err
}

test_expect_success 'a shell command is refused' '
	refused "sh -c id" &&
	test_grep "only runs git-upload-pack, git-receive-pack and git-upload-archive" err
'

test_expect_success 'path traversal is refused' '
	refused "git-upload-pack '"'"'../../etc'"'"'" &&
	refused "git-upload-pack '"'"'/etc/passwd'"'"'" &&
	refused "git-receive-pack '"'"'web/../../x'"'"'"
'

test_expect_success 'an option smuggled as the repository is refused' '
	refused "git-upload-pack '"'"'--upload-pack=touch /tmp/grove-pwned'"'"'" &&
	test ! -e /tmp/grove-pwned
'

test_expect_success 'names with ; newline or control characters are refused' '
	refused "git-upload-pack '"'"'web;id'"'"'" &&
	refused "git-upload-pack web;id" &&
	refused "$(printf "git-upload-pack '"'"'web\nid'"'"'")"
'

test_expect_success 'an oversized command line is refused' '
	long=$(printf "%05000d" 0) &&
	refused "git-upload-pack '"'"'$long'"'"'"
'

test_expect_success 'a pty request is refused' '
	test_must_fail $SSH -tt git-upload-pack web.git </dev/null >out 2>err
'

test_expect_success 'port forwarding is refused' '
	port=$(free_port)
	$SSH -N -o ExitOnForwardFailure=yes -L $port:127.0.0.1:22 </dev/null >out 2>err &
	pid=$! &&
	sleep 1 &&
	test_must_fail curl -s -m 2 http://127.0.0.1:$port/ &&
	kill $pid 2>/dev/null; true
'

test_expect_success 'environment other than GIT_PROTOCOL is refused' '
	$SSH -o "SetEnv=LD_PRELOAD=/tmp/evil.so GIT_CONFIG_COUNT=1" "git-upload-pack '"'"'web.git'"'"'" </dev/null >out 2>err || true
	test_grep "\"event\":\"gate.refused\".*\"what\":\"env\".*\"name\":\"LD_PRELOAD\"" "$TRASH/g1/gate.log" &&
	test_grep "\"name\":\"GIT_CONFIG_COUNT\"" "$TRASH/g1/gate.log"
'

test_expect_success 'offering one key and signing with another never grants the offered key' '
	new_key bob && new_key mallory &&
	api g1 POST /api/v1/users "{\"name\":\"bob\"}" >/dev/null &&
	key=$(cat "$TRASH/keys/bob.pub") &&
	api g1 POST /api/v1/users/bob/keys "{\"public_key\":\"$key\"}" >/dev/null &&
	tool=${GROVE_TOOLS:-$(dirname "$GROVE")/tests/tools}/ssh-offer-sign &&
	test_must_fail "$tool" 127.0.0.1 $g1_SSH_PORT "$TRASH/keys/alice" "$TRASH/keys/bob" \
		"git-upload-pack '"'"'web.git'"'"'" >out 2>err &&
	test_grep "ERROR: Repository not found: web" err &&
	test_expect_code 99 "$tool" 127.0.0.1 $g1_SSH_PORT "$TRASH/keys/alice" "$TRASH/keys/mallory" \
		"git-upload-pack '"'"'web.git'"'"'" >out 2>err &&
	test_grep "authentication refused" err
'

test_expect_success 'password and none authentication are refused' '
	test_must_fail ssh -p $g1_SSH_PORT -o PreferredAuthentications=password,keyboard-interactive \
		-o PubkeyAuthentication=no -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null git@127.0.0.1 true 2>err &&
	test_grep "Permission denied (publickey)" err
'

test_expect_success 'many unauthenticated connections at once leave the gate serving' '
	perl -MIO::Socket::INET -e "
		my @s; for (1..200) { my \$c = IO::Socket::INET->new(PeerAddr => q(127.0.0.1:$g1_SSH_PORT)); push @s, \$c if \$c; }
		print scalar(@s), qq( opened\n); sleep 3;" &
	sleep 1 &&
	test_grep "gate.too_many" "$TRASH/g1/gate.log" &&
	wait &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git after &&
	test -e after/file1.txt
'

test_expect_success 'a client that does not authenticate within the grace time is cut off' '
	start_gate g2 $s1_ADDR s1 gate.loginGraceTime=1 &&
	perl -MIO::Socket::INET -e "
		my \$c = IO::Socket::INET->new(PeerAddr => q(127.0.0.1:$g2_SSH_PORT)) or die q(connect);
		my \$banner = <\$c>; print \$banner;
		\$SIG{ALRM} = sub { print qq(still open\\n); exit 1 }; alarm 10;
		while (sysread(\$c, my \$buf, 4096)) {}
		print qq(closed\\n);" >grace.out &&
	test_grep "^SSH-2.0-" grace.out &&
	test_grep "^closed" grace.out
'

test_expect_success 'the gate is still up and every session was logged' '
	kill -0 $g1_PID &&
	test_grep "\"event\":\"gate.session\"" "$TRASH/g1/gate.log"
'

test_done
