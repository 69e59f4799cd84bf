/*
 * acker.h - a replica's acknowledgements to a primary in sync mode
 * (replication.mode sync; replica/sync_commit.h is the other side).
 *
 * The replica thread adds each database's position here as soon as the
 * transaction is in the database's log, while it goes on applying it; the
 * acker's thread ("acker") fsyncs the log of every pending database (unless
 * the primary's replication.ack-after is `write`), then sends their positions in one POST /ack to the primary (replica/proto.h's
 * position body, on a kept connection).  So a position is acknowledged
 * only once durable, the fsync overlaps the apply, acknowledgements
 * coalesce under load, and the stream is never held up by an fsync or a
 * round trip.  A position that could not be sent stays pending (a newer
 * one of the same database replaces it) and is sent again after 100 ms; a
 * primary that answers that the acknowledgement is not for it (409, 503)
 * drops it: the stream ends soon and a new one reports positions again.
 *
 * Threading: acker_add() from the replica thread, acker_stop() from the
 * thread that started it; the rest is the acker's own thread.
 */
#ifndef LTXFS_REPLICA_ACKER_H
#define LTXFS_REPLICA_ACKER_H

#include <stdint.h>

#include "base/err.h"
#include "db/database.h"
#include "net/http_client.h"

typedef struct acker acker;

/* `primary_url` (its lease.advertise-url) and `http` are copied. */
int acker_start(acker **out, const char *primary_url, uint64_t node_id,
		const http_client_options *http, lx_err *err);
void acker_stop(acker *a);

/* The stream the positions are received on: its lease epoch, and whether
 * the primary wants logs fsynced before they are acknowledged (its
 * replication.ack-after; 0: written is enough). */
void acker_set_stream(acker *a, uint64_t epoch, int fsync);

/* Database `db`'s log holds (txid, checksum): once its log is fsynced,
 * tell the primary.  `db` must outlive the acker (the store's databases
 * are freed only when the store closes). */
int acker_add(acker *a, database *db, uint64_t txid, uint64_t checksum);

/* Every database was added after the initial catch-up (READY): the next
 * POST /ack says so (Ltxfs-Caught-Up), even with no database, so the
 * primary counts this replica in sync. */
void acker_ready(acker *a);

/* Acknowledgements sent (positions) and failed calls, for /status. */
void acker_counters(acker *a, uint64_t *sent, uint64_t *failures);

#endif
