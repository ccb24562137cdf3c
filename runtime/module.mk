# runtime/: the runc-compatible CLI. Library libruntime.a (everything but
# main.c, so unit tests link it), program $(BUILD)/kvrun. The microVM
# backend in it drives kvrun-shim (shim/) and talks to the guest agent
# (libagentproto); libvmm through vmm/vmm.h (vmm_host_check for `kvrun
# check`, the command line of the VMs it starts, the VMM's API clients).
MODULES += runtime
# cmd_image.c is the CLI of the image store (libimage, -larchive): in
# libruntime.a like every command (cli.c's table names it), so kvrun and
# the runtime's unit tests link libarchive; no other program does.
runtime_SRCS := $(filter-out runtime/main.c,$(wildcard runtime/*.c))
runtime_LIBS := runtime shim agent agentproto oci vmm image kv
$(BUILD)/tests/unit/test_runtime $(BUILD)/tests/unit/test_runtime_%: HOST_LIBS += $(IMAGE_LDLIBS)
$(eval $(call module_lib,runtime,$(runtime_SRCS)))

# Where `make install` puts the guest kernel and image (runtime/vmconf.c).
$(BUILD)/obj/runtime/vmconf.o: ALL_CFLAGS += -DKVRUN_PREFIX='"$(PREFIX)"'
$(BUILD)/asan/runtime/vmconf.o: ASAN_CFLAGS += -DKVRUN_PREFIX='"$(PREFIX)"'

PROGRAMS += $(BUILD)/kvrun
INSTALL_BIN += $(BUILD)/kvrun

$(BUILD)/kvrun: $(BUILD)/obj/runtime/main.o $(BUILD)/libruntime.a \
		$(BUILD)/libshim.a $(BUILD)/libagent.a $(BUILD)/libagentproto.a $(BUILD)/liboci.a $(BUILD)/libvmm.a \
		$(BUILD)/libimage.a $(BUILD)/libkv.a
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS) $(IMAGE_LDLIBS)
-include $(BUILD)/obj/runtime/main.d

# The bundle fixture for the integration tests: a busybox root filesystem
# built from the host's static busybox (Debian busybox-static). Links are
# made to /bin/busybox inside the rootfs (`busybox --install -s DIR` would
# point them at the host path of the binary).
FIXTURE_ROOTFS := $(BUILD)/fixtures/busybox-bundle-rootfs
BUSYBOX ?= /bin/busybox
.PHONY: fixtures
fixtures: $(FIXTURE_ROOTFS)/.done
integration: fixtures
test: fixtures

$(FIXTURE_ROOTFS)/.done: $(wildcard $(BUSYBOX)) runtime/module.mk
	@if [ ! -x $(BUSYBOX) ]; then \
		echo "fixtures: no $(BUSYBOX) (apt-get install busybox-static): bundle tests will skip"; \
		exit 0; fi; \
	set -e; rm -rf $(FIXTURE_ROOTFS); mkdir -p $(FIXTURE_ROOTFS)/bin; \
	cp $(BUSYBOX) $(FIXTURE_ROOTFS)/bin/busybox; \
	cd $(FIXTURE_ROOTFS); for p in $$(./bin/busybox --list-full); do \
		mkdir -p "$$(dirname "$$p")"; [ -e "$$p" ] || ln -s /bin/busybox "$$p"; done; \
	mkdir -p proc sys dev tmp etc root; \
	printf 'root:x:0:0:root:/root:/bin/sh\n' > etc/passwd; \
	printf 'root:x:0:\n' > etc/group; \
	touch .done; echo "fixtures: $(FIXTURE_ROOTFS)"
