#!/bin/sh
# grove gate stopped with SIGTERM while a push deploys: /ready turns 503 at
# once, new connections are refused, the running push finishes and deploys,
# then the gate exits; past its grace period a push that still runs is cut
# and its deploy command stopped.
. "$(dirname "$0")/test-lib.sh"

write_deploy() {
	cat >"$TRASH/deploy" <<-\EOF
	#!/bin/sh
	echo "building $GROVE_APP"
	echo $$ >"$PWD/deploy.pid"
	touch "$PWD/deploying"
	# Holds until the test creates "release" (10 minutes at most): the
	# test decides when the deploy ends, not the clock.
	i=0
	while ! test -e "$PWD/release" && test $i -lt 6000; do sleep 0.1; i=$((i + 1)); done
	echo "release done"
	EOF
	chmod +x "$TRASH/deploy"
}

# gate_up NAME GRACE: a gate in front of s1 with that shutdown grace, the
# user alice and the app web she can push to.
gate_up() {
	start_gate "$1" $s1_ADDR s1 deploy.command=$TRASH/deploy gate.shutdownGrace=$2 &&
	user_app "$1" alice web
}

# push_bg GATE N: a commit, pushed in the background; its exit status lands
# in pN.rc, its output in pN.err.
push_bg() {
	eval "port=\$${1}_SSH_PORT"
	(cd src && echo "$2" >"f$2" && git add "f$2" && git commit -q -m "change $2") || return 1
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $port)" git push ssh://git@127.0.0.1:$port/web.git main 2>../p$2.err &&
	 echo 0 >../p$2.rc || echo $? >../p$2.rc) &
}

# ready GATE: the HTTP status of /ready.
ready() {
	eval "base=\$${1}_ADMIN"
	curl -s -o /dev/null -w '%{http_code}' "$base/ready"
}

# ready_is GATE CODE: /ready answers CODE.
ready_is() {
	test "$(ready "$1")" = "$2"
}

test_setup 'a store, a deploy command that takes its time, a repository' '
	start_store s1 &&
	write_deploy &&
	new_key alice &&
	make_history src
'

test_expect_success 'SIGTERM during a deploy: not ready, no new connection, the push deploys, then the gate exits' '
	# A grace far longer than the test keeps the deploy held: the test
	# releases it once it has seen the gate drain.
	gate_up g1 $((60 * TEST_SCALE)) &&
	test "$(ready g1)" = 200 &&
	push_bg g1 1 &&
	wait_for 30 "the deploy to start" test -e g1/deploying &&
	kill -TERM $g1_PID &&
	wait_for 20 "/ready to answer 503" ready_is g1 503 &&
	test "$(ready g1)" = 503 &&
	! GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git 2>ls.err &&
	test_grep "Connection refused" ls.err &&
	touch g1/release &&
	wait_for 30 "the push to end" test -s p1.rc &&
	test "$(cat p1.rc)" = 0 &&
	test_grep "^remote: release done" p1.err &&
	test_grep "^remote: -----> Deployed web" p1.err &&
	wait_for 30 "the gate to exit" gone $g1_PID &&
	wait_grep "\"event\":\"gate.draining\"" g1/gate.log &&
	wait_grep "\"event\":\"gate.api_draining\"" g1/gate.log &&
	wait_grep "\"event\":\"gate.stopped\"" g1/gate.log
'

# The deploy is never released: only the end of the grace period stops it.
test_expect_success 'past the grace period a push still deploying is cut, its deploy stopped, and the gate exits' '
	rm -f g2/deploying &&
	gate_up g2 1 &&
	push_bg g2 2 &&
	wait_for 30 "the deploy to start" test -e g2/deploying &&
	kill -TERM $g2_PID &&
	wait_for 30 "the gate to exit past its 1 s grace, its deploy still held" gone $g2_PID &&
	wait_for 30 "the push to end" test -s p2.rc &&
	test "$(cat p2.rc)" != 0 &&
	! grep "^remote: -----> Deployed web" p2.err &&
	! kill -0 "$(cat g2/deploy.pid)" 2>/dev/null
'

test_done
