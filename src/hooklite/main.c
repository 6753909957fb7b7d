/*
 * grove-hook NAME [ARG]: what git runs as a hook of a push on a store (the
 * store's hook scripts exec it): it hands git's input and the variables
 * the store needs to the store that runs the push, over its unix socket
 * (lib/hookwire.h), and gives git the store's answer: output and exit
 * status. It links libc only, so it starts in about a millisecond: see
 * hookwire.h for why. A git run without a push's variables (an operator's
 * repair by hand) has nothing to ask, and one run by a process that speaks
 * only gRPC (GROVE_HOOK_SOCKET unset) gets `grove hook`, next to this
 * binary.
 *
 * It fails closed: a pre-receive that cannot ask refuses the push. The
 * replica git's index-pack runs it as `grove-hook pack-index` for the
 * primary's index of a push's pack (store/packindex.c), and reads a
 * failure as "no index": it indexes the pack itself.
 */
#include "lib/hookwire.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

static const char *hook_name = "hook";

static int fail(const char *what)
{
	fprintf(stderr, "error: grove: the %s check could not run: %s\n", hook_name, what);
	return 1;
}

/* git's input, whole: git waits for a hook to take it. NULL past the limit. */
static char *read_input(size_t *len)
{
	size_t cap = 65536;
	char *buf = malloc(cap);

	*len = 0;
	for (;;) {
		ssize_t n;
		if (!buf)
			return NULL;
		if (*len == cap) {
			char *more = cap >= HOOKWIRE_IN_MAX ? NULL : realloc(buf, cap * 2);
			if (!more) {
				free(buf);
				return NULL;
			}
			buf = more;
			cap *= 2;
		}
		n = read(0, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			return buf;
		*len += (size_t)n;
	}
}

/* `grove hook NAME ARG…`, the binary beside this one. */
static int run_full(char **argv)
{
	char self[PATH_MAX], *slash, *args[5] = { "grove", "hook", argv[1], argv[1] ? argv[2] : NULL, NULL };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 8);

	if (n <= 0)
		return fail("cannot find the grove binary");
	self[n] = '\0';
	slash = strrchr(self, '/');
	strcpy(slash ? slash + 1 : self, "grove");
	execv(self, args);
	return fail("cannot start the grove binary");
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int send_request(int fd, char **argv, const char *in, size_t in_len)
{
	if (hookwire_send(fd, 'N', argv[1], strlen(argv[1])) || (argv[2] && hookwire_send(fd, 'A', argv[2], strlen(argv[2]))))
		return -1;
	for (char **e = environ; *e; e++)
		if (hookwire_var_wanted(*e) && hookwire_send(fd, 'V', *e, strlen(*e)))
			return -1;
	if (hookwire_send(fd, 'I', in, in_len))
		return -1;
	return shutdown(fd, SHUT_WR);
}

/* The store's answer to git: output as it comes, then the exit status
 * (-1: the answer broke off before it). */
static int relay_answer(int fd)
{
	static uint8_t buf[HOOKWIRE_ANSWER_MAX];
	size_t have = 0;

	for (;;) {
		const uint8_t *data;
		uint32_t n;
		size_t used;
		char type;
		int r = hookwire_next(buf, have, sizeof(buf) - HOOKWIRE_HEAD, &type, &data, &n, &used);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (type == 'X') {
				int code = 0;
				for (uint32_t i = 0; i < n && i < 3 && data[i] >= '0' && data[i] <= '9'; i++)
					code = code * 10 + (data[i] - '0');
				return n ? code : -1;
			}
			hookwire_write_all(type == 'O' ? 1 : 2, data, n);
			memmove(buf, buf + used, have - used);
			have -= used;
			continue;
		}
		ssize_t got = read(fd, buf + have, sizeof(buf) - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		have += (size_t)got;
	}
}

int main(int argc, char **argv)
{
	const char *sock = getenv("GROVE_HOOK_SOCKET");
	char *in;
	size_t in_len;
	int fd, code;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: grove-hook pre-receive|post-receive|reference-transaction|pack-index [ARG]\n");
		return 2;
	}
	hook_name = argv[1];
	if (getenv("GROVE_HOOK_PAYLOAD") && (!sock || !*sock))
		return run_full(argv);
	if (!(in = read_input(&in_len)))
		return fail("git's input could not be read whole");
	/* git run by hand on a repository: nothing to ask. */
	if (!getenv("GROVE_HOOK_PAYLOAD")) {
		free(in);
		return 0;
	}
	fd = connect_to(sock);
	if (fd < 0) {
		free(in);
		return fail("the store's hook socket does not answer");
	}
	code = send_request(fd, argv, in, in_len) ? -1 : relay_answer(fd);
	close(fd);
	free(in);
	return code < 0 ? fail("the store's answer broke off") : code;
}
