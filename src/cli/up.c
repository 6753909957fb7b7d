/*
 * `grove up`: the whole stack on loopback in one command, for trying Grove
 * and for tests. Under --data (./grove-data): three stores, a cluster router
 * in front of them (SQLite, every repository on the three), a gate routing
 * new apps to the cluster (canary 100 %), a legacy directory for existing
 * apps, and a demo deploy script. The first start generates configs, one shared secret,
 * host keys and an admin token; later starts reuse them. Internal traffic
 * goes over unix sockets in DIR/run, so only the SSH and HTTP ports are on
 * the network (127.0.0.1). Each part is its own process with its log in
 * DIR/logs; a part that dies is restarted, and said so. Ctrl-C or SIGTERM
 * stops everything cleanly.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/strvec.h"
#include "grpc/health/v1/health.pb-c.h"

#include <limits.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

enum { OPT_DATA = CLI_OPT_LONG, OPT_SSH_PORT, OPT_HTTP_PORT, OPT_GIT_HTTP_PORT, OPT_NO_DEFAULT_USER };

static const struct cli_option up_options[] = {
	{ "data", OPT_DATA, "DIR", "where the stack keeps everything (default: ./grove-data)" },
	{ "ssh-port", OPT_SSH_PORT, "N", "the gate's SSH port on 127.0.0.1" },
	{ "http-port", OPT_HTTP_PORT, "N", "the gate's admin API port on 127.0.0.1" },
	{ "git-http-port", OPT_GIT_HTTP_PORT, "N", "git over plain HTTP on 127.0.0.1 (access tokens; default: off)" },
	{ "no-default-user", OPT_NO_DEFAULT_USER, NULL, "make no administrator user from your SSH key" },
	{ NULL },
};

const struct cli_command up_command = {
	"up", "[--data DIR] [--ssh-port N] [--http-port N] [--git-http-port N] [--no-default-user]",
	"Starts three stores, a cluster router and a gate on loopback.",
	up_options,
	"With ~/.ssh/id_ed25519.pub (or id_ecdsa.pub, id_rsa.pub) it also makes you\n"
	"an administrator user with that key, so you can push at once.\n",
	false,
};

static const char demo_deploy[] =
	"#!/bin/sh\n"
	"# The demo deployment of `grove up`: replace it with your platform's.\n"
	"# Grove runs it when an app's deploy branch moves, with GROVE_APP, GROVE_REF,\n"
	"# GROVE_OLD, GROVE_NEW and GROVE_PUSHER set; what it prints, the pusher sees.\n"
	"echo \"-----> Building $GROVE_APP at $(echo \"$GROVE_NEW\" | cut -c1-7), pushed by $GROVE_PUSHER\"\n"
	"echo \"       (demo: edit $0 to build and release for real)\"\n";

#define UP_STORES 3
#define UP_PARTS (UP_STORES + 2)   /* the stores, the cluster, the gate: started in this order */

struct part {
	char name[16];           /* for messages: "store s1", "cluster", "gate" */
	const char *role;        /* grove subcommand */
	char *addr;              /* health-checked address (stores, cluster) */
	char *conf;
	char *log;
	struct proc proc;
	int64_t started_ms;
};

static int run(const char *const *argv)
{
	struct strbuf err;
	strbuf_init(&err, 64 * 1024);
	int r = proc_run(argv, NULL, NULL, NULL, 0, NULL, &err);
	if (r > 0) {
		strbuf_rtrim(&err);
		r = error_set(GROVE_EINTERNAL, "%s %s failed: %s", argv[0], argv[1], err.buf);
	}
	strbuf_release(&err);
	return r;
}

static int set_conf(const char *conf, const char *key, const char *value)
{
	const char *argv[] = { "git", "config", "-f", conf, key, value, NULL };
	return run(argv);
}

static int copy_file(const char *from, const char *to)
{
	char buf[4096];
	int in = open(from, O_RDONLY | O_CLOEXEC), out, ret = 0;
	ssize_t n;
	if (in < 0)
		return error_set(GROVE_EIO, "cannot read %s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return error_set(GROVE_EIO, "cannot write %s: %s", to, strerror(errno));
	}
	while ((n = read(in, buf, sizeof(buf))) > 0 && !ret)
		ret = write_all(out, buf, (size_t)n);
	close(in);
	close(out);
	return ret;
}

static int start_part(struct part *p, const char *self)
{
	const char *argv[] = { self, p->role, "-c", p->conf, NULL };
	p->started_ms = now_ms();
	return proc_start_logged(&p->proc, argv, NULL, p->log);
}

static bool store_ready(const char *addr, const char *secret)
{
	struct rpc_client *cl = NULL;
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	bool ok = !rpc_client_new(&cl, addr, secret) &&
		  !rpc_unary(cl, "/grpc.health.v1.Health/Check", &req.base, &grpc__health__v1__health_check_response__descriptor,
			     &resp, 1000);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	rpc_client_free(cl);
	return ok;
}

static bool gate_ready(const char *base)
{
	long status = 0;
	json_t *j = NULL;
	bool ok = !admin_call(base, "-", "GET", "/health", NULL, &status, &j) && status == 200;
	json_decref(j);
	return ok;
}

/*
 * A part's start ends when it serves or exits. The bound is only for one
 * that hangs: a loaded machine can take seconds over a first start (the
 * gate makes its RSA host key then).
 */
#define PART_START_MAX_MS 180000

static bool wait_until(bool (*ready)(const char *, const char *), const char *a, const char *b, struct part *p)
{
	int64_t end = now_ms() + PART_START_MAX_MS;
	while (now_ms() < end) {
		if (ready(a, b))
			return true;
		if (waitpid(p->proc.pid, NULL, WNOHANG) == p->proc.pid)
			return false;
		usleep(100 * 1000);
	}
	return false;
}

static bool gate_ready2(const char *base, const char *unused)
{
	return gate_ready(base);
}

/* You, as an administrator with your SSH key, unless that exists already. */
static void default_user(const char *base, const char *token, char *who, size_t whosz, char *keyfile, size_t keysz)
{
	static const char *const names[] = { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub" };
	const char *home = getenv("HOME");
	const char *user = getenv("USER") && *getenv("USER") ? getenv("USER") : "me";
	char path[4096], line[16384];
	long status;
	json_t *j = NULL;
	FILE *f = NULL;

	who[0] = keyfile[0] = '\0';
	for (size_t i = 0; home && i < ARRAY_SIZE(names) && !f; i++) {
		snprintf(path, sizeof(path), "%s/.ssh/%s", home, names[i]);
		f = fopen(path, "r");
	}
	if (!f || !fgets(line, sizeof(line), f)) {
		if (f)
			fclose(f);
		return;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	json_t *body = json_pack("{s:s, s:b}", "name", user, "admin", 1);
	if (admin_call(base, token, "POST", "/api/v1/users", body, &status, &j) || (status != 201 && status != 409)) {
		fprintf(stderr, "grove up: cannot create the user %s: %s\n", user,
			j && json_is_string(json_object_get(j, "error")) ? json_string_value(json_object_get(j, "error")) : error_msg());
		json_decref(body);
		json_decref(j);
		return;
	}
	json_decref(body);
	json_decref(j);
	j = NULL;
	body = json_pack("{s:s}", "public_key", line);
	char kpath[512];
	snprintf(kpath, sizeof(kpath), "/api/v1/users/%s/keys", user);
	if (!admin_call(base, token, "POST", kpath, body, &status, &j) && (status == 201 || status == 409)) {
		strlcpy_(who, user, whosz);
		strlcpy_(keyfile, path, keysz);
	} else {
		fprintf(stderr, "grove up: cannot add your key %s: %s\n", path,
			j && json_is_string(json_object_get(j, "error")) ? json_string_value(json_object_get(j, "error")) : "");
	}
	json_decref(body);
	json_decref(j);
}

/* Everything `grove up` makes, finds and runs, shared by its steps. */
struct up {
	const char *data;           /* --data, as given */
	int ssh_port, http_port;
	int git_http_port;          /* the gate's smart HTTP door; 0: off */
	bool want_user;
	char *dir;                  /* data, absolute */
	char *self;                 /* this program: every part is one of its subcommands */
	char *secret, *token;
	char secret_path[4096];
	char store_sock[4096];      /* the cluster router, the gate's store */
	char hook_sock[4096];
	char base[128];             /* the gate's admin API */
	char router_metrics[64];    /* the router's /metrics, "127.0.0.1:PORT" */
	struct part parts[UP_PARTS];
	sigset_t sigs;              /* SIGINT and SIGTERM: blocked, waited for */
};

/* Returns the exit code when the command line says to stop here (help, a mistake), else -1. */
static int up_parse_args(struct up *u, int argc, char **argv)
{
	struct cli_parse p;
	int o, code;

	cli_parse_init(&p, &up_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		switch (o) {
		case OPT_DATA: u->data = optarg; break;
		case OPT_SSH_PORT: u->ssh_port = atoi(optarg); break;
		case OPT_HTTP_PORT: u->http_port = atoi(optarg); break;
		case OPT_GIT_HTTP_PORT: u->git_http_port = atoi(optarg); break;
		case OPT_NO_DEFAULT_USER: u->want_user = false; break;
		}
	}
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (p.nargs)
		return cli_usage_error(&up_command, "unknown argument '%s'", p.args[0]);
	if (u->ssh_port <= 0 || u->ssh_port > 65535 || u->http_port <= 0 || u->http_port > 65535 ||
	    u->git_http_port < 0 || u->git_http_port > 65535) {
		fprintf(stderr, "grove up: ports must be between 1 and 65535\n");
		return 2;
	}
	return -1;
}

/* The data folder with its run and logs folders, and the sockets' paths in it. */
static int up_make_dirs(struct up *u)
{
	char path[4096];
	int ret;

	if ((ret = fs_mkdir_p(u->data, 0700)))
		return ret;
	u->dir = realpath(u->data, NULL);
	u->self = realpath("/proc/self/exe", NULL);
	snprintf(path, sizeof(path), "%s/run", u->dir);
	if ((ret = fs_mkdir_p(path, 0700)))
		return ret;
	snprintf(path, sizeof(path), "%s/logs", u->dir);
	if ((ret = fs_mkdir_p(path, 0700)))
		return ret;
	/* The gate reaches the cluster here; the cluster the stores next to it. */
	snprintf(u->store_sock, sizeof(u->store_sock), "unix:%s/run/cluster.sock", u->dir);
	snprintf(u->hook_sock, sizeof(u->hook_sock), "unix:%s/run/gate-hooks.sock", u->dir);
	if (strlen(u->store_sock) > 100)
		return error_set(GROVE_EINVAL, "the data folder %s is too deep for unix sockets: use a shorter --data",
				 u->dir);
	return 0;
}

/* One secret for every part, made once. */
static int up_make_secret(struct up *u)
{
	int ret;

	snprintf(u->secret_path, sizeof(u->secret_path), "%s/secret", u->dir);
	if (access(u->secret_path, F_OK)) {
		char *s = auth_secret_generate(), *line = xasprintf("%s\n", s);
		ret = fs_write_new(u->secret_path, line, 0600);
		free(s);
		free(line);
		if (ret)
			return ret;
	}
	return auth_secret_load(u->secret_path, &u->secret);
}

/*
 * A CA and a certificate per part in DIR/tls, made once, named in each
 * part's config (tls.*): the links here are unix sockets on one host, which
 * stay plain, but a part given a TCP address (a store moved to another
 * host) speaks mutual TLS with them at once. "cli" is for the operator's
 * commands over TCP ($GROVE_TLS_CA, $GROVE_TLS_CERT, $GROVE_TLS_KEY).
 */
static int up_make_tls(struct up *u)
{
	static const char *const names[] = { "s1", "s2", "s3", "cluster", "gate", "cli" };
	static const char *const hosts[] = { "127.0.0.1", "::1", "localhost" };
	char dir[4096];
	int ret;

	if ((ret = fs_pathf(dir, sizeof(dir), "%s/tls", u->dir)) || (ret = pki_ca_ensure(dir, "Grove up CA")))
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if ((ret = pki_cert_ensure(dir, dir, names[i], hosts, ARRAY_SIZE(hosts))))
			return ret;
	return 0;
}

/* The part's certificate (up_make_tls) in its config. */
static int up_conf_tls(struct up *u, const char *conf, const char *name)
{
	char path[4096];
	int ret;
	if ((ret = fs_pathf(path, sizeof(path), "%s/tls/ca.pem", u->dir)) || (ret = set_conf(conf, "tls.ca", path)) ||
	    (ret = fs_pathf(path, sizeof(path), "%s/tls/%s.pem", u->dir, name)) || (ret = set_conf(conf, "tls.cert", path)) ||
	    (ret = fs_pathf(path, sizeof(path), "%s/tls/%s.key", u->dir, name)))
		return ret;
	return set_conf(conf, "tls.key", path);
}

/* The stores: s1, s2, s3, each in its own folder. */
static int up_prepare_stores(struct up *u)
{
	char path[4096];
	int ret;

	for (int i = 0; i < UP_STORES; i++) {
		struct part *p = &u->parts[i];
		char sdir[4096], sname[8];
		snprintf(sname, sizeof(sname), "s%d", i + 1);
		snprintf(p->name, sizeof(p->name), "store %s", sname);
		p->role = "store";
		p->addr = xasprintf("unix:%s/run/%s.sock", u->dir, sname);
		snprintf(sdir, sizeof(sdir), "%s/stores/%s", u->dir, sname);
		p->conf = xasprintf("%s/store.conf", sdir);
		p->log = xasprintf("%s/logs/%s.log", u->dir, sname);
		if (access(p->conf, F_OK)) {
			const char *init[] = { u->self, "store", "--init", sdir, "--name", sname, "--listen", p->addr, NULL };
			/* CI clones one commit again and again: the pack-objects
			 * cache is on in the one-command stack (off by default). */
			if ((ret = run(init)) || (ret = set_conf(p->conf, "packCache.enabled", "true")))
				return ret;
		}
		if ((ret = fs_pathf(path, sizeof(path), "%s/secret", sdir)) || (ret = copy_file(u->secret_path, path)) ||
		    (ret = set_conf(p->conf, "store.listen", p->addr)) || (ret = up_conf_tls(u, p->conf, sname)))
			return ret;
	}
	return 0;
}

/* The cluster router in front of them. */
/*
 * The router's /metrics address: the one its config has, else a port free
 * now on 127.0.0.1, written there so that it stays the same on restarts.
 */
static int up_router_metrics(struct up *u, const char *conf)
{
	const char *get[] = { "git", "config", "-f", conf, "--get", "cluster.metricsListen", NULL };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct strbuf b;
	int fd, ret = 0;

	strbuf_init(&b, 256);
	if (proc_run(get, NULL, NULL, NULL, 0, &b, NULL) == 0 && (strbuf_rtrim(&b), b.len) &&
	    b.len < sizeof(u->router_metrics)) {
		strlcpy_(u->router_metrics, b.buf, sizeof(u->router_metrics));
		goto out;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		ret = error_set(GROVE_EIO, "cannot find a free port for the router's metrics: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	snprintf(u->router_metrics, sizeof(u->router_metrics), "127.0.0.1:%d", ntohs(sa.sin_port));
	ret = set_conf(conf, "cluster.metricsListen", u->router_metrics);
out:
	strbuf_release(&b);
	return ret;
}

static int up_prepare_cluster(struct up *u)
{
	struct part *cp = &u->parts[UP_STORES];
	char path[4096];
	int ret;

	snprintf(cp->name, sizeof(cp->name), "cluster");
	cp->role = "cluster";
	cp->addr = xasprintf("%s", u->store_sock);
	cp->conf = xasprintf("%s/cluster/cluster.conf", u->dir);
	cp->log = xasprintf("%s/logs/cluster.log", u->dir);
	snprintf(path, sizeof(path), "%s/cluster", u->dir);
	if ((ret = fs_mkdir_p(path, 0700)))
		return ret;
	snprintf(path, sizeof(path), "%s/cluster/secret", u->dir);
	if ((ret = copy_file(u->secret_path, path)))
		return ret;
	if (access(cp->conf, F_OK)) {
		char *text = xasprintf("# the cluster router of `grove up`; see `grove cluster --help`.\n"
				       "[cluster]\n\tname = up\n\tvirtualStorage = default\n\tsecretFile = secret\n"
				       "\tdatabase = cluster.db\n\treplicationFactor = %d\n",
				       UP_STORES);
		ret = fs_write_new(cp->conf, text, 0640);
		free(text);
		if (ret)
			return ret;
	}
	if ((ret = set_conf(cp->conf, "cluster.listen", u->store_sock)) || (ret = up_router_metrics(u, cp->conf)) ||
	    (ret = up_conf_tls(u, cp->conf, "cluster")))
		return ret;
	for (int i = 0; i < UP_STORES; i++) {
		char key[64];
		snprintf(key, sizeof(key), "store.s%d.address", i + 1);
		if ((ret = set_conf(cp->conf, key, u->parts[i].addr)))
			return ret;
	}
	return 0;
}

/* The gate, with the demo deploy script; then its admin token. */
static int up_prepare_gate(struct up *u)
{
	struct part *gp = &u->parts[UP_PARTS - 1];
	char path[4096], buf[64];
	int ret;

	snprintf(gp->name, sizeof(gp->name), "gate");
	gp->role = "gate";
	gp->conf = xasprintf("%s/gate/gate.conf", u->dir);
	gp->log = xasprintf("%s/logs/gate.log", u->dir);
	snprintf(path, sizeof(path), "%s/deploy.sh", u->dir);
	if ((ret = fs_write_new(path, demo_deploy, 0755)))
		return ret;
	if (access(gp->conf, F_OK)) {
		char gdir[4096], listen[64];
		snprintf(gdir, sizeof(gdir), "%s/gate", u->dir);
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", u->ssh_port);
		const char *init[] = { u->self, "gate", "--init", gdir, "--listen", listen, "--store", u->store_sock,
				       "--storage", "default", NULL };
		if ((ret = run(init)))
			return ret;
		if ((ret = set_conf(gp->conf, "gate.canaryPercent", "100")) ||
		    (ret = set_conf(gp->conf, "deploy.command", path)))
			return ret;
	}
	snprintf(path, sizeof(path), "%s/gate/secret", u->dir);
	if ((ret = copy_file(u->secret_path, path)))
		return ret;
	snprintf(buf, sizeof(buf), "127.0.0.1:%d", u->ssh_port);
	if ((ret = set_conf(gp->conf, "gate.listen", buf)))
		return ret;
	/* Plain HTTP: on loopback, for trying it and for the benchmarks
	 * (docs/http.md says how to serve it with TLS). "": off. */
	buf[0] = '\0';
	if (u->git_http_port)
		snprintf(buf, sizeof(buf), "127.0.0.1:%d", u->git_http_port);
	if ((ret = set_conf(gp->conf, "gate.httpListen", buf)))
		return ret;
	snprintf(buf, sizeof(buf), "127.0.0.1:%d", u->http_port);
	if ((ret = set_conf(gp->conf, "gate.adminListen", buf)) ||
	    (ret = set_conf(gp->conf, "gate.hookListen", u->hook_sock)) ||
	    (ret = set_conf(gp->conf, "route.cluster", u->store_sock)) || (ret = up_conf_tls(u, gp->conf, "gate")))
		return ret;
	snprintf(path, sizeof(path), "%s/gate/admin-token", u->dir);
	if ((ret = auth_secret_load(path, &u->token)))
		return ret;
	snprintf(u->base, sizeof(u->base), "http://127.0.0.1:%d", u->http_port);
	return 0;
}

/* The stores, then the router (it checks them at start), then the gate. */
static int up_start(struct up *u)
{
	struct part *parts = u->parts, *cp = &u->parts[UP_STORES], *gp = &u->parts[UP_PARTS - 1];
	int ret;

	for (int i = 0; i <= UP_STORES; i++) {
		if (i == UP_STORES)
			for (int k = 0; k < UP_STORES; k++)
				if (!wait_until(store_ready, parts[k].addr, u->secret, &parts[k]))
					return error_set(GROVE_EUNAVAIL, "the %s did not start: see %s", parts[k].name,
							 parts[k].log);
		if ((ret = start_part(&parts[i], u->self)))
			return ret;
	}
	if (!wait_until(store_ready, cp->addr, u->secret, cp))
		return error_set(GROVE_EUNAVAIL, "the cluster router did not start: see %s", cp->log);
	if ((ret = start_part(gp, u->self)))
		return ret;
	if (!wait_until(gate_ready2, u->base, NULL, gp))
		return error_set(GROVE_EUNAVAIL, "the gate did not start (ports %d and %d free?): see %s", u->ssh_port,
				 u->http_port, gp->log);
	return 0;
}

/* How to run this grove as typed: "grove" when that is what PATH finds,
 * else the path of this binary (a build not installed). */
static const char *up_grove_cmd(const struct up *u)
{
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : ""), *save = NULL, cand[4096], real[PATH_MAX];
	const char *cmd = u->self;

	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
		if (!fs_pathf(cand, sizeof(cand), "%s/grove", *d ? d : ".") && !access(cand, X_OK)) {
			if (realpath(cand, real) && !strcmp(real, u->self))
				cmd = "grove";
			break;   /* the first grove PATH finds is the one that would run */
		}
	free(copy);
	return cmd;
}

/* The refspec of the example push: the branch checked out where grove up
 * was started (pushed to main, the deploy branch, if it has another name),
 * else main. */
static void up_push_refspec(char *out, size_t size)
{
	const char *argv[] = { "git", "symbolic-ref", "--short", "-q", "HEAD", NULL };
	struct strbuf b;

	strbuf_init(&b, 4096);
	snprintf(out, size, "main");
	if (proc_run(argv, NULL, NULL, NULL, 0, &b, NULL) == 0) {
		strbuf_rtrim(&b);
		if (b.len && strcmp(b.buf, "main") && !strpbrk(b.buf, " \t\n\"'\\"))
			snprintf(out, size, "%s:main", b.buf);
	}
	strbuf_release(&b);
}

/* The banner: what runs where and what to try next, with you as its user if
 * we could; every command in it works as printed. */
static void up_announce(struct up *u)
{
	char who[128], keyfile[4096], refspec[300];
	const char *grove = up_grove_cmd(u);

	if (u->want_user)
		default_user(u->base, u->token, who, sizeof(who), keyfile, sizeof(keyfile));
	else
		who[0] = keyfile[0] = '\0';
	up_push_refspec(refspec, sizeof(refspec));
	printf("Grove is up: a gate, a cluster router and %d stores (data in %s, logs in %s/logs).\n", UP_STORES, u->dir,
	       u->dir);
	printf("  git remote:  ssh://git@127.0.0.1:%d/<app>.git\n", u->ssh_port);
	if (u->git_http_port)
		printf("  over HTTP:   http://127.0.0.1:%d/<app>.git  (password: a token, %s token create USER)\n",
		       u->git_http_port, grove);
	printf("  admin API:   %s  (token in %s/gate/admin-token)\n", u->base, u->dir);
	printf("  metrics:     %s/metrics (gate), http://%s/metrics (router)\n", u->base, u->router_metrics);
	printf("  dashboard:   %s/ui/  (sign in with the admin token)\n", u->base);
	printf("  cluster:     %s cluster -a %s --secret-file %s/secret status\n", grove, u->store_sock, u->dir);
	if (who[0])
		printf("  you:         user %s, key %s, administrator\n", who, keyfile);
	printf("Next:\n");
	printf("  export GROVE_ADMIN_URL=%s GROVE_ADMIN_TOKEN_FILE=%s/gate/admin-token\n", u->base, u->dir);
	if (!who[0])
		printf("  %s user create me --admin && %s key add me ~/.ssh/id_ed25519.pub\n", grove, grove);
	printf("  %s app create hello\n", grove);
	printf("  git push ssh://git@127.0.0.1:%d/hello.git %s\n", u->ssh_port, refspec);
	printf("Ctrl-C stops everything.\n");
	fflush(stdout);
	log_info("up.started", "data=%s ssh_port=%d http_port=%d", u->dir, u->ssh_port, u->http_port);
}

/* /proc/PID/NAME, NUL-terminated, cut to size: its length, or -1. */
static ssize_t proc_file(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/*
 * The process that took over from part p after an upgrade (SIGUSR2): the
 * part's old process started it, so once that one exited it is our child
 * (we are a subreaper), running p's role with p's config. 0 if none.
 */
static pid_t successor_of(const struct up *u, const struct part *p)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	while (dir && !found && (e = readdir(dir))) {
		char buf[8192];
		pid_t pid = (pid_t)atoi(e->d_name);
		long ppid = 0;
		ssize_t n;
		if (pid <= 0 || proc_file(pid, "stat", buf, sizeof(buf)) < 0)
			continue;
		const char *rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1, " %*c %ld", &ppid) != 1 || ppid != (long)getpid())
			continue;
		if ((n = proc_file(pid, "cmdline", buf, sizeof(buf))) < 0)
			continue;
		/* argv: grove ROLE -c CONF, NUL-separated. */
		bool role = false, conf = false;
		for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1) {
			role = role || !strcmp(buf + i, p->role);
			conf = conf || !strcmp(buf + i, p->conf);
		}
		if (role && conf)
			found = pid;
	}
	if (dir)
		closedir(dir);
	for (size_t i = 0; found && i < ARRAY_SIZE(u->parts); i++)
		if (u->parts[i].proc.pid == found)
			found = 0;
	return found;
}

/* A child of ours ended: a part (upgraded, or died: restarted), or an
 * orphan a part left behind, reaped and forgotten. */
static void up_reaped(struct up *u, pid_t pid, int status)
{
	for (size_t i = 0; i < ARRAY_SIZE(u->parts); i++) {
		struct part *p = &u->parts[i];
		pid_t next;
		if (p->proc.pid != pid)
			continue;
		if ((next = successor_of(u, p)) > 0) {
			p->proc.pid = next;
			log_info("up.part_upgraded", "part=%s old_pid=%d pid=%d", p->name, (int)pid, (int)next);
			return;
		}
		log_warn("up.part_died", "part=%s status=%d log=%s", p->name, status, p->log);
		fprintf(stderr, "grove up: the %s exited (status %d); restarting it (see %s)\n", p->name, status, p->log);
		if (now_ms() - p->started_ms < 1000)
			sleep(1);
		if (start_part(p, u->self))
			log_error("up.restart_failed", "part=%s error=%s", p->name, error_msg());
		return;
	}
}

/* Supervise: a part that dies comes back, at most once a second; a part
 * upgraded in place (SIGUSR2) is followed to its new process. Returns on
 * SIGINT or SIGTERM. */
static void up_supervise(struct up *u)
{
	for (;;) {
		struct timespec ts = { 1, 0 };
		int sig = sigtimedwait(&u->sigs, NULL, &ts), status;
		pid_t pid;
		if (sig == SIGINT || sig == SIGTERM)
			return;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			up_reaped(u, pid, status);
	}
}

/* The gate first: its sessions may still need the router and the stores. */
static void up_stop_parts(struct up *u)
{
	for (int i = UP_PARTS - 1; i >= 0; i--) {
		struct part *p = &u->parts[i];
		if (p->proc.pid <= 0)
			continue;
		kill(p->proc.pid, SIGTERM);
		waitpid(p->proc.pid, NULL, 0);
		p->proc.pid = -1;
	}
}

static void up_release(struct up *u)
{
	for (size_t i = 0; i < ARRAY_SIZE(u->parts); i++) {
		free(u->parts[i].addr);
		free(u->parts[i].conf);
		free(u->parts[i].log);
	}
	free(u->dir);
	free(u->self);
	free(u->secret);
	free(u->token);
}

int up_main(int argc, char **argv)
{
	struct up u;
	int code, ret;

	memset(&u, 0, sizeof(u));
	u.data = "grove-data";
	u.ssh_port = 2222;
	u.http_port = 8080;
	u.want_user = true;
	if ((code = up_parse_args(&u, argc, argv)) >= 0)
		return code;
	log_init("up", LOG_INFO, 2);
	/* A part upgraded in place (SIGUSR2) leaves its successor to us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&u.sigs);
	sigaddset(&u.sigs, SIGINT);
	sigaddset(&u.sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &u.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((ret = up_make_dirs(&u)) || (ret = up_make_secret(&u)) || (ret = up_make_tls(&u)) ||
	    (ret = up_prepare_stores(&u)) ||
	    (ret = up_prepare_cluster(&u)) || (ret = up_prepare_gate(&u)) || (ret = up_start(&u)))
		goto out;
	up_announce(&u);
	up_supervise(&u);
	fprintf(stderr, "grove up: stopping\n");
	up_stop_parts(&u);
	log_info("up.stopped", NULL);
out:
	if (ret) {
		fprintf(stderr, "grove up: %s\n", error_msg());
		up_stop_parts(&u);
	}
	up_release(&u);
	return ret ? 1 : 0;
}
