/*
 * transfer_cmd.h - moving a whole database in or out of a running cluster.
 *
 *   ltxfs import [-url URL | -config FILE] -name DB FILE
 *       FILE (any SQLite database, WAL or rollback mode) passes PRAGMA
 *       integrity_check here, is copied to one consistent file (SQLite's
 *       backup API: its -wal content included) and sent to the primary,
 *       which makes it database DB in one transaction (node/import.h).
 *   ltxfs export [-url URL | -config FILE] -name DB FILE
 *       a consistent copy of DB from any node, as of one TXID: written to
 *       a temporary file next to FILE, checked against the database
 *       checksum the node sent, then renamed to FILE.
 */
#ifndef LTXFS_CMD_TRANSFER_CMD_H
#define LTXFS_CMD_TRANSFER_CMD_H

int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
