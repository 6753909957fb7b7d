#!/bin/sh
# The test library itself: a failing command anywhere in a test body fails
# the test (not only the last one), a failing setup stops the file, and
# only the daemons a test started are stopped at its end.
. "$(dirname "$0")/test-lib.sh"

# inner NAME BODY: a test file NAME.t of one test with BODY, run through the
# library; its TAP output in NAME.out, its exit status in NAME.rc. Its trash
# (kept when it fails, as some do on purpose) goes inside this test's.
inner() {
	cat >"$1.t" <<-EOF
	#!/bin/sh
	. "$TEST_DIR/test-lib.sh"
	$2
	test_done
	EOF
	GROVE_TEST_RUN=$TRASH GROVE_BIN=$GROVE sh "./$1.t" >"$1.out" 2>"$1.err" && echo 0 >"$1.rc" || echo $? >"$1.rc"
}

test_expect_success 'a failing command before the last one fails the test' '
	inner early "test_expect_success \"two lines\" \"
		false
		true
	\"" &&
	test_grep "^not ok 1 - two lines" early.out &&
	test "$(cat early.rc)" != 0
'

test_expect_success 'a body that only passes passes' '
	inner fine "test_expect_success \"one line\" \"true\"" &&
	test_grep "^ok 1 - one line" fine.out &&
	test "$(cat fine.rc)" = 0
'

test_expect_success 'a failing setup command stops the file with Bail out!' '
	inner setup "test_setup \"set up\" \"
		false
		true
	\"
	test_expect_success \"never runs\" \"true\"" &&
	test_grep "^not ok 1 - set up" setup.out &&
	test_grep "^Bail out! setup failed: set up" setup.out &&
	! grep "never runs" setup.out &&
	test "$(cat setup.rc)" != 0
'

test_expect_success 'test_expect_code checks the code under set -e' '
	inner code "test_expect_success \"exit 3\" \"test_expect_code 3 sh -c \\\"exit 3\\\"\"" &&
	test_grep "^ok 1 - exit 3" code.out
'

test_expect_success 'a recorded daemon is stopped at the end; a recycled pid is left alone' '
	sleep 300 & bystander=$! &&
	cat >daemons.t <<-EOF &&
	#!/bin/sh
	. "$TEST_DIR/test-lib.sh"
	test_expect_success "start a daemon" "
		sleep 300 & echo \\\$! >$TRASH/daemon.pid && record_daemon \\\$!
		echo $bystander 12345 >>\"\\\$TRASH/.daemons\"
	"
	test_done
	EOF
	GROVE_BIN=$GROVE sh ./daemons.t >daemons.out 2>&1 &&
	test_grep "^ok 1 - start a daemon" daemons.out &&
	test -z "$(pid_start "$(cat daemon.pid)")" &&
	test -n "$(pid_start $bystander)" &&
	kill $bystander
'

test_expect_success 'wait_for waits for a condition, and says which one never came' '
	(sleep 0.3; touch later) &
	wait_for 20 "the file later" test -e later &&
	TEST_SCALE=1 &&
	test_must_fail wait_for 1 "a file never made" test -e never 2>never.err &&
	test_grep "^waited 1s for a file never made; it never came (test -e never)" never.err
'

test_expect_success 'wait_for gives up at once on 125 (it can never come)' '
	start=$(date +%s) &&
	test_must_fail wait_for 60 "a dead daemon" sh -c "exit 125" 2>dead.err &&
	test_grep "^gave up waiting for a dead daemon" dead.err &&
	test $(($(date +%s) - start)) -lt 30
'

test_expect_success 'a failed test shows its output, the log lines of its correlation ids and the logs it wrote' '
	inner saw "test_expect_success \"fails\" \"
		mkdir -p d && echo old line >d/old.log && echo unrelated >d/x.log &&
		echo {\\\"correlation_id\\\":\\\"0123456789abcdef0123456789abcdef\\\",\\\"msg\\\":\\\"what the daemon did\\\"} >>d/x.log &&
		echo ERROR: failed, id 0123456789abcdef0123456789abcdef &&
		false
	\"" &&
	test_grep "^not ok 1 - fails" saw.out &&
	test_grep "^#    ERROR: failed, id 0123456789abcdef0123456789abcdef" saw.err &&
	test_grep "^#  -- log lines of correlation id 0123456789abcdef0123456789abcdef:" saw.err &&
	test_grep "^#    .*what the daemon did" saw.err &&
	test_grep "^#  -- last lines of d/x.log:" saw.err
'

# inner_run NAME BODY: a test file NAME.t of one test with BODY (which may
# write to $OUT, this test's trash), to run with tests/run.
inner_run() {
	{ printf '#!/bin/sh\n. "$LIB"\ntest_expect_success %s '"'"'\n' "$1"; printf '%s\n' "$2"; printf "'\ntest_done\n"; } >"$1.t"
}
RUNNER=$TEST_DIR/../run

# write_detach: $TRASH/detach.sh, which (run under setsid) writes its pid to
# $OUT/hang.setsid once it is in a session of its own, then sleeps: a
# daemon the process-group kill cannot reach. Written before the pid is
# known to be out of the group, hang.started would let the kill race it.
write_detach() {
	cat >"$TRASH/detach.sh" <<-\EOF &&
	#!/bin/sh
	echo $$ >"$OUT/hang.setsid.tmp" && mv "$OUT/hang.setsid.tmp" "$OUT/hang.setsid" && exec sleep 300
	EOF
	chmod +x "$TRASH/detach.sh"
}

test_expect_success 'tests/run: an interrupted run leaves no daemon running' '
	write_detach &&
	inner_run hang "start_store s1 && echo \$s1_PID >\$OUT/hang.store
	{ setsid \$OUT/detach.sh & }
	while ! test -e \$OUT/hang.setsid; do sleep 0.1; done
	touch \$OUT/hang.started && sleep 300" &&
	{ LIB=$TEST_DIR/test-lib.sh OUT=$TRASH GROVE_BIN=$GROVE "$RUNNER" hang.t >hang.out 2>&1 & } &&
	runner=$! &&
	wait_for 60 "the inner test to start its daemons" test -e hang.started &&
	kill -TERM $runner &&
	wait_for 60 "tests/run to end" gone $runner &&
	test_grep "interrupted (SIGTERM)" hang.out &&
	test_grep "sleep 300" hang.out &&
	gone "$(cat hang.store)" && gone "$(cat hang.setsid)"
'

test_expect_success 'tests/run: what a passing test left running is named and stopped' '
	inner_run forgot "{ setsid sleep 300 & echo \$! >\$OUT/forgot.pid; }" &&
	LIB=$TEST_DIR/test-lib.sh OUT=$TRASH GROVE_BIN=$GROVE "$RUNNER" forgot.t >forgot.out 2>&1 &&
	test_grep "the tests left these running" forgot.out &&
	gone "$(cat forgot.pid)"
'

test_done
