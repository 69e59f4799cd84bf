/*
 * store.h - where backups are kept: a flat namespace of objects behind
 * backup.url, with the four operations a backup needs (put, get, list,
 * delete).  Two kinds:
 *
 *   file:///DIR          a directory (a mounted disk, NFS): an object is a
 *                        file DIR/KEY, written to a temporary name, fsynced
 *                        and renamed, so a reader never sees half of one
 *   s3://BUCKET/PREFIX   any S3-compatible service (net/s3.h): an object is
 *                        BUCKET/PREFIX/KEY
 *
 * Keys are relative ("NAME/l0/..."), made of the characters the catalog
 * uses; a key with "..", a leading '/' or an empty segment is refused.
 *
 * Errors are values, in the style "<url>/<key>: <what>": -ENOENT for a
 * missing object, -EAGAIN for what a retry may cure (the service is
 * unreachable or busy), other codes for what it will not.
 *
 * A store is used by one thread at a time; open one per thread for
 * parallel transfers (backup_store_clone).
 */
#ifndef LTXFS_BACKUP_STORE_H
#define LTXFS_BACKUP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "backup/catalog.h"
#include "base/err.h"

typedef struct backup_store_options {
	const char *url;               /* s3://BUCKET[/PREFIX] or file:///DIR */
	const char *endpoint;          /* s3: NULL for AWS */
	const char *region;
	const char *access_key_id, *secret_access_key;
	int force_path_style;
	const int *cancel;             /* optional: set to end calls with -EINTR */
	const char *tls_ca;            /* s3 over https: a CA file to trust (NULL: system) */
} backup_store_options;

typedef struct backup_store backup_store;

typedef struct store_entry {
	char *key;                     /* relative to the store's root */
	uint64_t size;
} store_entry;

/* Open a store (the strings are copied).  A file:// directory must exist. */
int backup_store_open(backup_store **out, const backup_store_options *o, lx_err *err);
/* Another store on the same place (a transfer thread's own). */
int backup_store_clone(backup_store **out, const backup_store *s, lx_err *err);
void backup_store_close(backup_store *s);

/* The URL it was opened with, for messages. */
const char *backup_store_url(const backup_store *s);

int backup_store_put(backup_store *s, const char *key, const void *buf, size_t len,
		     lx_err *err);
/* *out is malloc'd (NULL for an empty object). */
int backup_store_get(backup_store *s, const char *key, uint8_t **out, size_t *len,
		     lx_err *err);
/* Every object whose key starts with `prefix`, sorted by key. */
int backup_store_list(backup_store *s, const char *prefix, store_entry **out, size_t *n,
		      lx_err *err);
void backup_store_entries_free(store_entry *v, size_t n);
/* Delete objects; a missing one is not an error. */
int backup_store_delete(backup_store *s, const char *const *keys, size_t n, lx_err *err);

/* The catalog of one database: every object under `dir` (its directory,
 * with the trailing '/'), classified (backup/catalog.h) and finished. */
int backup_store_read_catalog(backup_store *s, const char *dir, bk_catalog *c, lx_err *err);

/* Bytes and requests since open (metrics). */
typedef struct backup_store_stats {
	uint64_t puts, gets, lists, deletes;
	uint64_t bytes_up, bytes_down;
	uint64_t errors;
} backup_store_stats;

void backup_store_stats_get(const backup_store *s, backup_store_stats *out);

#endif
