/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-vmm --fs: tags, named shares, options, and what is refused. */
#include <stdarg.h>
#include <string.h>

#include "tap.h"
#include "vmm/vmm.h"

static struct vmm_config cfg;
static struct kv_err *err;

/* Parse --kernel k and one --fs per argument (copied: the parser writes into them). */
static int parse_fs(int n, ...)
{
	static char bufs[20][256];
	char *argv[48] = {"kvrun-vmm", "--kernel", "k"};
	int argc = 3;
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n && i < 20; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "%s", va_arg(ap, const char *));
		argv[argc++] = "--fs";
		argv[argc++] = bufs[i];
	}
	va_end(ap);
	vmm_config_init(&cfg);
	kv_err_free(err);
	err = NULL;
	enum vmm_cli_action a;
	return vmm_cli_parse(&cfg, argc, argv, &a, &err);
}

static void refused(const char *arg, const char *msg)
{
	int r = parse_fs(1, arg);
	ok(r < 0 && err && strstr(err->msg, msg), "refused %s (%s)", arg,
	   err ? err->msg : "no error");
}

int main(void)
{
	ok(parse_fs(1, "rootfs=/run/c/rootfs") == 0, "TAG=PATH");
	is_int(cfg.n_fs, 1, "one device");
	is_str(cfg.fs[0].tag, "rootfs", "tag");
	is_int(cfg.fs[0].nshares, 1, "one share");
	ok(cfg.fs[0].shares[0].name == NULL, "unnamed: the root");
	is_str(cfg.fs[0].shares[0].path, "/run/c/rootfs", "path");
	ok(!cfg.fs[0].shares[0].ro && !cfg.fs[0].shares[0].dev && cfg.fs[0].dax == 0,
	   "rw, no dev, no DAX by default");

	ok(parse_fs(1, "r=/a,b/c,ro,dev,dax=100M") == 0, "options after a path with a comma");
	is_str(cfg.fs[0].shares[0].path, "/a,b/c", "the comma stays in the path");
	ok(cfg.fs[0].shares[0].ro && cfg.fs[0].shares[0].dev, "ro and dev");
	is_int(cfg.fs[0].dax, 100ULL << 20, "dax=100M (a 2 MiB multiple)");
	ok(parse_fs(1, "r=/a,dax=3M,rw") == 0, "dax=3M,rw");
	is_int(cfg.fs[0].dax, 4ULL << 20, "rounded up to 4 MiB");
	ok(!cfg.fs[0].shares[0].ro, "rw");

	ok(parse_fs(4, "binds/hosts=/h", "binds/resolv.conf=/r,ro", "rootfs=/root,dax=64M",
		    "binds/data=/d,dax=32M") == 0,
	   "named shares of one tag and another tag");
	is_int(cfg.n_fs, 2, "two devices");
	is_str(cfg.fs[0].tag, "binds", "first tag: binds");
	is_int(cfg.fs[0].nshares, 3, "three shares");
	is_str(cfg.fs[0].shares[1].name, "resolv.conf", "second share's name");
	ok(cfg.fs[0].shares[1].ro && !cfg.fs[0].shares[0].ro, "ro per share");
	is_int(cfg.fs[0].dax, 32ULL << 20, "dax for the tag");
	is_int(cfg.fs[1].dax, 64ULL << 20, "the other tag's dax");

	refused("nopath", "expected TAG=PATH");
	refused("=/x", "bad tag");
	refused("bad tag=/x", "bad tag");
	refused("t!=/x", "bad tag");
	refused("0123456789012345678901234567890123456=/x", "bad tag");
	refused("t/=/x", "bad share name");
	refused("t/..=/x", "bad share name");
	refused("t/a/b=/x", "bad share name");
	refused("t=", "empty path");
	refused("t=,ro", "empty path");
	refused("t=/x,dax=0", "bad DAX size");
	refused("t=/x,dax=65G", "bad DAX size");
	refused("t=/x,dax=lots", "bad DAX size");
	ok(parse_fs(2, "t=/x", "t=/y") < 0 && strstr(err->msg, "a tag is one PATH"),
	   "refused: a second PATH for an unnamed tag");
	ok(parse_fs(2, "t/a=/x", "t=/y") < 0 && strstr(err->msg, "a tag is one PATH"),
	   "refused: an unnamed share after named ones");
	ok(parse_fs(9, "a=/1", "b=/2", "c=/3", "d=/4", "e=/5", "f=/6", "g=/7", "h=/8", "i=/9") <
		   0 &&
	       strstr(err->msg, "at most 8 tags"),
	   "refused: a ninth tag");
	ok(parse_fs(17, "t/a=/", "t/b=/", "t/c=/", "t/d=/", "t/e=/", "t/f=/", "t/g=/", "t/h=/",
		    "t/i=/", "t/j=/", "t/k=/", "t/l=/", "t/m=/", "t/n=/", "t/o=/", "t/p=/",
		    "t/q=/") < 0 &&
	       strstr(err->msg, "at most 16 shares"),
	   "refused: a seventeenth share");

	/* Live devices: TAG/ */
	ok(parse_fs(2, "pod/", "rootfs=/r") == 0, "TAG/ (a live device) beside another device");
	is_int(cfg.n_fs, 2, "two devices");
	ok(cfg.fs[0].live && cfg.fs[0].nshares == 0 && cfg.fs[0].dax == 0,
	   "live, no shares, no DAX");
	is_str(cfg.fs[0].tag, "pod", "its tag");
	ok(!cfg.fs[1].live, "the other is not live");
	ok(parse_fs(1, "t=/a/,b") == 0 && !cfg.fs[0].live &&
	       strcmp(cfg.fs[0].shares[0].path, "/a/,b") == 0,
	   "a path with '/,' is a path");
	refused("bad tag/", "bad tag");
	refused("/", "bad tag");
	refused("t/,dax=64M", "takes no options");
	refused("t/,ro", "takes no options");
	ok(parse_fs(2, "t/", "t/") < 0 && strstr(err->msg, "given once"), "refused: t/ twice");
	ok(parse_fs(2, "t/a=/x", "t/") < 0 && strstr(err->msg, "given once"),
	   "refused: t/ after a share of t");
	ok(parse_fs(2, "t/", "t/a=/x") < 0 && strstr(err->msg, "through the API"),
	   "refused: a share of t after t/");
	ok(parse_fs(2, "t/", "t=/x") < 0 && strstr(err->msg, "through the API"),
	   "refused: t=PATH after t/");
	kv_err_free(err);
	return tap_done();
}
