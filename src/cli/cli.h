/* The operator's command line: subcommands that are not daemons. */
#ifndef GROVE_CLI_H
#define GROVE_CLI_H

/* `grove connect`: git's ssh stand-in that speaks grove.v1.SSHService. */
int connect_main(int argc, char **argv);

/* `grove rpc`: call any grove.v1 method with fields given as path=value. */
int rpc_main(int argc, char **argv);

/* `grove user|key|app|access|deploy …`: the gate's admin API from the shell. */
int admin_cli_main(const char *noun, int argc, char **argv);

#endif
