/* External authorization with a shared answer cache: see authz.h. */
#include "gate/authz.h"
#include "gate/gate.h"
#include "gate/metrics.h"
#include "lib/error.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/strbuf.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sys/mman.h>

/* The API's answer is a few hundred bytes; more is not an answer. */
#define AUTHZ_BODY_MAX (64 * 1024)
#define AUTHZ_KEY_MAX 240
#define AUTHZ_WAYS 4
/* A refusal is kept briefly: a key just added on the platform works soon. */
#define AUTHZ_DENY_TTL_S 5

struct authz_entry {
	uint64_t hash;
	int64_t expires_ms;
	int64_t stored_ms;
	char key[AUTHZ_KEY_MAX];
	bool allowed;
	char user[AUTHZ_USER_MAX + 1];
	char message[AUTHZ_MESSAGE_MAX + 1];
};

struct authz_shared {
	pthread_mutex_t mu;
	size_t nbuckets;
	struct authz_entry entries[];
};

struct authz *gate_authz;

struct authz {
	char *url;
	char *auth_header;
	int timeout_s;
	int ttl_s;
	struct authz_shared *shm;
	size_t shm_size;
};

int authz_new(struct authz **out, const struct authz_opts *opts)
{
	struct authz *z = xcalloc(1, sizeof(*z));
	pthread_mutexattr_t attr;
	int ret = 0;

	*out = NULL;
	z->url = xstrdup(opts->url);
	z->timeout_s = opts->timeout_s;
	z->ttl_s = opts->cache_ttl_s;
	if (opts->token)
		z->auth_header = xasprintf("Authorization: Bearer %s", opts->token);
	if (z->ttl_s > 0) {
		size_t nb = (size_t)(opts->cache_entries > AUTHZ_WAYS ? opts->cache_entries : AUTHZ_WAYS) / AUTHZ_WAYS;
		z->shm_size = sizeof(struct authz_shared) + nb * AUTHZ_WAYS * sizeof(struct authz_entry);
		void *p = mmap(NULL, z->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			ret = error_set(GROVE_EIO, "cannot map the authorization cache (%zu bytes): %s", z->shm_size,
					strerror(errno));
			goto out;
		}
		z->shm = p;
		z->shm->nbuckets = nb;
		pthread_mutexattr_init(&attr);
		pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init(&z->shm->mu, &attr);
		pthread_mutexattr_destroy(&attr);
	}
	*out = z;
	z = NULL;
out:
	authz_free(z);
	return ret;
}

void authz_free(struct authz *z)
{
	if (!z)
		return;
	if (z->shm)
		munmap(z->shm, z->shm_size);
	free(z->url);
	free(z->auth_header);
	free(z);
}

/* ---- the cache ---- */

static void cache_lock(struct authz_shared *shm)
{
	if (pthread_mutex_lock(&shm->mu) == EOWNERDEAD) {
		/* A session died holding the lock, perhaps mid-write: start afresh
		 * rather than trust a half-written entry. */
		memset(shm->entries, 0, shm->nbuckets * AUTHZ_WAYS * sizeof(struct authz_entry));
		pthread_mutex_consistent(&shm->mu);
	}
}

static bool cache_get(struct authz *z, const char *key, uint64_t h, struct authz_answer *out)
{
	struct authz_entry *b;
	bool hit = false;
	int64_t now = now_ms();

	if (!z->shm)
		return false;
	b = &z->shm->entries[(h % z->shm->nbuckets) * AUTHZ_WAYS];
	cache_lock(z->shm);
	for (int i = 0; i < AUTHZ_WAYS; i++) {
		if (b[i].hash == h && b[i].expires_ms > now && !strcmp(b[i].key, key)) {
			out->allowed = b[i].allowed;
			memcpy(out->user, b[i].user, sizeof(out->user));
			memcpy(out->message, b[i].message, sizeof(out->message));
			out->cached = hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&z->shm->mu);
	return hit;
}

static void cache_put(struct authz *z, const char *key, uint64_t h, const struct authz_answer *a)
{
	struct authz_entry *b, *victim;
	int64_t now = now_ms();

	if (!z->shm || strlen(key) >= AUTHZ_KEY_MAX)
		return;
	b = &z->shm->entries[(h % z->shm->nbuckets) * AUTHZ_WAYS];
	cache_lock(z->shm);
	victim = &b[0];
	for (int i = 0; i < AUTHZ_WAYS; i++) {
		if ((b[i].hash == h && !strcmp(b[i].key, key)) || b[i].expires_ms <= now) {
			victim = &b[i];
			break;
		}
		if (b[i].stored_ms < victim->stored_ms)
			victim = &b[i];
	}
	victim->hash = h;
	victim->stored_ms = now;
	victim->expires_ms = now + (int64_t)(a->allowed || z->ttl_s < AUTHZ_DENY_TTL_S ? z->ttl_s : AUTHZ_DENY_TTL_S) * 1000;
	strlcpy_(victim->key, key, sizeof(victim->key));
	victim->allowed = a->allowed;
	memcpy(victim->user, a->user, sizeof(victim->user));
	memcpy(victim->message, a->message, sizeof(victim->message));
	pthread_mutex_unlock(&z->shm->mu);
}

/* ---- the API ---- */

static bool user_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > AUTHZ_USER_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-' || *s == '@'))
			return false;
	return true;
}

int authz_parse_answer(const char *body, size_t len, struct authz_answer *out)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr), *allowed, *user, *message;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!j)
		return error_set(GROVE_EINVAL, "the answer is not JSON: %s", jerr.text);
	if (!json_is_object(j)) {
		ret = error_set(GROVE_EINVAL, "the answer is not a JSON object");
		goto out;
	}
	allowed = json_object_get(j, "allowed");
	user = json_object_get(j, "user");
	message = json_object_get(j, "message");
	if (!json_is_boolean(allowed)) {
		ret = error_set(GROVE_EINVAL, "the answer has no \"allowed\": true or false");
		goto out;
	}
	out->allowed = json_is_true(allowed);
	if (user && !json_is_null(user)) {
		if (!json_is_string(user) || !user_name_ok(json_string_value(user))) {
			ret = error_set(GROVE_EINVAL,
					"the answer's \"user\" must be 1 to %d letters, digits, '.', '_', '-' or '@'",
					AUTHZ_USER_MAX);
			goto out;
		}
		strlcpy_(out->user, json_string_value(user), sizeof(out->user));
	}
	if (out->allowed && !out->user[0]) {
		ret = error_set(GROVE_EINVAL, "the answer allows but names no \"user\"");
		goto out;
	}
	if (message && json_is_string(message)) {
		/* Shown to the user on one line and logged: no control characters. */
		const char *m = json_string_value(message);
		size_t n = 0;
		for (; *m && n < AUTHZ_MESSAGE_MAX; m++)
			out->message[n++] = (unsigned char)*m < 0x20 || *m == 0x7f ? ' ' : *m;
		out->message[n] = '\0';
	}
out:
	json_decref(j);
	return ret;
}

static size_t collect(char *data, size_t size, size_t n, void *ctx)
{
	struct strbuf *sb = ctx;
	/* Past the limit the transfer stops: curl sees a short write. */
	return strbuf_add(sb, data, size * n) ? 0 : size * n;
}

static int ask(struct authz *z, const char *fingerprint, const char *action, const char *app, struct authz_answer *out)
{
	struct curl_slist *hdrs = NULL;
	struct strbuf body = STRBUF_INIT;
	char errbuf[CURL_ERROR_SIZE] = "", *req = NULL;
	long status = 0;
	int ret;
	CURL *c = NULL;
	json_t *j = json_pack("{s:s, s:s, s:s?, s:s}", "fingerprint", fingerprint, "action", action, "app", app,
			      "protocol", "ssh");

	strbuf_init(&body, AUTHZ_BODY_MAX);
	req = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (req) {
		hdrs = curl_slist_append(hdrs, "Accept: application/json");
		if (z->auth_header)
			hdrs = curl_slist_append(hdrs, z->auth_header);
		c = httpc_json_post(z->url, req, &hdrs, z->timeout_s, z->timeout_s, errbuf);
	}
	if (!c) {
		ret = error_set(GROVE_EINTERNAL, "cannot prepare the authorization request");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		ret = error_set(GROVE_EUNAVAIL, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	/* 2xx, and 401/403/404 with a JSON answer, are answers; the rest is the
	 * API failing, which must not read as "no access". */
	if (status >= 500 || (status >= 300 && status != 401 && status != 403 && status != 404)) {
		ret = error_set(GROVE_EUNAVAIL, "it answered HTTP %ld", status);
		goto out;
	}
	ret = authz_parse_answer(body.buf, body.len, out);
	if (ret)
		ret = error_wrap(GROVE_EUNAVAIL, "HTTP %ld", status);
	else if (status >= 400)
		out->allowed = false;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(req);
	strbuf_release(&body);
	return ret;
}

int authz_check(struct authz *z, const char *fingerprint, const char *action, const char *app,
		struct authz_answer *out)
{
	char key[AUTHZ_KEY_MAX + 64];
	int64_t start = now_ms();
	uint64_t h;
	int ret;

	memset(out, 0, sizeof(*out));
	snprintf(key, sizeof(key), "%s\n%s\n%s", fingerprint, action, app ? app : "");
	h = fnv1a64(key);
	if (cache_get(z, key, h, out)) {
		if (gate_metrics)
			atomic_fetch_add(&gate_metrics->authz[MA_CACHED], 1);
		return 0;
	}
	ret = ask(z, fingerprint, action, app, out);
	if (gate_metrics)
		atomic_fetch_add(&gate_metrics->authz[ret ? MA_UNAVAILABLE : out->allowed ? MA_ALLOWED : MA_DENIED], 1);
	if (ret) {
		log_warn("gate.authz_unavailable", "url=%s action=%s app=%s error=%s", z->url, action, app ? app : "",
			 error_msg());
		return error_wrap(GROVE_EUNAVAIL, "the authorization service cannot be reached");
	}
	cache_put(z, key, h, out);
	log_info("gate.authz", "fingerprint=%s action=%s app=%s allowed=%s user=%s ms=%lld", fingerprint, action,
		 app ? app : "", out->allowed ? "true" : "false", out->user, (long long)(now_ms() - start));
	return 0;
}
