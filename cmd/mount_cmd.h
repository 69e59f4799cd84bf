/*
 * mount_cmd.h - `ltxfs mount -config FILE`: load the configuration, open
 * the store (recovering every database), mount and serve until SIGINT or
 * SIGTERM, then unmount and shut the databases down cleanly.
 */
#ifndef LTXFS_CMD_MOUNT_CMD_H
#define LTXFS_CMD_MOUNT_CMD_H

/* argv[0] is "mount". Returns the process exit status. */
int cmd_mount(int argc, char **argv);

#endif
