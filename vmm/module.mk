# vmm/: kvrun-vmm, the KVM microVM monitor (library + thin main).
MODULES += vmm
vmm_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c vmm/x86/*.c vmm/virtio/*.c))
vmm_LIBS := vmm kv
$(eval $(call module_lib,vmm,$(vmm_SRCS)))
