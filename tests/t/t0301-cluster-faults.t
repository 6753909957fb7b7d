#!/bin/sh
# Faults under load, through the cluster router: a store killed with -9 in
# the middle of 200 pushes (eight at a time, several to the same app) loses
# no push that git reported as accepted, and every replica is whole
# (`git fsck --strict`) once repaired; a stopped (SIGSTOP) store does not
# make pushes hang, whether it is a secondary or the primary; a primary that
# is dead or hung when a push arrives (before the health checks know) does
# not cost the push: it goes to the others; a push answered at its quorum
# while a replica trails, and the next push waiting for that replica
# (cluster.lateWait) or, past it, going on without it. Prints, for the
# kill: pushes tried, acknowledged, refused, lost (must be 0), and the time
# to full repair.
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
		# HOLD_BYTES: that much goes through first (one byte at a time:
		# nothing past it is read ahead).
		test "\${HOLD_BYTES:-0}" -gt 0 && dd bs=1 count="\$HOLD_BYTES" 2>/dev/null
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
# push_held STORE [BYTES]: a push to app1.git, held before its client sends
# anything (or after BYTES of its commands and pack) until "release" exists.
push_held() {
	rm -f held release push.rc err &&
	(cd w1 && echo "$1 $(date +%s%N)" >f && git commit -q -am "while $1 is stopped") || return 1
	if test -n "${2:-}"; then
		(cd w1 && head -c 1048576 /dev/urandom >big && git add big && git commit -q -m "1 MiB more") || return 1
	fi
	# set +e: the exit code of a failed push is written too.
	(set +e; cd w1 && HOLD_BYTES=${2:-0} HOLD_ADDR=$c_ADDR GIT_SSH_COMMAND="$TRASH/held-connect" timeout $((60 * TEST_SCALE)) \
		git push -q ssh://default/app1.git HEAD:refs/heads/w1 2>../err; echo $? >../push.rc) &
	wait_for 30 "the push to reach $1" eval "test -e held && pgrep -f 'receive-pack $(repo_dir $1 app1.git)'"
}

# push_released: lets the push push_held holds go on, waits for it to end
# (it may not hang) and shows what its client was told; its exit code is
# in push.rc.
push_released() {
	touch release &&
	wait_for 90 "the push to end (it may not hang)" test -s push.rc &&
	cat err
}

test_setup 'three stores, a router and five apps' '
	: a replica that trails a push runs its git at nice 10, through a spool &&
	for s in s1 s2 s3; do
		start_store $s store.trailingNice=10 store.metricsListen=127.0.0.1:$(free_port) || return 1
	done &&
	: bounds scaled, so that a slow healthy store is not taken for a dead one &&
	METRICS_PORT=$(free_port) &&
	start_cluster c s1 s2 s3 -- cluster.healthInterval=$((300 * TEST_SCALE)) \
		cluster.lagTimeout=$((5000 * TEST_SCALE)) cluster.voteTimeout=$((10000 * TEST_SCALE)) \
		cluster.metricsListen=127.0.0.1:$METRICS_PORT &&
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
			-e "failed mid-push, and another push had landed on the others meanwhile: fetch, then push again" \
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

test_expect_success 'kill -9 of a store: reads through a router that has not noticed go to the other replicas' '
	fo_whole &&
	p=$(primary2_of fo.git) && test -n "$p" &&
	victim=$(for s in s1 s2 s3; do test $s != $p && echo $s; done | head -n1) &&
	pid=$(pgrep -f "store -c $TRASH/$victim/store.conf") &&
	kill -9 $pid &&
	wait_for 30 "store $victim to be gone" gone $pid &&
	: reads are spread over the replicas: some go to $victim first &&
	for i in 1 2 3 4 5 6; do
		GIT_SSH_COMMAND="$GROVE connect $c2_ADDR" timeout $((60 * TEST_SCALE)) \
			git ls-remote ssh://default/fo.git >ls.$i || return 1
		test "$(grep refs/heads/main ls.$i | cut -f1)" = "$(git -C fo rev-parse HEAD)" || return 1
	done &&
	wait_grep "\"event\":\"cluster.read_rerouted\".*\"node\":\"$victim\"" c2/cluster.log &&
	restart_store $victim &&
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
	push_released &&
	test "$(cat push.rc)" = 0 &&
	kill -CONT $pid &&
	no_dataloss &&
	git --git-dir="$(repo_dir $victim app1.git)" merge-base --is-ancestor $(git -C w1 rev-parse HEAD) refs/heads/w1
'

# primary_of PATH: the repository's primary on the first router.
primary_of() {
	"$GROVE" cluster -a $c_ADDR repo "$1" | sed -n "s/.*primary \([^,]*\),.*/\1/p"
}

# pushed_to STORE...: the held push's commit is on each STORE's app1.git.
pushed_to() {
	for s in "$@"; do
		git --git-dir="$(repo_dir $s app1.git)" merge-base --is-ancestor $(git -C w1 rev-parse HEAD) refs/heads/w1 ||
			return 1
	done
}

others() {
	for s in s1 s2 s3; do test $s != $1 && echo $s; done
}

# back_whole STORE: STORE, a primary killed mid-push, started again: it
# takes the push it missed, and nothing is lost.
back_whole() {
	restart_store $1 &&
	no_dataloss &&
	pushed_to $1
}

# reloads: how many times router c read its configuration again.
reloads() {
	grep -c "\"event\":\"cluster.reloaded\"" c/cluster.log || :
}

# resumes: how many pushes router c went on with on another primary.
resumes() {
	grep -c "\"event\":\"cluster.push_resumed\"" c/cluster.log || :
}

# reload_c KEY VALUE: sets KEY in router c's configuration, and waits until
# it read it again (SIGHUP).
reload_c() {
	n=$(reloads) && git config -f c/cluster.conf "$1" "$2" && kill -HUP $c_PID &&
	wait_for 30 "router c to read its configuration again" eval "test \$(reloads) -gt $n"
}

# index_pack_exe STORE: the program that STORE's receive-pack of app1.git
# runs now to take the pack in (unpack-objects: fewer than 100 objects).
index_pack_exe() {
	rp=$(pgrep -f "receive-pack $(repo_dir $1 app1.git)") &&
		ip=$(pgrep -P "$rp" -f "index-pack|unpack-objects") &&
		readlink /proc/$ip/exe
}

test_expect_success 'the secondaries of a push run the replica git (no second SHA-1 collision check), the primary the primary git (with it)' '
	replica_git=/usr/local/lib/grove/git/git primary_git=/usr/local/lib/grove/git-primary/git &&
	for g in $replica_git $primary_git; do
		test -x $g || { echo "no $g: scripts/install-deps builds it" >&2; return 1; }
	done &&
	! grep "\"event\":\"store.\(replica\|primary\)_git_missing\"" s1/store.log s2/store.log s3/store.log &&
	: the primary git names objects with sha1dc, which dies on a collision attack, the replica git does not &&
	grep -q "part of a collision attack" $primary_git && ! grep -q "part of a collision attack" $replica_git &&
	p=$(primary_of app1.git) &&
	: held mid-pack, every replica indexing it &&
	push_held $p 300000 &&
	{
		wait_for 30 "each store to index the pack" eval \
			"index_pack_exe s1 >/dev/null && index_pack_exe s2 >/dev/null && index_pack_exe s3 >/dev/null" &&
			for s in s1 s2 s3; do echo "$s $(index_pack_exe $s)"; done >exes
		rc=$?; touch release; test $rc = 0
	} &&
	cat exes &&
	test_grep "^$p $primary_git$" exes &&
	test $(grep -c " $replica_git$" exes) = 2 &&
	wait_for 90 "the push to end" test -s push.rc &&
	cat err && test "$(cat push.rc)" = 0 &&
	pushed_to s1 s2 s3 && no_dataloss
'

# last_corr PATTERN: the correlation id of router c's last log line matching PATTERN.
last_corr() {
	grep "$1" c/cluster.log | tail -n 1 | sed -n "s/.*\"correlation_id\":\"\([0-9a-f]*\)\".*/\1/p"
}

# fsck_clean STORE...: each STORE's app1.git passes git fsck --strict.
fsck_clean() {
	for s in "$@"; do
		git --git-dir="$(repo_dir $s app1.git)" fsck --strict --no-progress || return 1
	done
}

# push_files N [EDIT]: a commit of N files of 300 lines each under many/ in
# w1 (EDIT: one line more in each), pushed to app1.git; then the
# correlation id of its write in $corr. More than 100 objects: the stores'
# receive-pack take the pack with index-pack, not unpack-objects. Edited,
# each file is sent as a delta against the one the stores have: a thin pack.
push_files() {
	(cd w1 && mkdir -p many &&
		for i in $(seq 1 $1); do
			if test -n "${2:-}"; then echo "$2" >>many/$i; else { echo "$i $(date +%s%N)"; seq 1 300; } >many/$i; fi ||
				return 1
		done &&
		git add many && git commit -q -m "$1 files ${2:-}" &&
		GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $((120 * TEST_SCALE)) \
			git push -q ssh://default/app1.git HEAD:refs/heads/w1) &&
	corr=$(last_corr "\"event\":\"cluster.write\".*\"repo\":\"app1.git\"") &&
	test -n "$corr"
}

# pack_index_used OUTCOME STORE...: each STORE's git, a secondary of the
# last push, reported OUTCOME ("took", or the start of "indexed: …").
pack_index_used() {
	want=$1 && shift &&
	for s in "$@"; do
		test_grep "\"event\":\"txn.pack_index_used\",\"correlation_id\":\"$corr\".*\"outcome\":\"$want" $s/store.log ||
			return 1
	done
}

# whole_everywhere: the pushed commit on every store, each copy fsck-clean.
whole_everywhere() {
	pushed_to s1 s2 s3 &&
	fsck_clean s1 s2 s3 &&
	no_dataloss
}

test_expect_success 'the secondaries of a push take the primary'"'"'s index of its pack instead of indexing it again' '
	patch_id=$(sha256sum <"$TEST_DIR/../../scripts/replica-git.patch" | cut -c1-16) &&
	{ grep -q "replica-git.patch $patch_id\$" /usr/local/lib/grove/git/STAMP ||
		{ echo "the replica git predates scripts/replica-git.patch: run scripts/build-replica-git" >&2; false; }; } &&
	p=$(primary_of app1.git) &&
	push_files 150 &&
	test_grep "\"event\":\"txn.pack_index_shared\",\"correlation_id\":\"$corr\"" $p/store.log &&
	test_grep "\"event\":\"cluster.pack_index_shared\".*\"ok\":true" c/cluster.log &&
	pack_index_used took $(others $p) &&
	whole_everywhere &&
	for s in $(others $p); do
		curl -sf http://$(git config -f $s/store.conf store.metricsListen)/metrics >m.$s || return 1
		test_grep "^grove_store_pack_index_total{store=\"$s\",outcome=\"took\"} [1-9]" m.$s || return 1
	done
'

test_expect_success 'a thin pack, whose index the primary completed with objects it had, the secondaries index themselves' '
	p=$(primary_of app1.git) &&
	push_files 150 "one line more" &&
	pack_index_used "indexed: the index does not fit this pack" $(others $p) &&
	whole_everywhere
'

test_expect_success 'an index over cluster.maxPackIndex is not held: the secondaries index the pack, the push lands' '
	reload_c cluster.maxPackIndex 1000 &&
	p=$(primary_of app1.git) &&
	push_files 120 &&
	test_grep "\"event\":\"txn.pack_index_not_shared\",\"correlation_id\":\"$corr\".*cluster.maxPackIndex" $p/store.log &&
	pack_index_used "indexed: no index" $(others $p) &&
	whole_everywhere &&
	reload_c cluster.maxPackIndex 64m
'

test_expect_success 'a push of 100 new tags: the secondaries write them to packed-refs at once, to the same refs as the primary'"'"'s' '
	test_grep "\"event\":\"store.started\".*\"packed_ref_updates\":32" s1/store.log &&
	p=$(primary_of app1.git) &&
	c=$(git -C w1 rev-parse HEAD) &&
	seq 1 100 | sed "s|.*|create refs/tags/pk-& $c|" | git -C w1 update-ref --stdin &&
	(cd w1 && GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $((120 * TEST_SCALE)) \
		git push -q ssh://default/app1.git "refs/tags/pk-*:refs/tags/pk-*") &&
	corr=$(last_corr "\"event\":\"cluster.write\".*\"repo\":\"app1.git\"") &&
	! grep "\"event\":\"cluster.diverged\".*\"correlation_id\":\"$corr\"" c/cluster.log &&
	for s in s1 s2 s3; do
		d=$(repo_dir $s app1.git) &&
		git --git-dir="$d" for-each-ref refs/tags/pk-* >refs.$s &&
		find "$d/refs/tags" -name "pk-*" | wc -l >loose.$s || return 1
	done &&
	test $(wc -l <refs.$p) = 100 &&
	for s in $(others $p); do
		test_cmp refs.$p refs.$s && test "$(cat loose.$s)" = 0 || return 1
	done &&
	test "$(cat loose.$p)" = 100 &&
	no_dataloss
'

test_expect_success 'a push is answered once a quorum took it: a stopped secondary takes it late, when it runs again' '
	: the default, which start_cluster turns off &&
	reload_c cluster.trailingWait 50 &&
	p=$("$GROVE" cluster -a $c_ADDR repo app1.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	no_dataloss &&
	victim=$(for s in s1 s2 s3; do test $s != $p && echo $s; done | tail -n1) &&
	pid=$(pgrep -f "store -c $TRASH/$victim/store.conf") &&
	writes=$(grep -c "\"event\":\"cluster.write\".*\"repo\":\"app1.git\"" c/cluster.log) &&
	push_held $victim &&
	kill -STOP $pid &&
	touch release &&
	wait_for 90 "the push to end" test -s push.rc &&
	{ stopped=$(ps -o stat= -p $pid); kill -CONT $pid; } &&
	cat err && test "$(cat push.rc)" = 0 &&
	: the client was answered while the victim was still stopped, by the two others &&
	case "$stopped" in T*) ;; *) false ;; esac &&
	grep "\"event\":\"cluster.write\".*\"repo\":\"app1.git\"" c/cluster.log | tail -n +$((writes + 1)) >w &&
	test_grep "\"replicas\":2," w &&
	: once it runs, the victim takes the push itself: caught up, not repaired &&
	wait_grep "\"event\":\"cluster.caught_up\".*\"repo\":\"app1.git\".*\"node\":\"$victim\"" c/cluster.log &&
	! grep "\"event\":\"cluster.outdated\".*\"repo\":\"app1.git\".*\"node\":\"$victim\".*\"late\":true" c/cluster.log &&
	pushed_to $victim &&
	no_dataloss &&
	: the trailing replica, the last secondary, took it through its spool, at nice 10 &&
	corr=$(last_corr "\"event\":\"cluster.write\".*\"repo\":\"app1.git\"") &&
	test $(cat s1/store.log s2/store.log s3/store.log | grep -c "\"event\":\"ssh.trailing\",\"correlation_id\":\"$corr\".*\"nice\":10") = 1 &&
	reload_c cluster.trailingWait 600000
'

# push_w1 FILE: one more commit on w1 pushed to app1.git through router c,
# in the background; its exit code lands in FILE.
push_w1() {
	(cd w1 && echo "$1 $(date +%s%N)" >f && git commit -q -am "$1") || return 1
	(set +e; cd w1 && GIT_SSH_COMMAND="$GROVE connect $c_ADDR" timeout $((120 * TEST_SCALE)) \
		git push -q ssh://default/app1.git HEAD:refs/heads/w1 2>../err2; echo $? >../$1) &
}

# late_push LATEWAIT: router c answers pushes at quorum, waits LATEWAIT ms
# for late replicas, and lets a late one run as long as it needs (no clock
# decides); a push to app1.git is then held until its last secondary, the
# victim ($victim, pid $pid), runs it, the victim is stopped and the push
# released. The router's log lines from then on go on past line $lines.
# late_counted: router c logged, since line $lines of its log, what became of
# a late replica it had to repair (the metrics count it at the same time).
late_counted() {
	tail -n +$((lines + 1)) c/cluster.log | grep -q "\"event\":\"cluster.outdated\".*\"late\":true"
}

late_push() {
	reload_c cluster.trailingWait 50 && reload_c cluster.lateWait $1 && reload_c cluster.lagTimeout 600000 &&
	victim=$(others $(primary_of app1.git) | tail -n1) &&
	pid=$(pgrep -f "store -c $TRASH/$victim/store.conf") &&
	lines=$(wc -l <c/cluster.log) &&
	push_held $victim && kill -STOP $pid && touch release
}

test_expect_success 'the next push waits for the replica still ending the last one: it takes both, no repair' '
	no_dataloss &&
	late_push 600000 &&
	wait_for 90 "the first push to end" test -s push.rc &&
	test "$(cat push.rc)" = 0 &&
	: a second push to the same repository waits for the late victim &&
	rm -f push2.rc &&
	push_w1 push2.rc &&
	: it then answers once every replica took it: the victim, just resumed, is not late again &&
	{
		wait_grep "\"event\":\"cluster.late_wait\".*\"repo\":\"app1.git\"" c/cluster.log &&
			reload_c cluster.trailingWait 600000 && waiting=$(test -e push2.rc && echo ended || echo waiting)
		rc=$?; kill -CONT $pid; test $rc = 0
	} &&
	test $waiting = waiting &&
	wait_for 90 "the second push to end" test -s push2.rc &&
	cat err2 && test "$(cat push2.rc)" = 0 &&
	: the first write by two replicas, the victim caught up, the second by all three &&
	tail -n +$((lines + 1)) c/cluster.log >log &&
	grep "\"event\":\"cluster.write\".*\"repo\":\"app1.git\"" log >w &&
	test_grep "\"replicas\":2," w &&
	test_grep "\"replicas\":3," w &&
	test_grep "\"event\":\"cluster.caught_up\".*\"repo\":\"app1.git\".*\"node\":\"$victim\"" log &&
	test_grep "\"event\":\"cluster.waited_late\".*\"repo\":\"app1.git\".*\"still_running\":false" log &&
	! grep "\"event\":\"cluster.outdated\".*\"repo\":\"app1.git\".*\"node\":\"$victim\"" log &&
	pushed_to s1 s2 s3 &&
	no_dataloss &&
	reload_c cluster.lateWait 2000 &&
	reload_c cluster.lagTimeout $((5000 * TEST_SCALE))
'

test_expect_success 'cluster.lateWait bounds that wait: past it, the next push goes on without the late replica, which is repaired' '
	{
		late_push 300 &&
			wait_for 90 "the first push to end" test -s push.rc && test "$(cat push.rc)" = 0 &&
			rm -f push3.rc && push_w1 push3.rc && wait_for 90 "the second push to end" test -s push3.rc
		rc=$?; kill -CONT $pid; test $rc = 0
	} &&
	cat err2 && test "$(cat push3.rc)" = 0 &&
	tail -n +$((lines + 1)) c/cluster.log >log &&
	test_grep "\"event\":\"cluster.waited_late\".*\"repo\":\"app1.git\".*\"still_running\":true" log &&
	test $(grep -c "\"event\":\"cluster.write\".*\"repo\":\"app1.git\".*\"replicas\":2," log) = 2 &&
	: the victim missed the second push: repaired &&
	no_dataloss 90 &&
	pushed_to s1 s2 s3 &&
	: /metrics counts both waits and what became of the late replicas: the &&
	: first push ends on the victim once it runs again, maybe after its repair &&
	wait_for 30 "the late replica of the first push to be counted" late_counted &&
	curl -sf http://127.0.0.1:$METRICS_PORT/metrics >m &&
	test_grep "^grove_cluster_late_waits_total{outcome=\"ended\"} [1-9]" m &&
	test_grep "^grove_cluster_late_waits_total{outcome=\"gave_up\"} [1-9]" m &&
	test_grep "^grove_cluster_late_replicas_total{outcome=\"caught_up\"} [1-9]" m &&
	test_grep "^grove_cluster_late_replicas_total{outcome=\"outdated\"} [1-9]" m &&
	reload_c cluster.trailingWait 600000 &&
	reload_c cluster.lateWait 2000 &&
	reload_c cluster.lagTimeout $((5000 * TEST_SCALE))
'

test_expect_success 'a primary stopped (SIGSTOP) mid-push: the push goes on on the others and is accepted' '
	p=$(primary_of app1.git) &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	: stopped while the push is in its hands, not before the push reached the router &&
	push_held $p &&
	kill -STOP $pid &&
	push_released &&
	kill -CONT $pid &&
	test "$(cat push.rc)" = 0 &&
	wait_grep "\"event\":\"cluster.push_resumed\".*\"failed_primary\":\"$p\"" c/cluster.log &&
	pushed_to $(others $p) &&
	no_dataloss &&
	pushed_to $p
'

test_expect_success 'a primary killed (kill -9) mid-push: the push goes on on the others and is accepted' '
	p=$(primary_of app1.git) &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	push_held $p &&
	kill -9 $pid &&
	wait_for 30 "store $p to be gone" gone $pid &&
	push_released &&
	test "$(cat push.rc)" = 0 &&
	wait_grep "\"event\":\"cluster.push_resumed\".*\"failed_primary\":\"$p\"" c/cluster.log &&
	pushed_to $(others $p) &&
	back_whole $p
'

test_expect_success 'a primary killed mid-push while a secondary is down: too few replicas to go on, the push fails clearly, the router serves on' '
	p=$(primary_of app1.git) &&
	set -- $(others $p) && down=$1 &&
	dpid=$(pgrep -f "store -c $TRASH/$down/store.conf") &&
	kill -9 $dpid &&
	wait_for 30 "store $down to be gone" gone $dpid &&
	wait_for 30 "router c to see $down down" eval \
		"\"\$GROVE\" cluster -a \$c_ADDR status >st 2>&1 && grep -q \"^  $down .* NO \" st" &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	cpid=$(pgrep -f "cluster -c $TRASH/c/cluster.conf") &&
	push_held $p &&
	kill -9 $pid &&
	wait_for 30 "store $p to be gone" gone $pid &&
	push_released &&
	test "$(cat push.rc)" != 0 &&
	: the one replica left cannot take it alone: it says so, and the router lives on &&
	test_grep "are healthy and up to date; a write needs 2" err &&
	test "$(pgrep -f "cluster -c $TRASH/c/cluster.conf")" = "$cpid" &&
	"$GROVE" cluster -a $c_ADDR status >/dev/null &&
	restart_store $down && restart_store $p &&
	no_dataloss
'

test_expect_success 'a primary killed while the pack streams in: what the client sent is sent again to the others' '
	p=$(primary_of app1.git) &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	: the client sends 256 KiB of its commands and 1 MiB pack, then waits &&
	push_held $p 262144 &&
	wait_for 30 "the router to have the first 256 KiB" eval \
		"pgrep -f \"receive-pack $(repo_dir $p app1.git)\" >/dev/null && test -e held" &&
	kill -9 $pid &&
	wait_for 30 "store $p to be gone" gone $pid &&
	wait_grep "\"event\":\"cluster.push_resumed\".*\"failed_primary\":\"$p\".*\"kept_messages\":[1-9]" \
		c/cluster.log &&
	push_released &&
	test "$(cat push.rc)" = 0 &&
	pushed_to $(others $p) &&
	fsck_clean $(others $p) &&
	back_whole $p
'

test_expect_success 'a primary killed while a pack of 150 objects streams in: the push goes on, its new primary shares its index' '
	p=$(primary_of app1.git) &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	(cd w1 && mkdir -p more && for i in $(seq 1 150); do head -c 4000 /dev/urandom >more/$i || exit 1; done &&
		git add more && git commit -q -m "150 more files") &&
	resumed=$(resumes) &&
	push_held $p 262144 &&
	kill -9 $pid &&
	wait_for 30 "store $p to be gone" gone $pid &&
	wait_for 30 "the push to be resumed" eval "test \$(resumes) -gt $resumed" &&
	corr=$(last_corr "\"event\":\"cluster.push_resumed\".*\"failed_primary\":\"$p\"") &&
	push_released &&
	test "$(cat push.rc)" = 0 &&
	pushed_to $(others $p) &&
	fsck_clean $(others $p) &&
	cat $(for s in $(others $p); do echo $s/store.log; done) >others.log &&
	test_grep "\"event\":\"txn.pack_index_shared\",\"correlation_id\":\"$corr\"" others.log &&
	: the secondaries of the first attempt asked the dead primary: none, they indexed &&
	test_grep "\"event\":\"txn.pack_index_used\",\"correlation_id\":\"$corr\".*\"outcome\":\"indexed: no index\"" others.log &&
	: the secondary of the second attempt got the index of the new primary: an incremental push, a thin pack &&
	test_grep "\"event\":\"txn.pack_index_used\",\"correlation_id\":\"$corr\".*\"outcome\":\"indexed: the index does not fit" others.log &&
	back_whole $p
'

# push_big_held: b's push to big.git through router c3, held after 256 KiB.
push_big_held() {
	rm -f held release push.rc err
	(set +e; cd b && HOLD_BYTES=262144 HOLD_ADDR=$c3_ADDR GIT_SSH_COMMAND="$TRASH/held-connect" \
		timeout $((60 * TEST_SCALE)) git push -q ssh://default/big.git HEAD:refs/heads/main 2>../err
		echo $? >../push.rc) &
}

test_expect_success 'cluster.resumeBuffer: a push past it whose primary dies ends with an error to retry; other pushes go on' '
	start_cluster c3 s1 s2 s3 -- cluster.resumeBuffer=64k &&
	create_repo $c3_ADDR default big.git >/dev/null &&
	create_repo $c3_ADDR default small.git >/dev/null &&
	git init -q b && (cd b && head -c 1048576 /dev/urandom >big && git add big && git commit -q -m big) &&
	p=$("$GROVE" cluster -a $c3_ADDR repo big.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	pid=$(pgrep -f "store -c $TRASH/$p/store.conf") &&
	push_big_held &&
	wait_for 30 "the push to send 256 KiB" eval "test -e held && pgrep -f \"receive-pack $(repo_dir $p big.git)\"" &&
	: another push meanwhile, past nothing &&
	(cd b && GIT_SSH_COMMAND="$GROVE connect $c3_ADDR" git push -q ssh://default/small.git HEAD:refs/heads/main) &&
	kill -9 $pid &&
	wait_for 30 "store $p to be gone" gone $pid &&
	push_released &&
	test "$(cat push.rc)" != 0 &&
	test_grep "store $p, the primary replica, failed during the call .*retry" err &&
	wait_grep "\"event\":\"cluster.resume_refused\".*cluster.resumeBuffer" c3/cluster.log &&
	(cd b && GIT_SSH_COMMAND="$GROVE connect $c3_ADDR" timeout $((60 * TEST_SCALE)) \
		git push -q ssh://default/big.git HEAD:refs/heads/main) &&
	restart_store $p &&
	no_dataloss
'

test_done
