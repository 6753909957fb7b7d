#!/bin/sh
# The gate killed mid-push, in front of the cluster router: kill -9 of the
# process that carries one SSH connection, and kill -9 of the gate's
# supervisor (the process that accepts connections), each while several
# pushes are in flight. Every push git reported as accepted is afterwards
# on every replica, every replica passes `git fsck --strict`, and a gate
# started again serves pushes. Prints pushes tried, acknowledged, refused,
# lost (must be 0) and the time to recover.
#
# No step waits on the clock: the kills land once pushes are being
# acknowledged, each kill of a connection process waits for one to exist and
# for another push to end after the one before, and the gate is started
# again once the killed one's api process is gone and pushes were tried
# while it was down.
. "$(dirname "$0")/test-lib.sh"

APPS=3 WORKERS=4

# worker ROUND N: pushes through the gate, one new commit (with a 256 KiB
# incompressible file, so that a push lasts long enough to be killed in
# the middle) at a time to branch wN of web(N % APPS), until ROUND.stop
# exists; records "acked|refused MS APP BRANCH COMMIT" in ROUND.pushes.N.
worker() {
	round=$1 n=$2 app=web$(($2 % APPS))
	test -d w$n || git init -q w$n || return 1
	cd w$n || return 1
	ssh_cmd=$(ssh_as alice $g1_SSH_PORT)
	i=0
	while ! test -f "$TRASH/$round.stop"; do
		i=$((i + 1))
		dd if=/dev/urandom of=f bs=1k count=256 2>/dev/null && git add f && git commit -q -m "$round w$n push $i" || return 1
		sha=$(git rev-parse HEAD)
		t0=$(ms)
		if GIT_SSH_COMMAND="$ssh_cmd" timeout $((120 * TEST_SCALE)) git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/$app.git HEAD:refs/heads/w$n 2>err; then
			how=acked
		else
			how=refused
			{ echo "$app.git w$n $sha:"; cat err; } >>"$TRASH/$round.refused.$n"
		fi
		echo "$how $(($(ms) - t0)) $app.git w$n $sha" >>"$TRASH/$round.pushes.$n"
	done
}

# check_round ROUND: every acknowledged push of ROUND is on every replica,
# all replicas fsck clean; prints the report line's numbers to ROUND.report.
check_round() {
	cat $1.pushes.* >$1.all &&
	tried=$(wc -l <$1.all) &&
	acked=$(grep -c "^acked " $1.all) &&
	refused=$(grep -c "^refused " $1.all) || refused=0
	lost=0 &&
	grep "^acked " $1.all | cut -d" " -f3- >$1.acked &&
	while read app branch sha; do
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s $app)" merge-base --is-ancestor $sha refs/heads/$branch ||
				{ echo "lost on $s: $app $branch $sha" >&2; lost=$((lost + 1)); }
		done
	done <$1.acked &&
	for a in $(seq 0 $((APPS - 1))); do
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s web$a.git)" fsck --strict --no-progress >fsck.out 2>&1 ||
				{ echo "$s web$a.git:" >&2; cat fsck.out >&2; return 1; }
		done
	done &&
	echo "tried $tried, acknowledged $acked, refused $refused, lost $lost" >$1.report &&
	: why pushes were refused, counted by message &&
	if test "$refused" -gt 0; then
		grep -h -v -e "^web[0-9]*\.git w[0-9]* [0-9a-f]*:\$" -e "^\$" -e "^Please make sure" -e "^and the repository exists" \
			-e "^To ssh:" -e "failed to push some refs" $1.refused.* |
			sed -e "s/port [0-9]*/port N/" -e "s/:[0-9][0-9][0-9][0-9][0-9]*/:N/g" | sort | uniq -c |
			sed -e "s/^/#   $1 refusals: /" >>"$TRASH/details"
	fi &&
	test "$lost" = 0 && test "$acked" -gt 0
}

restart_gate() {
	"$GROVE" gate -c "$TRASH/g1/gate.conf" >>"$TRASH/g1/gate.log" 2>&1 &
	record_daemon $!
	echo $! >"$TRASH/g1.pid"
	wait_for 30 "the gate started again to answer /health" curl -sf "$g1_ADMIN/health" && return 0
	echo "gate did not start again:" >&2
	tail -n 20 "$TRASH/g1/gate.log" >&2
	return 1
}

# records ROUND [KIND]: how many pushes of ROUND the workers recorded (of
# KIND: acked, refused; all by default).
records() {
	cat "$TRASH"/$1.pushes.* 2>/dev/null | grep -c "^${2:-[a-z]}" || :
}

# at_least ROUND KIND N: the workers recorded at least N pushes of ROUND of
# KIND ("" for all); 125 (no use waiting) once every worker is done.
at_least() {
	test "$(records $1 $2)" -ge "$3" && return 0
	workers_running
}

# workers_running: 1 (wait on) while a worker runs, 125 once all are done.
workers_running() {
	for w in $pids; do gone $w || return 1; done
	return 125
}

# connection_process: sets victim to a process of the gate carrying a
# connection (a live child of the supervisor that is not its api process).
connection_process() {
	victim=$(ps -o pid=,stat= --ppid $g1_PID | awk '$2 !~ /^Z/ { print $1 }' | grep -vxF -f g1.idle | head -n1)
	test -n "$victim" && return 0
	workers_running
}

test_setup 'three stores, a router, a gate routing three apps to it' '
	start_store s1 && start_store s2 && start_store s3 &&
	start_cluster c s1 s2 s3 &&
	start_gate g1 $c_ADDR default &&
	echo $g1_PID >"$TRASH/g1.pid" &&
	new_key alice &&
	api g1 POST /api/v1/users "{\"name\":\"alice\"}" >out && test_grep "^201$" out &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	for a in $(seq 0 $((APPS - 1))); do
		api g1 POST /api/v1/apps "{\"name\":\"web$a\",\"route\":\"cluster\"}" >out && test_grep "^201$" out &&
		api g1 PUT /api/v1/apps/web$a/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out || return 1
	done &&
	: the processes the gate runs before any connection: its api process, there once /health answered &&
	pgrep -P $g1_PID >g1.idle &&
	test $(wc -l <g1.idle) = 1
'

test_expect_success 'kill -9 of connection processes mid-push: nothing acknowledged is lost, the gate goes on' '
	start_workers $WORKERS worker conn
	wait_for 60 "$WORKERS pushes through the gate to be acknowledged" at_least conn acked $WORKERS &&
	killed=0 &&
	for _ in $(seq 1 8); do
		wait_for 60 "a connection process of the gate" connection_process || return 1
		ended=$(records conn)
		: it may have ended meanwhile &&
		if kill -9 $victim 2>/dev/null; then killed=$((killed + 1)); fi
		wait_for 60 "another push to end after kill -9 of connection process $victim" at_least conn "" $((ended + 1)) ||
			return 1
	done &&
	touch conn.stop &&
	wait $pids &&
	stopped=$(ms) &&
	no_dataloss &&
	repaired=$(ms) &&
	check_round conn &&
	echo "# kill -9 of $killed gate connection processes during pushes: $(cat conn.report); every replica up to date $((repaired - stopped)) ms after the last push" >>"$TRASH/report" &&
	test "$killed" -gt 0 &&
	kill -0 $g1_PID &&
	(cd w1 && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web1.git HEAD:refs/heads/w1)
'

test_expect_success 'kill -9 of the gate supervisor mid-push: nothing acknowledged is lost, a new gate serves' '
	start_workers $WORKERS worker sup
	wait_for 60 "$WORKERS pushes through the gate to be acknowledged" at_least sup acked $WORKERS &&
	api=$(cat g1.idle) &&
	ended=$(records sup) &&
	kill -9 $(cat g1.pid) &&
	killed=$(ms) &&
	: its api process follows it, and frees the ports the new gate listens on &&
	wait_for 90 "the killed gate'"'"'s api process $api to exit" gone $api &&
	wait_for 60 "$WORKERS pushes to end while the gate is down" at_least sup "" $((ended + WORKERS)) &&
	restart_gate &&
	restarted=$(ms) &&
	acked_before=$(records sup acked) &&
	wait_for 60 "$WORKERS pushes through the new gate to be acknowledged" at_least sup acked $((acked_before + WORKERS)) &&
	touch sup.stop &&
	wait $pids &&
	no_dataloss &&
	check_round sup &&
	(cd w2 && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web2.git HEAD:refs/heads/w2) &&
	grep -c "^acked " sup.all >/dev/null &&
	echo "# kill -9 of the gate supervisor during pushes: $(cat sup.report); the gate served again $((restarted - killed)) ms after the kill (its old api process gone, $WORKERS pushes tried meanwhile)" >>"$TRASH/report"
'
test -f "$TRASH/report" && cat "$TRASH/report"
test -f "$TRASH/details" && cat "$TRASH/details"

test_done
