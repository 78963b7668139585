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

enum { HTTP1_HOST_MEMO = 32 };

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
	size_t trailer_bytes; /* chunked trailers and chunk extensions: counted, not kept */
	char tname[18];       /* the start of the trailer field name being read */
	unsigned char tname_len;

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
	/* The last Host value the fast path found valid (a connection's
	 * requests, and the connections a pooled parser serves, mostly carry
	 * the same): the same bytes are not checked again. */
	unsigned char host_len; /* 0: none */
	char host[HTTP1_HOST_MEMO];
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

/* ASCII lower case by table: one load per byte where the range test and
 * the add cost three to four instructions (a hello request compares ~25
 * bytes of field names and values this way; scripts/icount). */
#define LC1(c) ((unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + ('a' - 'A') : (c)))
#define LC4(c) LC1(c), LC1((c) + 1), LC1((c) + 2), LC1((c) + 3)
#define LC16(c) LC4(c), LC4((c) + 4), LC4((c) + 8), LC4((c) + 12)
#define LC64(c) LC16(c), LC16((c) + 16), LC16((c) + 32), LC16((c) + 48)
static const unsigned char http1_lower[256] = {LC64(0), LC64(64), LC64(128), LC64(192)};
#undef LC64
#undef LC16
#undef LC4
#undef LC1

/* a equals the lower-case literal lit, ASCII case aside (RFC 9110 field
 * names and tokens are case-insensitive). */
static inline bool http1_token_eq(const char *a, size_t alen, const char *lit, size_t litlen)
{
	if (alen != litlen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (http1_lower[(unsigned char)a[i]] != (unsigned char)lit[i])
			return false;
	return true;
}

#define TOKEN_EQ(base, len, lit) http1_token_eq((base), (len), (lit), sizeof(lit) - 1)

/* A Host value (RFC 9112 3.2, RFC 3986 3.2.2): empty, or a reg-name or
 * IPv4 address (unreserved, sub-delims, pct-encoded) or a bracketed IP
 * literal, then an optional ":" and port digits. What a front end may
 * route by differently ("a b", "a/b", "a@b", "a:b:c", "a:8x") is refused
 * with 400. Both parser paths call this, so their verdicts stay the same;
 * it runs on every request, so the plain shape ("127.0.0.1:8080") is two
 * table-driven loops. */
#define H8(c) [c] = 1
static const unsigned char http1_regname[256] = {
    H8('-'), H8('.'), H8('_'), H8('~'), H8('!'), H8('$'), H8('&'), H8('\''), H8('('), H8(')'),
    H8('*'), H8('+'), H8(','), H8(';'), H8('='), H8('%'), H8('0'), H8('1'), H8('2'),  H8('3'),
    H8('4'), H8('5'), H8('6'), H8('7'), H8('8'), H8('9'), H8('A'), H8('B'), H8('C'),  H8('D'),
    H8('E'), H8('F'), H8('G'), H8('H'), H8('I'), H8('J'), H8('K'), H8('L'), H8('M'),  H8('N'),
    H8('O'), H8('P'), H8('Q'), H8('R'), H8('S'), H8('T'), H8('U'), H8('V'), H8('W'),  H8('X'),
    H8('Y'), H8('Z'), H8('a'), H8('b'), H8('c'), H8('d'), H8('e'), H8('f'), H8('g'),  H8('h'),
    H8('i'), H8('j'), H8('k'), H8('l'), H8('m'), H8('n'), H8('o'), H8('p'), H8('q'),  H8('r'),
    H8('s'), H8('t'), H8('u'), H8('v'), H8('w'), H8('x'), H8('y'), H8('z'),
};
#undef H8

/* "[" IP-literal "]" at the start of v[0..n): where it ends, or NULL. */
const char *http1_host_literal(const char *v, size_t n);

static inline bool http1_host_ok(const char *v, size_t n)
{
	const char *p = v, *e = v + n;
	if (p < e && *p == '[') {
		p = http1_host_literal(v, n);
		if (!p)
			return false;
	} else {
		while (p < e && http1_regname[(unsigned char)*p])
			p++;
	}
	if (p < e && *p == ':')
		for (p++; p < e && (unsigned char)(*p - '0') < 10; p++)
			;
	return p == e;
}

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
