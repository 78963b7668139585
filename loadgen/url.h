/* url: splits an ab-style target "[http[s]://]host[:port]/path" the way
 * ApacheBench's parse_url() does (same accepted forms, same defaults: port
 * 80, or 443 for https), so an ab command line means the same target here;
 * a refused one comes with what is wrong with it. */
#ifndef LOADGEN_URL_H
#define LOADGEN_URL_H

#include <stdint.h>

enum url_status {
	URL_OK = 0,
	URL_INVALID, /* ab: "invalid URL"; why says what is wrong */
};

struct url {
	char host[256];       /* as written, brackets stripped for IPv6 */
	char host_field[260]; /* Host header value without the port: "[::1]" */
	char colonhost[8];    /* ":8080", or "" for the scheme's default port */
	uint16_t port;
	int tls;         /* https:// */
	char path[4096]; /* from the first '/' on, query included */
	const char *why; /* URL_INVALID: what is wrong, a phrase */
};

/* Parses s into *u; returns URL_OK, or URL_INVALID with u->why. */
enum url_status url_parse(const char *s, struct url *u);

#endif
