/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each hook is
 * path + args + env, exactly as given (a hook without env gets kvrun's own
 * environment, as runc's exec.Cmd with a nil Env), reads the container
 * state on stdin, and is killed after its timeout. Output is captured so a failure says
 * what the hook said, as runc's "error running hook" does.
 *
 * stdin and the outputs are memfds, not pipes: a hook that never reads its
 * stdin, or writes more than a pipe holds, cannot block kvrun.
 */
#include "runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* The part of a hook's output quoted in an error. */
#define HOOK_OUTPUT_MAX 4096

static int memfd_with(const char *name, const char *data, struct kv_err **err)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "memfd_create");
	size_t len = data ? strlen(data) : 0;
	if ((len && kv_write_all(fd, data, len) < 0) || lseek(fd, 0, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		return kv_err_make(err, e, "write hook input");
	}
	return fd;
}

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0)
		return;
#endif
	for (int fd = lowfd; fd < 4096; fd++)
		close(fd);
}

/* In the child: never returns. */
static void hook_exec(const struct oci_hook *h, int in, int out, int errfd)
{
	setpgid(0, 0); /* so a timeout kills everything the hook started */
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(127);
	close_from(3);
	char *const noargs[] = {h->path, NULL};
	char *const noenv[] = {NULL};
	char *const *env = !h->has_env ? environ : h->env.n ? h->env.v : noenv;
	execve(h->path, h->args.n ? h->args.v : noargs, env);
	dprintf(2, "exec %s: %s", h->path, strerror(errno));
	_exit(127);
}

/* Wait for pid up to timeout_s (0: forever). 1 on timeout. */
static int wait_child(pid_t pid, int timeout_s, int *status)
{
	if (timeout_s <= 0) {
		while (waitpid(pid, status, 0) < 0)
			if (errno != EINTR)
				return -1;
		return 0;
	}
	uint64_t deadline = kv_now_ms() + (uint64_t)timeout_s * 1000;
	cleanup_close int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		uint64_t now = kv_now_ms();
		if (now >= deadline)
			return 1;
		if (pfd >= 0) {
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			(void)poll(&p, 1, (int)(deadline - now));
		} else {
			usleep(10000);
		}
	}
}

static char *read_output(int fd)
{
	char buf[HOOK_OUTPUT_MAX + 1];
	ssize_t n = pread(fd, buf, HOOK_OUTPUT_MAX, 0);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return kv_strdup(buf);
}

static int hook_result(const struct oci_hook *h, int status, int timed_out, int out, int errfd,
		       struct kv_err **err)
{
	if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	cleanup_free char *o = read_output(out);
	cleanup_free char *e = read_output(errfd);
	cleanup_free char *why = NULL;
	if (timed_out)
		why = kv_asprintf("timed out after %d second(s)", h->timeout);
	else if (WIFEXITED(status))
		why = kv_asprintf("exit status %d", WEXITSTATUS(status));
	else
		why = kv_asprintf("killed by signal %d", WTERMSIG(status));
	return kv_err_make(err, 0, "%s: %s, stdout: %s, stderr: %s", h->path, why, o, e);
}

int runtime_hook_run(const struct oci_hook *h, const char *state_json, struct kv_err **err)
{
	cleanup_close int in = memfd_with("kvrun-hook-stdin", state_json, err);
	if (in < 0)
		return -1;
	cleanup_close int out = memfd_with("kvrun-hook-stdout", NULL, err);
	if (out < 0)
		return -1;
	cleanup_close int errfd = memfd_with("kvrun-hook-stderr", NULL, err);
	if (errfd < 0)
		return -1;
	kv_debug("running hook %s", h->path);
	pid_t pid = fork();
	if (pid < 0)
		return kv_err_make(err, errno, "fork for hook %s", h->path);
	if (pid == 0)
		hook_exec(h, in, out, errfd);
	/* Also here, so the group exists before any timeout can target it. */
	(void)setpgid(pid, pid);
	int status = 0;
	int w = wait_child(pid, h->timeout, &status);
	if (w < 0)
		return kv_err_make(err, errno, "wait for hook %s", h->path);
	if (w == 1) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return hook_result(h, status, w == 1, out, errfd, err);
}

int runtime_hooks_run(const struct oci_hooks *hooks, enum oci_hook_kind kind,
		      const char *state_json, struct kv_err **err)
{
	bool fatal = kind != OCI_HOOK_POSTSTART && kind != OCI_HOOK_POSTSTOP;
	for (size_t i = 0; i < hooks->n[kind]; i++) {
		struct kv_err *e = NULL;
		if (runtime_hook_run(&hooks->list[kind][i], state_json, &e) == 0)
			continue;
		kv_err_wrap(&e, "error running %s hook #%zu", oci_hook_name(kind), i);
		if (fatal) {
			if (err && !*err)
				*err = e;
			else
				kv_err_free(e);
			return -1;
		}
		/* runtime-spec: a failing poststart/poststop hook is a warning. */
		kv_warn("%s", e->msg);
		kv_err_free(e);
	}
	return 0;
}
