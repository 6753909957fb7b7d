/*
 * A router's cap on the calls one user has running through it at once
 * (cluster.maxCallsPerUser), whatever gate they came through: a gate caps
 * its own users' commands (gate.maxOpsPerUser), but several gates share the
 * routers. The user is what the gate says (RPC_USER_KEY); calls that name
 * none (stores, the CLI, repairs) are not counted.
 */
#ifndef GROVE_CLUSTER_USERCAP_H
#define GROVE_CLUSTER_USERCAP_H

#include "lib/common.h"

#include <pthread.h>

#define USERCAP_USERS 2048        /* users with calls at once; more are refused */
#define USERCAP_NAME_MAX 64

struct usercap {
	pthread_mutex_t mu;
	_Atomic int max;          /* 0: no cap; a reload (SIGHUP) may change it */
	size_t n;
	struct usercap_entry {
		char user[USERCAP_NAME_MAX + 1];
		int calls;
	} e[USERCAP_USERS];
};

void usercap_init(struct usercap *u, int max);
void usercap_release(struct usercap *u);
/* One more call of user: 0, or GROVE_ETOOBIG (with *running) at the cap. */
int usercap_take(struct usercap *u, const char *user, int *running);
void usercap_put(struct usercap *u, const char *user);

#endif
