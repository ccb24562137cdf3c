/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One epoll loop. Registrations live in a table indexed by fd, each with a
 * generation that is also stored in the epoll event: an event that arrives
 * for an fd deleted (or deleted and reused) earlier in the same batch no
 * longer matches and is dropped.
 */
#include "vmm/evloop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define EVLOOP_BATCH 32

struct evloop_slot {
	evloop_cb cb;
	void *ctx;
	uint32_t gen; /* 0: free */
};

struct evloop {
	int epfd, stopfd;
	atomic_bool stopped;
	pthread_mutex_t lock;
	struct evloop_slot *slots;
	unsigned nslots;
	uint32_t next_gen;
};

struct evloop *evloop_new(struct kv_err **err)
{
	struct evloop *loop = kv_malloc0(sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&loop->lock, NULL);
	if (loop->epfd < 0 || loop->stopfd < 0) {
		kv_err_make(err, errno, "event loop");
		evloop_free(loop);
		return NULL;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stopfd, &ev) < 0) {
		kv_err_make(err, errno, "event loop: epoll_ctl");
		evloop_free(loop);
		return NULL;
	}
	return loop;
}

void evloop_free(struct evloop *loop)
{
	if (!loop)
		return;
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->stopfd >= 0)
		close(loop->stopfd);
	pthread_mutex_destroy(&loop->lock);
	free(loop->slots);
	free(loop);
}

static void evloop_slots_grow(struct evloop *loop, int fd)
{
	if ((unsigned)fd < loop->nslots)
		return;
	unsigned n = loop->nslots ? loop->nslots : 64;
	while (n <= (unsigned)fd)
		n *= 2;
	struct evloop_slot *s = realloc(loop->slots, n * sizeof(*s));
	if (!s)
		abort();
	memset(s + loop->nslots, 0, (n - loop->nslots) * sizeof(*s));
	loop->slots = s;
	loop->nslots = n;
}

static uint64_t evloop_key(int fd, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)fd;
}

int evloop_add(struct evloop *loop, int fd, uint32_t epoll_events, evloop_cb cb, void *ctx)
{
	if (fd < 0 || !cb) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&loop->lock);
	evloop_slots_grow(loop, fd);
	struct evloop_slot *s = &loop->slots[fd];
	if (s->gen) {
		pthread_mutex_unlock(&loop->lock);
		errno = EEXIST;
		return -1;
	}
	if (++loop->next_gen == 0)
		loop->next_gen = 1;
	uint32_t gen = loop->next_gen;
	struct epoll_event ev = {.events = epoll_events, .data.u64 = evloop_key(fd, gen)};
	int r = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
	if (r == 0)
		*s = (struct evloop_slot){cb, ctx, gen};
	pthread_mutex_unlock(&loop->lock);
	return r;
}

int evloop_mod(struct evloop *loop, int fd, uint32_t epoll_events)
{
	pthread_mutex_lock(&loop->lock);
	int r = -1;
	errno = ENOENT;
	if (fd >= 0 && (unsigned)fd < loop->nslots && loop->slots[fd].gen) {
		struct epoll_event ev = {.events = epoll_events,
					 .data.u64 = evloop_key(fd, loop->slots[fd].gen)};
		r = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
	}
	pthread_mutex_unlock(&loop->lock);
	return r;
}

int evloop_del(struct evloop *loop, int fd)
{
	pthread_mutex_lock(&loop->lock);
	int r = -1;
	errno = ENOENT;
	if (fd >= 0 && (unsigned)fd < loop->nslots && loop->slots[fd].gen) {
		r = epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		loop->slots[fd] = (struct evloop_slot){0};
		if (r < 0 && errno == EBADF)
			r = 0; /* already closed: the kernel dropped it */
	}
	pthread_mutex_unlock(&loop->lock);
	return r;
}

static void evloop_dispatch(struct evloop *loop, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = ev->data.u64 >> 32;
	pthread_mutex_lock(&loop->lock);
	struct evloop_slot s = {0};
	if ((unsigned)fd < loop->nslots && loop->slots[fd].gen == gen)
		s = loop->slots[fd];
	pthread_mutex_unlock(&loop->lock);
	if (s.cb)
		s.cb(s.ctx, ev->events);
}

int evloop_run(struct evloop *loop, struct kv_err **err)
{
	struct epoll_event evs[EVLOOP_BATCH];
	while (!atomic_load(&loop->stopped)) {
		int n = epoll_wait(loop->epfd, evs, EVLOOP_BATCH, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kv_err_make(err, errno, "event loop: epoll_wait");
		for (int i = 0; i < n && !atomic_load(&loop->stopped); i++)
			if (evs[i].data.u64 != UINT64_MAX)
				evloop_dispatch(loop, &evs[i]);
	}
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	atomic_store(&loop->stopped, true);
	uint64_t one = 1;
	ssize_t r = write(loop->stopfd, &one, sizeof(one));
	(void)r;
}

bool evloop_stopped(struct evloop *loop)
{
	return atomic_load(&loop->stopped);
}
