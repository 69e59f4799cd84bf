/*
 * test_position_wait.c - replica/position_wait.h: positions as NAME-pos
 * shows them are parsed, everything else refused with a message.
 */
#include <errno.h>
#include <string.h>

#include "replica/position_wait.h"
#include "tests/unit/unit.h"

static void test_positions_parse(void)
{
	wait_target t;
	lx_err err;
	CHECK_EQ_INT(0, wait_target_parse("0000000000000003/e1e11fe233ba9bdf\n", 34, &t, &err));
	CHECK_EQ_U64(3, t.txid);
	CHECK_EQ_U64(0xe1e11fe233ba9bdfULL, t.checksum);
	CHECK_EQ_INT(1, t.has_checksum);
	CHECK_EQ_INT(0, wait_target_parse("1f", 2, &t, &err));
	CHECK_EQ_U64(31, t.txid);
	CHECK_EQ_INT(0, t.has_checksum);
	CHECK_EQ_INT(0, wait_target_parse("FFFFFFFFFFFFFFFF", 16, &t, &err));
	CHECK_EQ_U64(UINT64_MAX, t.txid);
	/* only `len` bytes count */
	CHECK_EQ_INT(0, wait_target_parse("12/zz", 2, &t, &err));
	CHECK_EQ_U64(0x12, t.txid);
}

static void test_bad_positions_are_refused(void)
{
	static const char *const bad[] = {
		"", "\n", "0", "0000000000000000", "x1", "12345678901234567", "1/", "/1",
		"1/2/3", "1 ", " 1", "-1", "1/12345678901234567", "0x10",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wait_target t;
		lx_err err;
		lx_err_clear(&err);
		CHECK_EQ_INT(-EINVAL, wait_target_parse(bad[i], strlen(bad[i]), &t, &err));
		CHECK(err.msg[0] != '\0');
	}
}

UNIT_TESTS(TEST(test_positions_parse), TEST(test_bad_positions_are_refused))
