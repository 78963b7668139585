/* http1_internal.h — what the two files of the HTTP/1.1 parser share
 * (http1.c: the API and the one-pass fast path; http1_llhttp.c: llhttp's
 * callbacks, which build a request from its events). Not an API: everything
 * outside servers/http uses http1.h.
 */
#ifndef COROBENCH_HTTP1_INTERNAL_H
#define COROBENCH_HTTP1_INTERNAL_H

#include "http1.h"

#include <llhttp.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct hdr_span {
	size_t name_off, name_len, value_off, value_len;
};

struct http1_parser {
	llhttp_t ll;
	struct http1_limits lim;

	char *head; /* method, target and header bytes, copied */
	size_t head_len, head_cap;
	const char *pend, *pend_end; /* the region of the input not yet copied */
	size_t pend_base;            /* ...and where it goes in head */
	char *body;                  /* de-chunked body */
	size_t body_len, body_cap;
	struct hdr_span *spans;
	struct app_header *headers; /* views built from spans on completion */
	size_t nheaders, hdr_cap;

	size_t method_off, method_len, url_off, url_len;
	size_t raw_head;      /* raw bytes of the current head fed to llhttp */
	size_t trailer_bytes; /* chunked trailers: counted, not kept */

	bool in_head;    /* the head of a request is still arriving */
	bool in_message; /* some byte of a request has been seen */
	enum { H_NONE, H_FIELD, H_VALUE_START, H_VALUE } hstate; /* within a header line */
	bool value_cut;                    /* the last value span ended where the input did */
	const char *feed_start, *feed_end; /* the bytes given to llhttp_execute */
	char prev_byte;                    /* the byte fed before feed_start */
	bool keep_alive, expect_continue, upgrade, continue_pending;
	bool ended;          /* a request without keep-alive was parsed: llhttp refuses more */
	unsigned char minor; /* the request's HTTP/1.x */
	bool failed;
	int err_status;
	const char *err_reason;
};

/* RFC 9110 tchar. llhttp's loose mode lets a space into a field name
 * ("Bad Name: x"), which a front end may read differently: refuse it. */
#define T8(c) [c] = 1
static const unsigned char http1_tchar[256] = {
    T8('!'), T8('#'), T8('$'), T8('%'), T8('&'), T8('\''), T8('*'), T8('+'), T8('-'), T8('.'),
    T8('^'), T8('_'), T8('`'), T8('|'), T8('~'), T8('0'),  T8('1'), T8('2'), T8('3'), T8('4'),
    T8('5'), T8('6'), T8('7'), T8('8'), T8('9'), T8('A'),  T8('B'), T8('C'), T8('D'), T8('E'),
    T8('F'), T8('G'), T8('H'), T8('I'), T8('J'), T8('K'),  T8('L'), T8('M'), T8('N'), T8('O'),
    T8('P'), T8('Q'), T8('R'), T8('S'), T8('T'), T8('U'),  T8('V'), T8('W'), T8('X'), T8('Y'),
    T8('Z'), T8('a'), T8('b'), T8('c'), T8('d'), T8('e'),  T8('f'), T8('g'), T8('h'), T8('i'),
    T8('j'), T8('k'), T8('l'), T8('m'), T8('n'), T8('o'),  T8('p'), T8('q'), T8('r'), T8('s'),
    T8('t'), T8('u'), T8('v'), T8('w'), T8('x'), T8('y'),  T8('z'),
};
#undef T8

static inline bool http1_token_eq(const char *a, size_t alen, const char *lit, size_t litlen)
{
	if (alen != litlen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + ('a' - 'A'));
		if (c != (unsigned char)lit[i])
			return false;
	}
	return true;
}

#define TOKEN_EQ(base, len, lit) http1_token_eq((base), (len), (lit), sizeof(lit) - 1)

/* llhttp's callbacks (http1_llhttp.c). */
extern const llhttp_settings_t http1_llhttp_settings;

/* Record our own verdict (status, reason); returns -1 for llhttp. */
int http1_fail(struct http1_parser *p, int status, const char *reason);
/* The growers are inline: the fast path tests for them in its loop, and an
 * out-of-line call there costs it registers (~35 instructions a request). */

/* Grow *buf to hold need bytes, doubling from first. 0, or -1. */
static inline int http1_grow(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t n = *cap ? *cap : first;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : n * 2;
	char *b = realloc(*buf, n);
	if (!b)
		return -1;
	*buf = b;
	*cap = n;
	return 0;
}

/* Room for one more header (below max_headers). 0, or -1 out of memory. */
static inline int http1_hdr_grow(struct http1_parser *p)
{
	size_t n = p->hdr_cap ? p->hdr_cap * 2 : 16;
	if (n > p->lim.max_headers)
		n = p->lim.max_headers;
	struct hdr_span *s = realloc(p->spans, n * sizeof(*s));
	if (!s)
		return -1;
	p->spans = s;
	struct app_header *h = realloc(p->headers, n * sizeof(*h));
	if (!h)
		return -1;
	p->headers = h;
	p->hdr_cap = n;
	return 0;
}

/* Copy the pending region of the input into the head storage. */
int http1_head_flush(struct http1_parser *p);

#endif
