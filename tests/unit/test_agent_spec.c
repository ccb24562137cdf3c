/* SPDX-License-Identifier: Apache-2.0 */
/* OCI subset decoding: good specs decode; each bad field's error names it. */
#include "agent/agent.h"
#include "agent/spec.h"
#include "oci/oci.h"
#include "tap.h"

#include <sched.h>
#include <sys/mount.h>
#include <yajl/yajl_tree.h>

#define PROC_OK "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"}"

static struct kv_spec *decode(const char *text, char **msg)
{
	struct kv_err *err = NULL;
	*msg = NULL;
	yajl_val v = kv_json_parse(text, "spec", &err);
	struct kv_spec *s = v ? kv_spec_decode(v, &err) : NULL;
	if (s && kv_rootfs_decode(NULL, s, &err) < 0) {
		kv_spec_free(s);
		s = NULL;
	}
	if (err)
		*msg = kv_strdup(err->msg);
	kv_err_free(err);
	if (v)
		yajl_tree_free(v);
	return s;
}

static void bad(const char *text, const char *want)
{
	char *msg;
	struct kv_spec *s = decode(text, &msg);
	ok(!s && msg && strstr(msg, want), "error names the field: %s", msg ? msg : "(accepted)");
	kv_spec_free(s);
	free(msg);
}

static void test_good(void)
{
	char *msg;
	struct kv_spec *s = decode(
	    "{\"process\":{\"args\":[\"sh\",\"-c\",\"x\"],\"env\":[\"A=1\"],\"cwd\":\"/tmp\","
	    "\"terminal\":true,\"consoleSize\":{\"height\":24,\"width\":80},"
	    "\"user\":{\"uid\":1000,\"gid\":1001,\"umask\":18,\"additionalGids\":[5,6]},"
	    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":20}],"
	    "\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"ambient\":[]},"
	    "\"noNewPrivileges\":true,\"oomScoreAdj\":-500},"
	    "\"root\":{\"path\":\"/r\",\"readonly\":true},\"hostname\":\"h\","
	    "\"domainname\":\"example.org\","
	    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	    "{\"destination\":\"/d\",\"type\":\"bind\",\"source\":\"/s\","
	    "\"options\":[\"rbind\",\"ro\",\"nosuid\",\"rprivate\"]},"
	    "{\"destination\":\"/t\",\"type\":\"tmpfs\",\"options\":[\"mode=755\",\"size=1m\"]}],"
	    "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},{\"type\":\"uts\"},"
	    "{\"type\":\"ipc\",\"path\":\"/proc/1/ns/ipc\"}],"
	    "\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"],"
	    "\"resources\":{\"memory\":{\"limit\":1048576},\"pids\":{\"limit\":0}},"
	    "\"sysctl\":{\"kernel.msgmax\":\"1\"},"
	    "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\","
	    "\"no_such_syscall\"],\"action\":\"SCMP_ACT_ALLOW\"}]}}}",
	    &msg);
	ok(s != NULL, "a full spec decodes (%s)", msg ? msg : "ok");
	free(msg);
	if (!s)
		return;
	is_str(s->process.args[2], "x", "args");
	is_int(s->process.uid, 1000, "uid");
	is_int(s->process.ngids, 2, "additionalGids");
	is_int(s->process.umask, 18, "umask");
	is_int(s->process.rows, 24, "consoleSize.height");
	is_int(s->process.rlimits[0].limit.rlim_max, 20, "rlimit hard");
	ok(s->process.caps[KV_CAP_BOUNDING] == ((1ull << 5) | 1ull), "bounding set bits");
	ok(s->process.has_oom_score_adj && s->process.oom_score_adj == -500, "oomScoreAdj");
	is_int(s->nmounts, 3, "mounts");
	ok(s->mounts[1].bind && s->mounts[1].recursive && s->mounts[1].remount_ro &&
	       (s->mounts[1].flags & MS_NOSUID) &&
	       s->mounts[1].propagation == (MS_PRIVATE | MS_REC),
	   "bind mount options");
	is_str(s->mounts[2].data, "mode=755,size=1m", "filesystem data options");
	ok(s->ns_flags == (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS), "namespaces to create");
	is_str(s->ns_paths[KV_NS_IPC], "/proc/1/ns/ipc", "namespace joined by path");
	is_int(s->res.memory_limit, 1048576, "memory limit");
	is_int(s->res.pids_limit, -1, "pids limit 0 means unlimited");
	is_str(s->rootfs.type, "dir", "rootfs defaults to root.path");
	is_str(s->domainname, "example.org", "domainname");
	ok(s->seccomp && s->seccomp->nrules == 1 && s->seccomp->rules[0].nsyscalls == 1,
	   "seccomp: an unknown syscall name is skipped");
	kv_spec_free(s);
}

/* The readers oci/ checks config.json with: uint64 exactly, every rlimit of
 * its table, and the errno a refusal answers with. */
static void test_readers(void)
{
	char *msg;
	struct kv_spec *s = decode("{\"process\":{\"args\":[\"sh\"],\"rlimits\":["
				   "{\"type\":\"RLIMIT_RTTIME\",\"soft\":1,"
				   "\"hard\":18446744073709551615}]}}",
				   &msg);
	ok(s && s->process.nrlimits == 1 && s->process.rlimits[0].resource == RLIMIT_RTTIME &&
	       s->process.rlimits[0].limit.rlim_max == RLIM_INFINITY,
	   "an rlimit of 2^64-1 is RLIM_INFINITY (%s)", msg ? msg : "ok");
	kv_spec_free(s);
	free(msg);
	bad("{\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1.5,"
	    "\"hard\":2}]}}",
	    "process.rlimits[0].soft: must be an integer");
	bad("{\"process\":{\"args\":[\"sh\"],\"terminal\":\"yes\"}}",
	    "process.terminal: must be a boolean");
	const char *codes[][2] = {
	    {"{" PROC_OK ",\"linux\":{\"namespaces\":[{\"type\":\"user\"}]}}", "ENOTSUP"},
	    {"{\"process\":{\"args\":[\"sh\"],\"user\":{\"username\":\"u\"}}}", "ENOTSUP"},
	    {"{\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":\"0\"}}}", "EINVAL"},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(codes); i++) {
		struct kv_err *err = NULL;
		yajl_val v = kv_json_parse(codes[i][0], "spec", &err);
		struct kv_spec *t = kv_spec_decode(v, &err);
		int e = err && err->errnum ? err->errnum : EINVAL; /* as the agent answers */
		ok(!t && err && strcmp(kv_errno_name(e), codes[i][1]) == 0, "answered %s: %s",
		   codes[i][1], err ? err->msg : "(accepted)");
		kv_spec_free(t);
		kv_err_free(err);
		yajl_tree_free(v);
	}
}

/* An empty hostname or domainname is none (runc; the host's oci/ accepts it). */
static void test_empty_uts_names(void)
{
	char *msg;
	struct kv_spec *s = decode("{" PROC_OK ",\"hostname\":\"\",\"domainname\":\"\","
				   "\"root\":{\"path\":\"/r\"},"
				   "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}",
				   &msg);
	ok(s && !s->hostname && !s->domainname,
	   "empty hostname and domainname: unset, no uts namespace needed (%s)", msg ? msg : "ok");
	free(msg);
	kv_spec_free(s);
}

static void test_bad(void)
{
	bad("[]", "spec: must be an object");
	bad("{}", "process: must be an object");
	bad("{\"process\":{\"args\":[]}}", "process.args: must be a non-empty array");
	bad("{\"process\":{\"args\":\"sh\"}}", "process.args: must be a non-empty array");
	bad("{\"process\":{\"args\":[\"sh\",3]}}", "process.args[1]: must be a string");
	bad("{\"process\":{\"args\":[\"\"]}}", "process.args[0]: must not be empty");
	bad("{\"process\":{\"args\":[\"sh\"],\"env\":[\"NOEQUALS\"]}}",
	    "process.env[0]: must be NAME=VALUE");
	bad("{\"process\":{\"args\":[\"sh\"],\"cwd\":\"rel\"}}",
	    "process.cwd: must be an absolute");
	bad("{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/a/../b\"}}", "process.cwd");
	bad("{\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":-1}}}", "process.user.uid");
	bad("{\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":4294967295}}}", "process.user.uid");
	bad("{\"process\":{\"args\":[\"sh\"],\"user\":{\"umask\":512}}}", "process.user.umask");
	bad("{\"process\":{\"args\":[\"sh\"],\"user\":{\"additionalGids\":[1,\"x\"]}}}",
	    "process.user.additionalGids[1]");
	bad("{\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":9,"
	    "\"hard\":1}]}}",
	    "process.rlimits[0]: soft exceeds hard");
	bad("{\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_X\"}]}}",
	    "process.rlimits[0].type: unknown rlimit RLIMIT_X");
	bad("{\"process\":{\"args\":[\"sh\"],\"capabilities\":{\"effective\":[\"CAP_KILL\","
	    "\"CAP_FLY\"]}}}",
	    "process.capabilities.effective[1]: unknown capability CAP_FLY");
	bad("{\"process\":{\"args\":[\"sh\"],\"oomScoreAdj\":1001}}", "process.oomScoreAdj");
	bad("{" PROC_OK ",\"mounts\":{}}", "mounts: must be an array");
	bad("{" PROC_OK ",\"mounts\":[{\"type\":\"proc\"}]}", "mounts[0].destination");
	bad("{" PROC_OK ",\"mounts\":[{\"destination\":\"/x\"}]}", "mounts[0].type: missing");
	bad("{" PROC_OK ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\"}]}",
	    "mounts[0].source: a bind mount needs an absolute source");
	bad("{" PROC_OK ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"tmpfs\","
	    "\"options\":[\"a,b\"]}]}",
	    "mounts[0].options[0]: must not contain a comma");
	bad("{" PROC_OK ",\"mounts\":[{\"destination\":\"/../etc\",\"type\":\"tmpfs\"}]}",
	    "mounts[0].destination");
	bad("{" PROC_OK ",\"linux\":{\"namespaces\":[{\"type\":\"time\"}]}}",
	    "linux.namespaces[0].type: unsupported namespace time");
	bad("{" PROC_OK ",\"linux\":{\"namespaces\":[{\"type\":\"user\"}]}}",
	    "linux.namespaces[0].type");
	bad("{" PROC_OK ",\"hostname\":\"h\",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}",
	    "hostname: needs a uts namespace");
	bad("{" PROC_OK ",\"domainname\":\"d\",\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}",
	    "domainname: needs a uts namespace");
	bad("{" PROC_OK ",\"domainname\":\"a/b\",\"linux\":{\"namespaces\":[{\"type\":\"uts\"}]}}",
	    "domainname: must be at most 64 characters");
	bad("{" PROC_OK ",\"linux\":{\"resources\":{\"memory\":{\"limit\":\"1G\"}}}}",
	    "linux.resources.memory.limit");
	bad("{" PROC_OK ",\"linux\":{\"resources\":{\"cpu\":{\"shares\":999999}}}}",
	    "linux.resources.cpu.shares");
	bad("{" PROC_OK ",\"linux\":{\"sysctl\":{\"../../x\":\"1\"}}}", "linux.sysctl.../../x");
	bad("{" PROC_OK ",\"linux\":{\"sysctl\":{\"kernel.x\":1}}}",
	    "linux.sysctl.kernel.x: must be a string");
	bad("{" PROC_OK ",\"linux\":{\"maskedPaths\":[\"rel\"]}}", "linux.maskedPaths[0]");
	bad("{" PROC_OK ",\"linux\":{\"rootfsPropagation\":\"weird\"}}", "linux.rootfsPropagation");
	bad("{" PROC_OK ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_NOPE\"}}}",
	    "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"");
	bad("{" PROC_OK ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"architectures\":[\"SCMP_ARCH_PDP11\"]}}}",
	    "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_PDP11\"");
	bad("{" PROC_OK ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":5000}]}"
	    "}}",
	    "linux.seccomp.syscalls[0].errnoRet: out of range (maximum 4095)");
	bad("{" PROC_OK ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{"
	    "\"index\":"
	    "9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}}}",
	    "linux.seccomp.syscalls[0].args[0].index: out of range (maximum 5)");
	bad("{" PROC_OK ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{"
	    "\"index\":"
	    "0,\"value\":1,\"op\":\"SCMP_CMP_ABOUT\"}]}]}}}",
	    "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\"");
}

static void test_rootfs(void)
{
	struct kv_err *err = NULL;
	const char *cases[][2] = {
	    {"{\"type\":\"floppy\"}", "rootfs.type: unknown floppy"},
	    {"{\"type\":\"block\",\"device\":\"/dev/pmem1\"}", "block needs"},
	    {"{\"type\":\"virtiofs\"}", "rootfs.tag"},
	    {"{\"type\":\"overlay\",\"layers\":[]}", "rootfs.layers"},
	    {"{\"type\":\"overlay\",\"layers\":[{\"device\":\"/dev/pmem1\",\"path\":\"/x\"}]}",
	     "rootfs.layers[0]: needs exactly one of device, path"},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(cases); i++) {
		struct kv_spec s = {0};
		yajl_val v = kv_json_parse(cases[i][0], "rootfs", &err);
		int r = kv_rootfs_decode(v, &s, &err);
		ok(r < 0 && err && strstr(err->msg, cases[i][1]), "rootfs error: %s",
		   err ? err->msg : "(accepted)");
		kv_err_free(err);
		err = NULL;
		yajl_tree_free(v);
		struct kv_spec *heap = kv_malloc0(sizeof(*heap));
		*heap = s;
		kv_spec_free(heap);
	}
	struct kv_spec s = {0};
	yajl_val v = kv_json_parse("{\"type\":\"overlay\",\"layers\":[{\"device\":\"/dev/pmem1\","
				   "\"fstype\":\"erofs\",\"options\":\"dax\"},{\"path\":\"/l\"}]}",
				   "rootfs", &err);
	ok(kv_rootfs_decode(v, &s, &err) == 0 && s.rootfs.nlayers == 2, "overlay rootfs decodes");
	yajl_tree_free(v);
	struct kv_spec *heap = kv_malloc0(sizeof(*heap));
	*heap = s;
	kv_spec_free(heap);
}

/* Every option `kvrun features` advertises is one the agent applies, never
 * filesystem data (the tables drifted once: nosymfollow, lazytime...). */
static void test_mount_options_advertised(void)
{
	size_t data = 0;
	for (size_t i = 0; i < oci_mount_flag_count; i++) {
		unsigned long set = 0, clear = 0, prop = 0;
		bool bind = false, rec = false;
		if (!kv_mount_option(oci_mount_flags[i].name, &set, &clear, &prop, &bind, &rec))
			data++;
	}
	ok(data == 0, "every advertised mount option (%zu) is applied by the agent (%zu are not)",
	   oci_mount_flag_count, data);
	unsigned long set = 0, clear = 0, prop = 0;
	bool bind = false, rec = false;
	ok(kv_mount_option("nosymfollow", &set, &clear, &prop, &bind, &rec) &&
	       set == MS_NOSYMFOLLOW &&
	       kv_mount_option("lazytime", &set, &clear, &prop, &bind, &rec) &&
	       (set & MS_LAZYTIME) && kv_mount_option("loud", &set, &clear, &prop, &bind, &rec) &&
	       clear == MS_SILENT,
	   "nosymfollow, lazytime, loud are mount(2) flags");
	ok(!kv_mount_option("mode=755", &set, &clear, &prop, &bind, &rec), "mode=755 is data");
}

/* The host's checks with the agent's code (agent.h): what create and exec refuse. */
static void test_host_checks(void)
{
	struct kv_err *err = NULL;
	const char *ok_spec = "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"},"
			      " \"root\": {\"path\": \"/r\"},"
			      " \"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}";
	ok(agent_spec_check(ok_spec, NULL, &err) == 0, "a good spec passes");
	kv_err_free(steal_ptr(err));
	ok(agent_spec_check(ok_spec,
			    "{\"type\": \"overlay\", \"layers\": [{\"device\": "
			    "\"/dev/pmem1\", \"fstype\": \"erofs\"}]}",
			    &err) == 0,
	   "  with a layered rootfs");
	kv_err_free(steal_ptr(err));
	ok(agent_spec_check(ok_spec, "{\"type\": \"overlay\", \"layers\": []}", &err) < 0 &&
	       strstr(err->msg, "layers"),
	   "a rootfs without layers is refused, naming them");
	kv_err_free(steal_ptr(err));
	const char *no_mnt = "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"},"
			     " \"root\": {\"path\": \"/r\"}, \"linux\": {\"namespaces\": []}}";
	ok(agent_spec_check(no_mnt, NULL, &err) < 0 &&
	       strstr(err->msg, "linux.namespaces: a mount namespace is required"),
	   "no mount namespace: refused, named");
	kv_err_free(steal_ptr(err));
	ok(agent_spec_check("{", NULL, &err) < 0 && strstr(err->msg, "the agent's spec"),
	   "broken JSON: refused");
	kv_err_free(steal_ptr(err));
	ok(agent_process_check("{\"args\": [\"sh\"], \"cwd\": \"/\"}", &err) == 0,
	   "a good exec process passes");
	kv_err_free(steal_ptr(err));
	ok(agent_process_check("{\"args\": [], \"cwd\": \"/\"}", &err) < 0 &&
	       strstr(err->msg, "process.args"),
	   "an exec without args: refused, naming process.args");
	kv_err_free(steal_ptr(err));
}

int main(void)
{
	test_mount_options_advertised();
	test_good();
	test_empty_uts_names();
	test_readers();
	test_bad();
	test_rootfs();
	test_host_checks();
	return tap_done();
}
