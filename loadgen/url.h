/* url: splits an ab-style target "[http://]host[:port]/path" the way
 * ApacheBench's parse_url() does (same accepted forms, same defaults), so an
 * ab command line means the same target here. */
#ifndef LOADGEN_URL_H
#define LOADGEN_URL_H

#include <stdint.h>

enum url_status {
	URL_OK = 0,
	URL_INVALID,     /* ab: "invalid URL" + usage */
	URL_UNSUPPORTED, /* https:// (TLS is not supported) */
};

struct url {
	char host[256];       /* as written, brackets stripped for IPv6 */
	char host_field[260]; /* Host header value without the port: "[::1]" */
	char colonhost[8];    /* ":8080", or "" for the default port 80 */
	uint16_t port;
	char path[4096]; /* from the first '/' on, query included */
};

/* Parses s into *u; returns URL_OK or why it cannot be used. */
enum url_status url_parse(const char *s, struct url *u);

#endif
