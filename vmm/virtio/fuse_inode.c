/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE server's tables: inodes (nodeid -> O_PATH fd, lookup count) and
 * handles (fh -> open fd). Both are slot tables in fixed chunks (entries
 * never move), bounded by max_inodes / max_handles. An id the guest sees
 * is (generation << 32) | (slot + 1): a freed slot gets a new generation,
 * so a stale or forged id finds nothing. Slot 0 of the inode table is the
 * root, nodeid FUSE_ROOT_ID (1), never freed.
 *
 * Inodes are shared by (st_dev, st_ino, share): looking a file up twice, or
 * through two hard links, gives the same nodeid, as the guest expects.
 */
#include "vmm/virtio/fuse.h"

#include <string.h>

/* ------------------------------------------------------------ chunks */

static void *chunk_slot(void **chunks, uint32_t slot, size_t elem)
{
	return (uint8_t *)chunks[slot / FUSE_CHUNK] + (size_t)(slot % FUSE_CHUNK) * elem;
}

/* A slot from the free list or a fresh one at *n; UINT32_MAX when full. */
static uint32_t chunk_alloc(void **chunks, uint32_t *n, uint32_t *free_head, uint32_t max,
			    size_t elem, uint32_t *(*next_of)(void *))
{
	if (*free_head) {
		uint32_t slot = *free_head - 1;
		*free_head = *next_of(chunk_slot(chunks, slot, elem));
		return slot;
	}
	if (*n >= max)
		return UINT32_MAX;
	if (*n % FUSE_CHUNK == 0)
		chunks[*n / FUSE_CHUNK] = kv_malloc0(FUSE_CHUNK * elem);
	return (*n)++;
}

static uint32_t *inode_next(void *p)
{
	return &((struct fuse_inode *)p)->hnext;
}

static uint32_t *handle_next(void *p)
{
	/* A free handle keeps the next free slot in its inode field. */
	return &((struct fuse_handle *)p)->inode;
}

static struct fuse_inode *inode_at(struct fuse_server *s, uint32_t slot)
{
	return chunk_slot((void **)s->inode_chunks, slot, sizeof(struct fuse_inode));
}

static struct fuse_handle *handle_at(struct fuse_server *s, uint32_t slot)
{
	return chunk_slot((void **)s->handle_chunks, slot, sizeof(struct fuse_handle));
}

/* ------------------------------------------------------------ inodes */

static uint32_t inode_hash(dev_t dev, ino_t ino, unsigned share)
{
	uint64_t h =
	    (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4full ^ share;
	return (uint32_t)(h ^ h >> 29) & (FUSE_HASH_SIZE - 1);
}

struct fuse_inode *fuse_inode_find(struct fuse_server *s, uint64_t nodeid)
{
	uint32_t low = (uint32_t)nodeid, gen = nodeid >> 32;
	if (low == 0 || low - 1 >= s->ninodes)
		return NULL;
	struct fuse_inode *ino = inode_at(s, low - 1);
	return ino->used && ino->gen == gen ? ino : NULL;
}

struct fuse_inode *fuse_inode_get(struct fuse_server *s, uint64_t nodeid)
{
	struct fuse_inode *ino = fuse_inode_find(s, nodeid);
	return ino && !ino->gone ? ino : NULL;
}

static void hash_insert(struct fuse_server *s, struct fuse_inode *ino)
{
	uint32_t *head = &s->hash[inode_hash(ino->dev, ino->ino, ino->share)];
	ino->hnext = *head;
	*head = ino->slot + 1;
}

static void hash_remove(struct fuse_server *s, struct fuse_inode *ino)
{
	uint32_t *link = &s->hash[inode_hash(ino->dev, ino->ino, ino->share)];
	while (*link) {
		struct fuse_inode *cur = inode_at(s, *link - 1);
		if (cur == ino) {
			*link = cur->hnext;
			return;
		}
		link = &cur->hnext;
	}
}

static struct fuse_inode *hash_find(struct fuse_server *s, dev_t dev, ino_t ino, unsigned share)
{
	for (uint32_t i = s->hash[inode_hash(dev, ino, share)]; i;) {
		struct fuse_inode *cur = inode_at(s, i - 1);
		if (cur->dev == dev && cur->ino == ino && cur->share == share)
			return cur;
		i = cur->hnext;
	}
	return NULL;
}

struct fuse_inode *fuse_inode_ref(struct fuse_server *s, int fd, const struct stat *st,
				  unsigned share)
{
	struct fuse_inode *ino = hash_find(s, st->st_dev, st->st_ino, share);
	if (ino && (ino->type == (st->st_mode & S_IFMT))) {
		close(fd);
		if (ino->nlookup < UINT64_MAX)
			ino->nlookup++;
		return ino;
	}
	if (ino) {
		/* The host reused the inode number for another type: the old one is gone. */
		hash_remove(s, ino);
		ino->dev = (dev_t)-1;
		ino->ino = 0;
	}
	uint32_t slot = chunk_alloc((void **)s->inode_chunks, &s->ninodes, &s->free_inode,
				    s->max_inodes, sizeof(*ino), inode_next);
	if (slot == UINT32_MAX) {
		close(fd);
		return NULL;
	}
	ino = inode_at(s, slot);
	uint32_t gen = ino->gen + 1;
	*ino = (struct fuse_inode){
	    .fd = fd,
	    .slot = slot,
	    .gen = gen ? gen : 1,
	    .used = true,
	    .share = share,
	    .type = st->st_mode & S_IFMT,
	    .nlookup = 1,
	    .dev = st->st_dev,
	    .ino = st->st_ino,
	};
	hash_insert(s, ino);
	s->live_inodes++;
	return ino;
}

static void inode_free(struct fuse_server *s, struct fuse_inode *ino)
{
	if (ino->dev != (dev_t)-1)
		hash_remove(s, ino);
	if (ino->fd >= 0)
		close(ino->fd);
	ino->fd = -1;
	ino->used = false;
	ino->nlookup = 0;
	ino->hnext = s->free_inode;
	s->free_inode = ino->slot + 1;
	s->live_inodes--;
}

void fuse_inode_unref(struct fuse_server *s, struct fuse_inode *ino, uint64_t n)
{
	if (ino->slot == 0)
		return; /* the root lives as long as the server */
	ino->nlookup = n < ino->nlookup ? ino->nlookup - n : 0;
	if (ino->nlookup == 0)
		inode_free(s, ino);
}

/* ----------------------------------------------------------- handles */

struct fuse_handle *fuse_handle_find(struct fuse_server *s, uint64_t fh, bool dir)
{
	uint32_t low = (uint32_t)fh, gen = fh >> 32;
	if (low == 0 || low - 1 >= s->nhandles)
		return NULL;
	struct fuse_handle *h = handle_at(s, low - 1);
	return h->used && h->gen == gen && h->dir == dir ? h : NULL;
}

struct fuse_handle *fuse_handle_get(struct fuse_server *s, uint64_t fh, bool dir)
{
	struct fuse_handle *h = fuse_handle_find(s, fh, dir);
	return h && !h->gone ? h : NULL;
}

uint64_t fuse_handle_new(struct fuse_server *s, int fd, bool dir, const struct fuse_inode *ino)
{
	uint32_t slot = chunk_alloc((void **)s->handle_chunks, &s->nhandles, &s->free_handle,
				    s->max_handles, sizeof(struct fuse_handle), handle_next);
	if (slot == UINT32_MAX) {
		close(fd);
		return 0;
	}
	struct fuse_handle *h = handle_at(s, slot);
	uint32_t gen = h->gen + 1;
	*h = (struct fuse_handle){
	    .fd = fd,
	    .slot = slot,
	    .gen = gen ? gen : 1,
	    .used = true,
	    .dir = dir,
	    .share = ino->share,
	    .inode = ino->slot,
	    .inode_gen = ino->gen,
	};
	s->live_handles++;
	return fuse_handle_fh(h);
}

struct fuse_inode *fuse_handle_inode(struct fuse_server *s, const struct fuse_handle *h)
{
	if (h->inode >= s->ninodes)
		return NULL;
	struct fuse_inode *ino = inode_at(s, h->inode);
	return ino->used && !ino->gone && ino->gen == h->inode_gen ? ino : NULL;
}

void fuse_handle_close(struct fuse_server *s, struct fuse_handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->used = false;
	h->inode = s->free_handle;
	s->free_handle = h->slot + 1;
	s->live_handles--;
}

/* ------------------------------------------------------------ tables */

int fuse_tables_init(struct fuse_server *s, int root_fd, const struct stat *root_st,
		     struct kv_err **err)
{
	if (!s->max_inodes)
		s->max_inodes = FUSE_INODES_MAX;
	if (!s->max_handles)
		s->max_handles = FUSE_HANDLES_MAX;
	s->inode_chunks =
	    kv_malloc0(sizeof(void *) * ((s->max_inodes + FUSE_CHUNK - 1) / FUSE_CHUNK));
	s->handle_chunks =
	    kv_malloc0(sizeof(void *) * ((s->max_handles + FUSE_CHUNK - 1) / FUSE_CHUNK));
	s->hash = kv_malloc0(sizeof(uint32_t) * FUSE_HASH_SIZE);
	struct fuse_inode *root = fuse_inode_ref(s, root_fd, root_st, 0);
	if (!root)
		return kv_err_plain(err, ENOMEM, "virtio-fs %s: inode table: no room for the root",
				    s->tag);
	root->gen = 0; /* nodeid 1 == FUSE_ROOT_ID */
	return 0;
}

void fuse_tables_clear(struct fuse_server *s, bool keep_root)
{
	for (uint32_t i = 0; i < s->nhandles; i++)
		if (handle_at(s, i)->used)
			fuse_handle_close(s, handle_at(s, i));
	for (uint32_t i = keep_root ? 1 : 0; i < s->ninodes; i++)
		if (inode_at(s, i)->used)
			inode_free(s, inode_at(s, i));
}

/*
 * A share removed at run time: no host fd of it may stay open, yet the
 * guest still holds its nodeids and handles. Each keeps its slot, marked
 * gone (fuse_inode_get/fuse_handle_get no longer find it), until FORGET or
 * RELEASE frees it, so a slot is never reused under the guest's feet. Gone
 * inodes leave the hash: a share added later in the same share slot never
 * meets them. The root (slot 0) and its directory handles stay.
 */
void fuse_tables_drop_share(struct fuse_server *s, unsigned share, unsigned *ninodes,
			    unsigned *nhandles)
{
	*ninodes = *nhandles = 0;
	for (uint32_t i = 0; i < s->nhandles; i++) {
		struct fuse_handle *h = handle_at(s, i);
		if (!h->used || h->gone || h->share != share || h->inode == 0)
			continue;
		if (h->fd >= 0)
			close(h->fd);
		h->fd = -1;
		h->gone = true;
		(*nhandles)++;
	}
	for (uint32_t i = 1; i < s->ninodes; i++) {
		struct fuse_inode *ino = inode_at(s, i);
		if (!ino->used || ino->gone || ino->share != share)
			continue;
		if (ino->dev != (dev_t)-1)
			hash_remove(s, ino);
		ino->dev = (dev_t)-1;
		ino->ino = 0;
		if (ino->fd >= 0)
			close(ino->fd);
		ino->fd = -1;
		ino->gone = true;
		(*ninodes)++;
	}
}

void fuse_tables_free(struct fuse_server *s)
{
	if (!s->inode_chunks)
		return;
	fuse_tables_clear(s, false);
	for (uint32_t i = 0; i < (s->ninodes + FUSE_CHUNK - 1) / FUSE_CHUNK; i++)
		free(s->inode_chunks[i]);
	for (uint32_t i = 0; i < (s->nhandles + FUSE_CHUNK - 1) / FUSE_CHUNK; i++)
		free(s->handle_chunks[i]);
	free(s->inode_chunks);
	free(s->handle_chunks);
	free(s->hash);
	s->inode_chunks = NULL;
	s->handle_chunks = NULL;
	s->hash = NULL;
}
