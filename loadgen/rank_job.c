/* rank_job.c — loadgen's ranks around a run: see rank_job.h. */
#include "rank_job.h"

#include "rank.h"
#include "report.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* --mpi, after a level: when any rank failed, rank 0 says which and why
 * (no report of the others' part is presented as the whole); 1 then, else
 * 0; -1 when the ranks could not even agree (err says why). */
int ranks_failed(const struct lg_result *r, char *err, size_t cap)
{
	int any = 0;
	if (rank_max(r->fatal, &any, err, cap))
		return -1;
	if (!any)
		return 0;
	char mine[sizeof r->fatal_msg + 320] = "";
	if (r->fatal)
		snprintf(mine, sizeof mine, "rank %d of %d on %s failed after %ld requests: %s",
		         rank_self(), rank_count(), rank_host(), r->done, r->fatal_msg);
	char **all;
	if (rank_gather(mine, &all, err, cap))
		return -1;
	for (int i = 0; all && all[i]; i++)
		if (all[i][0])
			fprintf(stderr, "%s\n", all[i]);
	rank_strings_free(all);
	return 1;
}

/* --mpi, after a level: every rank's own level object onto rank 0 (as
 * "per_rank" there, with its rank and host), then the merge of their
 * results and CPU times. 0, or -1 with why in err. */
int ranks_merge(struct lg_result *r, const struct lg_conf *cf, double cpu[2], json_t **per_rank,
                char *err, size_t cap)
{
	json_t *own = report_json_level(r, cf->concurrency, cf->h2 ? cf->streams : 0, cf->rate,
	                                cpu[0], cpu[1]);
	json_object_set_new(own, "rank", json_integer(rank_self()));
	json_object_set_new(own, "host", json_string(rank_host()));
	char *text = json_dumps(own, JSON_COMPACT);
	json_decref(own);
	char **all = NULL;
	int rc = text ? rank_gather(text, &all, err, cap) : -1;
	free(text);
	if (rc == 0 && rank_self() == 0) {
		*per_rank = json_array();
		for (int i = 0; all && all[i]; i++)
			json_array_append_new(*per_rank, json_loads(all[i], 0, NULL));
	}
	rank_strings_free(all);
	if (rc == 0)
		rc = rank_merge(r, err, cap);
	if (rc == 0)
		rc = rank_sum(cpu, 2, err, cap);
	return rc;
}

/* --mpi: joins the job, checks that every rank gets a connection at every
 * level, silences the other ranks' stdout (rank 0 alone reports) and, on
 * rank 0, lists the ranks' hosts into *hosts. The exit status, 0 to go on.
 * Without --mpi under a launcher of several ranks, refuses: each would run
 * the whole load. */
int start_ranks(const struct lg_opts *o, json_t **hosts)
{
	const char *world = getenv("OMPI_COMM_WORLD_SIZE");
	if (!o->mpi && world && atoi(world) > 1) {
		fprintf(
		    stderr,
		    "%s: started as one of %s ranks of an MPI job without --mpi: each would run "
		    "the whole load; add --mpi to split it over the ranks\n",
		    o->prog, world);
		return 1;
	}
	char err[512];
	if (rank_init(o->mpi, err, sizeof err)) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return 1;
	}
	if (!o->mpi)
		return 0;
	int n = rank_count(), self = rank_self();
	for (int i = 0; i < o->nlevels; i++) {
		if (o->levels[i] >= n)
			continue;
		if (self == 0)
			fprintf(
			    stderr,
			    "%s: -c %d is fewer connections than the %d ranks: every rank needs at "
			    "least one (ask for -c >= %d, or fewer ranks)\n",
			    o->prog, o->levels[i], n, n);
		return 1;
	}
	char **all;
	if (rank_gather(rank_host(), &all, err, sizeof err)) {
		fprintf(stderr, "%s: %s\n", o->prog, err);
		return 1;
	}
	if (self == 0) {
		*hosts = json_array();
		for (int i = 0; all[i]; i++)
			json_array_append_new(*hosts, json_string(all[i]));
	} else {
		int fd = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, 1) < 0) {
			perror("/dev/null");
			return 1;
		}
		close(fd);
	}
	rank_strings_free(all);
	return 0;
}
