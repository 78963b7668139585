/* rank_solo: rank.h where loadgen is built without Open MPI - one process,
 * rank 0 of 1, whose merges have nothing to merge. */
#include "rank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char host[256];

int rank_init(int want, char *err, size_t cap)
{
	if (want) {
		snprintf(err, cap,
		         "--mpi: this loadgen was built without Open MPI (install libopenmpi-dev, "
		         "scripts/deps --mpi, and build with meson's -Dmpi=enabled)");
		return -1;
	}
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	return 0;
}

void rank_end(void)
{
}

int rank_self(void)
{
	return 0;
}

int rank_count(void)
{
	return 1;
}

const char *rank_host(void)
{
	return host;
}

int rank_barrier(char *err, size_t cap)
{
	(void)err;
	(void)cap;
	return 0;
}

int rank_max(int v, int *out, char *err, size_t cap)
{
	(void)err;
	(void)cap;
	*out = v;
	return 0;
}

int rank_sum(double *v, int n, char *err, size_t cap)
{
	(void)v;
	(void)n;
	(void)err;
	(void)cap;
	return 0;
}

int rank_merge(struct lg_result *r, char *err, size_t cap)
{
	(void)r;
	(void)err;
	(void)cap;
	return 0;
}

int rank_gather(const char *s, char ***all, char *err, size_t cap)
{
	*all = calloc(2, sizeof **all);
	if (!*all || !((*all)[0] = strdup(s))) {
		free(*all);
		*all = NULL;
		snprintf(err, cap, "out of memory");
		return -1;
	}
	return 0;
}
