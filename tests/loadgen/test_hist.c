/* Unit tests of loadgen's histogram: percentiles of known samples against
 * the exact order statistics (within 1%), exact count/min/max/mean/sd,
 * exact merging, and the bucket walk the JSON output uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <cmocka.h>

#include "hist.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* xorshift: reproducible samples without libc's rand() */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void assert_close(uint64_t got, uint64_t want)
{
	double err = want ? fabs((double)got - (double)want) / (double)want : (double)got;
	if (err > 0.01)
		fail_msg("got %llu, exact %llu (error %.4f)", (unsigned long long)got,
		         (unsigned long long)want, err);
}

static void check_against_exact(uint64_t *v, size_t n)
{
	struct hist *h = hist_new();
	assert_non_null(h);
	long double sum = 0;
	for (size_t i = 0; i < n; i++) {
		hist_record(h, v[i]);
		sum += v[i];
	}
	qsort(v, n, sizeof *v, cmp_u64);
	assert_int_equal(hist_count(h), n);
	assert_int_equal(hist_min(h), v[0]);
	assert_int_equal(hist_max(h), v[n - 1]);
	assert_int_equal(hist_sum(h), (uint64_t)sum);
	for (size_t r = 0; r < n; r += n / 97 + 1)
		assert_close(hist_at_rank(h, r), v[r]);
	static const double ps[] = {1, 10, 25, 50, 66, 75, 90, 95, 99, 99.9, 100};
	for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
		size_t rank = (size_t)ceil(ps[i] / 100.0 * (double)n);
		if (rank == 0)
			rank = 1;
		assert_close(hist_percentile(h, ps[i]), v[rank - 1]);
	}
	/* standard deviation around a mean: exact sums, so only rounding */
	double m = (double)(sum / n), dev = 0;
	for (size_t i = 0; i < n; i++)
		dev += ((double)v[i] - m) * ((double)v[i] - m);
	assert_true(fabs(hist_sq_dev(h, m) - dev) <= 1e-9 * dev + 1e-6);
	hist_free(h);
}

static void test_uniform(void **state)
{
	(void)state;
	size_t n = 100000;
	uint64_t *v = malloc(n * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = 1 + rng() % 5000000; /* 1 us .. 5 s */
	check_against_exact(v, n);
	free(v);
}

static void test_lognormal_like(void **state)
{
	(void)state;
	size_t n = 50000;
	uint64_t *v = malloc(n * sizeof *v);
	for (size_t i = 0; i < n; i++) {
		/* products of uniforms: a long right tail like real latencies */
		double x = 50.0;
		for (int k = 0; k < 6; k++)
			x *= 0.5 + (double)(rng() % 1000) / 500.0;
		v[i] = (uint64_t)x;
	}
	check_against_exact(v, n);
	free(v);
}

static void test_small_values_exact(void **state)
{
	(void)state;
	struct hist *h = hist_new();
	for (uint64_t i = 0; i < 256; i++)
		hist_record(h, i);
	for (uint64_t i = 0; i < 256; i++)
		assert_int_equal(hist_at_rank(h, i), i); /* below 256 us: exact */
	hist_free(h);
}

static void test_empty(void **state)
{
	(void)state;
	struct hist *h = hist_new();
	assert_int_equal(hist_count(h), 0);
	assert_int_equal(hist_min(h), 0);
	assert_int_equal(hist_max(h), 0);
	assert_int_equal(hist_percentile(h, 50), 0);
	unsigned pos = 0;
	uint64_t up, c;
	assert_int_equal(hist_next_bucket(h, &pos, &up, &c), 0);
	hist_free(h);
}

/* a and b hold the same samples: every figure and every bucket agree */
static void assert_same_hist(const struct hist *a, const struct hist *all)
{
	assert_int_equal(hist_count(a), hist_count(all));
	assert_int_equal(hist_sum(a), hist_sum(all));
	assert_int_equal(hist_min(a), hist_min(all));
	assert_int_equal(hist_max(a), hist_max(all));
	assert_true(hist_sq_dev(a, 1000.0) == hist_sq_dev(all, 1000.0));
	for (int p = 1; p <= 100; p++)
		assert_int_equal(hist_percentile(a, p), hist_percentile(all, p));
	unsigned pa = 0, pb = 0;
	uint64_t ua, ca, ub, cb, total = 0;
	while (hist_next_bucket(a, &pa, &ua, &ca)) {
		assert_int_equal(hist_next_bucket(all, &pb, &ub, &cb), 1);
		assert_int_equal(ua, ub);
		assert_int_equal(ca, cb);
		total += ca;
	}
	assert_int_equal(hist_next_bucket(all, &pb, &ub, &cb), 0);
	assert_int_equal(total, hist_count(all));
}

static void test_merge_is_exact(void **state)
{
	(void)state;
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	for (int i = 0; i < 20000; i++) {
		uint64_t x = rng() % 2000000;
		hist_record(i % 3 ? a : b, x);
		hist_record(all, x);
	}
	hist_merge(a, b);
	assert_same_hist(a, all);
	hist_free(a);
	hist_free(b);
	hist_free(all);
}

/* What loadgen --mpi does (issue 17): the words of four histograms summed
 * element by element, min and max reduced apart, give the histogram of all
 * their samples; one of the four stays empty, and the samples are large
 * enough that the sum of squares needs more than 64 bits. */
static void test_words_sum_is_merge(void **state)
{
	(void)state;
	enum { N = 4 };
	size_t nw = hist_words();
	struct hist *part[N], *all = hist_new(), *back = hist_new();
	uint64_t *w = calloc(nw, sizeof *w), *sum = calloc(nw, sizeof *sum);
	assert_non_null(w);
	assert_non_null(sum);
	for (int k = 0; k < N; k++)
		part[k] = hist_new();
	for (int i = 0; i < 30000; i++) {
		uint64_t x = rng() % (i % 7 ? 5000000u : 4000000000000u);
		hist_record(part[i % (N - 1)], x);
		hist_record(all, x);
	}
	uint64_t mn = UINT64_MAX, mx = 0;
	for (int k = 0; k < N; k++) {
		hist_to_words(part[k], w);
		for (size_t i = 0; i < nw; i++)
			sum[i] += w[i];
		if (hist_min_raw(part[k]) < mn)
			mn = hist_min_raw(part[k]);
		if (hist_max(part[k]) > mx)
			mx = hist_max(part[k]);
	}
	hist_from_words(back, sum, mn, mx);
	assert_same_hist(back, all);
	/* an empty histogram's words make an empty histogram */
	hist_to_words(part[N - 1], w);
	hist_from_words(back, w, hist_min_raw(part[N - 1]), hist_max(part[N - 1]));
	assert_int_equal(hist_count(back), 0);
	assert_int_equal(hist_min(back), 0);
	for (int k = 0; k < N; k++)
		hist_free(part[k]);
	hist_free(all);
	hist_free(back);
	free(w);
	free(sum);
}

static void test_huge_values(void **state)
{
	(void)state;
	struct hist *h = hist_new();
	hist_record(h, UINT64_MAX / 4);
	hist_record(h, 1);
	assert_int_equal(hist_max(h), UINT64_MAX / 4);
	assert_int_equal(hist_at_rank(h, 1), UINT64_MAX / 4);
	hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uniform),
	    cmocka_unit_test(test_lognormal_like),
	    cmocka_unit_test(test_small_values_exact),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_merge_is_exact),
	    cmocka_unit_test(test_words_sum_is_merge),
	    cmocka_unit_test(test_huge_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
