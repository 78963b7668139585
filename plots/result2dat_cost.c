/* result2dat_cost.c — the cost chart's data (cost-N.dat) for result2dat:
 * the bands a request's CPU is drawn in, their microseconds per request at
 * each point, and the chart's y axis (fitted to the loaded levels, taller
 * bars cut and labelled). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "result2dat.h"

/* The bands of the cost chart, bottom to top: where a request's CPU goes.
 * Each is a figure of the result in CPU seconds per wall second (1.0 = one
 * core), drawn as microseconds per request (figure / req/s). A band with a
 * `whole` is a part of that figure: it is drawn as its share of the whole
 * (the parts, user and system clock ticks, are a sample; the whole, the
 * scheduler's nanoseconds, is exact), where the point has every part; the
 * whole's own band holds what its parts do not (all of it where the point
 * has no split: a v1 file, or a window with too few clock ticks). A band no
 * point has is left out of the chart. scripts/export's COST_FIELDS lists the
 * exports' fields. */
const struct cost_field COST_FIELDS[NCOST] = {
    {"server_cpu_user", "server, user", "server_cpu"},
    {"server_cpu_sys", "server, system", "server_cpu"},
    {"server_cpu", "server (unsplit)", NULL},
    {"upstream_cpu", "upstream stub", NULL},
    {"loadgen_cpu", "load generator", NULL},
};

/* Every bar fits within FIT_SLACK of the loaded ones (FIT_IN_FLIGHT in
 * result2dat.h): then nothing is cut. */
#define FIT_SLACK 1.25
/* headroom above the highest bar the axis fits */
#define FIT_HEADROOM 1.08

/* Microseconds of figure key per request in one set of figures. */
static bool cost_us(const json_t *fig, const char *key, double *us)
{
	double cpu, rps;
	if (!figure(fig, key, &cpu) || !figure(fig, "rps", &rps) || rps <= 0)
		return false;
	*us = cpu / rps * 1e6;
	return isfinite(*us); /* a figure gnuplot and meta.gp can hold */
}

/* Whether every part of whole is a number in fig, and their sum. */
static bool parts_of(const json_t *fig, const char *whole, double *sum)
{
	bool any = false;
	*sum = 0;
	for (size_t k = 0; k < NCOST; k++) {
		double v;
		if (!COST_FIELDS[k].whole || strcmp(COST_FIELDS[k].whole, whole) != 0)
			continue;
		if (!figure(fig, COST_FIELDS[k].key, &v))
			return false;
		*sum += v;
		any = true;
	}
	return any;
}

/* Microseconds per request of the cost band whose key is key (COST_FIELDS),
 * in one set of figures: false where the figure it comes from is missing. */
static bool band_us(const json_t *fig, const char *key, double *us)
{
	size_t k = 0;
	while (k < NCOST && strcmp(COST_FIELDS[k].key, key) != 0)
		k++;
	if (k == NCOST)
		return false;
	const char *whole = COST_FIELDS[k].whole;
	double parts;
	if (whole) { /* a part: its share of the whole, where the point has them all */
		double w, part;
		if (!cost_us(fig, whole, &w) || !parts_of(fig, whole, &parts))
			return false;
		*us = parts > 0 && figure(fig, key, &part) ? w * part / parts : 0;
		return isfinite(*us);
	}
	if (!cost_us(fig, key, us))
		return false;
	if (parts_of(fig, key, &parts)) /* the parts hold it all */
		*us = 0;
	return true;
}

/* The sum of the present bands in one set of figures: false when none. */
static bool total_us(const json_t *fig, const bool present[NCOST], double *us)
{
	bool any = false;
	*us = 0;
	for (size_t k = 0; k < NCOST; k++) {
		double v;
		if (present[k] && band_us(fig, COST_FIELDS[k].key, &v)) {
			*us += v;
			any = true;
		}
	}
	return any && isfinite(*us);
}

/* Which cost bands hold CPU at some measured point of some series. */
size_t cost_fields_present(const json_t *series, bool present[NCOST])
{
	size_t n = 0, i, j;
	json_t *s, *pt;
	for (size_t k = 0; k < NCOST; k++) {
		present[k] = false;
		json_array_foreach(series, i, s)
		{
			json_array_foreach(json_object_get(s, "points"), j, pt)
			{
				double us;
				if (band_us(json_object_get(pt, "median"), COST_FIELDS[k].key,
				            &us) &&
				    us > 0)
					present[k] = true;
			}
		}
		n += present[k];
	}
	return n;
}

/* The total of a point's median and its min and max over the repetitions'
 * own totals: false where the point has no cost figures. */
static bool point_total(const json_t *pt, const bool present[NCOST], double *total, double *lo,
                        double *hi)
{
	double rps, t;
	const json_t *med = json_object_get(pt, "median");
	if (!figure(med, "rps", &rps) || !total_us(med, present, total))
		return false;
	*lo = *hi = *total;
	size_t r;
	json_t *rep;
	json_array_foreach(json_object_get(pt, "repetitions"), r, rep)
	{
		if (!total_us(rep, present, &t))
			continue;
		if (t < *lo)
			*lo = t;
		if (t > *hi)
			*hi = t;
	}
	return true;
}

/* The top of the cost chart's y axis (FIT_IN_FLIGHT): fit to the points with
 * at least that many requests in flight, per = in_flight per unit of level, 0
 * in a rate sweep (where the levels are rates: every point is fitted). */
double cost_axis_top(const json_t *series, const bool present[NCOST], double per)
{
	double all = 0, loaded = 0, total, lo, hi;
	size_t i, j;
	json_t *s, *pt;
	json_array_foreach(series, i, s)
	{
		json_array_foreach(json_object_get(s, "points"), j, pt)
		{
			bool ok;
			double level = num(json_object_get(pt, "level"), &ok);
			if (!ok || !point_total(pt, present, &total, &lo, &hi))
				continue;
			if (hi > all)
				all = hi;
			if ((per <= 0 || level * per >= FIT_IN_FLIGHT) && hi > loaded)
				loaded = hi;
		}
	}
	if (all <= 0)
		return 1;
	if (loaded <= 0 || all <= loaded * FIT_SLACK)
		return all * FIT_HEADROOM;
	return loaded * FIT_HEADROOM;
}

/* Writes cost-N.dat; *has_rows tells whether a level had cost figures, and
 * *max grows to the highest stack (or repetition's total) drawn. A bar whose
 * total passes ytop (the axis top) is cut there: *clipped counts them. */
int write_cost(const char *dir, size_t n, const json_t *series, const bool present[NCOST],
               double ytop, bool *has_rows, double *max, size_t *clipped)
{
	char path[4096];
	FILE *f = open_dat(path, dir, "cost", n);
	*has_rows = false;
	if (!f)
		return -1;
	fputs("# level", f);
	for (size_t k = 0; k < NCOST; k++)
		if (present[k])
			fprintf(f, " %s_us %s_us_min %s_us_max", COST_FIELDS[k].key,
			        COST_FIELDS[k].key, COST_FIELDS[k].key);
	for (size_t k = 0; k < NCOST; k++)
		if (present[k])
			fprintf(f, " %s_top", COST_FIELDS[k].key);
	fputs(" total_us total_us_min total_us_max clipped_us clipped_label"
	      "   (microseconds per request)\n",
	      f);
	size_t i, nfields = 0;
	for (size_t k = 0; k < NCOST; k++)
		nfields += present[k];
	if (nfields == 0) /* no cost figures: no rows, and scripts/plot draws no cost chart */
		return close_dat(f, path);
	json_t *pt;
	json_array_foreach(json_object_get(series, "points"), i, pt)
	{
		bool ok;
		double level = num(json_object_get(pt, "level"), &ok);
		const json_t *med = json_object_get(pt, "median");
		const json_t *reps = json_object_get(pt, "repetitions");
		double total, lo, hi;
		if (!ok || !point_total(pt, present, &total, &lo, &hi)) {
			fputs("\n", f); /* a gap, as in series-N.dat */
			continue;
		}
		*has_rows = true;
		fprintf(f, "%.6g", level);
		double tops[NCOST], top = 0;
		for (size_t k = 0; k < NCOST; k++) {
			if (!present[k])
				continue;
			double m, blo = 0, bhi = 0;
			if (band_us(med, COST_FIELDS[k].key, &m)) {
				fprintf(f, " %.6g", m);
				top += m;
			} else {
				fputs(" NaN", f); /* not measured here: nothing stacked */
			}
			tops[k] = top;
			if (rep_range(reps, COST_FIELDS[k].key, band_us, &blo, &bhi))
				fprintf(f, " %.6g %.6g", blo, bhi);
			else
				fputs(" NaN NaN", f);
		}
		for (size_t k = 0; k < NCOST; k++)
			if (present[k])
				fprintf(f, " %.6g", tops[k]);
		fprintf(f, " %.6g %.6g %.6g", total, lo, hi);
		/* a bar past the axis top: its total, and that total as the label
		 * drawn where the bar is cut */
		if (total > ytop) {
			char g[32];
			fprintf(f, " %.6g \"%s\"\n", total, grouped(total, g, sizeof g));
			++*clipped;
		} else {
			fputs(" NaN \"\"\n", f);
		}
		if (hi > *max)
			*max = hi;
	}
	return close_dat(f, path);
}
