/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The committed shim's seccomp programs, compiled at build time
 * (shim/tools/seccomp_gen.c writes build/gen/shim/seccomp_bpf.c from
 * shim/seccomp_rules.c): [0] without a network interface, [1] with one.
 */
#ifndef KV_SHIM_SECCOMP_BPF_H
#define KV_SHIM_SECCOMP_BPF_H

#include <linux/filter.h>
#include <stdbool.h>

struct shim_bpf {
	const struct sock_filter *insns;
	unsigned short len;
};

extern const struct shim_bpf shim_bpf[2];

/* libseccomp's program for the list (seccomp_rules.c): for the build tool and
 * the unit tests. 0 or -errno; *prog is malloc'd. */
int shim_seccomp_compile(bool net, struct sock_filter **prog, unsigned short *len);

#endif
