/*
 * consul_lease.h - the lease (lease.h) kept in Consul: a session with a TTL
 * and a lock on lease.consul.key whose value names the holder; the epoch
 * is the key's ModifyIndex at acquisition.  See docs/lease.md for the
 * timing it guarantees.
 */
#ifndef LTXFS_LEASE_CONSUL_LEASE_H
#define LTXFS_LEASE_CONSUL_LEASE_H

#include "lease/lease.h"

typedef struct consul_lease_options {
	const char *url;
	const char *key;
	const char *token;              /* NULL: none */
	const char *session_name;
	int64_t ttl_ms;
	int64_t lock_delay_ms;
} consul_lease_options;

int consul_lease_open(lease **out, const consul_lease_options *o, lx_err *err);

#endif
