#!/bin/sh
# The replica git's index-pack (scripts/replica-git.patch), which a store
# runs for a secondary replica of a push: given the index the primary made
# of the same pack it takes it, and writes what `git index-pack` writes;
# given none, an index that does not fit (damaged, another pack's, the
# primary's completion of a thin pack) or a pack that is not the one the
# index names, it indexes the pack itself, or refuses a damaged one as git
# does. Each time it says which to its store, and it never waits for the
# end of its input once the pack is in (a push's client keeps it open).
#
# The store's end (grove-hook pack-index, the router holding the index) is
# t0301's; here a script answers as the store would, so that each case of
# the patch can be made on purpose.
. "$(dirname "$0")/test-lib.sh"

RG=/usr/local/lib/grove/git/git

# ip_run NAME PACK [REPO]: the replica git's index-pack of PACK as a
# secondary's receive-pack runs it (header read first, --stdin --fix-thin
# --keep), in a new repository NAME.git (a copy of REPO if given), its
# input kept open after the pack (this shell holds the FIFO's writing end)
# as a push's is. Waits until index-pack ends: exit code in NAME.rc, its
# output in NAME.out.
ip_run() {
	rm -rf "$1.git" "$1.rc" in.fifo && cp -r "${3:-empty.git}" "$1.git" && mkfifo in.fifo || return 1
	n=$(od -An -tu1 -j8 -N4 "$2" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
	# (set -e may be on: a failing index-pack must not end the subshell.)
	(cd "$1.git" && r=0 && GROVE_PACK_INDEX_HOOK=$TRASH/hook "$RG" index-pack --stdin --fix-thin --keep=t \
		--pack_header=2,$n <../in.fifo >../"$1.out" 2>../"$1.err" || r=$?; echo $r >../"$1.rc") &
	exec 7>in.fifo
	tail -c +13 "$2" >&7
	wait_for 60 "index-pack $1 to end, its input still open" test -s "$1.rc"
	rc=$?; exec 7>&-; wait; return $rc
}

# answer FILE: what the hook says next (its store's answer: "none", or
# "PACKSIZE IDXSIZE" and the index).
answer() {
	cp "$1" "$TRASH/answer"
}

# with_index PACK IDX: the answer for the primary's PACK and its IDX.
with_index() {
	{ printf '%s %s\n' $(wc -c <"$1") $(wc -c <"$2") && cat "$2"; } >"$TRASH/answer"
}

# reported OUTCOME: the hook was told OUTCOME last ("took", "indexed: …").
reported() {
	tail -n 1 reports >last && test_grep "^$1" last
}

# same_as NAME IDX: NAME.git holds one pack, indexed as IDX, whole.
same_as() {
	test "$(cat "$1.rc")" = 0 && test_grep "^keep	[0-9a-f]*$" "$1.out" &&
	cmp "$1.git"/objects/pack/pack-*.idx "$2" &&
	git --git-dir="$1.git" fsck --strict --no-progress --no-dangling
}

test_setup 'a history of 150 files, a pack of it, a thin pack of an edit, and their indexes' '
	{ test -x $RG || { echo "no $RG: scripts/install-deps builds it" >&2; false; }; } &&
	patch_id=$(sha256sum <"$TEST_DIR/../../scripts/replica-git.patch" | cut -c1-16) &&
	{ grep -q "replica-git.patch $patch_id\$" "${RG%/git}/STAMP" ||
		{ echo "$RG predates scripts/replica-git.patch: run scripts/build-replica-git" >&2; false; }; } &&
	cat >hook <<-EOF &&
	#!/bin/sh
	test -n "\$2" && { echo "\$2" >>"$TRASH/reports"; exit 0; }
	cat "$TRASH/answer"
	EOF
	chmod +x hook &&
	git init -q src && (cd src && mkdir f &&
		for i in $(seq 1 150); do { echo "file $i"; seq 1 300; } >f/$i || exit 1; done &&
		git add f && git commit -q -m base && git tag base &&
		for i in $(seq 1 150); do echo "edit $i" >>f/$i || exit 1; done &&
		git commit -q -am edit) &&
	git init -q --bare empty.git &&
	git -C src pack-objects --all --stdout </dev/null >full.pack &&
	git -C src pack-objects --revs --thin --stdout >thin.pack <<-EOF &&
	main
	^base
	EOF
	git init -q --bare primary.git && (cd primary.git && git index-pack --stdin <../full.pack >/dev/null) &&
	cp primary.git/objects/pack/pack-*.idx full.idx &&
	git init -q --bare base.git && git -C base.git fetch -q ../src base:refs/tags/base &&
	cp -r base.git primary-thin.git &&
	(cd primary-thin.git && git index-pack --stdin --fix-thin <../thin.pack >/dev/null) &&
	new=$(ls -t primary-thin.git/objects/pack/pack-*.idx | head -n 1) &&
	cp "$new" thin-fixed.idx && cp "${new%.idx}.pack" thin-fixed.pack
'

test_expect_success 'the index of exactly this pack: taken, and the same files as git index-pack writes' '
	with_index full.pack full.idx &&
	ip_run took full.pack &&
	same_as took full.idx &&
	reported took
'

test_expect_success 'no index ("none"): the pack is indexed here, from what was spooled and the rest' '
	echo none >none && answer none &&
	ip_run none full.pack &&
	same_as none full.idx &&
	reported "indexed: no index"
'

test_expect_success 'a damaged index (one byte changed): not taken, the pack is indexed here' '
	{ head -c 5000 full.idx && printf x && tail -c +5002 full.idx; } >damaged.idx &&
	with_index full.pack damaged.idx &&
	ip_run damaged full.pack &&
	same_as damaged full.idx &&
	reported "indexed: the index does not fit this pack"
'

test_expect_success 'the primary'"'"'s index of a thin pack it completed: the pack is completed here, not waited for' '
	with_index thin-fixed.pack thin-fixed.idx &&
	ip_run thin thin.pack base.git &&
	test "$(cat thin.rc)" = 0 &&
	test_grep "^keep	" thin.out &&
	cmp thin.git/objects/pack/pack-$(sed -n "s/^keep	//p" thin.out).idx thin-fixed.idx &&
	git --git-dir=thin.git cat-file -e $(git -C src rev-parse main) &&
	git --git-dir=thin.git fsck --strict --no-progress --no-dangling &&
	reported "indexed: the index does not fit this pack"
'

test_expect_success 'a pack changed on the way under the index of the right one: refused, as git refuses it' '
	size=$(wc -c <full.pack) && at=$((size / 2)) &&
	{ head -c $at full.pack && printf "\\377" && tail -c +$((at + 2)) full.pack; } >bent.pack &&
	test $(wc -c <bent.pack) = $size &&
	! cmp -s bent.pack full.pack &&
	with_index full.pack full.idx &&
	ip_run bent bent.pack &&
	test "$(cat bent.rc)" != 0 &&
	reported "indexed: the pack'"'"'s checksum is not the index'"'"'s" &&
	cat bent.err &&
	! ls bent.git/objects/pack/pack-*.pack 2>/dev/null
'

test_done
