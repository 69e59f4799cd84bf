/*
 * http1.c - HTTP/1.1 heads and body framing (see http1.h).
 */
#include "proxy/http1.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The line starting at buf[at]: its length without CR LF (or LF), and
 * where the next begins; 0 when no line end is in buf yet. */
static int next_line(const char *buf, size_t len, size_t at, size_t *line_len, size_t *next)
{
	const char *lf = memchr(buf + at, '\n', len - at);
	size_t end;
	if (lf == NULL)
		return 0;
	end = (size_t)(lf - buf);
	*next = end + 1;
	if (end > at && buf[end - 1] == '\r')
		end--;
	*line_len = end - at;
	return 1;
}

static int bad(lx_err *err, const char *why)
{
	return lx_err_set(err, EBADMSG, "malformed HTTP message: %s", why);
}

static int parse_version(const char *s, size_t len, int *minor)
{
	if (len != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
		return -1;
	*minor = s[7] - '0';
	return 0;
}

/* METHOD SP TARGET SP HTTP/1.x */
static int request_line(const char *s, size_t len, http1_head *h, lx_err *err)
{
	const char *sp1 = memchr(s, ' ', len), *sp2;
	if (sp1 == NULL || sp1 == s)
		return bad(err, "no method in the request line");
	for (const char *p = s; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return bad(err, "invalid method");
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - s));
	if (sp2 == NULL || sp2 == sp1 + 1)
		return bad(err, "no target in the request line");
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
			return bad(err, "invalid request target");
	if (parse_version(sp2 + 1, len - (size_t)(sp2 + 1 - s), &h->minor) < 0)
		return bad(err, "not HTTP/1.0 or HTTP/1.1");
	h->method = s;
	h->method_len = (size_t)(sp1 - s);
	h->target = sp1 + 1;
	h->target_len = (size_t)(sp2 - sp1 - 1);
	return 0;
}

/* HTTP/1.x SP 3DIGIT [SP reason] */
static int status_line(const char *s, size_t len, http1_head *h, lx_err *err)
{
	if (len < 12 || parse_version(s, 8, &h->minor) < 0 || s[8] != ' ' ||
	    (len > 12 && s[12] != ' '))
		return bad(err, "invalid status line");
	h->status = 0;
	for (int i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return bad(err, "invalid status code");
		h->status = h->status * 10 + (s[i] - '0');
	}
	if (h->status < 100)
		return bad(err, "invalid status code");
	return 0;
}

static int header_line(const char *s, size_t len, http1_head *h, lx_err *err)
{
	const char *colon = memchr(s, ':', len), *v, *e;
	if (s[0] == ' ' || s[0] == '\t')
		return bad(err, "obsolete header line folding");
	if (colon == NULL || colon == s)
		return bad(err, "a header line without a name");
	for (const char *p = s; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return bad(err, "invalid header name");
	if (h->n == HTTP1_HEADERS_MAX)
		return bad(err, "too many header lines");
	v = colon + 1;
	e = s + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (const char *p = v; p < e; p++)
		if (*p == '\0' || *p == '\r' || *p == '\n')
			return bad(err, "invalid character in a header value");
	h->h[h->n++] = (http1_header){ s, v, (size_t)(colon - s), (size_t)(e - v) };
	return 0;
}

/* 1 if the comma-separated list `v` holds `token` (case-insensitive). */
static int list_has(const char *v, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;
	while (i < len) {
		size_t j = i, k;
		while (j < len && v[j] != ',')
			j++;
		k = j;
		while (i < k && (v[i] == ' ' || v[i] == '\t'))
			i++;
		while (k > i && (v[k - 1] == ' ' || v[k - 1] == '\t'))
			k--;
		if (k - i == tl && strncasecmp(v + i, token, tl) == 0)
			return 1;
		i = j + 1;
	}
	return 0;
}

/* 1 if the last element of the list is `token`. */
static int list_ends_with(const char *v, size_t len, const char *token)
{
	size_t tl = strlen(token), k = len, i;
	while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
		k--;
	i = k;
	while (i > 0 && v[i - 1] != ',')
		i--;
	while (i < k && (v[i] == ' ' || v[i] == '\t'))
		i++;
	return k - i == tl && strncasecmp(v + i, token, tl) == 0;
}

static int is_named(const http1_header *x, const char *name)
{
	return x->name_len == strlen(name) && strncasecmp(x->name, name, x->name_len) == 0;
}

const http1_header *http1_find(const http1_head *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (is_named(&h->h[i], name))
			return &h->h[i];
	return NULL;
}

/* Content-Length headers: -1 malformed or conflicting, 0 none, 1 found. */
static int content_length(const http1_head *h, uint64_t *out)
{
	int found = 0;
	for (size_t i = 0; i < h->n; i++) {
		const http1_header *x = &h->h[i];
		uint64_t v = 0;
		if (!is_named(x, "Content-Length"))
			continue;
		if (x->value_len == 0 || x->value_len > 19)
			return -1;
		for (size_t j = 0; j < x->value_len; j++) {
			if (x->value[j] < '0' || x->value[j] > '9')
				return -1;
			v = v * 10 + (uint64_t)(x->value[j] - '0');
		}
		if (found && v != *out)
			return -1;
		*out = v;
		found = 1;
	}
	return found;
}

/* Transfer-Encoding: 0 none, 1 chunked last, 2 something else last;
 * several header lines are one list. */
static int transfer_encoding(const http1_head *h)
{
	const http1_header *last = NULL;
	for (size_t i = 0; i < h->n; i++)
		if (is_named(&h->h[i], "Transfer-Encoding"))
			last = &h->h[i];
	if (last == NULL)
		return 0;
	return list_ends_with(last->value, last->value_len, "chunked") ? 1 : 2;
}

static void connection_options(http1_head *h)
{
	const http1_header *c = http1_find(h, "Connection");
	int close = c != NULL && list_has(c->value, c->value_len, "close");
	int keep = c != NULL && list_has(c->value, c->value_len, "keep-alive");
	h->keep_alive = h->minor == 1 ? !close : keep && !close;
	h->upgrade = c != NULL && list_has(c->value, c->value_len, "upgrade") &&
		     http1_find(h, "Upgrade") != NULL;
}

/* The head's lines: the first line, then headers up to the empty line. */
static int parse_head(const char *buf, size_t len, http1_head *h, int request, lx_err *err)
{
	size_t at = 0, ll, next;
	int first = 1;
	memset(h, 0, sizeof(*h));
	for (;;) {
		if (!next_line(buf, len, at, &ll, &next))
			return len > HTTP1_HEAD_MAX ? bad(err, "head longer than 64 KiB") : 0;
		if (next > HTTP1_HEAD_MAX)
			return bad(err, "head longer than 64 KiB");
		if (first && ll == 0 && request && at < 4) {
			at = next;        /* RFC 9112 2.2: ignore a CRLF before a request */
			continue;
		}
		if (first) {
			int rc = request ? request_line(buf + at, ll, h, err) :
				 status_line(buf + at, ll, h, err);
			if (rc < 0)
				return rc;
			first = 0;
		} else if (ll == 0) {
			h->len = next;
			break;
		} else if (header_line(buf + at, ll, h, err) < 0) {
			return -EBADMSG;
		}
		at = next;
	}
	connection_options(h);
	return 1;
}

int http1_parse_request(const char *buf, size_t len, http1_head *h, lx_err *err)
{
	int rc = parse_head(buf, len, h, 1, err), te, cl;
	if (rc <= 0)
		return rc;
	te = transfer_encoding(h);
	cl = content_length(h, &h->content_length);
	if (cl < 0)
		return bad(err, "invalid or conflicting Content-Length");
	if (te != 0 && cl != 0)
		return bad(err, "both Transfer-Encoding and Content-Length");
	if (te == 2)
		return bad(err, "a request's Transfer-Encoding must end with chunked");
	h->body = te ? HTTP1_BODY_CHUNKED : cl && h->content_length ? HTTP1_BODY_LENGTH :
		  HTTP1_BODY_NONE;
	return (int)h->len;
}

int http1_parse_response(const char *buf, size_t len, const char *method, size_t method_len,
			 http1_head *h, lx_err *err)
{
	int rc = parse_head(buf, len, h, 0, err), te, cl;
	if (rc <= 0)
		return rc;
	h->upgrade = h->status == 101;
	te = transfer_encoding(h);
	cl = content_length(h, &h->content_length);
	if (cl < 0)
		return bad(err, "invalid or conflicting Content-Length");
	if ((method_len == 4 && memcmp(method, "HEAD", 4) == 0) || h->status < 200 ||
	    h->status == 204 || h->status == 304)
		h->body = HTTP1_BODY_NONE;
	else if (te == 1)
		h->body = HTTP1_BODY_CHUNKED;
	else if (te == 2 || cl == 0)
		h->body = HTTP1_BODY_UNTIL_CLOSE;
	else
		h->body = h->content_length ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
	if (h->body == HTTP1_BODY_UNTIL_CLOSE)
		h->keep_alive = 0;
	return (int)h->len;
}

int http1_method_is_safe(const char *m, size_t len)
{
	return (len == 3 && memcmp(m, "GET", 3) == 0) || (len == 4 && memcmp(m, "HEAD", 4) == 0) ||
	       (len == 7 && memcmp(m, "OPTIONS", 7) == 0) ||
	       (len == 5 && memcmp(m, "TRACE", 5) == 0);
}

/* ---- chunked bodies ------------------------------------------------------- */

enum { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

#define CHUNK_LINE_MAX 4096

void http1_chunked_init(http1_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

static int hex_digit(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* One byte of a chunk-size line: 0 go on, 1 the line ended, -1 malformed. */
static int size_byte(http1_chunked *c, char ch)
{
	int d = hex_digit(ch);
	if (++c->line > CHUNK_LINE_MAX)
		return -1;
	if (ch == '\n')
		return c->digits ? 1 : -1;
	if (ch == '\r')
		return 0;
	if (c->state == CH_EXT)
		return 0;
	if (d >= 0) {
		if (c->digits == 16)
			return -1;
		c->left = c->left << 4 | (uint64_t)d;
		c->digits++;
		return 0;
	}
	if (c->digits && (ch == ';' || ch == ' ' || ch == '\t')) {
		c->state = CH_EXT;
		return 0;
	}
	return -1;
}

long http1_chunked_feed(http1_chunked *c, const char *buf, size_t len, int *done, lx_err *err)
{
	size_t i = 0;
	*done = c->state == CH_DONE;
	while (i < len && c->state != CH_DONE) {
		int rc;
		switch (c->state) {
		case CH_SIZE:
		case CH_EXT:
			rc = size_byte(c, buf[i++]);
			if (rc < 0)
				return bad(err, "invalid chunk size line");
			if (rc == 1) {
				c->state = c->left ? CH_DATA : CH_TRAILER;
				c->line = 0;
				c->digits = 0;
			}
			break;
		case CH_DATA: {
			size_t take = c->left < len - i ? (size_t)c->left : len - i;
			i += take;
			c->left -= take;
			if (c->left == 0)
				c->state = CH_DATA_END;
			break;
		}
		case CH_DATA_END:
			if (buf[i] == '\n') {
				c->state = CH_SIZE;
				c->line = 0;
			} else if (buf[i] != '\r' || c->line++ > 0) {
				return bad(err, "chunk data not followed by CRLF");
			}
			i++;
			break;
		case CH_TRAILER:
			if (buf[i] == '\n') {
				if (c->line == 0)
					c->state = CH_DONE;
				c->line = 0;
			} else if (buf[i] != '\r' && ++c->line > HTTP1_HEAD_MAX) {
				return bad(err, "trailer too long");
			}
			i++;
			break;
		}
	}
	*done = c->state == CH_DONE;
	return (long)i;
}
