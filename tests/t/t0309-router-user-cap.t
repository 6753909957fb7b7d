#!/bin/sh
# A router caps the git commands one user runs through it at once
# (cluster.maxCallsPerUser), whatever gate they came through: one user
# holding a fetch open gets a clear refusal for the next one, while another
# user is served; once the first ends, the user is served again.
. "$(dirname "$0")/test-lib.sh"

# holding: alice's held fetch got its advertisement, so its call is open in
# the router (it waits for a request that does not come).
holding() {
	test -s held.out
}

test_setup 'a store, a router capping each user at one call, a gate' '
	start_store s1 &&
	start_cluster c s1 -- cluster.maxCallsPerUser=1 cluster.replicationFactor=1 &&
	start_gate g1 $c_ADDR default &&
	new_key alice && new_key bob &&
	user_app g1 alice web >/dev/null &&
	api g1 POST /api/v1/users "{\"name\":\"bob\"}" >/dev/null &&
	key=$(cat keys/bob.pub) &&
	api g1 POST /api/v1/users/bob/keys "{\"public_key\":\"$key\"}" >/dev/null &&
	api g1 PUT /api/v1/apps/web/collaborators/bob "{\"access\":\"read\"}" >out && test_grep "^200$" out &&
	make_history src &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main)
'

test_expect_success 'alice holds a fetch open: her next command is refused, bob is served' '
	: an upload-pack that has sent its refs and waits for a request that does not come &&
	{ perl -e "for (1..6000) { last if -e q(release); select(undef, undef, undef, 0.1) }" |
		$(ssh_as alice $g1_SSH_PORT) git@127.0.0.1 "git-upload-pack '"'"'web.git'"'"'" >held.out 2>held.err & } &&
	wait_for 30 "the held fetch to get its advertisement" holding &&
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git 2>err &&
	test_grep "^ERROR: You have too many git operations running at once on Grove.s storage: try again when one of them has ended." err &&
	test_must_fail grep -i "grpc\|cluster.maxCallsPerUser\|127.0.0.1:$c_ADDR" err &&
	wait_grep "\"event\":\"cluster.user_busy\".*\"user\":\"alice\",\"running\":1" c/cluster.log &&
	GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >bob.ls &&
	test_grep "refs/heads/main$" bob.ls &&
	touch release &&
	wait_for 30 "alice to be served again" eval \
		"GIT_SSH_COMMAND=\"\$(ssh_as alice $g1_SSH_PORT)\" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >alice.ls" &&
	test_grep "refs/heads/main$" alice.ls
'

test_done
