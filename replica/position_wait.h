/*
 * position_wait.h - waiting until this node holds a given position of a
 * database: read-your-writes for clients that wrote on the primary and
 * read elsewhere (GET /wait, `ltxfs wait`; docs/protocol.md).
 *
 * A position is written as NAME-pos shows it: the TXID in hexadecimal
 * (1 to 16 digits), optionally followed by "/" and the database checksum
 * after that transaction (16 hex digits).  With the checksum, reaching the
 * TXID is not enough: the node's history at that TXID must have that
 * checksum, else the write the client saw was lost (an asynchronous
 * failover) and waiting longer would not bring it back: the wait ends at
 * once, diverged.
 *
 * Threads: position_wait() blocks the calling thread (an HTTP connection's)
 * on the store's commit notifications; nothing else is shared.
 */
#ifndef LTXFS_REPLICA_POSITION_WAIT_H
#define LTXFS_REPLICA_POSITION_WAIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "db/store.h"

typedef struct wait_target {
	uint64_t txid;
	uint64_t checksum;
	int has_checksum;
} wait_target;

/* Parse `len` bytes of s ("TXID" or "TXID/CHECKSUM", a trailing newline
 * allowed, as a NAME-pos file holds it).  0, or -EINVAL with why in err. */
int wait_target_parse(const char *s, size_t len, wait_target *t, lx_err *err);

enum wait_outcome {
	WAIT_REACHED,       /* the node holds the position (or a later one on its history) */
	WAIT_TIMED_OUT,     /* not within the timeout */
	WAIT_DIVERGED,      /* the node's history has another checksum at that TXID */
	WAIT_STOPPED,       /* *stop was set (the server is stopping) */
};

/*
 * Wait up to timeout_ms for database `name` to reach t (a database that
 * does not exist yet may still arrive).  *txid and *checksum: the node's
 * position when the wait ended (0 if it has no such database).
 */
enum wait_outcome position_wait(store *st, const char *name, const wait_target *t,
				int64_t timeout_ms, const int *stop, uint64_t *txid,
				uint64_t *checksum);

#endif
