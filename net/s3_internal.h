/*
 * s3_internal.h - the pure parts of net/s3.c, for it and its unit tests
 * (tests/unit/test_s3.c): encodings, URLs, the XML documents S3 sends and
 * takes, and which failures are worth another attempt.  Nothing here does
 * I/O.  Strings returned are malloc'd (NULL: out of memory).
 */
#ifndef LTXFS_NET_S3_INTERNAL_H
#define LTXFS_NET_S3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "net/s3.h"

/* ---- encodings ------------------------------------------------------------ */

/* Percent-encode every byte but RFC 3986's unreserved ones (A-Z a-z 0-9
 * - _ . ~), and '/' too unless keep_slash: S3's (and SigV4's) URI encoding,
 * upper-case hex.  A key in a path keeps its slashes; a query value does not. */
char *s3_uri_encode(const char *s, int keep_slash);

/* Decode a value of a listing asked with encoding-type=url: %XX, and '+'
 * as a space.  -EINVAL for a malformed escape or a NUL byte. */
int s3_url_decode(const char *s, char **out);

/* One query parameter; the value may be "" (sent as "name="). */
typedef struct s3_param {
	const char *name, *value;
} s3_param;

/* The canonical query string of SigV4: names and values encoded, sorted by
 * name (then value), joined "a=1&b=2".  libcurl signs the query as written,
 * so it must be written this way.  "" for none. */
char *s3_query(const s3_param *p, size_t n);

/* The URL of `key` (NULL: the bucket itself) with query `q`.  `endpoint` has
 * a scheme and no trailing '/'.  Path style: ENDPOINT/BUCKET[/KEY]; else
 * SCHEME://BUCKET.HOST[/PATH]/[KEY]. */
int s3_make_url(const char *endpoint, const char *bucket, int path_style, const char *key,
		const s3_param *q, size_t nq, char **out, lx_err *err);

/* A key S3 takes: 1 to S3_KEY_MAX bytes. */
int s3_key_check(const char *key, lx_err *err);

/* "2009-10-12T17:50:30.000Z" -> ms since the epoch.  -EINVAL if not that. */
int s3_parse_time_ms(const char *s, int64_t *out);

/* An ETag that is the hex MD5 of the body (quotes ignored): 32 hex digits.
 * Multipart ETags ("...-3") are not. */
int s3_etag_is_md5(const char *etag);
/* The ETag names this MD5 (32 lower-case hex digits), case-insensitively. */
int s3_etag_matches(const char *etag, const char *md5_hex);

/* ---- XML -------------------------------------------------------------------- */

/* An <Error> document: its Code and Message (truncated to fit).  0 when
 * `xml` is one, -EINVAL when it is not (not XML, or another root). */
int s3_xml_error(const char *xml, size_t len, char *code, size_t code_cap, char *msg,
		 size_t msg_cap);

/* One page of ListObjectsV2 (ListBucketResult), appended to objs/n/cap.
 * `next_token` is malloc'd when the page is truncated.  Keys are decoded
 * when the answer says EncodingType url.  -EPROTO for a document that is
 * not one. */
typedef struct s3_list_page {
	s3_object *objs;
	size_t n, cap;
	int truncated;
	char *next_token;
} s3_list_page;
int s3_xml_list(const char *xml, size_t len, s3_list_page *page, lx_err *err);

/* A DeleteResult: the keys not deleted, with why.  Deleted keys are not
 * reported (a quiet delete lists none). */
typedef struct s3_delete_failure {
	char *key;
	char code[64];
	char message[160];
} s3_delete_failure;
int s3_xml_delete_result(const char *xml, size_t len, s3_delete_failure **out, size_t *n,
			 lx_err *err);
void s3_delete_failures_free(s3_delete_failure *v, size_t n);

/* The UploadId of an InitiateMultipartUploadResult. */
int s3_xml_upload_id(const char *xml, size_t len, char **out, lx_err *err);

/* The body of a DeleteObjects request (quiet: only failures are listed).
 * -EINVAL for a key XML 1.0 cannot carry (a control character). */
int s3_xml_delete_body(const char *const *keys, size_t n, char **out, size_t *out_len,
		       lx_err *err);

/* The body of CompleteMultipartUpload: part i+1 has ETag etags[i]. */
int s3_xml_complete_body(char *const *etags, size_t n, char **out, size_t *out_len,
			 lx_err *err);

/* ---- failures --------------------------------------------------------------- */

/* Whether a failed attempt may pass if made again: `rc` the transport's
 * result (http_client_do: -EAGAIN for no answer), `status` the HTTP status
 * (0: none), `code` S3's error Code ("" or NULL: none). */
int s3_retryable(int rc, long status, const char *code);

/* The errno of an S3 refusal: ENOENT, EACCES, ERANGE, EAGAIN (retryable),
 * EIO (a corrupted body) or EPROTO. */
int s3_error_errno(long status, const char *code);

#endif
