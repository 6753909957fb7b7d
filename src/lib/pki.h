/*
 * Certificates for the links between Grove's parts (rpc.h, mutual TLS):
 * a private CA and one certificate per part, as `grove up` makes them at
 * its first start and `grove tls` makes them for an operator without a PKI
 * of their own. An existing file is never replaced: a restart keeps the
 * identities every part already trusts.
 */
#ifndef GROVE_PKI_H
#define GROVE_PKI_H

#include <stddef.h>

/* dir/ca.pem and dir/ca.key (0600), made if missing. */
int pki_ca_ensure(const char *dir, const char *cn);

/*
 * out_dir/NAME.pem and out_dir/NAME.key signed by ca_dir's CA, for both
 * ends of a link (server and client), naming hosts (IP addresses or DNS
 * names: what peers dial), made if missing.
 */
int pki_cert_ensure(const char *ca_dir, const char *out_dir, const char *name, const char *const *hosts,
		    size_t nhosts);

#endif
