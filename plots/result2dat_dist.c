/* result2dat_dist.c — the latency distribution files of result2dat
 * (OUTDIR/dist-N.dat, see result2dat.c's header): each repetition's
 * histogram read, and the median over the repetitions at each percentile.
 * Split from result2dat.c to keep that file under the size limit. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "result2dat.h"

/* The distribution chart's x axis: DIST_STEPS points from 1/(1-p) = 1
 * (p = 0) to the sample count of the smallest repetition, evenly on its
 * log scale (the last is that repetition's maximum). */
#define DIST_STEPS 240
#define MAX_REPS 100

/* One repetition's histogram: its buckets, their total. */
struct rep_hist {
	const json_t *buckets;
	double total;
};

/* The histogram object h ({unit, buckets}) as a rep_hist; false when it
 * holds no sample. */
static bool rep_hist_of(const json_t *h, struct rep_hist *out)
{
	size_t i;
	json_t *b;
	out->buckets = json_object_get(h, "buckets");
	out->total = 0;
	json_array_foreach(out->buckets, i, b)
	{
		bool ok;
		double c = num(json_array_get(b, 1), &ok);
		if (ok && c > 0)
			out->total += c;
	}
	return out->total > 0;
}

/* The nearest-rank value (ms, the bucket's upper bound) at percentile
 * frac (0..1) of one histogram; frac >= 1 is its maximum. */
static double rep_quantile(const struct rep_hist *h, double frac)
{
	double rank = ceil(frac * h->total - 1e-9), cum = 0, last = 0;
	if (rank < 1)
		rank = 1;
	size_t i;
	json_t *b;
	json_array_foreach(h->buckets, i, b)
	{
		bool ok1, ok2;
		double upper = num(json_array_get(b, 0), &ok1);
		double c = num(json_array_get(b, 1), &ok2);
		if (!ok1 || !ok2 || c <= 0)
			continue;
		cum += c;
		last = upper / 1000.0;
		if (cum >= rank)
			return last;
	}
	return last;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts it); n > 0. */
static double median_of(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The repetitions' histograms of a point under key (an array, one per
 * repetition), or its one merged histogram (results from before issue 15)
 * under fallback; how many were found. */
static size_t point_hists(const json_t *pt, const char *key, const char *fallback,
                          struct rep_hist *out)
{
	size_t n = 0, i;
	json_t *h;
	json_array_foreach(json_object_get(pt, key), i, h)
	{
		if (n < MAX_REPS && rep_hist_of(h, &out[n]))
			n++;
	}
	if (n == 0 && fallback && rep_hist_of(json_object_get(pt, fallback), &out[0]))
		n = 1;
	return n;
}

/* Writes dist-N.dat: the latency distribution of series n at the chosen
 * level by the run's one rule (results/SCHEMA.md, "Aggregation"): at each
 * percentile the median over the repetitions of that percentile, from each
 * repetition's histogram (the merged one of an older result). Column 4 is
 * the same of the uncorrected histograms of a rate sweep (NaN otherwise).
 * Returns 1 when a distribution was written, 0 when the level has no data. */
int write_dist(const char *dir, size_t n, const json_t *series, long long level)
{
	const json_t *points = json_object_get(series, "points");
	const json_t *at = NULL;
	size_t i;
	json_t *pt;
	json_array_foreach(points, i, pt)
	{
		if (json_integer_value(json_object_get(pt, "level")) == level)
			at = pt;
	}
	static struct rep_hist cor[MAX_REPS], unc[MAX_REPS];
	size_t nc = at ? point_hists(at, "histograms", "histogram", cor) : 0;
	size_t nu = at ? point_hists(at, "histograms_uncorrected", NULL, unc) : 0;
	char path[4096];
	FILE *f = open_dat(path, dir, "dist", n);
	if (!f)
		return -1;
	if (nc == 0) { /* an empty file keeps gnuplot's "plot for" simple */
		fprintf(f, "# no data at level %lld\n", level);
		return close_dat(f, path);
	}
	double nmin = cor[0].total;
	for (size_t r = 1; r < nc; r++)
		if (cor[r].total < nmin)
			nmin = cor[r].total;
	fprintf(f,
	        "# percentile 1/(1-p) latency_ms uncorrected_ms   (level %lld, median over %zu "
	        "repetition%s of %.0f samples or more)\n",
	        level, nc, nc == 1 ? "" : "s", nmin);
	double v[MAX_REPS];
	int steps = nmin > 1 ? DIST_STEPS : 1;
	for (int k = 0; k < steps; k++) {
		/* x = nmin^(k/(steps-1)), frac = 1 - 1/x; the last row is the maximum */
		double x = steps > 1 ? pow(nmin, (double)k / (steps - 1)) : 1;
		double frac = k == steps - 1 && steps > 1 ? 1 : 1 - 1 / x;
		for (size_t r = 0; r < nc; r++)
			v[r] = rep_quantile(&cor[r], frac);
		double lat = median_of(v, nc);
		double ulat = NAN;
		if (nu) {
			for (size_t r = 0; r < nu; r++)
				v[r] = rep_quantile(&unc[r], frac);
			ulat = median_of(v, nu);
		}
		fprintf(f, "%.6f %.6g %.6g", 100 * (1 - 1 / x), x, lat);
		if (isnan(ulat))
			fputs(" NaN\n", f);
		else
			fprintf(f, " %.6g\n", ulat);
	}
	return close_dat(f, path) == 0 ? 1 : -1;
}
