/* SPDX-License-Identifier: Apache-2.0 */
/* vm_save/vm_restore: the irqchips, the PIT and kvmclock of a VM, through a round trip. */
#include <string.h>
#include <sys/ioctl.h>

#include "tap.h"
#include "vmm/vm.h"

#define KVM_IRQCHIP_IOAPIC 2
#define IOAPIC_PIN	   4
#define PIT_SPEAKER	   2	/* channel 2: no timer behind it, nothing fires */
#define PIT_COUNT	   1193 /* 1 kHz */
#define CLOCK_SET_NS	   (5ULL * 1000000000ULL)

static bool kvm_vm_new(struct vm *vm, bool pit, struct kv_err **err)
{
	vm_init(vm);
	return vm_open(vm, err) == 0 && vm_irqchip_create(vm, pit, err) == 0;
}

/*
 * Give VM a a state of its own: an IOAPIC pin routed and unmasked, the PIC
 * master's mask, PIT channel 2 programmed (channel 0 stays off: its ticks
 * would change the PIC's state between the saves), kvmclock moved on.
 */
static bool vm_state_dirty(struct vm *vm)
{
	struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
		return false;
	chip.chip.ioapic.redirtbl[IOAPIC_PIN].bits = 0x24; /* vector 0x24, fixed, unmasked */
	chip.chip.ioapic.id = 1;
	if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
		return false;
	chip = (struct kvm_irqchip){.chip_id = KVM_IRQCHIP_PIC_MASTER};
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
		return false;
	chip.chip.pic.imr = 0xfa;
	chip.chip.pic.irq_base = 0x30;
	if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
		return false;
	struct kvm_pit_state2 pit;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return false;
	struct kvm_pit_channel_state *ch = &pit.channels[PIT_SPEAKER];
	ch->count = PIT_COUNT;
	ch->mode = 3;
	ch->rw_mode = ch->read_state = ch->write_state = 3;
	ch->gate = 1;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return false;
	struct kvm_clock_data clock = {.clock = CLOCK_SET_NS};
	return ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) == 0;
}

/* PIT channels the same but for when they were loaded (KVM's host clock). */
static bool pit_same(const struct kvm_pit_state2 *a, const struct kvm_pit_state2 *b)
{
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_pit_channel_state x = a->channels[i], y = b->channels[i];
		x.count_load_time = y.count_load_time = 0;
		if (memcmp(&x, &y, sizeof(x)) != 0)
			return false;
	}
	return a->flags == b->flags;
}

static void test_round_trip(void)
{
	struct vm a, b, c;
	struct kv_err *err = NULL;
	if (!ok(kvm_vm_new(&a, true, &err) && kvm_vm_new(&b, true, &err) &&
		    kvm_vm_new(&c, false, &err),
		"three VMs, the last without a PIT")) {
		diag("%s", err ? err->msg : "?");
		kv_err_free(err);
		return;
	}
	ok(vm_state_dirty(&a), "VM a: irqchips, PIT and clock of its own");

	struct vm_state st, again;
	ok(vm_save(&a, &st, &err) == 0, "vm_save");
	ok(st.irqchip[KVM_IRQCHIP_IOAPIC].chip.ioapic.redirtbl[IOAPIC_PIN].bits == 0x24 &&
	       st.irqchip[KVM_IRQCHIP_PIC_MASTER].chip.pic.imr == 0xfa,
	   "saved: the IOAPIC route and the PIC mask");
	ok(st.pit.channels[PIT_SPEAKER].count == PIT_COUNT &&
	       st.pit.channels[PIT_SPEAKER].mode == 3,
	   "saved: PIT channel 2");
	ok(st.clock.clock >= CLOCK_SET_NS, "saved: kvmclock");
	bool chip_ids = true;
	for (unsigned i = 0; i < VM_IRQCHIPS; i++)
		chip_ids &= st.irqchip[i].chip_id == i;
	ok(chip_ids, "saved: one state per KVM chip id");

	ok(vm_restore(&b, &st, &err) == 0, "vm_restore into a new VM");
	if (err)
		diag("%s", err->msg);
	ok(vm_save(&b, &again, &err) == 0, "vm_save of the restored VM");
	bool same = true;
	for (unsigned i = 0; i < VM_IRQCHIPS; i++)
		same &= memcmp(&st.irqchip[i], &again.irqchip[i], sizeof(st.irqchip[i])) == 0;
	ok(same, "round trip: the PICs and the IOAPIC");
	ok(pit_same(&st.pit, &again.pit), "round trip: the PIT");
	ok(again.clock.clock >= st.clock.clock &&
	       again.clock.clock - st.clock.clock < 60ULL * 1000000000ULL,
	   "round trip: kvmclock goes on from the saved value (no jump)");

	/* A VM restored without a PIT (its guest had shut it down, snap_pit_idle). */
	ok(vm_restore(&c, &st, &err) == 0, "vm_restore into a VM without a PIT");
	ok(vm_save(&c, &again, &err) == 0, "vm_save of that VM");
	ok(memcmp(&again.pit, &st.pit, sizeof(st.pit)) == 0,
	   "no PIT: its snapshot keeps the PIT state it was restored with");
	same = true;
	for (unsigned i = 0; i < VM_IRQCHIPS; i++)
		same &= memcmp(&st.irqchip[i], &again.irqchip[i], sizeof(st.irqchip[i])) == 0;
	ok(same, "no PIT: the irqchips round-trip all the same");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	vm_destroy(&a);
	vm_destroy(&b);
	vm_destroy(&c);
}

int main(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		skip("vm_save/vm_restore round trip: no usable /dev/kvm (%s)", strerror(errno));
	else
		test_round_trip();
	return tap_done();
}
