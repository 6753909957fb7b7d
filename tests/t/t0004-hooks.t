#!/bin/sh
# Hooks: git run by a store calls `grove hook`, which calls the store's
# HookService; the store runs the operator's custom hooks and forwards to the
# hook address in the push's payload. A denying pre-receive refuses the push
# with its message shown to the pusher as "remote:" lines.
. "$(dirname "$0")/test-lib.sh"

write_hooks() {
	mkdir -p "$TRASH/hooks1" "$TRASH/hooks2" &&
	cat >"$TRASH/hooks1/pre-receive" <<-\EOF &&
	#!/bin/sh
	in=$(cat)
	{
		echo "app=$GROVE_APP user=$GROVE_USER repo=$GROVE_REPOSITORY storage=$GROVE_STORAGE"
		echo "corr=$GROVE_CORRELATION_ID"
		echo "options=$GIT_PUSH_OPTION_COUNT:${GIT_PUSH_OPTION_0:-}"
		echo "$in"
	} >>__HOOK_LOG__
	# The pushed objects are visible to the hook (quarantine passed on).
	new=$(echo "$in" | head -n1 | cut -d" " -f2)
	case "$new" in 0000000000000000000000000000000000000000) ;; *)
		git cat-file -e "$new" || { echo "hook cannot see $new" >&2; exit 1; } ;;
	esac
	case "$in" in *refs/heads/denied*)
		echo "denied: pushes to branch denied are not allowed here" >&2
		exit 1 ;;
	esac
	echo "checked by store hook"
	EOF
	cat >"$TRASH/hooks1/post-receive" <<-\EOF &&
	#!/bin/sh
	while read old new ref; do echo "-----> deploying $ref"; done
	EOF
	cat >"$TRASH/hooks2/pre-receive" <<-\EOF &&
	#!/bin/sh
	in=$(cat)
	echo "gate sees $GROVE_APP pushing"
	case "$in" in *refs/heads/blocked*)
		echo "gate: branch blocked is locked" >&2
		exit 1 ;;
	esac
	EOF
	sed -i "s|__HOOK_LOG__|$TRASH/hook.log|" "$TRASH/hooks1/pre-receive" &&
	chmod +x "$TRASH"/hooks1/* "$TRASH"/hooks2/*
}

# wire_ask SOCKET SECRET [TYPE]: a hook request straight to a store's hook
# wire (lib/hookwire.h): a pre-receive with SECRET, and a frame of TYPE
# (default I) at the end; the answer's bytes on stdout.
wire_ask() {
	perl -MIO::Socket::UNIX -e '
		my ($path, $secret, $type) = @ARGV;
		my $s = IO::Socket::UNIX->new(Peer => $path) or die "connect: $!";
		sub frame { my ($t, $d) = @_; print $s pack("aN", $t, length $d) . $d }
		frame("N", "pre-receive");
		frame("V", "GROVE_SECRET=$secret");
		frame("V", "GROVE_HOOKS_ACTIVE=pre-receive,");
		frame($type || "I", "");
		shutdown($s, 1);
		local $/;
		print <$s>;
	' "$@"
}

test_setup 'stores with custom hooks' '
	write_hooks &&
	start_store s1 hooks.customDir=$TRASH/hooks1 &&
	start_store s2 hooks.customDir=$TRASH/hooks2 &&
	create_repo $s1_ADDR s1 app.git &&
	make_history src
'

test_expect_success 'an allowed push runs pre-receive and post-receive, output as remote: lines' '
	(cd src && GROVE_PUSH_APP=myapp GROVE_PUSH_USER=alice git_on $s1_ADDR push -o ci.skip ssh://s1/app.git main 2>../err) &&
	test_grep "^remote: checked by store hook" err &&
	test_grep "^remote: -----> deploying refs/heads/main" err
'

test_expect_success 'the hook received the payload, push options and ref updates' '
	test_grep "app=myapp user=alice repo=app.git storage=s1" hook.log &&
	test_grep "corr=[0-9a-f]\{32\}" hook.log &&
	test_grep "options=1:ci.skip" hook.log &&
	test_grep "^0\{40\} $(git -C src rev-parse main) refs/heads/main" hook.log
'

test_expect_success 'a denying pre-receive refuses the push with its message; refs unchanged' '
	before=$(checksum $s1_ADDR s1 app.git) &&
	(cd src && test_must_fail git_on $s1_ADDR push ssh://s1/app.git main:denied 2>../err) &&
	test_grep "^remote: denied: pushes to branch denied are not allowed here" err &&
	test_grep "\[remote rejected\] *main -> denied (pre-receive hook declined)" err &&
	test "$before" = "$(checksum $s1_ADDR s1 app.git)"
'

test_expect_success 'the hook address in the payload is called too, and its refusal counts' '
	(cd src && GROVE_PUSH_APP=myapp GROVE_PUSH_HOOK_ADDRESS=$s2_ADDR \
		git_on $s1_ADDR push ssh://s1/app.git main:ok 2>../err) &&
	test_grep "^remote: checked by store hook" err &&
	test_grep "^remote: gate sees myapp pushing" err &&
	(cd src && test_must_fail env GROVE_PUSH_APP=myapp GROVE_PUSH_HOOK_ADDRESS=$s2_ADDR \
		GIT_SSH_COMMAND="$GROVE connect $s1_ADDR" git push ssh://s1/app.git main:blocked 2>../err) &&
	test_grep "^remote: gate: branch blocked is locked" err &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git >ls &&
	test_grep refs/heads/ok ls &&
	test_must_fail grep refs/heads/blocked ls
'

test_expect_success 'an unreachable hook address refuses the push (fail closed)' '
	port=$(free_port) &&
	(cd src && test_must_fail env GROVE_PUSH_HOOK_ADDRESS=127.0.0.1:$port \
		GIT_SSH_COMMAND="$GROVE connect $s1_ADDR" git push ssh://s1/app.git main:nobody 2>../err) &&
	test_grep "remote: error: grove: the pre-receive check could not run" err &&
	git_on $s1_ADDR ls-remote ssh://s1/app.git >ls &&
	test_must_fail grep refs/heads/nobody ls
'

test_expect_success 'a repository'"'"'s own hooks never run' '
	repo=$(ls -d "$TRASH"/s1/repositories/@hashed/*/*/*.git) &&
	mkdir -p "$repo/hooks" &&
	printf "#!/bin/sh\ntouch $TRASH/pwned\n" >"$repo/hooks/pre-receive" &&
	printf "#!/bin/sh\ntouch $TRASH/pwned\n" >"$repo/hooks/post-update" &&
	chmod +x "$repo/hooks/pre-receive" "$repo/hooks/post-update" &&
	git --git-dir="$repo" config core.hooksPath "$repo/hooks" &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main:again) &&
	test ! -e "$TRASH/pwned"
'

test_expect_success 'a store started with a relative config path still runs its hooks' '
	port=$(free_port) &&
	"$GROVE" store --init rel --name rel --listen 127.0.0.1:$port >/dev/null &&
	cp "$SHARED_SECRET" rel/secret &&
	git config -f rel/store.conf hooks.customDir ../hooks1
	"$GROVE" store -c rel/store.conf >rel.log 2>&1 &
	rel_pid=$!
	record_daemon $rel_pid
	wait_for 30 "store rel to answer" serving 127.0.0.1:$port $rel_pid &&
	create_repo 127.0.0.1:$port rel app.git &&
	(cd src && test_must_fail git_on 127.0.0.1:$port push ssh://rel/app.git main:denied 2>../err) &&
	test_grep "^remote: denied: pushes to branch denied are not allowed here" err
'

test_expect_success 'without custom hooks or payload, pushes need no hook round trip' '
	start_store s3 &&
	create_repo $s3_ADDR s3 plain.git &&
	(cd src && git_on $s3_ADDR push -q ssh://s3/plain.git main) &&
	: the store logs the push once it is over: a hook would have run before &&
	wait_for_log s3 "\"event\":\"ssh.push\".*\"repo\":\"plain.git\"" &&
	test_must_fail grep "hook.done" "$TRASH/s3/store.log"
'

test_expect_success 'a push'"'"'s hooks come over the hook wire (grove-hook), not gRPC' '
	test_grep -q "grove-hook" "$(find s1 -path "*hooks-push/pre-receive")" &&
	wait_for_log s1 "\"event\":\"hook.done\",.*\"hook\":\"pre-receive\".*\"via\":\"wire\"" &&
	wait_for_log s1 "\"event\":\"hook.done\",.*\"hook\":\"post-receive\".*\"via\":\"wire\"" &&
	test_must_fail grep -q "\"via\":\"grpc\"" s1/store.log
'

test_expect_success 'the hook wire refuses a request without the store'"'"'s secret, or malformed, in git'"'"'s words' '
	sock=$(find s1 -name "hookw.*" -type s) && test -n "$sock" &&
	wire_ask "$sock" wrong >ans &&
	grep -aq "error: grove: the pre-receive check could not run (correlation id .*): push again" ans &&
	wait_for_log s1 "\"event\":\"hook.wire_failed\".*without this store" &&
	wire_ask "$sock" "$(cat "$SHARED_SECRET")" Z >ans &&
	grep -aq "error: grove: the hook check could not run" ans &&
	wait_for_log s1 "\"event\":\"hook.wire_failed\".*unknown type" &&
	: the store serves pushes on &&
	(cd src && GROVE_PUSH_APP=myapp git_on $s1_ADDR push -q ssh://s1/app.git main:after 2>../err) &&
	test_grep "^remote: checked by store hook" err
'

test_done
