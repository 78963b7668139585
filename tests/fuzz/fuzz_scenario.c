/* fuzz_scenario.c — libFuzzer target for the scenario parser
 * (scenarios/scenario.h): any text must give either a scenario whose
 * normalized JSON serializes, or an error text, never both, never neither,
 * never a crash or a leak. */
#include "scenario.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > SCENARIO_MAX_BYTES)
		return 0;
	char *errors = NULL;
	struct scenario *s = scenario_parse((const char *)data, size, "fuzz", &errors);
	if (s) {
		if (errors)
			abort();
		const json_t *doc = scenario_json(s);
		const char *name = scenario_name(s);
		if (!doc || !name)
			abort();
		char *text = json_dumps(doc, JSON_COMPACT);
		if (!text)
			abort();
		free(text);
		scenario_free(s);
	} else {
		if (!errors || !*errors)
			abort();
		free(errors);
	}
	return 0;
}
