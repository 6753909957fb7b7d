#!/bin/sh
# A network cut of one store from the router, the hard way: the store runs
# in a network namespace of its own, reached over a veth pair, and the test
# takes the link down inside the namespace, so packets vanish (no RST, no
# "connection refused"), the way a switch port or a cable dies. Pushes go on
# meanwhile (several apps, several pushers at once). Checks: writes keep
# being acknowledged on the majority, a refused push says why, no push
# hangs (none reaches its deadline; the longest is measured and printed), no
# acknowledged push is lost, and once the link is back the cut store is
# repaired (all replicas up to date, same checksums, `git fsck --strict`
# clean).
#
# No step waits on the clock: the link goes down once pushes are being
# acknowledged, comes back once the router shows s3 down, several pushes
# started during the cut were acknowledged and each pusher ended one, and
# the pushers stop once the router shows s3 healthy again and pushes
# started after that are acknowledged.
#
# Needs root (ip netns, veth); skipped otherwise.
. "$(dirname "$0")/test-lib.sh"

netns_pair

APPS=4 WORKERS=6
# A push that has not ended after this long hangs (recorded as such).
PUSH_DEADLINE=$((60 * TEST_SCALE))

# worker N: pushes one new commit at a time to branch wN of app (N % APPS)
# until $TRASH/stop exists; records each push in $TRASH/pushes.N as
# "acked|refused|hung MS START_MS APP BRANCH COMMIT" (MS: how long it took),
# and git's messages of a push not acknowledged in $TRASH/refused.N.
worker() {
	n=$1 app=app$(($1 % APPS)).git
	git init -q w$n && cd w$n || return 1
	i=0
	while ! test -f "$TRASH/stop"; do
		i=$((i + 1))
		echo "$n $i" >f && git add f && git commit -q -m "w$n push $i" || return 1
		sha=$(git rev-parse HEAD)
		t0=$(ms)
		rc=0
		GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $PUSH_DEADLINE git push -q ssh://default/$app HEAD:refs/heads/w$n 2>err || rc=$?
		if test $rc = 0; then
			how=acked
		else
			how=refused
			test $rc != 124 || how=hung
			{ echo "$app w$n $sha after $(($(ms) - t0)) ms:"; cat err; } >>"$TRASH/refused.$n"
			# Not acknowledged: the next push carries this commit again.
		fi
		echo "$how $(($(ms) - t0)) $t0 $app w$n $sha" >>"$TRASH/pushes.$n"
	done
}

# acked_since MS N: at least N pushes that started at MS or later were
# acknowledged; 125 (no use waiting) once every worker is done.
acked_since() {
	test "$(cat "$TRASH"/pushes.* 2>/dev/null | awk -v t=$1 '$1 == "acked" && $3 >= t' | wc -l)" -ge "$2" && return 0
	workers_running
}

# each_ended_since MS: every worker recorded a push that started at MS or
# later (so none is still in a push it began before).
each_ended_since() {
	for i in $(seq 1 $WORKERS); do
		awk -v t=$1 '$3 >= t { f = 1 } END { exit !f }' "$TRASH/pushes.$i" 2>/dev/null || { workers_running; return; }
	done
}

# workers_running: 1 (wait on) while a worker runs, 125 once all are done.
workers_running() {
	for w in $pids; do gone $w || return 1; done
	return 125
}

# store_is NAME yes|NO: the router's status shows store NAME healthy (yes)
# or down (NO) now.
store_is() {
	"$GROVE" cluster -a $c_ADDR status >st 2>&1 && grep -q "^  $1 .* $2 " st
}

# The router and the other stores listen on the host's end of the veth, so
# that the namespaced store can reach them (votes, and the peer it repairs
# from); their traffic with each other stays on the host.
test_setup 'two stores on the host, one in a network namespace, a router, four apps' '
	STORE_HOST=$HOST_IP start_store s1 && STORE_HOST=$HOST_IP start_store s2 &&
	s3_WRAP="ip netns exec $NS" && STORE_HOST=$NS_IP start_store s3 &&
	: bounds scaled, so that a slow healthy store is not taken for a dead one &&
	CLUSTER_HOST=$HOST_IP start_cluster c s1 s2 s3 -- cluster.healthInterval=$((300 * TEST_SCALE)) \
		cluster.lagTimeout=$((5000 * TEST_SCALE)) cluster.voteTimeout=$((10000 * TEST_SCALE)) &&
	for a in $(seq 0 $((APPS - 1))); do create_repo $c_ADDR default app$a.git >/dev/null || return 1; done
'

test_expect_success 'the namespaced store is reached over the veth only' '
	test "${s3_ADDR%:*}" = $NS_IP &&
	ip netns identify $s3_PID >ns && test "$(cat ns)" = $NS &&
	"$GROVE" cluster -a $c_ADDR status >st &&
	test $(grep -c "^  s[123] .* yes " st) = 3
'

test_expect_success 'a cut of s3 during pushes: writes go on, nothing lost, s3 repaired' '
	rm -f stop &&
	start_workers $WORKERS worker
	wait_for 60 "$WORKERS pushes to be acknowledged before the cut" acked_since 0 $WORKERS &&
	cut=$(ms) &&
	ip -n $NS link set $VN down &&
	wait_for 60 "the router to show s3 down" store_is s3 NO &&
	wait_for 120 "pushes started during the cut to be acknowledged" acked_since $cut $WORKERS &&
	wait_for 120 "each pusher to end a push started during the cut" each_ended_since $cut &&
	ip -n $NS link set $VN up &&
	healed=$(ms) &&
	wait_for 60 "the router to show s3 healthy again" store_is s3 yes &&
	back=$(ms) &&
	wait_for 60 "pushes started after s3 was back to be acknowledged" acked_since $back $WORKERS &&
	touch stop &&
	wait $pids &&
	stopped=$(ms) &&
	no_dataloss 60 &&
	repaired=$(ms) &&
	cat pushes.* >pushes.all &&
	tried=$(wc -l <pushes.all) &&
	acked=$(grep -c "^acked " pushes.all) &&
	refused=$(grep -c "^refused " pushes.all) || refused=0
	hung=$(grep -c "^hung " pushes.all) || hung=0
	awk -v a=$cut -v b=$healed "\$3 >= a && \$3 < b" pushes.all >during &&
	during=$(wc -l <during) &&
	acked_during=$(grep -c "^acked " during) || acked_during=0
	longest=$(sort -k2,2n pushes.all | tail -n1 | cut -d" " -f2) &&
	grep "^acked " pushes.all | cut -d" " -f4- >acked.all &&
	lost=0 &&
	while read app branch sha; do
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s $app)" merge-base --is-ancestor $sha refs/heads/$branch ||
				{ echo "lost on $s: $app $branch $sha" >&2; lost=$((lost + 1)); }
		done
	done <acked.all &&
	for a in $(seq 0 $((APPS - 1))); do
		a1=$(checksum $s1_ADDR s1 app$a.git) && a2=$(checksum $s2_ADDR s2 app$a.git) && a3=$(checksum $s3_ADDR s3 app$a.git) &&
		test -n "$a1" && test "$a1" = "$a2" && test "$a1" = "$a3" ||
			{ echo "app$a.git: checksums differ: $a1 $a2 $a3" >&2; return 1; }
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s app$a.git)" fsck --strict --no-progress >fsck.out 2>&1 ||
				{ cat fsck.out >&2; return 1; }
		done
	done &&
	echo "# network cut of s3 for $((healed - cut)) ms during pushes (s3 shown healthy again $((back - healed)) ms after the link came back): tried $tried, acknowledged $acked, refused $refused, hung $hung, lost $lost; $during pushes started during the cut, $acked_during of them acknowledged; longest push $longest ms; every replica up to date $((repaired - healed)) ms after the link came back ($((repaired - stopped)) ms after the last push)" >"$TRASH/report" &&
	if test "$refused" -gt 0; then cat refused.* | sed -e "s/^/#   refused: /" >>"$TRASH/report"; fi &&
	test "$lost" = 0 &&
	: the majority took writes while s3 was cut off &&
	test "$acked_during" -gt 0 &&
	: no push hangs: none was still running at its deadline &&
	test "$hung" = 0 &&
	test "$acked" -gt $((tried / 2)) &&
	if test "$refused" -gt 0; then
		grep -h -e "^fatal: grove connect: " -e "^error: grove: " -e "^fatal: grove: " refused.* >why &&
		test $(wc -l <why) -ge "$refused" ||
			{ cat refused.* >&2; false; }
	fi
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_done
