/*
 * s3_util.c - the pure parts of the S3 client (see s3_internal.h):
 * encodings, URLs, the XML S3 sends and takes, and which failures pass.
 */
#include "net/s3_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

/* ---- encodings ---------------------------------------------------------------- */

static int unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

char *s3_uri_encode(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (keep_slash && *p == '/')) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int s3_url_decode(const char *s, char **out)
{
	char *o = malloc(strlen(s) + 1), *w = o;
	*out = NULL;
	if (o == NULL)
		return -ENOMEM;
	for (const char *p = s; *p; p++) {
		if (*p == '+') {
			*w++ = ' ';
		} else if (*p == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			if (lo < 0 || (hi == 0 && lo == 0)) {
				free(o);
				return -EINVAL;
			}
			*w++ = (char)(hi * 16 + lo);
			p += 2;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	*out = o;
	return 0;
}

typedef struct enc_param {
	char *name, *value;
} enc_param;

static int enc_param_cmp(const void *a, const void *b)
{
	const enc_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

char *s3_query(const s3_param *p, size_t n)
{
	enc_param *e = calloc(n ? n : 1, sizeof(*e));
	size_t len = 1;
	char *out = NULL, *o;
	int ok = e != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		e[i].name = s3_uri_encode(p[i].name, 0);
		e[i].value = s3_uri_encode(p[i].value ? p[i].value : "", 0);
		ok = e[i].name != NULL && e[i].value != NULL;
		if (ok)
			len += strlen(e[i].name) + strlen(e[i].value) + 2;
	}
	if (ok && (out = malloc(len)) != NULL) {
		/* SigV4 sorts by the encoded names, bytewise */
		qsort(e, n, sizeof(*e), enc_param_cmp);
		o = out;
		for (size_t i = 0; i < n; i++)
			o += sprintf(o, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
		*o = '\0';
	}
	for (size_t i = 0; e != NULL && i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	return out;
}

int s3_make_url(const char *endpoint, const char *bucket, int path_style, const char *key,
		const s3_param *q, size_t nq, char **out, lx_err *err)
{
	const char *scheme_end = strstr(endpoint, "://");
	char *b = s3_uri_encode(bucket, 0);
	char *k = key ? s3_uri_encode(key, 1) : strdup("");
	char *query = s3_query(q, nq);
	int rc = 0, n = -1;
	*out = NULL;
	if (scheme_end == NULL)
		rc = lx_err_set(err, EINVAL, "s3: endpoint %s: no scheme", endpoint);
	else if (b == NULL || k == NULL || query == NULL)
		rc = lx_err_set(err, ENOMEM, "s3: out of memory");
	else if (path_style)
		n = asprintf(out, "%s/%s%s%s%s%s", endpoint, b, key ? "/" : "", k,
			     query[0] ? "?" : "", query);
	else {
		/* the bucket becomes the host's first label */
		int scheme_len = (int)(scheme_end + 3 - endpoint);
		const char *host = scheme_end + 3;
		const char *path = host + strcspn(host, "/");
		n = asprintf(out, "%.*s%s.%.*s%s/%s%s%s", scheme_len, endpoint, b,
			     (int)(path - host), host, path, k, query[0] ? "?" : "", query);
	}
	if (rc == 0 && n < 0) {
		*out = NULL;
		rc = lx_err_set(err, ENOMEM, "s3: out of memory");
	}
	free(b);
	free(k);
	free(query);
	return rc;
}

int s3_key_check(const char *key, lx_err *err)
{
	size_t n = key ? strlen(key) : 0;
	if (n == 0 || n > S3_KEY_MAX)
		return lx_err_set(err, EINVAL, "s3: a key holds 1 to %d bytes, not %zu", S3_KEY_MAX, n);
	return 0;
}

int s3_parse_time_ms(const char *s, int64_t *out)
{
	struct tm tm;
	int ms = 0, used = 0, frac = 0;
	const char *p;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19)
		return -EINVAL;
	p = s + used;
	if (*p == '.') {
		/* milliseconds: the first three digits of the fraction */
		for (p++; *p >= '0' && *p <= '9'; p++, frac++)
			if (frac < 3)
				ms = ms * 10 + (*p - '0');
		if (frac == 0)
			return -EINVAL;
		for (; frac < 3; frac++)
			ms *= 10;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}

/* The ETag without its quotes (and a weak "W/" prefix), into `buf`. */
static const char *etag_bare(const char *etag, char *buf, size_t cap)
{
	size_t n;
	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	if (*etag == '"')
		etag++;
	n = strcspn(etag, "\"");
	snprintf(buf, cap, "%.*s", (int)n, etag);
	return buf;
}

int s3_etag_is_md5(const char *etag)
{
	char buf[96];
	const char *e = etag_bare(etag, buf, sizeof(buf));
	if (strlen(e) != 32)
		return 0;
	for (; *e; e++)
		if (hexval(*e) < 0)
			return 0;
	return 1;
}

int s3_etag_matches(const char *etag, const char *md5_hex)
{
	char buf[96];
	return strcasecmp(etag_bare(etag, buf, sizeof(buf)), md5_hex) == 0;
}

/* ---- XML ---------------------------------------------------------------------- */

/* No network, no messages on stderr, no entity expansion (the default). */
static xmlDocPtr xml_read(const char *xml, size_t len)
{
	if (xml == NULL || len == 0 || len > INT_MAX)
		return NULL;
	return xmlReadMemory(xml, (int)len, NULL, NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* S3's documents carry a namespace (or not: s3rver's errors): names are
 * compared without it. */
static int is(xmlNodePtr n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c != NULL; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* A child's text, malloc'd ("" if empty); NULL if there is no such child
 * (or no memory: callers treat both as missing). */
static char *child_text(xmlNodePtr n, const char *name)
{
	xmlNodePtr c = child(n, name);
	xmlChar *t;
	char *s;
	if (c == NULL)
		return NULL;
	t = xmlNodeGetContent(c);
	s = strdup(t ? (const char *)t : "");
	xmlFree(t);
	return s;
}

static void child_copy(xmlNodePtr n, const char *name, char *out, size_t cap)
{
	char *t = child_text(n, name);
	snprintf(out, cap, "%s", t ? t : "");
	free(t);
}

static xmlNodePtr root_named(xmlDocPtr doc, const char *name)
{
	xmlNodePtr r = doc ? xmlDocGetRootElement(doc) : NULL;
	return is(r, name) ? r : NULL;
}

int s3_xml_error(const char *xml, size_t len, char *code, size_t code_cap, char *msg,
		 size_t msg_cap)
{
	xmlDocPtr doc = xml_read(xml, len);
	xmlNodePtr r = root_named(doc, "Error");
	if (r == NULL) {
		xmlFreeDoc(doc);
		return -EINVAL;
	}
	child_copy(r, "Code", code, code_cap);
	child_copy(r, "Message", msg, msg_cap);
	xmlFreeDoc(doc);
	return 0;
}

static int page_add(s3_list_page *pg, char *key, uint64_t size, int64_t mtime)
{
	if (pg->n == pg->cap) {
		size_t cap = pg->cap ? pg->cap * 2 : 256;
		s3_object *v = realloc(pg->objs, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		pg->objs = v;
		pg->cap = cap;
	}
	pg->objs[pg->n].key = key;
	pg->objs[pg->n].size = size;
	pg->objs[pg->n].mtime_ms = mtime;
	pg->n++;
	return 0;
}

static int list_entry(xmlNodePtr e, int url_encoded, s3_list_page *pg, lx_err *err)
{
	char *key = child_text(e, "Key"), *size = child_text(e, "Size");
	char *mtime = child_text(e, "LastModified"), *end = NULL, *decoded = NULL;
	uint64_t sz = 0;
	int64_t ms = 0;
	int rc = 0;
	if (key == NULL || key[0] == '\0' || size == NULL)
		rc = lx_err_set(err, EPROTO, "ListBucketResult: an entry without Key or Size");
	else if ((errno = 0, sz = strtoull(size, &end, 10), errno != 0 || *end != '\0' ||
		  size[0] == '-' || end == size))
		rc = lx_err_set(err, EPROTO, "ListBucketResult: %s: bad Size \"%s\"", key, size);
	else if (mtime != NULL && s3_parse_time_ms(mtime, &ms) < 0)
		rc = lx_err_set(err, EPROTO, "ListBucketResult: %s: bad LastModified \"%s\"", key,
				mtime);
	else if (url_encoded && s3_url_decode(key, &decoded) < 0)
		rc = lx_err_set(err, EPROTO, "ListBucketResult: a key badly url-encoded: %s", key);
	if (rc == 0 && url_encoded) {
		free(key);
		key = decoded;
	}
	if (rc == 0 && (key == NULL || page_add(pg, key, sz, ms) < 0))
		rc = lx_err_set(err, ENOMEM, "s3: out of memory");
	if (rc == 0)
		key = NULL;                     /* the page owns it */
	free(key);
	free(size);
	free(mtime);
	return rc;
}

int s3_xml_list(const char *xml, size_t len, s3_list_page *pg, lx_err *err)
{
	xmlDocPtr doc = xml_read(xml, len);
	xmlNodePtr r = root_named(doc, "ListBucketResult");
	char *truncated, *encoding;
	int url_encoded, rc = 0;
	pg->truncated = 0;
	pg->next_token = NULL;
	if (r == NULL) {
		xmlFreeDoc(doc);
		return lx_err_set(err, EPROTO, "not a ListBucketResult document");
	}
	truncated = child_text(r, "IsTruncated");
	encoding = child_text(r, "EncodingType");
	url_encoded = encoding != NULL && strcmp(encoding, "url") == 0;
	pg->truncated = truncated != NULL && strcmp(truncated, "true") == 0;
	free(truncated);
	free(encoding);
	for (xmlNodePtr c = r->children; rc == 0 && c != NULL; c = c->next)
		if (is(c, "Contents"))
			rc = list_entry(c, url_encoded, pg, err);
	if (rc == 0 && pg->truncated)
		pg->next_token = child_text(r, "NextContinuationToken");
	xmlFreeDoc(doc);
	return rc;
}

void s3_delete_failures_free(s3_delete_failure *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i].key);
	free(v);
}

int s3_xml_delete_result(const char *xml, size_t len, s3_delete_failure **out, size_t *n,
			 lx_err *err)
{
	xmlDocPtr doc = xml_read(xml, len);
	xmlNodePtr r = root_named(doc, "DeleteResult");
	s3_delete_failure *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (r == NULL) {
		xmlFreeDoc(doc);
		return lx_err_set(err, EPROTO, "not a DeleteResult document");
	}
	for (xmlNodePtr c = r->children; rc == 0 && c != NULL; c = c->next) {
		if (!is(c, "Error"))
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			s3_delete_failure *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				rc = lx_err_set(err, ENOMEM, "s3: out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		v[cnt].key = child_text(c, "Key");
		child_copy(c, "Code", v[cnt].code, sizeof(v[cnt].code));
		child_copy(c, "Message", v[cnt].message, sizeof(v[cnt].message));
		if (v[cnt].key == NULL)
			v[cnt].key = strdup("(no key)");
		if (v[cnt].key == NULL)
			rc = lx_err_set(err, ENOMEM, "s3: out of memory");
		else
			cnt++;
	}
	xmlFreeDoc(doc);
	if (rc < 0) {
		s3_delete_failures_free(v, cnt);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int s3_xml_upload_id(const char *xml, size_t len, char **out, lx_err *err)
{
	xmlDocPtr doc = xml_read(xml, len);
	xmlNodePtr r = root_named(doc, "InitiateMultipartUploadResult");
	*out = r ? child_text(r, "UploadId") : NULL;
	xmlFreeDoc(doc);
	if (*out == NULL || (*out)[0] == '\0') {
		free(*out);
		*out = NULL;
		return lx_err_set(err, EPROTO, "no UploadId in the answer (not an "
				  "InitiateMultipartUploadResult document)");
	}
	return 0;
}

/* ---- request bodies --------------------------------------------------------------- */

typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Text escaped for XML; line ends and tabs as references so that no parser
 * normalizes them away.  -1 for a byte XML 1.0 cannot carry. */
static int sb_xml_text(sbuf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char ref[8];
		switch (*p) {
		case '&': sb_str(b, "&amp;"); break;
		case '<': sb_str(b, "&lt;"); break;
		case '>': sb_str(b, "&gt;"); break;
		case '"': sb_str(b, "&quot;"); break;
		case '\'': sb_str(b, "&apos;"); break;
		case '\t': case '\n': case '\r':
			snprintf(ref, sizeof(ref), "&#%d;", *p);
			sb_str(b, ref);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				return -1;
			sb_add(b, (const char *)p, 1);
		}
	}
	return 0;
}

static int sb_finish(sbuf *b, char **out, size_t *out_len, lx_err *err)
{
	if (b->oom) {
		free(b->p);
		return lx_err_set(err, ENOMEM, "s3: out of memory");
	}
	*out = b->p;
	*out_len = b->len;
	return 0;
}

int s3_xml_delete_body(const char *const *keys, size_t n, char **out, size_t *out_len,
		       lx_err *err)
{
	sbuf b = { 0 };
	*out = NULL;
	*out_len = 0;
	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	       "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++) {
		sb_str(&b, "<Object><Key>");
		if (sb_xml_text(&b, keys[i]) < 0) {
			free(b.p);
			return lx_err_set(err, EINVAL, "s3: key \"%s\": a control character, which "
					  "DeleteObjects' XML cannot carry", keys[i]);
		}
		sb_str(&b, "</Key></Object>");
	}
	sb_str(&b, "</Delete>");
	return sb_finish(&b, out, out_len, err);
}

int s3_xml_complete_body(char *const *etags, size_t n, char **out, size_t *out_len,
			 lx_err *err)
{
	sbuf b = { 0 };
	*out = NULL;
	*out_len = 0;
	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload "
	       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (size_t i = 0; i < n; i++) {
		char num[64];
		snprintf(num, sizeof(num), "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		sb_str(&b, num);
		if (sb_xml_text(&b, etags[i]) < 0) {
			free(b.p);
			return lx_err_set(err, EPROTO, "s3: part %zu: an ETag with a control "
					  "character", i + 1);
		}
		sb_str(&b, "</ETag></Part>");
	}
	sb_str(&b, "</CompleteMultipartUpload>");
	return sb_finish(&b, out, out_len, err);
}

/* ---- failures ------------------------------------------------------------------- */

/* Codes S3 (and its kin) give for a refusal that passes: overload,
 * throttling, a server fault, a body cut or corrupted on the way. */
static const char *const passing_codes[] = {
	"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
	"Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequestsException",
	"RequestLimitExceeded", "BandwidthLimitExceeded", "PriorRequestNotComplete",
	"OperationAborted", "BadDigest", "XAmzContentSHA256Mismatch", "IncompleteBody",
};

static int passing_code(const char *code)
{
	for (size_t i = 0; code != NULL && i < sizeof(passing_codes) / sizeof(*passing_codes); i++)
		if (strcmp(code, passing_codes[i]) == 0)
			return 1;
	return 0;
}

int s3_retryable(int rc, long status, const char *code)
{
	if (rc < 0)
		return rc == -EAGAIN;   /* no answer; not: cancelled, out of memory, too long */
	if (passing_code(code))
		return 1;
	if (code != NULL && code[0] != '\0' && status >= 200 && status <= 299)
		return 0;               /* a 200 whose body is an error of another kind */
	return status == 429 || status == 408 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

int s3_error_errno(long status, const char *code)
{
	if (code == NULL)
		code = "";
	if (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0 ||
	    strcmp(code, "NoSuchUpload") == 0 || status == 404)
		return ENOENT;
	if (strcmp(code, "AccessDenied") == 0 || strcmp(code, "InvalidAccessKeyId") == 0 ||
	    strcmp(code, "SignatureDoesNotMatch") == 0 || status == 401 || status == 403)
		return EACCES;
	if (strcmp(code, "InvalidRange") == 0 || status == 416)
		return ERANGE;
	if (strcmp(code, "BadDigest") == 0 || strcmp(code, "XAmzContentSHA256Mismatch") == 0)
		return EIO;
	if (s3_retryable(0, status, code))
		return EAGAIN;
	return EPROTO;
}
