/* SPDX-License-Identifier: Apache-2.0 */
/* vCPU setup, run loop, exit handling, and the state snapshots save and restore. */
#include "vmm/vcpu.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm/machine.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/pvm.h"
#include "vmm/x86/regs.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define X86_INSN_MAX	 15

static struct kv_ratelimit vcpu_unclaimed_rl = KV_RATELIMIT_INIT(5000, 10);

const char *vcpu_exit_reason_name(unsigned reason)
{
	static const char *const names[] = {
	    [KVM_EXIT_UNKNOWN] = "unknown",
	    [KVM_EXIT_EXCEPTION] = "exception",
	    [KVM_EXIT_IO] = "io",
	    [KVM_EXIT_HYPERCALL] = "hypercall",
	    [KVM_EXIT_DEBUG] = "debug",
	    [KVM_EXIT_HLT] = "hlt",
	    [KVM_EXIT_MMIO] = "mmio",
	    [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	    [KVM_EXIT_SHUTDOWN] = "shutdown",
	    [KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	    [KVM_EXIT_INTR] = "intr",
	    [KVM_EXIT_NMI] = "nmi",
	    [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	    [KVM_EXIT_SYSTEM_EVENT] = "system_event",
	    [KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	    [KVM_EXIT_X86_RDMSR] = "rdmsr",
	    [KVM_EXIT_X86_WRMSR] = "wrmsr",
	};
	if (reason < KV_ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "other";
}

/* ------------------------------------------------------------ exit handling */

static void vcpu_io_handle(struct kvm_run *run, size_t run_size, struct bus *pio,
			   struct vcpu_outcome *out)
{
	unsigned size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	if ((size != 1 && size != 2 && size != 4) || off > run_size ||
	    (uint64_t)size * count > run_size - off) {
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "bad I/O exit: port 0x%x size %u count %u",
			 run->io.port, size, count);
		return;
	}
	uint8_t *data = (uint8_t *)run + off;
	for (unsigned i = 0; i < count; i++, data += size) {
		bool hit = run->io.direction == KVM_EXIT_IO_OUT
			       ? bus_write(pio, run->io.port, data, size)
			       : bus_read(pio, run->io.port, data, size);
		if (!hit && kv_log_enabled(KV_LOG_DEBUG) && kv_ratelimit_ok(&vcpu_unclaimed_rl))
			kv_debug("vcpu: unclaimed port %s 0x%x size %u",
				 run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
				 run->io.port, size);
	}
}

static void vcpu_mmio_handle(struct kvm_run *run, struct bus *mmio, struct vcpu_outcome *out)
{
	unsigned len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "bad MMIO exit: length %u", len);
		return;
	}
	bool hit = run->mmio.is_write ? bus_write(mmio, run->mmio.phys_addr, run->mmio.data, len)
				      : bus_read(mmio, run->mmio.phys_addr, run->mmio.data, len);
	if (!hit && kv_ratelimit_ok(&vcpu_unclaimed_rl))
		kv_debug("vcpu: unclaimed MMIO %s 0x%llx len %u",
			 run->mmio.is_write ? "write" : "read",
			 (unsigned long long)run->mmio.phys_addr, len);
}

static void vcpu_system_event_handle(struct kvm_run *run, struct vcpu_outcome *out)
{
	switch (run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN: out->action = VCPU_POWEROFF; break;
	case KVM_SYSTEM_EVENT_RESET: out->action = VCPU_RESET; break;
	case KVM_SYSTEM_EVENT_CRASH:
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "guest crashed (KVM crash event)");
		break;
	default:
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "unexpected KVM system event %u",
			 run->system_event.type);
		break;
	}
}

void vcpu_exit_handle(struct kvm_run *run, size_t run_size, struct bus *pio, struct bus *mmio,
		      struct vcpu_outcome *out)
{
	out->action = VCPU_CONTINUE;
	out->msg[0] = '\0';
	switch (run->exit_reason) {
	case KVM_EXIT_IO: vcpu_io_handle(run, run_size, pio, out); break;
	case KVM_EXIT_MMIO: vcpu_mmio_handle(run, mmio, out); break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN: break;
	case KVM_EXIT_HLT: break; /* only without an in-kernel LAPIC */
	case KVM_EXIT_SHUTDOWN: out->action = VCPU_RESET; break;
	case KVM_EXIT_SYSTEM_EVENT: vcpu_system_event_handle(run, out); break;
	case KVM_EXIT_INTERNAL_ERROR:
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
			out->action = VCPU_EMULATION_ERROR;
			break;
		}
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "KVM internal error, suberror %u",
			 run->internal.suberror);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "KVM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		out->action = VCPU_FATAL;
		snprintf(out->msg, sizeof(out->msg), "unhandled KVM exit %u (%s)", run->exit_reason,
			 vcpu_exit_reason_name(run->exit_reason));
		break;
	}
}

unsigned vcpu_insn_bytes(const struct kvm_run *run, uint8_t *buf, unsigned max)
{
	if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR ||
	    run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION ||
	    run->emulation_failure.ndata < 3 ||
	    !(run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES))
		return 0;
	unsigned n = run->emulation_failure.insn_size;
	if (n > X86_INSN_MAX)
		n = X86_INSN_MAX;
	if (n > max)
		n = max;
	memcpy(buf, run->emulation_failure.insn_bytes, n);
	return n;
}

void vcpu_internal_error_format(const struct kvm_run *run, uint64_t rip, const uint8_t *insn,
				unsigned n, char *buf, size_t len)
{
	int w = snprintf(
	    buf, len, "KVM internal error (suberror %u%s) at RIP 0x%llx: ", run->internal.suberror,
	    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ", instruction not emulated"
								   : "",
	    (unsigned long long)rip);
	if (n == 0 && w > 0 && (size_t)w < len)
		snprintf(buf + w, len - w, "instruction bytes unknown");
	for (unsigned i = 0; i < n && w > 0 && (size_t)w < len; i++)
		w += snprintf(buf + w, len - w, "%s%02x", i ? " " : "bytes ", insn[i]);
}

/* -------------------------------------------------------------- setup */

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned index, struct kv_err **err)
{
	memset(v, 0, sizeof(*v));
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0)
		return kv_err_make(err, errno, "KVM_CREATE_VCPU %u", index);
	v->run_size = vm->run_size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return kv_err_make(err, errno, "vcpu %u: mmap kvm_run", index);
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd > 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static int vcpu_msrs_set(struct vcpu *v, struct kv_err **err)
{
	cleanup_free struct kvm_msrs *msrs =
	    kv_malloc0(sizeof(*msrs) + REGS_MSR_MAX * sizeof(struct kvm_msr_entry));
	msrs->nmsrs = regs_msrs_fill(msrs->entries);
	int r = ioctl(v->fd, KVM_SET_MSRS, msrs);
	if (r < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_MSRS", v->index);
	if ((unsigned)r < msrs->nmsrs)
		kv_warn("vcpu %u: KVM_SET_MSRS: MSR 0x%x refused, continuing", v->index,
			msrs->entries[r].index);
	return 0;
}

int vcpu_arch_setup(struct vcpu *v, struct vm *vm, unsigned ncpus, bool pvm, struct kv_err **err)
{
	cleanup_free struct kvm_cpuid2 *c = cpuid_supported_get(vm->kvm_fd, err);
	if (!c)
		return -1;
	struct cpuid_opts o = {.cpu = v->index, .ncpus = ncpus, .tsc_deadline = vm->tsc_deadline};
	cpuid_filter(c, &o);
	if (pvm)
		pvm_cpuid_filter(c);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_CPUID2", v->index);
	if (vcpu_msrs_set(v, err) < 0)
		return -1;
	struct kvm_fpu fpu;
	regs_fpu_fill(&fpu);
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_FPU", v->index);
	return 0;
}

int vcpu_boot_regs_set(struct vcpu *v, uint64_t entry, uint64_t zero_page, struct kv_err **err)
{
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_GET_SREGS", v->index);
	regs_sregs_fill(&sregs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_SREGS", v->index);
	struct kvm_regs regs;
	regs_regs_fill(&regs, entry, zero_page);
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_REGS", v->index);
	return 0;
}

/* -------------------------------------------------------------- running */

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signals_init(struct kv_err **err)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return kv_err_make(err, errno, "sigaction");
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->run || !v->thread_started)
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

/*
 * Complete the operation of the last exit (an I/O or MMIO read's data, the
 * RIP advance after an OUT) without running guest code: KVM does that on
 * the next KVM_RUN, before it looks at immediate_exit (api.rst, "kvm_run":
 * userspace should complete pending operations before saving state). A
 * parked vCPU's registers are then its real state, ready for a snapshot.
 */
void vcpu_settle(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	(void)ioctl(v->fd, KVM_RUN, 0);
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/* An instruction the emulator could not run: a known PVM fixup, or stop. */
/* The bytes at RIP from guest memory, when the exit did not carry them. */
static unsigned vcpu_insn_fetch(struct vcpu *v, uint64_t rip, uint8_t *buf, unsigned max)
{
	struct kvm_translation t = {.linear_address = rip};
	if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid)
		return 0;
	unsigned n = 4096 - (t.physical_address & 4095); /* stay within the page */
	if (n > max)
		n = max;
	const uint8_t *p = gm_ptr(&v->m->ram.gm, t.physical_address, n);
	if (!p)
		return 0;
	memcpy(buf, p, n);
	return n;
}

static bool vcpu_emulation_error_handle(struct vcpu *v)
{
	struct machine *m = v->m;
	uint8_t insn[X86_INSN_MAX];
	struct kvm_regs regs = {0};
	(void)ioctl(v->fd, KVM_GET_REGS, &regs);
	unsigned n = vcpu_insn_bytes(v->run, insn, sizeof(insn));
	if (n == 0)
		n = vcpu_insn_fetch(v, regs.rip, insn, sizeof(insn));
	if (m->pvm) {
		unsigned len;
		enum pvm_fixup f = pvm_fixup_classify(insn, n, &len);
		struct kv_err *err = NULL;
		if (f != PVM_FIXUP_NONE && pvm_fixup_apply(v->fd, f, len, &err) == 0) {
			v->fixups++;
			kv_debug("vcpu %u: PVM fixup %s at RIP 0x%llx", v->index, pvm_fixup_name(f),
				 (unsigned long long)regs.rip);
			return true;
		}
		if (err) {
			machine_stop(m, VMM_EXIT_ERROR, "vcpu %u: %s", v->index, err->msg);
			kv_err_free(err);
			return false;
		}
	}
	char msg[VCPU_MSG_MAX];
	vcpu_internal_error_format(v->run, regs.rip, insn, n, msg, sizeof(msg));
	machine_stop(m, VMM_EXIT_ERROR, "vcpu %u: %s", v->index, msg);
	return false;
}

static bool vcpu_outcome_apply(struct vcpu *v, const struct vcpu_outcome *o)
{
	switch (o->action) {
	case VCPU_CONTINUE: return true;
	case VCPU_RESET:
		machine_stop(v->m, VMM_EXIT_RESET, "guest reset (vcpu %u: %s)", v->index,
			     vcpu_exit_reason_name(v->run->exit_reason));
		return false;
	case VCPU_POWEROFF:
		machine_stop(v->m, VMM_EXIT_POWEROFF, "guest powered off (KVM system event)");
		return false;
	case VCPU_EMULATION_ERROR: return vcpu_emulation_error_handle(v);
	default: machine_stop(v->m, VMM_EXIT_ERROR, "vcpu %u: %s", v->index, o->msg); return false;
	}
}

uint64_t vcpu_exits_total(struct vcpu *v)
{
	uint64_t n = 0;
	for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++)
		n += __atomic_load_n(&v->exits[r], __ATOMIC_RELAXED);
	return n;
}

/*
 * A vCPU that can never run again: halted with interrupts off (Linux's halt
 * and power-off paths without a power-off method end there), or an AP never
 * started. Only NMI/INIT could wake it, and nothing in a kvrun VM sends those
 * once every vCPU is in this state.
 */
static bool vcpu_is_dead(struct vcpu *v)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return false;
	if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED)
		return true;
	return mp.mp_state == KVM_MP_STATE_HALTED && ioctl(v->fd, KVM_GET_REGS, &regs) == 0 &&
	       !(regs.rflags & X86_RFLAGS_IF);
}

/* Kicked by the idle probe (no exit for VCPU_PROBE_MS): see machine.c. */
static void vcpu_probe(struct vcpu *v)
{
	if (!__atomic_exchange_n(&v->probe_req, 0, __ATOMIC_SEQ_CST))
		return;
	if (v->m->pvm) {
		/* A VMCALL that never completes? */
		struct kv_err *err = NULL;
		int r = pvm_hang_probe(v->fd, &v->m->ram.gm, &err);
		if (r > 0) {
			v->fixups++;
			kv_debug("vcpu %u: PVM fixup: VMCALL completed with -ENOSYS", v->index);
			return;
		}
		if (r < 0) {
			kv_warn("vcpu %u: %s", v->index, err->msg);
			kv_err_free(err);
		}
	}
	__atomic_store_n(&v->dead, vcpu_is_dead(v), __ATOMIC_SEQ_CST);
	if (v->dead)
		machine_dead_check(v->m);
}

static void vcpu_loop(struct vcpu *v)
{
	struct machine *m = v->m;
	struct vcpu_outcome o;
	while (machine_vcpu_gate(m, v)) {
		if (v->index == 0 && atomic_load(&m->t_first_run_ns) == 0)
			atomic_store(&m->t_first_run_ns, kv_now_ns());
		int r = ioctl(v->fd, KVM_RUN, 0);
		if (r < 0) {
			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			if (errno == EINTR || errno == EAGAIN) {
				vcpu_probe(v);
				continue;
			}
			/* Where the guest was (EFAULT: an access KVM could not map
			 * to host memory, such as a DAX window page with no file
			 * page behind it). */
			int e = errno;
			struct kvm_regs regs = {0};
			(void)ioctl(v->fd, KVM_GET_REGS, &regs);
			machine_stop(m, VMM_EXIT_ERROR, "vcpu %u: KVM_RUN: %s (guest RIP 0x%llx)",
				     v->index, strerror(e), (unsigned long long)regs.rip);
			return;
		}
		__atomic_fetch_add(
		    &v->exits[v->run->exit_reason < VCPU_EXIT_REASONS ? v->run->exit_reason : 0], 1,
		    __ATOMIC_RELAXED);
		if (__atomic_load_n(&v->dead, __ATOMIC_RELAXED))
			__atomic_store_n(&v->dead, false, __ATOMIC_SEQ_CST);
		vcpu_exit_handle(v->run, v->run_size, &m->vm.pio, &m->vm.mmio, &o);
		if (!vcpu_outcome_apply(v, &o))
			return;
	}
}

void *vcpu_thread_main(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	struct kv_err *err = NULL;
	if (machine_vcpu_confine(v->m, &err) < 0) {
		machine_stop(v->m, VMM_EXIT_ERROR, "vcpu %u: %s", v->index, err->msg);
		kv_err_free(err);
		return NULL;
	}
	vcpu_loop(v);
	return NULL;
}

/* ------------------------------------------------------------ snapshots */

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

uint32_t vcpu_xsave_size(struct vm *vm)
{
	int xs2 = vm_check_extension(vm, KVM_CAP_XSAVE2);
	if (xs2 >= (int)sizeof(struct kvm_xsave))
		return xs2;
	return vm_check_extension(vm, KVM_CAP_XSAVE) > 0 ? sizeof(struct kvm_xsave) : 0;
}

void vcpu_state_free(struct vcpu_state *st)
{
	free(st->xsave);
	free(st->msrs);
	free(st->cpuid);
	st->xsave = NULL;
	st->msrs = NULL;
	st->cpuid = NULL;
}

static int vcpu_ioctl(struct vcpu *v, unsigned long req, const char *name, const void *arg,
		      struct kv_err **err)
{
	if (ioctl(v->fd, req, arg) < 0)
		return kv_err_make(err, errno, "vcpu %u: %s", v->index, name);
	return 0;
}

/* KVM_GET_MSR_INDEX_LIST: every MSR KVM saves and emulates (malloc'd). */
static struct kvm_msr_list *vcpu_msr_index_list(struct vm *vm, struct kv_err **err)
{
	struct kvm_msr_list *l =
	    kv_malloc0(sizeof(*l) + VCPU_STATE_MAX_MSRS * sizeof(l->indices[0]));
	l->nmsrs = VCPU_STATE_MAX_MSRS;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		kv_err_make(err, errno, "KVM_GET_MSR_INDEX_LIST");
		free(l);
		return NULL;
	}
	return l;
}

/*
 * Read the MSRs of the list that this vCPU has into st->msrs (KVM_GET_MSRS
 * stops at the first it cannot read: that one is left out, and the rest
 * read again).
 */
static int vcpu_msrs_get(struct vcpu *v, const struct kvm_msr_list *l, struct vcpu_state *st,
			 struct kv_err **err)
{
	cleanup_free struct kvm_msrs *msrs =
	    kv_malloc0(sizeof(*msrs) + VCPU_STATE_MAX_MSRS * sizeof(struct kvm_msr_entry));
	struct kvm_msr_entry *e = msrs->entries;
	unsigned n = 0;
	for (unsigned i = 0; i < l->nmsrs && i < VCPU_STATE_MAX_MSRS; i++)
		e[n++].index = l->indices[i];
	st->msrs = kv_malloc0(VCPU_STATE_MAX_MSRS * sizeof(*st->msrs));
	st->nmsrs = 0;
	unsigned done = 0;
	while (done < n) {
		memmove(&e[0], &e[done], (n - done) * sizeof(e[0]));
		n -= done;
		msrs->nmsrs = n;
		int r = ioctl(v->fd, KVM_GET_MSRS, msrs);
		if (r < 0)
			return kv_err_make(err, errno, "vcpu %u: KVM_GET_MSRS", v->index);
		for (int i = 0; i < r; i++)
			st->msrs[st->nmsrs++] = e[i];
		done = r;
		if ((unsigned)r < n) {
			kv_debug("snapshot: vcpu %u: MSR 0x%x not readable, left out", v->index,
				 e[r].index);
			done++;
		}
	}
	return 0;
}

static int vcpu_msrs_cpuid_save(struct vcpu *v, struct vm *vm, struct vcpu_state *st,
				struct kv_err **err)
{
	cleanup_free struct kvm_msr_list *l = vcpu_msr_index_list(vm, err);
	if (!l || vcpu_msrs_get(v, l, st, err) < 0)
		return -1;
	cleanup_free struct kvm_cpuid2 *c =
	    kv_malloc0(sizeof(*c) + VCPU_STATE_MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
	c->nent = VCPU_STATE_MAX_CPUID;
	if (ioctl(v->fd, KVM_GET_CPUID2, c) < 0 || c->nent == 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_GET_CPUID2", v->index);
	st->ncpuid = c->nent;
	st->cpuid = kv_malloc0(c->nent * sizeof(c->entries[0]));
	memcpy(st->cpuid, c->entries, c->nent * sizeof(c->entries[0]));
	return 0;
}

/*
 * The reads, in an order that matters for the first and the last (the
 * snapshot's sections follow it): MP state first, because reading it makes
 * KVM process pending APIC events (kvm_apic_accept_events: an INIT or SIPI
 * changes the registers and the LAPIC), so everything read after it is what
 * the vCPU will run with. The vCPU events last: they are the pending
 * exception, interrupt, NMI and SMI as KVM holds them after the reads before.
 */
int vcpu_save(struct vcpu *v, struct vm *vm, struct vcpu_state *st, struct kv_err **err)
{
	memset(st, 0, sizeof(*st));
	st->xsave_size = vcpu_xsave_size(vm);
	st->has_xcrs = vm_check_extension(vm, KVM_CAP_XCRS) > 0;
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_GET_TSC_KHZ", v->index);
	st->tsc_khz = khz;
	if (vcpu_ioctl(v, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", &st->mp_state, err) < 0 ||
	    vcpu_ioctl(v, KVM_GET_REGS, "KVM_GET_REGS", &st->regs, err) < 0 ||
	    vcpu_ioctl(v, KVM_GET_SREGS, "KVM_GET_SREGS", &st->sregs, err) < 0)
		return -1;
	if (st->xsave_size) {
		st->xsave = kv_malloc0(st->xsave_size);
		/* KVM_GET_XSAVE copies 4096 bytes; KVM_GET_XSAVE2 the host's whole size. */
		unsigned long req =
		    st->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
		if (vcpu_ioctl(v, req, "KVM_GET_XSAVE", st->xsave, err) < 0)
			return -1;
	} else if (vcpu_ioctl(v, KVM_GET_FPU, "KVM_GET_FPU", &st->fpu, err) < 0) {
		return -1;
	}
	if (st->has_xcrs && vcpu_ioctl(v, KVM_GET_XCRS, "KVM_GET_XCRS", &st->xcrs, err) < 0)
		return -1;
	if (vcpu_ioctl(v, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", &st->debugregs, err) < 0 ||
	    vcpu_ioctl(v, KVM_GET_LAPIC, "KVM_GET_LAPIC", &st->lapic, err) < 0 ||
	    vcpu_msrs_cpuid_save(v, vm, st, err) < 0 ||
	    vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", &st->events, err) < 0)
		return -1;
	return 0;
}

static int vcpu_cpuid_restore(struct vcpu *v, const struct vcpu_state *st, struct kv_err **err)
{
	size_t len = st->ncpuid * sizeof(struct kvm_cpuid_entry2);
	cleanup_free struct kvm_cpuid2 *c = kv_malloc0(sizeof(*c) + len);
	c->nent = st->ncpuid;
	memcpy(c->entries, st->cpuid, len);
	return vcpu_ioctl(v, KVM_SET_CPUID2, "KVM_SET_CPUID2", c, err);
}

/* The frequency the guest calibrated against: KVM scales the TSC if this host's differs. */
static int vcpu_tsc_khz_restore(struct vcpu *v, uint32_t khz, struct kv_err **err)
{
	int cur = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (cur == (int)khz)
		return 0;
	if (ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		return kv_err_make(err, errno,
				   "TSC frequency: the snapshot's guest runs at %u kHz, this host "
				   "at %d kHz and KVM cannot scale it",
				   khz, cur);
	return 0;
}

/* Which of three passes writes an MSR: the TSC, then the rest, then the deadline. */
static unsigned vcpu_msr_pass(uint32_t index)
{
	return index == MSR_IA32_TSC ? 0 : index == MSR_IA32_TSC_DEADLINE ? 2 : 1;
}

/*
 * One KVM_SET_MSRS, the TSC first and the TSC deadline last whatever order
 * st has: the deadline is an absolute TSC value, armed against the TSC
 * written before it (and only in the LAPIC's TSC-deadline mode, restored
 * before the MSRs).
 */
static int vcpu_msrs_restore(struct vcpu *v, const struct vcpu_state *st, struct kv_err **err)
{
	unsigned n = st->nmsrs, k = 0;
	cleanup_free struct kvm_msrs *msrs =
	    kv_malloc0(sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
	for (unsigned pass = 0; pass < 3; pass++)
		for (unsigned i = 0; i < n; i++)
			if (vcpu_msr_pass(st->msrs[i].index) == pass)
				msrs->entries[k++] = st->msrs[i];
	msrs->nmsrs = k;
	int r = ioctl(v->fd, KVM_SET_MSRS, msrs);
	if (r < 0)
		return kv_err_make(err, errno, "vcpu %u: KVM_SET_MSRS", v->index);
	if ((unsigned)r < k)
		return kv_err_plain(err, EINVAL, "vcpu %u: KVM_SET_MSRS refused MSR 0x%x", v->index,
				    msrs->entries[r].index);
	return 0;
}

/*
 * The writes, in the order KVM needs:
 *  1. CPUID first: KVM judges what follows by it (the CR4 bits
 *     KVM_SET_SREGS accepts, the XSAVE features and XCR0 bits it takes),
 *     and state set before it may be recomputed when it is set.
 *  2. The TSC frequency before the TSC MSR: KVM turns a TSC value into an
 *     offset at the vCPU's rate.
 *  3. MP state early, before the events: those can put the vCPU back in
 *     SMM, where KVM refuses an INIT- or SIPI-received MP state (INIT is
 *     latched there).
 *  4. Regs, then sregs (control registers, EFER, the APIC base and any
 *     interrupt pending in their bitmap), then XSAVE (or the FPU), XCRs and
 *     debug registers: no dependency among these is known; the order is
 *     the one restores have always used.
 *  5. The LAPIC after sregs: its ID register is read by the APIC base's
 *     mode (xAPIC or x2APIC) that sregs set; and before the MSRs, whose TSC
 *     deadline only arms in the LAPIC's TSC-deadline mode.
 *  6. MSRs (vcpu_msrs_restore: the TSC first, the deadline last).
 *  7. The vCPU events last: KVM_SET_REGS drops a pending exception and
 *     KVM_SET_SREGS may queue an interrupt; what is pending is the events'.
 *  8. KVM_KVMCLOCK_CTRL once the MSRs gave the guest its kvmclock page
 *     back: it tells the guest it was stopped (no soft-lockup reports);
 *     EINVAL for a guest without kvmclock, ignored.
 */
int vcpu_restore(struct vcpu *v, const struct vcpu_state *st, struct kv_err **err)
{
	if (vcpu_cpuid_restore(v, st, err) < 0 || vcpu_tsc_khz_restore(v, st->tsc_khz, err) < 0 ||
	    vcpu_ioctl(v, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", &st->mp_state, err) < 0 ||
	    vcpu_ioctl(v, KVM_SET_REGS, "KVM_SET_REGS", &st->regs, err) < 0 ||
	    vcpu_ioctl(v, KVM_SET_SREGS, "KVM_SET_SREGS", &st->sregs, err) < 0)
		return -1;
	if (st->xsave_size ? vcpu_ioctl(v, KVM_SET_XSAVE, "KVM_SET_XSAVE", st->xsave, err) < 0
			   : vcpu_ioctl(v, KVM_SET_FPU, "KVM_SET_FPU", &st->fpu, err) < 0)
		return -1;
	if (st->has_xcrs && vcpu_ioctl(v, KVM_SET_XCRS, "KVM_SET_XCRS", &st->xcrs, err) < 0)
		return -1;
	if (vcpu_ioctl(v, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", &st->debugregs, err) < 0 ||
	    vcpu_ioctl(v, KVM_SET_LAPIC, "KVM_SET_LAPIC", &st->lapic, err) < 0 ||
	    vcpu_msrs_restore(v, st, err) < 0 ||
	    vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &st->events, err) < 0)
		return -1;
	(void)ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0);
	return 0;
}
