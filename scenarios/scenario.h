/* scenario.h — one bench experiment, read from scenarios/NAME.json.
 *
 * A scenario says which servers to compare, with which app, against which
 * upstream, at which concurrency levels, for how long, pinned to which CPUs,
 * and what a correct answer looks like (scenarios/README.md is the format's
 * reference). This module parses such a file, checks every field, and turns
 * it into a normalized JSON document with every default filled in, so that the
 * runner (scripts/bench, via build/scenarios/scenario-check) never has to know
 * a default or re-check a field.
 *
 * Errors are values: every problem found becomes one line
 *     FILE: FIELD: what is wrong
 * where FIELD is a JSON path such as servers[1].app or cpus.loadgen. All
 * problems are reported, not just the first (up to a cap).
 */
#ifndef COROBENCH_SCENARIO_H
#define COROBENCH_SCENARIO_H

#include <jansson.h>
#include <stddef.h>

#define SCENARIO_SCHEMA "corobench/scenario/v1"
/* Files larger than this are refused before parsing. */
#define SCENARIO_MAX_BYTES (1024 * 1024)

struct scenario;

/* Read and check the file at path. On success returns the scenario and sets
 * *errors to NULL; on failure returns NULL and sets *errors to a malloc'd
 * text of one line per problem (the caller frees it). */
struct scenario *scenario_load(const char *path, char **errors);

/* The same from text already in memory (len bytes, no NUL needed); origin
 * names the source in messages. */
struct scenario *scenario_parse(const char *text, size_t len, const char *origin, char **errors);

/* The normalized scenario (borrowed: valid until scenario_free). */
const json_t *scenario_json(const struct scenario *s);

/* The scenario's name (borrowed). */
const char *scenario_name(const struct scenario *s);

void scenario_free(struct scenario *s);

#endif
