# virtio-fs: the native FUSE-server benchmark tool for tests/bench/fs.sh (the
# device driven through a fake guest memory, as in tests/unit/test_vmm_fs*.c).
FS_BENCH_TOOL := $(BUILD)/tests/bench/fs-server
all: $(FS_BENCH_TOOL)
$(FS_BENCH_TOOL): tests/bench/fs-server.c tests/unit/fs_helpers.h $(BUILD)/libvmm.a $(BUILD)/libkv.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -Itests/unit -o $@ $< $(BUILD)/libvmm.a $(BUILD)/libkv.a $(HOST_LIBS)
