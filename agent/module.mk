# agent/: kvrun-agent (the guest's PID 1, static) and libagentproto (the
# protocol and host-side client, linked by the shim and the tests).
MODULES += agent
agent_LIBS := agent agentproto oci kv

agentproto_SRCS := agent/protocol.c agent/client.c agent/request.c
agent_SRCS := $(filter-out agent/main.c $(agentproto_SRCS),$(wildcard agent/*.c))
$(eval $(call module_lib,agentproto,$(agentproto_SRCS)))
$(eval $(call module_lib,agent,$(agent_SRCS)))

# Static: the guest OS image holds this one file and nothing else.
AGENT_STATIC_LIBS := -l:libseccomp.a -l:libcap.a -l:libyajl_s.a
STATIC_PROGRAMS += $(BUILD)/kvrun-agent
$(BUILD)/kvrun-agent: $(BUILD)/obj/agent/main.o $(BUILD)/libagent.a $(BUILD)/libagentproto.a \
		$(BUILD)/liboci.a $(BUILD)/libkv.a
	$(CC) -static -o $@ $(BUILD)/obj/agent/main.o $(BUILD)/libagent.a $(BUILD)/libagentproto.a \
		$(BUILD)/liboci.a $(BUILD)/libkv.a $(AGENT_STATIC_LIBS)
-include $(BUILD)/obj/agent/main.d

# Syscalls the agent makes from a create request to the container's first
# instruction (strace -f); each one is emulated guest kernel code on PVM.
agent-syscalls: $(BUILD)/kvrun-agent $(BUILD)/tests/agent-client $(AGENT_FIXTURE)
	tests/agent-syscalls $(BUILD)
.PHONY: agent-syscalls

# make bench: the seccomp filter's cost per syscall in BPF instructions
# (tests/bench/seccomp.sh), the agent's own filter code.
AGENT_BENCH_TOOL := $(BUILD)/tests/bench/seccomp-cost
all: $(AGENT_BENCH_TOOL)
$(AGENT_BENCH_TOOL): tests/bench/seccomp-cost.c $(BUILD)/libagent.a $(BUILD)/libagentproto.a \
		$(BUILD)/liboci.a $(BUILD)/libkv.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $< $(BUILD)/libagent.a $(BUILD)/libagentproto.a \
		$(BUILD)/liboci.a $(BUILD)/libkv.a $(HOST_LIBS)
