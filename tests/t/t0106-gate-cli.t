#!/bin/sh
# The grove CLI for the gate's admin API (grove user|key|app|access|deploy|
# canary), the way an operator uses it, against a real gate: every verb
# answers --help and -h with its own usage and sends nothing to the API; a
# mistyped command is refused in one line, also before any request; and the
# verbs do what their help says, down to who ssh lets in.
. "$(dirname "$0")/test-lib.sh"

# Every noun:verb the CLI has; `grove NOUN --help` must list the same.
VERBS="user:create user:list user:show user:delete key:add key:remove
	app:create app:list app:show app:delete app:lock app:unlock app:set-branch app:update app:route app:max-push
	app:migrate app:import app:gc access:grant access:revoke deploy:list deploy:log"

# The requests the gate's admin API has answered so far: one log line each,
# written just after the answer is sent, by the thread that served the
# connection (libmicrohttpd names it MHD-connection and ends it after the
# line). Counted once the api process has no such thread left: then every
# request made so far has its line, and none is late to be taken for one
# made since.
admin_idle() {
	api=$(sed -n 's/.*"pid":\([0-9]*\),"event":"gate.api_started".*/\1/p' "$TRASH/g1/gate.log" | tail -n 1)
	test -n "$api" && test -d "/proc/$api" || return 125
	! cat /proc/$api/task/*/comm 2>/dev/null | grep -qx MHD-connection
}
admin_requests() {
	wait_for 20 "the gate's admin API to be done with its connections" admin_idle || return 1
	grep -c '"admin.request"' "$TRASH/g1/gate.log" || true
}

test_setup 'a store and a gate; the CLI pointed at its admin API' '
	start_store s1
	start_gate g1 $s1_ADDR s1
	export GROVE_ADMIN_URL=$g1_ADMIN GROVE_ADMIN_TOKEN_FILE=$TRASH/g1/admin-token
	new_key alice
	new_key bob
'

test_expect_success 'the admin log counts requests (so that "no request" below means something)' '
	before=$(admin_requests)
	"$GROVE" app list >/dev/null
	test "$(admin_requests)" = $((before + 1))
'

test_expect_success 'every verb answers --help and -h with its own usage, exit 0, and no request' '
	before=$(admin_requests)
	for nv in $VERBS; do
		noun=${nv%%:*} verb=${nv#*:}
		for h in --help -h; do
			"$GROVE" $noun $verb $h >out 2>err
			test_grep "^usage: grove $noun $verb\( \|$\)" out
			test_grep "^example: grove $noun $verb\( \|$\)" out
			test ! -s err
		done
	done
	for h in --help -h; do
		"$GROVE" canary $h >out 2>err
		test_grep "^usage: grove canary \[PERCENT\]$" out
		test_grep "^example: grove canary " out
		test ! -s err
	done
	test "$(admin_requests)" = "$before"
'

test_expect_success 'help wins wherever it is on the line, and creates nothing' '
	before=$(admin_requests)
	"$GROVE" app create --help >out
	test_grep "^usage: grove app create NAME" out
	"$GROVE" app create web --route cluster --help >out
	test_grep "^usage: grove app create NAME" out
	"$GROVE" user create -h >out
	"$GROVE" key add alice "$TRASH/keys/alice.pub" --help >out
	test_grep "^usage: grove key add USER PUBKEY_FILE" out
	"$GROVE" access grant alice web -h >out
	"$GROVE" canary 50 --help >out
	test "$(admin_requests)" = "$before"
	"$GROVE" app list >apps
	"$GROVE" user list >users
	"$GROVE" canary >canary
	test_must_fail grep -e "-h" -e "\"web\"" apps
	test_must_fail grep -e "-h" -e "\"alice\"" users
	test_grep "\"percent\": 0" canary
'

test_expect_success 'help needs no gate and no token' '
	env -u GROVE_ADMIN_TOKEN_FILE GROVE_ADMIN_URL=http://127.0.0.1:1 "$GROVE" app create --help >out
	test_grep "^usage: grove app create" out
	env -u GROVE_ADMIN_TOKEN_FILE GROVE_ADMIN_URL=http://127.0.0.1:1 "$GROVE" deploy log -h >out
	test_grep "^usage: grove deploy log ID" out
'

test_expect_success 'grove NOUN --help lists every verb of the noun, and how to ask about one' '
	for noun in user key app access deploy; do
		"$GROVE" $noun --help >out
		test_grep "^usage: grove $noun " out
		test_grep "grove $noun VERB --help" out
		for nv in $VERBS; do
			test "${nv%%:*}" = $noun || continue
			test_grep "^\(usage\|   or\): grove $noun ${nv#*:}\( \|$\)" out
		done
		test "$(grep -c "^\(usage\|   or\): grove $noun " out)" = "$(echo $VERBS | tr " " "\n" | grep -c "^$noun:")"
	done
'

# refused CODE WHAT GROVE-ARGS…: grove exits with CODE, prints nothing on
# stdout and one line on stderr that holds WHAT.
refused() {
	code=$1 what=$2
	shift 2
	test_expect_code $code "$GROVE" "$@" >out 2>err
	test ! -s out
	test_grep -F -- "$what" err
	test "$(wc -l <err)" = 1
}

test_expect_success 'an unknown verb, a missing argument or a bad option: exit 2, one line, no request' '
	before=$(admin_requests)
	refused 2 "grove app: '\''frob'\'' is not a verb" app frob
	test_grep -F "See '\''grove app --help'\''." err
	test_grep -F "create, list, show, delete" err
	refused 2 "grove user: '\''remove'\'' is not a verb" user remove alice
	refused 2 "grove key: '\''list'\'' is not a verb" key list
	refused 2 "grove access: '\''give'\'' is not a verb" access give alice web
	refused 2 "grove deploy: '\''show'\'' is not a verb" deploy show 1
	refused 2 "grove app: missing a verb" app
	test_grep -F "See '\''grove app --help'\''." err
	refused 2 "grove app create: missing NAME. See '\''grove app create --help'\''." app create
	refused 2 "grove access grant: missing USER" access grant
	refused 2 "grove access grant: missing APP" access grant alice
	refused 2 "grove key add: missing PUBKEY_FILE" key add alice
	refused 2 "grove app set-branch: missing BRANCH" app set-branch web
	refused 2 "grove app migrate: missing --to" app migrate web
	refused 2 "grove app import: missing --legacy-scan" app import
	refused 2 "grove app create: unknown option '\''--frob'\''" app create web --frob
	refused 2 "grove app create: --route needs a value" app create web --route
	refused 2 "grove user create: --admin takes no value" user create alice --admin=yes
	refused 2 "grove app show: '\''extra'\'' is one argument too many" app show web extra
	refused 2 "grove app list: '\''web'\'' is one argument too many" app list web
	refused 2 "grove canary: 150 is not a percentage from 0 to 100" canary 150
	refused 2 "grove canary: '\''7'\'' is one argument too many" canary 5 7
	test "$(admin_requests)" = "$before"
	"$GROVE" app list >apps
	test_must_fail grep "\"web\"" apps
'

test_expect_success 'grove key add alice alice.pub, as the issue has it: the key shows on the user' '
	"$GROVE" user create alice >out
	test_grep "\"name\": \"alice\"" out
	test_grep "\"admin\": false" out
	"$GROVE" key add alice "$TRASH/keys/alice.pub" >out
	fp=$(ssh-keygen -l -E sha256 -f "$TRASH/keys/alice.pub" | awk "{print \$2}")
	test_grep -F "\"fingerprint\": \"$fp\"" out
	"$GROVE" user show alice >out
	test_grep -F "\"$fp\"" out
	"$GROVE" user list >out
	test_grep -F "\"$fp\"" out
'

test_expect_success 'a key for a user that does not exist, or from a file that does not: refused' '
	test_expect_code 1 "$GROVE" key add nobody "$TRASH/keys/bob.pub" 2>err
	test_grep "HTTP 404" err
	test_expect_code 1 "$GROVE" key add alice "$TRASH/keys/no-such.pub" 2>err
	test_grep "cannot read .*no-such.pub" err
'

test_expect_success 'user create --admin, user list, key remove by fingerprint, user delete' '
	"$GROVE" user create root --admin >out
	test_grep "\"admin\": true" out
	"$GROVE" user create bob >/dev/null
	"$GROVE" key add bob "$TRASH/keys/bob.pub" >/dev/null
	fp=$(ssh-keygen -l -E sha256 -f "$TRASH/keys/bob.pub" | awk "{print \$2}")
	"$GROVE" user list >out
	test_grep "\"name\": \"root\"" out
	test_grep "\"name\": \"bob\"" out
	"$GROVE" key remove "$fp"
	"$GROVE" user show bob >out
	test_must_fail grep -F "$fp" out
	test_expect_code 1 "$GROVE" key remove "$fp" 2>err
	test_grep "HTTP 404" err
	"$GROVE" key add bob "$TRASH/keys/bob.pub" >/dev/null
	"$GROVE" user delete root
	test_expect_code 1 "$GROVE" user show root 2>err
	test_grep "HTTP 404" err
	"$GROVE" user list >out
	test_must_fail grep "\"root\"" out
'

test_expect_success 'apps: create, list, show, set-branch, pin the route, max-push, lock, unlock, delete' '
	"$GROVE" app create web --deploy-branch trunk --route legacy >out
	test_grep "\"name\": \"web\"" out
	test_grep "\"deploy_branch\": \"trunk\"" out
	test_grep "\"route\": \"legacy\"" out
	"$GROVE" app create api --route=cluster >out
	test_grep "\"route\": \"cluster\"" out
	"$GROVE" app list >out
	test_grep "\"name\": \"web\"" out
	test_grep "\"name\": \"api\"" out
	"$GROVE" app show web >out
	test_grep "\"deploy_branch\": \"trunk\"" out
	test_expect_code 1 "$GROVE" app show "web?x" >out 2>err
	test_must_fail grep "\"name\": \"web\"" out
	test_grep -F "no app named web?x" err
	"$GROVE" app set-branch web main >out
	test_grep "\"deploy_branch\": \"main\"" out
	"$GROVE" app route web cluster >out
	test_grep "\"route\": \"cluster\"" out
	"$GROVE" app show web >out
	test_grep "\"route\": \"cluster\"" out
	test_expect_code 1 "$GROVE" app route web elsewhere 2>err
	test_grep "legacy.*cluster" err
	"$GROVE" app max-push web 100 >out
	test_grep "\"max_push_mb\": 100" out
	test_expect_code 2 "$GROVE" app max-push web lots 2>err
	test_grep "not a number of MiB" err
	test_expect_code 1 "$GROVE" app max-push web 99999999 2>err
	test_grep "max_push_mb.*from 0 to" err
	"$GROVE" app lock web >out
	test_grep "\"locked\": true" out
	"$GROVE" app unlock web >out
	test_grep "\"locked\": false" out
	"$GROVE" app delete api
	test_expect_code 1 "$GROVE" app show api 2>err
	test_grep "HTTP 404" err
	"$GROVE" app list >out
	test_must_fail grep "\"api\"" out
'

test_expect_success 'access grant lets alice in over ssh; revoke shuts her out' '
	"$GROVE" access grant alice web >out
	test_grep "\"access\": \"write\"" out
	"$GROVE" access grant bob web --read >out
	test_grep "\"access\": \"read\"" out
	"$GROVE" app show web >out
	test_grep "\"user\": \"alice\"" out
	test_expect_code 1 $(ssh_as alice $g1_SSH_PORT) git@127.0.0.1 </dev/null >greeting 2>&1
	test_grep "You can push to: web" greeting
	make_history src
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main:other)
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >ls
	test_grep "refs/heads/other" ls
	"$GROVE" access revoke alice web
	"$GROVE" app show web >out
	test_must_fail grep "\"user\": \"alice\"" out
	test_grep "\"user\": \"bob\"" out
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git 2>err
	test_grep "Repository not found: web" err
	GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git >ls
	test_grep "refs/heads/other" ls
	test_expect_code 1 "$GROVE" access revoke alice web 2>err
	test_grep "HTTP 404" err
'

test_expect_success 'deploy list of an app never deployed is empty; an unknown deployment is refused' '
	"$GROVE" deploy list web >out
	test "$(tr -d " \n" <out)" = "[]"
	test_expect_code 1 "$GROVE" deploy list no-such-app 2>err
	test_grep "HTTP 404" err
	test_expect_code 1 "$GROVE" deploy log 999 2>err
	test_grep "HTTP 404" err
'

test_expect_success 'canary: shown, set, shown again' '
	"$GROVE" canary >out
	test_grep "\"percent\": 0" out
	"$GROVE" canary 30 >out
	test_grep "\"percent\": 30" out
	"$GROVE" canary >out
	test_grep "\"percent\": 30" out
	test_grep "\"source\": \"api\"" out
	"$GROVE" canary 0 >out
	test_grep "\"percent\": 0" out
'

test_expect_success 'app delete: the app is gone, also for ssh' '
	"$GROVE" app delete web
	test_expect_code 1 "$GROVE" app show web 2>err
	test_grep "HTTP 404" err
	test_must_fail env GIT_SSH_COMMAND="$(ssh_as bob $g1_SSH_PORT)" git ls-remote ssh://git@127.0.0.1:$g1_SSH_PORT/web.git 2>err
	test_grep "Repository not found: web" err
'

test_done
