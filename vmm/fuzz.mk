# `make fuzz`: libFuzzer targets (clang) for what a guest controls. Not part
# of `make` or `make test`. `make fuzz-virtio-run` runs the virtio ones for FUZZ_SECONDS each.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -O1 $(WARN) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_vq $(BUILD)/fuzz/fuzz_virtio

.PHONY: fuzz-virtio-run fuzz-fs-run
fuzz: $(FUZZ_TARGETS)

$(BUILD)/fuzz/fuzz_vq: tests/fuzz/fuzz_vq.c vmm/virtio/queue.c vmm/virtio/queue.h vmm/mem.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_vq.c vmm/virtio/queue.c

# The devices end to end, through the transport (lib/ for errors and logs;
# its v*printf wrappers trip clang -Wformat-nonliteral).
FUZZ_VIRTIO_SRCS := tests/fuzz/fuzz_virtio.c $(wildcard vmm/virtio/*.c) $(wildcard lib/*.c)
$(BUILD)/fuzz/fuzz_virtio: $(FUZZ_VIRTIO_SRCS) $(wildcard vmm/virtio/*.h) vmm/mem.h vmm/bus.h lib/kv.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-format-nonliteral -o $@ $(FUZZ_VIRTIO_SRCS) -lyajl -lpthread

# Each target for FUZZ_SECONDS over a corpus kept in $(BUILD)/fuzz/corpus/.
FUZZ_OPTS = -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1
fuzz-virtio-run: fuzz
	@mkdir -p $(BUILD)/fuzz/corpus/vq $(BUILD)/fuzz/corpus/virtio
	$(BUILD)/fuzz/fuzz_vq $(FUZZ_OPTS) $(BUILD)/fuzz/corpus/vq
	tests/fuzz/virtio_seeds.py $(BUILD)/fuzz/seeds/virtio
	$(BUILD)/fuzz/fuzz_virtio $(FUZZ_OPTS) -max_len=32768 $(BUILD)/fuzz/corpus/virtio \
		$(BUILD)/fuzz/seeds/virtio

# virtio-fs: FUSE requests against a scratch export (tests/fuzz/fuzz_fuse.c).
# `make fuzz-fs-run` runs it for FUZZ_SECONDS from generated seeds.
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_fuse
FUZZ_FUSE_SRCS := tests/fuzz/fuzz_fuse.c vmm/virtio/fs.c $(wildcard vmm/virtio/fuse_*.c) \
	vmm/virtio/mmio.c vmm/virtio/queue.c $(wildcard lib/*.c)
$(BUILD)/fuzz/fuzz_fuse: $(FUZZ_FUSE_SRCS) $(wildcard vmm/virtio/*.h) vmm/mem.h vmm/bus.h lib/kv.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-format-nonliteral -o $@ $(FUZZ_FUSE_SRCS) -lyajl -lpthread

fuzz-fs-run: $(BUILD)/fuzz/fuzz_fuse
	@mkdir -p $(BUILD)/fuzz/corpus/fuse
	tests/fuzz/fuse_seeds.py $(BUILD)/fuzz/seeds/fuse
	$(BUILD)/fuzz/fuzz_fuse $(FUZZ_OPTS) -handle_xfsz=0 -max_len=65536 \
		-artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus/fuse \
		$(BUILD)/fuzz/seeds/fuse
