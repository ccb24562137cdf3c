/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun-shim's flow: read kvrun's request, start the VM (owner) or dial the
 * sandbox's, create or exec the process through the agent, attach its
 * streams, answer kvrun, wait for the commit, then relay until the process
 * exits and leave with its status. See shim.h for the handshake.
 */
#include "shim/internal.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yajl/yajl_tree.h>

/* The create or exec itself: guest kernel work, slow on PVM hosts. */
#define SHIM_SETUP_MS 300000

struct shim_args {
	int sync_fd, null_fd, kvm_fd, tun_fd, ptmx_fd;
	const char *log;
	bool debug;
};

static int parse_args(int argc, char **argv, struct shim_args *a)
{
	static const struct option opts[] = {
	    {"sync-fd", required_argument, NULL, 's'},
	    {"state-dir", required_argument, NULL, 'd'},
	    {"log", required_argument, NULL, 'l'},
	    {"debug", no_argument, NULL, 'D'},
	    {"null-fd", required_argument, NULL, 'n'},
	    {"kvm-fd", required_argument, NULL, 'k'},
	    {"tun-fd", required_argument, NULL, 't'},
	    {"ptmx-fd", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	int o;
	a->sync_fd = a->null_fd = a->kvm_fd = a->tun_fd = a->ptmx_fd = -1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': a->sync_fd = atoi(optarg); break;
		case 'd': break; /* names the container in ps output; nothing to do */
		case 'l': a->log = optarg; break;
		case 'D': a->debug = true; break;
		case 'n': a->null_fd = atoi(optarg); break;
		case 'k': a->kvm_fd = atoi(optarg); break;
		case 't': a->tun_fd = atoi(optarg); break;
		case 'p': a->ptmx_fd = atoi(optarg); break;
		default: return -1;
		}
	}
	return a->sync_fd >= 3 && optind == argc ? 0 : -1;
}

/* Every signal but the ones that must stay synchronous goes to the signalfd. */
static int signals_setup(struct shim *s, struct kv_err **err)
{
	sigset_t set;
	sigfillset(&set);
	int keep[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
	for (size_t i = 0; i < KV_ARRAY_SIZE(keep); i++)
		sigdelset(&set, keep[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return kv_err_make(err, errno, "sigprocmask");
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sigfd < 0)
		return kv_err_make(err, errno, "signalfd");
	return 0;
}

static int read_request(struct shim *s, struct kv_err **err)
{
	cleanup_free char *text = NULL;
	size_t len;
	int r = kv_frame_read(s->sync_fd, &text, &len, err);
	if (r < 0)
		return kv_err_wrap(err, "read kvrun's request");
	if (r == 0)
		return kv_err_make(err, ECONNRESET, "kvrun closed the sync socket");
	return shim_req_parse(text, &s->req, err);
}

/* /dev/null (or nothing) as stdin: the guest process gets its own /dev/null. */
static bool stdin_wanted(const struct shim *s)
{
	struct stat st;
	if (s->req.terminal || fstat(0, &st) < 0)
		return false;
	return !(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
}

static char *op_params(const struct shim *s, struct kv_err **err)
{
	const struct shim_req *r = &s->req;
	if (strcmp(r->op, "exec") == 0)
		return kv_req_exec(r->container, r->exec_id, stdin_wanted(s), r->body, err);
	return kv_req_create(r->container, stdin_wanted(s), r->body, r->rootfs, err);
}

static int guest_setup(struct shim *s, struct kv_err **err)
{
	if (s->req.owner && shim_vm_start(s, err) < 0)
		return -1;
	kv_timing_mark("vmm");
	if (shim_agent_connect(s, err) < 0)
		return -1;
	cleanup_free char *params = op_params(s, err);
	if (!params)
		return -1;
	cleanup_msg struct kv_msg resp = {0};
	kv_agent_client_set_timeout(s->agent, SHIM_SETUP_MS);
	if (kv_agent_client_call(s->agent, s->req.op, params, &resp, err) < 0)
		return -1;
	kv_debug("%s done in the guest", s->req.op);
	kv_timing_mark("guest");
	long long pid = 0;
	kv_jint(resp.result, "pid", &pid);
	s->guest_pid = (pid_t)pid;
	if (shim_streams_open(s, resp.result, err) < 0 || shim_console_setup(s, err) < 0)
		return -1;
	kv_timing_mark("streams");
	return 0;
}

static void answer(struct shim *s, const struct kv_err *e)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", e == NULL);
	if (e) {
		kv_json_kint(j, "errno", e->errnum);
		kv_json_kstr(j, "message", e->msg);
	} else {
		kv_json_kint(j, "pid", s->guest_pid);
		/* Where the time went (kvrun shows it with KVRUN_TIMINGS or --debug);
		 * once: a second answer (the network's) would count it twice. */
		static bool timed;
		if (!timed) {
			timed = true;
			kv_json_key(j, "timings");
			kv_timing_json(j);
		}
	}
	kv_json_map_close(j);
	const char *out;
	size_t len;
	cleanup_err struct kv_err *err = NULL;
	if (kv_json_finish(j, &out, &len, &err) < 0 ||
	    kv_frame_write(s->sync_fd, out, len, &err) < 0)
		kv_warn("answer kvrun: %s", err ? err->msg : "?");
}

/*
 * True when kvrun said commit; anything else means it gave up on us. Before
 * it, kvrun may ask for the network ({"net": true}, after its hooks): the
 * shim wires it (net.c) and answers as it did the request.
 */
static bool await_commit(struct shim *s)
{
	for (;;) {
		cleanup_free char *text = NULL;
		size_t len;
		cleanup_err struct kv_err *err = NULL;
		if (kv_frame_read(s->sync_fd, &text, &len, &err) <= 0)
			return false;
		cleanup_yajl_val struct yajl_val_s *v = kv_json_parse(text, "commit", &err);
		bool yes = false;
		if (v && kv_jbool(v, "net", &yes) && yes) {
			if (shim_net_wire(s, &err) < 0)
				kv_log_err(err);
			answer(s, err);
			continue;
		}
		return v && kv_jbool(v, "commit", &yes) && yes;
	}
}

/* The process exists but kvrun went away before recording it: undo. */
static void undo(struct shim *s)
{
	if (s->agent && !s->req.owner) {
		cleanup_msg struct kv_msg resp = {0};
		cleanup_err struct kv_err *e = NULL;
		cleanup_free char *p =
		    s->req.exec_id
			? kv_req_kill(s->req.container, s->req.exec_id, SIGKILL, NULL, &e)
			: kv_req_delete(s->req.container, true, &e);
		kv_agent_client_set_timeout(s->agent, 10000);
		if (!p || kv_agent_client_call(s->agent, s->req.exec_id ? KV_OP_KILL : KV_OP_DELETE,
					       p, &resp, &e) < 0)
			kv_warn("undo: %s", e->msg);
	}
	shim_vm_stop(s);
}

static void shim_release(struct shim *s)
{
	shim_tty_restore(s);
	shim_vm_stop(s);
	shim_net_release(s);
	shim_relays_free(s);
	kv_agent_client_free(steal_ptr(s->agent));
	free(steal_ptr(s->addr));
	shim_req_free(&s->req);
	if (s->sigfd >= 0)
		close(s->sigfd);
	if (s->sync_fd >= 0)
		close(s->sync_fd);
}

/* Leave as the guest process did: its exit code, or death by its signal. */
static __attribute__((noreturn)) void leave(int code, int sig)
{
	if (sig > 0 && sig < NSIG && sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN &&
	    sig != SIGTTOU && sig != SIGCHLD && sig != SIGCONT && sig != SIGURG &&
	    sig != SIGWINCH) {
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core); /* the guest's core is not ours */
		signal(sig, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), sig);
	}
	exit(sig > 0 ? 128 + sig : code);
}

int shim_main(int argc, char **argv)
{
	struct shim_args a = {0};
	struct shim s = {.sync_fd = -1,
			 .sigfd = -1,
			 .s_in = -1,
			 .s_out = -1,
			 .s_err = -1,
			 .kvm_fd = -1,
			 .tun_fd = -1,
			 .ptmx_fd = -1};
	s.s_pty = s.tty_slave = -1;
	cleanup_err struct kv_err *err = NULL;
	if (parse_args(argc, argv, &a) < 0) {
		fprintf(stderr,
			"usage: kvrun-shim --sync-fd N [--null-fd N] [--kvm-fd N] "
			"[--tun-fd N] [--ptmx-fd N] [--state-dir DIR] [--log PATH] [--debug]\n"
			"(started by kvrun, not by hand)\n");
		return 2;
	}
	s.sync_fd = a.sync_fd;
	/* The devices kvrun opened for us: ours only (close-on-exec). */
	int dev[] = {a.null_fd, a.kvm_fd, a.tun_fd, a.ptmx_fd};
	for (size_t i = 0; i < KV_ARRAY_SIZE(dev); i++)
		if (dev[i] >= 0 && fcntl(dev[i], F_SETFD, FD_CLOEXEC) < 0)
			dev[i] = -1;
	if (dev[0] >= 0)
		shim_stdio_null_set(dev[0]);
	s.kvm_fd = dev[1];
	s.tun_fd = dev[2];
	s.ptmx_fd = dev[3];
	if (fcntl(s.sync_fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    kv_log_init("kvrun-shim", a.log, KV_LOG_TEXT, a.debug ? KV_LOG_DEBUG : KV_LOG_INFO,
			&err) < 0)
		return 1;
	kv_timing_start();
	if (signals_setup(&s, &err) < 0 || read_request(&s, &err) < 0 ||
	    (kv_timing_mark("request"), guest_setup(&s, &err) < 0)) {
		kv_log_err(err);
		answer(&s, err);
		undo(&s);
		shim_release(&s);
		return 1;
	}
	answer(&s, NULL);
	if (!await_commit(&s)) {
		kv_warn("kvrun did not commit the %s of %s: undoing it", s.req.op, s.req.container);
		undo(&s);
		shim_release(&s);
		return 1;
	}
	close(steal_fd(s.sync_fd));
	/* The VM runs and the network is wired: no more devices to hand on. */
	int *unused[] = {&s.kvm_fd, &s.tun_fd, &s.ptmx_fd};
	for (size_t i = 0; i < KV_ARRAY_SIZE(unused); i++)
		if (*unused[i] >= 0)
			close(steal_fd(*unused[i]));
	if (shim_confine(&s, &err) < 0) {
		/* Rootless, say: there was nothing to drop. */
		kv_warn("confine the shim: %s", err->msg);
		kv_err_free(steal_ptr(err));
	}
	shim_tty_resize(&s);
	shim_relays_setup(&s);
	if (shim_run(&s) < 0)
		kv_error("poll: %s", strerror(errno));
	int code = s.exit_code, sig = s.exit_signal;
	shim_release(&s);
	leave(code, sig);
}
