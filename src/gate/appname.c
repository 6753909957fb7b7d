/* App names in SSH commands: see gate_app_from_path in gate.h. */
#include "lib/common.h"
#include "gate/gate.h"
#include "lib/error.h"

int gate_app_from_path(const char *path, char out[GATE_APP_NAME_MAX + 1])
{
	size_t len;
	if (*path == '/')
		path++;
	len = strlen(path);
	if (len > 4 && !strcmp(path + len - 4, ".git"))
		len -= 4;
	if (len == 0 || len > GATE_APP_NAME_MAX)
		return error_set(GROVE_EINVAL, "'%.80s' is not an app name", path);
	for (size_t i = 0; i < len; i++) {
		char c = path[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
		if (!ok)
			return error_set(GROVE_EINVAL, "'%.80s' is not an app name: use lowercase letters, digits and '-'",
					 path);
	}
	memcpy(out, path, len);
	out[len] = '\0';
	return 0;
}
