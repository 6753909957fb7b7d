/*
 * grove.v1.SSHService on a store: git's wire protocol over a gRPC stream.
 *
 * Two threads per call: this handler's thread reads git's stdout and stderr
 * and sends them, one message at a time (a send completes only when gRPC
 * takes it, which is the flow control towards the client); a second thread
 * receives the client's messages and writes them to git's stdin with
 * blocking writes (the pipe is the flow control towards git). Neither holds
 * more than one chunk (1 MiB in, 512 KiB out), so no pack is ever buffered
 * whole.
 */
#include "store/store.h"
#include "lib/pktline.h"
#include "lib/error.h"
#include "lib/repohead.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/spool.h"
#include "lib/sshstream.h"
#include "lib/strvec.h"
#include "grove/v1/ssh.pb-c.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

struct ssh_session {
	struct rpc_call *call;
	struct proc proc;
	int stdin_fd;             /* owned by the stdin thread */
	uint64_t bytes_in, bytes_out;
	uint64_t messages_in;      /* input messages: how well the sender (gate, connect) fills them */
	uint64_t messages_out;     /* output messages: their size tells how well the pump batches */
	bool client_cancelled;
	int recv_err;
	int reaped;               /* set (atomically) once git has been waited for */
	int send_err;             /* the first failed send: output is dropped after it */
	struct push_head *ph;     /* a push: its ref list, counted against store.maxRefListSize */
	int64_t max_ref_list;
	char recv_msg[256];       /* why the stdin thread ended the call (its errors are its own) */
	int trailing_nice;        /* > 0: a trailing replica's push (TRAILING_METADATA_KEY) */
	struct spool spool;       /* a trailing replica's: between the client and git's stdin */
	bool spooling;            /* the stdin thread writes to the spool, not to stdin_fd */
};

/* Counts a push's bytes into its ref list: false once that is too long (the
 * gate bounds it first; this is the store's own line, for any client). */
static bool ref_list_ok(struct ssh_session *s, const void *data, size_t len)
{
	if (!s->ph)
		return true;
	push_head_feed(s->ph, data, len);
	if (!s->ph->too_big)
		return true;
	snprintf(s->recv_msg, sizeof(s->recv_msg),
		 "the push's list of refs and push options is over %lld bytes (store.maxRefListSize): push the refs in batches",
		 (long long)s->max_ref_list);
	return false;
}

/*
 * Stops git because the client is gone. EOF on its stdin comes first (the
 * caller closed it): receive-pack then finds its pack cut short, fails and
 * removes its quarantine itself, which a signal racing with index-pack
 * cannot promise. A git that does not exit within a second (a hook that
 * hangs, an upload-pack with nothing to read) gets SIGTERM, then SIGKILL.
 */
static void stop_git(struct ssh_session *s)
{
	static const struct { int sig; int wait_ms; } steps[] = { { 0, 1000 }, { SIGTERM, 3000 }, { SIGKILL, 0 } };
	for (size_t k = 0; k < ARRAY_SIZE(steps); k++) {
		if (__atomic_load_n(&s->reaped, __ATOMIC_SEQ_CST))
			return;
		if (steps[k].sig)
			proc_kill(&s->proc, steps[k].sig);
		for (int waited = 0; waited < steps[k].wait_ms; waited += 50) {
			if (__atomic_load_n(&s->reaped, __ATOMIC_SEQ_CST))
				return;
			usleep(50 * 1000);
		}
	}
}

/*
 * A trailing replica's push (the router answers without waiting for it):
 * its git (receive-pack, and index-pack, the checks and hooks it starts:
 * one process group) yields the CPU to the replicas the client waits for,
 * and what the client sends goes through a spool, so that the router's
 * fan-out, which sends every replica the same bytes at the pace of the
 * slowest, does not wait for it (lib/spool.h). Without a spool, no
 * yield: a starved git would slow them all.
 */
static void ssh_trail(struct ssh_session *s, struct store *st)
{
	if (s->stdin_fd < 0)
		return;   /* git took no input already: nothing to spool */
	if (spool_start(&s->spool, st->tmp_dir, s->stdin_fd, (uint64_t)st->trailing_spool)) {
		log_warn("ssh.trailing_failed", "error=%s", error_msg());
		return;
	}
	s->stdin_fd = -1;
	s->spooling = true;
	if (setpriority(PRIO_PGRP, (id_t)s->proc.pid, s->trailing_nice))
		log_warn("ssh.trailing_failed", "pid=%d error=%s", (int)s->proc.pid, strerror(errno));
	else
		log_info("ssh.trailing", "pid=%d nice=%d spool_max=%lld", (int)s->proc.pid, s->trailing_nice,
			 (long long)st->trailing_spool);
}

/* Passes len bytes of the client's on to git: through the spool while there
 * is one, else into its stdin. A spool that cannot take them (a full disk)
 * is caught up, then left. */
static void ssh_feed(struct ssh_session *s, const void *data, size_t len)
{
	if (s->spooling) {
		int ret = spool_write(&s->spool, data, len);
		if (!ret)
			return;
		s->spooling = false;
		if (ret == GROVE_ECANCELLED)
			return;   /* git exited: as EPIPE below */
		log_warn("ssh.spool_failed", "error=%s", error_msg());
		s->stdin_fd = spool_detach(&s->spool);
	}
	/* git may have exited (EPIPE): keep draining the client. */
	if (s->stdin_fd >= 0 && write_all(s->stdin_fd, data, len)) {
		close(s->stdin_fd);
		s->stdin_fd = -1;
	}
}

/* No more input for git: it reads to the end of what it was given (cut:
 * at once). */
static void ssh_feed_end(struct ssh_session *s, bool cut)
{
	if (s->spooling)
		(cut ? spool_stop : spool_end)(&s->spool);
	s->spooling = false;
	if (s->stdin_fd >= 0)
		close(s->stdin_fd);
	s->stdin_fd = -1;
}

/* The stdin thread: client → git. Stops git if the client goes away, so
 * that an interrupted push never reaches its ref update. */
static void *stdin_main(void *arg)
{
	struct ssh_session *s = arg;
	for (;;) {
		Grove__V1__SSHRequest *req = NULL;
		int r = rpc_call_recv(s->call, &grove__v1__sshrequest__descriptor, (ProtobufCMessage **)&req);
		if (r < 0) {
			s->recv_err = r;
			s->client_cancelled = (r == GROVE_ECANCELLED);
			ssh_feed_end(s, true);
			stop_git(s);
			break;
		}
		if (r == 0)
			break;
		if (req->stdin.len > RPC_STDIN_MAX) {
			s->recv_err = error_set(GROVE_ETOOBIG, "stdin chunk of %zu bytes exceeds %d", req->stdin.len, RPC_STDIN_MAX);
			proc_kill(&s->proc, SIGKILL);
			FREE_MSG(req);
			break;
		}
		if (req->stdin.len && !ref_list_ok(s, req->stdin.data, req->stdin.len)) {
			s->recv_err = GROVE_ETOOBIG;
			proc_kill(&s->proc, SIGKILL);
			FREE_MSG(req);
			break;
		}
		s->messages_in++;
		if (req->stdin.len) {
			s->bytes_in += req->stdin.len;
			ssh_feed(s, req->stdin.data, req->stdin.len);
		}
		FREE_MSG(req);
	}
	ssh_feed_end(s, false);
	return NULL;
}

/* Room for an SSHResponse's key and length in front of a chunk of output. */
#define RESPONSE_HEADROOM SSH_RESPONSE_HEADER_MAX
/*
 * The most of git's output one message carries: as much as git wrote since
 * the last send went, so on an idle machine messages stay small (latency),
 * and under load, when sends wait, fewer and larger messages cost the store
 * and the gate less CPU per byte. Well under RPC_DEFAULT_MAX_MESSAGE.
 */
#define OUTPUT_CHUNK_MAX (512 * 1024)

/*
 * Sends a chunk of git's output as an SSHResponse with stdout (field 1) or
 * stderr (field 2) set, encoded in place: the key and length are written in
 * front of the bytes read from git, and gRPC takes the buffer as it is, so a
 * clone's pack is not copied once more into a packed message.
 */
static int on_output(void *ctx, bool is_err, char *buf, size_t headroom, size_t len)
{
	struct ssh_session *s = ctx;
	uint8_t hdr[SSH_RESPONSE_HEADER_MAX];

	/* Once the client is gone, git's last words go nowhere; the stdin
	 * thread stops git, and this thread reads until git's pipes close. */
	if (s->send_err) {
		free(buf);
		return 0;
	}
	size_t n = ssh_response_header(hdr, is_err, len);
	char *start = buf + headroom - n;
	memcpy(start, hdr, n);
	grpc_slice slice = grpc_slice_new_with_user_data(start, n + len, free, buf);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	s->bytes_out += len;
	s->messages_out++;
	s->send_err = rpc_call_send_bb(s->call, bb);
	grpc_byte_buffer_destroy(bb);
	return 0;
}

static int check_protocol(const char *p)
{
	if (!p || !*p || !strcmp(p, "version=0") || !strcmp(p, "version=1") || !strcmp(p, "version=2"))
		return 0;
	return error_set(GROVE_EINVAL, "git_protocol must be empty, \"version=1\" or \"version=2\", not \"%.64s\"", p);
}

/* What is wrong with a request before anything runs: the repository, the
 * protocol, the disk for a push, the first chunk's size. */
static int ssh_check(struct store *st, const Grove__V1__SSHRequest *first, bool push, struct strbuf *path)
{
	int ret = store_repo_path(st, first->repository, true, path);
	if (!ret)
		ret = check_protocol(first->git_protocol);
	if (!ret && push)
		ret = store_check_space(st);
	if (!ret && first->stdin.len > RPC_STDIN_MAX)
		ret = error_set(GROVE_ETOOBIG, "stdin chunk of %zu bytes exceeds %d", first->stdin.len, RPC_STDIN_MAX);
	return ret;
}

/* git's command line for service in the repository at path (advertise:
 * only the refs, for smart HTTP's info/refs). */
static void ssh_git_argv(struct store *st, const Grove__V1__SSHRequest *first, const char *service, const char *path,
			 bool advertise, bool hooks, bool secondary, struct strvec *argv)
{
	bool push = !strcmp(service, "receive-pack");
	const struct gitcmd_opts *git = &st->git_nohooks;
	/* Each hook is a process start and a round trip: a push with nothing
	 * to check, deploy or vote on runs none. A secondary's git checks no
	 * object for a SHA-1 collision attack (store.replicaGit): it gets the
	 * primary's bytes and, as for fsck below, the primary checks them
	 * before any replica moves a ref. */
	if (push && hooks)
		git = secondary ? &st->git_push_secondary : &st->git_push;
	gitcmd_init(argv, git, NULL);
	if (push) {
		/* Objects are checked as they arrive: a pack with a malformed tree,
		 * a .gitmodules attack or a bad name never lands on the disk. A
		 * secondary of a voted write leaves that to the primary: it gets
		 * the same bytes, and no replica moves a ref before the primary
		 * voted, which it does only once its own checks passed. */
		strvec_push(argv, "-c");
		strvec_pushf(argv, "receive.fsckObjects=%s", st->fsck_objects && !secondary ? "true" : "false");
		strvec_push(argv, "-c");
		strvec_push(argv, "receive.advertisePushOptions=true");
		/* gc.auto=0 does not stop receive-pack from starting `gc --auto`. */
		strvec_push(argv, "-c");
		strvec_push(argv, "receive.autogc=false");
		if (first->max_input_size) {
			strvec_push(argv, "-c");
			strvec_pushf(argv, "receive.maxInputSize=%" PRIu64, (uint64_t)first->max_input_size);
		}
	} else if (!strcmp(service, "upload-pack")) {
		store_pack_cache_argv(st, argv);
	}
	strvec_push(argv, service);
	if (first->stateless_rpc || advertise)
		strvec_push(argv, "--stateless-rpc");
	if (advertise)
		strvec_push(argv, "--advertise-refs");
	strvec_push(argv, path);
}

/* SSHAdvertiseRefs: the service whose refs are asked for. */
static int ssh_advertised_service(const Grove__V1__SSHRequest *first, const char **service)
{
	if (first->service && (!strcmp(first->service, "upload-pack") || !strcmp(first->service, "receive-pack"))) {
		*service = first->service;
		return 0;
	}
	return error_set(GROVE_EINVAL, "service must be \"upload-pack\" or \"receive-pack\", not \"%.64s\"",
			 first->service ? first->service : "");
}

/* Starts git with its output non-blocking, and gives it the first message's stdin. */
static int ssh_start_git(struct ssh_session *s, struct strvec *argv, char **env, const Grove__V1__SSHRequest *first)
{
	int ret;
	if (first->stdin.len && !ref_list_ok(s, first->stdin.data, first->stdin.len))
		return error_set(GROVE_ETOOBIG, "%s", s->recv_msg);
	ret = proc_start(&s->proc, strvec_argv(argv), env, NULL, PROC_STDIN | PROC_STDOUT | PROC_STDERR | PROC_NEWPGRP);
	if (ret)
		return ret;
	fcntl(s->proc.out, F_SETFL, fcntl(s->proc.out, F_GETFL) | O_NONBLOCK);
	fcntl(s->proc.err, F_SETFL, fcntl(s->proc.err, F_GETFL) | O_NONBLOCK);
	/* A larger pipe: fewer wake-ups per MiB of pack. Best effort. */
	fcntl(s->proc.out, F_SETPIPE_SZ, 1 << 20);
	s->stdin_fd = s->proc.in;
	s->proc.in = -1;
	if (first->stdin.len) {
		s->bytes_in += first->stdin.len;
		if (write_all(s->stdin_fd, first->stdin.data, first->stdin.len)) {
			close(s->stdin_fd);
			s->stdin_fd = -1;
		}
	}
	return 0;
}

/*
 * What a secondary's git (store.replicaGit) is told, in its environment:
 * where to ask for the primary's index of the pack (packindex.c), and from
 * how many refs a push goes to packed-refs at once (docs/cluster.md,
 * "secondaries write many refs at once").
 */
static char **replica_git_env(const struct store *st, const Grove__V1__HookPayload *payload, char **env)
{
	char kv[4200];
	if (st->pack_index_hook && payload->transaction_address && *payload->transaction_address) {
		snprintf(kv, sizeof(kv), "GROVE_PACK_INDEX_HOOK=%s", st->pack_index_hook);
		env = proc_env_push(env, kv);
	}
	if (st->packed_ref_updates) {
		snprintf(kv, sizeof(kv), "GROVE_PACKED_REFS=%d", st->packed_ref_updates);
		env = proc_env_push(env, kv);
	}
	return env;
}

/* After a push: a HEAD naming no branch moves to one that exists (repohead.h),
 * before the router hears the push is done, so every replica has moved. */
static void ssh_settle_head(const char *path, const Grove__V1__SSHRequest *first)
{
	char chosen[1024];
	int moved;
	if (repo_head_settle(path, chosen, sizeof(chosen), &moved))
		log_warn("repo.head_failed", "repo=%s error=%s", first->repository->relative_path, error_msg());
	else if (moved)
		log_info("repo.head_set", "repo=%s head=%s", first->repository->relative_path, chosen);
}

/* After a voted push: the hash of its refs the router compares with the
 * primary's (pushrefs.c; empty if they cannot be read: the replica then
 * counts as not agreeing). */
static void ssh_checksum(const char *path, const Grove__V1__SSHRequest *first, const Grove__V1__HookPayload *p,
			 char out[65])
{
	if (store_push_refs_checksum(p->transaction_id, p->node, path, out)) {
		log_warn("repo.checksum_failed", "repo=%s error=%s", first->repository->relative_path, error_msg());
		out[0] = '\0';
	}
}

/* After git exited with code (ret: how the pump went): the call's outcome,
 * and the exit status sent if all went well. */
static int ssh_finish(struct ssh_session *s, int ret, int code, char *checksum)
{
	Grove__V1__SSHResponse done = GROVE__V1__SSHRESPONSE__INIT;
	Grove__V1__ExitStatus status = GROVE__V1__EXIT_STATUS__INIT;

	if (!ret)
		ret = s->send_err;
	/* A cancel can look like a half-close to the receiving thread; by now
	 * gRPC has said which it was. */
	if (rpc_call_cancelled(s->call) || s->send_err == GROVE_ECANCELLED)
		s->client_cancelled = true;
	if (!ret && s->recv_err && !s->client_cancelled)
		ret = s->recv_msg[0] ? error_set(s->recv_err, "%s", s->recv_msg) : s->recv_err;
	if (!ret && s->client_cancelled)
		ret = error_set(GROVE_ECANCELLED, "the client cancelled");
	if (!ret) {
		status.value = code;
		done.exit_status = &status;
		done.refs_checksum = checksum;
		ret = rpc_call_send(s->call, &done.base);
	}
	return ret;
}

/* The stdin thread's end (the client half-closed, or went), up to
 * RPC_DRAIN_HALF_CLOSE_MS (rpc.h: why, while the store drains). True if
 * it was joined. */
static bool await_half_close(pthread_t tid)
{
	struct timespec dl;
	deadline_after_ms(&dl, CLOCK_REALTIME, RPC_DRAIN_HALF_CLOSE_MS);
	return pthread_timedjoin_np(tid, NULL, &dl) == 0;
}

static void ssh_serve(struct rpc_call *call, struct store *st, const char *service)
{
	Grove__V1__SSHRequest *first = NULL;
	struct ssh_session s = { .call = call, .proc = { .pid = -1 }, .stdin_fd = -1 };
	struct strbuf path = STRBUF_INIT;
	struct strvec argv = STRVEC_INIT;
	char **env = NULL;
	pthread_t tid;
	bool thread_started = false;
	bool push = !strcmp(service, "receive-pack");
	bool advertise = !strcmp(service, "advertise");
	struct push_head ph;
	char checksum[65] = "", *ph_buf = NULL;
	int64_t start = now_ms();
	int ret, code = -1;

	ret = rpc_call_recv_one(call, &grove__v1__sshrequest__descriptor, (ProtobufCMessage **)&first);
	if (!ret && advertise)
		ret = ssh_advertised_service(first, &service);
	if (!ret)
		ret = ssh_check(st, first, push, &path);
	if (ret)
		goto out;

	bool hooks = false;
	Grove__V1__HookPayload payload = GROVE__V1__HOOK_PAYLOAD__INIT;
	struct txn_info txn;
	if (push && (ret = store_write_payload(call, first->hook_payload, &payload, &txn)))
		goto out;
	size_t mdlen;
	if (push && rpc_call_metadata(call, TRAILING_METADATA_KEY, &mdlen))
		s.trailing_nice = st->trailing_nice;
	env = store_hook_env(st, push ? &payload : NULL, first->repository, first->git_protocol, &hooks);
	if (!strcmp(service, "upload-pack"))
		env = store_pack_cache_env(st, env);
	if (push && hooks && payload.secondary)
		env = replica_git_env(st, &payload, env);
	ssh_git_argv(st, first, service, path.buf, advertise, hooks, push && payload.secondary, &argv);
	if (push) {
		ph_buf = xmalloc(PKT_MAX);
		push_head_init(&ph, ph_buf);
		ph.max_head = (uint64_t)st->max_ref_list;
		s.ph = &ph;
		s.max_ref_list = st->max_ref_list;
	}
	if ((ret = ssh_start_git(&s, &argv, env, first)))
		goto out;
	if (s.trailing_nice > 0)
		ssh_trail(&s, st);
	if (pthread_create(&tid, NULL, stdin_main, &s)) {
		ret = error_set(GROVE_EINTERNAL, "cannot start a thread");
		proc_kill(&s.proc, SIGKILL);
		proc_wait(&s.proc);
		goto out;
	}
	thread_started = true;

	ret = proc_pump_output_bufs(&s.proc, on_output, &s, OUTPUT_CHUNK_MAX, RESPONSE_HEADROOM);
	if (ret)
		proc_kill(&s.proc, SIGKILL);
	code = proc_wait(&s.proc);
	/* git is gone: the stdin thread has nothing to stop (stop_git). */
	__atomic_store_n(&s.reaped, 1, __ATOMIC_SEQ_CST);
	if (push && !ret && code == 0)
		ssh_settle_head(path.buf, first);
	if (push && !ret && code == 0 && payload.transaction_address && *payload.transaction_address)
		ssh_checksum(path.buf, first, &payload, checksum);
	if (push)
		store_push_refs_drop(payload.transaction_id, payload.node);
	/* Only a call about to end well: after a failure, git waits for the
	 * status before it closes anything. */
	if (!ret && !s.send_err && !s.recv_err && rpc_call_draining(call) && await_half_close(tid))
		thread_started = false;
	ret = ssh_finish(&s, ret, code, checksum);
out:
	rpc_call_done(call, ret);
	/* Finishing the call ends a receive still pending, so the thread returns. */
	if (thread_started)
		pthread_join(tid, NULL);
	/* git is gone: the feeder has nothing more to pass on. */
	if (s.spool.started) {
		spool_stop(&s.spool);
		spool_finish(&s.spool);
	}
	if (first && first->repository)
		log_info(push ? "ssh.push" : "ssh.fetch", "service=%s repo=%s exit=%d bytes_in=%llu bytes_out=%llu messages_in=%llu "
			 "messages_out=%llu ms=%lld cancelled=%b",
			 service, first->repository->relative_path ? first->repository->relative_path : "",
			 code, (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_out,
			 (unsigned long long)s.messages_in, (unsigned long long)s.messages_out, (long long)(now_ms() - start),
			 s.client_cancelled);
	free(ph_buf);
	proc_env_free(env);
	strvec_clear(&argv);
	strbuf_release(&path);
	FREE_MSG(first);
}

static void ssh_receive_pack(struct rpc_call *call, void *data)
{
	ssh_serve(call, data, "receive-pack");
}

static void ssh_upload_pack(struct rpc_call *call, void *data)
{
	ssh_serve(call, data, "upload-pack");
}

static void ssh_upload_archive(struct rpc_call *call, void *data)
{
	ssh_serve(call, data, "upload-archive");
}

static void ssh_advertise_refs(struct rpc_call *call, void *data)
{
	ssh_serve(call, data, "advertise");
}

void store_register_ssh_service(struct rpc_server *srv, struct store *st)
{
	rpc_server_handle(srv, "/grove.v1.SSHService/SSHReceivePack", ssh_receive_pack, st);
	rpc_server_handle(srv, "/grove.v1.SSHService/SSHUploadPack", ssh_upload_pack, st);
	rpc_server_handle(srv, "/grove.v1.SSHService/SSHUploadArchive", ssh_upload_archive, st);
	rpc_server_handle(srv, "/grove.v1.SSHService/SSHAdvertiseRefs", ssh_advertise_refs, st);
}
