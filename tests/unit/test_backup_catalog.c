/*
 * test_backup_catalog.c - object names, epochs superseding a deposed
 * primary's objects, and restore plans (backup/catalog.h).
 */
#include "backup/catalog.h"
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

/* Add an object; checksums are "txid * 10" so chains line up. */
static void add(bk_catalog *c, int level, uint64_t epoch, uint64_t min, uint64_t max,
		int64_t time_ms)
{
	char key[BK_KEY_MAX];
	uint64_t pre = level == BK_LEVEL_SNAPSHOT ? 0 : (min - 1) * 10;
	bk_object_key(key, level, epoch, min, max, pre, max * 10, time_ms);
	CHECK_EQ_INT(0, bk_catalog_add(c, key, 100));
}

static void mark(bk_catalog *c, uint64_t epoch, uint64_t txid)
{
	char key[BK_KEY_MAX];
	bk_marker_key(key, epoch, txid, txid * 10);
	CHECK_EQ_INT(0, bk_catalog_add(c, key, 0));
}

static void test_keys_round_trip(void)
{
	bk_catalog c;
	char key[BK_KEY_MAX];
	bk_catalog_init(&c);
	bk_object_key(key, 2, 7, 100, 200, 0xabc, 0xdef, 1700000000123);
	CHECK(strcmp(key, "l2/0000000000000007-0000000000000064-00000000000000c8-"
		     "0000000000000abc-0000000000000def-0000018bcfe5687b.ltx") == 0);
	CHECK_EQ_INT(0, bk_catalog_add(&c, key, 42));
	bk_marker_key(key, 7, 99, 5);
	CHECK_EQ_INT(0, bk_catalog_add(&c, key, 0));
	/* not the catalog's: counted, never fatal */
	CHECK_EQ_INT(0, bk_catalog_add(&c, "name", 10));
	CHECK_EQ_INT(0, bk_catalog_add(&c, "l4/0000000000000007-0000000000000064-00000000000000c8-"
				       "0000000000000abc-0000000000000def-0000018bcfe5687b.ltx", 1));
	CHECK_EQ_INT(0, bk_catalog_add(&c, "l0/0000000000000007-00000000000000c8-0000000000000064-"
				       "0000000000000abc-0000000000000def-0000018bcfe5687b.ltx", 1));
	CHECK_EQ_INT(0, bk_catalog_add(&c, "l0/0000000000000007-0000000000000064-00000000000000c8-"
				       "0000000000000ABC-0000000000000def-0000018bcfe5687b.ltx", 1));
	CHECK_EQ_INT(0, bk_catalog_add(&c, "epoch/0000000000000007-0000000000000063", 0));
	bk_catalog_finish(&c);
	CHECK_EQ_U64(1, c.n);
	CHECK_EQ_U64(1, c.n_mark);
	CHECK_EQ_U64(5, c.unknown);
	CHECK_EQ_INT(2, c.obj[0].level);
	CHECK_EQ_U64(100, c.obj[0].min_txid);
	CHECK_EQ_U64(200, c.obj[0].max_txid);
	CHECK_EQ_U64(0xdef, c.obj[0].post);
	CHECK_EQ_U64(1700000000123ULL, (uint64_t)c.obj[0].time_ms);
	CHECK_EQ_U64(99, c.mark[0].txid);
	CHECK_EQ_U64(7, bk_catalog_max_epoch(&c));
	bk_catalog_free(&c);
}

static void test_plan_by_txid_and_time(void)
{
	bk_catalog c;
	bk_plan p;
	lx_err err;
	bk_target t;
	bk_catalog_init(&c);
	mark(&c, 1, 0);
	add(&c, BK_LEVEL_SNAPSHOT, 1, 1, 10, 1000);
	add(&c, 0, 1, 11, 15, 1500);
	add(&c, 0, 1, 16, 20, 2000);
	add(&c, 0, 1, 21, 30, 3000);
	add(&c, 1, 1, 11, 20, 2000);          /* compacted: fewer objects */
	bk_catalog_finish(&c);

	t = (bk_target){ UINT64_MAX, INT64_MAX };
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(3, p.n);                 /* snapshot, l1 11-20, l0 21-30 */
	CHECK_EQ_INT(1, p.step[1]->level);
	CHECK_EQ_U64(30, p.txid);
	CHECK(!p.cut);
	bk_plan_free(&p);

	t = (bk_target){ 17, INT64_MAX };     /* inside an l0 object: cut */
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(3, p.n);
	CHECK_EQ_U64(11, p.step[1]->min_txid);
	CHECK_EQ_U64(15, p.step[1]->max_txid);
	CHECK(p.cut);
	CHECK_EQ_U64(17, p.txid);
	bk_plan_free(&p);

	t = (bk_target){ 10, INT64_MAX };     /* the snapshot alone */
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(1, p.n);
	bk_plan_free(&p);

	t = (bk_target){ UINT64_MAX, 2500 };  /* by time: 11-20 whole, then cut in 21-30 */
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(3, p.n);
	CHECK(p.cut);
	CHECK_EQ_U64(30, p.txid);
	bk_plan_free(&p);

	t = (bk_target){ 31, INT64_MAX };
	CHECK_EQ_INT(-ENOENT, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_STR_CONTAINS(err.msg, "reaches TXID 30");

	t = (bk_target){ UINT64_MAX, 999 };   /* before the first snapshot */
	CHECK_EQ_INT(-ENOENT, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_STR_CONTAINS(err.msg, "no snapshot");
	bk_catalog_free(&c);
}

/* Epoch 1 shipped 21..30, which the cluster lost; epoch 2 went on from 20.
 * No plan may use 21..30 of epoch 1, even where epoch 2 has nothing yet. */
static void test_deposed_epoch_is_superseded(void)
{
	bk_catalog c;
	bk_plan p;
	bk_range r;
	lx_err err;
	bk_target t = { UINT64_MAX, INT64_MAX };
	bk_catalog_init(&c);
	mark(&c, 1, 0);
	add(&c, BK_LEVEL_SNAPSHOT, 1, 1, 10, 1000);
	add(&c, 0, 1, 11, 20, 2000);
	add(&c, 0, 1, 21, 30, 3000);          /* lost */
	mark(&c, 2, 20);
	bk_catalog_finish(&c);
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(2, p.n);
	CHECK_EQ_U64(20, p.txid);
	bk_plan_free(&p);

	add(&c, 0, 2, 21, 25, 4000);          /* epoch 2's own 21.. */
	bk_catalog_finish(&c);
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(3, p.n);
	CHECK_EQ_U64(2, p.step[2]->epoch);
	CHECK_EQ_U64(25, p.txid);
	bk_plan_free(&p);
	CHECK_EQ_INT(0, bk_catalog_range(&c, &r));
	CHECK_EQ_U64(10, r.first_txid);
	CHECK_EQ_U64(25, r.last_txid);
	CHECK_EQ_U64(1, r.superseded);
	CHECK_EQ_U64(2, bk_catalog_max_epoch(&c));
	bk_catalog_free(&c);
}

/* A chain breaks where checksums disagree; a newer snapshot starts a new one. */
static void test_chain_needs_matching_checksums(void)
{
	bk_catalog c;
	bk_plan p;
	bk_position *pos;
	size_t n;
	lx_err err;
	char key[BK_KEY_MAX];
	bk_target t = { UINT64_MAX, INT64_MAX };
	bk_catalog_init(&c);
	add(&c, BK_LEVEL_SNAPSHOT, 1, 1, 10, 1000);
	bk_object_key(key, 0, 1, 11, 20, 12345, 200, 2000);   /* pre does not match */
	CHECK_EQ_INT(0, bk_catalog_add(&c, key, 1));
	bk_catalog_finish(&c);
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(1, p.n);
	bk_plan_free(&p);
	add(&c, BK_LEVEL_SNAPSHOT, 3, 1, 40, 5000);
	add(&c, 0, 3, 41, 41, 6000);
	bk_catalog_finish(&c);
	CHECK_EQ_INT(0, bk_catalog_chain(&c, &pos, &n));
	CHECK_EQ_U64(2, n);
	CHECK_EQ_U64(40, pos[0].txid);
	CHECK_EQ_U64(410, pos[1].post);
	free(pos);
	bk_catalog_free(&c);
	bk_catalog_init(&c);
	bk_catalog_finish(&c);
	CHECK_EQ_INT(0, bk_catalog_chain(&c, &pos, &n));
	CHECK_EQ_U64(0, n);
	CHECK_EQ_INT(-ENOENT, bk_catalog_range(&c, &(bk_range){ 0 }));
	bk_catalog_free(&c);
}

/* A new database's backup starts with its whole history (l0 from TXID 1);
 * compacted objects from TXID 1 start a plan too, but cannot be cut. */
static void test_history_from_txid_1(void)
{
	bk_catalog c;
	bk_plan p;
	lx_err err;
	bk_target t = { UINT64_MAX, INT64_MAX };
	bk_catalog_init(&c);
	mark(&c, 1, 0);
	add(&c, 0, 1, 1, 5, 100);
	add(&c, 0, 1, 6, 9, 200);
	add(&c, 0, 1, 10, 12, 300);
	add(&c, 1, 1, 1, 9, 200);
	add(&c, 2, 1, 1, 12, 300);
	bk_catalog_finish(&c);
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(1, p.n);                  /* l2 1..12 alone */
	CHECK_EQ_INT(2, p.step[0]->level);
	bk_plan_free(&p);
	t.txid = 11;                           /* l1 1..9, then l0 10..12 cut */
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(2, p.n);
	CHECK_EQ_INT(1, p.step[0]->level);
	CHECK(p.cut);
	CHECK_EQ_U64(11, p.txid);
	bk_plan_free(&p);
	t.txid = 3;                            /* inside the first l0: cut */
	CHECK_EQ_INT(0, bk_catalog_plan(&c, &t, &p, &err));
	CHECK_EQ_U64(1, p.n);
	CHECK_EQ_INT(0, p.step[0]->level);
	CHECK(p.cut);
	bk_plan_free(&p);
	bk_range r;
	CHECK_EQ_INT(0, bk_catalog_range(&c, &r));
	CHECK_EQ_U64(1, r.first_txid);
	CHECK_EQ_U64(12, r.last_txid);
	bk_catalog_free(&c);
}

UNIT_TESTS(
	TEST(test_history_from_txid_1),
	TEST(test_keys_round_trip),
	TEST(test_plan_by_txid_and_time),
	TEST(test_deposed_epoch_is_superseded),
	TEST(test_chain_needs_matching_checksums)
)
