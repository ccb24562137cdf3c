/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kvrun command line: runc's global flags, the command table, usage
 * errors in runc's words, and how a failure is reported (exit status 1,
 * the message to the log and, when the log is a file, to stderr too, as
 * runc's fatal() does; containerd reads the JSON log for the message).
 */
#include "runtime/runtime.h"

#include <getopt.h>
#include <string.h>
#include <unistd.h>

static const struct kvrun_cmd cmds[] = {
    {"check", "[command options]", "check that this host can run kvrun's microVMs", cmd_check},
    {"create", "[command options] <container-id>", "create a container", cmd_create},
    {"delete", "[command options] <container-id>",
     "delete any resources held by the container often used with detached container", cmd_delete},
    {"events", "[command options] <container-id>",
     "display container events such as OOM notifications, cpu, memory, and IO usage "
     "statistics",
     cmd_events},
    {"exec", "[command options] <container-id> <command> [command options]",
     "execute new process inside the container", cmd_exec},
    {"features", "", "show the enabled features", cmd_features},
    {"image", "import|ls|rm|prune [command options]",
     "manage OCI images (erofs layer images in the image store)", cmd_image},
    {"kill", "[command options] <container-id> [signal]",
     "kill sends the specified signal (default: SIGTERM) to the container's init process",
     cmd_kill},
    {"list", "[command options]", "lists containers started by kvrun with the given root",
     cmd_list},
    {"pause", "<container-id>", "pause suspends all processes inside the container", cmd_pause},
    {"ps", "[command options] <container-id> [ps options]",
     "ps displays the processes running inside a container", cmd_ps},
    {"resume", "<container-id>", "resumes all processes that have been previously paused",
     cmd_resume},
    {"run", "[command options] <container-id>", "create and run a container", cmd_run},
    {"spec", "[command options]", "create a new specification file", cmd_spec},
    {"start", "<container-id>", "executes the user defined process in a created container",
     cmd_start},
    {"state", "<container-id>", "output the state of a container", cmd_state},
    {"template", "create|list|rm [command options]",
     "manage VM templates (snapshots new VMs are cloned from)", cmd_template},
    {"update", "[command options] <container-id>", "update container resource constraints",
     cmd_update},
    {"version", "", "print the version", cmd_version},
};

/* Whether errors already reach stderr through the log. */
static bool log_is_stderr = true;

int cli_fail_status(struct kv_err *err, int status)
{
	const char *msg = err && err->msg ? err->msg : "unknown error";
	kv_log(KV_LOG_ERROR, "%s", msg);
	if (!log_is_stderr)
		fprintf(stderr, "kvrun: %s\n", msg);
	kv_err_free(err);
	return status;
}

int cli_fail(struct kv_err *err)
{
	return cli_fail_status(err, 1);
}

int cli_failf(const char *fmt, ...)
{
	struct kv_err *err = NULL;
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	kv_err_make(&err, 0, "%s", msg);
	return cli_fail(err);
}

static const struct kvrun_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(cmds); i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

void cli_print_cmd_help(const char *name)
{
	const struct kvrun_cmd *c = find_cmd(name);
	if (!c)
		return;
	printf("NAME:\n   kvrun %s - %s\n\nUSAGE:\n   kvrun %s %s\n", c->name, c->summary, c->name,
	       c->usage);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	const struct kvrun_cmd *c = find_cmd(cmd);
	if (c)
		fprintf(stderr, "Incorrect Usage.\nUSAGE:\n   kvrun %s %s\n", c->name, c->usage);
	return cli_failf("%s", msg);
}

int cli_exact_args(const char *cmd, int have, int want)
{
	if (have == want)
		return 0;
	return cli_usage_error(cmd, "\"%s\" requires exactly %d argument(s)", cmd, want);
}

int cli_min_args(const char *cmd, int have, int want)
{
	if (have >= want)
		return 0;
	return cli_usage_error(cmd, "\"%s\" requires a minimum of %d argument(s)", cmd, want);
}

int cli_id_only(const char *cmd, int argc, char **argv, const char **id)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'h') {
			cli_print_cmd_help(cmd);
			return 0;
		}
		return cli_usage_error(cmd, "invalid flag");
	}
	if (cli_exact_args(cmd, argc - optind, 1))
		return 1;
	*id = argv[optind];
	return -1;
}

int cli_no_args(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'h') {
			cli_print_cmd_help(cmd);
			return 0;
		}
		return cli_usage_error(cmd, "invalid flag");
	}
	if (cli_exact_args(cmd, argc - optind, 0))
		return 1;
	return -1;
}

static void print_help(void)
{
	printf("NAME:\n   kvrun - an OCI runtime that runs each container or pod in its own "
	       "KVM microVM\n\nUSAGE:\n   kvrun [global options] command [command options] "
	       "[arguments...]\n\nVERSION:\n   %s\n\nCOMMANDS:\n",
	       KVRUN_VERSION);
	for (size_t i = 0; i < KV_ARRAY_SIZE(cmds); i++)
		printf("     %-10s %s\n", cmds[i].name, cmds[i].summary);
	printf("\nGLOBAL OPTIONS:\n"
	       "   --debug              enable debug logging\n"
	       "   --log value          set the log file to write kvrun logs to (default is "
	       "stderr)\n"
	       "   --log-format value   set the log format ('text' (default), or 'json')\n"
	       "   --root value         root directory for storage of container state (default: "
	       "\"%s\")\n"
	       "   --systemd-cgroup     accepted for compatibility (cgroups live in the guest)\n"
	       "   --rootless value     accepted for compatibility ('true', 'false', or 'auto')\n"
	       "   --help, -h           show help\n"
	       "   --version, -v        print the version\n",
	       KVRUN_DEFAULT_ROOT);
}

static char *default_root(void)
{
	/* As runc: an unprivileged caller gets a root under XDG_RUNTIME_DIR. */
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (geteuid() != 0 && xdg && *xdg)
		return kv_asprintf("%s/kvrun", xdg);
	return kv_strdup(KVRUN_DEFAULT_ROOT);
}

enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_DEBUG, OPT_SYSTEMD, OPT_ROOTLESS, OPT_CRIU };

static const struct option global_opts[] = {
    {"root", required_argument, NULL, OPT_ROOT},
    {"log", required_argument, NULL, OPT_LOG},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"debug", no_argument, NULL, OPT_DEBUG},
    {"systemd-cgroup", no_argument, NULL, OPT_SYSTEMD},
    {"rootless", required_argument, NULL, OPT_ROOTLESS},
    {"criu", required_argument, NULL, OPT_CRIU},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or an exit status. */
static int parse_global(struct kvrun_globals *g, int argc, char **argv, char **root)
{
	int c;
	while ((c = getopt_long(argc, argv, "+hv", global_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT:
			free(*root);
			*root = kv_strdup(optarg);
			break;
		case OPT_LOG: g->log_path = optarg; break;
		case OPT_LOG_FORMAT:
			if (strcmp(optarg, "json") == 0)
				g->log_format = KV_LOG_JSON;
			else if (strcmp(optarg, "text") == 0)
				g->log_format = KV_LOG_TEXT;
			else
				return cli_failf("invalid log-format: %s", optarg);
			break;
		case OPT_DEBUG: g->debug = true; break;
		case OPT_SYSTEMD: g->systemd_cgroup = true; break;
		case OPT_ROOTLESS:
			if (strcmp(optarg, "true") && strcmp(optarg, "false") &&
			    strcmp(optarg, "auto"))
				return cli_failf("invalid --rootless value: %s", optarg);
			g->rootless = optarg;
			break;
		case OPT_CRIU: break;
		case 'h': print_help(); return 0;
		case 'v': return cmd_version(g, 1, argv);
		default: return 1; /* getopt printed why */
		}
	}
	return -1;
}

static int setup_logging(struct kvrun_globals *g)
{
	struct kv_err *err = NULL;
	log_is_stderr = !(g->log_path && *g->log_path);
	if (kv_log_init("kvrun", g->log_path, g->log_format, g->debug ? KV_LOG_DEBUG : KV_LOG_WARN,
			&err) < 0) {
		log_is_stderr = true;
		return cli_fail(err);
	}
	return 0;
}

/* The command's phases (lib/timing.c), when KVRUN_TIMINGS or --debug asks. */
static void report_timings(const struct kvrun_globals *g, const char *cmd, int argc, char **argv)
{
	bool wanted = kv_timing_wanted();
	if (!wanted && !g->debug)
		return;
	kv_timing_mark("end");
	cleanup_free char *line = kv_timing_line();
	/* The container's id: the command's first argument after its options
	 * (getopt left optind there), as runc takes it. */
	const char *id = optind > 0 && optind < argc ? argv[optind] : "";
	kv_log(wanted ? KV_LOG_WARN : KV_LOG_DEBUG, "timings: %s %s: %s", cmd, id,
	       line ? line : "?");
}

int kvrun_main(int argc, char **argv)
{
	kv_timing_start();
	struct kvrun_globals g = {.log_format = KV_LOG_TEXT};
	cleanup_free char *root = default_root();
	int r = parse_global(&g, argc, argv, &root);
	if (r >= 0)
		return r;
	if (setup_logging(&g) != 0)
		return 1;
	cleanup_free char *clean = path_clean_abs(root);
	if (!clean)
		return cli_failf("invalid --root %s", root);
	if (strcmp(clean, "/") == 0)
		return cli_failf("Option --root argument should not be set to /");
	g.root = clean;
	if (optind >= argc) {
		print_help();
		return 0;
	}
	const struct kvrun_cmd *cmd = find_cmd(argv[optind]);
	if (!cmd)
		return cli_failf("'%s' is not a kvrun command", argv[optind]);
	kv_debug("%s: root %s", cmd->name, g.root);
	int cargc = argc - optind;
	char **cargv = argv + optind;
	optind = 0; /* reinitialise getopt for the command's own options */
	kv_timing_mark("cli");
	if (!cmd->run) /* a weak command this program was linked without */
		return cli_failf("'%s' is not in this build of kvrun", cmd->name);
	r = cmd->run(&g, cargc, cargv);
	report_timings(&g, cmd->name, cargc, cargv);
	return r;
}

char *path_clean_abs(const char *p)
{
	cleanup_free char *cwd = NULL;
	if (!p || !*p)
		return NULL;
	if (p[0] != '/') {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return NULL;
	}
	cleanup_free char *full = cwd ? kv_asprintf("%s/%s", cwd, p) : kv_strdup(p);
	char *out = kv_malloc0(strlen(full) + 2);
	size_t n = 0;
	for (char *save = NULL, *seg = strtok_r(full, "/", &save); seg;
	     seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (n > 0 && out[n] != '/')
				n--;
			out[n] = '\0';
			continue;
		}
		n += (size_t)sprintf(out + n, "/%s", seg);
	}
	if (n == 0)
		strcpy(out, "/");
	return out;
}
