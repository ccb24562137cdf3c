/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host checks for `kvrun check`: can this machine run kvrun's microVMs, and
 * in which mode. Every finding that blocks says what to do about it. The
 * VMM adds its own deeper probe (vmm_host_check).
 */
#include "runtime/runtime.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* The only KVM API version there has ever been (KVM_API_VERSION). */
#define KVM_EXPECTED_API 12

struct checker {
	const char *prefix;
	host_check_report_fn report;
	void *ctx;
	int failures;
	bool kvm_missing; /* /dev/kvm is not there (said once, not again by the VMM) */
};

static bool module_loaded(const struct checker *k, const char *name);

KV_PRINTF(4, 5)
static void say(struct checker *k, enum host_check_level lvl, const char *what, const char *fmt,
		...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *detail = NULL;
	if (vasprintf(&detail, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (lvl == HOST_CHECK_FAIL)
		k->failures++;
	k->report(k->ctx, lvl, what, detail);
}

static char *host_path(const struct checker *k, const char *p)
{
	return kv_asprintf("%s%s", k->prefix, p);
}

static void check_kvm_api(struct checker *k, int fd)
{
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v < 0) {
		/* A fixture in tests is a plain file: nothing to ask. */
		say(k, HOST_CHECK_WARN, "KVM API", "KVM_GET_API_VERSION failed: %s",
		    strerror(errno));
		return;
	}
	if (v != KVM_EXPECTED_API)
		say(k, HOST_CHECK_FAIL, "KVM API", "version %d, kvrun needs %d", v,
		    KVM_EXPECTED_API);
	else
		say(k, HOST_CHECK_OK, "KVM API", "version %d", v);
}

static void check_dev_kvm(struct checker *k)
{
	cleanup_free char *path = host_path(k, "/dev/kvm");
	struct stat sb;
	if (stat(path, &sb) < 0) {
		k->kvm_missing = true;
		if (errno == ENOENT && module_loaded(k, "kvm_pvm"))
			say(k, HOST_CHECK_FAIL, "/dev/kvm",
			    "missing although kvm_pvm is loaded: the module did not bind, as on a "
			    "host that is itself a PVM guest (PVM does not nest; the kernel log "
			    "says \"this kernel is itself a kvm-pvm guest\"): run kvrun on the PVM "
			    "host or on a VT-x/AMD-V machine");
		else
			say(k, HOST_CHECK_FAIL, "/dev/kvm",
			    "%s: load the KVM module (modprobe kvm_intel or kvm_amd; kvm_pvm on a "
			    "VM without nested virtualization) and enable virtualization in the "
			    "firmware",
			    strerror(errno));
		return;
	}
	if (!S_ISCHR(sb.st_mode)) {
		say(k, HOST_CHECK_FAIL, "/dev/kvm", "not a character device");
		return;
	}
	cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		struct group *gr = getgrgid(sb.st_gid);
		say(k, HOST_CHECK_FAIL, "/dev/kvm",
		    "%s as uid %u: run kvrun as root, or add the user to group %s (mode %03o)",
		    strerror(errno), (unsigned)geteuid(), gr ? gr->gr_name : "owning /dev/kvm",
		    (unsigned)(sb.st_mode & 0777));
		return;
	}
	say(k, HOST_CHECK_OK, "/dev/kvm", "character device %u:%u, read-write access",
	    major(sb.st_rdev), minor(sb.st_rdev));
	check_kvm_api(k, fd);
}

static bool cpu_flag(const char *cpuinfo, const char *flag)
{
	size_t n = strlen(flag);
	for (const char *p = strstr(cpuinfo, "\nflags"); p; p = strstr(p + 1, "\nflags")) {
		const char *eol = strchr(p + 1, '\n');
		for (const char *q = strchr(p, ':'); q && (!eol || q < eol);
		     q = strchr(q + 1, ' ')) {
			const char *w = q + 1;
			if (strncmp(w, flag, n) == 0 && (w[n] == ' ' || w[n] == '\n' || !w[n]))
				return true;
		}
	}
	return false;
}

static bool module_loaded(const struct checker *k, const char *name)
{
	cleanup_free char *path = kv_asprintf("%s/sys/module/%s", k->prefix, name);
	return access(path, F_OK) == 0;
}

static void check_cpu(struct checker *k)
{
	cleanup_free char *path = host_path(k, "/proc/cpuinfo");
	cleanup_free char *text = NULL;
	struct kv_err *err = NULL;
	if (kv_read_file(path, 16u << 20, &text, NULL, &err) < 0) {
		say(k, HOST_CHECK_WARN, "CPU", "%s", err->msg);
		kv_err_free(err);
		return;
	}
	cleanup_free char *nl = kv_asprintf("\n%s", text); /* the first line matches too */
	bool pvm = module_loaded(k, "kvm_pvm");
	if (cpu_flag(nl, "vmx"))
		say(k, HOST_CHECK_OK, "CPU", "Intel VT-x (vmx)");
	else if (cpu_flag(nl, "svm"))
		say(k, HOST_CHECK_OK, "CPU", "AMD-V (svm)");
	else if (pvm)
		say(k, HOST_CHECK_INFO, "CPU",
		    "no vmx or svm flag: hardware virtualization is not exposed here");
	else
		say(k, HOST_CHECK_WARN, "CPU",
		    "no vmx or svm flag in /proc/cpuinfo: enable VT-x/AMD-V in the firmware, or "
		    "nested virtualization if this host is itself a VM");
	if (pvm && !k->kvm_missing)
		say(k, HOST_CHECK_INFO, "kvm_pvm",
		    "KVM is provided by PVM: guest kernel mode is emulated (about 1000x slower), "
		    "so kvrun runs in its PVM compatibility mode; cold boots take tens of seconds "
		    "and templates matter");
	else if (module_loaded(k, "kvm_intel") || module_loaded(k, "kvm_amd"))
		say(k, HOST_CHECK_OK, "kvm module", "%s loaded",
		    module_loaded(k, "kvm_intel") ? "kvm_intel" : "kvm_amd");
}

/* The VMM's items, in this report's terms. */
static void vmm_report(void *ctx, const char *item, bool ok, const char *message)
{
	struct checker *k = ctx;
	/* A missing /dev/kvm is said once, with what to do, above; and without
	 * it, PVM's compatibility mode is not one kvrun can run in. */
	if (k->kvm_missing && (strcmp(item, "/dev/kvm") == 0 || strcmp(item, "cpu") == 0))
		return;
	if (!ok)
		k->failures++;
	k->report(k->ctx, ok ? HOST_CHECK_OK : HOST_CHECK_FAIL, item, message);
}

int runtime_host_check(const char *prefix, int (*vmm_probe)(vmm_check_report_fn report, void *ctx),
		       host_check_report_fn report, void *ctx)
{
	struct checker k = {.prefix = prefix ? prefix : "", .report = report, .ctx = ctx};
	check_dev_kvm(&k);
	check_cpu(&k);
	if (vmm_probe) {
		/* The VMM reports through the same sink, which counts what it says. */
		(void)vmm_probe(vmm_report, &k);
	} else {
		say(&k, HOST_CHECK_INFO, "VMM probe", "not built into this kvrun (not run)");
	}
	return k.failures;
}
