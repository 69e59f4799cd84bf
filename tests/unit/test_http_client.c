/*
 * test_http_client.c - net/http_client.h against a real HTTP server: a
 * libmicrohttpd daemon started here on 127.0.0.1 (an ephemeral port).
 *
 * The server's paths:
 *   /bytes/N   200 with N bytes of 'x'
 *   /missing   404 with {"error":"no such thing"}
 *   /auth      200 echoing the Authorization header ("(none)" without one)
 *   /stall     200: one byte, then nothing for up to STALL_MS
 *   /count     200 "N SUM": the request body's length and the sum of its bytes
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "base/clock.h"
#include "net/http_client.h"
#include "tests/unit/unit.h"

#define STALL_MS 10000

/* ---- the server ----------------------------------------------------------- */

static struct MHD_Daemon *daemon_;
static int server_stop;          /* atomic: ends a /stall answer early */
static char base[64];            /* "http://127.0.0.1:PORT" */

/* The /count request's body so far (one at a time: nothing to free when
 * a client gives up mid-body). */
typedef struct body_count {
	unsigned long long n, sum;
} body_count;
static body_count count_;

typedef struct stall {
	int64_t started;
	int sent;
} stall;

static ssize_t stall_read(void *arg, uint64_t pos, char *buf, size_t max)
{
	stall *s = arg;
	(void)pos, (void)max;
	if (!s->sent) {
		s->sent = 1;
		buf[0] = 'x';
		return 1;
	}
	/* thread per connection: blocking here is allowed */
	while (!__atomic_load_n(&server_stop, __ATOMIC_ACQUIRE) &&
	       lx_mono_ms() - s->started < STALL_MS)
		usleep(10000);
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct MHD_Response *r;
	unsigned code = 200;
	enum MHD_Result ret;
	(void)cls, (void)method, (void)version, (void)upload;
	if (*state == NULL) {              /* the headers: wait for the body */
		if (strcmp(url, "/count") == 0)
			memset(&count_, 0, sizeof(count_));
		*state = conn;
		return MHD_YES;
	}
	if (*upload_len != 0) {            /* a request body: ignored, or counted */
		if (strcmp(url, "/count") == 0) {
			for (size_t i = 0; i < *upload_len; i++)
				count_.sum += (unsigned char)upload[i];
			count_.n += *upload_len;
		}
		*upload_len = 0;
		return MHD_YES;
	}
	if (strncmp(url, "/bytes/", 7) == 0) {
		size_t n = strtoul(url + 7, NULL, 10);
		char *b = malloc(n ? n : 1);
		memset(b, 'x', n);
		r = MHD_create_response_from_buffer(n, b, MHD_RESPMEM_MUST_FREE);
	} else if (strcmp(url, "/auth") == 0) {
		const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							    "Authorization");
		char *b = strdup(v ? v : "(none)");
		r = MHD_create_response_from_buffer(strlen(b), b, MHD_RESPMEM_MUST_FREE);
	} else if (strcmp(url, "/count") == 0) {
		char *b = NULL;
		if (asprintf(&b, "%llu %llu", count_.n, count_.sum) < 0)
			b = NULL;
		r = MHD_create_response_from_buffer(b ? strlen(b) : 0, b, MHD_RESPMEM_MUST_FREE);
	} else if (strcmp(url, "/stall") == 0) {
		stall *s = calloc(1, sizeof(*s));
		s->started = lx_mono_ms();
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1, stall_read, s, free);
	} else {
		static const char msg[] = "{\"error\":\"no such thing\"}";
		code = 404;
		r = MHD_create_response_from_buffer(strlen(msg), (void *)msg,
						    MHD_RESPMEM_PERSISTENT);
	}
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static void server_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const union MHD_DaemonInfo *info;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	__atomic_store_n(&server_stop, 0, __ATOMIC_RELEASE);
	daemon_ = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
				   0, NULL, NULL, answer, NULL,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_END);
	CHECK(daemon_ != NULL);
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", info ? info->port : 0);
}

static void server_stop_all(void)
{
	__atomic_store_n(&server_stop, 1, __ATOMIC_RELEASE);
	MHD_stop_daemon(daemon_);
	daemon_ = NULL;
	curl_global_cleanup();
}

/* GET base + path with options `o` and a body limit; the response in *r. */
static int get(const http_client_options *o, const char *path, size_t max, http_response *r,
	       lx_err *err)
{
	char url[128];
	http_request q = { .method = "GET", .url = url, .timeout_ms = 5000, .body_max = max };
	snprintf(url, sizeof(url), "%s%s", base, path);
	return http_fetch(o, &q, r, err);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_body_within_limit(void)
{
	http_client_options o = { 0 };
	http_response r;
	lx_err err;
	server_start();
	CHECK_EQ_INT(0, get(&o, "/bytes/1000", 1000, &r, &err));
	CHECK_EQ_INT(200, r.status);
	CHECK_EQ_INT(1000, r.len);
	CHECK(r.body != NULL && r.body[0] == 'x' && r.body[999] == 'x' && r.body[1000] == '\0');
	http_response_free(&r);
	CHECK_EQ_INT(0, get(&o, "/bytes/0", 0, &r, &err));   /* no body: "" */
	CHECK(r.body != NULL && r.len == 0 && r.body[0] == '\0');
	http_response_free(&r);
	server_stop_all();
}

static void test_body_over_limit_is_an_error(void)
{
	http_client_options o = { 0 };
	http_response r;
	lx_err err;
	server_start();
	/* one byte over: never cut silently */
	CHECK_EQ_INT(-EMSGSIZE, get(&o, "/bytes/1001", 1000, &r, &err));
	CHECK_STR_CONTAINS(err.msg, "GET http://127.0.0.1:");
	CHECK_STR_CONTAINS(err.msg, "/bytes/1001: HTTP 200: the answer is longer than 1000 bytes");
	http_response_free(&r);
	/* the default limit: 1 MiB */
	CHECK_EQ_INT(-EMSGSIZE, get(&o, "/bytes/1048577", 0, &r, &err));
	http_response_free(&r);
	CHECK_EQ_INT(0, get(&o, "/bytes/1048576", 0, &r, &err));
	CHECK_EQ_INT(1048576, r.len);
	http_response_free(&r);
	server_stop_all();
}

static void test_status_error_words_it(void)
{
	http_client_options o = { 0 };
	http_request q = { .method = "GET", .url = "http://x/missing" };
	http_response r;
	lx_err err;
	server_start();
	CHECK_EQ_INT(0, get(&o, "/missing", 0, &r, &err));   /* any status completes */
	CHECK_EQ_INT(404, r.status);
	CHECK_EQ_INT(-ENOENT, http_status_error(&q, &r, &err));
	CHECK(strcmp(err.msg, "GET http://x/missing: HTTP 404: no such thing") == 0);
	http_response_free(&r);
	CHECK_EQ_INT(0, get(&o, "/bytes/3", 0, &r, &err));
	CHECK_EQ_INT(0, http_status_error(&q, &r, &err));
	http_response_free(&r);
	server_stop_all();
}

/* A port nobody listens on: bound, then closed. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void test_connection_refused_is_eagain(void)
{
	http_client_options o = { 0 };
	http_request q = { .method = "POST", .timeout_ms = 5000 };
	http_response r;
	char url[64];
	lx_err err;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", free_port());
	q.url = url;
	CHECK_EQ_INT(-EAGAIN, http_fetch(&o, &q, &r, &err));
	CHECK(strncmp(err.msg, "POST http://127.0.0.1:", 22) == 0);
	CHECK_STR_CONTAINS(err.msg, "is the service running there");
	CHECK_EQ_INT(0, r.status);
	http_response_free(&r);
	curl_global_cleanup();
}

static void test_idle_timeout(void)
{
	http_client_options o = { 0 };
	char url[128];
	http_request q = { .method = "GET", .url = url, .idle_ms = 1000 };
	http_response r;
	lx_err err;
	server_start();
	snprintf(url, sizeof(url), "%s/stall", base);
	/* one byte, then silence: ended by the idle bound, not the server */
	CHECK_EQ_INT(-EAGAIN, http_fetch(&o, &q, &r, &err));
	CHECK_STR_CONTAINS(err.msg, "/stall: ");
	http_response_free(&r);
	server_stop_all();
}

typedef struct later {
	int *flag;
	http_client *client;
} later;

static void *cancel_later(void *arg)
{
	later *l = arg;
	usleep(200000);
	if (l->flag != NULL)
		__atomic_store_n(l->flag, 1, __ATOMIC_RELEASE);
	if (l->client != NULL)
		http_client_interrupt(l->client);
	return NULL;
}

static void test_cancel_flag(void)
{
	int cancel = 0;
	http_client_options o = { .cancel = &cancel };
	char url[128];
	http_request q = { .method = "GET", .url = url };   /* no bound but the flag */
	http_response r;
	later l = { &cancel, NULL };
	pthread_t t;
	lx_err err;
	server_start();
	snprintf(url, sizeof(url), "%s/stall", base);
	pthread_create(&t, NULL, cancel_later, &l);
	CHECK_EQ_INT(-EINTR, http_fetch(&o, &q, &r, &err));
	CHECK_STR_CONTAINS(err.msg, "/stall: cancelled");
	pthread_join(t, NULL);
	http_response_free(&r);
	/* set before the call: it does not start */
	CHECK_EQ_INT(-EINTR, get(&o, "/bytes/1", 0, &r, &err));
	http_response_free(&r);
	server_stop_all();
}

static void test_interrupt_and_reuse(void)
{
	int cancel = 0;
	http_client_options o = { .cancel = &cancel };
	char url[128];
	http_request q = { .method = "GET", .url = url };
	http_response r;
	http_client *c;
	later l = { NULL, NULL };
	pthread_t t;
	lx_err err;
	server_start();
	CHECK_EQ_INT(0, http_client_open(&c, &o, &err));
	l.client = c;
	snprintf(url, sizeof(url), "%s/stall", base);
	/* interrupted without the flag: the call ends as cut off */
	pthread_create(&t, NULL, cancel_later, &l);
	CHECK_EQ_INT(-EAGAIN, http_client_do(c, &q, &r, &err));
	pthread_join(t, NULL);
	http_response_free(&r);
	/* the client still works */
	snprintf(url, sizeof(url), "%s/bytes/5", base);
	CHECK_EQ_INT(0, http_client_do(c, &q, &r, &err));
	CHECK_EQ_INT(5, r.len);
	http_response_free(&r);
	http_client_close(c);
	server_stop_all();
}

static void test_bearer_token_sent(void)
{
	http_client_options o = { .token = "s3cret-token" };
	http_response r;
	lx_err err;
	server_start();
	CHECK_EQ_INT(0, get(&o, "/auth", 0, &r, &err));
	CHECK(strcmp(r.body, "Bearer s3cret-token") == 0);
	http_response_free(&r);
	o.token = NULL;
	CHECK_EQ_INT(0, get(&o, "/auth", 0, &r, &err));
	CHECK(strcmp(r.body, "(none)") == 0);
	http_response_free(&r);
	o.token = "bad\r\nX-Injected: 1";
	CHECK_EQ_INT(-EINVAL, get(&o, "/auth", 0, &r, &err));
	CHECK_STR_CONTAINS(err.msg, "control character");
	http_response_free(&r);
	server_stop_all();
}

typedef struct counted {
	size_t bytes;
	size_t stop_at;
} counted;

static int count_sink(void *arg, const char *data, size_t len)
{
	counted *c = arg;
	(void)data;
	c->bytes += len;
	return c->stop_at && c->bytes >= c->stop_at ? 1 : 0;
}

static void test_sink_streams_past_the_limit(void)
{
	http_client_options o = { 0 };
	char url[128];
	counted n = { 0, 0 };
	http_request q = { .method = "GET", .url = url, .body_max = 100,
			   .sink = count_sink, .sink_arg = &n };
	http_response r;
	lx_err err;
	server_start();
	snprintf(url, sizeof(url), "%s/bytes/3000000", base);
	CHECK_EQ_INT(0, http_fetch(&o, &q, &r, &err));
	CHECK_EQ_INT(3000000, n.bytes);
	CHECK_EQ_INT(0, r.ended_by_sink);
	http_response_free(&r);
	/* a sink that has enough ends the call as complete */
	n = (counted){ 0, 1 };
	CHECK_EQ_INT(0, http_fetch(&o, &q, &r, &err));
	CHECK_EQ_INT(1, r.ended_by_sink);
	http_response_free(&r);
	/* an error answer is collected for its message, not sunk */
	n = (counted){ 0, 0 };
	snprintf(url, sizeof(url), "%s/missing", base);
	CHECK_EQ_INT(0, http_fetch(&o, &q, &r, &err));
	CHECK_EQ_INT(404, r.status);
	CHECK_EQ_INT(0, n.bytes);
	CHECK_STR_CONTAINS(r.body, "no such thing");
	http_response_free(&r);
	server_stop_all();
}

static void test_fetch_all(void)
{
	http_client_options o = { 0 };
	char u[3][128];
	http_request q[3] = {
		{ .method = "GET", .url = u[0], .timeout_ms = 5000 },
		{ .method = "GET", .url = u[1], .timeout_ms = 5000, .body_max = 10 },
		{ .method = "GET", .url = u[2], .timeout_ms = 5000 },
	};
	http_response r[3];
	lx_err err[3];
	int rc[3];
	server_start();
	snprintf(u[0], sizeof(u[0]), "%s/bytes/7", base);
	snprintf(u[1], sizeof(u[1]), "%s/bytes/11", base);
	snprintf(u[2], sizeof(u[2]), "http://127.0.0.1:%d/", free_port());
	http_fetch_all(&o, q, r, rc, err, 3);
	CHECK_EQ_INT(0, rc[0]);
	CHECK_EQ_INT(7, r[0].len);
	CHECK_EQ_INT(-EMSGSIZE, rc[1]);
	CHECK_EQ_INT(-EAGAIN, rc[2]);
	CHECK_STR_CONTAINS(err[2].msg, "GET http://127.0.0.1:");
	for (int i = 0; i < 3; i++)
		http_response_free(&r[i]);
	server_stop_all();
}

/* A body from a descriptor's range: read where it lies, sent whole; a
 * file shorter than the range is -EIO, not a short body. */
static void test_body_from_a_descriptor_range(void)
{
	char path[] = "/tmp/ltxfs-test-http-XXXXXX", url[128], want[64];
	unsigned long long sum = 0;
	uint8_t *data = malloc(3 << 20);
	http_client_options o = { 0 };
	http_request q = { .method = "PUT", .url = url, .timeout_ms = 5000,
			   .upload_off = 1000, .upload_len = 2 << 20 };
	http_response r;
	lx_err err;
	int fd = mkstemp(path);
	for (size_t i = 0; i < (3u << 20); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	for (size_t i = 1000; i < 1000 + (2u << 20); i++)
		sum += data[i];
	CHECK(write(fd, data, 3 << 20) == 3 << 20);
	lseek(fd, 5, SEEK_SET);
	q.upload_fd = fd;
	snprintf(want, sizeof(want), "%u %llu", 2u << 20, sum);
	server_start();
	snprintf(url, sizeof(url), "%s/count", base);
	CHECK_EQ_INT(0, http_fetch(&o, &q, &r, &err));
	CHECK_EQ_INT(200, r.status);
	CHECK(r.body != NULL && strcmp(r.body, want) == 0);
	CHECK_EQ_U64(2u << 20, r.sent);
	CHECK_EQ_INT(5, lseek(fd, 0, SEEK_CUR));          /* the offset untouched */
	http_response_free(&r);
	q.upload_off = (3u << 20) - 100;                   /* 100 bytes left of 2 MiB */
	CHECK_EQ_INT(-EIO, http_fetch(&o, &q, &r, &err));
	CHECK_STR_CONTAINS(err.msg, "the body's file ended at byte 3145728 of");
	http_response_free(&r);
	server_stop_all();
	close(fd);
	unlink(path);
	free(data);
}

/* SigV4: libcurl signs with the key and region given (what S3 checks is
 * tests/integration/test_s3_client.py's). */
static void test_aws_sigv4_signs(void)
{
	http_client_options o = { 0 };
	char url[128];
	const char *headers[] = { "x-amz-content-sha256: "
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", NULL };
	http_request q = { .method = "GET", .url = url, .timeout_ms = 5000, .headers = headers,
			   .aws_sigv4 = "aws:amz:eu-west-1:s3", .userpwd = "AKID:secret" };
	http_response r;
	lx_err err;
	server_start();
	snprintf(url, sizeof(url), "%s/auth", base);
	CHECK_EQ_INT(0, http_fetch(&o, &q, &r, &err));
	CHECK_STR_CONTAINS(r.body, "AWS4-HMAC-SHA256 Credential=AKID/");
	CHECK_STR_CONTAINS(r.body, "/eu-west-1/s3/aws4_request, SignedHeaders=host;"
			   "x-amz-content-sha256;x-amz-date, Signature=");
	http_response_free(&r);
	server_stop_all();
}

UNIT_TESTS(TEST(test_body_within_limit), TEST(test_body_over_limit_is_an_error),
	   TEST(test_status_error_words_it), TEST(test_connection_refused_is_eagain),
	   TEST(test_idle_timeout), TEST(test_cancel_flag), TEST(test_interrupt_and_reuse),
	   TEST(test_bearer_token_sent), TEST(test_sink_streams_past_the_limit),
	   TEST(test_fetch_all), TEST(test_body_from_a_descriptor_range),
	   TEST(test_aws_sigv4_signs))
