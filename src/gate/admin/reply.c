/*
 * What a handler of the admin API answers: a status with a JSON document,
 * errors as {"error": "what and what to do"}, and the checks of a request
 * body's fields, answered as the caller's reply when they fail.
 */
#include "gate/admin/admin_int.h"
#include "lib/adminreq.h"
#include "lib/error.h"
#include "lib/strbuf.h"

/*
 * Appends s as valid UTF-8: every byte that does not start a well-formed
 * sequence becomes U+FFFD. Deploy logs and refs are bytes; JSON is text.
 */
static void utf8_repair(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		size_t n = 0;
		unsigned cp = 0;
		if (*p < 0x80) {
			n = 1;
		} else if (*p >= 0xc2 && *p <= 0xdf) {
			n = 2, cp = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 3, cp = *p & 0x0f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 4, cp = *p & 0x07;
		}
		if (n > 1) {
			if ((size_t)(end - p) < n) {
				n = 0;
			} else {
				for (size_t i = 1; i < n; i++) {
					if ((p[i] & 0xc0) != 0x80) {
						n = 0;
						break;
					}
					cp = (cp << 6) | (p[i] & 0x3f);
				}
				/* Overlong forms, surrogates and code points past U+10FFFF. */
				if (n && ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
					  (cp >= 0xd800 && cp <= 0xdfff)))
					n = 0;
			}
		}
		if (!n) {
			strbuf_addstr(sb, "\xef\xbf\xbd");
			p++;
			continue;
		}
		strbuf_add(sb, p, n);
		p += n;
	}
}

/* A JSON string for s (null for NULL), repaired into UTF-8 when needed. */
json_t *jstr(const char *s)
{
	json_t *j;
	struct strbuf sb = STRBUF_INIT;
	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	utf8_repair(&sb, s, strlen(s));
	j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

int reply_error(struct reply *out, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(out->json);
	/* Messages quote input, which may be cut mid-character: jstr repairs. */
	out->json = json_object();
	json_object_set_new(out->json, "error", jstr(msg));
	out->status = status;
	return status;
}

/* The HTTP status that a GROVE_E* code from a lower layer means. */
static int http_status(int code)
{
	switch (code) {
	case GROVE_EINVAL: return MHD_HTTP_BAD_REQUEST;
	case GROVE_ENOTFOUND: return MHD_HTTP_NOT_FOUND;
	case GROVE_EEXISTS: return MHD_HTTP_CONFLICT;
	case GROVE_EPRECOND: return MHD_HTTP_CONFLICT;
	case GROVE_ETOOBIG: return MHD_HTTP_CONTENT_TOO_LARGE;
	case GROVE_EAUTH: return MHD_HTTP_UNAUTHORIZED;
	case GROVE_EDENIED: return MHD_HTTP_FORBIDDEN;
	case GROVE_EUNAVAIL: return MHD_HTTP_SERVICE_UNAVAILABLE;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

/* Answers the thread's error message with the status its code means. */
int reply_grove_error(struct reply *out, int code)
{
	return reply_error(out, http_status(code), "%s", error_msg()[0] ? error_msg() : error_code_name(code));
}

int call_answer(struct call *x, int status, json_t *json)
{
	json_decref(x->out->json);
	x->out->json = json;
	x->out->status = status;
	return status;
}

/* The parsing itself is in lib/adminreq.c (shared with the fuzzer); these
 * answer its refusal as the handler's reply. */
int call_check_fields(struct call *x, const char *const *allowed)
{
	int ret = adminreq_check_fields(x->body, allowed);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

int call_get_str(struct call *x, const char *name, bool required, const char **out)
{
	int ret = adminreq_get_str(x->body, name, required, out);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

int call_get_bool(struct call *x, const char *name, bool *present, bool *out)
{
	int ret = adminreq_get_bool(x->body, name, present, out);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

int call_get_int(struct call *x, const char *name, int64_t min, int64_t max, bool *present, int64_t *out)
{
	int ret = adminreq_get_int(x->body, name, min, max, present, out);
	return ret ? reply_grove_error(x->out, ret) : 0;
}

/* Ends a handler's transaction: committed if all went well (0), else rolled
 * back and the error answered (the reply's status). */
int call_txn_end(struct call *x, int ret, const char *what)
{
	if (!ret)
		ret = db_commit(x->db, what);
	if (!ret)
		return 0;
	reply_grove_error(x->out, ret);
	db_rollback(x->db);
	return x->out->status;
}

int check_branch(struct reply *out, const char *name)
{
	int ret = adminreq_check_branch(name);
	return ret ? reply_grove_error(out, ret) : 0;
}

/* The branch name without "refs/heads/": apps store the short name. */
const char *short_branch(const char *name)
{
	const char *rest;
	return skip_prefix(name, "refs/heads/", &rest) ? rest : name;
}

/* Parses a decimal integer in [min, max] with nothing around it. */
bool parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}
