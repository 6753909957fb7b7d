#!/bin/sh
# make install and make uninstall, into a DESTDIR: the binary that says its
# version, systemd units that name the installed binary, bash completion and
# the docs; and nothing left after uninstall.
. "$(dirname "$0")/test-lib.sh"

SRC=$TEST_DIR/../..
BUILD=$(dirname "$GROVE")

test_expect_success 'make install puts everything under DESTDIR/PREFIX' '
	make -s -C "$SRC" install DESTDIR="$TRASH/root" PREFIX=/usr B="$BUILD" >out &&
	test -x root/usr/bin/grove &&
	root/usr/bin/grove --version >v &&
	"$GROVE" --version >expect &&
	test_cmp expect v &&
	test_grep "^grove [0-9v]" v &&
	for u in gate store cluster; do
		test_grep "^ExecStart=/usr/bin/grove $u " root/usr/lib/systemd/system/grove-$u.service || return 1
	done &&
	! grep -r /usr/local root/usr/lib/systemd/system &&
	test_grep "^ListenStream=" root/usr/lib/systemd/system/grove-gate.socket &&
	test_grep "^WatchdogSec=" root/usr/lib/systemd/system/grove-gate.service &&
	test -s root/usr/share/bash-completion/completions/grove &&
	test -s root/usr/share/doc/grove/gate.md && test -s root/usr/share/doc/grove/README.md
'

test_expect_success 'the installed binary runs a store from its --init config' '
	root/usr/bin/grove store --init "$TRASH/st" --name st --listen 127.0.0.1:$(free_port) >/dev/null &&
	test_grep "^	name = st" st/store.conf
'

test_expect_success 'make uninstall takes it all away again' '
	make -s -C "$SRC" uninstall DESTDIR="$TRASH/root" PREFIX=/usr B="$BUILD" &&
	test ! -e root/usr/bin/grove &&
	test ! -e root/usr/lib/systemd/system/grove-gate.service &&
	test ! -e root/usr/lib/systemd/system/grove-gate.socket &&
	test ! -e root/usr/share/bash-completion/completions/grove &&
	test ! -e root/usr/share/doc/grove
'

test_done
