#!/bin/sh
# Two pushes to one app at once, where the second read the refs before the
# first updated them: git refuses the second ("cannot lock ref … is at X but
# expected Y"), and the gate says what that means and what to do, on both
# routes. The order is made, not hoped for: the second push's commands are
# held (its ssh reads nothing from git) until the first has landed.
. "$(dirname "$0")/test-lib.sh"

test_setup 'a store, a gate, an app with code on each route, two clones' '
	start_store s1 &&
	start_gate g1 $s1_ADDR s1 &&
	new_key alice && user_app g1 alice web >/dev/null &&
	api g1 POST /api/v1/apps "{\"name\":\"old\",\"route\":\"legacy\"}" >out && test_grep "^201$" out &&
	api g1 PUT /api/v1/apps/old/collaborators/alice "{\"access\":\"write\"}" >out && test_grep "^200$" out &&
	SSH="$(ssh_as alice $g1_SSH_PORT)" &&
	REMOTE=ssh://git@127.0.0.1:$g1_SSH_PORT &&
	make_history src &&
	(cd src && GIT_SSH_COMMAND="$SSH" git push -q $REMOTE/web.git main && GIT_SSH_COMMAND="$SSH" git push -q $REMOTE/old.git main) &&
	git clone -q src one && git clone -q src two &&
	# heldssh: an ssh that connects at once but passes it nothing of what
	# git writes until the file go exists, and ends when ssh ends (git must
	# not probe it with -G: GIT_SSH_VARIANT=ssh). The first bytes back (the
	# refs receive-pack advertises) make the file advertised: from then on
	# the push has read the refs it will try to update.
	cat >heldssh <<-EOF &&
	#!/usr/bin/perl
	use POSIX ();
	pipe(my \$r, my \$w) or die "pipe: \$!";
	pipe(my \$or, my \$ow) or die "pipe: \$!";
	my \$pid = fork() // die "fork: \$!";
	if (!\$pid) { close \$w; close \$or; open(STDIN, "<&", \$r) or die; open(STDOUT, ">&", \$ow) or die; exec(qw($SSH), @ARGV) or die "exec: \$!"; }
	close \$r; close \$ow;
	my \$relay = fork() // die "fork: \$!";
	if (!\$relay) {
		close \$w; my \$first = 1;
		while (sysread(\$or, my \$b, 65536)) {
			if (\$first) { open(my \$m, ">", "$TRASH/advertised") and close(\$m); \$first = 0 }
			syswrite(STDOUT, \$b);
		}
		exit 0;
	}
	close \$or;
	\$SIG{CHLD} = sub { if (waitpid(\$pid, POSIX::WNOHANG()) == \$pid) { my \$c = \$? >> 8; waitpid(\$relay, 0); exit(\$c) } };
	select(undef, undef, undef, 0.1) until -e "$TRASH/go";
	while (sysread(STDIN, my \$b, 65536)) { syswrite(\$w, \$b) }
	close \$w;
	waitpid(\$pid, 0);
	my \$code = \$? >> 8;
	waitpid(\$relay, 0);
	exit(\$code);
	EOF
	chmod +x heldssh
'

for app in web old; do
	test_expect_success "$app: the push that lost the race is told what happened" "
		rm -f go advertised &&
		(set +e; cd two && echo two >two-$app && git add . && git commit -q -m two &&
		 GIT_SSH_VARIANT=ssh GIT_SSH_COMMAND=\$TRASH/heldssh git push $REMOTE/$app.git main 2>../lost-$app.err; echo \$? >../lost-$app.rc) &
		wait_for 30 'the held push to have read the refs' test -e advertised &&
		(cd one && echo one >one-$app && git add . && git commit -q -m one &&
		 GIT_SSH_COMMAND=\"\$SSH\" git push -q $REMOTE/$app.git main) &&
		touch go &&
		wait_for 60 'the held push to end' test -s lost-$app.rc &&
		test \"\$(cat lost-$app.rc)\" != 0 &&
		test_grep \"cannot lock ref\" lost-$app.err &&
		test_grep \"^ERROR: Another push to $app was in progress and updated a branch this push updates first: that branch was not changed by this push. Fetch, merge or rebase, and push again.\$\" lost-$app.err &&
		GIT_SSH_COMMAND=\"\$SSH\" git ls-remote $REMOTE/$app.git refs/heads/main >ls &&
		test_grep \"^\$(git -C one rev-parse main)	\" ls &&
		wait_grep '\"event\":\"gate.push_lost_race\".*\"app\":\"$app\"' g1/gate.log
	"
done

test_expect_success 'a push that does not race is told nothing of the kind' '
	(cd one && echo three >three && git add . && git commit -q -m three &&
	 GIT_SSH_COMMAND="$SSH" git push $REMOTE/web.git main 2>../clean.err) &&
	! grep "Another push" clean.err
'

test_done
