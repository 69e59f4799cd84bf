/*
 * snapshot.h - a consistent image of a database, read while writers go on.
 *
 * A replica that is new, behind retention or diverged receives the whole
 * database as it was at one TXID.  Reading a large database takes a while,
 * and local writers must not wait for it, so the image is copy-on-write:
 * db_snapshot_begin() records where every page's content is (the database
 * file, or the WAL frame holding its newest captured version); from then
 * on, before the mount overwrites, truncates or removes the bytes of a page
 * the snapshot has not read yet, the database layer calls
 * db_snapshot_preserve_locked(), which copies the old content into the
 * snapshot's private spill file (an unlinked file in the database's
 * directory).  Pages are read in order, in small batches under the
 * database mutex, so a writer waits for one batch at most; a page already
 * read is never copied.  The spill file holds at most the pages overwritten
 * during the transfer.
 *
 * Threading: begin/read/end take db->mu themselves; the preserve hook runs
 * with it held.  One snapshot object is used by one thread.
 */
#ifndef LTXFS_DB_SNAPSHOT_H
#define LTXFS_DB_SNAPSHOT_H

#include <stdint.h>

#include "base/err.h"
#include "db/database.h"
#include "db/state.h"
#include "ltx/ltx.h"

typedef struct db_snapshot db_snapshot;

/*
 * Start an image of the database at its current position.  *h receives
 * the header of the LTX snapshot that describes it (min_txid 1, max_txid
 * the TXID, commit the page count), *post the database checksum.  Fails
 * with ENOENT for a database with no pages (never created, or deleted).
 */
int db_snapshot_begin(database *db, db_snapshot **out, ltx_header *h,
		      uint64_t *post, lx_err *err);

/*
 * Read up to `max` of the next pages (the lock page is skipped) into
 * `buf` (max * page_size bytes); pgnos[] receives their page numbers.
 * Returns the number read, 0 at the end, or a negative errno.
 */
int db_snapshot_read(db_snapshot *s, uint8_t *buf, uint32_t *pgnos, uint32_t max,
		     lx_err *err);

void db_snapshot_end(db_snapshot *s);

/*
 * The mount is about to change bytes [off, off+len) of file f (len
 * UINT64_MAX: everything from off on, as for a truncate or unlink); keep
 * the old content of every unread page that lives there.  db->mu held.
 * A failure to preserve aborts the snapshot (its reader gets an error),
 * never the write.
 */
void db_snapshot_preserve_locked(database *db, enum db_file f, uint64_t off,
				 uint64_t len);

/* The hook as the writers call it: free when no snapshot is being read. */
static inline void db_preserve_locked(database *db, enum db_file f, uint64_t off,
				      uint64_t len)
{
	db_assert_locked(db);
	if (db->snapshots != NULL)
		db_snapshot_preserve_locked(db, f, off, len);
}

#endif
