/*
 * sync_commit.h - synchronous replication on the primary
 * (replication.mode sync; docs/design.md, "Synchronous replication").
 *
 * The replicas acknowledge what they hold durably (POST /ack, a position
 * per database, fsynced in their logs).  A commit made by an application
 * on this node returns only once `min_acks` replicas acknowledged its
 * TXID, so no acknowledged commit lives on this node alone.  The module is
 * the store's commit gate (db_commit_gate, db/database.h) while the node is
 * the primary:
 *
 *   admit  before a transaction is logged at an application's commit point:
 *          with fewer than `min_acks` replicas in sync, on-timeout fail
 *          refuses the commit there (nothing is logged, SQLite rolls back);
 *          on-timeout degrade lets it through without waiting.
 *   await  after the call that logged it: wait for the acknowledgements, at
 *          most `timeout_ms`.  On timeout the replicas that did not answer
 *          leave the set in sync; fail: the call fails (ETIMEDOUT), the
 *          transaction stays committed here (an ambiguous commit, as when a
 *          client loses its connection during COMMIT); degrade: it returns
 *          success and the node says it is degraded until enough replicas
 *          are back.
 *
 * In sync: a replica with a live stream that is caught up.  It joins the
 * set when, after its initial catch-up, it acknowledges every database it
 * has at the primary's newest position (Ltxfs-Caught-Up); after a timeout
 * took it out, it rejoins when it acknowledges a database's newest
 * position.  A replica that restarts or takes a snapshot thus counts again
 * only once caught up.  Every replica's acknowledgements count, candidate or
 * not.  Acknowledgements are checked against this primary's history
 * (db_checksum_at): a position off it counts for nothing.
 *
 * Threading: FUSE threads call the gate, /ack handler threads
 * sync_commit_ack(), stream sessions sync_commit_replica_up/down(), the
 * node's switches sync_commit_set_active(); one mutex guards the state and
 * one condition variable wakes waiting commits.  Lock order: db->mu before
 * the module's mutex (admit runs under db->mu); the module never calls into
 * a database while holding its own.
 */
#ifndef LTXFS_REPLICA_SYNC_COMMIT_H
#define LTXFS_REPLICA_SYNC_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "db/store.h"
#include "replica/proto.h"

#define SYNC_MAX_REPLICAS 64

typedef struct sync_commit sync_commit;

typedef struct sync_options {
	unsigned min_acks;      /* replicas that must hold a commit; >= 1 */
	int64_t timeout_ms;     /* the longest a commit waits for them */
	int degrade;            /* on timeout: 1 go on asynchronously, 0 fail */
	int ack_written;        /* replicas acknowledge once written, not fsynced */
} sync_options;

int sync_commit_new(sync_commit **out, store *st, const sync_options *o, lx_err *err);
void sync_commit_free(sync_commit *s);

/* The Ltxfs-Acks value a stream's answer carries: what an acknowledgement
 * promises ("fsync": the replica's log is fsynced, or "write"). */
const char *sync_commit_ack_level(const sync_commit *s);

/*
 * The node became the primary (active 1, its lease epoch) or stopped being
 * it (0).  Active, the module is the store's commit gate; inactive, every
 * waiting commit fails (this node's unacknowledged tail may not survive on
 * the next primary) and every acknowledgement is forgotten.
 */
void sync_commit_set_active(sync_commit *s, int active, uint64_t epoch);

/* A stream session of replica `node_id` started / ended. */
void sync_commit_replica_up(sync_commit *s, uint64_t node_id);
void sync_commit_replica_down(sync_commit *s, uint64_t node_id);

/*
 * Replica `node_id`, following lease epoch `epoch`, holds these positions
 * durably.  `caught_up`: they are all its databases, after its catch-up;
 * if each is this primary's newest position, the replica is in sync.
 * Returns how many were accepted (on this primary's history), or -ESTALE
 * when the epoch is not this primary's or the node is not the primary.
 */
int sync_commit_ack(sync_commit *s, uint64_t node_id, uint64_t epoch,
		    const proto_pos *pos, size_t n, int caught_up, lx_err *err);

/* For /status and /metrics. */
typedef struct sync_replica_state {
	uint64_t node_id;
	int connected;
	int in_sync;
	int64_t last_ack_ms;       /* wall clock; 0: never */
} sync_replica_state;

#define SYNC_WAIT_BUCKETS 12

typedef struct sync_stats {
	unsigned min_acks;
	int64_t timeout_ms;
	int degrade;               /* on-timeout degrade */
	int active;
	int degraded;              /* commits are not waiting (degrade mode) */
	int64_t degraded_since_ms; /* wall clock; 0 when not degraded */
	char degraded_reason[160];
	unsigned in_sync;          /* replicas in sync now */
	uint64_t waits;            /* commits that waited for acknowledgements */
	uint64_t timeouts;         /* ... and were not acknowledged in time */
	uint64_t refused;          /* commits refused at admit (fail mode) */
	uint64_t unreplicated;     /* commits returned without acknowledgements (degraded) */
	double wait_sum_s;
	/* commit wait histogram: counts at or below sync_wait_bounds_s[i]
	 * (cumulative, Prometheus style); the last bucket is +Inf */
	uint64_t wait_le[SYNC_WAIT_BUCKETS];
	sync_replica_state replicas[SYNC_MAX_REPLICAS];
	size_t n_replicas;
} sync_stats;

extern const double sync_wait_bounds_s[SYNC_WAIT_BUCKETS - 1];

void sync_commit_stats(sync_commit *s, sync_stats *out);

#endif
