/*
 * wal.h - parsing SQLite's write-ahead log (the "-wal" file).
 *
 * Pure functions over byte buffers (see sqlite.org/walformat.html and
 * sqlite.org/fileformat.html): the 32-byte header, the 24-byte frame
 * headers and SQLite's cumulative frame checksum.  A frame is valid only
 * when its salts equal the header's and the checksum chain, started from
 * the header checksum, holds up to and including it; a transaction is the
 * run of valid frames up to one whose commit field is non-zero.
 */
#ifndef LTXFS_DB_WAL_H
#define LTXFS_DB_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define WAL_HEADER_SIZE 32
#define WAL_FRAME_HEADER_SIZE 24
#define WAL_MAGIC_LE 0x377f0682u
#define WAL_MAGIC_BE 0x377f0683u
#define WAL_FORMAT_VERSION 3007000u

typedef struct wal_header {
	uint32_t magic;
	uint32_t page_size;
	uint32_t ckpt_seq;
	uint32_t salt1, salt2;
	uint32_t cksum1, cksum2;
} wal_header;

typedef struct wal_frame_header {
	uint32_t pgno;
	uint32_t commit;   /* database size in pages after commit; 0 if not a commit frame */
	uint32_t salt1, salt2;
	uint32_t cksum1, cksum2;
} wal_frame_header;

/* The running checksum of a WAL (s1, s2 as SQLite's aCksum[]). */
typedef struct wal_cksum {
	uint32_t s1, s2;
} wal_cksum;

/* Byte offset of frame `index` (0-based) for a page size. */
static inline uint64_t wal_frame_offset(uint32_t page_size, uint64_t index)
{
	return WAL_HEADER_SIZE + index * (uint64_t)(WAL_FRAME_HEADER_SIZE + page_size);
}

/*
 * Parse and validate a WAL header (magic, version, page size, header
 * checksum).  Returns 0 or -EBADMSG with the reason in `err`.
 */
int wal_header_parse(const uint8_t buf[WAL_HEADER_SIZE], wal_header *h,
		     lx_err *err);

/* Serialise a header (computes its checksum); used by tests and tools. */
void wal_header_encode(wal_header *h, uint8_t buf[WAL_HEADER_SIZE]);

/*
 * SQLite's WAL checksum over `len` bytes (a multiple of 8) continuing from
 * `in`; big-endian words when the magic is WAL_MAGIC_BE.
 */
wal_cksum wal_checksum(int big_endian, const uint8_t *data, size_t len,
		       wal_cksum in);

void wal_frame_header_parse(const uint8_t buf[WAL_FRAME_HEADER_SIZE],
			    wal_frame_header *f);

/*
 * Check a whole frame (header + page) against the WAL header's salts and
 * the running checksum `*chain`; on success advance *chain and return 1,
 * else return 0 (the frame and everything after it are not part of the log).
 */
int wal_frame_valid(const wal_header *h, const uint8_t *frame,
		    wal_cksum *chain);

/* Build a valid frame for tests and tools: fills the 24-byte header in
 * `frame` (whose page data follows it) and advances *chain. */
void wal_frame_encode(const wal_header *h, uint32_t pgno, uint32_t commit,
		      uint8_t *frame, wal_cksum *chain);

#endif
