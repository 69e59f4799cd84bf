/*
 * status_cmd.h - `ltxfs status [-url URL | -config FILE] [--json]`: a
 * running node's role, its primary, the lease epoch, each database's TXID,
 * size and the node's lag, and (on the primary) the connected replicas, as
 * a table; --json prints the node's GET /status answer as it is.
 */
#ifndef LTXFS_CMD_STATUS_CMD_H
#define LTXFS_CMD_STATUS_CMD_H

int cmd_status(int argc, char **argv);

#endif
