/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control API's request handling, on a machine without vCPUs; the live
 * virtio-fs ops (fs-add, fs-remove) on devices without a guest, and their
 * clients over a real socket with a path longer than sun_path.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "tap.h"
#include "vmm/api.h"
#include "vmm/evloop.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"
#include "vmm/virtio/virtio.h"

static char *req(struct machine *m, const char *s)
{
	return api_request_handle(m, s, strlen(s));
}

static char *req_fds(struct machine *m, const char *s, const int *fds, unsigned n)
{
	return api_request_handle_fds(m, s, strlen(s), fds, n);
}

/* The answer has all of want (a NULL-terminated list); frees it. */
static bool has(char *r, const char *const *want)
{
	bool all = r != NULL;
	for (; all && *want; want++)
		all = strstr(r, *want) != NULL;
	if (!all)
		diag("answer: %s", r ? r : "(none)");
	free(r);
	return all;
}
#define HAS(r, ...) has((r), (const char *const[]){__VA_ARGS__, NULL})

static char dir[128] = "/tmp/kvrun-api-XXXXXX";

/* A live device "live" and a boot-time one "boot" on m (no guest, served in place). */
static void fs_devices(struct machine *m, struct gm *gm)
{
	struct kv_err *err = NULL;
	struct virtio_env env = {.gm = gm};
	struct virtio_fs_params live = {.tag = "live", .live = true};
	struct virtio_fs_share sh = {.path = dir};
	struct virtio_fs_params boot = {.tag = "boot", .shares = &sh, .nshares = 1};
	m->virtio[0] = virtio_fs_new(&env, &live, &err);
	m->virtio[1] = virtio_fs_new(&env, &boot, &err);
	m->nvirtio = 2;
	ok(m->virtio[0] && m->virtio[1], "two virtio-fs devices, one live");
	kv_err_free(err);
}

static void test_fs_errors(struct machine *m, int dfd, int ffd)
{
	const char *add = "{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"vol\",\"ro\":false}";
	int two[2] = {dfd, dfd};
	ok(HAS(req(m, add), "\"ok\":false", "EINVAL", "exactly one fd", "live/vol"),
	   "fs-add without an fd: EINVAL");
	ok(HAS(req_fds(m, add, two, 2), "EINVAL", "exactly one fd", "got 2"),
	   "fs-add with two fds: EINVAL");
	const char *bad[][2] = {
	    {"{\"op\":\"fs-add\",\"tag\":\"nope\",\"name\":\"v\",\"ro\":false}", "ENOENT"},
	    {"{\"op\":\"fs-add\",\"tag\":\"boot\",\"name\":\"v\",\"ro\":false}",
	     "not a live device"},
	    {"{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"v\"}", "\\\"ro\\\" (required)"},
	    {"{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"v\",\"ro\":1}", "true or false"},
	    {"{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"v\",\"ro\":true,\"dev\":\"y\"}",
	     "true or false"},
	    {"{\"op\":\"fs-add\",\"tag\":7,\"name\":\"v\",\"ro\":true}", "must be strings"},
	    {"{\"op\":\"fs-add\",\"tag\":\"live\",\"ro\":true}", "must be strings"},
	    {"{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"../x\",\"ro\":true}",
	     "bad share name"},
	    {"{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"\",\"ro\":true}", "bad share name"},
	};
	for (unsigned i = 0; i < KV_ARRAY_SIZE(bad); i++)
		ok(HAS(req_fds(m, bad[i][0], &dfd, 1), "\"ok\":false", bad[i][1]), "refused: %s",
		   bad[i][0]);
	int fifo = -1;
	char fp[200];
	snprintf(fp, sizeof(fp), "%s/fifo", dir);
	ok(mkfifo(fp, 0600) == 0 && (fifo = open(fp, O_PATH | O_CLOEXEC)) >= 0, "a FIFO");
	const char *addf = "{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"f\",\"ro\":true}";
	ok(HAS(req_fds(m, addf, &fifo, 1), "EINVAL", "not a directory or regular file"),
	   "fs-add of a FIFO: EINVAL");
	close(fifo);
	ok(HAS(req_fds(m, addf, &ffd, 1), "\"ok\":true", "\"name\":\"f\"", "\"shares\":2"),
	   "fs-add of a regular file, ro");
	ok(HAS(req(m, "{\"op\":\"fs-remove\",\"tag\":\"live\",\"name\":\"nope\"}"), "ENOENT",
	       "no share 'nope'"),
	   "fs-remove of an unknown name: ENOENT");
	ok(HAS(req_fds(m, "{\"op\":\"fs-remove\",\"tag\":\"live\",\"name\":\"f\"}", &dfd, 1),
	       "EINVAL", "takes no fd"),
	   "fs-remove with an fd: EINVAL");
	ok(HAS(req(m, "{\"op\":\"fs-remove\",\"tag\":\"live\",\"name\":\"f\"}"), "\"ok\":true",
	       "\"shares\":1"),
	   "fs-remove f");
}

static void test_fs_ops(struct machine *m)
{
	struct gm gm = {0};
	ok(mkdtemp(dir) != NULL, "a directory to share");
	fs_devices(m, &gm);
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char fp[200];
	snprintf(fp, sizeof(fp), "%s/file", dir);
	int ffd = open(fp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	const char *add =
	    "{\"op\":\"fs-add\",\"tag\":\"live\",\"name\":\"vol\",\"ro\":false,\"dev\":true}";
	ok(HAS(req_fds(m, add, &dfd, 1), "\"ok\":true", "\"state\":\"running\"", "\"tag\":\"live\"",
	       "\"name\":\"vol\"", "\"shares\":1"),
	   "fs-add live/vol with its fd");
	ok(HAS(req_fds(m, add, &dfd, 1), "EEXIST", "'vol' exists"), "fs-add again: EEXIST");
	test_fs_errors(m, dfd, ffd);
	int snapfds[2] = {dfd, dfd};
	ok(HAS(req_fds(m, "{\"op\":\"snapshot\"}", snapfds, 2), "\"ok\":false", "EBUSY",
	       "1 live share attached"),
	   "snapshot refused while a live share is attached");
	ok(HAS(req(m, "{\"op\":\"status\"}"), "\"state\":\"running\""), "  the VM is not paused");
	ok(HAS(req(m, "{\"op\":\"fs-remove\",\"tag\":\"live\",\"name\":\"vol\"}"), "\"ok\":true",
	       "\"shares\":0"),
	   "fs-remove live/vol");
	struct kv_err *err = NULL;
	ok(snap_devices_check(m, &err) == 0, "then the devices can be snapshotted");
	kv_err_free(err);
	close(dfd);
	close(ffd);
}

/* ------------------------------------------------------------- client */

static void *loop_thread(void *arg)
{
	struct kv_err *err = NULL;
	if (evloop_run(arg, &err) < 0)
		kv_err_free(err);
	return NULL;
}

/* A socket path longer than sun_path: made relative to a deep directory. */
static char *long_dir(void)
{
	char *p = kv_asprintf("%s/%0150d", dir, 0);
	ok(mkdir(p, 0700) == 0, "a directory %zu bytes deep", strlen(p));
	return p;
}

/* r < 0 with errnum want and a message with `msg`; frees *err. */
static bool failed(int r, struct kv_err **err, int want, const char *msg)
{
	bool good = r < 0 && *err && (*err)->errnum == want && strstr((*err)->msg, msg);
	diag("%s", *err ? (*err)->msg : "no error");
	kv_err_free(*err);
	*err = NULL;
	return good;
}

static void test_fs_client(struct machine *m)
{
	struct kv_err *err = NULL;
	m->loop = evloop_new(&err);
	char *deep = long_dir(), cwd[512];
	char *sock = kv_asprintf("%s/vmm.sock", deep);
	ok(getcwd(cwd, sizeof(cwd)) && chdir(deep) == 0, "into it");
	m->api = api_start(m, "vmm.sock", &err); /* as the runtime starts the VMM: relative */
	ok(m->api && chdir(cwd) == 0, "API listening at %zu bytes of path", strlen(sock));
	pthread_t t;
	pthread_create(&t, NULL, loop_thread, m->loop);
	char *resp = NULL;
	ok(vmm_api_call(sock, "status", &resp, &err) == 0 && strstr(resp, "\"ok\":true"),
	   "vmm_api_call through the long path");
	free(resp);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(vmm_api_fs_add(sock, "live", "data", dfd, true, &err) == 0, "vmm_api_fs_add");
	is_int(virtio_fs_live_shares(m->virtio[0]), 1, "  the device has it");
	int r = vmm_api_fs_add(sock, "live", "data", dfd, false, &err);
	ok(failed(r, &err, EEXIST, "'data' exists"), "again: EEXIST, with the VMM's message");
	r = vmm_api_fs_add(sock, "boot", "data", dfd, false, &err);
	ok(failed(r, &err, EINVAL, "not a live device"), "to a boot-time device: EINVAL");
	r = vmm_api_fs_add(sock, "live", "x", -1, false, &err);
	ok(failed(r, &err, EBADF, "no fd"), "no fd: EBADF before sending");
	ok(vmm_api_fs_remove(sock, "live", "data", &err) == 0, "vmm_api_fs_remove");
	r = vmm_api_fs_remove(sock, "live", "data", &err);
	ok(failed(r, &err, ENOENT, "no share 'data'"), "again: ENOENT");
	close(dfd);
	evloop_stop(m->loop);
	pthread_join(t, NULL);
	ok(chdir(deep) == 0, "back in it: the API removes its (relative) socket");
	api_stop(m->api);
	m->api = NULL;
	ok(chdir(cwd) == 0, "out again");
	evloop_free(m->loop);
	m->loop = NULL;
	r = vmm_api_fs_remove(sock, "live", "data", &err);
	ok(failed(r, &err, ENOENT, "connect"), "no VMM: the connect fails");
	ok(rmdir(deep) == 0, "the socket is gone");
	free(deep);
	free(sock);
}

/* ------------------------------------------------------------- net */

static void test_net(struct machine *m)
{
	struct kv_err *err = NULL;
	const char *attach = "{\"op\":\"net-attach\"}", *detach = "{\"op\":\"net-detach\"}";
	int sp[2];
	ok(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) == 0, "a socketpair (not a tap)");
	ok(HAS(req_fds(m, attach, sp, 1), "\"ok\":false", "ENODEV", "no --net device"),
	   "net-attach without a NIC: ENODEV");
	ok(HAS(req(m, detach), "ENODEV", "no --net device"), "net-detach without a NIC: ENODEV");
	m->loop = evloop_new(&err);
	struct gm gm = {0};
	struct virtio_env env = {.gm = &gm, .loop = m->loop};
	static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
	unsigned slot = m->nvirtio;
	struct virtio_mmio *nic = m->virtio[m->nvirtio++] = virtio_net_new(&env, mac, &err);
	ok(nic != NULL, "a NIC");
	ok(HAS(req(m, attach), "EINVAL", "exactly one fd", "got 0"), "net-attach without an fd");
	ok(HAS(req_fds(m, attach, sp, 2), "EINVAL", "got 2"), "net-attach with two fds");
	ok(HAS(req_fds(m, attach, sp, 1), "EINVAL", "net-attach: virtio-net: the fd is not a tap"),
	   "net-attach of a socket: EINVAL, not a tap");
	ok(!virtio_net_attached(nic), "  nothing attached");
	virtio_mmio_free(nic);
	env.fake_tap = true;
	nic = m->virtio[slot] = virtio_net_new(&env, mac, &err);
	ok(nic != NULL, "a NIC that takes any fd as its tap (env.fake_tap)");
	ok(HAS(req_fds(m, attach, sp, 1), "\"ok\":true", "\"link\":\"up\""),
	   "net-attach (device told to take any fd): link up");
	ok(HAS(req_fds(m, attach, sp + 1, 1), "EBUSY", "attached already"), "again: EBUSY");
	ok(HAS(req_fds(m, detach, sp, 1), "EINVAL", "takes no fd"),
	   "net-detach with an fd: EINVAL");
	ok(HAS(req(m, detach), "\"ok\":true", "\"link\":\"down\""), "net-detach: link down");
	ok(HAS(req(m, detach), "\"ok\":true"), "net-detach again: nothing to do");

	char *sock = kv_asprintf("%s/net.sock", dir);
	m->api = api_start(m, sock, &err);
	pthread_t t;
	pthread_create(&t, NULL, loop_thread, m->loop);
	ok(vmm_api_net_attach(sock, sp[0], &err) == 0 && virtio_net_attached(nic),
	   "vmm_api_net_attach");
	int r = vmm_api_net_attach(sock, sp[1], &err);
	ok(failed(r, &err, EBUSY, "attached already"), "again: EBUSY, with the VMM's message");
	r = vmm_api_net_attach(sock, -1, &err);
	ok(failed(r, &err, EBADF, "no fd"), "no fd: EBADF before sending");
	ok(vmm_api_net_detach(sock, &err) == 0 && !virtio_net_attached(nic), "vmm_api_net_detach");
	evloop_stop(m->loop);
	pthread_join(t, NULL);
	api_stop(m->api);
	m->api = NULL;
	virtio_mmio_free(nic);
	m->nvirtio = slot;
	evloop_free(m->loop);
	m->loop = NULL;
	free(sock);
	close(sp[0]);
	close(sp[1]);
}

int main(void)
{
	struct vmm_config cfg;
	char *cleanup;
	vmm_config_init(&cfg);
	struct kv_err *lerr = NULL;
	if (kv_log_init("test", NULL, KV_LOG_TEXT, KV_LOG_ERROR, &lerr) < 0)
		return 1;
	struct machine m;
	memset(&m, 0, sizeof(m));
	m.cfg = &cfg;
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.cond, NULL);
	m.t_start_ns = kv_now_ns();

	char *r = req(&m, "{\"op\":\"status\"}");
	ok(strstr(r, "\"ok\":true") && strstr(r, "\"state\":\"running\"") && strstr(r, "\"pid\":"),
	   "status: running, with pid: %s", r);
	free(r);
	r = req(&m, "{\"op\":\"pause\"}");
	ok(strstr(r, "\"state\":\"paused\"") != NULL, "pause: paused");
	free(r);
	r = req(&m, "{\"op\":\"status\"}");
	ok(strstr(r, "\"state\":\"paused\"") != NULL, "status after pause: paused");
	free(r);
	r = req(&m, "{\"op\":\"resume\"}");
	ok(strstr(r, "\"state\":\"running\"") != NULL, "resume: running");
	free(r);
	r = req(&m, "{\"op\":\"reboot\"}");
	ok(strstr(r, "\"ok\":false") && strstr(r, "EINVAL"), "unknown op: EINVAL error");
	free(r);
	r = req(&m, "not json");
	ok(strstr(r, "\"ok\":false") && strstr(r, "invalid JSON"), "bad JSON: error");
	free(r);
	r = req(&m, "[1,2]");
	ok(strstr(r, "\"ok\":false") != NULL, "not an object: error");
	free(r);
	r = req(&m, "{\"op\":7}");
	ok(strstr(r, "\"ok\":false") != NULL, "op not a string: error");
	free(r);
	char big[API_MAX_REQUEST + 10];
	memset(big, ' ', sizeof(big));
	r = api_request_handle(&m, big, sizeof(big));
	ok(strstr(r, "EMSGSIZE") != NULL, "oversized request: EMSGSIZE");
	free(r);
	r = req(&m, "{\"op\":\"snapshot\",\"path\":\"/tmp/x\"}");
	ok(strstr(r, "\"ok\":false") && strstr(r, "EINVAL") && strstr(r, "SCM_RIGHTS"),
	   "snapshot without its two files: EINVAL, saying how to pass them");
	free(r);
	int fds[2] = {0, 1};
	const char *bad = "{\"op\":\"snapshot\",\"then\":\"later\"}";
	r = api_request_handle_fds(&m, bad, strlen(bad), fds, 2);
	ok(strstr(r, "\"ok\":false") && strstr(r, "resume, pause or exit"),
	   "snapshot: an unknown \"then\" is refused before anything happens");
	free(r);
	r = req(&m, "{\"op\":\"pmem-bind\",\"device\":\"1\"}");
	ok(strstr(r, "\"ok\":false") && strstr(r, "EINVAL") && strstr(r, "must be a pmem device"),
	   "pmem-bind: a device that is not an index: EINVAL, naming it");
	free(r);
	r = req(&m, "{\"op\":\"pmem-bind\",\"device\":3}");
	ok(strstr(r, "\"ok\":false") && strstr(r, "ENOENT") && strstr(r, "pmem3"),
	   "pmem-bind: no such device: ENOENT");
	free(r);
	test_fs_ops(&m);
	test_fs_client(&m);
	test_net(&m);
	for (unsigned i = 0; i < m.nvirtio; i++)
		virtio_mmio_free(m.virtio[i]);
	cleanup = kv_asprintf("rm -rf '%s'", dir);
	if (system(cleanup) != 0)
		diag("could not remove %s", dir);
	free(cleanup);
	r = req(&m, "{\"op\":\"shutdown\"}");
	ok(strstr(r, "\"state\":\"stopping\"") != NULL && atomic_load(&m.stopping) &&
	       m.exit_status == VMM_EXIT_POWEROFF,
	   "shutdown: stopping, exit status 0");
	free(r);
	return tap_done();
}
