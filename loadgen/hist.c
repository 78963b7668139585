/* hist: log-linear histogram, see hist.h for the error bound. */
#include "hist.h"

#include <stdlib.h>
#include <string.h>

#define HIST_BITS 8u               /* values below 2^8 are exact */
#define HIST_SUB (1u << HIST_BITS) /* 256 */
#define HIST_HALF (HIST_SUB >> 1)  /* buckets per power of two */
#define HIST_MAXEXP 63u
#define HIST_SIZE (HIST_SUB + (HIST_MAXEXP - HIST_BITS + 1) * HIST_HALF)

struct hist {
	uint64_t count, min, max, sum;
	unsigned __int128 sumsq;
	uint64_t counts[HIST_SIZE];
};

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= HIST_BITS */
	unsigned shift = e - HIST_BITS + 1;
	unsigned top = (unsigned)(v >> shift); /* in [HALF, SUB) */
	return HIST_SUB + (e - HIST_BITS) * HIST_HALF + (top - HIST_HALF);
}

/* Lowest value and width of bucket i. */
static void hist_bounds(unsigned i, uint64_t *lo, uint64_t *width)
{
	if (i < HIST_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned k = i - HIST_SUB;
	unsigned e = k / HIST_HALF + HIST_BITS;
	unsigned shift = e - HIST_BITS + 1;
	uint64_t top = HIST_HALF + k % HIST_HALF;
	*lo = top << shift;
	*width = (uint64_t)1 << shift;
}

struct hist *hist_new(void)
{
	struct hist *h = malloc(sizeof *h);
	if (h)
		hist_reset(h);
	return h;
}

void hist_free(struct hist *h)
{
	free(h);
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->counts[hist_index(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum += v;
	h->sumsq += (unsigned __int128)v * v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HIST_SIZE; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->sum += src->sum;
	dst->sumsq += src->sumsq;
}

uint64_t hist_count(const struct hist *h)
{
	return h->count;
}

uint64_t hist_min(const struct hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return h->max;
}

uint64_t hist_sum(const struct hist *h)
{
	return h->sum;
}

double hist_sq_dev(const struct hist *h, double m)
{
	/* sum (x-m)^2 = sum x^2 - 2 m sum x + n m^2; the sums are exact, so
	 * only the final combination rounds. */
	long double r =
	    (long double)h->sumsq - 2.0L * m * (long double)h->sum + (long double)h->count * m * m;
	return r < 0 ? 0 : (double)r;
}

uint64_t hist_at_rank(const struct hist *h, uint64_t r)
{
	if (!h->count)
		return 0;
	if (r >= h->count)
		r = h->count - 1;
	if (r == 0)
		return h->min;
	if (r == h->count - 1)
		return h->max;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_SIZE; i++) {
		seen += h->counts[i];
		if (seen > r) {
			uint64_t lo, w;
			hist_bounds(i, &lo, &w);
			uint64_t v = lo + (w - 1) / 2;
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (!h->count)
		return 0;
	double want = p / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	return hist_at_rank(h, rank - 1);
}

int hist_next_bucket(const struct hist *h, unsigned *pos, uint64_t *upper, uint64_t *count)
{
	for (unsigned i = *pos; i < HIST_SIZE; i++) {
		if (h->counts[i]) {
			uint64_t lo, w;
			hist_bounds(i, &lo, &w);
			*upper = lo + w - 1;
			*count = h->counts[i];
			*pos = i + 1;
			return 1;
		}
	}
	*pos = HIST_SIZE;
	return 0;
}

/* count, sum (two 32-bit limbs each), sumsq (four), then the buckets */
#define HIST_HEAD 8u

size_t hist_words(void)
{
	return HIST_HEAD + HIST_SIZE;
}

void hist_to_words(const struct hist *h, uint64_t *w)
{
	w[0] = h->count & 0xffffffffu;
	w[1] = h->count >> 32;
	w[2] = h->sum & 0xffffffffu;
	w[3] = h->sum >> 32;
	for (unsigned i = 0; i < 4; i++)
		w[4 + i] = (uint64_t)(h->sumsq >> (32 * i)) & 0xffffffffu;
	memcpy(w + HIST_HEAD, h->counts, sizeof h->counts);
}

uint64_t hist_min_raw(const struct hist *h)
{
	return h->min;
}

void hist_from_words(struct hist *h, const uint64_t *w, uint64_t min_raw, uint64_t max)
{
	/* each limb holds a sum of 32-bit values: shifting it into place and
	 * adding carries what overflowed its 32 bits */
	h->count = w[0] + (w[1] << 32);
	h->sum = w[2] + (w[3] << 32);
	h->sumsq = 0;
	for (unsigned i = 0; i < 4; i++)
		h->sumsq += (unsigned __int128)w[4 + i] << (32 * i);
	memcpy(h->counts, w + HIST_HEAD, sizeof h->counts);
	h->min = min_raw;
	h->max = max;
}
