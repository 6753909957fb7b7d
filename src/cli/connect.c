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

static const char usage[] =
	"usage: grove connect [ADDRESS] [ssh options] STORAGE COMMAND\n"
	"\n"
	"Used by git as its ssh program:\n"
	"  GIT_SSH_COMMAND='grove connect 127.0.0.1:8075' GROVE_SECRET_FILE=secret \\\n"
	"      git clone ssh://default/my-app.git\n"
	"The URL's host is the storage name, its path the repository.\n";

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

int connect_main(int argc, char **argv)
{
	const char *addr = getenv("GROVE_CONNECT_ADDRESS");
	const char *host = NULL;
	char *secret = NULL;
	struct strbuf cmdline = STRBUF_INIT;
	struct sshcmd cmd;
	struct rpc_client *cl = NULL;
	struct rpc_stream *st = NULL;
	Grove__V1__Repository repo = GROVE__V1__REPOSITORY__INIT;
	Grove__V1__SSHRequest first = GROVE__V1__SSHREQUEST__INIT;
	pthread_t tid;
	const char *method;
	char corr[65];
	int code = 128, ret, i = 1;

	log_init("connect", LOG_WARN, 2);
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	/* The address comes first unless the environment gave it. */
	if (!addr && i < argc && argv[i][0] != '-')
		addr = argv[i++];
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-G"))
			return 0;   /* git's "are you OpenSSH?" probe: yes */
		if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "-p") || !strcmp(argv[i], "-l")) {
			i++;
			continue;
		}
		if (argv[i][0] == '-' && !host)
			continue;   /* -4, -6, -T, …: nothing to do for them */
		if (!host) {
			host = argv[i];
			continue;
		}
		if (cmdline.len)
			strbuf_addch(&cmdline, ' ');
		strbuf_addstr(&cmdline, argv[i]);
	}
	if (!addr || !host || !cmdline.len) {
		fputs(usage, stderr);
		strbuf_release(&cmdline);
		return 128;
	}
	if (getenv("GROVE_SECRET"))
		secret = xstrdup(getenv("GROVE_SECRET"));
	else if (getenv("GROVE_SECRET_FILE") && auth_secret_load(getenv("GROVE_SECRET_FILE"), &secret))
		goto fail;
	if (!secret) {
		error_set(GROVE_EAUTH, "no shared secret: set GROVE_SECRET or GROVE_SECRET_FILE");
		goto fail;
	}
	if (sshcmd_parse(cmdline.buf, &cmd))
		goto fail;
	switch (cmd.service) {
	case GIT_SERVICE_RECEIVE_PACK: method = "/grove.v1.SSHService/SSHReceivePack"; break;
	case GIT_SERVICE_UPLOAD_ARCHIVE: method = "/grove.v1.SSHService/SSHUploadArchive"; break;
	default: method = "/grove.v1.SSHService/SSHUploadPack"; break;
	}
	if (getenv("GROVE_CORRELATION_ID"))
		log_set_correlation_id(getenv("GROVE_CORRELATION_ID"));
	else {
		log_new_correlation_id(corr);
		log_set_correlation_id(corr);
	}

	repo.storage_name = (char *)host;
	/* ssh://host/app.git sends '/app.git'; host:app.git sends 'app.git'. */
	repo.relative_path = cmd.path[0] == '/' ? cmd.path + 1 : cmd.path;
	first.repository = &repo;
	/* A trusted caller (it holds the secret) may say who pushes and whom the
	 * store's hooks call back, as the gate does in its requests. */
	Grove__V1__HookPayload payload = GROVE__V1__HOOK_PAYLOAD__INIT;
	if (getenv("GROVE_PUSH_APP") || getenv("GROVE_PUSH_USER") || getenv("GROVE_PUSH_HOOK_ADDRESS")) {
		payload.app = getenv("GROVE_PUSH_APP") ? getenv("GROVE_PUSH_APP") : "";
		payload.user = getenv("GROVE_PUSH_USER") ? getenv("GROVE_PUSH_USER") : "";
		payload.hook_address = getenv("GROVE_PUSH_HOOK_ADDRESS") ? getenv("GROVE_PUSH_HOOK_ADDRESS") : "";
		payload.correlation_id = (char *)log_correlation_id();
		first.hook_payload = &payload;
	}
	first.git_protocol = getenv("GIT_PROTOCOL") ? getenv("GIT_PROTOCOL") : "";
	if ((ret = rpc_client_new(&cl, addr, secret)) || (ret = rpc_stream_open(cl, method, 0, &st)))
		goto fail;
	snd.st = st;
	/* If even the first message cannot go, the call's status says why. */
	if (!rpc_stream_send(st, &first.base)) {
		if (pthread_create(&tid, NULL, sender_main, &snd)) {
			error_set(GROVE_EINTERNAL, "cannot start a thread");
			goto fail;
		}
		pthread_detach(tid);
	}
	for (;;) {
		Grove__V1__SSHResponse *resp = NULL;
		int r = rpc_stream_recv(st, &grove__v1__sshresponse__descriptor, (ProtobufCMessage **)&resp);
		if (r <= 0)
			break;
		if (resp->stdout.len && write_all(1, resp->stdout.data, resp->stdout.len)) {
			/* git hung up on us: nothing more to deliver. */
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			rpc_stream_cancel(st);
			break;
		}
		if (resp->stderr.len)
			write_all(2, resp->stderr.data, resp->stderr.len);
		if (resp->exit_status)
			code = resp->exit_status->value;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	if (rpc_stream_finish(st)) {
		code = 128;
		goto fail;
	}
	goto out;
fail:
	fprintf(stderr, "fatal: grove connect: %s\n", error_msg());
	code = 128;
out:
	/* The sender may be blocked reading stdin; returning from main ends it. */
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
	strbuf_release(&cmdline);
	fflush(stdout);
	return code;
}
