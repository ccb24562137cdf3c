/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PID 1 duties: the guest's basic mounts, time and RNG seeding from the
 * host, meminfo for stats, and a clean power-off. PID 1 never exits: an exit
 * is a kernel panic, so every failure here is logged or answered instead.
 */
#include "agent/internal.h"

#include <fcntl.h>
#include <linux/random.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>

int pid1_mount_basics(struct kv_err **err)
{
	static const struct {
		const char *src, *dir, *type;
		unsigned long flags;
		const char *data;
	} m[] = {
	    {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
	    {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
	    {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"},
	    {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"},
	    {"tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
	    {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"},
	    {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
	    {"cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
	};
	int first = 0;
	for (size_t i = 0; i < KV_ARRAY_SIZE(m); i++) {
		/* /dev/pts and /dev/shm live in the devtmpfs just mounted. */
		if (strncmp(m[i].dir, "/dev/", 5) == 0)
			(void)mkdir(m[i].dir, 0755);
		if (mount(m[i].src, m[i].dir, m[i].type, m[i].flags, m[i].data) < 0 &&
		    errno != EBUSY && !first)
			first = kv_err_make(err, errno, "mount %s on %s", m[i].type, m[i].dir);
	}
	return first;
}

/* A fresh VM's loopback is down; every pod expects localhost to work. */
int pid1_loopback_up(struct kv_err **err)
{
	cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kv_err_make(err, errno, "loopback: socket");
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return kv_err_make(err, errno, "loopback: get flags");
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return kv_err_make(err, errno, "loopback: set up");
	return 0;
}

int pid1_set_time(long long sec, long long nsec, struct kv_err **err)
{
	if (sec < 0 || nsec < 0 || nsec >= 1000000000)
		return kv_err_plain(err, EINVAL,
				    "set_time: want sec >= 0 and nsec in 0..999999999");
	struct timespec ts = {.tv_sec = sec, .tv_nsec = nsec};
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		return kv_err_make(err, errno, "set_time: clock_settime");
	return 0;
}

#define ENTROPY_MAX 512

int pid1_add_entropy(const char *b64, long long credit_bits, struct kv_err **err)
{
	struct {
		struct rand_pool_info info;
		uint8_t buf[ENTROPY_MAX];
	} req;
	ssize_t n = kv_b64_decode(b64, req.buf, sizeof(req.buf));
	if (n <= 0)
		return kv_err_plain(err, EINVAL, "add_entropy: data: want 1..%d bytes of base64",
				    ENTROPY_MAX);
	if (credit_bits < 0 || credit_bits > n * 8)
		credit_bits = n * 8;
	req.info.entropy_count = credit_bits;
	req.info.buf_size = n;
	cleanup_close int fd = open("/dev/random", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return kv_err_make(err, errno, "add_entropy: open /dev/random");
	if (ioctl(fd, RNDADDENTROPY, &req.info) < 0)
		return kv_err_make(err, errno, "add_entropy: RNDADDENTROPY");
	/* A fresh clone must not share its parent's RNG state: reseed now. */
	if (ioctl(fd, RNDRESEEDCRNG) < 0)
		return kv_err_make(err, errno, "add_entropy: RNDRESEEDCRNG");
	return 0;
}

void pid1_meminfo(struct kv_json *j)
{
	static const char *const keys[] = {"MemTotal", "MemFree", "MemAvailable",
					   "Buffers",  "Cached",  "Shmem"};
	char buf[4096];
	cleanup_close int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	kv_json_key(j, "meminfo");
	kv_json_map_open(j);
	if (n > 0) {
		buf[n] = '\0';
		for (size_t k = 0; k < KV_ARRAY_SIZE(keys); k++) {
			size_t len = strlen(keys[k]);
			for (char *s = buf; s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
				if (strncmp(s, keys[k], len) == 0 && s[len] == ':') {
					kv_json_key(j, keys[k]);
					kv_json_uint(j, strtoull(s + len + 1, NULL, 10) * 1024);
					break;
				}
		}
	}
	kv_json_map_close(j);
}

void pid1_poweroff(struct agent *a)
{
	kv_info("powering off");
	sync();
	if (getpid() == 1) {
		for (;;) {
			reboot(RB_POWER_OFF);
			/* Still here: nothing else to do but not exit. */
			pause();
		}
	}
}
