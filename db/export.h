/*
 * export.h - a database as one SQLite file, read at one TXID while
 * writers go on (GET /export, `ltxfs export`).
 *
 * The bytes are those of the database file after a checkpoint: every page
 * as of the export's TXID (WAL content included), the lock page as zeros,
 * the file exactly page_size * page_count long.  A WAL-mode database stays
 * one (page 1 says so).  It is built on a copy-on-write snapshot
 * (db/snapshot.h), so local writers and a replica's applier never wait for
 * more than one small batch.
 *
 * Threading: one export object is used by one thread; begin and read take
 * the database mutex themselves.
 */
#ifndef LTXFS_DB_EXPORT_H
#define LTXFS_DB_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "db/database.h"

typedef struct db_export db_export;

/* Start.  *txid, *checksum: the position the bytes are at; *size their
 * length.  ENOENT for a database without pages. */
int db_export_begin(database *db, db_export **out, uint64_t *txid, uint64_t *checksum,
		    uint64_t *size, lx_err *err);

/* The next bytes, in order, into buf: returns how many (0 at the end) or a
 * negative errno. */
ssize_t db_export_read(db_export *e, uint8_t *buf, size_t max, lx_err *err);

void db_export_end(db_export *e);

#endif
