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
	ok(cfg.rng && cfg.seccomp == VMM_SECCOMP_KILL && cfg.drop_caps && cfg.pdeathsig,
	   "defaults: rng, seccomp kill, caps dropped, pdeathsig");

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
	       cfg.seccomp == VMM_SECCOMP_OFF && !cfg.drop_caps && cfg.console == VMM_CONSOLE_PTY,
	   "--no-sandbox, --console pty");
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
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--cpus", "x", NULL) < 0 &&
	       strstr(err->msg, "cpus"),
	   "--cpus x: error names the option");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "lots", NULL) < 0, "--mem lots refused");
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--mem", "99999999999", NULL) < 0,
	   "--mem too big refused");
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
	ok(parse(&cfg, &a, &err, "--kernel", "k", "--vsock-cid", "2", NULL) < 0,
	   "reserved vsock CID refused");
	kv_err_free(err);
	return tap_done();
}
