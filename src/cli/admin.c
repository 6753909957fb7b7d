/*
 * The operator's commands that drive the gate's admin HTTP API:
 *
 *   grove user create alice [--admin]      grove user list | show NAME | delete NAME
 *   grove key add alice ~/.ssh/id_ed25519.pub      grove key remove SHA256:…
 *   grove token create alice [--name N] [--expires D] [--read-only]      grove token list alice | revoke alice NAME
 *   grove app create web [--deploy-branch B] [--route legacy|cluster]
 *   grove app list | show APP | delete APP | lock APP | unlock APP
 *   grove app set-branch APP BRANCH | route APP legacy|cluster | max-push APP MIB
 *   grove app migrate APP --to cluster|legacy      grove app gc APP
 *   grove access grant USER APP [--read] | revoke USER APP
 *   grove deploy list APP | log ID [--follow]      grove canary [PERCENT]
 *
 * Every verb is a row of one table (verbs[] below) with its operands, its
 * options and its help, so `grove NOUN VERB --help`, the checks of the
 * arguments and `grove NOUN --help` all come from the same place, and a
 * mistyped command is refused before anything is sent to the API.
 *
 * The API's address comes from $GROVE_ADMIN_URL (default
 * http://127.0.0.1:8080), the token from $GROVE_ADMIN_TOKEN, the file named
 * by $GROVE_ADMIN_TOKEN_FILE, or ./grove-data/gate/admin-token.
 */
#include "lib/common.h"
#include "cli/bar.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/strbuf.h"

#include <curl/curl.h>
#include <jansson.h>

static size_t collect(char *ptr, size_t size, size_t n, void *ctx)
{
	struct strbuf *sb = ctx;
	return strbuf_add(sb, ptr, size * n) ? 0 : size * n;
}

int admin_call(const char *base, const char *token, const char *method, const char *path, json_t *body,
	       long *status, json_t **resp)
{
	char *url = NULL, *payload = NULL, *auth = NULL;
	struct strbuf buf;
	struct curl_slist *hdrs = NULL;
	json_error_t jerr;
	int ret = 0;
	CURL *c = curl_easy_init();

	*status = 0;
	*resp = NULL;
	strbuf_init(&buf, 64 << 20);
	url = xasprintf("%s%s", base, path);
	auth = xasprintf("Authorization: Bearer %s", token);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	}
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		ret = error_set(GROVE_EUNAVAIL, "cannot reach the admin API at %s: %s", base, curl_easy_strerror(cr));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	*resp = buf.len ? json_loadb(buf.buf, buf.len, 0, &jerr) : NULL;
	if (!*resp && buf.len)
		*resp = json_pack("{s:s}", "error", buf.buf);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(payload);
	free(url);
	free(auth);
	strbuf_release(&buf);
	return ret;
}

const char *cli_admin_url(void)
{
	return getenv("GROVE_ADMIN_URL") ? getenv("GROVE_ADMIN_URL") : "http://127.0.0.1:8080";
}

int cli_admin_token(char **out)
{
	*out = NULL;
	if (getenv("GROVE_ADMIN_TOKEN")) {
		*out = xstrdup(getenv("GROVE_ADMIN_TOKEN"));
		return 0;
	}
	if (auth_secret_load(getenv("GROVE_ADMIN_TOKEN_FILE") ? getenv("GROVE_ADMIN_TOKEN_FILE")
							  : "grove-data/gate/admin-token",
			     out))
		return error_wrap(GROVE_EINVAL, "no admin token: set GROVE_ADMIN_TOKEN or GROVE_ADMIN_TOKEN_FILE");
	return 0;
}

/*
 * One request; prints the answer (or the API's error) and returns the exit
 * code. Takes body over (NULL for none).
 */
/* Calls the API (body taken): 0 with the answer in *j (to json_decref),
 * or 1 once the error is said on stderr. */
static int request_json(const char *method, const char *path, json_t *body, json_t **j)
{
	const char *base = cli_admin_url();
	char *token = NULL;
	long status = 0;
	int code = 1;

	*j = NULL;
	if (cli_admin_token(&token)) {
		fprintf(stderr, "grove: %s\n", error_msg());
		goto out;
	}
	if (admin_call(base, token, method, path, body, &status, j)) {
		fprintf(stderr, "grove: %s\n", error_msg());
		goto out;
	}
	if (status >= 400) {
		const char *msg = *j && json_is_string(json_object_get(*j, "error")) ?
					  json_string_value(json_object_get(*j, "error")) : "no message";
		fprintf(stderr, "grove: %s (HTTP %ld)\n", msg, status);
		json_decref(*j);
		*j = NULL;
	} else {
		code = 0;
	}
out:
	json_decref(body);
	free(token);
	return code;
}

static int request(const char *method, const char *path, json_t *body, bool show_log)
{
	json_t *j = NULL;
	int code = request_json(method, path, body, &j);

	if (!code) {
		if (show_log && j && json_is_string(json_object_get(j, "log")))
			fputs(json_string_value(json_object_get(j, "log")), stdout);
		else if (j) {
			char *pretty = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			puts(pretty);
			free(pretty);
		}
	}
	json_decref(j);
	return code;
}

/*
 * grove deploy log ID --follow: the log as it grows, until the deployment
 * ends (like tail -f): the API is asked twice a second and only the new
 * bytes are printed. Exits 0 if the deployment succeeded, 1 otherwise.
 */
static int follow_log(const char *path)
{
	const char *base = cli_admin_url();
	char *token = NULL;
	size_t shown = 0;
	int code = 1;

	if (cli_admin_token(&token)) {
		fprintf(stderr, "grove: %s\n", error_msg());
		return 1;
	}
	for (;;) {
		json_t *j = NULL;
		long status = 0;
		if (admin_call(base, token, "GET", path, NULL, &status, &j) || status >= 400) {
			fprintf(stderr, "grove: %s\n", status ? json_string_value(json_object_get(j, "error")) ?: "error" : error_msg());
			json_decref(j);
			break;
		}
		const char *log = json_string_value(json_object_get(j, "log")) ?: "";
		const char *st = json_string_value(json_object_get(j, "status")) ?: "";
		size_t len = strlen(log);
		/* A log cut to its tail restarts the count: show it whole again. */
		if (len < shown)
			shown = 0;
		fwrite(log + shown, 1, len - shown, stdout);
		fflush(stdout);
		shown = len;
		bool over = !strcmp(st, "succeeded") || !strcmp(st, "failed");
		if (over)
			code = strcmp(st, "succeeded") ? 1 : 0;
		json_decref(j);
		if (over)
			break;
		usleep(500 * 1000);
	}
	free(token);
	return code;
}

static char *read_file(const char *path)
{
	struct strbuf sb;
	char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	strbuf_init(&sb, 64 * 1024);
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	strbuf_rtrim(&sb);
	return strbuf_detach(&sb, NULL);
}

/* ---- the verbs ---- */

#define ADMIN_OPERANDS_MAX 2
#define ADMIN_OPTS_MAX 3

struct admin_verb;

/*
 * What one command line gave a verb: its operands in order (n of them) and,
 * for each of the verb's options, the value given ("" for a flag, NULL when
 * absent). Everything points into argv.
 */
struct admin_args {
	const struct admin_verb *verb;
	const char *operand[ADMIN_OPERANDS_MAX];
	int n;
	const char *opt[ADMIN_OPTS_MAX];
};

/*
 * A verb of a noun, with all `grove NOUN VERB --help` prints. The first
 * `required` of operand[] must be given, the others may be; the n-th of
 * opts has the val CLI_OPT_LONG + n, and takes a value if it names one
 * ("--route R" or "--route=R"). run returns the exit code, or a negative
 * GROVE_E* code with the message set for arguments it refuses (the usage
 * error the caller prints).
 */
struct admin_verb {
	const char *noun;
	const char *name;       /* NULL: the noun alone is the command (grove canary) */
	const char *operand[ADMIN_OPERANDS_MAX];
	int required;
	struct cli_option opts[ADMIN_OPTS_MAX + 1];
	const char *synopsis;   /* what follows "grove NOUN VERB" */
	const char *help;       /* what it does, then a line for each argument */
	const char *example;
	int (*run)(const struct admin_args *a);
};

/* The value given for option name ("--route"), "" for a flag, or NULL. */
static const char *admin_args_opt(const struct admin_args *a, const char *name)
{
	for (int o = 0; o < ADMIN_OPTS_MAX && a->verb->opts[o].name; o++)
		if (!strcmp(a->verb->opts[o].name, name + 2))
			return a->opt[o];
	return NULL;
}

/*
 * fmt with its %s filled by the operands, URL-escaped, so that what the user
 * typed reaches the API as the name it is: "web?x" is refused as a name
 * instead of showing the app web, and a fingerprint's '+' stays a '+'.
 */
static char *api_path(const char *fmt, const char *a, const char *b)
{
	char *ea = curl_easy_escape(NULL, a ? a : "", 0);
	char *eb = curl_easy_escape(NULL, b ? b : "", 0);
	char *path = xasprintf(fmt, ea, eb);
	curl_free(ea);
	curl_free(eb);
	return path;
}

/* A request on the path fmt names with the operands a and b; takes body over. */
static int request_on(const char *method, const char *fmt, const char *a, const char *b, json_t *body,
		      bool show_log)
{
	char *path = api_path(fmt, a, b);
	int code = request(method, path, body, show_log);
	free(path);
	return code;
}

static int user_create(const struct admin_args *a)
{
	return request("POST", "/api/v1/users",
		       json_pack("{s:s, s:b}", "name", a->operand[0], "admin", admin_args_opt(a, "--admin") != NULL),
		       false);
}

static int user_list(const struct admin_args *a)
{
	return request("GET", "/api/v1/users", NULL, false);
}

static int user_show(const struct admin_args *a)
{
	return request_on("GET", "/api/v1/users/%s", a->operand[0], NULL, NULL, false);
}

static int user_delete(const struct admin_args *a)
{
	return request_on("DELETE", "/api/v1/users/%s", a->operand[0], NULL, NULL, false);
}

static int key_add(const struct admin_args *a)
{
	char *key = read_file(a->operand[1]);
	if (!key) {
		fprintf(stderr, "grove: cannot read %s: %s\n", a->operand[1], strerror(errno));
		return 1;
	}
	json_t *body = json_pack("{s:s}", "public_key", key);
	free(key);
	return request_on("POST", "/api/v1/users/%s/keys", a->operand[0], NULL, body, false);
}

static int key_remove(const struct admin_args *a)
{
	return request_on("DELETE", "/api/v1/keys/%s", a->operand[0], NULL, NULL, false);
}

static int token_create(const struct admin_args *a)
{
	const char *name = admin_args_opt(a, "--name"), *days = admin_args_opt(a, "--expires");
	json_t *body = json_pack("{s:s}", "name", name ? name : "token"), *j = NULL;
	char *path = api_path("/api/v1/users/%s/tokens", a->operand[0], NULL);
	int code;

	if (days) {
		char *end;
		long long n = strtoll(days, &end, 10);
		if (*end || n < 1) {
			fprintf(stderr, "grove: --expires takes a number of days (1 or more), not \"%s\"\n", days);
			json_decref(body);
			free(path);
			return 2;
		}
		json_object_set_new(body, "expires_in_days", json_integer(n));
	}
	if (admin_args_opt(a, "--read-only"))
		json_object_set_new(body, "read_only", json_true());
	code = request_json("POST", path, body, &j);
	free(path);
	if (code)
		return code;
	/* The token last, alone on its line: `| tail -n1` takes it. */
	printf("Token %s of %s%s: shown this once, keep it now. It is the password of git over HTTPS:\n"
	       "  git clone https://%s@GATE/APP.git       (git asks for it; a credential helper keeps it)\n"
	       "Revoke it with: grove token revoke %s %s\n%s\n",
	       json_string_value(json_object_get(j, "name")), a->operand[0],
	       json_is_true(json_object_get(j, "read_only")) ? " (read-only: fetches, no pushes)" : "", a->operand[0],
	       a->operand[0], json_string_value(json_object_get(j, "name")), json_string_value(json_object_get(j, "token")));
	json_decref(j);
	return 0;
}

static int token_list(const struct admin_args *a)
{
	return request_on("GET", "/api/v1/users/%s/tokens", a->operand[0], NULL, NULL, false);
}

static int token_revoke(const struct admin_args *a)
{
	char *path = api_path("/api/v1/users/%s/tokens/%s", a->operand[0], a->operand[1]);
	int code = request("DELETE", path, NULL, false);
	free(path);
	return code;
}

static int app_create(const struct admin_args *a)
{
	const char *branch = admin_args_opt(a, "--deploy-branch"), *route = admin_args_opt(a, "--route");
	json_t *body = json_pack("{s:s}", "name", a->operand[0]);
	if (branch)
		json_object_set_new(body, "deploy_branch", json_string(branch));
	if (route)
		json_object_set_new(body, "route", json_string(route));
	return request("POST", "/api/v1/apps", body, false);
}

static int app_list(const struct admin_args *a)
{
	return request("GET", "/api/v1/apps", NULL, false);
}

static int app_show(const struct admin_args *a)
{
	return request_on("GET", "/api/v1/apps/%s", a->operand[0], NULL, NULL, false);
}

static int app_delete(const struct admin_args *a)
{
	return request_on("DELETE", "/api/v1/apps/%s", a->operand[0], NULL, NULL, false);
}

static int app_lock(const struct admin_args *a)
{
	return request_on("PATCH", "/api/v1/apps/%s", a->operand[0], NULL, json_pack("{s:b}", "locked", 1), false);
}

static int app_unlock(const struct admin_args *a)
{
	return request_on("PATCH", "/api/v1/apps/%s", a->operand[0], NULL, json_pack("{s:b}", "locked", 0), false);
}

static int app_set_branch(const struct admin_args *a)
{
	return request_on("PATCH", "/api/v1/apps/%s", a->operand[0], NULL,
			  json_pack("{s:s}", "deploy_branch", a->operand[1]), false);
}

static int app_update(const struct admin_args *a)
{
	const char *head = admin_args_opt(a, "--default-branch"), *deploy = admin_args_opt(a, "--deploy-branch");
	json_t *body;
	if (!head && !deploy)
		return error_set(GROVE_EINVAL, "nothing to update: give --default-branch or --deploy-branch");
	body = json_object();
	if (head)
		json_object_set_new(body, "default_branch", json_string(head));
	if (deploy)
		json_object_set_new(body, "deploy_branch", json_string(deploy));
	return request_on("PATCH", "/api/v1/apps/%s", a->operand[0], NULL, body, false);
}

static int app_max_push(const struct admin_args *a)
{
	char *end;
	errno = 0;
	long long mb = strtoll(a->operand[1], &end, 10);
	if (!*a->operand[1] || *end || errno || mb < 0)
		return error_set(GROVE_EINVAL, "'%s' is not a number of MiB", a->operand[1]);
	return request_on("PATCH", "/api/v1/apps/%s", a->operand[0], NULL, json_pack("{s:I}", "max_push_mb", (json_int_t)mb),
			  false);
}

static int app_route(const struct admin_args *a)
{
	return request_on("PATCH", "/api/v1/apps/%s", a->operand[0], NULL, json_pack("{s:s}", "route", a->operand[1]),
			  false);
}

static int app_migrate(const struct admin_args *a)
{
	const char *to = admin_args_opt(a, "--to");
	if (!to)
		return error_set(GROVE_EINVAL, "missing --to cluster or --to legacy");
	char what[160];
	snprintf(what, sizeof(what), "grove app migrate %s", a->operand[0]);
	struct op_watch *w = op_watch_start(what, a->operand[0], "move");
	int code = request_on("POST", "/api/v1/apps/%s/migrate", a->operand[0], NULL, json_pack("{s:s}", "to", to), false);
	op_watch_stop(w);
	return code;
}

static int app_import(const struct admin_args *a)
{
	/* The flag says where the apps come from: the only source there is, today. */
	if (!admin_args_opt(a, "--legacy-scan"))
		return error_set(GROVE_EINVAL, "missing --legacy-scan");
	return request("POST", "/api/v1/import-legacy", NULL, false);
}

static int app_gc(const struct admin_args *a)
{
	return request_on("POST", "/api/v1/apps/%s/gc", a->operand[0], NULL, NULL, false);
}

static int access_grant(const struct admin_args *a)
{
	const char *access = admin_args_opt(a, "--read") ? "read" : "write";
	return request_on("PUT", "/api/v1/apps/%s/collaborators/%s", a->operand[1], a->operand[0],
			  json_pack("{s:s}", "access", access), false);
}

static int access_revoke(const struct admin_args *a)
{
	return request_on("DELETE", "/api/v1/apps/%s/collaborators/%s", a->operand[1], a->operand[0], NULL, false);
}

static int deploy_list(const struct admin_args *a)
{
	return request_on("GET", "/api/v1/apps/%s/deployments", a->operand[0], NULL, NULL, false);
}

static int deploy_log(const struct admin_args *a)
{
	char *path = api_path("/api/v1/deployments/%s", a->operand[0], NULL);
	int code = admin_args_opt(a, "--follow") ? follow_log(path) : request("GET", path, NULL, true);
	free(path);
	return code;
}

static int canary(const struct admin_args *a)
{
	char *end;
	long pct;

	if (!a->n)
		return request("GET", "/api/v1/canary", NULL, false);
	pct = strtol(a->operand[0], &end, 10);
	if (!*a->operand[0] || *end || pct < 0 || pct > 100)
		return error_set(GROVE_EINVAL, "%s is not a percentage from 0 to 100", a->operand[0]);
	return request("PUT", "/api/v1/canary", json_pack("{s:i}", "percent", (int)pct), false);
}

/*
 * Nouns in the order `grove --help` gives them; each noun's verbs in the
 * order of a day's work (create, look, change, delete).
 */
static const struct admin_verb verbs[] = {
	{ "user", "create", { "NAME" }, 1, { { "admin", CLI_OPT_LONG } }, "NAME [--admin]",
	  "Adds a user, who can then be given SSH keys (grove key add) and access to\n"
	  "apps (grove access grant).\n"
	  "\n"
	  "  NAME     1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit\n"
	  "  --admin  an administrator: may fetch and push every app, without grants\n",
	  "grove user create alice", user_create },
	{ "user", "list", { NULL }, 0, { { NULL } }, "",
	  "Lists every user: name, whether an administrator, and the fingerprints of\n"
	  "their SSH keys.\n",
	  "grove user list", user_list },
	{ "user", "show", { "NAME" }, 1, { { NULL } }, "NAME",
	  "Shows one user: whether an administrator, and the fingerprints of their SSH\n"
	  "keys (what grove key remove takes).\n"
	  "\n"
	  "  NAME  the user\n",
	  "grove user show alice", user_show },
	{ "user", "delete", { "NAME" }, 1, { { NULL } }, "NAME",
	  "Deletes a user with their SSH keys and their access to apps: their keys no\n"
	  "longer open the gate.\n"
	  "\n"
	  "  NAME  the user\n",
	  "grove user delete alice", user_delete },

	{ "key", "add", { "USER", "PUBKEY_FILE" }, 2, { { NULL } }, "USER PUBKEY_FILE",
	  "Gives a user an SSH public key: whoever holds its private key reaches the\n"
	  "gate as that user. Prints the key's fingerprint, which grove key remove takes.\n"
	  "\n"
	  "  USER         an existing user (grove user create)\n"
	  "  PUBKEY_FILE  a public key file, the one line ssh-keygen writes (a .pub file)\n",
	  "grove key add alice ~/.ssh/id_ed25519.pub", key_add },
	{ "key", "remove", { "FINGERPRINT" }, 1, { { NULL } }, "FINGERPRINT",
	  "Removes an SSH key from its user: new connections with it are refused.\n"
	  "\n"
	  "  FINGERPRINT  the key's SHA256:… fingerprint, as grove key add and grove user show print it\n",
	  "grove key remove SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", key_remove },

	{ "token", "create", { "USER" }, 1,
	  { { "name", CLI_OPT_LONG, "NAME" }, { "expires", CLI_OPT_LONG + 1, "DAYS" }, { "read-only", CLI_OPT_LONG + 2, NULL } },
	  "USER [--name NAME] [--expires DAYS] [--read-only]",
	  "Makes an access token for a user: the password of git over HTTPS (docs/http.md).\n"
	  "Prints it once, as the last line of its output: Grove keeps only its hash.\n"
	  "\n"
	  "  USER            an existing user (grove user create)\n"
	  "  --name NAME     what it is for, e.g. laptop or ci; one of each name per user (default: token)\n"
	  "  --expires DAYS  it stops working after that many days (default: never)\n"
	  "  --read-only     it fetches and clones, never pushes (a CI's deploy key, say)\n",
	  "grove token create alice --name laptop --expires 90", token_create },
	{ "token", "list", { "USER" }, 1, { { NULL } }, "USER",
	  "Lists a user's access tokens: id, name, when made, when they expire and were\n"
	  "last used (unix seconds; 0: never). Never the tokens themselves.\n"
	  "\n"
	  "  USER  the user\n",
	  "grove token list alice", token_list },
	{ "token", "revoke", { "USER", "NAME" }, 2, { { NULL } }, "USER NAME",
	  "Revokes an access token: requests with it are refused from then on.\n"
	  "\n"
	  "  USER  its user\n"
	  "  NAME  its name (or its id), as grove token list prints them\n",
	  "grove token revoke alice laptop", token_revoke },

	{ "app", "create", { "NAME" }, 1,
	  { { "deploy-branch", CLI_OPT_LONG, "BRANCH" }, { "route", CLI_OPT_LONG + 1, "legacy|cluster" } },
	  "NAME [--deploy-branch BRANCH] [--route legacy|cluster]",
	  "Registers a new app: a repository git pushes to as ssh://git@GATE/NAME.git,\n"
	  "which a push to its deploy branch deploys.\n"
	  "\n"
	  "  NAME                    lowercase letters, digits and '-' (not first), up to 63\n"
	  "  --deploy-branch BRANCH  the branch that deploys (default: the gate's gate.deployBranch)\n"
	  "  --route legacy|cluster  where the repository lives (default: the canary decides,\n"
	  "                          see grove canary --help)\n",
	  "grove app create web --deploy-branch main", app_create },
	{ "app", "list", { NULL }, 0, { { NULL } }, "",
	  "Lists every app: route, deploy branch, whether it is locked, when it was made\n"
	  "and last changed.\n",
	  "grove app list", app_list },
	{ "app", "show", { "APP" }, 1, { { NULL } }, "APP",
	  "Shows one app: route, deploy branch, lock, collaborators, the last push and\n"
	  "deployment, and its repository where it lives (size, default branch; on the\n"
	  "cluster route its replicas).\n"
	  "\n"
	  "  APP  the app\n",
	  "grove app show web", app_show },
	{ "app", "delete", { "APP" }, 1, { { NULL } }, "APP",
	  "Deletes an app from the gate, with its collaborators: fetches and pushes of it\n"
	  "are refused from then on. The repository itself is left where it is.\n"
	  "\n"
	  "  APP  the app\n",
	  "grove app delete web", app_delete },
	{ "app", "lock", { "APP" }, 1, { { NULL } }, "APP",
	  "Locks an app: pushes wait (up to gate.lockWait seconds) for grove app unlock,\n"
	  "then fail with a message that says so; fetches go on.\n"
	  "\n"
	  "  APP  the app\n",
	  "grove app lock web", app_lock },
	{ "app", "unlock", { "APP" }, 1, { { NULL } }, "APP",
	  "Unlocks an app that grove app lock locked: pushes go through again.\n"
	  "\n"
	  "  APP  the app\n",
	  "grove app unlock web", app_unlock },
	{ "app", "set-branch", { "APP", "BRANCH" }, 2, { { NULL } }, "APP BRANCH",
	  "Sets the branch whose pushes deploy the app.\n"
	  "\n"
	  "  APP     the app\n"
	  "  BRANCH  a branch name (main, or refs/heads/main)\n",
	  "grove app set-branch web production", app_set_branch },
	{ "app", "update", { "APP" }, 1,
	  { { "default-branch", CLI_OPT_LONG, "BRANCH" }, { "deploy-branch", CLI_OPT_LONG + 1, "BRANCH" } },
	  "APP [--default-branch BRANCH] [--deploy-branch BRANCH]",
	  "Changes an app. The default branch is what a clone checks out (the repository's\n"
	  "HEAD, on every replica); a new app takes it from its first push.\n"
	  "\n"
	  "  APP                      the app\n"
	  "  --default-branch BRANCH  a branch the repository has\n"
	  "  --deploy-branch BRANCH   the branch whose pushes deploy (as grove app set-branch)\n",
	  "grove app update web --default-branch main", app_update },
	{ "app", "max-push", { "APP", "MIB" }, 2, { { NULL } }, "APP MIB",
	  "Sets the largest push the app accepts: git refuses a larger pack as it arrives\n"
	  "(\"[remote rejected] (unpacker error)\") and keeps nothing of it.\n"
	  "\n"
	  "  APP  the app\n"
	  "  MIB  the limit in MiB; 0: the gate's gate.maxPushSize (2048 unless set)\n",
	  "grove app max-push web 500", app_max_push },
	{ "app", "route", { "APP", "ROUTE" }, 2, { { NULL } }, "APP ROUTE",
	  "Pins the route the gate sends the app's fetches and pushes to. It does not\n"
	  "move the repository: use it for an app with no code yet, or whose repository\n"
	  "is already there; grove app migrate moves one.\n"
	  "\n"
	  "  APP    the app\n"
	  "  ROUTE  legacy or cluster\n",
	  "grove app route web cluster", app_route },
	{ "app", "migrate", { "APP" }, 1, { { "to", CLI_OPT_LONG, "cluster|legacy" } }, "APP --to cluster|legacy",
	  "Moves an app's repository to the other route, live: the app is locked (pushes\n"
	  "wait), the repository copied and its checksum compared, the route switched,\n"
	  "the old copy removed and the app unlocked. On a failure nothing changes.\n"
	  "\n"
	  "  APP                    the app\n"
	  "  --to cluster|legacy    the route to move it to\n",
	  "grove app migrate web --to cluster", app_migrate },
	{ "app", "import", { NULL }, 0, { { "legacy-scan", CLI_OPT_LONG } }, "--legacy-scan",
	  "Registers every <app>.git in the gate's legacy directory that the gate does not\n"
	  "know yet, as an app on the legacy route deploying its HEAD's branch. Prints the\n"
	  "apps imported and the names skipped (with why).\n"
	  "\n"
	  "  --legacy-scan  look in the legacy directory (the one source there is)\n",
	  "grove app import --legacy-scan", app_import },
	{ "app", "gc", { "APP" }, 1, { { NULL } }, "APP",
	  "Optimizes an app's repository where it lives: every replica through the\n"
	  "cluster router, or git repack and pack-refs in the legacy directory.\n"
	  "\n"
	  "  APP  the app\n",
	  "grove app gc web", app_gc },

	{ "access", "grant", { "USER", "APP" }, 2, { { "read", CLI_OPT_LONG } }, "USER APP [--read]",
	  "Lets a user push to an app (and fetch it); with --read, only fetch it. Granting\n"
	  "again replaces the access given before.\n"
	  "\n"
	  "  USER    the user\n"
	  "  APP     the app\n"
	  "  --read  fetch and clone only\n",
	  "grove access grant alice web", access_grant },
	{ "access", "revoke", { "USER", "APP" }, 2, { { NULL } }, "USER APP",
	  "Takes a user's access to an app away: they can no longer fetch or push it\n"
	  "(unless they are an administrator).\n"
	  "\n"
	  "  USER  the user\n"
	  "  APP   the app\n",
	  "grove access revoke alice web", access_revoke },

	{ "deploy", "list", { "APP" }, 1, { { NULL } }, "APP",
	  "Lists an app's last 100 deployments, newest first: id, ref, old and new\n"
	  "commit, pusher, status, start and end. grove deploy log ID shows one's output.\n"
	  "\n"
	  "  APP  the app\n",
	  "grove deploy list web", deploy_list },
	{ "deploy", "log", { "ID" }, 1, { { "follow", CLI_OPT_LONG } }, "ID [--follow]",
	  "Prints a deployment's output (its last MiB).\n"
	  "\n"
	  "  ID        the deployment's id, from grove deploy list\n"
	  "  --follow  print the output as it grows until the deployment ends, like\n"
	  "            tail -f; exit 0 if it succeeded, 1 if it failed\n",
	  "grove deploy log 12 --follow", deploy_log },

	{ "canary", NULL, { "PERCENT" }, 0, { { NULL } }, "[PERCENT]",
	  "Shows, or with PERCENT sets, the share of new apps put on the cluster route.\n"
	  "A new app created without --route goes to the cluster when a stable hash of\n"
	  "its name falls under the share, so raising it only ever adds apps; apps that\n"
	  "exist stay where they are. Set here, it holds for every gate on the database\n"
	  "and overrides gate.canaryPercent.\n"
	  "\n"
	  "  PERCENT  a whole number from 0 to 100\n",
	  "grove canary 10", canary },
};

static bool is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

/* "grove app create", or "grove canary" for a noun without verbs. */
static void verb_print_name(const struct admin_verb *v, FILE *f)
{
	fprintf(f, "grove %s%s%s", v->noun, v->name ? " " : "", v->name ? v->name : "");
}

static void verb_usage(const struct admin_verb *v)
{
	fputs("usage: ", stdout);
	verb_print_name(v, stdout);
	printf("%s%s\n\n%s\nexample: %s\n", *v->synopsis ? " " : "", v->synopsis, v->help, v->example);
}

static void noun_usage(const char *noun)
{
	bool first = true;
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (strcmp(verbs[i].noun, noun))
			continue;
		printf("%s grove %s %s%s%s\n", first ? "usage:" : "   or:", noun, verbs[i].name,
		       *verbs[i].synopsis ? " " : "", verbs[i].synopsis);
		first = false;
	}
	printf("\n"
	       "`grove %s VERB --help` tells more about one verb. Each drives the gate's admin\n"
	       "API: $GROVE_ADMIN_URL (default http://127.0.0.1:8080), with the token from\n"
	       "$GROVE_ADMIN_TOKEN, the file $GROVE_ADMIN_TOKEN_FILE names, or\n"
	       "./grove-data/gate/admin-token.\n",
	       noun);
}

/* "create, list, show": the verbs of noun, for an error message. */
static void noun_print_verbs(const char *noun, FILE *f)
{
	const char *sep = "";
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (strcmp(verbs[i].noun, noun))
			continue;
		fprintf(f, "%s%s", sep, verbs[i].name);
		sep = ", ";
	}
}

/* The row for noun and name (NULL: the noun's row when it has no verbs). */
static const struct admin_verb *verb_find(const char *noun, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (strcmp(verbs[i].noun, noun))
			continue;
		if (!verbs[i].name || (name && !strcmp(verbs[i].name, name)))
			return &verbs[i];
	}
	return NULL;
}

static bool noun_known(const char *noun)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(verbs[i].noun, noun))
			return true;
	return false;
}

/*
 * Sorts argv (argv[0] the verb) into v's operands and options, refusing
 * (GROVE_EINVAL, with a message naming the culprit) an unknown option, an
 * option without its value, a missing operand or one too many. "--" ends
 * the options. *help tells whether -h or --help was anywhere among them.
 */
static int admin_args_parse(struct admin_args *a, const struct admin_verb *v, int argc, char **argv, bool *help)
{
	struct cli_command cmd = { .name = v->name ? v->name : v->noun, .opts = v->opts };
	struct cli_parse p;
	int nops = 0, o;

	memset(a, 0, sizeof(*a));
	a->verb = v;
	while (nops < ADMIN_OPERANDS_MAX && v->operand[nops])
		nops++;
	cli_parse_init(&p, &cmd, argc, argv);
	while ((o = cli_parse_next(&p)) != -1)
		if (o >= CLI_OPT_LONG && o < CLI_OPT_LONG + ADMIN_OPTS_MAX)
			a->opt[o - CLI_OPT_LONG] = v->opts[o - CLI_OPT_LONG].arg ? optarg : "";
	*help = p.help;
	if (*p.err)
		return error_set(GROVE_EINVAL, "%s", p.err);
	if (p.nargs > nops)
		return error_set(GROVE_EINVAL, "'%s' is one argument too many", p.args[nops]);
	for (a->n = 0; a->n < p.nargs; a->n++)
		a->operand[a->n] = p.args[a->n];
	if (a->n < v->required)
		return error_set(GROVE_EINVAL, "missing %s", v->operand[a->n]);
	return 0;
}

void admin_cli_complete(struct completion *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		completion_add(c, verbs[i].noun, verbs[i].name, verbs[i].opts);
}

int admin_cli_main(const char *noun, int argc, char **argv)
{
	const struct admin_verb *v;
	struct admin_args a;
	int first = 1, ret;       /* argv[first]: the verb, getopt's argv[0] */
	bool help;

	if (!noun_known(noun)) {
		fprintf(stderr, "grove: '%s' is not a grove command. See 'grove --help'.\n", noun);
		return 2;
	}
	v = verb_find(noun, NULL);
	if (v) {
		first = 0;
	} else if (argc < 2) {
		fprintf(stderr, "grove %s: missing a verb: one of ", noun);
		noun_print_verbs(noun, stderr);
		fprintf(stderr, ". See 'grove %s --help'.\n", noun);
		return 2;
	} else if (is_help(argv[1])) {
		noun_usage(noun);
		return 0;
	} else if (!(v = verb_find(noun, argv[1]))) {
		fprintf(stderr, "grove %s: '%s' is not a verb: use one of ", noun, argv[1]);
		noun_print_verbs(noun, stderr);
		fprintf(stderr, ". See 'grove %s --help'.\n", noun);
		return 2;
	}
	ret = admin_args_parse(&a, v, argc - first, argv + first, &help);
	/* Anywhere on the line, even among mistakes: help is all it asks. */
	if (help) {
		verb_usage(v);
		return 0;
	}
	if (!ret)
		ret = v->run(&a);
	if (ret < 0) {
		verb_print_name(v, stderr);
		fprintf(stderr, ": %s. See '", error_msg());
		verb_print_name(v, stderr);
		fputs(" --help'.\n", stderr);
		return 2;
	}
	return ret;
}
