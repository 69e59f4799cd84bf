/*
 * sync_commit.c - holding commits until replicas hold them (see
 * sync_commit.h).
 */
#include "replica/sync_commit.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

const double sync_wait_bounds_s[SYNC_WAIT_BUCKETS - 1] = {
	0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5,
};

/* A replica's acknowledged TXID of one database (open addressing). */
typedef struct acked {
	const database *db;        /* NULL: empty slot */
	uint64_t txid;
} acked;

typedef struct member {
	uint64_t node_id;
	int sessions;              /* live stream sessions */
	int in_sync;
	int64_t last_ack_ms;       /* wall clock */
	acked *slots;
	size_t cap, used;          /* cap: a power of two, or 0 */
} member;

struct sync_commit {
	store *st;
	sync_options o;
	db_commit_gate gate;

	pthread_mutex_t mu;        /* guards everything below */
	pthread_cond_t acks;       /* an acknowledgement, or the role changed */
	int active;
	uint64_t epoch;
	uint64_t generation;       /* bumped at every role change */
	member m[SYNC_MAX_REPLICAS];
	size_t n;
	int short_of_replicas;     /* fewer than min_acks in sync */
	int64_t short_since_ms;
	char short_reason[160];
	uint64_t waits, timeouts, refused, unreplicated;
	double wait_sum_s;
	uint64_t wait_le[SYNC_WAIT_BUCKETS];
};

/* ---- members --------------------------------------------------------------- */

static size_t slot_of(const member *m, const database *db)
{
	size_t h = (size_t)(((uintptr_t)db >> 4) * 0x9E3779B97F4A7C15ULL);
	size_t i = h & (m->cap - 1);
	while (m->slots[i].db != NULL && m->slots[i].db != db)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static uint64_t acked_txid(const member *m, const database *db)
{
	if (m->cap == 0)
		return 0;
	const acked *a = &m->slots[slot_of(m, db)];
	return a->db == db ? a->txid : 0;
}

static int grow(member *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	acked *old = m->slots, *v = calloc(cap, sizeof(*v));
	size_t old_cap = m->cap;
	if (v == NULL)
		return -ENOMEM;
	m->slots = v;
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].db != NULL)
			m->slots[slot_of(m, old[i].db)] = old[i];
	free(old);
	return 0;
}

static int set_acked(member *m, const database *db, uint64_t txid)
{
	if ((m->used + 1) * 2 > m->cap && grow(m) < 0)
		return -ENOMEM;
	acked *a = &m->slots[slot_of(m, db)];
	if (a->db == NULL) {
		a->db = db;
		m->used++;
	}
	if (txid > a->txid)
		a->txid = txid;
	return 0;
}

static void forget_acks(member *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->used = 0;
	m->in_sync = 0;
}

static member *member_find(sync_commit *s, uint64_t node_id, int create)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->m[i].node_id == node_id)
			return &s->m[i];
	if (!create || s->n == SYNC_MAX_REPLICAS)
		return NULL;
	memset(&s->m[s->n], 0, sizeof(s->m[s->n]));
	s->m[s->n].node_id = node_id;
	return &s->m[s->n++];
}

static unsigned count_in_sync(const sync_commit *s)
{
	unsigned k = 0;
	for (size_t i = 0; i < s->n; i++)
		k += s->m[i].sessions > 0 && s->m[i].in_sync;
	return k;
}

/* Say once when the set in sync falls below min_acks and when it is back. */
static void note_set_locked(sync_commit *s)
{
	unsigned k = count_in_sync(s);
	int now_short = s->active && k < s->o.min_acks;
	if (now_short == s->short_of_replicas)
		return;
	s->short_of_replicas = now_short;
	if (now_short) {
		s->short_since_ms = lx_wall_ms();
		snprintf(s->short_reason, sizeof(s->short_reason),
			 "%u of %u replicas required by replication.min-acks are in sync", k,
			 s->o.min_acks);
		lx_warn("sync", "%s: %s", s->short_reason, s->o.degrade ?
			"DEGRADED, commits are acknowledged without replicas (replication.on-timeout "
			"degrade)" : "commits fail until enough replicas are back "
			"(replication.on-timeout fail)");
	} else {
		lx_info("sync", "%u replicas in sync (replication.min-acks %u): commits wait for "
			"them again", k, s->o.min_acks);
		s->short_since_ms = 0;
		s->short_reason[0] = '\0';
	}
}

/* ---- the gate ----------------------------------------------------------------- */

static int gate_admit(void *ctx, database *db, lx_err *err)
{
	sync_commit *s = ctx;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	note_set_locked(s);
	if (s->active && s->short_of_replicas && !s->o.degrade) {
		s->refused++;
		rc = lx_err_set(err, ENOTCONN, "db %s: commit refused: %s (replication.mode sync, "
				"on-timeout fail)", db->name, s->short_reason);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static unsigned count_acked(const sync_commit *s, const database *db, uint64_t txid)
{
	unsigned k = 0;
	for (size_t i = 0; i < s->n; i++)
		k += acked_txid(&s->m[i], db) >= txid;
	return k;
}

static void record_wait(sync_commit *s, int64_t started_ns)
{
	double w = (double)(lx_mono_ns() - started_ns) / 1e9;
	size_t b = 0;
	s->waits++;
	s->wait_sum_s += w;
	while (b < SYNC_WAIT_BUCKETS - 1 && w > sync_wait_bounds_s[b])
		b++;
	for (; b < SYNC_WAIT_BUCKETS; b++)
		s->wait_le[b]++;
}

/* The replicas that did not acknowledge in time leave the set in sync. */
static void timed_out_locked(sync_commit *s, const database *db, uint64_t txid)
{
	s->timeouts++;
	for (size_t i = 0; i < s->n; i++)
		if (acked_txid(&s->m[i], db) < txid && s->m[i].in_sync) {
			s->m[i].in_sync = 0;
			lx_warn("sync", "replica %016" PRIx64 " did not acknowledge %s TXID %" PRIu64
				" within replication.sync-timeout (%" PRId64 " ms): not in sync",
				s->m[i].node_id, db->name, txid, s->o.timeout_ms);
		}
	note_set_locked(s);
}

static int gate_await(void *ctx, database *db, uint64_t txid, lx_err *err)
{
	sync_commit *s = ctx;
	int64_t started = lx_mono_ns();
	struct timespec deadline = lx_mono_deadline((int)s->o.timeout_ms);
	uint64_t gen;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	gen = s->generation;
	if (s->short_of_replicas && s->o.degrade) {
		s->unreplicated++;
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	for (;;) {
		if (!s->active || s->generation != gen) {
			rc = lx_err_set(err, ENOTCONN, "db %s: this node stopped being the primary "
					"before enough replicas acknowledged TXID %" PRIu64 ": the "
					"commit may be lost", db->name, txid);
			break;
		}
		if (count_acked(s, db, txid) >= s->o.min_acks) {
			record_wait(s, started);
			break;
		}
		if (s->short_of_replicas && !s->o.degrade) {
			/* nothing to wait for: a commit that slipped past admit
			 * before the set shrank, or its write again */
			s->refused++;
			rc = lx_err_set(err, ENOTCONN, "db %s: TXID %" PRIu64 " is not acknowledged "
					"and %s: the commit is reported failed, but it is committed "
					"on this node", db->name, txid, s->short_reason);
			break;
		}
		if (pthread_cond_timedwait(&s->acks, &s->mu, &deadline) == ETIMEDOUT &&
		    count_acked(s, db, txid) < s->o.min_acks) {
			timed_out_locked(s, db, txid);
			if (s->o.degrade) {
				s->unreplicated++;
				break;
			}
			rc = lx_err_set(err, ETIMEDOUT, "db %s: TXID %" PRIu64 " was not acknowledged "
					"by %u replicas within replication.sync-timeout (%" PRId64
					" ms): the commit is reported failed, but it is committed on "
					"this node", db->name, txid, s->o.min_acks, s->o.timeout_ms);
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- API ---------------------------------------------------------------------- */

const char *sync_commit_ack_level(const sync_commit *s)
{
	return s->o.ack_written ? "write" : "fsync";
}

int sync_commit_new(sync_commit **out, store *st, const sync_options *o, lx_err *err)
{
	sync_commit *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->st = st;
	s->o = *o;
	if (s->o.min_acks == 0)
		s->o.min_acks = 1;
	s->gate = (db_commit_gate){ s, gate_admit, gate_await };
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->acks, &ca);
	pthread_condattr_destroy(&ca);
	*out = s;
	return 0;
}

void sync_commit_free(sync_commit *s)
{
	if (s == NULL)
		return;
	__atomic_store_n(&s->st->events.gate, NULL, __ATOMIC_RELEASE);
	for (size_t i = 0; i < s->n; i++)
		forget_acks(&s->m[i]);
	pthread_cond_destroy(&s->acks);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void sync_commit_set_active(sync_commit *s, int active, uint64_t epoch)
{
	pthread_mutex_lock(&s->mu);
	s->active = active;
	s->epoch = epoch;
	s->generation++;
	for (size_t i = 0; i < s->n; i++)
		forget_acks(&s->m[i]);
	s->short_of_replicas = 0;
	note_set_locked(s);
	pthread_cond_broadcast(&s->acks);
	pthread_mutex_unlock(&s->mu);
	__atomic_store_n(&s->st->events.gate, active ? &s->gate : NULL, __ATOMIC_RELEASE);
}

void sync_commit_replica_up(sync_commit *s, uint64_t node_id)
{
	pthread_mutex_lock(&s->mu);
	member *m = member_find(s, node_id, 1);
	if (m != NULL)
		m->sessions++;
	else
		lx_warn("sync", "replica %016" PRIx64 ": more than %d replicas; its "
			"acknowledgements are not counted", node_id, SYNC_MAX_REPLICAS);
	pthread_mutex_unlock(&s->mu);
}

void sync_commit_replica_down(sync_commit *s, uint64_t node_id)
{
	pthread_mutex_lock(&s->mu);
	member *m = member_find(s, node_id, 0);
	if (m != NULL && m->sessions > 0 && --m->sessions == 0) {
		/* What it acknowledged stays counted: it holds it durably. */
		m->in_sync = 0;
		note_set_locked(s);
	}
	pthread_mutex_unlock(&s->mu);
}

/* One acknowledged position, checked against this primary's history. */
typedef struct checked_ack {
	database *db;
	uint64_t txid;
	int current;               /* the primary's newest TXID of the database */
} checked_ack;

static size_t check_acks(sync_commit *s, const proto_pos *pos, size_t n, checked_ack *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		database *db = store_find(s->st, pos[i].name);
		uint64_t ck, txid, now_ck;
		if (db == NULL || pos[i].txid == 0 ||
		    !db_checksum_at(db, pos[i].txid, &ck) || ck != pos[i].checksum)
			continue;
		db_position(db, &txid, &now_ck);
		out[k++] = (checked_ack){ db, pos[i].txid, txid == pos[i].txid };
	}
	return k;
}

/* Whether these acknowledgements bring the replica into the set in sync. */
static int joins(const checked_ack *v, size_t k, size_t n, int caught_up)
{
	size_t current = 0;
	for (size_t i = 0; i < k; i++)
		current += v[i].current;
	return caught_up ? k == n && current == k : current > 0;
}

int sync_commit_ack(sync_commit *s, uint64_t node_id, uint64_t epoch,
		    const proto_pos *pos, size_t n, int caught_up, lx_err *err)
{
	checked_ack *v = calloc(n ? n : 1, sizeof(*v));
	size_t k;
	int rc = 0;
	member *m;
	if (v == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	k = check_acks(s, pos, n, v);
	pthread_mutex_lock(&s->mu);
	if (!s->active || epoch != s->epoch) {
		rc = lx_err_set(err, ESTALE, "acknowledgement for lease epoch %" PRIu64 ": this "
				"node is %s", epoch, s->active ? "the primary of another epoch" :
				"not the primary");
	} else if ((m = member_find(s, node_id, 0)) == NULL) {
		rc = lx_err_set(err, ESTALE, "acknowledgement from %016" PRIx64 ", which has no "
				"stream open", node_id);
	} else {
		for (size_t i = 0; i < k && rc == 0; i++)
			if (set_acked(m, v[i].db, v[i].txid) < 0)
				rc = lx_err_set(err, ENOMEM, "out of memory");
		if (rc == 0 && m->sessions > 0 && !m->in_sync && joins(v, k, n, caught_up)) {
			m->in_sync = 1;
			lx_info("sync", "replica %016" PRIx64 " is in sync", node_id);
		}
		m->last_ack_ms = lx_wall_ms();
		note_set_locked(s);
		pthread_cond_broadcast(&s->acks);
		if (rc == 0)
			rc = (int)k;
	}
	pthread_mutex_unlock(&s->mu);
	free(v);
	return rc;
}

void sync_commit_stats(sync_commit *s, sync_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	out->min_acks = s->o.min_acks;
	out->timeout_ms = s->o.timeout_ms;
	out->degrade = s->o.degrade;
	out->active = s->active;
	out->degraded = s->active && s->short_of_replicas;
	out->degraded_since_ms = out->degraded ? s->short_since_ms : 0;
	if (out->degraded)
		memcpy(out->degraded_reason, s->short_reason, sizeof(out->degraded_reason));
	out->in_sync = count_in_sync(s);
	out->waits = s->waits;
	out->timeouts = s->timeouts;
	out->refused = s->refused;
	out->unreplicated = s->unreplicated;
	out->wait_sum_s = s->wait_sum_s;
	memcpy(out->wait_le, s->wait_le, sizeof(out->wait_le));
	for (size_t i = 0; i < s->n; i++)
		out->replicas[out->n_replicas++] = (sync_replica_state){
			s->m[i].node_id, s->m[i].sessions > 0, s->m[i].sessions > 0 && s->m[i].in_sync,
			s->m[i].last_ack_ms };
	pthread_mutex_unlock(&s->mu);
}
