/*
 * The command line of every grove command: one table per command says its
 * options, and from it come the getopt_long tables that parse them, the
 * `--help` text and `grove completion bash`, so the three cannot disagree.
 *
 *   static const struct cli_option opts[] = {
 *           { "config", 'c', "FILE", "the configuration to run with" },
 *           { "init", OPT_INIT, "DIR", "write a configuration for loopback in DIR" },
 *           { NULL },
 *   };
 *
 * -h and --help are every command's and need no row.
 */
#ifndef GROVE_CLI_OPT_H
#define GROVE_CLI_OPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* Values of options without a short form start here (getopt_long's val). */
#define CLI_OPT_LONG 256
#define CLI_OPTS_MAX 16

struct cli_option {
	const char *name;       /* the long name, without "--"; "": a short option only */
	int val;                /* the short letter, or CLI_OPT_LONG + n for none */
	const char *arg;        /* the value's name in the help; NULL: a flag */
	const char *help;       /* one line; NULL: left out of the generated help */
};

struct cli_command {
	const char *name;       /* what follows "grove ": "store", "cluster repo" */
	const char *synopsis;   /* what follows "grove NAME", one alternative a line */
	const char *what;       /* one line: what it does */
	const struct cli_option *opts;   /* ends with a row whose name is NULL */
	const char *more;       /* printed after the options (a config reference…), or NULL */
	bool in_order;          /* the options end at the first operand (what follows is another's) */
};

/*
 * One parse of argv against a command: getopt_long's tables, the operands
 * and what went wrong. Operands are moved, in order, to args[0..nargs-1]
 * (inside argv, as git's parse-options does). A mistake does not stop the
 * parse, so that --help anywhere on the line still wins.
 */
struct cli_parse {
	const struct cli_command *cmd;
	int argc;
	char **argv;
	struct option longopts[CLI_OPTS_MAX + 2];
	char shortopts[3 * CLI_OPTS_MAX + 8];
	char **args;
	int nargs;
	bool help;
	char err[256];          /* the first mistake, "" if none */
};

void cli_parse_init(struct cli_parse *p, const struct cli_command *cmd, int argc, char **argv);

/* The next option's val (optarg holds its value), or -1 once the options end. */
int cli_parse_next(struct cli_parse *p);

/*
 * After the options: -1 to go on; else the exit code, the help printed
 * (0) or the mistake in one line and the usage (2).
 */
int cli_parse_end(struct cli_parse *p);

/*
 * cli_parse_end for a daemon's line (grove store, cluster, gate): besides,
 * no operand, and a configuration to run or check (-c) unless the line
 * only writes one (init). -1 to go on, else the exit code.
 */
int cli_daemon_args_end(struct cli_parse *p, const char *conf, bool init, bool check);

/* "grove NAME: MESSAGE" and the usage on stderr; returns 2, a usage error's exit code. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The usage lines and the one-line description; with full, the options and the rest too. */
void cli_command_usage(const struct cli_command *cmd, FILE *f, bool full);

/*
 * `grove completion bash`: a bash completion script for every noun, verb
 * and option. Each table of commands adds itself with completion_add().
 */
struct completion;
void completion_add(struct completion *c, const char *noun, const char *verb, const struct cli_option *opts);
int completion_main(int argc, char **argv);

/* The tables of the commands outside src/cli, for completion. */
extern const struct cli_command store_command, gate_command, cluster_command;
/* src/cli/admin.c and src/cli/cluster.c add their nouns and verbs. */
void admin_cli_complete(struct completion *c);
void cluster_cli_complete(struct completion *c);
/* The tables of src/cli's own commands. */
extern const struct cli_command up_command, status_command, migrate_command, backup_command, restore_command,
	rpc_command, connect_command, tls_command;

#endif
