# oci/: config.json parsing and validation, the agent subset serializer,
# state.json. Library liboci.a, public header oci/oci.h.
MODULES += oci
oci_SRCS := $(wildcard oci/*.c)
oci_LIBS := oci kv
$(eval $(call module_lib,oci,$(oci_SRCS)))
