/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seccomp programs, compiled at build time (vmm/tools/seccomp_gen.c
 * writes build/gen/vmm/seccomp_bpf.c from seccomp_rules.c).
 */
#ifndef KV_VMM_SECCOMP_BPF_H
#define KV_VMM_SECCOMP_BPF_H

#include <linux/filter.h>

#define SANDBOX_BPF_MODES 2 /* [0] default action kill the process, [1] trap */
#define SANDBOX_BPF_KINDS 3 /* enum sandbox_thread */

struct sandbox_bpf {
	const struct sock_filter *insns;
	unsigned short len;
};

extern const struct sandbox_bpf sandbox_bpf[SANDBOX_BPF_MODES][SANDBOX_BPF_KINDS];

#endif
