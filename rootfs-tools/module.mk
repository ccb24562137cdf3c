# rootfs-tools/: the guest kernel (config fragment, patches, cached build)
# and the test initramfs used by the VMM tests.

GUEST := $(BUILD)/guest

.PHONY: guest guest-kernel
all: guest
guest: guest-kernel $(GUEST)/test-initramfs.cpio

# Always asks the script: a cached kernel is a copy, a changed fragment or
# patch gives a new cache key and a rebuild.
guest-kernel:
	@KVRUN_CACHE=$(KVRUN_CACHE) rootfs-tools/guest/build-kernel $(GUEST)

# PID 1 of the test initramfs: test-init.c (boot, results, power-off) and
# one file per group of checks.
TEST_INIT_SRCS := tests/guest/test-init.c tests/guest/test-init-devices.c \
	tests/guest/test-init-vm.c tests/guest/test-init-fs.c tests/guest/test-init-live.c
$(GUEST)/test-init: $(TEST_INIT_SRCS) tests/guest/test-init.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -D_GNU_SOURCE -Os -static -Wall -Wextra -Werror -o $@ $(TEST_INIT_SRCS)

# newc cpio with /init only; test-init mounts devtmpfs itself.
$(GUEST)/test-initramfs.cpio: $(GUEST)/test-init
	@rm -rf $(GUEST)/initramfs && mkdir -p $(GUEST)/initramfs
	cp $< $(GUEST)/initramfs/init
	cd $(GUEST)/initramfs && echo init | cpio --quiet -o -H newc -R 0:0 > ../test-initramfs.cpio.tmp
	mv $(GUEST)/test-initramfs.cpio.tmp $@

# The image store library, its unit tests and its fuzz target.
include rootfs-tools/image/module.mk rootfs-tools/image/fuzz.mk
