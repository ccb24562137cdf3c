# runtime/: the runc-compatible CLI. Library libruntime.a (everything but
# main.c, so unit tests link it), program $(BUILD)/kvrun. The microVM
# backend in it drives kvrun-shim (shim/) and talks to the guest agent
# (libagentproto); libvmm through vmm/vmm.h (vmm_host_check for `kvrun
# check`, the command line of the VMs it starts, the VMM's API clients).
MODULES += runtime
# cmd_image.c is the CLI of the image store (libimage, -larchive). It is
# not in libruntime.a: kvrun-image is kvrun's CLI linked with it, and kvrun
# links cmd_image_exec.c, which runs kvrun-image for `kvrun image` (so that
# kvrun's every call does not load libarchive's 14 shared libraries).
RUNTIME_IMAGE_SRCS := runtime/cmd_image.c runtime/cmd_image_exec.c
runtime_SRCS := $(filter-out runtime/main.c $(RUNTIME_IMAGE_SRCS),$(wildcard runtime/*.c))
runtime_LIBS := runtime shim agent agentproto oci vmm image kv
$(BUILD)/tests/unit/test_runtime $(BUILD)/tests/unit/test_runtime_%: HOST_LIBS += $(IMAGE_LDLIBS)
$(eval $(call module_lib,runtime,$(runtime_SRCS)))

# Where `make install` puts the guest kernel and image (runtime/vmconf.c).
$(BUILD)/obj/runtime/vmconf.o: ALL_CFLAGS += -DKVRUN_PREFIX='"$(PREFIX)"'
$(BUILD)/asan/runtime/vmconf.o: ASAN_CFLAGS += -DKVRUN_PREFIX='"$(PREFIX)"'

PROGRAMS += $(BUILD)/kvrun
INSTALL_BIN += $(BUILD)/kvrun

RUNTIME_LINK_LIBS := $(BUILD)/libruntime.a $(BUILD)/libshim.a $(BUILD)/libagent.a \
	$(BUILD)/libagentproto.a $(BUILD)/liboci.a $(BUILD)/libvmm.a
$(BUILD)/kvrun: $(BUILD)/obj/runtime/main.o $(BUILD)/obj/runtime/cmd_image_exec.o \
		$(RUNTIME_LINK_LIBS) $(BUILD)/libkv.a
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)

PROGRAMS += $(BUILD)/kvrun-image
INSTALL_BIN += $(BUILD)/kvrun-image
$(BUILD)/kvrun-image: $(BUILD)/obj/runtime/main.o $(BUILD)/obj/runtime/cmd_image.o \
		$(RUNTIME_LINK_LIBS) $(BUILD)/libimage.a $(BUILD)/libkv.a
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS) $(IMAGE_LDLIBS)
-include $(BUILD)/obj/runtime/main.d $(BUILD)/obj/runtime/cmd_image.d \
	$(BUILD)/obj/runtime/cmd_image_exec.d

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
