/*
 * deathwatch.c - aborting the FUSE connection of a daemon that died
 * (deathwatch.h).
 */
#include "fs/deathwatch.h"

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <poll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FUSECTL "/sys/fs/fuse/connections"
#define WATCH_EVERY_NS 100000000L

extern char **environ;

/* The FUSE connection number of the mount at `mountpoint` (its device
 * number, as fusectl names it), from /proc/self/mountinfo: never a stat of
 * the mount itself, which its not yet serving daemon could not answer. */
static long connection_of(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	long conn = -1;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned major, minor;
		char point[4096];
		/* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... (the last one wins) */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor, point) == 3 &&
		    strcmp(point, mountpoint) == 0)
			conn = (long)((major << 20) | minor);
	}
	fclose(f);
	return conn;
}

/* fusectl mounted at FUSECTL (mounting it if needed). */
static int fusectl_ready(void)
{
	struct stat a, b;
	if (stat(FUSECTL, &a) < 0 || stat("/sys/fs/fuse", &b) < 0)
		return 0;
	if (a.st_dev != b.st_dev)
		return 1;                           /* something is mounted there */
	return mount("fusectl", FUSECTL, "fusectl", 0, NULL) == 0;
}

pid_t fs_deathwatch_start(const char *mountpoint)
{
	char pid_arg[32], conn_arg[32];
	char *argv[] = { "ltxfs", "fuse-watch", pid_arg, conn_arg, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	long conn = connection_of(mountpoint);
	pid_t pid;
	int rc;
	if (conn < 0 || !fusectl_ready()) {
		lx_warn("fuse", "no watcher for a SIGKILL of this daemon (%s): after one, "
			"`umount -f %s` may be needed", conn < 0 ? "the mount is not in "
			"/proc/self/mountinfo" : "cannot mount fusectl at " FUSECTL, mountpoint);
		return -1;
	}
	snprintf(pid_arg, sizeof(pid_arg), "%ld", (long)getpid());
	snprintf(conn_arg, sizeof(conn_arg), "%ld", conn);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);   /* never the FUSE device */
	posix_spawnattr_init(&at);
	sigemptyset(&none);                 /* the daemon's threads block signals */
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |     /* not in our process group */
				 POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		lx_warn("fuse", "cannot start the SIGKILL watcher: %s", strerror(rc));
		return -1;
	}
	return pid;
}

void fs_deathwatch_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);                 /* it keeps nothing to clean up */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

#define PF_EXITING 0x4u            /* the kernel's task flag (include/linux/sched.h) */

/* The flags of the daemon's main thread (/proc/PID/stat, field 9); 0 if
 * they cannot be read. */
static unsigned flags_of(const char *stat_path)
{
	char buf[1024];
	unsigned flags = 0;
	ssize_t n;
	int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
	const char *p;
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');                  /* the name may hold anything */
	if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %u", &flags) != 1)
		return 0;
	return flags;
}

/* 1 once every thread of the process has exited (its pidfd is readable). */
static int gone(int pidfd)
{
	struct pollfd pf = { pidfd, POLLIN, 0 };
	return poll(&pf, 1, 0) != 0;
}

/*
 * Abort only a connection that is surely the daemon's and surely stuck:
 * its main thread is exiting and, two checks 100 ms apart, some thread of
 * it has not finished (a normal exit takes microseconds).  A daemon that
 * exited released its connection, whose number a new mount may take.
 */
int fs_deathwatch_main(int argc, char **argv)
{
	char stat_path[64], abort_path[96];
	struct timespec every = { 0, WATCH_EVERY_NS };
	int pidfd, exiting = 0;
	pid_t daemon;
	if (argc != 3)
		return 2;
	daemon = (pid_t)atol(argv[1]);
	pidfd = pidfd_open(daemon, 0);
	if (pidfd < 0)
		return 0;                               /* gone already */
	snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", (long)daemon);
	snprintf(abort_path, sizeof(abort_path), FUSECTL "/%s/abort", argv[2]);
	for (;;) {
		if (gone(pidfd))
			return 0;
		exiting = (flags_of(stat_path) & PF_EXITING) ? exiting + 1 : 0;
		if (exiting >= 2 && !gone(pidfd)) {
			int fd = open(abort_path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t w = write(fd, "1", 1);
				(void)w;                /* nothing more to do either way */
				close(fd);
			}
			return 0;
		}
		nanosleep(&every, NULL);
	}
}
