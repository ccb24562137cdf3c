/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Direct boot (Documentation/arch/x86/boot.rst, "64-bit boot protocol"):
 * the kernel image goes into guest RAM, the zero page describes RAM (e820),
 * the command line and the initrd. Everything here is checked against guest
 * memory through gm_ptr() and against the file size: the image is input
 * from outside, so a short or lying header is an error, never a crash.
 */
#include "vmm/x86/boot.h"

#include <elf.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vmm/x86/layout.h"

#define ELF_MAX_PHDRS	 64
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a)-1))
#define BZ_ENTRY64_OFF	 0x200 /* startup_64 of the compressed kernel */
#define BZ_SETUP_HDR_END 0x202 /* + byte at 0x201: end of the setup header */
#define PAGE_SIZE_4K	 4096
#define ALIGN_UP(x, a)	 (((x) + (a)-1) & ~((uint64_t)(a)-1))
/* Below this, reading is as cheap as mapping. */
#define BOOT_MAP_MIN (256 * 1024)

static int boot_file_read(int fd, void *buf, uint64_t len, uint64_t off, const char *what,
			  struct kv_err **err)
{
	uint64_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kv_err_make(err, errno, "read %s", what);
		if (r == 0)
			return kv_err_plain(
			    err, EINVAL, "%s: file ends at %llu, expected %llu bytes", what,
			    (unsigned long long)(off + done), (unsigned long long)(off + len));
		done += r;
	}
	return 0;
}

static int boot_file_size(int fd, uint64_t *size, struct kv_err **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kv_err_make(err, errno, "stat");
	if (!S_ISREG(st.st_mode))
		return kv_err_plain(err, EINVAL, "not a regular file");
	*size = st.st_size;
	return 0;
}

/*
 * Put [off, off+len) of the file into guest memory at dst (gpa). Whole pages
 * are mapped MAP_PRIVATE from the file instead of copied when file offset
 * and guest address agree modulo the page size: the kernel's 10+ MiB then
 * cost no copy and no page allocation, stay shared with the host page cache
 * across VMs, and only pages the guest writes become its own (copy on
 * write). The partial pages at either end are read. The file must not be
 * modified in place while the VM runs (kvrun installs kernels by rename).
 */
static int boot_file_place(uint8_t *dst, uint64_t gpa, int fd, uint64_t off, uint64_t len,
			   const char *what, struct kv_err **err)
{
	uint64_t head = ALIGN_UP(gpa, PAGE_SIZE_4K) - gpa;
	if (head > len)
		head = len;
	uint64_t mid = (len - head) & ~(uint64_t)(PAGE_SIZE_4K - 1);
	if ((gpa - off) % PAGE_SIZE_4K || mid < BOOT_MAP_MIN ||
	    ((uintptr_t)(dst + head) & (PAGE_SIZE_4K - 1)))
		return boot_file_read(fd, dst, len, off, what, err);
	if (boot_file_read(fd, dst, head, off, what, err) < 0)
		return -1;
	void *p =
	    mmap(dst + head, mid, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off + head);
	if (p == MAP_FAILED && boot_file_read(fd, dst + head, mid, off + head, what, err) < 0)
		return -1;
	return boot_file_read(fd, dst + head + mid, len - head - mid, off + head + mid, what, err);
}

int boot_kernel_load(struct gm *gm, int fd, struct boot_kernel *k, struct kv_err **err)
{
	uint64_t size;
	if (boot_file_size(fd, &size, err) < 0)
		return -1;
	unsigned char ident[EI_NIDENT] = {0};
	if (size >= sizeof(ident) && boot_file_read(fd, ident, sizeof(ident), 0, "kernel", err) < 0)
		return -1;
	if (memcmp(ident, ELFMAG, SELFMAG) == 0)
		return boot_elf_load(gm, fd, size, k, err);
	return boot_bzimage_load(gm, fd, size, k, err);
}

static int boot_elf_header_check(const Elf64_Ehdr *eh, struct kv_err **err)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return kv_err_plain(err, EINVAL, "kernel: not an ELF file");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return kv_err_plain(err, EINVAL, "kernel: not a little-endian ELF64 file");
	if (eh->e_machine != EM_X86_64)
		return kv_err_plain(err, EINVAL, "kernel: ELF machine %u is not x86_64",
				    eh->e_machine);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return kv_err_plain(err, EINVAL, "kernel: bad ELF e_phentsize %u", eh->e_phentsize);
	if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return kv_err_plain(err, EINVAL, "kernel: bad ELF e_phnum %u", eh->e_phnum);
	return 0;
}

static int boot_elf_segment_load(struct gm *gm, int fd, uint64_t file_size, const Elf64_Phdr *ph,
				 struct kv_err **err)
{
	if (ph->p_filesz > ph->p_memsz)
		return kv_err_plain(err, EINVAL, "kernel: ELF segment filesz > memsz");
	if (ph->p_offset > file_size || ph->p_filesz > file_size - ph->p_offset)
		return kv_err_plain(err, EINVAL, "kernel: ELF segment beyond the end of the file");
	if (ph->p_paddr < LAYOUT_HIMEM)
		return kv_err_plain(err, EINVAL, "kernel: ELF segment at 0x%llx, below 1 MiB",
				    (unsigned long long)ph->p_paddr);
	uint8_t *dst = gm_ptr(gm, ph->p_paddr, ph->p_memsz);
	if (!dst)
		return kv_err_plain(
		    err, EINVAL, "kernel: ELF segment 0x%llx+0x%llx does not fit in guest RAM",
		    (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
	/* The rest (p_memsz - p_filesz, the bss) is left as is: guest RAM starts
	 * zeroed, and Linux clears its own bss (clear_bss() in head64.c). */
	return boot_file_place(dst, ph->p_paddr, fd, ph->p_offset, ph->p_filesz, "kernel", err);
}

/* e_entry of vmlinux is physical (phys_startup_64); accept a virtual one too. */
static int boot_elf_entry_find(const Elf64_Ehdr *eh, const Elf64_Phdr *ph, unsigned n,
			       uint64_t *entry, struct kv_err **err)
{
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && eh->e_entry >= ph[i].p_paddr &&
		    eh->e_entry - ph[i].p_paddr < ph[i].p_memsz) {
			*entry = eh->e_entry;
			return 0;
		}
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && eh->e_entry >= ph[i].p_vaddr &&
		    eh->e_entry - ph[i].p_vaddr < ph[i].p_memsz) {
			*entry = eh->e_entry - ph[i].p_vaddr + ph[i].p_paddr;
			return 0;
		}
	return kv_err_plain(err, EINVAL, "kernel: ELF entry 0x%llx is outside every segment",
			    (unsigned long long)eh->e_entry);
}

int boot_elf_load(struct gm *gm, int fd, uint64_t file_size, struct boot_kernel *k,
		  struct kv_err **err)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[ELF_MAX_PHDRS];
	if (file_size < sizeof(eh))
		return kv_err_plain(err, EINVAL, "kernel: ELF file too short");
	if (boot_file_read(fd, &eh, sizeof(eh), 0, "kernel", err) < 0)
		return -1;
	if (boot_elf_header_check(&eh, err) < 0)
		return -1;
	if (boot_file_read(fd, ph, (uint64_t)eh.e_phnum * sizeof(ph[0]), eh.e_phoff, "kernel",
			   err) < 0)
		return kv_err_wrap(err, "ELF program headers");
	memset(k, 0, sizeof(*k));
	k->load_start = UINT64_MAX;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (boot_elf_segment_load(gm, fd, file_size, &ph[i], err) < 0)
			return -1;
		if (ph[i].p_paddr < k->load_start)
			k->load_start = ph[i].p_paddr;
		if (ph[i].p_paddr + ph[i].p_memsz > k->load_end)
			k->load_end = ph[i].p_paddr + ph[i].p_memsz;
	}
	if (k->load_end == 0)
		return kv_err_plain(err, EINVAL, "kernel: ELF file has no loadable segment");
	if (boot_elf_entry_find(&eh, ph, eh.e_phnum, &k->entry, err) < 0)
		return -1;
	/* vmlinux carries no setup header: describe a loader-made one. */
	k->hdr.boot_flag = BOOT_FLAG_MAGIC;
	k->hdr.header = BOOT_HDR_MAGIC;
	k->hdr.version = BOOT_MIN_VERSION;
	k->hdr.kernel_alignment = 0x1000000;
	k->hdr.initrd_addr_max = LAYOUT_LOW_RAM_MAX - 1;
	k->hdr.cmdline_size = BOOT_ELF_CMDLINE_MAX - 1;
	return 0;
}

static int boot_bzimage_header_read(int fd, uint64_t file_size, struct setup_header *hdr,
				    struct kv_err **err)
{
	uint8_t sect[1024];
	if (file_size < sizeof(sect))
		return kv_err_plain(err, EINVAL, "kernel: neither ELF nor bzImage (too short)");
	if (boot_file_read(fd, sect, sizeof(sect), 0, "kernel", err) < 0)
		return -1;
	struct setup_header h;
	memcpy(&h, sect + BOOT_SETUP_HDR_OFF, sizeof(h));
	if (h.header != BOOT_HDR_MAGIC || h.boot_flag != BOOT_FLAG_MAGIC)
		return kv_err_plain(err, EINVAL,
				    "kernel: neither ELF nor bzImage (no HdrS header)");
	if (h.version < BOOT_MIN_VERSION)
		return kv_err_plain(err, EINVAL, "kernel: bzImage boot protocol %u.%02u < 2.10",
				    h.version >> 8, h.version & 0xff);
	if (!(h.xloadflags & XLF_KERNEL_64))
		return kv_err_plain(err, EINVAL, "kernel: bzImage has no 64-bit entry point");
	/* The header proper ends at 0x202 + the jump offset at 0x201; copy no more. */
	size_t end = BZ_SETUP_HDR_END + sect[0x201];
	size_t len = end - BOOT_SETUP_HDR_OFF;
	memset(hdr, 0, sizeof(*hdr));
	memcpy(hdr, sect + BOOT_SETUP_HDR_OFF, len < sizeof(*hdr) ? len : sizeof(*hdr));
	return 0;
}

int boot_bzimage_load(struct gm *gm, int fd, uint64_t file_size, struct boot_kernel *k,
		      struct kv_err **err)
{
	memset(k, 0, sizeof(*k));
	if (boot_bzimage_header_read(fd, file_size, &k->hdr, err) < 0)
		return -1;
	uint64_t setup_sects = k->hdr.setup_sects ? k->hdr.setup_sects : 4;
	uint64_t off = (setup_sects + 1) * 512;
	if (off >= file_size)
		return kv_err_plain(err, EINVAL, "kernel: bzImage setup_sects beyond the file");
	uint64_t len = file_size - off;
	uint64_t load = k->hdr.pref_address;
	if (load < LAYOUT_HIMEM || load & (PAGE_SIZE_4K - 1))
		load = LAYOUT_HIMEM;
	uint64_t span = len > k->hdr.init_size ? len : k->hdr.init_size;
	uint8_t *dst = gm_ptr(gm, load, span);
	if (!dst)
		return kv_err_plain(err, EINVAL,
				    "kernel: bzImage needs 0x%llx bytes at 0x%llx: not enough RAM",
				    (unsigned long long)span, (unsigned long long)load);
	if (boot_file_place(dst, load, fd, off, len, "kernel", err) < 0)
		return -1;
	k->bzimage = true;
	k->load_start = load;
	k->load_end = load + span;
	k->entry = load + BZ_ENTRY64_OFF;
	return 0;
}

static const struct gm_region *boot_low_region(const struct gm *gm)
{
	for (unsigned i = 0; i < gm->n; i++)
		if (gm->r[i].gpa == 0)
			return &gm->r[i];
	return NULL;
}

int boot_initrd_load(struct gm *gm, int fd, const struct boot_kernel *k, uint64_t *addr,
		     uint64_t *size, struct kv_err **err)
{
	uint64_t fsize;
	if (boot_file_size(fd, &fsize, err) < 0)
		return kv_err_wrap(err, "initrd");
	const struct gm_region *low = boot_low_region(gm);
	if (!low)
		return kv_err_plain(err, EINVAL, "initrd: no low RAM");
	uint64_t top = low->size;
	uint64_t max = k->hdr.initrd_addr_max ? (uint64_t)k->hdr.initrd_addr_max + 1 : 0x38000000;
	if (top > max)
		top = max;
	if (fsize > top || ALIGN_DOWN(top - fsize, PAGE_SIZE_4K) < k->load_end)
		return kv_err_plain(err, EFBIG,
				    "initrd: %llu bytes do not fit between the kernel "
				    "and the end of low RAM",
				    (unsigned long long)fsize);
	uint64_t at = ALIGN_DOWN(top - fsize, PAGE_SIZE_4K);
	uint8_t *dst = gm_ptr(gm, at, fsize);
	if (!dst)
		return kv_err_plain(err, EINVAL, "initrd: 0x%llx is not in guest RAM",
				    (unsigned long long)at);
	if (boot_file_place(dst, at, fd, 0, fsize, "initrd", err) < 0)
		return -1;
	*addr = at;
	*size = fsize;
	return 0;
}

static unsigned boot_e820_add(struct boot_e820_entry *e, unsigned n, unsigned max, uint64_t addr,
			      uint64_t size, uint32_t type)
{
	if (n >= max || size == 0)
		return n;
	e[n].addr = addr;
	e[n].size = size;
	e[n].type = type;
	return n + 1;
}

unsigned boot_e820_build(const struct gm *gm, struct boot_e820_entry *e, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < gm->n; i++) {
		const struct gm_region *r = &gm->r[i];
		if (r->gpa != 0) {
			n = boot_e820_add(e, n, max, r->gpa, r->size, BOOT_E820_RAM);
			continue;
		}
		/* Below 1 MiB: RAM up to the EBDA (the MP table lives there), then
		 * the legacy hole that real hardware has and the kernel expects. */
		uint64_t base = r->size < LAYOUT_EBDA ? r->size : LAYOUT_EBDA;
		n = boot_e820_add(e, n, max, 0, base, BOOT_E820_RAM);
		if (r->size > LAYOUT_EBDA)
			n = boot_e820_add(e, n, max, LAYOUT_EBDA, LAYOUT_HIMEM - LAYOUT_EBDA,
					  BOOT_E820_RESERVED);
		if (r->size > LAYOUT_HIMEM)
			n = boot_e820_add(e, n, max, LAYOUT_HIMEM, r->size - LAYOUT_HIMEM,
					  BOOT_E820_RAM);
	}
	return n;
}

int boot_params_fill(struct boot_params *bp, const struct gm *gm, const struct boot_kernel *k,
		     uint64_t cmdline_len, uint64_t initrd_addr, uint64_t initrd_size,
		     struct kv_err **err)
{
	uint64_t cmd_max = k->hdr.cmdline_size ? k->hdr.cmdline_size : 255;
	if (cmdline_len > cmd_max || cmdline_len >= LAYOUT_CMDLINE_MAX)
		return kv_err_plain(err, E2BIG,
				    "kernel command line: %llu bytes, the kernel takes %llu",
				    (unsigned long long)cmdline_len, (unsigned long long)cmd_max);
	memset(bp, 0, sizeof(*bp));
	bp->hdr = k->hdr;
	bp->hdr.type_of_loader = BOOT_LOADER_UNKNOWN;
	bp->hdr.loadflags |= LOADED_HIGH;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = 0;
	bp->hdr.ramdisk_image = (uint32_t)initrd_addr;
	bp->hdr.ramdisk_size = (uint32_t)initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	bp->e820_entries = boot_e820_build(gm, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (bp->e820_entries == 0)
		return kv_err_plain(err, EINVAL, "zero page: guest has no RAM");
	return 0;
}

int boot_params_write(struct gm *gm, const struct boot_kernel *k, const char *cmdline,
		      uint64_t initrd_addr, uint64_t initrd_size, struct kv_err **err)
{
	size_t len = strlen(cmdline);
	struct boot_params bp;
	if (boot_params_fill(&bp, gm, k, len, initrd_addr, initrd_size, err) < 0)
		return -1;
	char *dst = gm_ptr(gm, LAYOUT_CMDLINE, len + 1);
	void *zp = gm_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(bp));
	if (!dst || !zp)
		return kv_err_plain(err, EINVAL, "zero page: low memory is not guest RAM");
	memcpy(dst, cmdline, len + 1);
	memcpy(zp, &bp, sizeof(bp));
	return 0;
}

bool boot_cmdline_has(const char *cmdline, const char *key)
{
	size_t kl = strlen(key);
	const char *p = cmdline;
	while (p && *p) {
		while (*p == ' ')
			p++;
		if (strncmp(p, key, kl) == 0 && (p[kl] == '=' || p[kl] == ' ' || p[kl] == '\0'))
			return true;
		/* "--" ends the kernel's part: the rest goes to init. */
		if (strncmp(p, "-- ", 3) == 0 || strcmp(p, "--") == 0)
			return false;
		p = strchr(p, ' ');
	}
	return false;
}

void boot_cmdline_append(char **cmdline, const char *param)
{
	char *old = *cmdline;
	const char *sep = old && *old ? " " : "";
	/* Kernel parameters must come before a "--" that starts init's arguments. */
	char *dd = old ? strstr(old, " -- ") : NULL;
	if (old && strncmp(old, "-- ", 3) == 0)
		dd = old;
	if (dd) {
		*cmdline = kv_asprintf("%.*s%s%s%s%s", (int)(dd - old), old, dd == old ? "" : " ",
				       param, dd == old ? " " : "", dd);
	} else {
		*cmdline = kv_asprintf("%s%s%s", old ? old : "", sep, param);
	}
	free(old);
}

void boot_cmdline_default(char **cmdline, const char *param)
{
	const char *eq = strchr(param, '=');
	size_t kl = eq ? (size_t)(eq - param) : strlen(param);
	char key[128];
	if (kl >= sizeof(key))
		kl = sizeof(key) - 1;
	memcpy(key, param, kl);
	key[kl] = '\0';
	if (!boot_cmdline_has(*cmdline ? *cmdline : "", key))
		boot_cmdline_append(cmdline, param);
}
