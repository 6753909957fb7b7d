#!/bin/sh
# Real histories are accepted: objects with the historic quirks that GitHub
# and GitLab let through (a zero-padded file mode, a malformed time zone, no
# space before the date) are pushed on both routes and kept through a move
# between them, while object checking stays on: any other fsck error still
# refuses the push, and a store told to let nothing through refuses the
# quirks too.
. "$(dirname "$0")/test-lib.sh"

# quirky_history DIR: main with three commits, each with one quirk, written
# byte for byte (git would not write them itself).
quirky_history() {
	git init -q "$1" && (
		cd "$1" &&
		blob=$(echo hello | git hash-object -w --stdin) &&
		sub=$(printf "100644 blob %s\tf\n" $blob | git mktree) &&
		tree=$(perl -e 'print "040000 sub\0", pack("H*", $ARGV[0]), "100644 top\0", pack("H*", $ARGV[1])' $sub $blob |
			git hash-object -t tree -w --literally --stdin) &&
		c1=$(printf "tree %s\nauthor A U Thor <a@example.com> 1234567890 +0000\ncommitter C O Mitter <c@example.com> 1234567890 +0000\n\nzero-padded file mode\n" $tree |
			git hash-object -t commit -w --literally --stdin) &&
		c2=$(printf "tree %s\nparent %s\nauthor A U Thor <a@example.com> 1234567890 +051\ncommitter C O Mitter <c@example.com> 1234567890 +0000\n\nbad time zone\n" $tree $c1 |
			git hash-object -t commit -w --literally --stdin) &&
		c3=$(printf "tree %s\nparent %s\nauthor A U Thor <a@example.com>1234567890 +0000\ncommitter C O Mitter <c@example.com> 1234567890 +0000\n\nno space before the date\n" $tree $c2 |
			git hash-object -t commit -w --literally --stdin) &&
		git update-ref refs/heads/main $c3 &&
		echo $tree >../$1.tree
	)
}

# broken_commit DIR: a child of main whose author has no email: an fsck
# error no host lets through.
broken_commit() {
	(
		cd "$1" &&
		c=$(printf "tree %s\nparent %s\nauthor A U Thor 1234567890 +0000\ncommitter C O Mitter <c@example.com> 1234567890 +0000\n\nno email\n" \
			$(git rev-parse main^{tree}) $(git rev-parse main) | git hash-object -t commit -w --literally --stdin) &&
		git update-ref refs/heads/broken $c
	)
}

test_setup 'a store, a gate, an app on each route, and a history with the quirks' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 &&
	new_key alice &&
	user_app g1 alice web &&
	api g1 POST /api/v1/apps "{\"name\":\"old\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/old/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" && export GIT_SSH_COMMAND &&
	REMOTE=ssh://git@127.0.0.1:$g1_SSH_PORT &&
	quirky_history src &&
	broken_commit src &&
	! git -C src fsck --strict --no-dangling >fsck.out 2>&1 &&
	test_grep "zeroPaddedFilemode" fsck.out &&
	test_grep "badTimezone" fsck.out &&
	test_grep "missingSpaceBeforeDate" fsck.out
'

for app in web old; do
	test_expect_success "the quirks are accepted on the $(test $app = web && echo cluster || echo legacy) route" "
		(cd src && git push $REMOTE/$app.git main 2>../push-$app.err) &&
		git ls-remote $REMOTE/$app.git refs/heads/main >ls &&
		test_grep \"^\$(git -C src rev-parse main)	refs/heads/main\$\" ls
	"

	test_expect_success "any other fsck error is still refused on the $(test $app = web && echo cluster || echo legacy) route" "
		test_must_fail env -C src git push $REMOTE/$app.git broken:main 2>broken-$app.err &&
		test_grep -i \"missingEmail\" broken-$app.err &&
		git ls-remote $REMOTE/$app.git refs/heads/main >ls &&
		test_grep \"^\$(git -C src rev-parse main)	refs/heads/main\$\" ls
	"
done

test_expect_success 'the quirks survive a move to the other route and back' '
	api g1 POST /api/v1/apps/old/migrate "{\"to\":\"cluster\"}" >out && test_grep "^200$" out &&
	api g1 POST /api/v1/apps/web/migrate "{\"to\":\"legacy\"}" >out && test_grep "^200$" out &&
	for app in web old; do
		rm -rf clone-$app &&
		git clone -q --bare $REMOTE/$app.git clone-$app &&
		test "$(git -C clone-$app rev-parse main)" = "$(git -C src rev-parse main)" &&
		git -C clone-$app cat-file -e "$(cat src.tree)" || return 1
	done &&
	api g1 POST /api/v1/apps/old/migrate "{\"to\":\"legacy\"}" >out && test_grep "^200$" out &&
	git ls-remote $REMOTE/old.git refs/heads/main >ls &&
	test_grep "^$(git -C src rev-parse main)	refs/heads/main$" ls
'

test_expect_success 'a store with store.fsckIgnore empty refuses the quirks' '
	start_store s2 store.fsckIgnore= &&
	create_repo $s2_ADDR s2 strict.git >/dev/null &&
	(cd src && test_must_fail env GIT_SSH_COMMAND="$GROVE connect $s2_ADDR" git push ssh://s2/strict.git main 2>../strict.err) &&
	test_grep -E "zeroPaddedFilemode|badTimezone|missingSpaceBeforeDate" strict.err &&
	test_grep "remote rejected" strict.err
'

test_expect_success 'a gate with gate.fsckIgnore empty refuses the quirks on the legacy route' '
	start_gate g2 $s1_ADDR s1 gate.fsckIgnore= &&
	api g2 POST /api/v1/users "{\"name\":\"alice\"}" >out && test_grep "^201$" out &&
	api g2 POST /api/v1/users/alice/keys "{\"public_key\":\"$(cat "$TRASH/keys/alice.pub")\"}" >out &&
	test_grep "^201$" out &&
	api g2 POST /api/v1/apps "{\"name\":\"strict\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g2 PUT /api/v1/apps/strict/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	(cd src && test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$g2_SSH_PORT/strict.git main 2>../gstrict.err) &&
	test_grep -E "zeroPaddedFilemode|badTimezone|missingSpaceBeforeDate" gstrict.err
'

test_expect_success 'store.fsckIgnore takes fsck message ids only' '
	git config -f "$TRASH/s2/store.conf" store.fsckIgnore "badTimezone core.hooksPath=/tmp" &&
	test_must_fail "$GROVE" store -c "$TRASH/s2/store.conf" 2>bad.err &&
	test_grep "store.fsckIgnore" bad.err &&
	test_grep "is not an fsck message id" bad.err
'

test_done
