/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun: the runc-compatible CLI. Everything is in libruntime.a. */
#include "runtime/runtime.h"

int main(int argc, char **argv)
{
	return kvrun_main(argc, argv);
}
