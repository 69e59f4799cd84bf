/*
 * test_names.c - valid database names and what a name in the mount is
 * (db/names.c).
 */
#include "db/names.h"
#include "tests/unit/unit.h"

#include <errno.h>

static int check(const char *s, size_t len)
{
	lx_err err;
	return db_name_check(s, len, &err);
}

static void test_valid_names(void)
{
	char longest[DB_NAME_MAX + 1];
	memset(longest, 'a', DB_NAME_MAX);
	CHECK_EQ_INT(0, check("app.db", 6));
	CHECK_EQ_INT(0, check("caf\xc3\xa9.db", 8));
	CHECK_EQ_INT(0, check("with space", 10));
	CHECK_EQ_INT(0, check("x-mjpeg", 7));
	CHECK_EQ_INT(0, check(longest, DB_NAME_MAX));
	CHECK_EQ_INT(243, DB_NAME_MAX);
}

static void test_invalid_names(void)
{
	char longer[DB_NAME_MAX + 2];
	lx_err err;
	memset(longer, 'a', sizeof(longer));
	CHECK_EQ_INT(-ENAMETOOLONG, check(longer, DB_NAME_MAX + 1));
	CHECK_EQ_INT(-EINVAL, check("", 0));
	CHECK_EQ_INT(-EINVAL, db_name_check("x\0y", 3, &err));
	CHECK_STR_CONTAINS(err.msg, "\"x\\x00y\": contains a NUL byte");
	CHECK_EQ_INT(-EINVAL, db_name_check("a\nb", 3, &err));
	CHECK_STR_CONTAINS(err.msg, "\"a\\x0ab\": contains a control character (byte 0x0a)");
	CHECK_EQ_INT(-EINVAL, check("a\x7f", 2));
	CHECK_EQ_INT(-EINVAL, check("a/b", 3));
	CHECK_EQ_INT(-EINVAL, check(".hidden", 7));
	CHECK_EQ_INT(-EINVAL, check("..", 2));
	CHECK_EQ_INT(-EINVAL, check("x.db-wal", 8));
	CHECK_EQ_INT(-EINVAL, check("x.db-journal", 12));
	CHECK_EQ_INT(-EINVAL, check("x.db-shm", 8));
	CHECK_EQ_INT(-EINVAL, check("x.db-pos", 8));
	CHECK_EQ_INT(-EINVAL, check("bad\xff", 4));
	CHECK_EQ_INT(-EINVAL, check("\xc0\xaf", 2));           /* overlong '/' */
	CHECK_EQ_INT(-EINVAL, check("\xed\xa0\x80", 3));       /* a surrogate */
	CHECK_EQ_INT(-EINVAL, check("\xe2\x82", 2));           /* cut short */
}

static void test_classify(void)
{
	char db[256];
	enum db_name_kind k;
	lx_err err;
	char file[300];
	CHECK_EQ_INT(0, db_name_classify("a.db", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_DATABASE, k);
	CHECK(strcmp(db, "a.db") == 0);
	CHECK_EQ_INT(0, db_name_classify("a.db-journal", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_JOURNAL, k);
	CHECK(strcmp(db, "a.db") == 0);
	CHECK_EQ_INT(0, db_name_classify("a.db-wal", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_WAL, k);
	CHECK_EQ_INT(0, db_name_classify("a.db-shm", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_SHM, k);
	CHECK_EQ_INT(0, db_name_classify("a.db-pos", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_POS, k);
	CHECK_EQ_INT(0, db_name_classify("a.db-mj0A1B2C93D", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_PLAIN, k);
	CHECK_EQ_INT(0, db_name_classify("a.db-mj0a1b2c3d", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_PLAIN, k);
	CHECK_EQ_INT(0, db_name_classify("etilqs_abcdef", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_PLAIN, k);
	CHECK_EQ_INT(0, db_name_classify("a.db-mj0A1B2C9", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_DATABASE, k);                         /* 7 digits: a name */
	CHECK_EQ_INT(-EINVAL, db_name_classify("a.db-wal-wal", &k, db, sizeof(db), &err));
	CHECK_EQ_INT(-EINVAL, db_name_classify("etilqs_\n", &k, db, sizeof(db), &err));
	/* the longest database's super-journal fits in NAME_MAX */
	memset(file, 'a', DB_NAME_MAX);
	memcpy(file + DB_NAME_MAX, "-mj0A1B2C93D", 13);
	CHECK_EQ_INT(0, db_name_classify(file, &k, db, sizeof(db), &err));
	CHECK_EQ_INT(DBN_PLAIN, k);
	memset(file, 'a', 255);
	file[255] = '\0';
	CHECK_EQ_INT(-ENAMETOOLONG, db_name_classify(file, &k, db, sizeof(db), &err));
	memcpy(file + 247, "-journal", 9);
	CHECK_EQ_INT(-ENAMETOOLONG, db_name_classify(file, &k, db, sizeof(db), &err));
}

static void test_escape(void)
{
	char out[16];
	db_name_escape("a\\b\x01", 4, out, sizeof(out));
	CHECK(strcmp(out, "a\\x5cb\\x01") == 0);
	db_name_escape("abcdefghijklmnopqrstuvwxyz", 26, out, sizeof(out));
	CHECK_EQ_INT(15, (int)strlen(out));
}

UNIT_TESTS(TEST(test_valid_names), TEST(test_invalid_names), TEST(test_classify),
	   TEST(test_escape))
