/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging with a level and a sink. The JSON format matches runc's
 * --log-format json lines: {"level":"error","msg":"...","time":"..."}.
 */
#include "kv.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>

static struct {
	const char *prog;
	int fd;
	enum kv_log_format fmt;
	enum kv_log_level level;
} log_cfg = {"kvrun", 2, KV_LOG_TEXT, KV_LOG_INFO};

static const char *const level_names[] = {"error", "warning", "info", "debug"};

int kv_log_init(const char *prog, const char *path, enum kv_log_format fmt, enum kv_log_level level,
		struct kv_err **err)
{
	if (prog)
		log_cfg.prog = prog;
	log_cfg.fmt = fmt;
	log_cfg.level = level;
	if (path && *path) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			return kv_err_make(err, errno, "open log file %s", path);
		if (log_cfg.fd > 2)
			close(log_cfg.fd);
		log_cfg.fd = fd;
	}
	return 0;
}

bool kv_log_enabled(enum kv_log_level level)
{
	return level <= log_cfg.level;
}

void kv_vlog(enum kv_log_level level, const char *fmt, va_list ap)
{
	if (!kv_log_enabled(level))
		return;
	int saved = errno;
	cleanup_free char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[64];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	cleanup_free char *line = NULL;
	if (log_cfg.fmt == KV_LOG_JSON) {
		cleanup_json struct kv_json *j = kv_json_new(false);
		kv_json_map_open(j);
		kv_json_kstr(j, "level", level_names[level]);
		kv_json_kstr(j, "msg", msg);
		kv_json_kstr(j, "time", when);
		kv_json_map_close(j);
		const char *out;
		size_t len;
		struct kv_err *e = NULL;
		if (kv_json_finish(j, &out, &len, &e) < 0) {
			kv_err_free(e);
			errno = saved;
			return;
		}
		line = kv_asprintf("%.*s\n", (int)len, out);
	} else if (log_cfg.fd == 2) {
		line = kv_asprintf("%s: %s%s\n", log_cfg.prog,
				   level == KV_LOG_ERROR  ? ""
				   : level == KV_LOG_WARN ? "warning: "
							  : "",
				   msg);
	} else {
		line = kv_asprintf("%s %s[%d] %s: %s\n", when, log_cfg.prog, (int)getpid(),
				   level_names[level], msg);
	}
	(void)kv_write_all(log_cfg.fd, line, strlen(line));
	errno = saved;
}

void kv_log(enum kv_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kv_vlog(level, fmt, ap);
	va_end(ap);
}

void kv_log_err(const struct kv_err *err)
{
	if (err)
		kv_log(KV_LOG_ERROR, "%s", err->msg);
}

bool kv_ratelimit_ok(struct kv_ratelimit *rl)
{
	uint64_t now = kv_now_ms();
	if (rl->window_start_ms == 0 || now - rl->window_start_ms >= rl->interval_ms) {
		if (rl->missed)
			kv_warn("%u messages suppressed", rl->missed);
		rl->window_start_ms = now;
		rl->printed = 0;
		rl->missed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return true;
	}
	rl->missed++;
	return false;
}
