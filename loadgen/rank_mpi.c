/* rank_mpi: rank.h over Open MPI. Every call is a collective over
 * MPI_COMM_WORLD that all ranks make in the same order (main.c's loop over
 * the levels sees to that). Errors come back as values (MPI_ERRORS_RETURN)
 * for main() to print; a rank that dies is the launcher's to notice: mpirun
 * then ends the whole job and says which rank died, so no rank waits for
 * it forever and rank 0 never prints a partial report as whole. */
#include "rank.h"

#include "engine.h"
#include "hist.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

static int self, count = 1, started;
static char host[MPI_MAX_PROCESSOR_NAME + 1];

static int failed(int rc, const char *what, char *err, size_t cap)
{
	if (rc == MPI_SUCCESS)
		return 0;
	char msg[MPI_MAX_ERROR_STRING] = "";
	int len = 0;
	MPI_Error_string(rc, msg, &len);
	snprintf(err, cap, "rank %d on %s: %s: %s", self, host, what, msg);
	return -1;
}

int rank_init(int want, char *err, size_t cap)
{
	if (!want) {
		if (gethostname(host, sizeof host - 1) != 0)
			snprintf(host, sizeof host, "localhost");
		return 0;
	}
	if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
		snprintf(err, cap, "--mpi: MPI_Init failed");
		return -1;
	}
	started = 1;
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	MPI_Comm_rank(MPI_COMM_WORLD, &self);
	MPI_Comm_size(MPI_COMM_WORLD, &count);
	int len = 0;
	return failed(MPI_Get_processor_name(host, &len), "MPI_Get_processor_name", err, cap);
}

void rank_end(void)
{
	if (started)
		MPI_Finalize();
	started = 0;
}

int rank_self(void)
{
	return self;
}

int rank_count(void)
{
	return count;
}

const char *rank_host(void)
{
	return host;
}

int rank_barrier(char *err, size_t cap)
{
	return started ? failed(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier", err, cap) : 0;
}

int rank_max(int v, int *out, char *err, size_t cap)
{
	*out = v;
	if (!started)
		return 0;
	return failed(MPI_Allreduce(&v, out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce",
	              err, cap);
}

/* MPI_Reduce onto rank 0, in place there. */
static int reduce(void *v, int n, MPI_Datatype t, MPI_Op op, char *err, size_t cap)
{
	if (!started)
		return 0;
	int rc = MPI_Reduce(self == 0 ? MPI_IN_PLACE : v, self == 0 ? v : NULL, n, t, op, 0,
	                    MPI_COMM_WORLD);
	return failed(rc, "MPI_Reduce", err, cap);
}

int rank_sum(double *v, int n, char *err, size_t cap)
{
	return reduce(v, n, MPI_DOUBLE, MPI_SUM, err, cap);
}

#define NHIST 8

int rank_merge(struct lg_result *r, char *err, size_t cap)
{
	if (!started)
		return 0;
	long *sums[] = {&r->done,       &r->doneka,       &r->good,        &r->bad,
	                &r->epipe,      &r->err_length,   &r->err_conn,    &r->err_recv,
	                &r->err_except, &r->err_response, &r->err_timeout, &r->err_truncated,
	                &r->err_status, &r->err_reset,    &r->late_n,      &r->late_busy,
	                &r->sent,       &r->scheduled};
	int64_t *bytes[] = {&r->totalread, &r->totalbread, &r->totalposted};
	double *longest[] = {&r->timetaken, &r->schedule_s, &r->drain_s};
	struct hist *h[NHIST] = {r->ctime, r->dtime, r->wait,   r->total,
	                         r->ok,    r->unc,   r->unc_ok, r->late};
	enum { NS = sizeof sums / sizeof sums[0], NB = 3, NL = 3 };

	int64_t iv[NS + NB];
	for (int i = 0; i < NS; i++)
		iv[i] = *sums[i];
	for (int i = 0; i < NB; i++)
		iv[NS + i] = *bytes[i];
	double dv[NL];
	for (int i = 0; i < NL; i++)
		dv[i] = *longest[i];
	/* the extremes: min of the starts and of the histograms' minima, max
	 * of the histograms' maxima, the document length and the interruption */
	uint64_t mins[1 + NHIST], maxs[NHIST + 2];
	mins[0] = r->start_wall_us;
	for (int i = 0; i < NHIST; i++) {
		mins[1 + i] = hist_min_raw(h[i]);
		maxs[i] = hist_max(h[i]);
	}
	maxs[NHIST] = r->doclen;
	maxs[NHIST + 1] = (uint64_t)r->interrupted;
	size_t nw = hist_words();
	uint64_t *w = malloc(NHIST * nw * sizeof *w);
	if (!w) {
		snprintf(err, cap, "rank %d on %s: out of memory", self, host);
		return -1;
	}
	for (int i = 0; i < NHIST; i++)
		hist_to_words(h[i], w + (size_t)i * nw);
	int rc = reduce(iv, NS + NB, MPI_INT64_T, MPI_SUM, err, cap);
	if (!rc)
		rc = reduce(dv, NL, MPI_DOUBLE, MPI_MAX, err, cap);
	if (!rc)
		rc = reduce(mins, 1 + NHIST, MPI_UINT64_T, MPI_MIN, err, cap);
	if (!rc)
		rc = reduce(maxs, NHIST + 2, MPI_UINT64_T, MPI_MAX, err, cap);
	if (!rc)
		rc = reduce(w, (int)(NHIST * nw), MPI_UINT64_T, MPI_SUM, err, cap);
	if (!rc && self == 0) {
		for (int i = 0; i < NS; i++)
			*sums[i] = (long)iv[i];
		for (int i = 0; i < NB; i++)
			*bytes[i] = iv[NS + i];
		for (int i = 0; i < NL; i++)
			*longest[i] = dv[i];
		r->start_wall_us = mins[0];
		for (int i = 0; i < NHIST; i++)
			hist_from_words(h[i], w + (size_t)i * nw, mins[1 + i], maxs[i]);
		r->doclen = maxs[NHIST];
		r->interrupted = (int)maxs[NHIST + 1];
	}
	free(w);
	return rc;
}

int rank_gather(const char *s, char ***all, char *err, size_t cap)
{
	*all = NULL;
	int len = (int)strlen(s) + 1, *lens = NULL, *offs = NULL;
	char *buf = NULL;
	/* rank 0 out of memory cannot leave the others waiting in the
	 * collective: it ends the job (mpirun says so) */
	if (self == 0 && (!(lens = calloc((size_t)count, sizeof *lens)) ||
	                  !(offs = calloc((size_t)count, sizeof *offs))))
		MPI_Abort(MPI_COMM_WORLD, 1);
	int rc = failed(MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD),
	                "MPI_Gather", err, cap);
	size_t total = 0;
	if (!rc && self == 0) {
		for (int i = 0; i < count; i++) {
			offs[i] = (int)total;
			total += (size_t)lens[i];
		}
		buf = malloc(total);
		*all = calloc((size_t)count + 1, sizeof **all);
		if (!buf || !*all)
			MPI_Abort(MPI_COMM_WORLD, 1);
	}
	if (!rc)
		rc = failed(
		    MPI_Gatherv(s, len, MPI_CHAR, buf, lens, offs, MPI_CHAR, 0, MPI_COMM_WORLD),
		    "MPI_Gatherv", err, cap);
	if (!rc && self == 0) {
		for (int i = 0; i < count && !rc; i++)
			if (!((*all)[i] = strdup(buf + offs[i]))) {
				snprintf(err, cap, "rank 0: out of memory");
				rc = -1;
			}
	}
	free(buf);
	free(lens);
	free(offs);
	return rc;
}
