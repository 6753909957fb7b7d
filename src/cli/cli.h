/* The operator's command line: subcommands that are not daemons. */
#ifndef GROVE_CLI_H
#define GROVE_CLI_H

/* `grove connect`: git's ssh stand-in that speaks grove.v1.SSHService. */
int connect_main(int argc, char **argv);

/*
 * The shared secret for a grove.v1 client: from file if given, else
 * $GROVE_SECRET, else the file $GROVE_SECRET_FILE names; *out NULL if none.
 */
int cli_load_secret(const char *file, char **out);

/* `grove rpc`: call any grove.v1 method with fields given as path=value. */
int rpc_main(int argc, char **argv);

/*
 * `grove user|key|app|access|deploy VERB …` and `grove canary`: the gate's
 * admin API from the shell; argv[0] is the noun.
 */
int admin_cli_main(const char *noun, int argc, char **argv);

/*
 * The gate's admin API for the operator's commands: the address from
 * $GROVE_ADMIN_URL (default http://127.0.0.1:8080), the token from
 * $GROVE_ADMIN_TOKEN, the file $GROVE_ADMIN_TOKEN_FILE names, or
 * ./grove-data/gate/admin-token (an error saying so when none is there).
 */
const char *cli_admin_url(void);
int cli_admin_token(char **out);

/*
 * One admin API request: *status is the HTTP status, *resp the JSON answer
 * (or NULL). Returns non-zero only when the API cannot be reached.
 */
struct json_t;
int admin_call(const char *base, const char *token, const char *method, const char *path, struct json_t *body,
	       long *status, struct json_t **resp);

/* `grove migrate --percent N …`: batch live migration between the routes. */
int migrate_main(int argc, char **argv);

/* `grove backup APP` and `grove restore APP`: an app's repository as a git bundle. */
int backup_main(const char *verb, int argc, char **argv);

/* `grove status`: the running stack (gate and cluster) in a few lines. */
int status_main(int argc, char **argv);

/* `grove tls ca|cert`: certificates for mutual TLS between the parts. */
int tls_main(int argc, char **argv);

/* `grove up`: the whole stack on loopback, in one command. */
int up_main(int argc, char **argv);

#endif
