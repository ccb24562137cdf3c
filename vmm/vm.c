/* SPDX-License-Identifier: Apache-2.0 */
/* KVM VM-level ioctls. */
#include "vmm/vm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "vmm/x86/layout.h"

#define KVM_API_VERSION_EXPECTED 12

int vm_check_extension(struct vm *vm, long cap)
{
	int r = ioctl(vm->vm_fd >= 0 ? vm->vm_fd : vm->kvm_fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

static int vm_ioeventfd_register(struct vm *vm, const struct vm_ioeventfd *e, struct kv_err **err)
{
	struct kvm_ioeventfd req = {
	    .datamatch = e->data,
	    .addr = e->addr,
	    .len = 4,
	    .fd = e->fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &req) < 0)
		return kv_err_make(err, errno, "KVM_IOEVENTFD 0x%llx", (unsigned long long)e->addr);
	return 0;
}

int vm_irqchip_create(struct vm *vm, bool pit, struct kv_err **err)
{
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS_ADDR) < 0)
		kv_debug("vm: KVM_SET_TSS_ADDR: %s (ignored)", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return kv_err_make(err, errno, "KVM_CREATE_IRQCHIP");
	/* The PIT: Linux calibrates against it and checks IRQ 0 through the IOAPIC.
	 * Port 0x61 (speaker) is answered in the kernel. */
	struct kvm_pit_config pc = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (pit && ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pc) < 0)
		return kv_err_make(err, errno, "KVM_CREATE_PIT2");
	vm->pit = pit;
	vm->irqchip = true;
	/* The irqfds and ioeventfds made before there was an irqchip (vm.h). */
	for (unsigned gsi = 0; gsi < VM_MAX_GSI; gsi++) {
		struct kvm_irqfd req = {.fd = (uint32_t)vm->irqfd[gsi], .gsi = gsi};
		if (vm->irqfd[gsi] >= 0 && ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0)
			return kv_err_make(err, errno, "KVM_IRQFD gsi %u", gsi);
	}
	for (unsigned i = 0; i < vm->nioev_pending; i++)
		if (vm_ioeventfd_register(vm, &vm->ioev_pending[i], err) < 0)
			return -1;
	vm->nioev_pending = 0;
	return 0;
}

void vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	for (unsigned i = 0; i < VM_MAX_GSI; i++)
		vm->irqfd[i] = -1;
}

int vm_create(struct vm *vm, struct kv_err **err)
{
	if (vm_open(vm, err) < 0)
		return -1;
	return vm_irqchip_create(vm, true, err);
}

static int vm_given_kvm_fd = -1;

void vm_kvm_fd_use(int fd)
{
	vm_given_kvm_fd = fd;
}

int vm_open(struct vm *vm, struct kv_err **err)
{
	vm_init(vm);
	if (vm_given_kvm_fd >= 0) {
		vm->kvm_fd = steal_fd(vm_given_kvm_fd);
		if (fcntl(vm->kvm_fd, F_SETFD, FD_CLOEXEC) < 0)
			return kv_err_make(err, errno, "--kvm-fd %d", vm->kvm_fd);
	} else {
		vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	}
	if (vm->kvm_fd < 0)
		return kv_err_make(err, errno, "open /dev/kvm (run kvrun-vmm --check)");
	int v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v < 0)
		return kv_err_make(err, errno, "/dev/kvm: KVM_GET_API_VERSION");
	if (v != KVM_API_VERSION_EXPECTED)
		return kv_err_plain(err, EINVAL, "/dev/kvm: API version %d, expected %d", v,
				    KVM_API_VERSION_EXPECTED);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return kv_err_make(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return kv_err_make(err, errno, "KVM_CREATE_VM");
	vm->readonly_mem = vm_check_extension(vm, KVM_CAP_READONLY_MEM) > 0;
	vm->tsc_deadline = vm_check_extension(vm, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < VM_MAX_GSI; i++)
		if (vm->irqfd[i] >= 0)
			close(vm->irqfd[i]);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

int vm_memslot_add(struct vm *vm, uint64_t gpa, uint64_t size, void *hva, bool readonly,
		   struct kv_err **err)
{
	if (vm->nslots >= VM_MAX_SLOTS)
		return kv_err_plain(err, ENOSPC, "KVM memslots: all %u in use", VM_MAX_SLOTS);
	if (readonly && !vm->readonly_mem)
		return kv_err_plain(err, ENOTSUP, "KVM memslot: read-only memory not supported");
	struct kvm_userspace_memory_region r = {
	    .slot = vm->nslots,
	    .flags = readonly ? KVM_MEM_READONLY : 0,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return kv_err_make(err, errno, "KVM_SET_USER_MEMORY_REGION 0x%llx+0x%llx",
				   (unsigned long long)gpa, (unsigned long long)size);
	vm->nslots++;
	return 0;
}

int vm_irqfd_add(struct vm *vm, unsigned gsi, struct kv_err **err)
{
	if (gsi >= VM_MAX_GSI)
		return kv_err_plain(err, EINVAL, "irqfd: GSI %u out of range", gsi);
	if (vm->irqfd[gsi] >= 0)
		return 0;
	cleanup_close int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return kv_err_make(err, errno, "irqfd: eventfd");
	struct kvm_irqfd req = {.fd = (uint32_t)fd, .gsi = gsi};
	if (vm->irqchip && ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0)
		return kv_err_make(err, errno, "KVM_IRQFD gsi %u", gsi);
	vm->irqfd[gsi] = steal_fd(fd);
	return 0;
}

void vm_irq_raise(void *ctx, unsigned gsi)
{
	struct vm *vm = ctx;
	if (gsi < VM_MAX_GSI && vm->irqfd[gsi] >= 0) {
		uint64_t one = 1;
		if (write(vm->irqfd[gsi], &one, sizeof(one)) == sizeof(one) || errno == EAGAIN)
			return;
	}
	/* An edge: assert, then deassert. */
	struct kvm_irq_level l = {.irq = gsi, .level = 1};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) == 0) {
		l.level = 0;
		(void)ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
	}
}

int vm_ioeventfd_add(struct vm *vm, uint64_t addr, uint32_t data, struct kv_err **err)
{
	cleanup_close int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return kv_err_make(err, errno, "ioeventfd: eventfd");
	struct vm_ioeventfd e = {addr, data, fd};
	if (vm->irqchip) {
		if (vm_ioeventfd_register(vm, &e, err) < 0)
			return -1;
	} else if (vm->nioev_pending < VM_MAX_IOEVENTFDS) {
		/* Registered with the irqchip (vm_irqchip_create), after every memslot. */
		vm->ioev_pending[vm->nioev_pending++] = e;
	} else {
		return kv_err_plain(err, ENOSPC, "ioeventfds: all %u in use", VM_MAX_IOEVENTFDS);
	}
	return steal_fd(fd);
}

/* ------------------------------------------------------------ snapshots */

int vm_save(struct vm *vm, struct vm_state *st, struct kv_err **err)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < VM_IRQCHIPS; i++) {
		st->irqchip[i].chip_id = i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &st->irqchip[i]) < 0)
			return kv_err_make(err, errno, "KVM_GET_IRQCHIP %u", i);
	}
	/* A VM restored without a PIT (its guest had shut it down) has none to
	 * ask: its snapshot keeps the state it was restored with. */
	st->pit = vm->pit_restored;
	if (vm->pit && ioctl(vm->vm_fd, KVM_GET_PIT2, &st->pit) < 0)
		return kv_err_make(err, errno, "KVM_GET_PIT2");
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &st->clock) < 0)
		return kv_err_make(err, errno, "KVM_GET_CLOCK");
	return 0;
}

/*
 * The PIT, then kvmclock, then the irqchips: setting the PIT restarts its
 * counter and setting the irqchips last leaves them exactly as saved,
 * whatever the PIT did meanwhile. Devices raise interrupts only after this
 * (snapshot_restore.c), into the restored chips.
 */
int vm_restore(struct vm *vm, const struct vm_state *st, struct kv_err **err)
{
	vm->pit_restored = st->pit;
	if (vm->pit && ioctl(vm->vm_fd, KVM_SET_PIT2, &st->pit) < 0)
		return kv_err_make(err, errno, "KVM_SET_PIT2");
	/*
	 * The saved kvmclock value only, flags 0: with KVM_CLOCK_REALTIME (which
	 * KVM_GET_CLOCK sets where the host's clocksource allows) KVM would add the wall time
	 * elapsed since the save (api.rst, KVM_SET_CLOCK), and the guest's monotonic time must
	 * continue from where the snapshot stopped it. The TSC MSR restored with each vCPU does the
	 * same for the TSC.
	 */
	struct kvm_clock_data clock = {.clock = st->clock.clock};
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return kv_err_make(err, errno, "KVM_SET_CLOCK");
	for (unsigned i = 0; i < VM_IRQCHIPS; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st->irqchip[i]) < 0)
			return kv_err_make(err, errno, "KVM_SET_IRQCHIP %u", i);
	return 0;
}
