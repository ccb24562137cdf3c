/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM templates without a VM (runtime/template.c): the key and what changes
 * it, the switches that turn templates off, finding one (a missing, partial
 * or stale one is a cold boot), a clone's kvrun-vmm command line (the
 * template's device order), list and rm; the shim's clone request fields.
 */
#include "runtime/template.h"
#include "shim/internal.h"
#include "tap.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

static char tmp[] = "/tmp/test_runtime_template.XXXXXX";

static void write_text(const char *path, const char *text)
{
	struct kv_err *err = NULL;
	if (kv_write_file_atomic(path, text, strlen(text), 0644, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
}

static struct vm_conf *conf(void)
{
	struct vm_conf *c = kv_malloc0(sizeof(*c));
	c->kernel = kv_asprintf("%s/vmlinux", tmp);
	c->image = kv_asprintf("%s/rootfs.erofs", tmp);
	c->vmm = kv_asprintf("%s/kvrun-vmm", tmp);
	c->shim = kv_strdup("/bin/false");
	c->template_dir = kv_asprintf("%s/templates", tmp);
	c->templates = true;
	c->cpus = 1;
	c->memory = 256ull << 20;
	c->boot_timeout_s = 1;
	return c;
}

static const struct tmpl_shape base = {.cpus = 1, .mem = 256ull << 20, .rootfs_dax = 256ull << 20};

static void test_key(struct vm_conf *c)
{
	char a[TEMPLATE_ID_LEN + 1], b[TEMPLATE_ID_LEN + 1];
	cleanup_free char *ka = NULL, *kb = NULL, *kc = NULL, *kd = NULL;
	struct kv_err *err = NULL;
	ok(tmpl_key(c, &base, &ka, a, &err) == 0 && strlen(a) == TEMPLATE_ID_LEN,
	   "a key and a 16-digit id");
	ok(tmpl_key(c, &base, &kb, b, &err) == 0 && strcmp(a, b) == 0 && strcmp(ka, kb) == 0,
	   "the same inputs: the same key");
	struct tmpl_shape two = base;
	two.cpus = 2;
	ok(tmpl_key(c, &two, &kc, b, &err) == 0 && strcmp(a, b) != 0,
	   "another vCPU count: another id");
	ok(strstr(ka, "cmdline root=/dev/pmem0") && strstr(ka, "memory 268435456"),
	   "the key names the command line and memory");
	/* A rebuilt kernel (a new modification time) is another kernel. */
	struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 0}};
	utimensat(AT_FDCWD, c->kernel, ts, 0);
	ok(tmpl_key(c, &base, &kd, b, &err) == 0 && strcmp(a, b) != 0,
	   "a touched kernel: another id");
	free(c->kernel);
	c->kernel = kv_strdup("/nonexistent/vmlinux");
	cleanup_free char *ke = NULL;
	ok(tmpl_key(c, &base, &ke, b, &err) < 0 && err && strstr(err->msg, "/nonexistent/vmlinux"),
	   "a missing kernel: an error naming it");
	kv_err_free(err);
	free(c->kernel);
	c->kernel = kv_asprintf("%s/vmlinux", tmp);
}

static struct oci_config *config_with(const char *key, const char *value)
{
	struct oci_config *cfg = kv_malloc0(sizeof(*cfg));
	if (key) {
		cfg->annotations.n = 1;
		cfg->annotations.v = kv_malloc0(sizeof(*cfg->annotations.v));
		cfg->annotations.v[0].key = kv_strdup(key);
		cfg->annotations.v[0].value = kv_strdup(value);
	}
	return cfg;
}

static void config_free(struct oci_config **cfg)
{
	for (size_t i = 0; i < (*cfg)->annotations.n; i++) {
		free((*cfg)->annotations.v[i].key);
		free((*cfg)->annotations.v[i].value);
	}
	free((*cfg)->annotations.v);
	free(*cfg);
}
#define cleanup_config __attribute__((cleanup(config_free)))

static void test_enabled(struct vm_conf *c)
{
	const char *off[] = {"false", "off", "0", "no"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(off); i++) {
		cleanup_config struct oci_config *cfg = config_with(TEMPLATE_ANNOTATION, off[i]);
		ok(!tmpl_enabled(c, cfg), "annotation %s=%s: off", TEMPLATE_ANNOTATION, off[i]);
	}
	cleanup_config struct oci_config *on = config_with(TEMPLATE_ANNOTATION, "true");
	cleanup_config struct oci_config *none = config_with(NULL, NULL);
	ok(tmpl_enabled(c, on) && tmpl_enabled(c, none), "annotation true or absent: on");
	c->templates = false;
	ok(!tmpl_enabled(c, none), "config templates: false: off");
	c->templates = true;
}

static void test_find(struct vm_conf *c)
{
	char id[TEMPLATE_ID_LEN + 1];
	cleanup_free char *key = NULL;
	struct kv_err *err = NULL;
	if (tmpl_key(c, &base, &key, id, &err) < 0)
		return;
	char *dir = NULL;
	tmpl_find(c, &base, &dir);
	ok(dir == NULL, "no template directory: cold boot");
	cleanup_free char *d = kv_asprintf("%s/%s", c->template_dir, id);
	cleanup_free char *info = kv_asprintf("%s/%s", d, TEMPLATE_INFO);
	if (kv_mkdir_p(d, 0700, &err) < 0)
		return;
	tmpl_find(c, &base, &dir);
	ok(dir == NULL, "a template without template.json (half made): cold boot");
	write_text(info, "{\"key\":\"kvrun-template 1\\nsomething else\\n\"}");
	tmpl_find(c, &base, &dir);
	ok(dir == NULL, "a template whose key differs: cold boot");
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "key", key);
	kv_json_kint(j, "cpus", 1);
	kv_json_key(j, "memory");
	kv_json_uint(j, 256ull << 20);
	kv_json_key(j, "rootfs_dax");
	kv_json_uint(j, 256ull << 20);
	kv_json_map_close(j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, &err) == 0)
		write_text(info, text);
	tmpl_find(c, &base, &dir);
	ok(dir && strcmp(dir, d) == 0, "a template whose key matches: found (%s)", dir);
	free(dir);
	struct tmpl_shape other = base;
	other.mem = 512ull << 20;
	tmpl_find(c, &other, &dir);
	ok(dir == NULL, "another memory size: not this template");
}

static yajl_val argv_of(const struct vm_conf *c, const struct rootfs_plan *p, const char *sbdir,
			char **text_out)
{
	cleanup_vm_desc struct vm_desc d = {0};
	cleanup_json struct kv_json *j = kv_json_new(false);
	struct kv_err *err = NULL;
	kv_json_map_open(j);
	if (vm_desc_build(&d, c, &base, "/t/x", p, sbdir, &err) < 0 ||
	    vm_desc_json(&d, c->vmm, j, "vmm_argv", &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
		return NULL;
	}
	kv_json_map_close(j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, &err) < 0)
		return NULL;
	*text_out = kv_strdup(text);
	return yajl_tree_parse(*text_out, NULL, 0);
}

/* The argument after `flag`, the n-th time it appears. */
static const char *arg_after(yajl_val argv, const char *flag, unsigned n)
{
	const char *path[] = {"vmm_argv", NULL};
	yajl_val a = yajl_tree_get(argv, path, yajl_t_array);
	for (size_t i = 0; a && i + 1 < a->u.array.len; i++)
		if (YAJL_IS_STRING(a->u.array.values[i]) &&
		    strcmp(a->u.array.values[i]->u.string, flag) == 0 && n-- == 0)
			return a->u.array.values[i + 1]->u.string;
	return NULL;
}

static void test_clone_argv(struct vm_conf *c)
{
	const char *fs[] = {"binds/b0=/host/vol,ro", "binds/b1=/host/hosts,rw",
			    "rootfs=/bundle/rootfs,rw,dax=256M"};
	struct plan_share binds[] = {{(char *)"b0", (char *)"/host/vol", true},
				     {(char *)"b1", (char *)"/host/hosts", false}};
	struct rootfs_plan p = {.shared = true,
				.root = (char *)"/bundle/rootfs",
				.binds = binds,
				.n_binds = 2,
				.dax_window = 256ull << 20};
	cleanup_free char *sbdir = kv_asprintf("%s/sb", tmp);
	mkdir(sbdir, 0755);
	cleanup_free char *text = NULL;
	yajl_val v = argv_of(c, &p, sbdir, &text);
	ok(v && strcmp(arg_after(v, "--restore", 0), "/t/x") == 0, "--restore the template");
	ok(v && arg_after(v, "--fs", 0) && strcmp(arg_after(v, "--fs", 0), fs[2]) == 0 &&
	       strcmp(arg_after(v, "--fs", 1), fs[0]) == 0 &&
	       strcmp(arg_after(v, "--fs", 2), fs[1]) == 0,
	   "the rootfs share first, then the binds (the template's order)");
	ok(v && strstr(arg_after(v, "--pmem", 0), "rootfs.erofs,ro") && !arg_after(v, "--pmem", 1),
	   "the guest image, no other pmem device");
	ok(v && arg_after(v, "--fs", 3) && strcmp(arg_after(v, "--fs", 3), "pod/") == 0,
	   "the live device after the shares, as in the template");
	const char *argv_path[] = {"vmm_argv", NULL};
	yajl_val a = v ? yajl_tree_get(v, argv_path, yajl_t_array) : NULL;
	const char *last =
	    a && a->u.array.len > 0 ? YAJL_GET_STRING(a->u.array.values[a->u.array.len - 1]) : NULL;
	ok(last && strcmp(last, "--net") == 0, "the NIC last (--net), as in the template");
	ok(v && !arg_after(v, "--kernel", 0) && !arg_after(v, "--mem", 0) &&
	       !arg_after(v, "--cmdline", 0),
	   "no kernel, memory or command line: they are the snapshot's");
	yajl_tree_free(v);
	free(steal_ptr(text));
	struct rootfs_plan q = {
	    .shared = true, .root = (char *)"/bundle/rootfs", .dax_window = 256ull << 20};
	v = argv_of(c, &q, sbdir, &text);
	cleanup_free char *empty = kv_asprintf("binds=%s/empty,ro", sbdir);
	cleanup_free char *empty_dir = kv_asprintf("%s/empty", sbdir);
	struct stat st;
	ok(v && strcmp(arg_after(v, "--fs", 1), empty) == 0 && stat(empty_dir, &st) == 0 &&
	       S_ISDIR(st.st_mode),
	   "no bind mounts: an empty binds share, as in the template");
	yajl_tree_free(v);
}

/* A template's devices and its clones', from the one description; a mismatch is named. */
static void test_layout(struct vm_conf *c)
{
	struct kv_err *err = NULL;
	cleanup_free char *sbdir = kv_asprintf("%s/sb2", tmp), *tdir = kv_asprintf("%s/t2", tmp);
	mkdir(sbdir, 0755);
	mkdir(tdir, 0755);
	struct plan_share binds[] = {{(char *)"b0", (char *)"/v", true},
				     {(char *)"b4", (char *)"/etc/hosts", false}};
	struct rootfs_plan with = {.shared = true,
				   .root = (char *)"/r",
				   .root_ro = true,
				   .binds = binds,
				   .n_binds = 2,
				   .dax_window = base.rootfs_dax};
	struct rootfs_plan without = {
	    .shared = true, .root = (char *)"/r", .dax_window = base.rootfs_dax};
	cleanup_vm_desc struct vm_desc t = {0}, cold = {0}, c1 = {0}, c2 = {0};
	ok(vm_desc_build(&t, c, &base, NULL, NULL, tdir, &err) == 0 &&
	       vm_desc_build(&cold, c, &base, NULL, &with, sbdir, &err) == 0 &&
	       vm_desc_build(&c1, c, &base, "/t/x", &with, sbdir, &err) == 0 &&
	       vm_desc_build(&c2, c, &base, "/t/x", &without, sbdir, &err) == 0,
	   "a template, a cold VM and two clones described");
	cleanup_free char *lt = vmm_config_layout(&t.cfg), *lcold = vmm_config_layout(&cold.cfg);
	cleanup_free char *l1 = vmm_config_layout(&c1.cfg), *l2 = vmm_config_layout(&c2.cfg);
	is_str(lt, "pmem\nfs rootfs dax=268435456\nfs binds\nfs pod live\nvsock\nnet\nrng\n",
	       "a template's devices");
	ok(strcmp(lt, lcold) == 0 && strcmp(lt, l1) == 0 && strcmp(lt, l2) == 0,
	   "a cold VM's and a clone's, with or without bind mounts, are the template's");
	ok(t.cfg.kernel && t.cfg.mem_given && !c1.cfg.kernel && !c1.cfg.mem_given &&
	       strcmp(c1.cfg.restore_dir, "/t/x") == 0,
	   "the template boots the kernel at its size; a clone restores");
	cleanup_free char *key = NULL;
	char id[TEMPLATE_ID_LEN + 1];
	ok(tmpl_key(c, &base, &key, id, &err) == 0 && strstr(key, "\ndevices\npmem\nfs rootfs"),
	   "the key names the devices");

	cleanup_free char *info = kv_asprintf("%s/%s", tdir, TEMPLATE_INFO);
	ok(tmpl_layout_check(tdir, &c1.cfg, &err) < 0 && strstr(err->msg, "records no devices"),
	   "a template.json without devices: an error saying so");
	kv_err_free(steal_ptr(err));
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "devices", lt);
	kv_json_map_close(j);
	const char *text;
	size_t len;
	if (kv_json_finish(j, &text, &len, &err) == 0)
		write_text(info, text);
	ok(tmpl_layout_check(tdir, &c1.cfg, &err) == 0 &&
	       tmpl_layout_check(tdir, &c2.cfg, &err) == 0,
	   "a clone with the template's devices passes");
	/* A clone without the binds share (the mismatch that was a silent cold boot). */
	c1.cfg.fs[1] = c1.cfg.fs[2];
	c1.cfg.n_fs = 2;
	ok(tmpl_layout_check(tdir, &c1.cfg, &err) < 0 &&
	       strstr(err->msg, "device 2 is 'fs binds' in the template, 'fs pod live' in this VM"),
	   "a clone with other devices: the error names the slot and both");
	kv_err_free(steal_ptr(err));
	c2.cfg.net = false;
	ok(tmpl_layout_check(tdir, &c2.cfg, &err) < 0 &&
	       strstr(err->msg, "device 5 is 'net' in the template, 'rng' in this VM"),
	   "a clone without the NIC: named");
	kv_err_free(err);
}

static void test_list_rm(struct vm_conf *c)
{
	struct kv_err *err = NULL;
	cleanup_free char *fake = kv_asprintf("%s/00000000000000aa", c->template_dir);
	cleanup_free char *keep = kv_asprintf("%s/not-a-template", c->template_dir);
	if (kv_mkdir_p(fake, 0700, &err) < 0 || kv_mkdir_p(keep, 0700, &err) < 0)
		return;
	char buf[8192] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	ok(tmpl_list(c, true, f, &err) == 0, "list --format json");
	fclose(f);
	cleanup_yajl_val yajl_val arr = kv_json_parse(buf, "list", &err);
	ok(arr && YAJL_IS_ARRAY(arr) && arr->u.array.len == 1, "one template listed: %s", buf);
	ok(strstr(buf, "\"current\":true") != NULL, "and it is current");
	ok(tmpl_remove(c, "xyz", &err) < 0 && strstr(err->msg, "16 hex digits"), "rm: a bad id");
	kv_err_free(steal_ptr(err));
	ok(tmpl_remove(c, "00000000000000bb", &err) < 0 && strstr(err->msg, "does not exist"),
	   "rm: a missing one");
	kv_err_free(steal_ptr(err));
	ok(tmpl_remove(c, "00000000000000aa", &err) == 0 && access(fake, F_OK) < 0, "rm: one id");
	ok(tmpl_remove(c, NULL, &err) == 0 && access(keep, F_OK) == 0,
	   "rm --all: templates only, other entries stay");
	cleanup_free char *root = tmpl_root(c);
	setenv("KVRUN_TEMPLATE_DIR", "/elsewhere", 1);
	cleanup_free char *env = tmpl_root(c);
	unsetenv("KVRUN_TEMPLATE_DIR");
	ok(strcmp(root, c->template_dir) == 0 && strcmp(env, "/elsewhere") == 0,
	   "the template directory: $KVRUN_TEMPLATE_DIR, then the config");
}

/*
 * A shim killed while it snapshots leaves its temporary directory: the one
 * tmpl_plan_out recorded in the state dir goes with the container, and
 * nothing else does.
 */
static void test_plan_out_tmp_remove(struct vm_conf *c)
{
	struct kv_err *err = NULL;
	cleanup_free char *sdir = kv_asprintf("%s/state-plan", tmp);
	if (kv_mkdir_p(sdir, 0700, &err) < 0)
		return;
	cleanup_json struct kv_json *j = kv_json_new(false);
	struct vmm_config cfg = {0};
	kv_json_map_open(j);
	unsigned max = c->template_max;
	c->template_max = 8;
	tmpl_plan_out(c, &base, &cfg, sdir, j);
	c->template_max = max;
	kv_json_map_close(j);
	cleanup_free char *req = kv_json_finish_dup(j, NULL, &err);
	cleanup_yajl_val yajl_val v = req ? kv_json_parse(req, "plan", &err) : NULL;
	const char *t = v ? kv_jstr(v, "template_tmp") : NULL;
	ok(t != NULL, "a cold VM is told where to leave a template");
	if (!t)
		return;
	cleanup_free char *rec = kv_asprintf("%s/template.tmp", sdir);
	cleanup_free char *text = NULL;
	ok(kv_read_file(rec, 4096, &text, NULL, &err) == 0 && strcmp(text, t) == 0,
	   "its temporary directory is recorded in the state dir");
	/* The shim got as far as part of a snapshot. */
	cleanup_free char *mem = kv_asprintf("%s/memory", t);
	if (kv_mkdir_p(t, 0700, &err) == 0)
		write_text(mem, "half");
	tmpl_tmp_remove(sdir);
	ok(access(t, F_OK) < 0 && access(rec, F_OK) < 0, "removed with the container, record too");
	/* A record that names anything but a .tmp- directory removes nothing. */
	cleanup_free char *other = kv_asprintf("%s/keep-me", tmp);
	if (kv_mkdir_p(other, 0700, &err) == 0)
		write_text(rec, other);
	tmpl_tmp_remove(sdir);
	ok(access(other, F_OK) == 0, "only a .tmp- directory is ever removed");
	kv_err_free(err);
}

/* A template directory whose path needs escaping: --format json stays JSON. */
static void test_list_json_escaped(void)
{
	struct kv_err *err = NULL;
	cleanup_free char *root = kv_asprintf("%s/we\"ird\\dir", tmp);
	cleanup_free char *dir = kv_asprintf("%s/00000000000000cc", root);
	cleanup_free char *info = kv_asprintf("%s/template.json", dir);
	if (kv_mkdir_p(dir, 0700, &err) < 0) {
		skip("mkdir %s", dir);
		kv_err_free(err);
		return;
	}
	write_text(info, "{\"cpus\":2,\"memory\":268435456,\"created\":0}");
	setenv("KVRUN_TEMPLATE_DIR", root, 1);
	cleanup_vm_conf struct vm_conf *c = conf();
	char buf[8192] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	ok(tmpl_list(c, true, f, &err) == 0, "list --format json, a path with \" and \\");
	fclose(f);
	unsetenv("KVRUN_TEMPLATE_DIR");
	cleanup_yajl_val yajl_val arr = kv_json_parse(buf, "list", &err);
	yajl_val t =
	    arr && YAJL_IS_ARRAY(arr) && arr->u.array.len == 1 ? arr->u.array.values[0] : NULL;
	const char *path = kv_jstr(t, "path"), *id = kv_jstr(t, "id");
	long long cpus = 0;
	ok(path && strcmp(path, dir) == 0 && id && strcmp(id, "00000000000000cc") == 0 &&
	       kv_jint(t, "cpus", &cpus) && cpus == 2,
	   "the path parses back as itself");
	ok(buf[strlen(buf) - 1] == '\n' && strchr(buf, '\n') == buf + strlen(buf) - 1,
	   "one line, as before");
	kv_err_free(err);
}

static void test_shim_request(void)
{
	struct shim_req r;
	struct kv_err *err = NULL;
	memset(&r, 0, sizeof(r));
	ok(shim_req_parse(
	       "{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"owner\":true,"
	       "\"vmm_argv\":[\"vmm\",\"--restore\",\"/t\"],\"vmm_argv_cold\":[\"vmm\","
	       "\"--kernel\",\"k\"],\"clone\":true,\"hostname\":\"c1\",\"container\":\"c\","
	       "\"body\":\"{}\"}",
	       &r, &err) == 0 &&
	       r.clone && strcmp(r.hostname, "c1") == 0 &&
	       strcmp(r.vmm_argv_cold[1], "--kernel") == 0,
	   "shim request: clone, hostname, the cold fallback");
	shim_req_free(&r);
	ok(shim_req_parse("{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"owner\":true,"
			  "\"vmm_argv\":[\"vmm\"],\"hostname\":\"a b\",\"container\":\"c\","
			  "\"body\":\"{}\"}",
			  &r, &err) < 0 &&
	       strstr(err->msg, "hostname"),
	   "shim request: a hostname with a space is refused");
	shim_req_free(&r);
	kv_err_free(steal_ptr(err));
	ok(shim_req_parse("{\"op\":\"create\",\"sandbox_dir\":\"/d\",\"clone\":true,"
			  "\"container\":\"c\",\"body\":\"{}\"}",
			  &r, &err) < 0 &&
	       strstr(err->msg, "clone"),
	   "shim request: clone without owning the VM is refused");
	shim_req_free(&r);
	kv_err_free(err);
}

int main(void)
{
	if (!mkdtemp(tmp))
		return 1;
	cleanup_free char *k = kv_asprintf("%s/vmlinux", tmp),
			  *i = kv_asprintf("%s/rootfs.erofs", tmp),
			  *v = kv_asprintf("%s/kvrun-vmm", tmp);
	write_text(k, "kernel");
	write_text(i, "image");
	write_text(v, "vmm");
	cleanup_vm_conf struct vm_conf *c = conf();
	test_key(c);
	test_enabled(c);
	test_find(c);
	test_clone_argv(c);
	test_layout(c);
	test_list_rm(c);
	test_plan_out_tmp_remove(c);
	test_list_json_escaped();
	test_shim_request();
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return tap_done();
}
