/* The admin API's request parsing: see adminreq.h. */
#include "lib/adminreq.h"
#include "lib/error.h"

#include <libssh/libssh.h>
#include <openssl/evp.h>

/* ---- JSON bodies ---- */

int adminreq_parse_body(const char *buf, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *body;

	*out = NULL;
	/* Duplicate members are refused: which one wins is a classic way to
	 * make two parsers (a proxy's and ours) disagree about a request. */
	body = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return error_set(GROVE_EINVAL, "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
				 jerr.line, jerr.column);
	if (!json_is_object(body)) {
		json_decref(body);
		return error_set(GROVE_EINVAL, "request body must be a JSON object, like {\"name\": \"…\"}");
	}
	*out = body;
	return 0;
}

/* Refuses members other than those in allowed (NULL-terminated). */
int adminreq_check_fields(json_t *body, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		bool ok = false;
		char list[256] = "";
		for (size_t i = 0; allowed[i]; i++) {
			if (!strcmp(key, allowed[i]))
				ok = true;
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
		}
		if (!ok)
			return error_set(GROVE_EINVAL, "unknown field \"%.64s\": the fields here are %s", key,
					   list);
	}
	return 0;
}

/* A string member: *out NULL when absent or null and not required. */
int adminreq_get_str(json_t *body, const char *name, bool required, const char **out)
{
	json_t *v = json_object_get(body, name);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return error_set(GROVE_EINVAL, "field \"%s\" is missing: it is required here", name);
		return 0;
	}
	if (!json_is_string(v))
		return error_set(GROVE_EINVAL, "field \"%s\" must be a string", name);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return error_set(GROVE_EINVAL, "field \"%s\" holds a NUL character", name);
	*out = json_string_value(v);
	return 0;
}

/* A boolean member: *present false when absent or null. */
int adminreq_get_bool(json_t *body, const char *name, bool *present, bool *out)
{
	json_t *v = json_object_get(body, name);
	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return error_set(GROVE_EINVAL, "field \"%s\" must be true or false", name);
	*present = true;
	*out = json_is_true(v);
	return 0;
}

int adminreq_get_int(json_t *body, const char *name, int64_t min, int64_t max, bool *present, int64_t *out)
{
	json_t *v = json_object_get(body, name);
	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return error_set(GROVE_EINVAL, "field \"%s\" must be a whole number from %lld to %lld", name,
				 (long long)min, (long long)max);
	*present = true;
	*out = json_integer_value(v);
	return 0;
}

/* A branch name as git check-ref-format allows it under refs/heads/. */
const char *adminreq_branch_problem(const char *name)
{
	const char *why = NULL;
	size_t n = strlen(name);

	if (!n)
		why = "it is empty";
	else if (n > ADMINREQ_BRANCH_MAX)
		why = "it is longer than 255 bytes";
	else if (name[0] == '-')
		why = "it starts with '-'";
	else if (!strcmp(name, "HEAD") || !strcmp(name, "@"))
		why = "it is reserved";
	else if (name[0] == '/' || name[n - 1] == '/' || name[n - 1] == '.')
		why = "it starts or ends with '/' or ends with '.'";
	else if (strstr(name, "..") || strstr(name, "//") || strstr(name, "@{") || strstr(name, "/."))
		why = "it holds \"..\", \"//\", \"@{\" or a part starting with '.'";
	else if (name[0] == '.')
		why = "it starts with '.'";
	for (size_t i = 0; !why && i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || strchr(" ~^:?*[\\", c))
			why = "it holds a space, a control character or one of ~ ^ : ? * [ \\";
	}
	if (!why && (ends_with(name, ".lock") || strstr(name, ".lock/")))
		why = "a part of it ends with \".lock\"";
	return why;
}

int adminreq_check_branch(const char *name)
{
	const char *why = adminreq_branch_problem(name);
	if (why)
		return error_set(GROVE_EINVAL, "deploy_branch \"%.255s\" is not a valid branch name: %s", name, why);
	return 0;
}

/* ---- SSH public keys ---- */


void adminreq_key_release(struct adminreq_key *k)
{
	FREE_AND_NULL(k->fingerprint);
	FREE_AND_NULL(k->line);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Base64 without its '=' padding, for comparing two encodings of one blob. */
static size_t b64_len_unpadded(const char *s)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == '=')
		n--;
	return n;
}

/* Reads an SSH wire string (uint32 length, bytes) at *p; false past end. */
static bool wire_string(const unsigned char **p, const unsigned char *end, const unsigned char **s, size_t *len)
{
	uint32_t n;
	if (end - *p < 4)
		return false;
	n = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 | (*p)[3];
	if ((size_t)(end - *p - 4) < n)
		return false;
	*s = *p + 4;
	*len = n;
	*p += 4 + n;
	return true;
}

/* The modulus size of an ssh-rsa blob in base64 ("ssh-rsa", e, n), or 0. */
static int rsa_bits(const char *b64)
{
	size_t n = strlen(b64), len;
	unsigned char *raw;
	const unsigned char *p, *end, *s;
	int bits = 0, out;

	if (n > ADMINREQ_KEY_MAX || n % 4)
		return 0;
	raw = xmalloc(n / 4 * 3 + 1);
	out = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (out < 0) {
		free(raw);
		return 0;
	}
	/* EVP_DecodeBlock counts the padding as data. */
	for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
		out--;
	p = raw;
	end = raw + out;
	if (wire_string(&p, end, &s, &len) && wire_string(&p, end, &s, &len) && wire_string(&p, end, &s, &len)) {
		while (len && !*s)
			s++, len--;
		if (len) {
			bits = (int)(len - 1) * 8;
			for (unsigned char top = *s; top; top >>= 1)
				bits++;
		}
	}
	free(raw);
	return bits;
}

/*
 * Parses one public key line as in id_ed25519.pub: "type base64 [comment]".
 * The declared type must be the blob's, and the blob must be the key's
 * canonical encoding; the fingerprint is the one an SSH server computes.
 */
int adminreq_parse_key(const char *text, struct adminreq_key *k)
{
	static const char *const allowed[] = {
		"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	};
	const char *start = text, *end, *q, *word, *actual;
	char *b64 = NULL, *b64_again = NULL, *fp = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	ssh_key key = NULL;
	enum ssh_keytypes_e type, got;
	bool known = false;
	int ret = 0;

	memset(k, 0, sizeof(*k));
	if (strlen(text) > ADMINREQ_KEY_MAX)
		return error_set(GROVE_EINVAL, "public_key is longer than %d bytes: give one key", ADMINREQ_KEY_MAX);
	while (is_space(*start))
		start++;
	end = start + strlen(start);
	while (end > start && is_space(end[-1]))
		end--;
	if (end == start)
		return error_set(GROVE_EINVAL, "public_key is empty: give a line like \"ssh-ed25519 AAAA… you@host\" from ~/.ssh/id_ed25519.pub");
	if (memchr(start, '\n', (size_t)(end - start)) || memchr(start, '\r', (size_t)(end - start)))
		return error_set(GROVE_EINVAL, "public_key holds more than one line: add one key per request");

	/* The type. */
	for (q = start; q < end && !is_space(*q); q++)
		;
	if ((size_t)(q - start) >= sizeof(k->type))
		return error_set(GROVE_EINVAL, "public_key does not start with a key type: give the line from the .pub file");
	memcpy(k->type, start, (size_t)(q - start));
	k->type[q - start] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		if (!strcmp(k->type, allowed[i]))
			known = true;
	if (!known)
		return error_set(GROVE_EINVAL, "unsupported key type \"%.63s\": use ssh-ed25519 (best), ecdsa-sha2-nistp256/384/521 or ssh-rsa, given as the first word of the line from the .pub file",
				 k->type);

	/* The base64 blob. */
	while (q < end && is_space(*q))
		q++;
	for (word = q; q < end && !is_space(*q); q++)
		;
	if (q == word)
		return error_set(GROVE_EINVAL, "public_key has the type %s but no key data after it", k->type);
	b64 = xstrndup(word, (size_t)(q - word));
	type = ssh_key_type_from_name(k->type);
	if (type == SSH_KEYTYPE_UNKNOWN || ssh_pki_import_pubkey_base64(b64, type, &key) != SSH_OK || !key) {
		ret = error_set(GROVE_EINVAL, "public_key's data is not a valid %s key: copy the whole line from the .pub file", k->type);
		goto out;
	}
	/* libssh believes the type it is told; make sure the blob agrees, and is canonical. */
	got = ssh_key_type(key);
	if (got == SSH_KEYTYPE_ECDSA_P256 || got == SSH_KEYTYPE_ECDSA_P384 || got == SSH_KEYTYPE_ECDSA_P521)
		actual = ssh_pki_key_ecdsa_name(key);
	else
		actual = ssh_key_type_to_char(got);
	if (ssh_pki_export_pubkey_base64(key, &b64_again) != SSH_OK || !actual || strcmp(actual, k->type) ||
	    b64_len_unpadded(b64) != b64_len_unpadded(b64_again) || memcmp(b64, b64_again, b64_len_unpadded(b64))) {
		ret = error_set(GROVE_EINVAL, "public_key's data is not the %s key its type says: copy the whole line from one .pub file",
				 k->type);
		goto out;
	}
	if (got == SSH_KEYTYPE_RSA && rsa_bits(b64) < 2048) {
		ret = error_set(GROVE_EINVAL, "this RSA key has %d bits, fewer than the 2048 required: make a new key with \"ssh-keygen -t ed25519\"",
				 rsa_bits(b64));
		goto out;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK ||
	    !(fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen))) {
		ret = error_set(GROVE_EINTERNAL, "cannot compute the key's SHA256 fingerprint");
		goto out;
	}
	k->fingerprint = xstrdup(fp);

	/* The comment is the rest of the line, kept as given. */
	while (q < end && is_space(*q))
		q++;
	if (q < end)
		k->line = xasprintf("%s %s %.*s", k->type, b64, (int)(end - q), q);
	else
		k->line = xasprintf("%s %s", k->type, b64);
out:
	if (ret)
		adminreq_key_release(k);
	free(b64);
	ssh_string_free_char(b64_again);
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return ret;
}

