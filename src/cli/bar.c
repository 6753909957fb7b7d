/* Progress bars of the operator's commands: see bar.h. */
#include "cli/bar.h"
#include "lib/common.h"

#include <stdio.h>

#define BAR_WIDTH 30

void cli_bar_init(struct cli_bar *b, const char *what, bool tty)
{
	memset(b, 0, sizeof(*b));
	b->tty = tty;
	strlcpy_(b->what, what, sizeof(b->what));
}

void cli_bar_show(struct cli_bar *b, const char *phase, uint64_t done, uint64_t total)
{
	char d[32], t[32];
	bool new_phase = strcmp(b->phase, phase) != 0;

	strlcpy_(b->phase, phase, sizeof(b->phase));
	bytes_human(done, d, sizeof(d));
	if (!b->tty) {
		if (new_phase)
			fprintf(stderr, "%s: %s\n", b->what, phase);
		return;
	}
	if (total) {
		int fill = (int)((done > total ? total : done) * BAR_WIDTH / total);
		bytes_human(total, t, sizeof(t));
		fprintf(stderr, "\r%s: [%.*s%.*s] %-10s %s of ~%s\033[K", b->what, fill, "##############################",
			BAR_WIDTH - fill, "..............................", phase, d, t);
	} else {
		fprintf(stderr, "\r%s: %-10s %s\033[K", b->what, phase, d);
	}
	b->drawn = true;
}

void cli_bar_done(struct cli_bar *b)
{
	if (b->drawn)
		fputc('\n', stderr);
	b->drawn = false;
}
