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
# waits (its stdin stays open and silent); its output in GATE.out, the ssh
# client's pid in GATE.pid.
idle_fetch() {
	sleep 120 | ssh -i "$TRASH/keys/alice" -p $2 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ServerAliveInterval=0 \
		git@127.0.0.1 "git-upload-pack 'web.git'" >"$TRASH/$1.out" 2>"$TRASH/$1.err" &
	echo $! >"$TRASH/$1.pid"
	record_daemon $!
}

# in_flight GATE: the gate's grove_gate_sessions_in_flight.
in_flight() {
	eval "base=\$${1}_ADMIN"
	curl -sf "$base/metrics" | sed -n 's/^grove_gate_sessions_in_flight //p'
}

test_setup 'a store; a gate with client-alive requests every second, one without' '
	start_store s1 &&
	new_key alice &&
	make_history src &&
	start_gate g1 $s1_ADDR s1 gate.clientAliveInterval=1 gate.clientAliveCountMax=2 gate.keepalive=1 gate.keepaliveCount=2 &&
	start_gate g2 $s1_ADDR s1 gate.clientAliveInterval=0 gate.keepalive=1 gate.keepaliveCount=2 &&
	user_app g1 alice web &&
	user_app g2 alice web &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main)
'

test_expect_success 'a quiet client that answers is kept: the requests are answered' '
	idle_fetch quiet $g1_SSH_PORT &&
	wait_grep "refs/heads/main" quiet.out &&
	test "$(in_flight g1)" = 1 &&
	sleep 5 &&
	! session_ended g1 &&
	test "$(in_flight g1)" = 1 &&
	kill $(cat quiet.pid) &&
	for _ in $(seq 1 50); do session_ended g1 && break; sleep 0.1; done &&
	session_ended g1 &&
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
	for _ in $(seq 1 150); do session_ended g1 && break; sleep 0.1; done &&
	t1=$(ms) &&
	session_ended g1 &&
	test_grep "\"event\":\"gate.client_unresponsive\".*\"user\":\"alice\".*\"unanswered\":2" g1/gate.log &&
	test "$(in_flight g1)" = 0 &&
	echo "# client-alive 1 s x 2: the stopped client'"'"'s session ended $((t1 - t0)) ms after it stopped" >"$TRASH/report" &&
	sleep 3 &&
	! session_ended g2 &&
	test "$(in_flight g2)" = 1 &&
	kill -CONT $(cat g1.pid) $(cat g2.pid) &&
	kill $(cat g2.pid) &&
	for _ in $(seq 1 50); do session_ended g2 && break; sleep 0.1; done &&
	session_ended g2 &&
	test "$(in_flight g2)" = 0
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_done
