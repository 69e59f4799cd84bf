/*
 * http_internal.h - what the files of the HTTP API share (http_server.c:
 * routing, /status, /metrics, /health, /stream, /promote, /handoff;
 * http_data.c: /import and /export; events.c: /events).  Not a public
 * interface: see http_server.h.
 */
#ifndef LTXFS_REPLICA_HTTP_INTERNAL_H
#define LTXFS_REPLICA_HTTP_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "replica/http_server.h"

/* The tokens' digests (http_auth.c): the tokens themselves are not kept. */
#define HTTP_AUTH_DIGEST 32
typedef struct http_auth {
	int on;                     /* a token is required */
	int has_read;
	unsigned char token[HTTP_AUTH_DIGEST], read_token[HTTP_AUTH_DIGEST];
} http_auth;

/* TLS credentials (http_tls.c). */
typedef struct http_tls http_tls;

struct http_server {
	struct MHD_Daemon *mhd;
	store *store;
	node_status node;
	stream_hub *hub;            /* NULL: not the primary, no /stream */
	http_hooks hooks;
	http_limits limits;
	int stopping;               /* set by http_server_stop: /events ends */
	/* Slots in use of the long-lived responses' budgets (atomics):
	 * http_slot_take()/http_slot_give(). */
	unsigned event_streams, transfers;
	/* libmicrohttpd's messages (http_server.c mhd_log): while starting,
	 * the last one is kept for the error; later, warnings are limited to
	 * one a second, the rest counted.  Guarded by log_mu. */
	pthread_mutex_t log_mu;
	int starting;
	char start_error[256];
	int64_t warned_ms;
	unsigned suppressed;
	int64_t auth_warned_ms;     /* refusals: one line a second, under log_mu */
	unsigned auth_suppressed;
	http_auth auth;
	http_tls *tls;              /* NULL: plain HTTP */
};

/* Per request: the body as it arrives (kept for /stream, written to a
 * file for /import, drained for anything else), within body_max bytes. */
typedef struct request {
	uint8_t *body;
	size_t len, cap;
	uint64_t received, body_max;
	unsigned *slot;             /* the budget this request holds, or NULL */
	int upload_fd;              /* /import: the file the body goes to, or -1 */
	char upload_path[PATH_MAX];
	uint64_t upload_len;
	int upload_error;           /* errno of a failed write, 0 if none */
	int refused;                /* answered before its body: drain, answer nothing more */
} request;

enum MHD_Result http_reply(struct MHD_Connection *c, unsigned code, const char *type,
			   text_buf *body);
/* {"error": msg}, escaped. */
enum MHD_Result http_reply_error(struct MHD_Connection *c, unsigned code, const char *msg);
/* A jansson object (consumed). */
enum MHD_Result http_reply_json(struct MHD_Connection *c, unsigned code, json_t *o);
/* Take a slot of a budget (&s->event_streams or &s->transfers) of `max`:
 * 0, or -EBUSY when all are in use; give it back once. */
int http_slot_take(unsigned *used, unsigned max);
void http_slot_give(unsigned *used);
/* The HTTP status for a negative errno from a hook. */
unsigned http_status_of(int rc);
/* A copy of every database's status; caller frees. */
int http_gather(store *st, status_db **out, size_t *n);
/* The node's status now (hooks.refresh applied); `node->primary` may
 * point into *node, so use it where it is. */
void http_node_now(http_server *s, node_status *node);

/* POST /import?name=DB (http_data.c): begin (headers only, `length` the
 * declared Content-Length or UINT64_MAX: check the name, take a transfer
 * slot, check free space, open the file the body goes to; any refusal is
 * answered at once, before the body is read), append (each piece of the
 * body), finish (answer), end (when the request is done, in any case:
 * close and remove the file, give the slot back). */
enum MHD_Result http_import_begin(http_server *s, struct MHD_Connection *c, request *r,
				  uint64_t length);
int http_import_append(http_server *s, request *r, const char *data, size_t len);
enum MHD_Result http_import_finish(http_server *s, struct MHD_Connection *c, request *r);
void http_import_end(request *r);
/* GET /export?name=DB */
enum MHD_Result http_export(http_server *s, struct MHD_Connection *c);

/* GET /wait?name=DB&pos=POSITION[&timeout=DURATION] (http_wait.c) */
enum MHD_Result http_wait(http_server *s, struct MHD_Connection *c);

/* ?name=DB, checked as every name is (db/names.h) at its decoded length,
 * so "x%00y" is refused rather than read as "x".  NULL (why in err) if
 * missing or invalid. */
const char *http_name_arg(struct MHD_Connection *c, lx_err *err);
/* 400 naming what is wrong with ?name=. */
enum MHD_Result http_reply_bad_name(struct MHD_Connection *c, const lx_err *why);
/* GET /events */
enum MHD_Result http_events(http_server *s, struct MHD_Connection *c);

/* The client's address, numeric ("" if unknown). */
void http_peer_name(struct MHD_Connection *c, char *out, size_t cap);

/* Tokens (http_auth.c): keep the digests of `token` (NULL: no
 * authentication) and `read_token` (NULL: none). */
int http_auth_init(http_auth *a, const char *token, const char *read_token, lx_err *err);
/* Before a request's body: 0 when it may go on; else 1 with the refusal
 * (401 / 403, JSON, logged without the token) queued and its result in
 * *answer.  /health is always allowed. */
int http_auth_guard(http_server *s, struct MHD_Connection *c, const char *method,
		    const char *url, enum MHD_Result *answer);

/* TLS (http_tls.c): load the certificate, key and CA of `sec` (a clear
 * error if any does not load, is expired or the key is not the
 * certificate's); one per process. */
int http_tls_new(http_tls **out, const http_security *sec, lx_err *err);
void http_tls_free(http_tls *t);
/* For MHD_OPTION_HTTPS_CERT_CALLBACK (a gnutls_certificate_retrieve_function2). */
void *http_tls_cert_callback(void);
/* The CA's PEM text when client certificates are required, else NULL
 * (MHD_OPTION_HTTPS_MEM_TRUST: libmicrohttpd then asks clients for one). */
const char *http_tls_client_ca_pem(const http_tls *t);
/* Load the files again; swap only if all loaded (else the old stay). */
int http_tls_reload(http_tls *t, lx_err *err);
/* With client-auth: 0 if the connection's client certificate chains to
 * the CA and is valid now; else -1 and why ("no client certificate",
 * "client certificate unknown CA (...)", "... expired"). */
int http_tls_verify_client(http_tls *t, struct MHD_Connection *c, char *why, size_t cap);

#endif
