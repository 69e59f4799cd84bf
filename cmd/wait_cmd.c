/*
 * wait_cmd.c - `ltxfs wait` (see wait_cmd.h).
 */
#include "cmd/wait_cmd.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cmd/cli.h"
#include "config/config.h"
#include "db/names.h"

static const char usage[] =
	"usage: ltxfs wait [-url URL | -config FILE] -name DB -txid POS [-timeout D]\n"
	"  wait until that node holds position POS of database DB: the TXID as DB-pos\n"
	"  shows it (hexadecimal), or DB-pos's whole content (TXID/CHECKSUM); D is a\n"
	"  duration (default 10s, at most 60s)\n";

typedef struct wait_args {
	cli_target target;
	const char *name, *pos, *timeout;
} wait_args;

/* 0: parsed; 1: help was printed; -1: a usage error was printed. */
static int parse_args(wait_args *a, int argc, char **argv)
{
	uint64_t ns;
	lx_err err;
	memset(a, 0, sizeof(*a));
	a->timeout = "10s";
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i][0] == '-' && argv[i][1] == '-' ? argv[i] + 1 : argv[i];
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 1;
		}
		if (strcmp(f, "-name") == 0 && i + 1 < argc)
			a->name = argv[++i];
		else if (strcmp(f, "-txid") == 0 && i + 1 < argc)
			a->pos = argv[++i];
		else if (strcmp(f, "-timeout") == 0 && i + 1 < argc)
			a->timeout = argv[++i];
		else if (!cli_target_flag(&a->target, argc, argv, &i))
			a->name = NULL, i = argc;          /* a usage error */
	}
	if (a->name == NULL || a->pos == NULL) {
		fputs(usage, stderr);
		return -1;
	}
	if (db_name_check(a->name, strlen(a->name), &err) < 0) {
		fprintf(stderr, "ltxfs wait: -name: %s\n", err.msg);
		return -1;
	}
	if (config_parse_duration(a->timeout, &ns) < 0 || ns > 60ULL * 1000000000ULL) {
		fprintf(stderr, "ltxfs wait: -timeout: a duration such as 500ms or 5s, at most 60s\n");
		return -1;
	}
	return 0;
}

/* "/wait?name=..&pos=..&timeout=.." */
static int wait_path(const wait_args *a, char *out, size_t cap)
{
	char *name = curl_easy_escape(NULL, a->name, 0);
	char *pos = curl_easy_escape(NULL, a->pos, 0);
	char *timeout = curl_easy_escape(NULL, a->timeout, 0);
	int ok = name && pos && timeout &&
		 (size_t)snprintf(out, cap, "/wait?name=%s&pos=%s&timeout=%s", name, pos,
				  timeout) < cap;
	curl_free(name);
	curl_free(pos);
	curl_free(timeout);
	return ok ? 0 : -1;
}

/* The "pos" of a /wait answer, or "?". */
static void print_answer(const wait_args *a, const cli_response *r)
{
	json_t *o = r->body ? json_loads(r->body, 0, NULL) : NULL;
	const char *pos = json_string_value(json_object_get(o, "pos"));
	printf("%s at %s\n", a->name, pos ? pos : "?");
	json_decref(o);
}

int cmd_wait(int argc, char **argv)
{
	wait_args a;
	cli_response r;
	char path[CLI_URL_MAX];
	uint64_t ns;
	int rc = parse_args(&a, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (cli_target_resolve(&a.target, "wait") < 0)
		return 1;
	if (wait_path(&a, path, sizeof(path)) < 0) {
		fputs("ltxfs wait: out of memory\n", stderr);
		return 1;
	}
	(void)config_parse_duration(a.timeout, &ns);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cli_request(&a.target, "GET", path, NULL, NULL, (long)(ns / 1000000000ULL) + 30, &r);
	curl_global_cleanup();
	if (rc < 0 || r.status != 200) {
		cli_report("wait", &a.target, &r);
		cli_response_free(&r);
		return 1;
	}
	print_answer(&a, &r);
	cli_response_free(&r);
	return 0;
}
