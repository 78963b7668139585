/* resp: ab-compatible response head reading, see resp.h. */
#include "resp.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* strncasecmp() in the C locale (loadgen never calls setlocale()), inline:
 * the head of every response goes through it several times. */
static inline int ci_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x != y) {
			if (x >= 'A' && x <= 'Z')
				x = (unsigned char)(x + 32);
			if (y >= 'A' && y <= 'Z')
				y = (unsigned char)(y + 32);
			if (x != y)
				return 0;
		}
	}
	return 1;
}

/* A needle measured once: its length and its anchor, the offset of its
 * first non-letter (n when it has none). The heads of every response are
 * searched for the same few needles, so resp_parse_head() passes them
 * measured (the constants below) rather than measuring them each time. */
struct needle {
	const char *s;
	size_t n, k;
};

static const struct needle KEEP_ALIVE = {"Keep-Alive", 10, 4};
static const struct needle CONTENT_LENGTH = {"Content-Length:", 15, 7};
static const struct needle CLOSE = {"close", 5, 5};
static const struct needle CHUNKED = {"chunked", 7, 7};
static const struct needle SERVER = {"Server:", 7, 6};

static inline int is_letter(unsigned char c)
{
	return (unsigned char)((c | 0x20) - 'a') < 26;
}

static const char *find(const char *hay, size_t len, const struct needle *nd)
{
	size_t n = nd->n, k = nd->k;
	const char *needle = nd->s;
	if (n == 0)
		return hay;
	if (len < n)
		return NULL;
	/* Anchor on the needle's first non-letter ('-' in "Keep-Alive", ':'),
	 * which has no case and is rare in a head: memchr finds it fast. */
	if (k < n) {
		const char *p = hay + k, *end = hay + len - (n - k) + 1;
		while (p < end && (p = memchr(p, needle[k], (size_t)(end - p)))) {
			if (ci_eq(p - k, needle, n))
				return p - k;
			p++;
		}
		return NULL;
	}
	/* all letters: x | 0x20 lowers a letter and equals a lowercase letter
	 * only for that letter's two cases */
	unsigned char f = (unsigned char)(needle[0] | 0x20);
	for (size_t i = 0; i + n <= len; i++) {
		if ((unsigned char)(hay[i] | 0x20) != f)
			continue;
		if (ci_eq(hay + i + 1, needle + 1, n - 1))
			return hay + i;
	}
	return NULL;
}

const char *resp_find_ci(const char *hay, size_t len, const char *needle)
{
	struct needle nd = {needle, strlen(needle), 0};
	while (nd.k < nd.n && is_letter((unsigned char)needle[nd.k]))
		nd.k++;
	return find(hay, len, &nd);
}

long resp_head_end(const char *buf, size_t len, int *term_len)
{
	/* One pass from line end to line end: an occurrence of either
	 * terminator ends with a '\n', so the first "\r\n\r\n" is met at its
	 * '\n' before any later one, and the first "\n\n" is remembered in
	 * case there is no "\r\n\r\n" at all (ab's two strstr()s). */
	long nn = -1;
	const char *p = buf, *end = buf + len;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		size_t i = (size_t)(p - buf);
		if (i >= 3 && p[-1] == '\r' && p[-2] == '\n' && p[-3] == '\r') {
			*term_len = 4;
			return (long)i - 3;
		}
		if (nn < 0 && i >= 1 && p[-1] == '\n')
			nn = (long)i - 1;
		p++;
	}
	if (nn >= 0)
		*term_len = 2;
	return nn;
}

/* atol() (what ab's atoi() reads), without strtol()'s generality. */
static long parse_long(const char *s)
{
	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	int neg = *s == '-';
	if (*s == '-' || *s == '+')
		s++;
	unsigned long v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > ((unsigned long)LONG_MAX - d) / 10)
			return neg ? LONG_MIN : LONG_MAX; /* strtol() clamps */
		v = v * 10 + d;
	}
	return neg ? -(long)v : (long)v;
}

void resp_parse_head(const char *buf, size_t len, struct resp_head *out)
{
	memset(out, 0, sizeof *out);
	out->content_length = -1;
	const char *part =
	    len >= 4 && memcmp(buf, "HTTP", 4) == 0 ? buf : memmem(buf, len, "HTTP", 4);
	size_t rest = part ? len - (size_t)(part - buf) : 0;
	if (part && rest > 9) {
		size_t k = 0;
		while (k < 3 && 9 + k < rest && part[9 + k]) {
			out->code[k] = part[9 + k];
			k++;
		}
		out->code[k] = 0;
		out->http11 = strncmp(part, "HTTP/1.1", rest < 8 ? rest : 8) == 0 && rest >= 8;
	} else {
		memcpy(out->code, "500", 4);
	}
	if (isdigit((unsigned char)out->code[0]) && isdigit((unsigned char)out->code[1]) &&
	    isdigit((unsigned char)out->code[2]))
		out->status =
		    (out->code[0] - '0') * 100 + (out->code[1] - '0') * 10 + (out->code[2] - '0');
	out->ka_token = find(buf, len, &KEEP_ALIVE) != NULL;
	const char *cl = find(buf, len, &CONTENT_LENGTH);
	if (cl) {
		/* ab: atoi(cl + 16), i.e. it skips "Content-Length: " blindly */
		char num[24];
		size_t off = (size_t)(cl - buf) + 16, k = 0;
		while (off + k < len && k < sizeof num - 1 && buf[off + k] != '\r' &&
		       buf[off + k] != '\n') {
			num[k] = buf[off + k];
			k++;
		}
		num[k] = 0;
		out->content_length = off <= len ? parse_long(num) : 0;
		if (out->content_length < 0)
			out->content_length = 0;
	}
	/* "Connection: close" / "Transfer-Encoding: chunked": look at header
	 * lines properly, ab never did. */
	const char *p = memchr(buf, '\n', len), *end = buf + len;
	while (p && p < end) {
		p++;
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);
		if (ll > 11 && ci_eq(p, "Connection:", 11) && find(p + 11, ll - 11, &CLOSE))
			out->conn_close = 1;
		if (ll > 18 && ci_eq(p, "Transfer-Encoding:", 18) &&
		    find(p + 18, ll - 18, &CHUNKED))
			out->chunked = 1;
		p = eol;
	}
}

void resp_server_name(const char *buf, size_t len, char *out, size_t cap)
{
	size_t k = 0;
	const char *p = find(buf, len, &SERVER);
	if (p) {
		size_t off = (size_t)(p - buf) + 8;
		while (off < len && (unsigned char)buf[off] > 32 && k + 1 < cap)
			out[k++] = buf[off++];
	}
	out[k] = 0;
}

enum {
	CH_SIZE,
	CH_EXT,
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER,
	CH_TRAILER_LINE,
	CH_TRAILER_LF,
	CH_LAST_LF
};

int resp_chunked_feed(struct resp_chunked *c, const char *p, size_t len, size_t *used)
{
	size_t i = 0;
	while (i < len) {
		char ch = p[i];
		switch (c->state) {
		case CH_SIZE:
			if (isxdigit((unsigned char)ch)) {
				if (c->left >> 59)
					return -1;
				c->left = c->left * 16 + (uint64_t)(isdigit((unsigned char)ch)
				                                        ? ch - '0'
				                                        : (tolower(ch) - 'a' + 10));
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->state = CH_EXT;
			} else if (ch == '\r') {
				c->state = CH_SIZE_LF;
			} else if (ch == '\n') {
				c->state = c->left ? CH_DATA : CH_TRAILER;
			} else {
				return -1;
			}
			i++;
			break;
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch == '\n')
				c->state = c->left ? CH_DATA : CH_TRAILER;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			c->state = c->left ? CH_DATA : CH_TRAILER;
			i++;
			break;
		case CH_DATA: {
			size_t take = len - i < c->left ? len - i : (size_t)c->left;
			c->left -= take;
			i += take;
			if (!c->left)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch == '\r') {
				c->state = CH_DATA_LF;
			} else if (ch == '\n') {
				c->state = CH_SIZE;
			} else {
				return -1;
			}
			i++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_SIZE;
			i++;
			break;
		case CH_TRAILER: /* at the start of a trailer line */
			i++;
			if (ch == '\r') {
				c->state = CH_LAST_LF;
			} else if (ch == '\n') {
				*used = i;
				return 1;
			} else {
				c->state = CH_TRAILER_LINE;
			}
			break;
		case CH_TRAILER_LINE:
			if (ch == '\n')
				c->state = CH_TRAILER;
			i++;
			break;
		case CH_LAST_LF:
			i++;
			if (ch != '\n')
				return -1;
			*used = i;
			return 1;
		default:
			return -1;
		}
	}
	*used = len;
	return 0;
}
