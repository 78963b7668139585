/* url: ab's parse_url() and apr_parse_addr_port() rules, without APR. */
#include "url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* apr_parse_addr_port(): "host", "host:port", "[v6]", "[v6]:port"; a bare
 * port or an IPv6 scope id leaves no usable host for ab. */
static int url_addr_port(const char *str, size_t len, struct url *u)
{
	if (len == 0)
		return -1;
	const char *last = str + len - 1, *ch = last;
	while (ch >= str && isdigit((unsigned char)*ch))
		ch--;
	if (ch < str)
		return -1; /* the whole string is a port: no host */
	if (*ch == ':' && ch < last) {
		if (ch == str)
			return -1;
		char num[16];
		size_t n = (size_t)(last - ch);
		if (n >= sizeof num)
			return -1;
		memcpy(num, ch + 1, n);
		num[n] = 0;
		long port = atol(num);
		if (port < 1 || port > 65535)
			return -1;
		u->port = (uint16_t)port;
		last = ch - 1;
	}
	size_t alen = (size_t)(last - str + 1);
	if (*str == '[') {
		const char *rb = memchr(str, ']', alen);
		if (!rb || rb != last)
			return -1;
		if (memchr(str, '%', alen))
			return -1; /* scope id: ab refuses it */
		alen -= 2;
		if (alen >= sizeof u->host)
			return -1;
		memcpy(u->host, str + 1, alen);
		u->host[alen] = 0;
		struct in6_addr a6;
		if (inet_pton(AF_INET6, u->host, &a6) != 1)
			return -1;
		snprintf(u->host_field, sizeof u->host_field, "[%s]", u->host);
		return 0;
	}
	if (alen >= sizeof u->host)
		return -1;
	memcpy(u->host, str, alen);
	u->host[alen] = 0;
	memcpy(u->host_field, u->host, alen + 1);
	return 0;
}

enum url_status url_parse(const char *s, struct url *u)
{
	memset(u, 0, sizeof *u);
	size_t n = strlen(s);
	if (n > 7 && strncmp(s, "http://", 7) == 0)
		s += 7;
	else if (n > 8 && strncmp(s, "https://", 8) == 0)
		return URL_UNSUPPORTED;
	const char *slash = strchr(s, '/');
	if (!slash)
		return URL_INVALID;
	if (url_addr_port(s, (size_t)(slash - s), u) != 0)
		return URL_INVALID;
	if (strlen(slash) >= sizeof u->path)
		return URL_INVALID;
	strcpy(u->path, slash);
	if (u->port == 0)
		u->port = 80;
	if (u->port != 80)
		snprintf(u->colonhost, sizeof u->colonhost, ":%u", (unsigned)u->port);
	return URL_OK;
}
