# The CRI client test's pod sandbox program (tests/integration/clients/
# cri.bats): static, so that the sandbox ("pause") image is this one file.
CRI_PAUSE := $(BUILD)/tests/cri-pause
STATIC_PROGRAMS += $(CRI_PAUSE)
$(CRI_PAUSE): tests/integration/clients/cri/pause.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -D_GNU_SOURCE -Os -static $(WARN) -o $@ $<
fixtures: $(CRI_PAUSE)
