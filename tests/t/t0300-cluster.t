#!/bin/sh
# grove cluster end to end: three real stores behind a router; the store API
# through the router; vote-committed pushes on every replica; a dead store's
# repositories served and written by the others, and repaired when it comes
# back; writes refused without a majority; never a read from stale data;
# verification of silently diverged replicas; the operator's CLI.
. "$(dirname "$0")/test-lib.sh"

# primary_of PATH: the repository's primary, from `grove cluster repo`.
primary_of() {
	"$GROVE" cluster -a $c_ADDR repo "$1" | sed -n 's/.*generation [0-9-]*, primary \([^,]*\),.*/\1/p'
}

# secondary_of PATH: one replica that is not the primary.
secondary_of() {
	p=$(primary_of "$1")
	for s in s1 s2 s3; do test "$s" != "$p" && echo $s && return 0; done
}

# replicas_same PATH: the three stores hold the same refs now.
replicas_same() {
	a=$(checksum $s1_ADDR s1 "$1") b=$(checksum $s2_ADDR s2 "$1") d=$(checksum $s3_ADDR s3 "$1")
	test -n "$a" && test "$a" = "$b" && test "$a" = "$d"
}

# same_everywhere PATH: waits (30 s, scaled) until the three stores hold the
# same refs (repairs included).
same_everywhere() {
	wait_for 30 "the replicas of $1 to hold the same refs" replicas_same "$1" && return 0
	echo "replicas differ: s1=$a s2=$b s3=$d" >&2
	"$GROVE" cluster -a $c_ADDR repo "$1" >&2
	return 1
}

# store_is NAME yes|NO: the router's status shows store NAME healthy (yes)
# or down (NO) now.
store_is() {
	"$GROVE" cluster -a $c_ADDR status >st 2>&1 && grep -q "^  $1 .* $2 " st
}

# wait_store NAME yes|NO: waits (30 s, scaled) until the router's status
# shows store NAME so.
wait_store() {
	wait_for 30 "the router to show store $1 as $2" store_is "$1" "$2" && return 0
	cat st >&2
	return 1
}

# queue_idle: waits (60 s, scaled: a failed job retries after a backoff)
# until the router has no replication job left to run: a verification
# queued by an earlier write no longer runs, so a replica changed by hand
# next is found by the test's own verify or push.
queue_idle() {
	wait_for 60 "the replication queue to be empty" eval \
		'"$GROVE" cluster -a $c_ADDR status >st 2>&1 && grep -q "replication queue: ready 0, running 0, retrying 0, dead 0" st' && return 0
	cat st >&2
	return 1
}

# all_healthy: waits (30 s, scaled) for the router to see every store healthy again.
all_healthy() {
	wait_for 30 "the router to see every store healthy" eval \
		'"$GROVE" cluster -a $c_ADDR status >st 2>&1 && test $(grep -c "^  s[123] .* yes " st) = 3' && return 0
	cat st >&2
	return 1
}

# push_new REPO BRANCH: one more commit on src's BRANCH, pushed through the router.
push_new() {
	(cd src && git checkout -q "$2" && echo "$(date +%s%N)" >>log.txt && git add log.txt &&
		git commit -q -m "change $(date +%s%N)" &&
		git_on $c_ADDR push -q ssh://default/"$1" "$2" 2>../push.err)
}

# push_or_undo REPO BRANCH: push_new, and when the push is refused, the
# commit it made undone (the next try makes another).
push_or_undo() {
	push_new "$@" && return 0
	git -C src reset -q --hard HEAD~1
	return 1
}

# kill_store NAME: kill -9 of the store, found by its config (a store restarted
# inside an earlier test has a pid this shell never saw); waits until it is gone.
kill_store() {
	pkill -9 -f "store -c $TRASH/$1/store.conf" || return 1
	wait_for 30 "store $1 to be gone after kill -9" eval "! pgrep -f 'store -c $TRASH/$1/store.conf'"
}

# served_by_secondary: a store other than the primary $p logged an upload-pack
# it served (the log line comes after the client has its answer).
served_by_secondary() {
	for s in s1 s2 s3; do
		test $s = $p && continue
		grep -q "\"method\":\"/grove.v1.SSHService/SSHUploadPack\",\"code\":\"OK\"" $s/store.log && return 0
	done
	return 1
}

# copy_gone STORE PATH: STORE says it has no copy of PATH (any more).
copy_gone() {
	eval "addr=\$${1}_ADDR"
	rpc $addr RepositoryService/RepositoryExists repository.storage_name=$1 repository.relative_path=$2 >ex &&
		! grep -q "\"exists\":true" ex
}

test_setup 'three stores and a router' '
	start_store s1 && start_store s2 && start_store s3 &&
	METRICS_PORT=$(free_port) &&
	: bounds scaled, so that a slow healthy store is not taken for a dead one &&
	start_cluster c s1 s2 s3 -- cluster.metricsListen=127.0.0.1:$METRICS_PORT \
		cluster.healthInterval=$((300 * TEST_SCALE)) cluster.lagTimeout=$((5000 * TEST_SCALE)) \
		cluster.voteTimeout=$((10000 * TEST_SCALE)) &&
	make_history src
'

test_expect_success 'CreateRepository through the router creates the repository on every store' '
	create_repo $c_ADDR default app.git &&
	for s in s1 s2 s3; do
		eval "addr=\$${s}_ADDR" &&
		rpc $addr RepositoryService/RepositoryExists repository.storage_name=$s repository.relative_path=app.git >out &&
		test_grep "\"exists\":true" out || return 1
	done &&
	"$GROVE" cluster -a $c_ADDR repo app.git >repo &&
	test_grep "generation 0, primary s[123], replication factor 3" repo &&
	test $(grep -c " 0 *yes *yes *yes" repo) = 3
'

test_expect_success 'a push through the router lands on every replica, committed by vote' '
	(cd src && git_on $c_ADDR push ssh://default/app.git main feature light v1.0 2>../push.err) &&
	test_grep "\[new branch\] *main -> main" push.err &&
	same_everywhere app.git &&
	"$GROVE" cluster -a $c_ADDR repo app.git >repo &&
	test $(grep -c " 1 *yes *yes *yes" repo) = 3 &&
	test $(grep -c "\"event\":\"cluster.vote\".*\"commit\":true" c/cluster.log) -ge 3
'

test_expect_success 'clone through the router, protocols v0 and v2; reads are spread over the replicas' '
	git_on $c_ADDR -c protocol.version=2 clone -q --mirror ssh://default/app.git v2.git &&
	git_on $c_ADDR -c protocol.version=0 clone -q --mirror ssh://default/app.git v0.git &&
	git -C src for-each-ref --format="%(objectname) %(refname)" >expect &&
	git -C v2.git for-each-ref --format="%(objectname) %(refname)" >actual2 &&
	git -C v0.git for-each-ref --format="%(objectname) %(refname)" >actual0 &&
	test_cmp expect actual2 && test_cmp expect actual0 &&
	git_on $c_ADDR ls-remote ssh://default/app.git >/dev/null &&
	git_on $c_ADDR ls-remote ssh://default/app.git >/dev/null &&
	p=$(primary_of app.git) &&
	: a store logs the call after its client has the answer &&
	wait_for 20 "a replica other than the primary $p to log a clone it served" served_by_secondary
'

test_expect_success 'accessors, mutators and maintenance RPCs route without code of their own' '
	rpc $c_ADDR RefService/ListRefs repository.storage_name=default repository.relative_path=app.git >refs &&
	test_grep "refs/heads/feature" refs &&
	rpc $c_ADDR RepositoryService/SetDefaultBranch repository.storage_name=default repository.relative_path=app.git name=feature &&
	for s in s1 s2 s3; do
		eval "addr=\$${s}_ADDR" &&
		rpc $addr RepositoryService/FindDefaultBranch repository.storage_name=$s repository.relative_path=app.git >out &&
		test_grep "refs/heads/feature" out || return 1
	done &&
	rpc $c_ADDR RepositoryService/SetDefaultBranch repository.storage_name=default repository.relative_path=app.git name=main &&
	new=$(git -C src rev-parse feature) &&
	rpc $c_ADDR RefService/UpdateReference repository.storage_name=default repository.relative_path=app.git \
		reference=refs/heads/from-rpc new_oid=$new &&
	same_everywhere app.git &&
	rpc $c_ADDR RepositoryService/OptimizeRepository repository.storage_name=default repository.relative_path=app.git >out &&
	rpc $c_ADDR RepositoryService/RepositorySize repository.storage_name=default repository.relative_path=app.git >out &&
	test_grep "\"bytes\":\"*[1-9]" out &&
	rpc $c_ADDR --out-field data RepositoryService/GetArchive repository.storage_name=default \
		repository.relative_path=app.git commit_id=$new >feature.tgz &&
	tar tzf feature.tgz | sort >archive.actual &&
	git -C src archive --format=tar feature | tar tf - | sort >archive.expect &&
	test_cmp archive.expect archive.actual
'

test_expect_success 'bad requests get clear errors' '
	test_must_fail rpc $c_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=app.git 2>err &&
	test_grep "NOT_FOUND" err && test_grep "this cluster serves \"default\"" err &&
	test_must_fail rpc $c_ADDR RepositoryService/CreateRepository repository.storage_name=default repository.relative_path=../x.git 2>err &&
	test_grep "INVALID_ARGUMENT" err &&
	test_must_fail rpc $c_ADDR RepositoryService/RepositoryExists 2>err &&
	test_grep "INVALID_ARGUMENT" err &&
	test_must_fail "$GROVE" rpc -a $c_ADDR --token v1.1.00 RepositoryService/RepositoryExists \
		repository.storage_name=default repository.relative_path=app.git 2>err &&
	test_grep "UNAUTHENTICATED" err &&
	: votes go to an address of the router process alone, apart from cluster.listen &&
	txn=$(sed -n "s/.*\"event\":\"cluster.started\".*\"transaction_address\":\"\([^\"]*\)\".*/\1/p" c/cluster.log | tail -n1) &&
	test -n "$txn" && test "$txn" != "$c_ADDR" &&
	test_must_fail rpc $c_ADDR TransactionService/VoteTransaction transaction_id=1 node=s1 vote=abcd 2>err &&
	test_grep "UNIMPLEMENTED" err &&
	test_must_fail "$GROVE" rpc -a $txn --token v1.1.00 TransactionService/VoteTransaction transaction_id=1 2>err &&
	test_grep "UNAUTHENTICATED" err &&
	rpc $c_ADDR RepositoryService/RepositoryExists repository.storage_name=default repository.relative_path=nope.git >out &&
	test_must_fail grep "\"exists\":true" out &&
	test_must_fail rpc $txn TransactionService/VoteTransaction transaction_id=1 node=s1 vote=abcd 2>err &&
	test_grep "INVALID_ARGUMENT" err
'

test_expect_success 'a dead secondary: pushes go on, it is marked outdated, and repaired when it is back' '
	victim=$(secondary_of app.git) &&
	kill_store $victim &&
	wait_store $victim NO &&
	push_new app.git main &&
	"$GROVE" cluster -a $c_ADDR repo app.git >repo &&
	test_grep "^  $victim .* no  *no " repo &&
	"$GROVE" cluster -a $c_ADDR dataloss >dl &&
	test_grep "repository app.git" dl &&
	"$GROVE" cluster -a $c_ADDR status >st &&
	test_grep "^  $victim .* NO " st &&
	restart_store $victim &&
	same_everywhere app.git &&
	no_dataloss &&
	wait_grep "\"event\":\"cluster.repaired\".*\"target\":\"$victim\"" c/cluster.log
'

test_expect_success 'kill -9 of the primary: a new one is elected and pushes are accepted again' '
	old=$(primary_of app.git) &&
	kill_store $old &&
	start=$(date +%s%N) &&
	wait_for 60 "a push to be accepted after kill -9 of the primary $old" push_or_undo app.git main &&
	echo "$(( ($(date +%s%N) - start) / 1000000 ))" >"$TRASH/failover-ms" &&
	new=$(primary_of app.git) &&
	test -n "$new" && test "$new" != "$old" &&
	wait_grep "\"event\":\"cluster.elected\".*\"previous\":\"$old\"" c/cluster.log &&
	git_on $c_ADDR ls-remote ssh://default/app.git refs/heads/main >ls &&
	test_grep "^$(git -C src rev-parse main)" ls &&
	restart_store $old &&
	same_everywhere app.git && no_dataloss
'
test -f "$TRASH/failover-ms" && echo "# failover: first accepted push $(cat "$TRASH/failover-ms") ms after kill -9 of the primary"

test_expect_success 'without a majority of replicas, writes are refused clearly; reads go on' '
	create_repo $c_ADDR default two.git &&
	(cd src && git_on $c_ADDR push -q ssh://default/two.git main) &&
	p=$(primary_of two.git) &&
	down=$(for s in s1 s2 s3; do test $s != $p && echo $s; done) &&
	for s in $down; do kill_store $s && wait_store $s NO || return 1; done &&
	test_must_fail push_new two.git main &&
	test_grep "only 1 of the 3 replicas of two.git are healthy and up to date; a write needs 2" push.err &&
	git -C src reset -q --hard HEAD~1 &&
	git_on $c_ADDR clone -q ssh://default/two.git two-clone &&
	for s in $down; do restart_store $s || return 1; done &&
	all_healthy &&
	same_everywhere two.git
'

test_expect_success 'a repository whose only up-to-date replica is gone is unavailable, never served stale' '
	create_repo $c_ADDR default three.git &&
	(cd src && git_on $c_ADDR push -q ssh://default/three.git main) &&
	p=$(primary_of three.git) &&
	lag=$(for s in s1 s2 s3; do test $s != $p && echo $s; done | head -n1) &&
	kill_store $lag && wait_store $lag NO &&
	push_new three.git main &&
	for s in s1 s2 s3; do test $s != $lag && kill_store $s; done &&
	restart_store $lag &&
	for s in s1 s2 s3; do
		if test $s = $lag; then wait_store $s yes; else wait_store $s NO; fi || return 1
	done &&
	test_must_fail git_on $c_ADDR ls-remote ssh://default/three.git 2>err &&
	test_grep "has no healthy up-to-date replica" err &&
	"$GROVE" cluster -a $c_ADDR repo three.git >repo &&
	test_grep "UNAVAILABLE" repo &&
	"$GROVE" cluster -a $c_ADDR accept-dataloss three.git --authoritative $lag >out &&
	test_grep "the other replicas are being repaired from it" out &&
	git_on $c_ADDR ls-remote ssh://default/three.git refs/heads/main >ls &&
	test_grep "^$(git -C src rev-parse main~1)" ls &&
	for s in s1 s2 s3; do test $s != $lag && { restart_store $s || return 1; }; done &&
	all_healthy &&
	same_everywhere three.git &&
	same_everywhere app.git
'

test_expect_success 'a replica changed behind the router is found by verify and repaired' '
	no_dataloss && queue_idle &&
	s=$(secondary_of app.git) &&
	dir=$(repo_dir $s app.git) &&
	git --git-dir="$dir" update-ref refs/heads/feature $(git --git-dir="$dir" rev-parse main) &&
	"$GROVE" cluster -a $c_ADDR verify app.git >out &&
	test_grep "^  $s .*DIFFERS" out &&
	test_grep "1 replica(s) differ: marked outdated, repair queued" out &&
	same_everywhere app.git &&
	: the repair queued a verification, whose findings stay for grove cluster repo &&
	wait_for 30 "grove cluster repo to show every replica verified the same" eval \
		'"'"'"$GROVE" cluster -a $c_ADDR repo app.git >repo && test $(grep -c " same at [0-9]" repo) = 3'"'"' &&
	"$GROVE" cluster -a $c_ADDR verify app.git >out &&
	test_grep "0 replica(s) differ" out
'

test_expect_success 'a replica whose refs disagree with the primary is left out of a push and repaired' '
	s=$(secondary_of app.git) &&
	dir=$(repo_dir $s app.git) &&
	git --git-dir="$dir" update-ref refs/heads/feature $(git --git-dir="$dir" rev-parse main~1) &&
	push_new app.git feature &&
	wait_grep "\"event\":\"cluster.outdated\".*\"node\":\"$s\"" c/cluster.log &&
	git_on $c_ADDR ls-remote ssh://default/app.git refs/heads/feature >ls &&
	test_grep "^$(git -C src rev-parse feature)" ls &&
	same_everywhere app.git
'

test_expect_success 'a push of 300 new tags is voted once, and every replica ends with them' '
	no_dataloss && queue_idle &&
	(cd src && for i in $(seq 300); do echo "create refs/tags/many-$i HEAD"; done | git update-ref --stdin) &&
	before=$(grep -c "\"event\":\"cluster.vote\"" c/cluster.log) &&
	(cd src && git_on $c_ADDR push -q ssh://default/app.git "refs/tags/many-*:refs/tags/many-*") &&
	after=$(grep -c "\"event\":\"cluster.vote\"" c/cluster.log) &&
	test $((after - before)) = 3 &&
	for s in s1 s2 s3; do
		test "$(git --git-dir="$(repo_dir $s app.git)" tag -l "many-*" | wc -l)" = 300 || return 1
	done &&
	replicas_same app.git
'

test_expect_success 'a replica that cannot make an update after the vote is not counted, and is repaired' '
	no_dataloss && queue_idle &&
	s=$(secondary_of app.git) &&
	dir=$(repo_dir $s app.git) &&
	: a lock git does not take away: the update of that ref fails on $s only &&
	touch "$dir/refs/heads/locked.lock" &&
	(cd src && git branch -f locked HEAD && git_on $c_ADDR push -q ssh://default/app.git locked) &&
	wait_grep "\"event\":\"cluster.diverged\".*\"node\":\"$s\"" c/cluster.log &&
	wait_grep "\"event\":\"cluster.outdated\".*\"node\":\"$s\"" c/cluster.log &&
	git_on $c_ADDR ls-remote ssh://default/app.git refs/heads/locked >ls &&
	test_grep "^$(git -C src rev-parse locked)" ls &&
	rm -f "$dir/refs/heads/locked.lock" &&
	same_everywhere app.git
'

test_expect_success 'without a majority voting the same ref updates, the push aborts everywhere and says so' '
	no_dataloss && queue_idle &&
	p=$(primary_of app.git) &&
	before=$(git --git-dir="$(repo_dir $p app.git)" rev-parse refs/heads/feature) &&
	for s in s1 s2 s3; do
		test $s = $p && continue
		dir=$(repo_dir $s app.git) &&
		git --git-dir="$dir" update-ref refs/heads/feature $(git --git-dir="$dir" rev-parse main~1) || return 1
	done &&
	test_must_fail push_new app.git feature &&
	test_grep "ref update not committed: too few replicas made the same ref updates as the primary" push.err &&
	wait_grep "\"event\":\"cluster.vote\".*\"node\":\"$p\".*\"commit\":false" c/cluster.log &&
	after=$(git --git-dir="$(repo_dir $p app.git)" rev-parse refs/heads/feature) &&
	test "$before" = "$after" &&
	"$GROVE" cluster -a $c_ADDR verify app.git >out &&
	test_grep "2 replica(s) differ" out &&
	same_everywhere app.git &&
	(cd src && git_on $c_ADDR push -q ssh://default/app.git feature) &&
	same_everywhere app.git
'

test_expect_success 'set-replication-factor removes and adds replicas; failover moves the primary' '
	"$GROVE" cluster -a $c_ADDR set-replication-factor app.git 2 >out &&
	test_grep "assigned to s[123] s[123]$" out &&
	gone=$(for s in s1 s2 s3; do grep -q " $s" out || echo $s; done) &&
	wait_for 30 "the copy of app.git on $gone to be deleted" copy_gone $gone app.git &&
	test_must_fail grep "\"exists\":true" ex &&
	"$GROVE" cluster -a $c_ADDR set-replication-factor app.git 3 >out &&
	test_grep "assigned to s1 s2 s3$" out &&
	same_everywhere app.git &&
	: the replica added again is up to date once its repair is recorded &&
	no_dataloss &&
	to=$(secondary_of app.git) &&
	"$GROVE" cluster -a $c_ADDR failover app.git --to $to >out &&
	test_grep "app.git: primary $to" out &&
	test "$(primary_of app.git)" = "$to" &&
	test_must_fail "$GROVE" cluster -a $c_ADDR failover app.git --to nosuch 2>err &&
	test_grep "is not a healthy up-to-date replica" err
'

test_expect_success '/metrics counts elections, votes, refused writes, mismatches, repairs and lag' '
	curl -sf http://127.0.0.1:$METRICS_PORT/metrics >m &&
	for s in s1 s2 s3; do test_grep "^grove_cluster_store_healthy{store=\"$s\"} 1$" m || return 1; done &&
	for s in s1 s2 s3; do test_grep "^grove_cluster_store_jobs{store=\"$s\",state=\"ready\"} [0-9]*$" m || return 1; done &&
	test_grep "^grove_cluster_elections_total [1-9]" m &&
	test_grep "^grove_cluster_votes_total{outcome=\"commit\"} [1-9]" m &&
	test_grep "^grove_cluster_votes_total{outcome=\"abort\"} [1-9]" m &&
	test_grep "^grove_cluster_writes_refused_total [1-9]" m &&
	test_grep "^grove_cluster_verify_mismatches_total [1-9]" m &&
	test_grep "^grove_cluster_repairs_total [1-9]" m &&
	test_grep "^grove_cluster_jobs{state=\"dead\"} 0$" m &&
	test_grep "^grove_cluster_replicas_outdated 0$" m &&
	test "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:$METRICS_PORT/other)" = 404 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -X POST -d x=1 http://127.0.0.1:$METRICS_PORT/metrics)" = 405
'

test_expect_success 'the router keeps its state across a restart' '
	before=$("$GROVE" cluster -a $c_ADDR repo app.git) &&
	kill -TERM $c_PID && wait_for 30 "router c to stop" gone $c_PID &&
	restart_cluster c &&
	after=$("$GROVE" cluster -a $c_ADDR repo app.git) &&
	test "$before" = "$after" &&
	push_new app.git main &&
	same_everywhere app.git
'

test_expect_success 'a gate in front of the router: push deploys once, clone works, app show names the replicas' '
	cat >"$TRASH/deploy" <<-\EOF &&
	#!/bin/sh
	echo "deploying $GROVE_APP at $GROVE_NEW"
	echo "$GROVE_NEW" >>"$PWD/deploys.log"
	EOF
	chmod +x "$TRASH/deploy" &&
	start_gate g1 $c_ADDR default deploy.command=$TRASH/deploy &&
	new_key alice &&
	user_app g1 alice web &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>../push.err) &&
	test_grep "^remote: deploying web at $(git -C src rev-parse main)" push.err &&
	test $(wc -l <"$TRASH/g1/deploys.log") = 1 &&
	same_everywhere web.git &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git web &&
	test "$(git -C web rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	: grove app show: last push, last deployment, size, default branch, replicas and their health &&
	GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" app show web >show &&
	tr -d " \n" <show >flat &&
	test_grep "\"last_push\":{\"at\":\"[0-9T:Z-]*\",\"by\":\"alice\",\"ref\":\"refs/heads/main\",\"commit\":\"$(git -C src rev-parse main)\"}" flat &&
	test_grep "\"last_deployment\":{\"id\":1,.*\"status\":\"succeeded\"" flat &&
	test_grep "\"exists\":true,\"size_bytes\":[1-9]" flat &&
	test_grep "\"default_branch\":\"refs/heads/main\"" flat &&
	test $(grep -o "\"up_to_date\":true" flat | wc -l) = 3 &&
	test $(grep -o "\"primary\":true" flat | wc -l) = 1
'

test_done
