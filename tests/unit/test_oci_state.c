/* SPDX-License-Identifier: Apache-2.0 */
/* state.json, the runc-shaped state JSON, timestamps, Go-style indentation,
 * and the agent serializer (round trip through the parser). */
#include "oci/oci.h"
#include "tap.h"

#include <string.h>
#include <sys/stat.h>

static char *q(const char *s)
{
	char *d = kv_strdup(s);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static char *finish(struct kv_json *j)
{
	const char *out;
	size_t len;
	struct kv_err *err = NULL;
	if (kv_json_finish(j, &out, &len, &err) < 0) {
		kv_err_free(err);
		return NULL;
	}
	return strndup(out, len);
}

static void test_time(void)
{
	char buf[64];
	struct timespec ts = {.tv_sec = 1700000000, .tv_nsec = 123456780};
	oci_time_format(&ts, buf);
	is_str(buf, "2023-11-14T22:13:20.12345678Z", "RFC3339Nano trims trailing zeros");
	ts.tv_nsec = 0;
	oci_time_format(&ts, buf);
	is_str(buf, "2023-11-14T22:13:20Z", "no fraction when nanoseconds are zero");
	ts.tv_nsec = 5;
	oci_time_format(&ts, buf);
	is_str(buf, "2023-11-14T22:13:20.000000005Z", "leading zeros kept");
	struct timespec back;
	ok(oci_time_parse(buf, &back) == 0 && back.tv_sec == ts.tv_sec && back.tv_nsec == 5,
	   "parse round trip");
	ok(oci_time_parse("2023-11-14T22:13:20.5Z", &back) == 0 && back.tv_nsec == 500000000,
	   "short fraction");
	ok(oci_time_parse("2023-11-14 22:13:20Z", &back) < 0, "space instead of T refused");
	ok(oci_time_parse("2023-11-14T22:13:20+01:00", &back) < 0, "non-UTC refused");
	ok(oci_time_parse("2023-13-14T22:13:20Z", &back) < 0, "month 13 refused");
	ok(oci_time_parse("2023-11-14T22:13:20.Z", &back) < 0, "empty fraction refused");
}

static void test_indent(void)
{
	const char *in = "{\"a\":[1,{\"b\":\"x,y:{z}\"}],\"e\":{},\"f\":[],\"s\":\"q\\\"{\"}";
	cleanup_free char *out = oci_json_indent(in, strlen(in), "  ");
	is_str(out,
	       "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x,y:{z}\"\n    }\n  ],\n"
	       "  \"e\": {},\n  \"f\": [],\n  \"s\": \"q\\\"{\"\n}",
	       "Go MarshalIndent layout");
	ok(oci_json_check_depth("[[[]]]", 6, 3) == 0, "depth 3 within 3");
	ok(oci_json_check_depth("[[[[]]]]", 8, 3) < 0, "depth 4 over 3");
	ok(oci_json_check_depth("[\"[[[[[[\"]", 10, 2) == 0, "brackets in strings ignored");
}

static struct oci_state *sample_state(void)
{
	struct oci_state *st = kv_malloc0(sizeof(*st));
	st->id = kv_strdup("c1");
	st->oci_version = kv_strdup("1.0.2");
	st->bundle = kv_strdup("/b");
	st->rootfs = kv_strdup("/b/rootfs");
	st->sandbox_id = kv_strdup("c1");
	st->status = OCI_STATUS_CREATED;
	st->pid = 4242;
	st->pid_start = 99;
	st->created = (struct timespec){1700000000, 1000};
	return st;
}

static void test_state_roundtrip(void)
{
	char dir[] = "/tmp/test_oci_state.XXXXXX";
	if (!tap_tmpdir(dir))
		return;
	cleanup_free char *path = kv_asprintf("%s/state.json", dir);
	cleanup_oci_state struct oci_state *st = sample_state();
	st->annotations.v = kv_malloc0(sizeof(struct oci_kv));
	st->annotations.v[0].key = kv_strdup("k");
	st->annotations.v[0].value = kv_strdup("v");
	st->annotations.n = 1;
	struct kv_err *err = NULL;
	ok(oci_state_save(path, st, &err) == 0, "state saved");
	struct stat sb;
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "state.json is 0600");
	cleanup_oci_state struct oci_state *back = NULL;
	ok(oci_state_load(path, &back, &err) == 0, "state loaded");
	if (back) {
		is_str(back->id, "c1", "id");
		is_str(back->bundle, "/b", "bundle");
		ok(back->pid == 4242 && back->pid_start == 99, "pid and start time");
		ok(back->status == OCI_STATUS_CREATED, "status");
		ok(back->created.tv_sec == 1700000000 && back->created.tv_nsec == 1000, "created");
		ok(back->annotations.n == 1 && strcmp(back->annotations.v[0].value, "v") == 0,
		   "annotations");
	}
	unlink(path);
	rmdir(dir);
	kv_err_free(err);
}

static void test_state_corrupt(void)
{
	static const struct {
		const char *json, *msg;
	} cases[] = {
	    {"{'kvrunState':1,",
	     "s.json: corrupt state: invalid JSON at byte 16 (line 1, column 17): "},
	    {"[]", "s.json: corrupt state: must be a JSON object"},
	    {"{'kvrunState':2}", "s.json: corrupt state: kvrunState: unsupported version 2"},
	    {"{'kvrunState':1,'ociVersion':'1','bundle':'/b','rootfs':'/r','status':'created',"
	     "'pid':1,'pidStartTime':1,'created':'2023-11-14T22:13:20Z','sandboxId':'x'}",
	     "s.json: corrupt state: id: required field is missing"},
	    {"{'kvrunState':1,'id':'x','ociVersion':'1','bundle':'/b','rootfs':'/r',"
	     "'status':'dancing','pid':1,'pidStartTime':1,'created':'2023-11-14T22:13:20Z',"
	     "'sandboxId':'x'}",
	     "s.json: corrupt state: status: unknown status \"dancing\""},
	    {"{'kvrunState':1,'id':'x','ociVersion':'1','bundle':'/b','rootfs':'/r',"
	     "'status':'created','pid':-4,'pidStartTime':1,'created':'2023-11-14T22:13:20Z',"
	     "'sandboxId':'x'}",
	     "s.json: corrupt state: pid: out of range (0 to 2147483647)"},
	    {"{'kvrunState':1,'id':'x','ociVersion':'1','bundle':'b','rootfs':'/r',"
	     "'status':'created','pid':1,'pidStartTime':1,'created':'2023-11-14T22:13:20Z',"
	     "'sandboxId':'x'}",
	     "s.json: corrupt state: bundle: must be an absolute path"},
	    {"{'kvrunState':1,'id':'x','ociVersion':'1','bundle':'/b','rootfs':'/r',"
	     "'status':'created','pid':1,'pidStartTime':1,'created':'yesterday',"
	     "'sandboxId':'x'}",
	     "s.json: corrupt state: created: not an RFC 3339 UTC time: \"yesterday\""},
	};
	for (size_t i = 0; i < KV_ARRAY_SIZE(cases); i++) {
		cleanup_free char *text = q(cases[i].json);
		struct kv_err *err = NULL;
		struct oci_state *st = NULL;
		int r = oci_state_parse(text, strlen(text), "s.json", &st, &err);
		ok(r < 0 && !st, "corrupt state %zu refused", i);
		ok(err && strncmp(err->msg, cases[i].msg, strlen(cases[i].msg)) == 0,
		   "  message: %s", err ? err->msg : "(none)");
		kv_err_free(err);
	}
}

static void test_runc_shape(void)
{
	cleanup_oci_state struct oci_state *st = sample_state();
	cleanup_json struct kv_json *j = kv_json_new(false);
	oci_state_to_runc_json(st, OCI_STATUS_STOPPED, 0, "", j);
	cleanup_free char *s = finish(j);
	is_str(s,
	       "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":0,\"status\":\"stopped\","
	       "\"bundle\":\"/b\",\"rootfs\":\"/b/rootfs\",\"created\":"
	       "\"2023-11-14T22:13:20.000001Z\",\"owner\":\"\"}",
	       "runc state fields, in runc's order, annotations omitted when empty");
	cleanup_json struct kv_json *j2 = kv_json_new(false);
	oci_state_to_spec_json(st, OCI_STATUS_CREATED, 4242, j2);
	cleanup_free char *s2 = finish(j2);
	is_str(s2,
	       "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"created\",\"pid\":4242,"
	       "\"bundle\":\"/b\"}",
	       "runtime-spec state for hooks");
}

static const char agent_src[] =
    "{'ociVersion':'1.1.0','process':{'terminal':false,'user':{'uid':1,'gid':2,"
    "'additionalGids':[3]},'args':['/bin/sh','-c','x'],'env':['A=1'],'cwd':'/w',"
    "'capabilities':{'bounding':['CAP_KILL'],'effective':[]},"
    "'rlimits':[{'type':'RLIMIT_NOFILE','hard':10,'soft':5}],'noNewPrivileges':true,"
    "'apparmorProfile':'p','oomScoreAdj':7},"
    "'root':{'path':'rootfs','readonly':true},'hostname':'h','domainname':'d.example',"
    "'mounts':[{'destination':'/proc','type':'proc','source':'proc','options':['nosuid']}],"
    "'hooks':{'prestart':[{'path':'/bin/true'}]},'annotations':{'a':'b'},"
    "'linux':{'namespaces':[{'type':'pid'},{'type':'uts'},"
    "{'type':'network','path':'/proc/1/ns/net'}],"
    "'resources':{'memory':{'limit':1048576},'pids':{'limit':5},"
    "'devices':[{'allow':false,'access':'rwm'}]},'cgroupsPath':'/x',"
    "'sysctl':{'kernel.msgmax':'1'},'seccomp':{'defaultAction':'SCMP_ACT_ALLOW',"
    "'syscalls':[{'names':['kill'],'action':'SCMP_ACT_ERRNO','errnoRet':1,"
    "'args':[{'index':1,'value':9,'op':'SCMP_CMP_EQ'}]}]},"
    "'maskedPaths':['/proc/kcore'],'readonlyPaths':['/proc/sys'],"
    "'devices':[{'path':'/dev/null','type':'c','major':1,'minor':3}],"
    "'rootfsPropagation':'rprivate','mountLabel':'m'}}";

static void test_agent_json(void)
{
	cleanup_free char *text = q(agent_src);
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (!ok(oci_config_parse(text, strlen(text), "config.json", &cfg, &err) == 0,
		"agent source config parses")) {
		diag("%s", err->msg);
		kv_err_free(err);
		return;
	}
	cleanup_free char *out = NULL;
	ok(oci_config_to_agent_string(cfg, &out, &err) == 0, "serialized");
	ok(out && !strstr(out, "hooks") && !strstr(out, "annotations") &&
	       !strstr(out, "apparmorProfile") && !strstr(out, "cgroupsPath") &&
	       !strstr(out, "mountLabel") && !strstr(out, "/proc/1/ns/net"),
	   "host-only fields left out");
	cleanup_oci_config struct oci_config *back = NULL;
	if (!ok(out && oci_config_parse(out, strlen(out), "agent", &back, &err) == 0,
		"agent JSON is itself a valid config")) {
		diag("%s", err ? err->msg : "?");
		kv_err_free(err);
		return;
	}
	const struct oci_process *p = back->process;
	ok(p->user.gid == 2 && p->user.additional_gids[0] == 3 && p->args.n == 3 &&
	       p->no_new_privileges && p->oom_score_adj == 7,
	   "process round trip");
	ok(p->capabilities->present[OCI_CAP_EFFECTIVE] &&
	       !p->capabilities->present[OCI_CAP_AMBIENT],
	   "explicit empty capability set survives, absent stays absent");
	ok(p->n_rlimits == 1 && p->rlimits[0].soft == 5, "rlimits round trip");
	const struct oci_linux *l = back->linux_;
	ok(l->n_namespaces == 2, "namespaces to join are left to the sandbox");
	ok(l->namespaces[0].type == OCI_NS_PID && l->namespaces[1].type == OCI_NS_UTS,
	   "  the others kept");
	ok(l->resources->memory_limit == 1048576 && l->resources->n_devices == 1,
	   "resources round trip");
	ok(l->seccomp->n_syscalls == 1 && l->seccomp->syscalls[0].args[0].value == 9,
	   "seccomp round trip");
	ok(l->n_devices == 1 && l->sysctl.n == 1 && l->masked_paths.n == 1, "linux lists");
	ok(back->n_mounts == 1 && back->root->readonly, "mounts and root");
	ok(back->hostname && strcmp(back->hostname, "h") == 0 && back->domainname &&
	       strcmp(back->domainname, "d.example") == 0,
	   "hostname and domainname");
}

static void test_agent_netns(void)
{
	/* A new network namespace is not made in the guest: the VM's is it. */
	cleanup_free char *text = q("{'ociVersion':'1.1.0','process':{'args':['sh'],'cwd':'/'},"
				    "'root':{'path':'r'},'linux':{'namespaces':[{'type':'pid'},"
				    "{'type':'network'},{'type':'mount'}],"
				    "'sysctl':{'net.core.somaxconn':'1024'}}}");
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	cleanup_free char *out = NULL;
	ok(oci_config_parse(text, strlen(text), "config.json", &cfg, &err) == 0 &&
	       oci_config_to_agent_string(cfg, &out, &err) == 0,
	   "a new network namespace serializes");
	ok(out && !strstr(out, "\"network\"") && strstr(out, "\"pid\"") && strstr(out, "\"mount\""),
	   "  the VM's network namespace is the container's; pid and mount stay");
	/* The sysctl check is create's, not the parser's: the copy still parses. */
	cleanup_oci_config struct oci_config *back = NULL;
	ok(out && oci_config_parse(out, strlen(out), "agent", &back, &err) == 0,
	   "  with a net.* sysctl, the agent's copy still parses");
	kv_err_free(err);
}

static void test_agent_joined_userns(void)
{
	/* Found by the fuzzer: mappings belong to a new user namespace only. */
	cleanup_free char *text = q("{'ociVersion':'1.0.2','process':{'args':['sh'],'cwd':'/'},"
				    "'root':{'path':'r'},'linux':{'namespaces':[{'type':'user',"
				    "'path':'/proc/1/ns/user'}],'uidMappings':[{'containerID':0,"
				    "'hostID':1000,'size':1}]}}");
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	cleanup_free char *out = NULL;
	cleanup_oci_config struct oci_config *back = NULL;
	ok(oci_config_parse(text, strlen(text), "config.json", &cfg, &err) == 0 &&
	       oci_config_to_agent_string(cfg, &out, &err) == 0 &&
	       oci_config_parse(out, strlen(out), "agent", &back, &err) == 0,
	   "a joined user namespace serializes to a valid agent config");
	ok(back && back->linux_->n_uid_mappings == 0, "  without its mappings");
	kv_err_free(err);
}

int main(void)
{
	test_time();
	test_indent();
	test_state_roundtrip();
	test_state_corrupt();
	test_runc_shape();
	test_agent_json();
	test_agent_netns();
	test_agent_joined_userns();
	return tap_done();
}
