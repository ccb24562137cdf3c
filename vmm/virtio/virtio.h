/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio (version 2, "modern") devices: the transport (mmio.c), the
 * split virtqueue (queue.c) and one file per device model. The VMM core
 * creates each device, registers its window on the MMIO bus and adds
 * `virtio_mmio.device=<size>@<base>:<gsi>` to the kernel command line.
 *
 * Contract with the VMM core (vmm/vm.c and friends):
 *  - A device is created with injected guest memory, an irq sink and the
 *    event loop; it never calls KVM.
 *  - virtio_mmio_bus_dev() gives the struct bus_dev to register.
 *  - The transport serialises register accesses with its own lock; device
 *    work may run on the vCPU thread (notify) or the event-loop thread.
 *  - If the core has an ioeventfd for QueueNotify, it calls
 *    virtio_mmio_notify(dev, queue) from the loop instead of a bus write.
 *  - Interrupts: the device sets InterruptStatus and calls irq.raise(gsi)
 *    for every notification the driver asked for (edge semantics; the
 *    driver's ACK clears the status). EVENT_IDX and INDIRECT_DESC are
 *    offered; VERSION_1 is required.
 *  - virtio-vsock (one epoll fd for all its host sockets) and virtio-net
 *    (its tap and a tx eventfd) use the loop; their fds are added when
 *    created or attached and removed in virtio_mmio_free().
 *    Free devices after the loop stopped (a callback may be under way).
 *  - Guest mistakes never stop the VMM: a malformed chain is completed with
 *    length 0 (or an error status), a corrupt ring sets
 *    DEVICE_NEEDS_RESET; warnings are rate-limited.
 */
#ifndef KV_VMM_VIRTIO_H
#define KV_VMM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/bus.h"
#include "vmm/mem.h"

#define VIRTIO_MMIO_WINDOW 0x200

struct virtio_mmio;

struct virtio_env {
	struct gm *gm;
	struct irq_sink irq;
	unsigned gsi;
	struct evloop *loop;
	/* Tests: every timeout of the device becomes this many ms, its timer
	 * ticks every 10 ms (vsock's); 0: the real ones. */
	unsigned timeout_ms;
	/* Tests and fuzzing: virtio-net takes any fd (a socketpair, a pipe) as
	 * its tap, with no TUN ioctls; false: a real tap only. */
	bool fake_tap;
};

/* Devices. Each returns NULL with *err set on failure. */
struct virtio_mmio *virtio_rng_new(const struct virtio_env *env, struct kv_err **err) KV_WUR;
/* path: a raw image file; ro: read-only. */
struct virtio_mmio *virtio_blk_new(const struct virtio_env *env, const char *path, bool ro,
				   struct kv_err **err) KV_WUR;
/*
 * pmem: the VMM core maps the file (shared read-only, or private COW when
 * !ro) into guest physical memory at `gpa` with a KVM memslot and tells the
 * device where it lives; the device reports start/size in its config space
 * and completes flush requests (msync for shared writable mappings).
 */
struct virtio_mmio *virtio_pmem_new(const struct virtio_env *env, uint64_t gpa, uint64_t size,
				    void *hva, bool shared_writable, struct kv_err **err) KV_WUR;
/*
 * vsock in user space, hybrid scheme (architecture.md): `uds` is the host
 * socket path; host->guest: connect to uds, "CONNECT <port>\n" -> "OK <hostport>\n";
 * guest->host port P: the device connects to "<uds>_<P>". The device creates
 * `uds` (replacing a stale socket, never another kind of file) and removes
 * it when freed. guest_cid: 3 .. 2^32-2. env->loop is required.
 */
struct virtio_mmio *virtio_vsock_new(const struct virtio_env *env, uint64_t guest_cid,
				     const char *uds, struct kv_err **err) KV_WUR;
/*
 * The VMM moved into its jail (vmm/sandbox.h), where uds's directory is
 * dir: the guest's connections dial "dir/<uds's name>_<P>" from now on, and
 * uds is left at exit for whoever made its directory. Before the vCPUs run.
 */
void virtio_vsock_jailed(struct virtio_mmio *dev, const char *dir);

/*
 * virtio-fs (virtio 1.2 section 5.11): FUSE over a high-priority queue and
 * one request queue, served by the VMM itself (no external daemon) and
 * confined beneath the shared host paths (see fuse.h). The guest mounts it
 * with `mount -t virtiofs TAG /mnt [-o dax]`.
 *
 * Shares: one share without a name exports its directory as the root (a
 * single file is shown as the only entry of a read-only synthetic root,
 * named after the file); named shares appear as the entries of a synthetic
 * root (so one device carries many bind mounts, files and directories).
 *
 * Live: with `live`, the device starts with an empty synthetic root and
 * takes named shares at run time (virtio_fs_share_add/remove, below).
 *
 * DAX: with dax_size > 0 the core reserves host VA [dax_hva, +dax_size)
 * (PROT_NONE, backing a KVM memslot at dax_gpa); the device exposes it as
 * shared memory region 0 and mmaps file ranges into it on FUSE_SETUPMAPPING.
 *
 * Threads: with `threaded`, a worker thread per device serves the queues
 * (QueueNotify only wakes it) and first calls thread_confine (capabilities
 * and seccomp for the file system calls it makes); without, requests are
 * served on the notifying thread (tests, fuzzing).
 */
#define VIRTIO_FS_TAG_MAX    36
#define VIRTIO_FS_SHARES_MAX 16 /* given at boot */
#define VIRTIO_FS_LIVE_MAX   64 /* on a live device at once */
#define VIRTIO_FS_NAME_MAX   64
struct virtio_fs_share {
	const char *name; /* entry under a synthetic root, or NULL: the root itself */
	const char *path;
	bool ro;  /* read-only: every change is EROFS */
	bool dev; /* the guest may create device nodes */
};
struct virtio_fs_params {
	const char *tag; /* 1..36 bytes */
	const struct virtio_fs_share *shares;
	unsigned nshares;
	/* A live device: no shares at boot, an empty synthetic root, no DAX (see below). */
	bool live;
	/* How long a share change waits for a busy worker (virtio_fs_share_add); 0: 5 s. */
	unsigned ctl_timeout_ms;
	uint64_t dax_gpa, dax_size; /* dax_size 0: no DAX window */
	void *dax_hva;
	bool threaded;
	/*
	 * First on the worker, with its own fs struct: a jail of its own
	 * (sandbox_fs_thread_jail), so that it reaches nothing but its shares'
	 * fds. share_fd: the device's one directory share, to make its root;
	 * -1 for several, a file or a live device. *keep_fd: an fd the device
	 * closes when it is freed, or -1. NULL: none.
	 */
	int (*thread_jail)(void *ctx, int share_fd, int *keep_fd, struct kv_err **err);
	/* The worker restricts itself to the shares with Landlock (fuse_landlock.c). */
	bool landlock;
	int (*thread_confine)(void *ctx, struct kv_err **err);
	void *confine_ctx;
	/*
	 * With this set, virtio_fs_new() does not wait for the worker to confine
	 * itself (a thread start and a seccomp load): a failure is reported here,
	 * on the worker thread, which then exits without serving anything.
	 * Without it, virtio_fs_new() waits and fails. Either way the worker
	 * serves no request before it is confined.
	 */
	void (*confine_failed)(void *ctx, const struct kv_err *err);
};
struct virtio_mmio *virtio_fs_new(const struct virtio_env *env, const struct virtio_fs_params *p,
				  struct kv_err **err) KV_WUR;
/* Tags and share names: 1..max of [A-Za-z0-9._-], not "." or "..". */
bool virtio_fs_name_ok(const char *s, size_t max);
/* The device's tag; NULL when dev is not virtio-fs. */
const char *virtio_fs_tag(struct virtio_mmio *dev);

/*
 * Live devices: named shares added and removed while the guest runs (a pod
 * member joining a running VM). Each change runs on the device's worker
 * between two batches of requests (the server's tables are the worker's),
 * and these return once it is done, or after params->ctl_timeout_ms when
 * the worker is busy (ETIMEDOUT; a change not begun by then is dropped).
 * share_add: `fd` (borrowed: duplicated) is a directory or regular file the
 * caller opened (O_PATH or O_RDONLY); NAME appears in the device's root
 * with the confinement of a boot-time share (TAG/NAME=PATH). share_remove:
 * NAME vanishes and every host fd reached through it is closed at once;
 * the guest's nodeids and handles of it fail (ESTALE, EIO) and keep their
 * slots until it forgets and releases them. Errors name the tag and share.
 */
int virtio_fs_share_add(struct virtio_mmio *dev, const char *name, int fd, bool ro, bool devnodes,
			struct kv_err **err) KV_WUR;
int virtio_fs_share_remove(struct virtio_mmio *dev, const char *name, struct kv_err **err) KV_WUR;
/* Shares on a live device now (0 for other devices). */
unsigned virtio_fs_live_shares(struct virtio_mmio *dev);
/* Whether the device can be snapshotted: not while live shares are attached or changing. */
int virtio_fs_snapshot_check(struct virtio_mmio *dev, struct kv_err **err) KV_WUR;

/*
 * virtio-net (net.c): rx and tx queues, no control queue, one queue pair;
 * config mac, status (link up only while a tap is attached) and
 * max_virtqueue_pairs 1. The backend is attached at run time: `fd`
 * (borrowed: duplicated; the flags are shared, it becomes O_NONBLOCK) must
 * be a tap opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (checked with
 * TUNGETIFF); the device sets its vnet header size (12) and offloads.
 * Attach fails with EBUSY while one is attached; attach and detach raise a
 * config interrupt (link up/down). A reset by the driver keeps the tap.
 * env->loop is required (the tap and a tx eventfd are polled there).
 */
#define VIRTIO_NET_HDR_SIZE  12	   /* struct virtio_net_hdr_v1 */
#define VIRTIO_NET_MAX_FRAME 65562 /* without the header; longer is dropped */
struct virtio_mmio *virtio_net_new(const struct virtio_env *env, const uint8_t mac[6],
				   struct kv_err **err) KV_WUR;
int virtio_net_attach(struct virtio_mmio *dev, int fd, struct kv_err **err) KV_WUR;
/* Link down, tap closed; false when none was attached (or dev is not virtio-net). */
bool virtio_net_detach(struct virtio_mmio *dev);
bool virtio_net_attached(struct virtio_mmio *dev);
/* The TUN_F_* offloads a tap gets for these negotiated features. */
unsigned virtio_net_tun_offloads(uint64_t driver_features);
struct virtio_net_stats {
	uint64_t tx_frames, tx_dropped, rx_frames, rx_dropped;
	unsigned offloads; /* TUN_F_* given to the tap */
	bool polling;	   /* the tap is polled for rx */
};
void virtio_net_stats_get(struct virtio_mmio *dev, struct virtio_net_stats *st);

struct bus_dev virtio_mmio_bus_dev(struct virtio_mmio *dev, uint64_t base);
void virtio_mmio_notify(struct virtio_mmio *dev, unsigned queue);
/* Device-specific events (blk capacity change, vsock transport reset). */
int virtio_blk_resize(struct virtio_mmio *dev, struct kv_err **err) KV_WUR;
int virtio_vsock_reset_transport(struct virtio_mmio *dev, struct kv_err **err) KV_WUR;
void virtio_mmio_free(struct virtio_mmio *dev);

/*
 * Snapshot support. The transport and queue state of one device; the
 * device-specific parts are rebuilt (blk re-stats its file, vsock resets its
 * transport). virtio_mmio_restore() validates the state like guest input
 * (snapshot files are untrusted): device id, status bits, features offered,
 * queue sizes and ring addresses; nothing changes unless all of it passes.
 * Then virtio_mmio_process_pending() re-kicks every ready queue (requests the
 * driver made before the snapshot) and re-raises a pending interrupt.
 */
#define VIRTIO_MMIO_STATE_QUEUES 4
struct virtio_mmio_queue_state {
	uint64_t desc, avail, used;
	uint16_t num, last_avail, used_idx;
	uint8_t ready, reserved;
};
struct virtio_mmio_state {
	uint32_t device_id, status, isr, config_gen;
	uint32_t queue_sel, dev_feat_sel, drv_feat_sel, nqueues;
	uint64_t driver_features;
	struct virtio_mmio_queue_state q[VIRTIO_MMIO_STATE_QUEUES];
};
void virtio_mmio_save(struct virtio_mmio *dev, struct virtio_mmio_state *st);
int virtio_mmio_restore(struct virtio_mmio *dev, const struct virtio_mmio_state *st,
			struct kv_err **err) KV_WUR;
void virtio_mmio_process_pending(struct virtio_mmio *dev);
/* The device's name ("virtio-blk", ...) and virtio device id. */
const char *virtio_mmio_name(const struct virtio_mmio *dev);
uint32_t virtio_mmio_device_id(const struct virtio_mmio *dev);

#endif
