/*
 * libFuzzer target for the gate's app name parsing (gate_app_from_path, the
 * argument of git-upload-pack '…' that an SSH client sends). An accepted
 * name is 1-63 bytes of [a-z0-9-], not starting with '-'.
 */
#include "lib/common.h"
#include "gate/gate.h"
/* The gate is not in libgrove.a: its one parser is compiled in here. */
#include "../../src/gate/appname.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = xmalloc(size + 1);
	char name[GATE_APP_NAME_MAX + 1];
	memcpy(path, data, size);
	path[size] = '\0';
	if (gate_app_from_path(path, name) == 0) {
		size_t n = strlen(name);
		if (n == 0 || n > GATE_APP_NAME_MAX || name[0] == '-')
			abort();
		for (size_t i = 0; i < n; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
				abort();
	}
	free(path);
	return 0;
}
