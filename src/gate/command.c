/*
 * One git command, the same behind every door (door.h): the command line
 * and the app it names, the access, the push policy (rate, lock, slots,
 * sizes), the repository where the app's route says, the backend, and
 * afterwards what git's own words did not say, the log line and the
 * metrics.
 */
#include "gate/door.h"
#include "gate/authz.h"
#include "gate/backend.h"
#include "gate/gate.h"
#include "gate/metrics.h"
#include "gate/opslots.h"
#include "gate/pushlock.h"
#include "gate/ratelimit.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/gitcmd.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/pktline.h"
#include "lib/proc.h"
#include "lib/repohead.h"
#include "lib/rpc.h"
#include "lib/sshcmd.h"
#include "grove/v1/repository.pb-c.h"

#include <sys/stat.h>

/* Makes sure the app's repository exists where its route says. */
static int ensure_repo(struct door *d, const struct app *app, const char *rel, bool create)
{
	if (app->route == ROUTE_LEGACY) {
		char dir[4096];
		struct stat sb;
		snprintf(dir, sizeof(dir), "%s/%s", d->cfg->legacy_dir, rel);
		if (!stat(dir, &sb))
			return 0;
		if (!create)
			return error_set(GROVE_ENOTFOUND, "app %s has no code yet: push to it first", app->name);
		struct strvec argv = STRVEC_INIT;
		gitcmd_init(&argv, NULL, NULL);
		strvec_push(&argv, "init");
		strvec_push(&argv, "--bare");
		strvec_push(&argv, "--quiet");
		strvec_push(&argv, "--template=");
		strvec_pushf(&argv, "--initial-branch=%s", app->deploy_branch);
		strvec_push(&argv, "--");
		strvec_push(&argv, dir);
		int r = proc_run(strvec_argv(&argv), NULL, NULL, NULL, 0, NULL, NULL);
		strvec_clear(&argv);
		return r ? error_set(GROVE_EIO, "cannot create the repository of %s", app->name) : 0;
	}
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	Grove__V1__RepositoryExistsRequest ereq = GROVE__V1__REPOSITORY_EXISTS_REQUEST__INIT;
	Grove__V1__RepositoryExistsResponse *eresp = NULL;
	struct rpc_client *cl = NULL;
	int ret;
	repo.storage_name = d->cfg->cluster_storage;
	repo.relative_path = (char *)rel;
	ereq.repository = &repo;
	ret = rpc_client_new(&cl, d->cfg->cluster_address, d->cfg->secret);
	if (!ret)
		ret = rpc_unary(cl, "/grove.v1.RepositoryService/RepositoryExists", &ereq.base,
				&grove__v1__repository_exists_response__descriptor, (ProtobufCMessage **)&eresp, 10000);
	if (!ret && !eresp->exists) {
		if (!create) {
			ret = error_set(GROVE_ENOTFOUND, "app %s has no code yet: push to it first", app->name);
		} else {
			Grove__V1__CreateRepositoryRequest creq = GROVE__V1__CREATE_REPOSITORY_REQUEST__INIT;
			Grove__V1__CreateRepositoryResponse *cresp = NULL;
			creq.repository = &repo;
			creq.default_branch = app->deploy_branch;
			ret = rpc_unary(cl, "/grove.v1.RepositoryService/CreateRepository", &creq.base,
					&grove__v1__create_repository_response__descriptor, (ProtobufCMessage **)&cresp, 10000);
			if (ret == GROVE_EEXISTS)
				ret = 0;
			if (cresp)
				protobuf_c_message_free_unpacked(&cresp->base, NULL);
		}
	} else if (ret) {
		ret = error_wrap(GROVE_EUNAVAIL, "the repository storage is unavailable");
	}
	if (eresp)
		protobuf_c_message_free_unpacked(&eresp->base, NULL);
	rpc_client_free(cl);
	return ret;
}

/*
 * One of max slots of key in dir (opslots.h), waited for up to
 * gate.opsQueueWait seconds (waiting said once to the user), held in *slot
 * for the session's life. Returns 0, or -1 when none came free (or on
 * error: logged).
 */
static int take_slot(struct door *d, const char *dir, const char *key, int max, const char *waiting, int *slot)
{
	int64_t start = now_ms(), deadline = start + (int64_t)d->cfg->ops_queue_wait * 1000;
	bool told = false;

	for (;;) {
		int fd = op_slot_try(dir, key, max);
		if (fd >= 0 || fd == -1 || now_ms() >= deadline || !d->ops->connected(d)) {
			if (told && gate_metrics)
				metrics_observe(&gate_metrics->queue_seconds, now_ms() - start);
			if (fd == -1)
				log_warn("gate.op_slot_failed", "key=%s error=%s", key, error_msg());
			*slot = fd >= 0 ? fd : -1;
			return fd >= 0 ? 0 : -1;
		}
		if (!told) {
			door_say(d, "%s", waiting);
			told = true;
		}
		usleep(100 * 1000);
	}
}

/* One of the app's gate.maxOpsPerApp slots (Gitaly's concurrency limiter). */
static int take_op_slot(struct door *d, const char *name)
{
	char dir[4096], waiting[256];
	snprintf(dir, sizeof(dir), "%s/locks", d->cfg->data_dir);
	snprintf(waiting, sizeof(waiting), "%s is busy (%d git operations running): waiting up to %ds…\n", name,
		 d->cfg->max_ops_per_app, d->cfg->ops_queue_wait);
	return take_slot(d, dir, name, d->cfg->max_ops_per_app, waiting, &d->op_slot);
}

/*
 * One of the user's gate.maxOpsPerUser slots: one tenant's CI running
 * clones by the hundred holds its own share of the gate, not all of it.
 * The file is named by a hash of the user's name (a platform's names, with
 * auth.url, may be anything).
 */
static int take_user_slot(struct door *d)
{
	char dir[4096], key[65], waiting[256];
	auth_sha256_hex(d->user.name, strlen(d->user.name), key);
	snprintf(dir, sizeof(dir), "%s/locks/users", d->cfg->data_dir);
	snprintf(waiting, sizeof(waiting), "%s has %d git operations running, the most one user may: waiting up to %ds…\n",
		 d->user.name, d->cfg->max_ops_per_user, d->cfg->ops_queue_wait);
	return take_slot(d, dir, key, d->cfg->max_ops_per_user, waiting, &d->user_slot);
}


/*
 * A push holds its app's push lock (shared) for the whole session, so that a
 * migration (exclusive) starts only after pushes already running are done.
 * The app is read again once the lock is held: a migration that finished in
 * the meantime may have moved it to the other route.
 */
static int take_push_lock(struct door *d, struct app *app, const char *name)
{
	char locks[4096];
	int64_t deadline = now_ms() + (int64_t)d->cfg->lock_wait * 1000;
	bool told = false;
	snprintf(locks, sizeof(locks), "%s/locks", d->cfg->data_dir);
	for (;;) {
		int fd = app->locked ? -2 : push_lock_try_shared(locks, name);
		if (fd >= 0) {
			struct app fresh = { 0 };
			if (!door_db(d) || db_app_get(d->db, name, &fresh)) {
				close(fd);
				return -1;
			}
			if (!fresh.locked) {
				app_release(app);
				*app = fresh;
				d->push_lock = fd;
				return 0;
			}
			app_release(&fresh);
			close(fd);
			app->locked = true;
		} else if (fd == -1) {
			return -1;
		}
		if (!told) {
			door_say(d, "%s is locked (maintenance or migration): waiting up to %ds…\n", name, d->cfg->lock_wait);
			told = true;
		}
		if (now_ms() >= deadline || !d->ops->connected(d))
			return -1;
		usleep(250 * 1000);
		struct app fresh = { 0 };
		if (!door_db(d) || db_app_get(d->db, name, &fresh))
			return -1;
		app->locked = fresh.locked;
		app_release(&fresh);
	}
}


/* One command's state, shared by the steps of run_command. */
struct command {
	struct sshcmd cmd;
	struct app app;
	char name[GATE_APP_NAME_MAX + 1];
	char rel[GATE_APP_NAME_MAX + 8];
	char corr[33];
	enum access need;
	uint64_t max_push;        /* a push's size limit in bytes; 0: none */
	struct push_head ph;
	char *ph_buf;
	struct backend *b;
	char **env;
	const char *result;       /* "ok", "failed" or "refused" */
	int code;
	int64_t start;
};

/* The command line and the app it names. Returns 0, or ends the channel with why. */
static int command_parse(struct door *d, struct command *c)
{
	if (sshcmd_parse(d->command, &c->cmd)) {
		log_info("gate.refused", "user=%s what=%s reason=%s", d->user.name, "command", error_msg());
		door_finish(d, 1, "ERROR: Grove only runs git-upload-pack, git-receive-pack and git-upload-archive (%s).\n",
		       error_msg());
		return -1;
	}
	if (gate_app_from_path(c->cmd.path, c->name)) {
		door_finish(d, 1, "ERROR: %s.\n", error_msg());
		log_info("gate.refused", "user=%s what=%s reason=%s", d->user.name, "app name", error_msg());
		return -1;
	}
	return 0;
}

/* With auth.url: the platform's answer for this key, command and app, in
 * *have. Returns 0, or ends the channel with why. */
static int command_authorize_external(struct door *d, struct command *c, enum access *have)
{
	struct authz_answer za;

	if (authz_check(gate_authz, d->fingerprint, git_service_name(c->cmd.service), c->name, &za)) {
		door_finish(d, 1, "ERROR: Grove cannot check your access to %s right now: the authorization service is "
			     "unavailable. Try again in a minute.\n", c->name);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s reason=%s", d->user.name,
			 d->fingerprint, c->name, "authz unavailable", error_msg());
		return -1;
	}
	if (za.allowed) {
		/* The answer names who this key is, for logs, hooks and deploys. */
		free(d->user.name);
		d->user.name = xstrdup(za.user);
		d->authz_pending = false;
	}
	*have = za.allowed && door_db(d) && !db_app_get(d->db, c->name, &c->app) ? c->need : ACCESS_NONE;
	if (!za.allowed && za.message[0]) {
		door_finish(d, 1, "ERROR: %s\n", za.message);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s", d->user.name, d->fingerprint, c->name,
			 "authz");
		return -1;
	}
	return 0;
}

/* Whether the user may run the command on the app, which is read into
 * c->app. Returns 0, or ends the channel with why. */
static int command_authorize(struct door *d, struct command *c)
{
	enum access have = ACCESS_NONE;

	c->need = c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? ACCESS_WRITE : ACCESS_READ;
	if (gate_authz) {
		if (command_authorize_external(d, c, &have))
			return -1;
	} else {
		have = !door_db(d) || db_app_get(d->db, c->name, &c->app) ? ACCESS_NONE
								     : db_access_get(d->db, c->name, &d->user);
	}
	if (d->read_only && have == ACCESS_WRITE && c->need == ACCESS_WRITE) {
		door_finish(d, 1, "ERROR: This token is read-only: it can fetch %s but not push to it. Push with a token "
			    "made without --read-only, or with your SSH key.\n", c->name);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s", d->user.name, d->fingerprint, c->name,
			 "read-only token");
		metrics_refusal(RR_ACCESS);
		return -1;
	}
	if (have < c->need) {
		/* Unknown app and no access look the same: nothing tells a
		 * stranger whether a private app exists. */
		if (have == ACCESS_READ)
			door_finish(d, 1, "ERROR: You can fetch %s but not push to it: ask its owner for write access.\n",
			       c->name);
		else
			door_finish(d, 1, "ERROR: Repository not found: %s. Check the name, or ask its owner for access.\n",
			       c->name);
		log_info("gate.refused", "user=%s fingerprint=%s app=%s what=%s", d->user.name, d->fingerprint, c->name,
			 "access");
		if (c->need == ACCESS_WRITE)
			metrics_refusal(RR_ACCESS);
		return -1;
	}
	return 0;
}

/* The push's size limit is git's own (receive.maxInputSize): a larger
 * pack is refused as it arrives, nothing of it is kept, and the pusher
 * sees git's "[remote rejected] (unpacker error)". */
static void command_push_limit(struct door *d, struct command *c)
{
	if (c->cmd.service != GIT_SERVICE_RECEIVE_PACK)
		return;
	c->max_push = (uint64_t)(c->app.max_push_mb ? c->app.max_push_mb : d->cfg->max_push_mb) << 20;
	c->ph_buf = xmalloc(PKT_MAX);
	push_head_init(&c->ph, c->ph_buf);
	c->ph.max_head = (uint64_t)d->cfg->max_ref_list;
	d->push_head = &c->ph;
}

/* The git service behind the command: a local git on the legacy route, the
 * cluster's SSHService on the other. Returns 0, or an error. */
static int command_start_backend(struct door *d, struct command *c)
{
	Grove__V1__HookPayload payload = GROVE__V1__HOOK_PAYLOAD__INIT;
	payload.app = c->name;
	payload.user = d->user.name;
	payload.key_fingerprint = d->fingerprint;
	payload.correlation_id = c->corr;
	payload.hook_address = d->cfg->hook_listen;
	const char *service = c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? "receive-pack" :
			      c->cmd.service == GIT_SERVICE_UPLOAD_ARCHIVE ? "upload-archive" : "upload-pack";
	if (c->app.route == ROUTE_LEGACY) {
		Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
		char dir[4096];
		repo.storage_name = "legacy";
		repo.relative_path = c->rel;
		snprintf(dir, sizeof(dir), "%s/%s", d->cfg->legacy_dir, c->rel);
		c->env = hook_env_build(&payload, &repo, d->cfg->hook_listen, NULL, d->cfg->secret,
					"pre-receive,post-receive,", d->git_protocol);
		return backend_start_local(&c->b, service, dir, c->need == ACCESS_WRITE ? d->cfg->hooks_dir : NULL,
					   gitcmd_fsck_ignore_ids(&d->cfg->fsck_ignore), c->env, c->max_push,
					   (enum backend_mode)d->mode);
	}
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	Grove__V1__SSHRequest first = GROVE__V1__SSHREQUEST__INIT;
	char method[64];
	repo.storage_name = d->cfg->cluster_storage;
	repo.relative_path = c->rel;
	first.repository = &repo;
	first.git_protocol = d->git_protocol;
	if (c->need == ACCESS_WRITE)
		first.hook_payload = &payload;
	first.max_input_size = c->max_push;
	first.stateless_rpc = d->mode == BACKEND_STATELESS;
	if (d->mode == BACKEND_ADVERTISE)
		first.service = (char *)service;
	snprintf(method, sizeof(method), "/grove.v1.SSHService/SSH%s",
		 d->mode == BACKEND_ADVERTISE ? "AdvertiseRefs" :
		 c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? "ReceivePack" :
		 c->cmd.service == GIT_SERVICE_UPLOAD_ARCHIVE ? "UploadArchive" : "UploadPack");
	return backend_start_grpc(&c->b, d->cfg->cluster_address, d->cfg->secret, method, &first, d->user.name);
}

/* git's own words ("pack exceeds maximum allowed size") do not say whose
 * limit it is or what to do. receive-pack exits 0 either way, so the
 * sign is the size of the pack: git refused it once it had read more
 * than max_push of it, all of which came through here. */
static void command_push_too_large(struct door *d, struct command *c)
{
	if (c->max_push && c->ph.done && d->bytes_in - c->ph.hdr_len > c->max_push && !d->dead) {
		door_say(d, "ERROR: This push sent %.1f MiB; %s accepts at most %llu MiB: git refused the pack and nothing "
		    "of it was kept. Remove large files from the history (or keep them out of git), or ask the "
		    "platform to raise the app's max_push_mb.\n",
		    (double)d->bytes_in / (1 << 20), c->name, (unsigned long long)(c->max_push >> 20));
		log_info("gate.push_too_large", "user=%s app=%s bytes_in=%llu max_push_mb=%llu", d->user.name, c->name,
			 (unsigned long long)d->bytes_in, (unsigned long long)(c->max_push >> 20));
		c->result = "refused";
		metrics_refusal(RR_TOO_LARGE);
	}
}

/* A push whose ref list (and push options) outgrew gate.maxRefListSize:
 * ended before git took it whole; say what to do instead. */
static void command_ref_list_too_big(struct door *d, struct command *c)
{
	if (!d->head_refused || d->dead)
		return;
	door_say(d, "ERROR: This push updates more refs at once than %s takes (its list of refs is over %lld KiB): nothing "
	       "was pushed. Push them in batches, for example git push origin 'refs/tags/v1.*'.\n",
	    c->name, (long long)d->cfg->max_ref_list / 1024);
	log_info("gate.push_ref_list_too_big", "user=%s app=%s max=%lld", d->user.name, c->name,
		 (long long)d->cfg->max_ref_list);
	c->result = "refused";
	metrics_refusal(RR_TOO_LARGE);
}

/*
 * A command that could not start: "no code yet" is said as it is; anything
 * else (a store's address, a path, gRPC's words) goes to the log, and the
 * user gets what happened in their words with the correlation id.
 */
static void command_fail(struct door *d, const struct command *c, int err, const char *what)
{
	if (err == GROVE_ENOTFOUND) {
		door_finish(d, 1, "ERROR: %s.\n", error_msg());
		return;
	}
	log_warn("gate.command_failed", "user=%s app=%s error=%s", d->user.name, c->name, error_msg());
	d->refusal = DR_UNAVAILABLE;
	door_finish(d, 1, "ERROR: %s: %s. Try again in a minute; if it keeps failing, give the platform's operators this id: "
		     "%s.\n", c->name, what, c->corr);
}

/* git's own words for a ref that another push moved meanwhile ("cannot lock
 * ref …: is at X but expected Y") are true but cryptic: say what it means. */
static void command_lost_race(struct door *d, struct command *c)
{
	if (!d->lost_race || d->dead)
		return;
	door_say(d, "ERROR: Another push to %s was in progress and updated a branch this push updates first: that branch "
	       "was not changed by this push. Fetch, merge or rebase, and push again.\n", c->name);
	metrics_refusal(RR_LOST_RACE);
	log_info("gate.push_lost_race", "user=%s app=%s", d->user.name, c->name);
}

/* After a push on the legacy route: a HEAD naming no branch moves to one
 * that exists (lib/repohead.h), as a store does on the cluster route. */
static void command_settle_head(struct door *d, const struct command *c)
{
	char dir[4096], chosen[1024];
	int moved;
	snprintf(dir, sizeof(dir), "%s/%s", d->cfg->legacy_dir, c->rel);
	if (repo_head_settle(dir, chosen, sizeof(chosen), &moved))
		log_warn("gate.head_failed", "app=%s error=%s", c->name, error_msg());
	else if (moved)
		log_info("gate.head_set", "app=%s head=%s", c->name, chosen);
}

/* A push over its user's gate.pushesPerMinute: refused with when to come back. */
static bool command_rate_limited(struct door *d, const struct command *c)
{
	int wait_s = ratelimit_take(gate_ratelimit, d->user.name, d->cfg->pushes_per_minute, now_ms());
	if (!wait_s)
		return false;
	d->refusal = DR_RATE;
	d->retry_after = wait_s;
	door_finish(d, 1, "ERROR: %s has pushed %d times in the last minute, the most this platform takes: push again in %d s.\n",
	       d->user.name, d->cfg->pushes_per_minute, wait_s);
	log_info("gate.refused", "user=%s app=%s what=%s wait_s=%d", d->user.name, c->name, "rate", wait_s);
	metrics_refusal(RR_RATE);
	return true;
}

/* The finished command in the metrics: by service and result, and its bytes. */
static void command_count(const struct door *d, const struct command *c)
{
	if (!gate_metrics)
		return;
	enum metrics_service ms = c->cmd.service == GIT_SERVICE_RECEIVE_PACK ? MS_RECEIVE_PACK :
				  c->cmd.service == GIT_SERVICE_UPLOAD_PACK ? MS_UPLOAD_PACK :
				  c->cmd.service == GIT_SERVICE_UPLOAD_ARCHIVE ? MS_UPLOAD_ARCHIVE : MS_NONE;
	enum metrics_result mr = !strcmp(c->result, "ok")	    ? MR_OK
				 : !strcmp(c->result, "rejected") ? MR_REJECTED
				 : !strcmp(c->result, "failed")   ? MR_FAILED
								  : MR_REFUSED;
	atomic_fetch_add(&gate_metrics->sessions[ms][mr], 1);
	if (ms == MS_RECEIVE_PACK) {
		atomic_fetch_add(&gate_metrics->bytes_pushed, d->bytes_in);
		if (mr != MR_REFUSED)
			metrics_observe(&gate_metrics->push_seconds, now_ms() - c->start);
	} else {
		atomic_fetch_add(&gate_metrics->bytes_fetched, d->bytes_out);
	}
}

void door_run_command(struct door *d)
{
	struct command c = { .result = "refused", .code = 1, .start = now_ms() };
	int ret;

	log_new_correlation_id(c.corr);
	log_set_correlation_id(c.corr);
	if (command_parse(d, &c) || command_authorize(d, &c))
		goto out;
	/* Smart HTTP's info/refs for a push is asked with write access, but
	 * is not the push: that is the POST after it. */
	bool push = c.need == ACCESS_WRITE && d->mode != BACKEND_ADVERTISE;
	if (door_hold_conn_slot(d))
		goto out;
	if (push && command_rate_limited(d, &c))
		goto out;
	/* A wait for a lock or a slot that ended in a refusal: again soon. */
	d->retry_after = d->cfg->ops_queue_wait > 0 ? d->cfg->ops_queue_wait : 30;
	d->refusal = DR_BUSY;
	if (push && take_push_lock(d, &c.app, c.name)) {
		door_finish(d, 1, "ERROR: %s is locked (maintenance or migration) and stayed locked for %ds: push again later.\n",
		       c.name, d->cfg->lock_wait);
		log_info("gate.refused", "user=%s app=%s what=%s", d->user.name, c.name, "locked");
		metrics_refusal(RR_LOCKED);
		goto out;
	}
	if (take_user_slot(d)) {
		door_finish(d, 1, "ERROR: %s had %d git operations running and none ended within %ds: wait for some to end "
			    "(fewer at once: a CI's parallel jobs, say), then try again.\n",
			    d->user.name, d->cfg->max_ops_per_user, d->cfg->ops_queue_wait);
		log_info("gate.refused", "user=%s app=%s what=%s", d->user.name, c.name, "user busy");
		metrics_refusal(RR_USER_BUSY);
		goto out;
	}
	if (take_op_slot(d, c.name)) {
		door_finish(d, 1, "ERROR: %s had %d git operations running and none ended within %ds: try again in a minute.\n",
		       c.name, d->cfg->max_ops_per_app, d->cfg->ops_queue_wait);
		log_info("gate.refused", "user=%s app=%s what=%s", d->user.name, c.name, "busy");
		metrics_refusal(RR_BUSY);
		goto out;
	}
	d->refusal = DR_DENIED;
	snprintf(c.rel, sizeof(c.rel), "%s.git", c.name);
	if ((ret = ensure_repo(d, &c.app, c.rel, c.need == ACCESS_WRITE))) {
		command_fail(d, &c, ret, "its repository cannot be reached right now");
		goto out;
	}
	command_push_limit(d, &c);
	if ((ret = command_start_backend(d, &c))) {
		command_fail(d, &c, ret, "git could not be started for it");
		goto out;
	}
	d->watch_race = c.cmd.service == GIT_SERVICE_RECEIVE_PACK;
	if (gate_metrics)
		atomic_fetch_add(&gate_metrics->sessions_in_flight, 1);
	c.code = d->ops->pump(d, c.b);
	if (gate_metrics)
		atomic_fetch_sub(&gate_metrics->sessions_in_flight, 1);
	c.result = c.code != 0 ? "failed" : d->rejected ? "rejected" : "ok";
	command_push_too_large(d, &c);
	command_ref_list_too_big(d, &c);
	command_lost_race(d, &c);
	if (c.code == 0 && c.cmd.service == GIT_SERVICE_RECEIVE_PACK && c.app.route == ROUTE_LEGACY)
		command_settle_head(d, &c);
	if (!d->dead && (!d->client_closed || c.code == 0)) {
		d->ops->finish(d, c.code);
	}
out:
	command_count(d, &c);
	/* send_ahead: the pacer's last limit (0: output not paced), with its
	 * smallest round trip and how often it grew on a stall. */
	log_info("gate.session", "user=%s fingerprint=%s app=%s command=%s route=%s result=%s exit=%d bytes_in=%llu bytes_out=%llu ms=%lld peer=%s send_ahead=%llu min_rtt_us=%lld pace_stalls=%u",
		 d->user.name, d->fingerprint, c.name, git_service_name(c.cmd.service), route_name(c.app.route),
		 c.result, c.code, (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out,
		 (long long)(now_ms() - c.start), d->peer, (unsigned long long)d->pace.limit,
		 (long long)d->pace.min_rtt, d->pace.stalls);
	if (c.b)
		c.b->free(c.b);
	proc_env_free(c.env);
	app_release(&c.app);
	d->push_head = NULL;
	free(c.ph_buf);
}

