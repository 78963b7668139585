/* request: the bytes loadgen sends for every request, built once per run:
 * ab's HTTP/1.x request (its request line, its header lines in its order,
 * the body) and, for --h2, the same request as HTTP/2 header fields. The
 * header lines the options add (-C, -A, -P, -H) are gathered as ab gathers
 * them, while the command line is read. */
#ifndef LOADGEN_REQUEST_H
#define LOADGEN_REQUEST_H

#include <stddef.h>

#include "engine.h"

#define REQ_MAX_H2_HDRS 128

/* Header text, "Name: value\r\n" lines. */
struct req_text {
	char *s;
	size_t len;
};

struct req_lines {
	struct req_text cookie;      /* one Cookie line for all -C */
	struct req_text auth;        /* -A and -P, in order */
	struct req_text hdrs;        /* -H, in order */
	int host, useragent, accept; /* a -H replaced ab's Host, User-Agent or Accept line */
};

/* Each returns 0, or -1 when out of memory. */
int req_add_cookie(struct req_lines *l, const char *value);
int req_add_header(struct req_lines *l, const char *line);
/* -A (proxy 0) and -P (proxy 1): "user:password", sent as Basic
 * credentials; -2 when they are longer than ab accepts. */
int req_add_auth(struct req_lines *l, int proxy, const char *userpass);
void req_lines_free(struct req_lines *l);

/* What a request is made of. */
struct req_spec {
	const char *method;
	const char *target; /* the path, or the whole URL through a proxy (-X) */
	const char *path;   /* the path (HTTP/2's :path) */
	const char *host_field, *colonhost;
	int http11, keepalive;
	const struct req_lines *lines;
	const char *body; /* NULL: no body, no Content-length */
	size_t bodylen;
	const char *content_type; /* NULL: ab's text/plain */
	int h2;                   /* also build the HTTP/2 header fields */
	int tls;                  /* :scheme https */
};

struct req {
	char *bytes; /* the HTTP/1.x request, body included */
	size_t len;
	size_t headlen; /* without the body */
	struct lg_hdr h2[REQ_MAX_H2_HDRS];
	int nh2;
	char *h2store; /* where the HTTP/2 fields' strings live */
};

/* Builds *r from *s; 0, -1 when the request is longer than ab's 8 KiB
 * buffer (or has too many HTTP/2 fields), -2 when out of memory. */
int req_build(struct req *r, const struct req_spec *s);
void req_free(struct req *r);

#endif
