/*
 * libFuzzer target for src/lib/sshcmd.c. A line the parser accepts names one
 * of the three git services and a non-empty path; a line it refuses leaves
 * no service and no path behind.
 */
#include "lib/common.h"
#include "lib/error.h"
#include "lib/sshcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = xmalloc(size + 1);
	struct sshcmd cmd;
	const char *rest;

	memcpy(line, data, size);
	line[size] = '\0';
	memset(&cmd, 0x5a, sizeof(cmd));
	if (sshcmd_parse(line, &cmd) == 0) {
		size_t plen = strnlen(cmd.path, sizeof(cmd.path));
		if (cmd.service == GIT_SERVICE_NONE || plen == 0 || plen >= sizeof(cmd.path) ||
		    plen > strlen(line))
			abort();
		const char *name = git_service_name(cmd.service);
		/* "git-upload-pack …" or "git upload-pack …", then a space. */
		if (!skip_prefix(line, name, &rest) &&
		    !(skip_prefix(line, "git ", &rest) && skip_prefix(rest, name + 4, &rest)))
			abort();
		if (*rest != ' ')
			abort();
		for (size_t i = 0; i < plen; i++)
			if ((unsigned char)cmd.path[i] < 0x20 || cmd.path[i] == 0x7f)
				abort();
	} else {
		if (cmd.service != GIT_SERVICE_NONE || cmd.path[0] != '\0')
			abort();
	}
	free(line);
	return 0;
}
