#!/bin/sh
# Two cluster routers sharing one PostgreSQL database (a real server the
# test starts): a write through one is seen by the other; both agree on the
# stores' health; kill -9 of a router mid-push loses no acknowledged push;
# a restart of PostgreSQL stops writes with a clear error, and they resume
# by themselves when it is back.
. "$(dirname "$0")/test-lib.sh"

# push_via ROUTER REPO: one more commit on src's main, pushed through ROUTER.
push_via() {
	eval "addr=\$${1}_ADDR"
	(cd src && echo "$(date +%s%N)" >>log.txt && git add log.txt && git commit -q -m "via $1" &&
		git_on $addr push -q ssh://default/"$2" main 2>../push.err)
}

test_setup 'PostgreSQL, three stores and two routers sharing the database' '
	start_postgres &&
	start_store s1 && start_store s2 && start_store s3 &&
	start_cluster r1 s1 s2 s3 -- cluster.database=$PG_URL cluster.jobLease=3 &&
	start_cluster r2 s1 s2 s3 -- cluster.database=$PG_URL cluster.jobLease=3 &&
	make_history src
'

test_expect_success 'the schema was made once, in PostgreSQL' '
	test_grep "\"event\":\"cluster.started\".*\"database\":\"postgres://grove@127.0.0.1:$PG_PORT/postgres\"" r1/cluster.log &&
	test $(cat r1/cluster.log r2/cluster.log | grep -c "\"event\":\"db.migrated\"") = 1 &&
	test ! -e r1/cluster.db && test ! -e r2/cluster.db
'

test_expect_success 'a repository made and pushed through one router is served by the other' '
	create_repo $r1_ADDR default app.git &&
	push_via r1 app.git &&
	"$GROVE" cluster -a $r2_ADDR repo app.git >repo &&
	test_grep "generation 1, primary" repo &&
	test $(grep -c " 1 *yes *yes *yes" repo) = 3 &&
	git_on $r2_ADDR clone -q ssh://default/app.git via-r2 &&
	test "$(git -C via-r2 rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	push_via r2 app.git &&
	"$GROVE" cluster -a $r1_ADDR repo app.git >repo &&
	test_grep "generation 2, primary" repo
'

test_expect_success 'both routers record what they see; a store is down when the majority say so' '
	"$GROVE" cluster -a $r1_ADDR status >st &&
	test $(grep -c "^  s[123] .* yes  *2/2 " st) = 3 &&
	pkill -9 -f "store -c $TRASH/s3/store.conf" &&
	for _ in $(seq 1 100); do
		"$GROVE" cluster -a $r2_ADDR status >st && grep -q "^  s3 .* NO  *0/2 " st && break
		sleep 0.1
	done &&
	test_grep "^  s3 .* NO  *0/2 " st &&
	push_via r1 app.git &&
	restart_store s3 &&
	for _ in $(seq 1 150); do
		"$GROVE" cluster -a $r2_ADDR repo app.git >repo && test $(grep -c " 3 *yes *yes *yes" repo) = 3 && break
		sleep 0.1
	done &&
	test $(grep -c " 3 *yes *yes *yes" repo) = 3
'

test_expect_success 'kill -9 of a router mid-push: no acknowledged push is lost, the other router goes on' '
	acked=$(git -C src rev-parse main) &&
	(cd src && dd if=/dev/urandom of=big.bin bs=1M count=20 2>/dev/null && git add big.bin &&
		git commit -q -m big)
	(cd src && git_on $r1_ADDR push -q ssh://default/app.git main 2>../big.err) &
	pusher=$!
	sleep 0.3 &&
	kill -9 $r1_PID &&
	{ wait $pusher || true; } &&
	git_on $r2_ADDR ls-remote ssh://default/app.git refs/heads/main >ls &&
	cur=$(cut -f1 ls) &&
	{ test "$cur" = "$acked" || test "$cur" = "$(git -C src rev-parse main)"; } &&
	push_via r2 app.git &&
	git_on $r2_ADDR ls-remote ssh://default/app.git refs/heads/main >ls &&
	test_grep "^$(git -C src rev-parse main)" ls &&
	restart_cluster r1 &&
	for _ in $(seq 1 150); do
		a=$(checksum $s1_ADDR s1 app.git) b=$(checksum $s2_ADDR s2 app.git) d=$(checksum $s3_ADDR s3 app.git)
		test -n "$a" && test "$a" = "$b" && test "$a" = "$d" && break
		sleep 0.1
	done &&
	test "$a" = "$b" && test "$a" = "$d"
'

test_expect_success 'a job held by a router that died is taken up once its lease runs out' '
	psql="$pgbin/psql -X -q -At -d $PG_URL" &&
	now=$(date +%s%3N) &&
	id=$($psql -c "INSERT INTO jobs (kind, virtual_storage, relative_path, target_node, state, attempts, lease_owner, lease_until)
		VALUES ('"'"'update'"'"', '"'"'default'"'"', '"'"'app.git'"'"', '"'"'s3'"'"', '"'"'in_progress'"'"', 1, '"'"'r-dead'"'"', $((now + 3000))) RETURNING id" | head -n1) &&
	test -n "$id" &&
	sleep 1 &&
	: still leased: no router takes a job whose lease runs &&
	test "$($psql -c "SELECT state || '"'"' '"'"' || lease_owner FROM jobs WHERE id = $id")" = "in_progress r-dead" &&
	for _ in $(seq 1 100); do
		test -z "$($psql -c "SELECT id FROM jobs WHERE id = $id")" && break
		sleep 0.1
	done &&
	done_at=$(date +%s%3N) &&
	test -z "$($psql -c "SELECT id FROM jobs WHERE id = $id")" &&
	echo "# a job leased by a dead router: run by another $((done_at - now - 3000)) ms after its lease ran out" >"$TRASH/report"
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_expect_success 'a restart of PostgreSQL: writes stop with a clear error, then resume by themselves' '
	$as_pg "$pgbin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null &&
	test_must_fail push_via r2 app.git &&
	test_grep "database .* is unreachable\|cannot connect to database" push.err &&
	git -C src reset -q --hard HEAD~1 &&
	pg_ctl_start &&
	ok= &&
	for _ in $(seq 1 50); do
		if push_via r2 app.git; then ok=1; break; fi
		git -C src reset -q --hard HEAD~1
		sleep 0.2
	done &&
	test -n "$ok" &&
	push_via r1 app.git &&
	"$GROVE" cluster -a $r1_ADDR status >st &&
	test_grep "replication queue: ready 0, running 0, retrying 0, dead 0" st
'

test_done
