#!/bin/sh
# `grove up` on a fresh data directory: the README's demo — your key, an app,
# a push that deploys, a clone back — then a restart that keeps everything,
# and a part that dies and comes back.
. "$(dirname "$0")/test-lib.sh"

up_stop() {
	pid=$(cat "$TRASH/up.pid")
	kill -TERM $pid &&
	wait_for 60 "grove up to stop" gone $pid
}

# restarted: grove up said it restarts both parts the test killed.
restarted() {
	grep -q "grove up: the store s1 exited (status 9); restarting it" "$TRASH/up.err" &&
	grep -q "grove up: the cluster exited (status 9); restarting it" "$TRASH/up.err"
}

test_setup 'grove up on a fresh data directory, with your SSH key' '
	up_env &&
	up_start 1
'

test_expect_success 'it says how to use it, in commands that work as printed' '
	test_grep "git remote:  ssh://git@127.0.0.1:$SSH_PORT/<app>.git" up.out &&
	: grove is not on PATH here: the banner names this binary &&
	test_grep "^  $(realpath "$GROVE") app create hello$" up.out &&
	test_grep "^  git push ssh://git@127.0.0.1:$SSH_PORT/hello.git main$" up.out &&
	: both /metrics it names answer &&
	router=$(sed -n "s|^  metrics: .*(gate), http://\(.*\)/metrics (router)$|\1|p" up.out) &&
	test -n "$router" &&
	curl -sf "http://$router/metrics" >rm && test_grep "^grove_cluster_store_healthy" rm &&
	curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" >gm && test_grep "^grove_gate_sessions_total" gm &&
	test_grep "you:         user tester, key $HOME/.ssh/id_ed25519.pub, administrator" up.out &&
	test_grep "grove app create hello" up.out
'

test_expect_success 'the demo: create an app, push, see the deploy, clone back' '
	"$GROVE" app create hello >out &&
	test_grep "\"route\": \"cluster\"" out &&
	make_history src &&
	(cd src && git push ssh://git@localhost:$SSH_PORT/hello.git main 2>../push.err) &&
	test_grep "^remote: -----> Building hello at $(git -C src rev-parse --short=7 main), pushed by tester" push.err &&
	test_grep "^remote: -----> Deployed hello" push.err &&
	git clone -q ssh://git@localhost:$SSH_PORT/hello.git back &&
	test "$(git -C back rev-parse HEAD)" = "$(git -C src rev-parse main)"
'

test_expect_success 'git over HTTP with a token, on the port the banner names' '
	test_grep "over HTTP:   http://127.0.0.1:$GIT_HTTP_PORT/<app>.git" up.out &&
	"$GROVE" token create tester --name test >tok &&
	test_grep "shown this once" tok &&
	token=$(tail -n1 tok) && test_grep -q "^grove_[0-9a-f]\{64\}$" tok &&
	git clone -q "http://tester:$token@127.0.0.1:$GIT_HTTP_PORT/hello.git" overhttp &&
	test "$(git -C overhttp rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	: a push over HTTP deploys, the deploy speaking as remote: lines &&
	(cd overhttp && echo http >http.txt && git add http.txt && git commit -q -m "over http" &&
		git push "http://tester:$token@127.0.0.1:$GIT_HTTP_PORT/hello.git" main 2>../httppush.err) &&
	test_grep "^remote: -----> Building hello at $(git -C overhttp rev-parse --short=7 HEAD), pushed by tester" httppush.err &&
	test_grep "^remote: -----> Deployed hello" httppush.err &&
	"$GROVE" token list tester >list && test_grep "\"name\": \"test\"" list && ! grep -q grove_ list &&
	"$GROVE" token revoke tester test &&
	test_must_fail git ls-remote "http://tester:$token@127.0.0.1:$GIT_HTTP_PORT/hello.git" 2>err &&
	test_grep "Authentication failed" err
'

# hello_current: the router has the three replicas of hello.git up to date.
hello_current() {
	"$GROVE" cluster -a unix:$TRASH/gd/run/cluster.sock --secret-file $TRASH/gd/secret repo hello.git >repo &&
		test $(grep -c " yes *yes *yes" repo) = 3
}

test_expect_success 'each part logs to its own file; the push is on the three stores' '
	for s in s1 s2 s3; do wait_grep "\"event\":\"store.started\"" gd/logs/$s.log || return 1; done &&
	wait_grep "\"event\":\"cluster.started\"" gd/logs/cluster.log &&
	wait_grep "\"event\":\"gate.session\"" gd/logs/gate.log &&
	: a push is answered once a quorum of replicas took it: the third may still be taking it &&
	wait_for 30 "the three replicas of hello.git to be up to date" hello_current &&
	"$GROVE" cluster -a unix:$TRASH/gd/run/cluster.sock --secret-file $TRASH/gd/secret status >st &&
	test_grep "with outdated or missing replicas 0" st &&
	: each store holds the one app, none behind, its queue, checked a moment ago, with its disk and version &&
	test_grep "^  STORE  *ADDRESS  *HEALTHY  *ROUTERS  *REPLICAS  *BEHIND  *QUEUE  *CHECKED  *DISK FREE  *VERSION  *LAST ERROR$" st &&
	v=$("$GROVE" --version | cut -d" " -f2) &&
	for s in s1 s2 s3; do
		test_grep "^  $s  *unix:$TRASH/gd/run/$s.sock  *yes  *1/1  *1  *0  *[0-9]*/[0-9]*/[0-9]*  *[0-9.]*s ago  *[0-9.]*/[0-9.]*G  *$v" st ||
			return 1
	done
'

test_expect_success 'grove up made a CA and a certificate per part, named in each config' '
	test "$(stat -c %a gd/tls/ca.key)" = 600 &&
	for p in s1 s2 s3 cluster gate cli; do
		openssl verify -CAfile gd/tls/ca.pem gd/tls/$p.pem || return 1
	done &&
	for c in stores/s1/store.conf cluster/cluster.conf gate/gate.conf; do
		test "$(git config -f gd/$c tls.ca)" = "$TRASH/gd/tls/ca.pem" || return 1
	done &&
	test "$(git config -f gd/stores/s2/store.conf tls.cert)" = "$TRASH/gd/tls/s2.pem" &&
	openssl x509 -in gd/tls/gate.pem -noout -ext subjectAltName >san &&
	test_grep "IP Address:127.0.0.1" san
'

test_expect_success 'grove status shows the stack in one table, colour only on a terminal' '
	: the verification queued by the last push may still run: waited for &&
	wait_for 30 "the replication queue to be idle" eval \
		'"'"'"$GROVE" status --data "$TRASH/gd" >st && grep -q "replication queue: ready 0, running 0," st'"'"' &&
	cat st &&
	test_grep "^PART  *ADDRESS  *STATE  *DETAIL$" st &&
	test_grep "^gate  *http://127.0.0.1:$HTTP_PORT  *up  *apps 1: 1 on the cluster, 0 legacy; new apps: 100 % to the cluster; 0 locked; deployments: 0 running, 0 queued; users 1$" st &&
	test_grep "^router  *unix:$TRASH/gd/run/cluster.sock  *up  *up, virtual storage default; repositories 1, with outdated or missing replicas 0; replication queue: ready 0, running 0, retrying 0, dead 0$" st &&
	for s in s1 s2 s3; do
		test_grep "^store $s  *unix:$TRASH/gd/run/$s.sock  *healthy  *1 replicas, 0 behind; healthy as 1 of 1 routers see it$" st || return 1
	done &&
	: the columns line up: every STATE starts where the header says &&
	col=$(head -n1 st | awk "{ print index(\$0, \"STATE\") }") &&
	test $(awk -v c=$col "NR > 1 && substr(\$0, c, 1) == \" \"" st | wc -l) = 0 &&
	test_must_fail grep -q "$(printf "\033")" st &&
	GROVE_ADMIN_URL=http://127.0.0.1:1 test_expect_code 1 "$GROVE" status --data "$TRASH/gd" >st &&
	test_grep "^gate .* DOWN  " st
'

test_expect_success 'a part that dies is restarted, and said so' '
	pkill -9 -f "grove store -c $TRASH/gd/stores/s1/store.conf" &&
	pkill -9 -f "grove cluster -c $TRASH/gd/cluster/cluster.conf" &&
	# Each said once grove up has found it dead, in whichever order.
	wait_for 30 "grove up to say it restarts the store and the cluster" restarted &&
	test_grep "grove up: the store s1 exited (status 9); restarting it" up.err &&
	test_grep "grove up: the cluster exited (status 9); restarting it" up.err &&
	wait_for 60 "a fetch through the restarted parts" eval \
		"git ls-remote ssh://git@localhost:$SSH_PORT/hello.git >ls 2>ls.err" &&
	test_grep refs/heads/main ls
'

test_expect_success 'SIGTERM stops everything' '
	up_stop &&
	test_must_fail pgrep -f "$TRASH/gd/" &&
	test_grep "grove up: stopping" up.err
'

test_expect_success 'a restart with the same data directory keeps apps, users and code' '
	up_start 2 &&
	"$GROVE" app show hello >out &&
	test_grep "\"name\": \"hello\"" out &&
	git clone -q ssh://git@localhost:$SSH_PORT/hello.git again &&
	: the last push came over HTTP &&
	test "$(git -C again rev-parse HEAD)" = "$(git -C overhttp rev-parse HEAD)" &&
	up_stop
'

test_done
