/*
 * http_client.h - the one HTTP client of ltxfs (libcurl): the lease
 * backends, the replication stream, catch-up, hand-off and every command
 * line client call through it.
 *
 * The contract:
 *
 *  - Configuration.  An http_client_options says how to reach other nodes
 *    (connect timeout, TLS trust and identity, bearer token) and how a call
 *    is cancelled.  One function applies it to a libcurl handle, so every
 *    call is configured the same way.  The strings are the caller's and must
 *    outlive the client.  Only http:// and https:// URLs are followed
 *    (never a redirect).  A token holding a control character is refused
 *    (-EINVAL), never sent mangled.
 *
 *  - A call.  An http_request: method, URL, header lines, a request body
 *    from memory, a file or a range of a descriptor, and where the answer
 *    goes.  A request may be signed with AWS Signature Version 4 (S3).  A response body is
 *    collected into a buffer bounded by `body_max`; an answer longer than
 *    that is an error that says so (never cut silently).  A long-lived
 *    answer (the replication stream) is passed to `sink` instead, as it
 *    arrives; only 2xx bodies go to a sink, so an error's text is still
 *    collected for the message.
 *
 *  - Time.  `connect_timeout_ms` bounds every connection; `timeout_ms` the
 *    whole call; `idle_ms` ends a call on which nothing arrived for that long
 *    (a stream that must hear a heartbeat every second).  Either may be 0
 *    (no bound); a call with neither lasts until cancelled.
 *
 *  - Cancellation.  `cancel` is an int another thread sets (atomically) to
 *    end every call of the client with -EINTR: it is checked from libcurl's
 *    progress callback, about once a second and at each arrival.  A client
 *    used by a thread that must stop at once is also interrupted by
 *    http_client_interrupt(), which shuts the connection's socket down.
 *
 *  - Errors are values (lx_err), one style: "<METHOD> <url>: <what>".
 *      -EINTR     cancelled;
 *      -EAGAIN    no answer: unreachable, refused, timed out, cut off;
 *      -EMSGSIZE  an answer longer than body_max;
 *      -ECANCELED the sink refused the data (its own error says why);
 *      -EIO       the body's descriptor could not be read (or ended early).
 *    Any HTTP status is a completed call (0): the caller judges it, and
 *    http_status_error() words a non-2xx answer in the same style, with an
 *    excerpt of the body (the "error" member of a JSON body, else its
 *    start).
 *
 * A client is used by one thread at a time; http_client_interrupt() may be
 * called from any thread.  libcurl's global initialisation is the
 * program's (before any thread starts).
 */
#ifndef LTXFS_NET_HTTP_CLIENT_H
#define LTXFS_NET_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* Answers a request does not bound itself: a JSON document of a node. */
#define HTTP_BODY_MAX_DEFAULT (1u << 20)
/* Documents with a row per database (/status, a hand-off's positions):
 * about 400 bytes a database, 100,000 databases. */
#define HTTP_BODY_MAX_DOCUMENT (64u << 20)
#define HTTP_CONNECT_TIMEOUT_MS_DEFAULT 10000

typedef struct http_client_options {
	int64_t connect_timeout_ms;  /* 0: HTTP_CONNECT_TIMEOUT_MS_DEFAULT */
	const int *cancel;           /* optional: set to end calls with -EINTR */
	/* TLS (https:// URLs); NULL: libcurl's defaults */
	const char *tls_ca;          /* the CA file to trust */
	const char *tls_cert;        /* this node's certificate (mutual TLS) */
	const char *tls_key;         /* and its key */
	const char *token;           /* sent as "Authorization: Bearer <token>"; NULL: none */
} http_client_options;

/* A 2xx body, as it arrives.  Return 0 to go on, 1 to end the call as
 * complete (enough was read), -1 to end it as failed (-ECANCELED). */
typedef int (*http_sink_fn)(void *arg, const char *data, size_t len);

/* Each response header: name and value, without the line end. */
typedef void (*http_header_fn)(void *arg, const char *name, size_t name_len,
			       const char *value, size_t value_len);

typedef struct http_request {
	const char *method;            /* "GET", "POST", "PUT" */
	const char *url;
	const char *const *headers;    /* NULL-terminated "Name: value" lines, or NULL */
	/* the body: from memory, else from a file (all of it), else none
	 * (a POST or PUT then sends an empty one) */
	const void *body;
	size_t body_len;
	FILE *upload;
	int64_t timeout_ms;            /* the whole call; 0: none */
	int64_t idle_ms;               /* nothing arrived for this long (rounded up to
					* whole seconds); 0: none */
	size_t body_max;               /* 0: HTTP_BODY_MAX_DEFAULT */
	http_sink_fn sink;             /* NULL: a 2xx body is collected too */
	void *sink_arg;
	http_header_fn on_header;      /* NULL: none */
	void *header_arg;
	long recv_buffer;              /* libcurl's receive buffer; 0: its default */
	/* The body from a descriptor: `upload_len` bytes at `upload_off`, read
	 * with pread (the descriptor's offset is left alone; a file shorter than
	 * that is an error, -EIO).  Used when `body` and `upload` are NULL and
	 * upload_len > 0. */
	int upload_fd;
	uint64_t upload_off, upload_len;
	/* AWS Signature Version 4 (S3 and its kin): libcurl signs the request
	 * ("aws:amz:REGION:SERVICE") with `userpwd` ("ACCESS_KEY:SECRET").  The
	 * URL's path and query are signed as they are written (the path is sent
	 * as is, dot segments included): the caller writes them canonical, the
	 * query sorted.  Every header line of `headers` is signed too.  NULL:
	 * not signed. */
	const char *aws_sigv4;
	const char *userpwd;
	int fresh_connect;             /* not on a kept connection (a retry's: the
					* last one may be what failed) */
} http_request;

typedef struct http_response {
	long status;                   /* 0 until an answer came */
	char *body;                    /* the collected body, NUL-terminated (or NULL) */
	size_t len;
	int ended_by_sink;             /* the sink returned 1 */
	int refused;                   /* the connection was refused (ECONNREFUSED):
					* nothing listens at that address */
	uint64_t sent, received;       /* body bytes on the wire (for counters) */
} http_response;

typedef struct http_client http_client;

int http_client_open(http_client **out, const http_client_options *o, lx_err *err);
void http_client_close(http_client *c);

/* Perform `q`; `r` is reset first.  After 0, r->body is never NULL ("" for
 * no body).  Free r with http_response_free, whatever the result. */
int http_client_do(http_client *c, const http_request *q, http_response *r, lx_err *err);

/* From another thread: end the call in progress now (-EAGAIN, or -EINTR if
 * `cancel` is set). */
void http_client_interrupt(http_client *c);

/* One call with a client of its own (the command line, a hand-off). */
int http_fetch(const http_client_options *o, const http_request *q, http_response *r,
	       lx_err *err);

/* `n` calls at once, so that silent peers cost one timeout in all, not one
 * each; rc[i] and err[i] (optional) are call i's result as http_client_do's. */
void http_fetch_all(const http_client_options *o, const http_request *q, http_response *r,
		    int *rc, lx_err *err, size_t n);

void http_response_free(http_response *r);

/* 0 for a 2xx answer; else an error "<METHOD> <url>: HTTP <status>: <excerpt>"
 * with ENOENT (404), EACCES (401, 403), EAGAIN (429, 5xx) or EPROTO. */
int http_status_error(const http_request *q, const http_response *r, lx_err *err);

/* What the answer says went wrong: the "error" member of a JSON body, else
 * the body's start on one line; "(no body)" if empty. */
void http_body_excerpt(const http_response *r, char *out, size_t cap);

#endif
