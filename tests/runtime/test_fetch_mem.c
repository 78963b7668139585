/* test_fetch_mem.c — the memory functions the fetcher gives libcurl
 * (servers/runtime/fetch_mem.c): every size up to past the largest class
 * gets a block that holds it, a freed block serves the next request of its
 * class, calloc zeroes a reused dirty block, realloc keeps the bytes, the
 * lists stay under their cap, another thread goes to glibc (and the owner
 * takes its blocks back), and libcurl works on them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fetch_mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Every size from 0 to 70 000 (past the 64 KiB class): the block holds the
 * size (written in full: ASan sees an overrun) and can be freed. */
static void test_every_size_fits(void **state)
{
	(void)state;
	for (size_t n = 0; n <= 70000; n += n < 2200 ? 1 : 97) {
		char *p = fetch_mem_malloc(n);
		assert_non_null(p);
		assert_true(fetch_mem_size(p) >= n);
		memset(p, 0xab, n);
		fetch_mem_free(p);
	}
}

/* A freed block is the next one of its class handed out (LIFO), whatever
 * size within the class asks; a size of the class above gets another. */
static void test_freed_block_reused(void **state)
{
	(void)state;
	static const size_t sizes[] = {1, 16, 17, 100, 1024, 1025, 1152, 1153, 2049, 16385, 65536};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		void *p = fetch_mem_malloc(n);
		assert_non_null(p);
		size_t kept = fetch_mem_kept();
		fetch_mem_free(p);
		assert_true(fetch_mem_kept() > kept);
		void *q = fetch_mem_malloc(n);
		assert_ptr_equal(p, q);
		assert_int_equal(fetch_mem_kept(), kept);
		fetch_mem_free(q);
	}
}

static void test_calloc_zeroes_reused(void **state)
{
	(void)state;
	unsigned char *p = fetch_mem_malloc(300);
	assert_non_null(p);
	memset(p, 0xff, fetch_mem_size(p));
	fetch_mem_free(p);
	unsigned char *q = fetch_mem_calloc(3, 100);
	assert_ptr_equal(p, q);
	for (size_t i = 0; i < 300; i++)
		assert_int_equal(q[i], 0);
	fetch_mem_free(q);
	assert_null(fetch_mem_calloc(SIZE_MAX / 2, 4)); /* overflow */
}

static void test_realloc_and_strdup(void **state)
{
	(void)state;
	char *p = fetch_mem_realloc(NULL, 10);
	assert_non_null(p);
	memcpy(p, "123456789", 10);
	p = fetch_mem_realloc(p, 5000);
	assert_non_null(p);
	assert_string_equal(p, "123456789");
	char *d = fetch_mem_strdup(p);
	assert_string_equal(d, "123456789");
	assert_true(fetch_mem_size(d) >= 10);
	fetch_mem_free(p);
	fetch_mem_free(d);
	/* Large blocks (past the largest class) grow in place or move, and
	 * keep their bytes; shrinking keeps the block. */
	char *l = fetch_mem_malloc(70000);
	assert_non_null(l);
	memset(l, 0x5a, 70000);
	char *l2 = fetch_mem_realloc(l, 200000);
	assert_non_null(l2);
	assert_true(fetch_mem_size(l2) >= 200000);
	for (size_t i = 0; i < 70000; i += 4999)
		assert_int_equal((unsigned char)l2[i], 0x5a);
	assert_ptr_equal(fetch_mem_realloc(l2, 10), l2);
	fetch_mem_free(l2);
	/* A class block grown past its class moves to a larger one, bytes kept. */
	char *c = fetch_mem_malloc(100);
	memset(c, 0x33, 100);
	char *c2 = fetch_mem_realloc(c, 3000);
	assert_non_null(c2);
	assert_true(fetch_mem_size(c2) >= 3000);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal((unsigned char)c2[i], 0x33);
	fetch_mem_free(c2);
	assert_null(fetch_mem_malloc(SIZE_MAX - 8)); /* too large: NULL, no overflow */
}

/* 64 MiB of 16 KiB blocks freed: at most 16 MiB stay on the lists. */
static void test_kept_is_capped(void **state)
{
	(void)state;
	enum { N = 4096 };
	void **v = calloc(N, sizeof(*v));
	assert_non_null(v);
	for (int i = 0; i < N; i++)
		assert_non_null(v[i] = fetch_mem_malloc(16384));
	for (int i = 0; i < N; i++)
		fetch_mem_free(v[i]);
	assert_true(fetch_mem_kept() <= 16u * 1024 * 1024);
	assert_true(fetch_mem_kept() >= 15u * 1024 * 1024);
	for (int i = 0; i < N; i++)
		v[i] = fetch_mem_malloc(16384);
	for (int i = 0; i < N; i++)
		fetch_mem_free(v[i]);
	free(v);
}

static void *from_other_thread; /* a block the other thread hands back */

static void *other_thread(void *arg)
{
	size_t *kept = arg;
	void *p = fetch_mem_malloc(200);
	fetch_mem_free(p);
	char *s = fetch_mem_strdup("x");
	fetch_mem_free(s);
	kept[1] = fetch_mem_kept();
	from_other_thread = fetch_mem_malloc(500);
	return NULL;
}

/* A thread that does not own the lists (libcurl's resolver) leaves them
 * alone. */
static void test_other_thread_uses_glibc(void **state)
{
	(void)state;
	size_t kept[2] = {fetch_mem_kept(), 0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, other_thread, kept), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(kept[1], kept[0]);
	/* Its block (a resolver's answer) is the owner's to free, onto a list. */
	assert_non_null(from_other_thread);
	assert_true(fetch_mem_size(from_other_thread) >= 500);
	fetch_mem_free(from_other_thread);
	assert_true(fetch_mem_kept() > kept[0]);
	assert_ptr_equal(fetch_mem_malloc(500), from_other_thread);
	fetch_mem_free(from_other_thread);
}

static void test_curl_runs_on_them(void **state)
{
	(void)state;
	for (int i = 0; i < 100; i++) {
		CURLU *u = curl_url();
		assert_non_null(u);
		assert_int_equal(curl_url_set(u, CURLUPART_URL, "http://127.0.0.1:9/a?b=c", 0),
		                 CURLUE_OK);
		char *host = NULL;
		assert_int_equal(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK);
		assert_string_equal(host, "127.0.0.1");
		curl_free(host);
		CURL *e = curl_easy_init();
		assert_non_null(e);
		assert_int_equal(curl_easy_setopt(e, CURLOPT_CURLU, u), CURLE_OK);
		curl_easy_cleanup(e);
		curl_url_cleanup(u);
	}
}

int main(void)
{
	if (fetch_mem_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_size_fits),
	    cmocka_unit_test(test_freed_block_reused),
	    cmocka_unit_test(test_calloc_zeroes_reused),
	    cmocka_unit_test(test_realloc_and_strdup),
	    cmocka_unit_test(test_kept_is_capped),
	    cmocka_unit_test(test_other_thread_uses_glibc),
	    cmocka_unit_test(test_curl_runs_on_them),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
