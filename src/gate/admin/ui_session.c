/* The dashboard's sessions: see ui_session.h. */
#include "gate/admin/ui_session.h"
#include "lib/error.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>

/* Operators are few; a login past this replaces the oldest session. */
#define UI_SESSIONS_MAX 64

/* A slot holds the id's hash, not the id: the table in memory, read by
 * whatever reads the process, does not hand out live cookies. */
struct ui_session {
	bool used;
	unsigned char id_hash[SHA256_DIGEST_LENGTH];
	char csrf[UI_SECRET_HEX + 1];
	int64_t expires_ms;
};

struct ui_sessions {
	pthread_mutex_t mu;
	int64_t lifetime_ms;
	struct ui_session slot[UI_SESSIONS_MAX];
};

int ui_sessions_new(struct ui_sessions **out, int64_t lifetime_ms)
{
	struct ui_sessions *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->lifetime_ms = lifetime_ms;
	*out = s;
	return 0;
}

void ui_sessions_free(struct ui_sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	OPENSSL_cleanse(s->slot, sizeof(s->slot));
	free(s);
}

static int random_hex(char out[UI_SECRET_HEX + 1])
{
	unsigned char raw[UI_SECRET_HEX / 2];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return error_set(GROVE_EINTERNAL, "no random bytes for a session (OpenSSL's RAND_bytes failed)");
	hex_encode(raw, sizeof(raw), out);
	out[UI_SECRET_HEX] = '\0';
	return 0;
}

/* A free or expired slot, else the one that would expire first. */
static struct ui_session *slot_for_new(struct ui_sessions *s, int64_t now)
{
	struct ui_session *pick = &s->slot[0];
	for (size_t i = 0; i < UI_SESSIONS_MAX; i++) {
		struct ui_session *e = &s->slot[i];
		if (!e->used || e->expires_ms <= now)
			return e;
		if (e->expires_ms < pick->expires_ms)
			pick = e;
	}
	return pick;
}

int ui_session_open(struct ui_sessions *s, char id[UI_SECRET_HEX + 1], char csrf[UI_SECRET_HEX + 1])
{
	struct ui_session *e;
	int ret = random_hex(id);
	if (!ret)
		ret = random_hex(csrf);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->mu);
	e = slot_for_new(s, now_ms());
	e->used = true;
	SHA256((const unsigned char *)id, UI_SECRET_HEX, e->id_hash);
	memcpy(e->csrf, csrf, UI_SECRET_HEX + 1);
	e->expires_ms = now_ms() + s->lifetime_ms;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* The live slot of id, under the lock; every slot is compared, in constant
 * time, so the answer's timing says nothing of which one matched. */
static struct ui_session *slot_of(struct ui_sessions *s, const char *id)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	struct ui_session *found = NULL;
	int64_t now = now_ms();

	if (!id || strlen(id) != UI_SECRET_HEX)
		return NULL;
	SHA256((const unsigned char *)id, UI_SECRET_HEX, h);
	for (size_t i = 0; i < UI_SESSIONS_MAX; i++) {
		struct ui_session *e = &s->slot[i];
		if (!CRYPTO_memcmp(e->id_hash, h, sizeof(h)) && e->used && e->expires_ms > now)
			found = e;
	}
	return found;
}

bool ui_session_find(struct ui_sessions *s, const char *id, char csrf[UI_SECRET_HEX + 1])
{
	struct ui_session *e;
	pthread_mutex_lock(&s->mu);
	e = slot_of(s, id);
	if (e)
		memcpy(csrf, e->csrf, UI_SECRET_HEX + 1);
	pthread_mutex_unlock(&s->mu);
	return e != NULL;
}

void ui_session_close(struct ui_sessions *s, const char *id)
{
	struct ui_session *e;
	pthread_mutex_lock(&s->mu);
	e = slot_of(s, id);
	if (e)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&s->mu);
}

bool ui_csrf_ok(const char *want, const char *got)
{
	/* Both are ours in shape (64 hex digits) or the value is refused. */
	if (!want || !got || strlen(want) != UI_SECRET_HEX || strlen(got) != UI_SECRET_HEX)
		return false;
	return CRYPTO_memcmp(want, got, UI_SECRET_HEX) == 0;
}
