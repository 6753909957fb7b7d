#!/bin/sh
# Bad input gets a precise gRPC status and a message that says what was
# wrong, and the daemon stays unharmed: path traversal, unknown storage,
# missing/wrong/stale tokens, unknown methods, malformed and oversized
# messages, repositories that do not exist.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a store with one repository' '
	start_store s1 &&
	create_repo $s1_ADDR s1 app.git &&
	make_history src &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main)
'

for path in ../etc /etc/passwd a/../../etc "a//b" . .. "-rf" "~root" "a b" "x/" "it'q"; do
	test_expect_success "path \"$path\" is INVALID_ARGUMENT (3) and creates nothing" '
		test_expect_code 3 rpc $s1_ADDR RepositoryService/CreateRepository repository.storage_name=s1 \
			"repository.relative_path=$path" 2>err &&
		test_grep "invalid repository.relative_path" err
	'
done

test_expect_success 'a 1025-byte path is refused, a control character too' '
	long=$(printf "%01025d" 0) &&
	test_expect_code 3 rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 \
		repository.relative_path=$long 2>err &&
	test_grep "longer than 1024" err &&
	nl=$(printf "a\nb") &&
	test_expect_code 3 rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 \
		"repository.relative_path=$nl" 2>err &&
	test_grep "control" err
'

test_expect_success 'a NUL byte inside a path is refused, not cut short' '
	# CreateRepository{repository{storage_name:"s1" relative_path:"a\0b"}}
	test_expect_code 3 rpc $s1_ADDR --raw-hex 0a090a0273311203610062 RepositoryService/CreateRepository 2>err &&
	test_grep "contains a NUL byte" err &&
	rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=s1 repository.relative_path=a >out &&
	test_grep "\"exists\":false" out
'

test_expect_success 'nothing was created outside the hashed layout' '
	(cd "$TRASH/s1/repositories" && ls -A) >entries &&
	printf "+grove\n@hashed\n" >expect &&
	test_cmp expect entries &&
	test ! -e "$TRASH/etc"
'

test_expect_success 'an unknown storage is NOT_FOUND (5) and names the right one' '
	test_expect_code 5 rpc $s1_ADDR RepositoryService/RepositoryExists repository.storage_name=other \
		repository.relative_path=app.git 2>err &&
	test_grep "unknown storage \"other\": this store serves \"s1\"" err &&
	test_expect_code 3 rpc $s1_ADDR RepositoryService/RepositoryExists repository.relative_path=app.git 2>err &&
	test_grep "storage_name is empty" err
'

test_expect_success 'a request without a repository is INVALID_ARGUMENT (3)' '
	test_expect_code 3 rpc $s1_ADDR RepositoryService/RepositoryExists 2>err &&
	test_grep "names no repository" err
'

test_expect_success 'a repository that does not exist: NOT_FOUND (5), and git says so' '
	test_expect_code 5 rpc $s1_ADDR RepositoryService/FindDefaultBranch repository.storage_name=s1 \
		repository.relative_path=ghost.git 2>err &&
	test_grep "ghost.git does not exist on storage s1" err &&
	test_must_fail git_on $s1_ADDR clone ssh://s1/ghost.git ghost 2>err &&
	test_grep "fatal: grove connect: repository ghost.git does not exist" err
'

test_expect_success 'a missing token is UNAUTHENTICATED (16)' '
	test_expect_code 16 rpc $s1_ADDR --token "" RepositoryService/RepositoryExists \
		repository.storage_name=s1 repository.relative_path=app.git 2>err &&
	test_grep "token missing" err
'

test_expect_success 'a wrong secret is UNAUTHENTICATED (16)' '
	test_expect_code 16 env GROVE_SECRET_FILE= GROVE_SECRET=not-the-right-secret-at-all \
		"$GROVE" rpc -a $s1_ADDR RepositoryService/RepositoryExists \
		repository.storage_name=s1 repository.relative_path=app.git 2>err &&
	test_grep "token wrong" err &&
	test_must_fail env GROVE_SECRET_FILE= GROVE_SECRET=not-the-right-secret-at-all \
		GIT_SSH_COMMAND="$GROVE connect $s1_ADDR" git clone ssh://s1/app.git nope 2>err &&
	test_grep "token wrong" err
'

# The token format of lib/auth.h, made independently with Perl.
token_at() {
	perl -MDigest::SHA=hmac_sha256_hex -e '
		open(my $f, "<", $ARGV[0]) or die; my $k = <$f>; chomp $k;
		my $m = "v1.$ARGV[1].$ARGV[2]"; print $m =~ s/\.\/.*//r, ".", hmac_sha256_hex($m, $k), "\n"' \
		"$GROVE_SECRET_FILE" "$1" "$2"
}

test_expect_success 'a token made elsewhere with the documented format is accepted' '
	now=$(date +%s) &&
	tok=$(token_at $now /grove.v1.RepositoryService/RepositoryExists) &&
	rpc $s1_ADDR --token "$tok" RepositoryService/RepositoryExists \
		repository.storage_name=s1 repository.relative_path=app.git >out &&
	test_grep "\"exists\":true" out
'

test_expect_success 'a stale token is UNAUTHENTICATED (16), a token for another method too' '
	old=$(($(date +%s) - 1000)) &&
	tok=$(token_at $old /grove.v1.RepositoryService/RepositoryExists) &&
	test_expect_code 16 rpc $s1_ADDR --token "$tok" RepositoryService/RepositoryExists \
		repository.storage_name=s1 repository.relative_path=app.git 2>err &&
	test_grep "token stale" err &&
	tok=$(token_at $(date +%s) /grove.v1.RepositoryService/RepositoryExists) &&
	test_expect_code 16 rpc $s1_ADDR --token "$tok" RepositoryService/RemoveRepository \
		repository.storage_name=s1 repository.relative_path=app.git 2>err &&
	test_grep "token wrong" err &&
	test_expect_code 16 rpc $s1_ADDR --token "v1.x.y" RepositoryService/RepositoryExists \
		repository.storage_name=s1 repository.relative_path=app.git 2>err &&
	test_grep "malformed" err
'

test_expect_success 'an unknown method is UNIMPLEMENTED (12) at once' '
	test_expect_code 12 rpc $s1_ADDR --raw-hex "" /grove.v1.RepositoryService/NoSuchThing 2>err &&
	test_grep "unknown method /grove.v1.RepositoryService/NoSuchThing" err
'

test_expect_success 'a malformed message is INVALID_ARGUMENT (3)' '
	test_expect_code 3 rpc $s1_ADDR --raw-hex ffffffffff RepositoryService/RepositoryExists 2>err &&
	test_grep "malformed" err
'

test_expect_success 'an oversized message is RESOURCE_EXHAUSTED (8)' '
	head -c 5000000 /dev/zero >big &&
	test_expect_code 8 rpc $s1_ADDR SSHService/SSHUploadPack repository.storage_name=s1 \
		repository.relative_path=app.git stdin=@big 2>err &&
	test_grep -i "larger than max\|exceeds\|too large" err
'

test_expect_success 'a stdin chunk of 1 MiB is taken, one over is RESOURCE_EXHAUSTED (8)' '
	: the store says it takes 1 MiB a message: a client of this release sends that &&
	head -c 1048576 /dev/zero >chunk &&
	rpc $s1_ADDR SSHService/SSHUploadPack repository.storage_name=s1 \
		repository.relative_path=app.git stdin=@chunk >out 2>err || : &&
	! grep "exceeds" err &&
	head -c 1048577 /dev/zero >chunk &&
	test_expect_code 8 rpc $s1_ADDR SSHService/SSHUploadPack repository.storage_name=s1 \
		repository.relative_path=app.git stdin=@chunk 2>err &&
	test_grep "exceeds 1048576" err
'

test_expect_success 'a bad git_protocol is INVALID_ARGUMENT (3)' '
	test_expect_code 3 rpc $s1_ADDR SSHService/SSHUploadPack repository.storage_name=s1 \
		repository.relative_path=app.git "git_protocol=version=2:evil" 2>err &&
	test_grep "git_protocol must be" err
'

test_expect_success 'grove connect refuses commands other than the git services' '
	test_must_fail "$GROVE" connect $s1_ADDR s1 "sh -c id" 2>err &&
	test_grep "only git-upload-pack, git-receive-pack and git-upload-archive" err
'

test_expect_success 'after all that the store is unharmed and serves' '
	kill -0 $s1_PID &&
	rpc $s1_ADDR /grpc.health.v1.Health/Check >h &&
	test_grep SERVING h &&
	git_on $s1_ADDR clone -q ssh://s1/app.git still-works &&
	git -C still-works log --oneline >log &&
	test $(wc -l <log) = 3
'

test_expect_success 'a push whose ref list outgrows store.maxRefListSize is refused by the store itself' '
	start_store s2 store.maxRefListSize=64k &&
	create_repo $s2_ADDR s2 many.git &&
	make_history h2 &&
	(cd h2 && git_on $s2_ADDR push -q ssh://s2/many.git main &&
		for i in $(seq 2000); do echo "create refs/tags/a-rather-long-tag-name-$i HEAD"; done | git update-ref --stdin &&
		test_must_fail git_on $s2_ADDR push ssh://s2/many.git "refs/tags/*" 2>../many.err) &&
	test_grep "the push.s list of refs and push options is over 65536 bytes (store.maxRefListSize): push the refs in batches" many.err &&
	git_on $s2_ADDR ls-remote ssh://s2/many.git >ls &&
	! grep refs/tags/ ls &&
	(cd h2 && git_on $s2_ADDR push -q ssh://s2/many.git refs/tags/v1.0) &&
	git_on $s2_ADDR ls-remote ssh://s2/many.git >ls &&
	test_grep "refs/tags/v1.0$" ls
'

test_done
