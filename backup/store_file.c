/*
 * store_file.c - a backup store in a directory (file:///DIR): an object is
 * the file DIR/KEY.  A put writes KEY.tmp-<pid>-<n>, fsyncs it, renames it
 * over KEY and fsyncs the directory, so a reader (or a crash) sees the
 * whole object or none; list skips those temporary files.
 */
#include "backup/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_MARK ".tmp-"

typedef struct file_store {
	unsigned long tmp_seq;         /* names of temporary files */
} file_store;

static int fs_open(backup_store *s, lx_err *err)
{
	struct stat st;
	if (stat(s->root, &st) < 0)
		return lx_err_sys(err, errno, "%s: %s", s->opt.url, s->root);
	if (!S_ISDIR(st.st_mode))
		return lx_err_set(err, ENOTDIR, "%s: not a directory", s->opt.url);
	s->impl = calloc(1, sizeof(file_store));
	return s->impl ? 0 : lx_err_set(err, ENOMEM, "out of memory");
}

static void fs_close(backup_store *s)
{
	free(s->impl);
}

/* The full path of key (or of its directory, with dir_only). */
static char *path_of(const backup_store *s, const char *key)
{
	char *p;
	return asprintf(&p, "%s/%s", s->root, key) < 0 ? NULL : p;
}

/* mkdir -p of the directories above `path`, each fsynced into its parent
 * when made, so a renamed object's directory survives a crash too. */
static int make_parents(const backup_store *s, char *path, lx_err *err)
{
	size_t root_len = strlen(s->root);
	for (char *p = path + root_len + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		int rc = mkdir(path, 0755);
		int e = errno;
		if (rc == 0) {
			char *parent = strrchr(path, '/');
			int dfd;
			*parent = '\0';
			dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			*parent = '/';
			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
		}
		*p = '/';
		if (rc < 0 && e != EEXIST)
			return lx_err_sys(err, e, "%s: mkdir %s", s->opt.url, path);
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int sync_dir_of(char *path)
{
	char *slash = strrchr(path, '/');
	int dfd, rc = 0;
	*slash = '\0';
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*slash = '/';
	if (dfd < 0)
		return -errno;
	if (fsync(dfd) < 0)
		rc = -errno;
	close(dfd);
	return rc;
}

static int fs_put(backup_store *s, const char *key, const void *buf, size_t len, lx_err *err)
{
	file_store *f = s->impl;
	char *path = path_of(s, key), *tmp = NULL;
	int fd = -1, rc;
	if (path == NULL || asprintf(&tmp, "%s" TMP_MARK "%ld-%lu", path, (long)getpid(),
				     ++f->tmp_seq) < 0) {
		free(path);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	rc = make_parents(s, path, err);
	if (rc == 0 && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		rc = lx_err_sys(err, errno, "%s/%s: create", s->opt.url, key);
	if (rc == 0 && (rc = write_all(fd, buf, len)) < 0)
		lx_err_sys(err, -rc, "%s/%s: write", s->opt.url, key);
	if (rc == 0 && fsync(fd) < 0)
		rc = lx_err_sys(err, errno, "%s/%s: fsync", s->opt.url, key);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = lx_err_sys(err, errno, "%s/%s: rename", s->opt.url, key);
	if (rc == 0 && (rc = sync_dir_of(path)) < 0)
		lx_err_sys(err, -rc, "%s/%s: fsync of its directory", s->opt.url, key);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

static int fs_get(backup_store *s, const char *key, uint8_t **out, size_t *len, lx_err *err)
{
	char *path = path_of(s, key);
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, rc = 0;
	if (path == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return lx_err_sys(err, errno, "%s/%s", s->opt.url, key);
	if (fstat(fd, &st) < 0)
		rc = lx_err_sys(err, errno, "%s/%s: stat", s->opt.url, key);
	if (rc == 0 && st.st_size > 0 && (buf = malloc((size_t)st.st_size)) == NULL)
		rc = lx_err_set(err, ENOMEM, "%s/%s: out of memory", s->opt.url, key);
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = lx_err_sys(err, r < 0 ? errno : EIO, "%s/%s: read", s->opt.url, key);
		else
			got += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = got;
	return 0;
}

typedef struct walk {
	backup_store *s;
	const char *prefix;
	store_entry *v;
	size_t n, cap;
	lx_err *err;
} walk;

/* List directory root/rel (rel "" or ending in '/'), recursively. */
static int walk_dir(walk *w, const char *rel)
{
	char *path;
	DIR *d;
	struct dirent *de;
	int rc = 0;
	if (asprintf(&path, "%s/%s", w->s->root, rel) < 0)
		return lx_err_set(w->err, ENOMEM, "out of memory");
	d = opendir(path);
	free(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : lx_err_sys(w->err, errno, "%s/%s: list",
							 w->s->opt.url, rel);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char *key;
		struct stat st;
		if (de->d_name[0] == '.' || strstr(de->d_name, TMP_MARK) != NULL)
			continue;
		if (asprintf(&key, "%s%s", rel, de->d_name) < 0) {
			rc = lx_err_set(w->err, ENOMEM, "out of memory");
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			size_t kl = strlen(key), pl = strlen(w->prefix);
			if (S_ISDIR(st.st_mode)) {
				/* descend only where the prefix may still match */
				if (strncmp(key, w->prefix, kl < pl ? kl : pl) == 0) {
					char *sub;
					if (asprintf(&sub, "%s/", key) < 0)
						rc = lx_err_set(w->err, ENOMEM, "out of memory");
					else
						rc = walk_dir(w, sub);
					free(sub);
				}
			} else if (S_ISREG(st.st_mode) && strncmp(key, w->prefix, pl) == 0 &&
				   store_entries_push(&w->v, &w->n, &w->cap, key,
						      (uint64_t)st.st_size) < 0) {
				rc = lx_err_set(w->err, ENOMEM, "out of memory");
			}
		}
		free(key);
	}
	closedir(d);
	return rc;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const store_entry *)a)->key, ((const store_entry *)b)->key);
}

static int fs_list(backup_store *s, const char *prefix, store_entry **out, size_t *n,
		   lx_err *err)
{
	walk w = { s, prefix, NULL, 0, 0, err };
	int rc = walk_dir(&w, "");
	if (rc < 0) {
		backup_store_entries_free(w.v, w.n);
		return rc;
	}
	if (w.n > 1)
		qsort(w.v, w.n, sizeof(*w.v), cmp_entry);
	*out = w.v;
	*n = w.n;
	return 0;
}

static int fs_del(backup_store *s, const char *const *keys, size_t n, lx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		char *path = path_of(s, keys[i]);
		if (path == NULL)
			return lx_err_set(err, ENOMEM, "out of memory");
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;
			free(path);
			return lx_err_sys(err, e, "%s/%s: delete", s->opt.url, keys[i]);
		}
		free(path);
	}
	return 0;
}

const store_ops store_file_ops = {
	.open = fs_open,
	.close = fs_close,
	.put = fs_put,
	.get = fs_get,
	.list = fs_list,
	.del = fs_del,
};
