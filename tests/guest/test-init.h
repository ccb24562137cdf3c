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

/* test-init-fs.c: helpers the fs checks share */
#include <sys/types.h>
/* One fs check: the first failed step is its detail. */
struct fsck {
	bool ok;
	int steps;
	char why[200];
};
/* Count a step; the first that fails (cond false) names itself and errno. */
bool fsck_step(struct fsck *c, bool cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool fs_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* Read up to n-1 bytes, NUL-terminated; -1 on error. */
ssize_t fs_read_file(const char *path, char *buf, size_t n);
/* mount -t virtiofs tag /mnt/<tag> [-o dax]; the mount point in mnt. */
bool fs_mount(const char *tag, bool dax, char *mnt, size_t n);
/* Entries of dir but . and ..; -1 when it cannot be read. */
int fs_count_entries(const char *dir);

/* test-init-fs.c */
void check_fs(void);
void check_fs_ro(void);
void check_fs_file(void);
void check_fs_binds(void);
void check_fs_escape(void);
void check_fsbench(void);

/* test-init-live.c */
void check_fs_live(void);

#endif
