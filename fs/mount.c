/*
 * mount.c - mounting, serving and unmounting the ltxfs FUSE file system
 * (see fs.h).
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/deathwatch.h"
#include "fs/fs.h"
#include "fs/fs_internal.h"

extern const struct fuse_lowlevel_ops fs_ops;

int fs_clean_stale_mount(const char *dir, lx_err *err)
{
	struct statfs sfs;
	/* stat() may still answer from cached attributes of a dead mount;
	 * statfs() always asks the (dead) server. */
	if (statfs(dir, &sfs) == 0 || errno != ENOTCONN)
		return 0;
	lx_warn("fuse", "cleaning a stale mount at %s left by a crashed run", dir);
	if (umount2(dir, MNT_DETACH) == 0)
		return 0;
	/* Not root: fusermount3 can detach our own mounts. */
	pid_t pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", dir, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return lx_err_set(err, EBUSY, "stale mount at %s could not be removed; "
				  "run `fusermount3 -u -z %s`", dir, dir);
	return 0;
}

/* Handles whose release did not arrive before the session ended. */
static void free_open_handles(fs_state *fs)
{
	fs_open *o = fs->open.next;
	while (o != &fs->open) {
		fs_open *next = o->next;
		if (o->is_dir)
			fs_dirbuf_free((fs_dirbuf *)o);
		else
			fs_handle_free((fs_handle *)o);
		o = next;
	}
	fs->open.next = fs->open.prev = &fs->open;
}

static struct fuse_session *new_session(fs_state *fs, const fs_options *opt,
					struct fuse_args *args)
{
	fuse_opt_add_arg(args, "ltxfs");
	fuse_opt_add_arg(args, "-o");
	fuse_opt_add_arg(args, opt->allow_other ?
		"fsname=ltxfs,subtype=ltxfs,default_permissions,allow_other" :
		"fsname=ltxfs,subtype=ltxfs,default_permissions");
	if (opt->debug)
		fuse_opt_add_arg(args, "-d");
	return fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs);
}

int fs_run(store *st, const fs_options *opt, void (*on_ready)(void *), void *ctx,
	   lx_err *err)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop;
	struct fuse_session *se;
	fs_state fs;
	pid_t watcher;
	int rc;

	rc = fs_clean_stale_mount(opt->mountpoint, err);
	if (rc < 0)
		return rc;
	if (mkdir(opt->mountpoint, 0755) < 0 && errno != EEXIST)
		return lx_err_sys(err, errno, "create mount point %s", opt->mountpoint);
	memset(&fs, 0, sizeof(fs));
	fs.store = st;
	fs.mountpoint = opt->mountpoint;
	fs.role = opt->role;
	fs.primary_node.kind = NODE_PRIMARY;
	fs.lag_node.kind = NODE_LAG;
	pthread_rwlock_init(&fs.se_lock, NULL);
	fs.kernel_locks = opt->kernel_locks;
	fs.uid = getuid();
	fs.gid = getgid();
	fs.open.next = fs.open.prev = &fs.open;
	pthread_mutex_init(&fs.mu, NULL);
	rc = fs_plain_open_dir(&fs, err);
	if (rc < 0) {
		pthread_rwlock_destroy(&fs.se_lock);
		pthread_mutex_destroy(&fs.mu);
		return rc;
	}

	se = new_session(&fs, opt, &args);
	if (se == NULL) {
		fuse_opt_free_args(&args);
		close(fs.files_dirfd);
		pthread_rwlock_destroy(&fs.se_lock);
		pthread_mutex_destroy(&fs.mu);
		return lx_err_set(err, EIO, "fuse: cannot create session");
	}
	if (fuse_set_signal_handlers(se) != 0) {
		rc = lx_err_set(err, EIO, "fuse: cannot install signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(se, opt->mountpoint) != 0) {
		rc = lx_err_set(err, EIO, "fuse: cannot mount %s (is /dev/fuse available, and "
				"the directory empty and not in use?)", opt->mountpoint);
		goto out_signals;
	}
	lx_info("fuse", "mounted at %s", opt->mountpoint);
	watcher = fs_deathwatch_start(opt->mountpoint);
	fs_notify_attach(&fs, se);
	if (on_ready != NULL)
		on_ready(ctx);
	if (fs_control_enter(opt->control, se) == 0) {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, 0);
		fuse_loop_cfg_set_max_threads(loop, 16);
		fuse_loop_cfg_set_idle_threads(loop, 8);
		/* The loop returns the signal number when a signal ended it. */
		rc = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
		fs_control_leave(opt->control);
		if (rc < 0)
			lx_warn("fuse", "session loop failed: %s", strerror(-rc));
		else if (rc > 0)
			lx_info("fuse", "stopping on signal %d", rc);
	}
	rc = 0;
	fs_notify_detach(&fs);
	fuse_session_unmount(se);
	fs_deathwatch_stop(watcher);
	lx_info("fuse", "unmounted %s", opt->mountpoint);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free_open_handles(&fs);
	fs_nodes_free(&fs);
	close(fs.files_dirfd);
	pthread_rwlock_destroy(&fs.se_lock);
	pthread_mutex_destroy(&fs.mu);
	return rc;
}
