/* SPDX-License-Identifier: Apache-2.0 */
/* Files of the store: removing a staging tree, running mkfs.erofs. */
#include "rootfs-tools/image/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int rm_children(int dfd, const char *what, struct kv_err **err)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return kv_err_make(err, errno, "opendir %s", what);
	}
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = img_rm_tree(dirfd(d), de->d_name, err);
		if (rc == 0)
			rewinddir(d); /* the directory changed under readdir */
	}
	closedir(d);
	return rc;
}

int img_rm_tree(int dirfd, const char *name, struct kv_err **err)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return kv_err_make(err, errno, "remove %s", name);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : kv_err_make(err, errno, "open %s", name);
	/* Staged directories may be 0500: make them writable to empty them. */
	fchmod(fd, 0700);
	if (rm_children(fd, name, err) < 0)
		return -1;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return kv_err_make(err, errno, "rmdir %s", name);
	return 0;
}

int img_mkfs_erofs(const char *dir, const char *out, const char *diff_id, struct kv_err **err)
{
	/* A UUID from the diff_id: the same layer makes the same image. */
	const char *h = diff_id + 7;
	char uuid[40];
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
	cleanup_free char *uopt = kv_asprintf("-U%s", uuid);
	/* noinline_data: every file's data in whole blocks of its own. The
	 * guest's erofs maps only such files with DAX (EROFS_INODE_FLAT_PLAIN);
	 * a tail packed into the metadata block (mkfs.erofs's default) makes
	 * the file FLAT_INLINE, read through the guest's page cache, a copy in
	 * every VM. It costs up to a block per file on disk, shared by all. */
	char *const argv[] = {"mkfs.erofs", "--quiet",	 "-Enoinline_data", "--preserve-mtime",
			      uopt,	    (char *)out, (char *)dir,	    NULL};
	pid_t pid = fork();
	if (pid < 0)
		return kv_err_make(err, errno, "fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0)
			dup2(null, STDIN_FILENO), dup2(null, STDOUT_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "kvrun: exec mkfs.erofs: %s (apt-get install erofs-utils)\n",
			strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return kv_err_make(err, errno, "waitpid mkfs.erofs");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return kv_err_plain(err, EIO, "mkfs.erofs %s: failed (status 0x%x)", out, st);
	return 0;
}
