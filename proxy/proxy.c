/*
 * proxy.c - the HTTP proxy in front of the application (see proxy.h).
 *
 * One thread per client connection, blocking I/O: a request head is read
 * and parsed (proxy/http1.h), routed, written to the chosen upstream with
 * the forwarding headers, and its body copied as its framing says; then the
 * same for the answer, back.  The upstream connection is kept while the
 * next request goes to the same place.
 */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "db/database.h"
#include "proxy/http1.h"
#include "replica/position_wait.h"

#define BUF_SIZE (HTTP1_HEAD_MAX + 64 * 1024)
#define CLIENT_IDLE_S 75          /* a kept-alive client connection's silence */
#define UPSTREAM_S 300            /* an upstream's silence within an exchange */
#define PRIMARY_WAIT_MS 10000     /* a write waits this long for a primary */
#define TXID_COOKIE "__txid"
#define MAX_CONNECTIONS 1024      /* client connections at once (a thread each) */

typedef struct conn conn;

struct proxy {
	proxy_options o;
	char *addr, *target, *db;
	char **globs;
	int listen_fd;
	pthread_t thread;
	int stopping;                 /* atomic */
	pthread_mutex_t mu;           /* guards conns, n_threads, stats */
	pthread_cond_t idle;
	conn *conns;
	unsigned n_threads;
	proxy_stats stats;
};

/* One side of an exchange: a socket and what was read from it but not
 * used yet. */
typedef struct side {
	int fd;
	char *buf;
	size_t len;
} side;

struct conn {
	proxy *p;
	side client;
	side up;
	char up_url[256];             /* "" local target; else the primary's proxy */
	char peer[INET6_ADDRSTRLEN];
	conn *next;
};

/* ---- sockets ------------------------------------------------------------- */

static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(s, ':');
	const char *h = s, *he;
	if (strncmp(s, "http://", 7) == 0)
		h = s + 7;
	if (colon == NULL || colon < h || colon[1] == '\0' || strlen(colon + 1) >= pcap)
		return -1;
	he = colon;
	if (*h == '[' && he > h && he[-1] == ']') {
		h++;
		he--;
	}
	if ((size_t)(he - h) >= hcap)
		return -1;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	snprintf(port, pcap, "%s", colon + 1);
	{
		char *slash = strchr(port, '/');
		if (slash != NULL)
			*slash = '\0';
	}
	return 0;
}

static void set_timeout(int fd, int seconds)
{
	struct timeval tv = { seconds, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void no_delay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* "host:port" or "http://host:port": a connected socket, or -errno. */
static int connect_to(const char *where)
{
	char host[256], port[32];
	struct addrinfo hints, *res, *a;
	int fd = -1, rc;
	if (split_hostport(where, host, sizeof(host), port, sizeof(port)) < 0)
		return -EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(*host ? host : "127.0.0.1", port, &hints, &res);
	if (rc != 0)
		return -EHOSTUNREACH;
	rc = -ECONNREFUSED;
	for (a = res; a != NULL && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		set_timeout(fd, UPSTREAM_S);
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			rc = -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0)
		no_delay(fd);
	return fd >= 0 ? fd : rc;
}

static int listen_on(const char *addr, lx_err *err)
{
	char host[256], port[32];
	struct addrinfo hints, *res;
	int fd, one = 1, rc;
	if (split_hostport(addr, host, sizeof(host), port, sizeof(port)) < 0)
		return lx_err_set(err, EINVAL, "proxy.addr %s: expected host:port or :port", addr);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0)
		return lx_err_set(err, EINVAL, "proxy.addr %s: %s", addr, gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0) {
		rc = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return lx_err_sys(err, rc, "proxy.addr %s: listen", addr);
	}
	freeaddrinfo(res);
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* More bytes into s->buf: >0 read, 0 end of stream, -1 error or full. */
static ssize_t read_more(side *s)
{
	ssize_t n;
	if (s->len == BUF_SIZE)
		return -1;
	do
		n = recv(s->fd, s->buf + s->len, BUF_SIZE - s->len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		s->len += (size_t)n;
	return n < 0 ? -1 : n;
}

static void consume(side *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

/* ---- messages ------------------------------------------------------------ */

/*
 * Read until a head parses: >0 its length, 0 the peer closed before a
 * byte of it, -EBADMSG malformed (err), -EIO cut or timed out.
 */
static int read_head(side *s, int request, const char *method, size_t mlen, http1_head *h,
		     lx_err *err)
{
	for (;;) {
		int rc = request ? http1_parse_request(s->buf, s->len, h, err) :
			 http1_parse_response(s->buf, s->len, method, mlen, h, err);
		ssize_t n;
		if (rc != 0)
			return rc;
		n = read_more(s);
		if (n == 0 && s->len == 0)
			return 0;
		if (n <= 0)
			return lx_err_set(err, EIO, n == 0 ? "connection closed within a head" :
					  "connection cut or silent within a head");
	}
}

/* Copy a body framed as `h` says from `src` (its buffered bytes first) to
 * `dst`: 0, or -1 when either side failed. */
static int copy_body(side *src, int dst, const http1_head *h)
{
	uint64_t left = h->content_length;
	http1_chunked ch;
	lx_err err;
	int done = h->body == HTTP1_BODY_NONE;
	http1_chunked_init(&ch);
	while (!done) {
		size_t take;
		if (src->len == 0) {
			ssize_t n = read_more(src);
			if (n == 0 && h->body == HTTP1_BODY_UNTIL_CLOSE)
				return 0;
			if (n <= 0)
				return -1;
		}
		if (h->body == HTTP1_BODY_LENGTH) {
			take = left < src->len ? (size_t)left : src->len;
			left -= take;
			done = left == 0;
		} else if (h->body == HTTP1_BODY_CHUNKED) {
			long used = http1_chunked_feed(&ch, src->buf, src->len, &done, &err);
			if (used < 0)
				return -1;
			take = (size_t)used;
		} else {
			take = src->len;
		}
		if (write_all(dst, src->buf, take) < 0)
			return -1;
		consume(src, take);
	}
	return 0;
}

/* Both directions as they come, until either side closes (an upgrade). */
static void pipe_both(side *a, side *b)
{
	struct pollfd pf[2] = { { a->fd, POLLIN, 0 }, { b->fd, POLLIN, 0 } };
	side *sides[2] = { a, b };
	for (int i = 0; i < 2; i++)
		if (sides[i]->len && write_all(sides[1 - i]->fd, sides[i]->buf, sides[i]->len) < 0)
			return;
	a->len = b->len = 0;
	for (;;) {
		if (poll(pf, 2, CLIENT_IDLE_S * 1000 * 8) <= 0)
			return;
		for (int i = 0; i < 2; i++) {
			if (pf[i].revents == 0)
				continue;
			if (read_more(sides[i]) <= 0 ||
			    write_all(sides[1 - i]->fd, sides[i]->buf, sides[i]->len) < 0)
				return;
			sides[i]->len = 0;
		}
	}
}

static int header_is(const http1_header *x, const char *name)
{
	return x->name_len == strlen(name) && strncasecmp(x->name, name, x->name_len) == 0;
}

/* The request head as it goes upstream: the same lines, with
 * X-Forwarded-For extended by the client's address, X-Forwarded-Proto
 * kept or set, and Ltxfs-Forwarded when it goes to another node. */
static int send_request_head(conn *c, const http1_head *h, int to_primary)
{
	/* never longer than twice the head (bare LFs become CRLF) plus the
	 * few lines added */
	char *out = malloc(2 * h->len + 1024), *o = out;
	const http1_header *xff = http1_find(h, "X-Forwarded-For");
	int rc;
	if (out == NULL)
		return -1;
	o += sprintf(o, "%.*s %.*s HTTP/1.%d\r\n", (int)h->method_len, h->method,
		     (int)h->target_len, h->target, h->minor);
	for (size_t i = 0; i < h->n; i++) {
		const http1_header *x = &h->h[i];
		if (header_is(x, "X-Forwarded-For") || header_is(x, "Ltxfs-Forwarded") ||
		    header_is(x, "Expect"))    /* answered here: see exchange() */
			continue;
		o += sprintf(o, "%.*s: %.*s\r\n", (int)x->name_len, x->name, (int)x->value_len,
			     x->value);
	}
	if (xff != NULL && !to_primary && http1_find(h, "Ltxfs-Forwarded") != NULL)
		o += sprintf(o, "X-Forwarded-For: %.*s\r\n", (int)xff->value_len, xff->value);
	else if (xff != NULL)
		o += sprintf(o, "X-Forwarded-For: %.*s, %s\r\n", (int)xff->value_len, xff->value,
			     c->peer);
	else
		o += sprintf(o, "X-Forwarded-For: %s\r\n", c->peer);
	if (http1_find(h, "X-Forwarded-Proto") == NULL)
		o += sprintf(o, "X-Forwarded-Proto: http\r\n");
	if (to_primary)
		o += sprintf(o, "Ltxfs-Forwarded: 1\r\n");
	o += sprintf(o, "\r\n");
	rc = write_all(c->up.fd, out, (size_t)(o - out));
	free(out);
	return rc;
}

/* The answer's head back to the client, with the position of proxy.db
 * (`pos`, may be NULL) as a cookie and a header. */
static int send_response_head(conn *c, const char *head, size_t len, const char *pos)
{
	char extra[256];
	int n;
	if (pos == NULL)
		return write_all(c->client.fd, head, len);
	/* the head ends with its empty line: the headers go before it */
	n = snprintf(extra, sizeof(extra), "Set-Cookie: " TXID_COOKIE "=%s; Path=/; Max-Age=300; "
		     "HttpOnly; SameSite=Lax\r\nLtxfs-Txid: %s\r\n\r\n", pos, pos);
	len -= head[len - 2] == '\r' ? 2 : 1;
	return write_all(c->client.fd, head, len) < 0 ? -1 :
	       write_all(c->client.fd, extra, (size_t)n);
}

static int send_error(conn *c, int status, const char *reason, const char *msg)
{
	char out[1024];
	int n = snprintf(out, sizeof(out), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n", status, reason,
			 strlen(msg) + 1, status == 503 ? "Retry-After: 1\r\n" : "", msg);
	return write_all(c->client.fd, out, (size_t)n);
}

static int expects_continue(const http1_head *h)
{
	const http1_header *x = http1_find(h, "Expect");
	return x != NULL && x->value_len == 12 && strncasecmp(x->value, "100-continue", 12) == 0 &&
	       h->body != HTTP1_BODY_NONE;
}

/* ---- routing -------------------------------------------------------------- */

static int passthrough(const proxy *p, const http1_head *h)
{
	char path[2048];
	size_t n = h->target_len;
	const char *q = memchr(h->target, '?', n);
	if (p->globs == NULL)
		return 0;
	if (q != NULL)
		n = (size_t)(q - h->target);
	if (n >= sizeof(path))
		return 0;
	memcpy(path, h->target, n);
	path[n] = '\0';
	for (char **g = p->globs; *g != NULL; g++)
		if (fnmatch(*g, path, 0) == 0)
			return 1;
	return 0;
}

/* The position the request carries: Ltxfs-Txid, else the __txid cookie. */
static int request_position(const http1_head *h, wait_target *t)
{
	const http1_header *x = http1_find(h, "Ltxfs-Txid");
	lx_err err;
	if (x != NULL)
		return wait_target_parse(x->value, x->value_len, t, &err);
	for (size_t i = 0; i < h->n; i++) {
		const char *v, *e;
		if (!header_is(&h->h[i], "Cookie"))
			continue;
		v = h->h[i].value;
		e = v + h->h[i].value_len;
		while (v < e) {
			const char *end = memchr(v, ';', (size_t)(e - v));
			size_t kl = strlen(TXID_COOKIE "=");
			if (end == NULL)
				end = e;
			while (v < end && *v == ' ')
				v++;
			if ((size_t)(end - v) > kl && memcmp(v, TXID_COOKIE "=", kl) == 0)
				return wait_target_parse(v + kl, (size_t)(end - v) - kl, t, &err);
			v = end + 1;
		}
	}
	return -ENOENT;
}

static void count(proxy *p, uint64_t *field)
{
	pthread_mutex_lock(&p->mu);
	(*field)++;
	pthread_mutex_unlock(&p->mu);
}

/* Where a write goes: 0 with *url "" (here) or the primary's proxy, or -1
 * when no primary appeared within PRIMARY_WAIT_MS. */
static int write_route(proxy *p, char *url, size_t cap)
{
	int64_t deadline = lx_mono_ms() + PRIMARY_WAIT_MS;
	for (;;) {
		enum proxy_route r = p->o.primary(p->o.ctx, url, cap);
		if (r == PROXY_SELF) {
			url[0] = '\0';
			return 0;
		}
		if (r == PROXY_REMOTE)
			return 0;
		if (lx_mono_ms() >= deadline || __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE))
			return -1;
		usleep(50 * 1000);
	}
}

/* Where a read goes: "" here, or the primary's proxy (its position did
 * not arrive within max-lag and proxy.on-lag is forward). */
static void read_route(proxy *p, const http1_head *h, char *url, size_t cap)
{
	wait_target t;
	uint64_t txid, ck;
	enum wait_outcome o;
	url[0] = '\0';
	if (request_position(h, &t) < 0 || p->db == NULL)
		return;
	count(p, &p->stats.waited);
	o = position_wait(p->o.store, p->db, &t, p->o.max_lag_ms, &p->stopping, &txid, &ck);
	if (o != WAIT_TIMED_OUT)
		return;
	count(p, &p->stats.lag_timeouts);
	if (p->o.lag_forward && p->o.primary(p->o.ctx, url, cap) != PROXY_REMOTE)
		url[0] = '\0';
	if (!p->o.lag_forward)
		url[0] = '\0';
}

/* The position of proxy.db now, "TXID/CHECKSUM", or NULL. */
static const char *position_now(proxy *p, char *out, size_t cap)
{
	database *db = p->db ? store_find(p->o.store, p->db) : NULL;
	uint64_t txid, ck;
	if (db == NULL)
		return NULL;
	db_position(db, &txid, &ck);
	if (txid == 0)
		return NULL;
	snprintf(out, cap, "%016" PRIx64 "/%016" PRIx64, txid, ck);
	return out;
}

/* 1 if a kept upstream connection is still usable: nothing to read on it
 * (an idle connection that is readable was closed by the other side). */
static int still_open(int fd)
{
	struct pollfd pf = { fd, POLLIN, 0 };
	return poll(&pf, 1, 0) == 0;
}

/* Swap c->up.fd under the proxy's mutex, so proxy_stop() never shuts down
 * a descriptor number that was closed and reused. */
static void set_upstream_fd(conn *c, int fd)
{
	pthread_mutex_lock(&c->p->mu);
	if (c->up.fd >= 0)
		close(c->up.fd);
	c->up.fd = fd;
	c->up.len = 0;
	pthread_mutex_unlock(&c->p->mu);
}

/* An upstream connection to `url` ("" the application), reusing the
 * current one when it goes to the same place and is still open. */
static int upstream(conn *c, const char *url)
{
	int fd;
	if (c->up.fd >= 0 && strcmp(c->up_url, url) == 0 && c->up.len == 0 && still_open(c->up.fd))
		return 0;
	set_upstream_fd(c, -1);
	fd = connect_to(*url ? url : c->p->target);
	if (fd < 0)
		return fd;
	set_upstream_fd(c, fd);
	snprintf(c->up_url, sizeof(c->up_url), "%s", url);
	return 0;
}

/* ---- one connection ------------------------------------------------------- */

/* One request and its answer: 1 to go on with the next, 0 to close. */
static int exchange(conn *c)
{
	proxy *p = c->p;
	http1_head req, resp;
	char url[256], posbuf[40];
	const char *pos = NULL;
	lx_err err;
	int rc, is_write, pass, forwarded_here, keep;

	rc = read_head(&c->client, 1, NULL, 0, &req, &err);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		if (rc == -EBADMSG)
			send_error(c, 400, "Bad Request", err.msg);
		return 0;
	}
	pass = passthrough(p, &req);
	is_write = !http1_method_is_safe(req.method, req.method_len) && !pass;
	forwarded_here = http1_find(&req, "Ltxfs-Forwarded") != NULL;
	if (is_write) {
		if (write_route(p, url, sizeof(url)) < 0 || (forwarded_here && url[0] != '\0')) {
			count(p, &p->stats.failed);
			send_error(c, 503, "Service Unavailable", "no primary to take this write now "
				   "(a failover is in progress): try again");
			return 0;
		}
	} else if (pass) {
		url[0] = '\0';
	} else {
		read_route(p, &req, url, sizeof(url));
	}
	count(p, url[0] ? &p->stats.forwarded : &p->stats.local);
	if ((rc = upstream(c, url)) < 0) {
		count(p, &p->stats.failed);
		lx_debug("proxy", "upstream %s: %s", url[0] ? url : p->target, strerror(-rc));
		send_error(c, 502, "Bad Gateway", url[0] ? "the primary's proxy cannot be reached" :
			   "the application cannot be reached (proxy.target)");
		return 0;
	}
	if (send_request_head(c, &req, url[0] != '\0') < 0)
		goto cut;
	consume(&c->client, req.len);
	/* A client that waits for 100 Continue before its body gets it from
	 * here: the body is copied as it comes either way. */
	if (expects_continue(&req) &&
	    write_all(c->client.fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		goto cut;
	if (req.upgrade) {
		/* the rest is the application's: 101 and a byte pipe, or an answer */
	} else if (copy_body(&c->client, c->up.fd, &req) < 0) {
		goto cut;
	}
	rc = read_head(&c->up, 0, req.method, req.method_len, &resp, &err);
	while (rc > 0 && resp.status >= 100 && resp.status < 200 && resp.status != 101) {
		if (write_all(c->client.fd, c->up.buf, resp.len) < 0)     /* 100 Continue */
			goto cut;
		consume(&c->up, resp.len);
		rc = read_head(&c->up, 0, req.method, req.method_len, &resp, &err);
	}
	if (rc <= 0) {
		count(p, &p->stats.failed);
		send_error(c, 502, "Bad Gateway", rc == -EBADMSG ? err.msg :
			   "the upstream closed the connection without an answer");
		return 0;
	}
	/* A write answered here carries the position it left; one answered by
	 * the primary's proxy carries the primary's, passed through. */
	if (is_write && url[0] == '\0')
		pos = position_now(p, posbuf, sizeof(posbuf));
	if (send_response_head(c, c->up.buf, resp.len, pos) < 0)
		goto cut;
	consume(&c->up, resp.len);
	if (resp.upgrade) {
		pipe_both(&c->client, &c->up);
		return 0;
	}
	if (copy_body(&c->up, c->client.fd, &resp) < 0)
		goto cut;
	keep = req.keep_alive && resp.keep_alive;
	if (!resp.keep_alive)
		set_upstream_fd(c, -1);
	return keep;
cut:
	count(p, &p->stats.failed);
	return 0;
}

static void conn_free(conn *c)
{
	proxy *p = c->p;
	pthread_mutex_lock(&p->mu);
	for (conn **pp = &p->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	close(c->client.fd);
	if (c->up.fd >= 0)
		close(c->up.fd);
	p->n_threads--;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->mu);
	free(c->client.buf);
	free(c->up.buf);
	free(c);
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	while (!__atomic_load_n(&c->p->stopping, __ATOMIC_ACQUIRE) && exchange(c))
		;
	conn_free(c);
	return NULL;
}

static void peer_name(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	snprintf(out, cap, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
}

static void start_conn(proxy *p, int fd)
{
	conn *c = calloc(1, sizeof(*c));
	pthread_t t;
	pthread_attr_t at;
	if (c != NULL) {
		c->client.buf = malloc(BUF_SIZE);
		c->up.buf = malloc(BUF_SIZE);
	}
	if (c == NULL || c->client.buf == NULL || c->up.buf == NULL) {
		if (c != NULL) {
			free(c->client.buf);
			free(c->up.buf);
		}
		free(c);
		close(fd);
		return;
	}
	c->p = p;
	c->client.fd = fd;
	c->up.fd = -1;
	set_timeout(fd, CLIENT_IDLE_S);
	no_delay(fd);
	peer_name(fd, c->peer, sizeof(c->peer));
	pthread_mutex_lock(&p->mu);
	if (p->n_threads >= MAX_CONNECTIONS) {
		pthread_mutex_unlock(&p->mu);
		send_error(c, 503, "Service Unavailable", "too many connections to the proxy");
		close(fd);
		free(c->client.buf);
		free(c->up.buf);
		free(c);
		return;
	}
	c->next = p->conns;
	p->conns = c;
	p->n_threads++;
	pthread_mutex_unlock(&p->mu);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, conn_main, c) != 0) {
		lx_warn("proxy", "no thread for a connection: %s", strerror(errno));
		conn_free(c);
	}
	pthread_attr_destroy(&at);
}

static void *accept_main(void *arg)
{
	proxy *p = arg;
	while (!__atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE)) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (!__atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE)) {
				lx_warn("proxy", "accept: %s", strerror(errno));
				usleep(100 * 1000);
			}
			continue;
		}
		start_conn(p, fd);
	}
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void proxy_free(proxy *p)
{
	if (p->globs != NULL)
		for (char **g = p->globs; *g != NULL; g++)
			free(*g);
	free(p->globs);
	free(p->addr);
	free(p->target);
	free(p->db);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->idle);
	free(p);
}

static int copy_options(proxy *p, const proxy_options *o)
{
	size_t n = 0;
	p->o = *o;
	p->addr = strdup(o->addr);
	p->target = strdup(o->target);
	p->db = o->db ? strdup(o->db) : NULL;
	if (p->addr == NULL || p->target == NULL || (o->db && p->db == NULL))
		return -ENOMEM;
	while (o->passthrough != NULL && o->passthrough[n] != NULL)
		n++;
	if (n == 0)
		return 0;
	p->globs = calloc(n + 1, sizeof(char *));
	if (p->globs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((p->globs[i] = strdup(o->passthrough[i])) == NULL)
			return -ENOMEM;
	return 0;
}

int proxy_start(proxy **out, const proxy_options *o, lx_err *err)
{
	proxy *p = calloc(1, sizeof(*p));
	int rc;
	*out = NULL;
	if (p == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->listen_fd = -1;
	if (copy_options(p, o) < 0) {
		proxy_free(p);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	p->listen_fd = listen_on(p->addr, err);
	if (p->listen_fd < 0) {
		rc = p->listen_fd;
		proxy_free(p);
		return rc;
	}
	if ((rc = pthread_create(&p->thread, NULL, accept_main, p)) != 0) {
		close(p->listen_fd);
		proxy_free(p);
		return lx_err_sys(err, rc, "start the proxy thread");
	}
	lx_info("proxy", "listening on %s in front of %s (database %s)", p->addr, p->target,
		p->db ? p->db : "(none)");
	*out = p;
	return 0;
}

void proxy_stop(proxy *p)
{
	if (p == NULL)
		return;
	__atomic_store_n(&p->stopping, 1, __ATOMIC_RELEASE);
	shutdown(p->listen_fd, SHUT_RDWR);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	pthread_mutex_lock(&p->mu);
	for (conn *c = p->conns; c != NULL; c = c->next) {
		shutdown(c->client.fd, SHUT_RDWR);
		if (c->up.fd >= 0)
			shutdown(c->up.fd, SHUT_RDWR);
	}
	while (p->n_threads > 0)
		pthread_cond_wait(&p->idle, &p->mu);
	pthread_mutex_unlock(&p->mu);
	proxy_free(p);
}
