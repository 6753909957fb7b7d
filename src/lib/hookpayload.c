/* Hook payload encoding: see hookpayload.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/hookpayload.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/strbuf.h"
#include "lib/strvec.h"

#include <ctype.h>
#include <openssl/evp.h>

char *hook_payload_encode(const Grove__V1__HookPayload *p)
{
	size_t len = protobuf_c_message_get_packed_size(&p->base);
	size_t elen = 4 * ((len + 2) / 3);
	uint8_t *raw;
	char *out;
	if (elen > HOOK_PAYLOAD_MAX)
		return NULL;
	raw = xmalloc(len ? len : 1);
	protobuf_c_message_pack(&p->base, raw);
	out = xmalloc(elen + 1);
	EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
	out[elen] = '\0';
	free(raw);
	return out;
}

/*
 * protobuf-c (1.4) refuses field number 0 in a one-byte tag but keeps it as
 * an unknown field when the tag is padded ("81 00"); packing writes it back
 * as the one-byte tag, so such a payload would decode here and then fail in
 * `grove hook`. Field 0 is invalid protobuf: refuse it at once.
 */
static bool has_field_zero(const ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	return false;
}

int hook_payload_decode(const char *s, size_t len, Grove__V1__HookPayload **out)
{
	unsigned char *raw;
	int n, pad = 0;
	*out = NULL;
	if (len > HOOK_PAYLOAD_MAX)
		return error_set(GROVE_ETOOBIG, "hook payload longer than %d bytes", HOOK_PAYLOAD_MAX);
	if (len % 4)
		return error_set(GROVE_EINVAL, "hook payload is not base64 (length %zu)", len);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '+' || c == '/' ||
			  /* '=' only as padding: one or two at the very end. */
			  (c == '=' && i >= len - 2 && s[len - 1] == '=');
		if (!ok)
			return error_set(GROVE_EINVAL, "hook payload is not base64");
	}
	if (len && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	raw = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)len);
	if (n < 0) {
		free(raw);
		return error_set(GROVE_EINVAL, "hook payload is not base64");
	}
	*out = grove__v1__hook_payload__unpack(NULL, (size_t)(n - pad), raw);
	free(raw);
	if (!*out)
		return error_set(GROVE_EINVAL, "hook payload does not decode as grove.v1.HookPayload");
	if (has_field_zero(&(*out)->base) || ((*out)->repository && has_field_zero(&(*out)->repository->base))) {
		protobuf_c_message_free_unpacked(&(*out)->base, NULL);
		*out = NULL;
		return error_set(GROVE_EINVAL, "hook payload does not decode as grove.v1.HookPayload (field number 0)");
	}
	return 0;
}

char **hook_env_build(const Grove__V1__HookPayload *payload, const Grove__V1__Repository *repo,
		      const char *hook_address, const char *hook_socket, const char *secret, const char *active,
		      const char *git_protocol)
{
	Grove__V1__HookPayload p = GROVE__V1__HOOK_PAYLOAD__INIT;
	Grove__V1__Repository r = GROVE__V1__REPOSITORY__INIT;
	struct strvec extra = STRVEC_INIT;
	char **env;
	char *enc;

	if (payload)
		p = *payload;
	r.storage_name = repo->storage_name;
	r.relative_path = repo->relative_path;
	p.repository = &r;
	if (!p.correlation_id || !*p.correlation_id)
		p.correlation_id = (char *)log_correlation_id();
	enc = hook_payload_encode(&p);
	if (enc) {
		strvec_pushf(&extra, "%s=%s", HOOK_PAYLOAD_ENV, enc);
		free(enc);
	}
	strvec_pushf(&extra, "GROVE_HOOK_ADDRESS=%s", hook_address);
	if (hook_socket)
		strvec_pushf(&extra, "GROVE_HOOK_SOCKET=%s", hook_socket);
	strvec_pushf(&extra, "GROVE_SECRET=%s", secret);
	strvec_pushf(&extra, "GROVE_HOOKS_ACTIVE=%s", active);
	if (git_protocol && *git_protocol)
		strvec_pushf(&extra, "GIT_PROTOCOL=%s", git_protocol);
	env = proc_env(strvec_argv(&extra));
	strvec_clear(&extra);
	return env;
}

bool txn_node_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > TXN_NODE_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

int txn_info_parse(const char *s, size_t len, struct txn_info *out)
{
	const char *end = s + len, *p, *q;
	uint64_t id = 0;

	memset(out, 0, sizeof(*out));
	if (len < 2 || memcmp(s, "1;", 2))
		return error_set(GROVE_EINVAL, "transaction metadata does not start with version \"1;\"");
	p = s + 2;
	q = memchr(p, ';', (size_t)(end - p));
	if (!q || q == p || q - p > 20)
		return error_set(GROVE_EINVAL, "transaction metadata: bad transaction id");
	for (const char *c = p; c < q; c++) {
		uint64_t d = (uint64_t)(*c - '0');
		if (*c < '0' || *c > '9' || id > (UINT64_MAX - d) / 10)
			return error_set(GROVE_EINVAL, "transaction metadata: bad transaction id");
		id = id * 10 + d;
	}
	out->id = id;
	p = q + 1;
	q = memchr(p, ';', (size_t)(end - p));
	if (!q || !txn_node_name_valid(p, (size_t)(q - p)))
		return error_set(GROVE_EINVAL, "transaction metadata: bad node name");
	memcpy(out->node, p, (size_t)(q - p));
	p = q + 1;
	if (end - p < 2 || (p[0] != 'p' && p[0] != 's') || p[1] != ';')
		return error_set(GROVE_EINVAL, "transaction metadata: role is neither p nor s");
	out->secondary = p[0] == 's';
	p += 2;
	if (p == end || end - p > TXN_ADDRESS_MAX)
		return error_set(GROVE_EINVAL, "transaction metadata: bad address length");
	for (const char *c = p; c < end; c++)
		if (*c <= 0x20 || *c >= 0x7f || *c == ';')
			return error_set(GROVE_EINVAL, "transaction metadata: the address holds a forbidden character");
	memcpy(out->address, p, (size_t)(end - p));
	return 0;
}

void txn_info_format(const struct txn_info *t, char *buf, size_t size)
{
	snprintf(buf, size, "1;%llu;%s;%c;%s", (unsigned long long)t->id, t->node, t->secondary ? 's' : 'p', t->address);
}

/* The file at path holds text already (a restart rewrites nothing). */
static bool hook_script_same(const char *path, const char *text)
{
	struct strbuf sb;
	bool same;
	strbuf_init(&sb, 8192);
	same = !fs_read_all(path, &sb) && sb.len == strlen(text) && !memcmp(sb.buf, text, sb.len);
	strbuf_release(&sb);
	error_clear();
	return same;
}

int hook_script_install(const char *dir, const char *name, const char *exe, bool light)
{
	char path[4200], tmp[4300], *text, *fast;
	int ret;

	/* The path goes between single quotes in the script. */
	if (strchr(exe, '\''))
		return error_set(GROVE_EINVAL, "the grove binary's path %s holds a single quote: the hooks cannot name it",
				 exe);
	if ((ret = fs_pathf(path, sizeof(path), "%s/%s", dir, name)) ||
	    (ret = fs_pathf(tmp, sizeof(tmp), "%s/.%s.%d", dir, name, (int)getpid())))
		return ret;
	/* grove-hook, beside the binary, when it is there (hookwire.h). */
	fast = light ? xasprintf(" test -x '%s-hook' && exec '%s-hook' %s \"$@\";", exe, exe, name) : xstrdup("");
	text = xasprintf("#!/bin/sh\n"
			 "# Written by Grove: git's %s hook. Grove starts only when this hook\n"
			 "# has someone to answer it; otherwise git's input is read and that is all.\n"
			 "%s"
			 "case \"$GROVE_HOOKS_ACTIVE\" in\n"
			 "*%s,*)%s exec '%s' hook %s \"$@\" ;;\n"
			 "esac\n"
			 "# Read and dropped: by the shell for a few lines (no process to start),\n"
			 "# by cat for more (the shell reads a byte per call: 1,000 refs are 100,000).\n"
			 "n=0\n"
			 "while test $n -lt 8 && read -r _; do n=$((n + 1)); done\n"
			 "test $n -lt 8 || exec cat >/dev/null\n",
			 name,
			 strcmp(name, "reference-transaction") ? ""
							       : "# Only the \"prepared\" state is voted.\n"
								 "test \"$1\" = prepared || GROVE_HOOKS_ACTIVE=\n",
			 name, fast, exe, name);
	if (hook_script_same(path, text))
		goto out;
	unlink(tmp);
	if (!(ret = fs_write_new(tmp, text, 0755)) && rename(tmp, path))
		ret = error_set(GROVE_EIO, "cannot install the hook %s: %s", path, strerror(errno));
	if (ret) {
		/* A full disk (a store restarted to serve reads while it has no
		 * room): the binary itself, linked, does the same work slower,
		 * and a symlink needs no data block. */
		unlink(tmp);
		log_warn("hook.script_unwritten", "hook=%s error=%s note=%s", path, error_msg(),
			 "linked to the binary instead");
		unlink(path);
		ret = symlink(exe, path) ? error_set(GROVE_EIO, "cannot link %s: %s", path, strerror(errno)) : 0;
	}
out:
	free(fast);
	free(text);
	return ret;
}
