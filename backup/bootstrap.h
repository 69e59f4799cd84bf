/*
 * bootstrap.h - the whole cluster was lost: a node that starts with an
 * empty data directory and backup.restore-if-empty restores every
 * database of the backup before it serves.
 *
 * Each database is restored at the newest point of its backup (verified
 * as `ltxfs restore` verifies) and installed into the store as a snapshot
 * at that TXID and checksum, so its history continues the backup's: the
 * node, once primary, ships on from there, and every older point stays
 * restorable.  A database whose backup cannot be restored stops the start
 * (a node must not come up serving part of what it should).
 *
 * Runs on the starting thread, before the node serves or ships.
 */
#ifndef LTXFS_BACKUP_BOOTSTRAP_H
#define LTXFS_BACKUP_BOOTSTRAP_H

#include "backup/codec.h"
#include "backup/store.h"
#include "base/err.h"
#include "db/store.h"

/* 0 when nothing had to be done (the store has databases already, or the
 * backup is empty) or every database was restored; *restored counts them. */
int backup_bootstrap(store *st, const backup_store_options *so, const bk_codec *codec,
		     size_t *restored, lx_err *err);

#endif
