/*
 * import.c - an SQLite file becomes a database of the mount (see import.h).
 */
#include "node/import.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "base/log.h"

#define IMPORT_BUSY_MS 10000

/* EBUSY for SQLite's lock errors, EIO for the rest. */
static int sqlite_err(lx_err *err, sqlite3 *db, int rc, const char *what)
{
	int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? EBUSY : EIO;
	return lx_err_set(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* integrity_check's first line must be "ok". */
static int check_source(sqlite3 *src, lx_err *err)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(src, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return lx_err_set(err, EINVAL, "not an SQLite database: %s", sqlite3_errmsg(src));
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		lx_err_set(err, EINVAL, "not an SQLite database: %s", sqlite3_errmsg(src));
		sqlite3_finalize(st);
		return -EINVAL;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		lx_err_set(err, EINVAL, "the file fails PRAGMA integrity_check: %s",
			   (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		return -EINVAL;
	}
	sqlite3_finalize(st);
	return 0;
}

/* An integer PRAGMA's value, or -1. */
static long pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* "wal" or another mode, into buf. */
static void journal_mode(sqlite3 *db, char *buf, size_t cap)
{
	sqlite3_stmt *st;
	snprintf(buf, cap, "?");
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* A WAL-mode target takes the copy as it is only from a WAL-mode file of
 * its page size (SQLite's backup rule); otherwise it goes to rollback
 * mode first, and page 1 of the copy brings the file's mode. */
static int prepare_target(sqlite3 *dst, int src_wal, long src_page_size, lx_err *err)
{
	char mode[16];
	int rc;
	journal_mode(dst, mode, sizeof(mode));
	if (strcmp(mode, "wal") != 0)
		return 0;
	if (src_wal && pragma_int(dst, "PRAGMA page_size") == src_page_size)
		return 0;
	rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
	journal_mode(dst, mode, sizeof(mode));
	if (rc != SQLITE_OK || strcmp(mode, "wal") == 0)
		return lx_err_set(err, EBUSY, "the database is in WAL mode and in use: the "
				  "import must switch it to rollback mode first; close its other "
				  "connections and import again");
	return 0;
}

static int copy_into(sqlite3 *src, sqlite3 *dst, lx_err *err)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;
	if (b == NULL)
		return sqlite_err(err, dst, sqlite3_errcode(dst), "import");
	rc = sqlite3_backup_step(b, -1);    /* every page: one transaction */
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		return sqlite_err(err, dst, rc, "import: copy");
	return 0;
}

int import_database(const char *mountpoint, const char *name, const char *path, lx_err *err)
{
	char target[PATH_MAX];
	sqlite3 *src = NULL, *dst = NULL;
	long page_size;
	char mode[16];
	int rc, src_wal;

	snprintf(target, sizeof(target), "%s/%s", mountpoint, name);
	rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		rc = lx_err_set(err, EINVAL, "not an SQLite database: %s", sqlite3_errstr(rc));
		goto out;
	}
	rc = check_source(src, err);
	if (rc < 0)
		goto out;
	journal_mode(src, mode, sizeof(mode));
	src_wal = strcmp(mode, "wal") == 0;
	page_size = pragma_int(src, "PRAGMA page_size");
	rc = sqlite3_open_v2(target, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		rc = sqlite_err(err, dst, rc, target);
		goto out;
	}
	sqlite3_busy_timeout(dst, IMPORT_BUSY_MS);
	rc = prepare_target(dst, src_wal, page_size, err);
	if (rc == 0)
		rc = copy_into(src, dst, err);
	if (rc == 0)
		lx_info("import", "%s: imported %s (%ld-byte pages, %s mode)", name, path,
			page_size, src_wal ? "WAL" : "rollback");
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc;
}
