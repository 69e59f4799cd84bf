/*
 * messages.h - the JSON messages of the HTTP API between nodes and the
 * command line, one struct, one encoder and one decoder each, used by both
 * ends: the server writes through the encoder, every client reads through
 * the decoder (docs/protocol.md documents the documents).
 *
 *   GET /status     status_msg    replica/status.c writes it; node/catch_up.c
 *                                 and `ltxfs status` (cmd/status_cmd.c) read it
 *   POST /handoff   handoff_msg   node/node.c writes it on the primary and
 *                                 reads it on the replica taking over
 *
 * Encoders append to a text_buf and return 0 or -ENOMEM.  Decoders take
 * the body as received (not NUL-terminated), fill the struct and return 0,
 * or -EPROTO with what is wrong and where in `err` ("databases[2].txid: not
 * an integer"); they never crash on any input and leave the struct empty
 * (safe to free) on error.  TXIDs, counts and sizes are unsigned: negative
 * numbers, fractions and numbers past 2^63-1 are errors.
 *
 * A decoded message's strings point into the parsed document it keeps
 * (`doc`): valid until *_msg_free().  A message the caller fills to encode
 * borrows its strings and is never passed to *_msg_free().
 *
 * Tolerant reader: members an older node may not write are optional (0,
 * NULL or false when absent) and members a reader does not know are
 * ignored, so nodes of different versions read each other; a member that
 * is present with the wrong type is always an error.
 */
#ifndef LTXFS_NET_MESSAGES_H
#define LTXFS_NET_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/text_buf.h"

/* ---- GET /status ---- */

/* Transactions committed on this node that the cluster's history lost. */
typedef struct status_msg_lost {
	uint64_t from;              /* 0: unknown (JSON null) */
	uint64_t to, count;
	int64_t at_ms;
	const char *kept;           /* where the records were kept */
	uint64_t events, total;
} status_msg_lost;

/* A database's continuous backup as this node knows it (docs/backup.md). */
typedef struct status_msg_backup {
	int shipping;               /* this node ships it (the primary) */
	uint64_t txid;              /* the newest TXID known in storage */
	int64_t shipped_ms;         /* wall clock of that upload; 0: none */
	int64_t lag_ms;             /* age of the oldest transaction not yet shipped */
	int64_t snapshot_ms;        /* the newest snapshot's time; 0: none */
	const char *error;          /* the last failure; NULL or "": none */
} status_msg_backup;

typedef struct status_msg_db {
	const char *name;
	int exists;
	uint64_t txid, checksum;    /* checksum: JSON "%016x" string */
	uint32_t page_size, page_count;
	int wal;                    /* "journal": "wal" (1) or "rollback" (0) */
	uint64_t log_transactions, log_bytes;
	int64_t last_commit_ms;
	int failed;
	const char *failure;        /* when failed */
	uint64_t commits_refused;
	const char *storage_error;  /* NULL: none */
	int64_t storage_error_since_ms;
	int untracked;
	const char *untracked_reason;   /* when untracked */
	int has_lost;
	status_msg_lost lost;       /* when has_lost */
	int has_backup;
	status_msg_backup backup;   /* when has_backup (backup.url set) */
} status_msg_db;

/* A replica's position in one database, as its primary sees it. */
typedef struct status_msg_position {
	const char *name;
	uint64_t txid, checksum, behind;
} status_msg_position;

typedef struct status_msg_replica {
	uint64_t node_id;           /* JSON "%016x" string */
	const char *addr;
	int64_t connected_ms;
	int ready;
	int has_sync;               /* replication.mode sync: the two below */
	int in_sync;                /* counts for replication.min-acks */
	int64_t last_ack_ms;        /* wall clock of its last acknowledgement; 0: none */
	status_msg_position *dbs;
	size_t n_dbs;
} status_msg_replica;

/* The node's replication mode ("replication" in /status). */
typedef struct status_msg_replication {
	const char *mode;           /* "async" or "sync" */
	uint64_t min_acks;
	const char *on_timeout;     /* "fail" or "degrade" */
	const char *ack_after;      /* "fsync" or "write"; NULL: not reported */
	int64_t sync_timeout_ms;
	/* sync mode, on the primary: */
	int has_state;
	const char *state;          /* "in-sync", "degraded" (degrade) or "refusing" (fail) */
	const char *reason;         /* NULL when in sync */
	int64_t since_ms;           /* wall clock the state began; 0 when in sync */
	uint64_t in_sync;           /* replicas in sync now */
	uint64_t commits_waited, timeouts, refused, unreplicated;
	double wait_avg_ms;         /* mean commit wait */
} status_msg_replication;

typedef struct status_msg {
	uint64_t node_id;           /* JSON "%016x" string */
	const char *hostname, *role, *primary, *lease, *cluster_id;
	uint64_t epoch;
	int64_t uptime_ms;
	int ready;
	int64_t lag_ms;
	status_msg_db *dbs;
	size_t n_dbs;
	status_msg_replica *replicas;
	size_t n_replicas;
	int has_replication;
	status_msg_replication replication;
	void *doc;                  /* decoded: the parsed document and arrays */
} status_msg;

int status_msg_encode(const status_msg *m, text_buf *out);
int status_msg_decode(const char *body, size_t len, status_msg *m, lx_err *err);
void status_msg_free(status_msg *m);

/* ---- POST /handoff ---- */

typedef struct handoff_position {
	const char *name;
	uint64_t txid, checksum;
} handoff_position;

/* {"token": T, "positions": {"<db>": [<txid>, "<checksum, 16 hex>"], ...}} */
typedef struct handoff_msg {
	const char *token;          /* the lease token; "" before it is given */
	handoff_position *positions;
	size_t n_positions;
	void *doc;
} handoff_msg;

int handoff_msg_encode(const handoff_msg *m, text_buf *out);
int handoff_msg_decode(const char *body, size_t len, handoff_msg *m, lx_err *err);
void handoff_msg_free(handoff_msg *m);

#endif
