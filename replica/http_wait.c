/*
 * http_wait.c - GET /wait?name=DB&pos=POSITION[&timeout=DURATION]: answer
 * once this node holds that position of the database (replica/
 * position_wait.h), so a client that wrote on the primary reads its write
 * here.  200 when reached, 504 when the timeout passed first, 409 when the
 * node's history has another checksum at that TXID (the write was lost in
 * a failover), 400 for a malformed request; each with the node's position
 * ("pos", as NAME-pos shows it).  The wait holds the connection's thread,
 * so it is bounded (at most 60 s; 10 s by default).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "replica/http_internal.h"
#include "replica/position_wait.h"

#define WAIT_DEFAULT_MS 10000
#define WAIT_MAX_MS 60000

static const char *arg(struct MHD_Connection *c, const char *key, size_t *len)
{
	const char *v = NULL;
	*len = 0;
	if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v, len) !=
	    MHD_YES)
		return NULL;
	return v;
}

/* ?timeout= as a duration ("500ms", "5s"): ms, or -1. */
static int64_t timeout_arg(struct MHD_Connection *c)
{
	size_t len;
	const char *v = arg(c, "timeout", &len);
	uint64_t ns;
	if (v == NULL)
		return WAIT_DEFAULT_MS;
	if (strlen(v) != len || config_parse_duration(v, &ns) < 0 || ns > WAIT_MAX_MS * 1000000ULL)
		return -1;
	return (int64_t)(ns / 1000000);
}

static enum MHD_Result answer(struct MHD_Connection *c, enum wait_outcome o, const char *name,
			      const wait_target *t, uint64_t txid, uint64_t ck, int64_t timeout_ms)
{
	char pos[40], msg[256];
	unsigned code;
	snprintf(pos, sizeof(pos), "%016" PRIx64 "/%016" PRIx64, txid, ck);
	switch (o) {
	case WAIT_REACHED:
		return http_reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:b, s:s}", "name", name,
								 "reached", 1, "pos", pos));
	case WAIT_DIVERGED:
		code = MHD_HTTP_CONFLICT;
		snprintf(msg, sizeof(msg), "database %s: this node's history does not have "
			 "%016" PRIx64 "/%016" PRIx64 ": that transaction was lost (a failover "
			 "with asynchronous replication)", name, t->txid, t->checksum);
		break;
	case WAIT_TIMED_OUT:
		code = MHD_HTTP_GATEWAY_TIMEOUT;
		snprintf(msg, sizeof(msg), "database %s did not reach TXID %016" PRIx64 " within %"
			 PRId64 " ms on this node", name, t->txid, timeout_ms);
		break;
	default:
		code = MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(msg, sizeof(msg), "the node is stopping");
		break;
	}
	return http_reply_json(c, code, json_pack("{s:s, s:s, s:b, s:s}", "error", msg, "name", name,
						  "reached", 0, "pos", pos));
}

enum MHD_Result http_wait(http_server *s, struct MHD_Connection *c)
{
	wait_target t;
	uint64_t txid, ck;
	size_t len;
	lx_err err;
	const char *name = (lx_err_clear(&err), http_name_arg(c, &err));
	const char *pos = arg(c, "pos", &len);
	int64_t timeout_ms = timeout_arg(c);
	enum wait_outcome o;
	char msg[LX_ERR_MSG_MAX + 32];
	if (name == NULL)
		return http_reply_bad_name(c, &err);
	if (pos == NULL)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "missing ?pos=TXID[/CHECKSUM]");
	if (wait_target_parse(pos, len, &t, &err) < 0) {
		snprintf(msg, sizeof(msg), "invalid ?pos=: %s", err.msg);
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	if (timeout_ms < 0)
		return http_reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid ?timeout=: a duration "
					"such as 500ms or 5s, at most 60s");
	o = position_wait(s->store, name, &t, timeout_ms, &s->stopping, &txid, &ck);
	return answer(c, o, name, &t, txid, ck, timeout_ms);
}
