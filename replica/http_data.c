/*
 * http_data.c - a database as one SQLite file: POST /import?name=DB and
 * GET /export?name=DB (see http_server.h, docs/protocol.md).
 *
 * An import's body goes to a file in data.dir/tmp/ as it arrives (memory
 * stays bounded whatever its size); once complete the node's import hook
 * turns it into the database, and the file is removed.  An export streams
 * a copy-on-write image (db/export.h) straight into the response.
 *
 * Both move a whole database, so they share a budget of slots
 * (http.max-transfers; 503 when all are taken).  An import is refused
 * before its body is read when its name is invalid, its declared size is
 * above http.max-import-size (http_server.c) or data.dir has not room for
 * it and a reserve (507); a body without a declared size is checked as it
 * grows.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "db/export.h"
#include "db/names.h"
#include "replica/http_internal.h"

/* ---- POST /import -------------------------------------------------------------- */

const char *http_name_arg(struct MHD_Connection *c, lx_err *err)
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

enum MHD_Result http_reply_bad_name(struct MHD_Connection *c, const lx_err *why)
{
	char msg[LX_ERR_MSG_MAX + 64];
	snprintf(msg, sizeof(msg), "missing or invalid ?name=DB: %s", why->msg);
	return http_reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
}

/* Room kept free on data.dir's file system beyond an import's needs: a
 * twentieth of it, at most 1 GiB, so an import never takes the space the
 * databases' own commits need (a full disk fails writes, docs/operations.md). */
static uint64_t reserve_of(const struct statvfs *v)
{
	uint64_t size = (uint64_t)v->f_blocks * v->f_frsize;
	return size / 20 < (1ULL << 30) ? size / 20 : 1ULL << 30;
}

/* 0 if data.dir has room for an import of `length` bytes: the upload, the
 * database it becomes and that database's first log record (about its
 * size each), plus the reserve.  Else ENOSPC with the numbers in `msg`. */
static int room_for(http_server *s, uint64_t length, char *msg, size_t cap)
{
	struct statvfs v;
	uint64_t avail, need;
	if (statvfs(s->store->data_dir, &v) < 0)
		return 0;                   /* cannot tell: writes will */
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	need = (length > UINT64_MAX / 4 ? UINT64_MAX / 4 : length) * 3 + reserve_of(&v);
	if (avail >= need)
		return 0;
	snprintf(msg, cap, "not enough free space in data.dir for this import: it needs %"
		 PRIu64 " bytes (3 x %" PRIu64 ": the upload, the database and its log; plus a "
		 "reserve of %" PRIu64 "), %" PRIu64 " are free", need, length, reserve_of(&v),
		 avail);
	return ENOSPC;
}

enum MHD_Result http_import_begin(http_server *s, struct MHD_Connection *c, request *r,
				  uint64_t length)
{
	char dir[PATH_MAX - 32], msg[512];
	lx_err err;
	const char *name = (lx_err_clear(&err), http_name_arg(c, &err));
	if (s->hooks.import_db == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (name == NULL)
		return http_reply_bad_name(c, &err);
	if (http_slot_take(&s->transfers, s->limits.max_transfers) < 0) {
		snprintf(msg, sizeof(msg), "too many imports and exports at once (http.max-transfers "
			 "is %u): try again later", s->limits.max_transfers);
		return http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	r->slot = &s->transfers;
	if (room_for(s, length == UINT64_MAX ? 0 : length, msg, sizeof(msg)) != 0) {
		lx_warn("http", "POST /import %s: %s", name, msg);
		return http_reply_error(c, MHD_HTTP_INSUFFICIENT_STORAGE, msg);
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/tmp", s->store->data_dir) >= sizeof(dir)) {
		r->upload_error = ENAMETOOLONG;
		return MHD_YES;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r->upload_error = errno;
		return MHD_YES;
	}
	snprintf(r->upload_path, sizeof(r->upload_path), "%s/import-XXXXXX", dir);
	r->upload_fd = mkostemp(r->upload_path, O_CLOEXEC);
	if (r->upload_fd < 0)
		r->upload_error = errno;
	return MHD_YES;
}

/* A body of unknown length: free space is looked at again every this many
 * bytes, so a chunked upload cannot fill the disk either. */
#define IMPORT_SPACE_CHECK_BYTES (16u << 20)

int http_import_append(http_server *s, request *r, const char *data, size_t len)
{
	char msg[512];
	if (r->upload_fd < 0 || r->upload_error)
		return 0;                   /* drained; answered at the end */
	if (r->upload_len / IMPORT_SPACE_CHECK_BYTES !=
	    (r->upload_len + len) / IMPORT_SPACE_CHECK_BYTES &&
	    room_for(s, r->upload_len + len, msg, sizeof(msg)) != 0) {
		http_import_end(r);          /* the rest is drained, 507 at the end */
		r->upload_error = ENOSPC;
		return 0;
	}
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
	const char *name = (lx_err_clear(&err), http_name_arg(c, &err));
	int rc;
	if (s->hooks.import_db == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (name == NULL)
		return http_reply_bad_name(c, &err);
	if (r->upload_error == 0 && r->upload_len > 0 && fsync(r->upload_fd) < 0)
		r->upload_error = errno;
	if (r->upload_error) {
		lx_error("http", "POST /import %s: storing the upload in %s/tmp: %s", name,
			 s->store->data_dir, strerror(r->upload_error));
		http_import_end(r);
		return http_reply_error(c, MHD_HTTP_INSUFFICIENT_STORAGE, strerror(r->upload_error));
	}
	if (r->upload_len == 0) {
		http_import_end(r);
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "empty body: send the SQLite file");
	}
	rc = s->hooks.import_db(s->hooks.ctx, name, r->upload_path, &err);
	/* The upload is removed before the answer: a client that reads the
	 * answer finds no trace of it in data.dir/tmp (the request's end would
	 * remove it too, but only after the answer was sent). */
	http_import_end(r);
	if (rc < 0) {
		lx_warn("http", "POST /import %s: %s", name, err.msg);
		return http_reply_error(c, http_status_of(rc), err.msg);
	}
	return http_reply_json(c, MHD_HTTP_OK, db_summary(s->store, name));
}

/* ---- GET /export -------------------------------------------------------------- */

/* An export in progress and the transfer slot it holds. */
typedef struct export_stream {
	http_server *server;
	db_export *e;
} export_stream;

static ssize_t export_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	export_stream *x = cls;
	lx_err err;
	ssize_t n = db_export_read(x->e, (uint8_t *)buf, max, &err);
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
	export_stream *x = cls;
	db_export_end(x->e);
	http_slot_give(&x->server->transfers);
	free(x);
}

enum MHD_Result http_export(http_server *s, struct MHD_Connection *c)
{
	struct MHD_Response *resp;
	database *db;
	export_stream *x;
	uint64_t txid, checksum, size;
	char txt[24], ckt[17], msg[160];
	enum MHD_Result ok;
	lx_err err;
	const char *name = (lx_err_clear(&err), http_name_arg(c, &err));
	if (name == NULL)
		return http_reply_bad_name(c, &err);
	db = store_find(s->store, name);
	if (db == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such database");
	{
		db_status st;
		db_status_get(db, &st);
		if (st.untracked) {
			char why[256], text[320];
			status_untracked_reason(&st, why, sizeof(why));
			snprintf(text, sizeof(text), "database %s is untracked: %s", name, why);
			return http_reply_error(c, MHD_HTTP_CONFLICT, text);
		}
	}
	if (http_slot_take(&s->transfers, s->limits.max_transfers) < 0) {
		snprintf(msg, sizeof(msg), "too many imports and exports at once (http.max-transfers "
			 "is %u): try again later", s->limits.max_transfers);
		return http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		http_slot_give(&s->transfers);
		return MHD_NO;
	}
	x->server = s;
	if (db_export_begin(db, &x->e, &txid, &checksum, &size, &err) < 0) {
		http_slot_give(&s->transfers);
		free(x);
		if (err.code == ENOENT)
			return http_reply_error(c, MHD_HTTP_NOT_FOUND, "the database has no pages "
						"(deleted, or never written)");
		lx_warn("http", "GET /export %s: %s", name, err.msg);
		return http_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
	}
	resp = MHD_create_response_from_callback(size, 256 * 1024, export_reader, x, export_free);
	if (resp == NULL) {
		export_free(x);
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
