/* Per-thread error messages: see error.h. */
#include "lib/common.h"
#include "lib/error.h"

#include <syslog.h>

static _Thread_local char err_buf[1024];

/* n: what (v)snprintf into err_buf returned. A message that did not fit
 * ends in "..." to show it was cut. */
static void mark_cut(int n)
{
	if (n < 0 || (size_t)n >= sizeof(err_buf))
		memcpy(err_buf + sizeof(err_buf) - 4, "...", 4);
}

int error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mark_cut(vsnprintf(err_buf, sizeof(err_buf), fmt, ap));
	va_end(ap);
	return code;
}

int error_wrap(int code, const char *fmt, ...)
{
	char prefix[512], old[sizeof(err_buf)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	strlcpy_(old, err_buf, sizeof(old));
	if (old[0])
		mark_cut(snprintf(err_buf, sizeof(err_buf), "%s: %s", prefix, old));
	else
		strlcpy_(err_buf, prefix, sizeof(err_buf));
	return code;
}

const char *error_msg(void)
{
	return err_buf;
}

void error_clear(void)
{
	err_buf[0] = '\0';
}

const char *error_code_name(int code)
{
	switch (code) {
	case GROVE_OK: return "ok";
	case GROVE_EINVAL: return "invalid argument";
	case GROVE_ENOTFOUND: return "not found";
	case GROVE_EEXISTS: return "already exists";
	case GROVE_EIO: return "i/o error";
	case GROVE_ETOOBIG: return "too big";
	case GROVE_EAUTH: return "unauthenticated";
	case GROVE_EDENIED: return "permission denied";
	case GROVE_EUNAVAIL: return "unavailable";
	case GROVE_EPRECOND: return "failed precondition";
	case GROVE_ECANCELLED: return "cancelled";
	case GROVE_ETIMEOUT: return "timed out";
	case GROVE_EPROTO: return "protocol error";
	default: return "internal error";
	}
}

void error_to_syslog(const char *prefix)
{
	syslog(LOG_ERR, "%s: %s", prefix, error_msg());
}
