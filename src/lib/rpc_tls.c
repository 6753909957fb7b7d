/*
 * Mutual TLS on the links between Grove's parts: see rpc.h.
 *
 * One process-wide set of files (CA, certificate chain, key), loaded and
 * checked once, reloaded on demand. Listeners take their certificate
 * through gRPC's config fetcher, which asks before each handshake whether
 * it changed, so a reload reaches the next connection without a restart;
 * clients take the files current when their channel is made, and make it
 * again at their next call once the files changed (rpc_client.c).
 *
 * TCP links only: a unix socket stays on its host, behind the run
 * directory's permissions (as Gitaly's unix: addresses and PostgreSQL's
 * "local" lines), and the per-push hook calls on it would pay a handshake
 * for nothing.
 */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "lib/strvec.h"

#include <grpc/grpc_security.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdatomic.h>

#define TLS_PEM_MAX (256 * 1024)

struct tls_files {
	char *ca, *cert, *key;            /* paths */
	char *ca_pem, *cert_pem, *key_pem;
};

static struct {
	pthread_mutex_t mu;
	struct tls_files f;
	bool on;
	atomic_uint gen;                  /* bumped by every load */
} tls = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* One listener's view: the generation it last handed to gRPC. */
struct rpc_tls_listener {
	unsigned gen;
};

static void files_release(struct tls_files *f)
{
	free(f->ca);
	free(f->cert);
	free(f->key);
	free(f->ca_pem);
	free(f->cert_pem);
	if (f->key_pem) {
		explicit_bzero(f->key_pem, strlen(f->key_pem));
		free(f->key_pem);
	}
	memset(f, 0, sizeof(*f));
}

static int read_pem(const char *path, char **out)
{
	struct strbuf sb;
	int ret;
	strbuf_init(&sb, TLS_PEM_MAX);
	if ((ret = fs_read_all(path, &sb))) {
		strbuf_release(&sb);
		return ret;
	}
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

static const char *ossl_reason(void)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : "not PEM";
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* Every certificate of a PEM bundle into a store: the CAs a peer may chain to. */
static int ca_store(const struct tls_files *f, X509_STORE **out)
{
	BIO *b = BIO_new_mem_buf(f->ca_pem, -1);
	X509_STORE *st = X509_STORE_new();
	X509 *x;
	int n = 0, ret = 0;

	while (b && st && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		X509_STORE_add_cert(st, x);
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	if (!n)
		ret = error_set(GROVE_EINVAL, "tls.ca %s holds no PEM certificate", f->ca);
	BIO_free(b);
	if (ret)
		X509_STORE_free(st);
	else
		*out = st;
	return ret;
}

/* The key is the certificate's, the certificate chains to the CA, and it is
 * valid now: what a peer will check, said at start instead of as a failed
 * handshake on the other host. */
static int files_check(const struct tls_files *f)
{
	X509 *cert = pem_cert(f->cert_pem);
	BIO *kb = BIO_new_mem_buf(f->key_pem, -1);
	EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	X509_STORE *st = NULL;
	X509_STORE_CTX *ctx = NULL;
	int ret = 0;

	if (!cert) {
		ret = error_set(GROVE_EINVAL, "tls.cert %s: no PEM certificate (%s)", f->cert, ossl_reason());
		goto out;
	}
	if (!key) {
		ret = error_set(GROVE_EINVAL, "tls.key %s: no PEM private key (%s)", f->key, ossl_reason());
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		ret = error_set(GROVE_EINVAL, "tls.key %s is not the key of the certificate in %s", f->key, f->cert);
		goto out;
	}
	if ((ret = ca_store(f, &st)))
		goto out;
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, st, cert, NULL) != 1) {
		ret = error_set(GROVE_EINTERNAL, "cannot check %s against %s", f->cert, f->ca);
		goto out;
	}
	if (X509_verify_cert(ctx) != 1)
		ret = error_set(GROVE_EINVAL, "tls.cert %s is not valid from the CA in %s: %s", f->cert, f->ca,
				X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	EVP_PKEY_free(key);
	BIO_free(kb);
	X509_free(cert);
	return ret;
}

static int files_load(struct tls_files *f, const char *ca, const char *cert, const char *key)
{
	int ret;
	memset(f, 0, sizeof(*f));
	f->ca = xstrdup(ca);
	f->cert = xstrdup(cert);
	f->key = xstrdup(key);
	if ((ret = read_pem(ca, &f->ca_pem)) || (ret = read_pem(cert, &f->cert_pem)) ||
	    (ret = read_pem(key, &f->key_pem)) || (ret = files_check(f)))
		files_release(f);
	return ret;
}

int rpc_tls_configure(const char *ca, const char *cert, const char *key)
{
	struct tls_files f;
	int ret;

	if (!ca && !cert && !key) {
		pthread_mutex_lock(&tls.mu);
		files_release(&tls.f);
		if (tls.on)
			atomic_fetch_add(&tls.gen, 1);
		tls.on = false;
		pthread_mutex_unlock(&tls.mu);
		return 0;
	}
	if (!ca || !cert || !key)
		return error_set(GROVE_EINVAL, "tls.ca, tls.cert and tls.key go together: set all three, or none");
	if ((ret = files_load(&f, ca, cert, key)))
		return ret;
	pthread_mutex_lock(&tls.mu);
	/* The same files read again (every SIGHUP does) renew nothing: no
	 * channel is made again, no listener told of a new certificate. */
	bool same = tls.on && !strcmp(tls.f.ca_pem, f.ca_pem) && !strcmp(tls.f.cert_pem, f.cert_pem) &&
		    !strcmp(tls.f.key_pem, f.key_pem);
	files_release(&tls.f);
	tls.f = f;
	tls.on = true;
	if (!same)
		atomic_fetch_add(&tls.gen, 1);
	pthread_mutex_unlock(&tls.mu);
	return 0;
}

unsigned rpc_tls_generation(void)
{
	return atomic_load(&tls.gen);
}

struct rpc_tls_saved {
	bool on;
	struct tls_files f;
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct rpc_tls_saved *rpc_tls_save(void)
{
	struct rpc_tls_saved *s = xcalloc(1, sizeof(*s));
	pthread_mutex_lock(&tls.mu);
	s->on = tls.on;
	if (tls.on) {
		s->f.ca = dup_or_null(tls.f.ca);
		s->f.cert = dup_or_null(tls.f.cert);
		s->f.key = dup_or_null(tls.f.key);
		s->f.ca_pem = dup_or_null(tls.f.ca_pem);
		s->f.cert_pem = dup_or_null(tls.f.cert_pem);
		s->f.key_pem = dup_or_null(tls.f.key_pem);
	}
	pthread_mutex_unlock(&tls.mu);
	return s;
}

void rpc_tls_restore(struct rpc_tls_saved *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&tls.mu);
	files_release(&tls.f);
	tls.f = s->f;
	tls.on = s->on;
	atomic_fetch_add(&tls.gen, 1);
	pthread_mutex_unlock(&tls.mu);
	free(s);
}

void rpc_tls_saved_free(struct rpc_tls_saved *s)
{
	if (!s)
		return;
	files_release(&s->f);
	free(s);
}

int rpc_tls_from_config(struct config *cfg)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	int ret;
	if (!(ret = config_get_path(cfg, "tls.ca", NULL, &ca)) && !(ret = config_get_path(cfg, "tls.cert", NULL, &cert)) &&
	    !(ret = config_get_path(cfg, "tls.key", NULL, &key)))
		ret = rpc_tls_configure(ca, cert, key);
	if (ret)
		ret = error_wrap(ret, "%s", config_file(cfg));
	free(ca);
	free(cert);
	free(key);
	return ret;
}

int rpc_tls_from_env(void)
{
	return rpc_tls_configure(getenv("GROVE_TLS_CA"), getenv("GROVE_TLS_CERT"), getenv("GROVE_TLS_KEY"));
}

int rpc_tls_reload(void)
{
	char *ca, *cert, *key;
	int ret;

	pthread_mutex_lock(&tls.mu);
	if (!tls.on) {
		pthread_mutex_unlock(&tls.mu);
		return 0;
	}
	ca = xstrdup(tls.f.ca);
	cert = xstrdup(tls.f.cert);
	key = xstrdup(tls.f.key);
	pthread_mutex_unlock(&tls.mu);
	/* A bad new file keeps the old ones: the links stay up. */
	ret = rpc_tls_configure(ca, cert, key);
	free(ca);
	free(cert);
	free(key);
	return ret;
}

void rpc_tls_env(struct strvec *env)
{
	pthread_mutex_lock(&tls.mu);
	if (tls.on) {
		strvec_pushf(env, "GROVE_TLS_CA=%s", tls.f.ca);
		strvec_pushf(env, "GROVE_TLS_CERT=%s", tls.f.cert);
		strvec_pushf(env, "GROVE_TLS_KEY=%s", tls.f.key);
	}
	pthread_mutex_unlock(&tls.mu);
}

bool rpc_tls_on(void)
{
	return tls.on;
}

bool rpc_addr_is_unix(const char *addr)
{
	return !strncmp(addr, "unix:", 5) || !strncmp(addr, "unix-abstract:", 14);
}

bool rpc_tls_applies(const char *addr)
{
	return tls.on && !rpc_addr_is_unix(addr);
}

grpc_channel_credentials *rpc_tls_channel_credentials(const char *addr)
{
	grpc_channel_credentials *creds;
	grpc_ssl_pem_key_cert_pair pair;

	if (!rpc_tls_applies(addr))
		return grpc_insecure_credentials_create();
	pthread_mutex_lock(&tls.mu);
	pair.private_key = tls.f.key_pem;
	pair.cert_chain = tls.f.cert_pem;
	/* gRPC copies what it needs: the files may be reloaded afterwards. */
	creds = grpc_ssl_credentials_create_ex(tls.f.ca_pem, &pair, NULL, NULL);
	pthread_mutex_unlock(&tls.mu);
	return creds;
}

static grpc_ssl_certificate_config_reload_status fetch_config(void *data, grpc_ssl_server_certificate_config **out)
{
	struct rpc_tls_listener *l = data;
	grpc_ssl_pem_key_cert_pair pair;
	unsigned before = l->gen;

	if (atomic_load(&tls.gen) == before)
		return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	pthread_mutex_lock(&tls.mu);
	pair.private_key = tls.f.key_pem;
	pair.cert_chain = tls.f.cert_pem;
	*out = grpc_ssl_server_certificate_config_create(tls.f.ca_pem, &pair, 1);
	l->gen = atomic_load(&tls.gen);
	/* The first fetch is the listener's start; later ones, a reload. */
	if (before)
		log_info("rpc.tls_reloaded", "certificate=%s", tls.f.cert);
	pthread_mutex_unlock(&tls.mu);
	return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

grpc_server_credentials *rpc_tls_server_credentials(const char *addr, struct rpc_tls_listener **lp)
{
	grpc_ssl_server_credentials_options *o;

	*lp = NULL;
	if (!rpc_tls_applies(addr))
		return grpc_insecure_server_credentials_create();
	*lp = xcalloc(1, sizeof(**lp));
	/* A peer without a certificate from the CA never gets to send a call. */
	o = grpc_ssl_server_credentials_create_options_using_config_fetcher(
		GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, fetch_config, *lp);
	return grpc_ssl_server_credentials_create_with_options(o);
}

void rpc_tls_listener_free(struct rpc_tls_listener *l)
{
	free(l);
}
