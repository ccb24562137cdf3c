/* SPDX-License-Identifier: Apache-2.0 */
/* test-init: VMs kept alive for snapshot, API and benchmark tests: serve, sleep, idle. */
#include "test-init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void serve_loop(int l)
{
	char buf[4096];
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			sleep(1);
			continue;
		}
		ssize_t r;
		while ((r = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, r) != r)
				break;
		close(c);
	}
}

void check_serve(void)
{
	int port = atoi(arg("serveport", "1236"));
	int l = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0) {
		result("serve", false, "listen %d: %s", port, strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		serve_loop(l);
	close(l);
	say("KVRUN-TEST-SERVING %d", port);
	result("serve", pid > 0, "port %d", port);
}

/* With kvrun.tickblk=1, each tick also shows /dev/vda's size in sectors
 * (a disk that grows under a restored VM: a capacity change). */
static void tick(int i)
{
	char size[32] = "";
	int fd = *arg("tickblk", "") ? open("/sys/block/vda/size", O_RDONLY) : -1;
	if (fd >= 0) {
		ssize_t n = read(fd, size, sizeof(size) - 1);
		size[n > 0 ? n : 0] = '\0';
		size[strcspn(size, "\n")] = '\0';
		close(fd);
	}
	if (*size)
		say("KVRUN-TEST-TICK %d vda=%s", i, size);
	else
		say("KVRUN-TEST-TICK %d", i);
}

void check_sleep(void)
{
	int secs = atoi(arg("sleep", "1000"));
	for (int i = 0; i < secs; i++) {
		tick(i);
		sleep(1);
	}
	result("sleep", true, "%d s", secs);
}

void check_idle(void)
{
	say("KVRUN-TEST-IDLE");
	for (;;)
		pause();
}
