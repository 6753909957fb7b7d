#!/bin/sh
# Faults under load, through the cluster router: a store killed with -9 in
# the middle of 200 pushes (eight at a time, several to the same app) loses
# no push that git reported as accepted, and every replica is whole
# (`git fsck --strict`) once repaired; a stopped (SIGSTOP) store does not
# make pushes hang, whether it is a secondary or the primary; a primary that
# is dead or hung when a push arrives (before the health checks know) does
# not cost the push: it goes to the others. Prints, for the kill: pushes tried, acknowledged,
# refused, lost (must be 0), and the time to full repair.
#
# No step waits on the clock: the kill lands once 40 pushes were acknowledged,
# the store comes back once 24 more were tried, and a store is stopped while
# a push is known to be in its hands (held-connect).
. "$(dirname "$0")/test-lib.sh"

APPS=5 WORKERS=8 PUSHES=25

# worker N: PUSHES pushes of one new commit each to branch wN of app (N % APPS),
# recording "app branch commit" for each acknowledged push.
worker() {
	n=$1 app=app$(($1 % APPS)).git
	git init -q w$n && cd w$n || return 1
	for i in $(seq 1 $PUSHES); do
		echo "$n $i" >f && git add f && git commit -q -m "w$n push $i" || return 1
		sha=$(git rev-parse HEAD)
		if GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $((120 * TEST_SCALE)) \
			git push -q ssh://default/$app HEAD:refs/heads/w$n 2>err; then
			echo "$app w$n $sha" >>"$TRASH/acked.$n"
		else
			{ echo "$app w$n $sha"; cat err; } >>"$TRASH/refused.$n"
			# Not acknowledged: the next push carries this commit again.
		fi
		echo "$app w$n $sha" >>"$TRASH/tried.$n"
	done
}

# pushes_at_least KIND N: the workers recorded at least N pushes of KIND
# (tried, acked, refused); 125 (no use waiting) once every worker is done.
pushes_at_least() {
	test "$(cat "$TRASH"/$1.* 2>/dev/null | grep -c "^app")" -ge "$2" && return 0
	for w in $pids; do gone $w || return 1; done
	return 125
}

# held-connect: a GIT_SSH_COMMAND that starts the call at once (grove
# connect to $HOLD_ADDR) but holds what git sends until the file
# $TRASH/release exists (at most 10 minutes); $TRASH/held says it started.
# So a test knows a push is in the stores' hands before it stops one. The
# holder feeds grove connect through a FIFO, so that the command ends when
# grove connect does (a shell waits for every process of a pipeline).
write_held_connect() {
	cat >"$TRASH/held-connect" <<-EOF &&
	#!/bin/sh
	test "\$1" = -G && exit 0
	fifo="$TRASH/hold.\$\$"
	rm -f "\$fifo" && mkfifo "\$fifo" || exit 1
	# An asynchronous list reads /dev/null unless told otherwise.
	exec 3<&0
	{
		rm -f "\$fifo"
		touch "$TRASH/held"
		i=0
		while ! test -e "$TRASH/release" && test \$i -lt 6000; do sleep 0.1; i=\$((i + 1)); done
		exec cat
	} <&3 >"\$fifo" &
	exec "\$GROVE" connect "\$HOLD_ADDR" "\$@" <"\$fifo"
	EOF
	chmod +x "$TRASH/held-connect"
}

# push_held STORE: one more commit on w1 pushed to app1.git through
# held-connect, in the background (exit code in push.rc, stderr in err);
# returns once the push reached STORE (its receive-pack runs), git's data
# still held.
push_held() {
	rm -f held release push.rc err &&
	(cd w1 && echo "$1 $(date +%s%N)" >f && git commit -q -am "while $1 is stopped") || return 1
	# set +e: the exit code of a failed push is written too.
	(set +e; cd w1 && HOLD_ADDR=$c_ADDR GIT_SSH_COMMAND="$TRASH/held-connect" timeout $((60 * TEST_SCALE)) \
		git push -q ssh://default/app1.git HEAD:refs/heads/w1 2>../err; echo $? >../push.rc) &
	wait_for 30 "the push to reach $1" eval "test -e held && pgrep -f 'receive-pack $(repo_dir $1 app1.git)'"
}

test_setup 'three stores, a router and five apps' '
	start_store s1 && start_store s2 && start_store s3 &&
	: bounds scaled, so that a slow healthy store is not taken for a dead one &&
	start_cluster c s1 s2 s3 -- cluster.healthInterval=$((300 * TEST_SCALE)) \
		cluster.lagTimeout=$((5000 * TEST_SCALE)) cluster.voteTimeout=$((10000 * TEST_SCALE)) &&
	write_held_connect &&
	for a in $(seq 0 $((APPS - 1))); do create_repo $c_ADDR default app$a.git >/dev/null || return 1; done &&
	: a second router whose health checks come once a minute and need 100 &&
	: failures in a row: it learns of a dead or hung primary only from the push &&
	start_cluster c2 s1 s2 s3 -- cluster.healthInterval=60000 cluster.healthFailures=100 \
		cluster.primaryAnswerTimeout=$((1000 * TEST_SCALE)) cluster.lagTimeout=$((5000 * TEST_SCALE)) &&
	create_repo $c2_ADDR default fo.git >/dev/null &&
	git init -q fo && (cd fo && echo 0 >f && git add f && git commit -q -m 0 &&
		GIT_SSH_COMMAND="$GROVE connect $c2_ADDR" git push -q ssh://default/fo.git HEAD:refs/heads/main)
'

# primary2_of PATH: the repository's primary on the second router.
primary2_of() {
	"$GROVE" cluster -a $c2_ADDR repo "$1" | sed -n "s/.*primary \([^,]*\),.*/\1/p"
}

# push_fo: one more commit pushed to fo.git through the second router.
push_fo() {
	(cd fo && echo "$(date +%s%N)" >f && git commit -q -am "after $1" &&
		GIT_SSH_COMMAND="$GROVE connect $c2_ADDR" timeout $((120 * TEST_SCALE)) \
		git push -q ssh://default/fo.git HEAD:refs/heads/main 2>../fo.err)
}

# fo_whole: waits until the second router has every replica of fo.git up to date.
fo_whole() {
	wait_for 60 "every replica of fo.git to be up to date" eval \
		'"$GROVE" cluster -a $c2_ADDR dataloss >dl2 2>&1 && grep -q "every repository has all its replicas up to date" dl2' &&
		return 0
	cat dl2 >&2
	return 1
}

# on_stores STORE...: the last commit of fo is on each STORE's fo.git.
on_stores() {
	for s in "$@"; do
		test "$(git --git-dir="$(repo_dir $s fo.git)" rev-parse refs/heads/main)" = "$(git -C fo rev-parse HEAD)" || return 1
	done
}

test_expect_success 'kill -9 of a store during 200 pushes: no acknowledged push lost, replicas whole after repair' '
	start_workers $WORKERS worker
	wait_for 120 "40 pushes to be acknowledged before the kill" pushes_at_least acked 40 &&
	at_kill=$(cat tried.* | wc -l) &&
	pkill -9 -f "store -c $TRASH/s2/store.conf" &&
	killed=$(date +%s%N) &&
	wait_for 120 "24 more pushes to be tried after the kill of s2" pushes_at_least tried $((at_kill + 24)) &&
	at_restart=$(cat tried.* | wc -l) &&
	restart_store s2 &&
	restarted=$(date +%s%N) &&
	wait $pids &&
	done_ms=$(date +%s%N) &&
	no_dataloss &&
	repaired=$(date +%s%N) &&
	tried=$(cat tried.* | wc -l) && acked=$(cat acked.* | wc -l) &&
	refused=$(cat refused.* 2>/dev/null | grep -c "^app") || refused=0
	lost=0 &&
	cat acked.* >acked.all &&
	while read app branch sha; do
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s $app)" merge-base --is-ancestor $sha refs/heads/$branch ||
				{ echo "lost on $s: $app $branch $sha" >&2; lost=$((lost + 1)); }
		done
	done <acked.all &&
	for s in s1 s2 s3; do
		for a in $(seq 0 $((APPS - 1))); do
			git --git-dir="$(repo_dir $s app$a.git)" fsck --strict --no-progress >fsck.out 2>&1 ||
				{ cat fsck.out >&2; return 1; }
		done
	done &&
	echo "# kill -9 of s2 during pushes: tried $tried, acknowledged $acked, refused $refused, lost $lost; pushes ran $(( (done_ms - killed) / 1000000 )) ms past the kill (s2 down for $(( (restarted - killed) / 1000000 )) ms of it, while pushes $((at_kill + 1))-$at_restart ended); every replica up to date $(( (repaired - done_ms) / 1000000 )) ms after the last push" >"$TRASH/report" &&
	test "$tried" = $((WORKERS * PUSHES)) &&
	test "$lost" = 0 &&
	test "$acked" -gt 0 &&
	if test "$refused" -gt 0; then
		grep -h -e "^fatal: grove connect: " -e "^error: grove: " -e "^remote: error: grove: " refused.* >why || true
		sed "s/^/#   refused: /" why >>"$TRASH/report" &&
		test $(wc -l <why) -ge "$refused" &&
		! grep -v -e "the primary replica, .* a new primary is elected within seconds; retry" \
			-e "ref update not committed" -e "are healthy and up to date; a write needs" why ||
			{ cat refused.* >&2; false; }
	fi
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_expect_success 'kill -9 of the primary just before a push: the push is taken by the others' '
	p=$(primary2_of fo.git) && test -n "$p" &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	kill -9 $pid &&
	wait_for 30 "store $p to be gone" gone $pid &&
	push_fo "kill of $p" &&
	wait_grep "\"event\":\"cluster.write_rerouted\".*\"silent_primary\":\"$p\"" c2/cluster.log &&
	on_stores $(for s in s1 s2 s3; do test $s != $p && echo $s; done) &&
	test "$(primary2_of fo.git)" != "$p" &&
	restart_store $p &&
	fo_whole && no_dataloss
'

test_expect_success 'a hung (SIGSTOP) primary just before a push: the push completes on the others' '
	p=$(primary2_of fo.git) && test -n "$p" &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	kill -STOP $pid &&
	{ push_fo "stop of $p"; rc=$?; kill -CONT $pid; test $rc = 0; } &&
	wait_grep "\"event\":\"cluster.primary_silent\".*\"node\":\"$p\"" c2/cluster.log &&
	wait_grep "\"event\":\"cluster.write_rerouted\".*\"silent_primary\":\"$p\"" c2/cluster.log &&
	on_stores $(for s in s1 s2 s3; do test $s != $p && echo $s; done) &&
	fo_whole && no_dataloss
'

test_expect_success 'a stopped secondary does not make a push hang; it is repaired when it runs again' '
	p=$("$GROVE" cluster -a $c_ADDR repo app1.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	victim=$(for s in s1 s2 s3; do test $s != $p && echo $s; done | head -n1) &&
	pid=$(pgrep -f "store -c $TRASH/$victim/store.conf") &&
	push_held $victim &&
	kill -STOP $pid &&
	touch release &&
	wait_for 90 "the push to end (it may not hang)" test -s push.rc &&
	cat err &&
	test "$(cat push.rc)" = 0 &&
	kill -CONT $pid &&
	no_dataloss &&
	git --git-dir="$(repo_dir $victim app1.git)" merge-base --is-ancestor $(git -C w1 rev-parse HEAD) refs/heads/w1
'

test_expect_success 'a stopped primary: the push ends with a clear error, the next one goes to a new primary' '
	p=$("$GROVE" cluster -a $c_ADDR repo app1.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	: stopped while the push is in its hands, not before the push reached the router &&
	push_held $p &&
	kill -STOP $pid &&
	touch release &&
	wait_for 90 "the push to end (it may not hang)" test -s push.rc &&
	test "$(cat push.rc)" != 0 &&
	test_grep "store $p, the primary replica, .*stopped answering health checks mid-call" err &&
	(cd w1 && GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $((60 * TEST_SCALE)) git push -q ssh://default/app1.git HEAD:refs/heads/w1) &&
	kill -CONT $pid &&
	no_dataloss &&
	git --git-dir="$(repo_dir $p app1.git)" merge-base --is-ancestor $(git -C w1 rev-parse HEAD) refs/heads/w1
'

test_done
