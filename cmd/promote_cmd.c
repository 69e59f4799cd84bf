/*
 * promote_cmd.c - `ltxfs promote` (see promote_cmd.h).
 */
#include "cmd/promote_cmd.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cmd/cli.h"

static const char usage[] =
	"usage: ltxfs promote [-url URL | -config FILE]\n"
	"  make that node (a caught-up candidate replica) the primary by a hand-off\n";

int cmd_promote(int argc, char **argv)
{
	cli_target t;
	cli_response r;
	int rc;
	memset(&t, 0, sizeof(t));
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		if (!cli_target_flag(&t, argc, argv, &i)) {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (cli_target_resolve(&t, "promote") < 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cli_request(&t, "POST", "/promote", NULL, NULL, 30, &r);
	curl_global_cleanup();
	if (rc < 0 || r.status != 200) {
		cli_report("promote", &t, &r);
		cli_response_free(&r);
		return 1;
	}
	cli_response_free(&r);
	printf("%s is the primary now\n", t.url);
	return 0;
}
