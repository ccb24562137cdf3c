/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun's configuration file and the VM's size.
 *
 * /etc/kvrun/config.json (or $KVRUN_CONFIG) is optional; every key is. The
 * artifacts are found by one rule, first match wins:
 *   1. the key in the file ("kernel", "image", "vmm", "shim");
 *   2. next to the running kvrun binary: kvrun-vmm and kvrun-shim in the
 *      same directory, the guest kernel and image in its guest/
 *      subdirectory (the build tree: build/kvrun, build/guest/vmlinux);
 *   3. the installed location: $(PREFIX)/bin/kvrun-{vmm,shim} and
 *      $(PREFIX)/share/kvrun/{vmlinux,rootfs.erofs}.
 */
#include "runtime/backend.h"

#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

#ifndef KVRUN_PREFIX
#define KVRUN_PREFIX "/usr/local"
#endif

#define MIB (1ull << 20)
/* kvrun-vmm's --mem limit (vmm/cli.c CLI_MAX_MEM): a bigger VM is refused here, named. */
#define VM_MEM_MAX (1ull << 40)
/* The VMM's limits (vmm/vmm.h) without including it. */
#define VM_MAX_CPUS 64

void vm_conf_free(struct vm_conf *c)
{
	if (!c)
		return;
	free(c->kernel);
	free(c->image);
	free(c->vmm);
	free(c->shim);
	free(c->cmdline);
	free(c->template_dir);
	free(c->path);
	free(c);
}

static int conf_size(yajl_val root, const char *key, const char *file, uint64_t *out,
		     struct kv_err **err)
{
	yajl_val v = kv_jget(root, key);
	if (!v)
		return 0;
	if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
		*out = (uint64_t)YAJL_GET_INTEGER(v);
		return 0;
	}
	if (YAJL_IS_STRING(v) && kv_parse_size(v->u.string, out) == 0 && *out > 0)
		return 0;
	return kv_err_plain(err, EINVAL, "%s: %s: want a size (\"256M\", \"1G\" or bytes)", file,
			    key);
}

static int conf_uint(yajl_val root, const char *key, const char *file, unsigned max, unsigned *out,
		     struct kv_err **err)
{
	yajl_val v = kv_jget(root, key);
	if (!v)
		return 0;
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || YAJL_GET_INTEGER(v) > max)
		return kv_err_plain(err, EINVAL, "%s: %s: want an integer 0..%u", file, key, max);
	*out = (unsigned)YAJL_GET_INTEGER(v);
	return 0;
}

static int conf_str(yajl_val root, const char *key, const char *file, char **out,
		    struct kv_err **err)
{
	yajl_val v = kv_jget(root, key);
	if (!v)
		return 0;
	if (!YAJL_IS_STRING(v) || !*v->u.string)
		return kv_err_plain(err, EINVAL, "%s: %s: want a non-empty string", file, key);
	free(*out);
	*out = kv_strdup(v->u.string);
	return 0;
}

/* A size, or 0 / "0" to turn DAX off. */
static int conf_dax(yajl_val root, const char *file, uint64_t *out, struct kv_err **err)
{
	yajl_val v = kv_jget(root, "rootfs_dax");
	if (v && ((YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 0) ||
		  (YAJL_IS_STRING(v) && strcmp(v->u.string, "0") == 0))) {
		*out = 0;
		return 0;
	}
	return conf_size(root, "rootfs_dax", file, out, err);
}

static int conf_parse(struct vm_conf *c, const char *file, const char *text, struct kv_err **err)
{
	cleanup_yajl_val yajl_val root = kv_json_parse(text, file, err);
	if (!root)
		return -1;
	if (!YAJL_IS_OBJECT(root))
		return kv_err_plain(err, EINVAL, "%s: want a JSON object", file);
	yajl_val dbg = kv_jget(root, "debug");
	if (dbg && !YAJL_IS_TRUE(dbg) && !YAJL_IS_FALSE(dbg))
		return kv_err_plain(err, EINVAL, "%s: debug: want true or false", file);
	c->debug = dbg && YAJL_IS_TRUE(dbg);
	yajl_val tpl = kv_jget(root, "templates");
	if (tpl && !YAJL_IS_TRUE(tpl) && !YAJL_IS_FALSE(tpl))
		return kv_err_plain(err, EINVAL, "%s: templates: want true or false", file);
	if (tpl)
		c->templates = YAJL_IS_TRUE(tpl);
	yajl_val jail = kv_jget(root, "vmm_jail");
	if (jail && !YAJL_IS_TRUE(jail) && !YAJL_IS_FALSE(jail))
		return kv_err_plain(err, EINVAL, "%s: vmm_jail: want true or false", file);
	if (jail)
		c->vmm_jail = YAJL_IS_TRUE(jail);
	if (conf_str(root, "kernel", file, &c->kernel, err) < 0 ||
	    conf_str(root, "image", file, &c->image, err) < 0 ||
	    conf_str(root, "vmm", file, &c->vmm, err) < 0 ||
	    conf_str(root, "shim", file, &c->shim, err) < 0 ||
	    conf_str(root, "kernel_cmdline", file, &c->cmdline, err) < 0 ||
	    conf_str(root, "template_dir", file, &c->template_dir, err) < 0 ||
	    conf_uint(root, "cpus", file, VM_MAX_CPUS, &c->cpus, err) < 0 ||
	    conf_size(root, "memory", file, &c->memory, err) < 0 ||
	    conf_size(root, "console_max", file, &c->console_max, err) < 0 ||
	    conf_size(root, "memory_overhead", file, &c->overhead, err) < 0 ||
	    conf_size(root, "vmm_overhead", file, &c->vmm_overhead, err) < 0 ||
	    conf_size(root, "min_memory", file, &c->min_memory, err) < 0 ||
	    conf_uint(root, "boot_timeout", file, 3600, &c->boot_timeout_s, err) < 0 ||
	    conf_uint(root, "template_max", file, 1024, &c->template_max, err) < 0 ||
	    conf_size(root, "template_disk", file, &c->template_disk, err) < 0 ||
	    conf_dax(root, file, &c->rootfs_dax, err) < 0)
		return -1;
	if (c->cpus == 0 || c->boot_timeout_s == 0)
		return kv_err_plain(err, EINVAL, "%s: cpus and boot_timeout must be at least 1",
				    file);
	return 0;
}

/* Rule 2, then rule 3 (see the top of the file). */
static char *artifact(const char *exe_dir, const char *local, const char *installed)
{
	cleanup_free char *p = kv_asprintf("%s/%s", exe_dir, local);
	if (access(p, F_OK) == 0)
		return steal_ptr(p);
	return kv_asprintf("%s/%s", KVRUN_PREFIX, installed);
}

/* The running binary's directory, in exe (PATH_MAX bytes). */
static const char *exe_dir(char *exe)
{
	ssize_t n = readlink("/proc/self/exe", exe, PATH_MAX - 1);
	exe[n > 0 ? n : 0] = '\0';
	return n > 0 ? dirname(exe) : ".";
}

char *vm_conf_artifact(const char *local, const char *installed)
{
	char exe[PATH_MAX];
	return artifact(exe_dir(exe), local, installed);
}

static void conf_defaults(struct vm_conf *c)
{
	char exe[PATH_MAX];
	const char *dir = exe_dir(exe);
	if (!c->kernel)
		c->kernel = artifact(dir, "guest/vmlinux", "share/kvrun/vmlinux");
	if (!c->image)
		c->image = artifact(dir, "guest/rootfs.erofs", "share/kvrun/rootfs.erofs");
	if (!c->vmm)
		c->vmm = artifact(dir, "kvrun-vmm", "bin/kvrun-vmm");
	if (!c->shim)
		c->shim = artifact(dir, "kvrun-shim", "bin/kvrun-shim");
}

int vm_conf_load(struct vm_conf **out, struct kv_err **err)
{
	struct vm_conf *c = kv_malloc0(sizeof(*c));
	cleanup_vm_conf struct vm_conf *guard = c;
	*c = (struct vm_conf){.cpus = 1,
			      .memory = 256 * MIB,
			      .overhead = 128 * MIB,
			      .vmm_overhead = 64 * MIB,
			      .min_memory = 128 * MIB,
			      .boot_timeout_s = 300,
			      .rootfs_dax = 256 * MIB,
			      .template_max = 8,
			      .template_disk = 4096 * MIB,
			      .templates = true,
			      .vmm_jail = true};
	const char *path = getenv("KVRUN_CONFIG");
	if (!path || !*path)
		path = KVRUN_CONFIG_PATH;
	cleanup_free char *text = NULL;
	struct kv_err *e = NULL;
	if (kv_read_file(path, 1u << 20, &text, NULL, &e) == 0) {
		c->path = kv_strdup(path);
		if (conf_parse(c, path, text, err) < 0)
			return -1;
	} else if (e->errnum != ENOENT) {
		return err_pass(err, e);
	} else {
		kv_err_free(e);
	}
	conf_defaults(c);
	*out = steal_ptr(guard);
	return 0;
}

/* "0-3,8" -> 5 */
static unsigned cpuset_count(const char *s)
{
	unsigned n = 0;
	while (s && *s) {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (end == s)
			return 0;
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		if (b >= a && b - a < 4096)
			n += (unsigned)(b - a + 1);
		s = *end == ',' ? end + 1 : end;
		if (*s && *s != ',' && (*s < '0' || *s > '9'))
			return 0;
	}
	return n;
}

static bool annotation_u64(const struct oci_config *cfg, const char *key, uint64_t *out)
{
	const char *a = oci_annotation(cfg, key);
	char *end;
	if (!a || !*a)
		return false;
	errno = 0;
	unsigned long long v = strtoull(a, &end, 10);
	if (*end || errno || v == 0)
		return false;
	*out = v;
	return true;
}

/* containerd (1.7+) sums a pod's limits into its sandbox container's
 * annotations: io.kubernetes.cri.sandbox-cpu-{quota,period}, -memory. */
static bool pod_quota(const struct oci_config *cfg, unsigned *cpus)
{
	uint64_t quota, period = 100000;
	if (!annotation_u64(cfg, "io.kubernetes.cri.sandbox-cpu-quota", &quota))
		return false;
	(void)annotation_u64(cfg, "io.kubernetes.cri.sandbox-cpu-period", &period);
	*cpus = (unsigned)((quota + period - 1) / period);
	return true;
}

static int size_cpus(const struct vm_conf *vc, const struct oci_config *cfg, unsigned *cpus,
		     struct kv_err **err)
{
	const struct oci_resources *r = cfg->linux_ ? cfg->linux_->resources : NULL;
	const char *a = oci_annotation(cfg, "io.kvrun.vm.cpus");
	*cpus = vc->cpus;
	if (a) {
		char *end;
		unsigned long v = strtoul(a, &end, 10);
		if (!*a || *end || v == 0 || v > VM_MAX_CPUS)
			return kv_err_plain(err, EINVAL,
					    "annotation io.kvrun.vm.cpus=%s: want 1..%d vCPUs", a,
					    VM_MAX_CPUS);
		*cpus = (unsigned)v;
	} else if (pod_quota(cfg, cpus)) {
		/* the pod's sum, which containerd puts on its sandbox container */
	} else if (r && r->has_cpu_quota && r->cpu_quota > 0) {
		uint64_t period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
		*cpus = (unsigned)(((uint64_t)r->cpu_quota + period - 1) / period);
	} else if (r && r->cpu_cpus && cpuset_count(r->cpu_cpus) > 0) {
		*cpus = cpuset_count(r->cpu_cpus);
	}
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (online > 0 && *cpus > (unsigned)online) {
		kv_debug("VM size: %u vCPUs asked, the host has %ld: using %ld", *cpus, online,
			 online);
		*cpus = (unsigned)online;
	}
	if (*cpus > VM_MAX_CPUS)
		*cpus = VM_MAX_CPUS;
	return 0;
}

/*
 * Guest RAM comes in steps of about 1.5x (128M, 192M, 256M, 384M, 512M,
 * 768M, 1G, 1.5G, ...), so that containers with nearby limits share a VM
 * shape and its template. What the guest never touches costs the host
 * nothing, and the container's own limit still applies inside the guest.
 */
uint64_t vm_mem_step(uint64_t mem)
{
	uint64_t step = 128 * MIB;
	while (step < mem) {
		uint64_t half = step + step / 2;
		if (half >= mem)
			return half;
		step *= 2;
	}
	return step;
}

int vm_size(const struct vm_conf *vc, const struct oci_config *cfg, unsigned *cpus, uint64_t *mem,
	    struct kv_err **err)
{
	if (size_cpus(vc, cfg, cpus, err) < 0)
		return -1;
	const struct oci_resources *r = cfg->linux_ ? cfg->linux_->resources : NULL;
	const char *a = oci_annotation(cfg, "io.kvrun.vm.memory");
	const char *from = NULL; /* where the size came from, for the error */
	uint64_t want = 0, over = 0;
	*mem = vc->memory;
	if (a) {
		if (kv_parse_size(a, &want) < 0 || want == 0)
			return kv_err_plain(err, EINVAL,
					    "annotation io.kvrun.vm.memory=%s: want a size such as "
					    "512M or 1G",
					    a);
		from = "annotation io.kvrun.vm.memory";
	} else if (annotation_u64(cfg, "io.kubernetes.cri.sandbox-memory", &want)) {
		from = "annotation io.kubernetes.cri.sandbox-memory";
		over = vc->overhead;
	} else if (r && r->has_memory_limit && r->memory_limit > 0) {
		from = "linux.resources.memory.limit";
		want = (uint64_t)r->memory_limit;
		over = vc->overhead;
	}
	if (from && (want > VM_MEM_MAX || want + over > VM_MEM_MAX))
		return kv_err_plain(err, EINVAL,
				    "%s: %llu bytes (+ %llu of memory_overhead) is more than a VM "
				    "can have (%llu GiB, kvrun-vmm's --mem limit)",
				    from, (unsigned long long)want, (unsigned long long)over,
				    (unsigned long long)(VM_MEM_MAX >> 30));
	if (from)
		*mem = want + over;
	if (*mem < vc->min_memory)
		*mem = vc->min_memory;
	*mem = vm_mem_step(*mem);
	return 0;
}
