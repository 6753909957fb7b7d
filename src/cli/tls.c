/*
 * `grove tls ca DIR` and `grove tls cert DIR NAME HOST…`: the certificates
 * for mutual TLS between Grove's parts (docs/tls.md), for an operator
 * without a PKI of their own. `grove up` makes the same at its first start.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/error.h"
#include "lib/pki.h"

const struct cli_command tls_command = {
	"tls", "ca DIR\ncert DIR NAME HOST...",
	"Makes a private CA for the links between Grove's parts, and a certificate per part.",
	NULL,
	"ca DIR makes DIR/ca.pem and DIR/ca.key (keep the key off the hosts).\n"
	"cert DIR NAME HOST... makes DIR/NAME.pem and DIR/NAME.key, signed by DIR's CA,\n"
	"for the IP addresses and host names its peers dial. Existing files are kept.\n"
	"Each part's config then names them: [tls] ca = ca.pem, cert = NAME.pem, key = NAME.key\n",
	false,
};

int tls_main(int argc, char **argv)
{
	struct cli_parse p;
	int code, ret;

	cli_parse_init(&p, &tls_command, argc, argv);
	while (cli_parse_next(&p) != -1)
		;
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (p.nargs == 2 && !strcmp(p.args[0], "ca"))
		ret = pki_ca_ensure(p.args[1], "Grove CA");
	else if (p.nargs >= 4 && !strcmp(p.args[0], "cert"))
		ret = pki_cert_ensure(p.args[1], p.args[1], p.args[2], (const char *const *)p.args + 3,
				      (size_t)p.nargs - 3);
	else
		return cli_usage_error(&tls_command, "%s", p.nargs ? "give ca DIR, or cert DIR NAME HOST..."
							: "missing what to make: ca or cert");
	if (ret) {
		fprintf(stderr, "grove tls: %s\n", error_msg());
		return 1;
	}
	return 0;
}
