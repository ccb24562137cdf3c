# shim/: kvrun-shim, one host process per guest process (container init or
# exec): starts or joins the VM, relays stdio, forwards signals, exits with
# the guest process's status. libshim.a holds everything but main.c; kvrun
# links it for the handshake helpers in shim/shim.h.
# libvmm: the VMM's API client (a cold boot's snapshot as a template).
MODULES += shim
shim_SRCS := $(filter-out shim/main.c,$(wildcard shim/*.c))
shim_LIBS := shim agentproto vmm kv
$(eval $(call module_lib,shim,$(shim_SRCS)))

PROGRAMS += $(BUILD)/kvrun-shim
INSTALL_BIN += $(BUILD)/kvrun-shim

# The committed shim's seccomp filter is compiled at build time, as the
# VMM's (vmm/module.mk): the tool links the rules (seccomp_rules.o, in
# libshim.a for the unit tests) and libseccomp, the shim neither (one
# seccomp(2) call to load it, one shared library fewer to load at each
# start). SHIM_SECCOMP_ACTION=SCMP_ACT_LOG logs misses instead.
SHIM_LIBS := $(filter-out -lseccomp,$(HOST_LIBS))
$(BUILD)/obj/shim/seccomp_rules.o: ALL_CFLAGS += \
	$(if $(SHIM_SECCOMP_ACTION),-DSHIM_SECCOMP_ACTION=$(SHIM_SECCOMP_ACTION))
$(eval $(call seccomp_bpf,shim,$(BUILD)/obj/shim/seccomp_rules.o $(BUILD)/obj/vmm/seccomp_rules.o))

$(BUILD)/kvrun-shim: $(BUILD)/obj/shim/main.o $(BUILD)/libshim.a $(BUILD)/libagentproto.a \
		$(BUILD)/libvmm.a $(BUILD)/libkv.a
	$(CC) $(LDFLAGS) -o $@ $^ $(SHIM_LIBS)
-include $(BUILD)/obj/shim/main.d
