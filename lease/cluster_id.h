/*
 * cluster_id.h - the identity of a cluster, kept in data.dir/cluster-id.
 *
 * The primary creates it on its first start ("LTXC" and 16 upper-case hex
 * digits); a replica adopts the primary's on its first stream and keeps
 * it.  Afterwards both sides refuse a peer of another cluster, so a replica
 * pointed at the wrong primary (a typo in lease.advertise-url, two clusters
 * on one network) fails with an error that names the remedy instead of
 * replacing its databases with a stranger's.
 *
 * Pure file handling: no global state, no threads, no logging.
 */
#ifndef LTXFS_LEASE_CLUSTER_ID_H
#define LTXFS_LEASE_CLUSTER_ID_H

#include "base/err.h"

#define CLUSTER_ID_LEN 20
#define CLUSTER_ID_SIZE (CLUSTER_ID_LEN + 1)

/* 1 if `id` has the form "LTXC" + 16 upper-case hex digits. */
int cluster_id_valid(const char *id);

/* Read data_dir/cluster-id into out; "" when there is none.  A file that
 * does not hold a valid ID is an error (EINVAL) naming the file. */
int cluster_id_load(const char *data_dir, char out[CLUSTER_ID_SIZE], lx_err *err);

/* Write `id` durably (temporary file, fsync, rename, directory fsync). */
int cluster_id_save(const char *data_dir, const char *id, lx_err *err);

/* Load it, or create, save and return a new random one (the primary). */
int cluster_id_load_or_create(const char *data_dir, char out[CLUSTER_ID_SIZE], lx_err *err);

#endif
