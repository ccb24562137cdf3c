/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Containers on disk: id rules, <root>/<id>/state.json, the live status
 * (the recorded one, or "stopped" once the shim is gone: a pid is trusted
 * only while its /proc starttime matches the one recorded), locking, and
 * removal of a state directory.
 */
#include "runtime/backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

int container_id_validate(const char *id, struct kv_err **err)
{
	/*
	 * runc: ^[\w+-\.]+$ in Go's regexp, where "+-\." is a range from
	 * '+' to '.', i.e. + , - . ; and the id must survive path cleaning.
	 */
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,-.";
	if (!id || !*id || id[strspn(id, ok)] != '\0' || strcmp(id, ".") == 0 ||
	    strcmp(id, "..") == 0)
		return kv_err_plain(err, EINVAL, "invalid container ID format");
	if (strlen(id) > KVRUN_ID_MAX)
		return kv_err_plain(
		    err, EINVAL, "invalid container ID format: longer than %d bytes", KVRUN_ID_MAX);
	return 0;
}

void container_free(struct container *c)
{
	if (!c)
		return;
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->id);
	free(c->dir);
	oci_state_free(c->st);
	free(c);
}

char *container_dir(const char *root, const char *id)
{
	return kv_asprintf("%s/%s", root, id);
}

bool pid_alive(pid_t pid, uint64_t start_time)
{
	uint64_t now;
	if (pid <= 0 || kv_pid_start_time(pid, &now) < 0)
		return false;
	return start_time == 0 || now == start_time;
}

/*
 * A create in progress holds an exclusive flock on the state directory
 * until it is done. A "creating" container whose directory nobody holds
 * was abandoned by a create that died (killed by a timeout, say).
 */
static bool create_abandoned(const struct container *c)
{
	if (c->lock_fd >= 0)
		return true; /* we hold it: no create can be running */
	cleanup_close int fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	return flock(fd, LOCK_SH | LOCK_NB) == 0; /* released by the close */
}

void container_refresh(struct container *c)
{
	const struct oci_state *st = c->st;
	c->status = st->status;
	c->pid = st->pid;
	if (st->status == OCI_STATUS_CREATING && create_abandoned(c))
		c->status = OCI_STATUS_STOPPED;
	if (st->status == OCI_STATUS_STOPPED || (st->pid > 0 && !pid_alive(st->pid, st->pid_start)))
		c->status = OCI_STATUS_STOPPED;
	if (c->status == OCI_STATUS_STOPPED)
		c->pid = 0;
}

int container_load(const char *root, const char *id, struct container **out, struct kv_err **err)
{
	if (container_id_validate(id, err) < 0)
		return -1;
	struct container *c = kv_malloc0(sizeof(*c));
	c->lock_fd = -1;
	c->id = kv_strdup(id);
	c->dir = container_dir(root, id);
	cleanup_free char *path = kv_asprintf("%s/state.json", c->dir);
	struct kv_err *e = NULL;
	if (oci_state_load(path, &c->st, &e) < 0) {
		int r;
		if (e->errnum == ENOENT) {
			r = kv_err_plain(err, ENOENT, "container \"%s\" does not exist", id);
			kv_err_free(e);
		} else {
			r = err_pass(err, e);
		}
		container_free(c);
		return r;
	}
	if (strcmp(c->st->id, id) != 0) {
		kv_err_plain(err, EINVAL,
			     "%s: corrupt state: id \"%s\" does not match the directory", path,
			     c->st->id);
		container_free(c);
		return -1;
	}
	container_refresh(c);
	*out = c;
	return 0;
}

int container_save(struct container *c, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/state.json", c->dir);
	return oci_state_save(path, c->st, err);
}

int container_lock(struct container *c, struct kv_err **err)
{
	if (c->lock_fd >= 0)
		return 0;
	cleanup_close int fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "open %s", c->dir);
	/* Another kvrun on this container (a slow create) gets a few seconds. */
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return kv_err_make(err, errno, "lock %s", c->dir);
		if (i >= 500)
			return kv_err_plain(err, EBUSY, "container \"%s\" is busy", c->id);
		usleep(10000);
	}
	c->lock_fd = steal_fd(fd);
	/* What we loaded before the lock may be stale. */
	cleanup_free char *path = kv_asprintf("%s/state.json", c->dir);
	struct oci_state *st = NULL;
	if (oci_state_load(path, &st, err) < 0)
		return -1;
	oci_state_free(c->st);
	c->st = st;
	container_refresh(c);
	return 0;
}

int container_config(const struct container *c, struct oci_config **out, struct kv_err **err)
{
	cleanup_free char *path = kv_asprintf("%s/config.json", c->dir);
	return oci_config_load(path, out, err);
}

static int remove_tree_at(int dfd, const char *name, int depth, struct kv_err **err)
{
	/* A state directory is flat; a deep one was not made by kvrun. */
	if (depth > 8)
		return kv_err_plain(err, ELOOP, "remove %s: too deep", name);
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return kv_err_make(err, errno, "remove %s", name);
	cleanup_close int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "open %s", name);
	DIR *d = fdopendir(dup(fd));
	if (!d)
		return kv_err_make(err, errno, "read %s", name);
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = remove_tree_at(fd, de->d_name, depth + 1, err);
	}
	closedir(d);
	if (r < 0)
		return r;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return kv_err_make(err, errno, "remove %s", name);
	return 0;
}

int container_remove_dir(const char *dir, struct kv_err **err)
{
	/* The host cgroups it recorded go with it (their processes are gone). */
	hostcg_remove(dir);
	if (remove_tree_at(AT_FDCWD, dir, 0, err) < 0)
		return kv_err_wrap(err, "remove state directory %s", dir);
	return 0;
}

char *container_spec_state_json(const struct container *c)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	oci_state_to_spec_json(c->st, c->status, c->pid, j);
	struct kv_err *err = NULL;
	char *text = kv_json_finish_dup(j, NULL, &err);
	kv_err_free(err);
	return text ? text : kv_strdup("{}");
}
