#!/bin/sh
# An empty app takes its default branch from its first push, as GitHub and
# GitLab do: a history on "master" pushed to an app whose HEAD names "main"
# is cloned with master checked out, on the legacy route and on the cluster
# route, where every replica's HEAD is the same. A HEAD that names an
# existing branch is never moved.
. "$(dirname "$0")/test-lib.sh"

test_setup 'three stores, a router, a gate, an app on each route' '
	start_store s1 && start_store s2 && start_store s3 &&
	start_cluster c s1 s2 s3 &&
	start_gate g1 $c_ADDR default &&
	new_key alice && user_app g1 alice web >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"old\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/old/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" && export GIT_SSH_COMMAND &&
	REMOTE=ssh://git@127.0.0.1:$g1_SSH_PORT &&
	make_history src &&
	git -C src branch -m main master
'

# head_of APP: where the app's HEAD points, as a client sees it.
head_of() {
	git ls-remote --symref $REMOTE/$1.git HEAD | sed -n "s/^ref: \([^	]*\)	HEAD$/\1/p"
}

for app in web old; do
	test_expect_success "$app: a first push of master makes master the default branch; a clone checks it out" "
		(cd src && git push -q $REMOTE/$app.git master) &&
		test \"\$(head_of $app)\" = refs/heads/master &&
		rm -rf clone-$app && git clone -q $REMOTE/$app.git clone-$app &&
		test \"\$(git -C clone-$app symbolic-ref HEAD)\" = refs/heads/master &&
		test -e clone-$app/file1.txt
	"
done

test_expect_success 'every replica of the cluster app has the same HEAD' '
	no_dataloss &&
	for s in s1 s2 s3; do
		git --git-dir="$(repo_dir $s web.git)" symbolic-ref HEAD >head.$s || return 1
	done &&
	echo refs/heads/master >expect &&
	test_cmp expect head.s1 && test_cmp expect head.s2 && test_cmp expect head.s3
'

test_expect_success 'a later push of main does not move an existing default branch' '
	(cd src && git push -q $REMOTE/web.git master:main && git push -q $REMOTE/old.git master:main) &&
	test "$(head_of web)" = refs/heads/master &&
	test "$(head_of old)" = refs/heads/master
'

test_expect_success 'several branches in a first push: main, else master, else the first by name' '
	for app in two three; do
		api g1 POST /api/v1/apps "{\"name\":\"$app\",\"route\":\"cluster\"}" >out && test_grep "^201$" out &&
		api g1 PUT /api/v1/apps/$app/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out ||
		return 1
	done &&
	(cd src && git push -q $REMOTE/two.git master:zeta master:master master:alpha &&
	 git push -q $REMOTE/three.git master:zeta master:beta) &&
	test "$(head_of two)" = refs/heads/master &&
	test "$(head_of three)" = refs/heads/beta
'

test_expect_success 'the admin API changes the default branch, on both routes, to a branch that exists' '
	for app in web old; do
		api g1 PATCH /api/v1/apps/$app "{\"default_branch\":\"main\"}" >out && test_grep "^200$" out &&
		test "$(head_of $app)" = refs/heads/main || return 1
	done &&
	test_grep "\"default_branch\":\"refs/heads/main\"" out &&
	no_dataloss &&
	for s in s1 s2 s3; do
		test "$(git --git-dir="$(repo_dir $s web.git)" symbolic-ref HEAD)" = refs/heads/main || return 1
	done
'

test_expect_success 'a default branch that does not exist is refused, and nothing changes' '
	for app in web old; do
		api g1 PATCH /api/v1/apps/$app "{\"default_branch\":\"nope\",\"locked\":true}" >out &&
		test_grep "^404$" out &&
		test_grep "app $app has no branch nope: push it first" out &&
		test "$(head_of $app)" = refs/heads/main &&
		api g1 GET /api/v1/apps/$app >out && test_grep "\"locked\":false" out || return 1
	done &&
	api g1 PATCH /api/v1/apps/web "{\"default_branch\":\"../x\"}" >out && test_grep "^400$" out
'

test_expect_success 'grove app update --default-branch changes it from the shell; a wrong one says why' '
	export GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN=$g1_TOKEN &&
	for app in two three; do
		"$GROVE" app update $app --default-branch zeta >out &&
		test "$(head_of $app)" = refs/heads/zeta || return 1
	done &&
	test_must_fail "$GROVE" app update two --default-branch nope 2>err &&
	test_grep "app two has no branch nope: push it first" err &&
	test "$(head_of two)" = refs/heads/zeta &&
	test_expect_code 2 "$GROVE" app update two 2>err &&
	test_grep "nothing to update: give --default-branch or --deploy-branch" err
'

test_done
