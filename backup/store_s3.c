/*
 * store_s3.c - a backup store in an S3-compatible bucket (net/s3.h): an
 * object is BUCKET/PREFIX/KEY.  Retries, timeouts, checksums and
 * multipart uploads are the S3 client's.
 */
#include "backup/store_internal.h"

#include "net/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int s3s_open(backup_store *s, lx_err *err)
{
	s3_options o;
	s3_client *c;
	int rc;
	memset(&o, 0, sizeof(o));
	o.endpoint = s->opt.endpoint;
	o.region = s->opt.region;
	o.bucket = s->bucket;
	o.access_key_id = s->opt.access_key_id;
	o.secret_access_key = s->opt.secret_access_key;
	o.force_path_style = s->opt.force_path_style;
	o.cancel = s->opt.cancel;
	o.tls_ca = s->opt.tls_ca;
	o.get_max = (size_t)1 << 40;    /* a snapshot is one object, as large as its database */
	rc = s3_open(&c, &o, err);
	if (rc == 0)
		s->impl = c;
	return rc;
}

static void s3s_close(backup_store *s)
{
	s3_close(s->impl);
}

/* The bucket's key of a store key: the URL's prefix in front. */
static char *full_key(const backup_store *s, const char *key)
{
	char *k;
	return asprintf(&k, "%s%s", s->root, key) < 0 ? NULL : k;
}

/* Above this an object goes up in parts (a single PUT is limited to 5 GiB,
 * and a failed part is retried alone). */
#define MULTIPART_FROM (64u << 20)

/* A large object in memory goes through a memory file, which the client
 * uploads in parts. */
static int put_in_parts(backup_store *s, const char *k, const void *buf, size_t len,
			lx_err *err)
{
	int fd = memfd_create("ltxfs-backup-put", MFD_CLOEXEC), rc = 0;
	if (fd < 0)
		return lx_err_sys(err, errno, "%s/%s: memfd_create", s->opt.url, k);
	for (size_t done = 0; done < len && rc == 0;) {
		ssize_t w = write(fd, (const uint8_t *)buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = lx_err_sys(err, errno, "%s/%s: write to a memory file", s->opt.url, k);
		else
			done += (size_t)w;
	}
	if (rc == 0)
		rc = s3_put_fd(s->impl, k, fd, len, err);
	close(fd);
	return rc;
}

static int s3s_put(backup_store *s, const char *key, const void *buf, size_t len, lx_err *err)
{
	char *k = full_key(s, key);
	int rc;
	if (k == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = len > MULTIPART_FROM ? put_in_parts(s, k, buf, len, err)
				  : s3_put(s->impl, k, buf, len, err);
	free(k);
	return rc;
}

static int s3s_get(backup_store *s, const char *key, uint8_t **out, size_t *len, lx_err *err)
{
	char *k = full_key(s, key);
	int rc = k ? s3_get(s->impl, k, 0, 0, out, len, err)
		   : lx_err_set(err, ENOMEM, "out of memory");
	free(k);
	return rc;
}

static int s3s_list(backup_store *s, const char *prefix, store_entry **out, size_t *n,
		    lx_err *err)
{
	char *k = full_key(s, prefix);
	s3_object *v = NULL;
	size_t nv = 0, cap = 0, root = strlen(s->root);
	int rc = k ? s3_list(s->impl, k, NULL, &v, &nv, err)
		   : lx_err_set(err, ENOMEM, "out of memory");
	free(k);
	for (size_t i = 0; rc == 0 && i < nv; i++)
		if (strncmp(v[i].key, s->root, root) == 0 &&
		    store_entries_push(out, n, &cap, v[i].key + root, v[i].size) < 0)
			rc = lx_err_set(err, ENOMEM, "out of memory");
	s3_objects_free(v, nv);
	if (rc < 0) {
		backup_store_entries_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int s3s_del(backup_store *s, const char *const *keys, size_t n, lx_err *err)
{
	char **full = calloc(n, sizeof(*full));
	int rc = full ? 0 : lx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		if ((full[i] = full_key(s, keys[i])) == NULL)
			rc = lx_err_set(err, ENOMEM, "out of memory");
	if (rc == 0)
		rc = s3_delete(s->impl, (const char *const *)full, n, err);
	for (size_t i = 0; full != NULL && i < n; i++)
		free(full[i]);
	free(full);
	return rc;
}

const store_ops store_s3_ops = {
	.open = s3s_open,
	.close = s3s_close,
	.put = s3s_put,
	.get = s3s_get,
	.list = s3s_list,
	.del = s3s_del,
};
