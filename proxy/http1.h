/*
 * http1.h - the parts of HTTP/1.1 (RFC 9112) a forwarding proxy needs:
 * parse a request or a response head, and follow a body's framing while
 * the body passes through unchanged.  Pure logic: no I/O, no allocation.
 *
 * A head's strings point into the caller's buffer, which must stay as it
 * is while the head is used.  What the parser refuses, it refuses with a
 * reason (err): bare LF line ends are accepted as RFC 9112 allows, but a
 * request with both Transfer-Encoding and Content-Length, conflicting
 * lengths, a Transfer-Encoding other than a final "chunked", or obsolete
 * header folding is malformed (each is a request-smuggling vector when two
 * parsers disagree).
 */
#ifndef LTXFS_PROXY_HTTP1_H
#define LTXFS_PROXY_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define HTTP1_HEAD_MAX (64 * 1024)     /* request line or status line + headers */
#define HTTP1_HEADERS_MAX 128

typedef struct http1_header {
	const char *name, *value;
	size_t name_len, value_len;
} http1_header;

enum http1_body {
	HTTP1_BODY_NONE,
	HTTP1_BODY_LENGTH,        /* content_length bytes */
	HTTP1_BODY_CHUNKED,       /* follow it with http1_chunked */
	HTTP1_BODY_UNTIL_CLOSE,   /* a response that ends when the server closes */
};

typedef struct http1_head {
	/* request: method and target; response: status */
	const char *method, *target;
	size_t method_len, target_len;
	int status;
	int minor;                /* HTTP/1.minor */
	http1_header h[HTTP1_HEADERS_MAX];
	size_t n;
	size_t len;               /* bytes of the head, through its empty line */
	enum http1_body body;
	uint64_t content_length;
	int keep_alive;           /* the connection may carry another exchange */
	int upgrade;              /* request: asks for an upgrade; response: 101 */
} http1_head;

/*
 * Parse the head at the start of buf[0..len): >0 its length (h filled), 0
 * when the head is not complete yet, -EBADMSG when it is malformed or
 * longer than HTTP1_HEAD_MAX (why in err).
 */
int http1_parse_request(const char *buf, size_t len, http1_head *h, lx_err *err);

/* The same for a response to a request with `method` (HEAD and 1xx, 204,
 * 304 answers have no body). */
int http1_parse_response(const char *buf, size_t len, const char *method, size_t method_len,
			 http1_head *h, lx_err *err);

/* The first header named `name` (case-insensitive), or NULL. */
const http1_header *http1_find(const http1_head *h, const char *name);

/* 1 if the method is GET, HEAD, OPTIONS or TRACE: a request that does not
 * change anything (RFC 9110 safe methods). */
int http1_method_is_safe(const char *method, size_t len);

/* Follows a chunked body as its bytes pass. */
typedef struct http1_chunked {
	int state;
	uint64_t left;            /* bytes of chunk data still to come */
	size_t line;              /* length of the size or trailer line so far */
	int digits;
} http1_chunked;

void http1_chunked_init(http1_chunked *c);

/*
 * Feed the next bytes: returns how many of them belong to the body (all,
 * or fewer when the body ended inside buf: the rest is the next message),
 * or -EBADMSG.  *done becomes 1 once the last chunk and the trailers have
 * passed.
 */
long http1_chunked_feed(http1_chunked *c, const char *buf, size_t len, int *done, lx_err *err);

#endif
