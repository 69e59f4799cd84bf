/*
 * etcd.c - etcd v3 calls over the JSON gateway (see etcd.h).
 */
#include "lease/etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base64.h"
#include "base/clock.h"
#include "net/http_client.h"

struct etcd {
	etcd_options opt;
	char *url;
	http_client *http;
};

/* ---- JSON ----------------------------------------------------------------- */

/* An int64 field: etcd sends a string, tests may send a number; absent is
 * zero (proto3 leaves zero fields out).  -1 if malformed. */
static int get_u64(json_t *o, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	char *end;
	*out = 0;
	if (v == NULL)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if ((s = json_string_value(v)) == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static json_t *b64(const char *s)
{
	size_t n = strlen(s);
	char *buf = malloc(LX_BASE64_ENCODED_SIZE(n));
	json_t *v;
	if (buf == NULL)
		return NULL;
	lx_base64_encode((const uint8_t *)s, n, buf);
	v = json_string(buf);
	free(buf);
	return v;
}

static int parse_kv(json_t *o, etcd_kv *kv, lx_err *err)
{
	const char *v = json_string_value(json_object_get(o, "value"));
	long n = 0;
	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o) || get_u64(o, "lease", &kv->lease) < 0 ||
	    get_u64(o, "create_revision", &kv->create_revision) < 0 ||
	    get_u64(o, "mod_revision", &kv->mod_revision) < 0)
		return lx_err_set(err, EPROTO, "etcd: malformed key entry");
	if (v != NULL &&
	    (n = lx_base64_decode(v, strlen(v), (uint8_t *)kv->value, sizeof(kv->value) - 1)) < 0)
		return lx_err_set(err, EPROTO, "etcd: a value that is not base64 or longer than "
				  "%zu bytes", sizeof(kv->value) - 1);
	kv->value_len = (size_t)n;
	kv->value[n] = '\0';
	kv->present = 1;
	return 0;
}

static int parse_range_object(json_t *o, etcd_kv *v, size_t max, size_t *n, uint64_t *revision,
			      lx_err *err)
{
	json_t *kvs = json_object_get(o, "kvs"), *x;
	size_t i;
	*n = 0;
	if (get_u64(json_object_get(o, "header"), "revision", revision) < 0)
		return lx_err_set(err, EPROTO, "etcd: range answer with a malformed revision");
	if (kvs != NULL && !json_is_array(kvs))
		return lx_err_set(err, EPROTO, "etcd: range answer whose kvs is not an array");
	json_array_foreach(kvs, i, x) {
		if (*n >= max)
			break;
		if (parse_kv(x, &v[*n], err) < 0)
			return -EPROTO;
		(*n)++;
	}
	return 0;
}

int etcd_parse_range(const char *body, size_t len, etcd_kv *v, size_t max, size_t *n,
		     uint64_t *revision, lx_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, 0, &je);
	int rc;
	*n = 0;
	if (!json_is_object(o)) {
		json_decref(o);
		return lx_err_set(err, EPROTO, "etcd: range answer is not a JSON object");
	}
	rc = parse_range_object(o, v, max, n, revision, err);
	json_decref(o);
	return rc;
}

/* ---- calls ---------------------------------------------------------------- */

/* A watch's answer is a stream of JSON objects, one a line: count them
 * and end the call once `stop` arrived. */
typedef struct lines {
	int seen, stop;
} lines;

static int count_lines(void *arg, const char *data, size_t len)
{
	lines *l = arg;
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && ++l->seen >= l->stop)
			return 1;          /* enough: the call ends as complete */
	return 0;
}

/* POST `body` (consumed) to /v3/<path>; the parsed answer in *out.  With
 * stop_lines, the answer is a stream (a watch) read until that many lines
 * arrived, and not parsed. */
static int call(etcd *e, const char *path, json_t *body, int64_t extra_ms, int stop_lines,
		json_t **out, int64_t *sent_ms, lx_err *err)
{
	static const char *const headers[] = { "Content-Type: application/json", NULL };
	char url[1200];
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	lines seen = { 0, stop_lines };
	http_response r;
	http_request q;
	int rc;
	json_decref(body);
	*out = NULL;
	if (text == NULL)
		return lx_err_set(err, ENOMEM, "etcd: out of memory");
	snprintf(url, sizeof(url), "%s/v3/%s", e->url, path);
	memset(&q, 0, sizeof(q));
	q.method = "POST";
	q.url = url;
	q.body = text;
	q.body_len = strlen(text);
	q.headers = headers;
	q.timeout_ms = e->opt.timeout_ms + extra_ms;
	if (stop_lines) {
		q.sink = count_lines;
		q.sink_arg = &seen;
	}
	if (sent_ms != NULL)
		*sent_ms = lx_mono_ms();
	rc = http_client_do(e->http, &q, &r, err);
	if (rc == -EAGAIN && stop_lines && seen.seen > 0)
		rc = 0;                 /* a watch that saw no change in its time */
	else if (rc < 0)
		lx_err_wrap(err, "etcd: ");
	if (rc == 0 && r.status != 200) {
		int code = r.status == 404 ? ENOENT : r.status >= 500 ? EAGAIN : EPROTO;
		rc = lx_err_set(err, code, "etcd %s: %s: HTTP %ld: %.200s", e->url, path,
				r.status, r.body ? r.body : "");
	}
	if (rc == 0 && !stop_lines && (*out = json_loadb(r.body, r.len, 0, NULL)) == NULL)
		rc = lx_err_set(err, EPROTO, "etcd %s: %s: the answer is not JSON", e->url, path);
	free(text);
	http_response_free(&r);
	return rc;
}

int etcd_open(etcd **out, const etcd_options *o, lx_err *err)
{
	etcd *e = calloc(1, sizeof(*e));
	http_client_options ho = { 0 };
	size_t n;
	*out = NULL;
	if (e == NULL || o->url == NULL || (e->url = strdup(o->url)) == NULL) {
		free(e);
		return lx_err_set(err, ENOMEM, "etcd: out of memory (or no URL)");
	}
	e->opt = *o;
	if (e->opt.timeout_ms <= 0)
		e->opt.timeout_ms = 5000;
	n = strlen(e->url);
	while (n > 0 && e->url[n - 1] == '/')
		e->url[--n] = '\0';
	/* Not an ltxfs node: no token, no http.tls.* (as for Consul). */
	ho.cancel = o->abort;
	ho.connect_timeout_ms = e->opt.timeout_ms;
	if (http_client_open(&e->http, &ho, err) < 0) {
		free(e->url);
		free(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void etcd_close(etcd *e)
{
	if (e == NULL)
		return;
	http_client_close(e->http);
	free(e->url);
	free(e);
}

void etcd_interrupt(etcd *e)
{
	http_client_interrupt(e->http);
}

static json_t *id_json(uint64_t id)
{
	char s[32];
	snprintf(s, sizeof(s), "%" PRIu64, id);
	return json_pack("{s:s}", "ID", s);
}

int etcd_grant(etcd *e, int64_t ttl_s, uint64_t *id, int64_t *granted_s, int64_t *sent_ms,
	       lx_err *err)
{
	json_t *o;
	uint64_t ttl = 0;
	int rc = call(e, "lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), 0, 0, &o,
		      sent_ms, err);
	if (rc == 0 && (get_u64(o, "ID", id) < 0 || get_u64(o, "TTL", &ttl) < 0 || *id == 0 ||
			ttl == 0))
		rc = lx_err_set(err, EPROTO, "etcd %s: lease grant without an ID or TTL", e->url);
	*granted_s = (int64_t)ttl;
	json_decref(o);
	return rc;
}

int etcd_keepalive(etcd *e, uint64_t id, int64_t *ttl_s, int64_t *sent_ms, lx_err *err)
{
	json_t *o;
	uint64_t ttl = 0;
	int rc = call(e, "lease/keepalive", id_json(id), 0, 0, &o, sent_ms, err);
	if (rc == 0 && get_u64(json_object_get(o, "result"), "TTL", &ttl) < 0)
		rc = lx_err_set(err, EPROTO, "etcd %s: malformed keep-alive answer", e->url);
	if (rc == 0 && ttl == 0)
		rc = lx_err_set(err, ENOENT, "etcd %s: lease %" PRIu64 " is gone", e->url, id);
	*ttl_s = (int64_t)ttl;
	json_decref(o);
	return rc;
}

int etcd_revoke(etcd *e, uint64_t id, lx_err *err)
{
	json_t *o;
	int rc = call(e, "lease/revoke", id_json(id), 0, 0, &o, NULL, err);
	json_decref(o);
	return rc == -ENOENT ? 0 : rc;   /* gone already */
}

/* A put of key = value bound to `lease`, as a txn operation. */
static json_t *put_op(const char *key, const char *value, uint64_t lease)
{
	char l[32];
	snprintf(l, sizeof(l), "%" PRIu64, lease);
	return json_pack("{s:{s:o, s:o, s:s}}", "request_put", "key", b64(key), "value", b64(value),
			 "lease", l);
}

static int txn(etcd *e, json_t *compare, json_t *success, json_t *failure, uint64_t *revision,
	       json_t **out, lx_err *err)
{
	json_t *body = json_pack("{s:[o], s:[o], s:[o]}", "compare", compare, "success", success,
				 "failure", failure);
	int rc = call(e, "kv/txn", body, 0, 0, out, NULL, err);
	if (rc == 0 && get_u64(json_object_get(*out, "header"), "revision", revision) < 0)
		rc = lx_err_set(err, EPROTO, "etcd %s: txn answer with a malformed revision", e->url);
	if (rc < 0)
		return rc;
	return json_is_true(json_object_get(*out, "succeeded"));   /* absent: false */
}

int etcd_create(etcd *e, const char *key, const char *value, uint64_t lease,
		uint64_t *revision, etcd_kv *holder, lx_err *err)
{
	json_t *o = NULL, *resp;
	size_t n = 0;
	uint64_t rev;
	int rc = txn(e, json_pack("{s:o, s:s, s:s, s:s}", "key", b64(key), "target", "CREATE",
				  "result", "EQUAL", "create_revision", "0"),
		     put_op(key, value, lease),
		     json_pack("{s:{s:o}}", "request_range", "key", b64(key)), revision, &o, err);
	memset(holder, 0, sizeof(*holder));
	if (rc == 0) {
		resp = json_object_get(json_array_get(json_object_get(o, "responses"), 0),
				       "response_range");
		if (resp != NULL && parse_range_object(resp, holder, 1, &n, &rev, err) < 0)
			rc = -EPROTO;
	}
	json_decref(o);
	return rc;
}

int etcd_replace(etcd *e, const char *key, const char *value, uint64_t lease,
		 uint64_t *revision, lx_err *err)
{
	char l[32];
	json_t *o = NULL;
	int rc;
	snprintf(l, sizeof(l), "%" PRIu64, lease);
	rc = txn(e, json_pack("{s:o, s:s, s:s, s:s}", "key", b64(key), "target", "LEASE",
			      "result", "EQUAL", "lease", l),
		 put_op(key, value, lease),
		 json_pack("{s:{s:o}}", "request_range", "key", b64(key)), revision, &o, err);
	json_decref(o);
	return rc;
}

int etcd_get(etcd *e, const char *key, etcd_kv *kv, uint64_t *revision, lx_err *err)
{
	json_t *o;
	size_t n = 0;
	int rc = call(e, "kv/range", json_pack("{s:o}", "key", b64(key)), 0, 0, &o, NULL, err);
	memset(kv, 0, sizeof(*kv));
	if (rc == 0)
		rc = parse_range_object(o, kv, 1, &n, revision, err);
	json_decref(o);
	return rc;
}

int etcd_put(etcd *e, const char *key, const char *value, lx_err *err)
{
	json_t *o;
	int rc = call(e, "kv/put", json_pack("{s:o, s:o}", "key", b64(key), "value", b64(value)),
		      0, 0, &o, NULL, err);
	json_decref(o);
	return rc;
}

/* The smallest key after every key that starts with `prefix`. */
static void prefix_end(const char *prefix, char *out, size_t cap)
{
	size_t n = strlen(prefix);
	snprintf(out, cap, "%s", prefix);
	if (n > 0 && n < cap)
		out[n - 1]++;            /* the key names here are ASCII: no overflow */
}

int etcd_list(etcd *e, const char *prefix, etcd_kv *v, size_t max, size_t *n, lx_err *err)
{
	char end[600];
	json_t *o;
	uint64_t rev;
	int rc;
	prefix_end(prefix, end, sizeof(end));
	rc = call(e, "kv/range", json_pack("{s:o, s:o}", "key", b64(prefix), "range_end", b64(end)),
		  0, 0, &o, NULL, err);
	*n = 0;
	if (rc == 0)
		rc = parse_range_object(o, v, max, n, &rev, err);
	json_decref(o);
	return rc;
}

int etcd_watch(etcd *e, const char *key, uint64_t after, int64_t wait_ms, lx_err *err)
{
	char start[32];
	json_t *o = NULL;
	int rc;
	snprintf(start, sizeof(start), "%" PRIu64, after + 1);
	/* Two lines: "created", then the first event (or a cancel). */
	rc = call(e, "watch", json_pack("{s:{s:o, s:s}}", "create_request", "key", b64(key),
					"start_revision", start),
		  wait_ms, 2, &o, NULL, err);
	json_decref(o);
	return rc;
}
