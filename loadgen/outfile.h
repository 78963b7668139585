/* outfile: how loadgen writes a file the user named (--json, -g, -e) without
 * ever clobbering what the name points at:
 *
 *   "-"                       standard output;
 *   a new file, or a regular file with no other hard link
 *                             written to a temporary file beside it, then
 *                             renamed over it: a reader sees the old or the
 *                             new document, never half of one;
 *   anything else that exists (a symlink, a FIFO, a device, a regular file
 *   with other hard links, a file in a folder we may not create files in)
 *                             written in place, through it: the link stays a
 *                             link and fills its target, a FIFO's reader gets
 *                             the whole document, /dev/null stays a device.
 *
 * outfile_check() runs before the load, so that a name that cannot be
 * written is refused at once, in one line, rather than after the run. */
#ifndef LOADGEN_OUTFILE_H
#define LOADGEN_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

struct outfile {
	FILE *f;          /* write here between open and close */
	const char *path; /* as the user gave it */
	char *tmp;        /* the temporary file renamed over path; NULL otherwise */
};

/* Where "-" goes: standard output unless main() moved it (default 1). */
void outfile_set_stdout(int fd);

/* 0 when path can be written as above; else -1 and why, one line without
 * the newline, in err[0..cap). */
int outfile_check(const char *path, char *err, size_t cap);

/* Opens path for writing; 0, or -1 with errno set. */
int outfile_open(struct outfile *o, const char *path);

/* Flushes, closes and (for a temporary file) renames it over the path; 0,
 * or -1 with errno set (the temporary file is then removed). */
int outfile_close(struct outfile *o);

/* Gives up: closes and removes a temporary file. */
void outfile_discard(struct outfile *o);

/* An unnamed scratch file for rows kept until the end of the run, in the
 * folder path's document goes to when that is a plain file (the same file
 * system as before), else in $TMPDIR or /tmp. A read-write fd, or -1. */
int outfile_scratch(const char *path);

#endif
