/*
 * apply.h - applying LTX files to a database file.
 *
 * Used by crash recovery (re-applying logged transactions the database
 * file lost), by `ltxfs log replay`, and by replicas.  Every file is fully
 * verified (ltx_verify_buffer) before a single page is written, and it must
 * continue the target's position: its pre-apply checksum equals the
 * target's checksum (or it is a snapshot).  A file with a page size other
 * than the target's must hold every page (full image).
 */
#ifndef LTXFS_DB_APPLY_H
#define LTXFS_DB_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct apply_target {
	int fd;               /* the database file */
	uint32_t page_size;   /* 0 for an empty database */
	uint32_t n_pages;
	uint64_t checksum;    /* LTX_CHECKSUM_FLAG for an empty database */
	uint64_t txid;
	uint64_t *page_ck;    /* optional: [pgno-1] kept up to date (caller sizes it
				 with page_ck_cap entries; grown with realloc) */
	size_t page_ck_cap;
	/* optional: told of every page written (a replica invalidates caches) */
	void (*written)(void *ctx, uint32_t pgno);
	void *written_ctx;
	/* apply_ltx_fd: the caller verified the file already (a replica
	 * verified it while receiving); skip the first pass */
	int verified;
	/* optional: store each page here instead of writing it into `fd`
	 * (a replica appends WAL frames); the file is then not truncated */
	int (*put)(void *ctx, uint32_t pgno, const uint8_t *data, uint64_t ck, lx_err *err);
	void *put_ctx;
} apply_target;

/* Verify and apply one LTX file held in memory; advances the target. */
int apply_ltx(apply_target *t, const uint8_t *ltx, size_t len, lx_err *err);

/* The same for `len` bytes of an LTX file stored at offset 0 of `fd`
 * (read twice: verified, then applied), in bounded memory. */
int apply_ltx_fd(apply_target *t, int fd, uint64_t len, lx_err *err);

#endif
