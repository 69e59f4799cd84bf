/*
 * unit.c - main() of every unit-test binary (see unit.h).
 */
#include "tests/unit/unit.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

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

void unit_remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char child[512];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		unit_remove_tree(child);
	}
	closedir(d);
	rmdir(path);
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
