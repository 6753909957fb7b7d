#!/bin/sh
# `grove migrate --percent`: legacy apps moved in bulk to a cluster of three
# stores while pushes run in a loop — no push fails, every app's refs and
# HEAD are the same before and after — then half of them rolled back.
# GROVE_TEST_MIGRATE_APPS sets the number of apps (default 60; the issue's
# 200 by hand: GROVE_TEST_MIGRATE_APPS=200 prove tests/t/t0202-migrate-batch.t).
. "$(dirname "$0")/test-lib.sh"

APPS=${GROVE_TEST_MIGRATE_APPS:-60}
# The apps the push loop uses: the first three (names are zero-padded: app01 or app001).
LOOP_APPS=$(for i in $(seq -w 1 $APPS | head -n3); do printf "app%s " $i; done)
FIRST=app$(seq -w 1 $APPS | head -n1)
LAST=app$(seq -w 1 $APPS | tail -n1)

# all_refs FILE: every app's refs and HEAD, as a client sees them through the gate.
all_refs() {
	: >"$1" &&
	for i in $(seq -w 1 $APPS); do
		echo "== app$i" >>"$1" &&
		git ls-remote --symref $REMOTE/app$i.git >>"$1" || return 1
	done
}

# in_progress APP: the admin API shows the migration of APP in progress
# (its answer, without blanks, in watch).
in_progress() {
	api g1 GET /api/v1/migrations | tr -d " \n" >"$TRASH/watch" &&
	grep -q "\"in_progress\":\[{\"app\":\"$1\"" "$TRASH/watch"
}

# batch_ended: the admin API says the batch runs no more (its answer in st).
batch_ended() {
	api g1 GET /api/v1/migrations | tr -d " \n" >"$TRASH/st" &&
	grep -q "\"batch\":{\"running\":false" "$TRASH/st"
}

# optimized_everywhere: the three stores logged an OptimizeRepository that
# ended OK (rpc.done, logged once the call is closed, just after the router
# has its answer).
optimized_everywhere() {
	test "$(grep -h "\"method\":\"/grove.v1.RepositoryService/OptimizeRepository\"" \
		"$TRASH/s1/store.log" "$TRASH/s2/store.log" "$TRASH/s3/store.log" | grep -c "\"code\":\"OK\"")" -ge 3
}

test_setup 'three stores, a router, a gate, and apps in the legacy directory' '
	start_store s1 && start_store s2 && start_store s3 &&
	start_cluster c s1 s2 s3 &&
	start_gate g1 $c_ADDR default gate.lockWait=60 &&
	new_key alice &&
	api g1 POST /api/v1/users "{\"name\":\"alice\",\"admin\":true}" >/dev/null &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >/dev/null &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" && export GIT_SSH_COMMAND &&
	REMOTE=ssh://git@127.0.0.1:$g1_SSH_PORT &&
	export GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token &&
	make_history src &&
	mkdir -p "$TRASH/g1/legacy" &&
	for i in $(seq -w 1 $APPS); do
		git clone -q --bare src "$TRASH/g1/legacy/app$i.git" || return 1
	done &&
	"$GROVE" app import --legacy-scan >/dev/null &&
	all_refs before
'

test_expect_success '--dry-run lists what would move, and moves nothing' '
	"$GROVE" migrate --percent 100 --dry-run >out 2>err &&
	test_grep "^$APPS apps, 0 on the cluster (0.0 %); would move $APPS to the cluster route" err &&
	test $(wc -l <out) = $APPS &&
	test_grep "^$FIRST$" out &&
	test -d "$TRASH/g1/legacy/$FIRST.git"
'

test_expect_success 'every app moves to the cluster while pushes run; none fails, nothing changes' '
	: >push.log &&
	# A push of the test itself, running on the last app (its hold on the
	# push lock), keeps the batch there, its migration in progress, until
	# the API has been seen to say so.
	hold_push_lock g1 $LAST &&
	{ (
		cd src && n=0 &&
		while ! test -e "$TRASH/stop-pushing"; do
			n=$((n + 1)) &&
			for app in $LOOP_APPS; do
				echo "$n" >>loop.txt && git add loop.txt && git commit -q -m "loop $n" &&
				if git push -q $REMOTE/$app.git HEAD:refs/heads/loop 2>>"$TRASH/push.err"; then
					echo "ok $app $n" >>"$TRASH/push.log"
				else
					echo "FAILED $app $n" >>"$TRASH/push.log"
				fi
			done
		done
	) & } &&
	loop=$! &&
	t0=$(date +%s%N) &&
	{ "$GROVE" migrate --percent 100 >progress 2>err & } &&
	cli=$! &&
	wait_for 120 "the batch to reach $LAST, its migration in progress" in_progress $LAST &&
	release_push_lock g1 $LAST &&
	wait $cli &&
	t1=$(date +%s%N) &&
	touch "$TRASH/stop-pushing" && wait $loop &&
	: held at its lock, the move says so &&
	test_grep "\"in_progress\":\[{\"app\":\"app[0-9]*\",\"to\":\"cluster\",\"since\":\"[0-9T:Z-]*\",\"phase\":\"locking\",\"done_bytes\":0,\"total_bytes\":0}\]" watch &&
	api g1 GET /api/v1/migrations | tr -d " \n" >final &&
	test_grep "\"cluster\":$APPS,\"legacy\":0,\"percent_on_cluster\":100.0*,\"in_progress\":\[\]" final &&
	test_grep "done: $APPS moved, 0 failed, 0 left of $APPS" err &&
	test $(grep -c "\"ok\":true" progress) = $APPS &&
	test_grep "\"done\":$APPS,\"failed\":0,\"total\":$APPS" progress &&
	test_must_fail grep FAILED push.log &&
	test $(grep -c "^ok" push.log) -gt 0 &&
	"$GROVE" app list >apps &&
	test $(grep -c "\"route\": \"cluster\"" apps) = $APPS &&
	all_refs after &&
	grep -v "refs/heads/loop" before >b && grep -v "refs/heads/loop" after >a &&
	test_cmp b a &&
	for app in $LOOP_APPS; do
		n=$(grep "^ok $app " push.log | tail -n1 | cut -d" " -f3) &&
		git ls-remote $REMOTE/$app.git refs/heads/loop >ls &&
		git -C src log --format=%s -1 $(cut -f1 ls) >msg &&
		test_grep "^loop $n$" msg || return 1
	done &&
	ms=$(( (t1 - t0) / 1000000 )) &&
	echo "# $APPS apps moved to the cluster in $ms ms ($(( APPS * 60000 / (ms + 1) )) apps/min); pushes meanwhile: $(grep -c "^ok" push.log) accepted, $(grep -c FAILED push.log) failed" >"$TRASH/report"
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_expect_success 'a second run has nothing to do' '
	"$GROVE" migrate --percent 100 >progress 2>err &&
	test_grep "moving 0 to the cluster route" err
'

test_expect_success 'half of them roll back to the legacy directory, unchanged' '
	all_refs before &&
	"$GROVE" migrate --percent 50 --to legacy >progress 2>err &&
	half=$((APPS - APPS / 2)) &&
	test_grep "done: $half moved, 0 failed" err &&
	"$GROVE" app list >apps &&
	test $(grep -c "\"route\": \"cluster\"" apps) = $((APPS / 2)) &&
	test -d "$TRASH/g1/legacy/$FIRST.git" &&
	all_refs after &&
	test_cmp before after
'

test_expect_success 'grove app gc optimizes an app where it lives: every replica, or the legacy copy' '
	"$GROVE" app list >apps &&
	on_cluster=$(grep -B2 "\"route\": \"cluster\"" apps | sed -n "s/.*\"name\": \"\(app[0-9]*\)\".*/\1/p" | head -n1) &&
	test -n "$on_cluster" &&
	"$GROVE" app gc $on_cluster >out &&
	test_grep "optimized $on_cluster on the cluster (every replica): repacked fully" out &&
	# A store logs rpc.done once the call is closed, just after the
	# router has its answer: wait for the three lines.
	wait_for 20 "the three stores to log their OptimizeRepository" optimized_everywhere &&
	"$GROVE" app gc $FIRST >out &&
	test_grep "optimized $FIRST in the legacy directory: repacked fully, refs packed" out &&
	test -f "$TRASH/g1/legacy/$FIRST.git/packed-refs" &&
	git ls-remote $REMOTE/$FIRST.git >ls && test_grep "refs/heads/main" ls &&
	test_must_fail "$GROVE" app gc nosuch 2>err &&
	test_grep "HTTP 404" err
'

test_expect_success 'the gate runs the batch: closing grove migrate does not stop it; one batch at a time' '
	# A push of the test itself, running on the first app of the batch (its
	# hold on the push lock), keeps the batch running until the test has
	# seen all it needs to.
	hold_push_lock g1 $FIRST &&
	{ "$GROVE" migrate --percent 100 >progress 2>err & } &&
	cli=$! &&
	wait_grep "^.* apps, .*; moving" err &&
	kill $cli && { wait $cli || true; } &&
	test_must_fail "$GROVE" migrate --percent 100 2>err2 &&
	test_grep "a batch migration is running already" err2 &&
	release_push_lock g1 $FIRST &&
	wait_for 120 "the batch to end" batch_ended &&
	test_grep "\"batch\":{\"running\":false,\"to\":\"cluster\",\"total\":$((APPS / 2)),\"done\":$((APPS / 2)),\"failed\":0" st &&
	test_grep "\"percent_on_cluster\":100" st
'

test_expect_success 'bad arguments are refused with the usage' '
	test_expect_code 2 "$GROVE" migrate --percent 101 2>err &&
	test_grep "give --percent from 0 to 100" err &&
	test_expect_code 2 "$GROVE" migrate --percent 10 --to nowhere 2>err &&
	test_grep "usage: grove migrate" err
'

test_done
