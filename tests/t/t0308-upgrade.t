#!/bin/sh
# Upgrades without a dropped operation: under `grove up`, pushes, fetches
# and clones through the gate run without pause while the binary on disk is
# replaced and every part (three stores, the router, the gate) is sent
# SIGUSR2 in turn. Each part starts the new binary, hands over (the gate its
# listening sockets; gRPC listeners share the address), drains and exits;
# grove up follows each to its new process. Checks: no operation failed,
# operations ran during every upgrade, no process is left on the old
# binary, grove up still supervises the new processes, and each old store
# and router had its clients move to the new process before its drain
# (lib/rpc.h: rpc_server_leave).
. "$(dirname "$0")/test-lib.sh"

# part_pid ROLE CONF: the pid of the part running ROLE with CONF (grove up's
# layout) as grove up's child (a gate's sessions and api process run the
# same command line, as its children).
part_pid() {
	pgrep -P "$(cat "$TRASH/up.pid")" -f "grove $1 -c $TRASH/gd/$2\$"
}

# on_new_binary PID: the process runs the binary now on disk, not a deleted one.
on_new_binary() {
	test -e /proc/$1/exe && ! readlink /proc/$1/exe | grep -q "(deleted)"
}

# upgraded ROLE CONF OLD: OLD is gone and one process on the new binary runs
# ROLE with CONF.
upgraded() {
	gone $3 || return 1
	new=$(part_pid $1 $2) && test -n "$new" && test "$(echo "$new" | wc -l)" = 1 && on_new_binary $new
}

# ops: operations the loop has finished.
ops() {
	cat "$TRASH"/ops.* 2>/dev/null | wc -l
}

# more_ops N: at least N more operations than when $base was taken.
more_ops() {
	test $(ops) -ge $((base + $1))
}

# op N NAME CMD...: runs CMD; "ok NAME" or "FAILED NAME" in ops.N, and
# git's words of a failure in fail.N.
op() {
	n=$1 name=$2; shift 2
	if "$@" 2>"$TRASH/err.$n"; then echo "ok $name" >>"$TRASH/ops.$n"
	else echo "FAILED $name" >>"$TRASH/ops.$n"; { echo "$name:"; cat "$TRASH/err.$n"; } >>"$TRASH/fail.$n"; fi
}

# loop N: push a commit (loop 1 to main: a deploy each time; the others to
# branch wN), fetch, clone, again, until $TRASH/stop exists.
loop() {
	n=$1
	git clone -q ssh://git@127.0.0.1:$SSH_PORT/hello.git w$n && cd w$n || return 1
	i=0
	while ! test -f "$TRASH/stop"; do
		i=$((i + 1))
		echo "$n $i" >f && git add f && git commit -q -m "loop $n $i" || return 1
		if test $n = 1; then b=main; else b=w$n; fi
		op $n push git push -q origin HEAD:refs/heads/$b
		op $n fetch git fetch -q origin
		rm -rf "$TRASH/c.$n"
		op $n clone git clone -q ssh://git@127.0.0.1:$SSH_PORT/hello.git "$TRASH/c.$n"
	done
}

test_setup 'grove up from a binary of its own, an app with a history' '
	mkdir bin && cp "$GROVE" bin/grove && GROVE=$TRASH/bin/grove &&
	up_env &&
	up_start 1 &&
	"$GROVE" app create hello >/dev/null &&
	make_history src &&
	(cd src && git push -q ssh://git@127.0.0.1:$SSH_PORT/hello.git main 2>../first.err)
'

test_expect_success 'every part upgraded in turn under pushes, fetches and clones: nothing fails' '
	for n in 1 2; do (loop $n) & echo $! >>loops; done &&
	base=0 && wait_for 60 "the loops to run" more_ops 6 &&
	: the binary on disk is replaced: the running processes now run a deleted one &&
	cp "$TRASH/bin/grove" bin/grove.new && mv -f bin/grove.new bin/grove &&
	old=$(part_pid store stores/s1/store.conf) && ! on_new_binary $old &&
	for part in "store stores/s1/store.conf" "store stores/s2/store.conf" "store stores/s3/store.conf" \
		"cluster cluster/cluster.conf" "gate gate/gate.conf"; do
		set -- $part &&
		old=$(part_pid $1 $2) && test -n "$old" &&
		base=$(ops) &&
		kill -USR2 $old &&
		wait_for 60 "the $1 ($2) to be upgraded" upgraded $1 $2 $old &&
		: operations go on on the new process before the next part &&
		wait_for 60 "operations after upgrading $2" more_ops 6 || return 1
	done &&
	touch stop &&
	for p in $(cat loops); do wait_for 120 "the loops to end" gone $p || return 1; done &&
	echo "# $(ops) operations, $(grep -c ^ok ops.*  | awk -F: "{ s += \$2 } END { print s }") ok" >&2 &&
	test_must_fail grep -h FAILED ops.* &&
	test $(ops) -ge 30 &&
	: the old stores and router had their clients leave before they drained: the router moved to the new &&
	: stores, and no call ended on a connection closed under it, answered whole or not &&
	grep "\"rpc.channel_renewed\"" gd/logs/cluster.log | grep -q "run/s[123]\.sock" &&
	test $(grep -c "\"rpc.left\"" gd/logs/s1.log) -ge 2 &&
	test_must_fail grep -h "answer_whole" gd/logs/*.log ||
	{ cat fail.* >&2; false; }
'

test_expect_success 'no part runs the old binary; grove up follows the new processes' '
	for part in "store stores/s1/store.conf" "store stores/s2/store.conf" "store stores/s3/store.conf" \
		"cluster cluster/cluster.conf" "gate gate/gate.conf"; do
		set -- $part &&
		pid=$(part_pid $1 $2) && on_new_binary $pid || return 1
	done &&
	: a part that dies now is restarted by grove up, as before the upgrade &&
	pid=$(part_pid store stores/s2/store.conf) && kill -9 $pid &&
	wait_for 60 "grove up to restart s2" eval "grep -q \"the store s2 exited (status 9); restarting it\" up.err" &&
	wait_for 60 "s2 to run again" eval "test -n \"\$(part_pid store stores/s2/store.conf)\"" &&
	wait_for 60 "grove status to find every part healthy" eval "\"\$GROVE\" status --data \"\$TRASH/gd\" >st" &&
	git clone -q ssh://git@127.0.0.1:$SSH_PORT/hello.git after &&
	test "$(git -C after rev-parse HEAD)" = "$(git ls-remote ssh://git@127.0.0.1:$SSH_PORT/hello.git main | cut -f1)"
'

test_done
