/*
 * promote_cmd.h - `ltxfs promote [-url URL]`: make the node at URL (a
 * caught-up candidate replica) the primary by a hand-off (POST /promote,
 * node/node.h).  URL defaults to http://127.0.0.1:20202.
 */
#ifndef LTXFS_CMD_PROMOTE_CMD_H
#define LTXFS_CMD_PROMOTE_CMD_H

/* argv[0] is "promote". Returns the process exit status. */
int cmd_promote(int argc, char **argv);

#endif
