#!/bin/sh
# The daemons' common lifecycle (lib/daemon.c), the same for a store, a
# cluster router and a gate: systemd's readiness protocol (READY=1 once it
# serves, STOPPING=1 once it drains) on $NOTIFY_SOCKET, SIGHUP taken without
# stopping, SIGTERM a clean stop.
. "$(dirname "$0")/test-lib.sh"

# listen_notify NAME: a notify socket $TRASH/NAME.sock whose messages go,
# one a line, to $TRASH/NAME.notify.
listen_notify() {
	perl -MSocket -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $ARGV[0]) or die "socket: $!";
		open(my $f, ">>", $ARGV[1]) or die; $f->autoflush(1);
		while (defined $s->recv(my $m, 4096)) { print $f "$m\n" }' "$TRASH/$1.sock" "$TRASH/$1.notify" &
	record_daemon $!
	wait_for 20 "the notify socket $1" test -S "$TRASH/$1.sock"
}

# lifecycle NAME PID LOG ROLE: SIGHUP reloads (a store and a router read
# their TLS files again, a gate its whole config) and the daemon serves on;
# SIGTERM: STOPPING=1, then it exits.
lifecycle() {
	kill -HUP $2 &&
	wait_grep "\"event\":\"$4.reloaded\"" "$3" &&
	kill -0 $2 &&
	kill -TERM $2 &&
	wait_grep "^STOPPING=1$" "$TRASH/$1.notify" &&
	wait_for 30 "$1 to exit" gone $2 &&
	test "$(head -n 1 "$TRASH/$1.notify")" = "READY=1"
}

test_setup 'a store for the router and the gate' '
	start_store s2
'

test_expect_success 'a store says READY=1 once it answers, STOPPING=1 when told to stop' '
	listen_notify s1 &&
	NOTIFY_SOCKET=$TRASH/s1.sock && export NOTIFY_SOCKET &&
	start_store s1 &&
	wait_grep "^READY=1$" s1.notify &&
	lifecycle s1 $s1_PID s1/store.log store
'

test_expect_success 'a cluster router does the same' '
	listen_notify c &&
	NOTIFY_SOCKET=$TRASH/c.sock && export NOTIFY_SOCKET &&
	start_cluster c s2 &&
	wait_grep "^READY=1$" c.notify &&
	lifecycle c $c_PID c/cluster.log cluster
'

test_expect_success 'a gate does the same; its api process and sessions do not speak for it' '
	listen_notify g1 &&
	NOTIFY_SOCKET=$TRASH/g1.sock && export NOTIFY_SOCKET &&
	start_gate g1 $s2_ADDR s2 &&
	wait_grep "^READY=1$" g1.notify &&
	new_key alice && user_app g1 alice web >/dev/null &&
	make_history src &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main) &&
	test "$(grep -c . g1.notify)" = 1 &&
	lifecycle g1 $g1_PID g1/gate.log gate &&
	test "$(grep -c . g1.notify)" = 2
'

test_done
