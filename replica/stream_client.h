/*
 * stream_client.h - a replica's side of the replication stream.
 *
 * One thread ("replica") connects to the primary's POST /stream with the
 * position of every local database, reads the frames (replica/proto.h)
 * and applies them (replica/receive.h): every LTX file is verified
 * completely (header limits, page checksums, file checksum, frame length)
 * before a byte of it reaches a database; an incremental one must continue
 * the database's position exactly (db_apply_remote), a snapshot is written
 * into a new file and swapped in whole (db_install_snapshot).  Any error, a damaged
 * frame or a silent primary (no byte for `silence_ms`) ends the
 * connection; the thread reconnects with exponential backoff (100 ms
 * doubling to 5 s) and reports its positions again, so the primary sends
 * what follows them or a snapshot.
 *
 * Epochs: the request says the newest lease epoch this node has seen
 * (Ltxfs-Epoch) and the primary answers with its own; a primary whose
 * epoch is older than that was replaced, and nothing it sends is taken.
 *
 * Lag, as LiteFS defines it for `.lag`: the time since the primary's
 * clock in the last heartbeat or applied transaction; INT32_MAX ms until
 * the first catch-up (READY).
 */
#ifndef LTXFS_REPLICA_STREAM_CLIENT_H
#define LTXFS_REPLICA_STREAM_CLIENT_H

#include <stdint.h>

#include "base/err.h"
#include "db/store.h"
#include "net/http_client.h"

typedef struct stream_client stream_client;

typedef struct stream_client_options {
	const char *primary_url;   /* the primary's lease.advertise-url */
	const char *primary_name;  /* its hostname (for messages and .primary) */
	uint64_t node_id;
	const char *cluster_id;    /* known cluster ID, or NULL/"" to adopt the primary's */
	const char *data_dir;      /* where an adopted cluster ID is kept */
	int silence_ms;            /* give up on a primary that sends nothing */
	uint64_t min_epoch;        /* refuse a primary whose lease epoch is older
				    * (the lease named a newer one); 0: any */
	int catch_up;              /* a new primary catching up from a peer that is
				    * not the primary: one connection (Ltxfs-Catch-Up),
				    * which the peer ends after READY */
	const http_client_options *http;  /* TLS and token (copied; the client's
					   * own cancel flag and timeouts are used);
					   * NULL: none */
	/* Called (on the replica thread) once the primary's address has refused
	 * every connection for PRIMARY_GONE_MS: its process is gone.  Again
	 * only after a stream worked in between.  NULL: not told. */
	void (*primary_gone)(void *ctx, const char *primary_url);
	void *gone_ctx;
} stream_client_options;

#define PRIMARY_GONE_MS 1000

/* Start the thread.  Strings in `o` must outlive the client. */
int stream_client_start(stream_client **out, store *st, const stream_client_options *o,
			lx_err *err);
void stream_client_stop(stream_client *c);

/* See the top of this file; `c` is a stream_client (an http_lag_fn). */
int64_t stream_client_lag_ms(void *c);
/* 1 once the first catch-up with the primary completed. */
int stream_client_ready(stream_client *c);
/* Catch-up: 1 once the one connection ended, and whether it reached READY. */
int stream_client_finished(stream_client *c);

/* 1 while a stream from the primary is open. */
int stream_client_connected(stream_client *c);

/* The primary's proxy (Ltxfs-Proxy-Url of the stream now connected), or
 * -ENOENT when not connected or the primary runs no proxy. */
int stream_client_proxy_url(stream_client *c, char *out, size_t cap);
/* The cluster ID the replica belongs to ("" until it adopted one). */
const char *stream_client_cluster_id(stream_client *c);
void stream_client_counters(stream_client *c, uint64_t *snapshots, uint64_t *transactions);

#endif
