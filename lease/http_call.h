/*
 * http_call.h - one synchronous HTTP client for a lease backend (Consul,
 * etcd): a libcurl handle used by one thread at a time, whose call in
 * progress another thread can end at once (http_call_interrupt shuts the
 * socket down, so a blocking query or a watch returns without waiting for
 * libcurl's next progress callback).
 *
 * Errors are values, with `what` (e.g. "consul http://127.0.0.1:8500") in
 * the message:
 *   -EINTR    interrupted (the abort flag was set),
 *   -EAGAIN   the server could not be reached or did not answer in time,
 *   -EPROTO   an answer longer than HTTP_CALL_BODY_MAX.
 * Any HTTP status is a successful call: the caller judges it.
 */
#ifndef LTXFS_LEASE_HTTP_CALL_H
#define LTXFS_LEASE_HTTP_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "base/err.h"

#define HTTP_CALL_BODY_MAX (64 * 1024)

typedef struct http_call http_call;

/* One answer: status, body (NUL-terminated) and, if the request named one,
 * the decimal value of a response header. */
typedef struct http_reply {
	long status;
	char body[HTTP_CALL_BODY_MAX + 1];
	size_t len;
	int truncated;
	uint64_t header_value;
	int has_header;
	/* private: the header looked for */
	const char *want_header;
	/* private: end the call once this many lines arrived (0: never) */
	int stop_after_lines;
	int lines;
	int stopped;
} http_reply;

typedef struct http_request {
	const char *method;             /* "GET", "PUT", "POST" */
	const char *url;
	const char *body;               /* NULL: none */
	struct curl_slist *headers;     /* the caller's; Content-Type is its choice */
	int64_t timeout_ms;             /* the whole call */
	const char *want_header;        /* e.g. "X-Consul-Index" (case-insensitive) */
	int stop_after_lines;           /* a streamed answer of one JSON object per line
					 * (etcd's watch): end the call once this many
					 * lines arrived; 0: read it all */
} http_request;

/* `abort` (optional) is an int another thread sets atomically to end calls
 * with -EINTR; `connect_timeout_ms` bounds every connection. */
int http_call_open(http_call **out, const char *what, const int *abort,
		   int64_t connect_timeout_ms, lx_err *err);
void http_call_close(http_call *h);

/* Perform `q`; *sent_ms (optional): the monotonic time it was sent. */
int http_call_do(http_call *h, const http_request *q, http_reply *r, int64_t *sent_ms,
		 lx_err *err);

/* From another thread: end the call in progress now. */
void http_call_interrupt(http_call *h);

#endif
