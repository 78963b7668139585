/* result2dat — turn a corobench/result/v2 (or v1) JSON file into gnuplot data
 * files.
 *
 *   result2dat RESULT.json OUTDIR
 *
 * writes, for the gnuplot scripts in plots/:
 *   OUTDIR/series-N.dat  one line per concurrency level of series N (1-based):
 *       1 level  2-4 req/s median,min,max  5-7 mean ms median,min,max
 *       8-10 longest ms median,min,max  11 p50  12 p90  13 p99  14 p99.9 (medians, ms)
 *       15 server CPU  16 loadgen CPU (fractions of one core)  17 failed (median)
 *     min and max run over the repetitions, for the error bars; a level with no
 *     data (a crash, a refused server) is a blank line, so the curve shows a gap.
 *   OUTDIR/dist-N.dat    the latency distribution of series N at the chosen level,
 *       from the histogram merged over repetitions:
 *       1 percentile  2 1/(1-percentile/100)  3 latency ms
 *   OUTDIR/cost-N.dat    CPU per request of series N, one line per level, in
 *       microseconds per request: 1 level; then for each band of COST_FIELDS
 *       that the result holds (meta.gp: ncost, cost_title[j]) three columns,
 *       median, min, max; then each band's top in the stack (the sum of the
 *       medians up to it, ncost columns); then the stack's total: median, min,
 *       max (min and max over the repetitions' own totals and the median);
 *       then, where the total passes the chart's y axis (cost_ytop,
 *       FIT_IN_FLIGHT), the total again and, quoted, its label ("1,307"), else
 *       NaN and "". The median is the median figure over the median req/s (as
 *       scripts/compare computes it); min and max are the extremes of the
 *       repetitions' own ratios. A level without data is a blank line.
 *   OUTDIR/meta.gp       gnuplot variables: the titles (title[N] with the style
 *       and runtime, shorttitle[N] with the style only), the upstream delay (for
 *       Little's bound), the level of the distribution chart, axis ranges, the
 *       cost bands (ncost, cost_title[j]), the highest cost (cost_max), the
 *       cost chart's y axis top (cost_ytop), how many bars it cuts
 *       (cost_clipped) and the requests in flight it fits (fit_in_flight), which
 *       series have cost rows (hascost[N]) and their instructions per request
 *       (icount[N], "" when not counted), and each series' line style
 *       (lstyle[N], common.gp's numbers): where a result labels its series
 *       implicit or explicit, a colour family per style, so that a chart groups
 *       the rows by how they wait.
 *
 * gnuplot cannot read JSON, and hand-copied numbers drift from the truth; this
 * small program is the one path data takes from a result to a chart.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "result2dat.h"

#define MAX_SERIES 64

double num(const json_t *v, bool *ok)
{
	if (json_is_number(v)) {
		*ok = true;
		return json_number_value(v);
	}
	*ok = false;
	return 0;
}

/* A string safe inside a gnuplot double-quoted string (the charts use
 * noenhanced text, so only quotes and backslashes matter). */
static void gp_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fputc('\\', f);
		if (c < 0x20)
			c = ' ';
		fputc(c, f);
	}
	fputc('"', f);
}

bool figure(const json_t *fig, const char *key, double *v)
{
	bool ok;
	*v = num(json_object_get(fig, key), &ok);
	return ok;
}

bool rep_range(const json_t *reps, const char *key, figure_fn get, double *lo, double *hi)
{
	size_t i;
	json_t *r;
	bool any = false;
	json_array_foreach(reps, i, r)
	{
		double v;
		if (!get(r, key, &v))
			continue;
		if (!any || v < *lo)
			*lo = v;
		if (!any || v > *hi)
			*hi = v;
		any = true;
	}
	return any;
}

static void put(FILE *f, const json_t *med, const char *key)
{
	bool ok;
	double v = num(json_object_get(med, key), &ok);
	if (ok)
		fprintf(f, " %.6g", v);
	else
		fputs(" NaN", f);
}

/* n rounded, with thousands separated by commas: "49,541". */
const char *grouped(double n, char *buf, size_t len)
{
	char digits[32];
	int nd = snprintf(digits, sizeof(digits), "%.0f", n);
	size_t o = 0;
	for (int d = 0; d < nd && o + 2 < len; d++) {
		if (d > 0 && (nd - d) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[d];
	}
	buf[o] = '\0';
	return buf;
}

/* Line styles of common.gp: a colour family (and point fill) per style of
 * waiting, the old palette for results without styles. */
#define LS_PLAIN 1     /* 1..8, in order */
#define LS_IMPLICIT 11 /* 11..16: blues and greens, filled points */
#define LS_EXPLICIT 21 /* 21..26: reds and oranges, open points */
#define LS_NONE 31     /* 31..34: purple, brown, grey, olive */

static int line_style(const char *style, bool styled, size_t i, unsigned counts[3])
{
	if (!styled)
		return LS_PLAIN + (int)(i % 8);
	if (style && strcmp(style, "implicit") == 0)
		return LS_IMPLICIT + (int)(counts[0]++ % 6);
	if (style && strcmp(style, "explicit") == 0)
		return LS_EXPLICIT + (int)(counts[1]++ % 6);
	return LS_NONE + (int)(counts[2]++ % 4);
}

/* Opens OUTDIR/KIND-N.dat for writing into path (4096 bytes, kept for
 * close_dat's message); NULL after saying why. */
FILE *open_dat(char *path, const char *dir, const char *kind, size_t n)
{
	snprintf(path, 4096, "%s/%s-%zu.dat", dir, kind, n);
	FILE *f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "result2dat: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

/* Closes a data file: 0, or -1 after saying that writing it failed. */
int close_dat(FILE *f, const char *path)
{
	if (fclose(f) != 0) {
		fprintf(stderr, "result2dat: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

static int write_series(const char *dir, size_t n, const json_t *series, double *rps_max)
{
	char path[4096];
	FILE *f = open_dat(path, dir, "series", n);
	if (!f)
		return -1;
	fprintf(f, "# level rps rps_min rps_max mean mean_min mean_max max max_min max_max "
	           "p50 p90 p99 p999 server_cpu loadgen_cpu failed target_rps p50_uncorrected "
	           "p99_uncorrected p999_uncorrected rate_kept\n");
	const json_t *points = json_object_get(series, "points");
	size_t i;
	json_t *pt;
	json_array_foreach(points, i, pt)
	{
		bool ok;
		double level = num(json_object_get(pt, "level"), &ok);
		const json_t *med = json_object_get(pt, "median");
		const json_t *reps = json_object_get(pt, "repetitions");
		if (!ok || !json_is_object(med) || !json_is_array(reps)) {
			fputs("\n", f); /* a gap: gnuplot breaks the line here */
			continue;
		}
		double m = num(json_object_get(med, "rps"), &ok);
		if (!ok) {
			fputs("\n", f);
			continue;
		}
		fprintf(f, "%.6g %.6g", level, m);
		static const char *const ranged[] = {"rps", "mean_ms", "max_ms"};
		for (size_t k = 0; k < 3; k++) {
			double lo = 0, hi = 0;
			if (k > 0)
				put(f, med, ranged[k]);
			if (rep_range(reps, ranged[k], figure, &lo, &hi)) {
				fprintf(f, " %.6g %.6g", lo, hi);
				if (k == 0 && hi > *rps_max)
					*rps_max = hi;
			} else {
				fputs(" NaN NaN", f);
			}
		}
		put(f, med, "p50_ms");
		put(f, med, "p90_ms");
		put(f, med, "p99_ms");
		put(f, med, "p999_ms");
		put(f, med, "server_cpu");
		put(f, med, "loadgen_cpu");
		put(f, med, "failed");
		/* the open model (rate sweeps; NaN otherwise) */
		put(f, med, "target_rps");
		put(f, med, "p50_uncorrected_ms");
		put(f, med, "p99_uncorrected_ms");
		put(f, med, "p999_uncorrected_ms");
		const json_t *kept = json_object_get(med, "rate_kept");
		fputs(json_is_boolean(kept) ? (json_is_true(kept) ? " 1" : " 0") : " NaN", f);
		fputc('\n', f);
	}
	return close_dat(f, path);
}

/* Writes knee-N.dat: the series' knee (rate sweeps, results/SCHEMA.md) as
 * one row, achieved req/s, p99 ms and its label; nothing when there is
 * none. *limit is the p99 the knee's rule allowed (NaN when none). */
static int write_knee(const char *dir, size_t n, const json_t *series, double *limit)
{
	char path[4096];
	FILE *f = open_dat(path, dir, "knee", n);
	*limit = NAN;
	if (!f)
		return -1;
	fputs("# rps p99_ms label\n", f);
	const json_t *k = json_object_get(series, "knee");
	bool ok1, ok2, ok3, ok4;
	double base = num(json_object_get(k, "unloaded_p99_ms"), &ok1);
	double factor = num(json_object_get(k, "factor"), &ok2);
	if (ok1 && ok2)
		*limit = base * factor;
	double rate = num(json_object_get(k, "rate"), &ok1);
	double rps = num(json_object_get(k, "rps"), &ok2);
	double p99 = num(json_object_get(k, "p99_ms"), &ok3);
	if (ok1 && ok2 && ok3 && rps > 0 && p99 > 0) {
		double lo = num(json_object_get(k, "min"), &ok3);
		double hi = num(json_object_get(k, "max"), &ok4);
		char g1[32], g2[32], g3[32], spread[80] = "", label[200];
		const char *srv = json_string_value(json_object_get(series, "server"));
		if (ok3 && ok4 && lo != hi)
			snprintf(spread, sizeof spread, " (%s-%s)", grouped(lo, g2, sizeof g2),
			         grouped(hi, g3, sizeof g3));
		snprintf(label, sizeof label, "%s: knee %s%s%s", srv ? srv : "?",
		         grouped(rate, g1, sizeof g1), spread,
		         json_is_false(json_object_get(k, "beyond")) ? "+" : "");
		fprintf(f, "%.6g %.6g ", rps, p99);
		gp_string(f, label);
		fputc('\n', f);
	}
	return close_dat(f, path);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fputs("usage: result2dat RESULT.json OUTDIR\n", stderr);
		return 2;
	}
	json_error_t err;
	json_t *root = json_load_file(argv[1], 0, &err);
	if (!root) {
		fprintf(stderr, "result2dat: %s:%d:%d: %s\n", argv[1], err.line, err.column,
		        err.text);
		return 1;
	}
	const char *schema = json_string_value(json_object_get(root, "schema"));
	if (!schema || (strcmp(schema, "corobench/result/v1") != 0 &&
	                strcmp(schema, "corobench/result/v2") != 0)) {
		fprintf(stderr, "result2dat: %s: schema: not a corobench/result/v2 (or v1) file\n",
		        argv[1]);
		json_decref(root);
		return 1;
	}
	const json_t *series = json_object_get(root, "series");
	if (!json_is_array(series) || json_array_size(series) == 0 ||
	    json_array_size(series) > MAX_SERIES) {
		fprintf(stderr, "result2dat: %s: series: missing, empty or too many\n", argv[1]);
		json_decref(root);
		return 1;
	}
	const json_t *scdoc = json_object_get(root, "scenario_doc");
	long long plot_level = json_integer_value(json_object_get(scdoc, "plot_level"));
	const json_t *levels = json_object_get(root, "levels");
	if (plot_level <= 0 && json_array_size(levels) > 0)
		plot_level =
		    json_integer_value(json_array_get(levels, json_array_size(levels) - 1));
	double xmin = 0, xmax = 0, prev = 0, ratio_min = 0;
	size_t i;
	json_t *v;
	json_array_foreach(levels, i, v)
	{
		double l = (double)json_integer_value(v);
		if (l <= 0)
			continue;
		/* the closest two levels: how wide a bar at a level may be */
		if (prev > 0 && l > prev && (ratio_min == 0 || l / prev < ratio_min))
			ratio_min = l / prev;
		prev = l;
		if (xmin == 0 || l < xmin)
			xmin = l;
		if (l > xmax)
			xmax = l;
	}
	if (xmin <= 0) {
		xmin = 1;
		xmax = 10;
	}

	double rps_max = 0, cost_max = 0;
	int has_dist[MAX_SERIES] = {0};
	double knee_limit[MAX_SERIES];
	const char *sweep = json_string_value(json_object_get(root, "sweep"));
	bool rate_sweep = sweep && strcmp(sweep, "rate") == 0;
	/* What the levels count: connections, or (scenario "sweep": "streams")
	 * HTTP/2 streams per connection over a fixed number of connections.
	 * in_flight is the requests in flight per unit of level, for Little's
	 * bound and the cost chart's axis: the connections in a streams sweep,
	 * the streams per connection in an h2 connections sweep, else 1. */
	long long fixed_conns = json_integer_value(json_object_get(root, "connections"));
	long long fixed_streams = json_integer_value(json_object_get(scdoc, "streams"));
	bool streams_sweep =
	    !rate_sweep && sweep && strcmp(sweep, "streams") == 0 && fixed_conns > 0;
	double in_flight = 1; /* a rate sweep: levels are rates */
	if (streams_sweep)
		in_flight = (double)fixed_conns;
	else if (!rate_sweep && fixed_streams > 1)
		in_flight = (double)fixed_streams;
	bool has_cost[MAX_SERIES] = {false};
	bool cost_present[NCOST];
	size_t ncost = cost_fields_present(series, cost_present), nclipped = 0;
	/* a rate sweep's levels are rates, not requests in flight: all fitted */
	double cost_ytop = cost_axis_top(series, cost_present, rate_sweep ? 0 : in_flight);
	json_array_foreach(series, i, v)
	{
		if (write_series(argv[2], i + 1, v, &rps_max) != 0)
			goto fail;
		if (write_cost(argv[2], i + 1, v, cost_present, cost_ytop, &has_cost[i], &cost_max,
		               &nclipped) != 0)
			goto fail;
		int d = write_dist(argv[2], i + 1, v, plot_level);
		if (d < 0)
			goto fail;
		has_dist[i] = d;
		knee_limit[i] = NAN;
		if (rate_sweep && write_knee(argv[2], i + 1, v, &knee_limit[i]) != 0)
			goto fail;
	}

	char path[4096];
	snprintf(path, sizeof(path), "%s/meta.gp", argv[2]);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "result2dat: cannot write %s: %s\n", path, strerror(errno));
		goto fail;
	}
	size_t ns = json_array_size(series);
	fprintf(f,
	        "# written by result2dat from %s\nnseries = %zu\narray title[%zu]\n"
	        "array hasdist[%zu]\narray lstyle[%zu]\narray shorttitle[%zu]\n"
	        "array hascost[%zu]\narray icount[%zu]\narray knee_limit[%zu]\n",
	        argv[1], ns, ns, ns, ns, ns, ns, ns, ns);
	/* styles (implicit / explicit) came with the successors' rows; a result
	 * from before them keeps the plain palette */
	bool styled = false;
	json_array_foreach(series, i, v)
	{
		if (json_is_string(json_object_get(v, "style")))
			styled = true;
	}
	unsigned counts[3] = {0, 0, 0};
	json_array_foreach(series, i, v)
	{
		const char *srv = json_string_value(json_object_get(v, "server"));
		const char *app = json_string_value(json_object_get(v, "app"));
		const char *status = json_string_value(json_object_get(v, "status"));
		const char *style = json_string_value(json_object_get(v, "style"));
		const char *runtime = json_string_value(json_object_get(v, "runtime"));
		bool no_ka = json_is_false(json_object_get(v, "keepalive"));
		const char *proto = json_string_value(json_object_get(v, "protocol"));
		bool h2 = proto && strcmp(proto, "h2") == 0;
		char t[384];
		snprintf(t, sizeof(t), "%s (%s%s%s%s%s%s%s)%s%s", srv ? srv : "?", app ? app : "?",
		         h2 ? ", h2" : "", no_ka ? ", no keep-alive" : "", style ? ", " : "",
		         style ? style : "", runtime ? ", " : "", runtime ? runtime : "",
		         status && strcmp(status, "ok") != 0 ? " — " : "",
		         status && strcmp(status, "ok") != 0 ? status : "");
		fprintf(f, "title[%zu] = ", i + 1);
		gp_string(f, t);
		/* without the runtime, for a key that lists each series thrice */
		snprintf(t, sizeof(t), "%s (%s%s%s)%s%s", srv ? srv : "?", app ? app : "?",
		         style ? ", " : "", style ? style : "",
		         status && strcmp(status, "ok") != 0 ? " — " : "",
		         status && strcmp(status, "ok") != 0 ? status : "");
		fprintf(f, "\nshorttitle[%zu] = ", i + 1);
		gp_string(f, t);
		fprintf(f, "\nhasdist[%zu] = %d\nlstyle[%zu] = %d\n", i + 1, has_dist[i], i + 1,
		        line_style(style, styled, i, counts));
		/* v2: instructions per request (scripts/icount), for the cost chart */
		bool ok;
		double ir =
		    num(json_object_get(json_object_get(v, "icount"), "ir_per_request"), &ok);
		t[0] = '\0';
		if (ok && ir > 0 && ir < 1e15) {
			char g[32];
			snprintf(t, sizeof(t), "%s instructions/request (callgrind, c = 1)",
			         grouped(ir, g, sizeof(g)));
		}
		fprintf(f, "hascost[%zu] = %d\nicount[%zu] = ", i + 1, has_cost[i] ? 1 : 0, i + 1);
		gp_string(f, t);
		/* rate sweeps: the p99 the knee's rule allows (factor x unloaded) */
		if (rate_sweep && isfinite(knee_limit[i]))
			fprintf(f, "\nknee_limit[%zu] = %.6g\n", i + 1, knee_limit[i]);
		else
			fprintf(f, "\nknee_limit[%zu] = NaN\n", i + 1);
	}
	fprintf(f, "styled = %d\n", styled ? 1 : 0);
	const char *name = json_string_value(json_object_get(root, "scenario"));
	fputs("scenario = ", f);
	gp_string(f, name ? name : "?");
	const json_t *host = json_object_get(root, "host");
	const char *model = json_string_value(json_object_get(host, "cpu_model"));
	const json_t *git = json_object_get(root, "git");
	const char *commit = json_string_value(json_object_get(git, "commit"));
	/* a result from uncommitted code says so on every chart */
	const char *dirty = json_is_true(json_object_get(git, "dirty")) ? "+dirty" : "";
	const char *started = json_string_value(json_object_get(root, "started"));
	char sub[512];
	snprintf(sub, sizeof(sub), "%s, %lld cores, commit %.10s%s, %s",
	         model ? model : "unknown CPU", json_integer_value(json_object_get(host, "cores")),
	         commit ? commit : "unknown", dirty, started ? started : "");
	fputs("\nsubtitle = ", f);
	gp_string(f, sub);
	const json_t *up = json_object_get(root, "upstream");
	double delay = json_is_object(up) ? json_number_value(json_object_get(up, "delay_ms")) : 0;
	fprintf(f, "\ndelay_ms = %.6g\nplot_level = %lld\nxmin = %.6g\nxmax = %.6g\n", delay,
	        plot_level, xmin, xmax);
	fprintf(f, "rate_sweep = %d\n", rate_sweep ? 1 : 0);
	const json_t *kf = json_object_get(scdoc, "knee_factor");
	fprintf(f, "knee_factor = %.6g\n", json_is_number(kf) ? json_number_value(kf) : 0.0);
	fputs("level_name = ", f);
	if (rate_sweep) {
		/* the levels are offered rates; the connections vary per rate */
		gp_string(f, "rate");
		fputs("\nxlabel_text = ", f);
		gp_string(f, "offered rate (target requests/s, log scale)");
	} else if (streams_sweep) {
		char lbl[128];
		snprintf(lbl, sizeof(lbl), "HTTP/2 streams per connection (%lld connections)",
		         fixed_conns);
		gp_string(f, lbl);
		fputs("\nxlabel_text = ", f);
		snprintf(lbl, sizeof(lbl),
		         "HTTP/2 streams per connection, over %lld connections (log scale)",
		         fixed_conns);
		gp_string(f, lbl);
	} else if (fixed_streams > 1) {
		char lbl[128];
		gp_string(f, "concurrency");
		fputs("\nxlabel_text = ", f);
		snprintf(
		    lbl, sizeof(lbl),
		    "concurrency (connections; HTTP/2 ones carry %lld streams each; log scale)",
		    fixed_streams);
		gp_string(f, lbl);
	} else {
		gp_string(f, "concurrency");
		fputs("\nxlabel_text = ", f);
		gp_string(f, "concurrency (connections, log scale)");
	}
	fprintf(f, "\nin_flight = %.6g\n", in_flight);
	/* the cost bands, in the column order of cost-N.dat */
	fprintf(f, "ncost = %zu\ncost_max = %.6g\nlevel_ratio_min = %.6g\n", ncost,
	        cost_max > 0 ? cost_max : 1, ratio_min > 1 ? ratio_min : 2);
	/* the cost chart's y axis (FIT_IN_FLIGHT) and the bars cut at its top */
	fprintf(f, "cost_ytop = %.6g\ncost_clipped = %zu\nfit_in_flight = %d\n", cost_ytop,
	        nclipped, FIT_IN_FLIGHT);
	long long split_min = json_integer_value(
	    json_object_get(json_object_get(root, "cost_method"), "split_min_ticks"));
	if (ncost > 0) {
		fprintf(f, "array cost_title[%zu]\narray cost_key[%zu]\n", ncost, ncost);
		for (size_t k = 0, j = 0; k < NCOST; k++) {
			if (!cost_present[k])
				continue;
			fprintf(f, "cost_title[%zu] = ", ++j);
			/* a v2 server's CPU is unsplit where its window held too few
			 * clock ticks to sample (scripts/bench): the key says so */
			if (strcmp(COST_FIELDS[k].key, "server_cpu") == 0 && split_min > 0) {
				char t[96];
				snprintf(t, sizeof t, "server, unsplit (under %lld clock ticks)",
				         split_min);
				gp_string(f, t);
			} else {
				gp_string(f, COST_FIELDS[k].title);
			}
			fprintf(f, "\ncost_key[%zu] = ", j);
			gp_string(f, COST_FIELDS[k].key);
			fputc('\n', f);
		}
	}
	fprintf(f, "rps_max = %.6g\nset xtics (", rps_max > 0 ? rps_max : 1);
	json_array_foreach(levels, i, v)
	{
		fprintf(f, "%s%lld", i ? ", " : "", json_integer_value(v));
	}
	fputs(")\n", f);
	if (fclose(f) != 0)
		goto fail;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return 1;
}
