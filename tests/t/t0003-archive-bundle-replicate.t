#!/bin/sh
# Whole-repository operations: UploadArchive as `git archive --remote`,
# bundles out and in, and replication of a repository to a second store.
. "$(dirname "$0")/test-lib.sh"

test_setup 'two stores, a repository with history on the first' '
	start_store s1 &&
	start_store s2 &&
	create_repo $s1_ADDR s1 app.git &&
	make_history src &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main feature light v1.0)
'

test_expect_success 'UploadArchive gives the same tar as git archive' '
	git_on $s1_ADDR archive --format=tar --remote=ssh://s1/app.git main >remote.tar &&
	git -C src archive --format=tar main >local.tar &&
	cmp remote.tar local.tar &&
	tar tf remote.tar >files &&
	test_grep file3.txt files
'

test_expect_success 'UploadArchive of a path that does not exist fails with git message' '
	test_must_fail git_on $s1_ADDR archive --remote=ssh://s1/app.git nosuchref >x 2>err &&
	test_grep -i "not a valid object name\|did not match\|remote" err
'

test_expect_success 'CreateBundle streams a bundle git can clone' '
	rpc $s1_ADDR --out-field data RepositoryService/CreateBundle repository.storage_name=s1 \
		repository.relative_path=app.git >app.bundle &&
	git -C src bundle verify "$TRASH/app.bundle" &&
	git clone -q --mirror app.bundle from-bundle.git &&
	git -C src show-ref >expect &&
	git -C from-bundle.git show-ref | grep -v refs/remotes >actual &&
	test_cmp expect actual
'

test_expect_success 'CreateBundle of an empty repository is FAILED_PRECONDITION (9)' '
	create_repo $s1_ADDR s1 empty.git &&
	test_expect_code 9 rpc $s1_ADDR --out-field data RepositoryService/CreateBundle \
		repository.storage_name=s1 repository.relative_path=empty.git >x 2>err &&
	test_grep "empty" err
'

test_expect_success 'GetArchive streams tar.gz, tar or zip of a commit, with a prefix' '
	c=$(git -C src rev-parse main) &&
	rpc $s1_ADDR --out-field data RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=$c >a.tgz &&
	tar tzf a.tgz | sort >ga.actual &&
	git -C src archive --format=tar main | tar tf - | sort >ga.expect &&
	test_cmp ga.expect ga.actual &&
	rpc $s1_ADDR --out-field data RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=$c format=tar prefix=app-1 >a.tar &&
	tar tf a.tar | sort >ga.actual &&
	sed "s|^|app-1/|" ga.expect | sort >ga.expect.prefixed && echo app-1/ >>ga.expect.prefixed &&
	sort ga.expect.prefixed >ga.expect.sorted && test_cmp ga.expect.sorted ga.actual &&
	rpc $s1_ADDR --out-field data RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=$c format=zip >a.zip &&
	test "$(head -c 2 a.zip)" = PK
'

test_expect_success 'GetArchive refuses a bad id, format or prefix (3) and a missing commit (5)' '
	test_expect_code 3 rpc $s1_ADDR RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=main >x 2>err &&
	test_grep "full object id" err &&
	c=$(git -C src rev-parse main) &&
	test_expect_code 3 rpc $s1_ADDR RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=$c format=tar.xz >x 2>err &&
	test_grep "not one of tar.gz, tar, zip" err &&
	test_expect_code 3 rpc $s1_ADDR RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=$c prefix=../etc >x 2>err &&
	test_grep "prefix may hold only" err &&
	test_expect_code 5 rpc $s1_ADDR RepositoryService/GetArchive repository.storage_name=s1 \
		repository.relative_path=app.git commit_id=0123456789abcdef0123456789abcdef01234567 >x 2>err &&
	test_grep "has no commit" err
'

test_expect_success 'CreateRepositoryFromBundle restores refs and HEAD' '
	rpc $s1_ADDR RepositoryService/SetDefaultBranch repository.storage_name=s1 \
		repository.relative_path=app.git name=feature &&
	rpc $s1_ADDR --out-field data RepositoryService/CreateBundle repository.storage_name=s1 \
		repository.relative_path=app.git >feature-head.bundle &&
	rpc $s1_ADDR RepositoryService/SetDefaultBranch repository.storage_name=s1 \
		repository.relative_path=app.git name=main &&
	rpc $s2_ADDR --in-field data RepositoryService/CreateRepositoryFromBundle \
		repository.storage_name=s2 repository.relative_path=restored.git <feature-head.bundle &&
	rpc $s2_ADDR RepositoryService/FindDefaultBranch repository.storage_name=s2 \
		repository.relative_path=restored.git >head &&
	test_grep "refs/heads/feature" head &&
	git_on $s2_ADDR clone -q --mirror ssh://s2/restored.git restored.git &&
	git -C restored.git show-ref >actual &&
	test_cmp expect actual
'

test_expect_success 'bundle round trip: equal checksums' '
	rpc $s1_ADDR --out-field data RepositoryService/CreateBundle repository.storage_name=s1 \
		repository.relative_path=app.git >main-head.bundle &&
	rpc $s2_ADDR --in-field data RepositoryService/CreateRepositoryFromBundle \
		repository.storage_name=s2 repository.relative_path=roundtrip.git <main-head.bundle &&
	test "$(checksum $s1_ADDR s1 app.git)" = "$(checksum $s2_ADDR s2 roundtrip.git)"
'

test_expect_success 'a truncated bundle creates nothing and says why' '
	head -c 300 main-head.bundle >cut.bundle &&
	test_expect_code 3 rpc $s2_ADDR --in-field data RepositoryService/CreateRepositoryFromBundle \
		repository.storage_name=s2 repository.relative_path=cut.git <cut.bundle 2>err &&
	test_grep "bundle cannot be applied" err &&
	rpc $s2_ADDR RepositoryService/RepositoryExists repository.storage_name=s2 repository.relative_path=cut.git >out &&
	test_grep "\"exists\":false" out &&
	test -z "$(ls "$TRASH/s2/repositories/+grove/tmp")"
'

test_expect_success 'a bundle onto an existing repository is ALREADY_EXISTS (6)' '
	test_expect_code 6 rpc $s2_ADDR --in-field data RepositoryService/CreateRepositoryFromBundle \
		repository.storage_name=s2 repository.relative_path=roundtrip.git <main-head.bundle 2>err
'

test_expect_success 'ReplicateRepository copies a repository to another store' '
	rpc $s2_ADDR RepositoryService/ReplicateRepository repository.storage_name=s2 \
		repository.relative_path=app.git source_address=$s1_ADDR \
		source.storage_name=s1 source.relative_path=app.git >rep &&
	test_grep "\"created\":true" rep &&
	sum1=$(checksum $s1_ADDR s1 app.git) &&
	test_grep "\"checksum\":\"$sum1\"" rep &&
	test "$sum1" = "$(checksum $s2_ADDR s2 app.git)"
'

test_expect_success 'replicating again after pushes brings new refs and prunes deleted ones' '
	(cd src && echo x >x && git add x && git commit -q -m more &&
	 git_on $s1_ADDR push -q ssh://s1/app.git main :feature) &&
	rpc $s1_ADDR RepositoryService/SetDefaultBranch repository.storage_name=s1 \
		repository.relative_path=app.git name=light-branch &&
	rpc $s2_ADDR RepositoryService/ReplicateRepository repository.storage_name=s2 \
		repository.relative_path=app.git source_address=$s1_ADDR \
		source.storage_name=s1 source.relative_path=app.git >rep &&
	test_grep "\"created\":false" rep &&
	test "$(checksum $s1_ADDR s1 app.git)" = "$(checksum $s2_ADDR s2 app.git)" &&
	git_on $s2_ADDR ls-remote ssh://s2/app.git >ls &&
	test_must_fail grep refs/heads/feature ls &&
	git_on $s2_ADDR clone -q --mirror ssh://s2/app.git replica.git &&
	git -C replica.git fsck --strict
'

test_expect_success 'replicating from a repository that does not exist is NOT_FOUND (5)' '
	test_expect_code 5 rpc $s2_ADDR RepositoryService/ReplicateRepository repository.storage_name=s2 \
		repository.relative_path=ghost.git source_address=$s1_ADDR \
		source.storage_name=s1 source.relative_path=ghost.git 2>err &&
	test_grep "source" err &&
	rpc $s2_ADDR RepositoryService/RepositoryExists repository.storage_name=s2 repository.relative_path=ghost.git >out &&
	test_grep "\"exists\":false" out
'

test_expect_success 'replicating from a bad address is INVALID_ARGUMENT (3)' '
	test_expect_code 3 rpc $s2_ADDR RepositoryService/ReplicateRepository repository.storage_name=s2 \
		repository.relative_path=x.git "source_address=127.0.0.1:1;touch /tmp/pwned" \
		source.storage_name=s1 source.relative_path=app.git 2>err &&
	test ! -e /tmp/pwned
'

test_done
