#!/bin/sh
# grove gate end to end, with the real ssh and git clients: keys, apps and
# access through the admin API; push, clone and fetch on both routes with
# protocols v0 and v2; the push policy; deployments streamed as "remote:".
. "$(dirname "$0")/test-lib.sh"

write_deploy() {
	cat >"$TRASH/deploy" <<-\EOF
	#!/bin/sh
	echo "building $GROVE_APP at $GROVE_NEW for $GROVE_PUSHER"
	echo "$GROVE_REF $GROVE_OLD $GROVE_NEW $GROVE_ARCHIVE_URL" >>"$PWD/env.$GROVE_APP"
	echo "$(date +%s.%N) start $GROVE_APP $GROVE_NEW" >>"$PWD/deploys.log"
	case "$(git --version)" in *) ;; esac
	# While "hold" exists, a deploy waits for the test to create "release"
	# (10 minutes at most): the test decides when it ends, not the clock.
	if test -e "$PWD/hold"; then
		i=0
		while ! test -e "$PWD/release" && test $i -lt 6000; do sleep 0.1; i=$((i + 1)); done
	fi
	echo "$(date +%s.%N) end $GROVE_APP $GROVE_NEW" >>"$PWD/deploys.log"
	test -e "$PWD/fail" && { echo "compilation failed" >&2; exit 3; }
	echo "release done"
	EOF
	chmod +x "$TRASH/deploy"
}

# hold_deploys / release_deploys: deploys of g1 wait from now on, until
# released; released, they run through (and so do the next ones).
hold_deploys() {
	rm -f "$TRASH/g1/release" && touch "$TRASH/g1/hold"
}
release_deploys() {
	touch "$TRASH/g1/release"
}
end_hold() {
	rm -f "$TRASH/g1/hold" "$TRASH/g1/release"
}

# running_deployment: a deployment of web is running; its id in $id.
running_deployment() {
	api g1 GET /api/v1/apps/web/deployments | tr -d " \n" >list &&
	id=$(sed -n "s/.*{\"id\":\([0-9]*\),[^}]*\"status\":\"running\".*/\1/p" list) &&
	test -n "$id"
}

# reads_settled PID: the TCP sockets of process PID (a gate connection)
# received nothing more for 10 looks in a row (about a second): it holds
# what it has, or has all there is. 125 once the process is gone.
reads_settled() {
	kill -0 "$1" 2>/dev/null || return 125
	: "${_rs_same:=0}"
	_rs=$(ss -tnpiH | grep -A1 "pid=$1," | grep -o "bytes_received:[0-9]*" | awk -F: "{ s += \$2 } END { print s + 0 }")
	if test "$_rs" = "${_rs_last:-}"; then _rs_same=$((_rs_same + 1)); else _rs_same=0 _rs_last=$_rs; fi
	test "$_rs_same" -ge 10
}

# How long a push waits for a locked app: longer than any step of a test
# takes on a busy machine (scaled), and what the messages say.
LOCK_WAIT=$((10 * TEST_SCALE))

test_setup 'a store and a gate routing to it' '
	start_store s1 &&
	write_deploy &&
	start_gate g1 $s1_ADDR s1 deploy.command=$TRASH/deploy gate.lockWait=$LOCK_WAIT &&
	new_key alice && new_key bob && new_key mallory &&
	GATE_SSH_PORT=$g1_SSH_PORT &&
	make_history src
'

test_expect_success 'the admin API creates users, keys, apps and access' '
	api g1 POST /api/v1/users "{\"name\":\"alice\"}" >out && test_grep "^201$" out &&
	api g1 POST /api/v1/users "{\"name\":\"bob\"}" >out && test_grep "^201$" out &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	test_grep "SHA256:" out &&
	key=$(cat "$TRASH/keys/bob.pub") &&
	api g1 POST /api/v1/users/bob/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	api g1 POST /api/v1/apps "{\"name\":\"web\",\"route\":\"cluster\"}" >out && test_grep "^201$" out &&
	api g1 POST /api/v1/apps "{\"name\":\"old-web\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/web/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	api g1 PUT /api/v1/apps/old-web/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	api g1 PUT /api/v1/apps/web/collaborators/bob "{\"access\":\"read\"}" >out && test_grep "^200$" out
'

test_expect_success 'ssh without a command greets the user and lists the apps' '
	test_expect_code 1 $(ssh_as alice $GATE_SSH_PORT) git@127.0.0.1 </dev/null >out 2>&1 &&
	test_grep "Hi alice! You.ve successfully authenticated, but Grove does not provide shell access." out &&
	test_grep "You can push to: old-web, web" out
'

test_expect_success 'push to the deploy branch (cluster route) deploys, output as remote: lines' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main 2>../push.err) &&
	test_grep "^remote: -----> Deploying web ($(git -C src rev-parse --short=7 main))" push.err &&
	test_grep "^remote: building web at $(git -C src rev-parse main) for alice" push.err &&
	test_grep "^remote: release done" push.err &&
	test_grep "^remote: -----> Deployed web" push.err &&
	test_grep "\[new branch\] *main -> main" push.err &&
	test "$(checksum $s1_ADDR s1 web.git)" != ""
'

for proto in 0 2; do
	test_expect_success "clone through the gate with protocol v$proto (cluster route)" '
		GIT_TRACE_PACKET=$TRASH/trace$proto GIT_SSH_COMMAND="$(ssh_as bob $GATE_SSH_PORT)" \
			git -c protocol.version='$proto' clone -q ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git web'$proto' &&
		git -C web'$proto' rev-parse HEAD >actual &&
		git -C src rev-parse main >expect &&
		test_cmp expect actual &&
		if test '$proto' = 2; then test_grep "version 2" trace2; else test_must_fail grep "version 2" trace0; fi
	'
done

test_expect_success 'legacy route: push creates <app>.git in the legacy directory and deploys' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/old-web.git main v1.0 2>../push.err) &&
	test_grep "^remote: -----> Deployed old-web" push.err &&
	git --git-dir="$TRASH/g1/legacy/old-web.git" rev-parse main >actual &&
	git -C src rev-parse main >expect &&
	test_cmp expect actual &&
	GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$GATE_SSH_PORT/old-web old &&
	git -C old rev-parse HEAD >actual &&
	test_cmp expect actual &&
	# The annotated tag came along: the tag object, and the commit it peels to.
	test_grep "\[new tag\] *v1.0 -> v1.0" push.err &&
	GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/old-web.git >ls &&
	test_grep "^$(git -C src rev-parse v1.0)	refs/tags/v1.0$" ls &&
	test_grep "^$(git -C src rev-parse "v1.0^{commit}")	refs/tags/v1.0^{}$" ls
'

test_expect_success 'tags pushed on the cluster route arrive and deploy nothing' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git light v1.0 2>../tags.err) &&
	test_grep "\[new tag\] *light -> light" tags.err &&
	test_grep "\[new tag\] *v1.0 -> v1.0" tags.err &&
	! grep "Deploy" tags.err &&
	GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git >ls &&
	test_grep "^$(git -C src rev-parse light)	refs/tags/light$" ls &&
	! grep "refs/tags/light^{}" ls &&
	test_grep "^$(git -C src rev-parse v1.0)	refs/tags/v1.0$" ls &&
	test_grep "^$(git -C src rev-parse "v1.0^{commit}")	refs/tags/v1.0^{}$" ls
'

test_expect_success 'a push to another branch is accepted and says it does not deploy' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main:feature 2>../push.err) &&
	test_grep "^remote: Pushed to feature: only main deploys." push.err &&
	test_must_fail grep "Deploying" push.err
'

test_expect_success 'with gate.otherBranches=false a push to another branch is refused in one line' '
	start_gate g2 $s1_ADDR s1 gate.otherBranches=false &&
	api g2 POST /api/v1/users "{\"name\":\"alice\"}" >out && test_grep "^201$" out &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g2 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	for route in cluster legacy; do
		app=strict-$route &&
		url=ssh://git@127.0.0.1:$g2_SSH_PORT/$app.git &&
		api g2 POST /api/v1/apps "{\"name\":\"$app\",\"route\":\"$route\"}" >out && test_grep "^201$" out &&
		api g2 PUT /api/v1/apps/$app/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
		(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" git push -q $url main) &&
		(cd src && test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" \
			git push $url main:feature 2>../strict.err) &&
		test $(grep -c "^remote: ERROR:" strict.err) = 1 &&
		test_grep "^remote: ERROR: $app only accepts pushes to main (not feature)." strict.err &&
		test_grep "! \[remote rejected\] *main -> feature (pre-receive hook declined)" strict.err &&
		GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" git ls-remote $url >ls &&
		test_grep "refs/heads/main$" ls &&
		! grep "refs/heads/feature" ls || return 1
	done
'

test_expect_success 'refs outside gate.refNamespaces are refused on both routes; the list decides' '
	(cd src && git notes add -m "a note" main) &&
	: the default gate: branches and tags, no notes &&
	for route in cluster legacy; do
		app=ns-$route &&
		url=ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git &&
		api g1 POST /api/v1/apps "{\"name\":\"$app\",\"route\":\"$route\"}" >out && test_grep "^201$" out &&
		api g1 PUT /api/v1/apps/$app/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
		(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git push -q $url main v1.0) &&
		(cd src && test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
			git push $url refs/notes/commits 2>../ns.err) &&
		test_grep "^remote: ERROR: refs/notes/commits was not pushed: $app takes refs only under refs/heads/, refs/tags/." ns.err &&
		test_grep "\[remote rejected\] *refs/notes/commits -> refs/notes/commits (pre-receive hook declined)" ns.err &&
		GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote $url >ls &&
		test_grep "refs/tags/v1.0$" ls &&
		! grep "refs/notes" ls || return 1
	done &&
	: /metrics counts those pushes as rejected, not ok, and says why &&
	curl -sf "$g1_ADMIN/metrics" >metrics &&
	test_grep "^grove_gate_sessions_total{command=\"git-receive-pack\",result=\"rejected\"} [2-9]" metrics &&
	test_grep "^grove_gate_push_refusals_total{reason=\"namespace\"} 2$" metrics &&
	: a gate that takes notes but not tags &&
	start_gate g3 $s1_ADDR s1 "gate.refNamespaces=refs/heads/ refs/notes/" &&
	api g3 POST /api/v1/users "{\"name\":\"alice\"}" >out && test_grep "^201$" out &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g3 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >out && test_grep "^201$" out &&
	api g3 POST /api/v1/apps "{\"name\":\"notes\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g3 PUT /api/v1/apps/notes/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	url=ssh://git@127.0.0.1:$g3_SSH_PORT/notes.git &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g3_SSH_PORT)" git push -q $url main refs/notes/commits) &&
	(cd src && test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g3_SSH_PORT)" git push $url v1.0 2>../ns.err) &&
	test_grep "^remote: ERROR: refs/tags/v1.0 was not pushed: notes takes refs only under refs/heads/, refs/notes/." ns.err &&
	: a list without refs/heads/ is a configuration error that names the setting &&
	cp g3/gate.conf g3/bad.conf &&
	git config -f g3/bad.conf gate.refNamespaces refs/tags/ &&
	test_must_fail "$GROVE" gate -c g3/bad.conf 2>bad.err &&
	test_grep "bad.conf: gate.refNamespaces: the list must name refs/heads/" bad.err
'

test_expect_success 'deleting the deploy branch is refused' '
	(cd src && test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git :main 2>../push.err) &&
	test_grep "^remote: ERROR: main is the deploy branch of web: it cannot be deleted." push.err &&
	test_grep "\[remote rejected\] main (pre-receive hook declined)" push.err
'

test_expect_success 'an app whose deploy branch is trunk deploys pushes to trunk only' '
	api g1 POST /api/v1/apps "{\"name\":\"trunk-app\",\"route\":\"cluster\",\"deploy_branch\":\"trunk\"}" >out &&
	test_grep "^201$" out && test_grep "\"deploy_branch\":\"trunk\"" out &&
	api g1 PUT /api/v1/apps/trunk-app/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/trunk-app.git main:trunk 2>../trunk.err) &&
	test_grep "^remote: -----> Deployed trunk-app" trunk.err &&
	test_grep "^refs/heads/trunk " "$TRASH/g1/env.trunk-app" &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/trunk-app.git main:main 2>../main.err) &&
	test_grep "^remote: Pushed to main: only trunk deploys." main.err &&
	! grep "Deploy" main.err &&
	test $(wc -l <"$TRASH/g1/env.trunk-app") = 1
'

test_expect_success 'a read-only collaborator cannot push; a stranger cannot see the app' '
	(cd src && test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $GATE_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main:x 2>../err) &&
	test_grep "ERROR: You can fetch web but not push to it" err &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $GATE_SSH_PORT)" \
		git clone ssh://git@127.0.0.1:$GATE_SSH_PORT/old-web.git nope 2>err &&
	test_grep "ERROR: Repository not found: old-web" err &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $GATE_SSH_PORT)" \
		git clone ssh://git@127.0.0.1:$GATE_SSH_PORT/no-such-app.git nope 2>err2 &&
	test_grep "ERROR: Repository not found: no-such-app" err2
'

test_expect_success 'an unknown key is refused' '
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as mallory $GATE_SSH_PORT)" \
		git clone ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git nope 2>err &&
	test_grep "Permission denied (publickey)" err
'

test_expect_success 'a failing deploy says so; the push itself stands' '
	touch "$TRASH/g1/fail" &&
	(cd src && echo f >f && git add f && git commit -q -m "will fail" &&
	 GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main 2>../push.err) &&
	rm "$TRASH/g1/fail" &&
	test_grep "^remote: compilation failed" push.err &&
	test_grep "^remote: !      Deployment of web failed (exit status 3)" push.err
'

test_expect_success 'the deploy command gets the ref, the old and new commits and a working archive URL' '
	zeros=0000000000000000000000000000000000000000 &&
	first=$(git -C src rev-parse main~1) && second=$(git -C src rev-parse main) &&
	# Two deployments of web so far: the first push (which created main)
	# and the failing one.
	test $(wc -l <"$TRASH/g1/env.web") = 2 &&
	head -n1 "$TRASH/g1/env.web" >first.env &&
	test_grep "^refs/heads/main $zeros $first http" first.env &&
	sed -n 2p "$TRASH/g1/env.web" >second.env &&
	test_grep "^refs/heads/main $first $second $g1_ADMIN/archive/web/$second.tar.gz?expires=[0-9]*&signature=[0-9a-f]\{64\}$" second.env &&
	curl -sf -o web.tar.gz "$(cut -d" " -f4 second.env)" &&
	tar tzf web.tar.gz >listing &&
	test_grep "^f$" listing &&
	test_grep "^file1.txt$" listing
'

# Push 1 is held inside its deploy until push 2 said it waits for it.
test_expect_success 'two pushes at once to one app deploy one after the other' '
	hold_deploys && : >"$TRASH/g1/deploys.log" &&
	git clone -q src src2 &&
	(cd src && echo a >a && git add a && git commit -q -m a) &&
	(cd src2 && git fetch -q ../src main && git reset -q --hard FETCH_HEAD && echo b >b && git add b && git commit -q -m b)
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main:main 2>../p1.err && echo 0 >../p1.rc || echo 1 >../p1.rc) &
	ordered=1
	if wait_for 30 "push 1 to deploy" grep -q " start " "$TRASH/g1/deploys.log"; then
		(cd src2 && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git push -f ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main:main 2>../p2.err && echo 0 >../p2.rc || echo 1 >../p2.rc) &
		wait_grep "Another deployment of web is running: this one waits for it." p2.err && ordered=0
	fi
	release_deploys &&
	wait &&
	end_hold &&
	test $ordered = 0 &&
	test "$(cat p1.rc)" = 0 && test "$(cat p2.rc)" = 0 &&
	test_grep "Another deployment of web is running: this one waits for it." p2.err &&
	test $(grep -c " start " "$TRASH/g1/deploys.log") = 2 &&
	awk "{print \$2}" "$TRASH/g1/deploys.log" | tr "\n" " " >order &&
	printf "start end start end " >expect &&
	test_cmp expect order
'

# The app is unlocked once the push said it waits, and whatever happens.
test_expect_success 'a locked app: fetches go on, a push waits and succeeds after unlock' '
	api g1 PATCH /api/v1/apps/web "{\"locked\":true}" >out && test_grep "^200$" out &&
	GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git >ls &&
	test_grep refs/heads/main ls &&
	(cd src && echo l >l && git add l && git commit -q -m locked)
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push -f ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main 2>../lock.err) &
	pusher=$!
	waited=0
	wait_grep "web is locked (maintenance or migration): waiting up to ${LOCK_WAIT}s" lock.err || waited=1
	api g1 PATCH /api/v1/apps/web "{\"locked\":false}" >unlock.out &&
	wait $pusher &&
	test $waited = 0 &&
	test_grep "^200$" unlock.out &&
	test_grep "web is locked (maintenance or migration): waiting up to ${LOCK_WAIT}s" lock.err &&
	test_grep "Deployed web" lock.err
'

test_expect_success 'a push to an app that stays locked fails with a clear message' '
	api g1 PATCH /api/v1/apps/web "{\"locked\":true}" >out && test_grep "^200$" out &&
	(cd src && echo m >m && git add m && git commit -q -m m &&
	 test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" \
		git push -f ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main 2>../lock2.err) &&
	api g1 PATCH /api/v1/apps/web "{\"locked\":false}" >out &&
	test_grep "ERROR: web is locked (maintenance or migration) and stayed locked for ${LOCK_WAIT}s: push again later." lock2.err
'

test_expect_success 'deployments are recorded with their log' '
	api g1 GET /api/v1/apps/web/deployments >out &&
	test_grep "^200$" out &&
	test_grep "\"status\": *\"failed\"" out &&
	test_grep "\"status\": *\"succeeded\"" out &&
	api g1 GET /api/v1/deployments/1 >one &&
	test_grep "release done" one &&
	# Every record whole: ids, web, main, old and new ids (the newest one is
	# what main is now), alice, a final status, start <= end (UTC, ISO 8601).
	GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git refs/heads/main >ls &&
	sed "\$d" out | perl -MJSON::PP -e '"'"'
		my ($main) = split /\s+/, $ARGV[0];
		my $list = decode_json(join "", <STDIN>);
		$list = $list->{deployments} if ref $list eq "HASH";
		my $ts = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
		my ($newest, $n) = (undef, 0);
		for my $d (@$list) {
			$n++;
			$d->{id} =~ /^\d+$/ && $d->{app} eq "web" && $d->{ref} eq "refs/heads/main" or die "record: @{[%$d]}\n";
			$d->{old_oid} =~ /^[0-9a-f]{40}$/ && $d->{new_oid} =~ /^[0-9a-f]{40}$/ or die "ids: @{[%$d]}\n";
			$d->{pusher} eq "alice" && $d->{status} =~ /^(succeeded|failed)$/ or die "who/status: @{[%$d]}\n";
			$d->{started_at} =~ $ts && $d->{finished_at} =~ $ts && $d->{started_at} le $d->{finished_at}
				or die "times: $d->{started_at} .. $d->{finished_at}\n";
			$newest = $d if !$newest || $d->{id} > $newest->{id};
		}
		$n >= 2 or die "$n deployments\n";
		$newest->{new_oid} eq $main or die "newest deployed $newest->{new_oid}, main is $main\n";
	'"'"' "$(cat ls)"
'

test_expect_success 'a large push arrives intact on both routes (flow control under load)' '
	git init -q big &&
	(cd big && for i in 1 2 3 4; do head -c 16000000 /dev/urandom >blob$i && git add blob$i && git commit -q -m "blob $i" || exit 1; done) &&
	api g1 POST /api/v1/apps "{\"name\":\"big-c\",\"route\":\"cluster\"}" >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"big-l\",\"route\":\"legacy\"}" >/dev/null &&
	api g1 PUT /api/v1/apps/big-c/collaborators/alice "{\"access\":\"write\"}" >/dev/null &&
	api g1 PUT /api/v1/apps/big-l/collaborators/alice "{\"access\":\"write\"}" >/dev/null &&
	for app in big-c big-l; do
		(cd big && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git -c pack.compression=0 \
			push -q ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git HEAD:refs/heads/other) || return 1
		GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git clone -q --mirror \
			ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git $app.git || return 1
		git -C $app.git fsck --connectivity-only || return 1
		git -C $app.git cat-file -p other:blob4 | cmp - big/blob4 || return 1
		test "$(git -C $app.git rev-parse other)" = "$(git -C big rev-parse HEAD)" || return 1
	done
'

test_expect_success 'a push over the app'"'"'s max_push_mb is refused on both routes, nothing kept; raised, it lands' '
	(cd big && head -c 3000000 /dev/urandom >blob5 && git add blob5 && git commit -q -m "blob 5") &&
	for app in big-c big-l; do
		api g1 PATCH /api/v1/apps/$app "{\"max_push_mb\":1}" >out && test_grep "\"max_push_mb\":1" out || return 1
		GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git >before || return 1
		(cd big && test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git -c pack.compression=0 \
			push ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git HEAD:refs/heads/other 2>../toobig.err) || return 1
		test_grep "\[remote rejected\] HEAD -> other (unpacker error)" toobig.err || return 1
		test_grep "pack exceeds maximum allowed size" toobig.err || return 1
		test_grep "^ERROR: This push sent .* MiB; $app accepts at most 1 MiB: git refused the pack and nothing of it was kept" toobig.err || return 1
		GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git >after || return 1
		test_cmp before after || return 1
	done &&
	blob5=$(git -C big rev-parse HEAD:blob5) &&
	test_must_fail git --git-dir="$TRASH/g1/legacy/big-l.git" cat-file -e $blob5 &&
	test_must_fail git --git-dir="$(repo_dir s1 big-c.git)" cat-file -e $blob5 &&
	git --git-dir="$(repo_dir s1 big-c.git)" rev-parse --verify -q refs/heads/other >/dev/null &&
	wait_grep "\"event\":\"gate.push_too_large\".*\"app\":\"big-l\"" "$TRASH/g1/gate.log" &&
	api g1 PATCH /api/v1/apps/big-c "{\"max_push_mb\":-1}" >out && test_grep "^400$" out &&
	test_grep "max_push_mb.*must be a whole number from 0 to" out &&
	for app in big-c big-l; do
		api g1 PATCH /api/v1/apps/$app "{\"max_push_mb\":0}" >out && test_grep "\"max_push_mb\":0" out || return 1
		(cd big && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git push -q \
			ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git HEAD:refs/heads/other 2>../ok.err) || return 1
		GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$GATE_SSH_PORT/$app.git >after || return 1
		test_grep "^$(git -C big rev-parse HEAD)	refs/heads/other" after || return 1
	done
'

# The gate passes a store's output on as the client's SSH window allows: a
# client that stops reading holds the store (gRPC flow control) instead of
# the gate buffering the pack.
test_expect_success 'a clone whose client stops reading is held, not buffered, and completes' '
	# An ssh whose reader takes 1 MiB, then nothing until "go" exists:
	# its output pipe fills, ssh stops granting window, the gate must wait.
	cat >stallssh <<-EOF &&
	#!/bin/sh
	$(ssh_as alice $GATE_SSH_PORT) "\$@" | perl -e '"'"'
		my (\$n, \$buf) = (0);
		while (my \$r = sysread(STDIN, \$buf, 65536)) {
			syswrite(STDOUT, \$buf) == \$r or exit 1;
			next if (\$n += \$r) < (1 << 20) || -e "$TRASH/stalled";
			open(my \$f, ">", "$TRASH/stalled");
			select(undef, undef, undef, 0.1) until -e "$TRASH/go";
		}
	'"'"'
	EOF
	chmod +x stallssh &&
	(GIT_SSH_COMMAND="$TRASH/stallssh" git clone -q --mirror \
		ssh://git@127.0.0.1:$GATE_SSH_PORT/big-c.git held.git 2>held.err; echo $? >held.rc) &
	wait_for 60 "the client to stop reading" test -e stalled &&
	# Measured once the gate took in all it would from the store: what it
	# holds, or (if it buffered) the whole pack.
	conn=$(pgrep -n -P $g1_PID) &&
	wait_for 60 "the gate connection to stop receiving" reads_settled $conn &&
	rss=$(awk "/^VmRSS:/ { print \$2 }" /proc/$conn/status) &&
	touch go &&
	echo "gate connection RSS while the client did not read: $rss KiB (64 MB pack)" &&
	{ test -n "$SANITIZED" || test "$rss" -lt 32768; } &&
	wait_for 120 "the held clone to complete" test -s held.rc &&
	test "$(cat held.rc)" = 0 &&
	git -C held.git cat-file -p other:blob4 | cmp - big/blob4
'

test_expect_success '/metrics counts sessions, bytes, deploys and auth failures' '
	curl -sf "$g1_ADMIN/metrics" >metrics &&
	test_grep "^grove_gate_sessions_total{command=\"git-receive-pack\",result=\"ok\"} [1-9]" metrics &&
	test_grep "^grove_gate_sessions_total{command=\"git-upload-pack\",result=\"refused\"} [1-9]" metrics &&
	test_grep "^grove_gate_bytes_pushed_total [1-9]" metrics &&
	test_grep "^grove_gate_bytes_fetched_total [1-9]" metrics &&
	test_grep "^grove_gate_deploys_total{status=\"failed\"} 1$" metrics &&
	test_grep "^grove_gate_deploys_total{status=\"succeeded\"} [1-9]" metrics &&
	test_grep "^grove_gate_auth_failures_total [1-9]" metrics &&
	test_grep "^grove_gate_push_duration_seconds_count [1-9]" metrics &&
	test_grep "^grove_gate_sessions_in_flight 0$" metrics &&
	# Histograms: cumulative buckets ending in +Inf = _count; every deploy
	# (succeeded or failed) is one observation.
	for h in push deploy; do
		n=$(sed -n "s/^grove_gate_${h}_duration_seconds_count //p" metrics) &&
		test_grep "^grove_gate_${h}_duration_seconds_bucket{le=\"+Inf\"} $n$" metrics &&
		test_grep "^grove_gate_${h}_duration_seconds_sum [0-9.e+-]*$" metrics &&
		grep "^grove_gate_${h}_duration_seconds_bucket" metrics | awk "{ if (\$2 < prev) exit 1; prev = \$2 }" || return 1
	done &&
	deploys=$(($(sed -n "s/^grove_gate_deploys_total{status=\"succeeded\"} //p" metrics) + 1)) &&
	test_grep "^grove_gate_deploy_duration_seconds_count $deploys$" metrics
'

test_expect_success 'the grove CLI drives the admin API' '
	GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" app create cli-app --deploy-branch trunk >out &&
	test_grep "\"deploy_branch\": \"trunk\"" out &&
	GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" access grant alice cli-app &&
	GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" app show cli-app >out &&
	test_grep "alice" out &&
	test_must_fail env GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" app create cli-app 2>err &&
	test_grep "HTTP 409" err &&
	test_must_fail env GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN=wrong "$GROVE" app list 2>err &&
	test_grep "HTTP 401" err &&
	GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" deploy log 1 >log &&
	test_grep "release done" log
'

test_expect_success 'the canary: new apps on the cluster route by a stable share, pinned routes honoured' '
	api g1 GET /api/v1/canary >out && test_grep "\"percent\":0,\"source\":\"config\"" out &&
	api g1 PUT /api/v1/canary "{\"percent\":50}" >out && test_grep "^200$" out &&
	test_grep "\"percent\":50,\"source\":\"api\"" out &&
	for i in $(seq 1 40); do
		api g1 POST /api/v1/apps "{\"name\":\"can$i\"}" | sed -n "s/.*\"route\":\"\([a-z]*\)\".*/can$i \1/p" || return 1
	done >routes.50 &&
	n=$(grep -c " cluster$" routes.50) && echo "# canary 50%: $n of 40 new apps on the cluster route" &&
	test "$n" -ge 10 && test "$n" -le 30 &&
	for i in $(seq 1 40); do api g1 DELETE /api/v1/apps/can$i >/dev/null || return 1; done &&
	for i in $(seq 1 40); do
		api g1 POST /api/v1/apps "{\"name\":\"can$i\"}" | sed -n "s/.*\"route\":\"\([a-z]*\)\".*/can$i \1/p" || return 1
	done >routes.again &&
	test_cmp routes.50 routes.again &&
	for i in $(seq 1 40); do api g1 DELETE /api/v1/apps/can$i >/dev/null || return 1; done &&
	GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" canary 75 >out &&
	test_grep "\"percent\": *75" out &&
	for i in $(seq 1 40); do
		api g1 POST /api/v1/apps "{\"name\":\"can$i\"}" | sed -n "s/.*\"route\":\"\([a-z]*\)\".*/can$i \1/p" || return 1
	done >routes.75 &&
	grep " cluster$" routes.50 | while read app r; do grep -q "^$app cluster$" routes.75 || { echo "$app left the cluster at 75%" >&2; exit 1; }; done &&
	api g1 PUT /api/v1/canary "{\"percent\":100}" >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"pinned\",\"route\":\"legacy\"}" >out && test_grep "\"route\":\"legacy\"" out &&
	api g1 POST /api/v1/apps "{\"name\":\"all-in\"}" >out && test_grep "\"route\":\"cluster\"" out &&
	api g1 GET /api/v1/status >out && test_grep "\"canary_percent\":100" out &&
	api g1 PUT /api/v1/canary "{\"percent\":101}" >out && test_grep "^400$" out && test_grep "0 to 100" out &&
	api g1 PUT /api/v1/canary "{\"percent\":\"10\"}" >out && test_grep "^400$" out &&
	api g1 PUT /api/v1/canary "{\"pct\":10}" >out && test_grep "^400$" out &&
	test_expect_code 2 "$GROVE" canary 150 2>err && test_grep "not a percentage" err &&
	api g1 PUT /api/v1/canary "{\"percent\":0}" >/dev/null
'

# The deployment is held until --follow showed its first line: what comes
# after that was streamed while it ran.
test_expect_success 'grove deploy log --follow streams a running deployment to its end' '
	hold_deploys &&
	(cd src && echo follow >follow && git add follow && git commit -q -m follow)
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $GATE_SSH_PORT)" git push ssh://git@127.0.0.1:$GATE_SSH_PORT/web.git main 2>../pf.err) &
	pusher=$!
	streamed=1 follower=
	if wait_for 30 "the deployment to run" running_deployment; then
		GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token "$GROVE" deploy log $id --follow >follow.out &
		follower=$!
		wait_grep "^building web at" follow.out && streamed=0
	fi
	release_deploys &&
	wait $pusher &&
	end_hold &&
	test $streamed = 0 &&
	wait $follower &&
	test_grep "^building web at $(git -C src rev-parse main)" follow.out &&
	test_grep "^release done" follow.out &&
	test $(grep -c "^release done" follow.out) = 1
'

test_done
