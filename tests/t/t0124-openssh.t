#!/bin/sh
# Grove behind the system's OpenSSH (docs/openssh.md): a real sshd asks
# `grove authorized-keys` about each key and runs `grove shell` as the
# forced command; pushes, clones and deploys go through it on both routes,
# with the gate's access rules and messages.
. "$(dirname "$0")/test-lib.sh"

require_root "sshd's AuthorizedKeysCommand (it runs as a given user)"
SSHD=/usr/sbin/sshd
if ! test -x $SSHD; then
	test -n "${CI:-}" && { echo "Bail out! $SSHD is missing: scripts/install-deps installs openssh-server"; exit 1; }
	skip_all "no $SSHD (scripts/install-deps installs openssh-server)"
fi

# sshd runs an AuthorizedKeysCommand only from a path whose every folder
# is root's and writable by no one else: not under /tmp, where the build
# may be. A wrapper in such a folder runs the grove under test.
start_sshd() {
	safe=$(mktemp -d /run/grove-test-sshd.XXXXXX) && chmod 755 "$safe" &&
	at_exit "rm -rf '$safe'" &&
	printf '#!/bin/sh\nexec "%s" authorized-keys --config "%s" "$@"\n' "$GROVE" "$TRASH/g1/gate.conf" \
		>"$safe/grove-authorized-keys" &&
	chmod 755 "$safe/grove-authorized-keys" &&
	mkdir -p sshd /run/sshd &&
	ssh-keygen -q -t ed25519 -N "" -f sshd/host_key &&
	SSHD_PORT=$(free_port) &&
	cat >sshd/sshd_config <<-EOF &&
	Port $SSHD_PORT
	ListenAddress 127.0.0.1
	HostKey $TRASH/sshd/host_key
	PidFile $TRASH/sshd/sshd.pid
	UsePAM no
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PermitRootLogin prohibit-password
	AuthorizedKeysFile none
	AuthorizedKeysCommand $safe/grove-authorized-keys %u %t %k
	AuthorizedKeysCommandUser root
	AcceptEnv GIT_PROTOCOL
	LogLevel VERBOSE
	EOF
	$SSHD -t -f sshd/sshd_config &&
	run_sshd
}

run_sshd() {
	$SSHD -D -e -f "$TRASH/sshd/sshd_config" >"$TRASH/sshd/sshd.log" 2>&1 &
	record_daemon $!
	wait_for 30 "sshd to listen" ssh-keyscan -p "$SSHD_PORT" 127.0.0.1
}

test_setup 'a store, a gate, an sshd in front of it; alice on a cluster app, bob reads a legacy one' '
	start_store s1 &&
	cat >deploy <<-\EOF &&
	#!/bin/sh
	echo "building $GROVE_APP at $GROVE_NEW for $GROVE_PUSHER"
	echo "$GROVE_APP $GROVE_NEW" >>"$PWD/deployed"
	EOF
	chmod +x deploy &&
	start_gate g1 $s1_ADDR s1 deploy.command=$TRASH/deploy openssh.user=root &&
	new_key alice && new_key bob && new_key mallory &&
	user_app g1 alice web >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"old-web\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/old-web/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	api g1 POST /api/v1/users "{\"name\":\"bob\"}" >out && test_grep "^201$" out &&
	key=$(cat keys/bob.pub) &&
	api g1 POST /api/v1/users/bob/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/old-web/collaborators/bob "{\"access\":\"read\"}" >out && test_grep "^200$" out &&
	start_sshd &&
	URL=ssh://root@127.0.0.1:$SSHD_PORT &&
	make_history src
'

test_expect_success 'authorized-keys: a restricted grove shell line for a known key, nothing for others' '
	set -- $(cat keys/alice.pub) &&
	"$GROVE" authorized-keys -c g1/gate.conf root "$1" "$2" >line &&
	fp=$(ssh-keygen -l -E sha256 -f keys/alice.pub | cut -d" " -f2) &&
	test_grep "^command=\"/[^ ]*grove shell --config /[^ ]*/g1/gate.conf $fp\",restrict $1 $2$" line &&
	test $(wc -l <line) = 1 &&
	"$GROVE" authorized-keys -c g1/gate.conf git "$1" "$2" >other-user &&
	test_must_be_empty other-user &&
	set -- $(cat keys/mallory.pub) &&
	"$GROVE" authorized-keys -c g1/gate.conf root "$1" "$2" >unknown &&
	test_must_be_empty unknown &&
	"$GROVE" authorized-keys -c g1/gate.conf root ssh-ed25519 "not base64" >garbage &&
	test_must_be_empty garbage &&
	wait_grep "\"event\":\"openssh.key_known\".*$fp" g1/openssh.log
'

test_expect_success 'a push through sshd to a cluster app, and a clone of it' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git push -q $URL/web.git main) &&
	GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git clone -q $URL/web.git web-clone &&
	test "$(git -C web-clone rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	wait_grep "\"event\":\"gate.session\".*\"user\":\"alice\".*\"app\":\"web\".*\"command\":\"git-receive-pack\",\"route\":\"cluster\",\"result\":\"ok\"" g1/openssh.log
'

test_expect_success 'a push to a legacy app deploys, its output as remote: lines' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git push $URL/old-web.git main 2>../push.err) &&
	test_grep "^remote: building old-web at $(git -C src rev-parse main) for alice" push.err &&
	test_grep "^old-web $(git -C src rev-parse main)$" g1/deployed &&
	GIT_SSH_COMMAND="$(ssh_as bob $SSHD_PORT)" git clone -q $URL/old-web.git old-clone &&
	test "$(git -C old-clone rev-parse HEAD)" = "$(git -C src rev-parse main)"
'

test_expect_success 'the gate'"'"'s rules hold: a reader cannot push, a stranger sees no app' '
	(cd src && echo more >more && git add more && git commit -q -m more &&
	 test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $SSHD_PORT)" git push $URL/old-web.git main 2>../bob.err) &&
	test_grep "^ERROR: You can fetch old-web but not push to it: ask its owner for write access.$" bob.err &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $SSHD_PORT)" git clone -q $URL/web.git bob-web 2>bob-web.err &&
	test_grep "^ERROR: Repository not found: web. Check the name, or ask its owner for access.$" bob-web.err &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as mallory $SSHD_PORT)" git clone -q $URL/web.git mallory 2>mallory.err &&
	test_grep "Permission denied (publickey)" mallory.err
'

test_expect_success 'megabytes both ways on both routes, and the app'"'"'s size limit holds' '
	(cd src && head -c 6000000 /dev/urandom >big && git add big && git commit -q -m big) &&
	for app in web old-web; do
		(cd src && GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git -c pack.compression=0 push -q $URL/$app.git main) &&
		rm -rf big-$app &&
		GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git clone -q $URL/$app.git big-$app &&
		cmp src/big big-$app/big || return 1
	done &&
	api g1 PATCH /api/v1/apps/web "{\"max_push_mb\":1}" >out && test_grep "\"max_push_mb\":1" out &&
	(cd src && head -c 3000000 /dev/urandom >big2 && git add big2 && git commit -q -m big2 &&
	 test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git -c pack.compression=0 \
		push $URL/web.git main 2>../toobig.err) &&
	test_grep "^ERROR: This push sent .* MiB; web accepts at most 1 MiB: git refused the pack and nothing of it was kept" toobig.err &&
	GIT_SSH_COMMAND="$(ssh_as alice $SSHD_PORT)" git ls-remote $URL/web.git main >after &&
	test_grep "^$(git -C src rev-parse main~1)" after
'

test_expect_success 'no shell, no other command, no pty: the greeting or one line of why' '
	test_expect_code 1 $(ssh_as alice $SSHD_PORT) root@127.0.0.1 </dev/null >greet.out 2>greet.err &&
	test_grep "^Hi alice! You.ve successfully authenticated, but Grove does not provide shell access.$" greet.out &&
	test_grep "^You can push to: " greet.out &&
	test_must_fail $(ssh_as alice $SSHD_PORT) root@127.0.0.1 "cat /etc/passwd" </dev/null >cmd.out 2>cmd.err &&
	test_must_be_empty cmd.out &&
	test_grep "^ERROR: Grove only runs git-upload-pack, git-receive-pack and git-upload-archive" cmd.err &&
	test_must_fail $(ssh_as alice $SSHD_PORT) -N -R 127.0.0.1:$(free_port):127.0.0.1:$SSHD_PORT root@127.0.0.1 \
		-o ExitOnForwardFailure=yes </dev/null 2>fwd.err &&
	test_grep "remote port forwarding failed" fwd.err
'

test_expect_success 'the gate'"'"'s /metrics counts what came through sshd (nothing came through its own port)' '
	curl -sf "$g1_ADMIN/metrics" >metrics &&
	test_grep "^grove_gate_sessions_total{command=\"git-receive-pack\",result=\"ok\"} [1-9]" metrics &&
	test_grep "^grove_gate_sessions_total{command=\"git-receive-pack\",result=\"refused\"} [1-9]" metrics &&
	test_grep "^grove_gate_sessions_total{command=\"git-upload-pack\",result=\"ok\"} [1-9]" metrics &&
	test_grep "^grove_gate_bytes_pushed_total [1-9][0-9]\{6\}" metrics &&
	test_grep "^grove_gate_push_refusals_total{reason=\"access\"} [1-9]" metrics &&
	test_grep "^grove_gate_push_refusals_total{reason=\"too_large\"} [1-9]" metrics
'

test_expect_success 'a key removed after sshd let it in: grove shell refuses it, in the user'"'"'s words' '
	fp=$(ssh-keygen -l -E sha256 -f keys/mallory.pub | cut -d" " -f2) &&
	test_expect_code 1 env SSH_ORIGINAL_COMMAND="git-upload-pack '"'"'web.git'"'"'" \
		"$GROVE" shell -c g1/gate.conf "$fp" </dev/null >shell.out 2>shell.err &&
	test_must_be_empty shell.out &&
	test_grep "^ERROR: This key ($fp) is not registered with Grove (any more): connect with a key that is.$" shell.err &&
	! grep -e "$TRASH" -e sqlite shell.err
'

test_expect_success 'a broken setup tells the user to ask the operators, and the log why' '
	test_expect_code 1 env SSH_ORIGINAL_COMMAND="git-upload-pack web.git" \
		"$GROVE" shell -c "$TRASH/nowhere.conf" SHA256:x </dev/null >broken.out 2>broken.err &&
	test_grep "^ERROR: Grove is not set up right on this server: tell the platform.s operators.$" broken.err &&
	! grep "$TRASH" broken.err
'

test_done
