/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmm/virtio/fuse_landlock.c: a worker thread restricted to its server's
 * shares (a read-write directory, a read-only one, a file) can do its work
 * beneath them and nothing outside, whatever the path: the host's files, a
 * `..` out of a share, a sibling of a file share. The thread that did not
 * restrict itself (this test's main thread) keeps its access.
 */
#include "vmm/virtio/fuse.h"
#include "tap.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

static char dir[] = "/tmp/test_vmm_fs_landlock.XXXXXX";
static struct fuse_server srv;

/* An open in the restricted thread: 0, or the errno. */
static int try_open(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void *restricted(void *arg)
{
	(void)arg;
	struct kv_err *err = NULL;
	if (fuse_landlock(&srv, &err) < 0) {
		ok(false, "fuse_landlock: %s", err->msg);
		kv_err_free(err);
		return NULL;
	}
	int rw = srv.shares[0].fd, ro = srv.shares[1].fd;
	ok(try_open(rw, "new", O_WRONLY | O_CREAT) == 0, "rw share: create a file");
	ok(mkdirat(rw, "d", 0755) == 0 && renameat(rw, "new", rw, "d/new") == 0,
	   "rw share: mkdir, rename into it");
	ok(unlinkat(rw, "d/new", 0) == 0 && unlinkat(rw, "d", AT_REMOVEDIR) == 0,
	   "rw share: unlink, rmdir");
	ok(try_open(ro, "data", O_RDONLY) == 0, "ro share: read a file");
	ok(try_open(ro, ".", O_RDONLY | O_DIRECTORY) == 0, "ro share: list the directory");
	is_int(try_open(ro, "data", O_WRONLY), EACCES, "ro share: no write");
	is_int(try_open(ro, "x", O_WRONLY | O_CREAT), EACCES, "ro share: no create");
	is_int(try_open(rw, "../outside/secret", O_RDONLY), EACCES, "'..' out of a share: EACCES");
	is_int(try_open(AT_FDCWD, "/etc/passwd", O_RDONLY), EACCES, "the host's files: EACCES");
	cleanup_free char *sib = kv_asprintf("%s/file-sibling", dir);
	is_int(try_open(AT_FDCWD, sib, O_RDONLY), EACCES, "a file share's sibling: EACCES");
	cleanup_free char *file = kv_asprintf("%s/file", dir);
	ok(try_open(AT_FDCWD, file, O_RDWR) == 0, "the file share itself: read-write");
	/* The server re-opens its O_PATH fds through /proc/self/fd. */
	int p = openat(rw, ".", O_PATH | O_CLOEXEC);
	cleanup_free char *self = kv_asprintf("/proc/self/fd/%d", p);
	ok(try_open(AT_FDCWD, self, O_RDONLY | O_DIRECTORY) == 0,
	   "a share re-opened through /proc/self/fd");
	close(p);
	return NULL;
}

static void mk(const char *rel, const char *data)
{
	cleanup_free char *p = kv_asprintf("%s/%s", dir, rel);
	if (data) {
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			(void)!write(fd, data, strlen(data));
			close(fd);
		}
	} else {
		mkdir(p, 0755);
	}
}

int main(void)
{
	int abi = fuse_landlock_abi();
	if (abi < 0) {
		skip("Landlock: not in this kernel (%s)", strerror(-abi));
		return tap_done();
	}
	if (!tap_tmpdir(dir))
		return tap_done();
	mk("rw", NULL);
	mk("ro", NULL);
	mk("ro/data", "x");
	mk("outside", NULL);
	mk("outside/secret", "s");
	mk("file", "f");
	mk("file-sibling", "s");
	cleanup_free char *rwp = kv_asprintf("%s/rw", dir), *rop = kv_asprintf("%s/ro", dir),
			  *filep = kv_asprintf("%s/file", dir);
	struct virtio_fs_share specs[] = {
	    {"rw", rwp, false, false}, {"ro", rop, true, false}, {"file", filep, false, false}};
	struct kv_err *err = NULL;
	struct fuse_dax dax = {0};
	if (fuse_server_init(&srv, "t", specs, 3, false, dax, &err) < 0) {
		ok(false, "fuse_server_init: %s", err->msg);
		kv_err_free(err);
		return tap_done();
	}
	pthread_t t;
	pthread_create(&t, NULL, restricted, NULL);
	pthread_join(t, NULL);
	ok(try_open(AT_FDCWD, "/etc/passwd", O_RDONLY) == 0,
	   "the thread that did not restrict itself keeps its access");
	fuse_server_destroy(&srv);
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", dir);
	return tap_done();
}
