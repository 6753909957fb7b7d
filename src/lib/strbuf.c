/* Bounded growable buffers: see strbuf.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/strbuf.h"

static char empty_buf[1];

void strbuf_init(struct strbuf *sb, size_t max)
{
	sb->buf = empty_buf;
	sb->len = 0;
	sb->alloc = 0;
	sb->max = max ? max : SIZE_MAX / 2;
}

static void ensure_init(struct strbuf *sb)
{
	if (!sb->buf)
		strbuf_init(sb, sb->max);
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	strbuf_init(sb, sb->max);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *r;
	ensure_init(sb);
	if (!sb->alloc)
		r = xstrdup("");
	else
		r = sb->buf;
	if (len)
		*len = sb->len;
	strbuf_init(sb, sb->max);
	return r;
}

void strbuf_reset(struct strbuf *sb)
{
	ensure_init(sb);
	sb->len = 0;
	if (sb->alloc)
		sb->buf[0] = '\0';
}

int strbuf_grow(struct strbuf *sb, size_t extra)
{
	ensure_init(sb);
	if (extra > sb->max || sb->len > sb->max - extra)
		return error_set(GROVE_ETOOBIG, "buffer limit of %zu bytes exceeded", sb->max);
	if (sb->len + extra + 1 <= sb->alloc)
		return 0;
	size_t want = sb->len + extra + 1;
	size_t n = sb->alloc ? sb->alloc : 64;
	while (n < want)
		n = n < SIZE_MAX / 2 ? n * 2 : want;
	if (!sb->alloc) {
		sb->buf = xmalloc(n);
		sb->buf[0] = '\0';
	} else {
		sb->buf = xrealloc(sb->buf, n);
	}
	sb->alloc = n;
	return 0;
}

int strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	int ret = strbuf_grow(sb, len);
	if (ret)
		return ret;
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int strbuf_addstr(struct strbuf *sb, const char *s)
{
	return strbuf_add(sb, s, strlen(s));
}

int strbuf_addch(struct strbuf *sb, int c)
{
	char ch = (char)c;
	return strbuf_add(sb, &ch, 1);
}

int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int ret;
	ensure_init(sb);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return error_set(GROVE_EINTERNAL, "bad format string");
	ret = strbuf_grow(sb, (size_t)n);
	if (ret)
		return ret;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
	return ret;
}

void strbuf_consume(struct strbuf *sb, size_t n)
{
	ensure_init(sb);
	if (n >= sb->len) {
		strbuf_reset(sb);
		return;
	}
	memmove(sb->buf, sb->buf + n, sb->len - n);
	sb->len -= n;
	sb->buf[sb->len] = '\0';
}

void strbuf_rtrim(struct strbuf *sb)
{
	ensure_init(sb);
	while (sb->len && (sb->buf[sb->len - 1] == ' ' || sb->buf[sb->len - 1] == '\n' ||
			   sb->buf[sb->len - 1] == '\r' || sb->buf[sb->len - 1] == '\t'))
		sb->len--;
	if (sb->alloc)
		sb->buf[sb->len] = '\0';
}

int strbuf_add_json_str(struct strbuf *sb, const char *s, size_t len)
{
	int ret = strbuf_addch(sb, '"');
	for (size_t i = 0; !ret && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': ret = strbuf_addstr(sb, "\\\""); break;
		case '\\': ret = strbuf_addstr(sb, "\\\\"); break;
		case '\n': ret = strbuf_addstr(sb, "\\n"); break;
		case '\r': ret = strbuf_addstr(sb, "\\r"); break;
		case '\t': ret = strbuf_addstr(sb, "\\t"); break;
		default:
			/* Control bytes and anything that is not ASCII are escaped, so
			 * a log line stays valid JSON whatever a client sent. */
			if (c < 0x20 || c >= 0x7f)
				ret = strbuf_addf(sb, "\\u%04x", c);
			else
				ret = strbuf_addch(sb, c);
		}
	}
	if (!ret)
		ret = strbuf_addch(sb, '"');
	return ret;
}
