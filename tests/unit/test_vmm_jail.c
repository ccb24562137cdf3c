/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM's jail (vmm/sandbox.h, jail.c), in a child as kvrun-vmm takes it:
 * namespaces first, with one thread; a worker thread made during "setup"
 * with its own fs struct (as a virtio-fs worker's); then the pivot and the
 * ids. What the host sees of the child (/proc) and what the child sees of
 * the host are checked. Needs root (skipped otherwise, saying so).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "vmm/sandbox.h"

#define JAIL_UID    0x6b76fff0u
#define JAIL_GID    0x6b76fff1u
#define DIAL_PORT   5
#define TIMING_RUNS 7

/* What the child found, sent to the parent in one write. */
struct jail_report {
	int step_ok;		 /* 3: unshare, pivot and ids all done */
	char root_ls[64];	 /* names in /, space-separated */
	int proc_gone;		 /* no /proc in the jail */
	int mkdir_errno;	 /* mkdir("/x") */
	int dial_ok;		 /* connect to /vsock/vsock.sock_5 */
	unsigned uid, gid;	 /* the main thread's, after the jail */
	unsigned worker_uid;	 /* the worker thread's */
	char worker_root_ls[64]; /* / as the worker sees it */
	pid_t worker_tid;
	long long jail_ns;	  /* unshare + pivot + ids */
	int worker_jail_ok;	  /* sandbox_fs_thread_jail() */
	long long worker_jail_ns; /* its cost */
	int worker_share_ok;	  /* an fd opened before still reaches its directory */
};

struct worker {
	int go[2];   /* parent thread -> worker: look now */
	int done[2]; /* worker -> parent thread */
	int share;   /* O_PATH of the test's directory, as a virtio-fs share's fd */
	struct jail_report *rep;
};

static void ls_root(char *out, size_t n)
{
	out[0] = '\0';
	DIR *d = opendir("/");
	if (!d) {
		snprintf(out, n, "(opendir: %s)", strerror(errno));
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			snprintf(out + strlen(out), n - strlen(out), "%s%s", *out ? " " : "",
				 de->d_name);
	closedir(d);
}

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	/* As a virtio-fs worker: its own fs struct (umask), made before the
	 * pivot, then its own jail (vmm/virtio/fs.c, devices.c). */
	if (unshare(CLONE_FS) < 0)
		return NULL;
	struct kv_err *err = NULL;
	long long t0 = now_ns();
	int keep;
	w->rep->worker_jail_ok = sandbox_fs_thread_jail(-1, &keep, &err) == 0;
	w->rep->worker_jail_ns = now_ns() - t0;
	if (err)
		fprintf(stderr, "# worker jail: %s\n", err->msg);
	kv_err_free(err);
	int fd = openat(w->share, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	w->rep->worker_share_ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	__atomic_store_n(&w->rep->worker_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	char c;
	if (read(w->go[0], &c, 1) != 1)
		return NULL;
	w->rep->worker_uid = (unsigned)syscall(SYS_getuid);
	ls_root(w->rep->worker_root_ls, sizeof(w->rep->worker_root_ls));
	(void)!write(w->done[1], "x", 1);
	(void)!read(w->go[0], &c, 1); /* alive until the process exits: the parent looks at it */
	return NULL;
}

static int dial_out(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock.sock_%d", SANDBOX_JAIL_DIAL_DIR,
		 DIAL_PORT);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return r;
}

/* The child: jail itself, report, wait for the parent to look at it, exit. */
static void child(const char *dir, const char *dial, int report_fd, int hold_fd)
{
	struct jail_report rep;
	memset(&rep, 0, sizeof(rep));
	struct kv_err *err = NULL;
	struct worker w = {.rep = &rep, .share = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)};
	long long t0 = now_ns();
	if (sandbox_jail_unshare(&err) == 0)
		rep.step_ok++;
	long long t1 = now_ns();
	if (pipe(w.go) < 0 || pipe(w.done) < 0)
		syscall(SYS_exit_group, 2);
	pthread_t th;
	if (pthread_create(&th, NULL, worker_main, &w) != 0)
		syscall(SYS_exit_group, 2);
	while (!__atomic_load_n(&rep.worker_tid, __ATOMIC_SEQ_CST))
		sched_yield();
	if (chdir(dir) < 0) /* as kvrun-vmm runs in its sandbox directory */
		syscall(SYS_exit_group, 2);
	long long t2 = now_ns();
	if (rep.step_ok == 1 && sandbox_jail_pivot(dial, &err) == 0)
		rep.step_ok++;
	struct sandbox_ids ids = {.uid = JAIL_UID, .gid = JAIL_GID};
	if (rep.step_ok == 2 && sandbox_jail_ids(&ids, &err) == 0)
		rep.step_ok++;
	rep.jail_ns = (t1 - t0) + (now_ns() - t2);
	if (err)
		fprintf(stderr, "# jail: %s\n", err->msg);
	ls_root(rep.root_ls, sizeof(rep.root_ls));
	rep.proc_gone = access("/proc", F_OK) < 0;
	rep.mkdir_errno = mkdir("/x", 0755) < 0 ? errno : 0;
	rep.dial_ok = dial_out();
	rep.uid = (unsigned)syscall(SYS_getuid);
	rep.gid = (unsigned)syscall(SYS_getgid);
	char c;
	if (write(w.go[1], "x", 1) != 1 || read(w.done[0], &c, 1) != 1)
		syscall(SYS_exit_group, 2);
	(void)!write(report_fd, &rep, sizeof(rep));
	(void)!read(hold_fd, &c, 1); /* the parent looks at /proc/<pid> meanwhile */
	/* Not _exit(): ASan's interceptor runs the leak check, which clones. */
	syscall(SYS_exit_group, 0);
}

static void proc_field(pid_t pid, pid_t tid, const char *field, char *out, size_t n)
{
	char path[96], line[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t fl = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			snprintf(out, n, "%s", line + fl + 1 + strspn(line + fl + 1, " \t"));
			out[strcspn(out, "\n")] = '\0';
		}
	fclose(f);
}

static bool ns_differs(pid_t pid, const char *ns)
{
	char a[64], b[64], pa[64], pb[64];
	snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", (int)pid, ns);
	snprintf(pb, sizeof(pb), "/proc/self/ns/%s", ns);
	ssize_t na = readlink(pa, a, sizeof(a) - 1), nb = readlink(pb, b, sizeof(b) - 1);
	if (na <= 0 || nb <= 0)
		return false;
	a[na] = b[nb] = '\0';
	return strcmp(a, b) != 0;
}

/* A child jailed beside dir: fills rep; the caller inspects, then releases it. */
static pid_t jail_child(const char *dir, const char *dial, struct jail_report *rep, int *hold)
{
	int rp[2], hp[2];
	if (pipe(rp) < 0 || pipe(hp) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(rp[0]);
		close(hp[1]);
		child(dir, dial, rp[1], hp[0]);
	}
	close(rp[1]);
	close(hp[0]);
	*hold = hp[1];
	memset(rep, 0, sizeof(*rep));
	ssize_t n = read(rp[0], rep, sizeof(*rep));
	close(rp[0]);
	if (n != (ssize_t)sizeof(*rep))
		rep->step_ok = -1;
	return pid;
}

static int child_reap(pid_t pid, int hold)
{
	close(hold);
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

static int listener(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock.sock_%d", dir, DIAL_PORT);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
		return -1;
	/* A guest->host peer lets the jail's uid connect (vmm/vmm.h). */
	chmod(sa.sun_path, 0666);
	return fd;
}

static void test_jail(const char *dir)
{
	int lfd = listener(dir);
	ok(lfd >= 0, "a guest->host listener beside the vsock socket");
	struct jail_report rep;
	int hold;
	pid_t pid = jail_child(dir, ".", &rep, &hold);
	if (!ok(pid > 0 && rep.step_ok == 3, "unshare, pivot and ids (%d of 3 steps)",
		rep.step_ok)) {
		if (pid > 0)
			child_reap(pid, hold);
		close(lfd);
		return;
	}
	is_str(rep.root_ls, "vsock", "the jail's / holds only the vsock directory");
	ok(rep.proc_gone, "no /proc in the jail");
	is_int(rep.mkdir_errno, EROFS, "the jail's / is read-only");
	ok(rep.dial_ok, "a guest->host dial reaches <dir>/vsock.sock_5 through /vsock");
	is_int(rep.uid, JAIL_UID, "the jailed thread's uid");
	is_int(rep.gid, JAIL_GID, "the jailed thread's gid");
	is_int(rep.worker_uid, 0, "a thread made before the ids keeps its own (raw setresuid)");
	ok(rep.worker_jail_ok, "a virtio-fs worker jails itself (sandbox_fs_thread_jail)");
	is_str(rep.worker_root_ls, "", "  its / is empty: not the host's, not the VMM's /vsock");
	ok(rep.worker_share_ok, "  a directory it holds an fd of (a share) is still reached");
	char uid[64], seen[64];
	proc_field(pid, pid, "Uid", uid, sizeof(uid));
	snprintf(seen, sizeof(seen), "%u\t%u\t%u\t%u", JAIL_UID, JAIL_UID, JAIL_UID, JAIL_UID);
	is_str(uid, seen, "/proc/<pid>/status: Uid is the jail's (real, effective, saved, fs)");
	proc_field(pid, pid, "Groups", uid, sizeof(uid));
	is_str(uid, "", "no supplementary groups");
	proc_field(pid, rep.worker_tid, "Uid", uid, sizeof(uid));
	is_str(uid, "0\t0\t0\t0", "the worker's task status: uid 0");
	ok(ns_differs(pid, "mnt") && ns_differs(pid, "ipc") && ns_differs(pid, "uts"),
	   "own mount, ipc and uts namespaces");
	char wroot[64];
	snprintf(wroot, sizeof(wroot), "/proc/%d/task/%d/root/", (int)pid, (int)rep.worker_tid);
	DIR *d = opendir(wroot);
	int entries = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	ok(d && entries == 0, "  /proc/<pid>/task/<worker>/root is an empty directory");
	if (d)
		closedir(d);
	char eff[64];
	proc_field(pid, rep.worker_tid, "CapEff", eff, sizeof(eff));
	diag("worker CapEff %s (a VMM worker then keeps only its six)", eff);
	ok(!ns_differs(pid, "pid") && !ns_differs(pid, "net"), "the host's pid and net namespaces");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/root/vsock", (int)pid);
	struct stat st;
	ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "/proc/<pid>/root is the jail's root");
	int st_ = child_reap(pid, hold);
	ok(WIFEXITED(st_) && WEXITSTATUS(st_) == 0, "the jailed child exits cleanly (%d)", st_);
	close(lfd);
}

/* A vsock socket in the host's / : its directory is not bound (it would show the host's root). */
static void test_dial_root(const char *dir)
{
	struct jail_report rep;
	int hold;
	pid_t pid = jail_child(dir, "/", &rep, &hold);
	if (pid > 0)
		child_reap(pid, hold);
	ok(pid > 0 && rep.step_ok == 3, "a dial directory of / : the jail is made");
	is_str(rep.root_ls, "", "  and its root stays empty");
	ok(!rep.dial_ok, "  and guest->host dials are refused");
}

/* A worker whose device exports one directory: that directory is its root. */
struct share_jail {
	const char *dir;
	int jail_ok, root_is_share, dotdot_stays, abs_in_share;
};

/* Two fds of one inode (false if either is not an fd). */
static bool same_inode(int x, int y)
{
	struct stat a, b;
	return x >= 0 && y >= 0 && fstat(x, &a) == 0 && fstat(y, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

static bool same_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

static void *share_worker(void *arg)
{
	struct share_jail *j = arg;
	char sub[160];
	snprintf(sub, sizeof(sub), "%s/share/sub", j->dir);
	int share = open(sub, O_PATH | O_DIRECTORY | O_CLOEXEC); /* below the share's top */
	snprintf(sub, sizeof(sub), "%s/share", j->dir);
	int top = open(sub, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (share < 0 || top < 0 || unshare(CLONE_FS) < 0)
		return NULL;
	struct kv_err *err = NULL;
	int keep;
	j->jail_ok = sandbox_fs_thread_jail(top, &keep, &err) == 0 && keep == -1;
	kv_err_free(err);
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	j->root_is_share = same_inode(root, top);
	/* From a directory fd inside the share, ".." as far as it goes: the share's top. */
	int up = openat(share, "../../../..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	j->dotdot_stays = same_inode(up, top);
	/* An absolute path is the share's. */
	int f = open("/in-share", O_RDONLY | O_CLOEXEC);
	j->abs_in_share = f >= 0;
	for (int *p = (int[]){share, top, root, up, f}, i = 0; i < 5; i++)
		if (p[i] >= 0)
			close(p[i]);
	return NULL;
}

static void test_share_root(const char *dir)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/share", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/share/sub", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/share/in-share", dir);
	close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	pid_t pid = fork();
	if (pid == 0) {
		struct share_jail j = {.dir = dir};
		int host = open("/", O_PATH | O_CLOEXEC);
		pthread_t th;
		if (pthread_create(&th, NULL, share_worker, &j) != 0 || pthread_join(th, NULL) != 0)
			syscall(SYS_exit_group, 2);
		int bits =
		    j.jail_ok | j.root_is_share << 1 | j.dotdot_stays << 2 | j.abs_in_share << 3;
		/* The main thread keeps its root. */
		bits |= (host >= 0 && same_file(host, "/")) << 4;
		syscall(SYS_exit_group, 32 + bits);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	int bits = WIFEXITED(st) ? WEXITSTATUS(st) - 32 : -1;
	ok(bits >= 0 && (bits & 1), "a worker exporting one directory jails itself in it");
	ok(bits >= 0 && (bits & 2), "  its / is the share's top");
	ok(bits >= 0 && (bits & 4), "  \"..\" from a directory fd beneath stops at the top");
	ok(bits >= 0 && (bits & 8), "  an absolute path names a file of the share");
	ok(bits >= 0 && (bits & 16), "  the other threads keep their root");
	snprintf(p, sizeof(p), "%s/share/in-share", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/share/sub", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/share", dir);
	rmdir(p);
}

/* A status line's value ("CapBnd", "NoNewPrivs"), of the calling thread. */
static unsigned long long self_status(const char *field)
{
	char v[64];
	proc_field(getpid(), (pid_t)syscall(SYS_gettid), field, v, sizeof(v));
	return *v ? strtoull(v, NULL, strcmp(field, "NoNewPrivs") ? 16 : 10) : ~0ull;
}

/* The capability drops (caps.c), each in a child: the VMM's and a worker's. */
static void test_caps(void)
{
	for (int worker = 0; worker < 2; worker++) {
		pid_t pid = fork();
		if (pid == 0) {
			struct kv_err *err = NULL;
			struct vmm_config cfg;
			vmm_config_init(&cfg);
			cfg.seccomp = VMM_SECCOMP_OFF;
			long long t0 = now_ns();
			int r = worker ? sandbox_fs_thread_confine(&cfg, &err)
				       : sandbox_caps_drop(NULL, &err);
			long long t = now_ns() - t0;
			unsigned long long want = worker ? 0x800001full : 0;
			int bits = (r == 0) | (self_status("CapBnd") == want) << 1 |
				   (self_status("CapEff") == want) << 2 |
				   (self_status("CapPrm") == want) << 3 |
				   (self_status("NoNewPrivs") == 1) << 4;
			fprintf(stderr, "# %s: %lld us\n", worker ? "worker's drop" : "VMM's drop",
				t / 1000);
			syscall(SYS_exit_group, 32 + bits);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		int bits = WIFEXITED(st) ? WEXITSTATUS(st) - 32 : -1;
		const char *who = worker ? "a virtio-fs worker" : "the VMM";
		ok(bits >= 0 && (bits & 1), "%s drops its capabilities", who);
		ok(bits >= 0 && (bits & 2), "  bounding set: %s", worker ? "its six" : "empty");
		ok(bits >= 0 && (bits & 12) == 12, "  effective and permitted: the same");
		ok(bits >= 0 && (bits & 16), "  no_new_privs");
	}
}

/* The id a child reports: sandbox_jail_default_id(), and its pid namespace's inode. */
struct id_report {
	int ok;
	uid_t id;
	unsigned long long ns_ino;
	pid_t pid;
};

/* The child: its report on fd; with hold (a pipe), it lives until the
 * parent closes hold[1]. */
static void id_child(int fd, const int *hold)
{
	if (hold)
		close(hold[1]);
	struct id_report r = {.pid = getpid()};
	struct kv_err *err = NULL;
	r.ok = sandbox_jail_default_id(&r.id, &err) == 0;
	struct stat st;
	if (stat("/proc/self/ns/pid", &st) == 0)
		r.ns_ino = st.st_ino;
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		syscall(SYS_exit_group, 1);
	char x;
	if (hold)
		(void)!read(hold[0], &x, 1);
	syscall(SYS_exit_group, 0);
}

/* Start a child with flags of clone(2) (CLONE_NEWPID or none) and read its
 * report; returns its pid (not waited for: with hold, it waits for the
 * parent), -1 on failure. */
static pid_t id_start(unsigned long flags, const int *hold, struct id_report *r)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		close(p[0]);
		id_child(p[1], hold);
	}
	close(p[1]);
	ssize_t n = pid > 0 ? read(p[0], r, sizeof(*r)) : -1;
	close(p[0]);
	if (pid > 0 && n != (ssize_t)sizeof(*r)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* One child, reaped. */
static int id_of(unsigned long flags, struct id_report *r, pid_t *host_pid)
{
	*host_pid = id_start(flags, NULL, r);
	if (*host_pid < 0)
		return -1;
	waitpid(*host_pid, NULL, 0);
	return 0;
}

/* The jail's default ids: the pid, or as pid 1 of its own namespace, the namespace's number. */
static void test_default_id(void)
{
	struct id_report a, b, c;
	pid_t ha, hb, hc;
	if (!ok(id_of(0, &a, &ha) == 0 && a.ok, "a child in our pid namespace has a default id"))
		return;
	ok(a.id == SANDBOX_JAIL_ID_BASE + (uid_t)ha, "  0x6b760000 + its pid (%#x)", a.id);
	if (!ok(id_of(CLONE_NEWPID, &b, &hb) == 0 && b.ok && id_of(CLONE_NEWPID, &c, &hc) == 0 &&
		    c.ok,
		"children that are pid 1 of namespaces of their own have default ids"))
		return;
	ok(b.pid == 1 && c.pid == 1, "  both are pid 1");
	ok(b.id == SANDBOX_JAIL_ID_BASE + SANDBOX_JAIL_PIDS + (uid_t)(b.ns_ino - 0xF0000000u),
	   "  0x6bb60000 + the namespace's number (%#x for inode %llu)", b.id, b.ns_ino);
	ok(b.id >= SANDBOX_JAIL_ID_BASE + SANDBOX_JAIL_PIDS && b.id != a.id,
	   "  above every pid's id");
	/* Two at once: d lives (holding its namespace, and so its number) while e takes one. */
	struct id_report d = {0}, e = {0};
	int hold[2];
	pid_t held = -1, he = -1;
	if (pipe(hold) == 0) {
		held = id_start(CLONE_NEWPID, hold, &d);
		close(hold[0]);
		if (held > 0)
			id_of(CLONE_NEWPID, &e, &he);
		close(hold[1]);
		if (held > 0)
			waitpid(held, NULL, 0);
	}
	ok(held > 0 && he > 0 && d.ok && e.ok && d.id != e.id,
	   "two VMs at once in namespaces of their own: two ids (%#x, %#x)", d.id, e.id);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* What the jail adds to a VMM's start (a template clone's restore included). */
static void test_cost(const char *dir)
{
	long long t[TIMING_RUNS], w[TIMING_RUNS];
	int n = 0;
	for (int i = 0; i < TIMING_RUNS; i++) {
		struct jail_report rep;
		int hold;
		pid_t pid = jail_child(dir, ".", &rep, &hold);
		if (pid > 0)
			child_reap(pid, hold);
		if (pid > 0 && rep.step_ok == 3 && rep.worker_jail_ok) {
			w[n] = rep.worker_jail_ns;
			t[n++] = rep.jail_ns;
		}
	}
	if (!ok(n == TIMING_RUNS, "%d timed jails", n))
		return;
	qsort(t, n, sizeof(t[0]), cmp_ll);
	qsort(w, n, sizeof(w[0]), cmp_ll);
	diag("jail: unshare + pivot + ids: median %lld us (min %lld, max %lld) over %d runs",
	     t[n / 2] / 1000, t[0] / 1000, t[n - 1] / 1000, n);
	diag("virtio-fs worker jail (on its own thread): median %lld us (min %lld, max %lld)",
	     w[n / 2] / 1000, w[0] / 1000, w[n - 1] / 1000);
}

int main(void)
{
	if (geteuid() != 0) {
		skip("the jail needs root");
		return tap_done();
	}
	char dir[] = "/tmp/kvrun-jail-test.XXXXXX";
	if (!tap_tmpdir(dir))
		return tap_done();
	chmod(dir, 0711); /* the jail's uid searches it (its own mode, as a bind mount's root) */
	test_jail(dir);
	test_dial_root(dir);
	test_share_root(dir);
	test_caps();
	test_default_id();
	test_cost(dir);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/vsock.sock_%d", dir, DIAL_PORT);
	unlink(sock);
	rmdir(dir);
	return tap_done();
}
