# rootfs-tools/image/: the OCI image store (libimage.a): import through
# libarchive, one erofs image per layer, ls/rm/prune. `kvrun image` is its
# CLI (runtime/cmd_image.c, in kvrun-image, which kvrun execs for it):
# -larchive goes to kvrun-image and the unit tests that link libruntime or
# libimage, no other program.
MODULES += image
image_SRCS := $(wildcard rootfs-tools/image/*.c)
image_LIBS := image kv
$(eval $(call module_lib,image,$(image_SRCS)))

IMAGE_LDLIBS := -larchive
$(BUILD)/tests/unit/test_image: HOST_LIBS += $(IMAGE_LDLIBS)
