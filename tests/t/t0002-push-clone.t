#!/bin/sh
# git push, clone and fetch through `grove connect` against a real store:
# protocols v0 and v2, branches and tags, incremental fetch, force-push,
# branch deletion, and the refs the store reports afterwards.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a store and a repository' '
	start_store s1 &&
	create_repo $s1_ADDR s1 app.git &&
	make_history src
'

test_expect_success 'push of branches and tags is accepted' '
	(cd src && git_on $s1_ADDR push ssh://s1/app.git main feature light v1.0 2>../push.err) &&
	test_grep "\[new branch\] *main -> main" push.err &&
	test_grep "\[new tag\] *v1.0 -> v1.0" push.err
'

test_expect_success 'clone with protocol v2 gives back the same refs' '
	GIT_TRACE_PACKET=$TRASH/trace2 git_on $s1_ADDR -c protocol.version=2 clone -q --mirror ssh://s1/app.git v2.git &&
	test_grep "version 2" trace2 &&
	git -C src show-ref >expect &&
	git -C v2.git show-ref >actual &&
	test_cmp expect actual
'

test_expect_success 'clone with protocol v0 gives back the same refs' '
	GIT_TRACE_PACKET=$TRASH/trace0 git_on $s1_ADDR -c protocol.version=0 clone -q --mirror ssh://s1/app.git v0.git &&
	test_must_fail grep "version 2" trace0 &&
	git -C v0.git show-ref >actual &&
	test_cmp expect actual &&
	git -C v0.git fsck --strict
'

test_expect_success 'the scp-like form host:path works too' '
	git_on $s1_ADDR ls-remote s1:app.git >ls &&
	test_grep "refs/heads/feature" ls
'

test_expect_success 'ListRefs lists the refs with peeled tags and HEAD first' '
	rpc $s1_ADDR RefService/ListRefs repository.storage_name=s1 repository.relative_path=app.git head=true >refs &&
	test_grep "^{\"references\":\[{\"name\":\"HEAD\".*\"symbolic_target\":\"refs/heads/main\"" refs &&
	tag=$(git -C src rev-parse v1.0) && commit=$(git -C src rev-parse v1.0^{commit}) &&
	test_grep "\"name\":\"refs/tags/v1.0\",\"target\":\"$tag\",\"peeled_target\":\"$commit\"" refs &&
	rpc $s1_ADDR RefService/ListRefs repository.storage_name=s1 repository.relative_path=app.git patterns=refs/tags/ >tags &&
	test_must_fail grep refs/heads tags &&
	test_grep refs/tags/light tags
'

test_expect_success 'FindCommit shows what an admin page needs' '
	rpc $s1_ADDR RefService/FindCommit repository.storage_name=s1 repository.relative_path=app.git revision=main >c &&
	test_grep "\"id\":\"$(git -C src rev-parse main)\"" c &&
	test_grep "\"subject\":\"commit 3\"" c &&
	test_grep "\"email\":\"author@example.com\"" c &&
	rpc $s1_ADDR RefService/FindCommit repository.storage_name=s1 repository.relative_path=app.git revision=nosuch >none &&
	test_grep "\"commit\":null" none
'

test_expect_success 'incremental fetch brings only the new commit' '
	git_on $s1_ADDR clone -q ssh://s1/app.git work &&
	(cd src && echo more >>file1.txt && git commit -q -am "commit 4" &&
	 git_on $s1_ADDR push -q ssh://s1/app.git main) &&
	(cd work && git_on $s1_ADDR fetch -q origin 2>&1 && git rev-parse origin/main) >new &&
	git -C src rev-parse main >expect &&
	test_cmp expect new
'

test_expect_success 'a no-op fetch succeeds and changes nothing' '
	(cd work && git_on $s1_ADDR fetch origin 2>out && test ! -s out)
'

test_expect_success 'a non-fast-forward push is refused, a force-push accepted' '
	(cd src && git reset -q --hard HEAD~2 && echo diverge >d && git add d && git commit -q -m diverge &&
	 test_must_fail git_on $s1_ADDR push ssh://s1/app.git main 2>err &&
	 test_grep "rejected" err &&
	 git_on $s1_ADDR push -q --force ssh://s1/app.git main) &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git refs/heads/main >ls &&
	test_grep "$(git -C src rev-parse main)" ls
'

test_expect_success 'deleting a branch' '
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git :feature) &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git >ls &&
	test_must_fail grep refs/heads/feature ls
'

test_expect_success 'UpdateReference is a compare-and-swap' '
	main=$(git -C src rev-parse main) && old=$(git -C src rev-parse main~1) &&
	zero=0000000000000000000000000000000000000000 &&
	rpc $s1_ADDR RefService/UpdateReference repository.storage_name=s1 repository.relative_path=app.git \
		reference=refs/heads/copy new_oid=$main old_oid=$zero &&
	test_expect_code 9 rpc $s1_ADDR RefService/UpdateReference repository.storage_name=s1 \
		repository.relative_path=app.git reference=refs/heads/copy new_oid=$old old_oid=$old 2>err &&
	test_grep "refused" err &&
	rpc $s1_ADDR RefService/UpdateReference repository.storage_name=s1 repository.relative_path=app.git \
		reference=refs/heads/copy new_oid=$old old_oid=$main &&
	rpc $s1_ADDR RefService/UpdateReference repository.storage_name=s1 repository.relative_path=app.git \
		reference=refs/heads/copy new_oid=$zero old_oid=$old &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git >ls &&
	test_must_fail grep refs/heads/copy ls &&
	test_expect_code 3 rpc $s1_ADDR RefService/UpdateReference repository.storage_name=s1 \
		repository.relative_path=app.git reference=HEAD new_oid=$main 2>err &&
	test_expect_code 3 rpc $s1_ADDR RefService/UpdateReference repository.storage_name=s1 \
		repository.relative_path=app.git "reference=refs/heads/../../config" new_oid=$main 2>err
'

test_expect_success 'the checksum changes with the refs and equals for equal refs' '
	before=$(checksum $s1_ADDR s1 app.git) &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main:refs/heads/tmp) &&
	during=$(checksum $s1_ADDR s1 app.git) &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git :refs/heads/tmp) &&
	after=$(checksum $s1_ADDR s1 app.git) &&
	test "$before" != "$during" &&
	test "$before" = "$after"
'

test_expect_success 'Optimize repacks and writes a commit-graph; fsck stays clean' '
	rpc $s1_ADDR RepositoryService/OptimizeRepository repository.storage_name=s1 \
		repository.relative_path=app.git strategy=EAGER >opt &&
	test_grep "\"repacked_fully\":true" opt &&
	test_grep "\"wrote_commit_graph\":true" opt &&
	rpc $s1_ADDR RepositoryService/Fsck repository.storage_name=s1 repository.relative_path=app.git >fsck &&
	test_grep "\"error\":\"\"" fsck &&
	git_on $s1_ADDR clone -q --mirror ssh://s1/app.git after-gc.git &&
	git -C after-gc.git fsck --strict
'

test_done
