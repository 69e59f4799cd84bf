/*
 * etcd_lease.h - the lease (lease.h) kept in etcd v3: an etcd lease with a
 * TTL, kept alive every ttl/3, and lease.etcd.key created bound to it only
 * if absent, whose value names the holder.  The epoch is the key's
 * mod_revision (etcd's revisions grow across the cluster's whole life).
 * etcd has no lock-delay: the fencing bound rests on etcd expiring a lease
 * no earlier than its TTL after it received the last keep-alive
 * (docs/lease.md).
 */
#ifndef LTXFS_LEASE_ETCD_LEASE_H
#define LTXFS_LEASE_ETCD_LEASE_H

#include "lease/lease.h"

typedef struct etcd_lease_options {
	const char *url;
	const char *key;
	int64_t ttl_ms;                 /* rounded up to whole seconds */
} etcd_lease_options;

int etcd_lease_open(lease **out, const etcd_lease_options *o, lx_err *err);

#endif
