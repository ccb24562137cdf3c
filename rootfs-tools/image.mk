# The guest OS image: a small read-only erofs holding the static kvrun-agent
# as /sbin/init and the mount points it uses. The VMM attaches it through
# virtio-pmem; the kernel mounts it as root (root=/dev/pmem0 ro rootflags=dax
# rootfstype=erofs), and every VM shares the host's page cache of this file.
# Uncompressed on purpose: DAX maps blocks straight from the host file, and
# decompression would run as (emulated) guest kernel code on PVM hosts. No
# inline tails (-Enoinline_data): the guest maps only whole-block files
# with DAX; a tail packed into metadata sends the file through its cache.
GUEST_IMAGE := $(BUILD)/guest/rootfs.erofs
GUEST_IMAGE_DIRS := proc sys dev run tmp mnt sbin etc root

$(GUEST_IMAGE): $(BUILD)/kvrun-agent rootfs-tools/image.mk
	@mkdir -p $(@D)
	rm -rf $(@D)/rootfs.staging && mkdir -p $(@D)/rootfs.staging
	cd $(@D)/rootfs.staging && mkdir -p $(GUEST_IMAGE_DIRS)
	install -m 0755 $(BUILD)/kvrun-agent $(@D)/rootfs.staging/sbin/init
	strip $(@D)/rootfs.staging/sbin/init
	# The console must exist before devtmpfs is mounted (init's stdio).
	mknod -m 0600 $(@D)/rootfs.staging/dev/console c 5 1
	mknod -m 0666 $(@D)/rootfs.staging/dev/null c 1 3
	echo 'root:x:0:0:root:/root:/sbin/nologin' > $(@D)/rootfs.staging/etc/passwd
	echo 'root:x:0:' > $(@D)/rootfs.staging/etc/group
	rm -f $@.tmp
	mkfs.erofs --quiet -Enoinline_data --all-root -T0 -U 6b767275-6e2d-6775-6573-742d696d6167 $@.tmp \
		$(@D)/rootfs.staging
	mv $@.tmp $@
	rm -rf $(@D)/rootfs.staging

guest-image: $(GUEST_IMAGE)
.PHONY: guest-image
# Part of `make` where it can be built (device nodes need root).
ifeq ($(shell id -u),0)
all: $(GUEST_IMAGE)
endif
