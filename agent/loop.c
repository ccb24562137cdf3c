/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The top of the agent: setup, the listeners, reading and dispatching
 * requests on the control connections, SIGCHLD, and agent_run's loop over
 * the epoll leaf (ev.c) with the listeners, the control and data
 * connections, the stdio pipes, the children's setup channels and a
 * signalfd. Replies and events go out through reply.c. Nothing here blocks
 * on a peer: one stuck stream or host never stalls PID 1.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

/* ---------------------------------------------------------- control conns */

static void conn_handle_frame(struct agent *a, struct conn *c, char *frame, size_t len)
{
	cleanup_msg struct kv_msg m = {0};
	cleanup_err struct kv_err *err = NULL;
	int64_t bad_id;
	if (kv_msg_decode(frame, len, &m, &bad_id, &err) < 0) {
		agent_reply_error(a, c->serial, bad_id, err);
		return;
	}
	if (m.kind != KV_MSG_REQUEST) {
		kv_err_plain(&err, EINVAL, "agent frame: expected a request");
		agent_reply_error(a, c->serial, m.kind == KV_MSG_RESPONSE ? (int64_t)m.id : -1,
				  err);
		return;
	}
	agent_dispatch(a, c, &m);
}

static void conn_read(struct agent *a, struct conn *c)
{
	char buf[65536];
	ssize_t r = recv(c->src.fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		c->dead = true;
		return;
	}
	size_t off = 0;
	while (off < (size_t)r && !c->dead) {
		size_t used = 0, flen = 0;
		char *frame = NULL;
		cleanup_err struct kv_err *err = NULL;
		enum kv_frame_status st =
		    kv_frame_feed(&c->rd, buf + off, r - off, &used, &frame, &flen, &err);
		off += used;
		if (st == KV_FRAME_BAD)
			agent_reply_error(a, c->serial, -1, err);
		else if (st == KV_FRAME_READY) {
			conn_handle_frame(a, c, frame, flen);
			free(frame);
		} else if (used == 0)
			break;
	}
}

static void conn_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct conn *c = container_of(src, struct conn, src);
	if (events & EPOLLOUT)
		conn_flush(a, c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(a, c);
}

/*
 * Accept a connection. On vsock only the host (CID 2) may talk to the agent:
 * a container process reaching the port through a loopback transport must
 * not drive PID 1.
 */
static int agent_accept(struct agent *a, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ss.ss_family == AF_VSOCK && ((struct sockaddr_vm *)&ss)->svm_cid != VMADDR_CID_HOST) {
		static struct kv_ratelimit rl = KV_RATELIMIT_INIT(10000, 5);
		if (kv_ratelimit_ok(&rl))
			kv_warn("refused a vsock connection from CID %u",
				((struct sockaddr_vm *)&ss)->svm_cid);
		close(fd);
		return -1;
	}
	return fd;
}

static void ctl_accept_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	int fd = agent_accept(a, src->fd);
	if (fd < 0)
		return;
	conn_new(a, fd, conn_cb);
}

static void data_accept_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	int fd = agent_accept(a, src->fd);
	if (fd >= 0)
		stdio_data_accept(a, fd);
}

/* ---------------------------------------------------------------- setup */

static int listen_unix(const char *path, struct kv_err **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return kv_err_plain(err, ENAMETOOLONG, "listen %s: longer than %zu bytes", path,
				    sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		return kv_err_make(err, errno, "listen %s", path);
	return steal_fd(fd);
}

static int listen_vsock(unsigned port, struct kv_err **err)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
	cleanup_close int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "vsock socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		return kv_err_make(err, errno, "listen vsock port %u", port);
	return steal_fd(fd);
}

static int agent_listen(struct agent *a, struct kv_err **err)
{
	const char *l = a->cfg.listen;
	if (strncmp(l, "unix:", 5) == 0) {
		cleanup_free char *data = kv_asprintf("%s_%u", l + 5, KV_AGENT_DATA_PORT);
		a->ctl_listen.fd = listen_unix(l + 5, err);
		a->data_listen.fd = a->ctl_listen.fd < 0 ? -1 : listen_unix(data, err);
	} else if (strcmp(l, "vsock") == 0) {
		a->ctl_listen.fd = listen_vsock(KV_AGENT_PORT, err);
		a->data_listen.fd =
		    a->ctl_listen.fd < 0 ? -1 : listen_vsock(KV_AGENT_DATA_PORT, err);
	} else {
		return kv_err_plain(err, EINVAL, "--listen %s: want vsock or unix:PATH", l);
	}
	if (a->ctl_listen.fd < 0 || a->data_listen.fd < 0)
		return -1;
	a->ctl_listen.cb = ctl_accept_cb;
	a->data_listen.cb = data_accept_cb;
	if (ev_add(a, &a->ctl_listen, EPOLLIN) < 0 || ev_add(a, &a->data_listen, EPOLLIN) < 0)
		return kv_err_make(err, errno, "epoll");
	return 0;
}

static void sig_cb(struct agent *a, struct ev_src *src, uint32_t events)
{
	struct signalfd_siginfo si[8];
	ssize_t r = read(src->fd, si, sizeof(si));
	for (ssize_t i = 0; i < r / (ssize_t)sizeof(si[0]); i++) {
		if (si[i].ssi_signo == SIGCHLD)
			continue; /* reaped below, whatever the count */
		if (!a->cfg.init && (si[i].ssi_signo == SIGTERM || si[i].ssi_signo == SIGINT))
			a->quit = true;
	}
	container_reap(a);
}

static int agent_signals(struct agent *a, struct kv_err **err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return kv_err_make(err, errno, "sigprocmask");
	a->sigfd.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->sigfd.fd < 0)
		return kv_err_make(err, errno, "signalfd");
	a->sigfd.cb = sig_cb;
	signal(SIGPIPE, SIG_IGN);
	if (ev_add(a, &a->sigfd, EPOLLIN) < 0)
		return kv_err_make(err, errno, "epoll");
	return 0;
}

/* 0, 1, 2 must be open: a pipe created later must never land on them. */
static int agent_std_fds(struct agent *a, struct kv_err **err)
{
	a->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (a->devnull < 0)
		return kv_err_make(err, errno, "open /dev/null");
	while (a->devnull <= 2) {
		int fd = fcntl(a->devnull, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return kv_err_make(err, errno, "dup /dev/null");
		a->devnull = fd;
	}
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && dup2(a->devnull, fd) < 0)
			return kv_err_make(err, errno, "dup2 /dev/null");
	return 0;
}

static int agent_setup(struct agent *a, struct kv_err **err)
{
	umask(022);
	caps_init();
	if (a->cfg.init) {
		/* Keep going on failure: a VM without /sys or lo still runs. */
		struct kv_err *e = NULL;
		if (pid1_mount_basics(&e) < 0)
			kv_log_err(e);
		kv_err_free(e);
		e = NULL;
		if (pid1_loopback_up(&e) < 0)
			kv_log_err(e);
		kv_err_free(e);
	}
	if (agent_std_fds(a, err) < 0)
		return -1;
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return kv_err_make(err, errno, "PR_SET_CHILD_SUBREAPER");
	if (ev_init(a, err) < 0)
		return -1;
	if (agent_signals(a, err) < 0 || agent_listen(a, err) < 0)
		return -1;
	if (kv_mkdir_p(a->cfg.state_dir, 0700, err) < 0)
		return -1;
	cleanup_free char *mnt = kv_asprintf("%s/mnt", a->cfg.state_dir);
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		return kv_err_make(err, errno, "mkdir %s", mnt);
	a->cgroup_root = cgroup_detect_root(a->cfg.cgroup_root);
	kv_info("listening on %s (cgroups: %s)", a->cfg.listen,
		a->cgroup_root ? a->cgroup_root : "none");
	return 0;
}

static bool agent_idle(struct agent *a)
{
	if (!a->had_container)
		return false;
	for (struct container *c = a->containers; c; c = c->next)
		for (struct proc *p = c->procs; p; p = p->next)
			if (p->state != PROC_EXITED)
				return false;
	return true;
}

/* Give the host a moment to read the last events before the VM goes. */
static void agent_drain_conns(struct agent *a)
{
	uint64_t deadline = kv_now_ms() + 1000;
	for (;;) {
		bool pending = false;
		for (struct conn *c = a->conns; c; c = c->next)
			if (!c->dead && c->out_len)
				pending = true;
		if (!pending || kv_now_ms() >= deadline)
			return;
		struct epoll_event evs[16];
		int n = ev_wait(a, evs, 16, 100);
		for (int i = 0; i < n; i++) {
			struct ev_src *s = evs[i].data.ptr;
			if (s->cb == conn_cb && (evs[i].events & EPOLLOUT))
				conn_flush(a, container_of(s, struct conn, src));
		}
	}
}

int agent_run(const struct agent_config *cfg)
{
	struct agent a = {.cfg = *cfg, .epfd = -1, .devnull = -1};
	a.ctl_listen.fd = a.data_listen.fd = a.sigfd.fd = -1;
	cleanup_err struct kv_err *err = NULL;
	if (agent_setup(&a, &err) < 0) {
		kv_log_err(err);
		if (cfg->init)
			pid1_poweroff(&a); /* PID 1 must not exit: power off instead */
		return 1;
	}
	while (!a.quit) {
		int n = ev_poll(&a, -1);
		if (n < 0 && n != -EINTR) {
			kv_error("epoll_wait: %s", strerror(-n));
			continue;
		}
		conns_gc(&a);
		agent_gc(&a);
		if (cfg->poweroff_on_exit && agent_idle(&a))
			a.quit = true;
	}
	agent_drain_conns(&a);
	if (cfg->init)
		pid1_poweroff(&a);
	while (a.containers) {
		struct kv_err *e = NULL;
		if (container_delete(&a, a.containers, true, &e) < 0)
			kv_log_err(e);
		kv_err_free(e);
	}
	agent_gc(&a);
	if (a.cgroup_root) {
		/* Leave the host's hierarchy as it was (fails harmlessly if in use). */
		cleanup_free char *parent = kv_asprintf("%s/%s", a.cgroup_root, cfg->cgroup_parent);
		(void)rmdir(parent);
	}
	return 0;
}

/* ----------------------------------------------------------------- args */

static void usage(void)
{
	fprintf(stderr,
		"usage: kvrun-agent [--listen vsock|unix:PATH] [--init] [--poweroff-on-exit]\n"
		"                   [--state-dir DIR] [--cgroup-root DIR|none] "
		"[--cgroup-parent NAME]\n"
		"                   [--log-level error|warn|info|debug]\n");
}

int agent_parse_args(int argc, char **argv, struct agent_config *cfg)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"init", no_argument, NULL, 'i'},
	    {"poweroff-on-exit", no_argument, NULL, 'p'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"cgroup-root", required_argument, NULL, 'c'},
	    {"cgroup-parent", required_argument, NULL, 'g'},
	    {"log-level", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "vsock";
	cfg->state_dir = "/run/kvrun";
	cfg->cgroup_parent = "kvrun";
	bool init_set = false;
	enum kv_log_level level = KV_LOG_INFO;
	int o;
	/* As PID 1 the kernel hands over unknown cmdline words: ignore them. */
	opterr = getpid() != 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'l': cfg->listen = optarg; break;
		case 'i': cfg->init = init_set = true; break;
		case 'p': cfg->poweroff_on_exit = true; break;
		case 's': cfg->state_dir = optarg; break;
		case 'c': cfg->cgroup_root = optarg; break;
		case 'g': cfg->cgroup_parent = optarg; break;
		case 'v':
			level = strcmp(optarg, "debug") == 0   ? KV_LOG_DEBUG
				: strcmp(optarg, "warn") == 0  ? KV_LOG_WARN
				: strcmp(optarg, "error") == 0 ? KV_LOG_ERROR
							       : KV_LOG_INFO;
			break;
		case 'h': usage(); return -1;
		default:
			if (getpid() == 1)
				break;
			usage();
			return -1;
		}
	}
	/* The kernel's cmdline can say it too: KVRUN_POWEROFF_ON_EXIT=1. */
	const char *env = getenv("KVRUN_POWEROFF_ON_EXIT");
	if (env && strcmp(env, "1") == 0)
		cfg->poweroff_on_exit = true;
	if (!init_set)
		cfg->init = getpid() == 1 && strcmp(cfg->listen, "vsock") == 0;
	struct kv_err *err = NULL;
	if (kv_log_init("kvrun-agent", NULL, KV_LOG_TEXT, level, &err) < 0)
		kv_err_free(err);
	return 0;
}
