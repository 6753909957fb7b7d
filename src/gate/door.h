/*
 * A door: the way one client's git command came in. The gate's own SSH
 * server (session.c) is one; OpenSSH running `grove shell` as a forced
 * command (shell.c) is another. What a command does is the same behind
 * every door (command.c): the identity checked again, the access, the
 * route, the push policy and its limits, the backend, the words the user
 * reads, the log line and the metrics. A door only carries bytes and words
 * between the client and that logic (its ops), and says what it saw.
 */
#ifndef GROVE_GATE_DOOR_H
#define GROVE_GATE_DOOR_H

#include "gate/db.h"
#include "gate/pace.h"
#include "lib/common.h"

struct backend;
struct door;
struct gate_config;
struct push_head;

/* Why a command was refused, as far as a door may care (HTTP's status). */
enum door_refusal {
	DR_DENIED = 0,            /* access, names, policy: the default */
	DR_RATE,                  /* the user's rate: again in retry_after s */
	DR_BUSY,                  /* slots or a lock stayed taken: again soon */
	DR_UNAVAILABLE,           /* Grove could not run it (a store, the database) */
};

/*
 * One of a user's gate.maxConnectionsPerUser slots (opslots.h), held by a
 * connection from its first command until it closes. A door lives as long
 * as its connection, except smart HTTP's, which lives one request: its
 * door points at the connection's slot, so that a connection kept alive
 * between requests still counts.
 */
struct conn_slot {
	int fd;                   /* the slot's lock, or -1 */
	char user[65];            /* whom it counts for: the SHA-256 of the user's name */
};
#define CONN_SLOT_INIT { -1, "" }
void conn_slot_release(struct conn_slot *s);

struct door_ops {
	/* Text for the client's stderr (ssh prints it as it is). */
	void (*say)(struct door *d, const char *msg, size_t len);
	/* Text for its stdout: the greeting of a login without a command. */
	void (*write_out)(struct door *d, const char *msg, size_t len);
	/* Ends the command with an exit status: nothing follows. */
	void (*finish)(struct door *d, int status);
	/* Whether the client is still there: a wait for a slot or a lock
	 * gives up when it is not. */
	bool (*connected)(struct door *d);
	/* Moves bytes between the client and the backend until the backend's
	 * output ends (door_took_input and door_took_output on the way);
	 * returns its exit code. */
	int (*pump)(struct door *d, struct backend *b);
};

struct door {
	const struct door_ops *ops;
	const struct gate_config *cfg;
	struct db *db;            /* opened at its first use (door_db) */
	/* identity: set by the door from a verified key */
	bool authz_pending;       /* external authorization could not be asked at login: ask per command */
	bool read_only;           /* the credential (a read-only token) may fetch, never push */
	struct user user;
	char fingerprint[128];
	char peer[64];
	/* the request */
	char *command;
	char git_protocol[16];
	int mode;                 /* enum backend_mode: how git speaks behind this door (smart HTTP: not a stream) */
	/* what the pump saw */
	bool dead;                /* the client is gone: nothing more can be said to it */
	bool client_closed;       /* it closed its side before the command ended */
	uint64_t bytes_in, bytes_out;
	struct pace pace;         /* how far ahead of the client output went (zero: not paced) */
	struct push_head *push_head;  /* a push: where its pack starts, and its ref list's size */
	/* A push's output is watched for git's word that another push moved a
	 * ref under it, keeping the last bytes across chunks. */
	bool watch_race, lost_race;
	bool rejected;            /* git reported a ref update it refused ("ng") */
	enum door_refusal refusal; /* why door_finish refused the command, if it did */
	int retry_after;          /* seconds, with DR_RATE and DR_BUSY */
	bool head_refused;        /* the push's ref list went past gate.maxRefListSize */
	char race_tail[24];
	size_t race_tail_len;
	/* held for the command's life */
	int push_lock;            /* the app's push lock, shared, or -1 */
	int op_slot;              /* one of the app's gate.maxOpsPerApp slots (opslots.h), or -1 */
	int user_slot;            /* one of the user's gate.maxOpsPerUser slots, or -1 */
	/* held for the connection's life */
	struct conn_slot *conn;   /* &own_conn, or the HTTP connection's */
	struct conn_slot own_conn;
};

void door_init(struct door *d, const struct door_ops *ops, const struct gate_config *cfg);
void door_release(struct door *d);

/* The database, opened at its first use: a connection that never offers a
 * key costs no database work. NULL when it cannot be opened (logged). */
struct db *door_db(struct door *d);

void door_say(struct door *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A message (fmt may be NULL) and the end of the command with status. */
void door_finish(struct door *d, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A PROXY header from a load balancer of gate.proxyProtocolFrom: peer
 * becomes the client it names. Non-zero: drop the connection (logged). */
int door_proxy_header(const struct gate_config *cfg, int fd, char *peer, size_t peer_size);

/* Tells the acceptor (gate.h) that this connection has authenticated: it
 * no longer counts against gate.maxStartups. Closes *auth_fd, sets it -1. */
void door_tell_authed(int *auth_fd);

/*
 * The connection takes one of its user's gate.maxConnectionsPerUser slots
 * (conn_slot), if it holds none for them yet: 0, or -1 and the command
 * ended with why (none free).
 */
int door_hold_conn_slot(struct door *d);

/* GIT_PROTOCOL from the client: kept (true) only if it is what git sends. */
bool door_take_git_protocol(struct door *d, const char *value);
/* With auth.url: who the platform says the verified key fp is (d->user; no
 * one yet, d->authz_pending, when it cannot be asked). 0, or -1 with the
 * platform's reason for the user in why. */
int door_login_external(struct door *d, const char *fp, char *why, size_t why_size);

/*
 * The key is looked up again when the command arrives, not only when it
 * authenticated. Returns 0, or ends the command with why.
 */
int door_recheck_identity(struct door *d);
/* A login without a command: who they are and where they can push. */
void door_greet(struct door *d);
/* d->command, from its parsing to its log line. */
void door_run_command(struct door *d);

/* For the pump: what the client sent (counted; a push's head watched for
 * its limits) and what went to it (counted; a push's output watched for a
 * lost race or a refused ref). */
void door_took_input(struct door *d, const void *data, size_t n);
void door_took_output(struct door *d, const void *data, size_t n);

#endif
