/* Child processes: see proc.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/proc.h"
#include "lib/hookwire.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static const char *const pass_env[] = {
	"PATH=", "HOME=", "LANG=", "LC_ALL=", "LC_CTYPE=", "TMPDIR=", "TZ=", "USER=", "LOGNAME=",
	/* Sanitizer settings, so that sanitized test runs cover children too. */
	"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=",
};

char **proc_env(const char *const *extra)
{
	size_t n = 0, cap = 16;
	char **env = xmalloc(cap * sizeof(*env));
	for (char **e = environ; e && *e; e++) {
		for (size_t i = 0; i < ARRAY_SIZE(pass_env); i++) {
			if (!strncmp(*e, pass_env[i], strlen(pass_env[i]))) {
				if (n + 1 >= cap)
					env = xrealloc(env, (cap *= 2) * sizeof(*env));
				env[n++] = xstrdup(*e);
				break;
			}
		}
	}
	for (; extra && *extra; extra++) {
		if (n + 1 >= cap)
			env = xrealloc(env, (cap *= 2) * sizeof(*env));
		env[n++] = xstrdup(*extra);
	}
	env[n] = NULL;
	return env;
}

char **proc_env_push(char **env, const char *kv)
{
	size_t n = 0;
	while (env[n])
		n++;
	env = xrealloc(env, (n + 2) * sizeof(*env));
	env[n] = xstrdup(kv);
	env[n + 1] = NULL;
	return env;
}

void proc_env_free(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Spawns argv with the file actions fa: default signal dispositions, an
 * empty signal mask, optionally a process group of its own. Consumes fa.
 */
static int spawn(struct proc *p, const char *const *argv, char *const *env, posix_spawn_file_actions_t *fa,
		 bool new_group)
{
	posix_spawnattr_t attr;
	sigset_t all, none;
	char **own_env = NULL;
	short sflags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
	int r;

	posix_spawnattr_init(&attr);
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	if (new_group) {
		posix_spawnattr_setpgroup(&attr, 0);
		sflags |= POSIX_SPAWN_SETPGROUP;
	}
	posix_spawnattr_setflags(&attr, sflags);
	if (!env)
		env = own_env = proc_env(NULL);
	r = posix_spawnp(&p->pid, argv[0], fa, &attr, (char *const *)argv, env);
	posix_spawn_file_actions_destroy(fa);
	posix_spawnattr_destroy(&attr);
	proc_env_free(own_env);
	if (r) {
		p->pid = -1;
		return error_set(GROVE_EIO, "cannot run %s: %s", argv[0], strerror(r));
	}
	return 0;
}

int proc_start(struct proc *p, const char *const *argv, char *const *env, const char *dir, int flags)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	int ret = 0;

	p->pid = -1;
	p->in = p->out = p->err = -1;
	p->flags = flags;
	if ((flags & PROC_STDIN) && pipe2(in, O_CLOEXEC))
		return error_set(GROVE_EIO, "pipe: %s", strerror(errno));
	if ((flags & PROC_STDOUT) && pipe2(out, O_CLOEXEC)) {
		ret = error_set(GROVE_EIO, "pipe: %s", strerror(errno));
		goto fail_pipes;
	}
	if ((flags & PROC_STDERR) && pipe2(err, O_CLOEXEC)) {
		ret = error_set(GROVE_EIO, "pipe: %s", strerror(errno));
		goto fail_pipes;
	}

	posix_spawn_file_actions_init(&fa);
	if (flags & PROC_STDIN)
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (flags & PROC_STDOUT)
		posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (flags & PROC_STDERR)
		posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	/* Nothing of ours but 0-2 reaches the child: no listening socket, no
	 * other connection's pipe. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (dir)
		posix_spawn_file_actions_addchdir_np(&fa, dir);

	ret = spawn(p, argv, env, &fa, flags & PROC_NEWPGRP);
	if (ret)
		goto fail_pipes;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	p->in = in[1];
	p->out = out[0];
	p->err = err[0];
	if (flags & PROC_NONBLOCK) {
		int fds[3] = { p->in, p->out, p->err };
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	return 0;

fail_pipes:
	close_fd(&in[0]); close_fd(&in[1]);
	close_fd(&out[0]); close_fd(&out[1]);
	close_fd(&err[0]); close_fd(&err[1]);
	return ret;
}

int proc_start_logged(struct proc *p, const char *const *argv, char *const *env, const char *log_path)
{
	posix_spawn_file_actions_t fa;

	p->pid = -1;
	p->in = p->out = p->err = -1;
	p->flags = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	return spawn(p, argv, env, &fa, false);
}

void proc_close_in(struct proc *p)
{
	close_fd(&p->in);
}

void proc_kill(struct proc *p, int sig)
{
	if (p->pid <= 0)
		return;
	if (p->flags & PROC_NEWPGRP)
		kill(-p->pid, sig);
	else
		kill(p->pid, sig);
}

int proc_wait(struct proc *p)
{
	int status;
	close_fd(&p->in);
	close_fd(&p->out);
	close_fd(&p->err);
	if (p->pid <= 0)
		return error_set(GROVE_EINTERNAL, "no child to wait for");
	while (waitpid(p->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			p->pid = -1;
			return error_set(GROVE_EIO, "waitpid: %s", strerror(errno));
		}
	}
	p->pid = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int write_all(int fd, const void *buf, size_t len)
{
	/* The loop lives in hookwire.c, which the libc-only hook binary links. */
	if (hookwire_write_all(fd, buf, len))
		return error_set(GROVE_EIO, "write: %s", errno ? strerror(errno) : "nothing written");
	return 0;
}

int proc_run(const char *const *argv, char *const *env, const char *dir,
	     const void *in, size_t in_len, struct strbuf *out, struct strbuf *err)
{
	struct proc p;
	int flags = PROC_STDOUT | PROC_STDERR | PROC_NONBLOCK | PROC_NEWPGRP | (in ? PROC_STDIN : 0);
	size_t in_off = 0;
	int ret = proc_start(&p, argv, env, dir, flags);
	bool too_big = false;
	char buf[65536];

	if (ret)
		return ret;
	if (in && !in_len)
		proc_close_in(&p);
	while (p.out >= 0 || p.err >= 0 || p.in >= 0) {
		struct pollfd pfd[3];
		int n = 0, io = -1, oo = -1, eo = -1;
		if (p.in >= 0) { io = n; pfd[n].fd = p.in; pfd[n++].events = POLLOUT; }
		if (p.out >= 0) { oo = n; pfd[n].fd = p.out; pfd[n++].events = POLLIN; }
		if (p.err >= 0) { eo = n; pfd[n].fd = p.err; pfd[n++].events = POLLIN; }
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (io >= 0 && pfd[io].revents) {
			ssize_t w = write(p.in, (const char *)in + in_off, in_len - in_off);
			if (w > 0)
				in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len)
				proc_close_in(&p);
		}
		for (int k = 0; k < 2; k++) {
			int idx = k ? eo : oo;
			int *fd = k ? &p.err : &p.out;
			struct strbuf *sb = k ? err : out;
			if (idx < 0 || !pfd[idx].revents)
				continue;
			ssize_t r = read(*fd, buf, sizeof(buf));
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				close_fd(fd);
				continue;
			}
			if (sb && strbuf_add(sb, buf, (size_t)r)) {
				too_big = true;
				proc_kill(&p, SIGKILL);
				close_fd(&p.out);
				close_fd(&p.err);
				close_fd(&p.in);
			}
		}
	}
	ret = proc_wait(&p);
	if (too_big)
		return error_set(GROVE_ETOOBIG, "output of %s exceeded its limit", argv[0]);
	return ret;
}

/* Reads what is ready on *fd, up to max bytes; closes it at EOF. */
static ssize_t read_ready(int *fd, char *buf, size_t max)
{
	size_t got = 0;
	while (got < max) {
		ssize_t r = read(*fd, buf + got, max - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			close_fd(fd);
			break;
		}
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The pump of both: with on_buf, each chunk in a buffer of its own. */
static int pump(struct proc *p, proc_chunk_fn *on_out, proc_chunk_fn *on_err, proc_buf_fn *on_buf, void *ctx,
		size_t chunk_max, size_t headroom)
{
	char *buf = NULL;
	int ret = 0;
	while (!ret && (p->out >= 0 || p->err >= 0)) {
		struct pollfd pfd[2];
		int n = 0, oo = -1, eo = -1;
		if (p->out >= 0) { oo = n; pfd[n].fd = p->out; pfd[n].events = POLLIN; pfd[n++].revents = 0; }
		if (p->err >= 0) { eo = n; pfd[n].fd = p->err; pfd[n].events = POLLIN; pfd[n++].revents = 0; }
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = error_set(GROVE_EIO, "poll: %s", strerror(errno));
			break;
		}
		for (int k = 0; k < 2 && !ret; k++) {
			int i = k ? eo : oo;
			if (i < 0 || !pfd[i].revents)
				continue;
			if (!buf)
				buf = xmalloc(headroom + chunk_max);
			ssize_t got = read_ready(k ? &p->err : &p->out, buf + headroom, chunk_max);
			if (got <= 0)
				continue;
			if (on_buf) {
				ret = on_buf(ctx, k, buf, headroom, (size_t)got);
				buf = NULL;
			} else if (k ? on_err : on_out) {
				ret = (k ? on_err : on_out)(ctx, buf, (size_t)got);
			}
		}
	}
	free(buf);
	return ret;
}

int proc_pump_output(struct proc *p, proc_chunk_fn *on_out, proc_chunk_fn *on_err, void *ctx,
		     size_t chunk_max)
{
	return pump(p, on_out, on_err, NULL, ctx, chunk_max, 0);
}

int proc_pump_output_bufs(struct proc *p, proc_buf_fn *on_buf, void *ctx, size_t chunk_max, size_t headroom)
{
	return pump(p, NULL, NULL, on_buf, ctx, chunk_max, headroom);
}
