/* fetch_mem.c — the memory functions libcurl gets (curl_global_init_mem):
 * glibc's malloc with free lists by size class in front of it.
 *
 * libcurl 7.88 allocates ~40 blocks per transfer and frees them at its end
 * (callgrind on a proxy worker: 20 malloc, 6 calloc, 5 realloc, 9 strdup,
 * among them the 16 KiB download buffer, Curl_preconnect's
 * buffer_size + 1, allocated per transfer since multi_done frees it). At a
 * thousand transfers in flight glibc's per-size caches (tcache: 7 blocks,
 * up to 1032 bytes) are empty when a burst of transfers starts and full when
 * a burst ends, so most of these go through _int_malloc and _int_free, and
 * the 16 KiB request (a large bin's) consolidates the fast bins each time:
 * ~6 600 instructions of a proxied request's ~52 000 were glibc's
 * allocator. A free list per size class (LIFO: the block freed last, still
 * in the cache, is handed out first) turns most of them into a pop and a
 * push. No option of libcurl's avoids the allocations themselves.
 *
 * Every block is glibc's own (a class allocates its full class size), so
 * realloc is glibc's, and a block may be freed by either side. Only the
 * thread that set the functions up (the worker's, forked with it) uses the
 * lists: libcurl's resolver threads call these too, and go to glibc. The
 * lists hold at most FETCH_MEM_KEEP bytes; above FETCH_MEM_MAX nothing is
 * kept.
 */
#include "fetch_mem.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_MEM_SMALL 1024              /* 16-byte classes up to here */
#define FETCH_MEM_MAX (64 * 1024)         /* the largest class */
#define FETCH_MEM_KEEP (16 * 1024 * 1024) /* bytes kept on the lists, at most */
/* 0..64: 16 k bytes; then 8 classes per power of two up to FETCH_MEM_MAX */
#define FETCH_MEM_NCLASS (65 + 6 * 8)

struct fetch_mem_block {
	struct fetch_mem_block *next;
};

static struct fetch_mem_block *fm_free[FETCH_MEM_NCLASS];
static size_t fm_kept; /* bytes on the lists (by class size) */
static _Thread_local bool fm_owner;

static unsigned log2_floor(size_t n)
{
	return (unsigned)(sizeof(unsigned long) * 8 - 1) - (unsigned)__builtin_clzl(n);
}

static size_t class_size(unsigned k)
{
	if (k <= 64)
		return 16 * (size_t)k;
	unsigned j = k - 65, e = 10 + j / 8;
	return ((size_t)1 << e) + (j % 8 + 1) * ((size_t)1 << (e - 3));
}

/* The smallest class that holds n bytes (n <= FETCH_MEM_MAX). */
static unsigned class_ceil(size_t n)
{
	if (n <= FETCH_MEM_SMALL)
		return (unsigned)((n + 15) / 16);
	unsigned e = log2_floor(n - 1);
	size_t step = (size_t)1 << (e - 3);
	size_t s = (n - ((size_t)1 << e) + step - 1) / step; /* 1..8 */
	return 65 + (e - 10) * 8 + (unsigned)s - 1;
}

/* The largest class a block of u usable bytes can serve. */
static unsigned class_floor(size_t u)
{
	if (u < class_size(65))
		return u / 16 > 64 ? 64 : (unsigned)(u / 16);
	unsigned e = log2_floor(u);
	if (e >= 16)
		return FETCH_MEM_NCLASS - 1;
	size_t s = (u - ((size_t)1 << e)) >> (e - 3); /* 0..7 */
	return s ? 65 + (e - 10) * 8 + (unsigned)s - 1 : 65 + (e - 11) * 8 + 7;
}

void *fetch_mem_malloc(size_t n)
{
	if (!fm_owner || n > FETCH_MEM_MAX)
		return malloc(n);
	unsigned k = class_ceil(n ? n : 1);
	struct fetch_mem_block *b = fm_free[k];
	if (b) {
		fm_free[k] = b->next;
		fm_kept -= class_size(k);
		return b;
	}
	return malloc(class_size(k));
}

void fetch_mem_free(void *p)
{
	if (!p)
		return;
	if (fm_owner) {
		size_t u = malloc_usable_size(p);
		if (u >= 16 && u < 2 * FETCH_MEM_MAX) {
			unsigned k = class_floor(u);
			size_t sz = class_size(k);
			if (fm_kept + sz <= FETCH_MEM_KEEP) {
				struct fetch_mem_block *b = p;
				b->next = fm_free[k];
				fm_free[k] = b;
				fm_kept += sz;
				return;
			}
		}
	}
	free(p);
}

void *fetch_mem_realloc(void *p, size_t n)
{
	return p ? realloc(p, n) : fetch_mem_malloc(n);
}

char *fetch_mem_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = fetch_mem_malloc(n);
	return d ? memcpy(d, s, n) : NULL;
}

void *fetch_mem_calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n))
		return NULL;
	if (!fm_owner || n > FETCH_MEM_MAX)
		return calloc(nmemb, size);
	void *p = fetch_mem_malloc(n);
	return p ? memset(p, 0, n) : NULL;
}

void fetch_mem_own(void)
{
	fm_owner = true;
}

CURLcode fetch_mem_init(long flags)
{
	fetch_mem_own();
	return curl_global_init_mem(flags, fetch_mem_malloc, fetch_mem_free, fetch_mem_realloc,
	                            fetch_mem_strdup, fetch_mem_calloc);
}

size_t fetch_mem_kept(void)
{
	return fm_kept;
}
