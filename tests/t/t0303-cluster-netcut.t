#!/bin/sh
# A network cut of one store from the router, the hard way: the store runs
# in a network namespace of its own, reached over a veth pair, and the test
# takes the link down inside the namespace, so packets vanish (no RST, no
# "connection refused"), the way a switch port or a cable dies. Pushes go on
# meanwhile (several apps, several pushers at once). Checks: writes keep
# being acknowledged on the majority, a refused push says why, no push
# hangs (the longest is measured and printed), no acknowledged push is lost,
# and once the link is back the cut store is repaired (all replicas up to
# date, same checksums, `git fsck --strict` clean).
#
# Needs root (ip netns, veth); skipped otherwise.
. "$(dirname "$0")/test-lib.sh"

netns_pair

APPS=4 WORKERS=6 CUT_SECONDS=6

# worker N: pushes one new commit at a time to branch wN of app (N % APPS)
# until $TRASH/stop exists; records each push in $TRASH/pushes.N as
# "acked|refused MS START_MS APP BRANCH COMMIT" (MS: how long it took), and
# git's messages of a refused push in $TRASH/refused.N.
worker() {
	n=$1 app=app$(($1 % APPS)).git
	git init -q w$n && cd w$n || return 1
	i=0
	while ! test -f "$TRASH/stop"; do
		i=$((i + 1))
		echo "$n $i" >f && git add f && git commit -q -m "w$n push $i" || return 1
		sha=$(git rev-parse HEAD)
		t0=$(ms)
		if GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout 120 git push -q ssh://default/$app HEAD:refs/heads/w$n 2>err; then
			how=acked
		else
			how=refused
			{ echo "$app w$n $sha after $(($(ms) - t0)) ms:"; cat err; } >>"$TRASH/refused.$n"
			# Not acknowledged: the next push carries this commit again.
		fi
		echo "$how $(($(ms) - t0)) $t0 $app w$n $sha" >>"$TRASH/pushes.$n"
	done
}

# The router and the other stores listen on the host's end of the veth, so
# that the namespaced store can reach them (votes, and the peer it repairs
# from); their traffic with each other stays on the host.
test_setup 'two stores on the host, one in a network namespace, a router, four apps' '
	STORE_HOST=$HOST_IP start_store s1 && STORE_HOST=$HOST_IP start_store s2 &&
	s3_WRAP="ip netns exec $NS" && STORE_HOST=$NS_IP start_store s3 &&
	CLUSTER_HOST=$HOST_IP start_cluster c s1 s2 s3 &&
	for a in $(seq 0 $((APPS - 1))); do create_repo $c_ADDR default app$a.git >/dev/null || return 1; done
'

test_expect_success 'the namespaced store is reached over the veth only' '
	test "${s3_ADDR%:*}" = $NS_IP &&
	ip netns identify $s3_PID >ns && test "$(cat ns)" = $NS &&
	"$GROVE" cluster -a $c_ADDR status >st &&
	test $(grep -c "^  s[123] .* yes " st) = 3
'

test_expect_success 'a cut of s3 for several seconds during pushes: writes go on, nothing lost, s3 repaired' '
	rm -f stop &&
	start_workers $WORKERS worker
	sleep 2 &&
	cut=$(ms) &&
	ip -n $NS link set $VN down &&
	sleep $CUT_SECONDS &&
	ip -n $NS link set $VN up &&
	healed=$(ms) &&
	sleep 2 &&
	touch stop &&
	wait $pids &&
	stopped=$(ms) &&
	no_dataloss 60 &&
	repaired=$(ms) &&
	cat pushes.* >pushes.all &&
	tried=$(wc -l <pushes.all) &&
	acked=$(grep -c "^acked " pushes.all) &&
	refused=$(grep -c "^refused " pushes.all) || refused=0
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
	echo "# network cut of s3 for ${CUT_SECONDS} s during pushes: tried $tried, acknowledged $acked, refused $refused, lost $lost; $during pushes started during the cut, $acked_during of them acknowledged; longest push $longest ms; every replica up to date $((repaired - healed)) ms after the link came back ($((repaired - stopped)) ms after the last push)" >"$TRASH/report" &&
	if test "$refused" -gt 0; then cat refused.* | sed -e "s/^/#   refused: /" >>"$TRASH/report"; fi &&
	test "$lost" = 0 &&
	: the majority took writes while s3 was cut off &&
	test "$acked_during" -gt 0 &&
	test "$longest" -lt 30000 &&
	test "$acked" -gt $((tried / 2)) &&
	if test "$refused" -gt 0; then
		grep -h -e "^fatal: grove connect: " -e "^error: grove: " -e "^fatal: grove: " refused.* >why &&
		test $(wc -l <why) -ge "$refused" ||
			{ cat refused.* >&2; false; }
	fi
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_done
