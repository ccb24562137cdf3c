/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-vmm: parse the command line, then hand over to libvmm. */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <malloc.h>
#include <net/if.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>

#include "vmm/sandbox.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

/* No VM outlives its owner: die with the parent (architecture.md). */
static int main_pdeathsig_set(void)
{
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -1;
	/* The parent may have died before the prctl: then we were reparented. */
	return getppid() == parent ? 0 : -1;
}

/* --api-call SOCK fs-add TAG NAME PATH [ro|rw] | fs-remove TAG NAME */
static int main_api_fs(const struct vmm_config *cfg, struct kv_err **err)
{
	char **a = cfg->api_call_args;
	int n = cfg->api_call_nargs;
	if (strcmp(cfg->api_call_op, "fs-remove") == 0) {
		if (n != 2)
			return kv_err_plain(err, EINVAL,
					    "usage: --api-call SOCK fs-remove TAG NAME");
		return vmm_api_fs_remove(cfg->api_call_sock, a[0], a[1], err);
	}
	if (n < 3 || n > 4 || (n == 4 && strcmp(a[3], "ro") != 0 && strcmp(a[3], "rw") != 0))
		return kv_err_plain(err, EINVAL,
				    "usage: --api-call SOCK fs-add TAG NAME PATH [ro|rw]");
	/* The operator's path: symlinks in it are theirs to follow, as with --fs. */
	cleanup_close int fd = open(a[2], O_PATH | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "fs-add: open %s", a[2]);
	return vmm_api_fs_add(cfg->api_call_sock, a[0], a[1], fd, n == 4 && strcmp(a[3], "ro") == 0,
			      err);
}

/* --api-call SOCK net-attach TAP | net-detach: TAP is opened (or created) here. */
static int main_api_net(const struct vmm_config *cfg, struct kv_err **err)
{
	int n = cfg->api_call_nargs;
	if (strcmp(cfg->api_call_op, "net-detach") == 0) {
		if (n != 0)
			return kv_err_plain(err, EINVAL, "usage: --api-call SOCK net-detach");
		return vmm_api_net_detach(cfg->api_call_sock, err);
	}
	if (n != 1 || strlen(cfg->api_call_args[0]) >= IFNAMSIZ)
		return kv_err_plain(err, EINVAL, "usage: --api-call SOCK net-attach TAP");
	cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "net-attach: open /dev/net/tun");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, cfg->api_call_args[0]);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return kv_err_make(err, errno, "net-attach: tap %s", cfg->api_call_args[0]);
	return vmm_api_net_attach(cfg->api_call_sock, fd, err);
}

/* --api-call SOCK pmem-bind N [PATH]: PATH opened here; none: zeroes. */
static int main_api_pmem(const struct vmm_config *cfg, struct kv_err **err)
{
	char **a = cfg->api_call_args;
	int n = cfg->api_call_nargs;
	char *end = NULL;
	unsigned long dev = n >= 1 ? strtoul(a[0], &end, 10) : 0;
	if (n < 1 || n > 2 || !end || *end || end == a[0] || dev >= VMM_MAX_DISKS)
		return kv_err_plain(err, EINVAL, "usage: --api-call SOCK pmem-bind N [PATH]");
	cleanup_close int fd = n == 2 ? open(a[1], O_RDONLY | O_CLOEXEC) : -1;
	if (n == 2 && fd < 0)
		return kv_err_make(err, errno, "pmem-bind: open %s", a[1]);
	return vmm_api_pmem_bind(cfg->api_call_sock, (unsigned)dev, fd, err);
}

static int main_api_call(const struct vmm_config *cfg, struct kv_err **err)
{
	cleanup_free char *resp = NULL;
	int r;
	const char *op = cfg->api_call_op;
	if (strcmp(op, "fs-add") == 0 || strcmp(op, "fs-remove") == 0) {
		if (main_api_fs(cfg, err) < 0) {
			kv_log_err(*err);
			return VMM_EXIT_ERROR;
		}
		return 0;
	}
	if (strcmp(op, "net-attach") == 0 || strcmp(op, "net-detach") == 0) {
		if (main_api_net(cfg, err) < 0) {
			kv_log_err(*err);
			return VMM_EXIT_ERROR;
		}
		return 0;
	}
	if (strcmp(op, "pmem-bind") == 0) {
		if (main_api_pmem(cfg, err) < 0) {
			kv_log_err(*err);
			return VMM_EXIT_ERROR;
		}
		return 0;
	}
	if (strcmp(op, "snapshot") == 0) {
		if (cfg->api_call_nargs < 1 || cfg->api_call_nargs > 2) {
			kv_error("usage: --api-call SOCK snapshot DIR [resume|pause|exit]");
			return VMM_EXIT_ERROR;
		}
		r = vmm_snapshot(cfg->api_call_sock, cfg->api_call_args[0],
				 cfg->api_call_nargs > 1 ? cfg->api_call_args[1] : NULL, &resp,
				 err);
	} else {
		r = vmm_api_call(cfg->api_call_sock, op, &resp, err);
	}
	if (resp)
		printf("%s\n", resp);
	if (r < 0 && (!resp || strstr(resp, "\"ok\":true")))
		kv_log_err(*err);
	return r < 0 ? VMM_EXIT_ERROR : 0;
}

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	enum vmm_cli_action action;
	cleanup_err struct kv_err *err = NULL;
	/* Buffers of 64 KiB and more (a FUSE server's argument and reply
	 * buffers, inode chunks and hash, the NIC's frame) from their own
	 * mappings: zeroed by the kernel page by page as they are used, where
	 * calloc from the heap would write every page of each at once. An idle
	 * VM touches few of them; with 200 VMs on a host, that is its PSS. */
	mallopt(M_MMAP_THRESHOLD, 64 << 10);
	/* glibc reads /etc/localtime on first use (log timestamps): now, before
	 * any thread is confined (a virtio-fs worker that logs first may not
	 * open at all). */
	tzset();
	if (kv_log_init("kvrun-vmm", NULL, KV_LOG_TEXT, KV_LOG_INFO, NULL) < 0)
		return VMM_EXIT_ERROR;
	vmm_config_init(&cfg);
	if (vmm_cli_parse(&cfg, argc, argv, &action, &err) < 0) {
		kv_log_err(err);
		return VMM_EXIT_ERROR;
	}
	switch (action) {
	case VMM_CLI_HELP: vmm_cli_usage(stdout); return 0;
	case VMM_CLI_VERSION: printf("kvrun-vmm %s\n", VMM_VERSION); return 0;
	case VMM_CLI_CHECK: return vmm_host_check_print(stdout) ? 1 : 0;
	case VMM_CLI_API_CALL: return main_api_call(&cfg, &err);
	default: break;
	}
	if (cfg.pdeathsig && main_pdeathsig_set() < 0) {
		kv_error("parent exited before the VM started");
		return VMM_EXIT_ERROR;
	}
	if (cfg.kvm_fd >= 0)
		vm_kvm_fd_use(cfg.kvm_fd);
	/* seccomp's SIGSYS handler and its unwinder (libgcc_s), before the jail;
	 * only a VM that loads filters needs them (not --api-call, --check). */
	if (cfg.seccomp != VMM_SECCOMP_OFF)
		sandbox_seccomp_prepare();
	int status;
	if (vmm_run(&cfg, &status, &err) < 0) {
		kv_log_err(err);
		return VMM_EXIT_ERROR;
	}
	return status;
}
