/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for config.json (and the state.json reader, which shares
 * the parser). Invariants checked beyond "no crash, no leak": a config that
 * parses serializes to agent JSON that parses again.
 *   make fuzz && mkdir -p build/fuzz/corpus &&
 *   build/fuzz/fuzz_config -max_total_time=60 build/fuzz/corpus tests/fuzz/corpus/config
 */
#include "oci/oci.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The parsers take NUL-terminated text of a given length. */
	char *text = kv_malloc0(size + 1);
	memcpy(text, data, size);

	struct kv_err *err = NULL;
	struct oci_config *cfg = NULL;
	if (oci_config_parse(text, size, "config.json", &cfg, &err) == 0) {
		char *agent = NULL;
		if (oci_config_to_agent_string(cfg, &agent, &err) < 0)
			abort();
		struct oci_config *again = NULL;
		if (oci_config_parse(agent, strlen(agent), "agent", &again, &err) < 0) {
			fprintf(stderr, "agent JSON does not parse: %s\n%s\n", err->msg, agent);
			abort();
		}
		oci_config_free(again);
		free(agent);
	}
	oci_config_free(cfg);
	kv_err_free(err);
	err = NULL;

	struct oci_state *st = NULL;
	if (oci_state_parse(text, size, "state.json", &st, &err) == 0)
		oci_state_free(st);
	kv_err_free(err);
	free(text);
	return 0;
}
