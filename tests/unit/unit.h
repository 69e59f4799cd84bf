/*
 * unit.h - a minimal unit-test harness.
 *
 * A test file defines functions `static void test_xxx(void)` and lists them
 * in a `UNIT_TESTS(...)` table; unit.c supplies main(), runs each test,
 * reports failures with file:line and exits non-zero if any check failed.
 *
 *     static void test_roundtrip(void) { CHECK_EQ_U64(1, 1); }
 *     UNIT_TESTS(TEST(test_roundtrip))
 */
#ifndef LTXFS_TESTS_UNIT_H
#define LTXFS_TESTS_UNIT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

extern const struct unit_test unit_tests[];
extern int unit_failures;

void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Remove a file, or a directory and everything below it (test fixtures). */
void unit_remove_tree(const char *path);

#define TEST(fn) { #fn, fn }
#define UNIT_TESTS(...) \
	const struct unit_test unit_tests[] = { __VA_ARGS__, { NULL, NULL } };

#define CHECK(cond) \
	do { if (!(cond)) unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define CHECK_EQ_U64(want, got) \
	do { unsigned long long w_ = (unsigned long long)(want), \
		g_ = (unsigned long long)(got); \
	     if (w_ != g_) unit_fail(__FILE__, __LINE__, "%s: want %#llx, got %#llx", \
				     #got, w_, g_); } while (0)
#define CHECK_EQ_INT(want, got) \
	do { long long w_ = (long long)(want), g_ = (long long)(got); \
	     if (w_ != g_) unit_fail(__FILE__, __LINE__, "%s: want %lld, got %lld", \
				     #got, w_, g_); } while (0)
#define CHECK_STR_CONTAINS(hay, needle) \
	do { const char *h_ = (hay), *n_ = (needle); \
	     if (h_ == NULL || strstr(h_, n_) == NULL) \
		unit_fail(__FILE__, __LINE__, "%s: \"%s\" does not contain \"%s\"", \
			  #hay, h_ ? h_ : "(null)", n_); } while (0)

#endif
