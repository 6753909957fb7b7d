#!/bin/sh
# A client whose network dies sends nothing more, not even a FIN. With
# gate.keepalive the gate's TCP probes find it out and the session ends in
# seconds; without, it would wait for gate.idleTimeout (10 minutes). The
# client runs in a network namespace and the test takes the link down.
#
# Needs root (ip netns, veth); skipped otherwise.
. "$(dirname "$0")/test-lib.sh"

netns_pair

# session_ended GATE: the gate logged the end of alice's upload-pack session.
session_ended() {
	grep -q '"event":"gate.session".*"user":"alice".*"command":"git-upload-pack"' "$TRASH/$1/gate.log"
}

# idle_fetch GATE PORT: from inside the namespace, an upload-pack session that
# reads the refs and then waits: its stdin is a FIFO it holds open itself
# (opened read-write), open and silent for as long as the client runs,
# whatever the clock. Its output in GATE.out; the client (ip netns exec
# execs ssh: one pid) is stopped when the test ends, as a daemon is.
idle_fetch() {
	mkfifo "$TRASH/$1.in" &&
	ip netns exec $NS ssh -i "$TRASH/keys/alice" -p $2 -o IdentitiesOnly=yes \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
		git@$HOST_IP "git-upload-pack 'web.git'" <>"$TRASH/$1.in" >"$TRASH/$1.out" 2>"$TRASH/$1.err" &
	record_daemon $!
}

test_setup 'a store; two gates on the host end of the veth pair, with keepalive and without' '
	start_store s1 &&
	new_key alice &&
	make_history src &&
	p1=$(free_port) && p2=$(free_port) &&
	start_gate g1 $s1_ADDR s1 gate.listen=$HOST_IP:$p1 gate.keepalive=1 gate.keepaliveCount=2 &&
	start_gate g2 $s1_ADDR s1 gate.listen=$HOST_IP:$p2 gate.keepalive=0 &&
	user_app g1 alice web &&
	user_app g2 alice web &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $p1)" git push -q ssh://git@$HOST_IP:$p1/web.git main)
'

test_expect_success 'a client cut off the network: its session ends within seconds with keepalive, not without' '
	idle_fetch g1 $p1 &&
	idle_fetch g2 $p2 &&
	wait_grep "refs/heads/main" g1.out &&
	wait_grep "refs/heads/main" g2.out &&
	! session_ended g1 && ! session_ended g2 &&
	t0=$(ms) &&
	ip -n $NS link set $VN down &&
	at_exit "ip -n $NS link set $VN up 2>/dev/null || true" &&
	wait_for 60 "the cut client'"'"'s session to end on g1 (keepalive)" session_ended g1 &&
	t1=$(ms) &&
	echo "# keepalive 1 s x 2: the dead client'"'"'s session ended $((t1 - t0)) ms after the cut" &&
	! session_ended g2 &&
	ip -n $NS link set $VN up
'

test_done
