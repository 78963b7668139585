/* result2dat_shim.h — force-included (-include) before plots/result2dat.c in
 * the fuzz and replay builds of fuzz_result. result2dat has no reader
 * separable from its main() (it loads a file and writes the .dat files in OUTDIR in one
 * go), so the fuzz target calls main() renamed, and this shim sends every
 * file it writes and its stderr to /dev/null: the fuzzer then exercises the
 * whole reading and converting path without touching the file system. */
#ifndef RESULT2DAT_SHIM_H
#define RESULT2DAT_SHIM_H

#include <stdio.h>

FILE *result2dat_fuzz_fopen(const char *path, const char *mode);
FILE *result2dat_fuzz_stderr(void);

#undef stderr
#define stderr result2dat_fuzz_stderr()
#define fopen(path, mode) result2dat_fuzz_fopen(path, mode)
#define main result2dat_main

#endif
