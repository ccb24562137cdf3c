/* SPDX-License-Identifier: Apache-2.0 */
/* Facts about other processes, read from /proc. */
#include "kv.h"

#include <string.h>

int kv_pid_start_time(pid_t pid, uint64_t *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	cleanup_free char *text = NULL;
	if (kv_read_file(path, 4096, &text, NULL, NULL) < 0)
		return -1;
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	char *p = strrchr(text, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	char state = *p;
	/* starttime is field 22; the state is field 3. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	if (state == 'Z' || state == 'X')
		return -1;
	*out = strtoull(p, NULL, 10);
	return 0;
}
