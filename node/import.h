/*
 * import.h - an SQLite file becomes a database of the mount, in one
 * transaction (POST /import on the primary; `ltxfs import`).
 *
 * The file is checked first (PRAGMA integrity_check).  It is copied with
 * SQLite's backup API into NAME under the mount, so the copy is one
 * transaction that ltxfs captures and replicates like any other, and local
 * readers see the old or the new database, never a mix.  Its journal mode
 * is kept: page 1 carries it (a WAL-mode file stays WAL), and a WAL-mode
 * target is first switched to rollback mode when the file is not WAL or
 * its page size differs (that needs no other connection on the database).
 *
 * Runs on the calling thread (an HTTP connection's); it opens the mount
 * like any application, so FUSE requests go to the mount's own threads.
 */
#ifndef LTXFS_NODE_IMPORT_H
#define LTXFS_NODE_IMPORT_H

#include "base/err.h"

/* Errors: EINVAL for a file that is not a sound SQLite database (the
 * message says what integrity_check found), EBUSY when the database is in
 * use in a way that blocks the copy, EIO otherwise. */
int import_database(const char *mountpoint, const char *name, const char *path, lx_err *err);

#endif
