/*
 * Test tool: an ssh client built on libssh, which git can run as its ssh
 * (GIT_SSH_COMMAND, with GIT_SSH_VARIANT=ssh). Its flow control is libssh's,
 * not OpenSSH's: it grants the server more window only once half of it is
 * used, where OpenSSH grants it after every 96 KiB. A server that holds its
 * output back below that half waits for a grant that never comes; the
 * gate's pacer must notice (pace.h).
 *
 * usage: ssh-git [-p PORT] [-i KEY] [-o OPTION]... [USER@]HOST COMMAND
 * (-o is accepted and ignored: git passes -o SendEnv=GIT_PROTOCOL.)
 * Exit: the command's exit status; 255 when the connection failed.
 */
#include <libssh/libssh.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

int main(int argc, char **argv)
{
	ssh_session s = ssh_new();
	ssh_channel ch = NULL;
	ssh_key key = NULL;
	const char *keyfile = NULL, *user = "git";
	char host[256], buf[65536];
	int port = 22, opt, status = 255;
	bool in_open = true;

	while ((opt = getopt(argc, argv, "p:i:o:")) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'i')
			keyfile = optarg;
		else if (opt != 'o') {
			fprintf(stderr, "usage: ssh-git [-p PORT] [-i KEY] [-o OPTION]... [USER@]HOST COMMAND\n");
			return 2;
		}
	}
	if (argc - optind != 2 || !keyfile) {
		fprintf(stderr, "ssh-git: a host, a command and -i KEY are needed\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%s", argv[optind]);
	char *at = strchr(host, '@');
	if (at) {
		*at = '\0';
		user = host;
	}
	ssh_options_set(s, SSH_OPTIONS_HOST, at ? at + 1 : host);
	ssh_options_set(s, SSH_OPTIONS_PORT, &port);
	ssh_options_set(s, SSH_OPTIONS_USER, user);
	if (ssh_connect(s) != SSH_OK) {
		fprintf(stderr, "ssh-git: connect: %s\n", ssh_get_error(s));
		goto out;
	}
	if (ssh_pki_import_privkey_file(keyfile, NULL, NULL, NULL, &key) != SSH_OK ||
	    ssh_userauth_publickey(s, NULL, key) != SSH_AUTH_SUCCESS) {
		fprintf(stderr, "ssh-git: authentication refused\n");
		goto out;
	}
	ch = ssh_channel_new(s);
	if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, argv[optind + 1]) != SSH_OK) {
		fprintf(stderr, "ssh-git: exec: %s\n", ssh_get_error(s));
		goto out;
	}
	for (;;) {
		struct pollfd pfd[2] = { { .fd = ssh_get_fd(s), .events = POLLIN }, { .fd = 0, .events = POLLIN } };
		poll(pfd, in_open ? 2 : 1, 100);
		if (in_open && (pfd[1].revents & (POLLIN | POLLHUP))) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n > 0) {
				if (ssh_channel_write(ch, buf, (uint32_t)n) == SSH_ERROR)
					break;
			} else if (n == 0 || errno != EINTR) {
				ssh_channel_send_eof(ch);
				in_open = false;
			}
		}
		int got = 0;
		for (int e = 0; e < 2; e++) {
			int n;
			while ((n = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), e)) > 0) {
				got = 1;
				if (write_all(e ? 2 : 1, buf, (size_t)n))
					goto closed;
			}
			if (n == SSH_ERROR)
				goto closed;
		}
		if (!got && ssh_channel_is_eof(ch))
			break;
	}
closed:
	ssh_channel_close(ch);
	status = ssh_channel_get_exit_status(ch);
	if (status < 0)
		status = 255;
out:
	if (ch)
		ssh_channel_free(ch);
	ssh_key_free(key);
	ssh_disconnect(s);
	ssh_free(s);
	return status;
}
