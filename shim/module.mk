# shim/: kvrun-shim, one host process per guest process (container init or
# exec): starts or joins the VM, relays stdio, forwards signals, exits with
# the guest process's status. libshim.a holds everything but main.c; kvrun
# links it for the handshake helpers in shim/shim.h. libvmm: the VMM's API
# client (a cold boot's snapshot as a template).
MODULES += shim
shim_SRCS := $(filter-out shim/main.c,$(wildcard shim/*.c))
shim_LIBS := shim agentproto vmm kv
$(eval $(call module_lib,shim,$(shim_SRCS)))

PROGRAMS += $(BUILD)/kvrun-shim
INSTALL_BIN += $(BUILD)/kvrun-shim

$(BUILD)/kvrun-shim: $(BUILD)/obj/shim/main.o $(BUILD)/libshim.a $(BUILD)/libagentproto.a \
		$(BUILD)/libvmm.a $(BUILD)/libkv.a
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)
-include $(BUILD)/obj/shim/main.d
