/*
 * store_internal.h - what a kind of store implements (store_file.c,
 * store_s3.c) and what store.c keeps for every kind.  Not part of the
 * contract (store.h is).
 */
#ifndef LTXFS_BACKUP_STORE_INTERNAL_H
#define LTXFS_BACKUP_STORE_INTERNAL_H

#include "backup/store.h"

typedef struct store_ops {
	int (*open)(backup_store *s, lx_err *err);
	void (*close)(backup_store *s);
	int (*put)(backup_store *s, const char *key, const void *buf, size_t len, lx_err *err);
	int (*get)(backup_store *s, const char *key, uint8_t **out, size_t *len, lx_err *err);
	int (*list)(backup_store *s, const char *prefix, store_entry **out, size_t *n,
		    lx_err *err);
	int (*del)(backup_store *s, const char *const *keys, size_t n, lx_err *err);
} store_ops;

struct backup_store {
	const store_ops *ops;
	backup_store_options opt;      /* strings owned (copies) */
	char *root;                    /* file: the directory; s3: the key prefix ("" or "p/") */
	char *bucket;                  /* s3 only */
	void *impl;                    /* the kind's own state */
	backup_store_stats stats;
};

extern const store_ops store_file_ops;
extern const store_ops store_s3_ops;

/* Collect listed entries (a growing array). */
int store_entries_push(store_entry **v, size_t *n, size_t *cap, const char *key,
		       uint64_t size);

#endif
