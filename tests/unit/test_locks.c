/*
 * test_locks.c - POSIX record-lock semantics of db/locks.c.
 */
#include "db/locks.h"
#include "tests/unit/unit.h"

#include <errno.h>

#define PENDING 0x40000000ULL
#define SHARED_FIRST (PENDING + 2)
#define SHARED_LAST (SHARED_FIRST + 509)

static void test_shared_readers_and_exclusive_writer(void)
{
	lock_table t;
	lock_table_init(&t);
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 10, SHARED_FIRST, SHARED_LAST, LK_READ));
	CHECK_EQ_INT(0, lock_table_set(&t, 2, 20, SHARED_FIRST, SHARED_LAST, LK_READ));
	/* A writer cannot take EXCLUSIVE while another reader holds SHARED. */
	CHECK_EQ_INT(-EAGAIN, lock_table_set(&t, 1, 10, SHARED_FIRST, SHARED_LAST, LK_WRITE));
	lock_table_release_owner(&t, 2);
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 10, SHARED_FIRST, SHARED_LAST, LK_WRITE));
	CHECK_EQ_INT(LK_WRITE, lock_table_held(&t, 1, SHARED_FIRST + 7));
	CHECK_EQ_INT(-EAGAIN, lock_table_set(&t, 2, 20, SHARED_FIRST + 3, SHARED_FIRST + 3, LK_READ));
	/* Downgrade. */
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 10, SHARED_FIRST, SHARED_LAST, LK_READ));
	CHECK_EQ_INT(0, lock_table_set(&t, 2, 20, SHARED_FIRST + 3, SHARED_FIRST + 3, LK_READ));
	lock_table_free(&t);
}

static void test_split_and_merge(void)
{
	lock_table t;
	lock_range c;
	lock_table_init(&t);
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 0, 99, LK_WRITE));
	/* Unlock the middle: two ranges remain. */
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 40, 59, LK_UNLOCK));
	CHECK_EQ_INT(2, t.n);
	CHECK_EQ_INT(LK_UNLOCK, lock_table_held(&t, 1, 50));
	CHECK_EQ_INT(LK_WRITE, lock_table_held(&t, 1, 39));
	CHECK_EQ_INT(LK_WRITE, lock_table_held(&t, 1, 60));
	/* Another owner fits in the hole only. */
	CHECK_EQ_INT(0, lock_table_set(&t, 2, 2, 45, 45, LK_WRITE));
	CHECK_EQ_INT(1, lock_table_conflict(&t, 2, 30, 30, LK_READ, &c));
	CHECK_EQ_INT(1, c.owner);
	/* Refill: the owner's ranges merge back into one. */
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 40, 44, LK_WRITE));
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 46, 59, LK_WRITE));
	CHECK_EQ_INT(-EAGAIN, lock_table_set(&t, 1, 1, 45, 45, LK_WRITE));
	lock_table_release_owner(&t, 2);
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 45, 45, LK_WRITE));
	CHECK_EQ_INT(1, t.n);
	CHECK_EQ_U64(0, t.v[0].start);
	CHECK_EQ_U64(99, t.v[0].end);
	lock_table_free(&t);
}

static void test_whole_file_unlock_and_eof(void)
{
	lock_table t;
	lock_table_init(&t);
	CHECK_EQ_INT(0, lock_table_set(&t, 7, 1, PENDING, PENDING, LK_WRITE));
	CHECK_EQ_INT(0, lock_table_set(&t, 7, 1, 120, 120, LK_WRITE));
	CHECK_EQ_INT(0, lock_table_set(&t, 7, 1, 200, LK_EOF, LK_READ));
	CHECK_EQ_INT(1, lock_table_byte_locked(&t, UINT64_MAX - 5, 0));
	CHECK_EQ_INT(0, lock_table_byte_locked(&t, 120, 7));
	CHECK_EQ_INT(0, lock_table_set(&t, 7, 1, 0, LK_EOF, LK_UNLOCK));
	CHECK_EQ_INT(0, t.n);
	CHECK_EQ_INT(-EINVAL, lock_table_set(&t, 7, 1, 10, 5, LK_READ));
	lock_table_free(&t);
}

static void test_type_change_in_place(void)
{
	lock_table t;
	lock_table_init(&t);
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 10, 20, LK_READ));
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 15, 15, LK_WRITE));
	CHECK_EQ_INT(3, t.n);
	CHECK_EQ_INT(LK_READ, lock_table_held(&t, 1, 14));
	CHECK_EQ_INT(LK_WRITE, lock_table_held(&t, 1, 15));
	CHECK_EQ_INT(LK_READ, lock_table_held(&t, 1, 16));
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 1, 15, 15, LK_READ));
	CHECK_EQ_INT(1, t.n);
	lock_table_free(&t);
}

/* A reservation: holders keep and release, nobody else takes a new lock
 * there, the reserving owner gets in once they are gone. */
static void test_reservation_gives_writer_preference(void)
{
	lock_table t;
	lock_table_init(&t);
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 10, PENDING, PENDING, LK_READ));
	lock_table_reserve(&t, 9, PENDING, PENDING);
	CHECK_EQ_INT(-EAGAIN, lock_table_set(&t, 2, 20, PENDING, PENDING, LK_READ));
	CHECK_EQ_INT(-EAGAIN, lock_table_set(&t, 9, 90, PENDING, PENDING, LK_WRITE));
	CHECK_EQ_INT(0, lock_table_set(&t, 1, 10, PENDING, PENDING, LK_UNLOCK));
	CHECK_EQ_INT(0, lock_table_set(&t, 2, 20, SHARED_FIRST, SHARED_LAST, LK_READ));
	CHECK_EQ_INT(0, lock_table_set(&t, 9, 90, PENDING, PENDING, LK_WRITE));
	lock_table_reserve(&t, 0, 0, 0);
	lock_table_release_owner(&t, 9);
	CHECK_EQ_INT(0, lock_table_set(&t, 2, 20, PENDING, PENDING, LK_READ));
	lock_table_free(&t);
}

UNIT_TESTS(TEST(test_shared_readers_and_exclusive_writer), TEST(test_reservation_gives_writer_preference),
	   TEST(test_split_and_merge), TEST(test_whole_file_unlock_and_eof),
	   TEST(test_type_change_in_place))
