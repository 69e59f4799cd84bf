/*
 * test_messages.c - the HTTP API's messages (net/messages.h): every
 * message survives encode then decode unchanged, malformed documents are
 * errors that say where (never a crash), and the hand-off answer of older
 * nodes (TXIDs as strings) still decodes.
 */
#include "net/messages.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>

static int same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

#define CHECK_SAME_STR(a, b) \
	do { if (!same_str((a), (b))) unit_fail(__FILE__, __LINE__, "%s: \"%s\" != \"%s\"", \
						#b, (a) ? (a) : "", (b) ? (b) : ""); } while (0)

static status_msg_position positions[] = {
	{ "a.db", 5, 0x1234, 2 },
	{ "weird \"name\"\n\\.db", 0, 0, 0 },
};

static status_msg_replica replicas[] = {
	{ .node_id = 0xfedcba9876543210ULL, .addr = "10.0.0.2:4000", .connected_ms = 1700000000000,
	  .ready = 1, .dbs = positions, .n_dbs = 2, .has_sync = 1, .in_sync = 1,
	  .last_ack_ms = 1700000000999 },
	{ .node_id = 1, .addr = "[::1]:5", .connected_ms = 0, .ready = 0, .dbs = NULL, .n_dbs = 0 },
};

static status_msg_db dbs[] = {
	{ .name = "a.db", .exists = 1, .txid = 7, .checksum = 0x8000000000000123ULL,
	  .page_size = 4096, .page_count = 3, .wal = 1, .log_transactions = 7,
	  .log_bytes = 12345, .last_commit_ms = 1700000000123, .commits_refused = 0 },
	{ .name = "b.db", .exists = 0, .txid = UINT64_MAX >> 1, .checksum = UINT64_MAX,
	  .page_size = 65536, .page_count = UINT32_MAX, .wal = 0, .failed = 1,
	  .failure = "checksum \"x\" mismatch\n", .commits_refused = 9,
	  .storage_error = "No space left on device", .storage_error_since_ms = 42,
	  .untracked = 1, .untracked_reason = "not SQLite", .has_lost = 1,
	  .lost = { .from = 3, .to = 9, .count = 7, .at_ms = 99, .kept = "lost-3-9",
		    .events = 1, .total = 7 } },
	{ .name = "c.db", .exists = 1, .txid = 1, .checksum = 1, .has_lost = 1,
	  .lost = { .from = 0, .to = 4, .count = 4, .kept = "lost-x", .events = 2, .total = 8 } },
};

static status_msg sample_status(void)
{
	return (status_msg){
		.node_id = 0xabc, .hostname = "host-1", .role = "primary", .primary = "host-1",
		.lease = "consul", .epoch = 12, .cluster_id = "LTXFS-CLUSTER", .uptime_ms = 2500,
		.ready = 1, .lag_ms = -1, .dbs = dbs, .n_dbs = 3, .replicas = replicas,
		.n_replicas = 2, .has_replication = 1,
		.replication = { .mode = "sync", .min_acks = 2, .on_timeout = "degrade", .ack_after = "write",
				 .sync_timeout_ms = 5000, .has_state = 1, .state = "degraded",
				 .reason = "1 of 2 replicas \"in sync\"", .since_ms = 77,
				 .in_sync = 1, .commits_waited = 10, .timeouts = 2, .refused = 3,
				 .unreplicated = 4, .wait_avg_ms = 0.5 },
	};
}

static void check_db(const status_msg_db *w, const status_msg_db *g)
{
	CHECK_SAME_STR(w->name, g->name);
	CHECK_EQ_INT(w->exists, g->exists);
	CHECK_EQ_U64(w->txid, g->txid);
	CHECK_EQ_U64(w->checksum, g->checksum);
	CHECK_EQ_U64(w->page_size, g->page_size);
	CHECK_EQ_U64(w->page_count, g->page_count);
	CHECK_EQ_INT(w->wal, g->wal);
	CHECK_EQ_U64(w->log_transactions, g->log_transactions);
	CHECK_EQ_U64(w->log_bytes, g->log_bytes);
	CHECK_EQ_INT(w->last_commit_ms, g->last_commit_ms);
	CHECK_EQ_INT(w->failed, g->failed);
	CHECK_SAME_STR(w->failure, g->failure);
	CHECK_EQ_U64(w->commits_refused, g->commits_refused);
	CHECK_SAME_STR(w->storage_error, g->storage_error);
	CHECK_EQ_INT(w->storage_error_since_ms, g->storage_error_since_ms);
	CHECK_EQ_INT(w->untracked, g->untracked);
	CHECK_SAME_STR(w->untracked_reason, g->untracked_reason);
	CHECK_EQ_INT(w->has_lost, g->has_lost);
	CHECK_EQ_U64(w->lost.from, g->lost.from);
	CHECK_EQ_U64(w->lost.to, g->lost.to);
	CHECK_EQ_U64(w->lost.count, g->lost.count);
	CHECK_EQ_INT(w->lost.at_ms, g->lost.at_ms);
	CHECK_SAME_STR(w->lost.kept, g->lost.kept);
	CHECK_EQ_U64(w->lost.events, g->lost.events);
	CHECK_EQ_U64(w->lost.total, g->lost.total);
}

static void check_status(const status_msg *w, const status_msg *g)
{
	CHECK_EQ_U64(w->node_id, g->node_id);
	CHECK_SAME_STR(w->hostname, g->hostname);
	CHECK_SAME_STR(w->role, g->role);
	CHECK_SAME_STR(w->primary, g->primary);
	CHECK_SAME_STR(w->lease, g->lease);
	CHECK_EQ_U64(w->epoch, g->epoch);
	CHECK_SAME_STR(w->cluster_id, g->cluster_id);
	CHECK_EQ_INT(w->uptime_ms, g->uptime_ms);
	CHECK_EQ_INT(w->ready, g->ready);
	CHECK_EQ_INT(w->lag_ms, g->lag_ms);
	CHECK_EQ_U64(w->n_dbs, g->n_dbs);
	for (size_t i = 0; i < w->n_dbs && i < g->n_dbs; i++)
		check_db(&w->dbs[i], &g->dbs[i]);
	CHECK_EQ_INT(w->has_replication, g->has_replication);
	CHECK_SAME_STR(w->replication.mode, g->replication.mode);
	CHECK_EQ_U64(w->replication.min_acks, g->replication.min_acks);
	CHECK_SAME_STR(w->replication.on_timeout, g->replication.on_timeout);
	CHECK_SAME_STR(w->replication.ack_after, g->replication.ack_after);
	CHECK_EQ_INT(w->replication.sync_timeout_ms, g->replication.sync_timeout_ms);
	CHECK_EQ_INT(w->replication.has_state, g->replication.has_state);
	CHECK_SAME_STR(w->replication.state, g->replication.state);
	CHECK_SAME_STR(w->replication.reason, g->replication.reason);
	CHECK_EQ_INT(w->replication.since_ms, g->replication.since_ms);
	CHECK_EQ_U64(w->replication.in_sync, g->replication.in_sync);
	CHECK_EQ_U64(w->replication.commits_waited, g->replication.commits_waited);
	CHECK_EQ_U64(w->replication.timeouts, g->replication.timeouts);
	CHECK_EQ_U64(w->replication.refused, g->replication.refused);
	CHECK_EQ_U64(w->replication.unreplicated, g->replication.unreplicated);
	CHECK(w->replication.wait_avg_ms == g->replication.wait_avg_ms);
	CHECK_EQ_U64(w->n_replicas, g->n_replicas);
	for (size_t i = 0; i < w->n_replicas && i < g->n_replicas; i++) {
		const status_msg_replica *a = &w->replicas[i], *b = &g->replicas[i];
		CHECK_EQ_INT(a->has_sync, b->has_sync);
		CHECK_EQ_INT(a->in_sync, b->in_sync);
		CHECK_EQ_INT(a->last_ack_ms, b->last_ack_ms);
		CHECK_EQ_U64(a->node_id, b->node_id);
		CHECK_SAME_STR(a->addr, b->addr);
		CHECK_EQ_INT(a->connected_ms, b->connected_ms);
		CHECK_EQ_INT(a->ready, b->ready);
		CHECK_EQ_U64(a->n_dbs, b->n_dbs);
		for (size_t k = 0; k < a->n_dbs && k < b->n_dbs; k++) {
			CHECK_SAME_STR(a->dbs[k].name, b->dbs[k].name);
			CHECK_EQ_U64(a->dbs[k].txid, b->dbs[k].txid);
			CHECK_EQ_U64(a->dbs[k].checksum, b->dbs[k].checksum);
			CHECK_EQ_U64(a->dbs[k].behind, b->dbs[k].behind);
		}
	}
}

static int decode_status(const char *text, status_msg *m, lx_err *err)
{
	return status_msg_decode(text, strlen(text), m, err);
}

static void test_status_round_trip(void)
{
	status_msg w = sample_status(), g;
	text_buf b = { 0 };
	lx_err err;
	CHECK_EQ_INT(0, status_msg_encode(&w, &b));
	CHECK_EQ_INT(0, status_msg_decode(b.data, b.len, &g, &err));
	check_status(&w, &g);
	status_msg_free(&g);
	/* Encoding what was decoded gives the same text. */
	text_buf_free(&b);
}

static void test_status_round_trip_empty(void)
{
	status_msg w = { .hostname = "h", .role = "replica" }, g;
	text_buf b = { 0 };
	lx_err err;
	CHECK_EQ_INT(0, status_msg_encode(&w, &b));
	CHECK_STR_CONTAINS(b.data, "\"databases\":[],\"replicas\":[]");
	CHECK_EQ_INT(0, status_msg_decode(b.data, b.len, &g, &err));
	check_status(&w, &g);
	CHECK(g.dbs == NULL && g.replicas == NULL);
	status_msg_free(&g);
	text_buf_free(&b);
}

/* The encoding is stable: decoding and encoding again gives the same bytes. */
static void test_status_reencode_identical(void)
{
	status_msg w = sample_status(), g;
	text_buf a = { 0 }, b = { 0 };
	lx_err err;
	CHECK_EQ_INT(0, status_msg_encode(&w, &a));
	CHECK_EQ_INT(0, status_msg_decode(a.data, a.len, &g, &err));
	CHECK_EQ_INT(0, status_msg_encode(&g, &b));
	CHECK_EQ_U64(a.len, b.len);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	status_msg_free(&g);
	text_buf_free(&a);
	text_buf_free(&b);
}

/* Each malformed document is an error naming the member; never a crash. */
static void test_status_malformed(void)
{
	static const struct { const char *doc, *says; } cases[] = {
		{ "", "not JSON" },
		{ "not json", "not JSON" },
		{ "{\"node_id\":", "not JSON" },
		{ "[1,2]", "not a JSON object" },
		{ "42", "not JSON" },
		{ "{}", "node_id: missing" },
		{ "{\"node_id\":12,\"hostname\":\"h\",\"role\":\"r\",\"databases\":[]}",
		  "node_id: not a string" },
		{ "{\"node_id\":\"xyz\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":[]}",
		  "node_id: not 1 to 16 hex digits" },
		{ "{\"node_id\":\"12345678901234567\",\"hostname\":\"h\",\"role\":\"r\","
		  "\"databases\":[]}", "node_id: not 1 to 16 hex digits" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\"}", "databases: missing" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":{}}",
		  "databases: not an array" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":[7]}",
		  "databases[0]: not an object" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"checksum\":\"0\"}]}",
		  "databases[0].txid: missing" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":-1,\"checksum\":\"0\"}]}",
		  "databases[0].txid: negative" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":1.5,\"checksum\":\"0\"}]}",
		  "databases[0].txid: not an integer" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":\"7\",\"checksum\":\"0\"}]}",
		  "databases[0].txid: not an integer" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":18446744073709551616,"
		  "\"checksum\":\"0\"}]}", "not JSON" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":1e30,\"checksum\":\"0\"}]}",
		  "databases[0].txid: not an integer" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":1,\"checksum\":\"0\","
		  "\"page_count\":4294967296}]}", "databases[0].page_count: larger than 2^32-1" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":\"yes\",\"txid\":1,\"checksum\":\"0\"}]}",
		  "databases[0].exists: not true or false" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":1,\"checksum\":\"0\","
		  "\"journal\":\"delete\"}]}", "databases[0].journal: neither" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":"
		  "[{\"name\":\"a\",\"exists\":true,\"txid\":1,\"checksum\":\"0\","
		  "\"lost\":{\"from\":\"3\"}}]}", "databases[0].lost.from: not an integer" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":[],"
		  "\"replicas\":[{\"node_id\":\"2\",\"addr\":\"x\",\"ready\":true,"
		  "\"databases\":[{\"name\":\"a\",\"txid\":-5,\"checksum\":\"0\"}]}]}",
		  "replicas[0].databases[0].txid: negative" },
		{ "{\"node_id\":\"1\",\"hostname\":\"h\",\"role\":\"r\",\"databases\":[],"
		  "\"replicas\":[{\"node_id\":\"2\",\"addr\":\"x\",\"ready\":true}]}",
		  "replicas[0].databases: missing" },
		{ "{\"node_id\":\"1\",\"node_id\":\"2\",\"hostname\":\"h\",\"role\":\"r\","
		  "\"databases\":[]}", "not JSON" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status_msg m;
		lx_err err;
		lx_err_clear(&err);
		CHECK_EQ_INT(-EPROTO, decode_status(cases[i].doc, &m, &err));
		CHECK_EQ_INT(EPROTO, err.code);
		CHECK_STR_CONTAINS(err.msg, cases[i].says);
		CHECK(m.doc == NULL && m.dbs == NULL && m.replicas == NULL);
		status_msg_free(&m);   /* safe after an error */
	}
}

/* Members an older node does not write are optional; unknown ones ignored. */
static void test_status_tolerant_reader(void)
{
	status_msg m;
	lx_err err;
	const char *doc = "{\"node_id\":\"00000000000000ff\",\"hostname\":\"h\",\"role\":\"replica\","
			  "\"future\":[1,{}],\"databases\":[{\"name\":\"a.db\",\"exists\":true,"
			  "\"txid\":9,\"checksum\":\"00000000000000aa\",\"new\":null}]}";
	CHECK_EQ_INT(0, decode_status(doc, &m, &err));
	CHECK_EQ_U64(0xff, m.node_id);
	CHECK_EQ_U64(1, m.n_dbs);
	CHECK_EQ_U64(9, m.dbs[0].txid);
	CHECK_EQ_U64(0xaa, m.dbs[0].checksum);
	CHECK_EQ_U64(0, m.n_replicas);
	CHECK(m.primary == NULL && m.cluster_id == NULL);
	status_msg_free(&m);
}

/* Not NUL-terminated: the decoder reads only `len` bytes. */
static void test_status_body_not_terminated(void)
{
	status_msg w = sample_status(), g;
	text_buf b = { 0 };
	lx_err err;
	char *copy;
	CHECK_EQ_INT(0, status_msg_encode(&w, &b));
	copy = malloc(b.len);
	CHECK(copy != NULL);
	memcpy(copy, b.data, b.len);
	CHECK_EQ_INT(0, status_msg_decode(copy, b.len, &g, &err));
	status_msg_free(&g);
	CHECK_EQ_INT(-EPROTO, status_msg_decode(copy, b.len / 2, &g, &err));
	CHECK_EQ_INT(-EPROTO, status_msg_decode(NULL, 0, &g, &err));
	free(copy);
	text_buf_free(&b);
}

static void test_handoff_round_trip(void)
{
	handoff_position p[] = {
		{ "a.db", 42, 0x8000000000000001ULL },
		{ "b \"x\".db", UINT64_MAX >> 1, 0 },
		{ "c.db", 0, UINT64_MAX },
	};
	handoff_msg w = { .token = "sess-1\"\\", .positions = p, .n_positions = 3 }, g;
	text_buf b = { 0 };
	lx_err err;
	CHECK_EQ_INT(0, handoff_msg_encode(&w, &b));
	/* TXIDs as JSON integers and checksums as 16 hex digits, as /status. */
	CHECK_STR_CONTAINS(b.data, "\"a.db\":[42,\"8000000000000001\"]");
	CHECK_EQ_INT(0, handoff_msg_decode(b.data, b.len, &g, &err));
	CHECK_SAME_STR(w.token, g.token);
	CHECK_EQ_U64(3, g.n_positions);
	for (size_t i = 0; i < 3 && i < g.n_positions; i++) {
		/* JSON objects keep their order in jansson (insertion order). */
		CHECK_SAME_STR(p[i].name, g.positions[i].name);
		CHECK_EQ_U64(p[i].txid, g.positions[i].txid);
		CHECK_EQ_U64(p[i].checksum, g.positions[i].checksum);
	}
	handoff_msg_free(&g);
	text_buf_free(&b);

	handoff_msg empty = { .token = "" };
	CHECK_EQ_INT(0, handoff_msg_encode(&empty, &b));
	CHECK_EQ_INT(0, strcmp(b.data, "{\"token\":\"\",\"positions\":{}}"));
	CHECK_EQ_INT(0, handoff_msg_decode(b.data, b.len, &g, &err));
	CHECK_EQ_U64(0, g.n_positions);
	handoff_msg_free(&g);
	text_buf_free(&b);
}

/* The answer of a node before the shared messages: TXIDs as decimal
 * strings.  A cluster being upgraded must still hand off. */
static void test_handoff_old_string_form(void)
{
	const char *doc = "{\"token\":\"abc\",\"positions\":{\"a.db\":[\"42\",\"00000000000000ff\"],"
			  "\"big.db\":[\"18446744073709551615\",\"ffffffffffffffff\"]}}";
	handoff_msg m;
	lx_err err;
	CHECK_EQ_INT(0, handoff_msg_decode(doc, strlen(doc), &m, &err));
	CHECK_SAME_STR("abc", m.token);
	CHECK_EQ_U64(2, m.n_positions);
	if (m.n_positions == 2) {
		CHECK_EQ_U64(42, m.positions[0].txid);
		CHECK_EQ_U64(0xff, m.positions[0].checksum);
		CHECK_EQ_U64(UINT64_MAX, m.positions[1].txid);
		CHECK_EQ_U64(UINT64_MAX, m.positions[1].checksum);
	}
	handoff_msg_free(&m);
}

static void test_handoff_malformed(void)
{
	static const struct { const char *doc, *says; } cases[] = {
		{ "", "not JSON" },
		{ "<html>", "not JSON" },
		{ "[]", "not a JSON object" },
		{ "{\"positions\":{}}", "token: missing" },
		{ "{\"token\":5,\"positions\":{}}", "token: not a string" },
		{ "{\"token\":\"t\"}", "positions: missing" },
		{ "{\"token\":\"t\",\"positions\":[]}", "positions: not an object" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":5}}", "not [txid, checksum]" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1]}}", "not [txid, checksum]" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1,\"0\",3]}}", "not [txid, checksum]" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[-1,\"0\"]}}", "(txid): negative" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[\"-1\",\"0\"]}}", "(txid): not an integer" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[\"\",\"0\"]}}", "(txid): not an integer" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[\"12x\",\"0\"]}}", "(txid): not an integer" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[\"18446744073709551616\",\"0\"]}}",
		  "(txid): larger than 2^64-1" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[\"999999999999999999999\",\"0\"]}}",
		  "(txid): not an integer" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[99999999999999999999,\"0\"]}}", "not JSON" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1.0,\"0\"]}}", "(txid): not an integer" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[null,\"0\"]}}", "(txid): not an integer" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1,7]}}", "(checksum): not 1 to 16 hex" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1,\"\"]}}", "(checksum): not 1 to 16 hex" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1,\"0x12\"]}}", "(checksum): not 1 to 16" },
		{ "{\"token\":\"t\",\"positions\":{\"a\":[1,\"11112222333344445\"]}}",
		  "(checksum): not 1 to 16" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		handoff_msg m;
		lx_err err;
		lx_err_clear(&err);
		CHECK_EQ_INT(-EPROTO, handoff_msg_decode(cases[i].doc, strlen(cases[i].doc), &m,
							 &err));
		CHECK_STR_CONTAINS(err.msg, "hand-off answer");
		CHECK_STR_CONTAINS(err.msg, cases[i].says);
		CHECK(m.doc == NULL && m.positions == NULL && m.token == NULL);
		handoff_msg_free(&m);
	}
}

/* Arbitrary bytes: every prefix of valid documents, and bytes flipped, end
 * in 0 or -EPROTO, never in a crash (ASan and valgrind watch). */
static void test_truncations_and_flips(void)
{
	status_msg w = sample_status(), g;
	handoff_position p[] = { { "a.db", 42, 1 } };
	handoff_msg hw = { .token = "t", .positions = p, .n_positions = 1 }, hg;
	text_buf a = { 0 }, b = { 0 };
	lx_err err;
	CHECK_EQ_INT(0, status_msg_encode(&w, &a));
	CHECK_EQ_INT(0, handoff_msg_encode(&hw, &b));
	for (size_t n = 0; n < a.len; n++) {
		int rc = status_msg_decode(a.data, n, &g, &err);
		CHECK(rc == 0 || rc == -EPROTO);
		status_msg_free(&g);
	}
	for (size_t n = 0; n < b.len; n++) {
		int rc = handoff_msg_decode(b.data, n, &hg, &err);
		CHECK(rc == 0 || rc == -EPROTO);
		handoff_msg_free(&hg);
	}
	for (size_t i = 0; i < a.len; i++) {
		char saved = a.data[i];
		a.data[i] = (char)(saved ^ 0x11);
		int rc = status_msg_decode(a.data, a.len, &g, &err);
		CHECK(rc == 0 || rc == -EPROTO);
		status_msg_free(&g);
		a.data[i] = saved;
	}
	text_buf_free(&a);
	text_buf_free(&b);
}

UNIT_TESTS(TEST(test_status_round_trip), TEST(test_status_round_trip_empty),
	   TEST(test_status_reencode_identical), TEST(test_status_malformed),
	   TEST(test_status_tolerant_reader), TEST(test_status_body_not_terminated),
	   TEST(test_handoff_round_trip), TEST(test_handoff_old_string_form),
	   TEST(test_handoff_malformed), TEST(test_truncations_and_flips))
