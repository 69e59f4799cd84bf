/*
 * test_http1.c - proxy/http1.h: request and response heads, their body
 * framing, refusal of the ambiguous ones (request smuggling), and chunked
 * bodies followed byte by byte.
 */
#include <errno.h>
#include <string.h>

#include "proxy/http1.h"
#include "tests/unit/unit.h"

static int req(const char *s, http1_head *h)
{
	lx_err err;
	return http1_parse_request(s, strlen(s), h, &err);
}

static int resp(const char *s, const char *method, http1_head *h)
{
	lx_err err;
	return http1_parse_response(s, strlen(s), method, strlen(method), h, &err);
}

static void test_requests(void)
{
	http1_head h;
	const char *s = "POST /posts?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
			"X-Empty:\r\n\r\nhello world!";
	CHECK_EQ_INT((int)(strlen(s) - 12), req(s, &h));
	CHECK(h.method_len == 4 && memcmp(h.method, "POST", 4) == 0);
	CHECK(h.target_len == 10 && memcmp(h.target, "/posts?x=1", 10) == 0);
	CHECK_EQ_INT(1, h.minor);
	CHECK_EQ_INT(HTTP1_BODY_LENGTH, h.body);
	CHECK_EQ_U64(12, h.content_length);
	CHECK_EQ_INT(1, h.keep_alive);
	CHECK(http1_find(&h, "host") != NULL && http1_find(&h, "x-empty")->value_len == 0);
	CHECK_EQ_INT(0, req("GET / HTTP/1.1\r\nHost: a\r\n", &h));          /* not complete */
	CHECK(req("GET / HTTP/1.1\nHost: a\n\n", &h) > 0);                    /* bare LF */
	CHECK_EQ_INT(HTTP1_BODY_NONE, h.body);
	CHECK(req("GET / HTTP/1.0\r\n\r\n", &h) > 0 && h.keep_alive == 0);
	CHECK(req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h) > 0 && h.keep_alive);
	CHECK(req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &h) > 0 && !h.keep_alive);
	CHECK(req("PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h) > 0);
	CHECK_EQ_INT(HTTP1_BODY_CHUNKED, h.body);
	CHECK(req("GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n"
		  "Upgrade: websocket\r\n\r\n", &h) > 0 && h.upgrade);
	CHECK(req("\r\nGET / HTTP/1.1\r\n\r\n", &h) > 0);                   /* a stray CRLF */
	CHECK(http1_method_is_safe("GET", 3) && http1_method_is_safe("HEAD", 4));
	CHECK(!http1_method_is_safe("POST", 4) && !http1_method_is_safe("DELETE", 6));
}

static void test_ambiguous_requests_are_refused(void)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
		"GET / HTTP/1.1\r\n: a\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET /\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",
		"GET  HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http1_head h;
		lx_err err;
		lx_err_clear(&err);
		CHECK_EQ_INT(-EBADMSG, http1_parse_request(bad[i], strlen(bad[i]), &h, &err));
		CHECK(strstr(err.msg, "malformed HTTP message") != NULL);
	}
	/* the same Content-Length twice is one length */
	{
		http1_head h;
		CHECK(req("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &h) > 0);
	}
	/* a head that never ends is refused once it passes the limit */
	{
		static char big[HTTP1_HEAD_MAX + 200];
		http1_head h;
		lx_err err;
		memset(big, 'a', sizeof(big));
		memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
		CHECK_EQ_INT(-EBADMSG, http1_parse_request(big, sizeof(big), &h, &err));
	}
}

static void test_responses(void)
{
	http1_head h;
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", &h) > 0);
	CHECK_EQ_INT(200, h.status);
	CHECK_EQ_INT(HTTP1_BODY_LENGTH, h.body);
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", &h) > 0);
	CHECK_EQ_INT(HTTP1_BODY_NONE, h.body);
	CHECK(resp("HTTP/1.1 204 No Content\r\n\r\n", "DELETE", &h) > 0);
	CHECK_EQ_INT(HTTP1_BODY_NONE, h.body);
	CHECK(resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "GET", &h) > 0);
	CHECK_EQ_INT(HTTP1_BODY_NONE, h.body);
	CHECK(resp("HTTP/1.1 200 OK\r\n\r\n", "GET", &h) > 0);
	CHECK_EQ_INT(HTTP1_BODY_UNTIL_CLOSE, h.body);
	CHECK_EQ_INT(0, h.keep_alive);
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", &h) > 0);
	CHECK_EQ_INT(HTTP1_BODY_CHUNKED, h.body);
	CHECK(resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		   "Connection: Upgrade\r\n\r\n", "GET", &h) > 0);
	CHECK(h.upgrade && h.body == HTTP1_BODY_NONE);
	CHECK(resp("HTTP/1.0 200\r\nContent-Length: 0\r\n\r\n", "GET", &h) > 0);   /* no reason */
	CHECK_EQ_INT(HTTP1_BODY_NONE, h.body);
	{
		lx_err err;
		CHECK_EQ_INT(-EBADMSG, http1_parse_response("HTTP/1.1 2x0 OK\r\n\r\n", 19, "GET", 3,
							    &h, &err));
		CHECK_EQ_INT(-EBADMSG, http1_parse_response("HTTP/1.1 200OK\r\n\r\n", 18, "GET", 3,
							    &h, &err));
	}
}

/* Feed `s` in pieces of `step` bytes: what the body took, and done. */
static long feed_all(const char *s, size_t step, int *done)
{
	http1_chunked c;
	lx_err err;
	size_t at = 0, len = strlen(s);
	http1_chunked_init(&c);
	*done = 0;
	while (at < len && !*done) {
		size_t n = len - at < step ? len - at : step;
		long used = http1_chunked_feed(&c, s + at, n, done, &err);
		if (used < 0)
			return used;
		at += (size_t)used;
		if ((size_t)used < n && !*done)
			return -1;
	}
	return (long)at;
}

static void test_chunked_bodies(void)
{
	const char *body = "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
			   "Trailer: x\r\n\r\n";
	size_t len = strlen(body);
	char next[256];
	int done;
	for (size_t step = 1; step <= len; step++) {
		CHECK_EQ_INT((int)len, (int)feed_all(body, step, &done));
		CHECK(done);
	}
	/* the body ends where the next message starts */
	snprintf(next, sizeof(next), "%sGET / HTTP/1.1\r\n\r\n", "0\r\n\r\n");
	CHECK_EQ_INT(5, (int)feed_all(next, sizeof(next), &done));
	CHECK(done);
	CHECK(feed_all("4\r\nabc", 100, &done) == 6 && !done);              /* more to come */
	CHECK(feed_all("x\r\n", 100, &done) == -EBADMSG);
	CHECK(feed_all("\r\n", 100, &done) == -EBADMSG);
	CHECK(feed_all("3\r\nabcX\r\n", 100, &done) == -EBADMSG);
	CHECK(feed_all("11111111111111111\r\n", 100, &done) == -EBADMSG);  /* > 64 bits */
}

UNIT_TESTS(TEST(test_requests), TEST(test_ambiguous_requests_are_refused),
	   TEST(test_responses), TEST(test_chunked_bodies))
