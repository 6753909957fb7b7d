#!/bin/sh
# The gate's SSH door refuses everything but the three git commands on a
# valid app name, for a key it knows, and stays up whatever is thrown at it.
. "$(dirname "$0")/test-lib.sh"

# listen_on PORT FILE: a listener on 127.0.0.1:PORT that appends a line to
# FILE for each connection it accepts, so that a forward that reached it
# shows; returns once it listens. Its pid in $listener (stopped with the
# daemons at the end, whatever happens).
listen_on() {
	perl -MIO::Socket::INET -e '
		my ($port, $file) = @ARGV;
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port,
			Listen => 5, ReuseAddr => 1) or die "listen $port: $!";
		open(my $r, ">", "$file.ready") or die; close $r;
		while (my $c = $s->accept) { open(my $f, ">>", $file) or die; print $f "connection\n"; close $f; close $c }
	' "$1" "$2" &
	listener=$!
	record_daemon $listener
	wait_for 20 "the listener on $1 to listen" listening "$2.ready" $listener
}

# listening READY PID: READY exists; 125 (give up) once PID has exited.
listening() {
	test -e "$1" && return 0
	kill -0 "$2" 2>/dev/null || return 125
	return 1
}

# greets_alice: the gate g1 lets alice in and greets her.
greets_alice() {
	$(ssh_as alice $g1_SSH_PORT) git@127.0.0.1 </dev/null 2>&1 | grep -q "^Hi alice"
}

test_setup 'a gate with one user and one app' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 gate.maxStartups=20 &&
	new_key alice &&
	user_app g1 alice web &&
	SSH="$(ssh_as alice $g1_SSH_PORT) git@127.0.0.1" &&
	UPLOAD_WEB="git-upload-pack '"'"'web.git'"'"'" &&
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
	test_must_fail $SSH -tt "$UPLOAD_WEB" </dev/null >out 2>err &&
	test_grep "^PTY allocation request failed on channel 0" err &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"pty\"" "$TRASH/g1/gate.log"
'

test_expect_success 'a subsystem request (sftp) is refused' '
	test_expect_code 255 $SSH -s sftp </dev/null >out 2>err &&
	test_grep "^subsystem request failed on channel 0" err &&
	test ! -s out &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"subsystem\"" "$TRASH/g1/gate.log"
'

# The client reports a refused forward only at info level: hence -v, which
# also overrides ssh_as's LogLevel=ERROR.
test_expect_success 'local port forwarding (-L) is refused: nothing reaches the target' '
	target=$(free_port) && lport=$(free_port) &&
	listen_on $target hits
	$SSH -v -N -o ExitOnForwardFailure=yes -L $lport:127.0.0.1:$target </dev/null 2>fwd.err &
	client=$!
	record_daemon $client &&
	wait_grep "Local forwarding listening on 127.0.0.1 port $lport" fwd.err &&
	# Connect through the forward and wait until ssh closes it.
	perl -MIO::Socket::INET -e "alarm $((30 * TEST_SCALE)); my \$c = IO::Socket::INET->new(q(127.0.0.1:$lport)) or die; sysread(\$c, my \$b, 1)" &&
	wait_grep "open failed: administratively prohibited" fwd.err &&
	kill $client $listener &&
	test ! -e hits &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"port forwarding\"" "$TRASH/g1/gate.log"
'

test_expect_success 'remote port forwarding (-R) is refused' '
	rport=$(free_port) &&
	# Bounded: a gate that accepted would keep this -N client connected.
	test_expect_code 255 timeout $((60 * TEST_SCALE)) $SSH -N -o ExitOnForwardFailure=yes -R $rport:127.0.0.1:1 </dev/null 2>err &&
	test_grep "remote port forwarding failed for listen port $rport" err &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"remote port forwarding\"" "$TRASH/g1/gate.log"
'

# printf 0000: a flush-pkt, upload-pack is asked for nothing and exits 0, so
# the git command runs to its end beside the refused request.
test_expect_success 'X11 forwarding is refused; the git command runs on without it' '
	# -Y (trusted): without an X server ssh still asks, with fake data.
	printf 0000 | DISPLAY=127.0.0.1:0 $SSH -Y "$UPLOAD_WEB" >out 2>err &&
	test_grep "^X11 forwarding request failed on channel 0" err &&
	test_grep "refs/heads/main" out &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"x11 forwarding\"" "$TRASH/g1/gate.log"
'

test_expect_success 'agent forwarding gives the session no agent' '
	# OpenSSH asks for it without wanting an answer, so the client is never
	# told; what would show is the gate opening an agent channel back.
	eval "$(ssh-agent -s)" >/dev/null &&
	record_daemon $SSH_AGENT_PID &&
	printf 0000 | $SSH -v -A "$UPLOAD_WEB" >out 2>err &&
	kill $SSH_AGENT_PID &&
	test_grep "Requesting authentication agent forwarding" err &&
	test_grep "refs/heads/main" out &&
	! grep "auth-agent@openssh.com" err &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"agent forwarding\"" "$TRASH/g1/gate.log"
'

test_expect_success 'environment other than GIT_PROTOCOL is refused; the locale without a log line' '
	$SSH -o "SetEnv=LD_PRELOAD=/tmp/evil.so GIT_CONFIG_COUNT=1 LANG=C.UTF-8 LC_ALL=C" "git-upload-pack '"'"'web.git'"'"'" </dev/null >out 2>err || true
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"env\".*\"name\":\"LD_PRELOAD\"" "$TRASH/g1/gate.log" &&
	test_grep "\"name\":\"GIT_CONFIG_COUNT\"" "$TRASH/g1/gate.log" &&
	! grep "\"name\":\"LANG\"" "$TRASH/g1/gate.log" &&
	! grep "\"name\":\"LC_ALL\"" "$TRASH/g1/gate.log"
'

test_expect_success 'GIT_PROTOCOL=version=2 is taken, version=3 and version=0 are refused' '
	refusals() { grep -c "\"what\":\"env\",\"name\":\"GIT_PROTOCOL\"" "$TRASH/g1/gate.log" || true; } &&
	n0=$(refusals) &&
	printf 0000 | $SSH -o SetEnv=GIT_PROTOCOL=version=2 "$UPLOAD_WEB" >v2.out 2>err &&
	test_grep "^000eversion 2$" v2.out &&
	test "$(refusals)" = $n0 &&
	# git would ignore these values itself: the log says the gate refused
	# them, and the command runs on in protocol v0.
	for v in 3 0; do
		printf 0000 | $SSH -o SetEnv=GIT_PROTOCOL=version=$v "$UPLOAD_WEB" >v$v.out 2>err &&
		test_grep "refs/heads/main" v$v.out &&
		! grep "version 2" v$v.out || return 1
	done &&
	test "$(refusals)" = $((n0 + 2))
'

# The session is cut by the gate alone: the client's stdin stays open (and
# silent) until the test ends it. idleTimeout is long enough for the refs
# to come first on a busy machine (scaled), and the message names it.
test_expect_success 'a session silent for gate.idleTimeout seconds is ended' '
	idle=$((4 * TEST_SCALE)) &&
	start_gate g3 $s1_ADDR s1 gate.idleTimeout=$idle &&
	user_app g3 alice web &&
	mkfifo idle.in
	sleep 3600 >idle.in &
	holder=$!
	record_daemon $holder
	start=$(ms)
	(rc=0; $(ssh_as alice $g3_SSH_PORT) git@127.0.0.1 "$UPLOAD_WEB" <idle.in >idle.out 2>idle.err || rc=$?
	 echo $rc >idle.rc) &
	wait_for 60 "the gate to end the idle session" test -s idle.rc &&
	elapsed=$(($(ms) - start)) &&
	# Still holding the client'"'"'s stdin open: no EOF ended the session.
	kill $holder &&
	echo "session ended after $elapsed ms, exit $(cat idle.rc)" &&
	test "$(cat idle.rc)" != 0 &&
	test $elapsed -ge $((idle * 1000 - 500)) &&
	test_grep "refs/heads/main" idle.out &&
	test_grep "^ERROR: Nothing came or went for $idle s: Grove closed the session (gate.idleTimeout)." idle.err &&
	wait_grep "\"event\":\"gate.idle_timeout\".*\"user\":\"alice\"" "$TRASH/g3/gate.log"
'

test_expect_success 'one session per connection: a second one over a ControlMaster is refused' '
	sock=$TRASH/cm-alice &&
	$(ssh_as alice $g1_SSH_PORT) -o ControlMaster=yes -o ControlPath=$sock -o ControlPersist=no \
		-N -f git@127.0.0.1 &&
	# ProxyCommand=false: a refused mux session must not fall back to a
	# connection of its own.
	mux="ssh -o ControlPath=$sock -o ControlMaster=no -o BatchMode=yes -o ProxyCommand=false git@127.0.0.1" &&
	mkfifo first.in
	# The first session stays open until "release" exists, then asks for
	# nothing (a flush-pkt) and ends well.
	(wait_for 300 "the test to release the first session" test -e release; printf 0000) >first.in &
	(rc=0; $mux "$UPLOAD_WEB" <first.in >first.out 2>first.err || rc=$?; echo $rc >first.rc) &
	wait_grep refs/heads/main first.out &&
	test_expect_code 255 $mux "$UPLOAD_WEB" </dev/null >second.out 2>second.err &&
	test_grep "session request failed: Session open refused by peer" second.err &&
	test ! -s second.out &&
	wait_grep "\"event\":\"gate.refused\".*\"what\":\"second session\"" "$TRASH/g1/gate.log" &&
	touch release &&
	wait_for 20 "the first session to end" test -s first.rc &&
	test "$(cat first.rc)" = 0 &&
	: the gate hangs up once the channel is closed on both sides, so the &&
	: master may be gone already &&
	{ ssh -o ControlPath=$sock -O exit git@127.0.0.1 2>/dev/null || :; }
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

# The flood holds its connections until the test saw the gate refuse
# some (up to 10 minutes), then ends.
test_expect_success 'many unauthenticated connections at once leave the gate serving' '
	perl -MIO::Socket::INET -e "
		my @s; for (1..200) { my \$c = IO::Socket::INET->new(PeerAddr => q(127.0.0.1:$g1_SSH_PORT)); push @s, \$c if \$c; }
		print scalar(@s), qq( opened\n);
		for (1..6000) { last if -e q(flood.release); select(undef, undef, undef, 0.1) }" &
	flood=$!
	seen=0
	wait_grep "gate.too_many" "$TRASH/g1/gate.log" || seen=1
	touch flood.release &&
	wait $flood &&
	test $seen = 0 &&
	# The flood ends with it: its slots free as the processes that held
	# them see the close and exit (slower under sanitizers).
	wait_for 30 "the gate to let alice in again" greets_alice &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git after &&
	test -e after/file1.txt
'

# early_drops: how many connections g14 dropped early so far.
early_drops() {
	grep -c "\"event\":\"gate.early_drop\"" "$TRASH/g14/gate.log" || true
}

test_setup 'a gate with random early drop from 2 unauthenticated connections (2:50:100)' '
	start_gate g14 $s1_ADDR s1 gate.maxStartups=2:50:100 &&
	new_key dora && user_app g14 dora dapp >/dev/null
'

test_expect_success 'a wrong maxStartups is refused with what it must be' '
	cp g14/gate.conf g14/bad.conf && git config -f g14/bad.conf gate.maxStartups 5:200:10 &&
	test_must_fail "$GROVE" gate -c g14/bad.conf --check-config 2>err &&
	test_grep "gate.maxStartups must be N (1 to 100000) or START:RATE:FULL" err
'

# The flood holds its connections until released (up to 10 minutes).
test_expect_success 'past START, new unauthenticated connections are dropped at random, not all; a user gets in' '
	perl -MIO::Socket::INET -e "
		my @s; for (1..60) { my \$c = IO::Socket::INET->new(PeerAddr => q(127.0.0.1:$g14_SSH_PORT)); push @s, \$c if \$c; select(undef, undef, undef, 0.01); }
		for (1..6000) { last if -e q(flood14.release); select(undef, undef, undef, 0.1) }" &
	flood=$!
	: 58 connections come past START: at least half are dropped, not all &&
	seen=0
	wait_for 60 "the gate to drop some early" eval "test \$(early_drops) -ge 10" || seen=1
	touch flood14.release && wait $flood &&
	test $seen = 0 &&
	drops=$(early_drops) && echo "# early drops: $drops of 58" >&2 &&
	test $drops -lt 58 &&
	test_must_fail grep -q "\"event\":\"gate.too_many\"" g14/gate.log &&
	wait_for 30 "dora to be let in" eval "\$(ssh_as dora $g14_SSH_PORT) git@127.0.0.1 </dev/null 2>&1 | grep -q \"^Hi dora\""
'

test_expect_success 'a client that does not authenticate within the grace time is cut off' '
	start_gate g2 $s1_ADDR s1 gate.loginGraceTime=1 &&
	perl -MIO::Socket::INET -e "
		\$SIG{ALRM} = sub { print qq(still open\\n); exit 1 }; alarm $((30 * TEST_SCALE));
		my \$c = IO::Socket::INET->new(PeerAddr => q(127.0.0.1:$g2_SSH_PORT)) or die q(connect);
		my \$banner = <\$c>; print \$banner;
		while (sysread(\$c, my \$buf, 4096)) {}
		print qq(closed\\n);" >grace.out &&
	test_grep "^SSH-2.0-Grove" grace.out &&
	! grep -i "libssh" grace.out &&
	test_grep "^closed" grace.out
'

# hold_admin PORT N FILE: N connections to the admin port from 127.0.0.2,
# each sending half a request's headers and then nothing; FILE says how many
# the gate closed ("closed K") each time that changes. Runs until stopped.
hold_admin() {
	perl -MIO::Socket::INET -MIO::Select -e '
		my ($port, $n, $file) = @ARGV;
		my $sel = IO::Select->new;
		for (1 .. $n) {
			my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, LocalAddr => "127.0.0.2")
				or next;
			print $c "GET /api/v1/apps HTTP/1.1\r\nHost: x\r\nX-Slow: ";
			$sel->add($c);
		}
		my $closed = 0;
		while (1) {
			open(my $f, ">", "$file.tmp") or die; print $f "closed $closed\n"; close $f; rename "$file.tmp", $file;
			for my $c ($sel->can_read(60)) {
				my $got = sysread($c, my $buf, 4096);
				next if $got;
				$sel->remove($c); close $c; $closed++;
			}
		}
	' "$@" &
	record_daemon $!
}

test_expect_success 'connections held open on the admin port take one address'"'"'s share only' '
	start_gate g5 $s1_ADDR s1 gate.adminMaxPerAddress=4 gate.adminTimeout=600 gate.adminRequestTimeout=600 &&
	port=${g5_ADMIN##*:} &&
	hold_admin $port 10 held &&
	wait_for 30 "the gate to close the 6 connections over the share" eval "grep -q \"^closed 6$\" held" &&
	: another address is served while the 4 are held &&
	curl -sf --max-time $((60 * TEST_SCALE)) "$g5_ADMIN/health" >health &&
	api g5 GET /api/v1/apps >out && test_grep "^200$" out &&
	: the same address is not, until its connections end &&
	test_must_fail curl -sf --max-time $((60 * TEST_SCALE)) --interface 127.0.0.2 "$g5_ADMIN/health" &&
	test_grep "^closed 6$" held
'

# trickle_admin PORT FILE: in the background, a request to the admin port
# whose headers come a byte every 0.2 s, never silent for long; FILE says
# "cut after N bytes" once the gate ends the connection.
trickle_admin() {
	perl -MIO::Socket::INET -MIO::Select -e '
		my ($port, $file, $limit) = @ARGV;
		$SIG{ALRM} = sub { print "still open\n"; exit 1 }; alarm $limit;
		my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port) or die "connect: $!";
		print $c "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
		my $sel = IO::Select->new($c);
		my $sent = 0;
		while (1) {
			if ($sel->can_read(0.2)) { last unless sysread($c, my $buf, 4096); }
			last unless syswrite($c, "x");
			$sent++;
		}
		open(my $f, ">", "$file.tmp") or die; print $f "cut after $sent bytes\n"; close $f;
		rename "$file.tmp", $file;
	' "$1" "$2" $((60 * TEST_SCALE)) &
	record_daemon $!
}

test_expect_success 'a request trickled to the admin port byte by byte is cut at gate.adminRequestTimeout; others are served' '
	start_gate g15 $s1_ADDR s1 gate.adminTimeout=600 gate.adminRequestTimeout=2 &&
	trickle_admin ${g15_ADMIN##*:} trickle.out &&
	curl -sf --max-time $((60 * TEST_SCALE)) "$g15_ADMIN/health" >health &&
	wait_for 60 "the gate to cut the trickled request" test -s trickle.out &&
	test_grep "^cut after [0-9]* bytes" trickle.out &&
	wait_grep "\"event\":\"admin.request_timeout\".*\"peer\":\"127.0.0.1\".*\"timeout_s\":2" g15/gate.log &&
	: a request that comes whole is served &&
	api g15 GET /api/v1/apps >out && test_grep "^200$" out
'

# banner_from FROM PORT: what the gate says first to a connection from FROM:
# its banner, or "closed".
banner_from() {
	perl -MIO::Socket::INET -e '
		my ($from, $port) = @ARGV;
		my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, LocalAddr => $from) or die "connect: $!";
		my $line = <$c>;
		print defined $line ? $line : "closed\n";
	' "$@"
}

test_expect_success 'one client address holds gate.maxConnectionsPerAddress SSH connections, not all' '
	start_gate g6 $s1_ADDR s1 gate.maxConnectionsPerAddress=3 gate.loginGraceTime=600 &&
	hold_ssh 127.0.0.2 $g6_SSH_PORT 3 held3 &&
	wait_for 30 "three connections from 127.0.0.2 to get the banner" test -e held3 &&
	banner_from 127.0.0.2 $g6_SSH_PORT >fourth &&
	test_grep "^closed$" fourth &&
	banner_from 127.0.0.1 $g6_SSH_PORT >other &&
	test_grep "^SSH-2.0-" other &&
	wait_grep "\"event\":\"gate.too_many_from\".*\"peer\":\"127.0.0.2:" g6/gate.log
'

test_expect_success 'gate.publicListen serves probes, metrics and archives there, never the admin API' '
	pub=127.0.0.1:$(free_port) &&
	start_gate g7 $s1_ADDR s1 gate.publicListen=$pub &&
	wait_for 30 "the public listener" curl -sf "http://$pub/health" &&
	curl -sf "http://$pub/ready" >ready && test_grep "\"ready\":true" ready &&
	curl -sf "http://$pub/metrics" >m && test_grep "^grove_gate_sessions_total" m &&
	curl -s -o body -w "%{http_code}\n" -H "Authorization: Bearer $g7_TOKEN" "http://$pub/api/v1/apps" >code &&
	test_grep "^404$" code &&
	test_grep "the admin API is not served on this address (gate.publicListen)" body &&
	api g7 GET /api/v1/apps >out && test_grep "^200$" out
'

test_expect_success 'gate.maxOpsPerApp: a command over an app'"'"'s share waits, then is refused; other apps go on' '
	start_gate g8 $s1_ADDR s1 gate.maxOpsPerApp=1 gate.opsQueueWait=1 &&
	user_app g8 alice busy &&
	api g8 POST /api/v1/apps "{\"name\":\"calm\",\"route\":\"cluster\"}" >out && test_grep "^201$" out &&
	api g8 PUT /api/v1/apps/calm/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	make_history h8 &&
	for a in busy calm; do
		(cd h8 && GIT_SSH_COMMAND="$(ssh_as alice $g8_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g8_SSH_PORT/$a.git main) ||
			return 1
	done &&
	: a fetch that took the one slot of busy and waits for its client &&
	mkfifo hold.in &&
	{ $(ssh_as alice $g8_SSH_PORT) git@127.0.0.1 "git-upload-pack '"'"'busy.git'"'"'" <hold.in >hold.out 2>hold.err & } &&
	exec 7>hold.in &&
	wait_for 30 "the held fetch to get its advertisement" test -s hold.out &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g8_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g8_SSH_PORT/busy.git 2>busy.err &&
	test_grep "busy is busy (1 git operations running): waiting up to 1s" busy.err &&
	test_grep "ERROR: busy had 1 git operations running and none ended within 1s: try again in a minute." busy.err &&
	GIT_SSH_COMMAND="$(ssh_as alice $g8_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g8_SSH_PORT/calm.git >calm.ls &&
	test_grep "refs/heads/main$" calm.ls &&
	: the held fetch ends: the slot is free again &&
	exec 7>&- &&
	wait_grep "\"event\":\"gate.session\".*\"app\":\"busy\",\"command\":\"git-upload-pack\".*\"result\":\"failed\|\"event\":\"gate.session\".*\"app\":\"busy\",\"command\":\"git-upload-pack\".*\"result\":\"ok" g8/gate.log &&
	GIT_SSH_COMMAND="$(ssh_as alice $g8_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g8_SSH_PORT/busy.git >busy.ls &&
	test_grep "refs/heads/main$" busy.ls &&
	curl -sf "$g8_ADMIN/metrics" >m &&
	test_grep "^grove_gate_push_refusals_total{reason=\"busy\"} 1$" m &&
	test_grep "^grove_gate_queue_wait_seconds_count" m
'

test_expect_success 'gate.maxOpsPerUser: a user over their share waits, then is refused; another user goes on' '
	start_gate g12 $s1_ADDR s1 gate.maxOpsPerUser=1 gate.opsQueueWait=1 &&
	new_key carol &&
	user_app g12 alice one &&
	user_app g12 carol two &&
	api g12 POST /api/v1/apps "{\"name\":\"other\",\"route\":\"cluster\"}" >out && test_grep "^201$" out &&
	api g12 PUT /api/v1/apps/other/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	api g12 PUT /api/v1/apps/one/collaborators/carol "{\"access\":\"read\"}" >out && test_grep "^200$" out &&
	make_history h12 &&
	(cd h12 && GIT_SSH_COMMAND="$(ssh_as alice $g12_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g12_SSH_PORT/one.git main) &&
	: a fetch of alice that holds her one slot, waiting for its client &&
	mkfifo hold12.in &&
	{ $(ssh_as alice $g12_SSH_PORT) git@127.0.0.1 "git-upload-pack '"'"'one.git'"'"'" <hold12.in >hold12.out 2>hold12.err & } &&
	exec 8>hold12.in &&
	wait_for 30 "the held fetch to get its advertisement" test -s hold12.out &&
	: another app of hers: refused, it is her share that is used up &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g12_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g12_SSH_PORT/other.git 2>user.err &&
	test_grep "alice has 1 git operations running, the most one user may: waiting up to 1s" user.err &&
	test_grep "ERROR: alice had 1 git operations running and none ended within 1s" user.err &&
	: carol, on the same app alice holds, is served &&
	GIT_SSH_COMMAND="$(ssh_as carol $g12_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g12_SSH_PORT/one.git >carol.ls &&
	test_grep "refs/heads/main$" carol.ls &&
	exec 8>&- &&
	wait_grep "\"event\":\"gate.session\".*\"user\":\"alice\",.*\"app\":\"one\",\"command\":\"git-upload-pack\"" g12/gate.log &&
	: her slot is free again &&
	GIT_SSH_COMMAND="$(ssh_as alice $g12_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g12_SSH_PORT/one.git >/dev/null &&
	curl -sf "$g12_ADMIN/metrics" >m &&
	test_grep "^grove_gate_push_refusals_total{reason=\"user_busy\"} 1$" m
'

test_expect_success 'gate.pushesPerMinute: a user over it is refused with when to push again; fetches go on' '
	start_gate g9 $s1_ADDR s1 gate.pushesPerMinute=1 &&
	user_app g9 alice rated &&
	make_history h9 &&
	url=ssh://git@127.0.0.1:$g9_SSH_PORT/rated.git &&
	(cd h9 && GIT_SSH_COMMAND="$(ssh_as alice $g9_SSH_PORT)" git push -q $url main) &&
	(cd h9 && echo more >more && git add more && git commit -q -m more &&
		test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g9_SSH_PORT)" git push $url main 2>../rate.err) &&
	test_grep "^ERROR: alice has pushed 1 times in the last minute, the most this platform takes: push again in [0-9]* s.$" rate.err &&
	GIT_SSH_COMMAND="$(ssh_as alice $g9_SSH_PORT)" git ls-remote $url >ls &&
	test "$(grep refs/heads/main ls | cut -f1)" != "$(git -C h9 rev-parse main)" &&
	curl -sf "$g9_ADMIN/metrics" >m &&
	test_grep "^grove_gate_push_refusals_total{reason=\"rate\"} 1$" m
'

test_expect_success 'a push whose ref list outgrows gate.maxRefListSize is cut off in the gate; nothing is pushed' '
	start_gate g10 $s1_ADDR s1 gate.maxRefListSize=64k &&
	user_app g10 alice many &&
	make_history h10 &&
	url=ssh://git@127.0.0.1:$g10_SSH_PORT/many.git &&
	(cd h10 && GIT_SSH_COMMAND="$(ssh_as alice $g10_SSH_PORT)" git push -q $url main &&
		for i in $(seq 2000); do echo "create refs/tags/a-rather-long-tag-name-$i HEAD"; done | git update-ref --stdin &&
		test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g10_SSH_PORT)" git push $url "refs/tags/*" 2>../many.err) &&
	test_grep "ERROR: This push updates more refs at once than many takes (its list of refs is over 64 KiB): nothing was pushed." many.err &&
	GIT_SSH_COMMAND="$(ssh_as alice $g10_SSH_PORT)" git ls-remote $url >ls &&
	! grep refs/tags/ ls &&
	: the same in batches goes through &&
	(cd h10 && GIT_SSH_COMMAND="$(ssh_as alice $g10_SSH_PORT)" git push -q $url \
		$(for i in $(seq 10); do echo refs/tags/a-rather-long-tag-name-$i; done)) &&
	GIT_SSH_COMMAND="$(ssh_as alice $g10_SSH_PORT)" git ls-remote $url >ls &&
	test $(grep -c refs/tags/ ls) = 10
'

test_expect_success 'the gate is still up and every session was logged' '
	kill -0 $g1_PID &&
	wait_grep "\"event\":\"gate.session\"" "$TRASH/g1/gate.log"
'

test_done
