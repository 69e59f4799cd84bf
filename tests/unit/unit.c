/*
 * unit.c - main() of every unit-test binary (see unit.h).
 */
#include "tests/unit/unit.h"

#include <stdarg.h>
#include <stdlib.h>

int unit_failures;

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "  FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	unit_failures++;
}

int main(int argc, char **argv)
{
	int ran = 0, failed_tests = 0;
	for (const struct unit_test *t = unit_tests; t->name != NULL; t++) {
		int before = unit_failures;
		if (argc > 1 && strstr(t->name, argv[1]) == NULL)
			continue;
		t->fn();
		ran++;
		if (unit_failures != before) {
			failed_tests++;
			fprintf(stderr, "not ok %s\n", t->name);
		}
	}
	printf("%d tests, %d failed\n", ran, failed_tests);
	return failed_tests == 0 ? 0 : 1;
}
