/* SPDX-License-Identifier: Apache-2.0 */
/* Errors in crun's idiom: a message that gathers context on its way up. */
#include "kv.h"

#include <string.h>

KV_PRINTF(1, 0) static char *err_vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	return s;
}

/* Only the first error is kept: it is the cause. */
KV_PRINTF(4, 0)
static int err_vmake(struct kv_err **err, int errnum, bool with_strerror, const char *fmt,
		     va_list ap)
{
	cleanup_free char *base = err_vformat(fmt, ap);
	if (err && *err == NULL) {
		struct kv_err *e = kv_malloc0(sizeof(*e));
		e->errnum = errnum;
		if (errnum && with_strerror)
			e->msg = kv_asprintf("%s: %s", base, strerror(errnum));
		else
			e->msg = steal_ptr(base);
		*err = e;
	}
	return errnum > 0 ? -errnum : -1;
}

int kv_err_make(struct kv_err **err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vmake(err, errnum, true, fmt, ap);
	va_end(ap);
	return r;
}

int kv_err_plain(struct kv_err **err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vmake(err, errnum, false, fmt, ap);
	va_end(ap);
	return r;
}

int kv_err_wrap(struct kv_err **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *prefix = err_vformat(fmt, ap);
	va_end(ap);
	char *m = kv_asprintf("%s: %s", prefix, (*err)->msg);
	free((*err)->msg);
	(*err)->msg = m;
	return (*err)->errnum > 0 ? -(*err)->errnum : -1;
}

void kv_err_free(struct kv_err *err)
{
	if (!err)
		return;
	free(err->msg);
	free(err);
}

static const struct {
	int num;
	const char *name;
} errno_names[] = {
#define E(x)                                                                                       \
	{                                                                                          \
		x, #x                                                                              \
	}
    E(EPERM),	    E(ENOENT),		E(ESRCH),	 E(EINTR),	     E(EIO),
    E(ENXIO),	    E(E2BIG),		E(ENOEXEC),	 E(EBADF),	     E(ECHILD),
    E(EAGAIN),	    E(ENOMEM),		E(EACCES),	 E(EFAULT),	     E(EBUSY),
    E(EEXIST),	    E(EXDEV),		E(ENODEV),	 E(ENOTDIR),	     E(EISDIR),
    E(EINVAL),	    E(ENFILE),		E(EMFILE),	 E(ENOTTY),	     E(EFBIG),
    E(ENOSPC),	    E(ESPIPE),		E(EROFS),	 E(EMLINK),	     E(EPIPE),
    E(ERANGE),	    E(EDEADLK),		E(ENAMETOOLONG), E(ENOSYS),	     E(ENOTEMPTY),
    E(ELOOP),	    E(ENOTSUP),		E(EPROTO),	 E(EBADMSG),	     E(EOVERFLOW),
    E(EILSEQ),	    E(ENOTSOCK),	E(EMSGSIZE),	 E(EPROTONOSUPPORT), E(EADDRINUSE),
    E(ECONNRESET),  E(ECONNREFUSED),	E(ETIMEDOUT),	 E(ENOTCONN),	     E(ECANCELED),
    E(EOWNERDEAD),  E(ENOMSG),		E(ENODATA),	 E(ESTALE),	     E(EALREADY),
    E(EINPROGRESS), E(ENOTRECOVERABLE),
#undef E
};

const char *kv_errno_name(int errnum)
{
	for (size_t i = 0; i < KV_ARRAY_SIZE(errno_names); i++)
		if (errno_names[i].num == errnum)
			return errno_names[i].name;
	return "EIO";
}

int kv_errno_from_name(const char *name)
{
	for (size_t i = 0; name && i < KV_ARRAY_SIZE(errno_names); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].num;
	return 0;
}
