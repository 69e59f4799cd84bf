/*
 * status_cmd.c - `ltxfs status` (see status_cmd.h).
 */
#include "cmd/status_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cmd/cli.h"

static const char usage[] =
	"usage: ltxfs status [-url URL | -config FILE] [--json]\n"
	"  the node's role, primary, epoch, databases and replicas\n";

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
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

static void print_node(json_t *o)
{
	int primary = strcmp(str(o, "role"), "primary") == 0;
	printf("node      %s (%s)\n", str(o, "hostname"), str(o, "node_id"));
	printf("role      %s%s\n", str(o, "role"),
	       json_is_true(json_object_get(o, "ready")) ? ", ready" : ", NOT READY");
	printf("primary   %s\n", *str(o, "primary") ? str(o, "primary") : "(none known)");
	printf("lease     %s, epoch %" JSON_INTEGER_FORMAT "\n", str(o, "lease"), num(o, "epoch"));
	if (*str(o, "cluster_id"))
		printf("cluster   %s\n", str(o, "cluster_id"));
	if (!primary)
		printf("lag       %.3f s since the primary was last heard (it sends at least one "
		       "message a second)\n",
		       (double)num(o, "lag_ms") / 1000.0);
	printf("uptime    %.0f s\n", (double)num(o, "uptime_ms") / 1000.0);
}

static void print_databases(json_t *dbs)
{
	size_t i;
	json_t *d;
	printf("\n%-24s %10s %12s %-9s %s\n", "DATABASE", "TXID", "SIZE", "JOURNAL", "STATE");
	if (json_array_size(dbs) == 0)
		printf("(none)\n");
	json_array_foreach(dbs, i, d) {
		char size[32];
		const char *state = json_is_true(json_object_get(d, "failed")) ? str(d, "failure") :
				    !json_is_true(json_object_get(d, "exists")) ? "deleted" : "ok";
		human_size((double)num(d, "page_count") * (double)num(d, "page_size"), size,
			   sizeof(size));
		printf("%-24s %10" JSON_INTEGER_FORMAT " %12s %-9s %s", str(d, "name"),
		       num(d, "txid"), size, str(d, "journal"), state);
		if (json_object_get(d, "lost") != NULL)
			printf(" (lost transactions reported: see /status)");
		printf("\n");
	}
}

static void print_replicas(json_t *reps)
{
	size_t i, k;
	json_t *r, *d;
	printf("\n%-18s %-22s %-6s %s\n", "REPLICA", "ADDRESS", "READY", "BEHIND (transactions)");
	if (json_array_size(reps) == 0)
		printf("(none connected)\n");
	json_array_foreach(reps, i, r) {
		printf("%-18s %-22s %-6s", str(r, "node_id"), str(r, "addr"),
		       json_is_true(json_object_get(r, "ready")) ? "yes" : "no");
		json_array_foreach(json_object_get(r, "databases"), k, d)
			printf(" %s:%" JSON_INTEGER_FORMAT, str(d, "name"), num(d, "behind"));
		printf("\n");
	}
}

int cmd_status(int argc, char **argv)
{
	cli_target t;
	cli_response r;
	int as_json = 0, rc;
	json_t *o;
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
	o = json_loads(r.body, 0, NULL);
	cli_response_free(&r);
	if (!json_is_object(o)) {
		fprintf(stderr, "ltxfs status: %s: the answer is not JSON (is -url an ltxfs "
			"node?)\n", t.url);
		json_decref(o);
		return 1;
	}
	print_node(o);
	print_databases(json_object_get(o, "databases"));
	if (strcmp(str(o, "role"), "primary") == 0)
		print_replicas(json_object_get(o, "replicas"));
	json_decref(o);
	return 0;
}
