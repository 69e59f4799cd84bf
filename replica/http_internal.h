/*
 * http_internal.h - what the files of the HTTP API share (http_server.c:
 * routing, /status, /metrics, /health, /stream, /promote, /handoff;
 * http_data.c: /import and /export; events.c: /events).  Not a public
 * interface: see http_server.h.
 */
#ifndef LTXFS_REPLICA_HTTP_INTERNAL_H
#define LTXFS_REPLICA_HTTP_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "replica/http_server.h"

struct http_server {
	struct MHD_Daemon *mhd;
	store *store;
	node_status node;
	stream_hub *hub;            /* NULL: not the primary, no /stream */
	http_hooks hooks;
	int stopping;               /* set by http_server_stop: /events ends */
};

/* Per request: the body as it arrives (kept for /stream, written to a
 * file for /import, drained for anything else). */
typedef struct request {
	uint8_t *body;
	size_t len, cap;
	int too_large;
	int upload_fd;              /* /import: the file the body goes to, or -1 */
	char upload_path[PATH_MAX];
	uint64_t upload_len;
	int upload_error;           /* errno of a failed write, 0 if none */
} request;

enum MHD_Result http_reply(struct MHD_Connection *c, unsigned code, const char *type,
			   text_buf *body);
/* {"error": msg}, escaped. */
enum MHD_Result http_reply_error(struct MHD_Connection *c, unsigned code, const char *msg);
/* A jansson object (consumed). */
enum MHD_Result http_reply_json(struct MHD_Connection *c, unsigned code, json_t *o);
/* The HTTP status for a negative errno from a hook. */
unsigned http_status_of(int rc);
/* A copy of every database's status; caller frees. */
int http_gather(store *st, status_db **out, size_t *n);
/* The node's status now (hooks.refresh applied); `node->primary` may
 * point into *node, so use it where it is. */
void http_node_now(http_server *s, node_status *node);

/* POST /import?name=DB (http_data.c): begin (headers only: open the file
 * the body goes to), append (each piece of the body), finish (answer),
 * end (when the request is done, in any case: close and remove). */
void http_import_begin(http_server *s, struct MHD_Connection *c, request *r);
int http_import_append(request *r, const char *data, size_t len);
enum MHD_Result http_import_finish(http_server *s, struct MHD_Connection *c, request *r);
void http_import_end(request *r);
/* GET /export?name=DB */
enum MHD_Result http_export(http_server *s, struct MHD_Connection *c);
/* GET /events */
enum MHD_Result http_events(http_server *s, struct MHD_Connection *c);

#endif
