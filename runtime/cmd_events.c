/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun events [--stats] [--interval duration] <container-id>: the
 * statistics come from the guest (backend), one JSON object per line as
 * runc prints them; --stats prints one and exits. Without --stats, OOM
 * kills in the container are printed as they happen, as runc does:
 * {"type":"oom","id":...}. */
#include "runtime/runtime.h"

#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

enum { OPT_STATS = 256, OPT_INTERVAL };

static const struct option events_opts[] = {
    {"stats", no_argument, NULL, OPT_STATS},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A Go duration ("5s", "1m30s", "250ms") in milliseconds; -1 if malformed. */
static long long parse_duration_ms(const char *s)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}};
	double total = 0;
	if (!*s)
		return -1;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		if (end == s || v < 0)
			return -1;
		size_t best = 0, blen = 0;
		for (size_t i = 0; i < KV_ARRAY_SIZE(units); i++) {
			size_t l = strlen(units[i].unit);
			if (strncmp(end, units[i].unit, l) == 0 && l > blen) {
				best = i;
				blen = l;
			}
		}
		if (!blen)
			return -1;
		total += v * units[best].ms;
		s = end + blen;
	}
	return total > 1e12 ? -1 : (long long)total;
}

static int print_stats(struct container *ct, struct kv_err **err)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	const char *text;
	size_t len;
	if (runtime_backend_stats(ct, j, err) < 0 || kv_json_finish(j, &text, &len, err) < 0)
		return -1;
	printf("%.*s\n", (int)len, text);
	return fflush(stdout) == 0 ? 0 : kv_err_make(err, errno, "write stdout");
}

static int print_oom(const char *id)
{
	cleanup_json struct kv_json *j = kv_json_new(false);
	const char *text;
	size_t len;
	struct kv_err *err = NULL;
	kv_json_map_open(j);
	kv_json_kstr(j, "type", "oom");
	kv_json_kstr(j, "id", id);
	kv_json_map_close(j);
	if (kv_json_finish(j, &text, &len, &err) < 0) {
		kv_err_free(err);
		return -1;
	}
	printf("%.*s\n", (int)len, text);
	return fflush(stdout) == 0 ? 0 : -1;
}

/* Until interval_ms passed: print the OOM notifications that come. Without
 * a connection (or once the VM closed it) only sleep. */
static void wait_notifications(struct container *ct, struct backend_events **ev,
			       long long interval_ms)
{
	long long deadline = (long long)kv_now_ms() + interval_ms;
	for (long long left = interval_ms; left > 0; left = deadline - (long long)kv_now_ms()) {
		if (!*ev) {
			usleep((useconds_t)(left * 1000));
			return;
		}
		struct pollfd p = {.fd = runtime_backend_events_fd(*ev), .events = POLLIN};
		/* (one read with the handshake's answer is queued: no poll for it) */
		int r = runtime_backend_events_pending(*ev)
			    ? 1
			    : poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		struct kv_err *err = NULL;
		bool oom = false;
		r = runtime_backend_events_next(*ev, &oom, &err);
		if (r <= 0) {
			if (r < 0)
				kv_debug("events for %s: %s", ct->id, err->msg);
			kv_err_free(err);
			runtime_backend_events_close(*ev);
			*ev = NULL;
		} else if (oom && print_oom(ct->id) < 0) {
			return;
		}
	}
}

KVRUN_CMD(events)
{
	bool stats = false;
	long long interval_ms = 5000;
	int c;
	while ((c = getopt_long(argc, argv, "+h", events_opts, NULL)) != -1) {
		switch (c) {
		case OPT_STATS: stats = true; break;
		case OPT_INTERVAL:
			interval_ms = parse_duration_ms(optarg);
			if (interval_ms <= 0)
				return cli_usage_error("events", "invalid --interval: %s", optarg);
			break;
		case 'h': cli_print_cmd_help("events"); return 0;
		default: return cli_usage_error("events", "invalid flag");
		}
	}
	if (cli_exact_args("events", argc - optind, 1))
		return 1;
	struct kv_err *err = NULL;
	cleanup_container struct container *ct = NULL;
	if (container_load(g->root, argv[optind], &ct, &err) < 0)
		return cli_fail(err);
	if (ct->status == OCI_STATUS_STOPPED)
		return cli_failf("container with id %s is not running", ct->id);
	kv_debug("events for %s: stats=%d interval=%lldms", ct->id, stats, interval_ms);
	/* Without --stats: notifications as they come (runc's OOM events). */
	cleanup_backend_events struct backend_events *ev = NULL;
	if (!stats) {
		ev = runtime_backend_events_open(ct, &err);
		if (!ev) {
			kv_warn("events for %s: no OOM notifications: %s", ct->id, err->msg);
			kv_err_free(err);
			err = NULL;
		}
	}
	/* --stats: one sample; else a sample every interval until it stops. */
	for (;;) {
		if (print_stats(ct, &err) < 0)
			return cli_fail(err);
		if (stats)
			return 0;
		wait_notifications(ct, &ev, interval_ms);
		container_refresh(ct);
		if (ct->status == OCI_STATUS_STOPPED)
			return 0;
	}
}
