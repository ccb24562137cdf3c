/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-init: fs-live, a live virtio-fs device (kvrun-vmm --fs TAG/) whose
 * shares the host adds and removes through the VMM's API while we run.
 * The host drives it from our console lines (vmm_live.bats):
 *
 *   KVRUN-TEST-LIVE-WAIT add     the root is empty; the host adds vol (rw
 *                                dir), conf (ro dir) and hosts (rw file)
 *   KVRUN-TEST-LIVE-WAIT remove  we used them and hold an open file and an
 *                                open directory of vol; the host removes vol
 *   KVRUN-TEST-LIVE-WAIT reuse   vol is gone and what we held fails; the
 *                                host adds another directory as vol
 *
 * Each wait polls the share (a new share shows at once, a removed one
 * within FUSE's 1 s entry timeout), up to kvrun.livewait seconds.
 */
#include "test-init.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Poll until path exists (want true) or is gone with ENOENT (want false). */
static bool live_wait(const char *path, bool want)
{
	int secs = atoi(arg("livewait", "240"));
	struct stat st;
	for (int i = 0; i < secs * 10; i++) {
		int r = stat(path, &st);
		if (want ? r == 0 : (r < 0 && errno == ENOENT))
			return true;
		usleep(100000);
	}
	return false;
}

/* The shares as the first container would use them: rw, ro, a file, a bind mount. */
static void live_use(struct fsck *c, const char *mnt)
{
	char p[300], buf[64];
	snprintf(p, sizeof(p), "%s/vol/from-host.txt", mnt);
	fsck_step(
	    c, fs_read_file(p, buf, sizeof(buf)) > 0 && strcmp(buf, "hello from the host\n") == 0,
	    "read vol/from-host.txt");
	snprintf(p, sizeof(p), "%s/vol/from-guest", mnt);
	fsck_step(c, fs_write_file(p, "live\n", 5, 0644), "write vol/from-guest");
	snprintf(p, sizeof(p), "%s/vol/guest-dir", mnt);
	fsck_step(c, mkdir(p, 0750) == 0, "mkdir vol/guest-dir");
	snprintf(p, sizeof(p), "%s/vol", mnt);
	fsck_step(c,
		  mkdir("/live-target", 0755) == 0 &&
		      mount(p, "/live-target", NULL, MS_BIND, NULL) == 0,
		  "bind-mount vol (as a container's volume)");
	fsck_step(c, fs_write_file("/live-target/through-bind", "bind\n", 5, 0644),
		  "write through the bind mount");
	fsck_step(c, umount("/live-target") == 0, "unmount it");
	snprintf(p, sizeof(p), "%s/conf/setting", mnt);
	fsck_step(c, fs_read_file(p, buf, sizeof(buf)) > 0 && strcmp(buf, "on\n") == 0,
		  "read conf/setting");
	fsck_step(c, open(p, O_WRONLY) < 0 && errno == EROFS, "conf is read-only (EROFS)");
	snprintf(p, sizeof(p), "%s/conf/new", mnt);
	fsck_step(c, open(p, O_WRONLY | O_CREAT, 0644) < 0 && errno == EROFS,
		  "no file created in conf (EROFS)");
	snprintf(p, sizeof(p), "%s/hosts", mnt);
	int fd = open(p, O_WRONLY | O_APPEND);
	fsck_step(c, fd >= 0 && write(fd, "10.0.0.4 live\n", 14) == 14, "append to hosts");
	if (fd >= 0)
		close(fd);
	int n = fs_count_entries(mnt);
	fsck_step(c, n == 3, "three shares in the root (%d)", n);
	snprintf(p, sizeof(p), "%s/vol/..", mnt);
	fsck_step(c, fs_count_entries(p) == 3, "'..' of a share is the root, guest-side");
}

/* After vol's removal: what we held through it fails, the rest works. */
static void live_after_remove(struct fsck *c, const char *mnt, int file, int dir)
{
	char buf[4096], p[300];
	errno = 0;
	fsck_step(c, read(file, buf, sizeof(buf)) < 0, "read an open file of vol: fails");
	say("KVRUN-TEST-LIVE read after removal: %s", strerror(errno));
	errno = 0;
	fsck_step(c, syscall(SYS_getdents64, dir, buf, sizeof(buf)) < 0,
		  "list an open directory of vol: fails");
	say("KVRUN-TEST-LIVE getdents after removal: %s", strerror(errno));
	int n = fs_count_entries(mnt);
	fsck_step(c, n == 2, "two shares left in the root (%d)", n);
	snprintf(p, sizeof(p), "%s/conf/setting", mnt);
	fsck_step(c, fs_read_file(p, buf, sizeof(buf)) > 0, "conf still readable");
	snprintf(p, sizeof(p), "%s/hosts", mnt);
	fsck_step(c, fs_read_file(p, buf, sizeof(buf)) > 0, "hosts still readable");
}

void check_fs_live(void)
{
	struct fsck c = {.ok = true};
	char mnt[128], p[300], buf[64];
	char tag[64];
	snprintf(tag, sizeof(tag), "%s", arg("fslive", "live"));
	if (!fsck_step(&c, fs_mount(tag, false, mnt, sizeof(mnt)), "mount %s", tag)) {
		result("fs-live", false, "steps=%d %s", c.steps, c.why);
		return;
	}
	fsck_step(&c, fs_count_entries(mnt) == 0, "the root is empty at first");
	say("KVRUN-TEST-LIVE-WAIT add");
	snprintf(p, sizeof(p), "%s/vol/from-host.txt", mnt);
	fsck_step(&c, live_wait(p, true), "vol appears");
	snprintf(p, sizeof(p), "%s/hosts", mnt);
	fsck_step(&c, live_wait(p, true), "hosts appears");
	live_use(&c, mnt);
	snprintf(p, sizeof(p), "%s/vol/unread.txt", mnt);
	int file = open(p, O_RDONLY); /* never read: nothing of it in our page cache */
	snprintf(p, sizeof(p), "%s/vol/guest-dir", mnt);
	int dir = open(p, O_RDONLY | O_DIRECTORY);
	fsck_step(&c, file >= 0 && dir >= 0, "hold a file and a directory of vol open");
	say("KVRUN-TEST-LIVE-WAIT remove");
	snprintf(p, sizeof(p), "%s/vol", mnt);
	fsck_step(&c, live_wait(p, false), "vol vanishes (ENOENT)");
	live_after_remove(&c, mnt, file, dir);
	close(file);
	close(dir);
	say("KVRUN-TEST-LIVE-WAIT reuse");
	snprintf(p, sizeof(p), "%s/vol/marker-2", mnt);
	fsck_step(&c, live_wait(p, true), "vol comes back (another directory)");
	fsck_step(&c, fs_read_file(p, buf, sizeof(buf)) > 0 && strcmp(buf, "second\n") == 0,
		  "the new vol's marker");
	snprintf(p, sizeof(p), "%s/vol/from-host.txt", mnt);
	fsck_step(&c, access(p, F_OK) < 0 && errno == ENOENT,
		  "the old vol's files are not reached through the name");
	snprintf(p, sizeof(p), "%s/vol/from-guest-2", mnt);
	fsck_step(&c, fs_write_file(p, "again\n", 6, 0644), "write into the new vol");
	umount(mnt);
	result("fs-live", c.ok, "steps=%d %s", c.steps, c.why);
}
