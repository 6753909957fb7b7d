/*
 * Outgoing HTTP from the daemons (the gate's deploy webhook and its calls to
 * the platform's authorization API): one place that sets what every such
 * request needs, so none forgets one.
 */
#ifndef GROVE_HTTPC_H
#define GROVE_HTTPC_H

#include "lib/common.h"

#include <curl/curl.h>

/*
 * A libcurl easy handle that POSTs body (JSON) to url: http and https only,
 * no signals (the daemons are threaded), the whole request bounded by
 * timeout_s and connecting by connect_timeout_s, libcurl's reason in errbuf.
 * "Content-Type: application/json" is appended to *hdrs, which the caller
 * frees after the transfer. The caller sets how the answer is read. NULL
 * when libcurl cannot make a handle.
 */
CURL *httpc_json_post(const char *url, const char *body, struct curl_slist **hdrs, long timeout_s,
		      long connect_timeout_s, char errbuf[CURL_ERROR_SIZE]);

#endif
