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
 * Each block carries a 16-byte header in front of what libcurl sees: its
 * class (or "large") and, for a large block, its size. fetch_mem_free reads
 * the class there, next to the bytes libcurl just used. The first version
 * asked glibc (malloc_usable_size), which reads the *next* chunk's header to
 * see that the block is in use: for the 16 KiB download buffer that is a
 * cache line 16 KiB away that nothing else touches, and `perf record` put
 * 4 % of a proxy worker's CPU at c = 1000 in malloc_usable_size alone.
 * So these blocks are not glibc's to free() or realloc(), and these
 * functions take only their own blocks: libcurl gets all of its memory
 * from them and gives it back to them (curl_global_init_mem's contract).
 * Only the thread that set the functions up (the worker's, forked with it)
 * uses the lists: libcurl's resolver threads call these too, and get a
 * fresh block from glibc. The lists hold at most FETCH_MEM_KEEP bytes;
 * above FETCH_MEM_MAX nothing is kept.
 */
#include "fetch_mem.h"

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

/* In front of every block: 16 bytes, so the block keeps malloc's alignment. */
struct fetch_mem_hdr {
	size_t cls;  /* class index, or FETCH_MEM_LARGE */
	size_t size; /* the usable bytes behind the header */
};
_Static_assert(sizeof(struct fetch_mem_hdr) == 16, "the header keeps 16-byte alignment");
#define FETCH_MEM_LARGE ((size_t)-1)

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

static struct fetch_mem_hdr *hdr_of(void *p)
{
	return (struct fetch_mem_hdr *)p - 1;
}

/* A fresh block from glibc of `size` usable bytes, its header set. */
static void *block_new(size_t cls, size_t size)
{
	if (size > SIZE_MAX - sizeof(struct fetch_mem_hdr))
		return NULL;
	struct fetch_mem_hdr *h = malloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	h->cls = cls;
	h->size = size;
	return h + 1;
}

void *fetch_mem_malloc(size_t n)
{
	if (n > FETCH_MEM_MAX)
		return block_new(FETCH_MEM_LARGE, n);
	unsigned k = class_ceil(n ? n : 1);
	struct fetch_mem_block *b = fm_owner ? fm_free[k] : NULL;
	if (b) {
		fm_free[k] = b->next;
		fm_kept -= class_size(k);
		return b;
	}
	return block_new(k, class_size(k));
}

void fetch_mem_free(void *p)
{
	if (!p)
		return;
	struct fetch_mem_hdr *h = hdr_of(p);
	if (fm_owner && h->cls != FETCH_MEM_LARGE && fm_kept + h->size <= FETCH_MEM_KEEP) {
		struct fetch_mem_block *b = p;
		b->next = fm_free[h->cls];
		fm_free[h->cls] = b;
		fm_kept += h->size;
		return;
	}
	free(h);
}

void *fetch_mem_realloc(void *p, size_t n)
{
	if (!p)
		return fetch_mem_malloc(n);
	struct fetch_mem_hdr *h = hdr_of(p);
	if (n <= h->size)
		return p;
	if (h->cls == FETCH_MEM_LARGE) {
		if (n > SIZE_MAX - sizeof(*h))
			return NULL;
		struct fetch_mem_hdr *g = realloc(h, sizeof(*h) + n);
		if (!g)
			return NULL;
		g->size = n;
		return g + 1;
	}
	void *q = fetch_mem_malloc(n);
	if (q) {
		memcpy(q, p, h->size);
		fetch_mem_free(p);
	}
	return q;
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
	void *p = fetch_mem_malloc(n);
	return p ? memset(p, 0, n) : NULL;
}

size_t fetch_mem_size(const void *p)
{
	return ((const struct fetch_mem_hdr *)p - 1)->size;
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
