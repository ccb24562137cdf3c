# Agent test tooling: the agent-client driver and the busybox rootfs fixture
# (built from Debian's busybox-static, never downloaded).
PROGRAMS += $(BUILD)/tests/agent-client
$(BUILD)/tests/agent-client: tests/agent-client.c $(BUILD)/libagentproto.a $(BUILD)/libkv.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libagentproto.a $(BUILD)/libkv.a $(HOST_LIBS)
-include $(BUILD)/tests/agent-client.d

BUSYBOX ?= /bin/busybox
AGENT_FIXTURE := $(BUILD)/fixtures/busybox-rootfs/.done
$(AGENT_FIXTURE): $(BUSYBOX)
	rm -rf $(@D) && mkdir -p $(@D)/bin $(@D)/sbin $(@D)/usr/bin $(@D)/usr/sbin
	cp $(BUSYBOX) $(@D)/bin/busybox
	chroot $(@D) /bin/busybox --install -s 2>/dev/null || \
		for a in $$($(BUSYBOX) --list); do ln -sf /bin/busybox $(@D)/bin/$$a; done
	mkdir -p $(@D)/proc $(@D)/sys $(@D)/dev $(@D)/tmp $(@D)/etc $(@D)/root $(@D)/mnt $(@D)/run
	echo 'root:x:0:0:root:/root:/bin/sh' > $(@D)/etc/passwd
	echo 'root:x:0:' > $(@D)/etc/group
	touch $@
fixtures: $(AGENT_FIXTURE)
all: $(AGENT_FIXTURE)
.PHONY: fixtures
