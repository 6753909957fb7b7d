#!/bin/sh
# A push whose client goes away leaves the repository as it was; SIGTERM
# lets a push in flight finish within the grace period (new calls are
# refused meanwhile, saying why), then stops.
. "$(dirname "$0")/test-lib.sh"

# held_connect: a GIT_SSH_COMMAND that passes the first $HOLD_BYTES bytes of
# git's data to grove connect, creates the file $TRASH/held, and holds the
# rest until the file $TRASH/release exists (the test says when, not the
# clock; or until $TRASH/held is gone, or 10 minutes, after a failed test).
# It writes grove connect's pid to $HOLD_PIDFILE.
write_held_connect() {
	cat >"$TRASH/held-connect" <<-\EOF
	#!/bin/sh
	test "$1" = -G && exit 0
	# An asynchronous list reads /dev/null unless told otherwise.
	exec 3<&0
	HOLD_MARK=__TRASH__/held HOLD_UNTIL=__TRASH__/release perl -e '
		$| = 1; my ($n, $left, $buf) = ($ENV{HOLD_BYTES}, $ENV{HOLD_BYTES}, "");
		while ($left > 0) { my $r = sysread(STDIN, $buf, $left > 65536 ? 65536 : $left); last if !$r; syswrite(STDOUT, $buf); $left -= $r; }
		open(my $m, ">", $ENV{HOLD_MARK}) and close($m);
		for (1 .. 6000) { last if -e $ENV{HOLD_UNTIL} || !-e $ENV{HOLD_MARK}; select(undef, undef, undef, 0.1); }
		while (sysread(STDIN, $buf, 65536)) { syswrite(STDOUT, $buf); }
	' <&3 | "$GROVE" connect "$HOLD_ADDR" "$@" &
	echo $! >"$HOLD_PIDFILE"
	wait $!
	EOF
	sed -i "s|__TRASH__|$TRASH|g" "$TRASH/held-connect" &&
	chmod +x "$TRASH/held-connect"
}

# holding REPO [quarantine]: a push through held-connect is held mid-pack:
# its first bytes passed and receive-pack of REPO running (and, with
# "quarantine", receiving the pack into its quarantine directory).
holding() {
	test -s pid && test -e held && pgrep -f "receive-pack $1" >/dev/null || return 1
	test "${2:-}" != quarantine || ls "$1/objects" | grep -q incoming
}

test_setup 'a store, a repository and a big commit to push' '
	start_store s1 &&
	create_repo $s1_ADDR s1 app.git &&
	make_history src &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main) &&
	(cd src && head -c 8000000 /dev/urandom >blob && git add blob && git commit -q -m big) &&
	write_held_connect
'

test_expect_success 'killing the client mid-pack leaves refs unchanged and git gone' '
	before=$(checksum $s1_ADDR s1 app.git) &&
	repo=$(ls -d "$TRASH"/s1/repositories/@hashed/*/*/*.git) &&
	rm -f pid held release &&
	(cd src && HOLD_ADDR=$s1_ADDR HOLD_BYTES=500000 HOLD_PIDFILE=$TRASH/pid \
		GIT_SSH_COMMAND="$TRASH/held-connect" git push ssh://s1/app.git main >../push.out 2>&1 &) &&
	wait_for 30 "the push to be held mid-pack, receive-pack receiving it" holding "$repo" quarantine &&
	pgrep -f "receive-pack $repo" &&
	kill -9 $(cat pid) &&
	wait_for 30 "receive-pack to end once its client is gone" eval "! pgrep -f \"receive-pack $repo\"" &&
	test_must_fail pgrep -f "receive-pack $repo" &&
	touch release &&
	test "$before" = "$(checksum $s1_ADDR s1 app.git)" &&
	wait_for_log s1 "\"event\":\"ssh.push\".*\"bytes_in\":[1-9][0-9]*.*\"cancelled\":true" &&
	test -z "$(ls "$repo/objects" | grep incoming)"
'

test_expect_success 'a client that closes its stream mid-pack changes nothing either' '
	before=$(checksum $s1_ADDR s1 app.git) &&
	cat >cut-connect <<-EOF &&
	#!/bin/sh
	head -c 300000 | "$GROVE" connect $s1_ADDR "\$@"
	EOF
	chmod +x cut-connect &&
	(cd src && test_must_fail env GIT_SSH_COMMAND="$TRASH/cut-connect" git push ssh://s1/app.git main 2>../err) &&
	test "$before" = "$(checksum $s1_ADDR s1 app.git)"
'

test_expect_success 'the push goes through afterwards' '
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main) &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git refs/heads/main >ls &&
	test_grep $(git -C src rev-parse main) ls
'

test_expect_success 'SIGTERM lets a push in flight finish, then the store exits' '
	(cd src && echo 1 >next && git add next && git commit -q -m next && head -c 3000000 /dev/urandom >blob2 &&
	 git add blob2 && git commit -q -m blob2) &&
	rm -f pid held release &&
	(set +e; cd src && HOLD_ADDR=$s1_ADDR HOLD_BYTES=200000 HOLD_PIDFILE=$TRASH/pid \
		GIT_SSH_COMMAND="$TRASH/held-connect" git push ssh://s1/app.git main >../push2.out 2>&1; echo $? >../push2.rc) &
	repo=$(ls -d "$TRASH"/s1/repositories/@hashed/*/*/*.git) &&
	wait_for 30 "the push to be held mid-pack" holding "$repo" &&
	pgrep -f "receive-pack $repo" &&
	kill -TERM $s1_PID &&
	: the store drains with the push in flight, then the push goes on &&
	wait_for_log s1 "\"event\":\"store.draining\".*\"inflight\":[1-9]" &&
	: a new call meanwhile is refused, and says why, while the push goes on on its open connection &&
	test_must_fail git_on $s1_ADDR ls-remote ssh://s1/app.git 2>refused.err &&
	test_grep "store is stopping (a restart or an upgrade): retry in a moment" refused.err &&
	touch release &&
	wait_for 60 "the push to end" test -s push2.rc &&
	cat push2.out &&
	test "$(cat push2.rc)" = 0 &&
	wait_for 30 "store s1 to exit" gone $s1_PID &&
	test_grep "store.draining" "$TRASH/s1/store.log" &&
	test_grep "store.stopped" "$TRASH/s1/store.log"
'

test_expect_success 'after a restart the pushed commit is there' '
	restart_store s1 &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git refs/heads/main >ls &&
	test_grep $(git -C src rev-parse main) ls &&
	stop_store s1
'

test_expect_success 'past the grace period a held push is cancelled and changes nothing' '
	git config -f "$TRASH/s1/store.conf" store.shutdownGrace 1 &&
	restart_store s1 &&
	before=$(checksum $s1_ADDR s1 app.git) &&
	(cd src && echo 2 >next && git commit -q -am next2 && head -c 3000000 /dev/urandom >blob3 &&
	 git add blob3 && git commit -q -m blob3) &&
	rm -f pid held release &&
	(cd src && HOLD_ADDR=$s1_ADDR HOLD_BYTES=200000 HOLD_PIDFILE=$TRASH/pid \
		GIT_SSH_COMMAND="$TRASH/held-connect" git push ssh://s1/app.git main >../push3.out 2>&1 &) &&
	repo=$(ls -d "$TRASH"/s1/repositories/@hashed/*/*/*.git) &&
	wait_for 30 "the push to be held mid-pack" holding "$repo" &&
	pgrep -f "receive-pack $repo" &&
	: held until the store is gone: past any grace period &&
	stop_store s1 &&
	touch release &&
	test_grep "rpc.drain_cancel" "$TRASH/s1/store.log" &&
	restart_store s1 &&
	test "$before" = "$(checksum $s1_ADDR s1 app.git)" &&
	stop_store s1
'

test_done
