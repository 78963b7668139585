/* pool: size-class free lists; see pool.h. A block carries its class in a
 * header in front of it. */
#include "pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MIN_SHIFT 4 /* 16 bytes */
#define POOL_MAX (1u << (POOL_MIN_SHIFT + POOL_CLASSES - 1))
#define POOL_HDR 16 /* keeps the payload 16-byte aligned */

void *pool_malloc(size_t size, void *ud)
{
	struct pool *p = ud;
	unsigned k = 0;
	if (size > POOL_MAX) {
		k = POOL_CLASSES;
	} else {
		if (size > (1u << POOL_MIN_SHIFT))
			k = 32 - (unsigned)__builtin_clz((unsigned)size - 1) - POOL_MIN_SHIFT;
		void *b = p->free[k];
		if (b) {
			p->free[k] = *(void **)((char *)b + POOL_HDR);
			return (char *)b + POOL_HDR;
		}
		size = 1u << (POOL_MIN_SHIFT + k);
	}
	char *b = malloc(POOL_HDR + size);
	if (!b)
		return NULL;
	*(unsigned *)b = k;
	return b + POOL_HDR;
}

void pool_free(void *ptr, void *ud)
{
	struct pool *p = ud;
	if (!ptr)
		return;
	char *b = (char *)ptr - POOL_HDR;
	unsigned k = *(unsigned *)b;
	if (k == POOL_CLASSES) {
		free(b);
		return;
	}
	*(void **)ptr = p->free[k];
	p->free[k] = b;
}

void *pool_calloc(size_t n, size_t size, void *ud)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	void *r = pool_malloc(n * size, ud);
	if (r)
		memset(r, 0, n * size);
	return r;
}

void *pool_realloc(void *ptr, size_t size, void *ud)
{
	if (!ptr)
		return pool_malloc(size, ud);
	unsigned k = *(unsigned *)((char *)ptr - POOL_HDR);
	if (k == POOL_CLASSES) {
		char *b = realloc((char *)ptr - POOL_HDR, POOL_HDR + size);
		return b ? b + POOL_HDR : NULL;
	}
	size_t have = 1u << (POOL_MIN_SHIFT + k);
	if (size <= have)
		return ptr;
	void *r = pool_malloc(size, ud);
	if (r) {
		memcpy(r, ptr, have);
		pool_free(ptr, ud);
	}
	return r;
}

void pool_destroy(struct pool *p)
{
	for (unsigned k = 0; k < POOL_CLASSES; k++) {
		while (p->free[k]) {
			char *b = p->free[k];
			p->free[k] = *(void **)(b + POOL_HDR);
			free(b);
		}
	}
}
