#!/bin/sh
# Faults under load, through the cluster router: a store killed with -9 in
# the middle of 200 pushes (eight at a time, several to the same app) loses
# no push that git reported as accepted, and every replica is whole
# (`git fsck --strict`) once repaired; a stopped (SIGSTOP) store does not
# make pushes hang, whether it is a secondary or the primary. Prints, for the kill: pushes tried, acknowledged,
# refused, lost (must be 0), and the time to full repair.
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
		if GIT_SSH_COMMAND="$GROVE connect $c_ADDR" git push -q ssh://default/$app HEAD:refs/heads/w$n 2>err; then
			echo "$app w$n $sha" >>"$TRASH/acked.$n"
		else
			{ echo "$app w$n $sha"; cat err; } >>"$TRASH/refused.$n"
			# Not acknowledged: the next push carries this commit again.
		fi
		echo "$app w$n $sha" >>"$TRASH/tried.$n"
	done
}

test_setup 'three stores, a router and five apps' '
	start_store s1 && start_store s2 && start_store s3 &&
	start_cluster c s1 s2 s3 &&
	for a in $(seq 0 $((APPS - 1))); do create_repo $c_ADDR default app$a.git >/dev/null || return 1; done
'

test_expect_success 'kill -9 of a store during 200 pushes: no acknowledged push lost, replicas whole after repair' '
	start_workers $WORKERS worker
	sleep 3 &&
	pkill -9 -f "store -c $TRASH/s2/store.conf" &&
	killed=$(date +%s%N) &&
	sleep 3 &&
	restart_store s2 &&
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
	echo "# kill -9 of s2 during pushes: tried $tried, acknowledged $acked, refused $refused, lost $lost; pushes ran $(( (done_ms - killed) / 1000000 )) ms past the kill (s2 down for 3 s of it); every replica up to date $(( (repaired - done_ms) / 1000000 )) ms after the last push" >"$TRASH/report" &&
	test "$tried" = $((WORKERS * PUSHES)) &&
	test "$lost" = 0 &&
	test "$acked" -gt 0 &&
	if test "$refused" -gt 0; then
		grep -h -e "^fatal: grove connect: " -e "^error: grove: " refused.* >why || true
		sed "s/^/#   refused: /" why >>"$TRASH/report" &&
		test $(wc -l <why) -ge "$refused" &&
		! grep -v -e "the primary replica, .* a new primary is elected within seconds; retry" \
			-e "ref update not committed" -e "are healthy and up to date; a write needs" why ||
			{ cat refused.* >&2; false; }
	fi
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_expect_success 'a stopped secondary does not make a push hang; it is repaired when it runs again' '
	p=$("$GROVE" cluster -a $c_ADDR repo app1.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	victim=$(for s in s1 s2 s3; do test $s != $p && echo $s; done | head -n1) &&
	pid=$(pgrep -f "store -c $TRASH/$victim/store.conf") &&
	kill -STOP $pid &&
	(cd w1 && echo stopped >f && git commit -q -am "while $victim is stopped" &&
		GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout 60 git push -q ssh://default/app1.git HEAD:refs/heads/w1) &&
	kill -CONT $pid &&
	no_dataloss &&
	git --git-dir="$(repo_dir $victim app1.git)" merge-base --is-ancestor $(git -C w1 rev-parse HEAD) refs/heads/w1
'

test_expect_success 'a stopped primary: the push ends with a clear error, the next one goes to a new primary' '
	p=$("$GROVE" cluster -a $c_ADDR repo app1.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	kill -STOP $pid &&
	(cd w1 && echo stopped-primary >f && git commit -q -am "while the primary $p is stopped" &&
		! GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout 60 git push -q ssh://default/app1.git HEAD:refs/heads/w1 2>../err) &&
	test_grep "store $p, the primary replica, .*stopped answering health checks mid-call" err &&
	(cd w1 && GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout 60 git push -q ssh://default/app1.git HEAD:refs/heads/w1) &&
	kill -CONT $pid &&
	no_dataloss &&
	git --git-dir="$(repo_dir $p app1.git)" merge-base --is-ancestor $(git -C w1 rev-parse HEAD) refs/heads/w1
'

test_done
