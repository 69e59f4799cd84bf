/*
 * position_wait.c - waiting for a database position (see position_wait.h).
 */
#include "replica/position_wait.h"

#include <errno.h>
#include <string.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "db/database.h"

int wait_target_parse(const char *s, size_t len, wait_target *t, lx_err *err)
{
	const char *slash;
	memset(t, 0, sizeof(*t));
	if (len > 0 && s[len - 1] == '\n')
		len--;
	slash = memchr(s, '/', len);
	if (lx_parse_hex64(s, slash ? (size_t)(slash - s) : len, &t->txid) < 0 ||
	    (slash && lx_parse_hex64(slash + 1, len - (size_t)(slash - s) - 1, &t->checksum) < 0))
		return lx_err_set(err, EINVAL, "a position is TXID or TXID/CHECKSUM in hexadecimal, "
				  "as NAME-pos shows it (e.g. 0000000000000003/e1e11fe233ba9bdf)");
	if (t->txid == 0)
		return lx_err_set(err, EINVAL, "TXID 0 is no transaction: every database starts at 1");
	t->has_checksum = slash != NULL;
	return 0;
}

/* Where `db` stands against t: reached, diverged, or not yet (-1). */
static int check_position(database *db, const wait_target *t, uint64_t *txid, uint64_t *ck)
{
	uint64_t at;
	db_position(db, txid, ck);
	if (*txid < t->txid)
		return -1;
	if (!t->has_checksum)
		return WAIT_REACHED;
	/* A history trimmed past it cannot say: the TXID was reached. */
	if (db_checksum_at(db, t->txid, &at) && at != t->checksum)
		return WAIT_DIVERGED;
	return WAIT_REACHED;
}

enum wait_outcome position_wait(store *st, const char *name, const wait_target *t,
				int64_t timeout_ms, const int *stop, uint64_t *txid,
				uint64_t *checksum)
{
	int64_t deadline = lx_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	uint64_t seen = __atomic_load_n(&st->events.seq, __ATOMIC_ACQUIRE);
	for (;;) {
		database *db = store_find(st, name);
		int64_t left;
		*txid = *checksum = 0;
		if (db != NULL) {
			int rc = check_position(db, t, txid, checksum);
			if (rc >= 0)
				return (enum wait_outcome)rc;
		}
		if (stop != NULL && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
			return WAIT_STOPPED;
		left = deadline - lx_mono_ms();
		if (left <= 0)
			return WAIT_TIMED_OUT;
		/* Woken by every commit or applied transaction; a short bound
		 * also catches a stop without a notification. */
		db_events_wait(&st->events, &seen, left < 200 ? (int)left : 200, stop);
	}
}
