/* fetch_mem.h — the memory functions the fetcher hands libcurl
 * (curl_global_init_mem): glibc's allocator with a free list per size class
 * in front, for the ~40 blocks libcurl allocates and frees per transfer
 * (fetch_mem.c says why).
 *
 * Every block these return is glibc's: free() and realloc() take it too,
 * and fetch_mem_free() takes any block of glibc's. The lists serve the
 * owning thread only (the one that called fetch_mem_init or fetch_mem_own,
 * and the process forked from it); other threads get glibc directly.
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

/* Bytes on the free lists now (at most 16 MiB). */
size_t fetch_mem_kept(void);

#endif
