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

$(GUEST)/test-init: tests/guest/test-init.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -D_GNU_SOURCE -Os -static -Wall -Wextra -Werror -o $@ $<

# newc cpio with /init only; test-init mounts devtmpfs itself.
$(GUEST)/test-initramfs.cpio: $(GUEST)/test-init
	@rm -rf $(GUEST)/initramfs && mkdir -p $(GUEST)/initramfs
	cp $< $(GUEST)/initramfs/init
	cd $(GUEST)/initramfs && echo init | cpio --quiet -o -H newc -R 0:0 > ../test-initramfs.cpio.tmp
	mv $(GUEST)/test-initramfs.cpio.tmp $@
