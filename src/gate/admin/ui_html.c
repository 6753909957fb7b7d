/* The dashboard's HTML, escaped and bounded: see ui_html.h. */
#include "gate/admin/ui_html.h"

#include <math.h>

#define CHART_W 560
#define CHART_H 150
#define CHART_TOP 18
#define CHART_BOTTOM 20
#define CHART_LEFT 36

/* Served by the gate itself (no CDN, nothing fetched at run time); the
 * Content-Security-Policy allows this sheet and no inline style. */
const char ui_stylesheet[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f4f5f7}\n"
	"header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}\n"
	"header a{color:#fff;font-weight:600;text-decoration:none}header form{margin-left:auto}\n"
	"main{padding:1em 1.2em;max-width:1200px}\n"
	"section{background:#fff;border:1px solid #d9dce3;border-radius:6px;padding:.6em 1em;margin:0 0 1em}\n"
	"h1{font-size:1.3em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:.3em 0 .5em}\n"
	"table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eceef2;vertical-align:top}\n"
	"th{font-weight:600;color:#555}code,pre{font:12px/1.35 ui-monospace,monospace}\n"
	"pre{background:#111722;color:#e8e8e8;padding:.8em;overflow:auto;max-height:40em}\n"
	".ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}.warn{color:#a05a00;font-weight:600}\n"
	".bar{display:flex;gap:.8em;align-items:center;margin:.3em 0}.bar progress{width:20em;height:1em}\n"
	".charts{display:flex;flex-wrap:wrap;gap:1em}.charts figure{margin:0}.charts figcaption{font-weight:600}\n"
	"svg .b{fill:#3b6fd4}svg .axis{stroke:#999}svg text{font:10px sans-serif;fill:#555}\n"
	".msg{padding:.5em .8em;border-radius:4px;background:#fdecea;color:#b3261e}\n"
	".note{color:#666}button{font:inherit;padding:.3em .9em}input{font:inherit;padding:.25em}\n";

void html_init(struct html *h, size_t max)
{
	strbuf_init(&h->sb, max);
	h->overflow = false;
}

void html_release(struct html *h)
{
	strbuf_release(&h->sb);
}

void html_raw(struct html *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (strbuf_vaddf(&h->sb, fmt, ap))
		h->overflow = true;
	va_end(ap);
}

static void add(struct html *h, const char *s, size_t n)
{
	if (strbuf_add(&h->sb, s, n))
		h->overflow = true;
}

void html_text(struct html *h, const char *s)
{
	const char *run = s;
	if (!s)
		return;
	for (; *s; s++) {
		const char *rep;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		add(h, run, (size_t)(s - run));
		add(h, rep, strlen(rep));
		run = s + 1;
	}
	add(h, run, (size_t)(s - run));
}

void html_url_part(struct html *h, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			add(h, s, 1);
		else
			html_raw(h, "%%%02X", c);
	}
}

void html_around(struct html *h, const char *open, const char *s, const char *close)
{
	html_raw(h, "%s", open);
	html_text(h, s);
	html_raw(h, "%s", close);
}

void html_cell(struct html *h, const char *tag, const char *s)
{
	html_raw(h, "<%s>", tag);
	html_text(h, s && *s ? s : "-");
	html_raw(h, "</%s>", tag);
}

void html_page_start(struct html *h, const char *title, const char *refresh_to)
{
	html_raw(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		    "<link rel=\"stylesheet\" href=\"/ui/style.css\">");
	if (refresh_to) {
		html_raw(h, "<meta http-equiv=\"refresh\" content=\"0; url=");
		html_text(h, refresh_to);
		html_raw(h, "\">");
	}
	html_raw(h, "<title>");
	html_text(h, title);
	html_raw(h, " · Grove</title></head>\n<body>\n");
}

void html_page_end(struct html *h)
{
	html_raw(h, "</main>\n</body></html>\n");
}

void html_progress(struct html *h, const char *label, double value, double max, const char *detail)
{
	html_raw(h, "<div class=\"bar\"><span>");
	html_text(h, label);
	html_raw(h, "</span><progress value=\"%.0f\" max=\"%.0f\">%.0f / %.0f</progress><span>", value,
		 max > 0 ? max : 1, value, max);
	html_text(h, detail);
	html_raw(h, "</span></div>\n");
}

void html_activity(struct html *h, const char *label, const char *detail)
{
	html_raw(h, "<div class=\"bar\"><span>");
	html_text(h, label);
	html_raw(h, "</span><progress>running</progress><span>");
	html_text(h, detail);
	html_raw(h, "</span></div>\n");
}

void html_bar_chart(struct html *h, const char *title, const struct html_bar *bars, size_t n)
{
	double top = 0, slot;
	int plot_h = CHART_H - CHART_TOP - CHART_BOTTOM;

	for (size_t i = 0; i < n; i++)
		top = fmax(top, bars[i].value);
	slot = n ? (double)(CHART_W - CHART_LEFT) / (double)n : 0;
	html_raw(h, "<figure><figcaption>");
	html_text(h, title);
	html_raw(h, "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		    "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
		 CHART_W, CHART_H, CHART_W, CHART_H);
	html_text(h, title);
	html_raw(h, "\"><line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
		    "<text x=\"0\" y=\"%d\">%g</text><text x=\"0\" y=\"%d\">0</text>",
		 CHART_LEFT, CHART_H - CHART_BOTTOM, CHART_W, CHART_H - CHART_BOTTOM, CHART_TOP, top,
		 CHART_H - CHART_BOTTOM);
	for (size_t i = 0; i < n; i++) {
		double bh = top > 0 ? bars[i].value / top * plot_h : 0;
		double x = CHART_LEFT + slot * (double)i;
		html_raw(h, "<rect class=\"b\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", x + 1,
			 CHART_H - CHART_BOTTOM - bh, fmax(slot - 2, 1), bh);
		html_text(h, bars[i].label);
		html_raw(h, ": %g</title></rect>", bars[i].value);
		/* Labels under the bars, as many as fit. */
		if (n <= 12 || i % (n / 6 + 1) == 0 || i + 1 == n) {
			html_raw(h, "<text x=\"%.1f\" y=\"%d\">", x + 1, CHART_H - 6);
			html_text(h, bars[i].label);
			html_raw(h, "</text>");
		}
	}
	html_raw(h, "</svg></figure>\n");
}
