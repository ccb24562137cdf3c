# vmm/: kvrun-vmm, the KVM microVM monitor. libvmm.a holds everything but
# main.c (the virtio device models in vmm/virtio/ included); vmm/vmm.h is its
# one public header.
MODULES += vmm
vmm_SRCS := $(sort $(filter-out vmm/main.c,$(wildcard vmm/*.c vmm/x86/*.c vmm/virtio/*.c)))
vmm_LIBS := vmm kv
$(eval $(call module_lib,vmm,$(vmm_SRCS)))

PROGRAMS += $(BUILD)/kvrun-vmm
INSTALL_BIN += $(BUILD)/kvrun-vmm

$(BUILD)/kvrun-vmm: $(BUILD)/obj/vmm/main.o $(BUILD)/libvmm.a $(BUILD)/libkv.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LIBS)
-include $(BUILD)/obj/vmm/main.d

# The seccomp filters are compiled at build time (vmm/seccomp_bpf.h): the
# tool links the rules (seccomp_rules.o) and libseccomp, the VMM neither
# (a shared library fewer to load at each start).
VMM_LIBS := $(filter-out -lseccomp,$(HOST_LIBS))
$(eval $(call seccomp_bpf,vmm,$(BUILD)/obj/vmm/seccomp_rules.o))

# A tiny 64-bit guest (no kernel needed) for fast integration tests of the
# boot path, the console, the exit device and the PVM fixups.
VMM_PAYLOAD := $(BUILD)/tests/vmm-payload.elf
all: $(VMM_PAYLOAD)
$(VMM_PAYLOAD): tests/guest/vmm-payload.S
	@mkdir -p $(@D)
	$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-Ttext=0x1000000 -Wl,-e,_start \
		-o $@ $<

# Benchmark tools (tests/bench/vmm.sh): the same probe and launcher for
# kvrun-vmm and QEMU.
VMM_BENCH_TOOLS := $(BUILD)/tests/bench/kvm-probe.so $(BUILD)/tests/bench/bench-run
all: $(VMM_BENCH_TOOLS)
$(BUILD)/tests/bench/kvm-probe.so: tests/bench/kvm-probe.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl
$(BUILD)/tests/bench/bench-run: tests/bench/bench-run.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

# The virtio-fs FUSE server behind the host's /dev/fuse (tests/fuse-devhost.c):
# fuse_host.bats drives it with the host kernel's FUSE client and overlayfs.
all: $(BUILD)/tests/fuse-devhost
$(BUILD)/tests/fuse-devhost: tests/fuse-devhost.c $(BUILD)/libvmm.a $(BUILD)/libkv.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(VMM_LIBS)
