/*
 * http_data.c - a database as one SQLite file: POST /import?name=DB and
 * GET /export?name=DB (see http_server.h, docs/protocol.md).
 *
 * An import's body goes to a file in data.dir/tmp/ as it arrives (memory
 * stays bounded whatever its size); once complete the node's import hook
 * turns it into the database, and the file is removed.  An export streams
 * a copy-on-write image (db/export.h) straight into the response.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "db/export.h"
#include "db/names.h"
#include "replica/http_internal.h"

/* ---- POST /import -------------------------------------------------------------- */

/* ?name=DB, checked as every name is (db/names.h) at its decoded length,
 * so "x%00y" is refused rather than read as "x".  NULL (why in err) if
 * missing or invalid. */
static const char *name_arg(struct MHD_Connection *c, lx_err *err)
{
	const char *name = NULL;
	size_t len = 0;
	if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "name", 4, &name, &len) !=
	    MHD_YES || name == NULL) {
		lx_err_set(err, EINVAL, "missing ?name=DB");
		return NULL;
	}
	return db_name_check(name, len, err) == 0 ? name : NULL;
}

static enum MHD_Result reply_bad_name(struct MHD_Connection *c, const lx_err *why)
{
	char msg[LX_ERR_MSG_MAX + 64];
	snprintf(msg, sizeof(msg), "missing or invalid ?name=DB: %s", why->msg);
	return http_reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
}

static const char *import_name(struct MHD_Connection *c)
{
	return name_arg(c, NULL);
}

void http_import_begin(http_server *s, struct MHD_Connection *c, request *r)
{
	char dir[PATH_MAX - 32];
	if (s->hooks.import_db == NULL || import_name(c) == NULL)
		return;                     /* the body is drained, then refused */
	if ((size_t)snprintf(dir, sizeof(dir), "%s/tmp", s->store->data_dir) >= sizeof(dir)) {
		r->upload_error = ENAMETOOLONG;
		return;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r->upload_error = errno;
		return;
	}
	snprintf(r->upload_path, sizeof(r->upload_path), "%s/import-XXXXXX", dir);
	r->upload_fd = mkostemp(r->upload_path, O_CLOEXEC);
	if (r->upload_fd < 0)
		r->upload_error = errno;
}

int http_import_append(request *r, const char *data, size_t len)
{
	if (r->upload_fd < 0 || r->upload_error)
		return 0;                   /* drained; answered at the end */
	if (lx_pwrite_all(r->upload_fd, data, len, r->upload_len) < 0)
		r->upload_error = errno ? errno : EIO;
	r->upload_len += len;
	return 0;
}

void http_import_end(request *r)
{
	/* SQLite may have made -wal/-shm (a WAL-mode file) or -journal files
	 * next to the upload while the import read it. */
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	if (r->upload_fd < 0)
		return;
	close(r->upload_fd);
	r->upload_fd = -1;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s%s", r->upload_path, suffixes[i]);
		unlink(p);
	}
}

static json_t *db_summary(store *st, const char *name)
{
	database *db = store_find(st, name);
	db_status d;
	char ck[17];
	if (db == NULL)
		return json_pack("{s:s}", "name", name);
	db_status_get(db, &d);
	snprintf(ck, sizeof(ck), "%016" PRIx64, d.checksum);
	return json_pack("{s:s, s:I, s:s, s:i, s:i, s:s}", "name", name, "txid",
			 (json_int_t)d.txid, "checksum", ck, "page_size", (int)d.page_size,
			 "page_count", (int)d.n_pages, "journal", d.wal_mode ? "wal" : "rollback");
}

enum MHD_Result http_import_finish(http_server *s, struct MHD_Connection *c, request *r)
{
	lx_err err;
	const char *name = (lx_err_clear(&err), name_arg(c, &err));
	int rc;
	if (s->hooks.import_db == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (name == NULL)
		return reply_bad_name(c, &err);
	if (r->upload_error == 0 && r->upload_len > 0 && fsync(r->upload_fd) < 0)
		r->upload_error = errno;
	if (r->upload_error) {
		lx_error("http", "POST /import %s: storing the upload in %s/tmp: %s", name,
			 s->store->data_dir, strerror(r->upload_error));
		return http_reply_error(c, MHD_HTTP_INSUFFICIENT_STORAGE, strerror(r->upload_error));
	}
	if (r->upload_len == 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "empty body: send the SQLite file");
	rc = s->hooks.import_db(s->hooks.ctx, name, r->upload_path, &err);
	if (rc < 0) {
		lx_warn("http", "POST /import %s: %s", name, err.msg);
		return http_reply_error(c, http_status_of(rc), err.msg);
	}
	return http_reply_json(c, MHD_HTTP_OK, db_summary(s->store, name));
}

/* ---- GET /export -------------------------------------------------------------- */

static ssize_t export_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	lx_err err;
	ssize_t n = db_export_read(cls, (uint8_t *)buf, max, &err);
	(void)pos;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0) {
		lx_warn("http", "GET /export: %s", err.msg);
		return MHD_CONTENT_READER_END_WITH_ERROR;   /* the client sees a short body */
	}
	return n;
}

static void export_free(void *cls)
{
	db_export_end(cls);
}

enum MHD_Result http_export(http_server *s, struct MHD_Connection *c)
{
	struct MHD_Response *resp;
	database *db;
	db_export *e;
	uint64_t txid, checksum, size;
	char txt[24], ckt[17];
	enum MHD_Result ok;
	lx_err err;
	const char *name = (lx_err_clear(&err), name_arg(c, &err));
	if (name == NULL)
		return reply_bad_name(c, &err);
	db = store_find(s->store, name);
	if (db == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such database");
	{
		db_status st;
		db_status_get(db, &st);
		if (st.untracked) {
			char why[256], msg[320];
			status_untracked_reason(&st, why, sizeof(why));
			snprintf(msg, sizeof(msg), "database %s is untracked: %s", name, why);
			return http_reply_error(c, MHD_HTTP_CONFLICT, msg);
		}
	}
	if (db_export_begin(db, &e, &txid, &checksum, &size, &err) < 0) {
		if (err.code == ENOENT)
			return http_reply_error(c, MHD_HTTP_NOT_FOUND, "the database has no pages "
						"(deleted, or never written)");
		lx_warn("http", "GET /export %s: %s", name, err.msg);
		return http_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
	}
	resp = MHD_create_response_from_callback(size, 256 * 1024, export_reader, e, export_free);
	if (resp == NULL) {
		db_export_end(e);
		return MHD_NO;
	}
	snprintf(txt, sizeof(txt), "%" PRIu64, txid);
	snprintf(ckt, sizeof(ckt), "%016" PRIx64, checksum);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/vnd.sqlite3");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "Ltxfs-Txid", txt);
	MHD_add_response_header(resp, "Ltxfs-Checksum", ckt);
	ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ok;
}
