/*
 * http_server.c - GET /status and GET /metrics (http_server.h).
 */
#include "replica/http_server.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "base/log.h"

struct http_server {
	struct MHD_Daemon *mhd;
	store *store;
	node_status node;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A consistent copy of every database's status; caller frees. */
static int gather(store *st, status_db **out, size_t *n)
{
	database **dbs;
	status_db *v;
	if (store_list(st, &dbs, n) < 0)
		return -ENOMEM;
	v = calloc(*n ? *n : 1, sizeof(*v));
	if (v == NULL) {
		free(dbs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < *n; i++) {
		v[i].name = dbs[i]->name;   /* database objects live until store_close */
		db_status_get(dbs[i], &v[i].st);
	}
	free(dbs);
	*out = v;
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code,
			     const char *type, text_buf *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		body->len, body->data, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ok;
	if (r == NULL) {
		text_buf_free(body);
		return MHD_NO;
	}
	body->data = NULL;          /* owned by the response now */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ok = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code,
				   const char *msg)
{
	text_buf b = { 0 };
	char buf[256];
	snprintf(buf, sizeof(buf), "{\"error\":\"%s\"}\n", msg);   /* msg: our own literals */
	b.data = strdup(buf);
	b.len = b.data ? strlen(b.data) : 0;
	return reply(c, code, "application/json", &b);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version,
			      const char *upload, size_t *upload_size, void **state)
{
	http_server *s = cls;
	int metrics = strcmp(url, "/metrics") == 0;
	status_db *dbs = NULL;
	text_buf b = { 0 };
	node_status node;
	size_t n = 0;
	int rc;
	(void)version; (void)upload;

	if (*state == NULL) {       /* headers only so far: wait for the body */
		*state = s;
		return MHD_YES;
	}
	if (*upload_size != 0) {    /* ignore (and drain) any request body */
		*upload_size = 0;
		return MHD_YES;
	}
	if (!metrics && strcmp(url, "/status") != 0)
		return reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	node = s->node;
	node.now_ms = wall_ms();
	rc = gather(s->store, &dbs, &n);
	if (rc == 0)
		rc = metrics ? status_render_metrics(&b, &node, dbs, n)
			     : status_render_json(&b, &node, dbs, n);
	free(dbs);
	if (rc < 0) {
		text_buf_free(&b);
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return reply(c, MHD_HTTP_OK, metrics ? "text/plain; version=0.0.4; charset=utf-8"
					     : "application/json", &b);
}

/* Split "host:port" / ":port" / "[v6]:port". */
static int split_addr(const char *addr, char *host, size_t hostcap, char *port,
		      size_t portcap)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr, *he;
	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= portcap)
		return -1;
	he = colon;
	if (*h == '[' && he > h && he[-1] == ']') {
		h++;
		he--;
	}
	if ((size_t)(he - h) >= hostcap)
		return -1;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	snprintf(port, portcap, "%s", colon + 1);
	return 0;
}

static struct MHD_Daemon *listen_on(http_server *s, const char *host, const char *port,
				    lx_err *err)
{
	struct addrinfo hints, *ai = NULL;
	struct MHD_Daemon *d = NULL;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;  /* errors: ours, once */
	int rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	hints.ai_family = *host ? AF_UNSPEC : AF_INET6;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (rc != 0 && !*host) {            /* no IPv6 here: every IPv4 address */
		hints.ai_family = AF_INET;
		rc = getaddrinfo(NULL, port, &hints, &ai);
	}
	if (rc != 0) {
		lx_err_set(err, EINVAL, "http.addr %s:%s: %s", host, port, gai_strerror(rc));
		return NULL;
	}
	for (struct addrinfo *a = ai; a != NULL && d == NULL; a = a->ai_next) {
		unsigned f = flags | (a->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
			     (a->ai_family == AF_INET6 && !*host ? MHD_USE_DUAL_STACK : 0);
		d = MHD_start_daemon(f, 0, NULL, NULL, handle, s,
				     MHD_OPTION_SOCK_ADDR, a->ai_addr,
				     MHD_OPTION_CONNECTION_LIMIT, 64u,
				     MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				     MHD_OPTION_END);
	}
	freeaddrinfo(ai);
	if (d == NULL)
		lx_err_set(err, EADDRNOTAVAIL, "http.addr [%s]:%s: cannot listen "
			   "(address in use or not local?)", host, port);
	return d;
}

int http_server_start(http_server **out, const char *addr, store *st,
		      const node_status *node, lx_err *err)
{
	char host[256], port[16];
	http_server *s;
	*out = NULL;
	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0)
		return lx_err_set(err, EINVAL, "http.addr \"%s\": expected host:port", addr);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->store = st;
	s->node = *node;
	s->mhd = listen_on(s, host, port, err);
	if (s->mhd == NULL) {
		free(s);
		return -err->code;
	}
	lx_info("http", "listening on %s", addr);
	*out = s;
	return 0;
}

void http_server_stop(http_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}
