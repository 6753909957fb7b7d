#!/bin/sh
# Grove as a fleet: every part on a host of its own (a network namespace
# with its own address on one switch), over TCP with mutual TLS: a gate,
# two cluster routers sharing PostgreSQL (on this host), three stores. A
# push through the gate deploys and lands on every store; a clone gets it
# back; the other router serves it too. A store host is cut off (its cable
# pulled: packets vanish): pushes go on and are acknowledged on the
# majority; once it is back it is repaired; nothing acknowledged is lost. A
# host whose certificate comes from another CA is refused.
#
# Needs root (ip netns, veth, a bridge); skipped otherwise.
. "$(dirname "$0")/test-lib.sh"

netns_fleet gw r1 r2 s1 s2 s3 rogue

# tls_conf NAME: part NAME's certificate as config lines.
tls_conf() {
	echo "tls.ca=$TRASH/pki/ca.pem tls.cert=$TRASH/pki/$1.pem tls.key=$TRASH/pki/$1.key"
}

# push N: commit N on main, pushed through the gate; "acked N SHA" or
# "refused N" appended to pushes.
push() {
	(cd src && echo "$1" >n && git add n && git commit -q -m "push $1") &&
	if (cd src && GIT_SSH_COMMAND="$(ssh_as alice $gw_SSH_PORT)" \
		git push -q ssh://git@$gw_IP:$gw_SSH_PORT/web.git main 2>>../push.err); then
		echo "acked $1 $(git -C src rev-parse HEAD)" >>pushes
	else
		echo "refused $1" >>pushes
		git -C src reset -q --hard HEAD~1
	fi
}

# store_is ROUTER NAME yes|NO: ROUTER's status shows store NAME so now.
store_is() {
	eval "addr=\$${1}_ADDR"
	"$GROVE" cluster -a $addr status >st 2>&1 && grep -q "^  $2 .* $3 " st
}

# replicas_same: the three stores hold the same refs of web.git now.
replicas_same() {
	a=$(checksum $s1_ADDR s1 web.git) b=$(checksum $s2_ADDR s2 web.git) d=$(checksum $s3_ADDR s3 web.git)
	test -n "$a" && test "$a" = "$b" && test "$a" = "$d"
}

test_setup 'seven hosts on a switch; certificates naming each host; PostgreSQL here; stores, routers, a gate' '
	"$GROVE" tls ca pki &&
	for h in gw r1 r2 s1 s2 s3; do
		eval "ip=\$${h}_IP" && "$GROVE" tls cert pki $h $ip || return 1
	done &&
	"$GROVE" tls cert pki cli $FLEET_IP &&
	GROVE_TLS_CA=$TRASH/pki/ca.pem GROVE_TLS_CERT=$TRASH/pki/cli.pem GROVE_TLS_KEY=$TRASH/pki/cli.key &&
	export GROVE_TLS_CA GROVE_TLS_CERT GROVE_TLS_KEY &&
	PG_HOST=$FLEET_IP start_postgres &&
	for s in s1 s2 s3; do
		eval "STORE_HOST=\$${s}_IP" && start_store $s $(tls_conf $s) || return 1
	done &&
	scaled="cluster.jobLease=$((3 * TEST_SCALE)) cluster.healthInterval=$((300 * TEST_SCALE))
		cluster.lagTimeout=$((5000 * TEST_SCALE)) cluster.voteTimeout=$((10000 * TEST_SCALE))" &&
	CLUSTER_HOST=$r1_IP start_cluster r1 s1 s2 s3 -- cluster.database=$PG_URL $scaled $(tls_conf r1) &&
	CLUSTER_HOST=$r2_IP start_cluster r2 s1 s2 s3 -- cluster.database=$PG_URL $scaled $(tls_conf r2) &&
	cat >deploy <<-\EOF &&
	#!/bin/sh
	echo "building $GROVE_APP at $GROVE_NEW"
	EOF
	chmod +x deploy &&
	GATE_HOST=$gw_IP start_gate gw $r1_ADDR default deploy.command=$TRASH/deploy $(tls_conf gw) &&
	new_key alice && user_app gw alice web >/dev/null &&
	make_history src
'

test_expect_success 'each part is on its own host and address' '
	for a in $s1_ADDR $s2_ADDR $s3_ADDR $r1_ADDR $r2_ADDR; do
		case $a in 10.232.*) ;; *) echo "not on the fleet: $a"; return 1 ;; esac
	done &&
	test "$(ip netns identify $s1_PID)" = "$s1_NS" &&
	test "$(ip netns identify $r2_PID)" = "$r2_NS" &&
	test "$(ip netns identify $gw_PID)" = "$gw_NS"
'

test_expect_success 'a push through the gate deploys and lands on every store; both routers serve it' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $gw_SSH_PORT)" \
		git push ssh://git@$gw_IP:$gw_SSH_PORT/web.git main 2>../first.err) &&
	test_grep "^remote: building web at $(git -C src rev-parse main)" first.err &&
	test_grep "^remote: -----> Deployed web" first.err &&
	wait_for 30 "the three stores to hold the push" replicas_same &&
	GIT_SSH_COMMAND="$(ssh_as alice $gw_SSH_PORT)" git clone -q ssh://git@$gw_IP:$gw_SSH_PORT/web.git back &&
	test "$(git -C back rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	git_on $r2_ADDR clone -q ssh://default/web.git via-r2 &&
	test "$(git -C via-r2 rev-parse HEAD)" = "$(git -C src rev-parse main)"
'

test_expect_success 'a store host cut off: pushes go on; back, it is repaired; nothing acknowledged is lost' '
	: >pushes &&
	netns_cut s3 &&
	n=0 &&
	: pushes go on until the router has found s3 down and two were acknowledged since &&
	while ! store_is r1 s3 NO || test $(grep -c "^acked" pushes) -lt 2; do
		n=$((n + 1)) && push $n &&
		test $n -lt $((40 * TEST_SCALE)) || { cat st push.err; return 1; }
	done &&
	netns_mend s3 &&
	wait_for 60 "r1 to find s3 healthy again" store_is r1 s3 yes &&
	n=$((n + 1)) && push $n && test_grep "^acked $n " pushes &&
	wait_for 60 "s3 to be repaired" replicas_same &&
	: every acknowledged push is in the repository, on every store &&
	while read -r how i sha; do
		test "$how" = acked || continue
		for s in s1 s2 s3; do
			git --git-dir="$(repo_dir $s web.git)" cat-file -e $sha || { echo "push $i lost on $s"; return 1; }
		done
	done <pushes &&
	test "$(git --git-dir="$(repo_dir s3 web.git)" rev-parse main)" = "$(git -C src rev-parse main)" &&
	git --git-dir="$(repo_dir s3 web.git)" fsck --strict
'

test_expect_success 'a host with a certificate from another CA gets no answer from a router or a store' '
	"$GROVE" tls ca other && "$GROVE" tls cert other rogue $rogue_IP &&
	: it trusts both CAs, so its own side of the handshake would accept ours &&
	cat pki/ca.pem other/ca.pem >both.pem &&
	for a in $r1_ADDR $s1_ADDR; do
		test_must_fail $rogue_WRAP env GROVE_TLS_CA=$TRASH/both.pem GROVE_TLS_CERT=$TRASH/other/rogue.pem \
			GROVE_TLS_KEY=$TRASH/other/rogue.key "$GROVE" rpc -a $a /grpc.health.v1.Health/Check >out 2>&1 &&
		test_must_fail grep SERVING out || return 1
	done &&
	: the same host with a certificate from our CA is answered &&
	"$GROVE" tls cert pki rogue-ok $rogue_IP &&
	$rogue_WRAP env GROVE_TLS_CERT=$TRASH/pki/rogue-ok.pem GROVE_TLS_KEY=$TRASH/pki/rogue-ok.key \
		"$GROVE" rpc -a $s1_ADDR /grpc.health.v1.Health/Check >out &&
	test_grep SERVING out
'

test_done
