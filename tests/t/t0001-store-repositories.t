#!/bin/sh
# RepositoryService life cycle on one store: create, exists, default branch,
# size, remove, and the errors a caller gets for each misuse.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a store starts and answers health checks' '
	start_store s1 &&
	rpc $s1_ADDR /grpc.health.v1.Health/Check >health &&
	test_grep "\"status\":\"SERVING\"" health
'

test_expect_success 'CreateRepository makes an empty repository with HEAD at main' '
	create_repo $s1_ADDR s1 apps/hello.git &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	test_grep "\"exists\":true" out &&
	rpc $s1_ADDR RepositoryService/FindDefaultBranch repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	test_grep "\"name\":\"refs/heads/main\"" out
'

test_expect_success 'the repository lives under the hashed layout, not its name' '
	test_must_fail test -e "$TRASH/s1/repositories/apps" &&
	ls -d "$TRASH"/s1/repositories/@hashed/*/*/*.git >dirs &&
	test $(wc -l <dirs) = 1 &&
	git --git-dir="$(cat dirs)" config grove.relativepath >name &&
	echo apps/hello.git >expect &&
	test_cmp expect name
'

test_expect_success 'CreateRepository with a default branch' '
	rpc $s1_ADDR RepositoryService/CreateRepository repository.storage_name=s1 \
		repository.relative_path=trunk.git default_branch=trunk &&
	rpc $s1_ADDR RepositoryService/FindDefaultBranch repository.storage_name=s1 repository.relative_path=trunk.git >out &&
	test_grep "refs/heads/trunk" out
'

test_expect_success 'creating an existing repository is ALREADY_EXISTS (6)' '
	test_expect_code 6 create_repo $s1_ADDR s1 apps/hello.git 2>err &&
	test_grep "already exists" err
'

test_expect_success 'an invalid default branch is INVALID_ARGUMENT (3)' '
	test_expect_code 3 rpc $s1_ADDR RepositoryService/CreateRepository repository.storage_name=s1 \
		repository.relative_path=bad.git "default_branch=a..b" 2>err &&
	test_grep "not a valid branch name" err &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=bad.git >out &&
	test_grep "\"exists\":false" out
'

test_expect_success 'SetDefaultBranch moves HEAD' '
	rpc $s1_ADDR RepositoryService/SetDefaultBranch repository.storage_name=s1 \
		repository.relative_path=apps/hello.git name=develop &&
	rpc $s1_ADDR RepositoryService/FindDefaultBranch repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	test_grep "refs/heads/develop" out &&
	test_expect_code 3 rpc $s1_ADDR RepositoryService/SetDefaultBranch repository.storage_name=s1 \
		repository.relative_path=apps/hello.git "name=bad name" 2>err
'

test_expect_success 'RepositorySize reports bytes on disk' '
	rpc $s1_ADDR RepositoryService/RepositorySize repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	bytes=$(sed -n "s/.*\"bytes\":\([0-9]*\).*/\1/p" out) &&
	test "$bytes" -gt 0
'

test_expect_success 'the checksum of an empty repository covers HEAD only' '
	rpc $s1_ADDR RepositoryService/CalculateChecksum repository.storage_name=s1 repository.relative_path=trunk.git >out &&
	test_grep "\"ref_count\":1" out &&
	a=$(checksum $s1_ADDR s1 trunk.git) &&
	b=$(checksum $s1_ADDR s1 apps/hello.git) &&
	test ${#a} = 64 &&
	test "$a" != "$b"
'

test_expect_success 'RemoveRepository removes it; a second remove is NOT_FOUND (5)' '
	rpc $s1_ADDR RepositoryService/RemoveRepository repository.storage_name=s1 repository.relative_path=trunk.git &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=trunk.git >out &&
	test_grep "\"exists\":false" out &&
	test_expect_code 5 rpc $s1_ADDR RepositoryService/RemoveRepository repository.storage_name=s1 \
		repository.relative_path=trunk.git 2>err &&
	test_grep "does not exist" err &&
	test -z "$(ls "$TRASH/s1/repositories/+grove/trash")"
'

test_expect_success 'a removed repository can be created again' '
	create_repo $s1_ADDR s1 trunk.git
'

test_expect_success 'Optimize and Fsck on an empty repository' '
	rpc $s1_ADDR RepositoryService/OptimizeRepository repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	rpc $s1_ADDR RepositoryService/Fsck repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	test_grep "\"error\":\"\"" out
'

test_expect_success 'Optimize removes what a failed write left behind, once it is old, and nothing younger' '
	d=$(repo_dir s1 apps/hello.git) &&
	mkdir -p "$d/objects/ab" "$d/objects/incoming-old" "$d/objects/incoming-new" &&
	head -c 4096 /dev/zero >"$d/objects/ab/tmp_obj_old" &&
	head -c 4096 /dev/zero >"$d/objects/ab/tmp_obj_new" &&
	head -c 4096 /dev/zero >"$d/objects/pack/tmp_pack_old" &&
	touch -d "2 hours ago" "$d/objects/ab/tmp_obj_old" "$d/objects/pack/tmp_pack_old" &&
	touch -d "2 days ago" "$d/objects/incoming-old" &&
	rpc $s1_ADDR RepositoryService/OptimizeRepository repository.storage_name=s1 repository.relative_path=apps/hello.git >out &&
	test ! -e "$d/objects/ab/tmp_obj_old" && test ! -e "$d/objects/pack/tmp_pack_old" &&
	test ! -e "$d/objects/incoming-old" &&
	test -e "$d/objects/ab/tmp_obj_new" && test -e "$d/objects/incoming-new" &&
	grep "repo.optimized" s1/store.log | tail -n 1 | test_grep "\"stale_quarantines\":3"
'

test_expect_success 'Optimize removes the lock files a killed git left, once an hour old, and then packs the refs' '
	d=$(repo_dir s1 apps/hello.git) &&
	mkdir -p "$d/refs/tags/deep" &&
	for f in packed-refs.lock packed-refs.new HEAD.lock refs/heads/main.lock refs/tags/deep/v1.lock; do
		echo x >"$d/$f" || return 1
	done &&
	touch -d "2 hours ago" "$d/packed-refs.lock" "$d/packed-refs.new" "$d/HEAD.lock" "$d/refs/tags/deep/v1.lock" &&
	echo x >"$d/config.lock" &&
	rpc $s1_ADDR RepositoryService/OptimizeRepository repository.storage_name=s1 repository.relative_path=apps/hello.git \
		strategy=EAGER >out &&
	test_grep "\"packed_refs\":true" out &&
	for f in packed-refs.lock packed-refs.new HEAD.lock refs/tags/deep/v1.lock; do
		test ! -e "$d/$f" || return 1
	done &&
	test -e "$d/refs/heads/main.lock" && test -e "$d/config.lock" &&
	grep "repo.optimized" s1/store.log | tail -n 1 | test_grep "\"stale_locks\":4" &&
	rm "$d/refs/heads/main.lock" "$d/config.lock"
'

test_expect_success 'SIGTERM stops the store cleanly (exit 0)' '
	stop_store s1 &&
	test_grep "store.stopped" "$TRASH/s1/store.log"
'

test_done
