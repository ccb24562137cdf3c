/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation, whole-file I/O and small parsing helpers. */
#include "kv.h"

#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

void *kv_malloc0(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *kv_strdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

char *kv_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	return s;
}

ssize_t kv_read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = read(fd, (char *)buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += r;
	}
	return done;
}

ssize_t kv_write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = write(fd, (const char *)buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		done += r;
	}
	return done;
}

ssize_t kv_send_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(KV_SEND_FDS_MAX * sizeof(int))];
	} ctl;
	if (nfds > KV_SEND_FDS_MAX) {
		errno = EINVAL;
		return -1;
	}
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(h), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

int kv_read_file(const char *path, size_t max, char **out, size_t *len, struct kv_err **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kv_err_make(err, errno, "stat %s", path);
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return kv_err_make(err, EFBIG, "%s: larger than %zu bytes", path, max);
	/* /proc and /sys files say size 0: start with a page, not a byte (each short read
	 * of /proc/cpuinfo is another system call and another pass of the seq_file). */
	size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	cleanup_free char *buf = kv_malloc0(cap);
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > max)
				return kv_err_make(err, EFBIG, "%s: larger than %zu bytes", path,
						   max);
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				abort();
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kv_err_make(err, errno, "read %s", path);
		if (r == 0)
			break;
		n += r;
		if (n > max)
			return kv_err_make(err, EFBIG, "%s: larger than %zu bytes", path, max);
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	*out = steal_ptr(buf);
	return 0;
}

static int write_file_replace(const char *path, const void *buf, size_t len, int mode, bool durable,
			      struct kv_err **err)
{
	cleanup_free char *tmp = kv_asprintf("%s.tmp.%d", path, (int)getpid());
	cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return kv_err_make(err, errno, "create %s", tmp);
	if (kv_write_all(fd, buf, len) < 0 || (durable && fsync(fd) < 0)) {
		int e = errno;
		unlink(tmp);
		return kv_err_make(err, e, "write %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kv_err_make(err, e, "rename %s to %s", tmp, path);
	}
	if (!durable)
		return 0;
	/* Make the rename itself durable. */
	cleanup_free char *dcopy = kv_strdup(path);
	cleanup_close int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

int kv_write_file_atomic(const char *path, const void *buf, size_t len, int mode,
			 struct kv_err **err)
{
	return write_file_replace(path, buf, len, mode, true, err);
}

int kv_write_file_volatile(const char *path, const void *buf, size_t len, int mode,
			   struct kv_err **err)
{
	return write_file_replace(path, buf, len, mode, false, err);
}

int kv_mkdir_p(const char *path, int mode, struct kv_err **err)
{
	cleanup_free char *p = kv_strdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return kv_err_make(err, errno, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return kv_err_make(err, errno, "mkdir %s", p);
	return 0;
}

int kv_parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

uint64_t kv_fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* offset basis */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull; /* FNV prime */
	return h;
}

uint64_t kv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t kv_now_ms(void)
{
	return kv_now_ns() / 1000000ull;
}

/* ---------------------------------------------------------------- base64 */

void kv_b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t kv_b64_decode(const char *in, uint8_t *out, size_t max)
{
	size_t n = strlen(in), o = 0;
	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' ? -2 : b64_value(in[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] == -1 || v[3] == -1 ||
		    ((v[2] == -2 || v[3] == -2) && i + 4 != n) || (v[2] == -2 && v[3] != -2))
			return -1;
		uint32_t x =
		    v[0] << 18 | v[1] << 12 | (v[2] < 0 ? 0 : v[2]) << 6 | (v[3] < 0 ? 0 : v[3]);
		size_t k = v[2] < 0 ? 1 : v[3] < 0 ? 2 : 3;
		if (o + k > max)
			return -1;
		out[o++] = x >> 16;
		if (k > 1)
			out[o++] = x >> 8;
		if (k > 2)
			out[o++] = x;
	}
	return o;
}
