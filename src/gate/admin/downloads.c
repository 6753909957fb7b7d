/*
 * Archive downloads: /archive/APP/COMMIT.tar.gz?expires=…&signature=…,
 * streamed from the app's repository; the URL's own signature stands in for
 * the admin token (gate/archive.h).
 */
#include "gate/admin/admin_int.h"
#include "gate/archive.h"
#include "gate/gate.h"
#include "lib/error.h"
#include "lib/log.h"

static ssize_t archive_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = archive_read(cls, buf, max);
	(void)pos;
	if (n > 0)
		return n;
	/* An error mid-stream cuts the connection: the client sees a broken
	 * download, never a short archive that looks whole. */
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void archive_done(void *cls)
{
	archive_free(cls);
}

/* Streams the archive, or fills out with why not. */
enum MHD_Result archive_serve(struct admin *a, struct MHD_Connection *conn, struct request *r, const char *url,
				     const char *method, struct reply *out)
{
	const char *rest = url + strlen(ARCHIVE_PREFIX), *slash = strchr(rest, '/');
	char app_part[128], commit[41], name[GATE_APP_NAME_MAX + 1], disposition[160];
	struct archive_src *src = NULL;
	struct MHD_Response *resp;
	struct db *db = NULL;
	struct app app = { 0 };
	enum MHD_Result res = MHD_YES;
	int ret;

	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on an archive URL: use GET", method);
		goto out;
	}
	if (!slash || (size_t)(slash - rest) >= sizeof(app_part) || strlen(slash + 1) != 40 + 7 ||
	    strcmp(slash + 41, ".tar.gz") || strspn(slash + 1, "0123456789abcdef") != 40) {
		reply_error(out, MHD_HTTP_NOT_FOUND,
			    "no such archive: the path is %sAPP/COMMIT.tar.gz with a full commit id", ARCHIVE_PREFIX);
		goto out;
	}
	memcpy(app_part, rest, (size_t)(slash - rest));
	app_part[slash - rest] = '\0';
	memcpy(commit, slash + 1, 40);
	commit[40] = '\0';
	if (gate_app_from_path(app_part, name) || strcmp(name, app_part)) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "no such archive: \"%.64s\" is not an app name", app_part);
		goto out;
	}
	if (!a->repos || !a->secret) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "this gate serves no archives");
		goto out;
	}
	ret = archive_url_check(a->secret, name, commit,
				MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "expires"),
				MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "signature"), time(NULL));
	if (ret) {
		reply_error(out, MHD_HTTP_FORBIDDEN, "%s", error_msg());
		goto out;
	}
	if ((ret = db_attach(&db, a->db_path)) || (ret = db_app_get(db, name, &app)) ||
	    (ret = archive_open(&src, a->repos, app.route, name, commit))) {
		reply_grove_error(out, ret);
		goto out;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, archive_reader, src, archive_done);
	if (!resp) {
		archive_free(src);
		res = MHD_NO;
		goto out;
	}
	snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s-%.12s.tar.gz\"", name, commit);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/gzip");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=0");
	MHD_add_response_header(resp, "X-Correlation-Id", r->corr);
	res = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	if (res == MHD_YES)
		r->status = MHD_HTTP_OK;
	log_info("archive.serving", "app=%s commit=%s route=%s", name, commit, route_name(app.route));
out:
	app_release(&app);
	db_close(db);
	return res;
}
