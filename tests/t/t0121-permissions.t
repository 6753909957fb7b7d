#!/bin/sh
# Who may read what on disk: the daemons run with umask 027, so what they
# and their git make (repositories on both routes, logs, configs, state) is
# the service user's and its group's, never readable by other users of the
# machine (docs/security.md).
. "$(dirname "$0")/test-lib.sh"

# up_start: grove up in the background, its pid in up.pid.
up_start() {
	"$GROVE" up --data "$TRASH/gd" --ssh-port $SSH_PORT --http-port $HTTP_PORT >up.out 2>up.err &
	echo $! >up.pid
	record_daemon $!
}

test_setup 'grove up with an app on each route, pushed to' '
	up_env &&
	up_start &&
	wait_for 60 "grove up to be up" grep -q "Ctrl-C stops everything" up.out &&
	"$GROVE" app create onc --route cluster >/dev/null &&
	"$GROVE" app create onl --route legacy >/dev/null &&
	make_history src &&
	(cd src && git push -q ssh://git@localhost:$SSH_PORT/onc.git main v1.0 2>/dev/null &&
		git push -q ssh://git@localhost:$SSH_PORT/onl.git main v1.0 2>/dev/null)
'

test_expect_success 'every daemon runs with umask 027' '
	for pid in $(pgrep -f "grove (store|cluster|gate) -c $TRASH/gd/"); do
		: a session process of the gate may end meanwhile: only the living count &&
		st=$(cat /proc/$pid/status 2>/dev/null) || continue
		echo "$st" | grep -q "^Umask:	0027$" || { echo "$st" | grep Umask; return 1; }
	done &&
	test $(pgrep -f "grove (store|cluster|gate) -c $TRASH/gd/" | wc -l) -ge 5
'

test_expect_success 'repositories, logs and state are not readable by other users' '
	test -d gd/gate/legacy/onl.git &&
	test -n "$(find gd/stores -name "*.git" -type d)" &&
	find gd/stores gd/gate gd/cluster gd/logs -perm /o=rwx ! -type l >open &&
	test_must_fail test -s open || { cat open >&2; false; }
'

test_done
