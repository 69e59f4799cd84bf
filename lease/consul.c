/*
 * consul.c - Consul's session and KV calls over HTTP (see consul.h), through
 * the one HTTP client (net/http_client.h).
 */
#include "lease/consul.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/base64.h"
#include "base/clock.h"
#include "net/http_client.h"

struct consul {
	consul_options opt;
	char *url, *key, *token, *name;
	http_client *http;
	http_response last;             /* the last answer: a response's body is its */
	char session[64];
};

void consul_interrupt(consul *c)
{
	http_client_interrupt(c->http);
}

/* An answer: status, body (valid until the next request) and X-Consul-Index. */
typedef struct response {
	long status;
	const char *body;
	size_t len;
	uint64_t header_value;          /* X-Consul-Index */
	int has_header;
} response;

/* The error for a non-2xx answer, with Consul's text (it is plain text). */
static int status_error(const consul *c, const char *what, const response *r, lx_err *err)
{
	int code = r->status == 404 ? ENOENT : r->status == 403 ? EACCES :
		   r->status >= 500 || r->status == 429 ? EAGAIN : EPROTO;
	int n = (int)(r->len > 200 ? 200 : r->len);
	while (n > 0 && (r->body[n - 1] == '\n' || r->body[n - 1] == '\r'))
		n--;
	if (code == EACCES)
		return lx_err_set(err, code, "consul %s: %s: HTTP 403 (%.*s): check lease.consul "
				  "token and its ACL policy", c->url, what, n, r->body);
	return lx_err_set(err, code, "consul %s: %s: HTTP %ld: %.*s", c->url, what, r->status, n,
			  r->body);
}

static void on_header(void *arg, const char *name, size_t name_len, const char *value,
		      size_t value_len)
{
	response *r = arg;
	char buf[32];
	if (name_len != 14 || strncasecmp(name, "X-Consul-Index", 14) != 0)
		return;
	snprintf(buf, sizeof(buf), "%.*s", (int)(value_len < 31 ? value_len : 31), value);
	r->header_value = strtoull(buf, NULL, 10);
	r->has_header = 1;
}

static int request(consul *c, const char *method, const char *path, const char *body,
		   int64_t timeout_ms, response *r, int64_t *sent_ms, lx_err *err)
{
	char url[2048], tok[600];
	const char *headers[3] = { "Content-Type: application/json", NULL, NULL };
	http_request q;
	int rc;
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	if (c->token != NULL) {
		snprintf(tok, sizeof(tok), "X-Consul-Token: %s", c->token);
		headers[1] = tok;
	}
	memset(&q, 0, sizeof(q));
	memset(r, 0, sizeof(*r));
	q.method = method;
	q.url = url;
	q.body = body;
	q.body_len = body ? strlen(body) : 0;
	q.headers = headers;
	q.timeout_ms = timeout_ms;
	q.on_header = on_header;
	q.header_arg = r;
	http_response_free(&c->last);
	if (sent_ms != NULL)
		*sent_ms = lx_mono_ms();
	rc = http_client_do(c->http, &q, &c->last, err);
	if (rc < 0)
		return lx_err_wrap(err, "consul: ");
	r->status = c->last.status;
	r->body = c->last.body;
	r->len = c->last.len;
	return 0;
}

/* ---- parsing -------------------------------------------------------------- */

int consul_parse_session_id(const char *body, size_t len, char out[64], lx_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, 0, &je);
	const char *id = json_string_value(json_object_get(o, "ID"));
	int rc = 0;
	if (id == NULL || id[0] == '\0' || strlen(id) >= 64)
		rc = lx_err_set(err, EPROTO, "session create answered without an ID");
	else
		memcpy(out, id, strlen(id) + 1);
	json_decref(o);
	return rc;
}

static int get_u64(json_t *o, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_value(json_t *v, consul_entry *e, lx_err *err)
{
	const char *b64;
	long n;
	if (json_is_null(v) || v == NULL)
		return 0;                       /* empty value */
	b64 = json_string_value(v);
	if (b64 == NULL)
		return lx_err_set(err, EPROTO, "KV entry: Value is neither base64 nor null");
	n = lx_base64_decode(b64, strlen(b64), (uint8_t *)e->value, sizeof(e->value) - 1);
	if (n < 0)
		return lx_err_set(err, EPROTO, "KV entry: Value is not base64 or longer than %zu "
				  "bytes", sizeof(e->value) - 1);
	e->value_len = (size_t)n;
	e->value[n] = '\0';
	return 0;
}

static int parse_object(json_t *o, consul_entry *e, lx_err *err)
{
	const char *session;
	int rc = 0;
	memset(e, 0, sizeof(*e));
	if (!json_is_object(o))
		return lx_err_set(err, EPROTO, "KV entry is not an object");
	if (get_u64(o, "ModifyIndex", &e->modify_index) < 0 ||
	    get_u64(o, "LockIndex", &e->lock_index) < 0)
		rc = lx_err_set(err, EPROTO, "KV entry without ModifyIndex/LockIndex");
	session = json_string_value(json_object_get(o, "Session"));
	if (rc == 0 && session != NULL && strlen(session) >= sizeof(e->session))
		rc = lx_err_set(err, EPROTO, "KV entry: Session too long");
	else if (rc == 0 && session != NULL)
		memcpy(e->session, session, strlen(session) + 1);
	if (rc == 0)
		rc = parse_value(json_object_get(o, "Value"), e, err);
	e->present = rc == 0;
	return rc;
}

int consul_parse_entry(const char *body, size_t len, consul_entry *e, lx_err *err)
{
	json_error_t je;
	json_t *a = json_loadb(body, len, 0, &je);
	int rc;
	memset(e, 0, sizeof(*e));
	if (a == NULL)
		return lx_err_set(err, EPROTO, "KV entry is not JSON: %s", je.text);
	if (!json_is_array(a) || json_array_size(a) != 1)
		rc = lx_err_set(err, EPROTO, "KV answer is not an array of one entry");
	else
		rc = parse_object(json_array_get(a, 0), e, err);
	json_decref(a);
	return rc;
}

int consul_parse_entries(const char *body, size_t len, consul_entry *v, size_t max,
			 size_t *n, lx_err *err)
{
	json_error_t je;
	json_t *a = json_loadb(body, len, 0, &je);
	int rc = 0;
	*n = 0;
	if (a == NULL)
		return lx_err_set(err, EPROTO, "KV entries are not JSON: %s", je.text);
	if (!json_is_array(a))
		rc = lx_err_set(err, EPROTO, "KV answer is not an array");
	for (size_t i = 0; rc == 0 && i < json_array_size(a) && *n < max; i++)
		if ((rc = parse_object(json_array_get(a, i), &v[*n], err)) == 0)
			(*n)++;
	json_decref(a);
	return rc;
}

/* "true"/"false" answers of KV writes. */
static int parse_bool(const consul *c, const char *what, const response *r, lx_err *err)
{
	const char *p = r->body;
	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	if (strncmp(p, "true", 4) == 0)
		return 1;
	if (strncmp(p, "false", 5) == 0)
		return 0;
	return lx_err_set(err, EPROTO, "consul %s: %s answered neither true nor false", c->url,
			  what);
}

/* ---- calls ---------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

int consul_open(consul **out, const consul_options *o, lx_err *err)
{
	consul *c = calloc(1, sizeof(*c));
	http_client_options ho = { 0 };
	size_t ulen;
	*out = NULL;
	if (c == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	c->opt = *o;
	c->url = dup_or_null(o->url);
	c->key = dup_or_null(o->key);
	c->token = dup_or_null(o->token);
	c->name = strdup(o->session_name ? o->session_name : "ltxfs");
	if (c->url == NULL || c->key == NULL || c->name == NULL) {
		consul_close(c);
		return lx_err_set(err, ENOMEM, "consul: out of memory (or no URL/key)");
	}
	ulen = strlen(c->url);
	while (ulen > 0 && c->url[ulen - 1] == '/')
		c->url[--ulen] = '\0';
	if (c->opt.timeout_ms <= 0)
		c->opt.timeout_ms = 5000;
	/* Consul is not an ltxfs node: none of the node's bearer token (Consul
	 * would take it for an ACL token: that is lease.consul.token) nor its
	 * http.tls.* (an https:// Consul is checked against the system's CAs). */
	ho.cancel = o->abort;
	ho.connect_timeout_ms = c->opt.timeout_ms;
	if (http_client_open(&c->http, &ho, err) < 0) {
		consul_close(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void consul_close(consul *c)
{
	if (c == NULL)
		return;
	http_client_close(c->http);
	http_response_free(&c->last);
	free(c->url);
	free(c->key);
	free(c->token);
	free(c->name);
	free(c);
}

const char *consul_session_id(const consul *c)
{
	return c->session;
}

void consul_session_adopt(consul *c, const char *id)
{
	snprintf(c->session, sizeof(c->session), "%s", id);
}

int consul_session_create(consul *c, int64_t *sent_ms, lx_err *err)
{
	json_t *o = json_pack("{s:s, s:[], s:s, s:s, s:s}", "Name", c->name, "Checks", "Behavior",
			      "delete", "LockDelay", "", "TTL", "");
	char delay[32], ttl[32], *body;
	response r;
	int rc;
	if (o == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	snprintf(delay, sizeof(delay), "%" PRId64 "ms", c->opt.lock_delay_ms);
	snprintf(ttl, sizeof(ttl), "%" PRId64 "ms", c->opt.ttl_ms);
	json_object_set_new(o, "LockDelay", json_string(delay));
	json_object_set_new(o, "TTL", json_string(ttl));
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (body == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = request(c, "PUT", "/v1/session/create", body, c->opt.timeout_ms, &r, sent_ms, err);
	free(body);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "create session", &r, err);
	if (rc == 0)
		rc = consul_parse_session_id(r.body, r.len, c->session, err);
	return rc;
}

int consul_session_renew(consul *c, int64_t *sent_ms, lx_err *err)
{
	char path[128];
	response r;
	int rc;
	if (c->session[0] == '\0')
		return lx_err_set(err, ENOENT, "consul %s: no session to renew", c->url);
	snprintf(path, sizeof(path), "/v1/session/renew/%s", c->session);
	rc = request(c, "PUT", path, NULL, c->opt.timeout_ms, &r, sent_ms, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "renew session", &r, err);
	return rc;
}

int consul_session_destroy(consul *c, lx_err *err)
{
	char path[128];
	response r;
	int rc;
	if (c->session[0] == '\0')
		return 0;
	snprintf(path, sizeof(path), "/v1/session/destroy/%s", c->session);
	rc = request(c, "PUT", path, NULL, c->opt.timeout_ms, &r, NULL, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "destroy session", &r, err);
	if (rc == 0)
		c->session[0] = '\0';
	return rc;
}

int consul_session_destroy_id(consul *c, const char *id, lx_err *err)
{
	char path[160];
	response r;
	int rc;
	snprintf(path, sizeof(path), "/v1/session/destroy/%s", id);
	rc = request(c, "PUT", path, NULL, c->opt.timeout_ms, &r, NULL, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "destroy session", &r, err);
	return rc;
}

/* The leader's view of the key: the epoch, if our session holds it. */
static int held_by_us(consul *c, uint64_t *epoch, lx_err *err)
{
	consul_entry e;
	uint64_t index = 0;
	int rc = consul_get(c, NULL, &index, 0, 1, &e, err);
	if (rc < 0)
		return rc;
	if (!e.present || strcmp(e.session, c->session) != 0)
		return 0;
	*epoch = e.modify_index;
	return 1;
}

int consul_move_lock(consul *c, const char *from, const char *value, uint64_t *epoch,
		     lx_err *err)
{
	size_t n = strlen(value);
	char *b64 = malloc((n + 2) / 3 * 4 + 1), *body = NULL;
	json_t *ops;
	response r;
	int rc;
	if (b64 == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	lx_base64_encode((const uint8_t *)value, n, b64);
	ops = json_pack("[{s:{s:s, s:s, s:s, s:s}}, {s:{s:s, s:s, s:s, s:s}}]",
			"KV", "Verb", "unlock", "Key", c->key, "Value", b64, "Session", from,
			"KV", "Verb", "lock", "Key", c->key, "Value", b64, "Session", c->session);
	free(b64);
	if (ops != NULL)
		body = json_dumps(ops, JSON_COMPACT);
	json_decref(ops);
	if (body == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = request(c, "PUT", "/v1/txn", body, c->opt.timeout_ms, &r, NULL, err);
	free(body);
	if (rc == 0 && r.status == 409)
		return 0;                 /* a check failed: the lock was not moved */
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "move the lock", &r, err);
	return rc < 0 ? rc : held_by_us(c, epoch, err);
}

int consul_acquire(consul *c, const char *value, uint64_t *epoch, lx_err *err)
{
	char path[1024];
	response r;
	int rc;
	if (c->session[0] == '\0')
		return lx_err_set(err, ENOENT, "consul %s: acquire without a session", c->url);
	snprintf(path, sizeof(path), "/v1/kv/%s?acquire=%s", c->key, c->session);
	rc = request(c, "PUT", path, value, c->opt.timeout_ms, &r, NULL, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "acquire", &r, err);
	if (rc == 0)
		rc = parse_bool(c, "acquire", &r, err);
	if (rc <= 0)
		return rc;
	/* The epoch: what the Consul leader says now, not a possibly stale
	 * follower; and still ours (a session can expire in between). */
	return held_by_us(c, epoch, err);
}

int consul_release(consul *c, lx_err *err)
{
	char path[1024];
	response r;
	int rc;
	if (c->session[0] == '\0')
		return 0;
	snprintf(path, sizeof(path), "/v1/kv/%s?release=%s", c->key, c->session);
	rc = request(c, "PUT", path, "", c->opt.timeout_ms, &r, NULL, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "release", &r, err);
	return rc == 0 ? parse_bool(c, "release", &r, err) : rc;
}

int consul_get(consul *c, const char *key, uint64_t *index, int64_t wait_ms, int consistent,
	       consul_entry *e, lx_err *err)
{
	char path[1200];
	uint64_t before = *index;
	response r;
	int rc, n;

	memset(e, 0, sizeof(*e));
	n = snprintf(path, sizeof(path), "/v1/kv/%s", key ? key : c->key);
	if (before > 0 && wait_ms > 0)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "?index=%" PRIu64 "&wait=%" PRId64
			      "ms", before, wait_ms);
	if (consistent)
		snprintf(path + n, sizeof(path) - (size_t)n, "%sconsistent",
			 strchr(path, '?') ? "&" : "?");
	/* Consul adds up to wait/16 of jitter. */
	rc = request(c, "GET", path, NULL, c->opt.timeout_ms + wait_ms + wait_ms / 16 + 1000, &r,
		     NULL, err);
	if (rc < 0)
		return rc;
	if (r.status == 404)
		e->present = 0;
	else if (r.status != 200)
		return status_error(c, "read key", &r, err);
	else if ((rc = consul_parse_entry(r.body, r.len, e, err)) < 0)
		return lx_err_wrap(err, "consul %s: key %s: ", c->url, key ? key : c->key);
	if (r.has_header)
		*index = r.header_value < before ? 0 : r.header_value;   /* went backwards: start over */
	return 0;
}

int consul_put_cas(consul *c, const char *key, const char *value, uint64_t cas, lx_err *err)
{
	char path[1200];
	response r;
	int rc;
	snprintf(path, sizeof(path), "/v1/kv/%s?cas=%" PRIu64, key, cas);
	rc = request(c, "PUT", path, value, c->opt.timeout_ms, &r, NULL, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "write key", &r, err);
	return rc == 0 ? parse_bool(c, "write key", &r, err) : rc;
}

int consul_put(consul *c, const char *key, const char *value, lx_err *err)
{
	char path[1200];
	response r;
	int rc;
	snprintf(path, sizeof(path), "/v1/kv/%s", key);
	rc = request(c, "PUT", path, value, c->opt.timeout_ms, &r, NULL, err);
	if (rc == 0 && r.status != 200)
		rc = status_error(c, "write key", &r, err);
	return rc == 0 ? (parse_bool(c, "write key", &r, err) == 1 ? 0 :
			  lx_err_set(err, EPROTO, "consul %s: write of %s refused", c->url, key)) : rc;
}

int consul_list(consul *c, const char *prefix, consul_entry *v, size_t max, size_t *n,
		lx_err *err)
{
	char path[1200];
	response r;
	int rc;
	*n = 0;
	snprintf(path, sizeof(path), "/v1/kv/%s?recurse", prefix);
	rc = request(c, "GET", path, NULL, c->opt.timeout_ms, &r, NULL, err);
	if (rc < 0 || r.status == 404)
		return rc;
	if (r.status != 200)
		return status_error(c, "list keys", &r, err);
	if ((rc = consul_parse_entries(r.body, r.len, v, max, n, err)) < 0)
		return lx_err_wrap(err, "consul %s: keys under %s: ", c->url, prefix);
	return 0;
}
