/* SPDX-License-Identifier: Apache-2.0 */
/* The control API's request handling, on a machine without vCPUs. */
#include <string.h>

#include "tap.h"
#include "vmm/api.h"
#include "vmm/machine.h"

static char *req(struct machine *m, const char *s)
{
	return api_request_handle(m, s, strlen(s));
}

int main(void)
{
	struct vmm_config cfg;
	vmm_config_init(&cfg);
	struct machine m;
	memset(&m, 0, sizeof(m));
	m.cfg = &cfg;
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.cond, NULL);
	m.t_start_ns = kv_now_ns();

	char *r = req(&m, "{\"op\":\"status\"}");
	ok(strstr(r, "\"ok\":true") && strstr(r, "\"state\":\"running\"") && strstr(r, "\"pid\":"),
	   "status: running, with pid: %s", r);
	free(r);
	r = req(&m, "{\"op\":\"pause\"}");
	ok(strstr(r, "\"state\":\"paused\"") != NULL, "pause: paused");
	free(r);
	r = req(&m, "{\"op\":\"status\"}");
	ok(strstr(r, "\"state\":\"paused\"") != NULL, "status after pause: paused");
	free(r);
	r = req(&m, "{\"op\":\"resume\"}");
	ok(strstr(r, "\"state\":\"running\"") != NULL, "resume: running");
	free(r);
	r = req(&m, "{\"op\":\"reboot\"}");
	ok(strstr(r, "\"ok\":false") && strstr(r, "EINVAL"), "unknown op: EINVAL error");
	free(r);
	r = req(&m, "not json");
	ok(strstr(r, "\"ok\":false") && strstr(r, "invalid JSON"), "bad JSON: error");
	free(r);
	r = req(&m, "[1,2]");
	ok(strstr(r, "\"ok\":false") != NULL, "not an object: error");
	free(r);
	r = req(&m, "{\"op\":7}");
	ok(strstr(r, "\"ok\":false") != NULL, "op not a string: error");
	free(r);
	char big[API_MAX_REQUEST + 10];
	memset(big, ' ', sizeof(big));
	r = api_request_handle(&m, big, sizeof(big));
	ok(strstr(r, "EMSGSIZE") != NULL, "oversized request: EMSGSIZE");
	free(r);
	r = req(&m, "{\"op\":\"snapshot\",\"path\":\"/tmp/x\"}");
	ok(strstr(r, "\"ok\":false") && strstr(r, "EINVAL") && strstr(r, "SCM_RIGHTS"),
	   "snapshot without its two files: EINVAL, saying how to pass them");
	free(r);
	int fds[2] = {0, 1};
	const char *bad = "{\"op\":\"snapshot\",\"then\":\"later\"}";
	r = api_request_handle_fds(&m, bad, strlen(bad), fds, 2);
	ok(strstr(r, "\"ok\":false") && strstr(r, "resume, pause or exit"),
	   "snapshot: an unknown \"then\" is refused before anything happens");
	free(r);
	r = req(&m, "{\"op\":\"shutdown\"}");
	ok(strstr(r, "\"state\":\"stopping\"") != NULL && atomic_load(&m.stopping) &&
	       m.exit_status == VMM_EXIT_POWEROFF,
	   "shutdown: stopping, exit status 0");
	free(r);
	return tap_done();
}
