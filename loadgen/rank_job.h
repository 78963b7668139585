/* rank_job.h — what loadgen's main does with its ranks around a run
 * (--mpi): joining the job, telling which rank failed, and merging the
 * ranks' results into rank 0's. Over rank.h, so it is the same code with
 * Open MPI (rank_mpi.c) and without it (rank_solo.c, one rank). */
#ifndef LOADGEN_RANK_JOB_H
#define LOADGEN_RANK_JOB_H

#include "engine.h"
#include "opts.h"

#include <stddef.h>

#include <jansson.h>

/* --mpi, after a level: when any rank failed, rank 0 says which and why
 * (no report of the others' part is presented as the whole); 1 then, else
 * 0; -1 when the ranks could not even agree (err says why). */
int ranks_failed(const struct lg_result *r, char *err, size_t cap);

/* --mpi, after a level: every rank's own level object onto rank 0 (as
 * "per_rank" there, with its rank and host), then the merge of their
 * results and CPU times. 0, or -1 with why in err. */
int ranks_merge(struct lg_result *r, const struct lg_conf *cf, double cpu[2], json_t **per_rank,
                char *err, size_t cap);

/* --mpi: joins the job, checks that every rank gets a connection at every
 * level, silences the other ranks' stdout (rank 0 alone reports) and, on
 * rank 0, lists the ranks' hosts into *hosts. The exit status, 0 to go on.
 * Without --mpi under a launcher of several ranks, refuses: each would run
 * the whole load. */
int start_ranks(const struct lg_opts *o, json_t **hosts);

#endif
