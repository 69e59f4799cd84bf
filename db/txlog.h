/*
 * txlog.h - the transaction log of one database.
 *
 * Committed transactions, as LTX files (ltx/ltx.h), are appended to
 * segment files in the database's log directory:
 *
 *     dbs/NAME/log/%016x.seg      (named by the first TXID it holds)
 *
 * A segment is a sequence of records: a 40-byte record header (magic
 * "LTXR", flags, LTX length, the WAL anchor, a header checksum) followed by
 * the LTX file's bytes, so a stored transaction can be served to replicas
 * with sendfile(2) straight from the segment.  Appending a transaction is
 * one pwrite(2) of the buffered record in the common case: no file
 * creation, no rename, no fsync.  Durability is requested separately with
 * txlog_sync(), which the database layer calls when the application asks
 * SQLite for durability (see docs/design.md, "Durability").
 *
 * The WAL anchor records, for a transaction captured from a WAL, the WAL's
 * salts and the byte offset just past its commit frame; crash recovery uses
 * it to tell which WAL frames are already in the log.
 *
 * Space ahead of the newest record is kept written with zeros (about 1 MiB
 * ahead): an append then overwrites allocated blocks and its fdatasync does
 * not have to commit a new file size and extent (half the cost on ext4).
 * A record header of zeros therefore ends a segment's records.
 *
 * At open the log is scanned (record headers, LTX headers and trailers; the
 * newest record is fully verified); a torn record at the tail of the newest
 * segment, left by a crash in the middle of an append, is cut off.  Damage
 * anywhere else is an error.
 *
 * History need not start at TXID 1.  Retention (txlog_trim) removes the
 * oldest segments, and a replica that installs a snapshot resets its log to
 * the snapshot's position (txlog_reset_to).  The base is the position just
 * before the first record: while the log has records, the first record
 * defines it (its min_txid - 1 and pre-checksum); while it has none, the
 * small file `base` in the log directory does (magic "LTXB", version, TXID,
 * checksum, XXH3-64 of those 24 bytes; big-endian), and no file means 0/0.
 * The file is rewritten (or, for 0/0, removed) only when the log is
 * emptied (txlog_reset_to, txlog_truncate_from(0)) and is left in place
 * once records are appended: it is then stale but ignored, and rewritten
 * before the log can be empty again (txlog_trim never empties it, and syncs
 * the records it keeps).  Contiguity is checked between records
 * only, so a log may start at any TXID; an appended record must continue
 * the newest record, or the base when the log is empty (a snapshot,
 * min_txid 1, may always start an empty log).
 *
 * Threading: every function except txlog_sync() must be called with the
 * owning database's mutex held.  txlog_sync() may run concurrently with
 * appends (it syncs what was appended before it started) and with
 * txlog_trim() (which never removes the newest segment, the only one
 * txlog_sync() touches); txlog_reset_to() and txlog_truncate_from() take
 * its lock while they close segments.  Entry pointers and segment indexes
 * are invalidated by txlog_trim(), txlog_truncate_from() and
 * txlog_reset_to().
 */
#ifndef LTXFS_DB_TXLOG_H
#define LTXFS_DB_TXLOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "ltx/ltx.h"

#define TXLOG_RECORD_HEADER_SIZE 40
#define TXLOG_SEGMENT_MAX (64u << 20)   /* default size of a segment */
#define TXLOG_SEGMENT_MIN (64u << 10)   /* smallest txlog_set_segment_max() */

typedef struct txlog_anchor {
	uint32_t salt1, salt2;
	uint64_t wal_end;   /* 0: not captured from a WAL */
} txlog_anchor;

typedef struct txlog_entry {
	ltx_header hdr;          /* the LTX header */
	uint64_t post_checksum;  /* from the LTX trailer */
	txlog_anchor anchor;
	uint32_t seg;            /* index into the segment table */
	uint64_t offset;         /* of the LTX bytes within the segment */
	uint64_t length;         /* of the LTX bytes */
	int verified;            /* its bytes are known good: appended by this process,
				    or fully verified since it was read from disk */
} txlog_entry;

typedef struct txlog_segment {
	uint64_t first_txid;
	int fd;
	uint64_t size;           /* end of the records */
	uint64_t file_size;      /* >= size; the bytes in between are zero */
	uint64_t reserved;       /* blocks are allocated up to here (txlog_reserve) */
} txlog_segment;

typedef struct txlog {
	char *dir;
	int dirfd;
	txlog_segment *segs;
	size_t nsegs, segs_cap;
	txlog_entry *ents;
	size_t n, cap;
	uint64_t ltx_bytes;      /* sum of the entries' LTX lengths */
	uint64_t segment_max;    /* appends roll over at this segment size */
	uint64_t segment_max_age_ms; /* ... or when its first record is this old (0: never) */
	uint64_t base_txid;      /* the base while there are no records */
	uint64_t base_checksum;

	/* append buffer (owned; reused) */
	uint8_t *buf;
	size_t buf_len, buf_cap;
	uint64_t rec_offset;     /* offset of the record being appended */
	uint64_t rec_written;    /* bytes of it already written */
	uint64_t rec_ltx_len;    /* LTX length announced by append_begin */
	uint64_t rec_first_txid; /* TXID announced by append_begin */
	txlog_anchor rec_anchor;
	int appending;

	/* durability (see txlog_sync) */
	pthread_mutex_t sync_lock;
	uint64_t append_seq;     /* appends so far */
	uint64_t synced_seq;     /* appends known durable */
	int sync_fd;             /* newest segment's fd (atomic; segs may move) */
	int readonly;            /* txlog_open_readonly(): never written */
	int dir_dirty;           /* a segment was created since the last sync */
	int no_fallocate;        /* the file system cannot reserve space */

	/* descriptors closed while the database is idle (txlog_close_fds);
	 * these three change under sync_lock too */
	int fds_closed;
	int closed_has_seg;      /* the newest segment when they were closed ... */
	uint64_t closed_seg_txid; /* ... its first TXID, for txlog_sync */
} txlog;

/* Open (creating if needed) the log in `dir`, scan and repair its tail. */
int txlog_open(txlog **out, const char *dir, lx_err *err);
/*
 * Open an existing log for reading only (tools, and any reader while a
 * daemon may be appending): nothing is created, cut or written; the scan
 * ends at the first incomplete record.  Appending to it is an error.
 */
int txlog_open_readonly(txlog **out, const char *dir, lx_err *err);
void txlog_close(txlog *log);

static inline const txlog_entry *txlog_last(const txlog *log)
{
	return log->n ? &log->ents[log->n - 1] : NULL;
}

/* The entry whose TXID range contains `txid`, or NULL. */
const txlog_entry *txlog_find(const txlog *log, uint64_t txid);

/*
 * The position just before the first record: the first record's min_txid
 * - 1 and pre-checksum (0/0 for a snapshot), or without records the base
 * kept in the `base` file (0/0 when there is none).
 */
void txlog_base(const txlog *log, uint64_t *txid, uint64_t *checksum);

/*
 * The size at which appends roll over to a new segment (TXLOG_SEGMENT_MAX
 * by default; raised to TXLOG_SEGMENT_MIN), which is the granularity of
 * txlog_trim().  Takes effect at the next append.
 */
void txlog_set_segment_max(txlog *log, uint64_t bytes);

/*
 * Roll over also when the newest segment's first record (by its commit
 * timestamp) is `ms` old (0: never), so that trimming by age, which removes
 * whole segments, is not held up by one long-lived segment.
 */
void txlog_set_segment_max_age(txlog *log, uint64_t ms);

/*
 * Append one record.  Call txlog_append_begin() with the LTX's encoded
 * length (ltx_file_size()), feed the LTX through txlog_append_write (an
 * ltx_write_fn whose ctx is the txlog), then txlog_append_end().  On any
 * failure call txlog_append_abort(), which cuts the partial record off.
 * The record must continue the log (see above): append_begin refuses a
 * first_txid other than the next TXID, append_end a header whose min_txid
 * differs from first_txid or whose pre-checksum does not continue the
 * log's checksum (EINVAL; append_end then aborts the record itself).
 */
int txlog_append_begin(txlog *log, uint64_t ltx_len, uint64_t first_txid,
		       const txlog_anchor *anchor, lx_err *err);
int txlog_append_write(void *log, const void *buf, size_t len);
int txlog_append_end(txlog *log, const ltx_header *hdr, uint64_t post_checksum,
		     lx_err *err);
void txlog_append_abort(txlog *log);

/*
 * Make sure the next `bytes` bytes of records can be appended to the
 * newest segment without allocating space (fallocate(2), keeping the file
 * size), so that an append after a successful reserve does not fail for a
 * full disk.  Fails with ENOSPC or EDQUOT when the space is not there; a
 * file system that cannot reserve makes it a no-op.  Before the first
 * segment exists, and when the newest one is due to roll over, the next
 * append allocates as it goes.
 */
int txlog_reserve(txlog *log, uint64_t bytes, lx_err *err);

/*
 * Make every record appended before this call durable (fdatasync of the
 * segments written since the last sync, fsync of the directory after a
 * segment was created).  Safe to call without the database mutex.
 */
int txlog_sync(txlog *log, lx_err *err);

/*
 * Descriptors.  An idle log may close its directory and segment
 * descriptors (db/handles.h bounds how many a store keeps open) and open
 * them again before any other use; txlog_sync() works either way (it opens
 * the newest segment by name when it must).  txlog_close_fds returns
 * -EBUSY, closing nothing, while an append is in progress or a sync runs.
 */
int txlog_close_fds(txlog *log);
int txlog_open_fds(txlog *log, lx_err *err);
/* Descriptors the log holds now. */
size_t txlog_fd_count(const txlog *log);

/* Whether txlog_trim() with these bounds would remove anything. */
int txlog_trim_due(const txlog *log, int64_t now_ms, uint64_t max_age_ms, uint64_t max_bytes);

/* Whether records were appended since the last completed txlog_sync(). */
static inline int txlog_unsynced(txlog *log)
{
	return __atomic_load_n(&log->append_seq, __ATOMIC_ACQUIRE) >
	       __atomic_load_n(&log->synced_seq, __ATOMIC_ACQUIRE);
}

/*
 * Remove entries index..n-1 (crash recovery); truncates the segments.
 * Removing every entry keeps the base (written to the `base` file first).
 */
int txlog_truncate_from(txlog *log, size_t index, lx_err *err);

/*
 * Remove every record and segment and make (txid, checksum) the base: the
 * next record must be TXID txid + 1 with pre-checksum `checksum`, or a
 * snapshot.  txid 0 needs checksum 0 (the `base` file is then removed);
 * any other needs bit 63 set (EINVAL).  The base file is durable before
 * the first segment is removed and segments go oldest first, so a crash
 * leaves either the old tail or the new base.  A replica installing a
 * snapshot of TXID txid calls this.
 */
int txlog_reset_to(txlog *log, uint64_t txid, uint64_t checksum, lx_err *err);

/* txlog_reset_to(log, 0, 0): history starts again at TXID 1. */
int txlog_reset(txlog *log, lx_err *err);

/*
 * Retention: remove whole segments from the oldest end while the segment
 * does not hold the newest record and either the timestamp of its newest
 * record is more than max_age_ms before now_ms, or the log holds more than
 * max_bytes of LTX (ltx_bytes).  0 disables a limit.  The newest record is
 * always kept, so the base afterwards is the first kept record's start.
 * Syncs the log first (the kept records must survive a crash that the
 * removal survives) and fsyncs the directory after each unlink (so a crash
 * never leaves an older segment without the newer ones).  *removed gets
 * the number of records removed (also on failure, which stops at the
 * segment that could not be removed).
 */
int txlog_trim(txlog *log, int64_t now_ms, uint64_t max_age_ms,
	       uint64_t max_bytes, size_t *removed, lx_err *err);

/* Read the LTX bytes of an entry into `buf` (entry->length bytes). */
int txlog_read(const txlog *log, const txlog_entry *e, void *buf, lx_err *err);

/* Fully verify an entry's LTX (page and file checksums). */
int txlog_verify_entry(const txlog *log, const txlog_entry *e, lx_err *err);

#endif
