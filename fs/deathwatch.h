/*
 * deathwatch.h - a daemon killed with SIGKILL must not hang in its exit.
 *
 * ltxfs holds files of its own mount (a WAL-mode replica maps each
 * database's -shm through the mount, so it writes the very pages its
 * readers map).  When the daemon dies, the kernel tears down its memory
 * before its descriptors: unmapping a FUSE file writes its dirty pages back
 * to the FUSE server, which is the dead daemon itself, and while the FUSE
 * device is still open nobody aborts that wait.  The process stays in
 * state D, holding its mount and its HTTP port, until an operator runs
 * `umount -f`.
 *
 * The watcher does what the operator would: a small process, `ltxfs
 * fuse-watch PID CONN`, started in a session of its own once the mount is
 * up, checks every 100 ms whether the daemon's main thread has exited
 * (killed, or crashed) and then aborts the FUSE connection through the
 * fusectl file system (/sys/fs/fuse/connections/CONN/abort), which ends
 * every wait at once.  It exits when the daemon is gone; a clean stop ends
 * it after unmounting.  fusectl is mounted if it is not (root).  Without
 * root or fusectl, there is no watcher (logged once): the daemon runs as
 * before.
 */
#ifndef LTXFS_FS_DEATHWATCH_H
#define LTXFS_FS_DEATHWATCH_H

#include <sys/types.h>

/* After mounting `mountpoint`: start the watcher; its PID, or -1 (the
 * reason is logged). */
pid_t fs_deathwatch_start(const char *mountpoint);

/* After unmounting: end the watcher (SIGKILL) and reap it. */
void fs_deathwatch_stop(pid_t pid);

/* `ltxfs fuse-watch PID CONN` (started by fs_deathwatch_start only). */
int fs_deathwatch_main(int argc, char **argv);

#endif
