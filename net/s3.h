/*
 * s3.h - a client of the S3 API (Amazon S3 and servers that speak it), for
 * the continuous backup: put, get, list and delete objects of one bucket.
 *
 * The contract:
 *
 *  - Requests.  Every call goes through net/http_client.h and is signed
 *    with AWS Signature Version 4 (libcurl's).  Keys are any UTF-8 of 1 to
 *    1024 bytes; they are percent-encoded in the path the way S3
 *    canonicalizes them (RFC 3986 unreserved bytes and '/' kept), and query
 *    strings are written canonical (encoded, sorted), so the signature
 *    libcurl computes over what is sent is the one the server computes.
 *
 *  - Integrity.  Every body sent carries its MD5 (Content-MD5) and its
 *    SHA-256 (x-amz-content-sha256, which the signature covers): S3 refuses
 *    a body that does not match either (BadDigest, XAmzContentSHA256Mismatch)
 *    and the call is retried.  Where the server's ETag of a stored object or
 *    part is an MD5 (not for SSE-KMS or SSE-C objects), it must be the MD5
 *    of what was sent, for servers that check nothing; a whole GET of an
 *    object whose ETag is an MD5 is checked against it too.  Either mismatch
 *    is retried, then -EIO.
 *
 *  - Retries.  An attempt that fails for a reason that may pass (no answer:
 *    refused, reset, timed out; HTTP 5xx, 429, a throttling or timeout code,
 *    a corrupted body) is repeated up to max_attempts in all, after an
 *    exponential backoff with jitter.  Other failures end the call at once.
 *    s3_put_fd above the part size is a multipart upload whose every request
 *    is retried so; if it fails anyway, the upload is aborted (best effort:
 *    a bucket lifecycle rule AbortIncompleteMultipartUpload cleans up after
 *    a crash).
 *
 *  - Errors are values (lx_err), in http_client's style
 *    "<METHOD> <url>: <what>", with S3's error Code and Message:
 *      -ENOENT    no such key (404, NoSuchKey) or no such bucket;
 *      -EACCES    refused: a wrong key or secret, no permission (401, 403);
 *      -EAGAIN    still failing after max_attempts (5xx, no answer, ...);
 *      -EIO       a body that came back (or was stored) other than sent;
 *      -EINTR     `cancel` was set;
 *      -EINVAL    a bad key or option;  -ERANGE  a range beyond the object;
 *      -EPROTO    any other refusal, or an answer that makes no sense.
 *
 * A client is used by one thread at a time; make one per thread for
 * parallel transfers (connections are kept between calls of a client).
 * libcurl's global initialisation is the program's; s3_open also
 * initialises libxml2, which should first happen before other threads run.
 */
#ifndef LTXFS_NET_S3_H
#define LTXFS_NET_S3_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define S3_PART_SIZE_DEFAULT (16u << 20)
#define S3_PART_SIZE_MIN (5u << 20)         /* S3's minimum but for the last part */
#define S3_PARTS_MAX 10000                  /* S3's maximum parts of an upload */
#define S3_MAX_ATTEMPTS_DEFAULT 5
#define S3_TIMEOUT_MS_DEFAULT 60000
#define S3_BACKOFF_MS_DEFAULT 100
#define S3_GET_MAX_DEFAULT ((size_t)1 << 30) /* a whole-object GET, in memory */
#define S3_DELETE_BATCH 1000                /* DeleteObjects' maximum */
#define S3_KEY_MAX 1024

typedef struct s3_options {
	const char *endpoint;      /* "http://127.0.0.1:PORT" or "https://..."; NULL: https://s3.REGION.amazonaws.com */
	const char *region;        /* NULL: "us-east-1" */
	const char *bucket;
	const char *access_key_id, *secret_access_key;
	int force_path_style;      /* ENDPOINT/BUCKET/KEY instead of BUCKET.HOST/KEY */
	int64_t connect_timeout_ms; /* 0: default (http_client's) */
	/* per attempt; 0: S3_TIMEOUT_MS_DEFAULT plus a second per MiB of body,
	 * and an attempt on which nothing moved for that long ends */
	int64_t timeout_ms;
	int max_attempts;          /* 0: S3_MAX_ATTEMPTS_DEFAULT; 1: no retry */
	const int *cancel;         /* optional: set to end calls with -EINTR */
	const char *tls_ca;        /* optional CA file for https endpoints */
	/* Added to the brief's API (0: the defaults): */
	uint64_t part_size;        /* multipart above this; >= S3_PART_SIZE_MIN */
	int list_page_size;        /* ListObjectsV2 max-keys (1..1000); 0: 1000 */
	int64_t backoff_ms;        /* the first retry's delay, doubled each time (<= 100x) */
	size_t get_max;            /* the largest whole-object GET; 0: S3_GET_MAX_DEFAULT */
} s3_options;

typedef struct s3_client s3_client;

typedef struct s3_object {
	char *key;
	uint64_t size;
	int64_t mtime_ms;          /* LastModified, ms since the epoch (UTC) */
} s3_object;

int s3_open(s3_client **out, const s3_options *o, lx_err *err);
void s3_close(s3_client *c);

/* PUT `len` bytes from memory (one request; at most 5 GiB). */
int s3_put(s3_client *c, const char *key, const void *buf, size_t len, lx_err *err);

/* PUT the first `len` bytes of the file `fd` (read with pread; its offset
 * is untouched).  Above the part size, a multipart upload.  The file must
 * not change meanwhile (a changed part fails its checksum). */
int s3_put_fd(s3_client *c, const char *key, int fd, uint64_t len, lx_err *err);

/* GET `len` bytes at `off` (len 0: to the end).  Fewer when the object ends
 * first; off at the object's end gives 0 bytes, beyond it -ERANGE.  *out is
 * malloc'd (never NULL after 0), free it. */
int s3_get(s3_client *c, const char *key, uint64_t off, uint64_t len, uint8_t **out,
	   size_t *out_len, lx_err *err);

/* Every object whose key starts with `prefix` ("" or NULL: all) and sorts
 * after `start_after` (optional), in S3's (byte) order, over every page.
 * *out is malloc'd; free it with s3_objects_free. */
int s3_list(s3_client *c, const char *prefix, const char *start_after, s3_object **out,
	    size_t *n, lx_err *err);
void s3_objects_free(s3_object *v, size_t n);

/* Delete `n` keys (DeleteObjects, S3_DELETE_BATCH at a time).  A missing
 * key is no error.  Keys the server refused are named in the error (the
 * first few, and how many in all). */
int s3_delete(s3_client *c, const char *const *keys, size_t n, lx_err *err);

/* Counters since s3_open, for metrics: HTTP attempts, retries among them,
 * body bytes sent and received (all attempts), calls that failed. */
typedef struct s3_stats {
	uint64_t requests, retries, bytes_up, bytes_down, errors;
} s3_stats;
void s3_stats_get(const s3_client *c, s3_stats *out);

#endif
