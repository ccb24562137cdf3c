/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-vmm's command line. */
#include <getopt.h>
#include <string.h>

#include "vmm/virtio/virtio.h"
#include "vmm/vmm.h"

#define CLI_DEFAULT_MEM (256ULL << 20)
#define CLI_MAX_MEM	(1ULL << 40)
#define CLI_MEM_ALIGN	(2ULL << 20)
#define CLI_DEFAULT_CID 3
/* Locally administered; the guest agent sets the container's own MAC. */
static const uint8_t cli_default_mac[6] = {0x02, 0x6b, 0x76, 0x00, 0x00, 0x01};

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_MEM,
	OPT_MEM_FILE,
	OPT_CPUS,
	OPT_CONSOLE,
	OPT_PMEM,
	OPT_BLK,
	OPT_FS,
	OPT_VSOCK,
	OPT_VSOCK_CID,
	OPT_NET,
	OPT_NO_RNG,
	OPT_API,
	OPT_STATS,
	OPT_PVM,
	OPT_SECCOMP,
	OPT_NO_SANDBOX,
	OPT_NO_JAIL,
	OPT_JAIL_UID,
	OPT_LOG_LEVEL,
	OPT_CHECK,
	OPT_API_CALL,
	OPT_RESTORE,
	OPT_VERSION,
	OPT_HELP,
	OPT_CONSOLE_MAX,
	OPT_KVM_FD,
};

static const struct option cli_options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"mem", required_argument, NULL, OPT_MEM},
    {"mem-file", required_argument, NULL, OPT_MEM_FILE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"console-max", required_argument, NULL, OPT_CONSOLE_MAX},
    {"pmem", required_argument, NULL, OPT_PMEM},
    {"blk", required_argument, NULL, OPT_BLK},
    {"fs", required_argument, NULL, OPT_FS},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"vsock-cid", required_argument, NULL, OPT_VSOCK_CID},
    {"net", optional_argument, NULL, OPT_NET},
    {"no-rng", no_argument, NULL, OPT_NO_RNG},
    {"api", required_argument, NULL, OPT_API},
    {"stats", required_argument, NULL, OPT_STATS},
    {"pvm", required_argument, NULL, OPT_PVM},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
    {"no-jail", no_argument, NULL, OPT_NO_JAIL},
    {"jail-uid", required_argument, NULL, OPT_JAIL_UID},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"check", no_argument, NULL, OPT_CHECK},
    {"api-call", required_argument, NULL, OPT_API_CALL},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {"kvm-fd", required_argument, NULL, OPT_KVM_FD},
    {NULL, 0, NULL, 0},
};

void vmm_config_init(struct vmm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem = CLI_DEFAULT_MEM;
	cfg->cpus = 1;
	cfg->console = VMM_CONSOLE_STDIO;
	cfg->console_max = VMM_CONSOLE_MAX_DEFAULT;
	cfg->vsock_cid = CLI_DEFAULT_CID;
	cfg->rng = true;
	cfg->pvm = VMM_PVM_AUTO;
	cfg->seccomp = VMM_SECCOMP_KILL;
	cfg->drop_caps = true;
	cfg->pdeathsig = true;
	cfg->jail = true;
	cfg->log_level = -1;
	cfg->kvm_fd = -1;
	memcpy(cfg->net_mac, cli_default_mac, 6); /* for when net is set */
}

void vmm_cli_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: kvrun-vmm --kernel PATH [options]\n"
	    "       kvrun-vmm --restore DIR [options]\n"
	    "       kvrun-vmm --api-call SOCK status|pause|resume|shutdown\n"
	    "       kvrun-vmm --api-call SOCK snapshot DIR [resume|pause|exit]\n"
	    "       kvrun-vmm --api-call SOCK fs-add TAG NAME PATH [ro|rw]\n"
	    "       kvrun-vmm --api-call SOCK fs-remove TAG NAME\n"
	    "       kvrun-vmm --api-call SOCK net-attach TAP | net-detach\n"
	    "       kvrun-vmm --api-call SOCK pmem-bind N [PATH]\n"
	    "       kvrun-vmm --check | --version | --help\n"
	    "\n"
	    "Boot a Linux kernel in a KVM microVM (no firmware) and run it until the guest\n"
	    "powers off. Exit status: the byte the guest wrote to the exit port (0x%x;\n"
	    "0 = clean power-off), %d when the guest reset or panicked, %d on a VMM error.\n"
	    "\n"
	    "  --kernel PATH        vmlinux (ELF64) or bzImage (boot protocol >= 2.10)\n"
	    "  --initrd PATH        initial ramdisk\n"
	    "  --cmdline STR        kernel command line; the VMM appends console=ttyS0\n"
	    "                       reboot=k panic=-1 8250.nr_uarts=1 (unless given), the\n"
	    "                       virtio_mmio.device= entries and, on PVM hosts, noxsave\n"
	    "  --mem SIZE           guest RAM (plain number: MiB; K/M/G suffixes), default 256M\n"
	    "  --cpus N             vCPUs (one thread each), default 1\n"
	    "  --console stdio|pty|none|PATH\n"
	    "                       8250 console: stdout/stdin (default), a new pty, nothing,\n"
	    "                       or a file (a tty path is also read)\n"
	    "  --console-max SIZE   a console file keeps at most SIZE bytes of guest output\n"
	    "                       (K/M/G suffixes; 0: no cap), then one line saying so and\n"
	    "                       the count dropped at exit; default 1M\n"
	    "  --pmem PATH[,ro][,window=SIZE]\n"
	    "                       virtio-pmem disk (DAX-capable), repeatable; window: the\n"
	    "                       guest's window (a slot), the file may be smaller\n"
	    "  --blk PATH[,ro]      virtio-blk disk, repeatable\n"
	    "  --fs TAG=PATH[,ro][,dev][,dax=SIZE]\n"
	    "                       virtio-fs: share host directory (or file) PATH as TAG;\n"
	    "                       the guest mounts it with mount -t virtiofs TAG DIR [-o dax].\n"
	    "                       ro: read-only; dev: the guest may create device nodes;\n"
	    "                       dax=SIZE: a DAX window (host page cache mapped into the\n"
	    "                       guest). TAG/NAME=PATH adds NAME (file or directory) to a\n"
	    "                       synthetic root of TAG instead. Repeatable\n"
	    "  --fs TAG/            virtio-fs \"live\" device: an empty synthetic root that takes\n"
	    "                       named shares while the guest runs (API ops fs-add and\n"
	    "                       fs-remove; at most %d at once). No DAX\n"
	    "  --vsock UDS          virtio-vsock, hybrid: host side is the Unix socket UDS\n"
	    "  --vsock-cid N        guest CID (default %d)\n"
	    "  --net [mac=MAC]      virtio-net NIC (one at most for now), link down until\n"
	    "                       a tap is attached (API op net-attach); MAC default\n"
	    "                       02:6b:76:00:00:01\n"
	    "  --no-rng             no virtio-rng device\n"
	    "  --api SOCK           JSON control socket (status, pause, resume, shutdown,\n"
	    "                       snapshot, fs-add, fs-remove, net-attach, net-detach,\n"
	    "                       pmem-bind)\n"
	    "  --restore DIR        resume the snapshot in DIR (its state and memory files)\n"
	    "                       instead of booting: memory and vCPUs come from it, the\n"
	    "                       devices from this command line (the same kinds, in the\n"
	    "                       same order; their files may differ)\n"
	    "  --stats PATH         write run statistics (JSON) at exit\n"
	    "  --kvm-fd N           /dev/kvm already open as fd N (opened before this\n"
	    "                       process joined a cgroup whose device policy denies it)\n"
	    "  --pvm auto|on|off    PVM compatibility mode (default: auto-detect)\n"
	    "  --seccomp kill|trap|off  seccomp allow-lists after setup (default kill;\n"
	    "                       trap reports the offending syscall)\n"
	    "  --no-sandbox         no seccomp, keep capabilities, no jail (debugging)\n"
	    "  --no-jail            started as root, the VMM still runs as root, in the\n"
	    "                       host's namespaces and root (default: after setup it\n"
	    "                       moves into its own mount, ipc and uts namespaces, an\n"
	    "                       empty root, and an unprivileged uid and gid)\n"
	    "  --jail-uid UID[:GID] the jail's ids (default, both: 0x6b760000 + the VMM's\n"
	    "                       pid, or as pid 1 of its own pid namespace 0x6bb60000 +\n"
	    "                       that namespace's number); guest->host vsock peers\n"
	    "                       must let them connect\n"
	    "  --log-level error|warn|info|debug\n"
	    "  --check              check this host for KVM and exit\n"
	    "  --version, --help\n",
	    VMM_EXIT_PORT, VMM_EXIT_RESET, VMM_EXIT_ERROR, VMM_FS_LIVE_MAX, CLI_DEFAULT_CID);
}

static int cli_disk_parse(struct vmm_disk *disks, unsigned *n, const char *opt, char *arg,
			  struct kv_err **err)
{
	if (*n >= VMM_MAX_DISKS)
		return kv_err_plain(err, E2BIG, "--%s: at most %d devices", opt, VMM_MAX_DISKS);
	bool ro = false;
	uint64_t window = 0;
	/* Off the end: ",window=SIZE" (pmem), then one ",ro" or ",rw" (a path may
	 * hold commas: cli_disk_argv writes ",rw" after a path that ends in one). */
	char *comma = strrchr(arg, ',');
	if (comma && strncmp(comma, ",window=", 8) == 0 && strcmp(opt, "pmem") == 0) {
		if (kv_parse_size(comma + 8, &window) < 0 || window == 0 ||
		    window > VMM_PMEM_WINDOW_MAX)
			return kv_err_plain(err, EINVAL, "--%s: window=%s: want a size up to 64G",
					    opt, comma + 8);
		window = (window + CLI_MEM_ALIGN - 1) & ~(CLI_MEM_ALIGN - 1);
		*comma = '\0';
		comma = strrchr(arg, ',');
	}
	if (comma && strcmp(comma, ",ro") == 0) {
		*comma = '\0';
		ro = true;
	} else if (comma && strcmp(comma, ",rw") == 0) {
		*comma = '\0';
	}
	if (!*arg)
		return kv_err_plain(err, EINVAL, "--%s: empty path", opt);
	disks[*n] = (struct vmm_disk){.path = arg, .ro = ro, .window = window};
	(*n)++;
	return 0;
}

/* Strip ",ro", ",rw", ",dev", ",dax=SIZE" off the end of spec (a path may hold commas). */
static int cli_fs_options(char *spec, struct vmm_fs_share *sh, uint64_t *dax, struct kv_err **err)
{
	char *comma;
	while ((comma = strrchr(spec, ','))) {
		const char *o = comma + 1;
		if (strcmp(o, "ro") == 0)
			sh->ro = true;
		else if (strcmp(o, "dev") == 0)
			sh->dev = true;
		else if (strncmp(o, "dax=", 4) == 0) {
			if (kv_parse_size(o + 4, dax) < 0 || *dax == 0 || *dax > VMM_FS_DAX_MAX)
				return kv_err_plain(err, EINVAL, "--fs: bad DAX size '%s'", o + 4);
			*dax = (*dax + CLI_MEM_ALIGN - 1) & ~(CLI_MEM_ALIGN - 1);
		} else if (strcmp(o, "rw") != 0)
			break; /* part of the path */
		*comma = '\0';
	}
	return 0;
}

/* The device of tag, a new one if there is none yet; NULL (with *err) when full. */
static struct vmm_fs *cli_fs_device(struct vmm_config *cfg, const char *tag, struct kv_err **err)
{
	for (unsigned i = 0; i < cfg->n_fs; i++)
		if (strcmp(cfg->fs[i].tag, tag) == 0)
			return &cfg->fs[i];
	if (cfg->n_fs >= VMM_MAX_FS) {
		kv_err_plain(err, E2BIG, "--fs: at most %d tags", VMM_MAX_FS);
		return NULL;
	}
	struct vmm_fs *fs = &cfg->fs[cfg->n_fs++];
	fs->tag = tag;
	return fs;
}

/* --fs TAG/: a live device (slash the last character, or options after it: refused). */
static int cli_fs_live(struct vmm_config *cfg, char *arg, char *slash, struct kv_err **err)
{
	bool opts = slash[1] == ',';
	*slash = '\0';
	if (!virtio_fs_name_ok(arg, VMM_FS_TAG_MAX))
		return kv_err_plain(err, EINVAL, "--fs: bad tag '%s' (1-%d of A-Z a-z 0-9 . _ -)",
				    arg, VMM_FS_TAG_MAX);
	if (opts)
		return kv_err_plain(err, EINVAL,
				    "--fs %s/: a live device takes no options (no DAX; ro and dev "
				    "are per share, given when it is added)",
				    arg);
	struct vmm_fs *fs = cli_fs_device(cfg, arg, err);
	if (!fs)
		return -1;
	if (fs->live || fs->nshares)
		return kv_err_plain(err, EINVAL,
				    "--fs %s/: a live device is given once, with no other --fs %s",
				    arg, arg);
	fs->live = true;
	return 0;
}

/* --fs TAG=PATH[,opts], TAG/NAME=PATH[,opts] or TAG/; entries of one TAG make one device. */
static int cli_fs_parse(struct vmm_config *cfg, char *arg, struct kv_err **err)
{
	char *eq = strchr(arg, '='), *slash = strchr(arg, '/');
	if (slash && (!eq || slash < eq) && (slash[1] == '\0' || slash[1] == ','))
		return cli_fs_live(cfg, arg, slash, err);
	if (!eq)
		return kv_err_plain(err, EINVAL, "--fs: expected TAG=PATH, TAG/NAME=PATH or TAG/");
	*eq = '\0';
	char *path = eq + 1, *name = strchr(arg, '/');
	if (name)
		*name++ = '\0';
	if (!virtio_fs_name_ok(arg, VMM_FS_TAG_MAX))
		return kv_err_plain(err, EINVAL, "--fs: bad tag '%s' (1-%d of A-Z a-z 0-9 . _ -)",
				    arg, VMM_FS_TAG_MAX);
	if (name && !virtio_fs_name_ok(name, 64))
		return kv_err_plain(err, EINVAL, "--fs %s: bad share name '%s'", arg, name);
	struct vmm_fs_share sh = {.name = name, .path = path};
	uint64_t dax = 0;
	if (cli_fs_options(path, &sh, &dax, err) < 0)
		return -1;
	if (!*path)
		return kv_err_plain(err, EINVAL, "--fs %s: empty path", arg);
	struct vmm_fs *fs = cli_fs_device(cfg, arg, err);
	if (!fs)
		return -1;
	if (fs->live)
		return kv_err_plain(
		    err, EINVAL,
		    "--fs %s: a live device (%s/) takes its shares through the API, "
		    "not the command line",
		    arg, arg);
	if (fs->nshares >= VMM_MAX_FS_SHARES)
		return kv_err_plain(err, E2BIG, "--fs %s: at most %d shares", arg,
				    VMM_MAX_FS_SHARES);
	if (fs->nshares && (!name || !fs->shares[0].name))
		return kv_err_plain(err, EINVAL,
				    "--fs %s: a tag is one PATH, or several TAG/NAME=PATH shares",
				    arg);
	if (dax)
		fs->dax = dax;
	fs->shares[fs->nshares++] = sh;
	return 0;
}

/* --net [mac=XX:XX:XX:XX:XX:XX] */
static int cli_net_parse(struct vmm_config *cfg, const char *arg, struct kv_err **err)
{
	if (cfg->net)
		return kv_err_plain(err, EINVAL, "--net: at most one NIC for now");
	memcpy(cfg->net_mac, cli_default_mac, 6);
	cfg->net = true;
	if (!arg)
		return 0;
	unsigned b[6];
	int end = 0;
	if (strncmp(arg, "mac=", 4) != 0 ||
	    sscanf(arg + 4, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 ||
	    end != 17 || arg[4 + end])
		return kv_err_plain(err, EINVAL, "--net: '%s': expected mac=XX:XX:XX:XX:XX:XX",
				    arg);
	for (int i = 0; i < 6; i++)
		cfg->net_mac[i] = b[i];
	if (cfg->net_mac[0] & 1)
		return kv_err_plain(err, EINVAL, "--net: %s is a multicast address", arg + 4);
	if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
		return kv_err_plain(err, EINVAL, "--net: the MAC is all zeroes");
	return 0;
}

static int cli_mem_parse(const char *s, uint64_t *out, struct kv_err **err)
{
	uint64_t v;
	size_t len = strlen(s);
	bool plain = len && s[len - 1] >= '0' && s[len - 1] <= '9';
	if (kv_parse_size(s, &v) < 0)
		return kv_err_plain(err, EINVAL, "--mem: cannot parse '%s'", s);
	if (plain && v > (CLI_MAX_MEM >> 20))
		return kv_err_plain(err, EINVAL, "--mem: %s is out of range", s);
	if (plain)
		v <<= 20; /* QEMU's convention: a plain number is MiB */
	v = (v + CLI_MEM_ALIGN - 1) & ~(CLI_MEM_ALIGN - 1);
	if (v == 0 || v > CLI_MAX_MEM)
		return kv_err_plain(err, EINVAL, "--mem: %s is out of range", s);
	*out = v;
	return 0;
}

static int cli_uint_parse(const char *opt, const char *s, unsigned long long max,
			  unsigned long long *out, struct kv_err **err)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > max)
		return kv_err_plain(err, EINVAL, "--%s: '%s' is not a number up to %llu", opt, s,
				    max);
	*out = v;
	return 0;
}

static int cli_console_parse(struct vmm_config *cfg, const char *arg, struct kv_err **err)
{
	if (strcmp(arg, "stdio") == 0)
		cfg->console = VMM_CONSOLE_STDIO;
	else if (strcmp(arg, "pty") == 0)
		cfg->console = VMM_CONSOLE_PTY;
	else if (strcmp(arg, "none") == 0)
		cfg->console = VMM_CONSOLE_NONE;
	else if (*arg) {
		cfg->console = VMM_CONSOLE_FILE;
		cfg->console_path = arg;
	} else
		return kv_err_plain(err, EINVAL, "--console: empty");
	return 0;
}

static int cli_enum_parse(const char *opt, const char *arg, const char *const *names, int *out,
			  struct kv_err **err)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(arg, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return kv_err_plain(err, EINVAL, "--%s: unknown value '%s'", opt, arg);
}

/* --jail-uid UID[:GID]: not 0 (root) nor -1 (no change to set*id()). */
static int cli_jail_ids_parse(struct vmm_config *cfg, const char *arg, struct kv_err **err)
{
	unsigned long long uid, gid;
	const char *colon = strchr(arg, ':');
	cleanup_free char *u =
	    kv_asprintf("%.*s", colon ? (int)(colon - arg) : (int)strlen(arg), arg);
	if (cli_uint_parse("jail-uid", u, UINT32_MAX - 1, &uid, err) < 0)
		return -1;
	gid = uid;
	if (colon && cli_uint_parse("jail-uid", colon + 1, UINT32_MAX - 1, &gid, err) < 0)
		return -1;
	if (uid == 0 || gid == 0)
		return kv_err_plain(err, EINVAL,
				    "--jail-uid: the jail is not root (uid and gid 0)");
	cfg->jail_uid = uid;
	cfg->jail_gid = gid;
	return 0;
}

static const char *const pvm_names[] = {"auto", "on", "off", NULL};
static const char *const seccomp_names[] = {"kill", "trap", "off", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

static int cli_option_apply(struct vmm_config *cfg, int c, char *arg, enum vmm_cli_action *action,
			    struct kv_err **err)
{
	unsigned long long u;
	int e = 0;
	switch (c) {
	case OPT_KERNEL: cfg->kernel = arg; return 0;
	case OPT_INITRD: cfg->initrd = arg; return 0;
	case OPT_CMDLINE: cfg->cmdline = arg; return 0;
	case OPT_MEM: cfg->mem_given = true; return cli_mem_parse(arg, &cfg->mem, err);
	case OPT_MEM_FILE: {
		char *comma = strrchr(arg, ',');
		if (comma && strcmp(comma, ",shared") == 0) {
			*comma = '\0';
			cfg->mem_shared = true;
		}
		cfg->mem_path = arg;
		return 0;
	}
	case OPT_CPUS:
		if (cli_uint_parse("cpus", arg, VMM_MAX_CPUS, &u, err) < 0)
			return -1;
		if (u == 0)
			return kv_err_plain(err, EINVAL, "--cpus: at least 1");
		cfg->cpus = u;
		cfg->cpus_given = true;
		return 0;
	case OPT_CONSOLE: return cli_console_parse(cfg, arg, err);
	case OPT_CONSOLE_MAX:
		if (strcmp(arg, "0") == 0) {
			cfg->console_max = 0;
			return 0;
		}
		if (kv_parse_size(arg, &cfg->console_max) < 0 || cfg->console_max == 0)
			return kv_err_plain(err, EINVAL,
					    "--console-max: want a size (\"1M\", bytes) or 0");
		return 0;
	case OPT_PMEM: return cli_disk_parse(cfg->pmem, &cfg->n_pmem, "pmem", arg, err);
	case OPT_BLK: return cli_disk_parse(cfg->blk, &cfg->n_blk, "blk", arg, err);
	case OPT_FS: return cli_fs_parse(cfg, arg, err);
	case OPT_VSOCK: cfg->vsock_uds = arg; return 0;
	case OPT_VSOCK_CID:
		if (cli_uint_parse("vsock-cid", arg, UINT32_MAX - 1, &u, err) < 0)
			return -1;
		if (u < 3)
			return kv_err_plain(err, EINVAL, "--vsock-cid: CIDs 0-2 are reserved");
		cfg->vsock_cid = u;
		return 0;
	case OPT_NET: return cli_net_parse(cfg, arg, err);
	case OPT_NO_RNG: cfg->rng = false; return 0;
	case OPT_KVM_FD:
		if (cli_uint_parse("kvm-fd", arg, INT32_MAX, &u, err) < 0)
			return -1;
		if (u < 3)
			return kv_err_plain(err, EINVAL, "--kvm-fd: %llu is a stdio fd", u);
		cfg->kvm_fd = (int)u;
		return 0;
	case OPT_API: cfg->api_sock = arg; return 0;
	case OPT_STATS: cfg->stats_path = arg; return 0;
	case OPT_PVM:
		if (cli_enum_parse("pvm", arg, pvm_names, &e, err) < 0)
			return -1;
		cfg->pvm = e;
		return 0;
	case OPT_SECCOMP:
		if (cli_enum_parse("seccomp", arg, seccomp_names, &e, err) < 0)
			return -1;
		cfg->seccomp = e;
		return 0;
	case OPT_NO_SANDBOX:
		cfg->seccomp = VMM_SECCOMP_OFF;
		cfg->drop_caps = false;
		cfg->jail = false;
		return 0;
	case OPT_NO_JAIL: cfg->jail = false; return 0;
	case OPT_JAIL_UID: return cli_jail_ids_parse(cfg, arg, err);
	case OPT_LOG_LEVEL:
		if (cli_enum_parse("log-level", arg, level_names, &e, err) < 0)
			return -1;
		cfg->log_level = e;
		return kv_log_init("kvrun-vmm", NULL, KV_LOG_TEXT, e, err);
	case OPT_CHECK: *action = VMM_CLI_CHECK; return 0;
	case OPT_API_CALL:
		cfg->api_call_sock = arg;
		*action = VMM_CLI_API_CALL;
		return 0;
	case OPT_RESTORE: cfg->restore_dir = arg; return 0;
	case OPT_VERSION: *action = VMM_CLI_VERSION; return 0;
	case OPT_HELP: *action = VMM_CLI_HELP; return 0;
	default: return kv_err_plain(err, EINVAL, "unknown option (see --help)");
	}
}

int vmm_cli_parse(struct vmm_config *cfg, int argc, char **argv, enum vmm_cli_action *action,
		  struct kv_err **err)
{
	*action = VMM_CLI_RUN;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", cli_options, NULL)) != -1) {
		if (c == '?' || c == ':')
			return kv_err_plain(err, EINVAL, "bad option '%s' (see --help)",
					    argv[optind - 1]);
		/* --net takes its optional argument as --net=mac=... or as --net mac=... */
		if (c == OPT_NET && !optarg && optind < argc &&
		    strncmp(argv[optind], "mac=", 4) == 0)
			optarg = argv[optind++];
		if (cli_option_apply(cfg, c, optarg, action, err) < 0)
			return -1;
		if (*action == VMM_CLI_API_CALL) {
			if (optind >= argc)
				return kv_err_plain(err, EINVAL, "--api-call SOCK OP: OP missing");
			cfg->api_call_op = argv[optind];
			cfg->api_call_args = argv + optind + 1;
			cfg->api_call_nargs = argc - optind - 1;
			return 0;
		}
		if (*action != VMM_CLI_RUN)
			return 0;
	}
	if (optind < argc)
		return kv_err_plain(err, EINVAL, "unexpected argument '%s' (see --help)",
				    argv[optind]);
	if (cfg->restore_dir && (cfg->kernel || cfg->initrd || cfg->cmdline || cfg->mem_path))
		return kv_err_plain(err, EINVAL,
				    "--restore resumes a running guest: no --kernel, --initrd or "
				    "--cmdline, --mem-file");
	if (!cfg->kernel && !cfg->restore_dir)
		return kv_err_plain(err, EINVAL,
				    "--kernel (or --restore) is required (see --help)");
	return 0;
}

/* ------------------------------------------- the other way: a command line */

struct cli_argv {
	char **v;
	size_t n, cap;
};

static void cli_argv_add(struct cli_argv *a, char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? 2 * a->cap : 32;
		a->v = realloc(a->v, a->cap * sizeof(char *));
		if (!a->v)
			abort();
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* --opt, and its value (taken) unless NULL. */
static void cli_argv_opt(struct cli_argv *a, const char *opt, char *val)
{
	cli_argv_add(a, kv_asprintf("--%s", opt));
	if (val)
		cli_argv_add(a, val);
}

void vmm_cli_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static bool cli_ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && strcmp(s + n - t, tail) == 0;
}

/* A size the parsers read back exactly: M or K suffix, else bytes with none
 * (only where a plain number is bytes: not --mem). */
static char *cli_size_text(uint64_t v)
{
	if (v && v % (1ULL << 20) == 0)
		return kv_asprintf("%lluM", (unsigned long long)(v >> 20));
	if (v && v % (1ULL << 10) == 0)
		return kv_asprintf("%lluK", (unsigned long long)(v >> 10));
	return kv_asprintf("%llu", (unsigned long long)v);
}

/* PATH[,ro]: cli_disk_parse strips one ",ro" or ",rw", so a path ending in
 * one of those gets an explicit ",rw". */
static int cli_disk_argv(struct cli_argv *a, const char *opt, const struct vmm_disk *d,
			 struct kv_err **err)
{
	if (!d->path || !*d->path)
		return kv_err_plain(err, EINVAL, "--%s: empty path", opt);
	const char *last = strrchr(d->path, ',');
	bool tail = last && (strcmp(last, ",ro") == 0 || strcmp(last, ",rw") == 0 ||
			     strncmp(last, ",window=", 8) == 0);
	char win[40] = "";
	if (d->window)
		snprintf(win, sizeof(win), ",window=%llu", (unsigned long long)d->window);
	cli_argv_opt(a, opt,
		     kv_asprintf("%s%s%s", d->path,
				 d->ro	? ",ro"
				 : tail ? ",rw"
					: "",
				 win));
	return 0;
}

/* cli_fs_options reads options off the end of a path for as long as they
 * are options: a path whose last comma-separated part is one cannot be said. */
static bool cli_fs_path_ok(const char *path)
{
	const char *c = strrchr(path, ',');
	if (!*path)
		return false;
	if (!c)
		return true;
	c++;
	return strcmp(c, "ro") != 0 && strcmp(c, "rw") != 0 && strcmp(c, "dev") != 0 &&
	       strncmp(c, "dax=", 4) != 0;
}

/* One device: TAG/ (live), or TAG=PATH,ro|rw[,dev][,dax=SIZE], or TAG/NAME=... per share. */
static int cli_fs_argv(struct cli_argv *a, const struct vmm_fs *fs, struct kv_err **err)
{
	const char *tag = fs->tag ? fs->tag : "";
	if (!virtio_fs_name_ok(tag, VMM_FS_TAG_MAX))
		return kv_err_plain(err, EINVAL, "--fs: bad tag '%s'", tag);
	if (fs->live) {
		if (fs->nshares || fs->dax)
			return kv_err_plain(err, EINVAL,
					    "--fs %s/: a live device has no shares or DAX at boot",
					    tag);
		cli_argv_opt(a, "fs", kv_asprintf("%s/", tag));
		return 0;
	}
	if (!fs->nshares)
		return kv_err_plain(err, EINVAL, "--fs %s: a device without shares", tag);
	for (unsigned i = 0; i < fs->nshares; i++) {
		const struct vmm_fs_share *sh = &fs->shares[i];
		if (!sh->path || !cli_fs_path_ok(sh->path))
			return kv_err_plain(err, EINVAL,
					    "--fs %s: path '%s' would be read as another path "
					    "and options",
					    tag, sh->path ? sh->path : "");
		if ((fs->nshares > 1 && !sh->name) ||
		    (sh->name && !virtio_fs_name_ok(sh->name, 64)))
			return kv_err_plain(err, EINVAL, "--fs %s: share %u: bad or missing name",
					    tag, i);
		cleanup_free char *dax = NULL;
		if (fs->dax && i == 0) {
			cleanup_free char *size = cli_size_text(fs->dax);
			dax = kv_asprintf(",dax=%s", size);
		}
		cli_argv_opt(a, "fs",
			     kv_asprintf("%s%s%s=%s,%s%s%s", tag, sh->name ? "/" : "",
					 sh->name ? sh->name : "", sh->path, sh->ro ? "ro" : "rw",
					 sh->dev ? ",dev" : "", dax ? dax : ""));
	}
	return 0;
}

/* The devices, in slot order (devices.c): pmem, blk, fs, vsock, net, rng. */
static int cli_devices_argv(struct cli_argv *a, const struct vmm_config *cfg, struct kv_err **err)
{
	for (unsigned i = 0; i < cfg->n_pmem; i++)
		if (cli_disk_argv(a, "pmem", &cfg->pmem[i], err) < 0)
			return -1;
	for (unsigned i = 0; i < cfg->n_blk; i++)
		if (cli_disk_argv(a, "blk", &cfg->blk[i], err) < 0)
			return -1;
	for (unsigned i = 0; i < cfg->n_fs; i++)
		if (cli_fs_argv(a, &cfg->fs[i], err) < 0)
			return -1;
	if (cfg->vsock_uds)
		cli_argv_opt(a, "vsock", kv_strdup(cfg->vsock_uds));
	if (cfg->vsock_cid != CLI_DEFAULT_CID)
		cli_argv_opt(a, "vsock-cid",
			     kv_asprintf("%llu", (unsigned long long)cfg->vsock_cid));
	if (cfg->net && memcmp(cfg->net_mac, cli_default_mac, 6) == 0)
		cli_argv_opt(a, "net", NULL);
	else if (cfg->net)
		cli_argv_add(a, kv_asprintf("--net=mac=%02x:%02x:%02x:%02x:%02x:%02x",
					    cfg->net_mac[0], cfg->net_mac[1], cfg->net_mac[2],
					    cfg->net_mac[3], cfg->net_mac[4], cfg->net_mac[5]));
	if (!cfg->rng)
		cli_argv_opt(a, "no-rng", NULL);
	return 0;
}

/* What the guest is: a kernel to boot, or a snapshot to resume. */
static int cli_guest_argv(struct cli_argv *a, const struct vmm_config *cfg, struct kv_err **err)
{
	if (cfg->restore_dir) {
		if (cfg->kernel || cfg->initrd || cfg->cmdline || cfg->mem_path)
			return kv_err_plain(err, EINVAL,
					    "--restore: no --kernel, --initrd, --cmdline or "
					    "--mem-file with it");
		cli_argv_opt(a, "restore", kv_strdup(cfg->restore_dir));
	} else if (cfg->kernel) {
		cli_argv_opt(a, "kernel", kv_strdup(cfg->kernel));
	} else {
		return kv_err_plain(err, EINVAL, "--kernel (or --restore) is required");
	}
	if (cfg->initrd)
		cli_argv_opt(a, "initrd", kv_strdup(cfg->initrd));
	if (cfg->cmdline)
		cli_argv_opt(a, "cmdline", kv_strdup(cfg->cmdline));
	if (cfg->mem_given) {
		/* A plain number is MiB to --mem: K or M always. */
		if (!cfg->mem || cfg->mem % (1ULL << 10))
			return kv_err_plain(err, EINVAL, "--mem: %llu bytes is not whole KiB",
					    (unsigned long long)cfg->mem);
		cli_argv_opt(a, "mem", cli_size_text(cfg->mem));
	}
	if (cfg->mem_path) {
		if (!cfg->mem_shared && cli_ends_with(cfg->mem_path, ",shared"))
			return kv_err_plain(err, EINVAL, "--mem-file: '%s' reads as shared",
					    cfg->mem_path);
		cli_argv_opt(a, "mem-file",
			     kv_asprintf("%s%s", cfg->mem_path, cfg->mem_shared ? ",shared" : ""));
	}
	if (cfg->cpus_given)
		cli_argv_opt(a, "cpus", kv_asprintf("%u", cfg->cpus));
	return 0;
}

/* The console, the control socket, confinement, logging. */
static int cli_host_argv(struct cli_argv *a, const struct vmm_config *cfg, struct kv_err **err)
{
	static const char *const console_names[] = {
	    [VMM_CONSOLE_PTY] = "pty", [VMM_CONSOLE_NONE] = "none", [VMM_CONSOLE_STDIO] = "stdio"};
	if (cfg->console == VMM_CONSOLE_FILE) {
		const char *p = cfg->console_path ? cfg->console_path : "";
		if (!*p || !strcmp(p, "stdio") || !strcmp(p, "pty") || !strcmp(p, "none"))
			return kv_err_plain(err, EINVAL, "--console: '%s' is not a file name", p);
		cli_argv_opt(a, "console", kv_strdup(p));
	} else if (cfg->console != VMM_CONSOLE_STDIO) {
		cli_argv_opt(a, "console", kv_strdup(console_names[cfg->console]));
	}
	if (cfg->console_max != VMM_CONSOLE_MAX_DEFAULT)
		cli_argv_opt(a, "console-max",
			     kv_asprintf("%llu", (unsigned long long)cfg->console_max));
	if (cfg->api_sock)
		cli_argv_opt(a, "api", kv_strdup(cfg->api_sock));
	if (cfg->stats_path)
		cli_argv_opt(a, "stats", kv_strdup(cfg->stats_path));
	if (cfg->pvm != VMM_PVM_AUTO)
		cli_argv_opt(a, "pvm", kv_strdup(pvm_names[cfg->pvm]));
	if (!cfg->drop_caps && cfg->seccomp == VMM_SECCOMP_OFF && !cfg->jail)
		cli_argv_opt(a, "no-sandbox", NULL);
	else if (!cfg->drop_caps || !cfg->pdeathsig)
		return kv_err_plain(err, EINVAL,
				    "no option keeps capabilities with seccomp on or with the "
				    "jail, or drops the parent-death signal");
	else if (cfg->seccomp != VMM_SECCOMP_KILL)
		cli_argv_opt(a, "seccomp", kv_strdup(seccomp_names[cfg->seccomp]));
	if (cfg->drop_caps && !cfg->jail)
		cli_argv_opt(a, "no-jail", NULL);
	if (cfg->jail_uid)
		cli_argv_opt(a, "jail-uid", kv_asprintf("%u:%u", cfg->jail_uid, cfg->jail_gid));
	if (cfg->log_level >= 0 && cfg->log_level <= KV_LOG_DEBUG)
		cli_argv_opt(a, "log-level", kv_strdup(level_names[cfg->log_level]));
	return 0;
}

int vmm_cli_argv(const struct vmm_config *cfg, const char *prog, char ***argv, struct kv_err **err)
{
	*argv = NULL;
	if (cfg->api_call_sock)
		return kv_err_plain(err, EINVAL, "--api-call: a client, not a VM to run");
	struct cli_argv a = {0};
	cli_argv_add(&a, kv_strdup(prog));
	if (cli_guest_argv(&a, cfg, err) < 0 || cli_host_argv(&a, cfg, err) < 0 ||
	    cli_devices_argv(&a, cfg, err) < 0) {
		vmm_cli_argv_free(a.v);
		return -1;
	}
	*argv = a.v;
	return 0;
}

char *vmm_config_layout(const struct vmm_config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	for (unsigned i = 0; i < cfg->n_pmem; i++) {
		if (cfg->pmem[i].window)
			fprintf(f, "pmem window=%llu\n", (unsigned long long)cfg->pmem[i].window);
		else
			fputs("pmem\n", f);
	}
	for (unsigned i = 0; i < cfg->n_blk; i++)
		fputs("blk\n", f);
	for (unsigned i = 0; i < cfg->n_fs; i++) {
		const struct vmm_fs *fs = &cfg->fs[i];
		fprintf(f, "fs %s%s", fs->tag, fs->live ? " live" : "");
		if (fs->dax)
			fprintf(f, " dax=%llu", (unsigned long long)fs->dax);
		fputc('\n', f);
	}
	if (cfg->vsock_uds)
		fputs("vsock\n", f);
	if (cfg->net)
		fputs("net\n", f);
	if (cfg->rng)
		fputs("rng\n", f);
	if (fclose(f) != 0)
		abort();
	return buf;
}
