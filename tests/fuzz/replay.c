/* replay.c — the plain (non-libFuzzer) driver: links against one fuzz
 * target's LLVMFuzzerTestOneInput and runs every file named on the command
 * line (a directory means every regular file in it, sorted) through it once.
 * It is what keeps the fuzz corpora as regression cases in every build, gcc
 * and no sanitizer included; a crash or abort() fails the meson test. Prints
 * TAP: one line per input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ninputs;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("not ok %d - %s: cannot open\n", ++ninputs, path);
		return 1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		printf("not ok %d - %s: out of memory\n", ++ninputs, path);
		return 1;
	}
	/* an exact-size copy, as libFuzzer gives, so ASan sees over-reads */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact)
		memcpy(exact, buf, len);
	free(buf);
	if (!exact)
		return 1;
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	printf("ok %d - %s (%zu bytes)\n", ++ninputs, path, len);
	fflush(stdout);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return run_file(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			bad |= run_file(path);
		free(names[i]);
	}
	free(names);
	return bad;
}

int main(int argc, char **argv)
{
	int bad = 0;
	for (int i = 1; i < argc; i++)
		bad |= run_dir(argv[i]);
	printf("1..%d\n", ninputs);
	if (ninputs == 0) {
		fputs("replay: no input files\n", stderr);
		return 1;
	}
	return bad;
}
