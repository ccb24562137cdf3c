# Test tooling for the shim: recvtty, the receiving end of --console-socket.
RECVTTY := $(BUILD)/tests/recvtty
$(RECVTTY): tests/recvtty.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $<
-include $(BUILD)/tests/recvtty.d
fixtures: $(RECVTTY)
all: $(RECVTTY)
