/*
 * The operator's commands that drive the gate's admin HTTP API:
 *
 *   grove user create alice [--admin]      grove user list | delete NAME
 *   grove key add alice ~/.ssh/id_ed25519.pub      grove key remove SHA256:…
 *   grove app create web [--deploy-branch B] [--route legacy|cluster]
 *   grove app list | show APP | delete APP | lock APP | unlock APP
 *   grove app set-branch APP BRANCH | route APP legacy|cluster
 *   grove app migrate APP --to cluster|legacy      grove app gc APP
 *   grove access grant USER APP [--read] | revoke USER APP
 *   grove deploy list APP | log ID
 *
 * The API's address comes from $GROVE_ADMIN_URL (default
 * http://127.0.0.1:8080), the token from $GROVE_ADMIN_TOKEN, the file named
 * by $GROVE_ADMIN_TOKEN_FILE, or ./grove-data/gate/admin-token.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/strbuf.h"

#include <curl/curl.h>
#include <jansson.h>

static const char usage[] =
	"usage: grove user create NAME [--admin] | list | delete NAME\n"
	"       grove key add USER PUBKEY_FILE | remove FINGERPRINT\n"
	"       grove app create NAME [--deploy-branch B] [--route legacy|cluster]\n"
	"       grove app list | show APP | delete APP | lock APP | unlock APP\n"
	"       grove app set-branch APP BRANCH | route APP legacy|cluster\n"
	"       grove app migrate APP --to cluster|legacy | import --legacy-scan | gc APP\n"
	"       grove access grant USER APP [--read] | revoke USER APP\n"
	"       grove deploy list APP | log ID [--follow]\n"
	"       grove canary [PERCENT]      show, or set, the share of new apps put on the cluster route\n"
	"\n"
	"Drives the gate's admin API: $GROVE_ADMIN_URL (default http://127.0.0.1:8080),\n"
	"token from $GROVE_ADMIN_TOKEN, $GROVE_ADMIN_TOKEN_FILE or ./grove-data/gate/admin-token.\n";

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

/* One request; prints the answer (or the API's error) and returns the exit code. */
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

static int request(const char *method, const char *path, json_t *body, bool show_log)
{
	const char *base = cli_admin_url();
	char *token = NULL;
	json_t *j = NULL;
	long status = 0;
	int code = 1;

	if (cli_admin_token(&token)) {
		fprintf(stderr, "grove: %s\n", error_msg());
		goto out;
	}
	if (admin_call(base, token, method, path, body, &status, &j)) {
		fprintf(stderr, "grove: %s\n", error_msg());
		goto out;
	}
	if (status >= 400) {
		const char *msg = j && json_is_string(json_object_get(j, "error")) ? json_string_value(json_object_get(j, "error"))
										 : "no message";
		fprintf(stderr, "grove: %s (HTTP %ld)\n", msg, status);
	} else {
		code = 0;
		if (show_log && j && json_is_string(json_object_get(j, "log")))
			fputs(json_string_value(json_object_get(j, "log")), stdout);
		else if (j) {
			char *pretty = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			puts(pretty);
			free(pretty);
		}
	}
out:
	json_decref(j);
	free(token);
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

int admin_cli_main(const char *noun, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";
	char path[512];
	json_t *body = NULL;
	int code = 2;

#define ARG(i) (argc > (i) ? argv[i] : NULL)
#define NEED(n) if (argc < (n)) goto usage
	if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(noun, "user")) {
		if (!strcmp(verb, "create")) {
			NEED(3);
			bool admin = argc > 3 && !strcmp(argv[3], "--admin");
			body = json_pack("{s:s, s:b}", "name", ARG(2), "admin", admin);
			code = request("POST", "/api/v1/users", body, false);
		} else if (!strcmp(verb, "list")) {
			code = request("GET", "/api/v1/users", NULL, false);
		} else if (!strcmp(verb, "delete")) {
			NEED(3);
			snprintf(path, sizeof(path), "/api/v1/users/%s", ARG(2));
			code = request("DELETE", path, NULL, false);
		} else goto usage;
	} else if (!strcmp(noun, "key")) {
		if (!strcmp(verb, "add")) {
			NEED(4);
			char *key = read_file(ARG(3));
			if (!key) {
				fprintf(stderr, "grove: cannot read %s: %s\n", ARG(3), strerror(errno));
				return 1;
			}
			body = json_pack("{s:s}", "public_key", key);
			free(key);
			snprintf(path, sizeof(path), "/api/v1/users/%s/keys", ARG(2));
			code = request("POST", path, body, false);
		} else if (!strcmp(verb, "remove")) {
			NEED(3);
			char *esc = curl_easy_escape(NULL, ARG(2), 0);
			snprintf(path, sizeof(path), "/api/v1/keys/%s", esc);
			curl_free(esc);
			code = request("DELETE", path, NULL, false);
		} else goto usage;
	} else if (!strcmp(noun, "app")) {
		if (!strcmp(verb, "create")) {
			NEED(3);
			body = json_pack("{s:s}", "name", ARG(2));
			for (int i = 3; i + 1 < argc; i += 2) {
				if (!strcmp(argv[i], "--deploy-branch"))
					json_object_set_new(body, "deploy_branch", json_string(argv[i + 1]));
				else if (!strcmp(argv[i], "--route"))
					json_object_set_new(body, "route", json_string(argv[i + 1]));
				else goto usage;
			}
			code = request("POST", "/api/v1/apps", body, false);
		} else if (!strcmp(verb, "list")) {
			code = request("GET", "/api/v1/apps", NULL, false);
		} else if (!strcmp(verb, "show") || !strcmp(verb, "delete")) {
			NEED(3);
			snprintf(path, sizeof(path), "/api/v1/apps/%s", ARG(2));
			code = request(!strcmp(verb, "show") ? "GET" : "DELETE", path, NULL, false);
		} else if (!strcmp(verb, "lock") || !strcmp(verb, "unlock")) {
			NEED(3);
			body = json_pack("{s:b}", "locked", !strcmp(verb, "lock"));
			snprintf(path, sizeof(path), "/api/v1/apps/%s", ARG(2));
			code = request("PATCH", path, body, false);
		} else if (!strcmp(verb, "import")) {
			if (argc < 3 || strcmp(argv[2], "--legacy-scan"))
				goto usage;
			code = request("POST", "/api/v1/import-legacy", NULL, false);
		} else if (!strcmp(verb, "gc")) {
			NEED(3);
			snprintf(path, sizeof(path), "/api/v1/apps/%s/gc", ARG(2));
			code = request("POST", path, NULL, false);
		} else if (!strcmp(verb, "migrate")) {
			if (argc < 5 || strcmp(argv[3], "--to"))
				goto usage;
			body = json_pack("{s:s}", "to", argv[4]);
			snprintf(path, sizeof(path), "/api/v1/apps/%s/migrate", ARG(2));
			code = request("POST", path, body, false);
		} else if (!strcmp(verb, "set-branch") || !strcmp(verb, "route")) {
			NEED(4);
			body = json_pack("{s:s}", !strcmp(verb, "route") ? "route" : "deploy_branch", ARG(3));
			snprintf(path, sizeof(path), "/api/v1/apps/%s", ARG(2));
			code = request("PATCH", path, body, false);
		} else goto usage;
	} else if (!strcmp(noun, "access")) {
		NEED(4);
		snprintf(path, sizeof(path), "/api/v1/apps/%s/collaborators/%s", ARG(3), ARG(2));
		if (!strcmp(verb, "grant")) {
			bool ro = argc > 4 && !strcmp(argv[4], "--read");
			body = json_pack("{s:s}", "access", ro ? "read" : "write");
			code = request("PUT", path, body, false);
		} else if (!strcmp(verb, "revoke")) {
			code = request("DELETE", path, NULL, false);
		} else goto usage;
	} else if (!strcmp(noun, "canary")) {
		if (argc > 2)
			goto usage;
		if (argc == 2) {
			char *end;
			long pct = strtol(argv[1], &end, 10);
			if (!*argv[1] || *end || pct < 0 || pct > 100) {
				fprintf(stderr, "grove: canary: %s is not a percentage from 0 to 100\n", argv[1]);
				return 2;
			}
			body = json_pack("{s:i}", "percent", (int)pct);
			code = request("PUT", "/api/v1/canary", body, false);
		} else {
			code = request("GET", "/api/v1/canary", NULL, false);
		}
	} else if (!strcmp(noun, "deploy")) {
		NEED(3);
		if (!strcmp(verb, "list")) {
			snprintf(path, sizeof(path), "/api/v1/apps/%s/deployments", ARG(2));
			code = request("GET", path, NULL, false);
		} else if (!strcmp(verb, "log") && argc > 3 && !strcmp(argv[3], "--follow")) {
			snprintf(path, sizeof(path), "/api/v1/deployments/%s", ARG(2));
			code = follow_log(path);
		} else if (!strcmp(verb, "log")) {
			snprintf(path, sizeof(path), "/api/v1/deployments/%s", ARG(2));
			code = request("GET", path, NULL, true);
		} else goto usage;
	} else {
		goto usage;
	}
	json_decref(body);
	return code;
usage:
	json_decref(body);
	fputs(usage, stderr);
	return 2;
#undef ARG
#undef NEED
}
