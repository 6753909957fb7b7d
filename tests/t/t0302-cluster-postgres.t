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

# push_via_or_undo ROUTER REPO: push_via, and when the push is refused, the
# commit it made undone (the next try makes another).
push_via_or_undo() {
	push_via "$@" && return 0
	git -C src reset -q --hard HEAD~1
	return 1
}

# status_shows ROUTER PATTERN: ROUTER's `grove cluster status` (in st) has a
# line matching PATTERN now.
status_shows() {
	eval "addr=\$${1}_ADDR"
	"$GROVE" cluster -a $addr status >st 2>&1 && grep -q "$2" st
}

# all_healthy ROUTER: ROUTER's status (in st) shows each of the three stores
# healthy by both routers.
all_healthy() {
	eval "addr=\$${1}_ADDR"
	"$GROVE" cluster -a $addr status >st && test $(grep -c "^  s[123] .* yes  *2/2 " st) = 3
}

# replicas_same PATH: the three stores hold the same refs now.
replicas_same() {
	a=$(checksum $s1_ADDR s1 "$1") b=$(checksum $s2_ADDR s2 "$1") d=$(checksum $s3_ADDR s3 "$1")
	test -n "$a" && test "$a" = "$b" && test "$a" = "$d"
}

# held-connect: a GIT_SSH_COMMAND that passes the first $HOLD_BYTES bytes of
# git's data to grove connect $HOLD_ADDR, creates $TRASH/held, and holds the
# rest until $TRASH/release exists (or $TRASH/held is gone, or 10 minutes).
write_held_connect() {
	cat >"$TRASH/held-connect" <<-\EOF &&
	#!/bin/sh
	test "$1" = -G && exit 0
	# An asynchronous list reads /dev/null unless told otherwise.
	exec 3<&0
	HOLD_MARK=__TRASH__/held HOLD_UNTIL=__TRASH__/release perl -e '
		$| = 1; my ($left, $buf) = ($ENV{HOLD_BYTES}, "");
		while ($left > 0) { my $r = sysread(STDIN, $buf, $left > 65536 ? 65536 : $left); last if !$r; syswrite(STDOUT, $buf); $left -= $r; }
		open(my $m, ">", $ENV{HOLD_MARK}) and close($m);
		for (1 .. 6000) { last if -e $ENV{HOLD_UNTIL} || !-e $ENV{HOLD_MARK}; select(undef, undef, undef, 0.1); }
		while (sysread(STDIN, $buf, 65536)) { syswrite(STDOUT, $buf); }
	' <&3 | "$GROVE" connect "$HOLD_ADDR" "$@"
	EOF
	sed -i "s|__TRASH__|$TRASH|g" "$TRASH/held-connect" &&
	chmod +x "$TRASH/held-connect"
}

# job_gone ID: no job ID in the database (done), asked with $psql.
job_gone() {
	test -z "$($psql -c "SELECT id FROM jobs WHERE id = $1")"
}

# receiving PATH: a store is receiving a pack into PATH (its quarantine
# directory exists).
receiving() {
	for s in s1 s2 s3; do
		ls "$(repo_dir $s "$1")/objects" 2>/dev/null | grep -q incoming && return 0
	done
	return 1
}

test_setup 'PostgreSQL, three stores and two routers sharing the database' '
	start_postgres &&
	start_store s1 && start_store s2 && start_store s3 &&
	: bounds scaled, so that a slow healthy store or router is not taken for a dead one &&
	scaled="cluster.jobLease=$((3 * TEST_SCALE)) cluster.healthInterval=$((300 * TEST_SCALE))
		cluster.lagTimeout=$((5000 * TEST_SCALE)) cluster.voteTimeout=$((10000 * TEST_SCALE))" &&
	start_cluster r1 s1 s2 s3 -- cluster.database=$PG_URL $scaled &&
	start_cluster r2 s1 s2 s3 -- cluster.database=$PG_URL $scaled &&
	write_held_connect &&
	make_history src
'

test_expect_success 'the schema was made once, in PostgreSQL' '
	wait_grep "\"event\":\"cluster.started\".*\"database\":\"postgres://grove@127.0.0.1:$PG_PORT/postgres\"" r1/cluster.log &&
	: each schema step ran once, on one router of the two &&
	cat r1/cluster.log r2/cluster.log | grep "\"event\":\"db.schema_upgraded\"" |
		sed "s/.*\"version\":\([0-9]*\).*/\1/" | sort -n >steps &&
	test -s steps && test "$(sort -nu steps)" = "$(cat steps)" && test "$(head -1 steps)" = 1 &&
	test ! -e r1/cluster.db && test ! -e r2/cluster.db
'

test_expect_success 'a repository made and pushed through one router is served by the other' '
	create_repo $r1_ADDR default app.git &&
	push_via r1 app.git &&
	: git may end at the refs report, a moment before the router records the write &&
	wait_for 30 "r2 to show app.git at generation 1" eval \
		'"'"'"$GROVE" cluster -a $r2_ADDR repo app.git >repo && grep -q "generation 1, primary" repo'"'"' &&
	test $(grep -c " 1 *yes *yes *yes" repo) = 3 &&
	git_on $r2_ADDR clone -q ssh://default/app.git via-r2 &&
	test "$(git -C via-r2 rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	push_via r2 app.git &&
	wait_for 30 "r1 to show app.git at generation 2" eval \
		'"'"'"$GROVE" cluster -a $r1_ADDR repo app.git >repo && grep -q "generation 2, primary" repo'"'"' &&
	test_grep "generation 2, primary" repo
'

test_expect_success 'both routers record what they see; a store is down when the majority say so' '
	: both routers report each store healthy once their first checks are in &&
	wait_for 30 "r1 to see every store healthy by both routers" all_healthy r1 &&
	test $(grep -c "^  s[123] .* yes  *2/2 " st) = 3 &&
	pkill -9 -f "store -c $TRASH/s3/store.conf" &&
	wait_for 30 "r2 to show s3 down by both routers" status_shows r2 "^  s3 .* NO  *0/2 " &&
	test_grep "^  s3 .* NO  *0/2 " st &&
	push_via r1 app.git &&
	: the repair of s3 waits in its own queue until it is back &&
	wait_for 30 "r1 to show the repair of s3 waiting in its queue" status_shows r1 \
		"^  s3 .* NO  *0/2  *[0-9]*  *[0-9]*  *[1-9][0-9]*/0/0 " &&
	restart_store s3 &&
	wait_for 30 "r2 to show every replica of app.git at generation 3" eval \
		'"'"'"$GROVE" cluster -a $r2_ADDR repo app.git >repo && test $(grep -c " 3 *yes *yes *yes" repo) = 3'"'"' &&
	test $(grep -c " 3 *yes *yes *yes" repo) = 3 &&
	: r2 repaired s3, but r1 may not have seen it back yet: a write through r1 &&
	: before it does leaves s3 out, and the next test counts three replicas &&
	wait_for 30 "both routers to see every store healthy again" all_healthy r1
'

# in_flight PATH: how many writes to PATH the database holds as running.
in_flight() {
	$pgbin/psql -X -q -At -d $PG_URL -c "SELECT COUNT(*) FROM writes_in_flight WHERE relative_path = '$1'"
}

test_expect_success 'a verification through one router compares nothing while a push runs through the other' '
	create_repo $r1_ADDR default held.git &&
	push_via r1 held.git &&
	test "$(in_flight held.git)" = 0 &&
	(cd src && dd if=/dev/urandom of=held.bin bs=1M count=2 2>/dev/null && git add held.bin &&
		git commit -q -m held) &&
	rm -f held release &&
	(cd src && HOLD_ADDR=$r1_ADDR HOLD_BYTES=4000 GIT_SSH_COMMAND="$TRASH/held-connect" \
		git push -q ssh://default/held.git main 2>../held.err) &
	pusher=$! &&
	wait_for 30 "the push through r1 to be held, and in the database" \
		eval "test -e held && test \"\$(in_flight held.git)\" = 1" &&
	"$GROVE" cluster -a $r2_ADDR verify held.git >out &&
	test_grep "held.git: not compared: writes kept running" out &&
	grep "\"event\":\"cluster.verify_inconclusive\".*\"repo\":\"held.git\"" r2/cluster.log &&
	touch release &&
	wait $pusher &&
	: git ends at the refs report, before the router records the write done &&
	wait_for 30 "the write to end in the database" eval "test \"\$(in_flight held.git)\" = 0" &&
	"$GROVE" cluster -a $r2_ADDR verify held.git >out &&
	test_grep "held.git: 0 replica(s) differ" out &&
	test $(grep -c " ok$" out) = 3 &&
	git_on $r2_ADDR ls-remote ssh://default/held.git refs/heads/main >ls &&
	test_grep "^$(git -C src rev-parse main)" ls &&
	: app.git has every commit of src again, as the next tests expect &&
	push_via r1 app.git
'

# reload ROUTER KEY VALUE: sets KEY in ROUTER's configuration, and waits
# until it read it again (SIGHUP).
reload() {
	eval "rpid=\$${1}_PID"
	n=$(grep -c "\"event\":\"cluster.reloaded\"" $1/cluster.log || :) &&
	git config -f $1/cluster.conf "$2" "$3" && kill -HUP $rpid &&
	wait_for 30 "$1 to read its configuration again" \
		eval "test \$(grep -c '\"event\":\"cluster.reloaded\"' $1/cluster.log) -gt $n"
}

test_expect_success 'a push through one router waits for the replica still ending the last push through the other' '
	: r1 answers at quorum and lets a late replica run as long as it needs, r2 waits for it: no clock decides &&
	reload r1 cluster.trailingWait 50 && reload r1 cluster.lagTimeout 600000 && reload r2 cluster.lateWait 600000 &&
	p=$("$GROVE" cluster -a $r1_ADDR repo app.git | sed -n "s/.*primary \([^,]*\),.*/\1/p") &&
	victim=$(for s in s1 s2 s3; do test $s != $p && echo $s; done | tail -n1) &&
	vpid=$(pgrep -f "store -c $TRASH/$victim/store.conf") &&
	l1=$(wc -l <r1/cluster.log) && l2=$(wc -l <r2/cluster.log) &&
	(cd src && echo "$(date +%s%N)" >>log.txt && git commit -q -am "late via r1") &&
	rm -f held release late1.rc late2.rc &&
	{ (set +e; cd src && HOLD_ADDR=$r1_ADDR HOLD_BYTES=0 GIT_SSH_COMMAND="$TRASH/held-connect" \
		git push -q ssh://default/app.git main 2>../late1.err; echo $? >../late1.rc) & } &&
	wait_for 30 "the push to reach $victim" eval "test -e held && pgrep -f \"receive-pack $(repo_dir $victim app.git)\"" &&
	{
		kill -STOP $vpid && touch release &&
			wait_for 90 "the push through r1 to be answered without $victim" test -s late1.rc &&
			test "$(cat late1.rc)" = 0 &&
			: the next push, through r2, waits for the victim &&
			(cd src && echo "$(date +%s%N)" >>log.txt && git commit -q -am "next via r2") &&
			{ (set +e; cd src && git_on $r2_ADDR push -q ssh://default/app.git main 2>../late2.err
				echo $? >../late2.rc) & } &&
			wait_grep "\"event\":\"cluster.late_wait\".*\"repo\":\"app.git\".*\"elsewhere\":true" r2/cluster.log &&
			waiting=$(test -e late2.rc && echo ended || echo waiting)
		rc=$?; kill -CONT $vpid; test $rc = 0
	} &&
	test $waiting = waiting &&
	wait_for 90 "the push through r2 to end" test -s late2.rc &&
	cat late2.err && test "$(cat late2.rc)" = 0 &&
	: r1 answered with two replicas, the victim caught up, r2 wrote to all three &&
	tail -n +$((l1 + 1)) r1/cluster.log >log1 && tail -n +$((l2 + 1)) r2/cluster.log >log2 &&
	test_grep "\"event\":\"cluster.write\".*\"repo\":\"app.git\".*\"replicas\":2," log1 &&
	wait_grep "\"event\":\"cluster.caught_up\".*\"repo\":\"app.git\".*\"node\":\"$victim\"" r1/cluster.log &&
	test_grep "\"event\":\"cluster.waited_late\".*\"repo\":\"app.git\".*\"still_running\":false,\"elsewhere\":true" log2 &&
	test_grep "\"event\":\"cluster.write\".*\"repo\":\"app.git\".*\"replicas\":3," log2 &&
	! grep "\"event\":\"cluster.outdated\".*\"repo\":\"app.git\".*\"node\":\"$victim\"" log1 log2 &&
	: no row is left behind &&
	wait_for 30 "the writes to end in the database" eval "test \"\$(in_flight app.git)\" = 0" &&
	test -z "$($pgbin/psql -X -q -At -d $PG_URL -c "SELECT write_id FROM late_replicas")" &&
	wait_for 30 "the replicas of app.git to hold the same refs" replicas_same app.git &&
	reload r1 cluster.trailingWait 600000 && reload r1 cluster.lagTimeout $((5000 * TEST_SCALE)) &&
	reload r2 cluster.lateWait 2000
'

test_expect_success 'kill -9 of a router mid-push: no acknowledged push is lost, the other router goes on' '
	acked=$(git -C src rev-parse main) &&
	(cd src && dd if=/dev/urandom of=big.bin bs=1M count=20 2>/dev/null && git add big.bin &&
		git commit -q -m big)
	rm -f held release &&
	(cd src && HOLD_ADDR=$r1_ADDR HOLD_BYTES=2000000 GIT_SSH_COMMAND="$TRASH/held-connect" \
		git push -q ssh://default/app.git main 2>../big.err) &
	pusher=$!
	: mid-push: part of the pack went through r1, a store is receiving it &&
	wait_for 30 "the push to be held mid-pack through r1" eval "test -e held && receiving app.git" &&
	kill -9 $r1_PID &&
	touch release &&
	{ wait $pusher || true; } &&
	git_on $r2_ADDR ls-remote ssh://default/app.git refs/heads/main >ls &&
	cur=$(cut -f1 ls) &&
	{ test "$cur" = "$acked" || test "$cur" = "$(git -C src rev-parse main)"; } &&
	push_via r2 app.git &&
	git_on $r2_ADDR ls-remote ssh://default/app.git refs/heads/main >ls &&
	test_grep "^$(git -C src rev-parse main)" ls &&
	restart_cluster r1 &&
	wait_for 30 "the replicas of app.git to hold the same refs" replicas_same app.git &&
	test "$a" = "$b" && test "$a" = "$d"
'

test_expect_success 'a job held by a router that died is taken up once its lease runs out' '
	psql="$pgbin/psql -X -q -At -d $PG_URL" &&
	create_repo $r2_ADDR default probe.git &&
	now=$(date +%s%3N) &&
	: a lease that runs for an hour: the test ends it, not the clock &&
	id=$($psql -c "INSERT INTO jobs (kind, virtual_storage, relative_path, target_node, state, attempts, lease_owner, lease_until)
		VALUES ('"'"'update'"'"', '"'"'default'"'"', '"'"'app.git'"'"', '"'"'s3'"'"', '"'"'in_progress'"'"', 1, '"'"'r-dead'"'"', $((now + 3600000))) RETURNING id" | head -n1) &&
	test -n "$id" &&
	: a job queued after it, of another repository: once a router ran it, the routers looked at the leased one too &&
	probe=$($psql -c "INSERT INTO jobs (kind, virtual_storage, relative_path, target_node)
		VALUES ('"'"'verify'"'"', '"'"'default'"'"', '"'"'probe.git'"'"', '"'"'*'"'"') RETURNING id" | head -n1) &&
	test -n "$probe" &&
	wait_for 30 "a router to run the job queued after the leased one" job_gone $probe &&
	: still leased: no router takes a job whose lease runs &&
	test "$($psql -c "SELECT state || '"'"' '"'"' || lease_owner FROM jobs WHERE id = $id")" = "in_progress r-dead" &&
	: the lease runs out &&
	expired=$(date +%s%3N) &&
	$psql -c "UPDATE jobs SET lease_until = $((expired - 1)) WHERE id = $id" &&
	wait_for 30 "a router to take up the job whose lease ran out" job_gone $id &&
	done_at=$(date +%s%3N) &&
	test -z "$($psql -c "SELECT id FROM jobs WHERE id = $id")" &&
	echo "# a job leased by a dead router: run by another $((done_at - expired)) ms after its lease ran out" >"$TRASH/report"
'
test -f "$TRASH/report" && cat "$TRASH/report"

test_expect_success 'a restart of PostgreSQL: writes stop with a clear error, then resume by themselves' '
	$as_pg "$pgbin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null &&
	test_must_fail push_via r2 app.git &&
	test_grep "database .* is unreachable\|cannot connect to database" push.err &&
	git -C src reset -q --hard HEAD~1 &&
	pg_ctl_start &&
	wait_for 30 "writes through r2 to resume" push_via_or_undo r2 app.git &&
	push_via r1 app.git &&
	: the jobs the writes queued run, and none fails &&
	wait_for 30 "the replication queue to be empty" status_shows r1 "replication queue: ready 0, running 0, retrying 0, dead 0" &&
	test_grep "replication queue: ready 0, running 0, retrying 0, dead 0" st
'

test_done
