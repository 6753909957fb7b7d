#!/bin/sh
# The gate behind a TCP load balancer that speaks the PROXY protocol: from
# an address of gate.proxyProtocolFrom a v1 or v2 header is required and
# names the client in the gate's logs; a connection from there without a
# valid header is dropped, and says why in the log.
. "$(dirname "$0")/test-lib.sh"

TOOL=${GROVE_TOOLS:-$(dirname "$GROVE")/tests/tools}/proxy-connect

# via_balancer VERSION SRC_IP SRC_PORT: a GIT_SSH_COMMAND through the fake balancer.
via_balancer() {
	echo "ssh -i $TRASH/keys/alice -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ProxyCommand=\"$TOOL 127.0.0.1 $g1_SSH_PORT $1 $2 $3\""
}

test_setup 'a store and a gate that takes PROXY headers from 127.0.0.1' '
	test -x "$TOOL" &&
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 gate.proxyProtocolFrom=127.0.0.1/32 &&
	new_key alice &&
	api g1 POST /api/v1/users "{\"name\":\"alice\"}" >/dev/null &&
	key=$(cat "$TRASH/keys/alice.pub") &&
	api g1 POST /api/v1/users/alice/keys "{\"public_key\":\"$key\"}" >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"web\",\"route\":\"cluster\"}" >/dev/null &&
	api g1 PUT /api/v1/apps/web/collaborators/alice "{\"access\":\"write\"}" >/dev/null &&
	make_history src
'

test_expect_success 'PROXY v1: the push works and the log names the client, not the balancer' '
	(cd src && GIT_SSH_COMMAND="$(via_balancer v1 203.0.113.7 40001)" \
		git push -q ssh://git@127.0.0.1/web.git main) &&
	wait_grep "\"event\":\"gate.proxied\",.*\"peer\":\"203.0.113.7:40001\",\"balancer\":\"127.0.0.1:" g1/gate.log &&
	wait_grep "\"event\":\"gate.session\".*\"peer\":\"203.0.113.7:40001\"" g1/gate.log
'

test_expect_success 'PROXY v2 (binary): the clone works, with the client in the log' '
	GIT_SSH_COMMAND="$(via_balancer v2 198.51.100.9 40002)" git clone -q ssh://git@127.0.0.1/web.git web &&
	test "$(git -C web rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	wait_grep "\"event\":\"gate.session\".*\"peer\":\"198.51.100.9:40002\"" g1/gate.log
'

test_expect_success 'from the balancer, a connection without a PROXY header is dropped' '
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" \
		git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git 2>err &&
	wait_grep "\"event\":\"gate.proxy_refused\".*does not start with a PROXY protocol header" g1/gate.log
'

test_expect_success 'a malformed PROXY header is dropped, and the gate goes on' '
	test_must_fail env GIT_SSH_COMMAND="$(via_balancer garbage 0 0)" git ls-remote ssh://git@127.0.0.1/web.git 2>err &&
	wait_grep "\"event\":\"gate.proxy_refused\".*PROXY v1 line is not" g1/gate.log &&
	GIT_SSH_COMMAND="$(via_balancer v1 203.0.113.8 40003)" git ls-remote ssh://git@127.0.0.1/web.git >ls &&
	test_grep refs/heads/main ls
'

test_expect_success 'from an address not in gate.proxyProtocolFrom a header is not believed' '
	start_gate g2 $s1_ADDR s1 gate.proxyProtocolFrom=10.0.0.0/8 &&
	user_app g2 alice web read &&
	# A client claiming to be 203.0.113.66: the header is no SSH banner,
	# so the connection fails, and nothing takes the claim as the peer.
	test_must_fail env GIT_SSH_COMMAND="ssh -i $TRASH/keys/alice -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ProxyCommand=\"$TOOL 127.0.0.1 $g2_SSH_PORT v1 203.0.113.66 40009\"" \
		git ls-remote ssh://git@127.0.0.1/web.git 2>err &&
	# The gate is done with that connection once it logged its end: only
	# then does the absence of the claim from the log mean something.
	wait_grep "\"event\":\"gate.kex_failed\"" g2/gate.log &&
	: libssh may quote the banner it got in its error, claim and all: what &&
	: matters is that no line takes the claim for the peer &&
	! grep "\"peer\":\"203.0.113.66" g2/gate.log &&
	! grep "\"event\":\"gate.proxied\"" g2/gate.log &&
	GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g2_SSH_PORT/web.git >ls &&
	test_grep refs/heads/main ls &&
	wait_grep "\"event\":\"gate.session\".*\"peer\":\"127.0.0.1:" g2/gate.log
'

test_expect_success 'the HTTP door takes the header too, before anything else' '
	hport=$(free_port) &&
	start_gate g3 $s1_ADDR s1 gate.proxyProtocolFrom=127.0.0.1/32 gate.httpListen=127.0.0.1:$hport &&
	user_app g3 alice web &&
	api g3 POST /api/v1/users/alice/tokens "{\"name\":\"t\"}" >tok &&
	token=$(sed -n "s/.*\"token\": *\"\([^\"]*\)\".*/\1/p" tok) && test -n "$token" &&
	: curl sends PROXY v1 with its own address: the gate says it was proxied &&
	curl -s -o /dev/null -w "%{http_code}" --haproxy-protocol -u "alice:$token" \
		"http://127.0.0.1:$hport/web.git/info/refs?service=git-upload-pack" >code &&
	test "$(cat code)" = 200 &&
	wait_grep "\"event\":\"gate.proxied\".*\"balancer\":\"127.0.0.1:" g3/gate.log &&
	: without the header, from the balancer: dropped &&
	! curl -s -o /dev/null -u "alice:$token" "http://127.0.0.1:$hport/web.git/info/refs?service=git-upload-pack" &&
	wait_grep "\"event\":\"gate.proxy_refused\"" g3/gate.log
'

test_done
