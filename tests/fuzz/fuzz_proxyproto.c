/*
 * libFuzzer target for the PROXY protocol header a load balancer (or anyone
 * at its address) sends first on a gate connection (lib/proxyproto.h). A
 * complete header is never longer than the input nor than the protocol's
 * maximum, and names an address that inet_pton takes back.
 */
#include "lib/common.h"
#include "lib/proxyproto.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_addr a;
	unsigned char tmp[16];
	int r = proxy_parse(data, size, &a);
	if (r > 0) {
		if ((size_t)r > size || r > PROXY_V2_MAX)
			abort();
		if (!a.local && inet_pton(strchr(a.ip, ':') ? AF_INET6 : AF_INET, a.ip, tmp) != 1)
			abort();
		if (a.port > 65535)
			abort();
	}
	return 0;
}
