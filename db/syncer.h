/*
 * syncer.h - makes transaction logs durable alongside the application's
 * own fsync.
 *
 * When SQLite fsyncs a WAL, journal or database file, the log must be at
 * least as durable (docs/design.md, "Log and durability").  Done one after
 * the other that costs two device flushes in a row; a syncer runs the log's
 * fdatasync on its own thread while the caller's thread syncs the
 * application's file, so the two overlap (on ext4 they often share one
 * journal commit).
 *
 * Threads: one worker thread per syncer ("log syncer"); it only calls
 * txlog_sync(), which is safe without the database mutex.  Any thread may
 * submit and wait.  A ticket lives on the submitter's stack until
 * log_syncer_wait() returns.
 */
#ifndef LTXFS_DB_SYNCER_H
#define LTXFS_DB_SYNCER_H

#include "base/err.h"
#include "db/txlog.h"

typedef struct log_syncer log_syncer;

typedef struct sync_ticket {
	txlog *log;
	int done;
	int rc;
	lx_err err;
	struct sync_ticket *next;
} sync_ticket;

int log_syncer_start(log_syncer **out, lx_err *err);
/* Finishes queued tickets, then joins the thread. */
void log_syncer_stop(log_syncer *s);

/* Queue txlog_sync(log); returns at once. */
void log_syncer_submit(log_syncer *s, sync_ticket *t, txlog *log);
/* Wait for the ticket; returns its txlog_sync() result (error in *err). */
int log_syncer_wait(log_syncer *s, sync_ticket *t, lx_err *err);

#endif
