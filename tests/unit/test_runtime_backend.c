/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The microVM backend's pure parts: the config file (defaults, sizes,
 * errors naming file and key), VM sizing from annotations and
 * linux.resources, the agent's container names, and how root filesystems
 * and bind mounts are handed to the guest (boot-time virtio-fs shares, or
 * live shares for a container joining a running VM).
 */
#include "runtime/backend.h"
#include "runtime/template.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char tmp[] = "/tmp/test_runtime_backend.XXXXXX";

static void write_text(const char *path, const char *text)
{
	struct kv_err *err = NULL;
	if (kv_write_file_atomic(path, text, strlen(text), 0644, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
}

static struct vm_conf *conf_from(const char *text, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/config.json", tmp);
	write_text(path, text);
	setenv("KVRUN_CONFIG", path, 1);
	struct vm_conf *c = NULL;
	if (vm_conf_load(&c, err) < 0)
		return NULL;
	return c;
}

/* The kvrun-vmm command line of a 1-vCPU VM under c, as JSON (malloc'd). */
static char *vmm_argv_json(const struct vm_conf *c)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	cleanup_vm_desc struct vm_desc d = {0};
	struct tmpl_shape sh = {.cpus = 1, .mem = 256ull << 20};
	kv_json_map_open(j);
	if (vm_desc_build(&d, c, &sh, NULL, NULL, "/sb", NULL) == 0)
		(void)!vm_desc_json(&d, "vmm", j, "argv", NULL);
	kv_json_map_close(j);
	return kv_json_finish_dup(j, NULL, NULL);
}

static void test_conf(void)
{
	struct kv_err *err = NULL;
	setenv("KVRUN_CONFIG", "/nonexistent/kvrun.json", 1);
	struct vm_conf *c = NULL;
	ok(vm_conf_load(&c, &err) == 0 && c && !c->path, "no file: defaults");
	ok(c && c->cpus == 1 && c->memory == 256ull << 20 && c->overhead == 128ull << 20 &&
	       c->rootfs_dax == 256ull << 20 && c->boot_timeout_s == 300,
	   "default values");
	ok(c && strstr(c->kernel, "vmlinux") && strstr(c->vmm, "kvrun-vmm"), "artifacts found");
	vm_conf_free(c);
	c = conf_from("{\"kernel\":\"/k\",\"cpus\":2,\"memory\":\"1G\",\"memory_overhead\":1048576,"
		      "\"rootfs_dax\":0,\"debug\":true}",
		      &err);
	ok(c && strcmp(c->kernel, "/k") == 0 && c->cpus == 2 && c->memory == 1ull << 30 &&
	       c->overhead == 1ull << 20 && c->rootfs_dax == 0 && c->debug,
	   "values from the file");
	vm_conf_free(c);
	c = conf_from("{\"console_max\":\"64K\"}", &err);
	ok(c && c->console_max == 64u << 10, "console_max: a size");
	if (c) {
		cleanup_free char *a = vmm_argv_json(c);
		ok(a && strstr(a, "\"--console-max\",\"65536\""), "handed to kvrun-vmm: %s",
		   a ? a : "");
		ok(a && !strstr(a, "jail"), "the jail by default: no --no-jail");
	}
	vm_conf_free(c);
	c = conf_from("{\"vmm_jail\":false}", &err);
	ok(c && !c->vmm_jail, "vmm_jail: false");
	if (c) {
		cleanup_free char *a = vmm_argv_json(c);
		ok(a && strstr(a, "\"--no-jail\""), "vmm_jail false: kvrun-vmm --no-jail");
	}
	vm_conf_free(c);
	c = conf_from("{\"vmm_jail\":\"no\"}", &err);
	ok(!c && err && strstr(err->msg, "vmm_jail: want true or false"), "vmm_jail: a boolean");
	kv_err_free(err);
	err = NULL;
	c = conf_from("{\"memory\":\"lots\"}", &err);
	ok(!c && err && strstr(err->msg, "config.json: memory: want a size"),
	   "a bad size names the file and key");
	kv_err_free(err);
	err = NULL;
	c = conf_from("{\"cpus\":0}", &err);
	ok(!c && err && strstr(err->msg, "cpus and boot_timeout must be at least 1"), "cpus 0");
	kv_err_free(err);
	err = NULL;
	c = conf_from("{\"kernel\":", &err);
	ok(!c && err, "invalid JSON is an error, not defaults");
	kv_err_free(err);
}

static struct oci_config *config(const char *extra)
{
	/* A mount namespace, as the agent requires (rootfs_prepare checks the spec
	 * with its code), unless the test brings its own linux object. */
	const char *ns =
	    strstr(extra, "\"linux\"") ? "" : ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}";
	cleanup_free char *text =
	    kv_asprintf("{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
			"\"root\":{\"path\":\"rootfs\"}%s%s}",
			ns, extra);
	struct oci_config *cfg = NULL;
	struct kv_err *err = NULL;
	if (oci_config_parse(text, strlen(text), "config.json", &cfg, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
	return cfg;
}

static void size_is(const char *extra, unsigned want_cpus, uint64_t want_mib, const char *name)
{
	struct vm_conf vc = {.cpus = 1,
			     .memory = 256ull << 20,
			     .overhead = 128ull << 20,
			     .min_memory = 128ull << 20};
	cleanup_oci_config struct oci_config *cfg = config(extra);
	unsigned cpus = 0;
	uint64_t mem = 0;
	struct kv_err *err = NULL;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (want_cpus > (unsigned)online)
		want_cpus = (unsigned)online;
	ok(cfg && vm_size(&vc, cfg, &cpus, &mem, &err) == 0 && cpus == want_cpus &&
	       mem == want_mib << 20,
	   "%s", name);
	if (err || cpus != want_cpus || mem != want_mib << 20)
		diag("  got %u vCPUs, %llu MiB%s%s", cpus, (unsigned long long)(mem >> 20),
		     err ? ": " : "", err ? err->msg : "");
	kv_err_free(err);
}

static void test_size(void)
{
	size_is("", 1, 256, "defaults");
	size_is(",\"annotations\":{\"io.kvrun.vm.cpus\":\"2\",\"io.kvrun.vm.memory\":\"1G\"}", 2,
		1024, "annotations");
	size_is(",\"linux\":{\"resources\":{\"cpu\":{\"quota\":150000,\"period\":100000},"
		"\"memory\":{\"limit\":268435456}}}",
		2, 384, "quota rounds up; limit + overhead");
	size_is(",\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"0-1\"}}}", 2, 256, "cpuset");
	size_is(",\"linux\":{\"resources\":{\"memory\":{\"limit\":1000}}}", 1, 192,
		"small limit: overhead, then the next memory step");
	static const unsigned long long steps[][2] = {
	    {1, 128},	  {128, 128},	{129, 192},   {192, 192},   {200, 256},	  {256, 256},
	    {300, 384},	  {384, 384},	{385, 512},   {640, 768},   {1000, 1024}, {1025, 1536},
	    {2000, 2048}, {2049, 3072}, {5000, 6144}, {6145, 8192},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(steps); i++) {
		uint64_t got = vm_mem_step(steps[i][0] << 20) >> 20;
		ok(got == steps[i][1], "%llu MiB steps up to %llu MiB (got %llu)", steps[i][0],
		   steps[i][1], (unsigned long long)got);
	}
	size_is(",\"annotations\":{\"io.kvrun.vm.memory\":\"1M\"}", 1, 128, "floor: min_memory");
	size_is(",\"annotations\":{\"io.kubernetes.cri.sandbox-cpu-quota\":\"200000\","
		"\"io.kubernetes.cri.sandbox-cpu-period\":\"100000\","
		"\"io.kubernetes.cri.sandbox-memory\":\"268435456\"}",
		2, 384, "a pod's sums from containerd's sandbox annotations");
	struct vm_conf vc = {.cpus = 1, .memory = 256ull << 20};
	cleanup_oci_config struct oci_config *cfg =
	    config(",\"annotations\":{\"io.kvrun.vm.cpus\":\"many\"}");
	unsigned cpus;
	uint64_t mem;
	struct kv_err *err = NULL;
	ok(cfg && vm_size(&vc, cfg, &cpus, &mem, &err) < 0 && err &&
	       strstr(err->msg, "annotation io.kvrun.vm.cpus=many"),
	   "a bad annotation is named");
	kv_err_free(err);
}

static void test_names(void)
{
	char *n = agent_container_name("my-ctr_1.2");
	is_str(n, "my-ctr_1.2", "an id the agent takes stays");
	free(n);
	n = agent_container_name("a+b");
	char *m = agent_container_name("a+b");
	ok(n && n[0] == 'k' && strlen(n) == 17 && strcmp(n, m) == 0, "others: a stable hash");
	free(n);
	free(m);
}

/* A bundle with a rootfs, a volume directory, a file and a socket. */
static char *bundle(void)
{
	char *b = kv_asprintf("%s/bundle", tmp);
	cleanup_free char *r = kv_asprintf("%s/rootfs", b), *v = kv_asprintf("%s/vol", b);
	cleanup_free char *f = kv_asprintf("%s/hosts", b), *s = kv_asprintf("%s/sock", b);
	mkdir(b, 0755);
	mkdir(r, 0755);
	mkdir(v, 0755);
	write_text(f, "127.0.0.1 localhost\n");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return b;
}

static void test_shared(const char *b)
{
	cleanup_free char *extra = kv_asprintf(
	    ",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	    "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s/vol\",\"options\":"
	    "[\"rbind\",\"ro\"]},{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":"
	    "\"hosts\",\"options\":[\"rbind\"]}]",
	    b);
	cleanup_oci_config struct oci_config *cfg = config(extra);
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", b);
	struct rootfs_plan p = {.shared = true, .dax_window = 64ull << 20};
	struct kv_err *err = NULL;
	ok(cfg && rootfs_prepare(tmp, cfg, rootfs, b, &p, &err) == 0, "shared: prepared");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	cleanup_free char *vol = kv_asprintf("%s/vol", b), *hosts = kv_asprintf("%s/hosts", b);
	ok(p.n_binds == 2, "two entries of the binds share");
	if (p.n_binds == 2) {
		ok(strcmp(p.binds[0].name, "b1") == 0 && strcmp(p.binds[0].path, vol) == 0 &&
		       p.binds[0].ro,
		   "a ro bind: a read-only share entry");
		ok(strcmp(p.binds[1].name, "b2") == 0 && strcmp(p.binds[1].path, hosts) == 0 &&
		       !p.binds[1].ro,
		   "a relative source: from the bundle");
	}
	ok(p.root && strcmp(p.root, rootfs) == 0 && !p.root_ro && p.dax_window == 64ull << 20,
	   "the rootfs share, with DAX");
	ok(p.mount_binds && p.n_live == 0, "binds share to mount; no live shares");
	is_str(p.rootfs_json, "{\"type\":\"virtiofs\",\"tag\":\"rootfs\",\"options\":\"dax\"}",
	       "the agent's rootfs");
	ok(p.spec_json && strstr(p.spec_json, "\"source\":\"/run/kvrun/shared/binds/b1\"") &&
	       strstr(p.spec_json, "\"destination\":\"/proc\""),
	   "bind sources rewritten to the guest's share; other mounts kept");
	rootfs_plan_free(&p);
}

/* root.readonly: the rootfs share itself is read-only on the host, not only in the guest. */
static void test_shared_readonly(const char *b)
{
	cleanup_oci_config struct oci_config *cfg = config(
	    ",\"mounts\":[{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
	    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\"},"
	    "{\"destination\":\"/data/deep\",\"type\":\"bind\",\"source\":\"vol\",\"options\":"
	    "[\"rbind\",\"ro\"]},{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":"
	    "\"hosts\",\"options\":[\"rbind\"]},{\"destination\":\"/link/x\",\"type\":\"tmpfs\","
	    "\"source\":\"tmpfs\"}]");
	if (cfg) {
		cfg->root->readonly = true;
		cfg->process->cwd = (char *)"/work/dir"; /* the config's strings live in an arena */
	}
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", b);
	cleanup_free char *link = kv_asprintf("%s/link", rootfs);
	ok(symlink(tmp, link) == 0, "a symlink in the image, to a host directory");
	struct rootfs_plan p = {.shared = true};
	struct kv_err *err = NULL;
	ok(cfg && rootfs_prepare(tmp, cfg, rootfs, b, &p, &err) == 0, "readonly root: prepared");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	ok(p.n_binds == 2 && p.root && strcmp(p.root, rootfs) == 0 && p.root_ro && !p.dax_window,
	   "root.readonly: the rootfs share is ro");
	rootfs_plan_free(&p);
	/* The guest cannot make mount targets in a read-only root: the runtime did. */
	struct stat st;
	cleanup_free char *dev = kv_asprintf("%s/dev", rootfs),
			  *pts = kv_asprintf("%s/dev/pts", rootfs);
	cleanup_free char *deep = kv_asprintf("%s/data/deep", rootfs);
	cleanup_free char *hosts = kv_asprintf("%s/etc/hosts", rootfs);
	cleanup_free char *cwd = kv_asprintf("%s/work/dir", rootfs), *x = kv_asprintf("%s/x", tmp);
	ok(stat(dev, &st) == 0 && S_ISDIR(st.st_mode), "target /dev made");
	ok(stat(pts, &st) < 0, "not /dev/pts: the guest's /dev tmpfs holds it");
	ok(stat(deep, &st) == 0 && S_ISDIR(st.st_mode), "a directory bind's target: a directory");
	ok(stat(hosts, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0,
	   "a file bind's target: an empty file");
	ok(stat(cwd, &st) == 0 && S_ISDIR(st.st_mode), "process.cwd made");
	ok(lstat(x, &st) < 0, "a symlink in the rootfs is not followed on the host");
	unlink(link);
}

/* A container joining a running VM: live shares, read-write as the spec says. */
static void test_live(const char *b)
{
	cleanup_free char *extra = kv_asprintf(
	    ",\"mounts\":[{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s/vol\","
	    "\"options\":[\"rbind\",\"rw\"]},{\"destination\":\"/etc/hosts\",\"type\":\"bind\","
	    "\"source\":\"hosts\",\"options\":[\"rbind\",\"ro\"]}]",
	    b);
	cleanup_oci_config struct oci_config *cfg = config(extra);
	if (cfg)
		cfg->root->readonly = true;
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", b);
	cleanup_free char *vol = kv_asprintf("%s/vol", b), *hosts = kv_asprintf("%s/hosts", b);
	struct rootfs_plan p = {.shared = false};
	struct kv_err *err = NULL;
	ok(cfg && rootfs_prepare(tmp, cfg, rootfs, b, &p, &err) == 0, "live: prepared");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	ok(!p.root && p.n_binds == 0 && !p.mount_binds && p.n_live == 3,
	   "no boot-time share, three live ones");
	if (p.n_live == 3) {
		const char *pre = p.live[0].name;
		size_t n = strlen(pre) - 2; /* "<8 hex>-" then "b0" */
		ok(n == 9 && pre[8] == '-' && strcmp(pre + n, "b0") == 0 &&
		       strncmp(p.live[1].name, pre, n) == 0 &&
		       strcmp(p.live[1].name + n, "b1") == 0 &&
		       strncmp(p.live[2].name, pre, n) == 0 && strcmp(p.live[2].name + n, "r") == 0,
		   "names: one random prefix, b<i> per bind, r for the root (%s)", pre);
		ok(strcmp(p.live[0].path, vol) == 0 && !p.live[0].ro, "a rw bind: a rw share");
		ok(strcmp(p.live[1].path, hosts) == 0 && p.live[1].ro, "a ro bind: a ro share");
		ok(strcmp(p.live[2].path, rootfs) == 0 && p.live[2].ro,
		   "root.readonly: a read-only root share");
		cleanup_free char *src =
		    kv_asprintf("\"source\":\"/run/kvrun/shared/pod/%s\"", pre);
		cleanup_free char *root = kv_asprintf(
		    "{\"type\":\"dir\",\"path\":\"/run/kvrun/shared/pod/%.*sr\"}", (int)n, pre);
		ok(p.spec_json && strstr(p.spec_json, src),
		   "bind sources: the live device's entries");
		is_str(p.rootfs_json, root, "the agent's rootfs: the root share's directory");
	}
	rootfs_plan_free(&p);
}

static void expect_refused(const char *b, const char *mount, const char *want, const char *name)
{
	cleanup_free char *extra = kv_asprintf(",\"mounts\":[%s]", mount);
	cleanup_oci_config struct oci_config *cfg = config(extra);
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", b);
	struct rootfs_plan p = {.shared = true};
	struct kv_err *err = NULL;
	int r = cfg ? rootfs_prepare(tmp, cfg, rootfs, b, &p, &err) : 0;
	ok(r < 0 && err && strstr(err->msg, want), "%s", name);
	if (!(r < 0 && err && strstr(err->msg, want)))
		diag("  got \"%s\"", err ? err->msg : "(none)");
	kv_err_free(err);
	rootfs_plan_free(&p);
}

static void test_refusals(const char *b)
{
	expect_refused(b, "{\"destination\":\"/n\",\"type\":\"nfs\",\"source\":\"s:/e\"}",
		       "mounts[0] (s:/e on /n): mount type nfs cannot be provided", "nfs");
	expect_refused(b, "{\"destination\":\"/s\",\"type\":\"bind\",\"source\":\"sock\"}",
		       "is not a file or a directory", "a socket as bind source");
	expect_refused(b, "{\"destination\":\"/s\",\"type\":\"bind\",\"source\":\"/none\"}",
		       "mounts[0]: bind source /none", "a missing bind source");
}

/* An erofs image as far as kvrun looks (its magic at 1024), of `size` bytes. */
static void erofs_file(const char *path, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	uint32_t magic = 0xE0F5E1E2u;
	if (fd < 0 || pwrite(fd, &magic, sizeof(magic), 1024) != (ssize_t)sizeof(magic) ||
	    ftruncate(fd, size) < 0)
		diag("erofs_file %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* A VMM API that answers `n` requests with ok (a child), appending each
 * request and the number of fds that came with it to `log`; its pid. */
static pid_t fake_api(const char *path, int n, const char *log)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 8) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = fopen(log, "a");
		for (int i = 0; i < n && f; i++) {
			int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			char buf[4096];
			struct msghdr mh = {0};
			char cbuf[CMSG_SPACE(4 * sizeof(int))];
			struct iovec io = {buf, sizeof(buf) - 1};
			mh.msg_iov = &io;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			ssize_t got = c >= 0 ? recvmsg(c, &mh, 0) : -1;
			if (got > 0) {
				buf[got] = '\0';
				buf[strcspn(buf, "\n")] = '\0';
				struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
				size_t fds = cm ? (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int) : 0;
				fprintf(f, "%s fds=%zu\n", buf, fds);
				fflush(f);
				const char *ok = "{\"ok\":true,\"state\":\"running\"}\n";
				(void)!write(c, ok, strlen(ok));
			}
			if (c >= 0)
				close(c);
		}
		_exit(0);
	}
	close(l);
	return pid;
}

/* What fake_api logged (emptied after). */
static char *api_log_take(const char *log)
{
	char *text = NULL;
	if (kv_read_file(log, 1 << 16, &text, NULL, NULL) < 0)
		text = kv_strdup("");
	unlink(log);
	return text;
}

/* A pod's layer slots: the sandbox reserves them (its shape, its devices, its
 * table), a member's layers claim the first free ones that hold them and
 * name them in its rootfs, and give them back. */
static void test_pod_slots(const char *b)
{
	struct kv_err *err = NULL;
	cleanup_free char *rootfs = kv_asprintf("%s/rootfs", b);
	cleanup_free char *sbdir = kv_asprintf("%s/pod-sb", tmp),
			  *mdir = kv_asprintf("%s/pod-m", tmp);
	mkdir(sbdir, 0755);
	mkdir(mdir, 0755);
	cleanup_oci_config struct oci_config *owner =
	    config(",\"annotations\":{\"" POD_LAYER_SLOTS_ANNOTATION "\":\"2:100M\"}");
	struct rootfs_plan p = {.shared = true};
	ok(owner && rootfs_prepare(tmp, owner, rootfs, b, &p, &err) == 0 && p.n_slots == 2 &&
	       p.slot_window == 128ull << 20,
	   "sandbox: 2 slots of 100M reserved, windows of 128 MiB");
	struct vm_conf vc = {.kernel = "k", .image = "i", .rootfs_dax = 0};
	struct tmpl_shape sh = tmpl_shape_of(&vc, 1, 256ull << 20, &p);
	ok(sh.nlayers == 2 && sh.layer_window[1] == 128ull << 20, "  its shape has the slots");
	cleanup_vm_desc struct vm_desc d = {0};
	cleanup_free char *ph = kv_asprintf("%s/%s", sbdir, VM_SLOT_FILE);
	ok(vm_desc_build(&d, &vc, &sh, NULL, &p, sbdir, &err) == 0 && d.cfg.n_pmem == 3 &&
	       strcmp(d.cfg.pmem[2].path, ph) == 0 && d.cfg.pmem[2].ro &&
	       d.cfg.pmem[2].window == 128ull << 20,
	   "  pmem1 and pmem2: the placeholder, read-only, with the window");
	struct stat st;
	cleanup_free char *table = NULL, *tpath = kv_asprintf("%s/layer-slots", sbdir);
	ok(slots_prepare(&p, sbdir, &err) == 0 && stat(ph, &st) == 0 && st.st_size == 4096 &&
	       kv_read_file(tpath, 4096, &table, NULL, &err) == 0 &&
	       strcmp(table, "1 134217728\n2 134217728\n") == 0,
	   "  its directory: the placeholder and the slot table");
	rootfs_plan_free(&p);
	static const char *const bad[] = {"0", "8", "2:x", "x", "2:", "1:65G"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		cleanup_free char *extra = kv_asprintf(
		    ",\"annotations\":{\"" POD_LAYER_SLOTS_ANNOTATION "\":\"%s\"}", bad[i]);
		cleanup_oci_config struct oci_config *cfg = config(extra);
		struct rootfs_plan q = {.shared = true};
		ok(cfg && rootfs_prepare(tmp, cfg, rootfs, b, &q, &err) < 0 &&
		       strstr(err->msg, "annotation " POD_LAYER_SLOTS_ANNOTATION) &&
		       strstr(err->msg, "COUNT"),
		   "  \"%s\": refused, naming the annotation", bad[i]);
		kv_err_free(err);
		err = NULL;
		rootfs_plan_free(&q);
	}

	/* A member with two layers: the first fits a slot, and so does the second. */
	cleanup_free char *l0 = kv_asprintf("%s/l0.erofs", b), *l1 = kv_asprintf("%s/l1.erofs", b);
	erofs_file(l0, 8192);
	erofs_file(l1, 4096);
	cleanup_free char *extra =
	    kv_asprintf(",\"annotations\":{\"" IMAGE_LAYERS_ANNOTATION "\":\"%s,%s\"}", l0, l1);
	cleanup_oci_config struct oci_config *member = config(extra);
	struct rootfs_plan m = {.shared = false};
	ok(member && rootfs_prepare(tmp, member, rootfs, b, &m, &err) == 0 && m.n_layers == 2 &&
	       m.n_live == 1 && m.upper_path && strstr(m.rootfs_json, "\"upper\":{\"path\":"),
	   "member with layers: prepared, its root a live share holding the upper");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	err = NULL;
	cleanup_free char *api = kv_asprintf("%s/api.sock", tmp);
	cleanup_free char *log = kv_asprintf("%s/api.log", tmp);
	pid_t fake = fake_api(api, 2, log);
	ok(slots_attach(&m, "m1", api, sbdir, mdir, &err) == 0 && m.layer_dev[0] == 1 &&
	       m.layer_dev[1] == 2 && strstr(m.rootfs_json, "/dev/pmem1") &&
	       strstr(m.rootfs_json, "/dev/pmem2"),
	   "  slots claimed and bound: its rootfs names pmem1 and pmem2");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
	err = NULL;
	waitpid(fake, NULL, 0);
	cleanup_free char *calls = api_log_take(log);
	is_str(calls,
	       "{\"op\":\"pmem-bind\",\"device\":1} fds=1\n"
	       "{\"op\":\"pmem-bind\",\"device\":2} fds=1\n",
	       "  the VMM was asked to bind each layer's file to its slot");
	cleanup_free char *c1 = kv_asprintf("%s/slot-1.claim", sbdir), *text = NULL;
	ok(kv_read_file(c1, 64, &text, NULL, NULL) == 0 && strcmp(text, "m1") == 0,
	   "  the claim names the member");
	struct rootfs_plan m2 = {.shared = false};
	cleanup_free char *m2dir = kv_asprintf("%s/pod-m2", tmp);
	mkdir(m2dir, 0755);
	ok(rootfs_prepare(tmp, member, rootfs, b, &m2, &err) == 0 &&
	       slots_attach(&m2, "m2", api, sbdir, m2dir, &err) < 0 && err->errnum == ENOSPC &&
	       strstr(err->msg, "annotation " IMAGE_LAYERS_ANNOTATION ": layer 0"),
	   "  a second member finds no free slot: ENOSPC, naming the layer");
	kv_err_free(err);
	err = NULL;
	cleanup_free char *rec2 = kv_asprintf("%s/layer-claims", m2dir);
	ok(access(c1, F_OK) == 0 && access(rec2, F_OK) < 0,
	   "  the first member's claims stay; the second's record is gone");
	rootfs_plan_free(&m2);
	fake = fake_api(api, 2, log);
	slots_release("m1", api, sbdir, mdir);
	waitpid(fake, NULL, 0);
	cleanup_free char *calls2 = api_log_take(log);
	is_str(calls2,
	       "{\"op\":\"pmem-bind\",\"device\":1} fds=0\n"
	       "{\"op\":\"pmem-bind\",\"device\":2} fds=0\n",
	       "  released: zeroes bound to both slots");
	cleanup_free char *c2 = kv_asprintf("%s/slot-2.claim", sbdir);
	cleanup_free char *rec = kv_asprintf("%s/layer-claims", mdir);
	ok(access(c1, F_OK) < 0 && access(c2, F_OK) < 0 && access(rec, F_OK) < 0,
	   "  released: the claims and the record are gone");
	/* All or none: one slot free, two layers: the first is bound, the second
	 * finds none, and the first is given back. */
	write_text(c1, "other");
	struct rootfs_plan m4 = {.shared = false};
	fake = fake_api(api, 2, log);
	ok(rootfs_prepare(tmp, member, rootfs, b, &m4, &err) == 0 &&
	       slots_attach(&m4, "m4", api, sbdir, m2dir, &err) < 0 && err->errnum == ENOSPC &&
	       strstr(err->msg, "layer 1"),
	   "  one free slot for two layers: refused at layer 1");
	kv_err_free(err);
	err = NULL;
	waitpid(fake, NULL, 0);
	cleanup_free char *calls3 = api_log_take(log), *other = NULL;
	is_str(calls3,
	       "{\"op\":\"pmem-bind\",\"device\":2} fds=1\n"
	       "{\"op\":\"pmem-bind\",\"device\":2} fds=0\n",
	       "  the slot it took is bound to zeroes again");
	ok(access(c2, F_OK) < 0 && kv_read_file(c1, 64, &other, NULL, NULL) == 0 &&
	       strcmp(other, "other") == 0,
	   "  and its claim removed; another member's stays");
	unlink(c1);
	rootfs_plan_free(&m4);
	rootfs_plan_free(&m);

	/* A sandbox without slots: a member's layers are refused, saying how. */
	struct rootfs_plan m3 = {.shared = false};
	cleanup_free char *nosb = kv_asprintf("%s/pod-none", tmp);
	mkdir(nosb, 0755);
	ok(rootfs_prepare(tmp, member, rootfs, b, &m3, &err) == 0 &&
	       slots_attach(&m3, "m3", api, nosb, m2dir, &err) < 0 &&
	       strstr(err->msg, "reserved no slots") &&
	       strstr(err->msg, POD_LAYER_SLOTS_ANNOTATION "=COUNT"),
	   "  a sandbox with no slots: the member is refused, naming the annotation to give");
	kv_err_free(err);
	rootfs_plan_free(&m3);
}

int main(void)
{
	if (!mkdtemp(tmp))
		return 1;
	test_conf();
	test_size();
	test_names();
	cleanup_free char *b = bundle();
	test_shared(b);
	test_shared_readonly(b);
	test_live(b);
	test_refusals(b);
	test_pod_slots(b);
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return tap_done();
}
