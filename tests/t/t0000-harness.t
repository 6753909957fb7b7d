#!/bin/sh
# The test library itself: a failing command anywhere in a test body fails
# the test (not only the last one), a failing setup stops the file, and
# only the daemons a test started are stopped at its end.
. "$(dirname "$0")/test-lib.sh"

# inner NAME BODY: a test file NAME.t of one test with BODY, run through the
# library; its TAP output in NAME.out, its exit status in NAME.rc.
inner() {
	cat >"$1.t" <<-EOF
	#!/bin/sh
	. "$TEST_DIR/test-lib.sh"
	$2
	test_done
	EOF
	GROVE_BIN=$GROVE sh "./$1.t" >"$1.out" 2>"$1.err" && echo 0 >"$1.rc" || echo $? >"$1.rc"
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

test_done
