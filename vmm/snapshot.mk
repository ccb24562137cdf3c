# vmm/ snapshots: the fuzz target for state files (`make fuzz`, with
# vmm/fuzz.mk's compiler and flags). Not part of `make` or `make test`.
# Snapshot state files (vmm/snapshot_fmt.c): what a restore reads before KVM.
# Seeds: a valid synthetic state written by the unit test's builder
# (tests/unit/test_vmm_snapshot --write-seed DIR).
FUZZ_SNAPSHOT_SRCS := tests/fuzz/fuzz_snapshot.c vmm/snapshot_fmt.c vmm/serial.c vmm/ram.c \
	$(wildcard lib/*.c)
$(BUILD)/fuzz/fuzz_snapshot: $(FUZZ_SNAPSHOT_SRCS) vmm/snapshot.h vmm/serial.h vmm/ram.h lib/kv.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-format-nonliteral -o $@ $(FUZZ_SNAPSHOT_SRCS) -lyajl -lpthread
fuzz: $(BUILD)/fuzz/fuzz_snapshot

.PHONY: fuzz-snapshot-run
fuzz-snapshot-run: $(BUILD)/fuzz/fuzz_snapshot $(BUILD)/tests/unit/test_vmm_snapshot
	@mkdir -p $(BUILD)/fuzz/corpus/snapshot $(BUILD)/fuzz/seeds/snapshot
	$(BUILD)/tests/unit/test_vmm_snapshot --write-seed $(BUILD)/fuzz/seeds/snapshot > /dev/null
	$(BUILD)/fuzz/fuzz_snapshot $(FUZZ_OPTS) -max_len=131072 $(BUILD)/fuzz/corpus/snapshot \
		$(BUILD)/fuzz/seeds/snapshot
