#!/bin/sh
# The gate paces a clone's output (src/gate/pace.h): it sends ahead of the
# client only as far as the client keeps up, starting at 256 KiB, not the
# whole window the client grants. Clients differ in when they grant more
# window: OpenSSH after every 96 KiB it takes in, libssh only once half its
# window is used (other clients have other rules). Every client gets
# the whole clone, none waits for a grant that never comes, on both routes;
# the session's log line tells what the pacer did (send_ahead, pace_stalls).
. "$(dirname "$0")/test-lib.sh"

TOOL=${GROVE_TOOLS:-$(dirname "$GROVE")/tests/tools}/ssh-git

# last_session GATE APP: the gate's last session line for APP.
last_session() {
	grep "\"event\":\"gate.session\".*\"app\":\"$2\"" "$TRASH/$1/gate.log" | tail -1
}

# field LINE NAME: a number from a log line.
field() {
	echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

# sessions GATE APP: how many session lines the gate logged for APP.
sessions() {
	grep -c "\"event\":\"gate.session\".*\"app\":\"$2\"" "$TRASH/$1/gate.log" || true
}

# more_sessions GATE APP N: the gate logged more than N session lines for APP.
more_sessions() {
	test "$(sessions $1 $2)" -gt "$3"
}

# clone_with CLIENT GATE APP DIR: a bare clone with OpenSSH ("ssh") or the
# libssh client ("libssh"); a hang (a grant that never comes) fails it after
# two minutes (scaled). Then waits for the clone's session line, which the
# gate logs just after the client has had all it asked for: last_session
# is this clone's.
clone_with() {
	eval "port=\$${2}_SSH_PORT"
	before=$(sessions $2 $3)
	if test "$1" = libssh; then
		GIT_SSH_VARIANT=ssh GIT_SSH_COMMAND="$TOOL -i $TRASH/keys/alice" \
			timeout $((120 * TEST_SCALE)) git clone -q --bare "ssh://git@127.0.0.1:$port/$3.git" "$4"
	else
		GIT_SSH_COMMAND="$(ssh_as alice $port)" timeout $((120 * TEST_SCALE)) git clone -q --bare "ssh://git@127.0.0.1:$port/$3.git" "$4"
	fi &&
	wait_for 20 "the session line of the clone of $3 on $2" more_sessions $2 $3 $before
}

# same_as_src DIR: the clone has the source's branches and tags, and every
# object is whole.
same_as_src() {
	git -C "$1" fsck --no-progress --strict >/dev/null &&
	git -C src for-each-ref --format='%(objectname) %(refname)' refs/heads refs/tags >want &&
	git -C "$1" for-each-ref --format='%(objectname) %(refname)' refs/heads refs/tags >got &&
	test_cmp want got
}

test_setup 'a store; a gate that paces (the default) and one that does not; 8 MiB that do not compress' '
	test -x "$TOOL" &&
	start_store s1 &&
	new_key alice &&
	make_history src &&
	(cd src && head -c 8388608 /dev/urandom >blob.bin && git add blob.bin && git commit -q -m "8 MiB") &&
	start_gate g1 $s1_ADDR s1 &&
	start_gate g2 $s1_ADDR s1 gate.paceOutput=false &&
	user_app g1 alice web &&
	user_app g2 alice web2 &&
	api g1 POST /api/v1/apps "{\"name\":\"old\",\"route\":\"legacy\"}" >.api && test_grep "^201$" .api &&
	api g1 PUT /api/v1/apps/old/collaborators/alice "{\"access\":\"write\"}" >.api && test_grep "^200$" .api &&
	for a in web old; do
		(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/$a.git --all &&
		 GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/$a.git --tags) || return 1
	done &&
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g2_SSH_PORT/web2.git --all &&
	 GIT_SSH_COMMAND="$(ssh_as alice $g2_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g2_SSH_PORT/web2.git --tags)
'

for route in cluster legacy; do
	app=web; test $route = legacy && app=old

	test_expect_success "$route route: an OpenSSH clone is paced and whole" '
		clone_with ssh g1 '$app' ssh-'$route'.git &&
		same_as_src ssh-'$route'.git &&
		line=$(last_session g1 '$app') &&
		echo "$line" | grep -q "\"result\":\"ok\"" &&
		test "$(field "$line" send_ahead)" -ge 262144 &&
		test "$(field "$line" bytes_out)" -gt 8388608
	'

	test_expect_success "$route route: a client that grants window only at half its window gets the whole clone" '
		clone_with libssh g1 '$app' libssh-'$route'.git &&
		same_as_src libssh-'$route'.git &&
		line=$(last_session g1 '$app') &&
		echo "$line" | grep -q "\"result\":\"ok\"" &&
		stalls=$(field "$line" pace_stalls) &&
		echo "# $route, libssh client: send_ahead $(field "$line" send_ahead), pace_stalls $stalls, $(field "$line" ms) ms" >>"$TRASH/report" &&
		test "$stalls" -ge 1 && test "$stalls" -le 3 &&
		test "$(field "$line" send_ahead)" -ge 1048576
	'
done

test_expect_success 'gate.paceOutput=false: the window alone; both clients get the whole clone' '
	clone_with ssh g2 web2 ssh-off.git &&
	same_as_src ssh-off.git &&
	line=$(last_session g2 web2) &&
	test "$(field "$line" send_ahead)" = 0 &&
	clone_with libssh g2 web2 libssh-off.git &&
	same_as_src libssh-off.git &&
	line=$(last_session g2 web2) &&
	test "$(field "$line" send_ahead)" = 0 &&
	test "$(field "$line" pace_stalls)" = 0
'

test_expect_success 'a fetch of nothing new and a push go through the pacer unharmed' '
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git -C ssh-cluster.git fetch -q origin &&
	(cd src && echo more >more.txt && git add more.txt && git commit -q -m more &&
	 GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main) &&
	clone_with libssh g1 web again.git &&
	test "$(git -C again.git rev-parse main)" = "$(git -C src rev-parse main)"
'

test_done
