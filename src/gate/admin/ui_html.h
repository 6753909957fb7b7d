/*
 * Building the dashboard's HTML (gate/admin/ui.c) into a bounded buffer.
 *
 * The one rule: what comes from data (app and user names, refs, log lines,
 * error messages) goes through html_text or html_url_part, never through
 * html_raw's format, whose arguments are constants and numbers only. A page
 * that outgrows its bound is not sent half-written: overflow is set and the
 * caller answers an error instead.
 */
#ifndef GROVE_GATE_ADMIN_UI_HTML_H
#define GROVE_GATE_ADMIN_UI_HTML_H

#include "lib/strbuf.h"

struct html {
	struct strbuf sb;
	bool overflow;
};

/* One bar of a chart: its label (escaped) and value. */
struct html_bar {
	const char *label;
	double value;
};

/* The dashboard's stylesheet, served as /ui/style.css. */
extern const char ui_stylesheet[];

void html_init(struct html *h, size_t max);
void html_release(struct html *h);
/* Markup: fmt and its arguments are the program's own, never data. */
void html_raw(struct html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Data as text: escaped for an element's content or a quoted attribute. NULL: nothing. */
void html_text(struct html *h, const char *s);
/* Data as one part of a URL path or query, percent-encoded. */
void html_url_part(struct html *h, const char *s);
/* open, s escaped, close: markup around data (open and close are constants). */
void html_around(struct html *h, const char *open, const char *s, const char *close);
/* <tag>s</tag>, s escaped; "-" for NULL or "". */
void html_cell(struct html *h, const char *tag, const char *s);
/* The page's head and the opening of its body, and its end; refresh_to:
 * a path the browser goes on to at once (NULL: none). */
void html_page_start(struct html *h, const char *title, const char *refresh_to);
void html_page_end(struct html *h);
/* A labelled progress bar: value out of max. */
void html_progress(struct html *h, const char *label, double value, double max, const char *detail);
/* The same for work whose end is not known: a bar that moves without a value. */
void html_activity(struct html *h, const char *label, const char *detail);
/* An inline SVG bar chart with a title, bars left to right. */
void html_bar_chart(struct html *h, const char *title, const struct html_bar *bars, size_t n);

#endif
