#!/bin/sh
# A client whose ssh stops answering while its machine and network are fine
# (the process stopped or hung; or any client behind a load balancer, which
# answers TCP probes itself): the kernel still acks, so TCP keepalive sees
# nothing wrong. The gate's keepalive@openssh.com requests
# (gate.clientAliveInterval) go unanswered and the session ends in seconds;
# without them it would wait for gate.idleTimeout. While the sessions run,
# /metrics counts them in flight.
. "$(dirname "$0")/test-lib.sh"

# session_ended GATE: the gate logged the end of alice's upload-pack session.
session_ended() {
	grep -q '"event":"gate.session".*"user":"alice".*"command":"git-upload-pack"' "$TRASH/$1/gate.log"
}

# idle_fetch GATE PORT: an upload-pack session that reads the refs and then
# waits: its stdin is a FIFO it holds open itself (opened read-write), so it
# stays open and silent for as long as the client runs, whatever the clock.
# Its output in GATE.out, its stderr (DEBUG1: a line for each request of the
# gate it answers) in GATE.err, the ssh client's pid in GATE.pid.
idle_fetch() {
	mkfifo "$TRASH/$1.in" &&
	ssh -i "$TRASH/keys/alice" -p $2 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=DEBUG1 -o BatchMode=yes -o ServerAliveInterval=0 \
		git@127.0.0.1 "git-upload-pack 'web.git'" <>"$TRASH/$1.in" >"$TRASH/$1.out" 2>"$TRASH/$1.err" &
	echo $! >"$TRASH/$1.pid"
	record_daemon $!
}

# requests_seen NAME N: the client NAME has been sent at least N
# keepalive@openssh.com requests (and answered all but maybe the last).
requests_seen() {
	test "$(grep -c "client_input_global_request: rtype keepalive@openssh.com want_reply 1" "$TRASH/$1.err")" -ge "$2"
}

# in_flight GATE: the gate's grove_gate_sessions_in_flight.
in_flight() {
	eval "base=\$${1}_ADMIN"
	curl -sf "$base/metrics" | sed -n 's/^grove_gate_sessions_in_flight //p'
}

# g1's client-alive requests: one after CA_INTERVAL s of silence, the
# session given up after CA_COUNT unanswered, CA_INTERVAL x (CA_COUNT + 1)
# s after the client went quiet. An answering client has CA_INTERVAL x
# CA_COUNT s to answer: scaled, so that a busy machine's client is not
# taken for a dead one.
CA_INTERVAL=$TEST_SCALE CA_COUNT=3

test_setup 'a store; a gate with client-alive requests every second, one without' '
	start_store s1 &&
	new_key alice &&
	make_history src &&
	start_gate g1 $s1_ADDR s1 gate.clientAliveInterval=$CA_INTERVAL gate.clientAliveCountMax=$CA_COUNT gate.keepalive=1 gate.keepaliveCount=2 &&
	start_gate g2 $s1_ADDR s1 gate.clientAliveInterval=0 gate.keepalive=1 gate.keepaliveCount=2 &&
	user_app g1 alice web &&
	user_app g2 alice web &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main)
'

test_expect_success 'a quiet client that answers is kept: the requests are answered' '
	idle_fetch quiet $g1_SSH_PORT &&
	wait_grep "refs/heads/main" quiet.out &&
	test "$(in_flight g1)" = 1 &&
	# Not a time, a count: CA_COUNT + 2 requests came, each after an
	# interval of silence; a client that did not answer them would have
	# lost its session at the check after the CA_COUNTth.
	wait_for 60 "client-alive request $((CA_COUNT + 2)) to the quiet client" requests_seen quiet $((CA_COUNT + 2)) &&
	! session_ended g1 &&
	test "$(in_flight g1)" = 1 &&
	kill $(cat quiet.pid) &&
	wait_for 20 "the end of the quiet session" session_ended g1 &&
	test "$(in_flight g1)" = 0 &&
	! grep -q gate.client_unresponsive g1/gate.log &&
	: >g1/gate.log
'

test_expect_success 'a stopped ssh client: its session ends within seconds with client-alive requests, not without' '
	idle_fetch g1 $g1_SSH_PORT &&
	idle_fetch g2 $g2_SSH_PORT &&
	wait_grep "refs/heads/main" g1.out &&
	wait_grep "refs/heads/main" g2.out &&
	test "$(in_flight g1)" = 1 && test "$(in_flight g2)" = 1 &&
	kill -STOP $(cat g1.pid) $(cat g2.pid) &&
	at_exit "kill -CONT $(cat g1.pid) $(cat g2.pid) 2>/dev/null || true" &&
	t0=$(ms) &&
	wait_for 60 "the stopped client'"'"'s session to end on g1" session_ended g1 &&
	t1=$(ms) &&
	wait_grep "\"event\":\"gate.client_unresponsive\".*\"user\":\"alice\".*\"unanswered\":$CA_COUNT" g1/gate.log &&
	test "$(in_flight g1)" = 0 &&
	echo "# client-alive $CA_INTERVAL s x $CA_COUNT: the stopped client'"'"'s session ended $((t1 - t0)) ms after it stopped" >"$TRASH/report" &&
	# g2 asks nothing: its client, stopped as long as the one of g1 was
	# when g1 gave up, must keep its session for another whole period of
	# g1 (only gate.idleTimeout, 10 minutes, would end it): a sleep
	# measured against the configured interval, which load only lengthens.
	sleep $((CA_INTERVAL * (CA_COUNT + 1))) &&
	! session_ended g2 &&
	test "$(in_flight g2)" = 1 &&
	kill -CONT $(cat g1.pid) $(cat g2.pid) &&
	kill $(cat g2.pid) &&
	wait_for 20 "the end of g2'"'"'s session" session_ended g2 &&
	test "$(in_flight g2)" = 0
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_done
