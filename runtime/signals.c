/* SPDX-License-Identifier: Apache-2.0 */
/* Signal names as `runc kill` takes them: a number (0 too: kill(2)'s
 * liveness check), or a name with or without "SIG", in any case; plus
 * RTMIN+n / RTMAX-n. */
#include "runtime/runtime.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	int sig;
} signals[] = {
    {"HUP", SIGHUP},	   {"INT", SIGINT},	{"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},	   {"ABRT", SIGABRT},	{"IOT", SIGIOT},   {"BUS", SIGBUS},
    {"FPE", SIGFPE},	   {"KILL", SIGKILL},	{"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},	   {"PIPE", SIGPIPE},	{"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},	{"CLD", SIGCHLD},  {"CONT", SIGCONT},
    {"STOP", SIGSTOP},	   {"TSTP", SIGTSTP},	{"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},	   {"XCPU", SIGXCPU},	{"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},	   {"WINCH", SIGWINCH}, {"IO", SIGIO},	   {"POLL", SIGPOLL},
    {"PWR", SIGPWR},	   {"SYS", SIGSYS},
};

static int parse_number(const char *s, int lo, int hi)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 3)
		return -1;
	int v = atoi(s);
	return v >= lo && v <= hi ? v : -1;
}

static int parse_rt(const char *name)
{
	if (strncasecmp(name, "RTMIN", 5) == 0) {
		if (!name[5])
			return SIGRTMIN;
		int n = name[5] == '+' ? parse_number(name + 6, 0, SIGRTMAX - SIGRTMIN) : -1;
		return n < 0 ? -1 : SIGRTMIN + n;
	}
	if (strncasecmp(name, "RTMAX", 5) == 0) {
		if (!name[5])
			return SIGRTMAX;
		int n = name[5] == '-' ? parse_number(name + 6, 0, SIGRTMAX - SIGRTMIN) : -1;
		return n < 0 ? -1 : SIGRTMAX - n;
	}
	return -1;
}

int signal_parse(const char *s)
{
	if (!s || !*s)
		return -1;
	if (isdigit((unsigned char)*s))
		return parse_number(s, 0, SIGRTMAX);
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < KV_ARRAY_SIZE(signals); i++)
		if (strcasecmp(signals[i].name, name) == 0)
			return signals[i].sig;
	return parse_rt(name);
}
