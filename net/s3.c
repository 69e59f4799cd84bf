/*
 * s3.c - the S3 client (see s3.h).
 *
 * Every request is an `s3_call`: method, key, query, body, and what came
 * back.  call() is the one place a request is signed, sent, judged and
 * retried; the operations below only say what to send and read the answer.
 * The pure parts (encodings, XML, which failures pass) are in s3_util.c.
 */
#include "net/s3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <libxml/parser.h>
#include "base/base64.h"
#include "base/clock.h"
#include "net/http_client.h"
#include "net/s3_internal.h"

#define HASH_CHUNK (1u << 20)          /* the hash pass over a file reads this much at once */
#define LIST_BODY_MAX (16u << 20)      /* a page of 1000 keys of 1 KiB, escaped */
#define SLEEP_SLICE_MS 50              /* backoff sleeps check `cancel` this often */
#define BACKOFF_CAP 100                /* the longest backoff, in first delays */
#define SINGLE_PUT_MAX ((uint64_t)5 << 30)  /* S3's largest PUT */

struct s3_client {
	char *endpoint;                 /* scheme://host[:port][/path], no trailing '/' */
	char *bucket;
	char *sigv4;                    /* "aws:amz:REGION:s3" */
	char *userpwd;                  /* "ACCESS_KEY:SECRET" */
	char *tls_ca;
	const int *cancel;
	int path_style;
	int max_attempts;
	int page_size;
	int64_t timeout_ms;             /* 0: scaled to the body (see attempt_timeouts) */
	int64_t backoff_ms;
	uint64_t part_size;
	size_t get_max;
	uint64_t rng;                   /* backoff jitter: xorshift64* */
	uint8_t *buf;                   /* the hash pass's buffer (HASH_CHUNK) */
	http_client *http;
	s3_stats st;
};

/* A body's digests, in the forms the headers and ETags use. */
typedef struct digests {
	uint8_t md5[16];
	char md5_hex[33];
	char md5_b64[25];
	char sha256_hex[65];
} digests;

typedef struct s3_call {
	/* the request */
	const char *method;
	const char *key;                /* NULL: the bucket */
	s3_param q[6];
	size_t nq;
	const void *body;               /* from memory (NULL with body_len 0: none) */
	size_t body_len;
	int fd;                         /* or a file's range (len > 0) */
	uint64_t off, len;
	const char *content_type;
	char range[64];                 /* "bytes=..." or "" */
	size_t body_max;
	int check_etag;                 /* a stored body: its ETag must be our MD5 */
	int check_body_md5;             /* a whole GET: the body's MD5 must be the ETag */
	int error_in_200;               /* the answer may be an <Error> with 200 (Complete) */
	/* what came back (of the last attempt) */
	char *url;
	http_response r;
	char etag[96];
	char content_range[96];
	int sse_opaque;                 /* encrypted so that the ETag is no MD5 */
	char code[64];                  /* S3's error Code, if any */
	digests d;
} s3_call;

/* ---- small helpers ------------------------------------------------------------ */

static int cancelled(const s3_client *c)
{
	return c->cancel != NULL && __atomic_load_n(c->cancel, __ATOMIC_ACQUIRE);
}

static uint64_t next_random(s3_client *c)
{
	uint64_t x = c->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Sleep `ms`, waking early (returning -1) if the call is cancelled. */
static int sleep_ms(const s3_client *c, int64_t ms)
{
	int64_t end = lx_mono_ms() + ms;
	for (;;) {
		int64_t left = end - lx_mono_ms();
		struct timespec ts;
		if (cancelled(c))
			return -1;
		if (left <= 0)
			return 0;
		if (left > SLEEP_SLICE_MS)
			left = SLEEP_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* The delay before attempt `attempt` (2, 3, ...): exponential, capped, and
 * jittered over its upper half so that clients that failed together do not
 * come back together. */
static int64_t backoff(s3_client *c, int attempt)
{
	int64_t d = c->backoff_ms;
	for (int i = 2; i < attempt && d < c->backoff_ms * BACKOFF_CAP; i++)
		d *= 2;
	if (d > c->backoff_ms * BACKOFF_CAP)
		d = c->backoff_ms * BACKOFF_CAP;
	return d / 2 + (int64_t)(next_random(c) % (uint64_t)(d / 2 + 1));
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void digests_finish(digests *d, const uint8_t sha[32])
{
	hex(d->md5_hex, d->md5, sizeof(d->md5));
	lx_base64_encode(d->md5, sizeof(d->md5), d->md5_b64);
	hex(d->sha256_hex, sha, 32);
}

static int digest_mem(const void *p, size_t n, digests *d)
{
	uint8_t sha[32];
	if (gnutls_hash_fast(GNUTLS_DIG_MD5, p, n, d->md5) < 0 ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, sha) < 0)
		return -1;
	digests_finish(d, sha);
	return 0;
}

/* Both digests of a file's range in one pass (the body is then read again
 * as it is sent: a file changed in between fails its checksums). */
static int digest_fd(s3_client *c, int fd, uint64_t off, uint64_t len, digests *d,
		     lx_err *err)
{
	gnutls_hash_hd_t md5 = NULL, sha = NULL;
	uint8_t sha_out[32];
	uint64_t done = 0;
	int rc = 0;
	if (c->buf == NULL && (c->buf = malloc(HASH_CHUNK)) == NULL)
		return lx_err_set(err, ENOMEM, "s3: out of memory");
	if (gnutls_hash_init(&md5, GNUTLS_DIG_MD5) < 0 || gnutls_hash_init(&sha, GNUTLS_DIG_SHA256) < 0)
		rc = lx_err_set(err, ENOSYS, "s3: no MD5 or SHA-256 in GnuTLS (FIPS mode?)");
	while (rc == 0 && done < len) {
		size_t want = len - done < HASH_CHUNK ? (size_t)(len - done) : HASH_CHUNK;
		ssize_t got = pread(fd, c->buf, want, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = lx_err_sys(err, errno, "s3: reading the file at byte %" PRIu64, off + done);
		else if (got == 0)
			rc = lx_err_set(err, EIO, "s3: the file ends at byte %" PRIu64 ", before %" PRIu64,
					off + done, off + len);
		else {
			gnutls_hash(md5, c->buf, (size_t)got);
			gnutls_hash(sha, c->buf, (size_t)got);
			done += (uint64_t)got;
		}
	}
	if (md5 != NULL)
		gnutls_hash_deinit(md5, d->md5);
	if (sha != NULL)
		gnutls_hash_deinit(sha, sha_out);
	if (rc == 0)
		digests_finish(d, sha_out);
	return rc;
}

/* ---- one call, retried ------------------------------------------------------------- */

static void on_header(void *arg, const char *name, size_t name_len, const char *value,
		      size_t value_len)
{
	s3_call *k = arg;
	char *dst = NULL;
	size_t cap = 0;
	if (name_len == 4 && strncasecmp(name, "ETag", 4) == 0)
		dst = k->etag, cap = sizeof(k->etag);
	else if (name_len == 13 && strncasecmp(name, "Content-Range", 13) == 0)
		dst = k->content_range, cap = sizeof(k->content_range);
	else if ((name_len == 28 && strncasecmp(name, "x-amz-server-side-encryption", 28) == 0 &&
		  value_len >= 7 && strncasecmp(value, "aws:kms", 7) == 0) ||
		 (name_len == 47 && strncasecmp(name, "x-amz-server-side-encryption-customer-"
						"algorithm", 47) == 0))
		/* SSE-KMS and SSE-C: S3's ETag is then not the body's MD5 */
		k->sse_opaque = 1;
	if (dst != NULL)
		snprintf(dst, cap, "%.*s", (int)value_len, value);
}

/* Per attempt: the caller's bound, else one scaled to the body (a minute
 * and a second per MiB), and a minute without progress. */
static void attempt_timeouts(const s3_client *c, const s3_call *k, http_request *q)
{
	int get = strcmp(k->method, "GET") == 0;
	uint64_t size = get ? k->body_max : k->body_len + k->len;
	if (c->timeout_ms > 0) {
		q->timeout_ms = c->timeout_ms;
		return;
	}
	q->idle_ms = S3_TIMEOUT_MS_DEFAULT;
	if (get && k->range[0] == '\0')
		return;                 /* a whole object: bounded by idleness alone */
	q->timeout_ms = S3_TIMEOUT_MS_DEFAULT + (int64_t)(size >> 20) * 1000;
}

/* The result of one attempt that was answered: 0, or an error with
 * k->code set when S3 gave one.  *retry: worth another attempt. */
static int judge(s3_call *k, int *retry, lx_err *err)
{
	char msg[200] = "";
	long st = k->r.status;
	int ok = st >= 200 && st <= 299;
	k->code[0] = '\0';
	if (!ok || k->error_in_200) {
		/* an <Error> document, if that is what came */
		if (s3_xml_error(k->r.body, k->r.len, k->code, sizeof(k->code), msg, sizeof(msg)) < 0 &&
		    !ok) {
			char excerpt[120];
			http_body_excerpt(&k->r, excerpt, sizeof(excerpt));
			snprintf(msg, sizeof(msg), "%s", excerpt);
		}
		if (!ok || k->code[0] != '\0') {
			*retry = s3_retryable(0, st, k->code);
			return lx_err_set(err, s3_error_errno(st, k->code), "%s %s: HTTP %ld: %s%s%s",
					  k->method, k->url, st, k->code, k->code[0] ? ": " : "",
					  msg);
		}
	}
	if (k->check_etag && k->etag[0] != '\0' && !k->sse_opaque && s3_etag_is_md5(k->etag) &&
	    !s3_etag_matches(k->etag, k->d.md5_hex)) {
		*retry = 1;
		return lx_err_set(err, EIO, "%s %s: HTTP %ld: the server stored other bytes than "
				  "were sent (its ETag %s is not their MD5 %s)", k->method, k->url,
				  st, k->etag, k->d.md5_hex);
	}
	if (k->check_body_md5 && st == 200 && !k->sse_opaque && s3_etag_is_md5(k->etag)) {
		digests got;
		if (digest_mem(k->r.body, k->r.len, &got) == 0 && !s3_etag_matches(k->etag, got.md5_hex)) {
			*retry = 1;
			return lx_err_set(err, EIO, "%s %s: HTTP 200: the body's MD5 %s is not its "
					  "ETag %s (corrupted on the way?)", k->method, k->url,
					  got.md5_hex, k->etag);
		}
	}
	return 0;
}

/* Sign, send, judge, and retry what may pass.  After 0, k->r holds the
 * answer; free the call with call_free whatever the result. */
static int call(s3_client *c, s3_call *k, lx_err *err)
{
	char md5_line[64], sha_line[100], type_line[80], range_line[96];
	const char *headers[6];
	size_t nh = 0;
	int has_body = strcmp(k->method, "PUT") == 0 || strcmp(k->method, "POST") == 0;
	http_request q;
	int rc;
	if (k->url == NULL &&
	    (rc = s3_make_url(c->endpoint, c->bucket, c->path_style, k->key, k->q, k->nq, &k->url,
			      err)) < 0)
		return rc;
	if (k->len > 0)
		rc = digest_fd(c, k->fd, k->off, k->len, &k->d, err);
	else
		rc = digest_mem(k->body ? k->body : "", k->body_len, &k->d) < 0 ?
		     lx_err_set(err, ENOSYS, "s3: no MD5 or SHA-256 in GnuTLS (FIPS mode?)") : 0;
	if (rc < 0) {
		lx_err_wrap(err, "%s %s", k->method, k->url);
		return rc;
	}
	/* The payload's SHA-256 is signed and, by S3, checked; its MD5 is checked
	 * by S3 and by every server that knows Content-MD5. */
	snprintf(sha_line, sizeof(sha_line), "x-amz-content-sha256: %s", k->d.sha256_hex);
	headers[nh++] = sha_line;
	if (has_body) {
		snprintf(md5_line, sizeof(md5_line), "Content-MD5: %s", k->d.md5_b64);
		snprintf(type_line, sizeof(type_line), "Content-Type: %s",
			 k->content_type ? k->content_type : "application/octet-stream");
		headers[nh++] = md5_line;
		headers[nh++] = type_line;
	}
	if (k->range[0] != '\0') {
		snprintf(range_line, sizeof(range_line), "Range: %s", k->range);
		headers[nh++] = range_line;
	}
	headers[nh] = NULL;

	memset(&q, 0, sizeof(q));
	q.method = k->method;
	q.url = k->url;
	q.headers = headers;
	if (k->len > 0) {
		q.upload_fd = k->fd;
		q.upload_off = k->off;
		q.upload_len = k->len;
	} else if (has_body) {
		q.body = k->body ? k->body : "";
		q.body_len = k->body_len;
	}
	q.body_max = k->body_max;
	q.on_header = on_header;
	q.header_arg = k;
	q.aws_sigv4 = c->sigv4;
	q.userpwd = c->userpwd;
	attempt_timeouts(c, k, &q);

	for (int attempt = 1;; attempt++) {
		int retry = 0;
		if (attempt > 1) {
			q.fresh_connect = 1;    /* the last connection may be what failed */
			c->st.retries++;
			if (sleep_ms(c, backoff(c, attempt)) < 0)
				return lx_err_set(err, EINTR, "%s %s: cancelled", k->method, k->url);
		}
		http_response_free(&k->r);
		k->etag[0] = k->content_range[0] = '\0';
		k->sse_opaque = 0;
		c->st.requests++;
		rc = http_client_do(c->http, &q, &k->r, err);
		c->st.bytes_up += k->r.sent;
		c->st.bytes_down += k->r.received;
		if (rc == 0)
			rc = judge(k, &retry, err);
		else
			retry = s3_retryable(rc, 0, NULL);
		if (rc == 0)
			return 0;
		if (!retry || attempt >= c->max_attempts || cancelled(c)) {
			if (attempt > 1 && err != NULL) {
				size_t l = strlen(err->msg);
				snprintf(err->msg + l, sizeof(err->msg) - l, " (%d attempts)", attempt);
			}
			return rc;
		}
	}
}

static void call_free(s3_call *k)
{
	http_response_free(&k->r);
	free(k->url);
	k->url = NULL;
}

static void call_init(s3_call *k, const char *method, const char *key)
{
	memset(k, 0, sizeof(*k));
	k->method = method;
	k->key = key;
	k->fd = -1;
}

static void add_param(s3_call *k, const char *name, const char *value)
{
	k->q[k->nq].name = name;
	k->q[k->nq].value = value;
	k->nq++;
}

/* ---- the client --------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int s3_open(s3_client **out, const s3_options *o, lx_err *err)
{
	const char *region = o->region && o->region[0] ? o->region : "us-east-1";
	http_client_options ho;
	s3_client *c;
	size_t l;
	int rc;
	*out = NULL;
	if (o->bucket == NULL || o->bucket[0] == '\0' || strchr(o->bucket, '/') != NULL)
		return lx_err_set(err, EINVAL, "s3: a bucket name is needed (without '/')");
	if (o->access_key_id == NULL || o->secret_access_key == NULL)
		return lx_err_set(err, EINVAL, "s3: an access key id and a secret access key are needed");
	if (o->part_size != 0 && o->part_size < S3_PART_SIZE_MIN)
		return lx_err_set(err, EINVAL, "s3: part size %" PRIu64 " is below S3's minimum %u",
				  o->part_size, S3_PART_SIZE_MIN);
	if (o->list_page_size < 0 || o->list_page_size > 1000)
		return lx_err_set(err, EINVAL, "s3: a list page holds 1 to 1000 keys, not %d",
				  o->list_page_size);
	if (o->endpoint != NULL && strncmp(o->endpoint, "http://", 7) != 0 &&
	    strncmp(o->endpoint, "https://", 8) != 0)
		return lx_err_set(err, EINVAL, "s3: endpoint %s: not an http:// or https:// URL",
				  o->endpoint);
	xmlInitParser();
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return lx_err_set(err, ENOMEM, "s3: out of memory");
	if (o->endpoint != NULL)
		c->endpoint = strdup(o->endpoint);
	else if (asprintf(&c->endpoint, "https://s3.%s.amazonaws.com", region) < 0)
		c->endpoint = NULL;
	c->bucket = strdup(o->bucket);
	c->tls_ca = dup_or_null(o->tls_ca);
	if (asprintf(&c->sigv4, "aws:amz:%s:s3", region) < 0)
		c->sigv4 = NULL;
	if (asprintf(&c->userpwd, "%s:%s", o->access_key_id, o->secret_access_key) < 0)
		c->userpwd = NULL;
	if (c->endpoint == NULL || c->bucket == NULL || c->sigv4 == NULL || c->userpwd == NULL ||
	    (o->tls_ca != NULL && c->tls_ca == NULL)) {
		s3_close(c);
		return lx_err_set(err, ENOMEM, "s3: out of memory");
	}
	l = strlen(c->endpoint);
	while (l > 0 && c->endpoint[l - 1] == '/')
		c->endpoint[--l] = '\0';
	c->cancel = o->cancel;
	c->path_style = o->force_path_style;
	c->max_attempts = o->max_attempts > 0 ? o->max_attempts : S3_MAX_ATTEMPTS_DEFAULT;
	c->page_size = o->list_page_size;
	c->timeout_ms = o->timeout_ms;
	c->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : S3_BACKOFF_MS_DEFAULT;
	c->part_size = o->part_size ? o->part_size : S3_PART_SIZE_DEFAULT;
	c->get_max = o->get_max ? o->get_max : S3_GET_MAX_DEFAULT;
	c->rng = ((uint64_t)lx_mono_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)c;
	if (c->rng == 0)
		c->rng = 1;
	memset(&ho, 0, sizeof(ho));
	ho.connect_timeout_ms = o->connect_timeout_ms;
	ho.cancel = o->cancel;
	ho.tls_ca = c->tls_ca;
	if ((rc = http_client_open(&c->http, &ho, err)) < 0) {
		s3_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void s3_close(s3_client *c)
{
	if (c == NULL)
		return;
	http_client_close(c->http);
	free(c->endpoint);
	free(c->bucket);
	free(c->tls_ca);
	free(c->sigv4);
	if (c->userpwd != NULL)
		explicit_bzero(c->userpwd, strlen(c->userpwd));
	free(c->userpwd);
	free(c->buf);
	free(c);
}

void s3_stats_get(const s3_client *c, s3_stats *out)
{
	*out = c->st;
}

/* Every public call ends here: failures are counted once. */
static int done(s3_client *c, int rc)
{
	if (rc < 0)
		c->st.errors++;
	return rc;
}

/* ---- put -------------------------------------------------------------------- */

static int put_one(s3_client *c, const char *key, const void *buf, size_t len, int fd,
		   uint64_t flen, lx_err *err)
{
	s3_call k;
	int rc;
	call_init(&k, "PUT", key);
	k.body = buf;
	k.body_len = len;
	k.fd = fd;
	k.len = flen;
	k.check_etag = 1;
	rc = call(c, &k, err);
	call_free(&k);
	return rc;
}

int s3_put(s3_client *c, const char *key, const void *buf, size_t len, lx_err *err)
{
	int rc;
	if ((rc = s3_key_check(key, err)) < 0)
		return done(c, rc);
	if ((uint64_t)len > SINGLE_PUT_MAX)
		return done(c, lx_err_set(err, EFBIG, "s3: %s: %zu bytes is over S3's largest PUT "
					  "(use s3_put_fd)", key, len));
	return done(c, put_one(c, key, buf, len, -1, 0, err));
}

/* The multipart upload of an object: created, its parts, completed. */
typedef struct upload {
	const char *key;
	char *id;
	char **etags;                   /* etags[i]: part i+1's, as the server gave it */
	size_t parts;
} upload;

static int upload_create(s3_client *c, upload *u, lx_err *err)
{
	s3_call k;
	int rc;
	call_init(&k, "POST", u->key);
	add_param(&k, "uploads", "");
	if ((rc = call(c, &k, err)) == 0 &&
	    (rc = s3_xml_upload_id(k.r.body, k.r.len, &u->id, err)) < 0)
		lx_err_wrap(err, "POST %s", k.url);
	call_free(&k);
	return rc;
}

static int upload_part(s3_client *c, upload *u, size_t i, int fd, uint64_t off, uint64_t len,
		       lx_err *err)
{
	char number[24];
	s3_call k;
	int rc;
	snprintf(number, sizeof(number), "%zu", i + 1);
	call_init(&k, "PUT", u->key);
	add_param(&k, "partNumber", number);
	add_param(&k, "uploadId", u->id);
	k.fd = fd;
	k.off = off;
	k.len = len;
	k.check_etag = 1;
	if ((rc = call(c, &k, err)) == 0) {
		if (k.etag[0] == '\0')
			rc = lx_err_set(err, EPROTO, "PUT %s: HTTP %ld: no ETag for the part",
					k.url, k.r.status);
		else if ((u->etags[i] = strdup(k.etag)) == NULL)
			rc = lx_err_set(err, ENOMEM, "s3: out of memory");
	}
	call_free(&k);
	return rc;
}

static int upload_complete(s3_client *c, upload *u, lx_err *err)
{
	s3_call k;
	char *body = NULL;
	size_t len = 0;
	int rc;
	if ((rc = s3_xml_complete_body(u->etags, u->parts, &body, &len, err)) < 0)
		return rc;
	call_init(&k, "POST", u->key);
	add_param(&k, "uploadId", u->id);
	k.body = body;
	k.body_len = len;
	k.content_type = "application/xml";
	k.error_in_200 = 1;            /* S3 may answer 200 and fail later in the body */
	rc = call(c, &k, err);
	call_free(&k);
	free(body);
	return rc;
}

/* Best effort: the parts stored so far are otherwise billed until a
 * lifecycle rule removes them. */
static void upload_abort(s3_client *c, upload *u, lx_err *err)
{
	s3_call k;
	lx_err e;
	call_init(&k, "DELETE", u->key);
	add_param(&k, "uploadId", u->id);
	if (call(c, &k, &e) < 0 && err != NULL) {
		size_t l = strlen(err->msg);
		snprintf(err->msg + l, sizeof(err->msg) - l, "; aborting the upload failed too: %s",
			 e.msg);
	}
	call_free(&k);
}

static int put_multipart(s3_client *c, const char *key, int fd, uint64_t len, lx_err *err)
{
	uint64_t part = c->part_size;
	upload u = { .key = key };
	int rc;
	/* S3 takes at most S3_PARTS_MAX parts: larger ones, in whole MiB */
	if ((len + part - 1) / part > S3_PARTS_MAX)
		part = ((len + S3_PARTS_MAX - 1) / S3_PARTS_MAX + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	u.parts = (size_t)((len + part - 1) / part);
	if ((u.etags = calloc(u.parts, sizeof(*u.etags))) == NULL)
		return lx_err_set(err, ENOMEM, "s3: out of memory");
	rc = upload_create(c, &u, err);
	for (size_t i = 0; rc == 0 && i < u.parts; i++) {
		uint64_t off = (uint64_t)i * part;
		rc = upload_part(c, &u, i, fd, off, len - off < part ? len - off : part, err);
	}
	if (rc == 0)
		rc = upload_complete(c, &u, err);
	if (rc < 0 && u.id != NULL && rc != -EINTR)
		upload_abort(c, &u, err);
	for (size_t i = 0; i < u.parts; i++)
		free(u.etags[i]);
	free(u.etags);
	free(u.id);
	return rc;
}

int s3_put_fd(s3_client *c, const char *key, int fd, uint64_t len, lx_err *err)
{
	int rc;
	if ((rc = s3_key_check(key, err)) < 0)
		return done(c, rc);
	if (len == 0)
		return done(c, put_one(c, key, "", 0, -1, 0, err));
	if (len <= c->part_size)
		return done(c, put_one(c, key, NULL, 0, fd, len, err));
	return done(c, put_multipart(c, key, fd, len, err));
}

/* ---- get ---------------------------------------------------------------------- */

/* The first byte of a 206's Content-Range ("bytes FIRST-LAST/SIZE"). */
static int range_first(const char *cr, uint64_t *first)
{
	return sscanf(cr, "bytes %" SCNu64 "-", first) == 1 ? 0 : -1;
}

/* The size in a 416's Content-Range ("bytes * /SIZE"). */
static int range_size(const char *cr, uint64_t *size)
{
	return sscanf(cr, "bytes */%" SCNu64, size) == 1 ? 0 : -1;
}

int s3_get(s3_client *c, const char *key, uint64_t off, uint64_t len, uint8_t **out,
	   size_t *out_len, lx_err *err)
{
	s3_call k;
	uint64_t first = 0, size = 0;
	int rc;
	*out = NULL;
	*out_len = 0;
	if ((rc = s3_key_check(key, err)) < 0)
		return done(c, rc);
	if (len > c->get_max || off > UINT64_MAX - len)
		return done(c, lx_err_set(err, EINVAL, "s3: %s: a GET of %" PRIu64 " bytes at %" PRIu64
					  " is too large", key, len, off));
	call_init(&k, "GET", key);
	if (len > 0)
		snprintf(k.range, sizeof(k.range), "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
	else if (off > 0)
		snprintf(k.range, sizeof(k.range), "bytes=%" PRIu64 "-", off);
	/* an answer a little longer than the range is an error body */
	k.body_max = len > 0 ? (size_t)len + 65536 : c->get_max;
	k.check_body_md5 = off == 0 && len == 0;
	rc = call(c, &k, err);
	if (rc == -ERANGE && range_size(k.content_range, &size) == 0 && off == size) {
		/* from the very end: nothing, as a read at EOF */
		rc = 0;
		http_response_free(&k.r);
		k.r.body = strdup("");
		if (k.r.body == NULL)
			rc = lx_err_set(err, ENOMEM, "s3: out of memory");
	} else if (rc == 0 && k.range[0] != '\0') {
		/* 200 (the range ignored: the whole object) or 206 from `first` */
		if (k.r.status == 206 && range_first(k.content_range, &first) < 0)
			first = off;
		if (first > off)
			rc = lx_err_set(err, EPROTO, "GET %s: HTTP 206: the answer starts at byte %"
					PRIu64 ", not %" PRIu64, k.url, first, off);
		else {
			uint64_t skip = off - first;
			uint64_t have = skip < k.r.len ? k.r.len - skip : 0;
			if (len > 0 && have > len)
				have = len;
			memmove(k.r.body, k.r.body + (skip < k.r.len ? skip : k.r.len), (size_t)have);
			k.r.len = (size_t)have;
		}
	}
	if (rc == 0) {
		*out = (uint8_t *)k.r.body;
		*out_len = k.r.len;
		k.r.body = NULL;
	}
	call_free(&k);
	return done(c, rc);
}

/* ---- list ------------------------------------------------------------------- */

int s3_list(s3_client *c, const char *prefix, const char *start_after, s3_object **out,
	    size_t *n, lx_err *err)
{
	s3_list_page page;
	char max_keys[16], *token = NULL;
	int rc = 0;
	memset(&page, 0, sizeof(page));
	*out = NULL;
	*n = 0;
	snprintf(max_keys, sizeof(max_keys), "%d", c->page_size);
	for (;;) {
		s3_call k;
		size_t before = page.n;
		call_init(&k, "GET", NULL);
		add_param(&k, "list-type", "2");
		add_param(&k, "encoding-type", "url");
		if (prefix != NULL && prefix[0] != '\0')
			add_param(&k, "prefix", prefix);
		if (token != NULL)
			add_param(&k, "continuation-token", token);
		else if (start_after != NULL && start_after[0] != '\0')
			add_param(&k, "start-after", start_after);
		if (c->page_size > 0)
			add_param(&k, "max-keys", max_keys);
		k.body_max = LIST_BODY_MAX;
		page.truncated = 0;
		if ((rc = call(c, &k, err)) == 0 &&
		    (rc = s3_xml_list(k.r.body, k.r.len, &page, err)) < 0)
			lx_err_wrap(err, "GET %s", k.url);
		if (rc == 0 && page.truncated &&
		    (page.next_token == NULL || page.n == before ||
		     (token != NULL && strcmp(token, page.next_token) == 0)))
			/* a listing that would never end */
			rc = lx_err_set(err, EPROTO, "GET %s: a truncated page without a new "
					"continuation token or keys", k.url);
		call_free(&k);
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		if (rc < 0 || !page.truncated)
			break;
	}
	free(token);
	if (rc < 0) {
		s3_objects_free(page.objs, page.n);
		return done(c, rc);
	}
	*out = page.objs;
	*n = page.n;
	return 0;
}

void s3_objects_free(s3_object *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i].key);
	free(v);
}

/* ---- delete ------------------------------------------------------------------- */

/* One DeleteObjects of at most S3_DELETE_BATCH keys.  Keys refused for a
 * reason that may pass (SlowDown, InternalError) are sent again, within the
 * client's attempts; the others are reported. */
static int delete_batch(s3_client *c, const char *const *keys, size_t n, lx_err *err)
{
	const char **pending = malloc(n * sizeof(*pending));
	s3_delete_failure *held = NULL;         /* the failures `pending` points into */
	size_t nheld = 0;
	int rc = 0;
	if (pending == NULL)
		return lx_err_set(err, ENOMEM, "s3: out of memory");
	memcpy(pending, keys, n * sizeof(*pending));
	for (int round = 1; rc == 0 && n > 0; round++) {
		s3_delete_failure *f = NULL;
		size_t nf = 0, again = 0, len = 0;
		char *body = NULL;
		s3_call k;
		if (round > 1 && sleep_ms(c, backoff(c, round)) < 0) {
			rc = lx_err_set(err, EINTR, "s3: delete: cancelled");
			break;
		}
		if ((rc = s3_xml_delete_body(pending, n, &body, &len, err)) < 0)
			break;
		call_init(&k, "POST", NULL);
		add_param(&k, "delete", "");
		k.body = body;
		k.body_len = len;
		k.content_type = "application/xml";
		k.body_max = LIST_BODY_MAX;
		if ((rc = call(c, &k, err)) == 0 &&
		    (rc = s3_xml_delete_result(k.r.body, k.r.len, &f, &nf, err)) < 0)
			lx_err_wrap(err, "POST %s", k.url);
		for (size_t i = 0; rc == 0 && i < nf; i++)
			if (s3_retryable(0, 0, f[i].code))
				again++;
		if (rc == 0 && nf > 0 && again == nf && round < c->max_attempts) {
			for (size_t i = 0; i < nf; i++)
				pending[i] = f[i].key;
			n = nf;
			c->st.retries++;
		} else if (rc == 0 && nf > 0) {
			char list[300] = "";
			size_t l = 0;
			for (size_t i = 0; i < nf && i < 3 && l < sizeof(list); i++)
				l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%s: %s: %s",
						      i ? "; " : "", f[i].key, f[i].code,
						      f[i].message);
			rc = lx_err_set(err, s3_error_errno(0, f[0].code), "POST %s: %zu of the keys "
					"not deleted: %s%s", k.url, nf, list,
					nf > 3 ? "; ..." : "");
		} else
			n = 0;
		call_free(&k);
		free(body);
		s3_delete_failures_free(held, nheld);   /* pending no longer needs them */
		held = f;
		nheld = nf;
	}
	s3_delete_failures_free(held, nheld);
	free(pending);
	return rc;
}

int s3_delete(s3_client *c, const char *const *keys, size_t n, lx_err *err)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = s3_key_check(keys[i], err);
	for (size_t i = 0; rc == 0 && i < n; i += S3_DELETE_BATCH)
		rc = delete_batch(c, keys + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH, err);
	return done(c, rc);
}
