/*
 * ltx.h - the LTX transaction file format: constants, checksums, encoder,
 * streaming decoder and verification.  The byte layout is specified in
 * docs/ltx-format.md; this header is the API contract.
 *
 * An LTX file records the pages one or more consecutive transactions
 * changed, the TXID range they cover, and the database checksum before and
 * after they apply.  A snapshot (min_txid == 1) holds every page of the
 * database.
 *
 * This module is a pure library: no global state, no threads, no logging,
 * no I/O except through caller-supplied callbacks.  Every function is
 * reentrant; an encoder or decoder object must be used by one thread at a
 * time.  Errors are returned as negative errno codes (EINVAL for malformed
 * arguments, EBADMSG for malformed or corrupt input, EOVERFLOW for input
 * that exceeds a limit) with a message in the optional lx_err.
 */
#ifndef LTXFS_LTX_LTX_H
#define LTXFS_LTX_LTX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define LTX_MAGIC "LTXF"             /* 4 bytes at offset 0 */
#define LTX_VERSION 1
#define LTX_HEADER_SIZE 96
#define LTX_PAGE_HEADER_SIZE 16      /* pgno u32, flags u32, page checksum u64 */
#define LTX_TRAILER_SIZE 16          /* post-apply checksum, file checksum */
#define LTX_MIN_PAGE_SIZE 512
#define LTX_MAX_PAGE_SIZE 65536
#define LTX_PENDING_BYTE 0x40000000ULL
#define LTX_CHECKSUM_FLAG (1ULL << 63)

/* Header flags. Unknown bits make a file invalid. */
#define LTX_FLAG_COMPACTED 0x1u      /* covers several transactions */
#define LTX_FLAGS_MASK 0x1u

/* SQLite's largest page number (2^32 - 2) bounds `commit`. */
#define LTX_MAX_PGNO 4294967294u

typedef struct ltx_header {
	uint32_t flags;
	uint32_t page_size;     /* 512..65536, a power of two */
	uint32_t commit;        /* database size in pages after applying; 0 = deleted */
	uint32_t page_count;    /* number of page frames that follow the header */
	uint64_t min_txid;      /* >= 1 */
	uint64_t max_txid;      /* >= min_txid */
	int64_t timestamp_ms;   /* wall clock of the (last) commit, ms since epoch */
	uint64_t pre_checksum;  /* database checksum before; 0 iff snapshot */
	uint64_t node_id;       /* node that created the transaction */
	uint64_t lease_epoch;   /* lease epoch under which it was written */
} ltx_header;

typedef struct ltx_trailer {
	uint64_t post_checksum; /* database checksum after applying */
	uint64_t file_checksum; /* XXH3-64 of every byte before it, | FLAG */
} ltx_trailer;

/* ---- page numbers and sizes ------------------------------------------- */

/* 1 if `page_size` is a power of two in 512..65536. */
int ltx_page_size_valid(uint32_t page_size);

/* The page holding SQLite's PENDING_BYTE; never stored, never checksummed. */
uint32_t ltx_lock_pgno(uint32_t page_size);

/* Number of page frames a snapshot of `commit` pages holds (lock page excluded). */
uint32_t ltx_snapshot_page_count(uint32_t page_size, uint32_t commit);

/* Exact encoded size of a file with this header (0 if the header is invalid). */
uint64_t ltx_file_size(const ltx_header *h);

/* ---- checksums ---------------------------------------------------------- */

/*
 * Checksum of one page: XXH3-64 of the page data seeded with its page
 * number, with LTX_CHECKSUM_FLAG set.  Never 0.
 */
uint64_t ltx_page_checksum(uint32_t pgno, const void *data, uint32_t page_size);

/*
 * The database checksum is the XOR of the checksums of pages 1..commit (the
 * lock page excluded), with LTX_CHECKSUM_FLAG set; an empty database has
 * checksum LTX_CHECKSUM_FLAG.  Being an XOR it is order-independent and is
 * updated in O(changed pages):
 *     db = ltx_checksum_update(db, old_page_ck, new_page_ck)
 * where a page that appears or disappears has checksum 0 on the missing side.
 */
static inline uint64_t ltx_checksum_update(uint64_t db, uint64_t old_page,
					   uint64_t new_page)
{
	return (db ^ old_page ^ new_page) | LTX_CHECKSUM_FLAG;
}

/*
 * Fold `count` consecutive pages, the first numbered `first_pgno`, held in
 * `pages` (count * page_size bytes), into database checksum `db` and
 * return it; the lock page is skipped.  `page_ck` (may be NULL) receives
 * each page's checksum at [pgno - first_pgno], 0 for the lock page.
 */
uint64_t ltx_checksum_pages(uint64_t db, uint32_t first_pgno, const void *pages,
			    uint32_t count, uint32_t page_size, uint64_t *page_ck);

/* ---- header ------------------------------------------------------------- */

/* Serialise / parse exactly LTX_HEADER_SIZE bytes.  Parse validates (below). */
void ltx_header_encode(const ltx_header *h, uint8_t out[LTX_HEADER_SIZE]);
int ltx_header_decode(const uint8_t in[LTX_HEADER_SIZE], ltx_header *h,
		      lx_err *err);

/*
 * Check every header rule of docs/ltx-format.md: version, flags, page size,
 * TXID range, snapshot/pre-checksum consistency, page_count bounds.
 */
int ltx_header_validate(const ltx_header *h, lx_err *err);

static inline int ltx_header_is_snapshot(const ltx_header *h)
{
	return h->min_txid == 1;
}

/* ---- encoder ------------------------------------------------------------ */

/*
 * Sink for encoded bytes.  Returns 0 or a negative errno (then the encoder
 * fails with that code).  The encoder calls it with header, page frames and
 * trailer in order; it never buffers a whole file.
 */
typedef int (*ltx_write_fn)(void *ctx, const void *buf, size_t len);

typedef struct ltx_encoder {
	/* private */
	ltx_header hdr;
	ltx_write_fn write;
	void *ctx;
	void *hash;             /* XXH3 state */
	uint32_t pages_written;
	uint32_t last_pgno;
	uint64_t snapshot_checksum;
	int state;              /* 0 = new, 1 = pages, 2 = finished, -1 = failed */
} ltx_encoder;

/* Validates `h` and writes the header.  On failure the encoder is unusable. */
int ltx_encoder_begin(ltx_encoder *enc, const ltx_header *h, ltx_write_fn write,
		      void *ctx, lx_err *err);

/*
 * Add one page.  Pages must come in strictly increasing pgno order, each
 * <= commit and != the lock page; a snapshot must add every page 1..commit
 * except the lock page.  `page_checksum` may be 0, in which case it is
 * computed; otherwise it must equal ltx_page_checksum() (trusted).
 * A page refused with EINVAL writes nothing and leaves the encoder usable;
 * a failed write makes it unusable.
 */
int ltx_encoder_page(ltx_encoder *enc, uint32_t pgno, const void *data,
		     uint64_t page_checksum, lx_err *err);

/*
 * Write the trailer.  Fails unless exactly hdr.page_count pages were added.
 * For a snapshot, `post_checksum` must equal the checksum of its pages.
 * On success *file_checksum (if non-NULL) receives the file checksum.
 */
int ltx_encoder_finish(ltx_encoder *enc, uint64_t post_checksum,
		       uint64_t *file_checksum, lx_err *err);

/* Release the encoder's resources (always call, also after failure). */
void ltx_encoder_free(ltx_encoder *enc);

/* ---- streaming decoder -------------------------------------------------- */

/*
 * Callbacks of the decoder.  Any may be NULL.  A callback returning a
 * negative errno aborts decoding with that code.  NOTE: pages are delivered
 * before the file checksum has been checked; a consumer that must not act
 * on unverified data buffers them until on_trailer (which is called only
 * after the file checksum verified).
 */
typedef struct ltx_decode_cb {
	void *ctx;
	int (*on_header)(void *ctx, const ltx_header *h);
	int (*on_page)(void *ctx, uint32_t pgno, const uint8_t *data,
		       uint64_t page_checksum);
	int (*on_trailer)(void *ctx, const ltx_trailer *t);
} ltx_decode_cb;

typedef struct ltx_limits {
	uint32_t max_page_count;  /* 0 = no limit beyond the format's own */
	uint64_t max_file_size;   /* 0 = no limit */
} ltx_limits;

typedef struct ltx_decoder {
	/* private */
	ltx_decode_cb cb;
	ltx_limits limits;
	ltx_header hdr;
	void *hash;               /* XXH3 state */
	uint8_t *buf;             /* one page frame or header/trailer */
	size_t buf_cap, buf_len;
	uint64_t offset;          /* bytes consumed so far */
	uint32_t pages_read;
	uint32_t last_pgno;
	uint64_t snapshot_checksum;
	int state;                /* see ltx/decode.c */
	int failed;               /* positive errno once decoding failed */
	uint8_t head[LTX_HEADER_SIZE]; /* header, frame header or trailer */
	uint32_t frame_pgno;      /* pgno of the frame being read */
	uint64_t frame_checksum;  /* its stored page checksum */
} ltx_decoder;

/* `cb` and `limits` may be NULL.  Allocates nothing until the header has
 * passed the limits. */
int ltx_decoder_init(ltx_decoder *dec, const ltx_decode_cb *cb,
		     const ltx_limits *limits, lx_err *err);

/*
 * Feed the next `len` bytes of the file.  Bytes may arrive in pieces of any
 * size.  Returns 0, or a negative errno with a message naming the byte
 * offset and the rule broken.  After the last trailer byte further input is
 * an error (EBADMSG, "trailing bytes").
 */
int ltx_decoder_feed(ltx_decoder *dec, const void *buf, size_t len,
		     lx_err *err);

/* Declare end of input: fails with EBADMSG ("truncated ...") unless the
 * trailer was read and verified. */
int ltx_decoder_finish(ltx_decoder *dec, lx_err *err);

/* The header, once decoded (NULL before). */
const ltx_header *ltx_decoder_header(const ltx_decoder *dec);

void ltx_decoder_free(ltx_decoder *dec);

/* ---- whole-buffer helpers ----------------------------------------------- */

/* Decode and verify a complete in-memory file; callbacks as above. */
int ltx_decode_buffer(const void *buf, size_t len, const ltx_decode_cb *cb,
		      lx_err *err);

/* Verify a complete file held in memory; on success fill *h and *t
 * (either may be NULL). */
int ltx_verify_buffer(const void *buf, size_t len, ltx_header *h,
		      ltx_trailer *t, lx_err *err);

/* Verify `len` bytes of an LTX file stored in `fd` at `offset` (pread). */
int ltx_verify_fd(int fd, uint64_t offset, uint64_t len, ltx_header *h,
		  ltx_trailer *t, lx_err *err);

/*
 * LTX files stored one after another (a backup's l0 object): the header of
 * the file that starts at buf and its encoded size, which must fit in
 * `len`.  Only the header is checked; decode or verify the file itself.
 */
int ltx_file_at(const uint8_t *buf, size_t len, ltx_header *h, uint64_t *size, lx_err *err);

/* ---- compaction --------------------------------------------------------- */

/* One complete LTX file held in memory. */
typedef struct ltx_compact_input {
	const void *buf;
	size_t len;
} ltx_compact_input;

/*
 * Merge `n` >= 1 contiguous LTX files, ordered by TXID, into one file
 * covering in[0].min_txid .. in[n-1].max_txid, streamed through `write`.
 * Every input is fully verified first; each must start where the previous
 * ended (min_txid == prev max_txid + 1, pre_checksum == prev post_checksum)
 * and all must share a page size (else EINVAL; corrupt input is EBADMSG).
 * The latest version of each page wins; a version is dropped when a later
 * input's commit truncated it away.  Output: pre_checksum from the first,
 * commit, timestamp, node_id, lease_epoch and post_checksum from the last,
 * LTX_FLAG_COMPACTED iff min_txid < max_txid.  A snapshot first input gives
 * a snapshot, whose post_checksum is re-verified against its pages.  On
 * success *out_h and *out_t (either may be NULL) describe the output.
 */
int ltx_compact(const ltx_compact_input *in, size_t n, ltx_write_fn write,
		void *ctx, ltx_header *out_h, ltx_trailer *out_t, lx_err *err);

#endif
