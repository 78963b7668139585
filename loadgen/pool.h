/* pool: a thread's free lists of small blocks, one per power-of-two size
 * class from 16 to 4096 bytes (larger blocks go to malloc()), so that a
 * library allocating and freeing a few small blocks per request (nghttp2,
 * per stream) costs a few pointer moves instead of malloc()/free(). Blocks
 * are 16-byte aligned. Not thread-safe: one pool per thread. */
#ifndef LOADGEN_POOL_H
#define LOADGEN_POOL_H

#include <stddef.h>

#define POOL_CLASSES 9

struct pool {
	void *free[POOL_CLASSES];
};

/* The allocator's calls, in nghttp2_mem's shape (ud: the pool). */
void *pool_malloc(size_t size, void *ud);
void pool_free(void *ptr, void *ud);
void *pool_calloc(size_t n, size_t size, void *ud);
void *pool_realloc(void *ptr, size_t size, void *ud);

/* Frees the blocks on the free lists (every block must be back). */
void pool_destroy(struct pool *p);

#endif
