/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-run: run one VMM, time it and measure it the same way for every
 * VMM. Usage: bench-run MARKER MEMBYTES PRELOAD [GUESTMAP...] -- cmd args...
 * PRELOAD (the probe) goes into the VMM's LD_PRELOAD only, not ours.
 * Guest RAM, left out of rss/pss: any mapping of MEMBYTES or more (one RAM
 * block), and mappings whose path contains a GUESTMAP string (guest RAM that
 * a VMM maps in pieces: a memfd, the kernel and initrd mapped into it).
 * The command's stdout must carry the guest console. Prints, one per line:
 *   exec_ns        CLOCK_MONOTONIC just before execve (compare with the
 *                  probe's first_run_ns)
 *   marker_ns      when MARKER appeared on the console (0 if never)
 *   exit_ns, status
 *   rss_kb, pss_kb the VMM's memory when the marker appeared, mappings of
 *                  MEMBYTES or more (guest RAM) excluded
 *   rss_all_kb     everything, guest RAM included
 *   guest_uptime_ms the guest's uptime printed on the marker line, if any
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static char **guestmaps;
static int nguestmaps;

static int smaps_is_guest(const char *line, unsigned long long size, unsigned long long min_size)
{
	if (size >= min_size)
		return 1;
	for (int i = 0; i < nguestmaps; i++)
		if (strstr(line, guestmaps[i]))
			return 1;
	return 0;
}

/* Sum Rss/Pss over /proc/pid/smaps, leaving out guest RAM. */
static void smaps_sum(pid_t pid, unsigned long long min_size, unsigned long long *rss,
		      unsigned long long *pss, unsigned long long *rss_all)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "r");
	*rss = *pss = *rss_all = 0;
	if (!f)
		return;
	int guest = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b, v;
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			guest = smaps_is_guest(line, b - a, min_size);
			continue;
		}
		if (sscanf(line, "Rss: %llu kB", &v) == 1) {
			*rss_all += v;
			if (!guest)
				*rss += v;
		} else if (sscanf(line, "Pss: %llu kB", &v) == 1 && !guest) {
			*pss += v;
		}
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	int dd = 4;
	while (dd < argc && strcmp(argv[dd], "--") != 0)
		dd++;
	if (dd + 1 >= argc) {
		fprintf(stderr,
			"usage: bench-run MARKER MEMBYTES PRELOAD [GUESTMAP...] -- cmd...\n");
		return 2;
	}
	const char *preload = argv[3];
	guestmaps = argv + 4;
	nguestmaps = dd - 4;
	const char *marker = argv[1];
	unsigned long long mem = strtoull(argv[2], NULL, 0);
	int p[2];
	if (pipe(p) < 0)
		return 2;
	unsigned long long t_exec = now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		setenv("LD_PRELOAD", preload, 1);
		execvp(argv[dd + 1], argv + dd + 1);
		_exit(127);
	}
	close(p[1]);
	FILE *in = fdopen(p[0], "r");
	char line[4096];
	unsigned long long t_marker = 0, rss = 0, pss = 0, rss_all = 0;
	double uptime = 0;
	while (fgets(line, sizeof(line), in)) {
		if (!t_marker && strstr(line, marker)) {
			t_marker = now_ns();
			smaps_sum(pid, mem, &rss, &pss, &rss_all);
			/* The test init prints the guest's uptime: the guest's share. */
			const char *u = strstr(line, "uptime=");
			if (u)
				uptime = atof(u + 7);
		}
	}
	int st;
	waitpid(pid, &st, 0);
	unsigned long long t_exit = now_ns();
	printf("exec_ns %llu\nmarker_ns %llu\nexit_ns %llu\nstatus %d\n", t_exec, t_marker, t_exit,
	       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	printf("rss_kb %llu\npss_kb %llu\nrss_all_kb %llu\n", rss, pss, rss_all);
	printf("guest_uptime_ms %.0f\n", uptime * 1000);
	return 0;
}
