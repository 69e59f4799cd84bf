/*
 * backup_cmd.h - the backup's command line (docs/backup.md).
 *
 *   ltxfs restore -config FILE -name DB [-timestamp RFC3339 | -txid N] -o OUT
 *       rebuild database DB from the backup of FILE's backup.url at that
 *       point (default: the newest), verified, into OUT (a new file)
 *   ltxfs backup list -config FILE [-name DB]
 *       per database: the restorable range (TXIDs and times), snapshots,
 *       objects, storage used
 *   ltxfs backup keygen
 *       a new random key for backup.encryption.key-file, on stdout
 *
 * These read the storage directly (no running node is needed).
 */
#ifndef LTXFS_CMD_BACKUP_CMD_H
#define LTXFS_CMD_BACKUP_CMD_H

int cmd_restore(int argc, char **argv);
int cmd_backup(int argc, char **argv);

#endif
