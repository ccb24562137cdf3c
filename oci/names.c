/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The names config.json may use: namespaces, hooks, capabilities, rlimits,
 * seccomp actions/operators/architectures/flags, mount options. These lists
 * are also what `kvrun features` reports, so they say what kvrun (its agent
 * in an x86_64 guest on Linux 6.1) accepts, not what some other runtime does.
 */
#include "oci/internal.h"

#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

static const char *const ns_names[OCI_NS_COUNT] = {
    [OCI_NS_PID] = "pid",	[OCI_NS_NETWORK] = "network", [OCI_NS_MOUNT] = "mount",
    [OCI_NS_IPC] = "ipc",	[OCI_NS_UTS] = "uts",	      [OCI_NS_USER] = "user",
    [OCI_NS_CGROUP] = "cgroup", [OCI_NS_TIME] = "time",
};

const char *oci_ns_name(enum oci_ns_type t)
{
	return (unsigned)t < OCI_NS_COUNT ? ns_names[t] : "unknown";
}

int oci_ns_from_name(const char *name)
{
	for (int i = 0; i < OCI_NS_COUNT; i++)
		if (strcmp(ns_names[i], name) == 0)
			return i;
	return -1;
}

static const char *const hook_names[OCI_HOOK_KIND_COUNT] = {
    [OCI_HOOK_PRESTART] = "prestart",
    [OCI_HOOK_CREATE_RUNTIME] = "createRuntime",
    [OCI_HOOK_CREATE_CONTAINER] = "createContainer",
    [OCI_HOOK_START_CONTAINER] = "startContainer",
    [OCI_HOOK_POSTSTART] = "poststart",
    [OCI_HOOK_POSTSTOP] = "poststop",
};

const char *oci_hook_name(enum oci_hook_kind k)
{
	return (unsigned)k < OCI_HOOK_KIND_COUNT ? hook_names[k] : "unknown";
}

static const char *const cap_set_names[OCI_CAP_SET_COUNT] = {
    "bounding", "effective", "inheritable", "permitted", "ambient",
};

const char *oci_cap_set_name(enum oci_cap_set s)
{
	return (unsigned)s < OCI_CAP_SET_COUNT ? cap_set_names[s] : "unknown";
}

/* Indexed by capability number, as in <linux/capability.h> (Linux 6.1). */
const char *const oci_capability_names[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};
const size_t oci_capability_count = KV_ARRAY_SIZE(oci_capability_names);

int oci_capability_from_name(const char *name)
{
	for (size_t i = 0; i < oci_capability_count; i++)
		if (strcmp(oci_capability_names[i], name) == 0)
			return (int)i;
	return -1;
}

static const struct {
	const char *name;
	int resource;
} rlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},		  {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},	  {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},	  {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},	  {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},	  {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},	  {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},	  {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

int oci_rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(rlimits); i++)
		if (strcmp(rlimits[i].name, name) == 0)
			return rlimits[i].resource;
	return -1;
}

const char *const oci_seccomp_actions[] = {
    "SCMP_ACT_ALLOW",	     "SCMP_ACT_ERRNO",	     "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",	     "SCMP_ACT_TRACE",	     "SCMP_ACT_TRAP",
};
const size_t oci_seccomp_action_count = KV_ARRAY_SIZE(oci_seccomp_actions);
_Static_assert(KV_ARRAY_SIZE(oci_seccomp_actions) == OCI_SECCOMP_ACTION_COUNT, "oci.h");

/* Order matches enum oci_seccomp_cmp. */
const char *const oci_seccomp_operators[] = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",	"SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};
const size_t oci_seccomp_operator_count = KV_ARRAY_SIZE(oci_seccomp_operators);
_Static_assert(KV_ARRAY_SIZE(oci_seccomp_operators) == OCI_SECCOMP_OPERATOR_COUNT, "oci.h");

/* The guest is x86_64: these are the architectures a filter can name there. */
const char *const oci_seccomp_archs[] = {
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
};
const size_t oci_seccomp_arch_count = KV_ARRAY_SIZE(oci_seccomp_archs);
_Static_assert(KV_ARRAY_SIZE(oci_seccomp_archs) == OCI_SECCOMP_ARCH_COUNT, "oci.h");

/*
 * Architectures a config may list: filters written for several hosts
 * (Docker's default profile) name others too; libseccomp ignores those on
 * x86_64, and so will the agent.
 */
static const char *const accepted_archs[] = {
    "SCMP_ARCH_X86",	 "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",		"SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",	"SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",	 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",	 "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",	"SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",	 "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",	"SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",	 "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB",
};

bool oci_seccomp_arch_accepted(const char *name)
{
	return oci_name_in(name, accepted_archs, KV_ARRAY_SIZE(accepted_archs));
}

const char *const oci_seccomp_flags[] = {
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
};
const size_t oci_seccomp_flag_count = KV_ARRAY_SIZE(oci_seccomp_flags);

/* Linux's values, for libcs whose sys/mount.h predates them. */
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef MS_LAZYTIME
#define MS_LAZYTIME (1 << 25)
#endif

#define FLAG(n, s, c)                                                                              \
	{                                                                                          \
		.name = n, .set = s, .clear = c                                                    \
	}
#define PROP(n, p)                                                                                 \
	{                                                                                          \
		.name = n, .propagation = p                                                        \
	}
const struct oci_mount_flag oci_mount_flags[] = {
    FLAG("ro", MS_RDONLY, 0),
    FLAG("rw", 0, MS_RDONLY),
    FLAG("nosuid", MS_NOSUID, 0),
    FLAG("suid", 0, MS_NOSUID),
    FLAG("nodev", MS_NODEV, 0),
    FLAG("dev", 0, MS_NODEV),
    FLAG("noexec", MS_NOEXEC, 0),
    FLAG("exec", 0, MS_NOEXEC),
    FLAG("sync", MS_SYNCHRONOUS, 0),
    FLAG("async", 0, MS_SYNCHRONOUS),
    FLAG("dirsync", MS_DIRSYNC, 0),
    FLAG("remount", MS_REMOUNT, 0),
    FLAG("mand", MS_MANDLOCK, 0),
    FLAG("nomand", 0, MS_MANDLOCK),
    FLAG("atime", 0, MS_NOATIME),
    FLAG("noatime", MS_NOATIME, 0),
    FLAG("diratime", 0, MS_NODIRATIME),
    FLAG("nodiratime", MS_NODIRATIME, 0),
    FLAG("relatime", MS_RELATIME, 0),
    FLAG("norelatime", 0, MS_RELATIME),
    FLAG("strictatime", MS_STRICTATIME, 0),
    FLAG("nostrictatime", 0, MS_STRICTATIME),
    FLAG("lazytime", MS_LAZYTIME, 0),
    FLAG("nolazytime", 0, MS_LAZYTIME),
    FLAG("iversion", MS_I_VERSION, 0),
    FLAG("noiversion", 0, MS_I_VERSION),
    FLAG("nosymfollow", MS_NOSYMFOLLOW, 0),
    FLAG("symfollow", 0, MS_NOSYMFOLLOW),
    FLAG("silent", MS_SILENT, 0),
    FLAG("loud", 0, MS_SILENT),
    FLAG("defaults", 0, 0),
    PROP("private", MS_PRIVATE),
    PROP("rprivate", MS_PRIVATE | MS_REC),
    PROP("shared", MS_SHARED),
    PROP("rshared", MS_SHARED | MS_REC),
    PROP("slave", MS_SLAVE),
    PROP("rslave", MS_SLAVE | MS_REC),
    PROP("unbindable", MS_UNBINDABLE),
    PROP("runbindable", MS_UNBINDABLE | MS_REC),
    {.name = "bind", .bind = true},
    {.name = "rbind", .bind = true, .recursive = true},
};
#undef FLAG
#undef PROP
const size_t oci_mount_flag_count = KV_ARRAY_SIZE(oci_mount_flags);

const struct oci_mount_flag *oci_mount_flag_find(const char *name)
{
	for (size_t i = 0; i < oci_mount_flag_count; i++)
		if (strcmp(name, oci_mount_flags[i].name) == 0)
			return &oci_mount_flags[i];
	return NULL;
}

bool oci_mount_is_bind(const struct oci_mount *m)
{
	if (m->type && strcmp(m->type, "bind") == 0)
		return true;
	for (size_t i = 0; i < m->options.n; i++)
		if (strcmp(m->options.v[i], "bind") == 0 || strcmp(m->options.v[i], "rbind") == 0)
			return true;
	return false;
}

static const char *const status_names[] = {
    [OCI_STATUS_CREATING] = "creating", [OCI_STATUS_CREATED] = "created",
    [OCI_STATUS_RUNNING] = "running",	[OCI_STATUS_PAUSED] = "paused",
    [OCI_STATUS_STOPPED] = "stopped",
};

const char *oci_status_name(enum oci_status s)
{
	return (unsigned)s < KV_ARRAY_SIZE(status_names) ? status_names[s] : "unknown";
}

int oci_status_from_name(const char *name)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(status_names); i++)
		if (strcmp(status_names[i], name) == 0)
			return (int)i;
	return -1;
}
