/* JSON-lines logging: see log.h. */
#include "lib/common.h"
#include "lib/log.h"
#include "lib/strbuf.h"

#include <ctype.h>
#include <sys/random.h>
#include <time.h>

static const char *log_role = "grove";
static _Atomic int log_min = LOG_INFO;   /* a reload (SIGHUP) changes it while threads log */
static int log_fd = 2;
static _Thread_local char corr_id[65];

static const char *level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *role, enum log_level min_level, int fd)
{
	log_role = role;
	log_min = min_level;
	log_fd = fd;
}

void log_set_output(const char *role, int fd)
{
	log_role = role;
	log_fd = fd;
}

enum log_level log_level_now(void)
{
	return (enum log_level)log_min;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (!strcmp(name, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_correlation_id(const char *id)
{
	strlcpy_(corr_id, id ? id : "", sizeof(corr_id));
}

const char *log_correlation_id(void)
{
	return corr_id;
}

void log_new_correlation_id(char out[33])
{
	unsigned char raw[16];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		/* Uniqueness, not secrecy, is what matters here. */
		uint64_t t = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
		memcpy(raw, &t, sizeof(t));
		memcpy(raw + 8, &t, sizeof(t));
	}
	hex_encode(raw, sizeof(raw), out);
}

/* Reads one key=%conv pair's conversion and appends the JSON value. */
static const char *add_value(struct strbuf *sb, const char *p, va_list *ap)
{
	char buf[64];
	if (*p != '%')
		return NULL;
	p++;
	if (!strncmp(p, ".*s", 3)) {
		int n = va_arg(*ap, int);
		const char *s = va_arg(*ap, const char *);
		strbuf_add_json_str(sb, s ? s : "", s ? (size_t)(n < 0 ? 0 : n) : 0);
		return p + 3;
	}
	switch (*p) {
	case 's': {
		const char *s = va_arg(*ap, const char *);
		if (s)
			strbuf_add_json_str(sb, s, strlen(s));
		else
			strbuf_addstr(sb, "null");
		return p + 1;
	}
	case 'd': snprintf(buf, sizeof(buf), "%d", va_arg(*ap, int)); strbuf_addstr(sb, buf); return p + 1;
	case 'u': snprintf(buf, sizeof(buf), "%u", va_arg(*ap, unsigned)); strbuf_addstr(sb, buf); return p + 1;
	case 'b': strbuf_addstr(sb, va_arg(*ap, int) ? "true" : "false"); return p + 1;
	case 'f': snprintf(buf, sizeof(buf), "%.3f", va_arg(*ap, double)); strbuf_addstr(sb, buf); return p + 1;
	case 'z':
		if (p[1] == 'u') {
			snprintf(buf, sizeof(buf), "%zu", va_arg(*ap, size_t));
			strbuf_addstr(sb, buf);
			return p + 2;
		}
		return NULL;
	case 'l':
		if (p[1] == 'd') { snprintf(buf, sizeof(buf), "%ld", va_arg(*ap, long)); strbuf_addstr(sb, buf); return p + 2; }
		if (p[1] == 'u') { snprintf(buf, sizeof(buf), "%lu", va_arg(*ap, unsigned long)); strbuf_addstr(sb, buf); return p + 2; }
		if (p[1] == 'l' && p[2] == 'd') { snprintf(buf, sizeof(buf), "%lld", va_arg(*ap, long long)); strbuf_addstr(sb, buf); return p + 3; }
		if (p[1] == 'l' && p[2] == 'u') { snprintf(buf, sizeof(buf), "%llu", va_arg(*ap, unsigned long long)); strbuf_addstr(sb, buf); return p + 3; }
		return NULL;
	default:
		return NULL;
	}
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	struct strbuf sb;
	struct timespec ts;
	struct tm tm;
	char tbuf[40];
	va_list ap;

	if ((int)level < log_min)
		return;
	/* A log line is bounded too: a huge value is cut, not the process. */
	strbuf_init(&sb, 16384);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	strbuf_addf(&sb, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%d,\"event\":",
		    tbuf, ts.tv_nsec / 1000000, level_names[level], log_role, (int)getpid());
	strbuf_add_json_str(&sb, event, strlen(event));
	if (corr_id[0]) {
		strbuf_addstr(&sb, ",\"correlation_id\":");
		strbuf_add_json_str(&sb, corr_id, strlen(corr_id));
	}

	va_start(ap, fmt);
	const char *p = fmt ? fmt : "";
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		strbuf_addch(&sb, ',');
		strbuf_add_json_str(&sb, p, (size_t)(eq - p));
		strbuf_addch(&sb, ':');
		p = add_value(&sb, eq + 1, &ap);
		if (!p) {
			/* A format this logger does not know: stop before va_arg goes astray. */
			strbuf_addstr(&sb, "\"?\"");
			break;
		}
	}
	va_end(ap);
	strbuf_addstr(&sb, "}\n");
	if (sb.len >= sb.max - 2) {
		/* Cut: keep it one line that says so. */
		sb.len = 0;
		strbuf_addf(&sb, "{\"level\":\"%s\",\"role\":\"%s\",\"event\":\"log.truncated\"}\n",
			    level_names[level], log_role);
	}
	ssize_t off = 0;
	while (off < (ssize_t)sb.len) {
		ssize_t n = write(log_fd, sb.buf + off, sb.len - (size_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	strbuf_release(&sb);
}
