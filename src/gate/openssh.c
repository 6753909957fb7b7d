/*
 * Grove behind the system's OpenSSH, as gitlab-shell is: sshd keeps port 22
 * and its own host keys; for the account of openssh.user it asks
 *
 *   AuthorizedKeysCommand /usr/local/bin/grove authorized-keys --config /etc/grove/gate.conf %u %t %k
 *
 * which prints, for a key Grove knows, one authorized_keys line:
 *
 *   command="/usr/local/bin/grove shell --config /etc/grove/gate.conf SHA256:…",restrict ssh-ed25519 AAAA…
 *
 * and nothing for any other key or account (sshd then tries its other
 * ways). `restrict` takes away the pty, every forwarding and the user's rc:
 * what is left is the forced command, grove shell (shell.c), which does for
 * that one session what the gate's own SSH server does.
 *
 * Both run as short-lived processes of sshd: their stdout and stderr are
 * sshd's (or the user's), so they log to openssh.logFile instead.
 */
#include "gate/gate.h"
#include "gate/authz.h"
#include "gate/db.h"
#include "gate/openssh.h"
#include "cli/opt.h"
#include "lib/adminreq.h"
#include "lib/error.h"
#include "lib/log.h"

#include <fcntl.h>

int openssh_load(struct gate_config *cfg, const char *conf, const char *role)
{
	char *abs = NULL;
	int ret, fd;

	if ((ret = gate_config_load(cfg, conf)))
		return ret;
	/* The forced command names the config: it must not depend on sshd's
	 * working directory. */
	if (!(abs = realpath(conf, NULL)))
		return error_set(GROVE_EIO, "%s: %s", conf, strerror(errno));
	free(cfg->conf_path);
	cfg->conf_path = abs;
	fd = open(cfg->openssh_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return error_set(GROVE_EIO, "cannot open the log %s (openssh.logFile): %s", cfg->openssh_log,
				 strerror(errno));
	log_set_output(role, fd);
	return gate_authz_open(cfg);
}

/* Characters the command="…" option cannot carry without quoting rules of
 * its own: a path holding one is refused rather than escaped. */
static bool quotable(const char *s)
{
	return !strpbrk(s, "\"\\\n\r ");
}

/*
 * Whether the key is someone's: the gate's own keys, or with auth.url the
 * platform's answer. A platform that cannot be asked lets the key in, as
 * the gate's SSH server does: grove shell asks again per command, and the
 * user then reads why nothing works instead of a bare "Permission denied".
 */
static bool key_known(const struct gate_config *cfg, const char *fp)
{
	struct authz_answer a;
	struct user u = { 0 };
	struct db *db = NULL;
	bool known;

	if (gate_authz)
		return authz_check(gate_authz, fp, "login", NULL, &a) || a.allowed;
	if (db_attach(&db, cfg->db_path)) {
		log_error("openssh.db", "error=%s", error_msg());
		return false;
	}
	known = db_user_by_key(db, fp, &u) == 0;
	user_release(&u);
	db_close(db);
	return known;
}

static const struct cli_option authorized_keys_opts[] = {
	{ "config", 'c', "FILE", "the gate's configuration" },
	{ NULL },
};

const struct cli_command authorized_keys_command = {
	.name = "authorized-keys",
	.synopsis = "--config FILE USER TYPE KEY",
	.what = "for sshd's AuthorizedKeysCommand (%u %t %k): the line that lets a key Grove knows in",
	.opts = authorized_keys_opts,
	.more = "Prints one authorized_keys line, restricted to `grove shell`, when USER is the\n"
		"config's openssh.user and the key is registered; nothing otherwise. See\n"
		"docs/openssh.md for the sshd_config lines.\n",
};

/* The line for the key, or nothing. Returns 0 either way (sshd reads an
 * empty answer as "no key"); non-zero only on a broken setup. */
static int authorized_keys_print(const struct gate_config *cfg, const char *user, const char *type, const char *b64)
{
	struct adminreq_key k;
	char *text = xasprintf("%s %s", type, b64);
	int ret = 0;

	if (strcmp(user, cfg->openssh_user)) {
		free(text);
		return 0;
	}
	if (adminreq_parse_key(text, &k)) {
		log_info("openssh.key_refused", "type=%.*s reason=%s", (int)strnlen(type, 64), type, error_msg());
		free(text);
		return 0;
	}
	if (!quotable(cfg->self_exe) || !quotable(cfg->conf_path)) {
		ret = error_set(GROVE_EINVAL, "the paths of grove (%s) and of its config (%s) must not hold spaces, quotes "
					      "or backslashes: they go into the command=\"…\" of authorized_keys",
				cfg->self_exe, cfg->conf_path);
	} else if (key_known(cfg, k.fingerprint)) {
		printf("command=\"%s shell --config %s %s\",restrict %s\n", cfg->self_exe, cfg->conf_path, k.fingerprint,
		       k.line);
		log_info("openssh.key_known", "fingerprint=%s", k.fingerprint);
	} else {
		log_info("openssh.key_unknown", "fingerprint=%s", k.fingerprint);
	}
	adminreq_key_release(&k);
	free(text);
	return ret;
}

int openssh_parse_args(struct cli_parse *p, const struct cli_command *cmd, int argc, char **argv, int nargs,
		       const char *operands, const char **conf)
{
	int o, code;

	*conf = NULL;
	cli_parse_init(p, cmd, argc, argv);
	while ((o = cli_parse_next(p)) != -1)
		if (o == 'c')
			*conf = optarg;
	if ((code = cli_parse_end(p)) >= 0)
		return code;
	if (!*conf)
		return cli_usage_error(cmd, "no config file given: give --config and %s", operands);
	if (p->nargs != nargs)
		return cli_usage_error(cmd, "give --config and %s", operands);
	return -1;
}

int authorized_keys_main(int argc, char **argv)
{
	struct gate_config cfg = { 0 };
	const char *conf = NULL;
	struct cli_parse p;
	int code, ret;

	if ((code = openssh_parse_args(&p, &authorized_keys_command, argc, argv, 3,
				       "the user, the key's type and the key (sshd's %u %t %k)", &conf)) >= 0)
		return code;
	if ((ret = openssh_load(&cfg, conf, "authorized-keys")) ||
	    (ret = authorized_keys_print(&cfg, p.args[0], p.args[1], p.args[2]))) {
		log_error("openssh.failed", "error=%s", error_msg());
		fprintf(stderr, "grove authorized-keys: %s\n", error_msg());
	}
	fflush(stdout);
	authz_free(gate_authz);
	gate_authz = NULL;
	gate_config_release(&cfg);
	return ret ? 1 : 0;
}
