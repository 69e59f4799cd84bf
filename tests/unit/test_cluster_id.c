/*
 * test_cluster_id.c - lease/cluster_id.h: creating, keeping and refusing
 * cluster IDs in a data directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lease/cluster_id.h"
#include "tests/unit/unit.h"

static char *temp_dir(void)
{
	char *d = strdup("/tmp/ltxfs-test-cluster-XXXXXX");
	return mkdtemp(d);
}

static void remove_dir(char *d)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/cluster-id", d);
	unlink(path);
	rmdir(d);
	free(d);
}

static void test_valid_forms(void)
{
	CHECK(cluster_id_valid("LTXC0123456789ABCDEF"));
	CHECK(!cluster_id_valid("LTXC0123456789abcdef"));   /* upper case only */
	CHECK(!cluster_id_valid("LFSC0123456789ABCDEF"));
	CHECK(!cluster_id_valid("LTXC0123456789ABCDE"));
	CHECK(!cluster_id_valid(""));
}

/* Created once, then the same ID on every load. */
static void test_created_once_and_kept(void)
{
	char *d = temp_dir();
	char a[CLUSTER_ID_SIZE], b[CLUSTER_ID_SIZE];
	lx_err err;
	CHECK_EQ_INT(0, cluster_id_load(d, a, &err));
	CHECK(a[0] == '\0');
	CHECK_EQ_INT(0, cluster_id_load_or_create(d, a, &err));
	CHECK(cluster_id_valid(a));
	CHECK_EQ_INT(0, cluster_id_load_or_create(d, b, &err));
	CHECK(strcmp(a, b) == 0);
	remove_dir(d);
}

static void test_garbage_file_refused(void)
{
	char *d = temp_dir();
	char path[4200], id[CLUSTER_ID_SIZE];
	FILE *f;
	lx_err err;
	snprintf(path, sizeof(path), "%s/cluster-id", d);
	f = fopen(path, "w");
	fputs("not an id\n", f);
	fclose(f);
	CHECK_EQ_INT(-EINVAL, cluster_id_load(d, id, &err));
	CHECK_STR_CONTAINS(err.msg, "remove it");
	CHECK_EQ_INT(-EINVAL, cluster_id_load_or_create(d, id, &err));
	remove_dir(d);
}

UNIT_TESTS(TEST(test_valid_forms), TEST(test_created_once_and_kept),
	   TEST(test_garbage_file_refused))
