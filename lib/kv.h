/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/ — the small shared library every kvrun program links: errors
 * (crun's idiom), cleanup helpers, logging, a checked JSON writer on top
 * of yajl_gen and typed readers over yajl_tree. This is its one public header.
 */
#ifndef KV_LIB_H
#define KV_LIB_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define KV_WUR		 __attribute__((warn_unused_result))
#define KV_PRINTF(a, b)	 __attribute__((format(printf, a, b)))
#define KV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- errors */

/*
 * A fallible function returns a negative int (or NULL) and takes
 * `struct kv_err **err` last. kv_err_make() fills *err and returns
 * -(errno) (or -1 when errno is 0), so `return kv_err_make(...)` reads well.
 */
struct kv_err {
	int errnum; /* errno value, 0 when not an OS error */
	char *msg;  /* full message, context prefixes included */
};

int kv_err_make(struct kv_err **err, int errnum, const char *fmt, ...) KV_PRINTF(3, 4);
/*
 * An error that is a verdict, not a failed system call: the message stays as
 * written (no ": strerror" suffix), errnum is kept for callers to test.
 */
int kv_err_plain(struct kv_err **err, int errnum, const char *fmt, ...) KV_PRINTF(3, 4);
/* Prefix context: "create container x: <old message>". Returns -(errnum). */
int kv_err_wrap(struct kv_err **err, const char *fmt, ...) KV_PRINTF(2, 3);
void kv_err_free(struct kv_err *err);
/* errno name ("ENOENT"), or "EIO" for unknown values. */
const char *kv_errno_name(int errnum);
/* Inverse of kv_errno_name(); 0 when unknown. */
int kv_errno_from_name(const char *name);

/* --------------------------------------------------------------- cleanup */

static inline void kv_freep(void *p)
{
	free(*(void **)p);
}
static inline void kv_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void kv_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void kv_err_freep(struct kv_err **e)
{
	kv_err_free(*e);
}

#define cleanup_free   __attribute__((cleanup(kv_freep)))
#define cleanup_close  __attribute__((cleanup(kv_closep)))
#define cleanup_fclose __attribute__((cleanup(kv_fclosep)))
#define cleanup_err    __attribute__((cleanup(kv_err_freep)))

/* Hand ownership on: returns the value and clears the variable. */
#define steal_ptr(p)                                                                               \
	({                                                                                         \
		__typeof__(p) _tmp = (p);                                                          \
		(p) = NULL;                                                                        \
		_tmp;                                                                              \
	})
#define steal_fd(fd)                                                                               \
	({                                                                                         \
		int _tmp = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_tmp;                                                                              \
	})

/* Allocation that cannot fail silently: aborts on OOM (like xmalloc). */
void *kv_malloc0(size_t n);
char *kv_strdup(const char *s);
char *kv_asprintf(const char *fmt, ...) KV_PRINTF(1, 2);

/*
 * FNV-1a, 64 bits, of a NUL-terminated string: a stable short name for a
 * longer text (template ids, agent container names). Not for anything an
 * adversary may choose to collide where a collision matters.
 */
uint64_t kv_fnv1a64(const char *s);

/* ---------------------------------------------------------------- files */

/* Read a whole file (at most max bytes, else EFBIG). NUL-terminated. */
int kv_read_file(const char *path, size_t max, char **out, size_t *len, struct kv_err **err) KV_WUR;
/* write to PATH.tmp, fsync, rename over PATH, fsync the directory. */
int kv_write_file_atomic(const char *path, const void *buf, size_t len, int mode,
			 struct kv_err **err) KV_WUR;
/*
 * The same without the fsyncs: a reader (or a process killed half way)
 * sees the old file or the new one, but a machine crash may lose both.
 * For run-time state that a reboot discards anyway (state directories
 * under /run, as runc's): two fsyncs per file cost milliseconds each where
 * that directory is not a tmpfs, 14 of them per create.
 */
int kv_write_file_volatile(const char *path, const void *buf, size_t len, int mode,
			   struct kv_err **err) KV_WUR;
/* Full read/write loops that retry on EINTR and short counts. */
ssize_t kv_read_all(int fd, void *buf, size_t len);
ssize_t kv_write_all(int fd, const void *buf, size_t len);
/* sendmsg() of LEN bytes with NFDS file descriptors (SCM_RIGHTS; none when
 * 0, at most KV_SEND_FDS_MAX), MSG_NOSIGNAL: sendmsg's result. Safe in a
 * child after fork or clone (no allocation). */
#define KV_SEND_FDS_MAX 8
ssize_t kv_send_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
/* Standard base64 with padding. Encode N bytes into OUT, which holds
 * KV_B64_LEN(N) bytes (the NUL included); decode IN into at most MAX bytes,
 * returning the byte count, or -1 on a bad character, padding or length. */
#define KV_B64_LEN(n) (((n) + 2) / 3 * 4 + 1)
void kv_b64_encode(const uint8_t *in, size_t n, char *out);
ssize_t kv_b64_decode(const char *in, uint8_t *out, size_t max);
/* mkdir -p */
int kv_mkdir_p(const char *path, int mode, struct kv_err **err) KV_WUR;
/* Parse "256M", "1G", "4096", "2k" (binary units) into bytes. */
int kv_parse_size(const char *s, uint64_t *out);

/* ------------------------------------------------------------ processes */

/*
 * A process's start time (/proc/<pid>/stat field 22, clock ticks since
 * boot): with the pid it names a process in a way pid reuse cannot fool.
 * Returns 0 and fills *out, or -1 when the process is gone or a zombie.
 */
int kv_pid_start_time(pid_t pid, uint64_t *out);

/* -------------------------------------------------------------- logging */

enum kv_log_level { KV_LOG_ERROR, KV_LOG_WARN, KV_LOG_INFO, KV_LOG_DEBUG };
enum kv_log_format { KV_LOG_TEXT, KV_LOG_JSON };

/* Defaults: stderr, text, INFO. path NULL keeps stderr. */
int kv_log_init(const char *prog, const char *path, enum kv_log_format fmt, enum kv_log_level level,
		struct kv_err **err) KV_WUR;
void kv_log(enum kv_log_level level, const char *fmt, ...) KV_PRINTF(2, 3);
void kv_vlog(enum kv_log_level level, const char *fmt, va_list ap) KV_PRINTF(2, 0);
bool kv_log_enabled(enum kv_log_level level);
/* Log an error object at ERROR level. */
void kv_log_err(const struct kv_err *err);

/*
 * Rate-limited logging for anything a guest can trigger: at most `burst`
 * messages per `interval_ms`, then a count of what was suppressed.
 */
struct kv_ratelimit {
	uint64_t window_start_ms;
	unsigned interval_ms, burst, printed, missed;
};
#define KV_RATELIMIT_INIT(ms, n)                                                                   \
	{                                                                                          \
		0, (ms), (n), 0, 0                                                                 \
	}
bool kv_ratelimit_ok(struct kv_ratelimit *rl);

#define kv_error(...) kv_log(KV_LOG_ERROR, __VA_ARGS__)
#define kv_warn(...)  kv_log(KV_LOG_WARN, __VA_ARGS__)
#define kv_info(...)  kv_log(KV_LOG_INFO, __VA_ARGS__)
#define kv_debug(...)                                                                              \
	do {                                                                                       \
		if (kv_log_enabled(KV_LOG_DEBUG))                                                  \
			kv_log(KV_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

uint64_t kv_now_ms(void); /* CLOCK_MONOTONIC */
uint64_t kv_now_ns(void);

/*
 * Per-phase timings of one command (timing.c): each mark ends the phase it
 * names (the time since the previous mark, or since kv_timing_start()).
 * Names are static strings. Marks from another process (the shim's, sent
 * with its answer) are added as the parts of the current phase; a phase
 * with parts is shown as "name T [part t, ...]". At most KV_TIMING_MAX
 * marks and parts in all; more are dropped. kvrun reports them when
 * KVRUN_TIMINGS is set or with --debug (one log line per command).
 */
#define KV_TIMING_MAX 32
void kv_timing_start(void);
void kv_timing_mark(const char *name);
/* A part of the phase under way, measured elsewhere; name is copied. */
void kv_timing_part(const char *name, uint64_t ns);
/* Whether KVRUN_TIMINGS asks for them (set, not "0"). */
bool kv_timing_wanted(void);
/* "name 1.23 ms, name 0.40 ms [part 0.10 ms], ... = 2.01 ms"; malloc'd. */
char *kv_timing_line(void);
/* The marks as a JSON array of [name, ns] pairs (the shim's answer). */
struct kv_json;
void kv_timing_json(struct kv_json *j);

/* ------------------------------------------------------------------ json */

/*
 * A checked JSON writer over yajl_gen: every call's status is remembered,
 * and kv_json_finish() reports the first failure (unbalanced maps, a key
 * where a value belongs, invalid UTF-8), so callers write straight-line code
 * and check once.
 */
struct kv_json;
struct kv_json *kv_json_new(bool pretty);
void kv_json_free(struct kv_json *j);
static inline void kv_json_freep(struct kv_json **j)
{
	kv_json_free(*j);
}
#define cleanup_json __attribute__((cleanup(kv_json_freep)))

void kv_json_map_open(struct kv_json *j);
void kv_json_map_close(struct kv_json *j);
void kv_json_array_open(struct kv_json *j);
void kv_json_array_close(struct kv_json *j);
void kv_json_key(struct kv_json *j, const char *key);
void kv_json_str(struct kv_json *j, const char *s); /* NULL writes null */
void kv_json_strn(struct kv_json *j, const char *s, size_t n);
void kv_json_int(struct kv_json *j, long long v);
void kv_json_uint(struct kv_json *j, unsigned long long v);
void kv_json_bool(struct kv_json *j, bool v);
void kv_json_null(struct kv_json *j);
/* Key + value shorthands. */
void kv_json_kstr(struct kv_json *j, const char *key, const char *s);
void kv_json_kint(struct kv_json *j, const char *key, long long v);
void kv_json_kbool(struct kv_json *j, const char *key, bool v);
/*
 * Embed one JSON value given as text (say an OCI process already written):
 * checked to be exactly one well-formed value, then copied as it is.
 * Anything else makes kv_json_finish() fail.
 */
void kv_json_raw(struct kv_json *j, const char *text, size_t len);
/* Borrow the finished text (valid until kv_json_free). Fails if unbalanced. */
int kv_json_finish(struct kv_json *j, const char **out, size_t *len, struct kv_err **err) KV_WUR;
/* The same, as a NUL-terminated copy the caller frees (*len, if asked for,
 * its length); NULL with *err set if unbalanced. */
char *kv_json_finish_dup(struct kv_json *j, size_t *len, struct kv_err **err) KV_WUR;

/*
 * Reading JSON: parse with yajl_tree (callers include <yajl/yajl_tree.h>).
 * kv_json_parse() wraps yajl_tree_parse with a size limit and a message that
 * names `what` (a file name or "agent frame").
 */
struct yajl_val_s;
/* Where text stops being JSON, for an error: "byte N (line L, column C)". */
void kv_json_error_at(const char *text, size_t len, char *buf, size_t n);
struct yajl_val_s *kv_json_parse(const char *text, const char *what, struct kv_err **err) KV_WUR;
void kv_yajl_freep(struct yajl_val_s **v);
#define cleanup_yajl_val __attribute__((cleanup(kv_yajl_freep)))

/* Typed lookups in an object; NULL/false when absent or of another type. */
struct yajl_val_s *kv_jget(struct yajl_val_s *obj, const char *key);
const char *kv_jstr(struct yajl_val_s *obj, const char *key);
bool kv_jint(struct yajl_val_s *obj, const char *key, long long *out);
bool kv_jbool(struct yajl_val_s *obj, const char *key, bool *out);

#endif
