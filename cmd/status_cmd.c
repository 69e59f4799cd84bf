/*
 * status_cmd.c - `ltxfs status` (see status_cmd.h).
 */
#include "cmd/status_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cmd/cli.h"
#include "net/messages.h"

static const char usage[] =
	"usage: ltxfs status [-url URL | -config FILE] [--json]\n"
	"  the node's role, primary, epoch, databases and replicas\n";

static const char *str(const char *s)
{
	return s ? s : "";
}

/* 1536 -> "1.5 KiB" */
static const char *human_size(double v, char *buf, size_t cap)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static void print_replication(const status_msg_replication *r)
{
	if (strcmp(str(r->mode), "sync") != 0) {
		printf("replication async: commits return once logged here\n");
		return;
	}
	printf("replication sync: %" PRIu64 " replica acknowledgement%s per commit (each once its "
	       "log is %s), within %.1f s, else %s\n", r->min_acks, r->min_acks == 1 ? "" : "s",
	       strcmp(str(r->ack_after), "write") == 0 ? "written" : "fsynced",
	       (double)r->sync_timeout_ms / 1000.0, strcmp(str(r->on_timeout), "degrade") == 0 ?
	       "asynchronous (degrade)" : "the commit fails (fail)");
	if (!r->has_state)
		return;
	printf("          %s, %" PRIu64 " in sync", str(r->state), r->in_sync);
	if (r->reason != NULL)
		printf(" (%s)", r->reason);
	printf("; %" PRIu64 " commits waited %.3f ms on average, %" PRIu64 " timed out, %" PRIu64
	       " refused, %" PRIu64 " without acknowledgements\n", r->commits_waited,
	       r->wait_avg_ms, r->timeouts, r->refused, r->unreplicated);
}

static void print_node(const status_msg *m)
{
	int primary = strcmp(str(m->role), "primary") == 0;
	printf("node      %s (%016" PRIx64 ")\n", str(m->hostname), m->node_id);
	printf("role      %s%s\n", str(m->role), m->ready ? ", ready" : ", NOT READY");
	printf("primary   %s\n", *str(m->primary) ? m->primary : "(none known)");
	printf("lease     %s, epoch %" PRIu64 "\n", str(m->lease), m->epoch);
	if (*str(m->cluster_id))
		printf("cluster   %s\n", m->cluster_id);
	if (!primary)
		printf("lag       %.3f s since the primary was last heard (it sends at least one "
		       "message a second)\n",
		       (double)m->lag_ms / 1000.0);
	if (m->has_replication)
		print_replication(&m->replication);
	printf("uptime    %.0f s\n", (double)m->uptime_ms / 1000.0);
}

static void print_databases(const status_msg *m)
{
	printf("\n%-24s %10s %12s %-9s %s\n", "DATABASE", "TXID", "SIZE", "JOURNAL", "STATE");
	if (m->n_dbs == 0)
		printf("(none)\n");
	for (size_t i = 0; i < m->n_dbs; i++) {
		const status_msg_db *d = &m->dbs[i];
		char size[32];
		const char *state = d->failed ? str(d->failure) : !d->exists ? "deleted" : "ok";
		human_size((double)d->page_count * (double)d->page_size, size, sizeof(size));
		printf("%-24s %10" PRIu64 " %12s %-9s %s", d->name, d->txid, size,
		       d->wal ? "wal" : "rollback", state);
		if (d->has_lost)
			printf(" (lost transactions reported: see /status)");
		if (d->has_backup) {
			printf("; backup at TXID %" PRIu64, d->backup.txid);
			if (d->backup.lag_ms > 0)
				printf(", %.1f s behind", (double)d->backup.lag_ms / 1000.0);
			if (d->backup.error != NULL && d->backup.error[0])
				printf(", failing: %s", d->backup.error);
		}
		printf("\n");
	}
}

static void print_replicas(const status_msg *m)
{
	printf("\n%-18s %-22s %-6s %-7s %s\n", "REPLICA", "ADDRESS", "READY", "IN SYNC",
	       "BEHIND (transactions)");
	if (m->n_replicas == 0)
		printf("(none connected)\n");
	for (size_t i = 0; i < m->n_replicas; i++) {
		const status_msg_replica *r = &m->replicas[i];
		printf("%016" PRIx64 "   %-22s %-6s %-7s", r->node_id, r->addr, r->ready ? "yes" : "no",
		       !r->has_sync ? "-" : r->in_sync ? "yes" : "no");
		for (size_t k = 0; k < r->n_dbs; k++)
			printf(" %s:%" PRIu64, r->dbs[k].name, r->dbs[k].behind);
		printf("\n");
	}
}

int cmd_status(int argc, char **argv)
{
	cli_target t;
	cli_response r;
	int as_json = 0, rc;
	status_msg m;
	lx_err err;
	memset(&t, 0, sizeof(t));
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-json") == 0)
			as_json = 1;
		else if (!cli_target_flag(&t, argc, argv, &i)) {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (cli_target_resolve(&t, "status") < 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cli_request(&t, "GET", "/status", NULL, NULL, 30, &r);
	curl_global_cleanup();
	if (rc < 0 || r.status != 200) {
		cli_report("status", &t, &r);
		cli_response_free(&r);
		return 1;
	}
	if (as_json) {
		fputs(r.body, stdout);
		cli_response_free(&r);
		return 0;
	}
	rc = status_msg_decode(r.body, r.len, &m, &err);
	cli_response_free(&r);
	if (rc < 0) {
		fprintf(stderr, "ltxfs status: %s: %s (is -url an ltxfs node?)\n", t.url, err.msg);
		return 1;
	}
	print_node(&m);
	print_databases(&m);
	if (strcmp(m.role, "primary") == 0)
		print_replicas(&m);
	status_msg_free(&m);
	return 0;
}
