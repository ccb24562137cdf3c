/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Direct kernel boot, the parts that only write guest memory: load an
 * uncompressed vmlinux (ELF64) or a bzImage (boot protocol >= 2.10, 64-bit
 * entry), an initrd, the command line, and the zero page with its e820 map.
 * Unit-tested over a fake guest memory; no KVM here.
 */
#ifndef KV_VMM_X86_BOOT_H
#define KV_VMM_X86_BOOT_H

#include <asm/bootparam.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/kv.h"
#include "vmm/mem.h"

#define BOOT_HDR_MAGIC	     0x53726448 /* "HdrS" */
#define BOOT_FLAG_MAGIC	     0xaa55
#define BOOT_MIN_VERSION     0x020a /* 2.10: pref_address, init_size */
#define BOOT_SETUP_HDR_OFF   0x1f1
#define BOOT_LOADER_UNKNOWN  0xff
#define BOOT_ELF_CMDLINE_MAX 2048 /* COMMAND_LINE_SIZE on x86 */
#define BOOT_E820_RAM	     1
#define BOOT_E820_RESERVED   2

struct boot_kernel {
	uint64_t entry;		       /* guest-physical 64-bit entry point */
	uint64_t load_start, load_end; /* what the image occupies (bss, init_size included) */
	bool bzimage;
	struct setup_header hdr; /* the image's own (bzImage) or a made-up one (vmlinux) */
};

/* Load the kernel image from fd (ELF64 vmlinux or bzImage, detected). */
int boot_kernel_load(struct gm *gm, int fd, struct boot_kernel *k, struct kv_err **err) KV_WUR;
int boot_elf_load(struct gm *gm, int fd, uint64_t file_size, struct boot_kernel *k,
		  struct kv_err **err) KV_WUR;
int boot_bzimage_load(struct gm *gm, int fd, uint64_t file_size, struct boot_kernel *k,
		      struct kv_err **err) KV_WUR;

/* Place the initrd as high in low RAM as the kernel allows, above the kernel. */
int boot_initrd_load(struct gm *gm, int fd, const struct boot_kernel *k, uint64_t *addr,
		     uint64_t *size, struct kv_err **err) KV_WUR;

/* The e820 map of gm's RAM (legacy hole 0x9fc00-1 MiB reserved). Returns the count. */
unsigned boot_e820_build(const struct gm *gm, struct boot_e820_entry *e, unsigned max);

/* Fill bp (zero page) for k; cmdline at LAYOUT_CMDLINE; initrd may be size 0. */
int boot_params_fill(struct boot_params *bp, const struct gm *gm, const struct boot_kernel *k,
		     uint64_t cmdline_len, uint64_t initrd_addr, uint64_t initrd_size,
		     struct kv_err **err) KV_WUR;
/* Write the command line and the zero page into guest memory. */
int boot_params_write(struct gm *gm, const struct boot_kernel *k, const char *cmdline,
		      uint64_t initrd_addr, uint64_t initrd_size, struct kv_err **err) KV_WUR;

/* Command line helpers: is `key` (as "key" or "key=...") present? */
bool boot_cmdline_has(const char *cmdline, const char *key);
/* Append " param" (realloc'ing *cmdline, which may be NULL). */
void boot_cmdline_append(char **cmdline, const char *param);
/* Append param only if its key (text before '=') is not present yet. */
void boot_cmdline_default(char **cmdline, const char *param);

#endif
