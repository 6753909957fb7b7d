/* Parsing of git's SSH command lines: see sshcmd.h. */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/sshcmd.h"

static const struct {
	const char *name;
	enum git_service service;
} services[] = {
	{ "git-upload-pack", GIT_SERVICE_UPLOAD_PACK },
	{ "git-receive-pack", GIT_SERVICE_RECEIVE_PACK },
	{ "git-upload-archive", GIT_SERVICE_UPLOAD_ARCHIVE },
	{ "git upload-pack", GIT_SERVICE_UPLOAD_PACK },
	{ "git receive-pack", GIT_SERVICE_RECEIVE_PACK },
	{ "git upload-archive", GIT_SERVICE_UPLOAD_ARCHIVE },
};

const char *git_service_name(enum git_service s)
{
	switch (s) {
	case GIT_SERVICE_UPLOAD_PACK: return "git-upload-pack";
	case GIT_SERVICE_RECEIVE_PACK: return "git-receive-pack";
	case GIT_SERVICE_UPLOAD_ARCHIVE: return "git-upload-archive";
	default: return "none";
	}
}

/* Dequotes one sq-quoted argument that must span all of s. */
static int sq_dequote(const char *s, char *out, size_t outsz)
{
	size_t n = 0;
	if (*s != '\'') {
		/* Unquoted: a plain word, as some clients send. A client's shell
		 * would have acted on any of its special characters, so a word
		 * that still holds one was not meant as a path. */
		for (; *s; s++) {
			if (strchr(" '\"\\`$;|&<>()[]{}*?!#~", *s))
				return error_set(GROVE_EINVAL, "unquoted argument contains '%c'", *s);
			if (n + 1 >= outsz)
				return error_set(GROVE_EINVAL, "argument too long");
			out[n++] = *s;
		}
		out[n] = '\0';
		return n ? 0 : error_set(GROVE_EINVAL, "empty argument");
	}
	for (;;) {
		if (*s != '\'')
			return error_set(GROVE_EINVAL, "badly quoted argument");
		s++;
		while (*s != '\'') {
			if (!*s)
				return error_set(GROVE_EINVAL, "unterminated quote in argument");
			if (n + 1 >= outsz)
				return error_set(GROVE_EINVAL, "argument too long");
			out[n++] = *s++;
		}
		s++;
		if (!*s)
			break;
		/* Only the '\'' and '\!' escapes join quoted pieces. */
		if (s[0] != '\\' || (s[1] != '\'' && s[1] != '!') || s[2] != '\'')
			return error_set(GROVE_EINVAL, "more than one argument, or bad quoting");
		if (n + 1 >= outsz)
			return error_set(GROVE_EINVAL, "argument too long");
		out[n++] = s[1];
		s += 2;
	}
	out[n] = '\0';
	return 0;
}

int sshcmd_parse(const char *line, struct sshcmd *out)
{
	size_t len;
	int ret;

	out->service = GIT_SERVICE_NONE;
	out->path[0] = '\0';
	if (!line || !*line)
		return error_set(GROVE_EINVAL, "no command given");
	len = strnlen(line, SSHCMD_MAX + 1);
	if (len > SSHCMD_MAX)
		return error_set(GROVE_EINVAL, "command longer than %d bytes", SSHCMD_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			return error_set(GROVE_EINVAL, "command contains a control character");
	}
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		const char *rest;
		if (!skip_prefix(line, services[i].name, &rest) || *rest != ' ')
			continue;
		while (*rest == ' ')
			rest++;
		ret = sq_dequote(rest, out->path, sizeof(out->path));
		if (ret) {
			/* Leave no half-dequoted, unterminated path behind. */
			out->path[0] = '\0';
			return error_wrap(ret, "%s", services[i].name);
		}
		if (!out->path[0])
			return error_set(GROVE_EINVAL, "%s: empty repository argument", services[i].name);
		out->service = services[i].service;
		return 0;
	}
	return error_set(GROVE_EINVAL, "only git-upload-pack, git-receive-pack and git-upload-archive are allowed");
}
