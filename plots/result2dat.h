/* result2dat.h — what result2dat.c and result2dat_dist.c share: the number
 * reader and the data files' opening and closing (result2dat.c), and the
 * distribution file's writer (result2dat_dist.c). */
#ifndef RESULT2DAT_H
#define RESULT2DAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* A JSON number as a double; *ok false (and 0) when v is not one. */
double num(const json_t *v, bool *ok);

/* Opens OUTDIR/KIND-N.dat for writing into path (4096 bytes, kept for
 * close_dat's message); NULL after saying why. */
FILE *open_dat(char *path, const char *dir, const char *kind, size_t n);

/* Closes a data file: 0, or -1 after saying that writing it failed. */
int close_dat(FILE *f, const char *path);

/* Writes dist-N.dat for series n at the given level: 1 when a distribution
 * was written, 0 when the level has no data, -1 on error. */
int write_dist(const char *dir, size_t n, const json_t *series, long long level);

#endif
