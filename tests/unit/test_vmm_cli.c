/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-vmm's command line. */
#include <string.h>

#include "tap.h"
#include "vmm/vmm.h"

static int parse(struct vmm_config *cfg, enum vmm_cli_action *a, struct kv_err **err, ...)
{
	char *argv[32] = {"kvrun-vmm"};
	int argc = 1;
	va_list ap;
	va_start(ap, err);
	for (char *s; (s = va_arg(ap, char *)) && argc < 31;)
		argv[argc++] = s;
	va_end(ap);
	vmm_config_init(cfg);
	kv_err_free(*err);
	*err = NULL;
	return vmm_cli_parse(cfg, argc, argv, a, err);
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The first field in which a and b differ, or NULL (the api-call fields aside). */
static const char *cfg_diff(const struct vmm_config *a, const struct vmm_config *b)
{
	if (!str_same(a->kernel, b->kernel) || !str_same(a->initrd, b->initrd) ||
	    !str_same(a->cmdline, b->cmdline) || !str_same(a->restore_dir, b->restore_dir))
		return "kernel, initrd, cmdline or restore";
	if (a->mem != b->mem || a->mem_given != b->mem_given || a->cpus != b->cpus ||
	    a->cpus_given != b->cpus_given)
		return "mem or cpus";
	if (!str_same(a->mem_path, b->mem_path) || a->mem_shared != b->mem_shared)
		return "mem-file";
	if (a->console != b->console || !str_same(a->console_path, b->console_path) ||
	    a->console_max != b->console_max)
		return "console";
	if (a->n_pmem != b->n_pmem || a->n_blk != b->n_blk)
		return "disk count";
	for (unsigned i = 0; i < a->n_pmem; i++)
		if (!str_same(a->pmem[i].path, b->pmem[i].path) || a->pmem[i].ro != b->pmem[i].ro ||
		    a->pmem[i].window != b->pmem[i].window)
			return "pmem";
	for (unsigned i = 0; i < a->n_blk; i++)
		if (!str_same(a->blk[i].path, b->blk[i].path) || a->blk[i].ro != b->blk[i].ro)
			return "blk";
	if (a->n_fs != b->n_fs)
		return "fs count";
	for (unsigned i = 0; i < a->n_fs; i++) {
		const struct vmm_fs *x = &a->fs[i], *y = &b->fs[i];
		if (!str_same(x->tag, y->tag) || x->nshares != y->nshares || x->dax != y->dax ||
		    x->live != y->live)
			return "fs device";
		for (unsigned k = 0; k < x->nshares; k++)
			if (!str_same(x->shares[k].name, y->shares[k].name) ||
			    !str_same(x->shares[k].path, y->shares[k].path) ||
			    x->shares[k].ro != y->shares[k].ro ||
			    x->shares[k].dev != y->shares[k].dev)
				return "fs share";
	}
	if (!str_same(a->vsock_uds, b->vsock_uds) || a->vsock_cid != b->vsock_cid)
		return "vsock";
	if (a->net != b->net || (a->net && memcmp(a->net_mac, b->net_mac, 6) != 0))
		return "net";
	if (a->rng != b->rng || !str_same(a->api_sock, b->api_sock) ||
	    !str_same(a->stats_path, b->stats_path))
		return "rng, api or stats";
	if (a->pvm != b->pvm || a->seccomp != b->seccomp || a->drop_caps != b->drop_caps ||
	    a->pdeathsig != b->pdeathsig || a->log_level != b->log_level)
		return "pvm, seccomp, caps or log level";
	if (a->jail != b->jail || a->jail_uid != b->jail_uid || a->jail_gid != b->jail_gid)
		return "jail";
	return NULL;
}

/* vmm_cli_argv(cfg), parsed back: the same config, and the same argv again. */
static void round_trip(const struct vmm_config *cfg, const char *what)
{
	struct kv_err *err = NULL;
	char **argv = NULL, **again = NULL;
	if (vmm_cli_argv(cfg, "kvrun-vmm", &argv, &err) < 0) {
		ok(0, "round trip, %s: %s", what, err->msg);
		kv_err_free(err);
		return;
	}
	int argc = 0;
	while (argv[argc])
		argc++;
	/* vmm_cli_parse writes into its strings (options cut off): a copy. */
	char **copy = kv_malloc0((size_t)(argc + 1) * sizeof(char *));
	for (int i = 0; i < argc; i++)
		copy[i] = kv_strdup(argv[i]);
	struct vmm_config back;
	enum vmm_cli_action a;
	vmm_config_init(&back);
	int r = vmm_cli_parse(&back, argc, copy, &a, &err);
	const char *diff = r == 0 ? cfg_diff(cfg, &back) : "parse";
	ok(r == 0 && a == VMM_CLI_RUN && !diff, "round trip, %s%s%s%s", what,
	   diff ? ": differs in " : "", diff ? diff : "", err ? err->msg : "");
	bool same = r == 0 && vmm_cli_argv(&back, "kvrun-vmm", &again, &err) == 0;
	for (int i = 0; same && i <= argc; i++)
		same = str_same(argv[i], again[i]);
	ok(same, "round trip, %s: the command line written again is the same", what);
	vmm_cli_argv_free(again);
	vmm_cli_argv_free(copy);
	vmm_cli_argv_free(argv);
	kv_err_free(err);
}

/* Where argv has s, or -1. */
static int argv_find(char **argv, const char *s)
{
	for (int i = 0; argv && argv[i]; i++)
		if (strcmp(argv[i], s) == 0)
			return i;
	return -1;
}

static void test_argv(void)
{
	struct vmm_config cfg;
	vmm_config_init(&cfg);
	cfg.kernel = "/k/vmlinux";
	round_trip(&cfg, "a kernel, every default");

	/* A kvrun VM: what runtime/vmdesc.c asks for. */
	cfg.cmdline = "root=/dev/pmem0 quiet";
	cfg.mem = 384ULL << 20;
	cfg.cpus = 2;
	cfg.mem_given = cfg.cpus_given = true;
	cfg.pmem[cfg.n_pmem++] = (struct vmm_disk){"/img/rootfs.erofs", true, 0};
	cfg.fs[0] = (struct vmm_fs){.tag = "rootfs", .nshares = 1, .dax = 256ULL << 20};
	cfg.fs[0].shares[0] = (struct vmm_fs_share){.path = "/b/rootfs"};
	cfg.fs[1] = (struct vmm_fs){.tag = "binds", .nshares = 2};
	cfg.fs[1].shares[0] = (struct vmm_fs_share){.name = "b0", .path = "/v", .ro = true};
	cfg.fs[1].shares[1] = (struct vmm_fs_share){.name = "b3", .path = "/etc/hosts"};
	cfg.fs[2] = (struct vmm_fs){.tag = "pod", .live = true};
	cfg.n_fs = 3;
	cfg.vsock_uds = "vsock.sock";
	cfg.api_sock = "vmm.sock";
	cfg.console = VMM_CONSOLE_FILE;
	cfg.console_path = "/run/kvrun/c/console.log";
	cfg.console_max = 4096;
	cfg.net = true;
	cfg.log_level = KV_LOG_WARN;
	round_trip(&cfg, "a kvrun VM (pmem, three virtio-fs devices, vsock, NIC)");
	struct kv_err *err = NULL;
	char **argv = NULL;
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) == 0 && argv_find(argv, "--mem") > 0 &&
	       strcmp(argv[argv_find(argv, "--mem") + 1], "384M") == 0 &&
	       argv_find(argv, "rootfs=/b/rootfs,rw,dax=256M") > 0 &&
	       argv_find(argv, "binds/b0=/v,ro") >
		   argv_find(argv, "rootfs=/b/rootfs,rw,dax=256M") &&
	       argv_find(argv, "pod/") > argv_find(argv, "binds/b3=/etc/hosts,rw") &&
	       argv_find(argv, "--net") > argv_find(argv, "pod/") &&
	       argv_find(argv, "/img/rootfs.erofs,ro") > 0 && argv_find(argv, "--no-rng") < 0,
	   "the devices in slot order, the NIC last, defaults left out");
	vmm_cli_argv_free(argv);
	cleanup_free char *layout = vmm_config_layout(&cfg);
	is_str(layout, "pmem\nfs rootfs dax=268435456\nfs binds\nfs pod live\nvsock\nnet\nrng\n",
	       "the layout: kinds, tags and the DAX window, in slot order");

	/* Its clone: a restore; the layout does not see paths or ro. */
	struct vmm_config clone = cfg;
	clone.kernel = clone.cmdline = NULL;
	struct vmm_config dflt;
	vmm_config_init(&dflt);
	clone.mem_given = clone.cpus_given = false; /* the snapshot's */
	clone.mem = dflt.mem;
	clone.cpus = dflt.cpus;
	clone.restore_dir = "/var/lib/kvrun/templates/0123456789abcdef";
	clone.fs[0].shares[0].ro = true;
	clone.fs[1].nshares = 1;
	clone.fs[1].shares[0] = (struct vmm_fs_share){.path = "/sb/empty", .ro = true};
	round_trip(&clone, "a restore");
	cleanup_free char *clone_layout = vmm_config_layout(&clone);
	is_str(clone_layout, layout, "a clone's layout is its template's");

	/* Everything else a command line can say. */
	vmm_config_init(&cfg);
	cfg.kernel = "k";
	cfg.initrd = "i.cpio";
	cfg.mem = 3ULL << 30;
	cfg.mem_given = true;
	cfg.mem_path = "/t/memory";
	cfg.mem_shared = true;
	cfg.console = VMM_CONSOLE_PTY;
	cfg.console_max = 0;
	cfg.pmem[cfg.n_pmem++] = (struct vmm_disk){"/a/odd,rw", false, 0};
	cfg.pmem[cfg.n_pmem++] = (struct vmm_disk){"/l/0.erofs", true, 64ULL << 20};
	cfg.pmem[cfg.n_pmem++] = (struct vmm_disk){"/l/odd,window=1", true, 16ULL << 20};
	cfg.blk[cfg.n_blk++] = (struct vmm_disk){"/d.img", false, 0};
	cfg.blk[cfg.n_blk++] = (struct vmm_disk){"/e,ro", true, 0};
	cfg.fs[0] = (struct vmm_fs){.tag = "data", .nshares = 1, .dax = 4ULL << 20};
	cfg.fs[0].shares[0] = (struct vmm_fs_share){.path = "/srv/a,b", .dev = true};
	cfg.n_fs = 1;
	cfg.vsock_uds = "/v.sock";
	cfg.vsock_cid = 42;
	cfg.net = true;
	memcpy(cfg.net_mac, "\x0a\xbb\xcc\x00\x11\xfe", 6);
	cfg.rng = false;
	cfg.stats_path = "/s.json";
	cfg.pvm = VMM_PVM_OFF;
	cfg.seccomp = VMM_SECCOMP_TRAP;
	round_trip(&cfg,
		   "initrd, mem-file, pty, blk, pmem windows, odd paths, dev, CID, MAC, no rng, "
		   "pvm, trap");
	cfg.jail_uid = 1000;
	cfg.jail_gid = 2000;
	round_trip(&cfg, "--jail-uid 1000:2000");
	cfg.jail = false;
	round_trip(&cfg, "--no-jail");
	cfg.jail_uid = cfg.jail_gid = 0;
	cfg.seccomp = VMM_SECCOMP_OFF;
	cfg.drop_caps = false;
	cfg.console = VMM_CONSOLE_NONE;
	cfg.log_level = KV_LOG_DEBUG;
	round_trip(&cfg, "--no-sandbox, --console none, --log-level debug");
	cfg.jail = true;
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) < 0 && strstr(err->msg, "jail") && !argv,
	   "the jail without the rest of the sandbox is refused");
	kv_err_free(steal_ptr(err));

	/* What no command line can say is refused, naming the option. */
	vmm_config_init(&cfg);
	cfg.kernel = "k";
	cfg.fs[0] = (struct vmm_fs){.tag = "t", .nshares = 1};
	cfg.fs[0].shares[0] = (struct vmm_fs_share){.path = "/x,ro"};
	cfg.n_fs = 1;
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) < 0 && strstr(err->msg, "--fs t") && !argv,
	   "an --fs path ending in ',ro' is refused: %s", err ? err->msg : "");
	kv_err_free(steal_ptr(err));
	cfg.fs[0].nshares = 0;
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) < 0 && strstr(err->msg, "without shares"),
	   "an --fs device without shares is refused");
	kv_err_free(steal_ptr(err));
	cfg.n_fs = 0;
	cfg.console = VMM_CONSOLE_FILE;
	cfg.console_path = "pty";
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) < 0 && strstr(err->msg, "--console"),
	   "a console file named pty is refused");
	kv_err_free(steal_ptr(err));
	cfg.console = VMM_CONSOLE_STDIO;
	cfg.restore_dir = "/t";
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) < 0 && strstr(err->msg, "--restore"),
	   "--restore with --kernel is refused");
	kv_err_free(steal_ptr(err));
	cfg.restore_dir = NULL;
	cfg.kernel = NULL;
	ok(vmm_cli_argv(&cfg, "vmm", &argv, &err) < 0 && strstr(err->msg, "--kernel"),
	   "neither --kernel nor --restore is refused");
	kv_err_free(err);
}

int main(void)
{
	struct vmm_config cfg;
	enum vmm_cli_action a;
	struct kv_err *err = NULL;
	char pmem1[] = "/img/a.ext4,ro", pmem2[] = "/img/b", blk[] = "/d.img,rw";
	ok(parse(&cfg, &a, &err, "--kernel", "vmlinux", "--initrd", "i.cpio", "--cmdline", "quiet",
		 "--mem", "512", "--cpus", "2", "--console", "/tmp/c.log", "--pmem", pmem1,
		 "--pmem", pmem2, "--blk", blk, "--vsock", "/run/v.sock", "--api", "/run/vmm.sock",
		 NULL) == 0,
	   "full command line parses");
	ok(a == VMM_CLI_RUN, "action: run");
	is_str(cfg.kernel, "vmlinux", "kernel");
	is_str(cfg.initrd, "i.cpio", "initrd");
	is_str(cfg.cmdline, "quiet", "cmdline");
	is_int(cfg.mem, 512ULL << 20, "--mem 512 is MiB");
	is_int(cfg.cpus, 2, "cpus");
	ok(cfg.console == VMM_CONSOLE_FILE && strcmp(cfg.console_path, "/tmp/c.log") == 0,
	   "console file");
	ok(cfg.n_pmem == 2 && cfg.pmem[0].ro && !cfg.pmem[1].ro &&
	       strcmp(cfg.pmem[0].path, "/img/a.ext4") == 0,
	   "two pmem disks, first read-only");
	ok(cfg.n_blk == 1 && !cfg.blk[0].ro && strcmp(cfg.blk[0].path, "/d.img") == 0,
	   "blk ,rw stripped");
	is_str(cfg.vsock_uds, "/run/v.sock", "vsock");
	is_str(cfg.api_sock, "/run/vmm.sock", "api");
	ok(cfg.rng && cfg.seccomp == VMM_SECCOMP_KILL && cfg.drop_caps && cfg.pdeathsig &&
	       cfg.jail && cfg.jail_uid == 0,
	   "defaults: rng, seccomp kill, caps dropped, pdeathsig, jail with its default ids");

	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "1G", NULL) == 0 && cfg.mem == 1ULL
											      << 30,
	   "--mem 1G");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "100M", NULL) == 0 &&
	       cfg.mem == 100ULL << 20,
	   "--mem 100M");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "300001K", NULL) == 0 &&
	       cfg.mem % (2 << 20) == 0,
	   "--mem rounded up to 2 MiB");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--no-sandbox", "--console", "pty", NULL) == 0 &&
	       cfg.seccomp == VMM_SECCOMP_OFF && !cfg.drop_caps && !cfg.jail &&
	       cfg.console == VMM_CONSOLE_PTY,
	   "--no-sandbox (the jail too), --console pty");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--no-jail", NULL) == 0 && !cfg.jail &&
	       cfg.drop_caps && cfg.seccomp == VMM_SECCOMP_KILL,
	   "--no-jail: the jail alone");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--jail-uid", "1000", NULL) == 0 &&
	       cfg.jail_uid == 1000 && cfg.jail_gid == 1000,
	   "--jail-uid 1000: gid 1000 too");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--jail-uid", "1000:3", NULL) == 0 &&
	       cfg.jail_uid == 1000 && cfg.jail_gid == 3,
	   "--jail-uid 1000:3");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--jail-uid", "0", NULL) < 0 &&
	       strstr(err->msg, "--jail-uid"),
	   "--jail-uid 0 refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--jail-uid", "7:0", NULL) < 0,
	   "--jail-uid 7:0 refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--jail-uid", "4294967295", NULL) < 0,
	   "--jail-uid -1 (no change) refused");
	ok(parse(&cfg, &a, &err, "--version", NULL) == 0 && a == VMM_CLI_VERSION,
	   "--version needs no kernel");
	ok(parse(&cfg, &a, &err, "--help", NULL) == 0 && a == VMM_CLI_HELP, "--help");
	ok(parse(&cfg, &a, &err, "--check", NULL) == 0 && a == VMM_CLI_CHECK, "--check");

	ok(parse(&cfg, &a, &err, "--api-call", "/run/vmm.sock", "pause", NULL) == 0 &&
	       a == VMM_CLI_API_CALL && strcmp(cfg.api_call_sock, "/run/vmm.sock") == 0 &&
	       strcmp(cfg.api_call_op, "pause") == 0,
	   "--api-call SOCK OP");
	ok(parse(&cfg, &a, &err, "--api-call", "/run/vmm.sock", NULL) < 0, "--api-call without OP");
	ok(parse(&cfg, &a, &err, NULL) < 0 && strstr(err->msg, "--kernel"), "no --kernel: error");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--cpus", "0", NULL) < 0, "--cpus 0 refused");
	is_str(err ? err->msg : NULL, "--cpus: at least 1", "  the verdict alone (no strerror)");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--cpus", "x", NULL) < 0 &&
	       strstr(err->msg, "cpus"),
	   "--cpus x: error names the option");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "lots", NULL) < 0, "--mem lots refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "99999999999", NULL) < 0,
	   "--mem too big refused");
	is_str(err ? err->msg : NULL, "--mem: 99999999999 is out of range", "  saying so");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--pmem", "a", "--pmem", "b", "--pmem", "c",
		 "--pmem", "d", "--pmem", "e", "--pmem", "f", "--pmem", "g", "--pmem", "h",
		 "--pmem", "i", NULL) < 0 &&
	       err && err->errnum == E2BIG,
	   "a ninth --pmem refused: E2BIG");
	is_str(err ? err->msg : NULL, "--pmem: at most 8 devices", "  saying how many");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--pvm", "maybe", NULL) < 0,
	   "--pvm maybe refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--bogus", NULL) < 0 &&
	       strstr(err->msg, "--bogus"),
	   "unknown option named");
	ok(parse(&cfg, &a, &err, "--kernel", "k", NULL) == 0 && !cfg.net, "no NIC by default");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--net", NULL) == 0 && cfg.net &&
	       memcmp(cfg.net_mac, "\x02\x6b\x76\x00\x00\x01", 6) == 0,
	   "--net: a NIC with the default MAC 02:6b:76:00:00:01");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--net", "mac=0a:BB:cc:00:11:fe", "--cpus", "2",
		 NULL) == 0 &&
	       memcmp(cfg.net_mac, "\x0a\xbb\xcc\x00\x11\xfe", 6) == 0 && cfg.cpus == 2,
	   "--net mac=MAC");
	ok(parse(&cfg, &a, &err, "--net=mac=02:00:00:00:00:09", "--kernel", "k", NULL) == 0 &&
	       cfg.net_mac[5] == 9,
	   "--net=mac=MAC");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--net", "--net", NULL) < 0 &&
	       strstr(err->msg, "at most one NIC"),
	   "a second --net: at most one NIC");
	const char *badmac[] = {"mac=02:00:00:00:00",	 "mac=02:00:00:00:00:00:00",
				"mac=zz:00:00:00:00:00", "mac=01:00:5e:00:00:01",
				"mac=00:00:00:00:00:00", "mac="};
	for (unsigned i = 0; i < sizeof(badmac) / sizeof(badmac[0]); i++) {
		int r = parse(&cfg, &a, &err, "--kernel", "k", "--net", badmac[i], NULL);
		ok(r < 0 && strstr(err->msg, "--net"), "--net %s refused: %s", badmac[i],
		   err ? err->msg : "");
	}
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--net=mtu=1500", NULL) < 0 &&
	       strstr(err->msg, "expected mac="),
	   "--net=mtu=1500 refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "extra", NULL) < 0, "stray argument refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--vsock-cid", "2", NULL) < 0 && err &&
	       err->errnum == EINVAL,
	   "reserved vsock CID refused: EINVAL");
	is_str(err ? err->msg : NULL, "--vsock-cid: CIDs 0-2 are reserved", "  saying why");
	kv_err_free(err);
	err = NULL;
	ok(parse(&cfg, &a, &err, "--kernel", "k", NULL) == 0 && cfg.kvm_fd == -1,
	   "no --kvm-fd: the VMM opens /dev/kvm itself (-1)");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--kvm-fd", "3", NULL) == 0 && cfg.kvm_fd == 3,
	   "--kvm-fd 3: kvrun's /dev/kvm");
	int r = parse(&cfg, &a, &err, "--kernel", "k", "--kvm-fd", "2", NULL);
	ok(r < 0 && err && strstr(err->msg, "--kvm-fd: 2 is a stdio fd"), "--kvm-fd 2 refused: %s",
	   err ? err->msg : "");
	r = parse(&cfg, &a, &err, "--kernel", "k", "--kvm-fd", "x", NULL);
	ok(r < 0 && err && strstr(err->msg, "--kvm-fd"), "--kvm-fd x refused: %s",
	   err ? err->msg : "");
	kv_err_free(err);
	test_argv();
	return tap_done();
}
