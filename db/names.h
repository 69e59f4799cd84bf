/*
 * names.h - which names the mount, the HTTP API and the command line
 * accept, and what each name is (docs/design.md, "Names").
 *
 * A database name NAME is one path component of 1..DB_NAME_MAX bytes of
 * valid UTF-8, without control characters (bytes 0x00-0x1f and 0x7f), '/',
 * a leading '.', or a reserved suffix (-journal, -wal, -shm, -pos).  Every
 * place a name enters goes through db_name_check(): FUSE lookup and create,
 * POST /import and GET /export (?name=, whose decoded length is checked
 * too, so "x%00y" is not "x"), the replication stream, `ltxfs import`,
 * `export` and `log`.  So a name never reaches the log, a path or another
 * node raw.
 *
 * DB_NAME_MAX leaves room, within the kernel's 255-byte NAME_MAX, for the
 * longest name SQLite derives from a database's: the super-journal
 * NAME-mjXXXXXX9XX (12 bytes more; -journal is 8).
 *
 * The mount's names are classified by db_name_classify():
 *   NAME, NAME-journal, NAME-wal, NAME-shm, NAME-pos  the database NAME
 *   NAME-mjXXXXXX9XX (SQLite's super-journal of a multi-database commit)
 *   and etilqs_* (SQLite's temporary files)            plain files
 * Plain files are passed through to data.dir/files/: never a database,
 * never logged, never replicated, no descriptor kept while closed.
 *
 * Pure functions: no state, no threads, no logging.
 */
#ifndef LTXFS_DB_NAMES_H
#define LTXFS_DB_NAMES_H

#include <stddef.h>

#include "base/err.h"

/* The longest name the kernel passes (NAME_MAX). */
#define DB_FILE_NAME_MAX 255
/* The longest database name: NAME-mjXXXXXX9XX still fits in NAME_MAX. */
#define DB_NAME_MAX (DB_FILE_NAME_MAX - 12)

/*
 * 0 if the `len` bytes at `name` are a valid database name, else
 * -ENAMETOOLONG (longer than DB_NAME_MAX) or -EINVAL, with the reason in
 * `err` (the name shown escaped: it may hold anything).  `len` is the
 * length the caller received, so a NUL inside the name is caught.
 */
int db_name_check(const char *name, size_t len, lx_err *err);

/* What a name in the mount stands for. */
enum db_name_kind {
	DBN_DATABASE = 0,   /* NAME */
	DBN_JOURNAL,        /* NAME-journal */
	DBN_WAL,            /* NAME-wal */
	DBN_SHM,            /* NAME-shm */
	DBN_POS,            /* NAME-pos (virtual, read-only) */
	DBN_PLAIN,          /* a transient file, passed through */
};

/*
 * Classify `name` (a NUL-terminated file name from the kernel).  Returns 0
 * with *kind set and, for a database's file, the database name in db[dbcap];
 * -ENAMETOOLONG or -EINVAL (with the reason in `err`) for a name the mount
 * refuses.  A plain file's name must still be a valid file name (no
 * control characters, valid UTF-8).
 */
int db_name_classify(const char *name, enum db_name_kind *kind, char *db, size_t dbcap,
		     lx_err *err);

/* The suffix of a database file kind ("" for the database itself). */
const char *db_name_suffix(enum db_name_kind kind);

/* `name` (len bytes) made printable for a log line or an error message:
 * non-printable bytes and backslashes as \xHH, cut at cap-1. */
void db_name_escape(const char *name, size_t len, char *out, size_t cap);

#endif
