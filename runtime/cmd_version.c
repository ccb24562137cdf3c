/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun version (also --version/-v): runc's lines. */
#include "runtime/runtime.h"

#include <seccomp.h>

KVRUN_CMD(version)
{
	const struct scmp_version *v = seccomp_version();
	printf("kvrun version %s\nspec: %s\nlibseccomp: %u.%u.%u\n", KVRUN_VERSION,
	       OCI_SPEC_VERSION, v->major, v->minor, v->micro);
	return fflush(stdout) == 0 ? 0 : 1;
}
