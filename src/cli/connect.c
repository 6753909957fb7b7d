/*
 * `grove connect`: lets a stock git client talk to a store (or a cluster)
 * as if over SSH. git runs it the way it runs ssh:
 *
 *   GIT_SSH_COMMAND='grove connect 127.0.0.1:8075' git clone ssh://default/app.git
 *
 * becomes `grove connect 127.0.0.1:8075 [-o SendEnv=GIT_PROTOCOL] default
 * "git-upload-pack '/app.git'"`: the host is the storage name, the quoted
 * argument the repository's relative path. It answers git's `-G` probe, so
 * git treats it as OpenSSH and passes GIT_PROTOCOL (protocol v2).
 *
 * The address may also come from GROVE_CONNECT_ADDRESS, the shared secret
 * from GROVE_SECRET or the file named by GROVE_SECRET_FILE. GROVE_PUSH_APP,
 * GROVE_PUSH_USER and GROVE_PUSH_HOOK_ADDRESS fill the push's hook payload.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/sshcmd.h"
#include "lib/sshstream.h"
#include "lib/strbuf.h"
#include "grove/v1/ssh.pb-c.h"

#include <pthread.h>
#include <signal.h>

/* What git passes ssh; other ssh options (-4, -6, -T, …) are let by. */
static const struct cli_option connect_options[] = {
	{ "", 'G', NULL, "git's \"are you OpenSSH?\" probe: answers yes (exit 0)" },
	{ "", 'o', "OPTION", "ignored (git sends SendEnv=GIT_PROTOCOL; GIT_PROTOCOL is passed on)" },
	{ "", 'p', "PORT", "ignored" },
	{ "", 'l', "USER", "ignored" },
	{ NULL },
};

/* In order: what follows the storage name is git's command, options or not. */
const struct cli_command connect_command = {
	"connect", "[ADDRESS] [ssh options] STORAGE COMMAND",
	"Lets git use a store or cluster as if over SSH: git runs it as its ssh program.",
	connect_options,
	"  GIT_SSH_COMMAND='grove connect 127.0.0.1:8075' GROVE_SECRET_FILE=secret \\\n"
	"      git clone ssh://default/my-app.git\n"
	"The URL's host is the storage name, its path the repository.\n",
	true,
};

/*
 * What the sender thread uses lives as long as the process: when the main
 * thread is done it returns from main while the sender may still be
 * blocked reading stdin, and nothing it touches may go away under it.
 */
static struct sender {
	struct rpc_stream *st;
	int ret;
} snd;

/* stdin → the stream. The main thread receives meanwhile. */
static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->ret = ssh_stream_send_fd(s->st, 0);
	return NULL;
}

/* One git command relayed to a store: what git asked for, and the call that carries it. */
struct connect {
	const char *addr;
	const char *host;                     /* the storage name */
	struct strbuf cmdline;                /* the command git wants run there */
	char *secret;
	struct sshcmd cmd;
	const char *method;
	char corr[65];
	Grove__V1__Repository repo;
	Grove__V1__HookPayload payload;
	Grove__V1__SSHRequest first;          /* points at repo, and at payload if given */
	struct rpc_client *cl;
	struct rpc_stream *st;
	int code;                             /* git's exit code */
	bool said_exit;                       /* the answer carried it */
};

/*
 * Returns the exit code when the command line says to stop here (help,
 * git's probe, a mistake), else -1. As ssh would, it takes options only
 * before the storage name; unknown ones are let by, as before.
 */
static int connect_parse_args(struct connect *c, int argc, char **argv)
{
	struct cli_parse p;
	bool probe = false;
	int o;

	/* The address comes first unless the environment gave it; the options follow it. */
	if (!c->addr && argc > 1 && argv[1][0] != '-') {
		c->addr = argv[1];
		argc--;
		argv++;
	}
	cli_parse_init(&p, &connect_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1)
		probe |= o == 'G';
	if (p.help) {
		cli_command_usage(&connect_command, stdout, true);
		return 0;
	}
	if (probe)
		return 0;
	if (p.nargs)
		c->host = p.args[0];
	for (int i = 1; i < p.nargs; i++) {
		if (c->cmdline.len)
			strbuf_addch(&c->cmdline, ' ');
		strbuf_addstr(&c->cmdline, p.args[i]);
	}
	if (!c->addr || !c->host || !c->cmdline.len) {
		cli_command_usage(&connect_command, stderr, false);
		return 128;
	}
	return -1;
}

static int connect_load_secret(struct connect *c)
{
	if (getenv("GROVE_SECRET"))
		c->secret = xstrdup(getenv("GROVE_SECRET"));
	else if (getenv("GROVE_SECRET_FILE") && auth_secret_load(getenv("GROVE_SECRET_FILE"), &c->secret))
		return -1;
	if (!c->secret)
		return error_set(GROVE_EAUTH, "no shared secret: set GROVE_SECRET or GROVE_SECRET_FILE");
	return 0;
}

/* The method for git's command, and the call's first message: the repository and who pushes. */
static int connect_prepare(struct connect *c)
{
	if (sshcmd_parse(c->cmdline.buf, &c->cmd))
		return -1;
	switch (c->cmd.service) {
	case GIT_SERVICE_RECEIVE_PACK: c->method = "/grove.v1.SSHService/SSHReceivePack"; break;
	case GIT_SERVICE_UPLOAD_ARCHIVE: c->method = "/grove.v1.SSHService/SSHUploadArchive"; break;
	default: c->method = "/grove.v1.SSHService/SSHUploadPack"; break;
	}
	if (getenv("GROVE_CORRELATION_ID"))
		log_set_correlation_id(getenv("GROVE_CORRELATION_ID"));
	else {
		log_new_correlation_id(c->corr);
		log_set_correlation_id(c->corr);
	}

	c->repo.storage_name = (char *)c->host;
	/* ssh://host/app.git sends '/app.git'; host:app.git sends 'app.git'. */
	c->repo.relative_path = c->cmd.path[0] == '/' ? c->cmd.path + 1 : c->cmd.path;
	c->first.repository = &c->repo;
	/* A trusted caller (it holds the secret) may say who pushes and whom the
	 * store's hooks call back, as the gate does in its requests. */
	if (getenv("GROVE_PUSH_APP") || getenv("GROVE_PUSH_USER") || getenv("GROVE_PUSH_HOOK_ADDRESS")) {
		c->payload.app = getenv("GROVE_PUSH_APP") ? getenv("GROVE_PUSH_APP") : "";
		c->payload.user = getenv("GROVE_PUSH_USER") ? getenv("GROVE_PUSH_USER") : "";
		c->payload.hook_address = getenv("GROVE_PUSH_HOOK_ADDRESS") ? getenv("GROVE_PUSH_HOOK_ADDRESS") : "";
		c->payload.correlation_id = (char *)log_correlation_id();
		c->first.hook_payload = &c->payload;
	}
	c->first.git_protocol = getenv("GIT_PROTOCOL") ? getenv("GIT_PROTOCOL") : "";
	return 0;
}

/* Opens the call, sends the first message and hands stdin to the sender thread. */
static int connect_open(struct connect *c)
{
	pthread_t tid;
	int ret;

	if ((ret = rpc_client_new(&c->cl, c->addr, c->secret)) || (ret = rpc_stream_open(c->cl, c->method, 0, &c->st)))
		return ret;
	snd.st = c->st;
	/* If even the first message cannot go, the call's status says why. */
	if (!rpc_stream_send(c->st, &c->first.base)) {
		if (pthread_create(&tid, NULL, sender_main, &snd))
			return error_set(GROVE_EINTERNAL, "cannot start a thread");
		pthread_detach(tid);
	}
	return 0;
}

/* The store's answers → stdout and stderr, until the call ends or git hangs up. */
static void connect_relay(struct connect *c)
{
	for (;;) {
		Grove__V1__SSHResponse *resp = NULL;
		int r = rpc_stream_recv(c->st, &grove__v1__sshresponse__descriptor, (ProtobufCMessage **)&resp);
		if (r <= 0)
			break;
		if (resp->stdout.len && write_all(1, resp->stdout.data, resp->stdout.len)) {
			/* git hung up on us: nothing more to deliver. */
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			rpc_stream_cancel(c->st);
			break;
		}
		if (resp->stderr.len)
			write_all(2, resp->stderr.data, resp->stderr.len);
		if (resp->exit_status) {
			c->code = resp->exit_status->value;
			c->said_exit = true;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
}

int connect_main(int argc, char **argv)
{
	struct connect c = {
		.addr = getenv("GROVE_CONNECT_ADDRESS"),
		.cmdline = STRBUF_INIT,
		.repo = GROVE__V1__REPOSITORY__INIT,
		.payload = GROVE__V1__HOOK_PAYLOAD__INIT,
		.first = GROVE__V1__SSHREQUEST__INIT,
		.code = 128,
	};
	int code;

	log_init("connect", LOG_WARN, 2);
	signal(SIGPIPE, SIG_IGN);
	if ((code = connect_parse_args(&c, argc, argv)) >= 0) {
		strbuf_release(&c.cmdline);
		return code;
	}
	if (connect_load_secret(&c) || connect_prepare(&c) || connect_open(&c))
		goto fail;
	connect_relay(&c);
	if (rpc_stream_finish(c.st) && !ssh_answer_whole(c.st, c.said_exit)) {
		c.code = 128;
		goto fail;
	}
	goto out;
fail:
	fprintf(stderr, "fatal: grove connect: %s\n", error_msg());
	c.code = 128;
out:
	/* The sender may be blocked reading stdin; returning from main ends it. */
	if (c.secret)
		explicit_bzero(c.secret, strlen(c.secret));
	free(c.secret);
	strbuf_release(&c.cmdline);
	fflush(stdout);
	return c.code;
}
