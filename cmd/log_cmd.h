/*
 * log_cmd.h - `ltxfs log list|verify|replay`: inspect a database's
 * transaction log in a data directory (read-only; safe while mounted).
 */
#ifndef LTXFS_CMD_LOG_CMD_H
#define LTXFS_CMD_LOG_CMD_H

/* argv[0] is "log". Returns the process exit status. */
int cmd_log(int argc, char **argv);

#endif
