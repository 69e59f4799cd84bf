/*
 * fs.h - the ltxfs mount: a FUSE (low-level API) adapter over the store.
 *
 * The mount root is flat.  For each database NAME it shows NAME, and
 * NAME-journal / NAME-wal / NAME-shm while they exist, plus a read-only
 * virtual NAME-pos ("%016x/%016x\n": TXID / database checksum), and, as
 * LiteFS has them, `.primary` (the primary's hostname; only on a replica
 * that follows a primary) and `.lag` ("%+010d\n": ms since the primary
 * was last heard; +000000000 on the primary).  Every
 * operation is forwarded to the database layer (db/database.h); this layer
 * only translates names, inodes, handles and errors.
 *
 * Caching: only this mount changes the files, so the kernel may keep
 * entries (also negative ones: a missing -journal is looked up at every
 * read transaction in rollback mode), attributes and page cache; the
 * kernel's own writes keep them current.  On a replica the database layer
 * changes files itself and tells the mount through a db_observer, which
 * invalidates exactly what changed.  Virtual files are direct I/O.
 *
 * Threads: fs_run() runs libfuse's multi-threaded loop on the calling
 * thread plus up to `max_threads` worker threads, each handling one
 * request at a time; they share the store and the inode table (mutex).
 */
#ifndef LTXFS_FS_FS_H
#define LTXFS_FS_FS_H

#include "base/err.h"
#include "db/store.h"

/* The node's role as the mount shows it (.primary, .lag). */
typedef struct fs_role {
	void *ctx;
	/* 1 while this node is a replica: .primary and .lag are listed (as
	 * LiteFS lists them) and the databases' attributes are not cached */
	int (*replica)(void *ctx);
	/* the primary's hostname into buf (NUL-terminated); -ENOENT on the
	 * primary or while no primary is followed */
	int (*primary)(void *ctx, char *buf, size_t cap);
	int64_t (*lag_ms)(void *ctx);   /* NULL: 0 (the primary) */
} fs_role;

typedef struct fs_options {
	const char *mountpoint;
	int debug;          /* libfuse request tracing */
	int allow_other;
	int kernel_locks;   /* leave POSIX locks to the kernel (fuse.locks: kernel) */
	fs_role role;
} fs_options;

/*
 * Mount, serve until SIGINT/SIGTERM (or unmount), unmount.  A stale mount
 * left on `mountpoint` by a crashed run is cleaned first.  `on_ready` (may
 * be NULL) is called once the mount is live.
 */
int fs_run(store *st, const fs_options *opt, void (*on_ready)(void *), void *ctx,
	   lx_err *err);

/* Detach a stale (ENOTCONN) FUSE mount at `dir`, if there is one. */
int fs_clean_stale_mount(const char *dir, lx_err *err);

#endif
