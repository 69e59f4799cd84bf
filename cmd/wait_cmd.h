/*
 * wait_cmd.h - `ltxfs wait -name DB -txid POS [-timeout D]`: block until the
 * node (-url URL or -config FILE, cmd/cli.h) holds that position of database
 * DB (GET /wait, replica/position_wait.h), so a worker or a script reads
 * what was written on the primary.  POS is the TXID as NAME-pos shows it
 * (hexadecimal), or the whole NAME-pos content (TXID/CHECKSUM), which also
 * tells a lost write from a late one.
 *
 * Exit status: 0 reached; 1 timed out, diverged (the write was lost in a
 * failover) or the node could not be asked; 2 usage.
 */
#ifndef LTXFS_CMD_WAIT_CMD_H
#define LTXFS_CMD_WAIT_CMD_H

/* argv[0] is "wait". Returns the process exit status. */
int cmd_wait(int argc, char **argv);

#endif
