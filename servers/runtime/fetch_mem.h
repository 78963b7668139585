/* fetch_mem.h — the memory functions the fetcher hands libcurl
 * (curl_global_init_mem): glibc's allocator with a free list per size class
 * in front, for the ~40 blocks libcurl allocates and frees per transfer
 * (fetch_mem.c says why).
 *
 * Every block these return has a header of its own in front (its size
 * class): give it back to fetch_mem_free() or fetch_mem_realloc(), never to
 * glibc's free() or realloc(), and give these functions no other block
 * (libcurl keeps to that: all of its memory comes from the functions
 * curl_global_init_mem() got). The lists serve the owning thread only
 * (the one that called fetch_mem_init or fetch_mem_own, and the process
 * forked from it); other threads get fresh blocks from glibc.
 */
#ifndef COROBENCH_FETCH_MEM_H
#define COROBENCH_FETCH_MEM_H

#include <curl/curl.h>
#include <stddef.h>

/* curl_global_init_mem(flags, the functions below); the calling thread
 * owns the lists. Once per process, before any other libcurl call. */
CURLcode fetch_mem_init(long flags);
/* Make the calling thread the lists' owner (tests; fetch_mem_init does). */
void fetch_mem_own(void);

void *fetch_mem_malloc(size_t n);
void fetch_mem_free(void *p);
void *fetch_mem_realloc(void *p, size_t n);
char *fetch_mem_strdup(const char *s);
void *fetch_mem_calloc(size_t nmemb, size_t size);

/* The usable bytes of a block of these (at least what was asked). */
size_t fetch_mem_size(const void *p);

/* Bytes on the free lists now (at most 16 MiB). */
size_t fetch_mem_kept(void);

#endif
