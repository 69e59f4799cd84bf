/*
 * wal_index.h - SQLite's wal-index (the "-shm" file), written the way
 * SQLite's own wal.c writes it, so that a replica can publish WAL frames
 * to local readers exactly as a local SQLite writer would.
 *
 * Layout (sqlite.org/walformat.html, wal.c): the file is a series of 32 KiB
 * regions.  Region 0 starts with two copies of the 48-byte index header
 * (readers take the header only when both copies agree and the checksum
 * holds; a writer writes copy 1, then copy 0) and the 40-byte checkpoint
 * information (nBackfill, aReadMark[5], the 8 lock bytes,
 * nBackfillAttempted).  Each region then holds a page-number array (one
 * u32 per frame: 4062 frames in region 0, after the 136 header bytes, 4096
 * in every other) and, at byte 16384, a hash table of 8192 u16 slots
 * (slot = frame index within the region, 1-based; key = pgno * 383 mod
 * 8192, linear probing).  Everything is in native byte order; this module
 * assumes a little-endian host (checked at compile time), as ltxfs does.
 *
 * Pure functions over memory the caller maps: no I/O, no locking, no
 * global state.  Stores into memory other processes read use atomic
 * stores and a full barrier between the two header copies, as wal.c does.
 * The caller holds SQLite's WAL WRITE lock while appending and publishing.
 */
#ifndef LTXFS_DB_WAL_INDEX_H
#define LTXFS_DB_WAL_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "db/wal.h"

#define WI_REGION_SIZE 32768u
#define WI_HEADER_SIZE 48u
#define WI_INFO_OFFSET 96u          /* checkpoint information */
#define WI_HDR_SIZE 136u            /* 2 headers + checkpoint information */
#define WI_NREADER 5                /* aReadMark[0..4] */
#define WI_READMARK_UNUSED 0xffffffffu
#define WI_FRAMES_REGION0 4062u
#define WI_FRAMES_REGION 4096u
#define WI_NSLOT 8192u

/* What the index header says. */
typedef struct wi_header {
	uint32_t change;       /* iChange: differs after every publish */
	uint32_t page_size;
	uint32_t mx_frame;     /* last valid (committed) frame, 1-based; 0: none */
	uint32_t n_page;       /* database size in pages */
	wal_cksum frame_ck;    /* checksum chain at frame mx_frame (or the WAL header) */
	uint32_t salt1, salt2; /* as in the WAL header */
} wi_header;

/* The region (0-based) whose arrays hold frame `frame` (1-based). */
uint32_t wi_region_of(uint32_t frame);

/* Regions needed to index frames 1..mx_frame (at least 1). */
uint32_t wi_regions_for(uint32_t mx_frame);

/* Serialise a header (isInit 1, native checksums, its own checksum). */
void wi_header_encode(const wi_header *h, uint8_t out[WI_HEADER_SIZE]);

/* Both copies in region 0, equal and valid, into *h: 0; else -1 (a reader
 * would run recovery). */
int wi_header_load(const uint8_t *region0, wi_header *h);

/* Publish: copy 1, a full barrier, copy 0 (what readers check last). */
void wi_header_store(uint8_t *region0, const wi_header *h);

/* Checkpoint information (atomic loads and stores). */
uint32_t wi_backfill(const uint8_t *region0);
void wi_set_backfill(uint8_t *region0, uint32_t n);
uint32_t wi_read_mark(const uint8_t *region0, int i);
void wi_set_read_mark(uint8_t *region0, int i, uint32_t v);

/* After a WAL restart (walRestartHdr): nothing backfilled, aReadMark[1] 0,
 * the others unused.  The caller holds READ(1..4) exclusively. */
void wi_reset_info(uint8_t *region0);

/*
 * Forget every entry of frames after mx_frame in the region that holds
 * frame mx_frame + 1 (what walCleanupHash does when a writer died in the
 * middle of a transaction).  regions[] must cover that region.
 */
void wi_cleanup(uint8_t *const *regions, uint32_t mx_frame);

/*
 * Index frame `frame` (1-based, = previous mx_frame + 1) as holding page
 * `pgno`.  The first frame of a region clears that region's arrays
 * first.  regions[] must cover wi_region_of(frame).  Returns 0, or -1 if
 * the hash table is corrupt (more collisions than entries).
 */
int wi_append(uint8_t *const *regions, uint32_t frame, uint32_t pgno);

/* The newest frame in [min_frame, max_frame] holding `pgno`, or 0: how a
 * reader looks a page up (walFindFrame); for tests. */
uint32_t wi_find(uint8_t *const *regions, uint32_t pgno, uint32_t min_frame,
		 uint32_t max_frame);

#endif
