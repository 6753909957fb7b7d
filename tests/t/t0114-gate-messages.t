#!/bin/sh
# What a git user is told when Grove's storage fails: what happened, in the
# user's words, and a correlation id; never a store's address, a path or
# gRPC's own text, which go to the gate's log under that id.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a store, a gate routing to it, an app with code' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 &&
	new_key alice && user_app g1 alice web >/dev/null &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" && export GIT_SSH_COMMAND &&
	make_history src &&
	(cd src && git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main)
'

test_expect_success 'a store that is down: the user gets what happened and an id, the log the address' '
	stop_store s1 &&
	test_must_fail git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git clone 2>err &&
	test_grep "^ERROR: web: its repository cannot be reached right now. Try again in a minute; if it keeps failing, give the platform.s operators this id: [0-9a-f]\{32\}\.$" err &&
	id=$(sed -n "s/.*this id: \([0-9a-f]\{32\}\)\.$/\1/p" err) &&
	port=${s1_ADDR##*:} &&
	! grep -e "$port" -e "127.0.0.1" -e "grpc" -e "/tmp" -e "$TRASH" err &&
	wait_grep "\"event\":\"gate.command_failed\",\"correlation_id\":\"$id\".*$port" g1/gate.log
'

test_expect_success 'a push to it says the same' '
	(cd src && echo more >more && git add more && git commit -q -m more &&
	 test_must_fail git push ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>../push.err) &&
	test_grep "^ERROR: web: its repository cannot be reached right now" push.err &&
	! grep -e "${s1_ADDR##*:}" -e "/tmp" push.err
'

test_done
