/*
 * proto.h - the wire format of the replication stream (POST /stream).
 * docs/protocol.md is the reference; this header is the contract.
 *
 * Request body, replica to primary (the replica's position of each of its
 * databases, with a few earlier positions of its history, newest first, so
 * that a primary can tell where a diverged replica left its history):
 *     "LTXP"  u32 version (3)  u32 count
 *     count x { u16 name_len, name, u64 txid, u64 checksum,
 *               u16 n_hist, n_hist x { u64 txid, u64 checksum } }
 *     u64 XXH3-64 of every preceding byte
 *
 * Response body, primary to replica: a sequence of frames, each
 *     u32 type  u32 name_len  u64 payload_len  u64 arg
 *     u64 check = XXH3-64(the 24 bytes before it || name)
 *     name (name_len bytes)  payload (payload_len bytes)
 * An LTX payload carries its own file checksum; the frame check covers
 * everything else, so a flipped bit anywhere is detected before it is
 * acted on.
 *
 * Pure library: no I/O, no global state; integers are big-endian.
 */
#ifndef LTXFS_REPLICA_PROTO_H
#define LTXFS_REPLICA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define PROTO_VERSION 3
#define PROTO_FRAME_HEADER_SIZE 32
#define PROTO_NAME_MAX 255
#define PROTO_POS_MAX_DBS 100000
#define PROTO_HIST_MAX 24         /* earlier positions sent per database */
#define PROTO_POS_MIN_SIZE (2 + 1 + 16 + 2)
#define PROTO_BODY_MAX (PROTO_POS_MAX_DBS * (2 + PROTO_NAME_MAX + 16 + 2 + PROTO_HIST_MAX * 16) + 20)
#define PROTO_PAYLOAD_MAX (1ULL << 44)   /* 16 TiB: larger than any database */
#define PROTO_POINTS_MAX 65536            /* positions in a DIVERGED payload */

enum proto_frame_type {
	FRAME_LTX = 1,        /* payload: an LTX file (a snapshot if min_txid == 1) */
	FRAME_HEARTBEAT = 2,  /* arg: the primary's wall clock, ms */
	FRAME_READY = 3,      /* the initial catch-up of every database is done */
	FRAME_DELETED = 4,    /* the primary has no database `name`: remove it */
	FRAME_DIVERGED = 5,   /* the replica's position is not on the primary's
				 history; arg: the newest of the replica's reported
				 positions on it (0: none); payload: empty or the
				 primary's positions after arg (proto_points).
				 A snapshot follows. */
};

typedef struct proto_frame {
	uint32_t type;
	uint32_t name_len;
	uint64_t payload_len;
	uint64_t arg;
} proto_frame;

/* A position on a database's history: the state after `txid`. */
typedef struct proto_point {
	uint64_t txid;
	uint64_t checksum;
} proto_point;

/* One database's position in a request, with earlier ones (newest first,
 * TXIDs strictly decreasing and below `txid`). */
typedef struct proto_pos {
	char name[PROTO_NAME_MAX + 1];
	uint64_t txid;
	uint64_t checksum;
	uint16_t n_hist;
	proto_point hist[PROTO_HIST_MAX];
} proto_pos;

/* ---- request body ---- */

/* Bytes proto_pos_encode() writes for these positions. */
size_t proto_pos_size(const proto_pos *v, size_t n);
/* Encode into `out` (proto_pos_size() bytes). */
void proto_pos_encode(const proto_pos *v, size_t n, uint8_t *out);
/* Decode and validate; *out is malloc'd (caller frees, also when n == 0).
 * Returns 0 or -EBADMSG / -ENOMEM with a message. */
/* EPROTONOSUPPORT: another protocol version (the message says what to do);
 * EBADMSG: anything else malformed. */
int proto_pos_decode(const uint8_t *buf, size_t len, proto_pos **out, size_t *n,
		     lx_err *err);

/* ---- a DIVERGED payload: positions in ascending TXID order ----
 *     n x { u64 txid, u64 checksum }  u64 XXH3-64 of the preceding bytes */

size_t proto_points_size(size_t n);
void proto_points_encode(const proto_point *v, size_t n, uint8_t *out);
/* Decode and validate (check, order, count); *out is malloc'd (caller
 * frees, also when n == 0).  Returns 0 or -EBADMSG / -ENOMEM. */
int proto_points_decode(const uint8_t *buf, size_t len, proto_point **out, size_t *n,
			lx_err *err);

/* ---- frames ---- */

/* Encode a frame header (with its check) for `name` into out[32]. */
void proto_frame_encode(const proto_frame *f, const char *name,
			uint8_t out[PROTO_FRAME_HEADER_SIZE]);
/*
 * Parse the fixed part of a frame header: type, lengths, limits.  The
 * check can only be verified once the name is there: proto_frame_check().
 */
int proto_frame_decode(const uint8_t in[PROTO_FRAME_HEADER_SIZE], proto_frame *f,
		       lx_err *err);
/* Verify a decoded header's check against its raw bytes and name. */
int proto_frame_check(const uint8_t in[PROTO_FRAME_HEADER_SIZE], const char *name,
		      lx_err *err);

#endif
