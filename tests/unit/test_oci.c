/* SPDX-License-Identifier: Apache-2.0 */
/* config.json: a full good config read field by field, and malformed ones,
 * each with its exact message. */
#include "oci/oci.h"
#include "tap.h"

#include <string.h>
#include <sys/resource.h>

/* Test JSON is written with single quotes; this turns them into double. */
static char *q(const char *s)
{
	char *d = kv_strdup(s);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static const char full_config[] =
    "{'ociVersion':'1.0.2-dev','unknownTop':{'x':[1,2]},"
    "'process':{'terminal':true,'consoleSize':{'height':24,'width':80},"
    " 'user':{'uid':1000,'gid':1001,'umask':18,'additionalGids':[5,6]},"
    " 'args':['sh','-c','echo hi'],'env':['PATH=/bin','TERM=xterm'],'cwd':'/home',"
    " 'capabilities':{'bounding':['CAP_KILL','CAP_CHOWN'],'effective':['CAP_KILL'],"
    "   'inheritable':[],'permitted':['CAP_KILL','CAP_NOT_A_CAP'],'ambient':['CAP_KILL']},"
    " 'rlimits':[{'type':'RLIMIT_NOFILE','hard':1024,'soft':512}],"
    " 'noNewPrivileges':true,'apparmorProfile':'docker-default','selinuxLabel':'l',"
    " 'oomScoreAdj':-500,'futureField':true},"
    "'root':{'path':'rootfs','readonly':true},'hostname':'box','domainname':'example.org',"
    "'mounts':[{'destination':'/proc','type':'proc','source':'proc'},"
    " {'destination':'/data','type':'bind','source':'/srv','options':['rbind','ro']}],"
    "'hooks':{'prestart':[{'path':'/bin/true'}],"
    " 'createRuntime':[{'path':'/bin/hook','args':['hook','a'],'env':['A=1'],'timeout':5}],"
    " 'poststop':[{'path':'/bin/p1'},{'path':'/bin/p2'}]},"
    "'annotations':{'io.kubernetes.cri.sandbox-id':'abc','k':'v'},"
    "'linux':{'namespaces':[{'type':'pid'},{'type':'network','path':'/var/run/netns/n1'},"
    "   {'type':'uts'},{'type':'user'},{'type':'mount'}],"
    " 'uidMappings':[{'containerID':0,'hostID':100000,'size':65536}],"
    " 'gidMappings':[{'containerID':0,'hostID':100000,'size':65536}],"
    " 'resources':{'memory':{'limit':536870912,'reservation':268435456,'swap':-1},"
    "   'cpu':{'shares':1024,'quota':50000,'period':100000,'cpus':'0-1,3','mems':'0'},"
    "   'pids':{'limit':100},'blockIO':{'weight':500,'weightDevice':[]},"
    "   'devices':[{'allow':false,'access':'rwm'},{'allow':true,'type':'c','major':1,"
    "   'minor':3,'access':'rw'}]},"
    " 'cgroupsPath':'/kvrun/c1','sysctl':{'net.ipv4.ip_forward':'1'},"
    " 'seccomp':{'defaultAction':'SCMP_ACT_ERRNO','defaultErrnoRet':1,"
    "   'architectures':['SCMP_ARCH_X86_64','SCMP_ARCH_AARCH64'],"
    "   'flags':['SECCOMP_FILTER_FLAG_LOG'],"
    "   'syscalls':[{'names':['read','write'],'action':'SCMP_ACT_ALLOW'},"
    "     {'names':['personality'],'action':'SCMP_ACT_ALLOW',"
    "      'args':[{'index':0,'value':18446744073709551615,'op':'SCMP_CMP_EQ'}]},"
    "     {'names':['mkdir'],'action':'SCMP_ACT_ERRNO','errnoRet':13}]},"
    " 'maskedPaths':['/proc/kcore'],'readonlyPaths':['/proc/sys'],"
    " 'devices':[{'path':'/dev/fuse','type':'c','major':10,'minor':229,'fileMode':438,"
    "   'uid':0,'gid':0}],"
    " 'rootfsPropagation':'rslave','mountLabel':'system_u:object_r:x'}}";

static void test_full(void)
{
	cleanup_free char *text = q(full_config);
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	int r = oci_config_parse(text, strlen(text), "config.json", &cfg, &err);
	if (!ok(r == 0, "full config parses")) {
		diag("%s", err ? err->msg : "?");
		kv_err_free(err);
		return;
	}
	is_str(cfg->oci_version, "1.0.2-dev", "ociVersion");
	const struct oci_process *p = cfg->process;
	ok(p->terminal && p->has_console_size && p->console_height == 24 && p->console_width == 80,
	   "terminal and consoleSize");
	ok(p->user.uid == 1000 && p->user.gid == 1001 && p->user.has_umask && p->user.umask == 18,
	   "user uid/gid/umask");
	ok(p->user.n_additional_gids == 2 && p->user.additional_gids[1] == 6, "additionalGids");
	ok(p->args.n == 3 && strcmp(p->args.v[2], "echo hi") == 0 && p->args.v[3] == NULL,
	   "args, NULL-terminated");
	ok(p->env.n == 2 && strcmp(p->env.v[1], "TERM=xterm") == 0, "env");
	is_str(p->cwd, "/home", "cwd");
	ok(p->capabilities && p->capabilities->set[OCI_CAP_BOUNDING].n == 2, "bounding set");
	is_int(p->capabilities->set[OCI_CAP_PERMITTED].n, 1, "unknown capability dropped");
	ok(p->capabilities->present[OCI_CAP_INHERITABLE] &&
	       p->capabilities->set[OCI_CAP_INHERITABLE].n == 0,
	   "empty inheritable set is present");
	ok(p->n_rlimits == 1 && p->rlimits[0].resource == RLIMIT_NOFILE &&
	       p->rlimits[0].hard == 1024 && p->rlimits[0].soft == 512,
	   "rlimits");
	ok(p->no_new_privileges, "noNewPrivileges");
	is_str(p->apparmor_profile, "docker-default", "apparmorProfile accepted");
	ok(p->has_oom_score_adj && p->oom_score_adj == -500, "oomScoreAdj");
	ok(cfg->root->readonly && strcmp(cfg->root->path, "rootfs") == 0, "root");
	is_str(cfg->hostname, "box", "hostname");
	is_str(cfg->domainname, "example.org", "domainname");
	ok(cfg->n_mounts == 2 && cfg->mounts[1].options.n == 2 &&
	       strcmp(cfg->mounts[1].source, "/srv") == 0,
	   "mounts");
	ok(cfg->hooks.n[OCI_HOOK_PRESTART] == 1 && cfg->hooks.n[OCI_HOOK_POSTSTOP] == 2 &&
	       cfg->hooks.n[OCI_HOOK_POSTSTART] == 0,
	   "hook counts");
	const struct oci_hook *h = &cfg->hooks.list[OCI_HOOK_CREATE_RUNTIME][0];
	ok(h->timeout == 5 && h->args.n == 2 && h->env.n == 1 && h->has_env, "hook fields");
	ok(!cfg->hooks.list[OCI_HOOK_PRESTART][0].has_env, "a hook without env says so");
	ok(cfg->annotations.n == 2 && strcmp(cfg->annotations.v[0].value, "abc") == 0,
	   "annotations");
	ok(oci_annotation(cfg, "k") && strcmp(oci_annotation(cfg, "k"), "v") == 0 &&
	       !oci_annotation(cfg, "io.kubernetes.cri.sandbox"),
	   "oci_annotation: a key's value, NULL for a key not there");
}

static void test_full_linux(void)
{
	cleanup_free char *text = q(full_config);
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (oci_config_parse(text, strlen(text), "config.json", &cfg, &err) < 0) {
		ok(0, "full config parses (linux)");
		kv_err_free(err);
		return;
	}
	const struct oci_linux *l = cfg->linux_;
	ok(l->n_namespaces == 5 && l->namespaces[1].type == OCI_NS_NETWORK &&
	       strcmp(l->namespaces[1].path, "/var/run/netns/n1") == 0,
	   "namespaces with path");
	ok(l->n_uid_mappings == 1 && l->uid_mappings[0].host_id == 100000 &&
	       l->gid_mappings[0].size == 65536,
	   "id mappings");
	const struct oci_resources *r = l->resources;
	ok(r->has_memory_limit && r->memory_limit == 536870912 && r->memory_swap == -1,
	   "memory limit and swap");
	ok(r->has_cpu_quota && r->cpu_quota == 50000 && r->cpu_period == 100000 &&
	       strcmp(r->cpu_cpus, "0-1,3") == 0,
	   "cpu");
	ok(r->has_pids_limit && r->pids_limit == 100, "pids limit");
	ok(r->has_blkio_weight && r->blkio_weight == 500, "blockIO weight");
	ok(r->n_devices == 2 && !r->devices[0].allow && r->devices[0].type == 'a' &&
	       r->devices[1].major == 1,
	   "device cgroup rules");
	is_str(l->cgroups_path, "/kvrun/c1", "cgroupsPath");
	ok(l->sysctl.n == 1, "sysctl");
	const struct oci_seccomp *s = l->seccomp;
	ok(s && strcmp(s->default_action, "SCMP_ACT_ERRNO") == 0 && s->has_default_errno_ret,
	   "seccomp default action");
	ok(s->n_syscalls == 3 && s->syscalls[1].args[0].value == UINT64_MAX,
	   "seccomp uint64 argument read exactly");
	ok(s->syscalls[2].has_errno_ret && s->syscalls[2].errno_ret == 13, "errnoRet");
	ok(l->n_devices == 1 && l->devices[0].major == 10 && l->devices[0].file_mode == 438,
	   "devices");
	is_str(l->rootfs_propagation, "rslave", "rootfsPropagation");
	ok(l->masked_paths.n == 1 && l->readonly_paths.n == 1, "masked/readonly paths");
}

struct bad_case {
	const char *json;
	const char *msg;
};

#define MIN_PROC "'process':{'args':['sh'],'cwd':'/'}"
#define MIN_ROOT "'root':{'path':'rootfs'}"
#define MIN_TOP	 "'ociVersion':'1.0.2'," MIN_PROC "," MIN_ROOT

static const struct bad_case bad_cases[] = {
    {"[]", "config.json: must be a JSON object"},
    {"{" MIN_PROC "," MIN_ROOT "}", "config.json: ociVersion: required field is missing"},
    {"{'ociVersion':'2.0.0'," MIN_PROC "," MIN_ROOT "}",
     "config.json: ociVersion: unsupported version \"2.0.0\" (kvrun supports 1.x)"},
    {"{'ociVersion':1," MIN_PROC "," MIN_ROOT "}", "config.json: ociVersion: must be a string"},
    {"{'ociVersion':'1.0.0'," MIN_ROOT "}", "config.json: process: required field is missing"},
    {"{'ociVersion':'1.0.0','process':[]," MIN_ROOT "}", "config.json: process: must be an object"},
    {"{'ociVersion':'1.0.0','process':{'args':'sh','cwd':'/'}," MIN_ROOT "}",
     "config.json: process.args: must be a non-empty array"},
    {"{'ociVersion':'1.0.0','process':{'args':[],'cwd':'/'}," MIN_ROOT "}",
     "config.json: process.args: must be a non-empty array"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh',3],'cwd':'/'}," MIN_ROOT "}",
     "config.json: process.args[1]: must be a string"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh']}," MIN_ROOT "}",
     "config.json: process.cwd: required field is missing"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'tmp'}," MIN_ROOT "}",
     "config.json: process.cwd: must be an absolute path"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','env':['A=1','NOEQ']}," MIN_ROOT "}",
     "config.json: process.env[1]: must be of the form KEY=value"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','terminal':'yes'}," MIN_ROOT "}",
     "config.json: process.terminal: must be a boolean"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','user':{'uid':-1}}," MIN_ROOT "}",
     "config.json: process.user.uid: must not be negative"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','user':{'uid':4294967296}}," MIN_ROOT
     "}",
     "config.json: process.user.uid: out of range (maximum 4294967295)"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','user':{'gid':1.5}}," MIN_ROOT "}",
     "config.json: process.user.gid: must be an integer"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','user':{'additionalGids':"
     "[1,'x']}}," MIN_ROOT "}",
     "config.json: process.user.additionalGids[1]: must be an integer"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','rlimits':[{'type':"
     "'RLIMIT_NOFILE','hard':1,'soft':1},{'type':'RLIMIT_BOGUS','hard':1,'soft':1}]}," MIN_ROOT "}",
     "config.json: process.rlimits[1].type: unknown rlimit \"RLIMIT_BOGUS\""},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','rlimits':[{'type':"
     "'RLIMIT_NOFILE','hard':1,'soft':1},{'type':'RLIMIT_NOFILE','hard':2,'soft':2}]}," MIN_ROOT
     "}",
     "config.json: process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\""},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','rlimits':[{'type':"
     "'RLIMIT_NOFILE','hard':1,'soft':2}]}," MIN_ROOT "}",
     "config.json: process.rlimits[0].soft: must not exceed hard (1)"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','rlimits':[{'type':"
     "'RLIMIT_NOFILE','soft':2}]}," MIN_ROOT "}",
     "config.json: process.rlimits[0].hard: required field is missing"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','oomScoreAdj':1001}," MIN_ROOT "}",
     "config.json: process.oomScoreAdj: out of range (-1000 to 1000)"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/','capabilities':{'bounding':"
     "'CAP_KILL'}}," MIN_ROOT "}",
     "config.json: process.capabilities.bounding: must be an array"},
    {"{'ociVersion':'1.0.0','process':{'args':['sh'],'cwd':'/"
     "','consoleSize':{'height':1}}," MIN_ROOT "}",
     "config.json: process.consoleSize.width: required field is missing"},
    {"{'ociVersion':'1.0.0'," MIN_PROC "}", "config.json: root: required field is missing"},
    {"{'ociVersion':'1.0.0'," MIN_PROC ",'root':{'path':''}}",
     "config.json: root.path: must not be empty"},
    {"{" MIN_TOP ",'mounts':[{'destination':'proc','type':'proc'}]}",
     "config.json: mounts[0].destination: must be an absolute path without .."},
    {"{" MIN_TOP ",'mounts':[{'destination':'/a/../../etc','type':'tmpfs'}]}",
     "config.json: mounts[0].destination: must be an absolute path without .."},
    {"{" MIN_TOP ",'mounts':[{'destination':'/a'},{'type':'proc'}]}",
     "config.json: mounts[1].destination: required field is missing"},
    {"{" MIN_TOP ",'mounts':[{'destination':'/a','options':'ro'}]}",
     "config.json: mounts[0].options: must be an array"},
    {"{" MIN_TOP ",'mounts':{}}", "config.json: mounts: must be an array"},
    {"{" MIN_TOP ",'hooks':{'prestart':[{'path':'true'}]}}",
     "config.json: hooks.prestart[0].path: must be an absolute path"},
    {"{" MIN_TOP ",'hooks':{'poststop':[{'path':'/a'},{'path':'/b','timeout':0}]}}",
     "config.json: hooks.poststop[1].timeout: must be a positive integer"},
    {"{" MIN_TOP ",'annotations':{'a':1}}", "config.json: annotations.a: must be a string"},
    {"{" MIN_TOP ",'hooks':{'prestart':[]},'annotations':{'a':1}}",
     "config.json: annotations.a: must be a string"},
    {"{" MIN_TOP ",'hostname':'h'}", "config.json: hostname: requires a new uts namespace"},
    {"{" MIN_TOP ",'hostname':'" /* 65 bytes */
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}",
     "config.json: hostname: longer than 64 bytes"},
};

static const struct bad_case bad_linux_cases[] = {
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'pid'},{'type':'uts'},{'type':'foo'}]}}",
     "config.json: linux.namespaces[2].type: unknown namespace \"foo\""},
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'pid'},{'type':'pid'}]}}",
     "config.json: linux.namespaces[1].type: duplicate namespace \"pid\""},
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'network','path':'netns'}]}}",
     "config.json: linux.namespaces[0].path: must be an absolute path"},
    {"{" MIN_TOP ",'linux':{'namespaces':['pid']}}",
     "config.json: linux.namespaces[0]: must be an object"},
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'user'}]}}",
     "config.json: linux.uidMappings: required with a new user namespace"},
    {"{" MIN_TOP ",'linux':{'uidMappings':[{'containerID':0,'hostID':1,'size':1}]}}",
     "config.json: linux.uidMappings: requires a new user namespace"},
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'user'}],'uidMappings':[{'containerID':0,"
     "'hostID':1,'size':0}]}}",
     "config.json: linux.uidMappings[0].size: must be greater than 0"},
    {"{" MIN_TOP ",'linux':{'resources':{'memory':{'limit':'1G'}}}}",
     "config.json: linux.resources.memory.limit: must be an integer"},
    {"{" MIN_TOP ",'linux':{'resources':{'memory':{'limit':-2}}}}",
     "config.json: linux.resources.memory.limit: out of range (-1 to 9223372036854775807)"},
    {"{" MIN_TOP ",'linux':{'resources':{'memory':{'limit':1000,'swap':10}}}}",
     "config.json: linux.resources.memory.swap: must not be smaller than memory.limit"},
    {"{" MIN_TOP ",'linux':{'resources':{'cpu':{'cpus':'0-a'}}}}",
     "config.json: linux.resources.cpu.cpus: invalid CPU list \"0-a\""},
    {"{" MIN_TOP ",'linux':{'resources':{'pids':{'limit':-5}}}}",
     "config.json: linux.resources.pids.limit: out of range (-1 to 9223372036854775807)"},
    {"{" MIN_TOP ",'linux':{'resources':{'devices':[{'access':'rwm'}]}}}",
     "config.json: linux.resources.devices[0].allow: required field is missing"},
    {"{" MIN_TOP ",'linux':{'resources':{'devices':[{'allow':true,'access':''}]}}}",
     "config.json: linux.resources.devices[0].access: must not be empty"},
    {"{" MIN_TOP ",'linux':{'resources':{'devices':[{'allow':true,'access':'r'},"
     "{'allow':true,'type':'c','major':1}]}}}",
     "config.json: linux.resources.devices[1].access: required field is missing"},
    {"{" MIN_TOP ",'linux':{'resources':{'blockIO':{'weight':2000}}}}",
     "config.json: linux.resources.blockIO.weight: out of range (maximum 1000)"},
    {"{" MIN_TOP ",'linux':{'seccomp':{'syscalls':[]}}}",
     "config.json: linux.seccomp.defaultAction: required field is missing"},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_NOPE'}}}",
     "config.json: linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\""},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','architectures':"
     "['SCMP_ARCH_X86_64','SCMP_ARCH_Z80']}}}",
     "config.json: linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\""},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','flags':['X']}}}",
     "config.json: linux.seccomp.flags[0]: unknown flag \"X\""},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
     "'names':['read'],'action':'SCMP_ACT_ALLOW'},{'names':[],'action':'SCMP_ACT_ALLOW'}]}}}",
     "config.json: linux.seccomp.syscalls[1].names: must be a non-empty array"},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
     "'names':['read'],'action':'SCMP_ACT_NOTIFY'}]}}}",
     "config.json: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported by "
     "kvrun"},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
     "'names':['read'],'action':'SCMP_ACT_ALLOW','args':[{'index':6,'value':1,"
     "'op':'SCMP_CMP_EQ'}]}]}}}",
     "config.json: linux.seccomp.syscalls[0].args[0].index: out of range (maximum 5)"},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
     "'names':['read'],'action':'SCMP_ACT_ALLOW','args':[{'index':1,'value':1,"
     "'op':'SCMP_CMP_LIKE'}]}]}}}",
     "config.json: linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_LIKE\""},
    {"{" MIN_TOP ",'linux':{'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
     "'names':['read'],'action':'SCMP_ACT_ALLOW','args':[{'index':1,'value':"
     "18446744073709551616,'op':'SCMP_CMP_EQ'}]}]}}}",
     "config.json: linux.seccomp.syscalls[0].args[0].value: out of range (maximum "
     "18446744073709551615)"},
    {"{" MIN_TOP ",'linux':{'maskedPaths':['/ok','proc/kcore']}}",
     "config.json: linux.maskedPaths[1]: must be an absolute path"},
    {"{" MIN_TOP ",'linux':{'devices':[{'path':'/dev/x','type':'q','major':1,'minor':1}]}}",
     "config.json: linux.devices[0].type: must be one of \"c\", \"b\", \"u\", \"p\""},
    {"{" MIN_TOP ",'linux':{'devices':[{'path':'/dev/x','type':'c','minor':1}]}}",
     "config.json: linux.devices[0].major: required field is missing"},
    {"{" MIN_TOP ",'linux':{'rootfsPropagation':'sideways'}}",
     "config.json: linux.rootfsPropagation: unknown propagation \"sideways\""},
    {"{" MIN_TOP ",'linux':{'sysctl':{'../../etc/passwd':'x'}}}",
     "config.json: linux.sysctl: invalid key \"../../etc/passwd\""},
    {"{" MIN_TOP ",'linux':{'sysctl':{'net.ipv4.ip_forward':1}}}",
     "config.json: linux.sysctl.net.ipv4.ip_forward: must be a string"},
    {"{" MIN_TOP ",'linux':[]}", "config.json: linux: must be an object"},
};

static void check_bad(const struct bad_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *text = q(cases[i].json);
		struct kv_err *err = NULL;
		struct oci_config *cfg = NULL;
		int r = oci_config_parse(text, strlen(text), "config.json", &cfg, &err);
		ok(r < 0 && cfg == NULL, "refused: %s", cases[i].msg);
		is_str(err ? err->msg : NULL, cases[i].msg, "  message");
		kv_err_free(err);
		oci_config_free(cfg);
	}
}

static void test_syntax(void)
{
	static const char *const texts[] = {"",
					    "{",
					    "{\"a\":}",
					    "nul",
					    "{\"a\":1}}",
					    "{\"a\": 1,\n \"b\" 2}",
					    "{\"a\": \"x\xff\"}"};
	/* Where each stops being JSON: the byte, its line and column. */
	static const char *const at[] = {"byte 0 (line 1, column 1)", "byte 1 (line 1, column 2)",
					 "byte 6 (line 1, column 7)", "byte 3 (line 1, column 4)",
					 "byte 8 (line 1, column 9)", "byte 14 (line 2, column 6)",
					 "byte 8 (line 1, column 9)"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(texts); i++) {
		struct kv_err *err = NULL;
		struct oci_config *cfg = NULL;
		int r = oci_config_parse(texts[i], strlen(texts[i]), "config.json", &cfg, &err);
		cleanup_free char *want = kv_asprintf("config.json: invalid JSON at %s: ", at[i]);
		ok(r < 0 && err && strncmp(err->msg, want, strlen(want)) == 0, "bad JSON %zu: %s",
		   i, err ? err->msg : "(none)");
		kv_err_free(err);
	}
	/* Deep nesting is refused before yajl builds (and recursively frees) it. */
	size_t depth = 100000;
	char *deep = kv_malloc0(depth + 1);
	memset(deep, '[', depth);
	struct kv_err *err = NULL;
	struct oci_config *cfg = NULL;
	ok(oci_config_parse(deep, depth, "config.json", &cfg, &err) < 0 && err &&
	       strstr(err->msg, "nested deeper than 64 levels"),
	   "deep nesting refused");
	kv_err_free(err);
	free(deep);
	/* A NUL inside the document. */
	const char withnul[] = "{}\0{}";
	err = NULL;
	ok(oci_config_parse(withnul, sizeof(withnul) - 1, "config.json", &cfg, &err) < 0 && err &&
	       strstr(err->msg, "NUL byte"),
	   "embedded NUL refused");
	kv_err_free(err);
}

static void test_size_limit(void)
{
	char dir[] = "/tmp/test_oci.XXXXXX";
	if (!tap_tmpdir(dir))
		return;
	cleanup_free char *path = kv_asprintf("%s/config.json", dir);
	size_t n = OCI_CONFIG_MAX_SIZE + 10;
	char *big = kv_malloc0(n);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	struct kv_err *err = NULL;
	ok(kv_write_file_atomic(path, big, n, 0600, &err) == 0, "big file written");
	free(big);
	struct oci_config *cfg = NULL;
	int r = oci_config_load(path, &cfg, &err);
	ok(r < 0 && err && strstr(err->msg, "larger than"), "oversized config.json refused: %s",
	   err ? err->msg : "");
	kv_err_free(err);
	err = NULL;
	unlink(path);
	r = oci_config_load(path, &cfg, &err);
	ok(r < 0 && err && err->errnum == ENOENT, "missing config.json: ENOENT");
	kv_err_free(err);
	rmdir(dir);
}

static void test_partial_docs(void)
{
	cleanup_free char *proc = q("{'args':['ls','-l'],'cwd':'/tmp','env':['A=b'],"
				    "'user':{'uid':5,'gid':6},'terminal':false}");
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *c1 = NULL;
	ok(oci_process_parse(proc, strlen(proc), "process.json", &c1, &err) == 0 && c1->process &&
	       c1->process->user.uid == 5 && c1->process->args.n == 2,
	   "process.json parses");
	cleanup_free char *badproc = q("{'args':['ls'],'cwd':'rel'}");
	struct oci_config *c2 = NULL;
	ok(oci_process_parse(badproc, strlen(badproc), "process.json", &c2, &err) < 0,
	   "bad process.json refused");
	is_str(err ? err->msg : NULL, "process.json: cwd: must be an absolute path",
	       "  message names the field");
	kv_err_free(err);
	err = NULL;
	cleanup_free char *res = q("{'memory':{'limit':1048576},'pids':{'limit':10}}");
	cleanup_oci_config struct oci_config *c3 = NULL;
	ok(oci_resources_parse(res, strlen(res), "resources", &c3, &err) == 0 &&
	       c3->linux_->resources->memory_limit == 1048576 &&
	       c3->linux_->resources->pids_limit == 10,
	   "resources document parses");
}

/* Go's decoder, as runc reads hooks: "env": [] is an empty environment,
 * null or absent none given (the hook then gets the runtime's). */
static void test_hook_env(void)
{
	cleanup_free char *text = q("{" MIN_TOP ",'hooks':{'prestart':[{'path':'/a','env':[]},"
				    "{'path':'/b','env':null},{'path':'/c'}]}}");
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	int r = oci_config_parse(text, strlen(text), "config.json", &cfg, &err);
	const struct oci_hook *h = r == 0 ? cfg->hooks.list[OCI_HOOK_PRESTART] : NULL;
	ok(h && h[0].has_env && h[0].env.n == 0, "hook env []: given, empty");
	ok(h && !h[1].has_env && !h[2].has_env, "hook env null or absent: not given");
	kv_err_free(err);
}

/* runc 1.1 takes any non-empty access: the r, w and m in it, in any order. */
static void test_device_access(void)
{
	static const char *const good[] = {"r", "w", "m", "wr", "mrw", "rwmrw", "rwa", "ab"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(good); i++) {
		cleanup_free char *t = kv_asprintf("{" MIN_TOP ",'linux':{'resources':{'devices':["
						   "{'allow':true,'type':'c','major':1,'minor':3,"
						   "'access':'%s'}]}}}",
						   good[i]);
		cleanup_free char *text = q(t);
		struct kv_err *err = NULL;
		cleanup_oci_config struct oci_config *cfg = NULL;
		int r = oci_config_parse(text, strlen(text), "config.json", &cfg, &err);
		ok(r == 0 && strcmp(cfg->linux_->resources->devices[0].access, good[i]) == 0,
		   "device access \"%s\" accepted, kept as given", good[i]);
		if (r < 0)
			diag("%s", err->msg);
		kv_err_free(err);
	}
}

/* runc's validator: a namespaced sysctl needs that namespace (at create). */
static const struct bad_case bad_sysctl_cases[] = {
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'ipc'}],'sysctl':{'kernel.shmmax':'1',"
     "'net.ipv4.ip_forward':'1'}}}",
     "config.json: linux.sysctl: \"net.ipv4.ip_forward\" requires a new network namespace"},
    {"{" MIN_TOP ",'linux':{'sysctl':{'net/ipv4/ip_forward':'1'}}}",
     "config.json: linux.sysctl: \"net/ipv4/ip_forward\" requires a new network namespace"},
    {"{" MIN_TOP ",'linux':{'namespaces':[{'type':'network'}],'sysctl':{'kernel.sem':'1'}}}",
     "config.json: linux.sysctl: \"kernel.sem\" requires a new ipc namespace"},
    {"{" MIN_TOP ",'linux':{'sysctl':{'fs.mqueue.msg_max':'10'}}}",
     "config.json: linux.sysctl: \"fs.mqueue.msg_max\" requires a new ipc namespace"},
    {"{" MIN_TOP ",'linux':{'sysctl':{'kernel/shm_rmid_forced':'1'}}}",
     "config.json: linux.sysctl: \"kernel/shm_rmid_forced\" requires a new ipc namespace"},
    {"{" MIN_TOP ",'linux':{'sysctl':{'kernel.domainname':'x'}}}",
     "config.json: linux.sysctl: \"kernel.domainname\" requires a new uts namespace"},
    {"{" MIN_TOP ",'linux':{'sysctl':{'kernel.hostname':'x'}}}",
     "config.json: linux.sysctl: \"kernel.hostname\" requires a new uts namespace"},
};

static void test_sysctl_namespaces(void)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad_sysctl_cases); i++) {
		cleanup_free char *t = q(bad_sysctl_cases[i].json);
		struct kv_err *err = NULL;
		cleanup_oci_config struct oci_config *c = NULL;
		ok(oci_config_parse(t, strlen(t), "config.json", &c, &err) == 0 &&
		       oci_config_check_sysctl(c, "config.json", &err) < 0,
		   "parses, refused at create: %s", bad_sysctl_cases[i].msg);
		is_str(err ? err->msg : NULL, bad_sysctl_cases[i].msg, "  message");
		kv_err_free(err);
	}
	cleanup_free char *text = q(
	    "{" MIN_TOP ",'linux':{'namespaces':[{'type':'ipc'},{'type':'network'},{'type':'uts'}],"
	    "'sysctl':{'kernel.msgmax':'1','fs.mqueue.queues_max':'1','net.core.somaxconn':'1',"
	    "'net/ipv4/ip_forward':'1','kernel.domainname':'d'}}}");
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	ok(oci_config_parse(text, strlen(text), "config.json", &cfg, &err) == 0 &&
	       oci_config_check_sysctl(cfg, "config.json", &err) == 0,
	   "sysctls in their namespaces accepted");
	if (err)
		diag("%s", err->msg);
	kv_err_free(err);
}

static void test_mount_is_bind(void)
{
	char *bind[] = {"bind", NULL}, *rbind[] = {"nosuid", "rbind", NULL}, *ro[] = {"ro", NULL};
	struct oci_mount by_type = {.destination = "/a", .type = "bind"};
	struct oci_mount by_opt = {.destination = "/b", .options = {rbind, 2}};
	struct oci_mount by_bind = {.destination = "/c", .type = "none", .options = {bind, 1}};
	struct oci_mount tmpfs = {.destination = "/d", .type = "tmpfs", .options = {ro, 1}};
	struct oci_mount untyped = {.destination = "/e"};
	ok(oci_mount_is_bind(&by_type) && oci_mount_is_bind(&by_opt) && oci_mount_is_bind(&by_bind),
	   "bind mounts: by type, by rbind or bind option");
	ok(!oci_mount_is_bind(&tmpfs) && !oci_mount_is_bind(&untyped), "others are not");
}

int main(void)
{
	/* Unknown-capability warnings go to stderr; keep TAP on stdout clean. */
	test_full();
	test_full_linux();
	check_bad(bad_cases, KV_ARRAY_SIZE(bad_cases));
	check_bad(bad_linux_cases, KV_ARRAY_SIZE(bad_linux_cases));
	test_syntax();
	test_size_limit();
	test_partial_docs();
	test_hook_env();
	test_device_access();
	test_sysctl_namespaces();
	test_mount_is_bind();
	return tap_done();
}
