/*
 * main.c - the ltxfs command line: dispatch to the subcommands.
 *
 *   ltxfs mount -config FILE [-- CMD ARGS]  run a node (foreground)
 *   ltxfs status [--json]        a running node's role, databases, replicas
 *   ltxfs import -name DB FILE   FILE becomes database DB (on the primary)
 *   ltxfs export -name DB FILE   a consistent copy of DB from any node
 *   ltxfs promote                move the primary role to that node
 *   ltxfs wait -name DB -txid P  until that node holds position P of DB
 *   ltxfs restore ...            rebuild a database from its backup
 *   ltxfs backup list|keygen     what a backup holds; a new encryption key
 *   ltxfs ltx dump|verify FILE   inspect one LTX file
 *   ltxfs log list|verify|replay inspect a database's transaction log
 *   ltxfs version
 *
 * Commands that talk to a running node take -url URL or -config FILE
 * (cmd/cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "backup/crypt.h"
#include "base/failpoint.h"
#include "cmd/backup_cmd.h"
#include "cmd/log_cmd.h"
#include "cmd/ltx_cmd.h"
#include "cmd/mount_cmd.h"
#include "cmd/promote_cmd.h"
#include "cmd/status_cmd.h"
#include "cmd/transfer_cmd.h"
#include "cmd/wait_cmd.h"
#include "fs/deathwatch.h"
#include "replica/proto.h"

#define LTXFS_VERSION "0.2.0"

static const char usage[] =
	"usage: ltxfs <command> [arguments]\n"
	"\n"
	"commands:\n"
	"  mount -config FILE [-- CMD ARGS]  mount and serve (foreground; SIGINT/SIGTERM\n"
	"                                    unmount); CMD runs once the node is ready\n"
	"  status [--json]                   the node's role, primary, databases, replicas\n"
	"  import -name DB FILE              the SQLite file FILE becomes database DB\n"
	"  export -name DB FILE              a consistent copy of database DB into FILE\n"
	"  promote                           make that node (a caught-up candidate) the primary\n"
	"  wait -name DB -txid POS [-timeout D]\n"
	"                                    until that node holds position POS of DB\n"
	"  restore -config FILE -name DB [-timestamp T | -txid N] -o OUT\n"
	"                                    rebuild database DB from its backup\n"
	"  backup list -config FILE [-name DB] | backup keygen\n"
	"                                    what the backup holds; a new encryption key\n"
	"  ltx dump FILE | ltx verify FILE   inspect or check one LTX file\n"
	"  log list|verify|replay ...        inspect a database's transaction log\n"
	"  version                           print the version\n"
	"\n"
	"status, import, export, promote and wait talk to a running node: -url URL, or -config\n"
	"FILE (its http.addr); by default /etc/ltxfs.yml's, else http://127.0.0.1:20202.\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "fuse-watch") == 0)      /* started by a mount (fs/deathwatch.h) */
		return fs_deathwatch_main(argc - 1, argv + 1);
	if (backup_crypto_init() < 0) {    /* libsodium, before any thread */
		fputs("ltxfs: libsodium failed to initialise\n", stderr);
		return 1;
	}
	if (strcmp(argv[1], "mount") == 0) {
		lx_failpoints_init();      /* fault tests only (base/failpoint.h) */
		return cmd_mount(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "restore") == 0)
		return cmd_restore(argc - 1, argv + 1);
	if (strcmp(argv[1], "backup") == 0)
		return cmd_backup(argc - 1, argv + 1);
	if (strcmp(argv[1], "ltx") == 0)
		return cmd_ltx(argc - 1, argv + 1);
	if (strcmp(argv[1], "log") == 0)
		return cmd_log(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(argv[1], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "promote") == 0)
		return cmd_promote(argc - 1, argv + 1);
	if (strcmp(argv[1], "wait") == 0)
		return cmd_wait(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "-version") == 0) {
		printf("ltxfs %s (replication protocol %d)\n", LTXFS_VERSION, PROTO_VERSION);
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
