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
 * The worker confines itself before it serves anything: its own fs struct
 * with umask 0 (the server sets modes exactly), then params->thread_confine
 * (capabilities and the seccomp list for file system calls, from the core).
 * virtio_fs_new() waits for that, unless params->confine_failed is set: then
 * the VMM goes on building the machine while the worker starts (a guest kick
 * meanwhile only sets `pending`), and a failure arrives through the callback.
 */
#include "vmm/virtio/fuse.h"
#include "vmm/virtio/virtio_dev.h"

#include <sched.h>
#include <string.h>
#include <sys/stat.h>

#define FS_QUEUES	  2 /* hiprio + 1 request queue */
#define FS_HIPRIO	  0
#define FS_CFG_TAG	  0
#define FS_CFG_NUM_QUEUES 36
#define FS_CFG_SIZE	  40
#define FS_BATCH	  16
#define FS_SHM_CACHE	  0 /* VIRTIO_FS_SHMCAP_ID_CACHE */

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
	void (*confine_failed)(void *ctx, const struct kv_err *err);
	void *confine_ctx;
	uint32_t epoch;
	bool reset_pending;
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

static int fs_worker_confine(struct virtio_fs *fs, struct kv_err **err)
{
	/* Our own umask (0), not the process's: created modes are exactly the guest's. */
	if (unshare(CLONE_FS) < 0)
		return kv_err_make(err, errno, "virtio-fs %s: unshare(CLONE_FS)", fs->tag);
	umask(0);
	if (fs->thread_confine && fs->thread_confine(fs->confine_ctx, err) < 0)
		return kv_err_wrap(err, "virtio-fs %s: confine worker", fs->tag);
	return 0;
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
	pthread_mutex_unlock(&fs->wlock);
	if (ok < 0)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&fs->wlock);
		while (!fs->pending && !fs->stop)
			pthread_cond_wait(&fs->wcond, &fs->wlock);
		bool stop = fs->stop;
		fs->pending = false;
		pthread_mutex_unlock(&fs->wlock);
		if (stop)
			return NULL;
		while (fs_worker_round(fs)) {
		}
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
	fuse_server_destroy(&fs->srv);
	kv_err_free(fs->confine_err);
	pthread_mutex_destroy(&fs->wlock);
	pthread_cond_destroy(&fs->wcond);
	free(fs->batch);
	free(fs);
}

static void fs_free_partial(struct virtio_fs **fs)
{
	if (*fs)
		fs_free(&(*fs)->mmio);
}

static int fs_worker_start(struct virtio_fs *fs, struct kv_err **err)
{
	int e = pthread_create(&fs->thread, NULL, fs_worker, fs);
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
		return kv_err_make(err, EINVAL, "virtio-fs: tag must be 1..%d bytes",
				   VIRTIO_FS_TAG_MAX);
	if (p->dax_size && (!p->dax_hva || (p->dax_size & 4095) || ((uintptr_t)p->dax_hva & 4095) ||
			    p->dax_gpa + p->dax_size < p->dax_gpa))
		return kv_err_make(err, EINVAL, "virtio-fs %s: bad DAX window", p->tag);
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
	fs->batch = kv_malloc0(sizeof(*fs->batch) * FS_BATCH);
	memcpy(fs->tag, p->tag, strlen(p->tag));
	fs->dax_gpa = p->dax_gpa;
	fs->dax_size = p->dax_size;
	struct fuse_dax dax = {p->dax_size ? p->dax_hva : NULL, p->dax_size};
	if (fuse_server_init(&fs->srv, fs->tag, p->shares, p->nshares, dax, err) < 0)
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
	fs->confine_failed = p->confine_failed;
	fs->confine_ctx = p->confine_ctx;
	if (fs->threaded && fs_worker_start(fs, err) < 0)
		return NULL;
	return &steal_ptr(fs)->mmio;
}
