/* The entry points of `grove cluster`, for the grove dispatcher. */
#ifndef GROVE_CLUSTER_MAIN_H
#define GROVE_CLUSTER_MAIN_H

/* The router (grove cluster -c FILE) or, with a subcommand, the operator's CLI. */
int cluster_main(int argc, char **argv);
/* src/cli/cluster.c: grove cluster status|repo|… */
int cluster_cli_main(int argc, char **argv);

#endif
