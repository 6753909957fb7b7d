/*
 * A thin wrapper over gRPC C core for Grove's daemons and clients.
 *
 * Server: one completion queue polled by a small pool of threads, which only
 * accepts calls; each accepted call runs its handler on a thread of its own,
 * because handlers block on git, and has a completion queue of its own. A
 * handler reads and writes messages with rpc_call_recv/rpc_call_send, which
 * start one operation and pluck its completion from the call's queue (the
 * waiting thread polls for it itself: no pool thread has to wake it, which
 * halved the store's futex calls during a clone), and ends the call with
 * rpc_call_finish exactly once. At most one receive and one send are
 * outstanding per call, as gRPC requires; a receive and a send may be waited
 * on from two threads at once (one pumping git's stdin, one its stdout).
 *
 * Every call but grpc.health.v1.Health/Check must carry a valid shared-secret
 * token (lib/auth.h); unknown methods are answered UNIMPLEMENTED at once.
 * Correlation ids travel in the "x-grove-correlation-id" metadata and are set
 * as the handler thread's log correlation id.
 *
 * Client: one channel per address; each call has its own pluck completion
 * queue and blocking operations, so a caller can receive on one thread while
 * it sends on another.
 */
#ifndef GROVE_RPC_H
#define GROVE_RPC_H

#include "lib/common.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define RPC_CORRELATION_KEY "x-grove-correlation-id"
/* The user a gate runs a call for (a router's per-user cap), and the start
 * of the status details of a call refused for that cap. */
#define RPC_USER_KEY "x-grove-user"
#define RPC_USER_BUSY "busy: "
#define RPC_CHUNK_MAX (128 * 1024)            /* stream payload per message, what every peer takes */
/*
 * An SSHService request's stdin may be this large when the server says so
 * in its first answer's metadata (RPC_STDIN_MAX_KEY: a store or router of
 * this release). A push of 100 MiB is then ~100 messages instead of ~800 on
 * every link, each a wake-up of a thread at both ends. Servers of earlier
 * releases refuse more than RPC_CHUNK_MAX: a sender sends that until told
 * (rpc_stream_stdin_max), a router cuts for such a store
 * (ssh_request_split).
 */
#define RPC_STDIN_MAX (1024 * 1024)
#define RPC_STDIN_MAX_KEY "x-grove-stdin-max"
#define RPC_DEFAULT_MAX_MESSAGE (4 << 20)     /* largest message accepted */

/* Frees a message protobuf-c unpacked (NULL is fine). */
#define FREE_MSG(m) do { if (m) protobuf_c_message_free_unpacked(&(m)->base, NULL); } while (0)

/* Maps between Grove error codes and gRPC status codes. */
grpc_status_code rpc_status_from_err(int err);
int rpc_err_from_status(grpc_status_code status);
const char *rpc_status_name(grpc_status_code status);

/* ---- server ---- */

struct rpc_server;
struct rpc_call;

typedef void rpc_handler_fn(struct rpc_call *call, void *data);

struct rpc_server_opts {
	const char *role;         /* for logs: "store", "cluster", "gate" */
	const char *secret;       /* shared secret every call must prove */
	int threads;              /* completion queue pollers; 0: 2 */
	int max_calls;            /* concurrent calls; more get RESOURCE_EXHAUSTED; 0: 1024 */
	size_t max_message;       /* largest message received; 0: RPC_DEFAULT_MAX_MESSAGE */
	bool stdin_max;           /* SSHService takes RPC_STDIN_MAX of stdin a message: say so (RPC_STDIN_MAX_KEY) */
};

int rpc_server_new(struct rpc_server **out, const struct rpc_server_opts *opts);
/* Registers a handler; before rpc_server_start. */
int rpc_server_handle(struct rpc_server *s, const char *method, rpc_handler_fn *fn, void *data);
/* "host:port", "[::1]:port" or "unix:/path"; before rpc_server_start. */
int rpc_server_listen(struct rpc_server *s, const char *addr);
/* The same; *port: the TCP port bound (the kernel's pick for "host:0"). */
int rpc_server_listen_port(struct rpc_server *s, const char *addr, int *port);
int rpc_server_start(struct rpc_server *s);
/* For a unix address listened on: "unix:PATH.PID", the socket of this
 * process alone (PATH follows whichever process serves now: an upgrade
 * moves it); other addresses as they are. Valid as long as the server. */
const char *rpc_server_own_address(struct rpc_server *s, const char *addr);
/* Calls in flight now. */
int rpc_server_inflight(struct rpc_server *s);
/*
 * A named service for grpc.health.v1.Health/Check: a check naming it
 * answers SERVING when fn(data) is true, else NOT_SERVING (and
 * NOT_SERVING while draining). The empty name is the server itself; any
 * other unknown name is NOT_FOUND, as the health protocol says. Before
 * rpc_server_start.
 */
typedef bool rpc_health_fn(void *data);
/* A store that can take writes: not draining, and room on its disk. */
#define RPC_HEALTH_WRITES "grove.v1.writes"
int rpc_server_health_service(struct rpc_server *s, const char *name, rpc_health_fn *fn, void *data);
/*
 * Refuses new calls (UNAVAILABLE, "stopping") and reports NOT_SERVING to
 * health checks, lets the calls in flight finish for up to grace_ms on
 * their open connections, then shuts gRPC's server down (its connections
 * close), cancels what still runs and waits for their handlers to return.
 * Then stops the pollers. After rpc_server_leave, gRPC's shutdown comes
 * first (a late client goes on to the new process).
 */
void rpc_server_drain(struct rpc_server *s, int grace_ms);
/*
 * Leaving, before the drain of an upgrade's old process (lib/daemon.h): a
 * new process serves the address beside this one. gRPC closes a drained
 * connection the moment its last call ends, and a client then writing
 * (a half-close, a window update) meets a closed socket before it has
 * read the call's end: the call fails, though the server finished it (a
 * push every store took, reported failed). So the clients leave first:
 * from rpc_server_leave on, every call's trailers carry RPC_LEAVING_KEY,
 * and a client (rpc_client.c) makes its next calls on a new connection,
 * to the new process, and closes the old one once its calls ended. The
 * old process serves meanwhile as before.
 *
 * rpc_server_wait_left waits, until deadline_ms (now_ms()), for no call in
 * flight, then up to RPC_LEAVE_LINGER_MS more for the clients to have
 * closed their connections to this server (a client idle all along keeps
 * its own: the drain closes it, with no call on it). Logs rpc.left.
 */
#define RPC_LEAVING_KEY "x-grove-leaving"
#define RPC_LEAVE_LINGER_MS 5000
void rpc_server_leave(struct rpc_server *s);
void rpc_server_wait_left(struct rpc_server *s, int64_t deadline_ms);
/*
 * An upgrade on a TCP port: the old process's listeners bind without
 * SO_REUSEPORT (a second daemon started by mistake on the same port fails
 * to start, instead of silently sharing it). rpc_server_share_ports sets it
 * on the listeners of s before the new process starts, and
 * rpc_server_listen_beside, in the new process before rpc_server_new,
 * makes its listeners bind with it: the new one binds beside the old one,
 * and a plain bind still fails.
 */
void rpc_server_share_ports(struct rpc_server *s);
void rpc_server_listen_beside(void);
void rpc_server_free(struct rpc_server *s);

/*
 * Receives the next message into *out (free with protobuf_c_message_free_unpacked).
 * Returns 1 with a message, 0 at the end of the client's stream, or a negative
 * code: GROVE_ECANCELLED when the client went away, GROVE_EPROTO for a
 * message that does not decode as d.
 */
int rpc_call_recv(struct rpc_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);
/* Receives the one request of a unary call: 0, or an error (none sent: GROVE_EINVAL). */
int rpc_call_recv_one(struct rpc_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);
/* Ends a unary call: sends resp and OK when err is 0, else fails with err. */
void rpc_call_reply(struct rpc_call *c, int err, const ProtobufCMessage *resp);
/* Sends one message; GROVE_ECANCELLED when the client went away. */
int rpc_call_send(struct rpc_call *c, const ProtobufCMessage *m);
/*
 * Ends the call: err is 0 for OK or a Grove error code, mapped to a gRPC
 * status; the message says what was wrong and what to do. Only once.
 */
void rpc_call_finish(struct rpc_call *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* rpc_call_finish(c, err, "%s", error_msg()). */
void rpc_call_fail(struct rpc_call *c, int err);
/* Ends a streaming call: OK when err is 0, else as rpc_call_fail. */
void rpc_call_done(struct rpc_call *c, int err);
/* Whether gRPC reported that the client cancelled (or the call broke). */
bool rpc_call_cancelled(struct rpc_call *c);
/*
 * Whether the call's server drains (an upgrade, a stop). gRPC then closes a
 * connection as soon as its last call ends, and a client that half-closes
 * after the answer (git does, once it has read the end of it) meets a
 * closed socket and never reads the call's status: a push all replicas
 * took fails. A handler of a call the client streams into waits, while
 * this is true, up to RPC_DRAIN_HALF_CLOSE_MS for that half-close before
 * it ends the call.
 */
bool rpc_call_draining(struct rpc_call *c);
#define RPC_DRAIN_HALF_CLOSE_MS 10000
const char *rpc_call_method(const struct rpc_call *c);
/* The value of a request metadata key (not NUL-terminated), or NULL. */
const char *rpc_call_metadata(const struct rpc_call *c, const char *key, size_t *len);

/*
 * Messages as bytes, for a router that forwards what it need not decode.
 * recv: as rpc_call_recv, *out is the caller's to destroy. send: the buffer
 * stays the caller's. finish_status: ends the call with a status relayed
 * as it came (code and message of a store behind the router).
 */
int rpc_call_recv_bb(struct rpc_call *c, grpc_byte_buffer **out);
int rpc_call_send_bb(struct rpc_call *c, grpc_byte_buffer *bb);
void rpc_call_finish_status(struct rpc_call *c, grpc_status_code code, const char *msg);

/*
 * Lets calls of method also prove secret instead of the server's: the
 * cluster's TransactionService takes votes from stores that each have their
 * own secret. Before rpc_server_start.
 */
int rpc_server_allow_secret(struct rpc_server *s, const char *method, const char *secret);

/* ---- client ---- */

struct rpc_client;
struct rpc_stream;

int rpc_client_new(struct rpc_client **out, const char *addr, const char *secret);
void rpc_client_free(struct rpc_client *cl);
/* Sends token instead of one made from the secret: for diagnostics and tests. */
void rpc_client_set_token(struct rpc_client *cl, const char *token);
const char *rpc_client_address(const struct rpc_client *cl);
/*
 * Calls wait (up to their deadline) for a connection instead of failing at
 * once when one attempt failed: for a caller whose failure costs a push,
 * such as a store's vote to the router, where a busy router's slow accept
 * is not a reason to refuse the write.
 */
void rpc_client_set_wait_for_ready(struct rpc_client *cl, bool on);

/* timeout_ms 0: no deadline. */
int rpc_stream_open(struct rpc_client *cl, const char *method, int64_t timeout_ms, struct rpc_stream **out);
/* Extra request metadata, e.g. a router's transaction for a store. */
struct rpc_md {
	const char *key;
	const char *value;
};
int rpc_stream_open_md(struct rpc_client *cl, const char *method, int64_t timeout_ms, const struct rpc_md *md,
		       size_t nmd, struct rpc_stream **out);
/* As rpc_call_recv_bb / rpc_call_send_bb, on the client side. */
int rpc_stream_recv_bb(struct rpc_stream *st, grpc_byte_buffer **out);
int rpc_stream_send_bb(struct rpc_stream *st, grpc_byte_buffer *bb);
int rpc_stream_send(struct rpc_stream *st, const ProtobufCMessage *m);
/* Sends bytes as they are: for tools and tests that must send malformed messages. */
int rpc_stream_send_raw(struct rpc_stream *st, const void *data, size_t len);
/* Half-closes: the server sees the end of our stream. */
int rpc_stream_close_send(struct rpc_stream *st);
/* As rpc_call_recv: 1, 0 at the end of the server's stream, or negative. */
int rpc_stream_recv(struct rpc_stream *st, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);
/*
 * Waits for the call's status: 0 for OK, else the Grove error code for it,
 * with the server's message in error_msg().
 */
int rpc_stream_finish(struct rpc_stream *st);
grpc_status_code rpc_stream_status(const struct rpc_stream *st);
/* The most stdin an SSHService request on st may carry: RPC_STDIN_MAX once
 * the server's first answer said it takes that, else RPC_CHUNK_MAX. Any
 * thread, any time. */
size_t rpc_stream_stdin_max(const struct rpc_stream *st);
/* The status message the server sent, after rpc_stream_finish. */
void rpc_stream_details(const struct rpc_stream *st, char *buf, size_t size);
void rpc_stream_cancel(struct rpc_stream *st);
void rpc_stream_free(struct rpc_stream *st);

/* One request, one response. */
int rpc_unary(struct rpc_client *cl, const char *method, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, int64_t timeout_ms);

/* ---- shared by both sides (rpc_common.c) ---- */

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m);
int rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);
/* The message's bytes in one slice (unref it), or an error for a broken buffer. */
int rpc_bb_slice(grpc_byte_buffer *bb, grpc_slice *out);
/* A buffer holding a copy of len bytes at data. */
grpc_byte_buffer *rpc_bb_from(const void *data, size_t len);
/* gRPC's own library start-up, once per process. */
void rpc_global_init(void);

/* ---- mutual TLS on the links between parts (rpc_tls.c) ---- */

/*
 * From now on every listener and channel on a TCP address uses TLS with
 * these PEM files: the CA bundle peers must chain to, this part's
 * certificate chain and its key. A listener refuses a peer without a
 * certificate from the CA; a client checks the server's certificate names
 * the host it dialled (a SAN: DNS name or IP address). The shared secret
 * stays a second factor. unix: addresses stay plain (local, behind the run
 * directory's permissions). The files are checked now (key of the
 * certificate, chain to the CA, valid today); all NULL turns TLS off.
 */
int rpc_tls_configure(const char *ca, const char *cert, const char *key);
/* The keys in each daemon's --help. */
#define RPC_TLS_CONFIG_HELP \
	"  [tls]                         mutual TLS on TCP links with the other parts (docs/tls.md)\n" \
	"    ca = ca.pem                 the CA peers' certificates must come from\n" \
	"    cert = NAME.pem, key = NAME.key   this part's certificate and key (grove tls);\n" \
	"                                SIGHUP reads them again\n"
/* The same from config keys tls.ca, tls.cert, tls.key (all or none). */
struct config;
int rpc_tls_from_config(struct config *cfg);
/* A reload reads the TLS files with the rest of its config: the ones in use
 * (the files as they were read, not the paths) are saved first and put
 * back if the reload is refused. rpc_tls_restore frees s, like
 * rpc_tls_saved_free. */
struct rpc_tls_saved;
struct rpc_tls_saved *rpc_tls_save(void);
void rpc_tls_restore(struct rpc_tls_saved *s);
void rpc_tls_saved_free(struct rpc_tls_saved *s);
/* The same from $GROVE_TLS_CA, $GROVE_TLS_CERT, $GROVE_TLS_KEY (the CLI). */
int rpc_tls_from_env(void);
/* Reads the same files again (rotation): new connections get the new
 * certificate, listeners included; on an error the old ones stay. */
int rpc_tls_reload(void);
bool rpc_tls_on(void);
/* Bumped by every load of other files (or TLS turned off): a client's
 * channel made before carries the old certificate, and is made again. */
unsigned rpc_tls_generation(void);
/* GROVE_TLS_CA=…, _CERT, _KEY for a child that dials too (grove connect
 * under a store's git fetch); nothing when TLS is off. */
struct strvec;
void rpc_tls_env(struct strvec *env);
/* TLS is on and addr is not a unix socket. */
bool rpc_tls_applies(const char *addr);
/* A unix socket's address (unix:PATH, unix-abstract:NAME): never TLS. */
bool rpc_addr_is_unix(const char *addr);
grpc_channel_credentials *rpc_tls_channel_credentials(const char *addr);
struct rpc_tls_listener;
grpc_server_credentials *rpc_tls_server_credentials(const char *addr, struct rpc_tls_listener **l);
void rpc_tls_listener_free(struct rpc_tls_listener *l);

#endif
