/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The default config.json of `kvrun spec`: runc's example spec
 * (libcontainer/specconv/example.go), field for field and in Go's field
 * order, tab-indented as `runc spec` writes it. Differences: hostname
 * "kvrun", and the cgroup namespace is always there (the guest runs
 * cgroup v2, the case in which runc adds it).
 */
#include "runtime/runtime.h"

#include <string.h>

static void strs(struct kv_json *j, const char *key, const char *const *v, size_t n)
{
	kv_json_key(j, key);
	kv_json_array_open(j);
	for (size_t i = 0; i < n; i++)
		kv_json_str(j, v[i]);
	kv_json_array_close(j);
}

static void spec_process(struct kv_json *j, const struct spec_image *im)
{
	static const char *const env[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"};
	static const char *const caps[] = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
	static const char *const args[] = {"sh"};
	kv_json_key(j, "process");
	kv_json_map_open(j);
	kv_json_kbool(j, "terminal", !im);
	kv_json_key(j, "user");
	kv_json_map_open(j);
	kv_json_kint(j, "uid", im ? im->uid : 0);
	kv_json_kint(j, "gid", im ? im->gid : 0);
	if (im && im->ngids) {
		kv_json_key(j, "additionalGids");
		kv_json_array_open(j);
		for (size_t i = 0; i < im->ngids; i++)
			kv_json_int(j, im->gids[i]);
		kv_json_array_close(j);
	}
	kv_json_map_close(j);
	if (im) {
		strs(j, "args", (const char *const *)im->args, im->nargs);
		strs(j, "env", (const char *const *)im->env, im->nenv);
	} else {
		strs(j, "args", args, 1);
		strs(j, "env", env, 2);
	}
	kv_json_kstr(j, "cwd", im ? im->cwd : "/");
	kv_json_key(j, "capabilities");
	kv_json_map_open(j);
	strs(j, "bounding", caps, 3);
	strs(j, "effective", caps, 3);
	strs(j, "permitted", caps, 3);
	kv_json_map_close(j);
	kv_json_key(j, "rlimits");
	kv_json_array_open(j);
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "RLIMIT_NOFILE");
	kv_json_kint(j, "hard", 1024);
	kv_json_kint(j, "soft", 1024);
	kv_json_map_close(j);
	kv_json_array_close(j);
	kv_json_kbool(j, "noNewPrivileges", true);
	kv_json_map_close(j);
}

struct spec_mount {
	const char *dest, *type, *source, *opts[7];
};

static const struct spec_mount mounts[] = {
    {"/proc", "proc", "proc", {NULL}},
    {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
    {"/dev/pts",
     "devpts",
     "devpts",
     {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
    {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
    {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
    {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
    {"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}},
};

/* runc's ToRootless: /sys becomes an rbind of the host's. */
static const struct spec_mount rootless_sys = {
    "/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}};

static void spec_mounts(struct kv_json *j, bool rootless)
{
	kv_json_key(j, "mounts");
	kv_json_array_open(j);
	for (size_t i = 0; i < KV_ARRAY_SIZE(mounts); i++) {
		const struct spec_mount *m = &mounts[i];
		if (rootless && strcmp(m->dest, "/sys") == 0)
			m = &rootless_sys;
		kv_json_map_open(j);
		kv_json_kstr(j, "destination", m->dest);
		kv_json_kstr(j, "type", m->type);
		kv_json_kstr(j, "source", m->source);
		if (m->opts[0]) {
			kv_json_key(j, "options");
			kv_json_array_open(j);
			for (size_t k = 0; k < KV_ARRAY_SIZE(m->opts) && m->opts[k]; k++) {
				/* Rootless drops uid=/gid= options: no such ids mapped. */
				if (rootless && (strncmp(m->opts[k], "uid=", 4) == 0 ||
						 strncmp(m->opts[k], "gid=", 4) == 0))
					continue;
				kv_json_str(j, m->opts[k]);
			}
			kv_json_array_close(j);
		}
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
}

static void idmap(struct kv_json *j, const char *key, unsigned id)
{
	kv_json_key(j, key);
	kv_json_array_open(j);
	kv_json_map_open(j);
	kv_json_kint(j, "containerID", 0);
	kv_json_kint(j, "hostID", id);
	kv_json_kint(j, "size", 1);
	kv_json_map_close(j);
	kv_json_array_close(j);
}

static void spec_linux(struct kv_json *j, bool rootless)
{
	static const char *const masked[] = {
	    "/proc/acpi",
	    "/proc/asound",
	    "/proc/kcore",
	    "/proc/keys",
	    "/proc/latency_stats",
	    "/proc/timer_list",
	    "/proc/timer_stats",
	    "/proc/sched_debug",
	    "/sys/firmware",
	    "/proc/scsi",
	    "/sys/devices/virtual/tpm",
	};
	static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
					 "/proc/sysrq-trigger"};
	static const char *const ns[] = {"pid", "network", "ipc", "uts", "mount", "cgroup"};
	static const char *const ns_rootless[] = {"pid", "ipc", "uts", "mount", "cgroup", "user"};
	kv_json_key(j, "linux");
	kv_json_map_open(j);
	if (rootless) {
		idmap(j, "uidMappings", geteuid());
		idmap(j, "gidMappings", getegid());
	} else {
		kv_json_key(j, "resources");
		kv_json_map_open(j);
		kv_json_key(j, "devices");
		kv_json_array_open(j);
		kv_json_map_open(j);
		kv_json_kbool(j, "allow", false);
		kv_json_kstr(j, "access", "rwm");
		kv_json_map_close(j);
		kv_json_array_close(j);
		kv_json_map_close(j);
	}
	kv_json_key(j, "namespaces");
	kv_json_array_open(j);
	for (size_t i = 0; i < KV_ARRAY_SIZE(ns); i++) {
		kv_json_map_open(j);
		kv_json_kstr(j, "type", rootless ? ns_rootless[i] : ns[i]);
		kv_json_map_close(j);
	}
	kv_json_array_close(j);
	strs(j, "maskedPaths", masked, KV_ARRAY_SIZE(masked));
	strs(j, "readonlyPaths", ro, KV_ARRAY_SIZE(ro));
	kv_json_map_close(j);
}

static char *spec_json(bool rootless, const struct spec_image *im)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "ociVersion", OCI_SPEC_VERSION);
	spec_process(j, im);
	kv_json_key(j, "root");
	kv_json_map_open(j);
	kv_json_kstr(j, "path", "rootfs");
	kv_json_kbool(j, "readonly", !im);
	kv_json_map_close(j);
	kv_json_kstr(j, "hostname", "kvrun");
	spec_mounts(j, rootless);
	if (im && im->nann) {
		kv_json_key(j, "annotations");
		kv_json_map_open(j);
		for (size_t i = 0; i < im->nann; i++)
			kv_json_kstr(j, im->ann[i][0], im->ann[i][1]);
		kv_json_map_close(j);
	}
	spec_linux(j, rootless);
	kv_json_map_close(j);
	const char *text;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_json_finish(j, &text, &len, &err) < 0) {
		kv_err_free(err);
		return NULL;
	}
	return oci_json_indent(text, len, "\t");
}

char *spec_default_json(bool rootless)
{
	return spec_json(rootless, NULL);
}

char *spec_image_json(const struct spec_image *im)
{
	return spec_json(false, im);
}
