/* The router's per-user cap on calls at once: see usercap.h. */
#include "cluster/usercap.h"
#include "lib/error.h"

void usercap_init(struct usercap *u, int max)
{
	pthread_mutex_init(&u->mu, NULL);
	u->max = max;
	u->n = 0;
}

void usercap_release(struct usercap *u)
{
	pthread_mutex_destroy(&u->mu);
}

/* The entry of user (its first USERCAP_NAME_MAX bytes: a longer name
 * shares a cap with its prefix, never escapes it), NULL if none (under u->mu). A linear scan: the
 * entries are the users with calls now, a few dozen at most in practice,
 * and the cost is nothing beside a git command's. */
static struct usercap_entry *find(struct usercap *u, const char *user)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strncmp(u->e[i].user, user, USERCAP_NAME_MAX))
			return &u->e[i];
	return NULL;
}

int usercap_take(struct usercap *u, const char *user, int *running)
{
	struct usercap_entry *e;
	int ret = 0;

	*running = 0;
	if (!u->max)
		return 0;
	pthread_mutex_lock(&u->mu);
	if (!(e = find(u, user)) && u->n < USERCAP_USERS) {
		e = &u->e[u->n++];
		strlcpy_(e->user, user, sizeof(e->user));
		e->calls = 0;
	}
	if (!e)
		ret = error_set(GROVE_ETOOBIG, "%d users have calls running: no room for another", USERCAP_USERS);
	else if (e->calls >= u->max) {
		*running = e->calls;
		ret = error_set(GROVE_ETOOBIG, "user %s has %d calls running (cluster.maxCallsPerUser)", user, e->calls);
	} else
		e->calls++;
	pthread_mutex_unlock(&u->mu);
	return ret;
}

void usercap_put(struct usercap *u, const char *user)
{
	struct usercap_entry *e;
	if (!u->max)
		return;
	pthread_mutex_lock(&u->mu);
	if ((e = find(u, user)) && --e->calls <= 0)
		*e = u->e[--u->n];
	pthread_mutex_unlock(&u->mu);
}
