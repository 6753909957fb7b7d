#!/bin/sh
# The replica git's ref updates (scripts/replica-git.patch), which a store
# runs for a secondary replica of a push: with GROVE_PACKED_REFS=N, a push
# of N refs or more is one reference transaction written to packed-refs at
# once, instead of a file created per ref. Whatever the push, the client is
# told what Debian's git tells it and the repository ends with the same
# refs and peeled values; only where they are stored differs. Anything the
# fast way does not cover (a loose ref, a lock held, a deletion, a name
# conflict, a packed-refs too big for the push) goes git's usual way.
#
# Each case pushes the same refs from the same repository into two copies
# of one repository: one with Debian's receive-pack, one with the replica
# git's. The store's end (which pushes set the variable) is t0301's.
. "$(dirname "$0")/test-lib.sh"

RG=/usr/local/lib/grove/git/git

# push_both NAME BASE MIN REFSPEC...: REFSPECs from src into NAME-deb.git
# (Debian's git) and NAME-rep.git (the replica git, GROVE_PACKED_REFS=MIN),
# copies of BASE.git. What the client was told: NAME-deb.out, NAME-rep.out.
push_both() {
	name=$1 base=$2 min=$3 && shift 3 &&
	rm -rf "$name-deb.git" "$name-rep.git" &&
	cp -a "$base.git" "$name-deb.git" && cp -a "$base.git" "$name-rep.git" &&
	for side in deb rep; do
		if test $side = deb; then rp="git receive-pack"; else rp="env GROVE_PACKED_REFS=$min $RG receive-pack"; fi &&
		r=0 && git -C src push --porcelain --receive-pack="$rp" "$TRASH/$name-$side.git" "$@" \
			>"$name-$side.raw" 2>"$name-$side.err" || r=$? &&
		{ echo "exit $r" && grep -v "^To " "$name-$side.raw"; } >"$name-$side.out" || return 1
	done
}

# same NAME: both sides told the client the same and hold the same refs,
# peeled values included, and the replica's copy is whole.
same() {
	test_cmp "$1-deb.out" "$1-rep.out" &&
	for side in deb rep; do
		git --git-dir="$1-$side.git" for-each-ref \
			--format="%(refname) %(objectname) %(*objectname)" >"$1-$side.refs" &&
		{ git --git-dir="$1-$side.git" show-ref -d || :; } >"$1-$side.show" || return 1
	done &&
	test_cmp "$1-deb.refs" "$1-rep.refs" &&
	test_cmp "$1-deb.show" "$1-rep.show" &&
	git --git-dir="$1-rep.git" fsck --no-progress --no-dangling
}

# specs N: refspecs pushing the first N lightweight tags.
specs() {
	seq 1 "$1" | sed "s|.*|refs/tags/l-&:refs/tags/l-&|"
}

# loose NAME SIDE: how many refs of NAME-SIDE.git are files of their own.
loose() {
	find "$1-$2.git/refs" -type f | wc -l
}

test_setup 'a history with 150 lightweight and 150 annotated tags, and a repository holding part of it' '
	{ test -x $RG || { echo "no $RG: scripts/install-deps builds it" >&2; false; }; } &&
	patch_id=$(sha256sum <"$TEST_DIR/../../scripts/replica-git.patch" | cut -c1-16) &&
	{ grep -q "replica-git.patch $patch_id\$" "${RG%/git}/STAMP" ||
		{ echo "$RG predates scripts/replica-git.patch: run scripts/build-replica-git" >&2; false; }; } &&
	git init -q src &&
	awk "BEGIN {
		for (c = 1; c <= 3; c++) {
			printf \"commit refs/heads/main\\nmark :%d\\ncommitter C <c@x> %d +0000\\ndata 2\\nc%d\\n\", c, 1700000000 + c, c
			if (c > 1) printf \"from :%d\\n\", c - 1
			printf \"M 644 inline f\\ndata 2\\n%d\\n\\n\", c
		}
		for (i = 1; i <= 150; i++) {
			printf \"reset refs/tags/l-%d\\nfrom :%d\\n\\n\", i, i % 3 + 1
			printf \"tag a-%d\\nfrom :%d\\ntagger T <t@x> 1700000100 +0000\\ndata 3\\nt%d\\n\", i, i % 3 + 1, i % 10
		}
	}" | git -C src fast-import --quiet &&
	test $(git -C src tag | wc -l) = 300 &&
	git -C src branch side main~1 &&
	git -C src branch loose main~1 &&
	git init -q --bare base.git &&
	git -C src push -q "$TRASH/base.git" main~2:refs/heads/main main~2:refs/heads/loose main:refs/tags/c/x \
		main:refs/tags/old &&
	git -C base.git pack-refs --all &&
	git -C base.git update-ref refs/heads/loose $(git -C src rev-parse main~1) &&
	test -f base.git/refs/heads/loose &&
	test $(find base.git/refs -type f | wc -l) = 1 &&
	! grep -q "^\^" base.git/packed-refs
'

test_expect_success '300 new tags, lightweight and annotated: what git says and does, in packed-refs, peeled' '
	push_both tags base 32 "refs/tags/l-*:refs/tags/l-*" "refs/tags/a-*:refs/tags/a-*" main:refs/heads/main &&
	same tags &&
	test_grep "^exit 0" tags-rep.out &&
	test $(grep -c "^\*	refs/tags/" tags-rep.out) = 300 &&
	test $(loose tags deb) = 302 &&
	test $(loose tags rep) = 1 &&
	head -n 1 tags-rep.git/packed-refs | test_grep "fully-peeled sorted" &&
	test $(grep -c "^\\^" tags-rep.git/packed-refs) = 150
'

test_expect_success 'fewer refs than GROVE_PACKED_REFS: a file per ref, as git' '
	push_both few base 400 "refs/tags/l-*:refs/tags/l-*" "refs/tags/a-*:refs/tags/a-*" &&
	same few &&
	test $(loose few rep) = 301
'

test_expect_success 'a ref of the push is loose already: the whole push goes the usual way, to the same end' '
	push_both hasloose base 32 "refs/tags/l-*:refs/tags/l-*" main:refs/heads/loose &&
	same hasloose &&
	test_grep "^ 	refs/heads/main:refs/heads/loose" hasloose-rep.out &&
	test $(loose hasloose rep) = 151
'

test_expect_success 'a deletion in the push: the usual way, in one transaction, to the same end' '
	push_both del base 32 "refs/tags/l-*:refs/tags/l-*" :refs/tags/old &&
	same del &&
	test_grep "^-	:refs/tags/old" del-rep.out &&
	! git --git-dir=del-rep.git rev-parse -q --verify refs/tags/old
'

test_expect_success 'one ref whose name conflicts (refs/tags/c with refs/tags/c/x): refused as git refuses it, the rest land' '
	push_both conflict base 32 "refs/tags/l-*:refs/tags/l-*" main:refs/tags/c &&
	same conflict &&
	test_grep "^!	refs/heads/main:refs/tags/c	\\[remote rejected\\]" conflict-rep.out &&
	test $(grep -c "^\*	refs/tags/l-" conflict-rep.out) = 150 &&
	: in the words of git &&
	grep "^remote: error" conflict-deb.err >conflict-deb.said &&
	grep "^remote: error" conflict-rep.err >conflict-rep.said &&
	test_grep "refs/tags/c/x" conflict-rep.said &&
	test_cmp conflict-deb.said conflict-rep.said
'

test_expect_success 'an annotated tag pushed as a new branch: refused as git refuses it (a branch names a commit)' '
	push_both tagbranch base 32 "refs/tags/l-*:refs/tags/l-*" refs/tags/a-1:refs/heads/fromtag &&
	same tagbranch &&
	! git --git-dir=tagbranch-rep.git rev-parse -q --verify refs/heads/fromtag
'

test_expect_success 'a packed-refs.lock left behind: a file per ref, as git' '
	cp -a base.git stale.git && : >stale.git/packed-refs.lock &&
	push_both stale stale 32 "refs/tags/l-*:refs/tags/l-*" &&
	same stale &&
	test $(loose stale rep) = 151 &&
	test -f stale-rep.git/packed-refs.lock
'

test_expect_success 'a lock held on one ref: that one fails as with git, the rest land' '
	cp -a base.git locked.git && mkdir -p locked.git/refs/tags &&
	git -C src rev-parse main >locked.git/refs/tags/l-7.lock &&
	push_both held locked 32 "refs/tags/l-*:refs/tags/l-*" &&
	same held &&
	test_grep "^!	refs/tags/l-7:refs/tags/l-7	\\[remote rejected\\]" held-rep.out &&
	test $(grep -c "^\*	refs/tags/l-" held-rep.out) = 149
'

test_expect_success 'a reference-transaction hook: the usual way, the hook sees each ref once prepared, once committed' '
	cp -a base.git hooked.git && mkdir -p hooked.git/hooks &&
	cat >hooked.git/hooks/reference-transaction <<-\EOF &&
	#!/bin/sh
	{ echo "$1" && cat; } >>"$(pwd).hook"
	EOF
	chmod +x hooked.git/hooks/reference-transaction &&
	push_both hook hooked 32 "refs/tags/l-*:refs/tags/l-*" &&
	same hook &&
	: one transaction on the replica, one per ref with Debian git: the same lines, in another order &&
	for side in deb rep; do
		grep " refs/tags/l-" hook-$side.git.hook | sort >hook-$side.lines &&
		test $(wc -l <hook-$side.lines) = 300 &&
		test $(grep -c "^prepared$" hook-$side.git.hook) = $(grep -c "^committed$" hook-$side.git.hook) || return 1
	done &&
	test_cmp hook-deb.lines hook-rep.lines &&
	test $(grep -c "^prepared$" hook-rep.git.hook) = 1 &&
	test $(loose hook rep) = 151
'

test_expect_success 'a packed-refs of 20,000 refs: 10 refs are not worth writing it again, 40 are' '
	cp -a base.git big.git &&
	c=$(git -C src rev-parse main) &&
	: written as git writes it, sorted bytewise, without 20,000 processes or files &&
	{ head -n 1 base.git/packed-refs &&
		{ tail -n +2 base.git/packed-refs && seq 1 20000 | sed "s|.*|$c refs/keep/k-&|"; } | sort -k 2,2
	} >big.git/packed-refs &&
	test $(git -C big.git for-each-ref refs/keep | wc -l) = 20000 &&
	test $(wc -c <big.git/packed-refs) -gt $((16 * 65536)) &&
	push_both ten big 1 $(specs 10) &&
	same ten &&
	test $(loose ten rep) = 11 &&
	push_both forty big 1 $(specs 40) &&
	same forty &&
	test $(loose forty rep) = 1
'

test_done
