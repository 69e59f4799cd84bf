/*
 * stream_server.h - the primary's side of POST /stream: one session per
 * connected replica produces the frames of its response (replica/proto.h).
 *
 * A session keeps, for each database, the position the replica has (as
 * reported, then advanced by what was sent) and sends what follows it
 * (db_next_send): logged transactions read from the log segments, or a
 * copy-on-write snapshot (db/snapshot.h) encoded as an LTX file while it
 * is read.  It holds at most one batch of output in memory and never a
 * queue: a stalled replica stalls only its own session, and the primary's
 * writers never wait for a replica.  When every database is caught up for
 * the first time it sends READY; when idle, a HEARTBEAT every
 * `heartbeat_ms`.
 *
 * Threading: a session is driven by one thread (libmicrohttpd's thread for
 * the connection), which blocks in stream_session_read() until there is
 * something to send.  The registry (stream_hub) is shared with /status.
 */
#ifndef LTXFS_REPLICA_STREAM_SERVER_H
#define LTXFS_REPLICA_STREAM_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "db/store.h"
#include "replica/proto.h"
#include "replica/sync_commit.h"

typedef struct stream_session stream_session;

/* Every live session, for /status and for shutdown. */
typedef struct stream_hub {
	store *store;
	int heartbeat_ms;
	int stopping;                  /* atomic: sessions end their streams */
	int paused;                    /* atomic: not the primary now: streams end, none start */
	pthread_mutex_t mu;
	stream_session *sessions;      /* list */
	uint64_t snapshots_sent;       /* counters, under mu */
	uint64_t transactions_sent;
	sync_commit *sync;             /* replication.mode sync: sessions are its
					  replicas (set before the server starts); NULL: async */
	const char *proxy_url;         /* proxy.advertise-url, told to replicas
					  (Ltxfs-Proxy-Url); NULL: no proxy */
} stream_hub;

void stream_hub_init(stream_hub *h, store *st, int heartbeat_ms);
/* Make every session end its stream (call before stopping the server). */
void stream_hub_stop(stream_hub *h);

/* The node stopped (paused 1) or started (0) being the primary.  Paused,
 * every stream ends and POST /stream answers 503. */
void stream_hub_set_paused(stream_hub *h, int paused);
int stream_hub_serving(stream_hub *h);
/* Whether a catch-up stream may start or go on: also when paused (a node
 * that is not the primary serves a new primary's catch-up), not stopping. */
int stream_hub_serving_catch_up(stream_hub *h);
void stream_hub_destroy(stream_hub *h);

/* One replica's view, for /status. */
typedef struct stream_replica_db {
	char name[PROTO_NAME_MAX + 1];
	uint64_t txid;
	uint64_t checksum;
} stream_replica_db;

typedef struct stream_replica {
	uint64_t node_id;
	char addr[64];
	int64_t connected_ms;
	int ready;
	stream_replica_db *dbs;
	size_t n;
} stream_replica;

/* A copy of every session's state; free with stream_replicas_free(). */
int stream_hub_replicas(stream_hub *h, stream_replica **out, size_t *n);
void stream_replicas_free(stream_replica *v, size_t n);

/* Start a session for a replica that reported `pos` (n entries).  A
 * catch-up session (a new primary bringing itself up to this node's
 * history, docs/lease.md) ends its stream once READY is sent. */
int stream_session_new(stream_session **out, stream_hub *h, uint64_t node_id,
		       const char *addr, const proto_pos *pos, size_t n, int catch_up,
		       lx_err *err);

/*
 * The next bytes of the response, at most `max`: blocks until there is
 * something (at least a heartbeat).  Returns the count, 0 at the end of
 * the stream (the server stops), or a negative errno (the session failed;
 * it was logged).
 */
ssize_t stream_session_read(stream_session *s, uint8_t *buf, size_t max);

void stream_session_free(stream_session *s);

#endif
