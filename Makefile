# kvrun — top-level build. Each directory describes itself in module.mk;
# this file holds the shared rules. See README.md for the targets.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= gcc
# The guest kernel and its cache (keyed by a hash of version, config, patches).
KVRUN_CACHE ?= /var/cache/kvrun

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g $(WARN) -fno-strict-aliasing
CFLAGS ?= -O2
ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS) -MMD -MP
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined -MMD -MP
ASAN_LDFLAGS := -fsanitize=address,undefined

# Libraries every host program may link.
HOST_LIBS := -lseccomp -lcap -lyajl -lmnl -lpthread

PROGRAMS :=
STATIC_PROGRAMS :=
UNIT_TESTS :=
MODULES :=
INSTALL_BIN :=

.PHONY: all clean test unit integration integration-nested bench fmt fmt-check install deps guest demo fuzz
all:

# module_lib(name, sources): builds $(BUILD)/lib<name>.a and an ASan twin
# $(BUILD)/asan/lib<name>.a used by the unit tests.
define module_lib
$(1)_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$(2))
$(1)_ASAN_OBJS := $$(patsubst %.c,$(BUILD)/asan/%.o,$(2))
$(BUILD)/lib$(1).a: $$($(1)_OBJS)
	@mkdir -p $$(@D)
	$$(AR) rcs $$@ $$^
$(BUILD)/asan/lib$(1).a: $$($(1)_ASAN_OBJS)
	@mkdir -p $$(@D)
	$$(AR) rcs $$@ $$^
-include $$($(1)_OBJS:.o=.d) $$($(1)_ASAN_OBJS:.o=.d)
endef

# unit_test(name, libs-in-link-order): tests/unit/test_<name>.c, built with
# ASan+UBSan against the ASan twins of the named libraries.
define unit_test
UNIT_TESTS += $(BUILD)/tests/unit/test_$(1)
$(BUILD)/tests/unit/test_$(1): tests/unit/test_$(1).c $$(foreach l,$(2),$(BUILD)/asan/lib$$(l).a)
	@mkdir -p $$(@D)
	$$(CC) $$(ASAN_CFLAGS) -Itests/unit -o $$@ $$< $$(foreach l,$(2),$(BUILD)/asan/lib$$(l).a) \
		$$(ASAN_LDFLAGS) $$(HOST_LIBS)
-include $(BUILD)/tests/unit/test_$(1).d
endef

# A module's seccomp programs, compiled at build time from its rules by its
# tool $(1)/tools/seccomp_gen.c (linked with $(2), the rules' objects, and
# libseccomp), written as C to $(BUILD)/gen/$(1)/seccomp_bpf.c and put in
# lib$(1).a: the program itself needs no libseccomp (vmm/, shim/).
define seccomp_bpf
$(BUILD)/tools/$(1)-seccomp-gen: $(1)/tools/seccomp_gen.c $(2) $(BUILD)/libkv.a
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(HOST_LIBS)
$(BUILD)/gen/$(1)/seccomp_bpf.c: $(BUILD)/tools/$(1)-seccomp-gen
	@mkdir -p $$(@D)
	$$< > $$@.tmp && mv $$@.tmp $$@
$(BUILD)/obj/gen/$(1)/seccomp_bpf.o: $(BUILD)/gen/$(1)/seccomp_bpf.c $(1)/seccomp_bpf.h
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) -c -o $$@ $$<
$(BUILD)/asan/gen/$(1)/seccomp_bpf.o: $(BUILD)/gen/$(1)/seccomp_bpf.c $(1)/seccomp_bpf.h
	@mkdir -p $$(@D)
	$$(CC) $$(ASAN_CFLAGS) -c -o $$@ $$<
$(BUILD)/lib$(1).a: $(BUILD)/obj/gen/$(1)/seccomp_bpf.o
$(BUILD)/asan/lib$(1).a: $(BUILD)/asan/gen/$(1)/seccomp_bpf.o
-include $(BUILD)/tools/$(1)-seccomp-gen.d
endef

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

# Each directory's *.mk files (lib first: others link it).
include lib/module.mk
include $(sort $(filter-out lib/module.mk,$(wildcard oci/*.mk vmm/*.mk agent/*.mk shim/*.mk \
	runtime/*.mk rootfs-tools/*.mk tests/*.mk)))

# A module.mk adds its name to MODULES and sets <name>_LIBS (link order, the
# module's own library first). Every tests/unit/test_<name>.c and
# tests/unit/test_<name>_*.c then becomes a unit test linked against those.
$(foreach m,$(MODULES),$(foreach t,$(wildcard tests/unit/test_$(m).c tests/unit/test_$(m)_*.c),\
	$(eval $(call unit_test,$(patsubst tests/unit/test_%.c,%,$(t)),$($(m)_LIBS)))))

all: $(PROGRAMS) $(STATIC_PROGRAMS)

# ------------------------------------------------------------------ tests
# `make test`: unit tests (TAP, ASan+UBSan), then the bats integration
# suite; tests/tap-summary prints "N passed, N failed, N skipped" and fails
# when anything failed. Skips always carry their reason.
test: all $(UNIT_TESTS)
	@rm -f $(BUILD)/test.tap
	@tests/run-unit $(UNIT_TESTS) | tee -a $(BUILD)/test.tap
	@tests/run-integration | tee -a $(BUILD)/test.tap
	@tests/tap-summary $(BUILD)/test.tap

unit: $(UNIT_TESTS)
	@tests/run-unit $(UNIT_TESTS) | tee $(BUILD)/unit.tap
	@tests/tap-summary $(BUILD)/unit.tap

integration: all
	@tests/run-integration | tee $(BUILD)/integration.tap
	@tests/tap-summary $(BUILD)/integration.tap

# The same suite where this host has no /dev/kvm: in a Debian kernel under
# QEMU's software emulation with AMD-V emulated (tools/nested-kvm, README).
integration-nested: all fixtures
	@tools/nested-kvm -- tests/run-integration | tee $(BUILD)/integration.tap
	@tests/tap-summary $(BUILD)/integration.tap

bench: all fixtures
	@tests/bench/run

# The main job: a busybox container (Debian's busybox-static, packed by
# `make fixtures`) run with kvrun in a microVM, printing what proves it.
demo: all fixtures
	@tools/demo $(BUILD)

# ------------------------------------------------------------------ format
FMT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
fmt:
	clang-format -i $(FMT_SRCS)
fmt-check:
	@out=$$(for f in $(FMT_SRCS); do clang-format --dry-run -Werror $$f 2>&1 >/dev/null || echo $$f; done); \
	if [ -n "$$out" ]; then echo "not formatted (run make fmt):"; echo "$$out"; exit 1; fi; \
	echo "fmt-check: ok"

# ----------------------------------------------------------------- install
# kvrun finds the guest kernel and image in $(PREFIX)/share/kvrun (README:
# Configuration). The image is built as root only (device nodes).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/kvrun
	for p in $(INSTALL_BIN); do install -m 0755 $$p $(DESTDIR)$(PREFIX)/bin/; done
	install -m 0644 $(BUILD)/guest/vmlinux $(BUILD)/guest/rootfs.erofs $(DESTDIR)$(PREFIX)/share/kvrun/

# -------------------------------------------------------------------- deps
deps:
	tools/install-deps

clean:
	rm -rf $(BUILD)
