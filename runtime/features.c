/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `kvrun features`: runc's JSON shape (types/features), filled with what
 * kvrun really does. Containers run in an x86_64 Linux 6.1 guest with
 * cgroup v2 only; the agent applies seccomp with libseccomp; there is no
 * AppArmor or SELinux in the guest, so those are reported disabled.
 */
#include "runtime/runtime.h"

#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Go's encoder does not sort slices, but runc's lists are sorted: so are ours. */
static void sorted(struct kv_json *j, const char *key, const char *const *v, size_t n)
{
	const char **copy = kv_malloc0(n * sizeof(*copy));
	memcpy(copy, v, n * sizeof(*copy));
	qsort(copy, n, sizeof(*copy), cmp_str);
	kv_json_key(j, key);
	kv_json_array_open(j);
	for (size_t i = 0; i < n; i++)
		kv_json_str(j, copy[i]);
	kv_json_array_close(j);
	free(copy);
}

static void enabled(struct kv_json *j, const char *key, bool on)
{
	kv_json_key(j, key);
	kv_json_map_open(j);
	kv_json_kbool(j, "enabled", on);
	kv_json_map_close(j);
}

static void features_linux(struct kv_json *j)
{
	const char *ns[OCI_NS_COUNT];
	for (int i = 0; i < OCI_NS_COUNT; i++)
		ns[i] = oci_ns_name(i);
	kv_json_key(j, "linux");
	kv_json_map_open(j);
	sorted(j, "namespaces", ns, OCI_NS_COUNT);
	/* In kernel order, as runc lists them. */
	kv_json_key(j, "capabilities");
	kv_json_array_open(j);
	for (size_t i = 0; i < oci_capability_count; i++)
		kv_json_str(j, oci_capability_names[i]);
	kv_json_array_close(j);
	kv_json_key(j, "cgroup");
	kv_json_map_open(j);
	kv_json_kbool(j, "v1", false);
	kv_json_kbool(j, "v2", true);
	kv_json_kbool(j, "systemd", false);
	kv_json_kbool(j, "systemdUser", false);
	kv_json_map_close(j);
	kv_json_key(j, "seccomp");
	kv_json_map_open(j);
	kv_json_kbool(j, "enabled", true);
	sorted(j, "actions", oci_seccomp_actions, oci_seccomp_action_count);
	sorted(j, "operators", oci_seccomp_operators, oci_seccomp_operator_count);
	sorted(j, "archs", oci_seccomp_archs, oci_seccomp_arch_count);
	kv_json_map_close(j);
	enabled(j, "apparmor", false);
	enabled(j, "selinux", false);
	kv_json_map_close(j);
}

char *features_json(void)
{
	static const char *const hooks[] = {"prestart",	      "createRuntime", "createContainer",
					    "startContainer", "poststart",     "poststop"};
	const struct scmp_version *v = seccomp_version();
	char seccomp_ver[32];
	snprintf(seccomp_ver, sizeof(seccomp_ver), "%u.%u.%u", v->major, v->minor, v->micro);
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "ociVersionMin", OCI_SPEC_VERSION_MIN);
	kv_json_kstr(j, "ociVersionMax", OCI_SPEC_VERSION);
	kv_json_key(j, "hooks");
	kv_json_array_open(j);
	for (size_t i = 0; i < KV_ARRAY_SIZE(hooks); i++)
		kv_json_str(j, hooks[i]);
	kv_json_array_close(j);
	const char **mo = kv_malloc0(oci_mount_flag_count * sizeof(*mo));
	for (size_t i = 0; i < oci_mount_flag_count; i++)
		mo[i] = oci_mount_flags[i].name;
	sorted(j, "mountOptions", mo, oci_mount_flag_count);
	free(mo);
	features_linux(j);
	kv_json_key(j, "annotations");
	kv_json_map_open(j);
	kv_json_kstr(j, "dev.kvrun.version", KVRUN_VERSION);
	/* What of a network namespace reaches the VM (shim/net.c, README). */
	kv_json_kstr(j, "dev.kvrun.network",
		     "the namespace's first Ethernet interface, IPv4 addresses and routes "
		     "(tc mirred to a virtio-net tap); no host networking");
	kv_json_kstr(j, "io.github.seccomp.libseccomp.version", seccomp_ver);
	kv_json_map_close(j);
	kv_json_map_close(j);
	const char *text;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_json_finish(j, &text, &len, &err) < 0) {
		kv_err_free(err);
		return NULL;
	}
	cleanup_free char *pretty = oci_json_indent(text, len, "    ");
	return kv_asprintf("%s\n", pretty);
}
