/*
 * A small certificate authority for the links between Grove's parts: see
 * pki.h. ECDSA P-256 keys (fast handshakes, short certificates), random
 * 128-bit serials, SHA-256 signatures.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/pki.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#define PKI_CA_DAYS 3650
#define PKI_CERT_DAYS 825         /* what browsers accept at most: a habit operators know */

static int ossl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	ERR_clear_error();
	return error_set(GROVE_EINTERNAL, "%s: %s", what, e ? ERR_reason_error_string(e) : "failed");
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* PEM of a key or certificate written to a new file with mode. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *text = NULL;
	long len;
	int ret = 0;

	if (!b || (key && !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) ||
	    (cert && !PEM_write_bio_X509(b, cert))) {
		ret = ossl_error("cannot encode PEM");
		goto out;
	}
	len = BIO_get_mem_data(b, &data);
	text = xmalloc((size_t)len + 1);
	memcpy(text, data, (size_t)len);
	text[len] = '\0';
	unlink(path);
	ret = fs_write_new(path, text, mode);
	explicit_bzero(text, (size_t)len);
out:
	free(text);
	BIO_free(b);
	return ret;
}

static int read_pem(const char *path, EVP_PKEY **key, X509 **cert)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return error_set(GROVE_EIO, "cannot read %s: %s", path, strerror(errno));
	if (key)
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	else
		*cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (key ? !*key : !*cert)
		return ossl_error(path);
	return 0;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return ossl_error(value);
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

/* A new certificate for key, valid from an hour ago (clocks of hosts
 * differ) for days, named cn, not yet signed. */
static X509 *cert_new(EVP_PKEY *key, const char *cn, int days)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;

	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) || !(sn = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    !X509_set_version(x, 2) || !X509_set_serialNumber(x, sn) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0))
		goto fail;
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return x;
fail:
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	X509_free(x);
	return NULL;
}

int pki_ca_ensure(const char *dir, const char *cn)
{
	char crt[4096], kpath[4096];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int ret;

	if ((ret = fs_pathf(crt, sizeof(crt), "%s/ca.pem", dir)) ||
	    (ret = fs_pathf(kpath, sizeof(kpath), "%s/ca.key", dir)))
		return ret;
	if (exists(crt) && exists(kpath))
		return 0;
	if ((ret = fs_mkdir_p(dir, 0700)))
		return ret;
	if (!(key = EVP_EC_gen("P-256")) || !(x = cert_new(key, cn, PKI_CA_DAYS))) {
		ret = ossl_error("cannot make the CA's key");
		goto out;
	}
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if ((ret = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) ||
	    (ret = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")) ||
	    (ret = add_ext(x, x, NID_subject_key_identifier, "hash")))
		goto out;
	if (!X509_sign(x, key, EVP_sha256())) {
		ret = ossl_error("cannot sign the CA's certificate");
		goto out;
	}
	/* The key first: a certificate without its key is no CA. */
	if (!(ret = write_pem(kpath, key, NULL, 0600)))
		ret = write_pem(crt, NULL, x, 0644);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

/* "IP:1.2.3.4,DNS:name,…" for subjectAltName. */
static int san_list(const char *const *hosts, size_t n, char *buf, size_t size)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char a[16];
		bool ip = inet_pton(AF_INET, hosts[i], a) == 1 || inet_pton(AF_INET6, hosts[i], a) == 1;
		if (strpbrk(hosts[i], ",:= ") && !ip)
			return error_set(GROVE_EINVAL, "'%s' is neither a host name nor an IP address", hosts[i]);
		int w = snprintf(buf + len, size - len, "%s%s:%s", i ? "," : "", ip ? "IP" : "DNS", hosts[i]);
		if (w < 0 || (size_t)w >= size - len)
			return error_set(GROVE_ETOOBIG, "too many host names for one certificate");
		len += (size_t)w;
	}
	return 0;
}

int pki_cert_ensure(const char *ca_dir, const char *out_dir, const char *name, const char *const *hosts,
		    size_t nhosts)
{
	char crt[4096], kpath[4096], ca_crt[4096], ca_key[4096], san[2048];
	EVP_PKEY *key = NULL, *cakey = NULL;
	X509 *x = NULL, *ca = NULL;
	int ret;

	if (!nhosts)
		return error_set(GROVE_EINVAL, "a certificate needs at least one host name or address");
	if ((ret = fs_pathf(crt, sizeof(crt), "%s/%s.pem", out_dir, name)) ||
	    (ret = fs_pathf(kpath, sizeof(kpath), "%s/%s.key", out_dir, name)) ||
	    (ret = fs_pathf(ca_crt, sizeof(ca_crt), "%s/ca.pem", ca_dir)) ||
	    (ret = fs_pathf(ca_key, sizeof(ca_key), "%s/ca.key", ca_dir)) ||
	    (ret = san_list(hosts, nhosts, san, sizeof(san))))
		return ret;
	if (exists(crt) && exists(kpath))
		return 0;
	if ((ret = read_pem(ca_key, &cakey, NULL)) || (ret = read_pem(ca_crt, NULL, &ca)) ||
	    (ret = fs_mkdir_p(out_dir, 0700)))
		goto out;
	if (!(key = EVP_EC_gen("P-256")) || !(x = cert_new(key, name, PKI_CERT_DAYS))) {
		ret = ossl_error("cannot make a key");
		goto out;
	}
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	/* Both ends of a link: a part serves its peers and dials others. */
	if ((ret = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE")) ||
	    (ret = add_ext(x, ca, NID_key_usage, "critical,digitalSignature")) ||
	    (ret = add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth")) ||
	    (ret = add_ext(x, ca, NID_authority_key_identifier, "keyid")) ||
	    (ret = add_ext(x, ca, NID_subject_alt_name, san)))
		goto out;
	if (!X509_sign(x, cakey, EVP_sha256())) {
		ret = ossl_error("cannot sign the certificate");
		goto out;
	}
	if (!(ret = write_pem(kpath, key, NULL, 0600)))
		ret = write_pem(crt, NULL, x, 0644);
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return ret;
}
