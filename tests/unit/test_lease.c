/*
 * test_lease.c - the pure parts of lease/: the lease value (lease.h) and
 * Consul's answers (consul.h), including the forms Consul really sends
 * (pretty-printed by -dev agents, Value null, Session omitted) and
 * malformed ones, which are refused with a reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease/consul.h"
#include "lease/etcd.h"
#include "lease/lease.h"
#include "tests/unit/unit.h"

static void test_holder_round_trip(void)
{
	lease_holder h = { "node1", "http://10.0.0.1:20202", 0 }, back;
	lx_err err;
	char *s = lease_holder_encode(&h);
	CHECK(s != NULL);
	CHECK(strcmp(s, "{\"hostname\":\"node1\",\"advertise-url\":\"http://10.0.0.1:20202\"}") == 0);
	CHECK_EQ_INT(0, lease_holder_decode(s, strlen(s), &back, &err));
	CHECK(strcmp(back.hostname, "node1") == 0);
	CHECK(strcmp(back.advertise_url, "http://10.0.0.1:20202") == 0);
	free(s);
}

static void test_holder_refuses_malformed(void)
{
	static const char *const bad[] = { "", "null", "[]", "{\"hostname\":\"a\"}",
					   "{\"hostname\":1,\"advertise-url\":\"u\"}",
					   "{\"hostname\":\"\",\"advertise-url\":\"u\"}", "{\"hostname\":" };
	lease_holder h;
	lx_err err;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(-EINVAL, lease_holder_decode(bad[i], strlen(bad[i]), &h, &err));
}

static void test_session_id(void)
{
	const char *pretty = "{\n    \"ID\": \"adf4238a-882b-9ddc-4a9d-5b6758e4159e\"\n}\n";
	char id[64];
	lx_err err;
	CHECK_EQ_INT(0, consul_parse_session_id(pretty, strlen(pretty), id, &err));
	CHECK(strcmp(id, "adf4238a-882b-9ddc-4a9d-5b6758e4159e") == 0);
	CHECK_EQ_INT(-EPROTO, consul_parse_session_id("{}", 2, id, &err));
	CHECK_EQ_INT(-EPROTO, consul_parse_session_id("oops", 4, id, &err));
}

static void test_kv_entry_held(void)
{
	const char *body = "[{\"LockIndex\":1,\"Key\":\"ltxfs/primary\",\"Flags\":0,"
			   "\"Value\":\"eyJob3N0bmFtZSI6Im4xIn0=\",\"Session\":\"s-1\","
			   "\"CreateIndex\":10,\"ModifyIndex\":12}]";
	consul_entry e;
	lx_err err;
	CHECK_EQ_INT(0, consul_parse_entry(body, strlen(body), &e, &err));
	CHECK(e.present);
	CHECK_EQ_U64(12, e.modify_index);
	CHECK_EQ_U64(1, e.lock_index);
	CHECK(strcmp(e.session, "s-1") == 0);
	CHECK(strcmp(e.value, "{\"hostname\":\"n1\"}") == 0);
}

/* Released: Value null, Session omitted. */
static void test_kv_entry_released(void)
{
	const char *body = "[\n  {\n    \"LockIndex\": 2,\n    \"Key\": \"k\",\n    \"Flags\": 0,\n"
			   "    \"Value\": null,\n    \"CreateIndex\": 5,\n    \"ModifyIndex\": 9\n  }\n]\n";
	consul_entry e;
	lx_err err;
	CHECK_EQ_INT(0, consul_parse_entry(body, strlen(body), &e, &err));
	CHECK(e.present);
	CHECK_EQ_U64(9, e.modify_index);
	CHECK(e.session[0] == '\0');
	CHECK_EQ_U64(0, e.value_len);
}

static void test_kv_entry_malformed(void)
{
	static const char *const bad[] = {
		"", "{}", "[]", "[{}]", "[1]",
		"[{\"LockIndex\":1,\"ModifyIndex\":2,\"Value\":\"not base64!\"}]",
		"[{\"LockIndex\":1,\"ModifyIndex\":-2}]",
		"[{\"LockIndex\":1,\"ModifyIndex\":2,\"Value\":7}]",
		"[{\"LockIndex\":1,\"ModifyIndex\":2},{\"LockIndex\":1,\"ModifyIndex\":3}]",
	};
	consul_entry e;
	lx_err err;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(-EPROTO, consul_parse_entry(bad[i], strlen(bad[i]), &e, &err));
		CHECK(!e.present);
	}
}

/* A recursive read (the members): every entry, at most `max`. */
static void test_kv_entries(void)
{
	const char *body = "[{\"LockIndex\":0,\"ModifyIndex\":4,\"Value\":\"YQ==\"},"
			   "{\"LockIndex\":0,\"ModifyIndex\":5,\"Value\":\"Yg==\"},"
			   "{\"LockIndex\":0,\"ModifyIndex\":6,\"Value\":\"Yw==\"}]";
	consul_entry v[2];
	size_t n = 9;
	lx_err err;
	CHECK_EQ_INT(0, consul_parse_entries(body, strlen(body), v, 2, &n, &err));
	CHECK_EQ_U64(2, n);
	CHECK(strcmp(v[1].value, "b") == 0);
	CHECK_EQ_INT(0, consul_parse_entries("[]", 2, v, 2, &n, &err));
	CHECK_EQ_U64(0, n);
	CHECK_EQ_INT(-EPROTO, consul_parse_entries("{}", 2, v, 2, &n, &err));
	CHECK_EQ_INT(-EPROTO, consul_parse_entries("[{\"ModifyIndex\":1}]", 19, v, 2, &n, &err));
}

/* etcd's range answer: int64 fields as strings, zero fields left out. */
static void test_etcd_range(void)
{
	const char *held = "{\"header\":{\"revision\":\"42\"},\"kvs\":[{\"key\":\"YQ==\","
			   "\"create_revision\":\"40\",\"mod_revision\":\"41\",\"version\":\"2\","
			   "\"value\":\"eyJ4IjoxfQ==\",\"lease\":\"7587862\"}],\"count\":\"1\"}";
	const char *missing = "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"9\"}}";
	static const char *const bad[] = {
		"[]", "{\"header\":{\"revision\":\"x\"}}", "{\"header\":{},\"kvs\":{}}",
		"{\"header\":{},\"kvs\":[{\"value\":\"!!\"}]}",
		"{\"header\":{},\"kvs\":[{\"lease\":\"-1\"}]}",
	};
	etcd_kv kv;
	uint64_t rev = 0;
	size_t n = 9;
	lx_err err;
	CHECK_EQ_INT(0, etcd_parse_range(held, strlen(held), &kv, 1, &n, &rev, &err));
	CHECK_EQ_U64(1, n);
	CHECK_EQ_U64(42, rev);
	CHECK(kv.present);
	CHECK_EQ_U64(7587862, kv.lease);
	CHECK_EQ_U64(40, kv.create_revision);
	CHECK_EQ_U64(41, kv.mod_revision);
	CHECK(strcmp(kv.value, "{\"x\":1}") == 0);
	CHECK_EQ_INT(0, etcd_parse_range(missing, strlen(missing), &kv, 1, &n, &rev, &err));
	CHECK_EQ_U64(0, n);
	CHECK_EQ_U64(9, rev);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(-EPROTO, etcd_parse_range(bad[i], strlen(bad[i]), &kv, 1, &n, &rev, &err));
}

/* The cluster ID next to the lease key: adopt, agree, refuse with the remedy. */
static void test_cluster_match(void)
{
	const char *stored = "LTXC0123456789ABCDEF";
	char id[21] = "";
	lx_err err;
	CHECK_EQ_INT(0, lease_cluster_match(stored, 20, id, sizeof(id), "k", &err));
	CHECK(strcmp(id, stored) == 0);                          /* adopted */
	CHECK_EQ_INT(0, lease_cluster_match(stored, 20, id, sizeof(id), "k", &err));
	strcpy(id, "LTXCFFFFFFFFFFFFFFFF");
	CHECK_EQ_INT(-EEXIST, lease_cluster_match(stored, 20, id, sizeof(id), "app/primary", &err));
	CHECK_STR_CONTAINS(err.msg, "lease key app/primary belongs to cluster LTXC0123456789ABCDEF");
	CHECK_STR_CONTAINS(err.msg, "a lease key of its own");
	CHECK_EQ_INT(-EPROTO, lease_cluster_match("garbage", 7, id, sizeof(id), "k", &err));
	CHECK_EQ_INT(-EPROTO, lease_cluster_match("LTXC0123456789ABCDEF0", 21, id, sizeof(id), "k",
						  &err));
}

UNIT_TESTS(TEST(test_holder_round_trip), TEST(test_holder_refuses_malformed),
	   TEST(test_session_id), TEST(test_kv_entry_held), TEST(test_kv_entry_released),
	   TEST(test_kv_entry_malformed), TEST(test_kv_entries), TEST(test_etcd_range),
	   TEST(test_cluster_match))
