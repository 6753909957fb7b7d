/*
 * `grove completion bash`: a bash completion script made from the tables
 * the commands parse their arguments with, so that it completes exactly
 * the nouns, verbs and options there are:
 *
 *   source <(grove completion bash)
 *
 * contrib/bash-completion/grove is its output (make completion).
 */
#include "lib/common.h"
#include "cli/opt.h"
#include "gate/openssh.h"
#include "lib/strbuf.h"

#define COMPLETION_MAX 96

/* One command: "app create" or "store" (verb NULL), with its options' words. */
struct completion_entry {
	const char *noun, *verb;
	struct strbuf opts;     /* "--route --deploy-branch" */
};

struct completion {
	struct completion_entry e[COMPLETION_MAX];
	size_t n;
	struct strbuf valued;   /* options that take a value, for "--data <TAB>": files */
};

static struct completion_entry *completion_entry(struct completion *c, const char *noun, const char *verb)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->e[i].noun, noun) && (c->e[i].verb == verb || (verb && c->e[i].verb &&
									 !strcmp(c->e[i].verb, verb))))
			return &c->e[i];
	/* A table grew past the array: a mistake of ours, caught by the tests. */
	if (c->n == COMPLETION_MAX)
		abort();
	c->e[c->n].noun = noun;
	c->e[c->n].verb = verb;
	strbuf_init(&c->e[c->n].opts, 4096);
	return &c->e[c->n++];
}

static bool has_word(const struct strbuf *sb, const char *word)
{
	size_t n = strlen(word);

	for (const char *s = sb->len ? sb->buf : ""; (s = strstr(s, word)); s++)
		if (s[-1] == ' ' && (s[n] == ' ' || !s[n]))
			return true;
	return false;
}

/* Adds " WORD" to sb unless it is there. */
static void add_word(struct strbuf *sb, const char *word)
{
	if (!has_word(sb, word))
		strbuf_addf(sb, " %s", word);
}

void completion_add(struct completion *c, const char *noun, const char *verb, const struct cli_option *opts)
{
	struct completion_entry *e = completion_entry(c, noun, verb);

	for (const struct cli_option *o = opts; o && o->name; o++) {
		char *word = xasprintf("--%s", o->name);
		if (*o->name)
			add_word(&e->opts, word);
		if (*o->name && o->arg)
			add_word(&c->valued, word);
		free(word);
		if (o->arg && o->val < CLI_OPT_LONG) {
			char s[3] = { '-', (char)o->val, 0 };
			add_word(&c->valued, s);
		}
	}
	add_word(&e->opts, "--help");
}

static void completion_add_command(struct completion *c, const struct cli_command *cmd)
{
	char *noun = xstrdup(cmd->name), *sp = strchr(noun, ' ');

	/* The names live as long as the process: the script is printed at its end. */
	if (sp)
		*sp++ = 0;
	completion_add(c, noun, sp, cmd->opts);
}

/* The nouns, in the order of the tables, without repeats. */
static void completion_nouns(struct completion *c, struct strbuf *sb)
{
	for (size_t i = 0; i < c->n; i++)
		add_word(sb, c->e[i].noun);
}

static bool noun_seen_before(const struct completion *c, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (!strcmp(c->e[j].noun, c->e[i].noun))
			return true;
	return false;
}

/* The case arms that give each noun's verbs. */
static void completion_print_verbs(const struct completion *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct strbuf verbs;
		if (noun_seen_before(c, i))
			continue;
		strbuf_init(&verbs, 4096);
		for (size_t j = i; j < c->n; j++)
			if (c->e[j].verb && !strcmp(c->e[j].noun, c->e[i].noun))
				add_word(&verbs, c->e[j].verb);
		if (verbs.len)
			printf("\t%s) verbs=\"%s\" ;;\n", c->e[i].noun, verbs.buf + 1);
		strbuf_release(&verbs);
	}
}

static void completion_print_opts(struct completion *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].opts.len)
			printf("\t\"%s %s\") opts=\"%s\" ;;\n", c->e[i].noun, c->e[i].verb ? c->e[i].verb : "",
			       c->e[i].opts.buf + 1);
}

static void completion_print_bash(struct completion *c)
{
	struct strbuf nouns = STRBUF_INIT;

	strbuf_init(&nouns, 4096);
	completion_nouns(c, &nouns);
	printf("# bash completion for grove, made by `grove completion bash` from the tables\n"
	       "# grove parses its arguments with. Use: source <(grove completion bash)\n"
	       "_grove()\n"
	       "{\n"
	       "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev= noun=${COMP_WORDS[1]} verb= verbs= opts= i\n"
	       "\t[ \"$COMP_CWORD\" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	       "\tCOMPREPLY=()\n"
	       "\tif [ \"$COMP_CWORD\" -le 1 ]; then\n"
	       "\t\tCOMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))\n"
	       "\t\treturn 0\n"
	       "\tfi\n"
	       "\tcase \" %s \" in\n"
	       "\t*\" $prev \"*) COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n"
	       "\tesac\n"
	       "\tcase $noun in\n",
	       nouns.buf + 1, c->valued.len ? c->valued.buf + 1 : "");
	completion_print_verbs(c);
	printf("\tesac\n"
	       "\tfor ((i = 2; i < COMP_CWORD; i++)); do\n"
	       "\t\tcase \" $verbs \" in *\" ${COMP_WORDS[i]} \"*) verb=${COMP_WORDS[i]}; break ;; esac\n"
	       "\tdone\n"
	       "\tif [ -n \"$verbs\" ] && [ -z \"$verb\" ] && [[ $cur != -* ]]; then\n"
	       "\t\tCOMPREPLY=($(compgen -W \"$verbs\" -- \"$cur\"))\n"
	       "\t\treturn 0\n"
	       "\tfi\n"
	       "\tcase \"$noun $verb\" in\n");
	completion_print_opts(c);
	printf("\tesac\n"
	       "\tif [[ $cur == -* ]]; then\n"
	       "\t\tCOMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
	       "\telse\n"
	       "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	       "\tfi\n"
	       "\treturn 0\n"
	       "}\n"
	       "complete -F _grove grove\n");
	strbuf_release(&nouns);
}

static const struct cli_command completion_command = {
	"completion", "bash", "Prints a bash completion script: source <(grove completion bash)", NULL, NULL, false,
};

/* The commands that parse no options of their own: nouns only. */
static const char *const bare_nouns[] = { "hook", "version", "help" };

int completion_main(int argc, char **argv)
{
	static struct completion c;
	const struct cli_command *const cmds[] = {
		&up_command, &status_command, &store_command, &gate_command, &cluster_command,
		&authorized_keys_command, &shell_command,
	};
	const struct cli_command *const tools[] = {
		&migrate_command, &backup_command, &restore_command, &connect_command, &rpc_command, &tls_command,
	};
	struct cli_parse p;
	int code;

	cli_parse_init(&p, &completion_command, argc, argv);
	while (cli_parse_next(&p) != -1)
		;
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (!p.nargs)
		return cli_usage_error(&completion_command, "missing the shell: bash");
	if (p.nargs > 1 || strcmp(p.args[0], "bash"))
		return cli_usage_error(&completion_command, "'%s' is not a shell this knows: bash", p.args[p.nargs - 1]);
	strbuf_init(&c.valued, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		completion_add_command(&c, cmds[i]);
	cluster_cli_complete(&c);
	admin_cli_complete(&c);
	for (size_t i = 0; i < ARRAY_SIZE(tools); i++)
		completion_add_command(&c, tools[i]);
	completion_add(&c, "completion", "bash", NULL);
	for (size_t i = 0; i < ARRAY_SIZE(bare_nouns); i++)
		completion_entry(&c, bare_nouns[i], NULL);
	completion_print_bash(&c);
	return 0;
}
