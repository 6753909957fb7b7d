/*
 * libFuzzer target for the answer of the platform's authorization API
 * (gate/authz.h), which the gate reads from the network before every
 * command when auth.url is set. An accepted answer allows only with a user
 * name of the documented alphabet, and its message holds no control
 * character and fits its buffer.
 */
#include "../../src/gate/authz.c"
#include "../../src/gate/metrics.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authz_answer a;
	if (size > AUTHZ_BODY_MAX)
		return 0;
	if (authz_parse_answer((const char *)data, size, &a))
		return 0;
	if (a.allowed && !user_name_ok(a.user))
		abort();
	if (a.user[0] && !user_name_ok(a.user))
		abort();
	if (strlen(a.message) > AUTHZ_MESSAGE_MAX)
		abort();
	for (const char *m = a.message; *m; m++)
		if ((unsigned char)*m < 0x20 || *m == 0x7f)
			abort();
	return 0;
}
