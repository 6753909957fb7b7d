/* Outgoing HTTP requests: see httpc.h. */
#include "lib/httpc.h"

CURL *httpc_json_post(const char *url, const char *body, struct curl_slist **hdrs, long timeout_s,
		      long connect_timeout_s, char errbuf[CURL_ERROR_SIZE])
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	errbuf[0] = '\0';
	*hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_timeout_s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	/* A URL from the config must not become file:// or gopher:// by a redirect or typo. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "grove");
	return c;
}
