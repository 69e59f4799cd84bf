/*
 * test_s3.c - the pure parts of the S3 client (net/s3_internal.h): key and
 * query encoding as SigV4 canonicalizes them, URLs in both styles, the XML
 * documents S3 answers with (from literal strings, as S3 writes them), the
 * request bodies, and which failures are retried.  The client against a
 * real server: tests/integration/test_s3_client.py.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/s3.h"
#include "net/s3_internal.h"
#include "tests/unit/unit.h"

#define CHECK_STR(want, got) \
	do { const char *w_ = (want), *g_ = (got); \
	     if (g_ == NULL || strcmp(w_, g_) != 0) \
		unit_fail(__FILE__, __LINE__, "%s: want \"%s\", got \"%s\"", #got, w_, \
			  g_ ? g_ : "(null)"); } while (0)

/* ---- encodings ------------------------------------------------------------- */

static void check_encode(const char *in, int keep_slash, const char *want)
{
	char *got = s3_uri_encode(in, keep_slash);
	CHECK_STR(want, got);
	free(got);
}

static void test_uri_encode_keeps_unreserved_and_slashes_in_paths(void)
{
	check_encode("db/0001-abc_DEF.~ltx", 1, "db/0001-abc_DEF.~ltx");
	check_encode("a b+c=d&e", 1, "a%20b%2Bc%3Dd%26e");
	check_encode("a/b", 0, "a%2Fb");
	/* UTF-8 bytes, upper-case hex: "é" and "€" */
	check_encode("caf\xc3\xa9/\xe2\x82\xac", 1, "caf%C3%A9/%E2%82%AC");
	check_encode("!*'();:@$,?#[]%", 1, "%21%2A%27%28%29%3B%3A%40%24%2C%3F%23%5B%5D%25");
	check_encode("", 1, "");
}

static void test_url_decode_of_listings(void)
{
	char *out;
	CHECK_EQ_INT(0, s3_url_decode("a+b%2Bc%2Fd%C3%A9", &out));
	CHECK_STR("a b+c/d\xc3\xa9", out);
	free(out);
	CHECK_EQ_INT(-EINVAL, s3_url_decode("bad%2", &out));
	CHECK(out == NULL);
	CHECK_EQ_INT(-EINVAL, s3_url_decode("bad%zz", &out));
	CHECK_EQ_INT(-EINVAL, s3_url_decode("nul%00", &out));
}

static void test_query_is_canonical_sorted_and_encoded(void)
{
	s3_param p[] = {
		{ "prefix", "db/a b+=" }, { "list-type", "2" }, { "continuation-token", "1/x+y=" },
		{ "delete", "" }, { "max-keys", "1000" },
	};
	char *q = s3_query(p, 5);
	CHECK_STR("continuation-token=1%2Fx%2By%3D&delete=&list-type=2&max-keys=1000&"
		  "prefix=db%2Fa%20b%2B%3D", q);
	free(q);
	q = s3_query(NULL, 0);
	CHECK_STR("", q);
	free(q);
	/* the same name twice: by value */
	s3_param twice[] = { { "a", "2" }, { "a", "1" } };
	q = s3_query(twice, 2);
	CHECK_STR("a=1&a=2", q);
	free(q);
}

static void test_urls_in_both_styles(void)
{
	s3_param up[] = { { "uploadId", "x y" }, { "partNumber", "3" } };
	char *u;
	CHECK_EQ_INT(0, s3_make_url("http://127.0.0.1:9000", "bk", 1, "db/a b", up, 2, &u, NULL));
	CHECK_STR("http://127.0.0.1:9000/bk/db/a%20b?partNumber=3&uploadId=x%20y", u);
	free(u);
	CHECK_EQ_INT(0, s3_make_url("http://127.0.0.1:9000", "bk", 1, NULL, NULL, 0, &u, NULL));
	CHECK_STR("http://127.0.0.1:9000/bk", u);
	free(u);
	CHECK_EQ_INT(0, s3_make_url("https://s3.eu-west-1.amazonaws.com", "bk", 0, "k", NULL, 0,
				    &u, NULL));
	CHECK_STR("https://bk.s3.eu-west-1.amazonaws.com/k", u);
	free(u);
	CHECK_EQ_INT(0, s3_make_url("https://s3.example:8443/base", "bk", 0, NULL, up, 1, &u, NULL));
	CHECK_STR("https://bk.s3.example:8443/base/?uploadId=x%20y", u);
	free(u);
	CHECK_EQ_INT(-EINVAL, s3_make_url("nohost", "bk", 1, "k", NULL, 0, &u, NULL));
}

static void test_keys_are_1_to_1024_bytes(void)
{
	char big[S3_KEY_MAX + 2];
	lx_err err;
	memset(big, 'k', sizeof(big));
	big[S3_KEY_MAX] = '\0';
	CHECK_EQ_INT(0, s3_key_check(big, NULL));
	big[S3_KEY_MAX] = 'k';
	big[S3_KEY_MAX + 1] = '\0';
	CHECK_EQ_INT(-EINVAL, s3_key_check(big, &err));
	CHECK_STR_CONTAINS(err.msg, "1 to 1024 bytes");
	CHECK_EQ_INT(-EINVAL, s3_key_check("", NULL));
	CHECK_EQ_INT(-EINVAL, s3_key_check(NULL, NULL));
}

static void test_times_and_etags(void)
{
	int64_t ms;
	CHECK_EQ_INT(0, s3_parse_time_ms("2009-10-12T17:50:30.000Z", &ms));
	CHECK_EQ_INT(1255369830000LL, ms);
	CHECK_EQ_INT(0, s3_parse_time_ms("2009-10-12T17:50:30.5Z", &ms));
	CHECK_EQ_INT(1255369830500LL, ms);
	CHECK_EQ_INT(0, s3_parse_time_ms("2009-10-12T17:50:30Z", &ms));
	CHECK_EQ_INT(1255369830000LL, ms);
	CHECK_EQ_INT(-EINVAL, s3_parse_time_ms("2009-10-12 17:50:30Z", &ms));
	CHECK_EQ_INT(-EINVAL, s3_parse_time_ms("2009-10-12T17:50:30.000", &ms));

	CHECK(s3_etag_is_md5("\"9b2cf535f27731c974343645a3985328\""));
	CHECK(s3_etag_is_md5("9B2CF535F27731C974343645A3985328"));
	CHECK(!s3_etag_is_md5("\"9b2cf535f27731c974343645a3985328-3\""));
	CHECK(!s3_etag_is_md5("\"abc\""));
	CHECK(s3_etag_matches("\"9B2CF535F27731C974343645A3985328\"",
			      "9b2cf535f27731c974343645a3985328"));
	CHECK(!s3_etag_matches("\"9b2cf535f27731c974343645a3985329\"",
			       "9b2cf535f27731c974343645a3985328"));
}

/* ---- XML answers ----------------------------------------------------------------- */

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

static void test_error_document(void)
{
	static const char doc[] = XML_HEAD
		"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we "
		"calculated does not match the signature you provided.</Message>"
		"<RequestId>4442587FB7D0A2F9</RequestId></Error>";
	char code[64], msg[40];
	CHECK_EQ_INT(0, s3_xml_error(doc, strlen(doc), code, sizeof(code), msg, sizeof(msg)));
	CHECK_STR("SignatureDoesNotMatch", code);
	CHECK_STR("The request signature we calculated doe", msg); /* cut to fit */
	CHECK_EQ_INT(-EINVAL, s3_xml_error("<html>503</html>", 16, code, sizeof(code), msg,
					   sizeof(msg)));
	CHECK_EQ_INT(-EINVAL, s3_xml_error("not xml", 7, code, sizeof(code), msg, sizeof(msg)));
	CHECK_EQ_INT(-EINVAL, s3_xml_error("", 0, code, sizeof(code), msg, sizeof(msg)));
}

static void test_list_pages(void)
{
	static const char page1[] = XML_HEAD
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>bk</Name><Prefix>db/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
		"<IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
		"<Contents><Key>db/a</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
		"<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
		"<StorageClass>STANDARD</StorageClass></Contents>"
		"<Contents><Key>db/b &amp; c</Key><LastModified>2009-10-12T17:50:31.250Z</LastModified>"
		"<Size>0</Size></Contents></ListBucketResult>";
	static const char page2[] = XML_HEAD
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>bk</Name><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
		"<Contents><Key>db/caf%C3%A9+x%2By</Key><LastModified>2009-10-12T17:50:32.000Z"
		"</LastModified><Size>18446744073709551615</Size></Contents></ListBucketResult>";
	static const char empty[] = XML_HEAD
		"<ListBucketResult><Name>bk</Name><KeyCount>0</KeyCount>"
		"<IsTruncated>false</IsTruncated></ListBucketResult>";
	s3_list_page pg;
	lx_err err;
	memset(&pg, 0, sizeof(pg));
	CHECK_EQ_INT(0, s3_xml_list(page1, strlen(page1), &pg, &err));
	CHECK_EQ_INT(1, pg.truncated);
	CHECK_STR("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", pg.next_token);
	free(pg.next_token);
	CHECK_EQ_INT(2, pg.n);
	CHECK_STR("db/a", pg.objs[0].key);
	CHECK_EQ_U64(434234, pg.objs[0].size);
	CHECK_EQ_INT(1255369830000LL, pg.objs[0].mtime_ms);
	CHECK_STR("db/b & c", pg.objs[1].key);
	CHECK_EQ_INT(1255369831250LL, pg.objs[1].mtime_ms);
	CHECK_EQ_INT(0, s3_xml_list(page2, strlen(page2), &pg, &err));
	CHECK_EQ_INT(0, pg.truncated);
	CHECK(pg.next_token == NULL);
	CHECK_EQ_INT(3, pg.n);
	CHECK_STR("db/caf\xc3\xa9 x+y", pg.objs[2].key);       /* decoded: EncodingType url */
	CHECK_EQ_U64(UINT64_MAX, pg.objs[2].size);
	CHECK_EQ_INT(0, s3_xml_list(empty, strlen(empty), &pg, &err));
	CHECK_EQ_INT(3, pg.n);
	s3_objects_free(pg.objs, pg.n);
}

static void test_list_refuses_what_is_not_a_listing(void)
{
	static const char bad_size[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>";
	static const char no_key[] = "<ListBucketResult><Contents><Size>1</Size></Contents>"
		"</ListBucketResult>";
	static const char err_doc[] = "<Error><Code>NoSuchBucket</Code></Error>";
	s3_list_page pg;
	lx_err err;
	memset(&pg, 0, sizeof(pg));
	CHECK_EQ_INT(-EPROTO, s3_xml_list(bad_size, strlen(bad_size), &pg, &err));
	CHECK_STR_CONTAINS(err.msg, "bad Size \"-1\"");
	CHECK_EQ_INT(-EPROTO, s3_xml_list(no_key, strlen(no_key), &pg, &err));
	CHECK_EQ_INT(-EPROTO, s3_xml_list(err_doc, strlen(err_doc), &pg, &err));
	CHECK_STR_CONTAINS(err.msg, "not a ListBucketResult");
	CHECK_EQ_INT(-EPROTO, s3_xml_list("<trunc", 6, &pg, &err));
	CHECK_EQ_INT(0, pg.n);
	s3_objects_free(pg.objs, pg.n);
}

static void test_delete_result_reports_failures_only(void)
{
	static const char doc[] = XML_HEAD
		"<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Deleted><Key>db/a</Key></Deleted>"
		"<Error><Key>db/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
		"<Deleted><Key>db/c</Key></Deleted>"
		"<Error><Key>db/d</Key><Code>InternalError</Code><Message>try again</Message></Error>"
		"</DeleteResult>";
	static const char quiet[] = XML_HEAD "<DeleteResult/>";
	s3_delete_failure *f;
	size_t n;
	CHECK_EQ_INT(0, s3_xml_delete_result(doc, strlen(doc), &f, &n, NULL));
	CHECK_EQ_INT(2, n);
	CHECK_STR("db/b", f[0].key);
	CHECK_STR("AccessDenied", f[0].code);
	CHECK_STR("Access Denied", f[0].message);
	CHECK_STR("db/d", f[1].key);
	CHECK_STR("InternalError", f[1].code);
	s3_delete_failures_free(f, n);
	CHECK_EQ_INT(0, s3_xml_delete_result(quiet, strlen(quiet), &f, &n, NULL));
	CHECK_EQ_INT(0, n);
	s3_delete_failures_free(f, n);
	CHECK_EQ_INT(-EPROTO, s3_xml_delete_result("<Error/>", 8, &f, &n, NULL));
}

static void test_multipart_upload_id(void)
{
	static const char doc[] = XML_HEAD
		"<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Bucket>bk</Bucket><Key>db/big</Key>"
		"<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
		"</InitiateMultipartUploadResult>";
	static const char none[] = "<InitiateMultipartUploadResult><UploadId></UploadId>"
		"</InitiateMultipartUploadResult>";
	char *id;
	lx_err err;
	CHECK_EQ_INT(0, s3_xml_upload_id(doc, strlen(doc), &id, NULL));
	CHECK_STR("VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA", id);
	free(id);
	CHECK_EQ_INT(-EPROTO, s3_xml_upload_id(none, strlen(none), &id, &err));
	CHECK(id == NULL);
	CHECK_STR_CONTAINS(err.msg, "no UploadId");
}

/* ---- request bodies ---------------------------------------------------------------- */

static void test_delete_body_escapes_keys(void)
{
	const char *keys[] = { "db/a&b<c>", "it's \"q\"", "tab\there\r\n" };
	const char *bad[] = { "bell\a" };
	char *body;
	size_t len;
	lx_err err;
	CHECK_EQ_INT(0, s3_xml_delete_body(keys, 3, &body, &len, NULL));
	CHECK_EQ_U64(strlen(body), len);
	CHECK_STR_CONTAINS(body, "<Quiet>true</Quiet>");
	CHECK_STR_CONTAINS(body, "<Object><Key>db/a&amp;b&lt;c&gt;</Key></Object>");
	CHECK_STR_CONTAINS(body, "<Key>it&apos;s &quot;q&quot;</Key>");
	CHECK_STR_CONTAINS(body, "<Key>tab&#9;here&#13;&#10;</Key>");
	free(body);
	CHECK_EQ_INT(-EINVAL, s3_xml_delete_body(bad, 1, &body, &len, &err));
	CHECK_STR_CONTAINS(err.msg, "control character");
}

static void test_complete_body_lists_parts_in_order(void)
{
	char e1[] = "\"a54357aff0632cce46d942af68356b38\"", e2[] = "\"0c78aef83f66abc1fa1e8477f296d394\"";
	char *etags[] = { e1, e2 };
	char *body;
	size_t len;
	CHECK_EQ_INT(0, s3_xml_complete_body(etags, 2, &body, &len, NULL));
	CHECK_STR_CONTAINS(body, "<Part><PartNumber>1</PartNumber><ETag>&quot;a54357aff0632cce46d942af"
			   "68356b38&quot;</ETag></Part><Part><PartNumber>2</PartNumber>");
	free(body);
}

/* ---- failures ---------------------------------------------------------------------- */

static void test_which_failures_are_retried(void)
{
	/* no answer: refused, reset, timed out */
	CHECK(s3_retryable(-EAGAIN, 0, NULL));
	/* not: cancelled, too long, out of memory, a file that cannot be read */
	CHECK(!s3_retryable(-EINTR, 0, NULL));
	CHECK(!s3_retryable(-EMSGSIZE, 0, NULL));
	CHECK(!s3_retryable(-ENOMEM, 0, NULL));
	CHECK(!s3_retryable(-EIO, 0, NULL));
	/* overload and server faults */
	CHECK(s3_retryable(0, 503, "SlowDown"));
	CHECK(s3_retryable(0, 500, "InternalError"));
	CHECK(s3_retryable(0, 502, ""));
	CHECK(s3_retryable(0, 504, NULL));
	CHECK(s3_retryable(0, 429, NULL));
	CHECK(s3_retryable(0, 400, "RequestTimeout"));
	/* a body corrupted on the way */
	CHECK(s3_retryable(0, 400, "BadDigest"));
	CHECK(s3_retryable(0, 400, "XAmzContentSHA256Mismatch"));
	/* a 200 whose body is an error (CompleteMultipartUpload) */
	CHECK(s3_retryable(0, 200, "InternalError"));
	CHECK(!s3_retryable(0, 200, "InvalidPart"));
	/* refusals that stay */
	CHECK(!s3_retryable(0, 403, "SignatureDoesNotMatch"));
	CHECK(!s3_retryable(0, 403, "RequestTimeTooSkewed"));
	CHECK(!s3_retryable(0, 404, "NoSuchKey"));
	CHECK(!s3_retryable(0, 400, "InvalidArgument"));
	CHECK(!s3_retryable(0, 501, "NotImplemented"));
	CHECK(!s3_retryable(0, 405, "MethodNotAllowed"));
}

static void test_refusals_as_errno(void)
{
	CHECK_EQ_INT(ENOENT, s3_error_errno(404, "NoSuchKey"));
	CHECK_EQ_INT(ENOENT, s3_error_errno(404, ""));
	CHECK_EQ_INT(ENOENT, s3_error_errno(404, "NoSuchBucket"));
	CHECK_EQ_INT(EACCES, s3_error_errno(403, "SignatureDoesNotMatch"));
	CHECK_EQ_INT(EACCES, s3_error_errno(403, "InvalidAccessKeyId"));
	CHECK_EQ_INT(EACCES, s3_error_errno(0, "AccessDenied"));
	CHECK_EQ_INT(ERANGE, s3_error_errno(416, "InvalidRange"));
	CHECK_EQ_INT(EIO, s3_error_errno(400, "BadDigest"));
	CHECK_EQ_INT(EAGAIN, s3_error_errno(503, "SlowDown"));
	CHECK_EQ_INT(EAGAIN, s3_error_errno(500, NULL));
	CHECK_EQ_INT(EPROTO, s3_error_errno(400, "InvalidArgument"));
	CHECK_EQ_INT(EPROTO, s3_error_errno(501, "NotImplemented"));
}

/* ---- options ----------------------------------------------------------------------- */

static void test_open_refuses_bad_options(void)
{
	s3_options o = { .bucket = "bk", .access_key_id = "K", .secret_access_key = "S" };
	s3_client *c;
	lx_err err;
	CHECK_EQ_INT(0, s3_open(&c, &o, &err));
	s3_close(c);
	o.part_size = S3_PART_SIZE_MIN - 1;
	CHECK_EQ_INT(-EINVAL, s3_open(&c, &o, &err));
	CHECK_STR_CONTAINS(err.msg, "below S3's minimum");
	CHECK(c == NULL);
	o.part_size = 0;
	o.list_page_size = 1001;
	CHECK_EQ_INT(-EINVAL, s3_open(&c, &o, &err));
	o.list_page_size = 0;
	o.endpoint = "ftp://x";
	CHECK_EQ_INT(-EINVAL, s3_open(&c, &o, &err));
	o.endpoint = NULL;
	o.bucket = "a/b";
	CHECK_EQ_INT(-EINVAL, s3_open(&c, &o, &err));
}

UNIT_TESTS(TEST(test_uri_encode_keeps_unreserved_and_slashes_in_paths),
	   TEST(test_url_decode_of_listings),
	   TEST(test_query_is_canonical_sorted_and_encoded),
	   TEST(test_urls_in_both_styles),
	   TEST(test_keys_are_1_to_1024_bytes),
	   TEST(test_times_and_etags),
	   TEST(test_error_document),
	   TEST(test_list_pages),
	   TEST(test_list_refuses_what_is_not_a_listing),
	   TEST(test_delete_result_reports_failures_only),
	   TEST(test_multipart_upload_id),
	   TEST(test_delete_body_escapes_keys),
	   TEST(test_complete_body_lists_parts_in_order),
	   TEST(test_which_failures_are_retried),
	   TEST(test_refusals_as_errno),
	   TEST(test_open_refuses_bad_options))
