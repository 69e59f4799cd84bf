/*
 * insert_bench.c - autocommit INSERT throughput of SQLite on one database.
 *
 * Opens the database at PATH (deleting any old PATH, PATH-journal,
 * PATH-wal and PATH-shm first), sets journal_mode and synchronous, creates
 * table t, then for the given number of seconds runs autocommit
 *     INSERT INTO t(v) VALUES(?)
 * with a 100-byte blob, one transaction per statement.  Prints one line:
 *     <journal> <synchronous> <transactions> <seconds> <tx/s>
 * so the caller (tests/bench/bench.py) can parse it.  Exits non-zero with a
 * message on any SQLite error.
 *
 * Usage: insert_bench PATH [JOURNAL_MODE [SYNCHRONOUS [SECONDS]]]
 *        defaults: wal normal 5
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define BLOB_SIZE 100

/* Seconds on the monotonic clock. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Report an SQLite error for step WHAT and exit. */
static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "insert_bench: %s: %s\n", what,
		db ? sqlite3_errmsg(db) : "out of memory");
	exit(1);
}

/* Remove PATH and its journal, WAL and shm files if they exist. */
static void remove_db(const char *path)
{
	static const char *const suffix[] = { "", "-journal", "-wal", "-shm" };
	char name[4096];
	size_t i;

	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", path, suffix[i]);
		if (unlink(name) != 0 && errno != ENOENT) {
			fprintf(stderr, "insert_bench: unlink %s: %s\n", name,
				strerror(errno));
			exit(1);
		}
	}
}

/* Run SQL that returns no rows we need; exit on error. */
static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "insert_bench: %s: %s\n", sql,
			msg ? msg : "error");
		sqlite3_free(msg);
		exit(1);
	}
}

/*
 * Set the journal mode and check SQLite accepted it (the pragma answers
 * with the mode actually in force, e.g. it refuses WAL without shm).
 */
static void set_journal(sqlite3 *db, const char *mode)
{
	sqlite3_stmt *st;
	char sql[64];
	const char *got;

	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", mode);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(db, sql);
	if (sqlite3_step(st) != SQLITE_ROW)
		die(db, sql);
	got = (const char *)sqlite3_column_text(st, 0);
	if (got == NULL || strcasecmp(got, mode) != 0) {
		fprintf(stderr, "insert_bench: journal_mode %s refused, got %s\n",
			mode, got ? got : "(null)");
		exit(1);
	}
	sqlite3_finalize(st);
}

int main(int argc, char **argv)
{
	const char *path, *journal = "wal", *sync = "normal";
	double seconds = 5.0, start, elapsed;
	unsigned char blob[BLOB_SIZE];
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	char sql[64];
	long n = 0;
	size_t i;

	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: insert_bench PATH [JOURNAL_MODE "
			"[SYNCHRONOUS [SECONDS]]]\n");
		return 2;
	}
	path = argv[1];
	if (argc > 2)
		journal = argv[2];
	if (argc > 3)
		sync = argv[3];
	if (argc > 4)
		seconds = atof(argv[4]);
	if (seconds <= 0) {
		fprintf(stderr, "insert_bench: bad duration %s\n", argv[4]);
		return 2;
	}
	for (i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i * 37 + 11);

	remove_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(db, "open");
	set_journal(db, journal);
	snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s", sync);
	exec_sql(db, sql);
	exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
	if (sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?)", -1, &st,
			       NULL) != SQLITE_OK)
		die(db, "prepare insert");

	start = now();
	do {
		/* Check the clock every 16 rows: cheap, and fine-grained enough. */
		for (i = 0; i < 16; i++) {
			sqlite3_bind_blob(st, 1, blob, sizeof(blob),
					  SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				die(db, "insert");
			sqlite3_reset(st);
			n++;
		}
		elapsed = now() - start;
	} while (elapsed < seconds);

	sqlite3_finalize(st);
	if (sqlite3_close(db) != SQLITE_OK)
		die(db, "close");
	printf("%s %s %ld %.3f %.0f\n", journal, sync, n, elapsed,
	       (double)n / elapsed);
	return 0;
}
