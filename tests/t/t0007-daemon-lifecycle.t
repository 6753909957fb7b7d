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

test_expect_success 'SIGHUP: a store reads its config again; a change that takes a restart is refused' '
	listen_notify s3 &&
	NOTIFY_SOCKET=$TRASH/s3.sock && export NOTIFY_SOCKET &&
	start_store s3 &&
	git config -f s3/store.conf store.maxRefListSize 1m &&
	kill -HUP $s3_PID &&
	wait_grep "\"event\":\"store.reloaded\".*configuration and TLS files read again" s3/store.log &&
	git config -f s3/store.conf log.level warn &&
	kill -HUP $s3_PID &&
	wait_for 20 "the second reload to end" eval "test \$(grep -c \"^READY=1\$\" s3.notify) = 3" &&
	lines=$(wc -l <s3/store.log) &&
	create_repo $s3_ADDR s3 quiet.git &&
	test "$(tail -n +$((lines + 1)) s3/store.log | grep -c "\"level\":\"info\"")" = 0 &&
	git config -f s3/store.conf store.root elsewhere &&
	kill -HUP $s3_PID &&
	wait_grep "\"event\":\"store.reload_failed\".*store.root changed: that takes a restart" s3/store.log &&
	kill -0 $s3_PID &&
	rpc $s3_ADDR RepositoryService/RepositoryExists repository.storage_name=s3 repository.relative_path=quiet.git >out &&
	test_grep true out
'

test_expect_success 'a cluster router does the same' '
	listen_notify c &&
	NOTIFY_SOCKET=$TRASH/c.sock && export NOTIFY_SOCKET &&
	start_cluster c s2 &&
	wait_grep "^READY=1$" c.notify &&
	lifecycle c $c_PID c/cluster.log cluster
'

test_expect_success 'SIGHUP: a router reads its config again; a change that takes a restart, or a typo, is refused' '
	listen_notify c2 &&
	NOTIFY_SOCKET=$TRASH/c2.sock && export NOTIFY_SOCKET &&
	start_cluster c2 s2 &&
	"$GROVE" cluster -a $c2_ADDR status >st && test_grep s2 st &&
	git config -f c2/cluster.conf cluster.lagTimeout 7000 &&
	kill -HUP $c2_PID &&
	wait_grep "\"event\":\"cluster.reloaded\".*configuration and TLS files read again" c2/cluster.log &&
	: the log level: at warn, the reload says READY=1 only &&
	git config -f c2/cluster.conf log.level warn &&
	kill -HUP $c2_PID &&
	wait_for 20 "the second reload to end" eval "test \$(grep -c \"^READY=1\$\" c2.notify) = 3" &&
	lines=$(wc -l <c2/cluster.log) &&
	"$GROVE" cluster -a $c2_ADDR status >st && test_grep s2 st &&
	: at warn, the call logs no info line &&
	test "$(tail -n +$((lines + 1)) c2/cluster.log | grep -c "\"level\":\"info\"")" = 0 &&
	: a new listen address takes a restart: refused, the old one serves on &&
	git config -f c2/cluster.conf cluster.listen 127.0.0.1:1 &&
	kill -HUP $c2_PID &&
	wait_grep "\"event\":\"cluster.reload_failed\".*cluster.listen changed: that takes a restart" c2/cluster.log &&
	git config -f c2/cluster.conf cluster.listen $c2_ADDR &&
	git config -f c2/cluster.conf cluster.lagTimout 1 &&
	kill -HUP $c2_PID &&
	wait_grep "\"event\":\"cluster.reload_failed\".*cluster.conf:[0-9]*: unknown key cluster.lagTimout" c2/cluster.log &&
	: the level in use stays warn after a refused reload &&
	lines=$(wc -l <c2/cluster.log) &&
	"$GROVE" cluster -a $c2_ADDR status >st && test_grep s2 st &&
	test "$(tail -n +$((lines + 1)) c2/cluster.log | grep -c "\"level\":\"info\"")" = 0 &&
	kill -0 $c2_PID
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

test_expect_success 'WatchdogSec: a store says WATCHDOG=1 twice a period while it serves' '
	listen_notify s4 &&
	NOTIFY_SOCKET=$TRASH/s4.sock WATCHDOG_USEC=400000 && export NOTIFY_SOCKET WATCHDOG_USEC &&
	start_store s4 &&
	unset WATCHDOG_USEC &&
	wait_for 30 "three WATCHDOG=1" eval "test \$(grep -c \"^WATCHDOG=1\$\" s4.notify) -ge 3" &&
	create_repo $s4_ADDR s4 alive.git
'

# activated_gate PORT: a gate started, as systemd does, by the first
# connection to PORT, on the socket systemd-socket-activate listens with.
activated_gate() {
	systemd-socket-activate -l 127.0.0.1:$1 -E PATH -E HOME "$GROVE" gate -c "$TRASH/ga/gate.conf" \
		>"$TRASH/ga/gate.log" 2>&1 &
	record_daemon $!
}

test_expect_success 'socket activation: a gate takes the socket systemd passes and serves the connection that started it' '
	"$GROVE" gate --init ga --listen 127.0.0.1:1 --store $s2_ADDR --storage s2 >/dev/null &&
	port=$(free_port) &&
	git config -f ga/gate.conf gate.listen 127.0.0.1:$port &&
	git config -f ga/gate.conf gate.adminListen 127.0.0.1:$(free_port) &&
	git config -f ga/gate.conf gate.hookListen 127.0.0.1:$(free_port) &&
	activated_gate $port &&
	wait_for 30 "systemd-socket-activate to listen" eval "grep -q \"^Listening on 127.0.0.1:$port\" ga/gate.log" &&
	: nothing runs the gate yet: the first connection starts it, and gets its banner &&
	perl -MIO::Socket::INET -e "
		my \$c = IO::Socket::INET->new(PeerAddr => q(127.0.0.1:$port)) or die q(connect);
		print scalar <\$c>;" >banner &&
	test_grep "^SSH-2.0-Grove" banner &&
	wait_grep "\"event\":\"gate.socket_activated\".*\"address\":\"127.0.0.1:$port\"" ga/gate.log &&
	pid=$(pgrep -f "gate -c $TRASH/ga/gate.conf" | head -n 1) &&
	kill -TERM $pid &&
	wait_for 30 "the gate to stop" gone $pid
'

test_done
