#!/bin/sh
# Two gates sharing one PostgreSQL database (a real server the test starts),
# as behind a TCP load balancer: users, keys, apps and access made through
# one gate's admin API hold at the other's SSH door; a deployment run by one
# is seen by the other; a key removed through one is refused by both; a
# restart of PostgreSQL is survived.
. "$(dirname "$0")/test-lib.sh"

# ls_remote_web PORT: alice lists web through the gate on PORT, into ls
# (what git said into ls.err).
ls_remote_web() {
	GIT_SSH_COMMAND="$(ssh_as alice $1)" git ls-remote ssh://git@127.0.0.1:$1/web.git >ls 2>ls.err
}

test_setup 'PostgreSQL, a store and two gates sharing the database' '
	start_postgres &&
	start_store s1 &&
	cat >"$TRASH/deploy" <<-\EOF &&
	#!/bin/sh
	echo "deploying $GROVE_APP at $GROVE_NEW on $(basename "$PWD")"
	EOF
	chmod +x "$TRASH/deploy" &&
	start_gate g1 $s1_ADDR s1 gate.database=$PG_URL deploy.command=$TRASH/deploy &&
	start_gate g2 $s1_ADDR s1 gate.database=$PG_URL deploy.command=$TRASH/deploy &&
	new_key alice &&
	make_history src
'

test_expect_success 'the schema lives in PostgreSQL, made once' '
	test ! -e g1/gate.db && test ! -e g2/gate.db &&
	test $(cat g1/gate.log g2/gate.log | grep "\"event\":\"db.schema_upgraded\"" | grep -c "\"version\":1,\|\"version\":1}") = 1 &&
	test $(cat g1/gate.log g2/gate.log | grep "\"event\":\"db.schema_upgraded\"" | grep -c "\"version\":2") = 1
'

# pg_clients: client connections PostgreSQL has now, this query's included.
pg_clients() {
	psql "$PG_URL" -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
}

test_expect_success 'connections that offer no key cost no database work' '
	base=$(pg_clients) && test -n "$base" &&
	hold_ssh 127.0.0.1 $g1_SSH_PORT 5 banners &&
	wait_for 30 "five connections to get the banner" test -e banners &&
	test "$(pg_clients)" = "$base"
'

test_expect_success 'made through one gate, used through the other' '
	api g1 POST /api/v1/users "{\"name\":\"alice\"}" >out && test_grep "^201$" out &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	api g1 POST /api/v1/apps "{\"name\":\"web\",\"route\":\"cluster\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/web/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	api g2 GET /api/v1/apps/web >out && test_grep "\"alice\"" out &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$g2_SSH_PORT/web.git main 2>../push.err) &&
	test_grep "^remote: deploying web at $(git -C src rev-parse main) on g2" push.err &&
	api g1 GET /api/v1/apps/web/deployments >out &&
	test_grep "\"status\": *\"succeeded\"" out &&
	api g1 GET /api/v1/deployments/1 >out &&
	test_grep "deploying web at" out &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git web &&
	test "$(git -C web rev-parse HEAD)" = "$(git -C src rev-parse main)"
'

test_expect_success 'the canary share set through one gate is the other gate'"'"'s too' '
	api g1 PUT /api/v1/canary "{\"percent\":100}" >out && test_grep "^200$" out &&
	api g2 GET /api/v1/canary >out && test_grep "\"percent\":100,\"source\":\"api\"" out &&
	api g2 POST /api/v1/apps "{\"name\":\"canaried\"}" >out && test_grep "\"route\":\"cluster\"" out &&
	api g2 PUT /api/v1/canary "{\"percent\":0}" >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"not-canaried\"}" >out && test_grep "\"route\":\"legacy\"" out &&
	api g1 DELETE /api/v1/apps/canaried >/dev/null && api g1 DELETE /api/v1/apps/not-canaried >/dev/null
'

test_expect_success 'a key removed through one gate is refused by both' '
	fp=$(ssh-keygen -lf "$TRASH/keys/alice.pub" | cut -d" " -f2) &&
	api g2 DELETE /api/v1/keys/$fp >out && test_grep "^204$" out &&
	for port in $g1_SSH_PORT $g2_SSH_PORT; do
		test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $port)" git ls-remote ssh://git@127.0.0.1:$port/web.git 2>err &&
		test_grep -i "permission denied\|ERROR" err || return 1
	done &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g2 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out
'

test_expect_success 'a restart of PostgreSQL is survived by both gates' '
	restart_postgres &&
	for g in g1 g2; do
		eval "port=\$${g}_SSH_PORT" &&
		{ wait_for 30 "gate $g to serve alice again after the restart" ls_remote_web $port ||
			{ cat ls.err >&2; false; }; } &&
		test_grep refs/heads/main ls || return 1
	done &&
	api g1 GET /api/v1/apps >out && test_grep "^200$" out &&
	api g2 GET /api/v1/status >out && test_grep "\"apps\":1," out
'

test_done
