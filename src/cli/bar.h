/*
 * The progress of one long operation for the operator's commands (grove
 * backup, restore, app migrate): on a terminal, a bar on stderr redrawn in
 * place; otherwise a plain line per phase, for logs and scripts.
 */
#ifndef GROVE_CLI_BAR_H
#define GROVE_CLI_BAR_H

#include <stdbool.h>
#include <stdint.h>

struct cli_bar {
	bool tty;
	bool drawn;              /* a bar is on the line: cli_bar_done ends it */
	char what[96];           /* "restore web" */
	char phase[32];          /* the last phase shown */
};

/* tty: draw in place (isatty(2) usually). */
void cli_bar_init(struct cli_bar *b, const char *what, bool tty);
/* Where the operation stands: total 0 when not known. */
void cli_bar_show(struct cli_bar *b, const char *phase, uint64_t done, uint64_t total);
/* Ends the bar's line, if one was drawn. */
void cli_bar_done(struct cli_bar *b);

/*
 * Follows an operation the gate runs while the command waits for its
 * answer (grove app migrate): asks GET /api/v1/operations four times a
 * second for the one of app and kind, and shows it on a bar. NULL when the
 * admin API's token cannot be read (the command then just waits).
 */
struct op_watch;
struct op_watch *op_watch_start(const char *what, const char *app, const char *kind);
void op_watch_stop(struct op_watch *w);

#endif
