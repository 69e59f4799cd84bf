/*
 * notify.c - the mount's db_observer: a replica changed files behind the
 * kernel's back, so the kernel's caches of exactly those files (pages,
 * attributes, names) are invalidated, or, for the shm the readers map,
 * updated in place (see fs.h, db/remote.c); and the replica's applier
 * opens -shm through the mount to map what the readers map
 * (db/replica_wal.h).
 *
 * Called from the replica thread, never from a FUSE request: the kernel
 * may wait on requests in flight while it invalidates, and those requests
 * are served by other threads meanwhile.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/fs_internal.h"

/* The node of (db, kind) if the kernel may have seen it. */
static fs_node *node_find(fs_state *fs, database *db, enum node_kind kind)
{
	return fs_node_find(fs, db, kind);
}

static void on_inval(void *ctx, database *db, enum db_file f, uint64_t off, uint64_t len)
{
	fs_state *fs = ctx;
	fs_node *n = node_find(fs, db, (enum node_kind)f);
	pthread_rwlock_rdlock(&fs->se_lock);
	if (fs->se != NULL && n != NULL) {
		int rc = fuse_lowlevel_notify_inval_inode(fs->se, (fuse_ino_t)(uintptr_t)n,
							  (off_t)off, (off_t)len);
		if (rc < 0 && rc != -ENOENT)
			lx_warn(db->name, "invalidate cached pages: %s", strerror(-rc));
	}
	pthread_rwlock_unlock(&fs->se_lock);
}

static void on_store(void *ctx, database *db, enum db_file f, uint64_t off,
		     const void *buf, size_t len)
{
	fs_state *fs = ctx;
	fs_node *n = node_find(fs, db, (enum node_kind)f);
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);
	bv.buf[0].mem = (void *)buf;
	pthread_rwlock_rdlock(&fs->se_lock);
	if (fs->se != NULL && n != NULL) {
		int rc = fuse_lowlevel_notify_store(fs->se, (fuse_ino_t)(uintptr_t)n, (off_t)off,
						    &bv, 0);
		if (rc < 0 && rc != -ENOENT)
			lx_warn(db->name, "update cached shm: %s", strerror(-rc));
	}
	pthread_rwlock_unlock(&fs->se_lock);
}

/* Files appeared or vanished: forget the names (also cached negatives)
 * and the attributes of the nodes behind them. */
static void on_names(void *ctx, database *db)
{
	static const char *const suffixes[] = { "", "-journal", "-wal", "-shm", "-pos" };
	fs_state *fs = ctx;
	pthread_rwlock_rdlock(&fs->se_lock);
	for (size_t i = 0; fs->se != NULL && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char name[300];
		fs_node *n = node_find(fs, db, (enum node_kind)i);
		int len = snprintf(name, sizeof(name), "%s%s", db->name, suffixes[i]);
		fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, name, (size_t)len);
		if (n != NULL)
			fuse_lowlevel_notify_inval_inode(fs->se, (fuse_ino_t)(uintptr_t)n, -1, 0);
	}
	pthread_rwlock_unlock(&fs->se_lock);
}

/*
 * A descriptor this process holds on its own mount must be numbered above
 * the FUSE device's.  When the daemon is killed (SIGKILL), the kernel
 * closes its descriptors in ascending order, and closing a file of the
 * mount sends FLUSH to the server, which is this dead process: if the
 * device were still open, the exit would wait for an answer forever (state
 * D, the mount and the HTTP port held until `umount -f`).  With the device
 * closed first, the connection is aborted and the FLUSH fails at once.
 */
static int above_device(int fd, int dev_fd)
{
	int moved;
	if (dev_fd < 0 || fd > dev_fd)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, dev_fd + 1);
	if (moved < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	return moved;
}

/* The replica's applier maps the shm its readers map (db/replica_wal.h):
 * opened through the mount, so it shares the kernel's page cache.  Not
 * under se_lock: the open is served by the FUSE workers. */
static int on_shm_open(void *ctx, database *db)
{
	fs_state *fs = ctx;
	char path[4096];
	int live, fd, dev_fd;
	pthread_rwlock_rdlock(&fs->se_lock);
	live = fs->se != NULL;
	dev_fd = live ? fuse_session_fd(fs->se) : -1;
	pthread_rwlock_unlock(&fs->se_lock);
	if (!live || fs->mountpoint == NULL)
		return -ENOTCONN;
	if (snprintf(path, sizeof(path), "%s/%s-shm", fs->mountpoint, db->name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : above_device(fd, dev_fd);
}

void fs_notify_attach(fs_state *fs, struct fuse_session *se)
{
	fs->observer = (db_observer){ fs, on_inval, on_store, on_names, on_shm_open };
	pthread_rwlock_wrlock(&fs->se_lock);
	fs->se = se;
	pthread_rwlock_unlock(&fs->se_lock);
	__atomic_store_n(&fs->store->events.observer, &fs->observer, __ATOMIC_RELEASE);
}

void fs_notify_detach(fs_state *fs)
{
	__atomic_store_n(&fs->store->events.observer, NULL, __ATOMIC_RELEASE);
	/* Waits for a notification in flight. */
	pthread_rwlock_wrlock(&fs->se_lock);
	fs->se = NULL;
	pthread_rwlock_unlock(&fs->se_lock);
}
