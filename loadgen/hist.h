/* hist: a log-linear latency histogram (HdrHistogram-style).
 *
 * Values are unsigned microseconds. Values below 256 are counted exactly;
 * above, every power-of-two range is split into 128 equal buckets, so a
 * bucket is at most 1/128 of its values wide and the value reported for a
 * rank (the bucket's midpoint, clamped to the recorded min/max) is within
 * 0.4% of the exact sample. Memory is fixed (about 58 KiB) whatever the
 * number of samples, so a ten-million-request run needs no per-request
 * array. Count, min, max, sum and sum of squares are kept exactly, so the
 * mean and standard deviation are exact too. */
#ifndef LOADGEN_HIST_H
#define LOADGEN_HIST_H

#include <stddef.h>
#include <stdint.h>

struct hist;

struct hist *hist_new(void);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);

void hist_record(struct hist *h, uint64_t value);
/* Adds every sample of src to dst: merging is exact. */
void hist_merge(struct hist *dst, const struct hist *src);

uint64_t hist_count(const struct hist *h);
uint64_t hist_min(const struct hist *h); /* 0 when empty */
uint64_t hist_max(const struct hist *h); /* 0 when empty */
/* Exact sum of the samples (what a mean needs without rounding). */
uint64_t hist_sum(const struct hist *h);
/* Exact sum of squared deviations from m: sum (x - m)^2. */
double hist_sq_dev(const struct hist *h, double m);

/* The sample at 0-based rank r of the sorted samples (r < count);
 * 0 when empty. */
uint64_t hist_at_rank(const struct hist *h, uint64_t r);
/* Nearest-rank percentile: the smallest sample with at least p% of the
 * samples at or below it (0 < p <= 100); 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Iterates the non-empty buckets in increasing order: *pos starts at 0;
 * returns 0 when done, else 1 with the bucket's inclusive upper bound and
 * count. */
int hist_next_bucket(const struct hist *h, unsigned *pos, uint64_t *upper, uint64_t *count);

/* The histogram as hist_words() unsigned 64-bit words whose element-wise
 * sum over several histograms is the words of their merge, so that a plain
 * sum-reduction (MPI_Reduce with MPI_SUM over MPI_UINT64_T, issue 17)
 * merges them exactly: the buckets, the count, the sum and the sum of
 * squares (in 32-bit limbs, so the sum carries nothing out of a word for up
 * to 2^32 histograms). Min and max are not sums: they travel apart, reduced
 * with MPI_MIN/MPI_MAX from hist_min_raw() (UINT64_MAX when empty) and
 * hist_max(). hist_from_words() makes h exactly that merge. */
size_t hist_words(void);
void hist_to_words(const struct hist *h, uint64_t *w);
uint64_t hist_min_raw(const struct hist *h);
void hist_from_words(struct hist *h, const uint64_t *w, uint64_t min_raw, uint64_t max);

#endif
