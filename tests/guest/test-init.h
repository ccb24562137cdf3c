/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-init: what the files of the test initramfs's PID 1 share (the list of
 * checks and what each does: test-init.c).
 */
#ifndef KVRUN_TEST_INIT_H
#define KVRUN_TEST_INIT_H

#include <stdbool.h>

/* One line on the console (the newline is added). */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "KVRUN-TEST <name> PASS|FAIL <detail>"; a FAIL counts in KVRUN-TEST-DONE. */
void result(const char *name, bool pass, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Value of kvrun.<key>= on the command line, or def (a static buffer). */
const char *arg(const char *key, const char *def);

/* test-init-devices.c */
void check_cpus(void);
void check_rng(void);
void check_pmem(void);
void check_blk(void);
void check_vsock(void);
void check_syscalls(void);

/* test-init-vm.c */
void check_serve(void);
void check_sleep(void);
void check_idle(void);

/* test-init-fs.c */
void check_fs(void);
void check_fs_ro(void);
void check_fs_file(void);
void check_fs_binds(void);
void check_fs_escape(void);
void check_fsbench(void);

#endif
