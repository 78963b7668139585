/* scenario-check — validate scenario files and print the normalized form.
 *
 *   scenario-check FILE        check FILE; print it normalized (JSON) on stdout
 *   scenario-check -q FILE...  only check; nothing on stdout
 *
 * Exit 0 when valid, 1 when a file is wrong (one line per problem on stderr:
 * FILE: FIELD: what is wrong), 2 on a usage error. scripts/bench reads the
 * normalized JSON, so it never needs to know a default.
 */
#include "scenario.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fputs("usage: scenario-check FILE          check FILE, print it normalized as JSON\n"
	      "       scenario-check -q FILE...    only check the files\n",
	      f);
}

int main(int argc, char **argv)
{
	bool quiet = false;
	int first = 1;
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && (strcmp(argv[1], "-q") == 0 || strcmp(argv[1], "--quiet") == 0)) {
		quiet = true;
		first = 2;
	}
	if (first >= argc || (!quiet && argc - first != 1)) {
		usage(stderr);
		return 2;
	}
	int status = 0;
	for (int i = first; i < argc; i++) {
		char *errors = NULL;
		struct scenario *s = scenario_load(argv[i], &errors);
		if (!s) {
			fputs(errors, stderr);
			free(errors);
			status = 1;
			continue;
		}
		if (!quiet) {
			char *text =
			    json_dumps(scenario_json(s), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (!text) {
				fprintf(stderr, "scenario-check: out of memory\n");
				scenario_free(s);
				return 1;
			}
			puts(text);
			free(text);
		}
		scenario_free(s);
	}
	return status;
}
