/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-shim: one host process per guest process. The work is in libshim. */
#include "shim/shim.h"

int main(int argc, char **argv)
{
	return shim_main(argc, argv);
}
