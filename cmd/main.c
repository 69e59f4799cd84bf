/*
 * main.c - the ltxfs command line: dispatch to the subcommands.
 *
 *   ltxfs mount -config FILE     run a node (foreground)
 *   ltxfs ltx dump|verify FILE   inspect one LTX file
 *   ltxfs log list|verify|replay inspect a database's transaction log
 *   ltxfs promote [-url URL]     move the primary role to that node
 *   ltxfs version
 */
#include <stdio.h>
#include <string.h>

#include "cmd/log_cmd.h"
#include "cmd/ltx_cmd.h"
#include "cmd/mount_cmd.h"
#include "cmd/promote_cmd.h"

#define LTXFS_VERSION "0.1.0"

static const char usage[] =
	"usage: ltxfs <command> [arguments]\n"
	"\n"
	"commands:\n"
	"  mount -config FILE             mount and serve (foreground; SIGINT/SIGTERM unmount)\n"
	"  ltx dump FILE | ltx verify FILE inspect or check one LTX file\n"
	"  log list|verify|replay ...     inspect a database's transaction log\n"
	"  promote [-url URL]             make that node (a caught-up candidate) the primary\n"
	"  version                        print the version\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "mount") == 0)
		return cmd_mount(argc - 1, argv + 1);
	if (strcmp(argv[1], "ltx") == 0)
		return cmd_ltx(argc - 1, argv + 1);
	if (strcmp(argv[1], "log") == 0)
		return cmd_log(argc - 1, argv + 1);
	if (strcmp(argv[1], "promote") == 0)
		return cmd_promote(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "-version") == 0) {
		printf("ltxfs %s\n", LTXFS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	fprintf(stderr, "ltxfs: unknown command \"%s\"\n\n%s", argv[1], usage);
	return 2;
}
