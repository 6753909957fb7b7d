# Shared by bench/run and bench/gate (sourced, not run): settings, scratch
# space and cleanup, timing, the cached repositories and a private sshd.
#
# The caller sets HERE (the bench/ directory) and `set -euo pipefail` first.
# shellcheck shell=bash

ROOT=$(dirname "$HERE")
G=${GROVE:-$ROOT/build/grove}
RUNS=${BENCH_RUNS:-5}
BIG=${BENCH_BIG:-0}
CACHE=${BENCH_CACHE:-$HERE/.cache}

# The repositories. Changing a parameter (or gen-repo.pl) regenerates them.
HIST_ARGS="history 42 3000 20 650000"   # 3000 commits, ~97 MiB packed
BIG_ARGS="big 43 16 67108864 4"         # 16 x 64 MiB random, 4 commits: 1 GiB

case "$RUNS" in ''|*[!0-9]*|0) echo "BENCH_RUNS must be a positive integer" >&2; exit 2 ;; esac
[ -x "$G" ] || { echo "bench: no grove binary at $G (run make, or set GROVE)" >&2; exit 2; }
G=$(cd "$(dirname "$G")" && pwd)/$(basename "$G")

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# bench_setup NAME: the dependencies, a scratch directory WORK and the traps
# that stop every daemon in PIDS on exit (also on failure or Ctrl-C).
bench_setup() {
	"$ROOT/scripts/install-deps" --bench
	SSHD=$(command -v sshd || echo /usr/sbin/sshd)
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/grove-$1.XXXXXX")
	# The traps may run while a timed command's output is redirected: they
	# report on a copy of the original stderr.
	exec {ERR}>&2
	PIDS=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# Stops every daemon started so far (PIDS), and waits for them.
stop_daemons() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

# forget PID...: drop PIDs that have been stopped and waited for from PIDS
# (the exit trap must not signal a pid the system may have reused since).
forget() {
	local keep=() pid f
	for pid in "${PIDS[@]}"; do
		for f in "$@"; do [ "$pid" = "$f" ] && continue 2; done
		keep+=("$pid")
	done
	PIDS=("${keep[@]}")
}

bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_daemons
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
		log "scratch directory kept: $WORK" 2>&"$ERR"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# A free loopback port (best effort: nothing listens there right now).
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 10000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "bench: no free port" >&2
	return 1
}

# timed VAR CMD...: runs CMD quietly, appends its wall time in seconds (from
# bash's EPOCHREALTIME: no fork in the timed part) to the array VAR. A
# failing command fails the benchmark, with its output.
timed() {
	local -n _acc=$1
	shift
	local t0 t1
	t0=${EPOCHREALTIME/./}
	if ! "$@" >"$WORK/last.out" 2>&1; then
		echo "bench: failed: $*" >&2
		cat "$WORK/last.out" >&2
		return 1
	fi
	t1=${EPOCHREALTIME/./}
	_acc+=("$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.4f", d / 1e6 }')")
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# gen_repo NAME ARGS: a bare repository CACHE/NAME.git from gen-repo.pl ARGS,
# generated once and kept.
gen_repo() {
	local name=$1 args=$2 dir=$CACHE/$1.git stamp
	stamp="$args $(git hash-object "$HERE/gen-repo.pl") layout-2"
	if [ -f "$dir/bench-stamp" ] && [ "$(cat "$dir/bench-stamp")" = "$stamp" ]; then
		return 0
	fi
	log "generating $name repository ($args), once"
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$CACHE"
	git init -q --bare "$dir.tmp"
	git -C "$dir.tmp" symbolic-ref HEAD refs/heads/main
	# One pack (fast-import would explode fewer than 100 objects to loose
	# ones, which every push would then have to deflate again).
	# Random blobs do not compress: level 0 and no delta attempts (fast-import
	# would diff each 64 MiB blob against the previous one) keep this short.
	# shellcheck disable=SC2086
	perl "$HERE/gen-repo.pl" $args |
		git -C "$dir.tmp" -c pack.compression=0 -c core.compression=0 \
			-c fastimport.unpackLimit=0 fast-import --quiet --big-file-threshold=16m
	if [ "$name" = history ]; then
		# Deltas as a maintained repository would have them.
		git -C "$dir.tmp" repack -adf -q
	else
		# Random 64 MiB blobs: no delta search (it would take minutes and
		# find nothing); their packed bytes are sent as they are.
		git -C "$dir.tmp" config core.bigFileThreshold 16m
	fi
	echo "$stamp" >"$dir.tmp/bench-stamp"
	mv "$dir.tmp" "$dir"
}

# start_sshd: a private sshd on 127.0.0.1 serving SSHDIR/repos. Sets SSHDIR,
# SSH_PORT, SSH_USER and SSH_BASE (the client command with OpenSSH's
# defaults; callers add options such as KexAlgorithms).
start_sshd() {
	SSHDIR=$WORK/ssh
	mkdir -p "$SSHDIR/repos" "$SSHDIR/home" && chmod 700 "$SSHDIR"
	ssh-keygen -q -t ed25519 -N '' -f "$SSHDIR/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$SSHDIR/client_key"
	cp "$SSHDIR/client_key.pub" "$SSHDIR/authorized_keys"
	SSH_PORT=$(free_port)
	cat >"$SSHDIR/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSH_PORT
HostKey $SSHDIR/host_key
AuthorizedKeysFile $SSHDIR/authorized_keys
PidFile $SSHDIR/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
PrintLastLog no
UseDNS no
# The default (10:30:100) drops connections at random beyond 10
# unauthenticated ones: concurrent clones would fail for that alone.
MaxStartups 1000
# git sends GIT_PROTOCOL=version=2 through SendEnv; without this, v0.
AcceptEnv GIT_PROTOCOL
# An empty home, as a dedicated git account would have: the login user's
# ~/.bashrc (which bash reads for every command sshd runs) is not part of
# what OpenSSH + git costs.
SetEnv HOME=$SSHDIR/home
EOF
	[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
	"$SSHD" -D -f "$SSHDIR/sshd_config" -e 2>"$SSHDIR/sshd.log" &
	PIDS+=($!)
	SSH_USER=$(id -un)
	SSH_BASE="ssh -i $SSHDIR/client_key -p $SSH_PORT -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
	for i in $(seq 100); do
		$SSH_BASE "$SSH_USER@127.0.0.1" true 2>/dev/null && break
		[ "$i" -eq 100 ] && { echo "bench: sshd did not come up:" >&2; cat "$SSHDIR/sshd.log" >&2; exit 1; }
		sleep 0.1
	done
	log "sshd on 127.0.0.1:$SSH_PORT"
}
ssh_url() { echo "$SSH_USER@127.0.0.1:$SSHDIR/repos/$1"; }

# Memory and ratios, shared by the benchmarks.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# sample_rss PID FILE: VmRSS (KiB) every 50 ms until killed.
sample_rss() {
	local pid=$1 out=$2 fd k v
	exec {fd}<> <(:)   # a pipe nobody writes: `read -t` on it is a sleep without a fork
	while [ -r "/proc/$pid/status" ]; do
		while read -r k v _; do
			if [ "$k" = VmRSS: ]; then echo "$v" >>"$out"; break; fi
		done <"/proc/$pid/status"
		read -r -t 0.05 -u "$fd" _ || true
	done
}
peak_of() { sort -n "$1" | tail -1; }
ratio() { awk -v s="$1" -v g="$2" 'BEGIN { printf "%.3f", g / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# percentile P VALUES...: the value at or above P % of them (nearest rank).
percentile() { local p=$1; shift; printf '%s
' "$@" | sort -g | awk -v p="$p" '{ v[NR] = $1 } END { r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'; }
