/*
 * http_client.c - the one HTTP client (see http_client.h).
 *
 * A call is an `xfer`: the request, where its answer goes, and what went
 * wrong.  configure() is the one place a libcurl handle is set up, from the
 * client's options and the request; finish() is the one place a libcurl
 * result becomes an error.
 */
#include "net/http_client.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

struct http_client {
	http_client_options opt;
	CURL *curl;
	pthread_mutex_t sock_mu;        /* guards sock: http_client_interrupt() runs elsewhere */
	curl_socket_t sock;             /* the connection's socket, or CURL_SOCKET_BAD */
};

typedef struct xfer {
	const http_request *q;
	http_response *r;
	const int *cancel;
	CURL *curl;
	size_t max, cap;
	int overflow, sink_failed, sink_ended;
	uint64_t up_pos;                /* next byte of a descriptor body to send */
	int up_errno;                   /* its read failed (or the file ended early) */
	struct curl_slist *headers;
	char cerr[CURL_ERROR_SIZE];
} xfer;

static int cancelled(const int *cancel)
{
	return cancel != NULL && __atomic_load_n(cancel, __ATOMIC_ACQUIRE);
}

/* ---- the answer ------------------------------------------------------------- */

static int collect(xfer *x, const char *p, size_t len)
{
	http_response *r = x->r;
	if (len > x->max - r->len) {
		x->overflow = 1;
		return -1;
	}
	if (r->len + len + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *b;
		while (cap < r->len + len + 1)
			cap *= 2;
		if ((b = realloc(r->body, cap)) == NULL)
			return -1;
		r->body = b;
		x->cap = cap;
	}
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = '\0';
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	xfer *x = arg;
	size_t len = size * n;
	int rc;
	if (x->r->status == 0)
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->r->status);
	if (x->q->sink == NULL || x->r->status < 200 || x->r->status > 299)
		return collect(x, p, len) == 0 ? len : 0;
	rc = x->q->sink(x->q->sink_arg, p, len);
	if (rc > 0)
		x->sink_ended = 1;
	else if (rc < 0)
		x->sink_failed = 1;
	return rc == 0 ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	xfer *x = arg;
	size_t len = size * n, name_len, v = 0;
	const char *colon = memchr(p, ':', len);
	if (x->q->on_header == NULL || colon == NULL || (len >= 5 && memcmp(p, "HTTP/", 5) == 0))
		return len;
	name_len = (size_t)(colon - p);
	v = name_len + 1;
	while (v < len && (p[v] == ' ' || p[v] == '\t'))
		v++;
	while (len > v && (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
		len--;
	x->q->on_header(x->q->header_arg, p, name_len, p + v, len - v);
	return size * n;
}

/* A descriptor body, read where it lies (pread): the descriptor may be
 * shared, and libcurl may rewind (on_seek) to send it again. */
static size_t on_read_fd(char *p, size_t size, size_t n, void *arg)
{
	xfer *x = arg;
	const http_request *q = x->q;
	uint64_t left = q->upload_len - x->up_pos;
	size_t want = size * n < left ? size * n : (size_t)left;
	ssize_t got;
	if (want == 0)
		return 0;
	do
		got = pread(q->upload_fd, p, want, (off_t)(q->upload_off + x->up_pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		x->up_errno = got < 0 ? errno : ENODATA;
		return CURL_READFUNC_ABORT;
	}
	x->up_pos += (uint64_t)got;
	return (size_t)got;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	xfer *x = arg;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->q->upload_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->up_pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	return cancelled(arg);
}

/* ---- one handle, configured --------------------------------------------------- */

static int add_header(xfer *x, const char *line)
{
	struct curl_slist *h = curl_slist_append(x->headers, line);
	if (h == NULL)
		return -ENOMEM;
	x->headers = h;
	return 0;
}

/* "Authorization: Bearer <token>", refused if the token could break the
 * header (a line end, a control character) rather than sent mangled. */
static int add_token(xfer *x, const char *token)
{
	char *line;
	int rc;
	for (const unsigned char *p = (const unsigned char *)token; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	if (asprintf(&line, "Authorization: Bearer %s", token) < 0)
		return -ENOMEM;
	rc = add_header(x, line);
	free(line);                  /* libcurl copied it */
	return rc;
}

/* The one place a handle is set up: the client's options, then the call's. */
static int configure(CURL *c, const http_client_options *o, xfer *x)
{
	const http_request *q = x->q;
	int64_t connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms :
			     HTTP_CONNECT_TIMEOUT_MS_DEFAULT;
	int rc;
	for (size_t i = 0; q->headers != NULL && q->headers[i] != NULL; i++)
		if (add_header(x, q->headers[i]) < 0)
			return -ENOMEM;
	if (o->token != NULL && o->token[0] != '\0' && (rc = add_token(x, o->token)) < 0)
		return rc;
	x->curl = c;
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (strcmp(q->method, "GET") == 0)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	if (q->body != NULL || (q->upload == NULL && q->upload_len == 0 &&
				strcmp(q->method, "GET") != 0)) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? (const char *)q->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(q->body ? q->body_len : 0));
	} else if (q->upload == NULL && q->upload_len > 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read_fd);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->upload_len);
	} else if (q->upload != NULL) {
		curl_off_t size;
		fseeko(q->upload, 0, SEEK_END);
		size = (curl_off_t)ftello(q->upload);
		rewind(q->upload);
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READDATA, q->upload);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->cerr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	if (q->timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
	if (q->idle_ms > 0) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)((q->idle_ms + 999) / 1000));
	}
	if (q->fresh_connect)
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	if (q->recv_buffer > 0)
		curl_easy_setopt(c, CURLOPT_BUFFERSIZE, q->recv_buffer);
	if (o->cancel != NULL) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)o->cancel);
	}
	if (o->tls_ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->tls_ca);
	if (o->tls_cert != NULL)
		curl_easy_setopt(c, CURLOPT_SSLCERT, o->tls_cert);
	if (o->tls_key != NULL)
		curl_easy_setopt(c, CURLOPT_SSLKEY, o->tls_key);
	if (q->aws_sigv4 != NULL) {
		/* The signature covers the path as written: libcurl must not
		 * rewrite it (dot segments are part of an S3 key). */
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, q->aws_sigv4);
		curl_easy_setopt(c, CURLOPT_USERPWD, q->userpwd ? q->userpwd : "");
		curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	}
	return 0;
}

static int xfer_start(xfer *x, CURL *c, const http_client_options *o, const http_request *q,
		      http_response *r, lx_err *err)
{
	int rc;
	memset(x, 0, sizeof(*x));
	memset(r, 0, sizeof(*r));
	x->q = q;
	x->r = r;
	x->cancel = o->cancel;
	x->max = q->body_max ? q->body_max : HTTP_BODY_MAX_DEFAULT;
	if ((rc = configure(c, o, x)) < 0) {
		curl_slist_free_all(x->headers);
		x->headers = NULL;
		if (rc == -EINVAL)
			return lx_err_set(err, EINVAL, "%s %s: the bearer token holds a control "
					  "character (a line end?): not sent", q->method, q->url);
		return lx_err_set(err, ENOMEM, "%s %s: out of memory", q->method, q->url);
	}
	return 0;
}

/* The service could not be reached at all (not: it answered badly). */
static int unreachable(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	       cc == CURLE_OPERATION_TIMEDOUT;
}

/* The one place a libcurl result becomes an error. */
static int xfer_finish(xfer *x, CURLcode cc, lx_err *err)
{
	const http_request *q = x->q;
	http_response *r = x->r;
	long status = 0;
	curl_off_t up = 0, down = 0;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	if (curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status)
		r->status = status;
	if (curl_easy_getinfo(x->curl, CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK && up > 0)
		r->sent = (uint64_t)up;
	if (curl_easy_getinfo(x->curl, CURLINFO_SIZE_DOWNLOAD_T, &down) == CURLE_OK && down > 0)
		r->received = (uint64_t)down;
	if (cc == CURLE_COULDNT_CONNECT) {
		long os_errno = 0;
		r->refused = curl_easy_getinfo(x->curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
			     os_errno == ECONNREFUSED;
	}
	if (cc == CURLE_WRITE_ERROR && x->sink_ended) {
		r->ended_by_sink = 1;
		cc = CURLE_OK;
	}
	/* before the cancel check: a read failure ends the call as an abort */
	if (x->up_errno == ENODATA)
		return lx_err_set(err, EIO, "%s %s: the body's file ended at byte %" PRIu64
				  " of %" PRIu64 " (did it shrink?)", q->method, q->url,
				  q->upload_off + x->up_pos, q->upload_off + q->upload_len);
	if (x->up_errno != 0)
		return lx_err_set(err, EIO, "%s %s: reading the body at byte %" PRIu64 ": %s",
				  q->method, q->url, q->upload_off + x->up_pos,
				  strerror(x->up_errno));
	if (cc == CURLE_ABORTED_BY_CALLBACK || (cc != CURLE_OK && cancelled(x->cancel)))
		return lx_err_set(err, EINTR, "%s %s: cancelled", q->method, q->url);
	if (x->overflow)
		return lx_err_set(err, EMSGSIZE, "%s %s: HTTP %ld: the answer is longer than "
				  "%zu bytes (not read further)", q->method, q->url, r->status,
				  x->max);
	if (x->sink_failed)
		return lx_err_set(err, ECANCELED, "%s %s: the receiver refused the data",
				  q->method, q->url);
	if (cc == CURLE_WRITE_ERROR)
		return lx_err_set(err, ENOMEM, "%s %s: out of memory", q->method, q->url);
	if (cc != CURLE_OK)
		return lx_err_set(err, EAGAIN, "%s %s: %s%s", q->method, q->url,
				  x->cerr[0] ? x->cerr : curl_easy_strerror(cc),
				  unreachable(cc) ? " (is the service running there, and is the "
				  "URL right?)" : "");
	if (r->body == NULL && collect(x, "", 0) < 0)   /* callers may read "" */
		return lx_err_set(err, ENOMEM, "%s %s: out of memory", q->method, q->url);
	return 0;
}

/* ---- the client ------------------------------------------------------------- */

/* libcurl's sockets are opened and closed here, so that another thread can
 * shut the one in use down. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	http_client *h = arg;
	curl_socket_t fd;
	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	pthread_mutex_lock(&h->sock_mu);
	h->sock = fd;
	pthread_mutex_unlock(&h->sock_mu);
	return fd;
}

static int close_socket(void *arg, curl_socket_t fd)
{
	http_client *h = arg;
	pthread_mutex_lock(&h->sock_mu);
	if (h->sock == fd)
		h->sock = CURL_SOCKET_BAD;
	close(fd);
	pthread_mutex_unlock(&h->sock_mu);
	return 0;
}

int http_client_open(http_client **out, const http_client_options *o, lx_err *err)
{
	http_client *h = calloc(1, sizeof(*h));
	*out = NULL;
	if (h == NULL || (h->curl = curl_easy_init()) == NULL) {
		free(h);
		return lx_err_set(err, ENOMEM, "http client: out of memory");
	}
	h->opt = *o;
	h->sock = CURL_SOCKET_BAD;
	pthread_mutex_init(&h->sock_mu, NULL);
	*out = h;
	return 0;
}

void http_client_close(http_client *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	pthread_mutex_destroy(&h->sock_mu);
	free(h);
}

void http_client_interrupt(http_client *h)
{
	pthread_mutex_lock(&h->sock_mu);
	if (h->sock != CURL_SOCKET_BAD)
		shutdown(h->sock, SHUT_RDWR);
	pthread_mutex_unlock(&h->sock_mu);
}

int http_client_do(http_client *h, const http_request *q, http_response *r, lx_err *err)
{
	xfer x;
	int rc;
	curl_easy_reset(h->curl);
	if ((rc = xfer_start(&x, h->curl, &h->opt, q, r, err)) < 0)
		return rc;
	curl_easy_setopt(h->curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h->curl, CURLOPT_OPENSOCKETDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	curl_easy_setopt(h->curl, CURLOPT_CLOSESOCKETDATA, h);
	return xfer_finish(&x, curl_easy_perform(h->curl), err);
}

int http_fetch(const http_client_options *o, const http_request *q, http_response *r,
	       lx_err *err)
{
	http_client *h;
	int rc;
	memset(r, 0, sizeof(*r));
	if ((rc = http_client_open(&h, o, err)) < 0)
		return rc;
	rc = http_client_do(h, q, r, err);
	http_client_close(h);
	return rc;
}

void http_fetch_all(const http_client_options *o, const http_request *q, http_response *r,
		    int *rc, lx_err *err, size_t n)
{
	CURLM *m = curl_multi_init();
	xfer *x = calloc(n ? n : 1, sizeof(*x));
	int running = 0;
	for (size_t i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		rc[i] = lx_err_set(err ? &err[i] : NULL, ENOMEM, "%s %s: out of memory",
				   q[i].method, q[i].url);
	}
	for (size_t i = 0; m != NULL && x != NULL && i < n; i++) {
		CURL *c = curl_easy_init();
		if (c == NULL)
			continue;
		if (xfer_start(&x[i], c, o, &q[i], &r[i], err ? &err[i] : NULL) < 0) {
			curl_easy_cleanup(c);
			continue;
		}
		curl_easy_setopt(c, CURLOPT_PRIVATE, &x[i]);
		rc[i] = 1;            /* in progress */
		curl_multi_add_handle(m, c);
	}
	do {
		CURLMsg *msg;
		int left;
		if (m == NULL || x == NULL)
			break;
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			xfer *d = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
			size_t i = (size_t)(d - x);
			rc[i] = xfer_finish(d, msg->data.result, err ? &err[i] : NULL);
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 50, NULL);
	} while (running > 0 && !cancelled(o->cancel));
	for (size_t i = 0; x != NULL && i < n; i++) {
		if (x[i].curl == NULL)
			continue;
		if (rc[i] > 0)        /* cancelled before it ended */
			rc[i] = xfer_finish(&x[i], CURLE_ABORTED_BY_CALLBACK, err ? &err[i] : NULL);
		curl_multi_remove_handle(m, x[i].curl);
		curl_easy_cleanup(x[i].curl);
	}
	free(x);
	curl_multi_cleanup(m);
}

void http_response_free(http_response *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void http_body_excerpt(const http_response *r, char *out, size_t cap)
{
	json_t *o = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(o, "error"));
	size_t n, k = 0;
	if (msg != NULL) {
		snprintf(out, cap, "%s", msg);
		json_decref(o);
		return;
	}
	json_decref(o);
	if (r->len == 0 || cap == 0) {
		snprintf(out, cap, "(no body)");
		return;
	}
	/* the start, on one line */
	n = r->len < 200 ? r->len : 200;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		char ch = r->body[i];
		out[k++] = ch == '\n' || ch == '\r' || ch == '\t' ? ' ' : ch;
	}
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
}

int http_status_error(const http_request *q, const http_response *r, lx_err *err)
{
	char excerpt[256];
	int code;
	if (r->status >= 200 && r->status <= 299)
		return 0;
	code = r->status == 404 ? ENOENT : r->status == 401 || r->status == 403 ? EACCES :
	       r->status == 429 || r->status >= 500 ? EAGAIN : EPROTO;
	http_body_excerpt(r, excerpt, sizeof(excerpt));
	return lx_err_set(err, code, "%s %s: HTTP %ld: %s", q->method, q->url, r->status, excerpt);
}
