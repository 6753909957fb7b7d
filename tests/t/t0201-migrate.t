#!/bin/sh
# Live migration of apps between the legacy directory and the cluster:
# refs and HEAD equal on both sides, the route switched, the old copy gone,
# pushes during a migration wait and then succeed, a failed migration
# leaves the app where it was and unlocked.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a store, a gate and apps with code on the legacy route' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 &&
	new_key alice &&
	api g1 POST /api/v1/users "{\"name\":\"alice\",\"admin\":true}" >/dev/null &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >/dev/null &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" && export GIT_SSH_COMMAND &&
	REMOTE=ssh://git@127.0.0.1:$g1_SSH_PORT &&
	export GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token &&
	make_history src &&
	for app in one two; do
		"$GROVE" app create $app --route legacy >/dev/null &&
		(cd src && git push -q $REMOTE/$app.git main feature v1.0 light) || return 1
	done &&
	git --git-dir="$TRASH/g1/legacy/one.git" symbolic-ref HEAD refs/heads/feature
'

# refs_of APP FILE: the refs as ls-remote shows them, and where HEAD points
# (read separately: symref lines are compared on their own).
refs_of() {
	git ls-remote $REMOTE/$1.git >"$2" &&
	git ls-remote --symref $REMOTE/$1.git HEAD | sed -n "s/^ref: \([^	]*\)	HEAD$/\1/p" >"$2.head"
}

# migration_waits APP: a migration of APP on g1 has begun and locked APP (it
# waits for the pushes running, if any).
migration_waits() {
	grep -q "\"event\":\"gate.migrating\".*\"app\":\"$1\"" "$TRASH/g1/gate.log" &&
	"$GROVE" app show "$1" | grep -q "\"locked\": true"
}

# pushed_beyond N: the push loop has had a push accepted after its Nth.
pushed_beyond() {
	test "$(cat "$TRASH/last-ok")" -gt "$1"
}

test_expect_success 'migrate legacy → cluster: same refs and HEAD, route switched, old copy gone' '
	refs_of one before &&
	"$GROVE" app migrate one --to cluster >out &&
	test_grep "locked one: pushes wait, fetches go on" out &&
	test_grep "copied one: 5 refs, checksum [0-9a-f]\{64\} on both sides" out &&
	test_grep "switched one to the cluster route" out &&
	test_grep "\"route\": \"cluster\"" out &&
	test_grep "\"locked\": false" out &&
	test ! -e "$TRASH/g1/legacy/one.git" &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=one.git >ex &&
	test_grep "\"exists\":true" ex &&
	refs_of one after &&
	test_cmp before after &&
	echo refs/heads/feature >expect-head &&
	test_cmp expect-head after.head
'

test_expect_success 'grove app show tells where the repository is and how big' '
	"$GROVE" app show one >show &&
	tr -d " \n" <show >flat &&
	test_grep "\"route\":\"cluster\"" flat &&
	test_grep "\"repository\":{\"exists\":true,\"size_bytes\":[1-9][0-9]*,\"default_branch\":\"refs/heads/feature\"}" flat &&
	"$GROVE" app show two >show &&
	tr -d " \n" <show >flat &&
	test_grep "\"route\":\"legacy\"" flat &&
	test_grep "\"repository\":{\"exists\":true,\"size_bytes\":[1-9][0-9]*,\"default_branch\":\"refs/heads/main\"}" flat &&
	test_grep "\"last_push\":{\"at\":\"[0-9T:Z-]*\",\"by\":\"alice\"" flat
'

test_expect_success 'a migration to where the app is already does nothing' '
	"$GROVE" app migrate one --to cluster >out &&
	test_grep "on the cluster route already: nothing to do" out
'

test_expect_success 'migrate back cluster → legacy' '
	"$GROVE" app migrate one --to legacy >out &&
	test_grep "switched one to the legacy route" out &&
	test -d "$TRASH/g1/legacy/one.git" &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=one.git >ex &&
	test_grep "\"exists\":false" ex &&
	refs_of one back &&
	test_cmp before back &&
	test_cmp expect-head back.head &&
	git --git-dir="$TRASH/g1/legacy/one.git" fsck --strict
'

test_expect_success 'an app without code yet migrates too' '
	"$GROVE" app create empty --route legacy >/dev/null &&
	"$GROVE" app migrate empty --to cluster >out &&
	test_grep "nothing to copy" out &&
	(cd src && git push -q $REMOTE/empty.git main) &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=empty.git >ex &&
	test_grep "\"exists\":true" ex
'

test_expect_success 'pushes during migrations wait and succeed: none fails, none is lost' '
	git clone -q $REMOTE/two.git pusher &&
	echo 0 >last-ok &&
	# A push of the test itself, running (its hold on the push lock), keeps
	# the first migration waiting with two locked: the pushes of the loop
	# wait for it then, for sure.
	hold_push_lock g1 two &&
	{ (cd pusher && i=0 && : >../push-failures &&
	 while test ! -e ../stop-pushing; do
		i=$((i + 1)) && echo $i >count && git add count && git commit -q -m "push $i" &&
		if git push -q origin main 2>>../push.log; then echo $i >../last-ok; else echo $i >>../push-failures; fi
	 done) & } &&
	loop=$! &&
	wait_for 60 "a first push of the loop" pushed_beyond 0 &&
	{ "$GROVE" app migrate two --to cluster >m1 & } &&
	m1=$! &&
	wait_for 30 "the migration of two to lock it" migration_waits two &&
	wait_grep "two is locked (maintenance or migration): waiting" push.log &&
	release_push_lock g1 two &&
	wait $m1 &&
	test_grep "switched two to the cluster route" m1 &&
	"$GROVE" app migrate two --to legacy >m2 &&
	"$GROVE" app migrate two --to cluster >m3 &&
	after=$(cat last-ok) &&
	wait_for 60 "a push accepted after the last migration" pushed_beyond $after &&
	touch stop-pushing && wait $loop &&
	test_grep "switched two to the cluster route" m3 &&
	test ! -s push-failures &&
	test "$(cat last-ok)" -gt "$after" &&
	git ls-remote $REMOTE/two.git refs/heads/main >ls &&
	test_grep "$(git -C pusher rev-parse main)" ls
'

test_expect_success 'apps already in the legacy directory are imported, then migrated' '
	git clone -q --bare src "$TRASH/g1/legacy/found.git" &&
	git --git-dir="$TRASH/g1/legacy/found.git" symbolic-ref HEAD refs/heads/feature &&
	git init -q --bare "$TRASH/g1/legacy/Not_An_App.git" &&
	mkdir "$TRASH/g1/legacy/junk.git" &&
	"$GROVE" app import --legacy-scan >out &&
	test_grep "\"name\": \"found\"" out &&
	test_grep "\"deploy_branch\": \"feature\"" out &&
	test_grep "Not_An_App.git" out &&
	test_grep "not a bare repository" out &&
	"$GROVE" app show found >show &&
	test_grep "\"route\": \"legacy\"" show &&
	git clone -q $REMOTE/found.git found-clone &&
	"$GROVE" app migrate found --to cluster >out &&
	test_grep "switched found to the cluster route" out &&
	"$GROVE" app import --legacy-scan >again &&
	test_must_fail grep "\"name\": \"found\"" again
'

test_expect_success 'with the cluster down, a migration fails clearly and changes nothing' '
	stop_store s1 &&
	test_must_fail "$GROVE" app migrate one --to cluster 2>err &&
	test_grep "grove: .*unavailable\|grove: .*connect" err &&
	"$GROVE" app show one >out &&
	test_grep "\"route\": \"legacy\"" out &&
	test_grep "\"locked\": false" out &&
	test -d "$TRASH/g1/legacy/one.git" &&
	refs_of one still &&
	test_cmp before still
'

test_expect_success 'a migration cut by a crash is finished or rolled back at the next start' '
	restart_store s1 &&
	git init -q big-src &&
	(cd big-src && dd if=/dev/urandom of=blob bs=1M count=40 2>/dev/null && git add blob &&
		git commit -q -m big && git push -q --mirror "$TRASH/g1/legacy/big.git" 2>/dev/null ||
		{ git init -q --bare "$TRASH/g1/legacy/big.git" && git push -q "$TRASH/g1/legacy/big.git" main; }) &&
	"$GROVE" app import --legacy-scan >/dev/null &&
	refs_of big before &&
	# What a copy cut short leaves on the cluster, for the recovery to clean.
	create_repo $s1_ADDR s1 big.git >/dev/null &&
	api_pid=$(sed -n "s/.*\"role\":\"gate-api\",\"pid\":\([0-9]*\),\"event\":\"gate.api_started\".*/\1/p" g1/gate.log | tail -n1) &&
	test -n "$api_pid" &&
	# The crash comes at a known point, not at a time: while the migration
	# waits for a push (the hold of the test on the push lock), journaled,
	# with big locked.
	hold_push_lock g1 big &&
	{ "$GROVE" app migrate big --to cluster >mig.out 2>&1 & } &&
	wait_for 30 "the migration of big to lock it" migration_waits big &&
	kill -9 $api_pid &&
	wait_for 60 "the restarted API to finish or roll back the migration of big" \
		grep -q "\"event\":\"gate.migration_\(rolled_back\|finished\)\".*\"app\":\"big\"" g1/gate.log &&
	release_push_lock g1 big &&
	wait_for 30 "the restarted API to show big" eval "\"\$GROVE\" app show big >show" &&
	test_grep "\"locked\": false" show &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=big.git >ex &&
	if grep -q "\"route\": \"cluster\"" show; then
		test_grep "\"exists\":true" ex && test ! -e "$TRASH/g1/legacy/big.git"
	else
		test_grep "\"exists\":false" ex && test -d "$TRASH/g1/legacy/big.git"
	fi &&
	refs_of big after &&
	test_cmp before after &&
	test ! -e "$TRASH/g1/migrations/big" &&
	grep -o "gate.migration_[a-z_]*" g1/gate.log | tail -n1 >"$TRASH/recovery"
'
test -f "$TRASH/recovery" && echo "# the interrupted migration was: $(cat "$TRASH/recovery")"

test_expect_success 'grove backup and grove restore, on both routes, across routes' '
	export GROVE_GATE_CONFIG=$TRASH/g1/gate.conf &&
	for app in bk-legacy:legacy bk-cluster:cluster rs-legacy:legacy rs-cluster:cluster; do
		"$GROVE" app create ${app%%:*} --route ${app#*:} >/dev/null || return 1
	done &&
	(cd src && git push -q $REMOTE/bk-legacy.git main feature v1.0 && git push -q $REMOTE/bk-cluster.git main feature v1.0) &&
	"$GROVE" backup bk-legacy >legacy.bundle &&
	"$GROVE" backup bk-cluster >cluster.bundle &&
	git bundle list-heads legacy.bundle >heads && test_grep "refs/heads/feature" heads && test_grep "refs/tags/v1.0" heads &&
	git bundle list-heads cluster.bundle >heads && test_grep "refs/heads/main" heads &&
	"$GROVE" restore rs-legacy <cluster.bundle 2>out &&
	test_grep "restored rs-legacy on the legacy route: HEAD refs/heads/main" out &&
	"$GROVE" restore rs-cluster <legacy.bundle 2>out &&
	test_grep "restored rs-cluster on the cluster route: HEAD refs/heads/main" out &&
	refs_of bk-legacy a && refs_of rs-cluster b && test_cmp a b && test_cmp a.head b.head &&
	refs_of bk-cluster a && refs_of rs-legacy b && test_cmp a b && test_cmp a.head b.head &&
	test_must_fail "$GROVE" restore rs-cluster <legacy.bundle 2>err &&
	test_grep "rs-cluster has a repository already: restore --force replaces it" err &&
	"$GROVE" restore rs-cluster --force <cluster.bundle 2>out &&
	test_grep "(replacing its repository)" out &&
	echo "not a bundle" >junk &&
	test_must_fail "$GROVE" restore rs-legacy --force <junk 2>err &&
	test_grep "not a git bundle" err &&
	refs_of bk-cluster a && refs_of rs-legacy b && test_cmp a b &&
	"$GROVE" app show rs-legacy >show && test_grep "\"locked\": false" show &&
	test_must_fail "$GROVE" backup nosuch >x 2>err &&
	test_grep "no app named nosuch" err
'

test_expect_success 'a restore in progress shows in the operations API and on the dashboard, then goes' '
	export GROVE_GATE_CONFIG=$TRASH/g1/gate.conf &&
	"$GROVE" app create rs-slow --route cluster >/dev/null &&
	rm -f release &&
	: half of the bundle, then nothing until the test says so &&
	(HALF_OF=cluster.bundle RELEASE=$TRASH/release perl -e '"'"'
		open(my $f, "<", $ENV{HALF_OF}) or die; binmode $f; local $/; my $b = <$f>;
		$| = 1; binmode STDOUT; print substr($b, 0, int(length($b) / 2));
		for (1 .. 6000) { last if -e $ENV{RELEASE}; select(undef, undef, undef, 0.1); }
		print substr($b, int(length($b) / 2));
	'"'"' | "$GROVE" restore rs-slow 2>slow.err) &
	restorer=$! &&
	wait_for 30 "the restore to show, receiving, with bytes done" eval \
		"api g1 GET /api/v1/operations >ops && grep -q \"\\\"app\\\": *\\\"rs-slow\\\"\" ops &&
		 grep -q \"\\\"phase\\\": *\\\"receiving\\\"\" ops && grep -q \"\\\"done_bytes\\\": *[1-9]\" ops" &&
	test_grep "\"kind\": *\"restore\"" ops &&
	curl -sf -H "Authorization: Bearer $g1_TOKEN" "$g1_ADMIN/ui/" >page &&
	test_grep "rs-slow: restore" page &&
	test_grep "receiving, [0-9.]* [A-Za-z]* so far" page &&
	touch release &&
	wait $restorer &&
	test_grep "restored rs-slow on the cluster route" slow.err &&
	: not on a terminal, the command says each phase on a line &&
	test_grep "^grove restore rs-slow: receiving$" slow.err &&
	test_grep "^grove restore rs-slow: locking$" slow.err &&
	test_grep "^grove restore rs-slow: applying$" slow.err &&
	api g1 GET /api/v1/operations >ops &&
	test_grep "\"operations\": *\[\]" ops &&
	test -z "$(ls "$TRASH/g1/progress")"
'

test_expect_success 'grove app migrate follows its move, and a backup draws a bar on a terminal' '
	export GROVE_GATE_CONFIG=$TRASH/g1/gate.conf &&
	"$GROVE" app create mv-watch --route legacy >/dev/null &&
	(cd src && git push -q $REMOTE/mv-watch.git main) &&
	hold_push_lock g1 mv-watch &&
	{ "$GROVE" app migrate mv-watch --to cluster >mv.out 2>mv.err & } &&
	mover=$! &&
	wait_for 30 "grove app migrate to say its move waits at the lock" grep -q "^grove app migrate mv-watch: locking$" mv.err &&
	release_push_lock g1 mv-watch &&
	wait $mover &&
	"$GROVE" app show mv-watch >show && test_grep "\"route\": \"cluster\"" show &&
	: on a terminal, a bar with the bytes &&
	script -qec "\"$GROVE\" backup mv-watch >tty.bundle" tty.log >/dev/null &&
	git bundle list-heads tty.bundle >heads && test_grep "refs/heads/main" heads &&
	test_grep "grove backup mv-watch: \[[#.]*\] copying .* of ~[0-9.]* [KM]iB" tty.log
'

test_expect_success 'housekeeping optimizes every app on its schedule' '
	start_gate g2 $s1_ADDR s1 housekeeping.interval=1 &&
	GROVE_ADMIN_URL=$g2_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g2/admin-token "$GROVE" app create hk --route legacy >/dev/null &&
	GROVE_ADMIN_URL=$g2_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g2/admin-token "$GROVE" app create hk-empty --route legacy >/dev/null &&
	# Into place at once: a pass never finds it half-copied.
	git clone -q --bare src "$TRASH/g2/hk.git.new" && mkdir -p "$TRASH/g2/legacy" &&
	mv "$TRASH/g2/hk.git.new" "$TRASH/g2/legacy/hk.git" &&
	wait_for 30 "a housekeeping pass that optimized hk" grep -q "\"event\":\"gate.housekeeping\".*\"optimized\":1" g2/gate.log &&
	wait_grep "\"event\":\"gate.housekeeping\".*\"apps\":2,\"optimized\":1,\"failed\":0" g2/gate.log &&
	test -f "$TRASH/g2/legacy/hk.git/packed-refs"
'

test_done
