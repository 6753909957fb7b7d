/*
 * Options from a command's table: getopt_long to parse them, and the usage
 * and help printed from the same rows. See cli/opt.h.
 */
#include "lib/common.h"
#include "cli/opt.h"

#include <stdarg.h>

static const struct cli_option help_option = { "help", 'h', NULL, "show this help" };

static void add_option(struct cli_parse *p, const struct cli_option *o, size_t *nlong, size_t *nshort)
{
	if (*o->name) {
		struct option *lo = &p->longopts[(*nlong)++];
		lo->name = o->name;
		lo->has_arg = o->arg ? required_argument : no_argument;
		lo->val = o->val;
	}
	if (o->val >= CLI_OPT_LONG)
		return;
	p->shortopts[(*nshort)++] = (char)o->val;
	if (o->arg)
		p->shortopts[(*nshort)++] = ':';
}

void cli_parse_init(struct cli_parse *p, const struct cli_command *cmd, int argc, char **argv)
{
	size_t nlong = 0, nshort = 0;

	memset(p, 0, sizeof(*p));
	p->cmd = cmd;
	p->argc = argc;
	p->argv = argv;
	p->args = argv + 1;
	/*
	 * '-' hands operands back in order (no permuting, whatever
	 * POSIXLY_CORRECT says); '+' stops at the first one, for commands whose
	 * operands carry options of their own. ':' reports a missing value.
	 */
	p->shortopts[nshort++] = cmd->in_order ? '+' : '-';
	p->shortopts[nshort++] = ':';
	for (const struct cli_option *o = cmd->opts; o && o->name && nlong < CLI_OPTS_MAX; o++)
		add_option(p, o, &nlong, &nshort);
	add_option(p, &help_option, &nlong, &nshort);
	/* getopt's state is global: start afresh, and let us word the mistakes. */
	optind = 0;
	opterr = 0;
}

/* "unknown option '--frob'", "--route needs a value", …: the first mistake only. */
static void cli_parse_note(struct cli_parse *p, int c)
{
	const char *arg = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
	const char *eq = strchr(arg, '=');
	int len = eq ? (int)(eq - arg) : (int)strlen(arg);
	/* A short option's mistake inside "-xyz" leaves optind where it was. */
	bool is_long = !strncmp(arg, "--", 2) && (c == ':' || !optopt || eq);

	if (*p->err)
		return;
	if (c == ':' && is_long)
		snprintf(p->err, sizeof(p->err), "%.*s needs a value", len, arg);
	else if (c == ':')
		snprintf(p->err, sizeof(p->err), "-%c needs a value", optopt);
	else if (is_long && optopt)
		snprintf(p->err, sizeof(p->err), "%.*s takes no value", len, arg);
	else if (is_long)
		snprintf(p->err, sizeof(p->err), "unknown option '%.*s'", len, arg);
	else
		snprintf(p->err, sizeof(p->err), "unknown option '-%c'", optopt);
}

int cli_parse_next(struct cli_parse *p)
{
	for (;;) {
		int c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);

		switch (c) {
		case -1:
			/* After "--", or from the first operand of an in-order command. */
			while (optind < p->argc)
				p->args[p->nargs++] = p->argv[optind++];
			return -1;
		case 1:
			/* Never ahead of getopt: args[nargs] is behind optind. */
			p->args[p->nargs++] = optarg;
			break;
		case 'h':
			p->help = true;
			break;
		case '?':
		case ':':
			cli_parse_note(p, c);
			break;
		default:
			return c;
		}
	}
}

int cli_parse_end(struct cli_parse *p)
{
	if (p->help) {
		cli_command_usage(p->cmd, stdout, true);
		return 0;
	}
	if (*p->err)
		return cli_usage_error(p->cmd, "%s", p->err);
	return -1;
}

int cli_daemon_args_end(struct cli_parse *p, const char *conf, bool init, bool check)
{
	int code;

	if ((code = cli_parse_end(p)) >= 0)
		return code;
	if (p->nargs)
		return cli_usage_error(p->cmd, "unknown argument '%s'", p->args[0]);
	if (!init && !conf)
		return cli_usage_error(p->cmd, "no config file given");
	if (check && !conf)
		return cli_usage_error(p->cmd, "--check-config checks the file -c names: give it");
	return -1;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "grove %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_command_usage(cmd, stderr, false);
	return 2;
}

/* "  -c, --config FILE" or "      --init DIR": the left column of an option's line. */
static int option_left(const struct cli_option *o, char *buf, size_t n)
{
	char s[8] = "    ";

	if (!*o->name)
		return snprintf(buf, n, "  -%c%s%s", o->val, o->arg ? " " : "", o->arg ? o->arg : "");
	if (o->val < CLI_OPT_LONG)
		snprintf(s, sizeof(s), "-%c, ", o->val);
	return snprintf(buf, n, "  %s--%s%s%s", s, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* The options' lines, aligned, -h/--help last. */
static void cli_options_print(const struct cli_option *opts, FILE *f)
{
	char left[128];
	int width = option_left(&help_option, left, sizeof(left));

	for (const struct cli_option *o = opts; o && o->name; o++)
		if (o->help && option_left(o, left, sizeof(left)) > width)
			width = option_left(o, left, sizeof(left));
	for (const struct cli_option *o = opts; o && o->name; o++) {
		if (!o->help)
			continue;
		option_left(o, left, sizeof(left));
		fprintf(f, "%-*s  %s\n", width, left, o->help);
	}
	option_left(&help_option, left, sizeof(left));
	fprintf(f, "%-*s  %s\n", width, left, help_option.help);
}

void cli_command_usage(const struct cli_command *cmd, FILE *f, bool full)
{
	const char *line = cmd->synopsis, *prefix = "usage:";

	for (;;) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);
		fprintf(f, "%s grove %s%s%.*s\n", prefix, cmd->name, len ? " " : "", len, line);
		if (!nl)
			break;
		line = nl + 1;
		prefix = "   or:";
	}
	fprintf(f, "\n%s\n\n", cmd->what);
	cli_options_print(cmd->opts, f);
	if (full && cmd->more)
		fprintf(f, "\n%s", cmd->more);
}
