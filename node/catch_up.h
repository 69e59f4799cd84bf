/*
 * catch_up.h - a new primary's catch-up before its first write
 * (docs/lease.md, "Catch-up before the first write").
 *
 * The rule: once a node holds the lease, and before it accepts a write, it
 * asks every member the lease service records for its positions (GET
 * /status, all at once, with a third of the budget, 300 ms to 2 s, to
 * answer: silent members cost one timeout in all), and if one is ahead of it (more TXIDs
 * ahead, summed over the databases), streams from the one furthest ahead
 * (POST /stream with Ltxfs-Catch-Up, which that member serves although it
 * is not the primary) until that member says READY, within a budget.
 *
 * What it guarantees: every transaction that the most advanced reachable
 * member held when asked is on the new primary's history before its first
 * write, so an acknowledged transaction that reached any reachable member
 * survives a failover.  What it does not: a transaction that no reachable
 * member holds (only the old primary had it) is lost; its holder reports
 * it when it rejoins (db_report_diverged).  Members are compared by TXID:
 * two members on different branches of history (a partition) are not
 * merged; the new primary takes the branch furthest ahead, and the other
 * is reported lost by its holders.
 */
#ifndef LTXFS_NODE_CATCH_UP_H
#define LTXFS_NODE_CATCH_UP_H

#include <stddef.h>
#include <stdint.h>

#include "db/store.h"
#include "lease/lease.h"
#include "net/http_client.h"

typedef struct catch_up_options {
	const char *my_url;             /* this node's advertise URL: not a peer */
	uint64_t node_id;
	const char *cluster_id;
	const char *data_dir;
	const lease_holder *peers;
	size_t n_peers;
	int64_t budget_ms;              /* the whole catch-up, status requests included */
	const http_client_options *http;  /* TLS and token for calls to members;
					   * NULL: none */
	size_t answered;                /* out: members that answered, this node
					   included */
} catch_up_options;

/* Catch up; never fails (what it could not do is logged).  Returns 1 if it
 * streamed from a peer up to its READY, 0 if no reachable peer was ahead,
 * -1 if one was and the catch-up did not complete.  o->answered says how
 * many members it heard from (replication.mode sync needs enough of them:
 * node.c). */
int catch_up(store *st, catch_up_options *o);

#endif
