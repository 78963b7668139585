/* fuzz_result.c — libFuzzer target for the result-JSON reader, which is
 * plots/result2dat's main() (no separate reader function exists; see
 * result2dat_shim.h): any bytes as RESULT.json must give exit status 0 or 1,
 * never a crash, a leak or undefined behaviour. The input reaches
 * json_load_file through a memfd, the output files go to /dev/null. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int result2dat_main(int argc, char **argv);

static FILE *sink;

FILE *result2dat_fuzz_fopen(const char *path, const char *mode)
{
	(void)path;
	return fopen("/dev/null", mode);
}

FILE *result2dat_fuzz_stderr(void)
{
	if (!sink)
		sink = fopen("/dev/null", "w");
	return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0)
		fd = memfd_create("result", 0);
	if (fd < 0)
		abort();
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char prog[] = "result2dat", out[] = "fuzz-out";
	char *argv[] = {prog, path, out, NULL};
	int rc = result2dat_main(3, argv);
	if (rc != 0 && rc != 1)
		abort();
	return 0;
}
