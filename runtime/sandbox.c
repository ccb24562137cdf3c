/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seam between the runc-compatible front end and the microVM. Every
 * function here is what the shim/VMM integration replaces; until then the
 * VM operations refuse clearly, and the operations the architecture
 * already fixes on the host side (a signal goes to the shim, which
 * forwards it into the guest; destroying kills the shim and waits) are
 * done for real, so the front end's state machine is exercised end to end.
 */
#include "runtime/runtime.h"

#include <poll.h>
#include <sys/syscall.h>

static int not_built(struct kv_err **err)
{
	return err_plain(err, ENOSYS, "the microVM backend is not built yet");
}

int runtime_sandbox_start(const struct runtime_sandbox_req *req, struct runtime_sandbox_result *res,
			  struct kv_err **err)
{
	/*
	 * To come: spawn kvrun-shim (its pid goes in res), which starts or
	 * joins the sandbox's kvrun-vmm (req->st->sandbox_id), waits for the
	 * agent, sends oci_config_to_agent_json(req->cfg), calls
	 * req->run_hooks() for prestart/createRuntime/createContainer, and
	 * returns once the container is created but not started.
	 */
	return not_built(err);
}

int runtime_backend_start(struct container *c, struct kv_err **err)
{
	return not_built(err);
}

int runtime_backend_kill(struct container *c, int sig, bool all, struct kv_err **err)
{
	/* The shim forwards a signal it receives into the guest process. --all
	 * (every process of the container) needs the agent: later. */
	if (all)
		return not_built(err);
	if (c->pid <= 0)
		return err_plain(err, ESRCH, "container not running");
	if (kill(c->pid, sig) < 0)
		return kv_err_make(err, errno, "kill %d with signal %d", (int)c->pid, sig);
	return 0;
}

/* Wait up to timeout_ms for a process that is not our child to go away. */
static bool wait_gone(pid_t pid, uint64_t start, unsigned timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t deadline = kv_now_ms() + timeout_ms;
	bool gone = false;
	while (!(gone = !pid_alive(pid, start)) && kv_now_ms() < deadline) {
		if (pfd >= 0) {
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			(void)poll(&p, 1, 50);
		} else {
			usleep(10000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return gone;
}

int runtime_backend_destroy(struct container *c, struct kv_err **err)
{
	pid_t pid = c->st->pid;
	if (pid <= 0 || !pid_alive(pid, c->st->pid_start))
		return 0;
	/* SIGKILL of the shim tears its guest process (and, for the VM owner,
	 * the VM) down: the VMM holds PR_SET_PDEATHSIG. */
	if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
		return kv_err_make(err, errno, "kill %d", (int)pid);
	if (!wait_gone(pid, c->st->pid_start, 10000))
		return err_plain(err, ETIMEDOUT, "process %d did not exit after SIGKILL", (int)pid);
	return 0;
}

int runtime_backend_pause(struct container *c, bool pause, struct kv_err **err)
{
	return not_built(err);
}

int runtime_backend_exec(struct container *c, const struct oci_process *p,
			 const struct create_opts *o, struct kv_err **err)
{
	return not_built(err);
}

int runtime_backend_ps(struct container *c, char ***pids_out, size_t *n, struct kv_err **err)
{
	return not_built(err);
}

int runtime_backend_update(struct container *c, const struct oci_resources *r, struct kv_err **err)
{
	return not_built(err);
}

int runtime_backend_stats(struct container *c, struct kv_json *j, struct kv_err **err)
{
	return not_built(err);
}

int runtime_backend_wait(struct container *c, int *status, struct kv_err **err)
{
	return not_built(err);
}
