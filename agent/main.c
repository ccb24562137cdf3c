/* SPDX-License-Identifier: Apache-2.0 */
/* kvrun-agent: the guest's PID 1. The work is in the agent library. */
#include "agent/agent.h"

int main(int argc, char **argv)
{
	struct agent_config cfg;
	if (agent_parse_args(argc, argv, &cfg) < 0)
		return 2;
	return agent_run(&cfg);
}
