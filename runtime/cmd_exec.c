/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvrun exec [options] <container-id> <command> [args...]
 * kvrun exec [options] --process|-p process.json <container-id>
 *
 * Without -p the process starts from the container's own (its config.json
 * snapshot) with runc's overrides: args, -e appended, --cwd, -u, -g, -t,
 * --cap added to every set, --no-new-privs. Either way the result goes
 * through the same validator as config.json before the backend sees it.
 * --cgroup is refused: the container's cgroups are the guest's.
 */
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>

enum {
	X_CONSOLE = 256,
	X_CWD,
	X_PIDFILE,
	X_LABEL,
	X_APPARMOR,
	X_NNP,
	X_PRESERVE,
	X_CGROUP,
	X_IGNORE_PAUSED
};

static const struct option exec_opts[] = {
    {"console-socket", required_argument, NULL, X_CONSOLE},
    {"cwd", required_argument, NULL, X_CWD},
    {"env", required_argument, NULL, 'e'},
    {"tty", no_argument, NULL, 't'},
    {"user", required_argument, NULL, 'u'},
    {"additional-gids", required_argument, NULL, 'g'},
    {"process", required_argument, NULL, 'p'},
    {"detach", no_argument, NULL, 'd'},
    {"pid-file", required_argument, NULL, X_PIDFILE},
    {"process-label", required_argument, NULL, X_LABEL},
    {"apparmor", required_argument, NULL, X_APPARMOR},
    {"no-new-privs", no_argument, NULL, X_NNP},
    {"cap", required_argument, NULL, 'c'},
    {"preserve-fds", required_argument, NULL, X_PRESERVE},
    {"cgroup", required_argument, NULL, X_CGROUP},
    {"ignore-paused", no_argument, NULL, X_IGNORE_PAUSED},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct exec_flags {
	struct create_opts o;
	const char *process, *cwd, *user, *cgroup;
	char **env, **caps, **gids;
	size_t n_env, n_caps, n_gids;
	bool tty, nnp, ignore_paused;
};

static void push(char ***v, size_t *n, const char *s)
{
	*v = realloc(*v, (*n + 2) * sizeof(char *));
	if (!*v)
		abort();
	(*v)[(*n)++] = (char *)s;
	(*v)[*n] = NULL;
}

static int parse_exec_flags(int argc, char **argv, struct exec_flags *f)
{
	int c;
	while ((c = getopt_long(argc, argv, "+e:tu:g:p:dc:h", exec_opts, NULL)) != -1) {
		switch (c) {
		case X_CONSOLE: f->o.console_socket = optarg; break;
		case X_CWD: f->cwd = optarg; break;
		case 'e': push(&f->env, &f->n_env, optarg); break;
		case 't': f->tty = true; break;
		case 'u': f->user = optarg; break;
		case 'g': push(&f->gids, &f->n_gids, optarg); break;
		case 'p': f->process = optarg; break;
		case 'd': f->o.detach = true; break;
		case X_PIDFILE: f->o.pid_file = optarg; break;
		case X_NNP: f->nnp = true; break;
		case 'c': push(&f->caps, &f->n_caps, optarg); break;
		case X_PRESERVE: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (!*optarg || *end || n < 0 || n > 1024)
				return cli_usage_error("exec", "invalid --preserve-fds value: %s",
						       optarg);
			f->o.preserve_fds = (int)n;
			break;
		}
		case X_IGNORE_PAUSED: f->ignore_paused = true; break;
		case X_CGROUP: f->cgroup = optarg; break;
		case X_LABEL:
		case X_APPARMOR: break; /* accepted: no host labels in a VM */
		case 'h': cli_print_cmd_help("exec"); return 0;
		default: return cli_usage_error("exec", "invalid flag");
		}
	}
	return -1;
}

static int parse_id_pair(const char *s, uint32_t *a, uint32_t *b, bool *has_b)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || errno || v > UINT32_MAX || (*end && *end != ':'))
		return -1;
	*a = (uint32_t)v;
	*has_b = *end == ':';
	if (!*has_b)
		return 0;
	const char *g = end + 1;
	v = strtoul(g, &end, 10);
	if (end == g || *end || errno || v > UINT32_MAX)
		return -1;
	*b = (uint32_t)v;
	return 0;
}

/*
 * The --cap names kvrun knows. runc 1.1 ignores the others with a warning
 * (capabilities.New: "ignoring unknown or unavailable capabilities"), so a
 * caller written for a newer kernel still gets its process.
 */
static size_t known_caps(const struct exec_flags *f, char ***out)
{
	size_t n = 0;
	cleanup_free char *unknown = NULL;
	for (size_t i = 0; i < f->n_caps; i++) {
		if (oci_capability_from_name(f->caps[i]) >= 0) {
			push(out, &n, f->caps[i]);
			continue;
		}
		char *u =
		    unknown ? kv_asprintf("%s %s", unknown, f->caps[i]) : kv_strdup(f->caps[i]);
		free(unknown);
		unknown = u;
	}
	if (unknown)
		kv_warn("ignoring unknown or unavailable capabilities: [%s]", unknown);
	return n;
}

/* The container's process with the flags applied, as process JSON. */
static int build_from_flags(const struct exec_flags *f, const struct oci_process *base, char **args,
			    size_t nargs, struct kv_json *j, struct kv_err **err)
{
	struct oci_process p = *base;
	struct oci_capabilities caps =
	    base->capabilities ? *base->capabilities : (struct oci_capabilities){0};
	cleanup_free char **env = NULL;
	char **capv[OCI_CAP_SET_COUNT] = {0};
	cleanup_free uint32_t *gids = NULL;
	cleanup_free char **add_caps = NULL;
	size_t n_env = 0, n_add_caps = known_caps(f, &add_caps);
	p.args = (struct oci_strv){.v = args, .n = nargs};
	for (size_t i = 0; i < base->env.n; i++)
		push(&env, &n_env, base->env.v[i]);
	for (size_t i = 0; i < f->n_env; i++)
		push(&env, &n_env, f->env[i]);
	p.env = (struct oci_strv){.v = env, .n = n_env};
	p.terminal = f->tty;
	p.no_new_privileges |= f->nnp;
	if (f->cwd)
		p.cwd = (char *)f->cwd;
	if (f->user && parse_id_pair(f->user, &p.user.uid, &p.user.gid, &(bool){false}) < 0)
		return kv_err_plain(err, EINVAL, "invalid --user %s: want uid[:gid]", f->user);
	if (f->n_gids) {
		gids = kv_malloc0(f->n_gids * sizeof(*gids));
		for (size_t i = 0; i < f->n_gids; i++) {
			char *end;
			unsigned long v = strtoul(f->gids[i], &end, 10);
			if (!*f->gids[i] || *end || v > UINT32_MAX)
				return kv_err_plain(err, EINVAL, "invalid --additional-gids %s",
						    f->gids[i]);
			gids[i] = (uint32_t)v;
		}
		p.user.additional_gids = gids;
		p.user.n_additional_gids = f->n_gids;
	}
	for (int s = 0; n_add_caps && s < OCI_CAP_SET_COUNT; s++) {
		size_t n = 0;
		for (size_t i = 0; i < caps.set[s].n; i++)
			push(&capv[s], &n, caps.set[s].v[i]);
		/* runc adds --cap to the bounding, effective, permitted and ambient sets. */
		for (size_t i = 0; s != OCI_CAP_INHERITABLE && i < n_add_caps; i++)
			push(&capv[s], &n, add_caps[i]);
		caps.set[s] = (struct oci_strv){.v = capv[s], .n = n};
		caps.present[s] = caps.present[s] || (s != OCI_CAP_INHERITABLE);
	}
	p.capabilities = &caps;
	oci_process_to_json(&p, j);
	for (int s = 0; s < OCI_CAP_SET_COUNT; s++)
		free(capv[s]);
	return 0;
}

static int exec_process(struct container *c, const struct exec_flags *f, char **args, size_t nargs,
			struct oci_config **out, struct kv_err **err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (f->process) {
		if (kv_read_file(f->process, OCI_CONFIG_MAX_SIZE, &text, &len, err) < 0)
			return -1;
		return oci_process_parse(text, len, f->process, out, err);
	}
	if (nargs == 0)
		return kv_err_plain(err, EINVAL, "exec args cannot be empty");
	cleanup_oci_config struct oci_config *cfg = NULL;
	if (container_config(c, &cfg, err) < 0)
		return -1;
	cleanup_json struct kv_json *j = kv_json_new(false);
	if (build_from_flags(f, cfg->process, args, nargs, j, err) < 0)
		return -1;
	text = kv_json_finish_dup(j, &len, err); /* the parser wants a NUL at len */
	if (!text)
		return -1;
	return oci_process_parse(text, len, "exec process", out, err);
}

/* The exec itself: the process's exit status (0 with -d), or -1 with *err set. */
static int exec_run(struct kvrun_globals *g, struct exec_flags *f, int argc, char **argv,
		    struct kv_err **err)
{
	cleanup_container struct container *c = NULL;
	cleanup_oci_config struct oci_config *proc = NULL;
	if (container_load(g->root, argv[optind], &c, err) < 0)
		return -1;
	if (c->status == OCI_STATUS_STOPPED)
		return kv_err_plain(err, EINVAL, "cannot exec in a stopped container");
	if (c->status == OCI_STATUS_PAUSED && !f->ignore_paused)
		return kv_err_plain(err, EINVAL,
				    "cannot exec in a paused container (use --ignore-paused to "
				    "override)");
	/* Refused rather than ignored: the process would not be where asked. */
	if (f->cgroup)
		return kv_err_plain(err, ENOTSUP,
				    "--cgroup %s: the container's cgroups live in its microVM's "
				    "guest; running a process in a sub-cgroup is not supported",
				    f->cgroup);
	if (exec_process(c, f, argv + optind + 1, (size_t)(argc - optind - 1), &proc, err) < 0)
		return -1;
	bool tty = proc->process->terminal;
	if (tty && f->o.detach && !f->o.console_socket)
		return kv_err_plain(err, EINVAL,
				    "cannot allocate tty if kvrun will detach without setting "
				    "console socket");
	if (!tty && f->o.console_socket)
		return kv_err_plain(err, EINVAL,
				    "cannot use console socket if kvrun will not detach or "
				    "allocate tty");
	return runtime_backend_exec(c, proc->process, &f->o, err);
}

/*
 * runc exits 255 when exec itself fails (fatalWithCode), so that a caller
 * can tell it from the exec'd process's own status, which passes through.
 */
#define EXEC_FAILED_STATUS 255

static int do_exec(struct kvrun_globals *g, struct exec_flags *f, int argc, char **argv)
{
	struct kv_err *err = NULL;
	int status = exec_run(g, f, argc, argv, &err);
	if (status >= 0)
		return status;
	kv_err_wrap(&err, "exec failed");
	return cli_fail_status(err, EXEC_FAILED_STATUS);
}

KVRUN_CMD(exec)
{
	struct exec_flags f = {0};
	int r = parse_exec_flags(argc, argv, &f);
	if (r < 0 && cli_min_args("exec", argc - optind, 1))
		r = 1;
	if (r < 0)
		r = do_exec(g, &f, argc, argv);
	free(f.env);
	free(f.caps);
	free(f.gids);
	return r;
}
