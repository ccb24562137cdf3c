# `make fuzz`: libFuzzer targets (clang) for what a guest controls. Not part
# of `make` or `make test`. `make fuzz-run` runs each for FUZZ_SECONDS.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -O1 $(WARN) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_vq

.PHONY: fuzz-run
fuzz: $(FUZZ_TARGETS)

$(BUILD)/fuzz/fuzz_vq: tests/fuzz/fuzz_vq.c vmm/virtio/queue.c vmm/virtio/queue.h vmm/mem.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_vq.c vmm/virtio/queue.c

fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$(basename $$t); \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus/$$(basename $$t) || exit 1; \
	done
