/* rank_merge() across real ranks (issue 17): run under mpirun with any
 * number of ranks. Every rank records its own deterministic samples (rank
 * r: a stream seeded by r, of a length that depends on r, rank 1 none at
 * all) and counts; after rank_merge() rank 0 rebuilds every rank's samples
 * into one histogram, as one process given all of them would have, and
 * checks that the merge equals it bucket by bucket, with the same count,
 * sum, min, max, spread and every percentile; the counts sum exactly, the
 * time is the longest rank's. Exit status 0 on every rank when all hold.
 * Without MPI at all this file is not built (meson option mpi). */
#include "engine.h"
#include "hist.h"
#include "rank.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "rank %d: FAIL %s:%d: %s\n", rank_self(), __FILE__,        \
			        __LINE__, #cond);                                                  \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Rank r's samples: none for rank 1 (an empty histogram merges too), else
 * 1000 + 777 r values, some up to ~2^42 so the sum of squares needs more
 * than 64 bits. */
static void samples(int r, struct hist *h, long *n)
{
	uint64_t s = 0x9e3779b97f4a7c15u ^ (uint64_t)(r + 1) * 0x100000001b3u;
	long count = r == 1 ? 0 : 1000 + 777L * r;
	for (long i = 0; i < count; i++) {
		uint64_t v = next(&s);
		hist_record(h, i % 5 ? v % 200000 : v % 4398046511104u);
	}
	*n = count;
}

static void check_same(const struct hist *a, const struct hist *b)
{
	CHECK(hist_count(a) == hist_count(b));
	CHECK(hist_sum(a) == hist_sum(b));
	CHECK(hist_min(a) == hist_min(b));
	CHECK(hist_max(a) == hist_max(b));
	CHECK(hist_sq_dev(a, 12345.0) == hist_sq_dev(b, 12345.0));
	for (double p = 0.5; p <= 100.0; p += 0.5)
		CHECK(hist_percentile(a, p) == hist_percentile(b, p));
	CHECK(hist_percentile(a, 99.9) == hist_percentile(b, 99.9));
	unsigned pa = 0, pb = 0;
	uint64_t ua, ca, ub, cb;
	while (hist_next_bucket(a, &pa, &ua, &ca)) {
		CHECK(hist_next_bucket(b, &pb, &ub, &cb) == 1);
		CHECK(ua == ub && ca == cb);
	}
	CHECK(hist_next_bucket(b, &pb, &ub, &cb) == 0);
}

int main(void)
{
	char err[512];
	if (rank_init(1, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	int self = rank_self(), n = rank_count();
	struct lg_result r;
	memset(&r, 0, sizeof r);
	struct hist **hs[] = {&r.ctime, &r.dtime, &r.wait,   &r.total,
	                      &r.ok,    &r.unc,   &r.unc_ok, &r.late};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		*hs[i] = hist_new();
	long mine;
	samples(self, r.total, &mine);
	hist_merge(r.ok, r.total);
	r.done = mine;
	r.err_conn = self;
	r.totalread = (int64_t)mine * 100;
	r.timetaken = 1.0 + self;
	r.start_wall_us = 1000000u + (uint64_t)self;
	CHECK(rank_merge(&r, err, sizeof err) == 0);
	if (self == 0) {
		struct hist *all = hist_new();
		long total = 0;
		for (int k = 0; k < n; k++) {
			long c;
			samples(k, all, &c);
			total += c;
		}
		check_same(r.total, all);
		check_same(r.ok, all);
		CHECK(r.done == total);
		CHECK(r.err_conn == (long)n * (n - 1) / 2);
		CHECK(r.totalread == (int64_t)total * 100);
		CHECK(r.timetaken == (double)n);
		CHECK(r.start_wall_us == 1000000u);
		CHECK(hist_count(r.late) == 0 && hist_min(r.late) == 0);
		hist_free(all);
		printf("%d ranks: %ld samples merged, %d failures\n", n, total, failures);
	}
	/* the split sums to what was asked, remainders to the first ranks */
	long asked[] = {0, 1, 7, 1001, 50000};
	for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
		long sum = 0;
		for (int k = 0; k < n; k++) {
			long part = rank_share(asked[i], k, n);
			CHECK(part == asked[i] / n || part == asked[i] / n + 1);
			CHECK(k == 0 || part <= rank_share(asked[i], k - 1, n));
			sum += part;
		}
		CHECK(sum == asked[i]);
	}
	int worst = 0;
	CHECK(rank_max(failures, &worst, err, sizeof err) == 0);
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		hist_free(*hs[i]);
	rank_end();
	return worst ? 1 : 0;
}
