/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun-vmm: the firmware-less KVM microVM monitor. This is the one public
 * header of vmm/ (libvmm.a); other directories use the VMM only through it.
 *
 * Guest-visible ABI that the guest side (agent, test init) relies on:
 *
 *  - Exit device: port VMM_EXIT_PORT (0x501), one byte out. The VMM adds
 *    `kvrun.exit=0x501` to the command line; the kvrun guest kernel then
 *    writes 0 there on power-off and 1 from its last panic notifier (a
 *    kernel without ACPI has no other way to say either). The agent or an
 *    init may also write a status of its own.
 *      0        power-off: kvrun-vmm exits 0 at once.
 *      1        panic: recorded; the VM stops at the reset that `panic=-1`
 *               (added by the VMM) performs once the console is flushed, or
 *               after VMM_PANIC_GRACE_S, and kvrun-vmm exits VMM_EXIT_PANIC.
 *      2..255   kvrun-vmm exits with that status at once (guests should use
 *               16 and above, below are the VMM's own statuses).
 *  - Halt: when every vCPU is halted with interrupts off (a kernel without
 *    the exit port powering off or halting), the VM stops with status 0.
 *  - Reset: 0xfe to the i8042 command port 0x64 (`reboot=k`, added by the
 *    VMM), a triple fault (KVM_EXIT_SHUTDOWN) or a KVM reset event stops the
 *    VM with VMM_EXIT_RESET (or VMM_EXIT_PANIC after a panic report).
 *  - Console: an 8250 UART at I/O port 0x3f8, IRQ 4 (`console=ttyS0`).
 *  - virtio-mmio devices at VMM_VIRTIO_MMIO_BASE + i * 0x1000, GSI 5 + i,
 *    declared with `virtio_mmio.device=` on the kernel command line, in
 *    this order: pmem, blk, fs, vsock, net, rng.
 */
#ifndef KV_VMM_H
#define KV_VMM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lib/kv.h"

#define VMM_VERSION "0.1.0"

/* Guest ABI (see above). */
#define VMM_EXIT_PORT	     0x501
#define VMM_VIRTIO_MMIO_BASE 0xd0000000ULL

/* kvrun-vmm exit statuses that are not a byte the guest wrote. */
enum {
	VMM_EXIT_POWEROFF = 0, /* guest wrote 0 to the exit port, or halted for good */
	VMM_EXIT_ERROR = 1,    /* the VMM failed: setup, KVM error, unhandled guest fault */
	VMM_EXIT_RESET = 2,    /* guest reset (reboot, triple fault) without a panic report */
	VMM_EXIT_PANIC = 3,    /* guest kernel panicked (reported through the exit port) */
};

/* Exit-port values with a meaning of their own. */
#define VMM_EXIT_PORT_POWEROFF 0
#define VMM_EXIT_PORT_PANIC    1
/* After a panic report, how long the guest has to flush its console and reset. */
#define VMM_PANIC_GRACE_S 30

#define VMM_MAX_DISKS 8
#define VMM_MAX_CPUS  64

/*
 * virtio-fs (--fs): one device per tag, exporting one host directory (or
 * file) as its root, or several named shares under a synthetic root, or
 * (live, `--fs TAG/`) a synthetic root that takes named shares at run time
 * through the API (vmm_api_fs_add/remove). The guest mounts a tag with
 * `mount -t virtiofs TAG /mnt [-o dax]`.
 */
#define VMM_MAX_FS	  8
#define VMM_MAX_FS_SHARES 16
#define VMM_FS_LIVE_MAX	  64 /* shares on a live device at once */
#define VMM_FS_TAG_MAX	  36
#define VMM_FS_DAX_MAX	  (64ULL << 30)
struct vmm_fs_share {
	const char *name; /* NULL: the share is the root */
	const char *path;
	bool ro, dev;
};
struct vmm_fs {
	const char *tag;
	struct vmm_fs_share shares[VMM_MAX_FS_SHARES];
	unsigned nshares;
	uint64_t dax; /* DAX window in bytes (2 MiB multiple), 0 for none */
	bool live;    /* --fs TAG/: no shares at boot, added and removed through the API */
};

struct vmm_disk {
	const char *path;
	bool ro;
	/* pmem: the guest's memory window (a slot), 0 = the file's size rounded
	 * up to 2 MiB. A smaller file reads as zeroes past its end; a template
	 * reserves windows that clones bind other files of that size or less to. */
	uint64_t window;
};
/* The largest pmem window (--pmem ...,window=): 64 GiB. */
#define VMM_PMEM_WINDOW_MAX (64ull << 30)

/*
 * The jail's default ids (--jail-uid; vmm/sandbox.h says why): VMM_JAIL_ID_BASE
 * + the VMM's pid, or, for a VMM that is pid 1 of a pid namespace of its own,
 * vmm_jail_ns_id() of that namespace's inode: VMM_JAIL_ID_BASE + VMM_JAIL_PIDS
 * + its offset from the first dynamic proc inode, unique among live
 * namespaces. Pids stay below VMM_JAIL_PIDS (the kernel's PID_MAX_LIMIT).
 */
#define VMM_JAIL_ID_BASE       0x6b760000u
#define VMM_JAIL_PIDS	       0x400000u
#define VMM_PROC_DYNAMIC_FIRST 0xF0000000u
/* The id of the caller's pid namespace; 0 with errno set where /proc
 * cannot tell it, or ERANGE for an inode out of that range. */
static inline uint32_t vmm_jail_ns_id(void)
{
	struct stat st;
	if (stat("/proc/self/ns/pid", &st) < 0)
		return 0;
	uint64_t ino = st.st_ino;
	if (ino < VMM_PROC_DYNAMIC_FIRST || ino - VMM_PROC_DYNAMIC_FIRST >= VMM_JAIL_PIDS) {
		errno = ERANGE;
		return 0;
	}
	return VMM_JAIL_ID_BASE + VMM_JAIL_PIDS + (uint32_t)(ino - VMM_PROC_DYNAMIC_FIRST);
}

enum vmm_console_kind {
	VMM_CONSOLE_STDIO, /* output on stdout, input from stdin */
	VMM_CONSOLE_FILE,  /* output to a file (a tty path is also read for input) */
	VMM_CONSOLE_PTY,   /* a new pty; its path is printed on stderr */
	VMM_CONSOLE_NONE,
};

enum vmm_pvm_mode { VMM_PVM_AUTO, VMM_PVM_ON, VMM_PVM_OFF };
enum vmm_seccomp_mode { VMM_SECCOMP_KILL, VMM_SECCOMP_TRAP, VMM_SECCOMP_OFF };

struct vmm_config {
	const char *kernel;  /* vmlinux (ELF64) or bzImage (boot protocol >= 2.10) */
	const char *initrd;  /* optional */
	const char *cmdline; /* user part; the VMM appends devices and defaults */
	uint64_t mem;	     /* bytes */
	/* Guest RAM from this file (>= mem bytes) instead of a fresh memfd:
	 * MAP_PRIVATE (copy on write, a template's memory) unless mem_shared. */
	const char *mem_path;
	bool mem_shared;
	unsigned cpus;
	enum vmm_console_kind console;
	const char *console_path;
	/* A console file (not a tty) takes at most this many bytes of guest
	 * output, then one line saying so; 0: no cap. */
	uint64_t console_max;
	struct vmm_disk pmem[VMM_MAX_DISKS];
	unsigned n_pmem;
	struct vmm_disk blk[VMM_MAX_DISKS];
	unsigned n_blk;
	struct vmm_fs fs[VMM_MAX_FS];
	unsigned n_fs;
	const char *vsock_uds; /* hybrid vsock host socket, or NULL */
	uint64_t vsock_cid;
	/* --net [mac=MAC]: one virtio-net NIC, link down until a tap is attached (API). */
	bool net;
	uint8_t net_mac[6];
	bool rng;		/* virtio-rng (on by default) */
	const char *api_sock;	/* control socket, or NULL */
	const char *stats_path; /* write run statistics (JSON) here at exit */
	int kvm_fd;		/* /dev/kvm opened by the caller (--kvm-fd), or -1 */
	enum vmm_pvm_mode pvm;
	enum vmm_seccomp_mode seccomp;
	bool drop_caps;
	bool pdeathsig;
	/* After setup, a VMM started as root moves into its jail: its own mount,
	 * ipc and uts namespaces, an empty read-only root, an unprivileged uid
	 * and gid (0x6b760000 + its pid, or jail_uid/jail_gid when jail_uid is
	 * not 0). Off with --no-jail or --no-sandbox. Paths it still reaches:
	 * only "<vsock_uds>_<port>" (guest->host vsock), which must let that uid
	 * connect. Its sockets are left at exit for their directory's owner. */
	bool jail;
	uint32_t jail_uid, jail_gid;
	/* --api-call SOCK OP [ARGS]: be a client of a running VMM instead. */
	const char *api_call_sock, *api_call_op;
	char **api_call_args; /* what follows OP (snapshot DIR [THEN]) */
	int api_call_nargs;
	/* --restore DIR: resume the snapshot in DIR instead of booting a kernel. */
	const char *restore_dir;
	bool mem_given, cpus_given; /* --mem / --cpus were on the command line */
	int log_level;		    /* --log-level (enum kv_log_level), or -1: not given */
};

/* Defaults: 256 MiB, 1 vCPU, stdio console (a file capped at 1 MiB), rng on, sandbox and jail on.
 */
#define VMM_CONSOLE_MAX_DEFAULT (1ull << 20)
void vmm_config_init(struct vmm_config *cfg);

/* What main() should do after parsing the command line. */
enum vmm_cli_action { VMM_CLI_RUN, VMM_CLI_HELP, VMM_CLI_VERSION, VMM_CLI_CHECK, VMM_CLI_API_CALL };
/* Parse argv into cfg (argv strings are borrowed). Errors name the option. */
int vmm_cli_parse(struct vmm_config *cfg, int argc, char **argv, enum vmm_cli_action *action,
		  struct kv_err **err) KV_WUR;
void vmm_cli_usage(FILE *out);

/*
 * The other way: the kvrun-vmm command line that vmm_cli_parse() reads back
 * as cfg (prog is argv[0]). Options at their defaults are left out, --mem
 * and --cpus unless given; devices come last, in their slot order. *argv
 * is NULL-terminated, every string malloc'd (vmm_cli_argv_free). Fails,
 * naming the option, for what no command line can say: a path that parses
 * as something else (an --fs path ending in ",ro", a --console file named
 * "pty"), an --fs device without shares, a client (--api-call) config.
 */
int vmm_cli_argv(const struct vmm_config *cfg, const char *prog, char ***argv,
		 struct kv_err **err) KV_WUR;
void vmm_cli_argv_free(char **argv);

/*
 * The devices of cfg as a snapshot restore matches them with the VM's
 * (snapshot_dev.c: kind, virtio-fs tag and DAX window, slot by slot), one
 * line each in slot order: "pmem[ window=BYTES]", "blk", "fs TAG[ live][ dax=BYTES]",
 * "vsock", "net", "rng". Files, share paths and ro flags are not in it: a
 * clone may differ there. malloc'd.
 */
char *vmm_config_layout(const struct vmm_config *cfg);

/*
 * Boot the VM described by cfg and run it until the guest powers off or
 * resets, the API asks for shutdown, or an error stops it. *exit_status is
 * the status kvrun-vmm should exit with (see VMM_EXIT_*). Returns 0 when the
 * VM ran and stopped for a guest reason; negative with *err when the VMM
 * itself failed (*exit_status is then VMM_EXIT_ERROR).
 */
int vmm_run(const struct vmm_config *cfg, int *exit_status, struct kv_err **err) KV_WUR;

/*
 * Host check (kvrun-vmm --check, reused by `kvrun check`): /dev/kvm access,
 * hardware virtualization or PVM, the KVM capabilities the VMM needs. Calls
 * `report` once per item with a one-line, actionable message; returns the
 * number of failed items.
 */
typedef void (*vmm_check_report_fn)(void *ctx, const char *item, bool ok, const char *message);
int vmm_host_check(vmm_check_report_fn report, void *ctx);
/* The same, printed as "ok|FAIL item: message" lines. */
int vmm_host_check_print(FILE *out);

/*
 * Control API client (the protocol is in vmm/api.h): send {"op":OP} to the
 * VMM listening on sock and return its one-line JSON response (malloc'd).
 * Fails when the socket cannot be reached or the answer is not "ok":true
 * (*response is set either way when an answer came).
 */
int vmm_api_call(const char *sock, const char *op, char **response, struct kv_err **err) KV_WUR;

/*
 * Snapshot the VM listening on sock into the directory dir (created if
 * needed): the client creates dir/state and dir/memory and hands them to
 * the VMM (see vmm/snapshot.h for the format). then: "resume" (default),
 * "pause" or "exit" (the VMM stops once the snapshot is written). The
 * files appear only when the snapshot is complete. *response is the VMM's
 * answer (malloc'd) when one came.
 */
int vmm_snapshot(const char *sock, const char *dir, const char *then, char **response,
		 struct kv_err **err) KV_WUR;

/*
 * Live virtio-fs shares (a device given as --fs TAG/): share the host
 * directory or regular file `fd` (O_PATH or O_RDONLY, opened by the caller
 * and still the caller's) as NAME in TAG's root, read-only when ro, as if
 * it had been given at boot as --fs TAG/NAME=PATH[,ro]; or take NAME away,
 * closing every host fd of it in the VMM before returning. NAME: 1-64 of
 * A-Z a-z 0-9 . _ - (not . or ..); at most VMM_FS_LIVE_MAX shares per
 * device. The guest sees a new share at once and a removed one gone
 * within FUSE's entry timeout (1 s; its open files fail at once). Errors
 * carry the VMM's errno (ENOENT: no such tag or share, EEXIST, ENOSPC,
 * EINVAL: not a live device, a bad name or fd; ETIMEDOUT: the device's
 * worker stayed busy for 5 s, and the message says whether nothing changed
 * or the change may still happen) and message. sock may be a path of any
 * length (longer than sun_path: reached through /proc/self/fd).
 */
int vmm_api_fs_add(const char *sock, const char *tag, const char *name, int fd, bool ro,
		   struct kv_err **err) KV_WUR;
int vmm_api_fs_remove(const char *sock, const char *tag, const char *name,
		      struct kv_err **err) KV_WUR;

/*
 * The NIC (--net): hand the VMM listening on sock a tap to back it, opened
 * by the caller with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (the VMM keeps a
 * duplicate; the caller's fd stays the caller's, and becomes O_NONBLOCK:
 * the file is shared); the guest sees its link come up. Detach: link
 * down, the VMM's duplicate closed; fine when nothing is attached. Errors
 * carry the VMM's errno (ENODEV: no --net device; EBUSY: a tap is attached
 * already, detach it first; EINVAL: the fd is not such a tap) and message.
 */
int vmm_api_net_attach(const char *sock, int tapfd, struct kv_err **err) KV_WUR;
/* Not KV_WUR: teardown paths may ignore it (gcc warns even through a (void) cast). */
int vmm_api_net_detach(const char *sock, struct kv_err **err);

/*
 * A slot (a read-only --pmem given a window): map fd, a regular file no
 * larger than the window opened O_RDONLY, over pmem<device>'s window of
 * the VM whose API is at sock, or zeroes where fd < 0. For a pod's member
 * and its image layers; the guest must not have the device mounted.
 * Errors carry the VMM's errno (ENOENT: no such device; EPERM: not a slot;
 * EFBIG: larger than the window; EINVAL: not a regular file).
 */
int vmm_api_pmem_bind(const char *sock, unsigned device, int fd, struct kv_err **err) KV_WUR;

/* True when /dev/kvm is provided by PVM (kvm_pvm loaded, no vmx/svm flag). */
bool vmm_pvm_detect(void);

#endif
