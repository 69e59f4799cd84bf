/*
 * test_status.c - the /status JSON and /metrics text renderings.
 */
#include "net/messages.h"
#include "replica/status.h"
#include "tests/unit/unit.h"

#include <stdlib.h>

static const node_status node = {
	.node_id = 0xabc, .hostname = "host-1", .role = "primary",
	.primary = "host-1", .lease_type = "static", .started_ms = 1000, .now_ms = 3500,
};

static status_db sample(const char *name, uint64_t txid, int failed)
{
	status_db d;
	memset(&d, 0, sizeof(d));
	d.name = name;
	d.st.txid = txid;
	d.st.checksum = 0x8000000000000123ULL;
	d.st.page_size = 4096;
	d.st.n_pages = 3;
	d.st.exists = 1;
	d.st.wal_mode = 1;
	d.st.log_transactions = txid;
	d.st.log_bytes = 12345;
	d.st.failed = failed;
	if (failed)
		snprintf(d.st.failure, sizeof(d.st.failure), "checksum \"x\" mismatch\n");
	return d;
}

static void test_json_fields(void)
{
	status_db dbs[1] = { sample("a.db", 7, 0) };
	text_buf b = { 0 };
	CHECK_EQ_INT(0, status_render_json(&b, &node, dbs, 1, NULL, 0));
	CHECK(b.data != NULL);
	CHECK_STR_CONTAINS(b.data, "\"node_id\":\"0000000000000abc\"");
	CHECK_STR_CONTAINS(b.data, "\"role\":\"primary\"");
	CHECK_STR_CONTAINS(b.data, "\"uptime_ms\":2500");
	CHECK_STR_CONTAINS(b.data, "{\"name\":\"a.db\",\"exists\":true,\"txid\":7,"
			   "\"checksum\":\"8000000000000123\",\"page_size\":4096,\"page_count\":3,"
			   "\"journal\":\"wal\"");
	CHECK(strstr(b.data, "failure") == NULL);
	CHECK(b.data[b.len - 1] == '\n');
	text_buf_free(&b);
}

static void test_json_escapes_names_and_failures(void)
{
	status_db dbs[2] = { sample("we\"ird\\na\tme.db", 1, 0), sample("b.db", 2, 1) };
	text_buf b = { 0 };
	CHECK_EQ_INT(0, status_render_json(&b, &node, dbs, 2, NULL, 0));
	CHECK_STR_CONTAINS(b.data, "\"name\":\"we\\\"ird\\\\na\\u0009me.db\"");
	CHECK_STR_CONTAINS(b.data, "\"failed\":true,\"failure\":\"checksum \\\"x\\\" mismatch\\u000a\"");
	CHECK_STR_CONTAINS(b.data, "},{");
	text_buf_free(&b);
}

static void test_json_no_databases(void)
{
	text_buf b = { 0 };
	CHECK_EQ_INT(0, status_render_json(&b, &node, NULL, 0, NULL, 0));
	CHECK_STR_CONTAINS(b.data, "\"databases\":[],\"replicas\":[]}");
	text_buf_free(&b);
}

/* With backup.url, each database shows its backup position in /status
 * (which `ltxfs status` decodes) and /metrics. */
static void test_backup_position(void)
{
	text_buf b = { 0 }, m = { 0 };
	status_msg msg;
	lx_err err;
	node_status nb = node;
	status_db db = { .name = "a.db", .st = { .txid = 12, .checksum = 0x8000000000000001ULL },
			 .has_backup = 1,
			 .backup = { .shipping = 1, .txid = 11, .shipped_ms = 5, .lag_ms = 1500,
				     .snapshot_ms = 4, .error = "PUT x: HTTP 503" } };
	nb.backup_on = 1;
	nb.backup.bytes_uploaded = 4096;
	CHECK_EQ_INT(0, status_render_json(&b, &nb, &db, 1, NULL, 0));
	CHECK_STR_CONTAINS(b.data, "\"backup\":{\"shipping\":true,\"txid\":11,\"shipped_ms\":5,"
			   "\"lag_ms\":1500,\"snapshot_ms\":4,\"error\":\"PUT x: HTTP 503\"}");
	CHECK_EQ_INT(0, status_msg_decode(b.data, b.len, &msg, &err));
	CHECK(msg.n_dbs == 1 && msg.dbs[0].has_backup);
	CHECK_EQ_U64(11, msg.dbs[0].backup.txid);
	CHECK_EQ_U64(1500, (uint64_t)msg.dbs[0].backup.lag_ms);
	CHECK(strcmp(msg.dbs[0].backup.error, "PUT x: HTTP 503") == 0);
	status_msg_free(&msg);
	CHECK_EQ_INT(0, status_render_metrics(&m, &nb, &db, 1, NULL, 0));
	CHECK_STR_CONTAINS(m.data, "ltxfs_backup_txid{db=\"a.db\"} 11\n");
	CHECK_STR_CONTAINS(m.data, "ltxfs_backup_lag_seconds{db=\"a.db\"} 1.500\n");
	CHECK_STR_CONTAINS(m.data, "ltxfs_backup_bytes_uploaded_total 4096\n");
	text_buf_free(&b);
	text_buf_free(&m);
	/* without backup.url: no backup member, no backup metric */
	db.has_backup = 0;
	CHECK_EQ_INT(0, status_render_json(&b, &node, &db, 1, NULL, 0));
	CHECK(strstr(b.data, "backup") == NULL);
	CHECK_EQ_INT(0, status_render_metrics(&m, &node, &db, 1, NULL, 0));
	CHECK(strstr(m.data, "ltxfs_backup") == NULL);
	text_buf_free(&b);
	text_buf_free(&m);
}

/* A primary shows each replica's position and how far behind it is. */
static void test_json_replicas(void)
{
	text_buf b = { 0 };
	status_db db = { .name = "a.db", .st = { .txid = 10, .checksum = 0x8000000000000001ULL } };
	stream_replica_db rdb = { "a.db", 7, 0x8000000000000002ULL };
	stream_replica r = { 0x42, "10.0.0.2", 1000, 1, &rdb, 1 };
	CHECK_EQ_INT(0, status_render_json(&b, &node, &db, 1, &r, 1));
	CHECK_STR_CONTAINS(b.data, "\"replicas\":[{\"node_id\":\"0000000000000042\","
			   "\"addr\":\"10.0.0.2\",\"connected_ms\":1000,\"ready\":true,"
			   "\"databases\":[{\"name\":\"a.db\",\"txid\":7,"
			   "\"checksum\":\"8000000000000002\",\"behind\":3}]}]");
	text_buf_free(&b);
	CHECK_EQ_INT(0, status_render_metrics(&b, &node, &db, 1, &r, 1));
	CHECK_STR_CONTAINS(b.data, "\nltxfs_replicas 1\n");
	text_buf_free(&b);
}

static void test_metrics(void)
{
	status_db dbs[2] = { sample("a.db", 7, 0), sample("q\"\\\n.db", 9, 1) };
	text_buf b = { 0 };
	CHECK_EQ_INT(0, status_render_metrics(&b, &node, dbs, 2, NULL, 0));
	CHECK_STR_CONTAINS(b.data, "ltxfs_info{node_id=\"0000000000000abc\",hostname=\"host-1\",role=\"primary\"} 1\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_primary 1\n");
	CHECK_STR_CONTAINS(b.data, "# TYPE ltxfs_db_txid gauge\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_db_txid{db=\"a.db\"} 7\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_db_txid{db=\"q\\\"\\\\\\n.db\"} 9\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_db_size_bytes{db=\"a.db\"} 12288\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_db_failed{db=\"a.db\"} 0\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_log_bytes{db=\"a.db\"} 12345\n");
	CHECK_STR_CONTAINS(b.data, "ltxfs_databases 2\n");
	text_buf_free(&b);
}

static void test_large_output_grows(void)
{
	enum { N = 2000 };
	status_db *dbs = calloc(N, sizeof(*dbs));
	char (*names)[32] = calloc(N, 32);
	text_buf b = { 0 };
	for (int i = 0; i < N; i++) {
		snprintf(names[i], 32, "db-%04d", i);
		dbs[i] = sample(names[i], (uint64_t)i, i % 7 == 0);
	}
	CHECK_EQ_INT(0, status_render_json(&b, &node, dbs, N, NULL, 0));
	CHECK_STR_CONTAINS(b.data, "\"name\":\"db-1999\"");
	CHECK(strlen(b.data) == b.len);
	text_buf_free(&b);
	CHECK_EQ_INT(0, status_render_metrics(&b, &node, dbs, N, NULL, 0));
	CHECK_STR_CONTAINS(b.data, "ltxfs_db_failed{db=\"db-1996\"} 0\n");
	CHECK(strlen(b.data) == b.len);
	text_buf_free(&b);
	free(names);
	free(dbs);
}

UNIT_TESTS(
	TEST(test_backup_position),TEST(test_json_fields), TEST(test_json_escapes_names_and_failures),
	   TEST(test_json_no_databases), TEST(test_json_replicas), TEST(test_metrics),
	   TEST(test_large_output_grows))
