/*
 * store.c - opening a backup store by its URL, checking keys, counting
 * (store.h); the kinds are store_file.c and store_s3.c.
 */
#include "backup/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void free_options(backup_store_options *o)
{
	free((char *)o->url);
	free((char *)o->endpoint);
	free((char *)o->region);
	free((char *)o->access_key_id);
	if (o->secret_access_key != NULL)
		explicit_bzero((char *)o->secret_access_key, strlen(o->secret_access_key));
	free((char *)o->secret_access_key);
	free((char *)o->tls_ca);
}

static int copy_options(backup_store_options *to, const backup_store_options *from)
{
	*to = *from;
	to->url = dup_or_null(from->url);
	to->endpoint = dup_or_null(from->endpoint);
	to->region = dup_or_null(from->region);
	to->access_key_id = dup_or_null(from->access_key_id);
	to->secret_access_key = dup_or_null(from->secret_access_key);
	to->tls_ca = dup_or_null(from->tls_ca);
	if (to->url == NULL || (from->endpoint && !to->endpoint) ||
	    (from->region && !to->region) || (from->access_key_id && !to->access_key_id) ||
	    (from->secret_access_key && !to->secret_access_key) ||
	    (from->tls_ca && !to->tls_ca)) {
		free_options(to);
		return -ENOMEM;
	}
	return 0;
}

/* "s3://BUCKET/PREFIX" -> bucket, root "PREFIX/" ("" without a prefix);
 * "file:///DIR" -> root "/DIR". */
static int split_url(backup_store *s, lx_err *err)
{
	const char *u = s->opt.url;
	if (strncmp(u, "file:///", 8) == 0) {
		s->ops = &store_file_ops;
		s->root = strdup(u + 7);
	} else if (strncmp(u, "s3://", 5) == 0 && u[5] != '\0' && u[5] != '/') {
		const char *slash = strchr(u + 5, '/');
		size_t blen = slash ? (size_t)(slash - (u + 5)) : strlen(u + 5);
		const char *prefix = slash ? slash + 1 : "";
		size_t plen = strlen(prefix);
		while (plen > 0 && prefix[plen - 1] == '/')
			plen--;
		s->ops = &store_s3_ops;
		s->bucket = strndup(u + 5, blen);
		s->root = malloc(plen + 2);
		if (s->root != NULL)
			snprintf(s->root, plen + 2, "%.*s%s", (int)plen, prefix, plen ? "/" : "");
		if (s->bucket == NULL)
			return lx_err_set(err, ENOMEM, "out of memory");
	} else {
		return lx_err_set(err, EINVAL, "%s: not an s3:// or file:/// URL", u);
	}
	return s->root == NULL ? lx_err_set(err, ENOMEM, "out of memory") : 0;
}

int backup_store_open(backup_store **out, const backup_store_options *o, lx_err *err)
{
	backup_store *s = calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (s == NULL || copy_options(&s->opt, o) < 0) {
		free(s);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	rc = split_url(s, err);
	if (rc == 0)
		rc = s->ops->open(s, err);
	if (rc < 0) {
		s->ops = NULL;
		backup_store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int backup_store_clone(backup_store **out, const backup_store *s, lx_err *err)
{
	return backup_store_open(out, &s->opt, err);
}

void backup_store_close(backup_store *s)
{
	if (s == NULL)
		return;
	if (s->ops != NULL)
		s->ops->close(s);
	free_options(&s->opt);
	free(s->root);
	free(s->bucket);
	free(s);
}

const char *backup_store_url(const backup_store *s)
{
	return s->opt.url;
}

/* Keys are the catalog's: relative, no "." or ".." segment, no empty one. */
static int key_valid(const char *key)
{
	const char *seg = key;
	if (key[0] == '\0')
		return 0;
	for (const char *p = key;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t len = (size_t)(p - seg);
			if (len == 0 || (len == 1 && seg[0] == '.') ||
			    (len == 2 && seg[0] == '.' && seg[1] == '.'))
				return 0;
			if (*p == '\0')
				return 1;
			seg = p + 1;
		} else if ((unsigned char)*p < 0x20 || *p == '\\') {
			return 0;
		}
	}
}

static int bad_key(const backup_store *s, const char *key, lx_err *err)
{
	return lx_err_set(err, EINVAL, "%s: invalid object key \"%s\"", s->opt.url, key);
}

static int counted(backup_store *s, int rc)
{
	if (rc < 0 && rc != -ENOENT)
		s->stats.errors++;
	return rc;
}

int backup_store_put(backup_store *s, const char *key, const void *buf, size_t len,
		     lx_err *err)
{
	if (!key_valid(key))
		return bad_key(s, key, err);
	s->stats.puts++;
	int rc = counted(s, s->ops->put(s, key, buf, len, err));
	if (rc == 0)
		s->stats.bytes_up += len;
	return rc;
}

int backup_store_get(backup_store *s, const char *key, uint8_t **out, size_t *len,
		     lx_err *err)
{
	*out = NULL;
	*len = 0;
	if (!key_valid(key))
		return bad_key(s, key, err);
	s->stats.gets++;
	int rc = counted(s, s->ops->get(s, key, out, len, err));
	if (rc == 0)
		s->stats.bytes_down += *len;
	return rc;
}

int backup_store_list(backup_store *s, const char *prefix, store_entry **out, size_t *n,
		      lx_err *err)
{
	*out = NULL;
	*n = 0;
	s->stats.lists++;
	return counted(s, s->ops->list(s, prefix, out, n, err));
}

int backup_store_delete(backup_store *s, const char *const *keys, size_t n, lx_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (!key_valid(keys[i]))
			return bad_key(s, keys[i], err);
	s->stats.deletes += n;
	return n == 0 ? 0 : counted(s, s->ops->del(s, keys, n, err));
}

void backup_store_entries_free(store_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
}

int store_entries_push(store_entry **v, size_t *n, size_t *cap, const char *key,
		       uint64_t size)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		store_entry *nv = realloc(*v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	if (((*v)[*n].key = strdup(key)) == NULL)
		return -ENOMEM;
	(*v)[*n].size = size;
	(*n)++;
	return 0;
}

void backup_store_stats_get(const backup_store *s, backup_store_stats *out)
{
	*out = s->stats;
}

int backup_store_read_catalog(backup_store *s, const char *dir, bk_catalog *c, lx_err *err)
{
	store_entry *v;
	size_t n, dl = strlen(dir);
	int rc = backup_store_list(s, dir, &v, &n, err);
	bk_catalog_init(c);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (bk_catalog_add(c, v[i].key + dl, v[i].size) < 0)
			rc = lx_err_set(err, ENOMEM, "out of memory");
	backup_store_entries_free(v, n);
	bk_catalog_finish(c);
	return rc;
}
