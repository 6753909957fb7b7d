/*
 * Grove behind the system's OpenSSH (docs/openssh.md): sshd's
 * AuthorizedKeysCommand (openssh.c) and the forced command it gives each
 * key Grove knows (shell.c).
 */
#ifndef GROVE_GATE_OPENSSH_H
#define GROVE_GATE_OPENSSH_H

struct gate_config;
struct cli_command;

/* `grove authorized-keys --config FILE USER TYPE KEY` */
int authorized_keys_main(int argc, char **argv);
/* `grove shell --config FILE FINGERPRINT`, with SSH_ORIGINAL_COMMAND */
int shell_main(int argc, char **argv);

extern const struct cli_command authorized_keys_command, shell_command;

/*
 * The command line of a process sshd starts: --config FILE and nargs
 * operands (p->args), usage the mistake it names otherwise. Returns -1 to
 * go on, or the exit code (help shown, usage error).
 */
struct cli_parse;
int openssh_parse_args(struct cli_parse *p, const struct cli_command *cmd, int argc, char **argv, int nargs,
		       const char *operands, const char **conf);

/*
 * The gate's config for a process sshd started: its path made absolute,
 * the log lines (as role) to openssh.logFile, auth.url's client. Returns 0
 * or an error (nothing is logged yet then: tell stderr).
 */
int openssh_load(struct gate_config *cfg, const char *conf, const char *role);

#endif
