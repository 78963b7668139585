/* url: ab's parse_url() and apr_parse_addr_port() rules, without APR. */
#include "url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum url_status bad(struct url *u, const char *why)
{
	u->why = why;
	return URL_INVALID;
}

/* apr_parse_addr_port(): "host", "host:port", "[v6]", "[v6]:port"; a bare
 * port or an IPv6 scope id leaves no usable host for ab. */
static enum url_status url_addr_port(const char *str, size_t len, struct url *u)
{
	if (len == 0)
		return bad(u, "no host");
	const char *last = str + len - 1, *ch = last;
	while (ch >= str && isdigit((unsigned char)*ch))
		ch--;
	if (ch < str)
		return bad(u, "a port but no host"); /* the whole string is a port */
	if (*ch == ':' && ch < last) {
		if (ch == str)
			return bad(u, "a port but no host");
		char num[16];
		size_t n = (size_t)(last - ch);
		if (n >= sizeof num)
			return bad(u, "the port is not in 1..65535");
		memcpy(num, ch + 1, n);
		num[n] = 0;
		long port = atol(num);
		if (port < 1 || port > 65535)
			return bad(u, "the port is not in 1..65535");
		u->port = (uint16_t)port;
		last = ch - 1;
	}
	size_t alen = (size_t)(last - str + 1);
	if (*str == '[') {
		const char *rb = memchr(str, ']', alen);
		if (!rb || rb != last)
			return bad(u, "an IPv6 address without its closing ']'");
		if (memchr(str, '%', alen))
			return bad(u, "an IPv6 scope id (ab refuses it)");
		alen -= 2;
		if (alen >= sizeof u->host)
			return bad(u, "the host is too long");
		memcpy(u->host, str + 1, alen);
		u->host[alen] = 0;
		struct in6_addr a6;
		if (inet_pton(AF_INET6, u->host, &a6) != 1)
			return bad(u, "not an IPv6 address in [ ]");
		snprintf(u->host_field, sizeof u->host_field, "[%s]", u->host);
		return URL_OK;
	}
	if (alen >= sizeof u->host)
		return bad(u, "the host is too long");
	memcpy(u->host, str, alen);
	u->host[alen] = 0;
	memcpy(u->host_field, u->host, alen + 1);
	return URL_OK;
}

enum url_status url_parse(const char *s, struct url *u)
{
	memset(u, 0, sizeof *u);
	size_t n = strlen(s);
	if (n > 7 && strncmp(s, "http://", 7) == 0) {
		s += 7;
	} else if (n > 8 && strncmp(s, "https://", 8) == 0) {
		s += 8;
		u->tls = 1;
	}
	const char *slash = strchr(s, '/');
	if (slash && slash > s && slash[-1] == ':' && slash[1] == '/')
		return bad(u, "only http:// and https:// are spoken");
	if (!slash)
		return bad(u, "no path: it needs a '/' after the host");
	enum url_status st = url_addr_port(s, (size_t)(slash - s), u);
	if (st != URL_OK)
		return st;
	if (strlen(slash) >= sizeof u->path)
		return bad(u, "the path is too long");
	strcpy(u->path, slash);
	unsigned dflt = u->tls ? 443 : 80;
	if (u->port == 0)
		u->port = (uint16_t)dflt;
	if (u->port != dflt)
		snprintf(u->colonhost, sizeof u->colonhost, ":%u", (unsigned)u->port);
	return URL_OK;
}
