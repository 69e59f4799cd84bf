/*
 * receive.h - one LTX file arriving on the replication stream.
 *
 * The bytes of an LTX frame are fed as they come.  The header is gathered
 * first, so where the bytes go is decided before any is stored: an
 * incremental file goes to the replica's spool file (an unlinked file,
 * reused for every frame), a snapshot's pages straight into a new database
 * image (`snapshot.tmp` in the database's directory), in runs of up to
 * 1 MiB.  The decoder verifies everything on the way (header rules, page
 * checksums, the length the frame announced, the file checksum); only when
 * the whole file verified does receive_finish() apply it
 * (db_apply_remote) or install it (db_install_snapshot).
 *
 * One receive object is used by one thread (the replica thread).
 */
#ifndef LTXFS_REPLICA_RECEIVE_H
#define LTXFS_REPLICA_RECEIVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "db/store.h"
#include "ltx/ltx.h"

typedef struct receive {
	database *db;
	ltx_decoder dec;
	int dec_live;
	uint64_t len, got;
	uint8_t head[LTX_HEADER_SIZE];  /* the header, gathered before anything else */
	int snapshot;
	int fd;                         /* spool (incremental) or image (snapshot) */
	int own_fd;                     /* fd is the image, closed with the file */
	int spool_fd;                   /* the replica's spool file */
	ltx_header hdr;
	uint64_t *page_ck;              /* snapshot: checksums of the image's pages */
	uint8_t *run;                   /* snapshot: consecutive pages not yet written */
	size_t run_len;
	uint32_t run_first;             /* pgno of the run's first page */
	uint64_t post;                  /* the trailer's post-apply checksum */
	lx_err err;                     /* why it failed */
} receive;

/* A zeroed receive (fd -1). */
void receive_init(receive *r);
/* Free everything and make it ready for the next file. */
void receive_reset(receive *r);

/* Start the file of database `name` (created if new), `len` bytes. */
int receive_start(receive *r, store *st, const char *name, uint64_t len, int spool_fd);

/* The next bytes of the file. */
int receive_feed(receive *r, const uint8_t *buf, size_t len);

/* All bytes are in: verify the end, then apply or install.  *snapshot
 * says which it was; *ts_ms receives the file's commit timestamp.
 * `logged` is told when an incremental file is in the log
 * (db_apply_remote). */
int receive_finish(receive *r, const db_logged_hook *logged, int *snapshot, int64_t *ts_ms);

#endif
