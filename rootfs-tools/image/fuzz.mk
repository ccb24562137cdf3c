# `make fuzz`: a libFuzzer target (clang) for the importer's own entry
# handling (tests/fuzz/fuzz_image_entry.c), not part of `make test`.
# `make fuzz-image-run` runs it for FUZZ_SECONDS (as root: it chroots into a
# private tmpfs) from generated seeds; corpus paths stay relative.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
IMAGE_FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -O1 $(WARN) -fno-strict-aliasing \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -Wno-format-nonliteral # lib/'s vasprintf wrappers
# Two targets over the importer's own code: fuzz_image_entry (its entry
# handling) and fuzz_image_user (the image config's User through the
# image's /etc/passwd and /etc/group, rootfs-tools/image/user.c: no root,
# no chroot, no seeds needed).
FUZZ_IMAGE_LIB_SRCS := $(wildcard rootfs-tools/image/*.c lib/*.c)

$(BUILD)/fuzz/fuzz_image_%: tests/fuzz/fuzz_image_%.c $(FUZZ_IMAGE_LIB_SRCS) \
		rootfs-tools/image/internal.h rootfs-tools/image/image.h lib/kv.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(IMAGE_FUZZ_CFLAGS) -o $@ $< $(FUZZ_IMAGE_LIB_SRCS) -larchive -lyajl

fuzz: $(BUILD)/fuzz/fuzz_image_entry $(BUILD)/fuzz/fuzz_image_user

.PHONY: fuzz-image-user-run
fuzz-image-user-run: $(BUILD)/fuzz/fuzz_image_user
	@mkdir -p $(BUILD)/fuzz/corpus/image-user
	$< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=8192 \
		-rss_limit_mb=1024 -artifact_prefix=$(BUILD)/fuzz/image-user- \
		$(BUILD)/fuzz/corpus/image-user

.PHONY: fuzz-image-run
fuzz-image-run: $(BUILD)/fuzz/fuzz_image_entry
	@mkdir -p $(BUILD)/fuzz/corpus/image
	tests/fuzz/image_seeds.py $(BUILD)/fuzz/seeds/image
	$< -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=16384 \
		-rss_limit_mb=1024 -artifact_prefix=$(BUILD)/fuzz/image- \
		$(BUILD)/fuzz/corpus/image $(BUILD)/fuzz/seeds/image
