/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's epoll leaf: file descriptors registered with a callback, and
 * one batch of their events run at a time. It knows nothing of what the fds
 * are; every other file of the agent sits on top of it (as vmm/evloop.c sits
 * under the VMM's devices), and a test drives the agent by calling ev_poll().
 */
#include "agent/internal.h"

#include <sys/epoll.h>

#define EV_BATCH 32

int ev_init(struct agent *a, struct kv_err **err)
{
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->epfd < 0)
		return kv_err_make(err, errno, "epoll_create1");
	return 0;
}

int ev_add(struct agent *a, struct ev_src *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		return -errno;
	s->registered = true;
	s->events = events;
	return 0;
}

void ev_mod(struct agent *a, struct ev_src *s, uint32_t events)
{
	if (s->fd < 0 || !s->registered || s->events == events)
		return;
	struct epoll_event ev = {.events = events, .data.ptr = s};
	if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->events = events;
}

void ev_del(struct agent *a, struct ev_src *s)
{
	if (s->fd >= 0 && s->registered)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->events = 0;
	s->registered = false;
}

void ev_close(struct agent *a, struct ev_src *s)
{
	if (s->fd < 0)
		return;
	ev_del(a, s);
	close(s->fd);
	s->fd = -1;
}

int ev_wait(struct agent *a, struct epoll_event *evs, int max, int timeout_ms)
{
	int n = epoll_wait(a->epfd, evs, max, timeout_ms);
	return n < 0 ? -errno : n;
}

int ev_poll(struct agent *a, int timeout_ms)
{
	struct epoll_event evs[EV_BATCH];
	int n = ev_wait(a, evs, EV_BATCH, timeout_ms);
	for (int i = 0; i < n; i++) {
		struct ev_src *s = evs[i].data.ptr;
		if (s->fd >= 0) /* not closed earlier in this batch */
			s->cb(a, s, evs[i].events);
	}
	return n;
}
