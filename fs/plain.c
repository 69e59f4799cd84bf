/*
 * plain.c - plain files in the mount: names db/names.h classifies as
 * DBN_PLAIN (SQLite's super-journals NAME-mjXXXXXXXXX and temporary files
 * etilqs_*).  They are passed through to data.dir/files/NAME and are never
 * a database: no log, no capture, no replication, no status row, and no
 * descriptor kept while nobody has them open (each open handle owns one).
 * A super-journal must survive a crash (SQLite's hot-journal recovery
 * looks for it), so the directory is kept across restarts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/fs_internal.h"

int fs_plain_open_dir(fs_state *fs, lx_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/files", fs->store->data_dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return lx_err_sys(err, errno, "create %s", path);
	fs->files_dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->files_dirfd < 0)
		return lx_err_sys(err, errno, "open %s", path);
	return 0;
}

int fs_plain_stat(fs_state *fs, const char *name, struct stat *st)
{
	return fstatat(fs->files_dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static backing *backing_of_fd(int fd)
{
	backing *b = malloc(sizeof(*b));
	if (b == NULL) {
		close(fd);
		return NULL;
	}
	b->fd = fd;
	b->refs = 1;
	return b;
}

/*
 * Open (flags: the caller's, O_CREAT for a create) the plain file `name`.
 * A file this call creates gets exactly `mode` (the caller's umask is
 * already applied by the kernel), whatever the daemon's own umask.
 */
int fs_plain_open(fs_state *fs, const char *name, int flags, mode_t mode, backing **out)
{
	int acc = flags & O_ACCMODE, created = 0, fd = -1;
	int base = acc | O_CLOEXEC | O_NOFOLLOW | (flags & O_TRUNC);
	if (flags & O_CREAT) {
		fd = openat(fs->files_dirfd, name, base | O_CREAT | O_EXCL, mode & 07777);
		created = fd >= 0;
		if (fd < 0 && (errno != EEXIST || (flags & O_EXCL)))
			return -errno;
	}
	if (fd < 0)
		fd = openat(fs->files_dirfd, name, base);
	if (fd < 0)
		return -errno;
	if (created && fchmod(fd, mode & 07777) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*out = backing_of_fd(fd);
	return *out == NULL ? -ENOMEM : 0;
}

int fs_plain_unlink(fs_state *fs, const char *name)
{
	return unlinkat(fs->files_dirfd, name, 0) < 0 ? -errno : 0;
}

int fs_plain_list(fs_state *fs, int (*add)(void *ctx, const char *name), void *ctx)
{
	int dfd = dup(fs->files_dirfd), rc = 0;
	DIR *d;
	struct dirent *de;
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return -ENOMEM;
	}
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			rc = add(ctx, de->d_name);
	closedir(d);
	return rc;
}
