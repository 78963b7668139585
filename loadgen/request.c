/* request: ab's request bytes, and the same request as HTTP/2 fields. */
#include "request.h"

#include "corobench_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_MAX 8192 /* ab's request buffer */

/* Appends a, b and c (b and c may be NULL). */
static int text_add(struct req_text *t, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
	char *n = realloc(t->s, t->len + la + lb + lc + 1);
	if (!n)
		return -1;
	t->s = n;
	memcpy(t->s + t->len, a, la);
	if (b)
		memcpy(t->s + t->len + la, b, lb);
	if (c)
		memcpy(t->s + t->len + la + lb, c, lc);
	t->len += la + lb + lc;
	t->s[t->len] = 0;
	return 0;
}

static const char *text_str(const struct req_text *t)
{
	return t->s ? t->s : "";
}

int req_add_cookie(struct req_lines *l, const char *value)
{
	/* ab's help says repeatable but ab keeps only the last; we keep them
	 * all, in one header as RFC 6265 wants */
	if (l->cookie.len) {
		l->cookie.len -= 2; /* drop the CRLF */
		return text_add(&l->cookie, "; ", value, "\r\n");
	}
	return text_add(&l->cookie, "Cookie: ", value, "\r\n");
}

/* ab's -H rules: the line goes in as given; a Host, Accept or User-Agent
 * line replaces ab's own. */
int req_add_header(struct req_lines *l, const char *line)
{
	if (strncasecmp(line, "Host:", 5) == 0)
		l->host = 1;
	else if (strncasecmp(line, "Accept:", 7) == 0)
		l->accept = 1;
	else if (strncasecmp(line, "User-Agent:", 11) == 0)
		l->useragent = 1;
	return text_add(&l->hdrs, line, "\r\n", NULL);
}

static void base64(const char *in, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), i;
	char *p = out;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
		             (unsigned char)in[i + 2];
		*p++ = tab[v >> 18];
		*p++ = tab[(v >> 12) & 63];
		*p++ = tab[(v >> 6) & 63];
		*p++ = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		*p++ = tab[v >> 18];
		*p++ = tab[(v >> 12) & 63];
		*p++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	*p = 0;
}

int req_add_auth(struct req_lines *l, int proxy, const char *userpass)
{
	const char *a = userpass;
	while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r' || *a == '\f' || *a == '\v')
		a++;
	char enc[1024]; /* ab's limit on the encoded credentials */
	if ((strlen(a) + 2) / 3 * 4 + 1 > sizeof enc)
		return -2;
	base64(a, enc);
	return text_add(&l->auth, proxy ? "Proxy-Authorization: Basic " : "Authorization: Basic ",
	                enc, "\r\n");
}

void req_lines_free(struct req_lines *l)
{
	free(l->cookie.s);
	free(l->auth.s);
	free(l->hdrs.s);
	memset(l, 0, sizeof *l);
}

/* --h2: the request as HTTP/2 header fields, from the HTTP/1 header lines
 * ("Name: value\r\n" each): pseudo-headers first, names lowercased, Host
 * turned into :authority and the connection-specific fields HTTP/2 forbids
 * left out. The strings live in r->h2store. Returns the number of fields,
 * -1 when too many, -2 when out of memory. */
static int h2_fields(struct req *r, const struct req_spec *s, const char *lines)
{
	size_t ll = strlen(lines);
	char *buf = malloc(ll + 1 + 32);
	if (!buf)
		return -2;
	memcpy(buf, lines, ll + 1);
	r->h2store = buf;
	struct lg_hdr *out = r->h2;
	int n = 0;
#define ADD(nm, nl, v, vl)                                                                         \
	do {                                                                                       \
		if (n == REQ_MAX_H2_HDRS)                                                          \
			return -1;                                                                 \
		out[n++] = (struct lg_hdr){(nm), (v), (nl), (vl)};                                 \
	} while (0)
	ADD(":method", 7, s->method, strlen(s->method));
	ADD(":scheme", 7, s->tls ? "https" : "http", s->tls ? 5 : 4);
	int authority = n;
	ADD(":authority", 10, "", 0);
	ADD(":path", 5, s->path, strlen(s->path));
	for (char *p = buf; *p;) {
		char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		*eol = 0;
		char *colon = strchr(p, ':');
		if (colon) {
			size_t nl = (size_t)(colon - p);
			for (size_t i = 0; i < nl; i++)
				p[i] = (char)tolower((unsigned char)p[i]);
			char *v = colon + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			static const char *const skip[] = {"connection", "keep-alive",
			                                   "proxy-connection", "transfer-encoding",
			                                   "upgrade"};
			int drop = 0;
			for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
				if (nl == strlen(skip[i]) && memcmp(p, skip[i], nl) == 0)
					drop = 1;
			if (nl == 4 && memcmp(p, "host", 4) == 0)
				out[authority] = (struct lg_hdr){":authority", v, 10, strlen(v)};
			else if (!drop && nl)
				ADD(p, nl, v, strlen(v));
		}
		p = eol + 2;
	}
	if (s->body) {
		const char *ct = s->content_type ? s->content_type : "text/plain";
		char *num = buf + ll + 1;
		snprintf(num, 32, "%zu", s->bodylen);
		ADD("content-length", 14, num, strlen(num));
		ADD("content-type", 12, ct, strlen(ct));
	}
#undef ADD
	return n;
}

int req_build(struct req *r, const struct req_spec *s)
{
	memset(r, 0, sizeof *r);
	const struct req_lines *l = s->lines;
	/* ab's own lines come after the -H ones, unless a -H replaced them */
	struct req_text hdrs = {0};
	int rc = text_add(&hdrs, text_str(&l->hdrs), NULL, NULL);
	if (!rc && !l->host)
		rc = text_add(&hdrs, "Host: ", s->host_field, s->colonhost) ||
		     text_add(&hdrs, "\r\n", NULL, NULL);
	if (!rc && !l->useragent)
		rc = text_add(&hdrs, "User-Agent: loadgen/", COROBENCH_VERSION, "\r\n");
	if (!rc && !l->accept)
		rc = text_add(&hdrs, "Accept: */*\r\n", NULL, NULL);
	const char *conn = s->keepalive ? (s->http11 ? "" : "Connection: Keep-Alive\r\n")
	                                : (s->http11 ? "Connection: close\r\n" : "");
	if (!rc && !(r->bytes = malloc(REQ_MAX + s->bodylen)))
		rc = -1;
	int len = 0;
	if (!rc && !s->body)
		len = snprintf(r->bytes, REQ_MAX, "%s %s HTTP/1.%d\r\n%s%s%s%s\r\n", s->method,
		               s->target, s->http11, conn, text_str(&l->cookie), text_str(&l->auth),
		               text_str(&hdrs));
	else if (!rc)
		len = snprintf(
		    r->bytes, REQ_MAX,
		    "%s %s HTTP/1.%d\r\n%s%s%sContent-length: %zu\r\nContent-type: %s\r\n%s\r\n",
		    s->method, s->target, s->http11, conn, text_str(&l->cookie), text_str(&l->auth),
		    s->bodylen, s->content_type ? s->content_type : "text/plain", text_str(&hdrs));
	if (rc) {
		free(hdrs.s);
		req_free(r);
		return -2;
	}
	if (len < 0 || len >= REQ_MAX) {
		free(hdrs.s);
		req_free(r);
		return -1;
	}
	r->headlen = (size_t)len;
	if (s->body)
		memcpy(r->bytes + len, s->body, s->bodylen);
	r->len = r->headlen + (s->body ? s->bodylen : 0);
	if (s->h2) {
		struct req_text all = {0};
		int n = text_add(&all, text_str(&l->cookie), text_str(&l->auth), text_str(&hdrs))
		            ? -2
		            : h2_fields(r, s, all.s);
		free(all.s);
		if (n < 0) {
			free(hdrs.s);
			req_free(r);
			return n;
		}
		r->nh2 = n;
	}
	free(hdrs.s);
	return 0;
}

void req_free(struct req *r)
{
	free(r->bytes);
	free(r->h2store);
	r->bytes = r->h2store = NULL;
}
