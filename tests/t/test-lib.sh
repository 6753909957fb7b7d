# Grove's end-to-end test library, in the style of git's t/test-lib.sh
# (sharness): each test is a shell snippet run in the test's own trash
# directory; results are TAP for `prove`. Real daemons on loopback, real
# git, nothing mocked.
#
#   . ./test-lib.sh
#   test_expect_success 'what it checks' '
#       some && commands
#   '
#   test_done

set -u
export LC_ALL=C
TEST_NAME=$(basename "$0" .t)
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
GROVE=${GROVE_BIN:-$TEST_DIR/../../build/grove}
# Set when the daemons run under AddressSanitizer, which keeps freed memory
# in quarantine: a test that bounds a daemon's memory cannot hold it then.
SANITIZED=
if ldd "$GROVE" 2>/dev/null | grep -q libasan; then SANITIZED=1; fi
case "$GROVE" in /*) ;; *) GROVE=$(cd "$(dirname "$GROVE")" && pwd)/$(basename "$GROVE") ;; esac
# TEST_SCALE: how many times longer than on an idle machine anything may
# take before a test gives up waiting for it. Every deadline of this library
# is multiplied by it: sanitized daemons are 2-5 times slower, and CI's
# machine may be busy (`make test-loaded`). GROVE_TEST_SCALE overrides.
TEST_SCALE=${GROVE_TEST_SCALE:-}
if test -z "$TEST_SCALE"; then
	if test -n "$SANITIZED"; then TEST_SCALE=3; else TEST_SCALE=1; fi
fi
export GROVE
if ! test -x "$GROVE"; then
	echo "1..0 # SKIP grove binary not built: $GROVE"
	exit 0
fi
# Under tests/run, in its run directory and named by the test's number only:
# a unix socket's path must stay under 108 bytes, and daemons put theirs
# deep in the trash (repositories/+grove/run/hook.sock).
if test -n "${GROVE_TEST_RUN:-}"; then
	TRASH=$(mktemp -d "$GROVE_TEST_RUN/${TEST_NAME%%-*}.XXXXXX")
else
	TRASH=$(mktemp -d "${TMPDIR:-/tmp}/grove-$TEST_NAME.XXXXXX")
fi
HOME=$TRASH/home
mkdir -p "$HOME"
export HOME
export GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
git config --global init.defaultBranch main
git config --global protocol.version 2
cd "$TRASH" || exit 1

test_count=0
test_failures=0

# pid_start PID: when the process started (clock ticks since boot), or
# nothing if there is no such process (or only its zombie). A pid with its
# start time names one process; a pid alone may by now be another's (pids
# are recycled: pid_max is 32768 on many machines and a test file starts
# thousands of processes).
pid_start() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" { print $20 }'
}

# same_process PID START: PID is still the process that started at START.
same_process() {
	test -n "$2" && test "$(pid_start "$1")" = "$2"
}

# record_daemon PID: PID is one of this test's daemons, stopped (SIGTERM,
# then SIGKILL) when the test ends, if it is still that same process: a
# daemon that died long ago must not take with it a process of a test file
# running alongside (prove -j2) that was given its pid.
record_daemon() {
	echo "$1 $(pid_start "$1")" >>"$TRASH/.daemons"
}

test_cleanup_daemons() {
	test -f "$TRASH/.daemons" || return 0
	live=
	while read -r pid start; do
		same_process "$pid" "$start" && live="$live $pid:$start"
	done <"$TRASH/.daemons"
	rm -f "$TRASH/.daemons"
	for p in $live; do
		kill -TERM "${p%%:*}" 2>/dev/null || true
	done
	for p in $live; do
		for _ in $(seq 1 25); do
			same_process "${p%%:*}" "${p#*:}" || break
			sleep 0.2
		done
		same_process "${p%%:*}" "${p#*:}" && kill -KILL "${p%%:*}" 2>/dev/null
	done
	return 0
}

# at_exit COMMAND: run COMMAND (a shell line) when the test ends, pass or
# fail, after the daemons are stopped: to unmount a filesystem or delete a
# network namespace the test made. Kept in a file, since test bodies run in
# subshells.
at_exit() {
	echo "$*" >>"$TRASH/.at-exit"
}

test_exit() {
	set +e
	if test -n "${_setup_name:-}"; then
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - $_setup_name"
		{ echo "# $TEST_NAME: not ok $test_count - $_setup_name"; test_saw; } >&2
		echo "Bail out! setup failed: $_setup_name"
		_setup_name=
	fi
	test_cleanup_daemons
	if test -f "$TRASH/.at-exit"; then
		# Last registered first, like a stack of undo steps.
		tac "$TRASH/.at-exit" | while read -r line; do
			sh -c "$line" || echo "# cleanup failed: $line"
		done
		rm -f "$TRASH/.at-exit"
	fi
	if test -z "${GROVE_TEST_KEEP:-}" && test "$test_failures" = 0; then
		cd / && rm -rf "$TRASH"
	else
		echo "# trash kept in $TRASH"
	fi
}
trap test_exit EXIT
trap 'exit 130' INT TERM

# skip_all REASON: the whole file is skipped (TAP "1..0 # SKIP"): for a
# prerequisite the machine lacks (root, ip netns, tmpfs). Call it before the
# first test.
skip_all() {
	echo "1..0 # SKIP $*"
	trap - EXIT
	test_exit >/dev/null
	exit 0
}

# artifacts_dir: where a test leaves what outlives its trash (a browser's
# screenshot): tests/artifacts/TEST_NAME, or $GROVE_TEST_ARTIFACTS/TEST_NAME
# (CI uploads that directory). Made empty first, so it holds this run's only.
artifacts_dir() {
	_ad=${GROVE_TEST_ARTIFACTS:-$TEST_DIR/../artifacts}/$TEST_NAME
	rm -rf "$_ad" && mkdir -p "$_ad" && (cd "$_ad" && pwd)
}

# require_root WHAT: skip the file unless it runs as root (WHAT: what needs it).
require_root() {
	test "$(id -u)" = 0 || skip_all "needs root for $*"
}

# test_saw: what a failed test saw, for a red CI to be understood from its
# log alone: the body's output (the clients' stderr among it), the log lines
# of every daemon that carry a correlation id the output names, and the last
# lines of each log written to during the test (.test-start is dated a
# second early: file times are coarser than the clock, and a log written
# at once must count).
test_saw() {
	sed -e 's/^/#    /' "$TRASH/.test-out" | tail -n 60
	logs=$(find "$TRASH" -maxdepth 3 \( -name '*.log' -o -name '*.err' -o -name 'server.out' \) \
		-newer "$TRASH/.test-start" -type f 2>/dev/null | sort)
	test -n "$logs" || return 0
	for id in $(grep -o '[0-9a-f]\{32\}' "$TRASH/.test-out" | sort -u | head -n 5); do
		echo "#  -- log lines of correlation id $id:"
		# shellcheck disable=SC2086
		grep -h "$id" $logs | tail -n 20 | sed -e 's/^/#    /'
	done
	for f in $logs; do
		echo "#  -- last lines of ${f#"$TRASH"/}:"
		tail -n 12 "$f" | sed -e 's/^/#    /'
	done
}

test_expect_success() {
	test_count=$((test_count + 1))
	touch -d "1 second ago" "$TRASH/.test-start"
	# Not as the condition of an `if` (nor left of || or &&): there the
	# shell ignores set -e, in the subshell too, and only the body's last
	# command would decide.
	(set -e; eval "$2") >"$TRASH/.test-out" 2>&1 </dev/null
	_rc=$?
	if test "$_rc" = 0; then
		echo "ok $test_count - $1"
	else
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - $1"
		# On stderr too, so that prove shows why without -v (in CI logs).
		{ echo "# $TEST_NAME: not ok $test_count - $1"; test_saw; } >&2
	fi
}

# wait_for SECONDS WHAT COMMAND [ARGS...]: runs COMMAND (its output thrown
# away) every 0.1 s until it succeeds, for at most SECONDS x TEST_SCALE;
# then says which condition never came and fails. A COMMAND that exits 125
# says it can never come (the daemon died): no more waiting. Tests wait on conditions,
# never on the clock: SECONDS is how long to wait for something that must
# come, generous, not how long a step takes. A compound condition:
# wait_for 10 "the deploy to start" eval 'grep -q start log && test -e x'.
wait_for() {
	_wf_limit=$(($1 * TEST_SCALE)) _wf_what=$2
	shift 2
	_wf_end=$(($(date +%s) + _wf_limit))
	while :; do
		_wf_rc=0
		"$@" >/dev/null 2>&1 || _wf_rc=$?
		test "$_wf_rc" = 0 && return 0
		test "$_wf_rc" != 125 || { echo "gave up waiting for $_wf_what: it can never come ($*)" >&2; return 1; }
		test "$(date +%s)" -lt "$_wf_end" || break
		sleep 0.1
	done
	echo "waited ${_wf_limit}s for $_wf_what; it never came ($*)" >&2
	return 1
}

# Like test_expect_success, but in this shell: for setup that sets variables.
# Under set -e, so any failing command stops the file; test_exit reports it.
test_setup() {
	test_count=$((test_count + 1))
	_setup_name=$1
	touch -d "1 second ago" "$TRASH/.test-start"
	set -e
	eval "$2" >"$TRASH/.test-out" 2>&1 </dev/null
	set +e
	_setup_name=
	echo "ok $test_count - $1"
}

test_done() {
	# A sanitized daemon reports leaks and errors as it exits, into its log:
	# stop them all, then look, so that a report fails the run.
	test_cleanup_daemons
	test_expect_success 'the daemons logged no sanitizer report' '
		! grep -rl --include="*.log" -e "ERROR: AddressSanitizer" -e "ERROR: LeakSanitizer" -e "runtime error:" "$TRASH" ||
		{ grep -r --include="*.log" -A30 -e "ERROR: AddressSanitizer" -e "ERROR: LeakSanitizer" -e "runtime error:" "$TRASH" | head -n 80; false; }
	'
	echo "1..$test_count"
	test "$test_failures" = 0
}

# test_expect_code CODE command...: the command exits with CODE.
test_expect_code() {
	want=$1; shift
	got=0
	"$@" || got=$?
	if test "$got" != "$want"; then
		echo "expected exit code $want, got $got: $*" >&2
		return 1
	fi
}

test_must_fail() {
	if "$@"; then
		echo "expected failure: $*" >&2
		return 1
	fi
	return 0
}

# test_must_be_empty FILE: fails, showing it, unless FILE is empty.
test_must_be_empty() {
	test -f "$1" && ! test -s "$1" && return 0
	echo "expected $1 to be empty, it holds:" >&2
	cat "$1" >&2
	return 1
}

test_cmp() {
	diff -u "$1" "$2"
}

# grep that shows the file when it does not match.
test_grep() {
	if ! grep "$@"; then
		eval "last=\${$#}"
		echo "no match for '$*' in:" >&2
		cat "$last" >&2 2>/dev/null
		return 1
	fi
}

# netns_pair: a network namespace $NS joined to this host by a veth pair
# ($VH here, $VN inside), HOST_IP here and NS_IP inside: a /30 of
# 10.231.0.0/16 picked at random, so that two runs at once (CI runs the suite
# plain and sanitized) do not clash, retried if this machine already has an
# address in it. `ip -n $NS link set $VN down` cuts the link: packets vanish
# (no RST, no "connection refused"), as when a cable or a switch port dies.
# Skips the file without root or iproute2. Call it before the first test.
netns_pair() {
	require_root "a network namespace and a veth pair"
	command -v ip >/dev/null || skip_all "no ip command (iproute2)"
	for _ in 1 2 3 4 5 6 7 8; do
		x=$(od -An -N1 -tu1 /dev/urandom | tr -d " ") y=$(( $(od -An -N1 -tu1 /dev/urandom | tr -d " ") / 4 * 4 ))
		ip -o addr show | grep -q " 10\.231\.$x\.$((y + 1))/\| 10\.231\.$x\.$((y + 2))/" || break
	done
	HOST_IP=10.231.$x.$((y + 1)) NS_IP=10.231.$x.$((y + 2))
	NS=grove-$TEST_NAME-$$ VH=gvh$$ VN=gvn$$
	ip netns add $NS 2>"$TRASH/netns.err" || skip_all "cannot make a network namespace: $(cat "$TRASH/netns.err")"
	at_exit "ip netns delete $NS"
	ip link add $VH type veth peer name $VN 2>"$TRASH/netns.err" || skip_all "cannot make a veth pair: $(cat "$TRASH/netns.err")"
	# Deleting one end deletes both; the namespace's end goes with the namespace.
	at_exit "ip link delete $VH 2>/dev/null || true"
	ip link set $VN netns $NS &&
		ip addr add $HOST_IP/30 dev $VH && ip link set $VH up &&
		ip -n $NS addr add $NS_IP/30 dev $VN && ip -n $NS link set $VN up && ip -n $NS link set lo up ||
		skip_all "cannot set up the veth pair between the host and namespace $NS"
}

# netns_fleet NAME...: one host per NAME, each a network namespace of its
# own with one interface (eth0) on a switch (a bridge in a namespace of its
# own), and this host on the switch too: NAME_IP is the host's address,
# NAME_NS its namespace, NAME_WRAP the prefix that runs a command there
# (start_store, restart_cluster and start_gate take it), FLEET_IP this
# host's address. A /24 of 10.232.0.0/16 picked at random (two runs at once
# must not clash). `netns_cut NAME` takes a host's interface down: packets
# vanish, as when its cable is pulled; `netns_mend NAME` brings it back.
# Skips the file without root or iproute2. Call it before the first test.
netns_fleet() {
	require_root "network namespaces and veth pairs"
	command -v ip >/dev/null || skip_all "no ip command (iproute2)"
	for _ in 1 2 3 4 5 6 7 8; do
		x=$(od -An -N1 -tu1 /dev/urandom | tr -d " ")
		ip -o addr show | grep -q " 10\.232\.$x\." || break
	done
	SW=grove-sw-$$
	ip netns add $SW 2>"$TRASH/netns.err" || skip_all "cannot make a network namespace: $(cat "$TRASH/netns.err")"
	at_exit "ip netns delete $SW"
	ip -n $SW link add br0 type bridge && ip -n $SW link set br0 up && ip -n $SW link set lo up ||
		skip_all "cannot make a bridge in namespace $SW"
	# This host: gfh$$ here, its peer on the switch.
	FLEET_IP=10.232.$x.1
	ip link add gfh$$ type veth peer name up0 netns $SW &&
		ip -n $SW link set up0 master br0 && ip -n $SW link set up0 up &&
		ip addr add $FLEET_IP/24 dev gfh$$ && ip link set gfh$$ up ||
		skip_all "cannot join this host to the switch"
	at_exit "ip link delete gfh$$ 2>/dev/null || true"
	i=10
	for h in "$@"; do
		i=$((i + 1))
		ns=grove-$h-$$
		ip netns add $ns && at_exit "ip netns delete $ns" &&
			ip -n $SW link add p$i type veth peer name eth0 netns $ns &&
			ip -n $SW link set p$i master br0 && ip -n $SW link set p$i up &&
			ip -n $ns addr add 10.232.$x.$i/24 dev eth0 && ip -n $ns link set eth0 up &&
			ip -n $ns link set lo up || skip_all "cannot put host $h on the switch"
		eval "${h}_IP=10.232.$x.$i ${h}_NS=$ns ${h}_WRAP=\"ip netns exec $ns\""
	done
}

netns_cut() {
	eval "ip -n \$${1}_NS link set eth0 down"
}

netns_mend() {
	eval "ip -n \$${1}_NS link set eth0 up"
}

# wait_grep PATTERN FILE: up to 20 s (scaled) for PATTERN to appear in FILE
# (a daemon's log line written just after the client has its answer, e.g.
# the gate's gate.session line); then test_grep shows the file if it did not.
wait_grep() {
	wait_for 20 "'$1' in $2" grep -q "$1" "$2" || test_grep "$1" "$2"
}

# A free TCP port on 127.0.0.1.
#
# The kernel's free port is free only until someone binds it, and the test
# files of a run start daemons side by side, which bind with SO_REUSEPORT
# (for upgrades): two of them given the same port would share it, each
# answering half of the other's calls. So each port is also claimed, once
# per run, by an atomic mkdir in the run's folder. And it is taken below
# the kernel's ephemeral range (ip_local_port_range), from which the kernel
# picks the local port of every client connection and of a daemon's
# "host:0": a port it had just said free was seen taken that way, by
# then, when the gate came to bind it (CI's parallel run).
free_port() {
	_fp_dir=${GROVE_TEST_RUN:-$TRASH}/ports
	mkdir -p "$_fp_dir" || return 1
	_fp_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || _fp_low=32768
	for _fp_try in $(seq 100); do
		_fp=$(perl -MIO::Socket::INET -e '
			my $low = shift;
			my $port = $low > 4096 ? int($low / 2) + int(rand($low - int($low / 2))) : 0;
			my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port, Listen => 1) or exit 1;
			print $s->sockport, "\n"' "$_fp_low") &&
			mkdir "$_fp_dir/$_fp" 2>/dev/null && echo "$_fp" && return 0
	done
	echo "free_port: no port left to claim" >&2
	return 1
}

# start_store NAME [config lines...]: a grove store in $TRASH/NAME, storage
# name NAME. Sets NAME_ADDR and exports GROVE_SECRET_FILE (all stores of a
# test share one secret, as all Grove parts of a deployment do). It listens
# on $STORE_HOST (default 127.0.0.1) and runs under $NAME_WRAP if set (e.g.
# "ip netns exec NS" for a store in a network namespace).
start_store() {
	name=$1; shift
	host=${STORE_HOST:-127.0.0.1}
	port=$(free_port)
	dir=$TRASH/$name
	"$GROVE" store --init "$dir" --name "$name" --listen "$host:$port" >/dev/null || return 1
	if test -n "${SHARED_SECRET:-}"; then
		cp "$SHARED_SECRET" "$dir/secret"
	else
		SHARED_SECRET=$dir/secret
	fi
	for line in "$@"; do
		git config -f "$dir/store.conf" ${line%%=*} "${line#*=}" || return 1
	done
	eval "${name}_ADDR=$host:$port"
	export GROVE_SECRET_FILE=$SHARED_SECRET
	restart_store "$name"
}

# serving ADDR PID: the daemon PID answers gRPC health checks at ADDR; 125
# (give up waiting) once it has exited.
serving() {
	"$GROVE" rpc -a "$1" /grpc.health.v1.Health/Check >/dev/null 2>&1 && return 0
	kill -0 "$2" 2>/dev/null || return 125
	return 1
}

# restart_store NAME: starts NAME's store again with its config (the log is
# appended to) and waits until it answers; sets NAME_PID.
restart_store() {
	dir=$TRASH/$1
	eval "wrap=\${${1}_WRAP:-}"
	$wrap "$GROVE" store -c "$dir/store.conf" >>"$dir/store.log" 2>&1 &
	pid=$!
	record_daemon "$pid"
	eval "${1}_PID=$pid"
	eval "addr=\$${1}_ADDR"
	wait_for 30 "store $1 to answer" serving "$addr" "$pid" && return 0
	echo "store $1 did not start:" >&2
	cat "$dir/store.log" >&2
	return 1
}

# start_cluster NAME STORE… [-- key=value…]: a cluster router in $TRASH/NAME
# in front of the named stores (started with start_store), sharing their
# secret; sets NAME_ADDR and NAME_PID. Health checks are fast for tests.
# It listens on $CLUSTER_HOST (default 127.0.0.1).
start_cluster() {
	cname=$1; shift
	chost=${CLUSTER_HOST:-127.0.0.1}
	port=$(free_port)
	dir=$TRASH/$cname
	mkdir -p "$dir" || return 1
	cp "$SHARED_SECRET" "$dir/secret" || return 1
	{
		printf '[cluster]\n\tname = %s\n\tlisten = %s:%s\n\tsecretFile = secret\n' "$cname" "$chost" "$port"
		printf '\tdatabase = cluster.db\n\thealthInterval = 300\n\thealthFailures = 2\n\treconcileInterval = 1\n'
		printf '\tverifyInterval = 0\n\tlagTimeout = 5000\n\tvoteTimeout = 10000\n'
		# A push waits for every replica: these tests read each store right
		# after a push, or stop one next. The product's default answers at
		# quorum (cluster.trailingWait); t0301 and grove up's tests run it.
		printf '\ttrailingWait = 600000\n'
	} >"$dir/cluster.conf"
	while test $# -gt 0 && test "$1" != "--"; do
		eval "saddr=\$${1}_ADDR"
		printf '[store "%s"]\n\taddress = %s\n' "$1" "$saddr" >>"$dir/cluster.conf"
		shift
	done
	test "${1:-}" = "--" && shift
	for line in "$@"; do
		git config -f "$dir/cluster.conf" ${line%%=*} "${line#*=}" || return 1
	done
	eval "${cname}_ADDR=$chost:$port"
	restart_cluster "$cname"
}

# start_postgres: a PostgreSQL server of the test's own on loopback, or on
# $PG_HOST (initdb, trust auth for user grove); sets PG_URL, PG_PORT and
# PG_DATA. As root it
# runs as the postgres user, which PostgreSQL requires.
start_postgres() {
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	test -x "$pgbin/initdb" || { echo "no PostgreSQL server installed (scripts/install-deps installs it)" >&2; return 1; }
	PG_PORT=$(free_port)
	PG_DATA=$TRASH/pg/data
	mkdir -p "$TRASH/pg" || return 1
	as_pg=""
	if test "$(id -u)" = 0; then
		chmod 755 "$TRASH" && chown postgres "$TRASH/pg" || return 1
		as_pg="runuser -u postgres --"
	fi
	$as_pg "$pgbin/initdb" -D "$PG_DATA" -A trust -U grove >"$TRASH/pg/initdb.out" 2>&1 ||
		{ cat "$TRASH/pg/initdb.out" >&2; return 1; }
	# Routers on other hosts (netns_fleet) connect over the network.
	if test -n "${PG_HOST:-}"; then
		echo "host all all 10.0.0.0/8 trust" >>"$PG_DATA/pg_hba.conf" || return 1
	fi
	pg_ctl_start || return 1
	PG_URL=postgres://grove@${PG_HOST:-127.0.0.1}:$PG_PORT/postgres
}

pg_ctl_start() {
	$as_pg "$pgbin/pg_ctl" -D "$PG_DATA" -l "$TRASH/pg/server.out" -w \
		-o "-p $PG_PORT -k $TRASH/pg -c listen_addresses=${PG_HOST:-127.0.0.1}" start >/dev/null ||
		{ cat "$TRASH/pg/server.out" >&2; return 1; }
	record_daemon "$(head -n1 "$PG_DATA/postmaster.pid")"
}

# restart_postgres: a fast stop and a start of the same server.
restart_postgres() {
	$as_pg "$pgbin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null && pg_ctl_start
}

# restart_cluster NAME: starts the router again with its config and database
# (under $NAME_WRAP if set).
restart_cluster() {
	dir=$TRASH/$1
	eval "wrap=\${${1}_WRAP:-}"
	$wrap "$GROVE" cluster -c "$dir/cluster.conf" >>"$dir/cluster.log" 2>&1 &
	pid=$!
	record_daemon "$pid"
	eval "${1}_PID=$pid"
	eval "addr=\$${1}_ADDR"
	wait_for 30 "router $1 to answer" serving "$addr" "$pid" && return 0
	echo "cluster $1 did not start:" >&2
	cat "$dir/cluster.log" >&2
	return 1
}

# wait_for_log NAME PATTERN: up to 20 s (scaled) for PATTERN to appear in
# store NAME's log.
wait_for_log() {
	wait_for 20 "'$2' in store $1's log" grep -q "$2" "$TRASH/$1/store.log" && return 0
	echo "no '$2' in $1's log:" >&2
	cat "$TRASH/$1/store.log" >&2
	return 1
}

# stop_store NAME: SIGTERM, then wait (up to 30 s, scaled) until the
# process is gone.
stop_store() {
	eval "pid=\$${1}_PID"
	kill -TERM "$pid" || return 1
	wait_for 30 "store $1 to stop" gone "$pid"
}

# gone PID: no process PID any more (or only its zombie, which a test's
# subshell that started it may never reap).
gone() {
	test -z "$(pid_start "$1")"
}

# rpc ADDR METHOD fields...: grove rpc against a store.
rpc() {
	addr=$1; shift
	"$GROVE" rpc -a "$addr" "$@"
}

# git through a store: git_on ADDR git-args...
git_on() {
	addr=$1; shift
	GIT_SSH_COMMAND="$GROVE connect $addr" git "$@"
}

# create_repo ADDR STORAGE PATH
create_repo() {
	rpc "$1" RepositoryService/CreateRepository repository.storage_name="$2" repository.relative_path="$3"
}

# checksum ADDR STORAGE PATH: prints the repository's checksum.
checksum() {
	rpc "$1" RepositoryService/CalculateChecksum repository.storage_name="$2" repository.relative_path="$3" |
		sed -n 's/.*"checksum":"\([0-9a-f]*\)".*/\1/p'
}

# A small history: main with 3 commits, a branch, a lightweight and an annotated tag.
make_history() {
	git init -q "$1" && (
		cd "$1" &&
		for i in 1 2 3; do
			echo "line $i" >"file$i.txt" && git add . && git commit -q -m "commit $i" || exit 1
		done &&
		git branch feature HEAD~1 &&
		git tag light HEAD~2 &&
		git tag -a -m "release 1" v1.0 HEAD
	)
}

# start_gate NAME STORE_ADDR STORAGE [config lines...]: a grove gate in
# $TRASH/NAME routing the cluster route to STORE_ADDR. Sets NAME_SSH_PORT,
# NAME_ADMIN (http://host:port), NAME_TOKEN, and exports the shared secret.
# It listens on $GATE_HOST (default 127.0.0.1) and runs under $NAME_WRAP if
# set.
start_gate() {
	name=$1 store=$2 storage=$3; shift 3
	dir=$TRASH/$name
	ghost=${GATE_HOST:-127.0.0.1}
	ssh_port=$(free_port) hook_port=$(free_port) admin_port=$(free_port)
	"$GROVE" gate --init "$dir" --listen "$ghost:$ssh_port" --store "$store" --storage "$storage" >/dev/null || return 1
	test -n "${SHARED_SECRET:-}" && cp "$SHARED_SECRET" "$dir/secret"
	git config -f "$dir/gate.conf" gate.hookListen "$ghost:$hook_port" &&
	git config -f "$dir/gate.conf" gate.adminListen "$ghost:$admin_port" || return 1
	for line in "$@"; do
		git config -f "$dir/gate.conf" ${line%%=*} "${line#*=}" || return 1
	done
	eval "wrap=\${${name}_WRAP:-}"
	$wrap "$GROVE" gate -c "$dir/gate.conf" >"$dir/gate.log" 2>&1 &
	record_daemon $!
	eval "${name}_PID=$! ${name}_SSH_PORT=$ssh_port ${name}_ADMIN=http://$ghost:$admin_port"
	eval "${name}_TOKEN=\$(cat \"$dir/admin-token\")"
	wait_for 30 "gate $name to answer /health" curl -sf "http://$ghost:$admin_port/health" && return 0
	echo "gate $name did not start:" >&2
	cat "$dir/gate.log" >&2
	return 1
}

# api GATE METHOD PATH [JSON]: the admin API with the gate's token; prints
# the body, then the status code on a line of its own.
api() {
	eval "base=\$${1}_ADMIN token=\$${1}_TOKEN"
	if test $# -ge 4; then
		curl -s -X "$2" -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
			-d "$4" -w '\n%{http_code}\n' "$base$3"
	else
		curl -s -X "$2" -H "Authorization: Bearer $token" -w '\n%{http_code}\n' "$base$3"
	fi
}

# user_app GATE USER APP [ACCESS]: on that gate, USER with the key
# $TRASH/keys/USER.pub (new_key), the app APP on the cluster route, and
# USER's ACCESS to it (write unless given); fails on any answer but success.
user_app() {
	api $1 POST /api/v1/users "{\"name\":\"$2\"}" >"$TRASH/.api" && test_grep "^201$" "$TRASH/.api" &&
	key=$(cat "$TRASH/keys/$2.pub") &&
	api $1 POST /api/v1/users/$2/keys "{\"public_key\":\"$key\"}" >"$TRASH/.api" && test_grep "^201$" "$TRASH/.api" &&
	api $1 POST /api/v1/apps "{\"name\":\"$3\",\"route\":\"cluster\"}" >"$TRASH/.api" && test_grep "^201$" "$TRASH/.api" &&
	api $1 PUT /api/v1/apps/$3/collaborators/$2 "{\"access\":\"${4:-write}\"}" >"$TRASH/.api" &&
	test_grep "^200$" "$TRASH/.api"
}

# new_key NAME: an ed25519 key pair in $TRASH/keys/NAME(.pub).
new_key() {
	mkdir -p "$TRASH/keys" &&
	ssh-keygen -q -t ed25519 -N "" -C "$1@test" -f "$TRASH/keys/$1"
}

# repo_dir STORE PATH: where a store keeps a repository (its hashed layout).
repo_dir() {
	h=$(printf "%s" "$2" | sha256sum | cut -c1-64)
	echo "$TRASH/$1/repositories/@hashed/$(echo $h | cut -c1-2)/$(echo $h | cut -c3-4)/$h.git"
}

# no_dataloss [SECONDS]: waits (30 s by default) until router $c_ADDR reports
# every replica of every repository up to date; shows its report if not.
no_dataloss() {
	wait_for "${1:-30}" "every replica to be up to date" eval \
		'"$GROVE" cluster -a $c_ADDR dataloss >dl 2>&1 && grep -q "every repository has all its replicas up to date" dl' &&
		return 0
	cat dl >&2
	return 1
}

# start_workers N CMD [ARGS]: runs "CMD [ARGS] I" in the background for
# I = 1..N; their pids in $pids, for `wait $pids`.
start_workers() {
	nw=$1; shift
	pids=
	for i in $(seq 1 "$nw"); do
		("$@" "$i") &
		pids="$pids $!"
	done
}

# ms: the wall clock in milliseconds.
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ssh_as KEY PORT: a GIT_SSH_COMMAND for the gate with that key only.
ssh_as() {
	echo "ssh -i $TRASH/keys/$1 -p $2 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"
}

# up_env: what a user of `grove up` in $TRASH/gd has: an SSH key in $HOME,
# two free ports for the gate (SSH_PORT, HTTP_PORT), the admin CLI pointed at
# the gate, and GIT_SSH_COMMAND with that key. Call it from test_setup (whose
# body runs in the test's own shell, so the exports stay).
up_env() {
	mkdir -p "$HOME/.ssh" &&
	ssh-keygen -q -t ed25519 -N "" -C me@test -f "$HOME/.ssh/id_ed25519" &&
	SSH_PORT=$(free_port) && HTTP_PORT=$(free_port) && GIT_HTTP_PORT=$(free_port) &&
	export USER=tester GROVE_ADMIN_URL=http://127.0.0.1:$HTTP_PORT GROVE_ADMIN_TOKEN_FILE=$TRASH/gd/gate/admin-token &&
	GIT_SSH_COMMAND="ssh -i $HOME/.ssh/id_ed25519 -p $SSH_PORT -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes" &&
	export GIT_SSH_COMMAND
}

# up_said N: grove up has told "Ctrl-C stops everything" N times (once per
# start: it is up); 125 (give up waiting) once it has exited.
up_said() {
	test "$(grep -c "Ctrl-C stops everything" "$TRASH/up.out" 2>/dev/null)" -ge "$1" && return 0
	gone "$(cat "$TRASH/up.pid")" && return 125
	return 1
}

# up_start N: starts grove up on $TRASH/gd with up_env's ports and waits
# until it is up (its Nth start).
up_start() {
	"$GROVE" up --data "$TRASH/gd" --ssh-port $SSH_PORT --http-port $HTTP_PORT ${GIT_HTTP_PORT:+--git-http-port $GIT_HTTP_PORT} \
		>>"$TRASH/up.out" 2>>"$TRASH/up.err" &
	echo $! >"$TRASH/up.pid"
	record_daemon $!
	wait_for 180 "grove up to be up" up_said "$1" && return 0
	cat "$TRASH/up.out" "$TRASH/up.err" >&2
	return 1
}

# hold_ssh FROM PORT N FILE: N connections to the SSH port from address FROM
# that read the gate's banner and then send nothing; FILE once all have it.
# In the background until stopped.
hold_ssh() {
	perl -MIO::Socket::INET -e '
		my ($from, $port, $n, $file) = @ARGV;
		my @c;
		for (1 .. $n) {
			my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, LocalAddr => $from)
				or die "connect: $!";
			my $banner = <$c>;
			die "no banner" unless $banner && $banner =~ /^SSH-2.0-/;
			push @c, $c;
		}
		open(my $f, ">", $file) or die; close $f;
		sleep 600;
	' "$@" &
	record_daemon $!
}

# hold_push_lock GATE APP: holds APP's push lock on GATE (shared), as a push
# running there does, until release_push_lock GATE APP: a migration of APP
# waits for it (journaled: in progress) with APP locked, and pushes to APP
# wait for the migration. Returns once the lock is held.
hold_push_lock() {
	mkdir -p "$TRASH/$1/locks" &&
	rm -f "$TRASH/held-$1-$2" "$TRASH/release-$1-$2" &&
	{ (flock -s 9 && touch "$TRASH/held-$1-$2" && until test -e "$TRASH/release-$1-$2"; do sleep 0.1; done) \
		9>"$TRASH/$1/locks/$2.lock" & } &&
	record_daemon $! &&
	wait_for 20 "the push lock of $2 on $1" test -e "$TRASH/held-$1-$2"
}

release_push_lock() {
	touch "$TRASH/release-$1-$2"
}
