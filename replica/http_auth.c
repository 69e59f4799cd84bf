/*
 * http_auth.c - who may ask what of the HTTP API (see http_server.h,
 * "Authentication"): the bearer tokens and, with mutual TLS, the client's
 * certificate.
 *
 * Tokens are kept only as their BLAKE2b-256 digests (crypto_generichash):
 * a presented token is hashed the same way and the digests are compared
 * with sodium_memcmp, so the comparison takes the same time whatever the
 * token's length or content, and the server never holds the secret
 * itself.  Nothing here logs or answers with a token, presented or
 * configured.
 *
 * Everything runs on the connection's thread, before the request's body
 * is read: a refused /import never stores a byte.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/log.h"
#include "replica/http_internal.h"

int http_auth_init(http_auth *a, const char *token, const char *read_token, lx_err *err)
{
	memset(a, 0, sizeof(*a));
	if (token == NULL)
		return 0;
	if (sodium_init() < 0)
		return lx_err_set(err, EIO, "libsodium does not initialise");
	crypto_generichash(a->token, sizeof(a->token), (const unsigned char *)token,
			   strlen(token), NULL, 0);
	a->on = 1;
	if (read_token != NULL) {
		crypto_generichash(a->read_token, sizeof(a->read_token),
				   (const unsigned char *)read_token, strlen(read_token), NULL, 0);
		a->has_read = 1;
	}
	return 0;
}

/* What a read token may ask: GET (or HEAD) /status, /metrics, /events,
 * /wait. */
static int read_only_request(const char *method, const char *url)
{
	return (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
	       (strcmp(url, "/status") == 0 || strcmp(url, "/metrics") == 0 ||
		strcmp(url, "/events") == 0 || strcmp(url, "/wait") == 0);
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_of(struct MHD_Connection *c, size_t *len)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return NULL;
	v += 7;
	while (*v == ' ')
		v++;
	*len = strlen(v);
	while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
		(*len)--;
	return *len > 0 ? v : NULL;
}

/* A refusal, logged at most once a second (a scanner must not flood the
 * log); what was asked and from where, never a token. */
static void log_refusal(http_server *s, struct MHD_Connection *c, const char *method,
			const char *url, unsigned code, const char *why)
{
	char peer[64];
	int64_t now = lx_mono_ms();
	unsigned more;
	pthread_mutex_lock(&s->log_mu);
	if (now - s->auth_warned_ms < 1000) {
		s->auth_suppressed++;
		pthread_mutex_unlock(&s->log_mu);
		return;
	}
	s->auth_warned_ms = now;
	more = s->auth_suppressed;
	s->auth_suppressed = 0;
	pthread_mutex_unlock(&s->log_mu);
	http_peer_name(c, peer, sizeof(peer));
	lx_warn("http", "%s %s from %s: refused (%u): %s%s", method, url, peer, code, why,
		more ? " (and more refusals since the last such line)" : "");
}

static enum MHD_Result refuse(http_server *s, struct MHD_Connection *c, const char *method,
			      const char *url, unsigned code, const char *why, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	struct MHD_Response *r;
	enum MHD_Result ok;
	json_decref(o);
	log_refusal(s, c, method, url, code, why);
	if (text == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"ltxfs\"");
	ok = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ok;
}

int http_auth_guard(http_server *s, struct MHD_Connection *c, const char *method,
		    const char *url, enum MHD_Result *answer)
{
	unsigned char digest[HTTP_AUTH_DIGEST];
	const char *token;
	size_t len = 0;
	int full, read;
	char why[256];

	if (strcmp(url, "/health") == 0)        /* for load balancers: always open */
		return 0;
	if (s->tls != NULL && http_tls_verify_client(s->tls, c, why, sizeof(why)) < 0) {
		*answer = refuse(s, c, method, url, MHD_HTTP_FORBIDDEN, why,
				 "client certificate refused (http.tls.client-auth)");
		return 1;
	}
	if (!s->auth.on)
		return 0;
	token = bearer_of(c, &len);
	if (token == NULL) {
		*answer = refuse(s, c, method, url, MHD_HTTP_UNAUTHORIZED, "no bearer token",
				 "authentication required: send Authorization: Bearer <http.token>");
		return 1;
	}
	crypto_generichash(digest, sizeof(digest), (const unsigned char *)token, len, NULL, 0);
	full = sodium_memcmp(digest, s->auth.token, sizeof(digest)) == 0;
	read = s->auth.has_read &&
	       sodium_memcmp(digest, s->auth.read_token, sizeof(digest)) == 0;
	sodium_memzero(digest, sizeof(digest));
	if (full)
		return 0;
	if (read && read_only_request(method, url))
		return 0;
	if (read) {
		*answer = refuse(s, c, method, url, MHD_HTTP_FORBIDDEN, "read token",
				 "the read token grants only GET /status, /metrics and /events");
		return 1;
	}
	*answer = refuse(s, c, method, url, MHD_HTTP_UNAUTHORIZED, "wrong bearer token",
			 "authentication required: the bearer token is not this node's");
	return 1;
}
