/* SPDX-License-Identifier: Apache-2.0 */
/* runtime/: container ids, signal names, paths, the list table, the
 * default spec and features documents, and host checks on fixtures. */
#include "runtime/runtime.h"
#include "tap.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yajl/yajl_tree.h>

static void test_ids(void)
{
	static const char *const good[] = {"a",	   "c1", "my-container_1.2", "a+b", "a,b", "A.B-",
					   "...x", "x.."};
	static const char *const bad[] = {"", ".", "..", "a/b", "a b", "a:b", "ä", "a\nb", "/"};
	for (size_t i = 0; i < KV_ARRAY_SIZE(good); i++)
		ok(container_id_validate(good[i], NULL) == 0, "id \"%s\" accepted", good[i]);
	for (size_t i = 0; i < KV_ARRAY_SIZE(bad); i++) {
		struct kv_err *err = NULL;
		ok(container_id_validate(bad[i], &err) < 0 && err &&
		       strcmp(err->msg, "invalid container ID format") == 0,
		   "bad id #%zu refused with runc's message", i);
		kv_err_free(err);
	}
	char longid[KVRUN_ID_MAX + 2];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	ok(container_id_validate(longid, NULL) < 0, "id of %d bytes refused", KVRUN_ID_MAX + 1);
	longid[KVRUN_ID_MAX] = '\0';
	ok(container_id_validate(longid, NULL) == 0, "id of %d bytes accepted", KVRUN_ID_MAX);
}

static void test_signals(void)
{
	is_int(signal_parse("KILL"), SIGKILL, "KILL");
	is_int(signal_parse("SIGKILL"), SIGKILL, "SIGKILL");
	is_int(signal_parse("sigterm"), SIGTERM, "sigterm (any case)");
	is_int(signal_parse("9"), 9, "number");
	is_int(signal_parse("hup"), SIGHUP, "hup");
	is_int(signal_parse("RTMIN+2"), SIGRTMIN + 2, "RTMIN+2");
	is_int(signal_parse("SIGRTMAX-1"), SIGRTMAX - 1, "SIGRTMAX-1");
	is_int(signal_parse("FOO"), -1, "unknown name");
	is_int(signal_parse("0"), 0, "0: the liveness check, as runc takes it");
	is_int(signal_parse("999"), -1, "999 out of range");
	is_int(signal_parse("9x"), -1, "trailing junk");
	is_int(signal_parse(""), -1, "empty");
}

static void test_paths(void)
{
	cleanup_free char *a = path_clean_abs("/run//kvrun/./x/../y/");
	is_str(a, "/run/kvrun/y", "clean absolute path");
	cleanup_free char *b = path_clean_abs("/../..");
	is_str(b, "/", "above / stays at /");
	cleanup_free char *c = path_clean_abs("rel/dir");
	ok(c && c[0] == '/' && strstr(c, "/rel/dir"), "relative made absolute: %s", c ? c : "");
	ok(path_clean_abs("") == NULL, "empty refused");
}

static void test_table(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct table *t = table_new(3);
	table_add_row(t, (const char *[]){"ID", "PID", "OWNER"});
	table_add_row(t, (const char *[]){"a-rather-long-id", "7", "root"});
	table_print(t, f);
	table_free(t);
	fclose(f);
	is_str(buf,
	       "ID                 PID         OWNER\n"
	       "a-rather-long-id   7           root\n",
	       "tabwriter layout: widest+3, at least 12, last column unpadded");
	free(buf);
}

static yajl_val parse_json(const char *text)
{
	char ebuf[128];
	return yajl_tree_parse(text, ebuf, sizeof(ebuf));
}

static const char *get_str(yajl_val v, const char *const *path)
{
	return YAJL_GET_STRING(yajl_tree_get(v, (const char **)path, yajl_t_string));
}

static void test_spec(void)
{
	cleanup_free char *spec = spec_default_json(false);
	struct kv_err *err = NULL;
	cleanup_oci_config struct oci_config *cfg = NULL;
	ok(spec && oci_config_parse(spec, strlen(spec), "spec", &cfg, &err) == 0,
	   "default spec passes kvrun's own validation");
	kv_err_free(err);
	err = NULL;
	ok(spec && strncmp(spec, "{\n\t\"ociVersion\": ", 17) == 0, "tab-indented like runc spec");
	ok(spec && spec[strlen(spec) - 1] == '}', "no trailing newline (as runc writes it)");
	if (cfg) {
		ok(cfg->process->terminal && cfg->root->readonly && cfg->n_mounts == 7,
		   "terminal, readonly root, runc's 7 mounts");
		ok(cfg->linux_->n_namespaces == 6 && cfg->linux_->masked_paths.n == 11,
		   "namespaces and masked paths");
	}
	cleanup_free char *rl = spec_default_json(true);
	cleanup_oci_config struct oci_config *rcfg = NULL;
	ok(rl && oci_config_parse(rl, strlen(rl), "spec", &rcfg, &err) == 0,
	   "rootless spec validates");
	kv_err_free(err);
	if (rcfg) {
		ok(rcfg->linux_->n_uid_mappings == 1 &&
		       rcfg->linux_->uid_mappings[0].host_id == geteuid() &&
		       !rcfg->linux_->resources,
		   "rootless: mapping for the caller, no resources");
		ok(!strstr(rl, "gid=5") && !strstr(rl, "\"network\""),
		   "rootless: no gid= option, no network namespace");
	}
}

static void test_features(void)
{
	cleanup_free char *text = features_json();
	yajl_val v = text ? parse_json(text) : NULL;
	ok(v != NULL, "features is JSON");
	ok(text && text[strlen(text) - 1] == '\n' && strstr(text, "\n    \"ociVersionMin\""),
	   "4-space indent, trailing newline");
	is_str(get_str(v, (const char *const[]){"ociVersionMin", NULL}), "1.0.0", "ociVersionMin");
	yajl_val hooks = yajl_tree_get(v, (const char *[]){"hooks", NULL}, yajl_t_array);
	ok(hooks && hooks->u.array.len == 6, "six hooks");
	yajl_val v2 =
	    yajl_tree_get(v, (const char *[]){"linux", "cgroup", "v2", NULL}, yajl_t_true);
	ok(v2 != NULL, "cgroup v2 true");
	yajl_val archs =
	    yajl_tree_get(v, (const char *[]){"linux", "seccomp", "archs", NULL}, yajl_t_array);
	ok(archs && archs->u.array.len == 3, "x86 seccomp archs only");
	yajl_val aa =
	    yajl_tree_get(v, (const char *[]){"linux", "apparmor", "enabled", NULL}, yajl_t_false);
	ok(aa != NULL, "apparmor reported disabled");
	ok(get_str(v, (const char *const[]){"annotations", "io.github.seccomp.libseccomp.version",
					    NULL}) != NULL,
	   "libseccomp version annotation");
	if (v)
		yajl_tree_free(v);
}

struct findings {
	int n[4];
	char text[4096];
};

static void collect(void *ctx, enum host_check_level level, const char *what, const char *detail)
{
	struct findings *f = ctx;
	f->n[level]++;
	size_t l = strlen(f->text);
	snprintf(f->text + l, sizeof(f->text) - l, "%d %s: %s\n", level, what, detail);
}

static void write_text(const char *path, const char *text)
{
	struct kv_err *err = NULL;
	if (kv_write_file_atomic(path, text, strlen(text), 0644, &err) < 0) {
		diag("%s", err->msg);
		kv_err_free(err);
	}
}

/* A VMM probe with one item passing and one failing. */
static int fake_probe(vmm_check_report_fn report, void *ctx)
{
	report(ctx, "KVM_CAP_IRQFD", true, "present");
	report(ctx, "KVM_CAP_FAKE", false, "missing: upgrade the kernel");
	return 1;
}

static void test_check(void)
{
	char dir[] = "/tmp/test_runtime_check.XXXXXX";
	if (!tap_tmpdir(dir))
		return;
	cleanup_free char *proc = kv_asprintf("%s/proc", dir);
	cleanup_free char *cpuinfo = kv_asprintf("%s/proc/cpuinfo", dir);
	cleanup_free char *mod = kv_asprintf("%s/sys/module/kvm_pvm", dir);
	mkdir(proc, 0755);
	write_text(cpuinfo, "processor\t: 0\nflags\t\t: fpu vme sse2 hypervisor\n\n");
	struct findings f = {0};
	int fails = runtime_host_check(dir, NULL, collect, &f);
	ok(fails == 1 && strstr(f.text, "3 /dev/kvm: No such file or directory: load the KVM"),
	   "missing /dev/kvm fails with advice");
	ok(strstr(f.text, "2 CPU: no vmx or svm flag") != NULL, "no vmx/svm warns");
	struct kv_err *err = NULL;
	ok(kv_mkdir_p(mod, 0755, &err) == 0, "fixture module dir");
	write_text(cpuinfo, "flags\t\t: fpu vmx sse2\n");
	memset(&f, 0, sizeof(f));
	runtime_host_check(dir, NULL, collect, &f);
	ok(strstr(f.text, "0 CPU: Intel VT-x (vmx)") != NULL, "vmx found (first line)");
	ok(strstr(f.text,
		  "3 /dev/kvm: missing although kvm_pvm is loaded: the module did not bind") &&
	       !strstr(f.text, "KVM is provided by PVM"),
	   "kvm_pvm loaded, no /dev/kvm: a PVM guest (PVM does not nest), said once");
	ok(strstr(f.text, "VMM probe: not built") != NULL, "VMM probe absent until vmm/ lands");
	memset(&f, 0, sizeof(f));
	fails = runtime_host_check(dir, fake_probe, collect, &f);
	ok(fails == 2 && strstr(f.text, "0 KVM_CAP_IRQFD: present") &&
	       strstr(f.text, "3 KVM_CAP_FAKE: missing: upgrade the kernel") &&
	       !strstr(f.text, "VMM probe"),
	   "the VMM's probe: its items in the report, its failure counted (and /dev/kvm's)");
	/* With a /dev/kvm (here a stand-in character device), PVM's mode is said. */
	cleanup_free char *dev = kv_asprintf("%s/dev", dir);
	cleanup_free char *kvm = kv_asprintf("%s/dev/kvm", dir);
	mkdir(dev, 0755);
	if (mknod(kvm, S_IFCHR | 0666, makedev(1, 3)) == 0) {
		memset(&f, 0, sizeof(f));
		runtime_host_check(dir, NULL, collect, &f);
		ok(strstr(f.text, "1 kvm_pvm: KVM is provided by PVM") != NULL, "kvm_pvm reported");
	} else {
		skip("kvm_pvm reported: mknod needs root");
	}
	cleanup_free char *cmd = kv_asprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", dir);
}

int main(void)
{
	test_ids();
	test_signals();
	test_paths();
	test_table();
	test_spec();
	test_features();
	test_check();
	return tap_done();
}
