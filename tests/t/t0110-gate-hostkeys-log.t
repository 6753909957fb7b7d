#!/bin/sh
# The gate's host keys: ed25519 and RSA (for old clients), made on the first
# start and the same after a restart, so clients' known_hosts stay valid.
# And the one JSON line per session an operator greps: every field there.
. "$(dirname "$0")/test-lib.sh"

# scan PORT: the host keys the gate at PORT shows, "type key" per line
# (ssh-keyscan gives up on a host after -T seconds, 5 by default: a
# sanitized gate on a busy machine may need more to make an RSA signature).
scan() {
	for t in ed25519 rsa; do
		ssh-keyscan -T $((30 * TEST_SCALE)) -t $t -p $1 127.0.0.1 2>/dev/null | awk "{ print \$2, \$3 }" | grep . || return 1
	done
}

# answering PID: the gate PID answers /health on g1's admin address; 125
# (give up waiting) once it has exited.
answering() {
	curl -sf "$g1_ADMIN/health" >/dev/null && return 0
	gone "$1" && return 125
	return 1
}

test_setup 'a store and a gate; alice may push to web' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 &&
	new_key alice &&
	user_app g1 alice web &&
	make_history src
'

test_expect_success 'ed25519 and RSA host keys, kept across a restart' '
	scan $g1_SSH_PORT >keys.before &&
	test_grep "^ssh-ed25519 " keys.before &&
	test_grep "^ssh-rsa " keys.before &&
	test $(grep -c "\"event\":\"gate.host_key_generated\"" g1/gate.log) = 2 &&
	kill -TERM $g1_PID &&
	wait_for 30 "gate g1 to stop" gone $g1_PID &&
	# The same data directory, started again (in braces: a bare & would
	# send the whole && chain before it to the background).
	{ "$GROVE" gate -c g1/gate.conf >>g1/gate.log 2>&1 & } &&
	pid=$! &&
	record_daemon $pid &&
	wait_for 30 "gate g1 to answer /health again" answering $pid &&
	scan $g1_SSH_PORT >keys.after &&
	test_cmp keys.before keys.after &&
	test $(grep -c "\"event\":\"gate.host_key_generated\"" g1/gate.log) = 2
'

test_expect_success 'a client that only knows RSA host keys gets in' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT) -o HostKeyAlgorithms=rsa-sha2-512,rsa-sha2-256" \
		git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>../push.err)
'

test_expect_success 'one JSON line per session: user, key, app, command, route, result, bytes, duration, peer, correlation id' '
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git back &&
	# The session logs its line once the client has all it asked for.
	wait_grep "\"event\":\"gate.session\".*\"command\":\"git-upload-pack\"" g1/gate.log &&
	grep "\"event\":\"gate.session\"" g1/gate.log | grep "\"command\":\"git-upload-pack\"" | tail -n1 >line &&
	fp=$(ssh-keygen -l -E sha256 -f "$TRASH/keys/alice.pub" | cut -d" " -f2) &&
	for field in "\"user\":\"alice\"" "\"fingerprint\":\"$fp\"" "\"app\":\"web\"" "\"route\":\"cluster\"" \
		"\"result\":\"ok\"" "\"exit\":0" "\"bytes_in\":[1-9]" "\"bytes_out\":[1-9]" "\"ms\":[0-9]" \
		"\"peer\":\"127.0.0.1:[0-9]*\"" "\"correlation_id\":\"[0-9a-f]\{32\}\""; do
		test_grep "$field" line || return 1
	done &&
	corr=$(sed -n "s/.*\"correlation_id\":\"\([0-9a-f]*\)\".*/\1/p" line) &&
	wait_grep "\"correlation_id\":\"$corr\"" s1/store.log
'

test_done
