/* The hooks' wire to the store: see hookwire.h. libc only. */
#include "lib/hookwire.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void hookwire_head(uint8_t head[HOOKWIRE_HEAD], char type, uint32_t len)
{
	head[0] = (uint8_t)type;
	head[1] = (uint8_t)(len >> 24);
	head[2] = (uint8_t)(len >> 16);
	head[3] = (uint8_t)(len >> 8);
	head[4] = (uint8_t)len;
}

int hookwire_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hookwire_send(int fd, char type, const void *data, size_t len)
{
	uint8_t head[HOOKWIRE_HEAD];

	hookwire_head(head, type, (uint32_t)len);
	return hookwire_write_all(fd, head, sizeof(head)) || hookwire_write_all(fd, data, len) ? -1 : 0;
}

int hookwire_next(const uint8_t *buf, size_t len, size_t max, char *type, const uint8_t **data, uint32_t *dlen,
		  size_t *used)
{
	uint32_t n;

	if (len < HOOKWIRE_HEAD)
		return 0;
	n = be32(buf + 1);
	if (n > max)
		return -1;
	if (len - HOOKWIRE_HEAD < n)
		return 0;
	*type = (char)buf[0];
	*data = buf + HOOKWIRE_HEAD;
	*dlen = n;
	*used = HOOKWIRE_HEAD + (size_t)n;
	return 1;
}

/* The order a request's frames come in: N, A?, V*, I?. */
static int frame_rank(char type)
{
	switch (type) {
	case 'N': return 0;
	case 'A': return 1;
	case 'V': return 2;
	case 'I': return 3;
	default: return -1;
	}
}

static int take(struct hookwire_req *req, char type, const uint8_t *data, uint32_t n, const char **why)
{
	switch (type) {
	case 'N':
		if (!n || n > 64)
			return *why = "the hook's name is empty or too long", -1;
		req->name = (const char *)data;
		req->name_len = n;
		return 0;
	case 'A':
		if (n > 64)
			return *why = "the hook's argument is too long", -1;
		req->arg = (const char *)data;
		req->arg_len = n;
		return 0;
	case 'V':
		if (req->nvars == HOOKWIRE_VARS_MAX)
			return *why = "too many variables", -1;
		if (n > HOOKWIRE_VAR_MAX || !memchr(data, '=', n))
			return *why = "a variable is too long, or not NAME=VALUE", -1;
		req->vars[req->nvars] = (const char *)data;
		req->var_lens[req->nvars++] = n;
		return 0;
	default:
		req->in = (const char *)data;
		req->in_len = n;
		return 0;
	}
}

int hookwire_parse(const uint8_t *buf, size_t len, struct hookwire_req *req, const char **why)
{
	size_t off = 0, used;
	int last = -1;

	memset(req, 0, sizeof(*req));
	*why = "";
	while (off < len) {
		const uint8_t *data;
		uint32_t n;
		char type;
		int r = hookwire_next(buf + off, len - off, HOOKWIRE_IN_MAX, &type, &data, &n, &used), rank;

		if (r <= 0)
			return *why = r ? "a frame is longer than any may be" : "the request ends inside a frame", -1;
		rank = frame_rank(type);
		if (rank < 0)
			return *why = "a frame of an unknown type", -1;
		/* In order, and only V repeats. */
		if (rank < last || (rank == last && type != 'V'))
			return *why = "frames out of order, or repeated", -1;
		if (type != 'I' && n > HOOKWIRE_VAR_MAX)
			return *why = "a frame is longer than its kind may be", -1;
		if (take(req, type, data, n, why))
			return -1;
		last = rank;
		off += used;
	}
	if (!req->name)
		return *why = "no hook name", -1;
	return 0;
}

const char *hookwire_var(const struct hookwire_req *req, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < req->nvars; i++)
		if (req->var_lens[i] > nl && !memcmp(req->vars[i], name, nl) && req->vars[i][nl] == '=') {
			*len = req->var_lens[i] - nl - 1;
			return req->vars[i] + nl + 1;
		}
	return NULL;
}

const char *const hookwire_quarantine_vars[HOOKWIRE_QUARANTINE_VARS] = {
	"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH",
};

/* Whether v ("NAME=VALUE") names the variable name. */
static bool var_is(const char *v, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(v, name, n) && v[n] == '=';
}

bool hookwire_var_wanted(const char *v)
{
	static const char *const names[] = { "GROVE_HOOK_PAYLOAD", "GROVE_SECRET", "GROVE_HOOKS_ACTIVE" };

	if (!strncmp(v, "GIT_PUSH_OPTION_", 16))
		return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (var_is(v, names[i]))
			return true;
	for (size_t i = 0; i < HOOKWIRE_QUARANTINE_VARS; i++)
		if (var_is(v, hookwire_quarantine_vars[i]))
			return true;
	return false;
}
