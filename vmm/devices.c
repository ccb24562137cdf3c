/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machine's devices: the 8250 console, the exit device and i8042, and
 * the virtio-mmio devices, each given a window, a GSI (with an irqfd), an
 * ioeventfd per queue (QueueNotify completes in the kernel, the device runs
 * on the event loop) and its `virtio_mmio.device=` entry on the command line.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include "vmm/evloop.h"
#include "vmm/machine.h"
#include "vmm/sandbox.h"
#include "vmm/virtio/virtio.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/pvm.h"

#define VIRTIO_MMIO_QUEUE_NOTIFY_OFF 0x50
#define PAGE_4K			     4096ULL

#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

static void machine_power_stop(void *ctx, int status, const char *why)
{
	machine_stop(ctx, status, "%s (status %d)", why, status);
}

static void machine_panic_timeout(void *ctx, uint32_t events)
{
	struct machine *m = ctx;
	machine_stop(m, VMM_EXIT_PANIC, "guest kernel panicked and did not reset within %d s",
		     VMM_PANIC_GRACE_S);
}

/* The guest's panic notifier wrote to the exit port: its reset follows. */
static void machine_power_panic(void *ctx)
{
	struct machine *m = ctx;
	atomic_store(&m->panicked, true);
	struct itimerspec t = {.it_value = {.tv_sec = VMM_PANIC_GRACE_S}};
	if (timerfd_settime(m->panic_timer_fd, 0, &t, NULL) < 0)
		machine_stop(m, VMM_EXIT_PANIC, "guest kernel panicked");
}

static int devices_panic_timer_setup(struct machine *m, struct kv_err **err)
{
	m->panic_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->panic_timer_fd < 0)
		return kv_err_make(err, errno, "timerfd");
	if (evloop_add(m->loop, m->panic_timer_fd, EPOLLIN, machine_panic_timeout, m) < 0)
		return kv_err_make(err, errno, "watch timerfd");
	return 0;
}

static int devices_pio_register(struct machine *m, struct bus_dev d, struct kv_err **err)
{
	if (bus_register(&m->vm.pio, &d) < 0)
		return kv_err_plain(err, EEXIST,
				    "I/O port 0x%llx: cannot register %s (range taken or bus full)",
				    (unsigned long long)d.base, d.name);
	return 0;
}

static int devices_legacy_setup(struct machine *m, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	if (console_open(&m->console, cfg->console, cfg->console_path, err) < 0)
		return -1;
	console_set_max(&m->console, cfg->console_max);
	struct irq_sink irq = {vm_irq_raise, &m->vm};
	serial_init(&m->serial, irq, LAYOUT_SERIAL_IRQ, console_out, &m->console);
	if (vm_irqfd_add(&m->vm, LAYOUT_SERIAL_IRQ, err) < 0)
		return -1;
	m->power = (struct power){machine_power_stop, machine_power_panic, m};
	if (devices_panic_timer_setup(m, err) < 0)
		return -1;
	if (devices_pio_register(m, serial_bus_dev(&m->serial, LAYOUT_SERIAL_PORT), err) < 0 ||
	    devices_pio_register(m, power_exit_bus_dev(&m->power), err) < 0 ||
	    devices_pio_register(m, power_i8042_data_bus_dev(&m->power), err) < 0 ||
	    devices_pio_register(m, power_i8042_cmd_bus_dev(&m->power), err) < 0)
		return -1;
	return 0;
}

static void devices_ioevent_ready(void *ctx, uint32_t events)
{
	struct machine_ioevent *ev = ctx;
	uint64_t n;
	if (read(ev->fd, &n, sizeof(n)) != sizeof(n))
		return;
	virtio_mmio_notify(ev->dev, ev->queue);
}

static int devices_ioeventfds_add(struct machine *m, struct virtio_mmio *dev, uint64_t base,
				  unsigned nqueues, struct kv_err **err)
{
	for (unsigned q = 0; q < nqueues; q++) {
		if (m->nioev >= MACHINE_MAX_IOEVENTFDS)
			return kv_err_plain(err, ENOSPC, "virtio: too many queues");
		int fd = vm_ioeventfd_add(&m->vm, base + VIRTIO_MMIO_QUEUE_NOTIFY_OFF, q, err);
		if (fd < 0)
			return -1;
		struct machine_ioevent *ev = &m->ioev[m->nioev++];
		*ev = (struct machine_ioevent){dev, q, fd};
		if (evloop_add(m->loop, fd, EPOLLIN, devices_ioevent_ready, ev) < 0)
			return kv_err_make(err, errno, "virtio: watch ioeventfd");
	}
	return 0;
}

static void devices_env(struct machine *m, struct virtio_env *env)
{
	/* The whole struct: the fields only tests set (timeout_ms) are 0, the real values. */
	*env = (struct virtio_env){.gm = &m->ram.gm,
				   .irq = {vm_irq_raise, &m->vm},
				   .gsi = LAYOUT_VIRTIO_GSI + m->nvirtio,
				   .loop = m->loop};
}

/* Give a new device its window, GSI, ioeventfds and command line entry. */
static int devices_virtio_attach(struct machine *m, struct virtio_mmio *dev, unsigned nqueues,
				 struct kv_err **err)
{
	unsigned i = m->nvirtio;
	m->virtio[m->nvirtio++] = dev; /* owned by the machine from here on */
	uint64_t base = LAYOUT_VIRTIO_BASE + i * LAYOUT_VIRTIO_STEP;
	unsigned gsi = LAYOUT_VIRTIO_GSI + i;
	struct bus_dev bd = virtio_mmio_bus_dev(dev, base);
	if (bus_register(&m->vm.mmio, &bd) < 0)
		return kv_err_plain(
		    err, EEXIST, "virtio: cannot register %s at 0x%llx (range taken or bus full)",
		    bd.name, (unsigned long long)base);
	if (vm_irqfd_add(&m->vm, gsi, err) < 0)
		return -1;
	if (devices_ioeventfds_add(m, dev, base, nqueues, err) < 0)
		return -1;
	char param[96];
	snprintf(param, sizeof(param), "virtio_mmio.device=%llu@0x%llx:%u",
		 (unsigned long long)bd.size, (unsigned long long)base, gsi);
	boot_cmdline_append(&m->cmdline, param);
	return 0;
}

static bool devices_slot_free(struct machine *m, struct kv_err **err)
{
	if (m->nvirtio >= MACHINE_MAX_VIRTIO || LAYOUT_VIRTIO_GSI + m->nvirtio >= VM_MAX_GSI) {
		kv_err_plain(err, ENOSPC, "virtio: no GSI left for another device");
		return false;
	}
	return true;
}

/*
 * Map a pmem file: the file's pages, then anonymous zeroes up to 2 MiB.
 * Read-only disks are mapped shared and read-only for a read-only memslot;
 * where KVM has no read-only memslots, copy-on-write instead: the guest may
 * write, its writes stay in the VMM and never reach the file.
 */
static void *devices_pmem_map(void *at, int fd, uint64_t file_size, uint64_t size, bool ro,
			      bool cow, struct kv_err **err)
{
	int prot = PROT_READ | (ro && !cow ? 0 : PROT_WRITE);
	void *base =
	    mmap(at, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (at ? MAP_FIXED : 0),
		 -1, 0);
	if (base == MAP_FAILED) {
		kv_err_make(err, errno, "mmap %llu bytes", (unsigned long long)size);
		return NULL;
	}
	if (fd < 0)
		return base;
	void *p = mmap(base, ALIGN_UP(file_size, PAGE_4K), prot,
		       (cow ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		kv_err_make(err, errno, "mmap");
		if (!at)
			munmap(base, size);
		return NULL;
	}
	return base;
}

/*
 * A slot's window bound to another file, or to zeroes (fd < 0), in place:
 * the same host range under the same memslot, so KVM's MMU notifier drops
 * the guest's old pages and the guest reads the new file's from then on.
 * A pod's member brings its image layers this way (a VM has no hotplug).
 * The guest must not have the device mounted (the runtime binds a slot
 * only when free); a hostile guest that has gains nothing: it is the
 * pod's, and so are the files its members bring. On a mapping failure the
 * window reads as zeroes (or the VM stops, if even that fails).
 */
int machine_pmem_bind(struct machine *m, unsigned index, int fd, struct kv_err **err)
{
	if (index >= m->npmem)
		return kv_err_plain(err, ENOENT, "pmem%u: no such device (the VM has %u)", index,
				    m->npmem);
	struct machine_pmem *pm = &m->pmem[index];
	if (!pm->slot)
		return kv_err_plain(err, EPERM,
				    "pmem%u: not a slot (only a read-only device given a window "
				    "can be bound to another file)",
				    index);
	uint64_t file_size = 0;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			return kv_err_make(err, errno, "pmem%u: fstat", index);
		if (!S_ISREG(st.st_mode) || st.st_size == 0)
			return kv_err_plain(err, EINVAL, "pmem%u: not a non-empty regular file",
					    index);
		if ((uint64_t)st.st_size > pm->size)
			return kv_err_plain(
			    err, EFBIG,
			    "pmem%u: the file (%llu bytes) is larger than the window (%llu)", index,
			    (unsigned long long)st.st_size, (unsigned long long)pm->size);
		file_size = (uint64_t)st.st_size;
	}
	if (devices_pmem_map(pm->hva, fd, file_size, pm->size, true, pm->cow, err))
		return 0;
	/* A failed MAP_FIXED may have unmapped the old pages already: never
	 * leave a hole under the memslot (a later mapping of ours could land
	 * there, in the guest's view). Zeroes, or the VM stops. */
	struct kv_err *e = NULL;
	if (!devices_pmem_map(pm->hva, -1, 0, pm->size, true, pm->cow, &e)) {
		machine_stop(m, VMM_EXIT_ERROR, "pmem%u: the window could not be remapped: %s",
			     index, e->msg);
		kv_err_free(e);
	}
	return kv_err_wrap(err, "pmem%u", index);
}

static uint64_t devices_pmem_next_gpa(struct machine *m)
{
	uint64_t top = LAYOUT_HIGH_RAM;
	for (unsigned i = 0; i < m->ram.gm.n; i++)
		if (m->ram.gm.r[i].gpa + m->ram.gm.r[i].size > top)
			top = m->ram.gm.r[i].gpa + m->ram.gm.r[i].size;
	for (unsigned i = 0; i < m->npmem; i++)
		if (m->pmem[i].gpa + m->pmem[i].size > top)
			top = m->pmem[i].gpa + m->pmem[i].size;
	for (unsigned i = 0; i < m->nfsdax; i++)
		if (m->fsdax[i].gpa + m->fsdax[i].size > top)
			top = m->fsdax[i].gpa + m->fsdax[i].size;
	return ALIGN_UP(top, LAYOUT_PMEM_ALIGN);
}

static int devices_pmem_add(struct machine *m, const struct vmm_disk *d, struct kv_err **err)
{
	cleanup_close int fd = open(d->path, (d->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "pmem: open %s", d->path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kv_err_make(err, errno, "pmem: stat %s", d->path);
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return kv_err_plain(err, EINVAL, "pmem: %s is not a non-empty regular file",
				    d->path);
	uint64_t size = ALIGN_UP((uint64_t)st.st_size, LAYOUT_PMEM_SIZE_ALIGN);
	if (d->window && (uint64_t)st.st_size > d->window)
		return kv_err_plain(
		    err, EFBIG, "pmem: %s (%llu bytes) is larger than its window (%llu)", d->path,
		    (unsigned long long)st.st_size, (unsigned long long)d->window);
	if (d->window)
		size = ALIGN_UP(d->window, LAYOUT_PMEM_SIZE_ALIGN);
	bool cow = d->ro && !m->vm.readonly_mem;
	void *hva = devices_pmem_map(NULL, fd, st.st_size, size, d->ro, cow, err);
	if (!hva)
		return kv_err_wrap(err, "pmem %s", d->path);
	uint64_t gpa = devices_pmem_next_gpa(m);
	struct machine_pmem *pm = &m->pmem[m->npmem++];
	*pm = (struct machine_pmem){hva, gpa, size, .slot = d->ro && d->window, .cow = cow};
	/* Read-only: a read-only memslot; guest writes become MMIO exits we drop. */
	if (vm_memslot_add(&m->vm, pm->gpa, size, hva, d->ro && !cow, err) < 0)
		return kv_err_wrap(err, "pmem %s", d->path);
	struct virtio_env env;
	devices_env(m, &env);
	struct virtio_mmio *dev = virtio_pmem_new(&env, pm->gpa, size, hva, !d->ro, err);
	if (!dev)
		return kv_err_wrap(err, "pmem %s", d->path);
	return devices_virtio_attach(m, dev, 1, err);
}

/* ------------------------------------------------------------ virtio-fs */

_Static_assert(VMM_FS_LIVE_MAX == VIRTIO_FS_LIVE_MAX, "vmm.h and virtio.h disagree");
_Static_assert(VMM_MAX_FS_SHARES == VIRTIO_FS_SHARES_MAX, "vmm.h and virtio.h disagree");

static int devices_fs_confine(void *ctx, struct kv_err **err)
{
	struct machine *m = ctx;
	return sandbox_fs_thread_confine(m->cfg, err);
}

static int devices_fs_jail(void *ctx, int share_fd, int *keep_fd, struct kv_err **err)
{
	(void)ctx;
	return sandbox_fs_thread_jail(share_fd, keep_fd, err);
}

/* A worker that could not confine itself (on its thread): the VM stops with the error. */
static void devices_fs_confine_failed(void *ctx, const struct kv_err *err)
{
	machine_stop(ctx, VMM_EXIT_ERROR, "%s", err->msg);
}

/*
 * A DAX window: host VA reserved PROT_NONE (the device maps file ranges
 * over it), a KVM memslot placed like a pmem region (above RAM, section
 * aligned: the guest's memremap_pages needs it).
 */
static int devices_fs_window(struct machine *m, uint64_t size, struct virtio_fs_params *p,
			     struct kv_err **err)
{
	size = ALIGN_UP(size, LAYOUT_PMEM_SIZE_ALIGN);
	void *hva = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (hva == MAP_FAILED)
		return kv_err_make(err, errno, "DAX window: reserve %llu bytes",
				   (unsigned long long)size);
	uint64_t gpa = devices_pmem_next_gpa(m);
	m->fsdax[m->nfsdax++] = (struct machine_pmem){.hva = hva, .gpa = gpa, .size = size};
	if (vm_memslot_add(&m->vm, gpa, size, hva, false, err) < 0)
		return kv_err_wrap(err, "DAX window");
	p->dax_gpa = gpa;
	p->dax_size = size;
	p->dax_hva = hva;
	return 0;
}

static int devices_fs_add(struct machine *m, const struct vmm_fs *f, struct kv_err **err)
{
	struct virtio_fs_share shares[VMM_MAX_FS_SHARES];
	for (unsigned i = 0; i < f->nshares; i++)
		shares[i] = (struct virtio_fs_share){f->shares[i].name, f->shares[i].path,
						     f->shares[i].ro, f->shares[i].dev};
	struct virtio_fs_params p = {
	    .tag = f->tag,
	    .shares = shares,
	    .nshares = f->nshares,
	    .live = f->live,
	    .threaded = true,
	    .landlock = m->cfg->drop_caps, /* off with --no-sandbox, as the rest */
	    .thread_confine = devices_fs_confine,
	    .thread_jail = m->jailed ? devices_fs_jail : NULL,
	    .confine_failed = devices_fs_confine_failed,
	    .confine_ctx = m,
	};
	if (f->dax && devices_fs_window(m, f->dax, &p, err) < 0)
		return -1;
	struct virtio_env env;
	devices_env(m, &env);
	struct virtio_mmio *dev = virtio_fs_new(&env, &p, err);
	if (!dev)
		return -1;
	return devices_virtio_attach(m, dev, 2, err);
}

static int devices_virtio_setup(struct machine *m, struct kv_err **err)
{
	const struct vmm_config *cfg = m->cfg;
	struct virtio_env env;
	struct virtio_mmio *dev;
	for (unsigned i = 0; i < cfg->n_pmem; i++)
		if (!devices_slot_free(m, err) || devices_pmem_add(m, &cfg->pmem[i], err) < 0)
			return -1;
	for (unsigned i = 0; i < cfg->n_blk; i++) {
		if (!devices_slot_free(m, err))
			return -1;
		devices_env(m, &env);
		dev = virtio_blk_new(&env, cfg->blk[i].path, cfg->blk[i].ro, err);
		if (!dev || devices_virtio_attach(m, dev, 1, err) < 0)
			return kv_err_wrap(err, "blk %s", cfg->blk[i].path);
	}
	for (unsigned i = 0; i < cfg->n_fs; i++)
		if (!devices_slot_free(m, err) || devices_fs_add(m, &cfg->fs[i], err) < 0)
			return kv_err_wrap(err, "fs %s", cfg->fs[i].tag);
	if (cfg->vsock_uds) {
		if (!devices_slot_free(m, err))
			return -1;
		devices_env(m, &env);
		dev = virtio_vsock_new(&env, cfg->vsock_cid, cfg->vsock_uds, err);
		if (!dev || devices_virtio_attach(m, dev, 3, err) < 0)
			return kv_err_wrap(err, "vsock %s", cfg->vsock_uds);
		m->vsock = dev;
	}
	/* After vsock, before rng: a VM without --net keeps its slots (snapshots). */
	if (cfg->net) {
		if (!devices_slot_free(m, err))
			return -1;
		devices_env(m, &env);
		dev = virtio_net_new(&env, cfg->net_mac, err);
		if (!dev || devices_virtio_attach(m, dev, 2, err) < 0)
			return kv_err_wrap(err, "net");
	}
	if (cfg->rng) {
		if (!devices_slot_free(m, err))
			return -1;
		devices_env(m, &env);
		dev = virtio_rng_new(&env, err);
		if (!dev || devices_virtio_attach(m, dev, 1, err) < 0)
			return kv_err_wrap(err, "rng");
	}
	return 0;
}

static void devices_cmdline_defaults(struct machine *m)
{
	m->cmdline = kv_strdup(m->cfg->cmdline ? m->cfg->cmdline : "");
	boot_cmdline_default(&m->cmdline, "console=ttyS0");
	boot_cmdline_default(&m->cmdline, "reboot=k");
	boot_cmdline_default(&m->cmdline, "panic=-1");
	boot_cmdline_default(&m->cmdline, "8250.nr_uarts=1");
	/* The kvrun guest kernel reports power-off and panic on this port. */
	boot_cmdline_default(&m->cmdline, "kvrun.exit=0x501");
	if (m->pvm)
		for (const char *const *p = pvm_cmdline_params(); *p; p++)
			boot_cmdline_default(&m->cmdline, *p);
}

int machine_devices_setup(struct machine *m, struct kv_err **err)
{
	devices_cmdline_defaults(m);
	if (devices_legacy_setup(m, err) < 0)
		return -1;
	return devices_virtio_setup(m, err);
}

void machine_devices_teardown(struct machine *m)
{
	for (unsigned i = 0; i < m->nioev; i++)
		close(m->ioev[i].fd);
	m->nioev = 0;
	for (unsigned i = 0; i < m->nvirtio; i++)
		virtio_mmio_free(m->virtio[i]);
	m->nvirtio = 0;
	for (unsigned i = 0; i < m->npmem; i++)
		munmap(m->pmem[i].hva, m->pmem[i].size);
	m->npmem = 0;
	for (unsigned i = 0; i < m->nfsdax; i++)
		munmap(m->fsdax[i].hva, m->fsdax[i].size);
	m->nfsdax = 0;
	console_close(&m->console);
	serial_destroy(&m->serial);
	free(m->cmdline);
	m->cmdline = NULL;
}
