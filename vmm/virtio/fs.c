/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs (virtio 1.2 section 5.11): queue 0 is the high-priority queue
 * (FORGET), queue 1 the one request queue; config space holds the tag and
 * num_request_queues; shared memory region 0 is the DAX window. The FUSE
 * server behind it is fuse_server.c and friends (see fuse.h).
 *
 * Threads. With params->threaded (the VMM), one worker thread per device
 * serves both queues: QueueNotify (vCPU or event loop, device lock held)
 * only sets `pending` and wakes it, so slow host file system calls never
 * stall a vCPU or the loop. The worker pops a batch of chains under the
 * device lock, serves them without it (the server's tables belong to the
 * worker alone), then completes them under the lock. A driver reset bumps
 * `epoch`: completions of chains popped before it are dropped, and the
 * worker resets the server before its next batch. Lock order: device lock,
 * then wlock. Without `threaded` (unit tests, fuzzing) requests are served
 * on the notifying thread, under the device lock.
 *
 * Live devices (params->live): the API adds and removes shares while the
 * guest runs. A change is posted to the worker (`ctl`, under wlock), which
 * applies it between two batches, so the tables stay the worker's alone;
 * the poster waits on ctl_cond for at most ctl_timeout_ms. A change the
 * worker has not begun by then is taken back; one under way is left to it
 * (ABANDONED: the worker logs its outcome). A guest keeping the worker busy
 * delays a change by at most one batch at a time (the worker looks for one
 * after every batch), never indefinitely.
 *
 * The worker confines itself before it serves anything
 * (fuse_server_confine(), fuse.h): its own fs struct with umask 0 (the
 * server sets modes exactly), params->thread_jail (a root of its own, from
 * the core), Landlock rules that keep it beneath its shares
 * (fuse_landlock.c), then params->thread_confine (capabilities and the
 * seccomp list for file system calls, from the core).
 * virtio_fs_new() waits for that, unless params->confine_failed is set: then
 * the VMM goes on building the machine while the worker starts (a guest kick
 * meanwhile only sets `pending`), and a failure arrives through the callback.
 */
#include "vmm/virtio/fuse.h"
#include "vmm/virtio/virtio_dev.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FS_QUEUES	  2 /* hiprio + 1 request queue */
#define FS_HIPRIO	  0
#define FS_CFG_TAG	  0
#define FS_CFG_NUM_QUEUES 36
#define FS_CFG_SIZE	  40
#define FS_BATCH	  16
#define FS_SHM_CACHE	  0 /* VIRTIO_FS_SHMCAP_ID_CACHE */
#define FS_CTL_TIMEOUT_MS 5000

/* A share change posted by the API (live devices). */
enum fs_ctl_state { FS_CTL_IDLE, FS_CTL_POSTED, FS_CTL_RUNNING, FS_CTL_DONE, FS_CTL_ABANDONED };
struct fs_ctl {
	enum fs_ctl_state state;
	bool add, ro, dev;
	char *name;
	int fd; /* add: the caller's fd, duplicated; consumed by the change */
	int ret;
	struct kv_err *err;
};

struct virtio_fs {
	struct virtio_mmio mmio; /* first: the transport hands us this pointer */
	struct virtio_dev_ops ops;
	uint8_t config[FS_CFG_SIZE];
	char tag[VIRTIO_FS_TAG_MAX + 1];
	struct fuse_server srv;
	uint64_t dax_gpa, dax_size;

	/* Worker (threaded mode). Under mmio.lock: epoch, reset_pending. */
	bool threaded, thread_started;
	pthread_t thread;
	pthread_mutex_t wlock; /* pending, stop, confined */
	pthread_cond_t wcond;
	bool pending, stop;
	int confined; /* 0 waiting, 1 ok, -1 failed */
	struct kv_err *confine_err;
	int (*thread_confine)(void *ctx, struct kv_err **err);
	int (*thread_jail)(void *ctx, int share_fd, int *keep_fd, struct kv_err **err);
	int jail_fd; /* the worker's root, held until the device is freed (or -1) */
	void (*confine_failed)(void *ctx, const struct kv_err *err);
	void *confine_ctx;
	bool landlock;
	uint32_t epoch;
	bool reset_pending;
	/* Live devices (under wlock): the change under way and the shares now. */
	bool live;
	struct fs_ctl ctl;
	pthread_cond_t ctl_cond; /* CLOCK_MONOTONIC, for the poster's bounded wait */
	unsigned ctl_timeout_ms;
	unsigned live_shares;
	struct vq_chain *batch;
	unsigned batch_q[FS_BATCH];
	uint32_t batch_used[FS_BATCH];
};

static struct virtio_fs *to_fs(struct virtio_mmio *dev)
{
	return (struct virtio_fs *)dev;
}

/* --------------------------------------------------------- serving */

/* Synchronous mode: serve `queue` on this thread (device lock held). */
static void fs_serve_sync(struct virtio_fs *fs, unsigned queue)
{
	struct vq_chain *c = &fs->batch[0];
	while (virtio_queue_pop(&fs->mmio, queue, c))
		virtio_queue_push(&fs->mmio, queue, c->head, fuse_server_handle(&fs->srv, c));
	virtio_queue_signal(&fs->mmio, queue);
}

/* Pop up to FS_BATCH chains, high-priority queue first. Device lock held. */
static unsigned fs_batch_pop(struct virtio_fs *fs)
{
	unsigned n = 0;
	for (unsigned q = 0; q < FS_QUEUES; q++)
		while (n < FS_BATCH && virtio_queue_pop(&fs->mmio, q, &fs->batch[n]))
			fs->batch_q[n++] = q;
	return n;
}

/* One round of the worker; returns whether more work may be waiting. */
static bool fs_worker_round(struct virtio_fs *fs)
{
	virtio_mmio_lock(&fs->mmio);
	if (fs->reset_pending) {
		fs->reset_pending = false;
		fuse_server_reset(&fs->srv);
	}
	uint32_t epoch = fs->epoch;
	unsigned n = fs_batch_pop(fs);
	virtio_mmio_unlock(&fs->mmio);
	if (n == 0)
		return false;
	for (unsigned i = 0; i < n; i++)
		fs->batch_used[i] = fuse_server_handle(&fs->srv, &fs->batch[i]);
	virtio_mmio_lock(&fs->mmio);
	if (epoch == fs->epoch) {
		for (unsigned i = 0; i < n; i++)
			virtio_queue_push(&fs->mmio, fs->batch_q[i], fs->batch[i].head,
					  fs->batch_used[i]);
		for (unsigned q = 0; q < FS_QUEUES; q++)
			virtio_queue_signal(&fs->mmio, q);
	}
	virtio_mmio_unlock(&fs->mmio);
	return n == FS_BATCH;
}

/* ------------------------------------------------------- live shares */

static void fs_ctl_clear(struct fs_ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->name);
	kv_err_free(c->err);
	*c = (struct fs_ctl){.state = FS_CTL_IDLE, .fd = -1};
}

/* Apply a change on the thread that serves the device; consumes c->fd. */
static int fs_ctl_apply(struct virtio_fs *fs, struct fs_ctl *c, struct kv_err **err)
{
	if (!c->add)
		return fuse_server_share_remove(&fs->srv, c->name, err);
	int fd = c->fd;
	c->fd = -1;
	return fuse_server_share_add(&fs->srv, c->name, fd, c->ro, c->dev, err);
}

/* The worker, between batches: apply the change the API posted, if any. */
static void fs_ctl_serve(struct virtio_fs *fs)
{
	pthread_mutex_lock(&fs->wlock);
	if (fs->ctl.state != FS_CTL_POSTED) {
		pthread_mutex_unlock(&fs->wlock);
		return;
	}
	fs->ctl.state = FS_CTL_RUNNING;
	pthread_mutex_unlock(&fs->wlock);
	/* While it runs, the poster touches nothing of ctl but its state. */
	struct kv_err *err = NULL;
	int ret = fs_ctl_apply(fs, &fs->ctl, &err);
	pthread_mutex_lock(&fs->wlock);
	fs->live_shares = fs->srv.nlive;
	if (fs->ctl.state == FS_CTL_ABANDONED) {
		kv_warn("virtio-fs %s: share '%s' %s after the API gave up waiting%s%s", fs->tag,
			fs->ctl.name,
			ret < 0	      ? "not changed"
			: fs->ctl.add ? "added"
				      : "removed",
			ret < 0 ? ": " : "", ret < 0 ? err->msg : "");
		kv_err_free(err);
		fs_ctl_clear(&fs->ctl);
	} else {
		fs->ctl.ret = ret;
		fs->ctl.err = err;
		fs->ctl.state = FS_CTL_DONE;
	}
	pthread_cond_broadcast(&fs->ctl_cond);
	pthread_mutex_unlock(&fs->wlock);
}

/* The outcome of a finished change, handed to the poster. wlock held. */
static int fs_ctl_result(struct virtio_fs *fs, struct kv_err **err)
{
	int ret = fs->ctl.ret;
	if (ret < 0 && err) {
		*err = fs->ctl.err;
		fs->ctl.err = NULL;
	}
	fs_ctl_clear(&fs->ctl);
	return ret;
}

/* The wait ended without a result (timeout, or the worker is gone). wlock held. */
static int fs_ctl_give_up(struct virtio_fs *fs, bool stopped, struct kv_err **err)
{
	if (fs->ctl.state == FS_CTL_DONE)
		return fs_ctl_result(fs, err);
	if (fs->ctl.state == FS_CTL_POSTED) {
		fs_ctl_clear(&fs->ctl); /* never begun: take it back */
		if (stopped)
			return kv_err_plain(
			    err, EIO, "virtio-fs %s: the device's worker stopped; nothing changed",
			    fs->tag);
		return kv_err_plain(err, ETIMEDOUT,
				    "virtio-fs %s: the device's worker stayed busy for %u ms; "
				    "nothing changed (try again)",
				    fs->tag, fs->ctl_timeout_ms);
	}
	fs->ctl.state = FS_CTL_ABANDONED; /* under way: the worker finishes it and logs it */
	return kv_err_plain(err, ETIMEDOUT,
			    "virtio-fs %s: the share change still runs after %u ms; it may yet "
			    "take effect (the VMM's log will say)",
			    fs->tag, fs->ctl_timeout_ms);
}

/* Post *c (moved into fs->ctl) to the worker and wait, bounded. wlock held. */
static int fs_ctl_post_wait(struct virtio_fs *fs, struct fs_ctl *c, struct kv_err **err)
{
	if (fs->ctl.state != FS_CTL_IDLE)
		return kv_err_plain(err, EBUSY,
				    "virtio-fs %s: an earlier share change is still under way",
				    fs->tag);
	if (!fs->thread_started || fs->stop || fs->confined < 0)
		return kv_err_plain(err, EIO, "virtio-fs %s: the device's worker is not running",
				    fs->tag);
	fs->ctl = *c;
	*c = (struct fs_ctl){.fd = -1};
	fs->ctl.state = FS_CTL_POSTED;
	pthread_cond_broadcast(&fs->wcond);
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += fs->ctl_timeout_ms / 1000;
	dl.tv_nsec += (long)(fs->ctl_timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	while (fs->ctl.state == FS_CTL_POSTED || fs->ctl.state == FS_CTL_RUNNING) {
		bool stopped = fs->stop || fs->confined < 0;
		if (stopped || pthread_cond_timedwait(&fs->ctl_cond, &fs->wlock, &dl) == ETIMEDOUT)
			return fs_ctl_give_up(fs, stopped, err);
	}
	return fs_ctl_result(fs, err);
}

bool virtio_fs_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static struct virtio_fs *fs_of(struct virtio_mmio *dev)
{
	return dev && dev->ops->device_id == VIRTIO_ID_FS ? to_fs(dev) : NULL;
}

const char *virtio_fs_tag(struct virtio_mmio *dev)
{
	struct virtio_fs *fs = fs_of(dev);
	return fs ? fs->tag : NULL;
}

/* Run a share change on the thread that serves the device; frees c's parts. */
static int fs_ctl_run(struct virtio_mmio *dev, struct fs_ctl *c, struct kv_err **err)
{
	struct virtio_fs *fs = fs_of(dev);
	int ret;
	if (!fs)
		ret = kv_err_plain(err, EINVAL, "not a virtio-fs device");
	else if (!fs->live)
		ret = kv_err_plain(err, EINVAL,
				   "virtio-fs %s: not a live device (start it with --fs %s/)",
				   fs->tag, fs->tag);
	else if (!fs->threaded) {
		/* Tests, fuzzing: served on the notifying thread, under the device lock. */
		virtio_mmio_lock(&fs->mmio);
		ret = fs_ctl_apply(fs, c, err);
		pthread_mutex_lock(&fs->wlock);
		fs->live_shares = fs->srv.nlive;
		pthread_mutex_unlock(&fs->wlock);
		virtio_mmio_unlock(&fs->mmio);
	} else {
		pthread_mutex_lock(&fs->wlock);
		ret = fs_ctl_post_wait(fs, c, err);
		pthread_mutex_unlock(&fs->wlock);
	}
	fs_ctl_clear(c);
	return ret;
}

int virtio_fs_share_add(struct virtio_mmio *dev, const char *name, int fd, bool ro, bool devnodes,
			struct kv_err **err)
{
	struct fs_ctl c = {.add = true, .ro = ro, .dev = devnodes, .fd = -1};
	if (!name)
		return kv_err_plain(err, EINVAL, "virtio-fs: a share needs a name");
	c.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (c.fd < 0)
		return kv_err_make(err, errno, "virtio-fs %s: share '%s': the fd",
				   virtio_fs_tag(dev) ? virtio_fs_tag(dev) : "?", name);
	c.name = kv_strdup(name);
	return fs_ctl_run(dev, &c, err);
}

int virtio_fs_share_remove(struct virtio_mmio *dev, const char *name, struct kv_err **err)
{
	if (!name)
		return kv_err_plain(err, EINVAL, "virtio-fs: a share needs a name");
	struct fs_ctl c = {.fd = -1, .name = kv_strdup(name)};
	return fs_ctl_run(dev, &c, err);
}

unsigned virtio_fs_live_shares(struct virtio_mmio *dev)
{
	struct virtio_fs *fs = fs_of(dev);
	if (!fs)
		return 0;
	pthread_mutex_lock(&fs->wlock);
	unsigned n = fs->live_shares;
	pthread_mutex_unlock(&fs->wlock);
	return n;
}

int virtio_fs_snapshot_check(struct virtio_mmio *dev, struct kv_err **err)
{
	struct virtio_fs *fs = fs_of(dev);
	if (!fs || !fs->live)
		return 0;
	pthread_mutex_lock(&fs->wlock);
	unsigned n = fs->live_shares;
	bool busy = fs->ctl.state != FS_CTL_IDLE;
	pthread_mutex_unlock(&fs->wlock);
	if (n)
		return kv_err_plain(err, EBUSY,
				    "virtio-fs %s: %u live share%s attached; a snapshot cannot "
				    "carry them (fs-remove them first)",
				    fs->tag, n, n == 1 ? "" : "s");
	if (busy)
		return kv_err_plain(err, EBUSY, "virtio-fs %s: a share change is under way",
				    fs->tag);
	return 0;
}

/* ------------------------------------------------------------ worker */

static int fs_worker_confine(struct virtio_fs *fs, struct kv_err **err)
{
	struct fuse_confine c = {.jail = fs->thread_jail,
				 .jail_fd = &fs->jail_fd,
				 .landlock = fs->landlock,
				 .confine = fs->thread_confine,
				 .ctx = fs->confine_ctx};
	return fuse_server_confine(&fs->srv, &c, err);
}

static void *fs_worker(void *arg)
{
	struct virtio_fs *fs = arg;
	char name[16];
	snprintf(name, sizeof(name), "vfs-%.11s", fs->tag); /* ps, /proc/PID/task: "vfs-TAG" */
	pthread_setname_np(pthread_self(), name);
	struct kv_err *err = NULL;
	int ok = fs_worker_confine(fs, &err) < 0 ? -1 : 1;
	if (ok < 0 && fs->confine_failed)
		fs->confine_failed(fs->confine_ctx, err);
	pthread_mutex_lock(&fs->wlock);
	fs->confined = ok;
	fs->confine_err = err;
	pthread_cond_broadcast(&fs->wcond);
	pthread_cond_broadcast(&fs->ctl_cond);
	pthread_mutex_unlock(&fs->wlock);
	if (ok < 0)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&fs->wlock);
		while (!fs->pending && !fs->stop && fs->ctl.state != FS_CTL_POSTED)
			pthread_cond_wait(&fs->wcond, &fs->wlock);
		bool stop = fs->stop;
		fs->pending = false;
		pthread_mutex_unlock(&fs->wlock);
		if (stop)
			return NULL;
		/* A share change waits for one batch at most, however busy the guest keeps us. */
		do
			fs_ctl_serve(fs);
		while (fs_worker_round(fs));
	}
}

static void fs_wake(struct virtio_fs *fs)
{
	pthread_mutex_lock(&fs->wlock);
	fs->pending = true;
	pthread_cond_signal(&fs->wcond);
	pthread_mutex_unlock(&fs->wlock);
}

static void fs_notify(struct virtio_mmio *dev, unsigned queue)
{
	struct virtio_fs *fs = to_fs(dev);
	if (fs->threaded)
		fs_wake(fs);
	else
		fs_serve_sync(fs, queue);
}

/* The driver reset the device: the guest's inodes, handles and mappings are gone. */
static void fs_reset(struct virtio_mmio *dev)
{
	struct virtio_fs *fs = to_fs(dev);
	if (!fs->threaded) {
		fuse_server_reset(&fs->srv);
		return;
	}
	fs->epoch++;
	fs->reset_pending = true;
	fs_wake(fs);
}

static bool fs_shm_region(struct virtio_mmio *dev, uint32_t id, uint64_t *base, uint64_t *len)
{
	struct virtio_fs *fs = to_fs(dev);
	if (id != FS_SHM_CACHE || !fs->dax_size)
		return false;
	*base = fs->dax_gpa;
	*len = fs->dax_size;
	return true;
}

/* ----------------------------------------------------------- life */

static void fs_worker_stop(struct virtio_fs *fs)
{
	if (!fs->thread_started)
		return;
	pthread_mutex_lock(&fs->wlock);
	fs->stop = true;
	pthread_cond_broadcast(&fs->wcond);
	pthread_cond_broadcast(&fs->ctl_cond);
	pthread_mutex_unlock(&fs->wlock);
	pthread_join(fs->thread, NULL);
	fs->thread_started = false;
}

static void fs_quiesce(struct virtio_mmio *dev)
{
	fs_worker_stop(to_fs(dev));
}

static void fs_free(struct virtio_mmio *dev)
{
	struct virtio_fs *fs = to_fs(dev);
	fs_worker_stop(fs);
	if (fs->jail_fd >= 0)
		close(fs->jail_fd);
	fuse_server_destroy(&fs->srv);
	kv_err_free(fs->confine_err);
	fs_ctl_clear(&fs->ctl);
	pthread_mutex_destroy(&fs->wlock);
	pthread_cond_destroy(&fs->wcond);
	pthread_cond_destroy(&fs->ctl_cond);
	free(fs->batch);
	free(fs);
}

static void fs_free_partial(struct virtio_fs **fs)
{
	if (*fs)
		fs_free(&(*fs)->mmio);
}

/*
 * The worker's stack. Its deepest frames are a few KiB (readdir's 16 KiB
 * buffer the largest); glibc's default of 8 MiB would let the kernel back
 * its top with a transparent huge page: 2 MiB of host memory per device for
 * a stack that uses tens of KiB (seen: a third of an idle clone's PSS). Under
 * 2 MiB no huge page fits.
 */
#define FS_WORKER_STACK_SIZE (512 * 1024)

static int fs_worker_start(struct virtio_fs *fs, struct kv_err **err)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, FS_WORKER_STACK_SIZE);
	int e = pthread_create(&fs->thread, &attr, fs_worker, fs);
	pthread_attr_destroy(&attr);
	if (e)
		return kv_err_make(err, e, "virtio-fs %s: worker thread", fs->tag);
	fs->thread_started = true;
	if (fs->confine_failed)
		return 0;
	pthread_mutex_lock(&fs->wlock);
	while (fs->confined == 0)
		pthread_cond_wait(&fs->wcond, &fs->wlock);
	pthread_mutex_unlock(&fs->wlock);
	if (fs->confined < 0) {
		fs_worker_stop(fs);
		*err = fs->confine_err;
		fs->confine_err = NULL;
		return -1;
	}
	return 0;
}

static int fs_params_check(const struct virtio_fs_params *p, struct kv_err **err)
{
	size_t taglen = p->tag ? strlen(p->tag) : 0;
	if (taglen == 0 || taglen > VIRTIO_FS_TAG_MAX)
		return kv_err_plain(err, EINVAL, "virtio-fs: tag must be 1..%d bytes",
				    VIRTIO_FS_TAG_MAX);
	if (p->dax_size && (!p->dax_hva || (p->dax_size & 4095) || ((uintptr_t)p->dax_hva & 4095) ||
			    p->dax_gpa + p->dax_size < p->dax_gpa))
		return kv_err_plain(err, EINVAL, "virtio-fs %s: bad DAX window", p->tag);
	/* A removed share's files must not stay mapped: no DAX on a live device. */
	if (p->live && (p->nshares || p->dax_size))
		return kv_err_plain(
		    err, EINVAL, "virtio-fs %s: a live device starts empty and has no DAX window",
		    p->tag);
	return 0;
}

struct virtio_mmio *virtio_fs_new(const struct virtio_env *env, const struct virtio_fs_params *p,
				  struct kv_err **err)
{
	if (fs_params_check(p, err) < 0)
		return NULL;
	__attribute__((cleanup(fs_free_partial))) struct virtio_fs *fs = kv_malloc0(sizeof(*fs));
	pthread_mutex_init(&fs->wlock, NULL);
	pthread_cond_init(&fs->wcond, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->ctl_cond, &ca);
	pthread_condattr_destroy(&ca);
	fs->ctl = (struct fs_ctl){.fd = -1};
	fs->jail_fd = -1;
	fs->live = p->live;
	fs->ctl_timeout_ms = p->ctl_timeout_ms ? p->ctl_timeout_ms : FS_CTL_TIMEOUT_MS;
	fs->batch = kv_malloc0(sizeof(*fs->batch) * FS_BATCH);
	memcpy(fs->tag, p->tag, strlen(p->tag));
	fs->dax_gpa = p->dax_gpa;
	fs->dax_size = p->dax_size;
	struct fuse_dax dax = {p->dax_size ? p->dax_hva : NULL, p->dax_size};
	if (fuse_server_init(&fs->srv, fs->tag, p->shares, p->nshares, p->live, dax, err) < 0)
		return NULL;
	memcpy(fs->config + FS_CFG_TAG, fs->tag, strlen(fs->tag));
	virtio_put_le32(fs->config + FS_CFG_NUM_QUEUES, FS_QUEUES - 1);
	fs->ops = (struct virtio_dev_ops){
	    .device_id = VIRTIO_ID_FS,
	    .nqueues = FS_QUEUES,
	    .config_size = FS_CFG_SIZE,
	    .notify = fs_notify,
	    .reset = fs_reset,
	    .quiesce = fs_quiesce,
	    .free = fs_free,
	    .shm_region = fs_shm_region,
	};
	virtio_mmio_init(&fs->mmio, env, "virtio-fs", &fs->ops, fs->config);
	fs->threaded = p->threaded;
	fs->thread_confine = p->thread_confine;
	fs->thread_jail = p->thread_jail;
	fs->landlock = p->landlock;
	fs->confine_failed = p->confine_failed;
	fs->confine_ctx = p->confine_ctx;
	if (fs->threaded && fs_worker_start(fs, err) < 0)
		return NULL;
	return &steal_ptr(fs)->mmio;
}
