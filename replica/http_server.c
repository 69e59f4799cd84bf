/*
 * http_server.c - the server (listening, limits, routing) and GET /status,
 * /metrics, /health, POST /stream, /promote, /handoff (http_server.h).
 *
 * libmicrohttpd runs a thread per connection with poll(2): select(2)
 * refuses descriptors >= FD_SETSIZE (1024), and a node with a few hundred
 * databases has more open than that.  Its messages come to mhd_log(), so
 * a failure to listen or to accept says why in our log.
 */
#include "replica/http_server.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/log.h"
#include "lease/cluster_id.h"
#include "replica/http_internal.h"
#include "replica/proto.h"

static int parse_hex64(const char *s, uint64_t *out);

/* A body above this is refused; /import and /stream have their own. */
#define HTTP_SMALL_BODY_MAX (64u * 1024)

/* A consistent copy of every database's status; caller frees. */
int http_gather(store *st, status_db **out, size_t *n)
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

enum MHD_Result http_reply(struct MHD_Connection *c, unsigned code, const char *type,
			   text_buf *body)
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

enum MHD_Result http_reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	if (o == NULL)          /* not UTF-8 (a path, say): still an answer */
		o = json_pack("{s:s}", "error", "(an error message that is not valid UTF-8)");
	return http_reply_json(c, code, o);
}

/* A JSON body built with jansson: any text is escaped. */
enum MHD_Result http_reply_json(struct MHD_Connection *c, unsigned code, json_t *o)
{
	text_buf b = { 0 };
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text == NULL)
		return MHD_NO;
	b.data = text;
	b.len = strlen(text);
	return http_reply(c, code, "application/json", &b);
}

int http_slot_take(unsigned *used, unsigned max)
{
	if (__atomic_add_fetch(used, 1, __ATOMIC_ACQ_REL) <= max)
		return 0;
	__atomic_sub_fetch(used, 1, __ATOMIC_ACQ_REL);
	return -EBUSY;
}

void http_slot_give(unsigned *used)
{
	__atomic_sub_fetch(used, 1, __ATOMIC_ACQ_REL);
}

unsigned http_status_of(int rc)
{
	switch (-rc) {
	case EAGAIN:
	case ESHUTDOWN:
	case EHOSTUNREACH:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	case ETIMEDOUT:
		return MHD_HTTP_GATEWAY_TIMEOUT;
	case EINVAL:
	case EPERM:
		return MHD_HTTP_BAD_REQUEST;
	case ENXIO:             /* a hand-off to a node that is not a replica of ours */
		return MHD_HTTP_CONFLICT;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static enum MHD_Result do_promote(http_server *s, struct MHD_Connection *c)
{
	lx_err err;
	int rc;
	lx_err_clear(&err);
	if (s->hooks.promote == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	rc = s->hooks.promote(s->hooks.ctx, &err);
	if (rc < 0)
		return http_reply_error(c, http_status_of(rc), err.msg);
	return http_reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "role", "primary"));
}

static enum MHD_Result do_handoff(http_server *s, struct MHD_Connection *c)
{
	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Node-Id");
	text_buf b = { 0 };
	char *json = NULL, peer[64];
	uint64_t node_id;
	lx_err err;
	int rc;
	lx_err_clear(&err);
	if (s->hooks.handoff == NULL)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (parse_hex64(id, &node_id) < 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST,
			"missing or malformed Ltxfs-Node-Id");
	http_peer_name(c, peer, sizeof(peer));
	rc = s->hooks.handoff(s->hooks.ctx, node_id, peer, &json, &err);
	if (rc < 0)
		return http_reply_error(c, http_status_of(rc), err.msg);
	b.data = json;
	b.len = strlen(json);
	return http_reply(c, MHD_HTTP_OK, "application/json", &b);
}

void http_node_now(http_server *s, node_status *node)
{
	*node = s->node;
	node->now_ms = lx_wall_ms();
	if (s->hooks.refresh != NULL)
		s->hooks.refresh(s->hooks.ctx, node);   /* may point primary at primary_name */
	if (node->primary == NULL)
		node->primary = "";
}

/* GET /health: 200 when the node is ready, no database failed and (on a
 * replica) the lag is within http.health-max-lag; else 503 saying why. */
static enum MHD_Result reply_health(http_server *s, struct MHD_Connection *c)
{
	node_status node;
	int primary;
	const char *why = NULL;
	char msg[1024];
	status_db *dbs = NULL;
	size_t n = 0;
	http_node_now(s, &node);
	primary = strcmp(node.role, "primary") == 0;
	if (!node.ready)
		why = primary ? "not ready: catching up before the first write" :
			"not ready: not caught up with the primary yet";
	else if (!primary && node.lag_ms > node.health_max_lag_ms) {
		snprintf(msg, sizeof(msg), "lagging: the primary was last heard %" PRId64
			 " ms ago (http.health-max-lag is %" PRId64 " ms)", node.lag_ms,
			 node.health_max_lag_ms);
		why = msg;
	} else if (primary && node.has_sync && node.sync.degraded) {
		snprintf(msg, sizeof(msg), "replication %s: %s", status_sync_state(&node.sync),
			 node.sync.degraded_reason);
		why = msg;
	} else if (s->hooks.backup != NULL &&
		   backup_shipper_lagging(s->hooks.backup, msg, sizeof(msg))) {
		why = msg;
	} else if (http_gather(s->store, &dbs, &n) == 0) {
		for (size_t i = 0; i < n && why == NULL; i++)
			if (dbs[i].st.failed) {
				snprintf(msg, sizeof(msg), "database %s is not served: %s",
					 dbs[i].name, dbs[i].st.failure);
				why = msg;
			} else if (dbs[i].st.storage_error[0]) {
				snprintf(msg, sizeof(msg), "database %s fails to commit: %s",
					 dbs[i].name, dbs[i].st.storage_error);
				why = msg;
			} else if (dbs[i].st.untracked) {
				char reason[256];
				status_untracked_reason(&dbs[i].st, reason, sizeof(reason));
				snprintf(msg, sizeof(msg), "database %s is untracked: %s",
					 dbs[i].name, reason);
				why = msg;
			}
	}
	free(dbs);
	return http_reply_json(c, why ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
			       json_pack("{s:b, s:s, s:I, s:s?}", "ok", why == NULL, "role", node.role,
					 "lag_ms", (json_int_t)(primary ? 0 : node.lag_ms),
					 "error", why));
}

static enum MHD_Result reply_status(http_server *s, struct MHD_Connection *c, int metrics)
{
	status_db *dbs = NULL;
	stream_replica *reps = NULL;
	size_t n = 0, nreps = 0;
	text_buf b = { 0 };
	node_status node;
	int rc;

	http_node_now(s, &node);
	if (metrics) {
		size_t open, max, dbs_open;
		store_handle_stats(s->store, &open, &max, &dbs_open, &node.open_files_closes);
		node.open_files = open;
		node.open_files_max = max;
		node.open_files_dbs = dbs_open;
		node.databases_retired = __atomic_load_n(&s->store->retired, __ATOMIC_RELAXED);
	}
	rc = http_gather(s->store, &dbs, &n);
	if (rc == 0 && s->hooks.backup != NULL) {
		node.backup_on = 1;
		backup_shipper_totals(s->hooks.backup, &node.backup);
		for (size_t i = 0; i < n; i++) {
			dbs[i].has_backup = 1;
			backup_shipper_db_status(s->hooks.backup, dbs[i].name, &dbs[i].backup);
		}
	}
	if (rc == 0 && s->hub != NULL)
		rc = stream_hub_replicas(s->hub, &reps, &nreps);
	if (rc == 0)
		rc = metrics ? status_render_metrics(&b, &node, dbs, n, reps, nreps)
			     : status_render_json(&b, &node, dbs, n, reps, nreps);
	free(dbs);
	stream_replicas_free(reps, nreps);
	if (rc < 0) {
		text_buf_free(&b);
		return http_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return http_reply(c, MHD_HTTP_OK, metrics ? "text/plain; version=0.0.4; charset=utf-8"
					     : "application/json", &b);
}

/* ---- POST /stream ------------------------------------------------------------ */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = stream_session_read(cls, (uint8_t *)buf, max);
	(void)pos;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : n;
}

static void stream_free(void *cls)
{
	stream_session_free(cls);
}

static int parse_hex64(const char *s, uint64_t *out)
{
	return s == NULL ? -1 : lx_parse_hex64(s, strlen(s), out);
}

/* A decimal u64: digits only, no sign, no overflow. */
static int parse_dec64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

void http_peer_name(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	out[0] = '\0';
	if (ci != NULL && ci->client_addr != NULL)
		getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6 ?
			    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
			    out, (socklen_t)cap, NULL, 0, NI_NUMERICHOST);
}

/* Frames go out as soon as they are written: a commit is one small frame,
 * and Nagle's algorithm would hold it for the previous one's ACK. */
static void no_delay(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int one = 1;
	if (ci != NULL)
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static enum MHD_Result start_stream(http_server *s, struct MHD_Connection *c, request *r)
{
	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Node-Id");
	const char *cluster = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Cluster-Id");
	const char *epoch = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Epoch");
	const char *cu = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Catch-Up");
	int catch_up = cu != NULL && strcmp(cu, "1") == 0;
	struct MHD_Response *resp;
	stream_session *sess;
	proto_pos *pos;
	uint64_t node_id, seen_epoch = 0;
	char peer[64], hex[17];
	size_t n;
	lx_err err;
	enum MHD_Result ok;
	node_status node;

	if (s->hub == NULL || !(catch_up ? stream_hub_serving_catch_up(s->hub) :
					stream_hub_serving(s->hub)))
		return http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			"this node is not the primary");
	http_node_now(s, &node);                     /* the cluster ID as it is now */
	if (parse_hex64(id, &node_id) < 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST,
			"missing or malformed Ltxfs-Node-Id");
	if (node_id == s->node.node_id)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST,
			"a node cannot replicate from itself");
	if (epoch != NULL && parse_dec64(epoch, &seen_epoch) < 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "malformed Ltxfs-Epoch: expected "
					"the lease epoch as a decimal number");
	if (cluster != NULL && *cluster && !cluster_id_valid(cluster))
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "malformed Ltxfs-Cluster-Id");
	if (cluster != NULL && *cluster && node.cluster_id && *node.cluster_id &&
	    strcmp(cluster, node.cluster_id) != 0) {
		/* IDs are validated ASCII: safe inside the JSON string */
		char msg[256];
		snprintf(msg, sizeof(msg), "the replica belongs to another cluster than this "
			 "primary's %s: point its lease.advertise-url at its own cluster's "
			 "primary, or empty its data.dir to join this one", node.cluster_id);
		lx_warn("http", "POST /stream from %016" PRIx64 ": cluster %s is not ours (%s)",
			node_id, cluster, node.cluster_id);
		return http_reply_error(c, MHD_HTTP_CONFLICT, msg);
	}
	/* A catch-up comes from the new primary: its epoch is newer by nature. */
	if (!catch_up && seen_epoch > node.epoch) {
		char msg[200];
		snprintf(msg, sizeof(msg), "this primary's lease epoch %" PRIu64 " is older than "
			 "epoch %s the replica has seen: it was replaced", node.epoch, epoch);
		lx_warn("http", "POST /stream from %016" PRIx64 ": %s", node_id, msg);
		return http_reply_error(c, MHD_HTTP_CONFLICT, msg);
	}
	if (proto_pos_decode(r->body, r->len, &pos, &n, &err) < 0) {
		lx_warn("http", "POST /stream from %016" PRIx64 ": %s", node_id, err.msg);
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, err.code == EPROTONOSUPPORT ?
					err.msg : "malformed position body");
	}
	http_peer_name(c, peer, sizeof(peer));
	no_delay(c);
	if (stream_session_new(&sess, s->hub, node_id, peer, pos, n, catch_up, &err) < 0) {
		free(pos);
		return http_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	free(pos);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256 * 1024, stream_reader,
						 sess, stream_free);
	if (resp == NULL) {
		stream_session_free(sess);
		return MHD_NO;
	}
	snprintf(hex, sizeof(hex), "%016" PRIx64, s->node.node_id);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ltxfs-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "Ltxfs-Node-Id", hex);
	if (s->hub->sync != NULL && !catch_up)
		MHD_add_response_header(resp, "Ltxfs-Acks", sync_commit_ack_level(s->hub->sync));
	if (s->hub->proxy_url != NULL)
		MHD_add_response_header(resp, "Ltxfs-Proxy-Url", s->hub->proxy_url);
	if (node.cluster_id && *node.cluster_id)
		MHD_add_response_header(resp, "Ltxfs-Cluster-Id", node.cluster_id);
	{
		char ebuf[24];
		snprintf(ebuf, sizeof(ebuf), "%" PRIu64, node.epoch);
		MHD_add_response_header(resp, "Ltxfs-Epoch", ebuf);
	}
	ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* ---- POST /ack -------------------------------------------------------------- */

/* A replica's acknowledgements (replication.mode sync): 200, or 409 when
 * they are not for this primary, 503 when this node does not wait for any. */
static enum MHD_Result do_ack(http_server *s, struct MHD_Connection *c, request *r)
{
	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Node-Id");
	const char *epoch = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Epoch");
	const char *cu = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Ltxfs-Caught-Up");
	uint64_t node_id, ep;
	proto_pos *pos;
	size_t n;
	lx_err err;
	int rc;
	if (s->hub == NULL || s->hub->sync == NULL || !stream_hub_serving(s->hub))
		return http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			"this node is not a primary in replication.mode sync");
	if (parse_hex64(id, &node_id) < 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST,
			"missing or malformed Ltxfs-Node-Id");
	if (epoch == NULL || parse_dec64(epoch, &ep) < 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "missing or malformed "
			"Ltxfs-Epoch: expected the lease epoch as a decimal number");
	if (proto_pos_decode(r->body, r->len, &pos, &n, &err) < 0) {
		lx_warn("http", "POST /ack from %016" PRIx64 ": %s", node_id, err.msg);
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, err.code == EPROTONOSUPPORT ?
					err.msg : "malformed position body");
	}
	rc = sync_commit_ack(s->hub->sync, node_id, ep, pos, n,
			     cu != NULL && strcmp(cu, "1") == 0, &err);
	free(pos);
	if (rc == -ESTALE)
		return http_reply_error(c, MHD_HTTP_CONFLICT, err.msg);
	if (rc < 0)
		return http_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
	return http_reply_json(c, MHD_HTTP_OK, json_pack("{s:i}", "accepted", rc));
}

static int body_append(request *r, const char *data, size_t len)
{
	if (r->len + len > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		uint8_t *v;
		while (cap < r->len + len)
			cap *= 2;
		v = realloc(r->body, cap);
		if (v == NULL)
			return -ENOMEM;
		r->body = v;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	return 0;
}

static void request_done(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode why)
{
	request *r = *state;
	(void)cls; (void)c; (void)why;
	if (r != NULL) {
		http_import_end(r);
		if (r->slot != NULL)
			http_slot_give(r->slot);
		free(r->body);
		free(r);
		*state = NULL;
	}
}

/* The declared Content-Length, or UINT64_MAX (none: chunked, or no body). */
static uint64_t content_length(struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n;
	return parse_dec64(v, &n) == 0 ? n : UINT64_MAX;
}

/* The body was declared larger than the endpoint takes: 413 before a byte
 * of it is read (libmicrohttpd then closes the connection). */
static enum MHD_Result refuse_body(struct MHD_Connection *c, const char *url,
				   uint64_t length, uint64_t max)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "request body too large: %" PRIu64 " bytes, %s takes at "
		 "most %" PRIu64 "%s", length, url, max, strcmp(url, "/import") == 0 ?
		 " (http.max-import-size)" : "");
	return http_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
}

/* A body (chunked, so undeclared) grew past the limit: stop reading it at
 * once.  libmicrohttpd cannot answer in the middle of a body, so the
 * connection is closed; the client sees it cut, the log says why. */
static enum MHD_Result cut_body(struct MHD_Connection *c, request *r, const char *method,
				const char *url)
{
	char peer[64];
	http_import_end(r);              /* the partial upload goes at once */
	http_peer_name(c, peer, sizeof(peer));
	lx_warn("http", "%s %s from %s: the body passed %" PRIu64 " bytes%s: connection closed",
		method, url, peer, r->body_max, strcmp(url, "/import") == 0 ?
		" (http.max-import-size)" : "");
	return MHD_NO;
}

/* Headers only so far: who asks, the body's budget, refusals that need no
 * body.  A refused request's body is never read (nor stored). */
static enum MHD_Result begin_request(http_server *s, struct MHD_Connection *c,
				     const char *method, const char *url, int import,
				     void **state)
{
	request *r = calloc(1, sizeof(request));
	uint64_t length = content_length(c);
	enum MHD_Result answer;
	if (r == NULL)
		return MHD_NO;
	r->upload_fd = -1;
	r->body_max = import ? s->limits.max_import_size :
		      strcmp(url, "/stream") == 0 || strcmp(url, "/ack") == 0 ? PROTO_BODY_MAX :
		      HTTP_SMALL_BODY_MAX;
	*state = r;
	if (http_auth_guard(s, c, method, url, &answer)) {
		r->refused = 1;
		return answer;
	}
	if (length != UINT64_MAX && length > r->body_max)
		return refuse_body(c, url, length, r->body_max);
	return import ? http_import_begin(s, c, r, length) : MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version,
			      const char *upload, size_t *upload_size, void **state)
{
	http_server *s = cls;
	int stream = strcmp(url, "/stream") == 0 || strcmp(url, "/ack") == 0;
	int import = strcmp(url, "/import") == 0 && strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	request *r = *state;
	(void)version;

	if (r == NULL)
		return begin_request(s, c, method, url, import, state);
	if (r->refused) {           /* answered already: nothing is read or done */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size != 0) {    /* keep a /stream or /import body, drain any other */
		size_t n = *upload_size;
		int rc;
		*upload_size = 0;
		if (r->received + n > r->body_max)
			return cut_body(c, r, method, url);
		r->received += n;
		rc = stream ? body_append(r, upload, n) :
		     import ? http_import_append(s, r, upload, n) : 0;
		return rc < 0 ? MHD_NO : MHD_YES;
	}
	if (import)
		return http_import_finish(s, c, r);
	if (stream) {
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return http_reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				"method not allowed");
		return url[1] == 's' ? start_stream(s, c, r) : do_ack(s, c, r);
	}
	if (strcmp(url, "/promote") == 0 || strcmp(url, "/handoff") == 0) {
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return http_reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				"method not allowed");
		return url[1] == 'p' ? do_promote(s, c) : do_handoff(s, c);
	}
	if (strcmp(url, "/import") == 0)   /* a POST is handled above */
		return http_reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	if (strcmp(url, "/metrics") != 0 && strcmp(url, "/status") != 0 &&
	    strcmp(url, "/health") != 0 && strcmp(url, "/events") != 0 &&
	    strcmp(url, "/export") != 0 && strcmp(url, "/wait") != 0)
		return http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return http_reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	if (strcmp(url, "/health") == 0)
		return reply_health(s, c);
	if (strcmp(url, "/events") == 0)
		return http_events(s, c);
	if (strcmp(url, "/export") == 0)
		return http_export(s, c);
	if (strcmp(url, "/wait") == 0)
		return http_wait(s, c);
	return reply_status(s, c, strcmp(url, "/metrics") == 0);
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

/* Messages of libmicrohttpd that an operator must see: it could not take a
 * connection (limits, descriptors, threads).  The rest (a client that
 * went away, say) are debug lines. */
static int mhd_message_matters(const char *m)
{
	static const char *const prefixes[] = {
		"Server reached connection limit", "Error accepting connection",
		"Hit process or system resource limit", "Failed to create a",
		"New connection socket descriptor", "Error allocating memory",
		"poll failed",
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(m, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	http_server *s = cls;
	char m[256];
	size_t n;
	vsnprintf(m, sizeof(m), fmt, ap);
	n = strlen(m);
	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == '.'))
		m[--n] = '\0';
	pthread_mutex_lock(&s->log_mu);
	if (s->starting) {
		snprintf(s->start_error, sizeof(s->start_error), "%s", m);
	} else if (!mhd_message_matters(m)) {
		lx_debug("http", "libmicrohttpd: %s", m);
	} else if (lx_mono_ms() - s->warned_ms < 1000) {
		s->suppressed++;             /* a flood: one line a second */
	} else {
		s->warned_ms = lx_mono_ms();
		if (strncmp(m, "Server reached connection limit", 31) == 0)   /* either one */
			snprintf(m + n, sizeof(m) - n, " (http.max-connections is %u, "
				 "http.max-connections-per-ip %u)", s->limits.max_connections,
				 s->limits.max_connections_per_ip);
		lx_warn("http", "libmicrohttpd: %s%s", m, s->suppressed ?
			" (and more like it since the last such line)" : "");
		s->suppressed = 0;
	}
	pthread_mutex_unlock(&s->log_mu);
}

static struct MHD_Daemon *listen_on(http_server *s, const char *host, const char *port,
				    lx_err *err)
{
	struct addrinfo hints, *ai = NULL;
	struct MHD_Daemon *d = NULL;
	/* A thread per connection: a stream's reader blocks until there is
	 * something to send.  poll(2), not select(2): any descriptor number. */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG | (s->tls != NULL ? MHD_USE_TLS : 0);
	/* HTTPS: the certificate comes from http_tls.c at each handshake (so
	 * SIGHUP can rotate it); the CA, given, makes libmicrohttpd ask for a
	 * client certificate, which http_auth.c checks.  Without TLS these
	 * options are ignored (MHD_OPTION_ARRAY ends at once). */
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
		  s->tls != NULL ? http_tls_cert_callback() : NULL },
		{ s->tls != NULL && http_tls_client_ca_pem(s->tls) != NULL ?
		  MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
		  s->tls != NULL ? (void *)http_tls_client_ca_pem(s->tls) : NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
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
	s->starting = 1;
	for (struct addrinfo *a = ai; a != NULL && d == NULL; a = a->ai_next) {
		unsigned f = flags | (a->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
			     (a->ai_family == AF_INET6 && !*host ? MHD_USE_DUAL_STACK : 0);
		/* The port, though the address has it: for libmicrohttpd's messages. */
		uint16_t pnum = ntohs(a->ai_family == AF_INET6 ?
				      ((struct sockaddr_in6 *)a->ai_addr)->sin6_port :
				      ((struct sockaddr_in *)a->ai_addr)->sin_port);
		d = MHD_start_daemon(f, pnum, NULL, NULL, handle, s,
				     /* must come first, to hear about the start */
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				     MHD_OPTION_SOCK_ADDR, a->ai_addr,
				     MHD_OPTION_CONNECTION_LIMIT, s->limits.max_connections,
				     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				     s->limits.max_connections_per_ip,
				     MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				     /* room for large sends: a snapshot is gigabytes */
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1u << 20),
				     MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
				     MHD_OPTION_ARRAY, s->tls != NULL ? tls_opts : tls_opts + 2,
				     MHD_OPTION_END);
	}
	freeaddrinfo(ai);
	pthread_mutex_lock(&s->log_mu);
	s->starting = 0;
	pthread_mutex_unlock(&s->log_mu);
	if (d == NULL)      /* libmicrohttpd's reason, e.g. "Failed to bind to port 20202: Address already in use" */
		lx_err_set(err, EADDRNOTAVAIL, "http.addr [%s]:%s: cannot listen: %s", host, port,
			   s->start_error[0] ? s->start_error : "libmicrohttpd gave no reason");
	return d;
}

int http_server_start(http_server **out, const char *addr, store *st,
		      const node_status *node, stream_hub *hub, const http_hooks *hooks,
		      const http_limits *limits, const http_security *sec, lx_err *err)
{
	static const http_limits defaults = {
		HTTP_DEFAULT_MAX_CONNECTIONS, HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP,
		HTTP_DEFAULT_MAX_EVENT_STREAMS,
		HTTP_DEFAULT_MAX_TRANSFERS, HTTP_DEFAULT_MAX_IMPORT_SIZE,
	};
	char host[256], port[16];
	http_server *s;
	*out = NULL;
	lx_err_clear(err);
	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0)
		return lx_err_set(err, EINVAL, "http.addr \"%s\": expected host:port", addr);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->store = st;
	s->node = *node;
	s->hub = hub;
	if (hooks != NULL)
		s->hooks = *hooks;
	s->limits = limits != NULL ? *limits : defaults;
	pthread_mutex_init(&s->log_mu, NULL);
	if (sec != NULL && http_auth_init(&s->auth, sec->token, sec->read_token, err) == 0 &&
	    sec->tls_cert != NULL)
		http_tls_new(&s->tls, sec, err);
	if (err->code == 0)
		s->mhd = listen_on(s, host, port, err);
	if (s->mhd == NULL) {
		http_tls_free(s->tls);
		sodium_memzero(&s->auth, sizeof(s->auth));
		pthread_mutex_destroy(&s->log_mu);
		free(s);
		return -err->code;
	}
	lx_info("http", "listening on %s (%s, %s; at most %u connections, %u /events "
		"streams, %u imports and exports)", addr, s->tls ? "HTTPS" : "plain HTTP",
		!s->auth.on ? "no token: open to anyone who reaches it" :
		s->auth.has_read ? "token and read token required" : "token required",
		s->limits.max_connections, s->limits.max_event_streams, s->limits.max_transfers);
	*out = s;
	return 0;
}

void http_server_stop(http_server *s)
{
	if (s == NULL)
		return;
	if (s->hub != NULL)
		stream_hub_stop(s->hub);     /* streams end; their threads return */
	__atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
	db_events_notify(&s->store->events);   /* /events readers wake and end */
	MHD_stop_daemon(s->mhd);
	http_tls_free(s->tls);
	sodium_memzero(&s->auth, sizeof(s->auth));
	pthread_mutex_destroy(&s->log_mu);
	free(s);
}

int http_server_tls(const http_server *s)
{
	return s != NULL && s->tls != NULL;
}

int http_server_reload_tls(http_server *s, lx_err *err)
{
	if (s == NULL || s->tls == NULL)
		return lx_err_set(err, EINVAL, "the HTTP API does not use TLS");
	return http_tls_reload(s->tls, err);
}
