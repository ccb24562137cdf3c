/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test tool: kvrun-vmm's virtio-fs FUSE server (vmm/virtio/fuse_*.c) behind
 * the host's /dev/fuse instead of a virtqueue, so that the host kernel's
 * FUSE client (and overlayfs on top of it) drives the real server with real
 * traffic on a machine without KVM. The server thread confines itself as a
 * jailed VMM's worker does (fs.c fs_worker_confine: its own umask, its
 * share or an empty directory as its root, a proc of its own for its
 * /proc/self/fd, Landlock beneath the shares, the six capabilities and the
 * SANDBOX_FS seccomp list), unless --no-sandbox.
 *
 *   fuse-devhost [--no-sandbox] MOUNTPOINT --fs TAG=PATH[,ro][,dev] [--fs TAG/NAME=PATH ...]
 *
 * The --fs specs are kvrun-vmm's (one tag). The file system is mounted as
 * the guest's virtiofs is (allow_other, default_permissions), then the
 * program serves it until it is unmounted (exit 0) and exits 1 on an error.
 * It prints "ready" on stdout once mounted. Differences from a guest: no
 * DAX, the host kernel's FUSE minor, one request at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/sandbox.h"
#include "vmm/virtio/fuse.h"

#define DEV_BUF (FUSE_MAX_WRITE + 4096) /* a WRITE's data and its headers */

struct devhost {
	struct fuse_server srv;
	struct vmm_config cfg;
	int fd;
	int jail_fd;
	int status;
};

static int devhost_jail(void *ctx, int share_fd, int *keep_fd, struct kv_err **err)
{
	return sandbox_fs_thread_jail(share_fd, keep_fd, err);
}

static int devhost_thread_confine(void *ctx, struct kv_err **err)
{
	struct devhost *d = ctx;
	return sandbox_fs_thread_confine(&d->cfg, err);
}

/* As a VMM's worker (vmm/devices.c): a jail only where the VMM jails itself. */
static int devhost_confine(struct devhost *d, struct kv_err **err)
{
	struct fuse_confine c = {.jail = d->cfg.jail ? devhost_jail : NULL,
				 .jail_fd = &d->jail_fd, /* held for the program's life */
				 .landlock = d->cfg.drop_caps,
				 .confine = devhost_thread_confine,
				 .ctx = d};
	return fuse_server_confine(&d->srv, &c, err);
}

static void *devhost_serve(void *arg)
{
	struct devhost *d = arg;
	struct kv_err *err = NULL;
	if (devhost_confine(d, &err) < 0) {
		kv_log_err(err);
		kv_err_free(err);
		d->status = 1;
		return NULL;
	}
	uint8_t *in = kv_malloc0(DEV_BUF), *out = kv_malloc0(FUSE_REPLY_MAX + FUSE_MAX_WRITE);
	for (;;) {
		ssize_t n = read(d->fd, in, DEV_BUF);
		if (n < 0 && (errno == EINTR || errno == ENOENT || errno == EAGAIN))
			continue; /* ENOENT: an interrupted request the kernel dropped */
		if (n < 0 && errno == ENODEV)
			break; /* unmounted */
		if (n < 0) {
			kv_log(KV_LOG_ERROR, "read /dev/fuse: %s", strerror(errno));
			d->status = 1;
			break;
		}
		struct vq_chain c = {.n_out = 1, .n_in = 1, .out_len = (uint64_t)n};
		c.in_len = FUSE_REPLY_MAX + FUSE_MAX_WRITE;
		c.iov[0] = (struct iovec){in, (size_t)n};
		c.iov[1] = (struct iovec){out, c.in_len};
		uint32_t used = fuse_server_handle(&d->srv, &c);
		if (used == 0)
			continue; /* FORGET, BATCH_FORGET */
		/* ENOENT: the request was interrupted meanwhile; nothing waits for it. */
		if (write(d->fd, out, used) < 0 && errno != ENOENT) {
			kv_log(KV_LOG_ERROR, "write /dev/fuse (%u bytes): %s", used,
			       strerror(errno));
			d->status = 1;
			break;
		}
	}
	free(in);
	free(out);
	return NULL;
}

static int devhost_usage(void)
{
	fprintf(stderr, "usage: fuse-devhost [--no-sandbox] MOUNTPOINT --fs TAG=PATH[,ro][,dev] "
			"[--fs ...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct devhost d;
	struct kv_err *err = NULL;
	vmm_config_init(&d.cfg);
	int i = 1;
	if (i < argc && strcmp(argv[i], "--no-sandbox") == 0) {
		d.cfg.drop_caps = false;
		d.cfg.seccomp = VMM_SECCOMP_OFF;
		d.cfg.jail = false;
		i++;
	}
	if (argc - i < 3)
		return devhost_usage();
	const char *mnt = argv[i++];
	/* kvrun-vmm's own parser for the specs: --kernel only satisfies it. */
	char **va = kv_malloc0((size_t)(argc - i + 4) * sizeof(*va));
	int vc = 0;
	va[vc++] = "fuse-devhost";
	va[vc++] = "--kernel";
	va[vc++] = "/dev/null";
	while (i < argc)
		va[vc++] = argv[i++];
	enum vmm_cli_action action;
	struct vmm_config parsed;
	vmm_config_init(&parsed);
	if (vmm_cli_parse(&parsed, vc, va, &action, &err) < 0 || parsed.n_fs != 1) {
		fprintf(stderr, "fuse-devhost: %s\n", err ? err->msg : "exactly one --fs tag");
		return 2;
	}
	const struct vmm_fs *f = &parsed.fs[0];
	struct virtio_fs_share shares[VMM_MAX_FS_SHARES];
	for (unsigned s = 0; s < f->nshares; s++)
		shares[s] = (struct virtio_fs_share){f->shares[s].name, f->shares[s].path,
						     f->shares[s].ro, f->shares[s].dev};
	if (fuse_server_init(&d.srv, f->tag, shares, f->nshares, false, (struct fuse_dax){0},
			     &err) < 0) {
		fprintf(stderr, "fuse-devhost: %s\n", err->msg);
		return 1;
	}
	d.fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (d.fd < 0) {
		perror("fuse-devhost: /dev/fuse");
		return 1;
	}
	/* As the guest's virtiofs mounts: allow_other, default_permissions. */
	char opts[128];
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", d.fd);
	if (mount(f->tag, mnt, "fuse.kvrun", MS_NOSUID | MS_NODEV, opts) < 0) {
		fprintf(stderr, "fuse-devhost: mount %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	pthread_t t;
	if (pthread_create(&t, NULL, devhost_serve, &d) != 0) {
		fprintf(stderr, "fuse-devhost: pthread_create failed\n");
		return 1;
	}
	pthread_join(t, NULL);
	fuse_server_destroy(&d.srv);
	return d.status;
}
