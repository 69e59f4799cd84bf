/*
 * restore.h - rebuilding a database from its backup at a point in time.
 *
 * backup_restore() lists the database's objects, plans the restore from
 * the fewest objects (backup/catalog.h: the newest snapshot at or before
 * the target, then the chain of transaction files after it), downloads
 * them in parallel, and applies them in order into a new file next to the
 * output.  Every file is verified as it is applied: the LTX file checksum,
 * each file's TXID and checksum continuing the previous one (pre-apply
 * checksum), and the database checksum after it, recomputed from the pages
 * written (post-apply checksum).  Then SQLite's `PRAGMA integrity_check`
 * runs on the result, which is fsynced and renamed to the output only if
 * every check passed.  An existing output file is never overwritten.
 *
 * Errors are values with context: a wrong key, a damaged or changed
 * object, a broken chain, a target the backup cannot reach (naming what it
 * can reach).
 *
 * Single-threaded from the caller's side; it runs its own download
 * threads, each with its own store.
 */
#ifndef LTXFS_BACKUP_RESTORE_H
#define LTXFS_BACKUP_RESTORE_H

#include <stdint.h>

#include "backup/catalog.h"
#include "backup/codec.h"
#include "backup/store.h"
#include "base/err.h"

#define RESTORE_PARALLEL_DEFAULT 8

typedef struct backup_restore_options {
	backup_store_options storage;
	const bk_codec *codec;
	const char *name;              /* the database */
	bk_target target;              /* { UINT64_MAX, INT64_MAX }: the newest point */
	const char *out_path;          /* must not exist */
	int parallel;                  /* downloads at once; 0: RESTORE_PARALLEL_DEFAULT */
	int keep_page_checksums;       /* fill result.page_ck (backup/bootstrap.c) */
} backup_restore_options;

typedef struct backup_restore_result {
	uint64_t txid;                 /* the restored position */
	uint64_t checksum;
	int64_t time_ms;               /* commit time of that transaction */
	uint32_t page_size, pages;
	size_t objects;                /* downloaded */
	uint64_t bytes;
	uint64_t transactions;         /* LTX files applied after the snapshot */
	uint64_t *page_ck;             /* with keep_page_checksums: [pgno-1], pages
					  entries, malloc'd (the caller frees) */
} backup_restore_result;

int backup_restore(const backup_restore_options *o, backup_restore_result *res, lx_err *err);

/* One database of a backup, for `ltxfs backup list`. */
typedef struct backup_db_info {
	char *name;                    /* NULL if its (encrypted) name cannot be read */
	char *dir;                     /* its directory in the storage */
	int restorable;                /* range is valid */
	bk_range range;
	uint64_t bytes;
	size_t markers;
} backup_db_info;

/* Every database in the store (or only `name`), sorted by name. */
int backup_list(const backup_store_options *so, const bk_codec *codec, const char *name,
		backup_db_info **out, size_t *n, lx_err *err);
void backup_list_free(backup_db_info *v, size_t n);

#endif
