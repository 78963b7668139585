/* result2dat.h — what result2dat.c, result2dat_dist.c and result2dat_cost.c
 * share: the number and figure readers and the data files' opening and
 * closing (result2dat.c), the distribution file's writer
 * (result2dat_dist.c), and the cost chart's bands and writer
 * (result2dat_cost.c). */
#ifndef RESULT2DAT_H
#define RESULT2DAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* A JSON number as a double; *ok false (and 0) when v is not one. */
double num(const json_t *v, bool *ok);

/* A figure of a set of figures: false when it is not a number. */
typedef bool (*figure_fn)(const json_t *fig, const char *key, double *v);

/* The number fig[key], as figure_fn. */
bool figure(const json_t *fig, const char *key, double *v);

/* min, max and presence of a figure over a point's repetitions */
bool rep_range(const json_t *reps, const char *key, figure_fn get, double *lo, double *hi);

/* n rounded, with thousands separated by commas: "49,541". */
const char *grouped(double n, char *buf, size_t len);

/* Opens OUTDIR/KIND-N.dat for writing into path (4096 bytes, kept for
 * close_dat's message); NULL after saying why. */
FILE *open_dat(char *path, const char *dir, const char *kind, size_t n);

/* Closes a data file: 0, or -1 after saying that writing it failed. */
int close_dat(FILE *f, const char *path);

/* Writes dist-N.dat for series n at the given level: 1 when a distribution
 * was written, 0 when the level has no data, -1 on error. */
int write_dist(const char *dir, size_t n, const json_t *series, long long level);

/* The cost chart's bands, bottom to top (result2dat_cost.c says what each
 * is): a result figure's key, the band's title, and the figure it is a part
 * of (NULL for none). */
struct cost_field {
	const char *key, *title, *whole;
};
#define NCOST 5
extern const struct cost_field COST_FIELDS[NCOST];

/* The cost chart's y axis fits the bars of the points with at least
 * FIT_IN_FLIGHT requests in flight (level x in_flight, a concurrency or
 * streams sweep). Below that the server idles between requests and each one
 * pays the event loop's wake-ups alone: at c = 1 a bar is 3 to 10 times the
 * loaded ones and would squeeze them into a sliver. Such a bar is cut at the
 * axis top and labelled with its total (cost-N.dat's last two columns), unless
 * every bar fits within FIT_SLACK of the loaded ones (then nothing is cut). */
#define FIT_IN_FLIGHT 10

/* Which cost bands hold CPU at some measured point of some series; how many. */
size_t cost_fields_present(const json_t *series, bool present[NCOST]);

/* The top of the cost chart's y axis: fitted to the points with enough
 * requests in flight (per: in-flight requests per unit of level, 0 in a rate
 * sweep, where every point is fitted). */
double cost_axis_top(const json_t *series, const bool present[NCOST], double per);

/* Writes cost-N.dat; *has_rows tells whether a level had cost figures,
 * *max grows to the highest stack (or repetition's total) drawn, and a bar
 * whose total passes ytop is cut there (*clipped counts them). 0, or -1
 * after saying why. */
int write_cost(const char *dir, size_t n, const json_t *series, const bool present[NCOST],
               double ytop, bool *has_rows, double *max, size_t *clipped);

#endif
