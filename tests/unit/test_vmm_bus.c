/* SPDX-License-Identifier: Apache-2.0 */
/* The bus table and the event loop. */
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "tap.h"
#include "vmm/bus.h"
#include "vmm/evloop.h"

static unsigned hits;
static void rd(void *ctx, uint64_t off, void *data, unsigned len)
{
	memset(data, (int)(uintptr_t)ctx + (int)off, len);
	hits++;
}

static void test_bus(void)
{
	struct bus b = {0};
	struct bus_dev a = {"a", 0x1000, 0x100, rd, NULL, (void *)1};
	struct bus_dev c = {"c", 0x1100, 0x10, rd, NULL, (void *)2};
	ok(bus_register(&b, &a) == 0, "register a");
	ok(bus_register(&b, &c) == 0, "register c right after a");
	struct bus_dev overlap = {"o", 0x10f0, 0x20, rd, NULL, NULL};
	ok(bus_register(&b, &overlap) < 0, "overlapping window refused");
	struct bus_dev empty = {"e", 0x5000, 0, rd, NULL, NULL};
	ok(bus_register(&b, &empty) < 0, "empty window refused");
	struct bus_dev wrap = {"w", UINT64_MAX - 4, 0x10, rd, NULL, NULL};
	ok(bus_register(&b, &wrap) < 0, "wrapping window refused");
	uint8_t v[4];
	ok(bus_read(&b, 0x1004, v, 1) && v[0] == 5, "read dispatched with the window offset");
	ok(bus_read(&b, 0x1100, v, 1) && v[0] == 2, "second device");
	ok(!bus_read(&b, 0x10fe, v, 4) && v[0] == 0xff && v[3] == 0xff,
	   "access straddling two windows: unclaimed, all-ones");
	ok(!bus_write(&b, 0x2000, v, 1), "write to nothing: unclaimed");
	ok(bus_write(&b, 0x1000, v, 1), "write to a device without a write handler: claimed");
	struct bus full = {0};
	int r = 0;
	for (unsigned i = 0; i <= BUS_MAX_DEVS; i++) {
		struct bus_dev d = {"d", 0x100 * i, 0x10, rd, NULL, NULL};
		r = bus_register(&full, &d);
	}
	ok(r < 0 && full.n == BUS_MAX_DEVS, "full bus refuses more");
}

struct ctx {
	struct evloop *loop;
	int fd, other_fd;
	unsigned calls, other_calls;
	bool del_other;
};

static void on_a(void *p, uint32_t ev)
{
	struct ctx *c = p;
	uint64_t n;
	(void)!read(c->fd, &n, sizeof(n));
	c->calls++;
	if (c->del_other)
		evloop_del(c->loop, c->other_fd);
	evloop_stop(c->loop);
}

static void on_b(void *p, uint32_t ev)
{
	struct ctx *c = p;
	uint64_t n;
	(void)!read(c->other_fd, &n, sizeof(n));
	c->other_calls++;
}

static void *stopper(void *p)
{
	usleep(20000);
	evloop_stop(p);
	return NULL;
}

static void test_evloop(void)
{
	struct kv_err *err = NULL;
	struct evloop *loop = evloop_new(&err);
	ok(loop != NULL, "loop created");
	struct ctx c = {.loop = loop};
	c.fd = eventfd(0, EFD_NONBLOCK);
	c.other_fd = eventfd(0, EFD_NONBLOCK);
	ok(evloop_add(loop, c.fd, EPOLLIN, on_a, &c) == 0, "add");
	ok(evloop_add(loop, c.fd, EPOLLIN, on_a, &c) < 0 && errno == EEXIST, "double add: EEXIST");
	ok(evloop_add(loop, c.other_fd, EPOLLIN, on_b, &c) == 0, "add another");
	uint64_t one = 1;
	(void)!write(c.fd, &one, 8);
	(void)!write(c.other_fd, &one, 8);
	c.del_other = true;
	ok(evloop_run(loop, &err) == 0 && c.calls == 1, "callback ran, loop stopped");
	ok(c.other_calls == 0 || c.other_calls == 1,
	   "an fd deleted in the same batch is not called after deletion");
	ok(evloop_del(loop, c.other_fd) < 0 && errno == ENOENT, "del unknown: ENOENT");
	ok(evloop_mod(loop, 999, EPOLLIN) < 0, "mod unknown fails");
	evloop_free(loop);

	loop = evloop_new(&err);
	pthread_t t;
	pthread_create(&t, NULL, stopper, loop);
	ok(evloop_run(loop, &err) == 0 && evloop_stopped(loop), "stopped from another thread");
	pthread_join(t, NULL);
	evloop_free(loop);
	close(c.fd);
	close(c.other_fd);
}

int main(void)
{
	test_bus();
	test_evloop();
	return tap_done();
}
