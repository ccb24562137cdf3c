/* SPDX-License-Identifier: Apache-2.0 */
/* Exit handling fed by hand, PVM fixup decisions, the exit device and i8042. */
#include <string.h>
#include <sys/ioctl.h>

#include "tap.h"
#include "vmm/power.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"
#include "vmm/x86/pvm.h"

#define RUN_SIZE 4096

static uint8_t last_write[8];
static uint64_t last_off;
static unsigned last_len, reads;

static void dev_read(void *ctx, uint64_t off, void *data, unsigned len)
{
	memset(data, 0x40 + reads++, len);
	last_off = off;
}

static void dev_write(void *ctx, uint64_t off, const void *data, unsigned len)
{
	memcpy(last_write, data, len);
	last_off = off;
	last_len = len;
}

static struct kvm_run *run_new(void)
{
	struct kvm_run *r = aligned_alloc(4096, RUN_SIZE);
	memset(r, 0, RUN_SIZE);
	return r;
}

static void test_io_mmio(void)
{
	struct bus pio = {0}, mmio = {0};
	struct bus_dev d = {"dev", 0x3f8, 8, dev_read, dev_write, NULL};
	ok(bus_register(&pio, &d) == 0, "port device registered");
	struct bus_dev m = {"mmio", 0xd0000000, 0x200, dev_read, dev_write, NULL};
	ok(bus_register(&mmio, &m) == 0, "MMIO device registered");
	struct kvm_run *run = run_new();
	struct vcpu_outcome o;

	run->exit_reason = KVM_EXIT_IO;
	run->io = (typeof(run->io)){KVM_EXIT_IO_OUT, 1, 0x3f9, 1, 1024};
	((uint8_t *)run)[1024] = 'x';
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_CONTINUE && last_write[0] == 'x' && last_off == 1,
	   "OUT: byte reaches the device at its offset");

	run->io = (typeof(run->io)){KVM_EXIT_IO_IN, 1, 0x3f8, 3, 1024};
	reads = 0;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	uint8_t *data = (uint8_t *)run + 1024;
	ok(o.action == VCPU_CONTINUE && data[0] == 0x40 && data[1] == 0x41 && data[2] == 0x42,
	   "INS with count 3: three reads");

	run->io = (typeof(run->io)){KVM_EXIT_IO_IN, 2, 0x80, 1, 1024};
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_CONTINUE && data[0] == 0xff && data[1] == 0xff,
	   "IN from an unclaimed port: all-ones");

	run->io = (typeof(run->io)){KVM_EXIT_IO_OUT, 4, 0x3f8, 2000, 1024};
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_FATAL, "I/O data beyond kvm_run: refused");
	run->io = (typeof(run->io)){KVM_EXIT_IO_OUT, 3, 0x3f8, 1, 1024};
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_FATAL, "I/O size 3: refused");

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = 0xd0000070;
	run->mmio.len = 4;
	run->mmio.is_write = 1;
	memcpy(run->mmio.data, "\x0f\0\0\0", 4);
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_CONTINUE && last_off == 0x70 && last_len == 4 && last_write[0] == 0x0f,
	   "MMIO write: window-relative offset and data");
	run->mmio.phys_addr = 0xd0001000;
	run->mmio.is_write = 0;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_CONTINUE && memcmp(run->mmio.data, "\xff\xff\xff\xff", 4) == 0,
	   "MMIO read of a hole: all-ones");
	run->mmio.phys_addr = 0xd00001fe;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(memcmp(run->mmio.data, "\xff\xff\xff\xff", 4) == 0,
	   "MMIO access straddling the window end: not dispatched");
	run->mmio.len = 9;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_FATAL, "MMIO length 9: refused");
	free(run);
}

static void test_exits(void)
{
	struct bus pio = {0}, mmio = {0};
	struct kvm_run *run = run_new();
	struct vcpu_outcome o;
	run->exit_reason = KVM_EXIT_SHUTDOWN;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_RESET, "triple fault: reset");
	run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_POWEROFF, "system event shutdown: power-off");
	run->system_event.type = KVM_SYSTEM_EVENT_RESET;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_RESET, "system event reset: reset");
	run->exit_reason = KVM_EXIT_INTR;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_CONTINUE, "signal: continue");
	run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	run->fail_entry.hardware_entry_failure_reason = 0x21;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_FATAL && strstr(o.msg, "0x21"),
	   "failed entry: fatal, names the reason");
	run->exit_reason = 99;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_FATAL && strstr(o.msg, "99"), "unknown exit: fatal");

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.ndata = 3;
	run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
	run->emulation_failure.insn_size = 3;
	memcpy(run->emulation_failure.insn_bytes, "\x0f\x01\xca", 3);
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_EMULATION_ERROR, "emulation failure: handed to the fixup path");
	uint8_t insn[15];
	unsigned n = vcpu_insn_bytes(run, insn, sizeof(insn));
	ok(n == 3 && insn[2] == 0xca, "instruction bytes from the exit");
	char msg[256];
	vcpu_internal_error_format(run, 0xffffffff81001234ULL, insn, n, msg, sizeof(msg));
	ok(strstr(msg, "RIP 0xffffffff81001234") && strstr(msg, "bytes 0f 01 ca"),
	   "message names RIP and bytes: %s", msg);
	run->emulation_failure.flags = 0;
	ok(vcpu_insn_bytes(run, insn, sizeof(insn)) == 0, "no bytes without the flag");
	vcpu_internal_error_format(run, 0x1000, insn, 0, msg, sizeof(msg));
	ok(strstr(msg, "bytes unknown") != NULL, "message says when bytes are unknown");
	run->internal.suberror = 3;
	vcpu_exit_handle(run, RUN_SIZE, &pio, &mmio, &o);
	ok(o.action == VCPU_FATAL && strstr(o.msg, "suberror 3"), "other internal error: fatal");
	free(run);
}

static void test_pvm(void)
{
	unsigned len;
	ok(pvm_fixup_classify((const uint8_t *)"\xcc", 1, &len) == PVM_FIXUP_BP && len == 1,
	   "int3: inject #BP, skip 1");
	ok(pvm_fixup_classify((const uint8_t *)"\x9b\x90", 2, &len) == PVM_FIXUP_SKIP && len == 1,
	   "fwait: skip 1");
	ok(pvm_fixup_classify((const uint8_t *)"\x0f\x01\xca", 3, &len) == PVM_FIXUP_NONE,
	   "clac: no fixup (stop)");
	ok(pvm_fixup_classify(NULL, 0, &len) == PVM_FIXUP_NONE, "no bytes: no fixup");
	const char *vmx = "processor\t: 0\nflags\t\t: fpu vme vmx sse\n";
	const char *none = "processor\t: 0\nflags\t\t: fpu vme sse hypervisor\n";
	const char *svm = "flags\t\t: fpu svm\n";
	const char *lookalike = "flags\t\t: fpu vmxfoo avx\nbugs\t: vmx\n";
	ok(!pvm_detect_from(true, vmx), "PVM module but vmx flag: not PVM");
	ok(!pvm_detect_from(true, svm), "PVM module but svm flag: not PVM");
	ok(pvm_detect_from(true, none), "PVM module, no vmx/svm: PVM");
	ok(!pvm_detect_from(false, none), "no PVM module: not PVM");
	ok(pvm_detect_from(true, lookalike), "vmxfoo and a bugs line are not the vmx flag");
	bool noxsave = false;
	for (const char *const *p = pvm_cmdline_params(); *p; p++)
		noxsave |= strcmp(*p, "noxsave") == 0;
	ok(noxsave, "PVM command line has noxsave");
}

static int stopped_status = -1, panics;
static void on_stop(void *ctx, int status, const char *why)
{
	stopped_status = status;
}
static void on_panic(void *ctx)
{
	panics++;
}

static void test_power(void)
{
	struct power p = {on_stop, on_panic, NULL};
	struct bus pio = {0};
	struct bus_dev e = power_exit_bus_dev(&p), d = power_i8042_data_bus_dev(&p),
		       c = power_i8042_cmd_bus_dev(&p);
	ok(bus_register(&pio, &e) == 0 && bus_register(&pio, &d) == 0 &&
	       bus_register(&pio, &c) == 0,
	   "exit device and i8042 registered");
	uint8_t v = 0;
	bus_write(&pio, VMM_EXIT_PORT, &v, 1);
	is_int(stopped_status, VMM_EXIT_POWEROFF, "exit port 0: power-off");
	v = 42;
	bus_write(&pio, VMM_EXIT_PORT, &v, 1);
	is_int(stopped_status, 42, "exit port 42: status 42");
	stopped_status = -1;
	v = 1;
	bus_write(&pio, VMM_EXIT_PORT, &v, 1);
	ok(panics == 1 && stopped_status == -1, "exit port 1: panic recorded, no stop yet");
	bus_read(&pio, 0x64, &v, 1);
	ok((v & 2) == 0, "i8042 status: input buffer empty");
	v = 0xd1;
	bus_write(&pio, 0x64, &v, 1);
	is_int(stopped_status, -1, "i8042 other command: ignored");
	v = 0xfe;
	bus_write(&pio, 0x64, &v, 1);
	is_int(stopped_status, VMM_EXIT_RESET, "i8042 0xfe: reset");
	ok(!bus_read(&pio, 0x61, &v, 1) && v == 0xff, "port 0x61 is not claimed");
}

/* ------------------------------------------------ vcpu_save / vcpu_restore */

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_LSTAR	      0xc0000082
#define APIC_TASKPRI	      0x80
#define APIC_LVTT	      0x320
#define APIC_LVT_TSCDEADLINE  (2u << 17)

/* A VM with its irqchip (the LAPICs) and vCPU 0 set up as for a boot. */
static bool kvm_vcpu_new(struct vm *vm, struct vcpu *v, struct kv_err **err)
{
	vm_init(vm);
	if (vm_open(vm, err) < 0 || vm_irqchip_create(vm, false, err) < 0 ||
	    vcpu_create(v, vm, 0, err) < 0 || vcpu_arch_setup(v, vm, 1, pvm_detect(), err) < 0 ||
	    vcpu_boot_regs_set(v, 0x1000000, 0x7000, err) < 0)
		return false;
	return true;
}

static void kvm_vcpu_free(struct vm *vm, struct vcpu *v)
{
	vcpu_destroy(v);
	vm_destroy(vm);
}

static uint64_t msr_of(const struct vcpu_state *st, uint32_t index, bool *found)
{
	for (unsigned i = 0; i < st->nmsrs; i++)
		if (st->msrs[i].index == index) {
			*found = true;
			return st->msrs[i].data;
		}
	*found = false;
	return 0;
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned off)
{
	uint32_t r;
	memcpy(&r, l->regs + off, sizeof(r));
	return r;
}

static void lapic_reg_set(struct kvm_lapic_state *l, unsigned off, uint32_t val)
{
	memcpy(l->regs + off, &val, sizeof(val));
}

/*
 * Give vCPU a state of its own: registers, an MSR, debug registers, a
 * LAPIC in TSC-deadline mode with a deadline armed far ahead (which only
 * survives a restore that writes the LAPIC before the MSRs, and the TSC
 * before the deadline).
 */
static bool vcpu_state_dirty(struct vm *vm, struct vcpu *v, uint64_t *deadline)
{
	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return false;
	regs.rax = 0x1122334455667788ULL;
	regs.r15 = 0xfeedfacecafef00dULL;
	struct kvm_debugregs dr = {.db = {0x1000, 0x2000}, .dr7 = 0x400 | 0x3};
	struct kvm_lapic_state lapic;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0 || ioctl(v->fd, KVM_SET_DEBUGREGS, &dr) < 0 ||
	    ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return false;
	lapic_reg_set(&lapic, APIC_TASKPRI, 0x20);
	if (vm->tsc_deadline)
		lapic_reg_set(&lapic, APIC_LVTT, APIC_LVT_TSCDEADLINE | 0xec);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return false;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[2];
	} msrs = {.h.nmsrs = 1, .e = {{.index = MSR_IA32_TSC}}};
	if (ioctl(v->fd, KVM_GET_MSRS, &msrs) != 1)
		return false;
	*deadline = vm->tsc_deadline ? msrs.e[0].data + (1ULL << 50) : 0;
	msrs.e[0] = (struct kvm_msr_entry){.index = MSR_LSTAR, .data = 0xffffffff81a00000ULL};
	msrs.e[1] = (struct kvm_msr_entry){.index = MSR_IA32_TSC_DEADLINE, .data = *deadline};
	msrs.h.nmsrs = vm->tsc_deadline ? 2 : 1;
	return ioctl(v->fd, KVM_SET_MSRS, &msrs) == (int)msrs.h.nmsrs;
}

/* The MSRs of a and b are the same but for the TSC, which runs on. */
static bool msrs_same_but_tsc(const struct vcpu_state *a, const struct vcpu_state *b)
{
	if (a->nmsrs != b->nmsrs)
		return false;
	for (unsigned i = 0; i < a->nmsrs; i++) {
		if (a->msrs[i].index != b->msrs[i].index)
			return false;
		if (a->msrs[i].index != MSR_IA32_TSC && a->msrs[i].data != b->msrs[i].data) {
			diag("  MSR 0x%x: 0x%llx, then 0x%llx", a->msrs[i].index,
			     (unsigned long long)a->msrs[i].data,
			     (unsigned long long)b->msrs[i].data);
			return false;
		}
	}
	return true;
}

static void test_state_round_trip(void)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		skip("vcpu_save/vcpu_restore round trip: no usable /dev/kvm (%s)", strerror(errno));
		return;
	}
	struct vm vm_a, vm_b;
	struct vcpu a, b;
	struct kv_err *err = NULL;
	uint64_t deadline = 0;
	if (!ok(kvm_vcpu_new(&vm_a, &a, &err) && kvm_vcpu_new(&vm_b, &b, &err),
		"two VMs with a vCPU each")) {
		diag("%s", err ? err->msg : "?");
		kv_err_free(err);
		return;
	}
	ok(vcpu_state_dirty(&vm_a, &a, &deadline), "vCPU a: registers, MSRs, LAPIC of its own");

	struct vcpu_state st, again;
	ok(vcpu_save(&a, &vm_a, &st, &err) == 0, "vcpu_save");
	is_int(st.xsave_size, vcpu_xsave_size(&vm_a), "saved: XSAVE of the host's size");
	ok(st.nmsrs > 0 && st.ncpuid > 0 && st.tsc_khz > 0, "saved: MSRs, CPUID, TSC frequency");
	bool found;
	ok(msr_of(&st, MSR_LSTAR, &found) == 0xffffffff81a00000ULL && found, "saved: LSTAR");
	ok(vcpu_restore(&b, &st, &err) == 0, "vcpu_restore into a new vCPU");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	err = NULL;
	ok(vcpu_save(&b, &vm_b, &again, &err) == 0, "vcpu_save of the restored vCPU");

	ok(again.mp_state.mp_state == st.mp_state.mp_state, "round trip: MP state");
	ok(memcmp(&again.regs, &st.regs, sizeof(st.regs)) == 0 &&
	       again.regs.rax == 0x1122334455667788ULL,
	   "round trip: regs");
	ok(memcmp(&again.sregs, &st.sregs, sizeof(st.sregs)) == 0, "round trip: sregs");
	ok(again.xsave_size == st.xsave_size &&
	       (st.xsave_size ? memcmp(again.xsave, st.xsave, st.xsave_size) == 0
			      : memcmp(&again.fpu, &st.fpu, sizeof(st.fpu)) == 0),
	   "round trip: XSAVE (or FPU)");
	ok(again.has_xcrs == st.has_xcrs &&
	       (!st.has_xcrs || memcmp(&again.xcrs, &st.xcrs, sizeof(st.xcrs)) == 0),
	   "round trip: XCRs");
	ok(memcmp(&again.debugregs, &st.debugregs, sizeof(st.debugregs)) == 0 &&
	       again.debugregs.db[1] == 0x2000,
	   "round trip: debug registers");
	ok(memcmp(&again.lapic, &st.lapic, sizeof(st.lapic)) == 0 &&
	       lapic_reg(&again.lapic, APIC_TASKPRI) == 0x20,
	   "round trip: LAPIC");
	ok(msrs_same_but_tsc(&st, &again), "round trip: every MSR but the TSC");
	uint64_t tsc0 = msr_of(&st, MSR_IA32_TSC, &found);
	uint64_t tsc1 = msr_of(&again, MSR_IA32_TSC, &found);
	ok(found && tsc1 >= tsc0 && tsc1 - tsc0 < (uint64_t)st.tsc_khz * 1000 * 60,
	   "round trip: the TSC goes on from the saved value (no jump)");
	if (vm_a.tsc_deadline)
		ok(msr_of(&again, MSR_IA32_TSC_DEADLINE, &found) == deadline && found &&
		       deadline != 0,
		   "round trip: the TSC deadline stays armed (LAPIC first, deadline last)");
	else
		skip("TSC deadline: KVM_CAP_TSC_DEADLINE_TIMER not on this host");
	ok(again.ncpuid == st.ncpuid &&
	       memcmp(again.cpuid, st.cpuid, st.ncpuid * sizeof(st.cpuid[0])) == 0,
	   "round trip: CPUID");
	ok(memcmp(&again.events, &st.events, sizeof(st.events)) == 0, "round trip: vCPU events");
	is_int(again.tsc_khz, st.tsc_khz, "round trip: TSC frequency");
	vcpu_state_free(&st);
	vcpu_state_free(&again);
	kv_err_free(err);
	kvm_vcpu_free(&vm_a, &a);
	kvm_vcpu_free(&vm_b, &b);
}

int main(void)
{
	test_io_mmio();
	test_exits();
	test_pvm();
	test_power();
	test_state_round_trip();
	return tap_done();
}
