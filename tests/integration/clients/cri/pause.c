/* The pod sandbox's process for the CRI test (tests/integration/clients/
 * cri.bats): what Kubernetes' pause image runs. It holds the pod's
 * namespaces by living, reaps the orphans it inherits as PID 1, and exits 0
 * on SIGINT or SIGTERM (so StopPodSandbox ends it at once). Static: the
 * sandbox image is this one file. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void pause_exit(int sig)
{
	_exit(0);
}

static void pause_reap(int sig)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pause_exit;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		perror("pause: sigaction");
		return 1;
	}
	sa.sa_handler = pause_reap;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) < 0) {
		perror("pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
}
