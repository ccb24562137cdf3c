# `make fuzz`: libFuzzer targets for the agent's parsers (clang). Not part of
# `make test`; `make fuzz-agent FUZZ_TIME=60` runs the frame fuzzer.
FUZZ_CC ?= clang
FUZZ_TIME ?= 30
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-omit-frame-pointer
# spec.c decodes with oci/'s readers and tables: liboci's sources come along.
AGENT_FUZZ_SRCS := agent/protocol.c agent/spec.c agent/seccomp.c $(wildcard oci/*.c) \
	$(wildcard lib/*.c)

$(BUILD)/fuzz/fuzz_agent_frame: tests/fuzz/fuzz_agent_frame.c $(AGENT_FUZZ_SRCS) agent/*.h oci/*.h \
		lib/kv.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_agent_frame.c $(AGENT_FUZZ_SRCS) \
		-lseccomp -lcap -lyajl

fuzz: $(BUILD)/fuzz/fuzz_agent_frame
fuzz-agent: $(BUILD)/fuzz/fuzz_agent_frame
	@mkdir -p $(BUILD)/fuzz/corpus-agent-frame
	$< -max_total_time=$(FUZZ_TIME) -rss_limit_mb=1024 $(BUILD)/fuzz/corpus-agent-frame \
		tests/fuzz/seeds/agent_frame
.PHONY: fuzz-agent
