#!/bin/sh
# A store's disk fills up. One store of a cluster keeps its repositories on
# a small tmpfs the test mounts and fills: pushes either succeed on the
# majority or end with an error that says the disk is full; no replica is
# ever corrupt; once space returns, the full store's replicas are repaired.
# A single store (no cluster) with a full disk refuses a push with a message
# that names the disk and what to do, and the repository is unchanged.
#
# Needs root (mount -t tmpfs); skipped otherwise.
. "$(dirname "$0")/test-lib.sh"

require_root "mount -t tmpfs"
APPS=4

# small_root NAME MiB: a tmpfs of that size as NAME's storage root, unmounted
# when the test ends.
small_root() {
	mkdir -p "$TRASH/$1/repositories" &&
	mount -t tmpfs -o size=${2}m tmpfs "$TRASH/$1/repositories" 2>"$TRASH/mount.err" || return 1
	at_exit "umount '$TRASH/$1/repositories' 2>/dev/null || umount -l '$TRASH/$1/repositories'"
}
small_root s3 32 || skip_all "cannot mount a tmpfs: $(cat "$TRASH/mount.err")"
small_root s4 8 || skip_all "cannot mount a tmpfs: $(cat "$TRASH/mount.err")"

# fill NAME KEEP_KiB: a filler file in NAME's storage root that leaves about
# KEEP_KiB free (0: the disk is full to the last block).
fill() {
	root=$TRASH/$1/repositories
	rm -f "$root/filler" &&
	avail=$(df -k --output=avail "$root" | tail -n1) &&
	if test "$2" = 0; then
		dd if=/dev/zero of="$root/filler" bs=64k 2>/dev/null; true
	else
		dd if=/dev/zero of="$root/filler" bs=1k count=$((avail - $2)) 2>/dev/null
	fi
}

# push_round LABEL: one new commit (a 2 MiB incompressible file) pushed to
# each app through the router; records "acked|refused APP COMMIT" in
# pushes.LABEL and git's messages of refused pushes in refused.LABEL.
push_round() {
	for a in $(seq 0 $((APPS - 1))); do
		(cd w$a && dd if=/dev/urandom of=blob bs=1k count=2048 2>/dev/null && git add blob &&
			git commit -q -m "$1 app$a" && sha=$(git rev-parse HEAD) &&
			if GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $((120 * TEST_SCALE)) git push -q ssh://default/app$a.git HEAD:refs/heads/main 2>err; then
				echo "acked app$a.git $sha" >>../pushes.$1
			else
				echo "refused app$a.git $sha" >>../pushes.$1 &&
				{ echo "app$a.git $sha:"; cat err; } >>../refused.$1 &&
				git reset -q --hard HEAD~1
			fi) || return 1
	done
}

# Every refused push of round LABEL said why: the disk is full.
refusals_are_clear() {
	test -f refused.$1 || return 0
	sed -e "s/^/#   $1 refused: /" refused.$1 >>"$TRASH/report"
	for sha in $(grep "^refused " pushes.$1 | cut -d" " -f3); do
		sed -n "/$sha:/,/^app[0-9]*\.git [0-9a-f]*:\$/p" refused.$1 >refused.one &&
		grep -q -e "No space left on device" -e "its disk is full" refused.one ||
			{ echo "push $sha was refused without saying the disk is full:" >&2; cat refused.one >&2; return 1; }
	done
}

test_setup 'three stores (s3 on a 32 MiB tmpfs), a router, four apps with a first push' '
	start_store s1 && start_store s2 && start_store s3 store.minFreeSpace=1m &&
	METRICS_PORT=$(free_port) && echo $METRICS_PORT >metrics.port &&
	: bounds scaled, so that a slow healthy store is not taken for a dead one &&
	start_cluster c s1 s2 s3 -- cluster.metricsListen=127.0.0.1:$METRICS_PORT \
		cluster.healthInterval=$((300 * TEST_SCALE)) cluster.lagTimeout=$((5000 * TEST_SCALE)) \
		cluster.voteTimeout=$((10000 * TEST_SCALE)) &&
	for a in $(seq 0 $((APPS - 1))); do
		create_repo $c_ADDR default app$a.git >/dev/null &&
		git init -q w$a && (cd w$a && echo $a >f && git add f && git commit -q -m "app$a" &&
			GIT_SSH_COMMAND="$GROVE connect $c_ADDR" git push -q ssh://default/app$a.git HEAD:refs/heads/main) || return 1
	done &&
	no_dataloss
'

test_expect_success 's3 fills up mid-push: pushes succeed on the majority or say the disk is full, nothing corrupt' '
	fill s3 1536 &&
	push_round mid &&
	tried=$(wc -l <pushes.mid) && acked=$(grep -c "^acked " pushes.mid) || acked=0
	refused=$((tried - acked)) &&
	echo "# s3 full mid-push (1.5 MiB free, 2 MiB pushed): tried $tried, acknowledged $acked, refused $refused" >>"$TRASH/report" &&
	refusals_are_clear mid &&
	test "$acked" -gt 0 &&
	for a in $(seq 0 $((APPS - 1))); do
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s app$a.git)" fsck --strict --no-progress >fsck.out 2>&1 ||
				{ echo "$s app$a.git:" >&2; cat fsck.out >&2; return 1; }
		done
	done
'

test_expect_success 's3 full to the last block: the router sees it, s3 sits writes out, every push is acknowledged' '
	fill s3 0 &&
	wait_for 30 "the router to show s3 DISKFULL" eval \
		'"'"'"$GROVE" cluster -a $c_ADDR status >st 2>&1 && grep -q "^  s3 .*DISKFULL" st'"'"' &&
	test_grep "^  s3 .*DISKFULL .*disk below store.minFreeSpace" st &&
	curl -s "http://127.0.0.1:$(cat metrics.port)/metrics" | test_grep "grove_cluster_store_writable{store=\"s3\"} 0" &&
	push_round full &&
	tried=$(wc -l <pushes.full) && acked=$(grep -c "^acked " pushes.full) || acked=0
	refused=$((tried - acked)) &&
	echo "# s3 full (0 bytes free): tried $tried, acknowledged $acked, refused $refused" >>"$TRASH/report" &&
	refusals_are_clear full &&
	test "$acked" = "$tried" &&
	wait_grep "cluster.node_read_only.*\"node\":\"s3\"" c/cluster.log &&
	"$GROVE" cluster -a $c_ADDR dataloss >dl &&
	test_grep "s3" dl &&
	: s3 logs the writes it could not take, the repairs among them, which may come after the pushes &&
	wait_grep "disk_full\|No space left" s3/store.log
'

test_expect_success 'space returns: s3 is repaired, every acknowledged push is on every replica, fsck clean' '
	freed=$(ms) &&
	rm -f s3/repositories/filler &&
	: the repairs that failed while the disk was full retry after a backoff of up to a minute &&
	no_dataloss 120 &&
	repaired=$(ms) &&
	cat pushes.mid pushes.full | grep "^acked " >acked.all &&
	lost=0 &&
	while read how app sha; do
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s $app)" merge-base --is-ancestor $sha refs/heads/main ||
				{ echo "lost on $s: $app $sha" >&2; lost=$((lost + 1)); }
		done
	done <acked.all &&
	for a in $(seq 0 $((APPS - 1))); do
		a1=$(checksum $s1_ADDR s1 app$a.git) && a3=$(checksum $s3_ADDR s3 app$a.git) &&
		test -n "$a1" && test "$a1" = "$a3" || { echo "app$a.git differs on s3" >&2; return 1; }
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s app$a.git)" fsck --strict --no-progress >fsck.out 2>&1 ||
				{ echo "$s app$a.git:" >&2; cat fsck.out >&2; return 1; }
		done
	done &&
	echo "# space back on s3: lost $lost, every replica up to date $((repaired - freed)) ms after the filler was removed" >>"$TRASH/report" &&
	test "$lost" = 0
'

test_setup 'a single store on an 8 MiB tmpfs' '
	start_store s4 store.minFreeSpace=1m
'

test_expect_success 'a single store with a full disk: a clear error, the repository unchanged' '
	create_repo $s4_ADDR s4 one.git >/dev/null &&
	make_history one &&
	git_on $s4_ADDR -C one push -q ssh://s4/one.git main &&
	git --git-dir="$(repo_dir s4 one.git)" for-each-ref >before &&
	fill s4 0 &&
	(cd one && echo more >>file1.txt && git commit -q -am more) &&
	test_must_fail git_on $s4_ADDR -C one push ssh://s4/one.git main 2>err &&
	sed -e "s/^/#   single store, disk full: /" err >>"$TRASH/report" &&
	test_grep "store s4: its disk is full (.* KiB free under .*): the push was refused before anything was written; free space on that disk" err &&
	git --git-dir="$(repo_dir s4 one.git)" for-each-ref >after &&
	test_cmp before after &&
	git --git-dir="$(repo_dir s4 one.git)" fsck --strict --no-progress
'

test_expect_success 'a single store whose disk fills mid-push: git says "No space left on device", the repository unchanged' '
	git config -f s4/store.conf store.minFreeSpace 0 &&
	stop_store s4 && restart_store s4 &&
	fill s4 1024 &&
	(cd one && dd if=/dev/urandom of=blob bs=1k count=4096 2>/dev/null && git add blob && git commit -q -m blob) &&
	test_must_fail git_on $s4_ADDR -C one push ssh://s4/one.git main 2>err &&
	sed -e "s/^/#   single store, disk fills mid-push: /" err >>"$TRASH/report" &&
	test_grep "No space left on device" err &&
	git --git-dir="$(repo_dir s4 one.git)" for-each-ref >after &&
	test_cmp before after &&
	git --git-dir="$(repo_dir s4 one.git)" fsck --strict --no-progress &&
	: and with space back, the same push goes through &&
	rm -f s4/repositories/filler &&
	git_on $s4_ADDR -C one push -q ssh://s4/one.git main &&
	git --git-dir="$(repo_dir s4 one.git)" fsck --strict --no-progress
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_done
