/* rank: loadgen spread over several processes, on several hosts (issue 17).
 * `mpirun -np N [-H hosts] loadgen --mpi ...` starts N loadgens, the ranks
 * of one Open MPI job. Each runs its share of the load (rank_share());
 * they start each level together (rank_barrier()) and at its end merge
 * their results onto rank 0 exactly (rank_merge(): every histogram bucket
 * by bucket with MPI_Reduce's sum, the counts summed, min and max reduced
 * as such), which alone prints ab's report and writes the JSON.
 *
 * Two implementations, picked by the build (meson option mpi): rank_mpi.c
 * over Open MPI, and rank_solo.c where loadgen is built without it (one
 * process, rank 0 of 1; --mpi then says why it cannot run). Errors are
 * values: -1 and the reason in err. */
#ifndef LOADGEN_RANK_H
#define LOADGEN_RANK_H

#include <stddef.h>
#include <stdlib.h>

struct lg_result;

/* Joins the job when want (--mpi); without it this process is rank 0 of
 * 1. 0, or -1 with why in err. */
int rank_init(int want, char *err, size_t cap);
/* Leaves the job (every rank calls it before exiting normally). */
void rank_end(void);

int rank_self(void);         /* this process's rank, 0 .. rank_count() - 1 */
int rank_count(void);        /* how many ranks */
const char *rank_host(void); /* this rank's host name */

/* Rank self's part of total over count ranks: total / count, one more for
 * the first total % count ranks, so the parts sum to total exactly and
 * differ by at most one. */
static inline long rank_share(long total, int self, int count)
{
	return total / count + (self < total % count ? 1 : 0);
}

/* Returns when every rank has called it. */
int rank_barrier(char *err, size_t cap);

/* The largest v of all ranks, on every rank (e.g. whether any failed). */
int rank_max(int v, int *out, char *err, size_t cap);

/* Onto rank 0: the sum over the ranks of v[0..n) (in place); the other
 * ranks' v are left as they were. */
int rank_sum(double *v, int n, char *err, size_t cap);

/* Onto rank 0's *r: the merge of every rank's *r, exactly (sums, the
 * histograms bucket by bucket, min/max of their extremes; the run's time
 * and schedule the longest rank's, its start the earliest; rank 0's server
 * name). The other ranks' *r are left as they were. */
int rank_merge(struct lg_result *r, char *err, size_t cap);

/* Onto rank 0: every rank's string s, in rank order, as *all (an array of
 * rank_count() strings and a NULL, freed by rank_strings_free()); elsewhere
 * *all is NULL. */
int rank_gather(const char *s, char ***all, char *err, size_t cap);

static inline void rank_strings_free(char **all)
{
	for (char **p = all; p && *p; p++)
		free(*p);
	free(all);
}

#endif
