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

/*
 * A handle that ends fs_run() from another thread.  The caller creates it
 * before fs_run and frees it after fs_run returned.  fs_stop() may be
 * called any time, from any thread but fs_run's, any number of times: when
 * the mount is live it ends the session loop and returns once the loop has
 * ended (fs_run then unmounts and returns); before the mount is live it
 * makes fs_run return right after mounting.  It uses SIGUSR2 on fs_run's
 * thread (a handler that does nothing is installed).
 */
typedef struct fs_control fs_control;
int fs_control_new(fs_control **out);
void fs_control_free(fs_control *c);
void fs_stop(fs_control *c);

typedef struct fs_options {
	const char *mountpoint;
	int debug;          /* libfuse request tracing */
	int allow_other;
	int kernel_locks;   /* leave POSIX locks to the kernel (fuse.locks: kernel) */
	fs_role role;
	fs_control *control;   /* may be NULL: only signals end fs_run */
} fs_options;

/*
 * Mount, serve until fs_stop(), a signal libfuse handles (SIGINT, SIGTERM,
 * SIGHUP; when the caller leaves them unblocked) or an unmount, unmount.  A stale mount
 * left on `mountpoint` by a crashed run is cleaned first.  `on_ready` (may
 * be NULL) is called once the mount is live.
 */
int fs_run(store *st, const fs_options *opt, void (*on_ready)(void *), void *ctx,
	   lx_err *err);

/* Detach a stale (ENOTCONN) FUSE mount at `dir`, if there is one. */
int fs_clean_stale_mount(const char *dir, lx_err *err);

#endif
