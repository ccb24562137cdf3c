/* SPDX-License-Identifier: Apache-2.0 */
/* Guest RAM allocation and layout. */
#include "vmm/ram.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vmm/x86/layout.h"

int ram_layout(struct gm *gm, uint64_t size, struct kv_err **err)
{
	memset(gm, 0, sizeof(*gm));
	if (size < RAM_MIN_SIZE)
		return kv_err_plain(err, EINVAL, "guest memory: %llu bytes, need at least %llu MiB",
				    (unsigned long long)size, RAM_MIN_SIZE >> 20);
	if (size % RAM_ALIGN)
		return kv_err_plain(err, EINVAL,
				    "guest memory: %llu bytes is not a multiple of 2 MiB",
				    (unsigned long long)size);
	uint64_t low = size < LAYOUT_LOW_RAM_MAX ? size : LAYOUT_LOW_RAM_MAX;
	gm->r[gm->n++] = (struct gm_region){.gpa = 0, .size = low};
	if (size > low)
		gm->r[gm->n++] = (struct gm_region){.gpa = LAYOUT_HIGH_RAM, .size = size - low};
	return 0;
}

static int ram_map(struct ram *ram, int fd, uint64_t offset, uint64_t size, bool private_map,
		   struct kv_err **err)
{
	int flags = (private_map ? MAP_PRIVATE : MAP_SHARED) | MAP_NORESERVE;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, offset);
	if (p == MAP_FAILED)
		return kv_err_make(err, errno, "guest memory: mmap %llu bytes",
				   (unsigned long long)size);
	/* Guest memory is the guest's: keep it out of core dumps. */
	(void)madvise(p, size, MADV_DONTDUMP);
	ram->base = p;
	ram->size = size;
	ram->private_map = private_map;
	uint64_t off = 0;
	for (unsigned i = 0; i < ram->gm.n; i++) {
		ram->gm.r[i].hva = ram->base + off;
		off += ram->gm.r[i].size;
	}
	return 0;
}

int ram_create(struct ram *ram, uint64_t size, struct kv_err **err)
{
	memset(ram, 0, sizeof(*ram));
	ram->fd = -1;
	if (ram_layout(&ram->gm, size, err) < 0)
		return -1;
	cleanup_close int fd = memfd_create("kvrun-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "guest memory: memfd_create");
	if (ftruncate(fd, size) < 0)
		return kv_err_make(err, errno, "guest memory: ftruncate %llu bytes",
				   (unsigned long long)size);
	if (ram_map(ram, fd, 0, size, false, err) < 0)
		return -1;
	ram->fd = steal_fd(fd);
	return 0;
}

int ram_create_from_file(struct ram *ram, const char *path, uint64_t size, bool private_map,
			 struct kv_err **err)
{
	memset(ram, 0, sizeof(*ram));
	ram->fd = -1;
	if (ram_layout(&ram->gm, size, err) < 0)
		return -1;
	cleanup_close int fd = open(path, (private_map ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "guest memory: open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kv_err_make(err, errno, "guest memory: stat %s", path);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size)
		return kv_err_plain(err, EINVAL,
				    "guest memory: %s is not a regular file of %llu bytes", path,
				    (unsigned long long)size);
	if (ram_map(ram, fd, 0, size, private_map, err) < 0)
		return kv_err_wrap(err, "%s", path);
	ram->fd = steal_fd(fd);
	return 0;
}

int ram_create_from_fd(struct ram *ram, int fd, uint64_t offset, uint64_t size, bool private_map,
		       struct kv_err **err)
{
	memset(ram, 0, sizeof(*ram));
	ram->fd = -1;
	if (ram_layout(&ram->gm, size, err) < 0 ||
	    ram_map(ram, fd, offset, size, private_map, err) < 0)
		return -1;
	ram->fd = fd;
	return 0;
}

void ram_destroy(struct ram *ram)
{
	if (ram->base)
		munmap(ram->base, ram->size);
	if (ram->fd >= 0)
		close(ram->fd);
	ram->base = NULL;
	ram->fd = -1;
	memset(&ram->gm, 0, sizeof(ram->gm));
}
