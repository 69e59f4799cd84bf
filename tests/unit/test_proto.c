/*
 * test_proto.c - the replication stream's wire format (replica/proto.h):
 * round trips, and every kind of damage refused with EBADMSG.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/bytes.h"
#include "replica/proto.h"
#include "tests/unit/unit.h"

static const proto_pos sample[] = {
	{ "a.db", 7, 0x8000000000001234ULL, 2,
	  { { 6, 0x8000000000000006ULL }, { 2, 0x8000000000000002ULL } } },
	{ "another database.sqlite", 1, 0x8123456789abcdefULL, 0, { { 0, 0 } } },
};

static uint8_t *encode_sample(size_t *len)
{
	uint8_t *buf;
	*len = proto_pos_size(sample, 2);
	buf = malloc(*len);
	proto_pos_encode(sample, 2, buf);
	return buf;
}

static void test_positions_round_trip(void)
{
	size_t len, n;
	uint8_t *buf = encode_sample(&len);
	proto_pos *v;
	lx_err err;
	CHECK_EQ_INT(0, proto_pos_decode(buf, len, &v, &n, &err));
	CHECK_EQ_U64(2, n);
	CHECK(strcmp(v[1].name, "another database.sqlite") == 0);
	CHECK_EQ_U64(7, v[0].txid);
	CHECK_EQ_U64(0x8123456789abcdefULL, v[1].checksum);
	CHECK_EQ_U64(2, v[0].n_hist);
	CHECK_EQ_U64(2, v[0].hist[1].txid);
	CHECK_EQ_U64(0x8000000000000006ULL, v[0].hist[0].checksum);
	CHECK_EQ_U64(0, v[1].n_hist);
	free(v);
	free(buf);
}

static void test_empty_positions(void)
{
	uint8_t buf[20];
	proto_pos *v;
	size_t n = 99;
	lx_err err;
	CHECK_EQ_U64(20, proto_pos_size(NULL, 0));
	proto_pos_encode(NULL, 0, buf);
	CHECK_EQ_INT(0, proto_pos_decode(buf, sizeof(buf), &v, &n, &err));
	CHECK_EQ_U64(0, n);
	free(v);
}

/* Every single flipped bit and every truncation is refused. */
static void test_positions_damage_refused(void)
{
	size_t len, n;
	uint8_t *buf = encode_sample(&len);
	proto_pos *v;
	lx_err err;
	for (size_t i = 0; i < len * 8; i++) {
		int in_version = i / 8 >= 4 && i / 8 < 8;   /* says "another version" */
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK_EQ_INT(in_version ? -EPROTONOSUPPORT : -EBADMSG,
			     proto_pos_decode(buf, len, &v, &n, &err));
		CHECK(v == NULL);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (size_t cut = 0; cut < len; cut++)
		CHECK_EQ_INT(-EBADMSG, proto_pos_decode(buf, cut, &v, &n, &err));
	free(buf);
}

/* A replica of another protocol version is told so, with the remedy. */
static void test_positions_other_version(void)
{
	size_t len, n;
	uint8_t *buf = encode_sample(&len);
	proto_pos *v;
	lx_err err;
	buf[7] = 1;                          /* version 1 */
	CHECK_EQ_INT(-EPROTONOSUPPORT, proto_pos_decode(buf, len, &v, &n, &err));
	CHECK_STR_CONTAINS(err.msg, "protocol version 1, this node version 3");
	CHECK_STR_CONTAINS(err.msg, "run one ltxfs version on every node");
	free(buf);
}

/* A well-formed body (good check) for one position that breaks a rule:
 * refused with `why` in the message. */
static void check_refused(const proto_pos *p, const char *why)
{
	size_t len = proto_pos_size(p, 1), n;
	uint8_t *buf = malloc(len);
	proto_pos *v;
	lx_err err;
	proto_pos_encode(p, 1, buf);
	CHECK_EQ_INT(-EBADMSG, proto_pos_decode(buf, len, &v, &n, &err));
	CHECK_STR_CONTAINS(err.msg, why);
	free(buf);
}

static void test_positions_bad_name_refused(void)
{
	proto_pos bad = { "../etc", 1, 0x8000000000000001ULL, 0, { { 0, 0 } } };
	check_refused(&bad, "invalid database name");
}

/* Earlier positions must lie below the position, newest first, and fit. */
static void test_positions_bad_history_refused(void)
{
	proto_pos bad = { "a.db", 5, 0x8000000000000005ULL, 2,
			  { { 3, 0x8000000000000003ULL }, { 4, 0x8000000000000004ULL } } };
	size_t len = proto_pos_size(&bad, 1), n;
	uint8_t *buf = malloc(len);
	proto_pos *v;
	lx_err err;
	check_refused(&bad, "out of order");
	bad.hist[1].txid = 5;   /* not below the position either */
	bad.hist[0].txid = 6;
	check_refused(&bad, "out of order");
	/* A count above the limit, with the bytes present and a good check. */
	bad.hist[0].txid = 4;
	bad.hist[1].txid = 3;
	proto_pos_encode(&bad, 1, buf);
	lx_put_be16(buf + 12 + 2 + 4 + 16, PROTO_HIST_MAX + 1);
	lx_put_be64(buf + len - 8, XXH3_64bits(buf, len - 8));
	CHECK_EQ_INT(-EBADMSG, proto_pos_decode(buf, len, &v, &n, &err));
	CHECK_STR_CONTAINS(err.msg, "earlier positions");
	free(buf);
}

/* A count of databases the body cannot hold is refused before any
 * allocation for them. */
static void test_positions_count_beyond_body_refused(void)
{
	uint8_t buf[20];
	proto_pos *v;
	size_t n;
	lx_err err;
	proto_pos_encode(NULL, 0, buf);
	lx_put_be32(buf + 8, 1000);
	lx_put_be64(buf + 12, XXH3_64bits(buf, 12));
	CHECK_EQ_INT(-EBADMSG, proto_pos_decode(buf, sizeof(buf), &v, &n, &err));
	CHECK_STR_CONTAINS(err.msg, "1000 databases");
}

static void test_points_round_trip_and_damage(void)
{
	proto_point v[3] = { { 4, 0x8000000000000004ULL }, { 5, 0x8000000000000005ULL },
			     { 9, 0x8000000000000009ULL } };
	uint8_t buf[3 * 16 + 8];
	proto_point *got;
	size_t n;
	lx_err err;
	CHECK_EQ_U64(sizeof(buf), proto_points_size(3));
	proto_points_encode(v, 3, buf);
	CHECK_EQ_INT(0, proto_points_decode(buf, sizeof(buf), &got, &n, &err));
	CHECK_EQ_U64(3, n);
	CHECK_EQ_U64(9, got[2].txid);
	CHECK_EQ_U64(0x8000000000000005ULL, got[1].checksum);
	free(got);
	for (size_t i = 0; i < sizeof(buf) * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK_EQ_INT(-EBADMSG, proto_points_decode(buf, sizeof(buf), &got, &n, &err));
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (size_t cut = 0; cut < sizeof(buf); cut++)
		CHECK_EQ_INT(-EBADMSG, proto_points_decode(buf, cut, &got, &n, &err));
	v[2].txid = 5;          /* not ascending */
	proto_points_encode(v, 3, buf);
	CHECK_EQ_INT(-EBADMSG, proto_points_decode(buf, sizeof(buf), &got, &n, &err));
	CHECK_STR_CONTAINS(err.msg, "out of order");
}

static void test_frame_round_trip(void)
{
	proto_frame f = { FRAME_LTX, 4, 12345, 0 }, g;
	uint8_t hdr[PROTO_FRAME_HEADER_SIZE];
	lx_err err;
	proto_frame_encode(&f, "a.db", hdr);
	CHECK_EQ_INT(0, proto_frame_decode(hdr, &g, &err));
	CHECK_EQ_U64(FRAME_LTX, g.type);
	CHECK_EQ_U64(12345, g.payload_len);
	CHECK_EQ_INT(0, proto_frame_check(hdr, "a.db", &err));
	/* The same header under another name fails its check. */
	CHECK_EQ_INT(-EBADMSG, proto_frame_check(hdr, "b.db", &err));
}

/* Any flipped header bit is caught by decode or by the check. */
static void test_frame_damage_refused(void)
{
	proto_frame f = { FRAME_HEARTBEAT, 0, 0, 1795451425768ULL }, g;
	uint8_t hdr[PROTO_FRAME_HEADER_SIZE];
	lx_err err;
	proto_frame_encode(&f, NULL, hdr);
	for (size_t i = 0; i < sizeof(hdr) * 8; i++) {
		int bad;
		hdr[i / 8] ^= (uint8_t)(1u << (i % 8));
		bad = proto_frame_decode(hdr, &g, &err) < 0 ||
		      proto_frame_check(hdr, "", &err) < 0;
		CHECK(bad);
		hdr[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
}

static void test_frame_rules(void)
{
	static const proto_frame bad[] = {
		{ 0, 0, 0, 0 },                    /* unknown type */
		{ 9, 0, 0, 0 },
		{ FRAME_LTX, 4, 0, 0 },             /* LTX without payload */
		{ FRAME_LTX, 0, 100, 0 },           /* LTX without a name */
		{ FRAME_HEARTBEAT, 0, 5, 0 },       /* payload on a heartbeat */
		{ FRAME_DELETED, 0, 0, 0 },         /* deleted: which database? */
		{ FRAME_DIVERGED, 0, 0, 3 },        /* diverged: which database? */
		{ FRAME_DIVERGED, 4, 16 * PROTO_POINTS_MAX + 9, 3 },  /* too many positions */
		{ 6, 4, 0, 0 },                     /* unknown type */
		{ FRAME_LTX, 300, 100, 0 },         /* name too long */
	};
	uint8_t hdr[PROTO_FRAME_HEADER_SIZE];
	proto_frame g;
	lx_err err;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lx_put_be32(hdr, bad[i].type);
		lx_put_be32(hdr + 4, bad[i].name_len);
		lx_put_be64(hdr + 8, bad[i].payload_len);
		lx_put_be64(hdr + 16, bad[i].arg);
		CHECK_EQ_INT(-EBADMSG, proto_frame_decode(hdr, &g, &err));
	}
}

UNIT_TESTS(TEST(test_positions_round_trip), TEST(test_empty_positions),
	   TEST(test_positions_damage_refused), TEST(test_positions_other_version),
	   TEST(test_positions_bad_name_refused),
	   TEST(test_positions_bad_history_refused),
	   TEST(test_positions_count_beyond_body_refused),
	   TEST(test_points_round_trip_and_damage),
	   TEST(test_frame_round_trip), TEST(test_frame_damage_refused), TEST(test_frame_rules))
