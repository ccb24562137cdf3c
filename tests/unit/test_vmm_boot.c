/* SPDX-License-Identifier: Apache-2.0 */
/* Direct boot over a fake guest memory: ELF and bzImage loading, initrd,
 * zero page, e820, command line helpers, MP table, RAM layout. */
#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "tap.h"
#include "vmm/ram.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/mptable.h"

#define RAM_SIZE (64ULL << 20)

static struct gm fake_gm(void)
{
	struct gm gm = {0};
	void *p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		abort();
	gm.r[0] = (struct gm_region){.gpa = 0, .size = RAM_SIZE, .hva = p};
	gm.n = 1;
	return gm;
}

static void fake_gm_free(struct gm *gm)
{
	munmap(gm->r[0].hva, gm->r[0].size);
}

/* A temp file holding buf; returns an fd at offset 0. */
static int temp_file(const void *buf, size_t len)
{
	char path[] = "/tmp/kvrun-test-boot-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		abort();
	unlink(path);
	if (write(fd, buf, len) != (ssize_t)len)
		abort();
	return fd;
}

struct elf_img {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	uint8_t pad[0x1000 - sizeof(Elf64_Ehdr) - 2 * sizeof(Elf64_Phdr)];
	uint8_t text[64];
};

static struct elf_img elf_make(void)
{
	struct elf_img img;
	memset(&img, 0, sizeof(img));
	memcpy(img.eh.e_ident, ELFMAG, SELFMAG);
	img.eh.e_ident[EI_CLASS] = ELFCLASS64;
	img.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	img.eh.e_type = ET_EXEC;
	img.eh.e_machine = EM_X86_64;
	img.eh.e_entry = 0x1000000;
	img.eh.e_phoff = offsetof(struct elf_img, ph);
	img.eh.e_phentsize = sizeof(Elf64_Phdr);
	img.eh.e_phnum = 2;
	img.ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
				 .p_offset = offsetof(struct elf_img, text),
				 .p_vaddr = 0xffffffff81000000ULL,
				 .p_paddr = 0x1000000,
				 .p_filesz = sizeof(img.text),
				 .p_memsz = 0x3000};
	img.ph[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = 0, .p_filesz = 4, .p_memsz = 4};
	for (unsigned i = 0; i < sizeof(img.text); i++)
		img.text[i] = 0x90 + i;
	return img;
}

static int elf_load(struct gm *gm, struct elf_img *img, struct boot_kernel *k, struct kv_err **err)
{
	cleanup_close int fd = temp_file(img, sizeof(*img));
	return boot_kernel_load(gm, fd, k, err);
}

static void test_elf(void)
{
	struct gm gm = fake_gm();
	struct boot_kernel k;
	struct kv_err *err = NULL;
	struct elf_img img = elf_make();
	ok(elf_load(&gm, &img, &k, &err) == 0, "ELF: loads");
	is_int(k.entry, 0x1000000, "ELF: physical e_entry used as is");
	is_int(k.load_start, 0x1000000, "ELF: load start");
	is_int(k.load_end, 0x1003000, "ELF: load end includes bss (memsz)");
	ok(!k.bzimage, "ELF: not a bzImage");
	ok(memcmp(gm_ptr(&gm, 0x1000000, 64), img.text, 64) == 0, "ELF: segment bytes in RAM");
	is_int(k.hdr.header, BOOT_HDR_MAGIC, "ELF: made-up setup header has HdrS");

	img = elf_make();
	img.eh.e_entry = 0xffffffff81000010ULL;
	ok(elf_load(&gm, &img, &k, &err) == 0 && k.entry == 0x1000010,
	   "ELF: virtual e_entry translated to physical");
	kv_err_free(err);
	fake_gm_free(&gm);
}

static void elf_expect_error(const char *what, struct elf_img img, const char *needle)
{
	struct gm gm = fake_gm();
	struct boot_kernel k;
	struct kv_err *err = NULL;
	int r = elf_load(&gm, &img, &k, &err);
	ok(r < 0 && err && strstr(err->msg, needle), "ELF rejected: %s", what);
	if (err)
		diag("  %s", err->msg);
	kv_err_free(err);
	fake_gm_free(&gm);
}

/* A big segment is mapped from the file, not copied: same bytes, private. */
static void test_elf_mapped(void)
{
	const size_t seg = 512 * 1024 + 100, off = 0x1000;
	size_t len = off + seg;
	uint8_t *file = kv_malloc0(len);
	struct elf_img img = elf_make();
	img.ph[0].p_offset = off;
	img.ph[0].p_filesz = seg;
	img.ph[0].p_memsz = seg + 0x5000;
	img.eh.e_phnum = 1;
	memcpy(file, &img, sizeof(img.eh) + sizeof(img.ph));
	for (size_t i = off; i < len; i++)
		file[i] = (uint8_t)(i * 13 + 1);
	int fd = temp_file(file, len);
	struct gm gm = fake_gm();
	uint8_t *ram = gm_ptr(&gm, 0x1000000, seg + 0x5000);
	memset(ram, 0, seg + 0x5000);
	struct boot_kernel k;
	struct kv_err *err = NULL;
	ok(boot_kernel_load(&gm, fd, &k, &err) == 0, "big ELF segment: loads");
	ok(memcmp(ram, file + off, seg) == 0, "big ELF segment: bytes in RAM (mapped + read tail)");
	bool zero = true;
	for (size_t i = seg; i < seg + 0x5000; i++)
		zero &= ram[i] == 0;
	ok(zero, "big ELF segment: bss after the file part reads zero");
	ram[4096] ^= 0xff;
	uint8_t b;
	ok(pread(fd, &b, 1, off + 4096) == 1 && b == file[off + 4096],
	   "guest writes stay private (copy on write), the file is unchanged");
	close(fd);
	free(file);
	kv_err_free(err);
	fake_gm_free(&gm);
}

static void test_elf_errors(void)
{
	struct elf_img img;
	img = elf_make();
	img.eh.e_machine = EM_AARCH64;
	elf_expect_error("wrong machine", img, "not x86_64");
	img = elf_make();
	img.eh.e_ident[EI_CLASS] = ELFCLASS32;
	elf_expect_error("ELF32", img, "ELF64");
	img = elf_make();
	img.eh.e_phnum = 0;
	elf_expect_error("no program headers", img, "e_phnum");
	img = elf_make();
	img.ph[0].p_filesz = 1 << 20;
	img.ph[0].p_memsz = 2 << 20;
	elf_expect_error("segment beyond the file", img, "beyond the end of the file");
	img = elf_make();
	img.ph[0].p_filesz = 0x4000;
	elf_expect_error("filesz > memsz", img, "filesz > memsz");
	img = elf_make();
	img.ph[0].p_paddr = 0x8000;
	img.eh.e_entry = 0x8000;
	elf_expect_error("segment below 1 MiB (boot data)", img, "below 1 MiB");
	img = elf_make();
	img.ph[0].p_paddr = RAM_SIZE - 0x1000;
	img.eh.e_entry = RAM_SIZE - 0x1000;
	elf_expect_error("segment past the end of RAM", img, "does not fit");
	img = elf_make();
	img.ph[0].p_paddr = 0xfffffffffffff000ULL;
	elf_expect_error("segment address wraps", img, "does not fit");
	img = elf_make();
	img.eh.e_entry = 0x5000000;
	elf_expect_error("entry outside segments", img, "outside every segment");
}

#define BZ_SETUP_SECTS 1
#define BZ_KERNEL_OFF  ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_KERNEL_LEN  4096

static uint8_t *bz_make(size_t *len, uint16_t version, uint16_t xloadflags)
{
	*len = BZ_KERNEL_OFF + BZ_KERNEL_LEN;
	uint8_t *b = kv_malloc0(*len);
	struct setup_header h = {0};
	h.setup_sects = BZ_SETUP_SECTS;
	h.boot_flag = BOOT_FLAG_MAGIC;
	h.jump = 0x66eb; /* jmp +0x66: header ends at 0x268 */
	h.header = BOOT_HDR_MAGIC;
	h.version = version;
	h.xloadflags = xloadflags;
	h.pref_address = 0x1000000;
	h.init_size = 0x200000;
	h.cmdline_size = 2047;
	h.initrd_addr_max = 0x7fffffff;
	h.relocatable_kernel = 1;
	memcpy(b + BOOT_SETUP_HDR_OFF, &h, sizeof(h));
	for (unsigned i = 0; i < BZ_KERNEL_LEN; i++)
		b[BZ_KERNEL_OFF + i] = (uint8_t)(i * 7);
	return b;
}

static void test_bzimage(void)
{
	struct gm gm = fake_gm();
	struct boot_kernel k;
	struct kv_err *err = NULL;
	size_t len;
	cleanup_free uint8_t *b = bz_make(&len, 0x020f, XLF_KERNEL_64);
	int fd = temp_file(b, len);
	ok(boot_kernel_load(&gm, fd, &k, &err) == 0, "bzImage: loads");
	close(fd);
	ok(k.bzimage, "bzImage: detected");
	is_int(k.entry, 0x1000200, "bzImage: 64-bit entry at load address + 0x200");
	is_int(k.load_start, 0x1000000, "bzImage: loaded at pref_address");
	is_int(k.load_end, 0x1200000, "bzImage: init_size reserved");
	is_int(k.hdr.version, 0x020f, "bzImage: setup header copied");
	ok(memcmp(gm_ptr(&gm, 0x1000000, BZ_KERNEL_LEN), b + BZ_KERNEL_OFF, BZ_KERNEL_LEN) == 0,
	   "bzImage: protected-mode kernel bytes in RAM");

	cleanup_free uint8_t *old = bz_make(&len, 0x0209, XLF_KERNEL_64);
	fd = temp_file(old, len);
	ok(boot_kernel_load(&gm, fd, &k, &err) < 0 && strstr(err->msg, "2.10"),
	   "bzImage: protocol 2.09 rejected");
	close(fd);
	kv_err_free(err);
	err = NULL;

	cleanup_free uint8_t *b32 = bz_make(&len, 0x020f, 0);
	fd = temp_file(b32, len);
	ok(boot_kernel_load(&gm, fd, &k, &err) < 0 && strstr(err->msg, "64-bit"),
	   "bzImage: no 64-bit entry rejected");
	close(fd);
	kv_err_free(err);
	err = NULL;

	uint8_t junk[2048] = "MZ this is not a kernel";
	fd = temp_file(junk, sizeof(junk));
	ok(boot_kernel_load(&gm, fd, &k, &err) < 0 && strstr(err->msg, "neither ELF nor bzImage"),
	   "junk rejected: neither ELF nor bzImage");
	is_str(err ? err->msg : "", "kernel: neither ELF nor bzImage (no HdrS header)",
	       "  the verdict alone (no strerror)");
	close(fd);
	kv_err_free(err);
	fake_gm_free(&gm);
}

static void test_initrd_and_zero_page(void)
{
	struct gm gm = fake_gm();
	struct boot_kernel k;
	struct kv_err *err = NULL;
	struct elf_img img = elf_make();
	if (elf_load(&gm, &img, &k, &err) < 0)
		abort();
	uint8_t initrd[10000];
	for (unsigned i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	int fd = temp_file(initrd, sizeof(initrd));
	uint64_t addr = 0, size = 0;
	ok(boot_initrd_load(&gm, fd, &k, &addr, &size, &err) == 0, "initrd: loads");
	close(fd);
	is_int(size, sizeof(initrd), "initrd: size");
	is_int(addr, (RAM_SIZE - sizeof(initrd)) & ~4095ULL,
	       "initrd: page-aligned at the top of RAM");
	ok(addr >= k.load_end, "initrd: above the kernel");
	ok(memcmp(gm_ptr(&gm, addr, size), initrd, size) == 0, "initrd: bytes in RAM");

	const char *cmd = "console=ttyS0 panic=-1";
	ok(boot_params_write(&gm, &k, cmd, addr, size, &err) == 0, "zero page: written");
	struct boot_params *bp = gm_ptr(&gm, LAYOUT_ZERO_PAGE, sizeof(*bp));
	is_int(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE, "zero page: cmd_line_ptr");
	is_str((char *)gm_ptr(&gm, LAYOUT_CMDLINE, 1), cmd, "zero page: command line text");
	is_int(bp->hdr.type_of_loader, 0xff, "zero page: type_of_loader");
	is_int(bp->hdr.ramdisk_image, addr, "zero page: ramdisk_image");
	is_int(bp->hdr.ramdisk_size, size, "zero page: ramdisk_size");
	is_int(bp->hdr.boot_flag, 0xaa55, "zero page: boot_flag");
	is_int(bp->e820_entries, 3, "e820: three entries below 64 MiB");
	ok(bp->e820_table[0].addr == 0 && bp->e820_table[0].size == LAYOUT_EBDA &&
	       bp->e820_table[0].type == BOOT_E820_RAM,
	   "e820: RAM up to the EBDA");
	ok(bp->e820_table[1].addr == LAYOUT_EBDA && bp->e820_table[1].type == BOOT_E820_RESERVED &&
	       bp->e820_table[1].addr + bp->e820_table[1].size == LAYOUT_HIMEM,
	   "e820: EBDA to 1 MiB reserved");
	ok(bp->e820_table[2].addr == LAYOUT_HIMEM &&
	       bp->e820_table[2].size == RAM_SIZE - LAYOUT_HIMEM,
	   "e820: RAM from 1 MiB to the end");

	char *longcmd = kv_malloc0(5000);
	memset(longcmd, 'x', 4999);
	ok(boot_params_write(&gm, &k, longcmd, 0, 0, &err) < 0 && err->errnum == E2BIG,
	   "zero page: over-long command line rejected");
	free(longcmd);
	kv_err_free(err);
	err = NULL;

	uint8_t big[4096];
	fd = temp_file(big, sizeof(big));
	k.load_end = RAM_SIZE - 2048;
	ok(boot_initrd_load(&gm, fd, &k, &addr, &size, &err) < 0 && err->errnum == EFBIG,
	   "initrd: no room above the kernel -> EFBIG");
	close(fd);
	kv_err_free(err);
	fake_gm_free(&gm);
}

static void test_e820_layout(void)
{
	struct gm gm;
	struct kv_err *err = NULL;
	ok(ram_layout(&gm, 256ULL << 20, &err) == 0 && gm.n == 1 && gm.r[0].size == 256ULL << 20,
	   "RAM 256 MiB: one region");
	ok(ram_layout(&gm, 5ULL << 30, &err) == 0 && gm.n == 2, "RAM 5 GiB: two regions");
	ok(gm.r[0].gpa == 0 && gm.r[0].size == 3ULL << 30, "RAM 5 GiB: 3 GiB below the hole");
	ok(gm.r[1].gpa == 4ULL << 30 && gm.r[1].size == 2ULL << 30, "RAM 5 GiB: 2 GiB from 4 GiB");
	struct boot_e820_entry e[8];
	unsigned n = boot_e820_build(&gm, e, 8);
	is_int(n, 4, "e820 5 GiB: four entries");
	ok(e[3].addr == 4ULL << 30 && e[3].size == 2ULL << 30 && e[3].type == BOOT_E820_RAM,
	   "e820 5 GiB: high RAM entry");
	ok(e[2].addr + e[2].size == 3ULL << 30, "e820 5 GiB: low RAM ends at 3 GiB (MMIO hole)");
	ok(ram_layout(&gm, 8ULL << 20, &err) < 0, "RAM below 16 MiB rejected");
	is_str(err ? err->msg : "", "guest memory: 8388608 bytes, need at least 16 MiB",
	       "  the verdict alone (no strerror)");
	kv_err_free(err);
	err = NULL;
	ok(ram_layout(&gm, (256ULL << 20) + 4096, &err) < 0, "RAM not a 2 MiB multiple rejected");
	kv_err_free(err);
}

static void test_ram_backing(void)
{
	struct ram ram;
	struct kv_err *err = NULL;
	ok(ram_create(&ram, 32ULL << 20, &err) == 0 && ram.fd >= 0 && ram.gm.n == 1,
	   "memfd RAM: created");
	uint8_t *p = gm_ptr(&ram.gm, 0x100000, 4);
	ok(p && p[0] == 0, "memfd RAM: zeroed, reachable through gm_ptr");
	ok(gm_ptr(&ram.gm, (32ULL << 20) - 2, 4) == NULL, "gm_ptr refuses a range past the end");
	ram_destroy(&ram);

	char path[] = "/tmp/kvrun-test-ram-XXXXXX";
	int fd = mkstemp(path);
	ok(fd >= 0 && ftruncate(fd, 32ULL << 20) == 0, "RAM file: 32 MiB");
	ok(ram_create_from_file(&ram, path, 32ULL << 20, true, &err) == 0, "RAM file: private map");
	p = gm_ptr(&ram.gm, 0x1000, 1);
	*p = 0x42;
	uint8_t b = 0;
	ok(pread(fd, &b, 1, 0x1000) == 1 && b == 0, "private: guest writes do not reach the file");
	ram_destroy(&ram);
	ok(ram_create_from_file(&ram, path, 32ULL << 20, false, &err) == 0, "RAM file: shared map");
	p = gm_ptr(&ram.gm, 0x1000, 1);
	*p = 0x43;
	ok(pread(fd, &b, 1, 0x1000) == 1 && b == 0x43, "shared: guest writes reach the file");
	ram_destroy(&ram);
	ok(ram_create_from_file(&ram, path, 64ULL << 20, true, &err) < 0 && strstr(err->msg, path),
	   "RAM file smaller than the guest: refused, error names the file");
	kv_err_free(err);
	close(fd);
	unlink(path);
}

static void test_cmdline(void)
{
	ok(boot_cmdline_has("quiet console=ttyS0", "console"), "cmdline: key=value found");
	ok(boot_cmdline_has("quiet console=ttyS0", "quiet"), "cmdline: bare key found");
	ok(!boot_cmdline_has("xconsole=1", "console"), "cmdline: no substring match");
	ok(!boot_cmdline_has("a -- console=1", "console"), "cmdline: init's arguments ignored");
	char *c = kv_strdup("root=/dev/pmem0 -- init-arg");
	boot_cmdline_default(&c, "console=ttyS0");
	boot_cmdline_default(&c, "root=/dev/vda");
	is_str(c, "root=/dev/pmem0 console=ttyS0 -- init-arg", "cmdline: defaults before --");
	free(c);
	c = NULL;
	boot_cmdline_append(&c, "a=1");
	boot_cmdline_append(&c, "b");
	is_str(c, "a=1 b", "cmdline: append to empty");
	free(c);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static void test_mptable(void)
{
	struct gm gm = fake_gm();
	struct kv_err *err = NULL;
	ok(mptable_write(&gm, 2, &err) == 0, "MP table: written for 2 CPUs");
	uint8_t *mpf = gm_ptr(&gm, LAYOUT_EBDA, 16);
	ok(memcmp(mpf, "_MP_", 4) == 0, "MP table: floating pointer signature at the EBDA");
	is_int(sum8(mpf, 16), 0, "MP table: floating pointer checksum");
	uint32_t phys;
	memcpy(&phys, mpf + 4, 4);
	uint8_t *mpc = gm_ptr(&gm, phys, 44);
	ok(mpc && memcmp(mpc, "PCMP", 4) == 0, "MP table: config table signature");
	uint16_t len, count;
	memcpy(&len, mpc + 4, 2);
	memcpy(&count, mpc + 34, 2);
	is_int(sum8(gm_ptr(&gm, phys, len), len), 0, "MP table: config table checksum");
	is_int(count, 2 + 1 + 1 + MPTABLE_IOAPIC_PINS + 2,
	       "MP table: entries (cpus, bus, ioapic, irqs)");
	ok(mpc[44] == 0 && mpc[45] == 0 && (mpc[47] & 3) == 3,
	   "MP table: CPU 0 is the enabled BSP");
	ok(mpc[64] == 0 && mpc[65] == 1 && (mpc[67] & 3) == 1, "MP table: CPU 1 enabled, not BSP");
	ok(mptable_write(&gm, 0, &err) < 0, "MP table: 0 CPUs rejected");
	kv_err_free(err);
	fake_gm_free(&gm);
}

int main(void)
{
	test_elf();
	test_elf_mapped();
	test_elf_errors();
	test_bzimage();
	test_initrd_and_zero_page();
	test_e820_layout();
	test_ram_backing();
	test_cmdline();
	test_mptable();
	return tap_done();
}
