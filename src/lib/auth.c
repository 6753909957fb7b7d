/* Shared-secret call tokens: see auth.h. */
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/strbuf.h"

#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/random.h>

void auth_hmac_hex(const char *secret, const char *msg, char out[65])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, strlen(msg), mac, &len);
	hex_encode(mac, 32, out);
}

void auth_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	SHA256(data, len, md);
	hex_encode(md, sizeof(md), out);
}

void auth_token_make(const char *secret, const char *method, int64_t now, char *out)
{
	char msg[512], hex[65];
	snprintf(msg, sizeof(msg), "v1.%lld.%s", (long long)now, method);
	auth_hmac_hex(secret, msg, hex);
	snprintf(out, AUTH_TOKEN_MAX, "v1.%lld.%s", (long long)now, hex);
}

int auth_token_check(const char *secret, const char *method, const char *token, size_t token_len,
		     int64_t now)
{
	char copy[AUTH_TOKEN_MAX], msg[512], want[65];
	char *end;
	long long ts;

	if (!token || !token_len)
		return error_set(GROVE_EAUTH, "authentication token missing: the caller must send the shared secret's token in '%s'",
				 AUTH_METADATA_KEY);
	if (token_len >= sizeof(copy) || memchr(token, '\0', token_len))
		return error_set(GROVE_EAUTH, "authentication token malformed");
	memcpy(copy, token, token_len);
	copy[token_len] = '\0';
	if (strncmp(copy, "v1.", 3))
		return error_set(GROVE_EAUTH, "authentication token malformed: unknown version");
	/* Digits only: strtoll alone would also take a sign or blanks, and a
	 * negative time near LLONG_MIN would overflow the skew below. */
	if (copy[3] < '0' || copy[3] > '9')
		return error_set(GROVE_EAUTH, "authentication token malformed");
	errno = 0;
	ts = strtoll(copy + 3, &end, 10);
	if (errno || end == copy + 3 || *end != '.' || strlen(end + 1) != 64)
		return error_set(GROVE_EAUTH, "authentication token malformed");
	if (ts < now - AUTH_MAX_SKEW || ts > now + AUTH_MAX_SKEW) {
		long long skew;
		if (__builtin_sub_overflow(ts, (long long)now, &skew))
			skew = ts > now ? LLONG_MAX : LLONG_MIN;
		return error_set(GROVE_EAUTH, "authentication token stale: its time is %llds from this server's clock (at most %d allowed; check the clocks)",
				 skew, AUTH_MAX_SKEW);
	}
	snprintf(msg, sizeof(msg), "v1.%lld.%s", ts, method);
	auth_hmac_hex(secret, msg, want);
	if (CRYPTO_memcmp(want, end + 1, 64))
		return error_set(GROVE_EAUTH, "authentication token wrong: the caller's secret differs from this server's");
	return 0;
}

int auth_secret_load(const char *path, char **out)
{
	char buf[1024];
	int fd, ret = 0;
	ssize_t n;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(GROVE_ENOTFOUND, "cannot read secret file %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return error_set(GROVE_EIO, "cannot read secret file %s: %s", path, strerror(errno));
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16)
		ret = error_set(GROVE_EINVAL, "secret in %s is shorter than 16 bytes: generate one with `head -c 32 /dev/urandom | xxd -p -c 64`",
				path);
	else
		*out = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return ret;
}

char *auth_secret_generate(void)
{
	unsigned char raw[32];
	char hex[65];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		abort();
	hex_encode(raw, sizeof(raw), hex);
	return xstrdup(hex);
}
