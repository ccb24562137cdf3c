# `make fuzz`: libFuzzer targets (clang), not part of `make test`.
# Run one (new inputs go to the first, scratch, directory):
#   mkdir -p build/fuzz/corpus && build/fuzz/fuzz_config -max_total_time=60 build/fuzz/corpus tests/fuzz/corpus/config
FUZZ_CC ?= clang
OCI_FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -O1 $(WARN) -fno-strict-aliasing \
	-fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	-Wno-format-nonliteral # lib/ has vasprintf wrappers without format(printf, n, 0)
# Spelled out: this file is read before module.mk sets oci_SRCS.
FUZZ_OCI_SRCS := $(wildcard oci/*.c lib/*.c)

$(BUILD)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_OCI_SRCS) oci/oci.h oci/internal.h lib/kv.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(OCI_FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_config.c $(FUZZ_OCI_SRCS) -lyajl

fuzz: $(BUILD)/fuzz/fuzz_config
