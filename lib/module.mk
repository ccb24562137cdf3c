# lib/: errors, cleanup helpers, logging, JSON writer.
MODULES += lib
lib_SRCS := $(wildcard lib/*.c)
lib_LIBS := kv
$(eval $(call module_lib,kv,$(lib_SRCS)))
