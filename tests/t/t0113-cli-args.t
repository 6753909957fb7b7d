#!/bin/sh
# The command line of every grove command, parsed with getopt_long from one
# table per command: --help of one style everywhere (exit 0, "usage: grove"
# first), an unknown option refused in one line that names it (exit 2), git's
# ssh invocation of grove connect as before, and the bash completion made
# from the same tables.
. "$(dirname "$0")/test-lib.sh"

# Every command that takes --help, as the words after "grove".
COMMANDS="up;status;store;gate;cluster;cluster help;cluster status;cluster repo;cluster dataloss;
	cluster accept-dataloss;cluster set-replication-factor;cluster verify;cluster failover;
	user;key;app;access;deploy;canary;app create;app list;user create;key add;access grant;deploy log;
	migrate;backup;restore;connect;rpc;completion"

# each_command FN: FN with the words of each command.
each_command() {
	echo "$COMMANDS" | tr -d '\t' | tr ';' '\n' | while read -r words; do
		test -n "$words" || continue
		$1 $words || return 1
	done
}

help_ok() {
	for h in --help -h; do
		"$GROVE" "$@" $h >out 2>err || { echo "grove $* $h failed" >&2; return 1; }
		test "$(head -n 1 out | cut -c1-12)" = "usage: grove" || { echo "grove $* $h: $(head -n 1 out)" >&2; return 1; }
		test ! -s err
	done
}

test_expect_success 'every command answers --help and -h with "usage: grove", exit 0' '
	each_command help_ok
'

test_expect_success 'the generated help: usage, one line saying what, the options aligned' '
	"$GROVE" store --help >out
	test_grep "^usage: grove store -c FILE \[--check-config\]$" out
	test_grep "^   or: grove store --init DIR " out
	test "$(sed -n 3p out)" = ""
	test_grep "^  -c, --config FILE   run" out
	test_grep "^      --init DIR      write" out
	test_grep "^      --check-config  with -c" out
	test_grep "^  -h, --help          show this help$" out
	test_grep "^    fsckObjects = true" out
'

# unknown_ok WORDS…: grove WORDS --no-such-option exits 2, prints nothing on
# stdout, and on stderr first one line naming the option, then the usage.
unknown_ok() {
	test_expect_code 2 "$GROVE" "$@" --no-such-option >out 2>err
	test ! -s out
	head -n 1 err | grep -q "^grove $1.*: unknown option '--no-such-option'" ||
		{ echo "grove $*: $(head -n 1 err)" >&2; return 1; }
	if test "$(wc -l <err)" -gt 1; then
		sed -n 2p err | grep -q "^usage: grove $1" || { echo "grove $*: $(sed -n 2p err)" >&2; return 1; }
	fi
}

test_expect_success 'an unknown option: exit 2, one line naming it (then the usage)' '
	for c in up status store gate cluster migrate backup restore rpc completion; do
		unknown_ok $c
	done
	unknown_ok cluster status
	unknown_ok cluster -a 127.0.0.1:1 repo
	unknown_ok app create
	unknown_ok canary
	test_expect_code 2 "$GROVE" store -x 2>err
	test_grep "^grove store: unknown option '\''-x'\''$" err
	test_expect_code 2 "$GROVE" gate --init 2>err
	test_grep "^grove gate: --init needs a value$" err
	test_expect_code 2 "$GROVE" up --no-default-user=yes 2>err
	test_grep "^grove up: --no-default-user takes no value$" err
'

test_expect_success 'a mistake does not hide --help: help wins, exit 0' '
	"$GROVE" store --no-such-option --help >out
	test_grep "^usage: grove store" out
	"$GROVE" migrate --percent 500 --help >out
	test_grep "^usage: grove migrate" out
'

test_expect_success 'options in both spellings, with their values joined or apart' '
	"$GROVE" store --init="$TRASH/s" --name=n1 --listen 127.0.0.1:1 >path
	test "$(cat path)" = "$TRASH/s/store.conf"
	test_grep "name = n1" "$TRASH/s/store.conf"
	"$GROVE" gate --init "$TRASH/g" --store=127.0.0.1:1 >path
	test "$(cat path)" = "$TRASH/g/gate.conf"
'

test_expect_success 'grove connect takes what git passes ssh, as before' '
	# git asks "are you OpenSSH?" with -G, the options and the host.
	"$GROVE" connect 127.0.0.1:1 -G -p 22 default
	GROVE_CONNECT_ADDRESS=127.0.0.1:1 "$GROVE" connect -G default
	# Options it does not know (-4, -T) are let by; the command after the
	# host is git'\''s, dashes or not: no secret, so it stops there.
	test_expect_code 128 env -u GROVE_SECRET -u GROVE_SECRET_FILE "$GROVE" connect 127.0.0.1:1 \
		-o SendEnv=GIT_PROTOCOL -p 2222 -4 -T default "git-upload-pack '\''/a.git'\''" </dev/null 2>err
	test_grep "fatal: grove connect: no shared secret" err
	test_expect_code 128 "$GROVE" connect 127.0.0.1:1 default 2>err
	test_grep "^usage: grove connect" err
'

test_expect_success 'grove completion bash is valid bash, and what the source tree has' '
	"$GROVE" completion bash >grove.bash
	bash -n grove.bash
	test_cmp "$TEST_DIR/../../contrib/bash-completion/grove" grove.bash ||
		{ echo "run make completion" >&2; false; }
'

# complete WORDS…: what _grove offers for the last word.
complete() {
	bash -c '. ./grove.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _grove; echo "${COMPREPLY[*]}"' grove "$@"
}

test_expect_success 'it completes nouns, verbs and each verb'\''s long options' '
	test "$(complete grove ap)" = app
	test "$(complete grove st)" = "status store"
	test "$(complete grove app cre)" = create
	test "$(complete grove cluster -a x fail)" = failover
	test "$(complete grove app create web --dep)" = --deploy-branch
	test "$(complete grove cluster failover app.git --t)" = --to
	test "$(complete grove store --in)" = --init
	test "$(complete grove migrate --dry)" = --dry-run
	test "$(complete grove access grant alice web --r)" = --read
	test "$(complete grove completion b)" = bash
'

test_expect_success 'a mistyped config key is an error naming the file and line, at --check-config and at start' '
	"$GROVE" store --init st --name st --listen 127.0.0.1:$(free_port) >/dev/null &&
	: the pack cache keys are read and checked too, with nothing made &&
	git config -f st/store.conf packCache.enabled true &&
	"$GROVE" store -c st/store.conf --check-config >out &&
	test_grep ": good\." out &&
	git config -f st/store.conf store.maxRefListSzie 1m &&
	line=$(grep -n maxRefListSzie st/store.conf | cut -d: -f1) &&
	test_expect_code 1 "$GROVE" store -c st/store.conf --check-config >out 2>err &&
	test ! -s out &&
	test_grep "^grove store: $TRASH/st/store.conf:$line: unknown key store.maxRefListSzie: a typo" err &&
	test_expect_code 1 "$GROVE" store -c st/store.conf 2>err &&
	test_grep "unknown key store.maxRefListSzie" err &&
	"$GROVE" gate --init gt >/dev/null &&
	git config -f gt/gate.conf gate.maxConections 10 &&
	test_expect_code 1 "$GROVE" gate -c gt/gate.conf --check-config 2>err &&
	test_grep "gt/gate.conf:[0-9]*: unknown key gate.maxConections" err &&
	printf "[cluster]\n\tname = c\n\tlisten = 127.0.0.1:1\n\tsecretFile = secret\n[store \"S1\"]\n\taddress = 127.0.0.1:1\n\tstorge = S1\n" >c.conf &&
	echo 0123456789abcdef0123456789abcdef >secret &&
	test_expect_code 1 "$GROVE" cluster -c c.conf --check-config 2>err &&
	test_grep "c.conf:7: unknown key store.S1.storge" err &&
	: a bad value names its line too &&
	git config -f st/store.conf --unset store.maxRefListSzie &&
	git config -f st/store.conf store.maxRefListSize lots &&
	test_expect_code 1 "$GROVE" store -c st/store.conf --check-config 2>err &&
	test_grep "st/store.conf:[0-9]*: store.maxRefListSize: .*expected an integer" err
'

test_done
