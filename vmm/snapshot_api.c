/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's "snapshot" op (server side) and vmm_snapshot(), its client.
 *
 * The client opens DIR/state.tmp and DIR/memory.tmp and passes them with
 * the request (SCM_RIGHTS): the VMM runs confined (no open()), and the
 * files belong to whoever asked. Once the VMM answers, the client syncs
 * both and renames them into place, memory first and state last, so a
 * directory never holds a state file without its memory (and a memory file
 * from another snapshot is refused by the id they share).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "vmm/api.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define SNAP_CLIENT_TIMEOUT_S 300

static char *snap_api_reply(struct machine *m, const struct snap_save_stats *st)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kbool(j, "ok", true);
	kv_json_kstr(j, "state", api_state(m));
	kv_json_key(j, "snapshot");
	kv_json_map_open(j);
	kv_json_key(j, "mem_bytes");
	kv_json_uint(j, st->mem_size);
	kv_json_key(j, "mem_data_bytes");
	kv_json_uint(j, st->mem_data_bytes);
	kv_json_key(j, "state_bytes");
	kv_json_uint(j, st->state_bytes);
	kv_json_key(j, "pause_us");
	kv_json_uint(j, st->pause_us);
	kv_json_key(j, "save_us");
	kv_json_uint(j, st->save_us);
	kv_json_map_close(j);
	kv_json_map_close(j);
	const char *out;
	size_t len;
	cleanup_err struct kv_err *err = NULL;
	if (kv_json_finish(j, &out, &len, &err) < 0)
		return api_error(EIO, err->msg);
	return kv_asprintf("%.*s", (int)len, out);
}

char *snapshot_api_op(struct machine *m, enum snap_then then, const int *fds, unsigned nfds)
{
	if (nfds != 2)
		return api_error(EINVAL, "snapshot: pass the state and memory files as two fds "
					 "with the request (SCM_RIGHTS), as vmm_snapshot() and "
					 "kvrun-vmm --api-call SOCK snapshot DIR do");
	cleanup_err struct kv_err *err = NULL;
	if (snap_devices_check(m, &err) < 0)
		return api_error(err->errnum, err->msg);
	struct snap_save_stats st = {0};
	uint64_t t0 = kv_now_ns();
	if (machine_pause(m, &err) < 0)
		return api_error(err->errnum, err->msg);
	uint64_t t1 = kv_now_ns();
	int r = snapshot_save(m, fds[0], fds[1], &st, &err);
	uint64_t t2 = kv_now_ns();
	st.pause_us = (t1 - t0) / 1000;
	st.save_us = (t2 - t1) / 1000;
	if (r < 0) {
		machine_resume(m);
		return api_error(err->errnum, err->msg);
	}
	kv_info("snapshot: %llu MiB of RAM (%llu MiB data), state %llu bytes, in %llu ms",
		(unsigned long long)(st.mem_size >> 20),
		(unsigned long long)(st.mem_data_bytes >> 20), (unsigned long long)st.state_bytes,
		(unsigned long long)(st.save_us / 1000));
	if (then == SNAP_THEN_RESUME)
		machine_resume(m);
	else if (then == SNAP_THEN_EXIT)
		machine_stop(m, VMM_EXIT_POWEROFF, "snapshot taken; stopping as asked");
	return snap_api_reply(m, &st);
}

/* ------------------------------------------------------------- client */

static int snap_client_request(const char *sock, const char *dir, const char *then, int state_fd,
			       int mem_fd, char **response, struct kv_err **err)
{
	cleanup_close int fd = api_client_connect(sock, err);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = SNAP_CLIENT_TIMEOUT_S};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cleanup_json struct kv_json *j = kv_json_new(false);
	kv_json_map_open(j);
	kv_json_kstr(j, "op", "snapshot");
	kv_json_kstr(j, "then", then);
	kv_json_kstr(j, "path", dir);
	kv_json_map_close(j);
	const char *req;
	size_t len;
	if (kv_json_finish(j, &req, &len, err) < 0)
		return -1;
	cleanup_free char *line = kv_asprintf("%.*s\n", (int)len, req);
	int fds[2] = {state_fd, mem_fd};
	if (api_client_send(fd, line, len + 1, fds, 2) < 0)
		return kv_err_make(err, errno, "send to the VMM API %s", sock);
	if (api_client_read_line(fd, "read the VMM's answer", response, err) < 0)
		return kv_err_wrap(err, "VMM API %s", sock);
	if (!strstr(*response, "\"ok\":true"))
		return kv_err_plain(err, 0, "VMM API %s: snapshot: %s", sock, *response);
	return 0;
}

static int snap_client_commit(const char *dir, int state_fd, int mem_fd, struct kv_err **err)
{
	cleanup_free char *st_tmp = kv_asprintf("%s/%s.tmp", dir, SNAP_STATE_FILE);
	cleanup_free char *st = kv_asprintf("%s/%s", dir, SNAP_STATE_FILE);
	cleanup_free char *mem_tmp = kv_asprintf("%s/%s.tmp", dir, SNAP_MEMORY_FILE);
	cleanup_free char *mem = kv_asprintf("%s/%s", dir, SNAP_MEMORY_FILE);
	if (fdatasync(mem_fd) < 0 || fdatasync(state_fd) < 0)
		return kv_err_make(err, errno, "sync snapshot files in %s", dir);
	if (rename(mem_tmp, mem) < 0 || rename(st_tmp, st) < 0)
		return kv_err_make(err, errno, "rename snapshot files into place in %s", dir);
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

int vmm_snapshot(const char *sock, const char *dir, const char *then, char **response,
		 struct kv_err **err)
{
	*response = NULL;
	if (kv_mkdir_p(dir, 0700, err) < 0)
		return -1;
	cleanup_free char *st_tmp = kv_asprintf("%s/%s.tmp", dir, SNAP_STATE_FILE);
	cleanup_free char *mem_tmp = kv_asprintf("%s/%s.tmp", dir, SNAP_MEMORY_FILE);
	cleanup_close int sfd = open(st_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (sfd < 0)
		return kv_err_make(err, errno, "create %s", st_tmp);
	cleanup_close int mfd = open(mem_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (mfd < 0) {
		unlink(st_tmp);
		return kv_err_make(err, errno, "create %s", mem_tmp);
	}
	if (snap_client_request(sock, dir, then ? then : "resume", sfd, mfd, response, err) < 0 ||
	    snap_client_commit(dir, sfd, mfd, err) < 0) {
		unlink(st_tmp);
		unlink(mem_tmp);
		return -1;
	}
	return 0;
}
