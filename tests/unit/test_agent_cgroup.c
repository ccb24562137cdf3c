/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup_write_limits() against a plain directory standing in for a
 * container's cgroup: a file that exists is an interface file, a missing one
 * a controller (or a feature such as swap accounting) the guest lacks.
 */
#include "agent/internal.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/stat.h>

static char dir[] = "/tmp/kv-test-cgroup.XXXXXX";

static void touch(const char *name)
{
	cleanup_free char *p = kv_asprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static char *slurp(const char *name)
{
	cleanup_free char *p = kv_asprintf("%s/%s", dir, name);
	char *out = NULL;
	struct kv_err *err = NULL;
	if (kv_read_file(p, 4096, &out, NULL, &err) < 0)
		kv_err_free(err);
	return out;
}

static void unlink_all(void)
{
	static const char *const files[] = {"memory.max", "memory.swap.max", "pids.max"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(files); i++) {
		cleanup_free char *p = kv_asprintf("%s/%s", dir, files[i]);
		unlink(p);
	}
}

static struct kv_resources res_mem(int64_t limit, int64_t swap)
{
	return (struct kv_resources){
	    .memory_limit = limit, .memory_reservation = -1, .memory_swap = swap, .cpu_quota = -1};
}

static void test_swap_without_swap_accounting(int fd)
{
	/* Docker sends swap = 2 x memory; a guest without swap has no memory.swap.max. */
	touch("memory.max");
	struct kv_resources r = res_mem(67108864, 134217728);
	struct kv_err *err = NULL;
	int rc = cgroup_write_limits(fd, &r, &err);
	ok(rc == 0, "swap is ignored without memory.swap.max (%s)", err ? err->msg : "ok");
	kv_err_free(err);
	cleanup_free char *max = slurp("memory.max");
	is_str(max, "67108864", "  memory.max is still written");
	unlink_all();
}

static void test_swap_written(int fd)
{
	touch("memory.max");
	touch("memory.swap.max");
	struct kv_resources r = res_mem(67108864, 134217728);
	struct kv_err *err = NULL;
	ok(cgroup_write_limits(fd, &r, &err) == 0, "swap with memory.swap.max");
	kv_err_free(err);
	cleanup_free char *swap = slurp("memory.swap.max");
	is_str(swap, "67108864", "  memory.swap.max holds swap alone (OCI's swap - limit)");
	unlink_all();
}

static void test_missing_controller(int fd)
{
	struct kv_resources r = res_mem(67108864, -1);
	struct kv_err *err = NULL;
	int rc = cgroup_write_limits(fd, &r, &err);
	ok(rc < 0 && err && err->errnum == ENOTSUP &&
	       strstr(err->msg, "linux.resources.memory.limit"),
	   "a missing memory controller is still an error naming the field: %s",
	   err ? err->msg : "(accepted)");
	kv_err_free(err);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	test_swap_without_swap_accounting(fd);
	test_swap_written(fd);
	test_missing_controller(fd);
	close(fd);
	rmdir(dir);
	return tap_done();
}
