/*
 * http_call.c - a lease backend's HTTP client (see http_call.h).
 */
#include "lease/http_call.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"

struct http_call {
	char *what;
	const int *abort;
	int64_t connect_timeout_ms;
	CURL *curl;
	pthread_mutex_t sock_mu;        /* guards sock: http_call_interrupt() runs elsewhere */
	curl_socket_t sock;             /* the connection's socket, or CURL_SOCKET_BAD */
};

/* libcurl's sockets are opened and closed here, so that another thread can
 * shut the one in use down. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	http_call *h = arg;
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
	http_call *h = arg;
	pthread_mutex_lock(&h->sock_mu);
	if (h->sock == fd)
		h->sock = CURL_SOCKET_BAD;
	close(fd);
	pthread_mutex_unlock(&h->sock_mu);
	return 0;
}

void http_call_interrupt(http_call *h)
{
	pthread_mutex_lock(&h->sock_mu);
	if (h->sock != CURL_SOCKET_BAD)
		shutdown(h->sock, SHUT_RDWR);
	pthread_mutex_unlock(&h->sock_mu);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	http_reply *r = arg;
	size_t len = size * n, room = HTTP_CALL_BODY_MAX - r->len;
	if (len > room) {
		r->truncated = 1;
		len = room;
	}
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = '\0';
	for (size_t i = 0; i < len && r->stop_after_lines; i++)
		if (p[i] == '\n' && ++r->lines >= r->stop_after_lines) {
			r->stopped = 1;
			return 0;          /* enough: libcurl ends the call */
		}
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	http_reply *r = arg;
	size_t len = size * n, name = r->want_header ? strlen(r->want_header) : 0;
	if (name && len > name + 1 && strncasecmp(p, r->want_header, name) == 0 && p[name] == ':') {
		char buf[32];
		size_t vlen = len - name - 1;
		if (vlen >= sizeof(buf))
			vlen = sizeof(buf) - 1;
		memcpy(buf, p + name + 1, vlen);
		buf[vlen] = '\0';
		r->header_value = strtoull(buf, NULL, 10);
		r->has_header = 1;
	}
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const int *abort = arg;
	(void)dt, (void)dn, (void)ut, (void)un;
	return abort != NULL && __atomic_load_n(abort, __ATOMIC_ACQUIRE);
}

int http_call_open(http_call **out, const char *what, const int *abort,
		   int64_t connect_timeout_ms, lx_err *err)
{
	http_call *h = calloc(1, sizeof(*h));
	*out = NULL;
	if (h == NULL || (h->what = strdup(what)) == NULL || (h->curl = curl_easy_init()) == NULL) {
		if (h != NULL)
			free(h->what);
		free(h);
		return lx_err_set(err, ENOMEM, "%s: out of memory", what);
	}
	h->abort = abort;
	h->connect_timeout_ms = connect_timeout_ms;
	h->sock = CURL_SOCKET_BAD;
	pthread_mutex_init(&h->sock_mu, NULL);
	*out = h;
	return 0;
}

void http_call_close(http_call *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	pthread_mutex_destroy(&h->sock_mu);
	free(h->what);
	free(h);
}

static void set_options(http_call *h, const http_request *q, http_reply *r, char *cerr)
{
	CURL *c = h->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	if (q->body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, q->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
	if (h->abort != NULL) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)h->abort);
	}
}

/* The service could not be reached at all (not: it answered badly). */
static int unreachable(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	       cc == CURLE_OPERATION_TIMEDOUT;
}

int http_call_do(http_call *h, const http_request *q, http_reply *r, int64_t *sent_ms,
		 lx_err *err)
{
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	r->status = 0;
	r->len = 0;
	r->body[0] = '\0';
	r->truncated = 0;
	r->header_value = 0;
	r->has_header = 0;
	r->want_header = q->want_header;
	r->stop_after_lines = q->stop_after_lines;
	r->lines = 0;
	r->stopped = 0;
	set_options(h, q, r, cerr);
	if (sent_ms != NULL)
		*sent_ms = lx_mono_ms();
	cc = curl_easy_perform(h->curl);
	if (cc == CURLE_WRITE_ERROR && r->stopped)
		cc = CURLE_OK;
	if (cc == CURLE_ABORTED_BY_CALLBACK ||
	    (cc != CURLE_OK && h->abort != NULL && __atomic_load_n(h->abort, __ATOMIC_ACQUIRE)))
		return lx_err_set(err, EINTR, "%s: %s %s: interrupted", h->what, q->method, q->url);
	if (cc != CURLE_OK)
		return lx_err_set(err, EAGAIN, "%s: %s %s: %s%s", h->what, q->method, q->url,
				  cerr[0] ? cerr : curl_easy_strerror(cc),
				  unreachable(cc) ? " (is the service running there, and is "
				  "the URL in the configuration right?)" : "");
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->truncated)
		return lx_err_set(err, EPROTO, "%s: %s %s: answer longer than %d bytes", h->what,
				  q->method, q->url, HTTP_CALL_BODY_MAX);
	return 0;
}
