/* fetch_internal.h — what the two files of the fetcher share (fetch.c:
 * transfers, their outcome and the API of fetch.h; fetch_loop.c: libcurl's
 * multi handles on the libevent loop, its sockets and timers). Not an API:
 * workers use fetch.h.
 */
#ifndef COROBENCH_FETCH_INTERNAL_H
#define COROBENCH_FETCH_INTERNAL_H

#include "fetch.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <time.h>

/* libcurl finds an idle connection for a transfer by walking every
 * connection to that host in its cache (url.c, ConnectionExists): with 500
 * transfers in flight the walk cost a sixth of a request. Transfers are
 * therefore spread over a few multi handles, each with its own cache and so
 * a walk this many times shorter: each goes to the one with the fewest in
 * flight (the first of those), so that a steady load finds its connections
 * where it left them and a single client uses a single connection. */
#define FETCH_SHARDS 8

/* One upstream socket libcurl told us about. Sockets we opened ourselves
 * (CURLOPT_OPENSOCKETFUNCTION) stay registered with libevent for reading
 * while their connection idles in libcurl's cache: a kept-alive connection
 * is handed from transfer to transfer, and re-adding and deleting it each
 * time cost two epoll_ctl() calls per request. They leave libevent when
 * libcurl closes them (CURLOPT_CLOSESOCKETFUNCTION), or when they turn
 * readable while idle (the upstream closed them; libcurl's own liveness
 * check finds that out at the next reuse). */
struct fetch_sock {
	struct fetcher *f;
	struct fetch_shard *sh; /* whose multi handle owns it */
	curl_socket_t fd;
	short armed;  /* EV_READ|EV_WRITE as registered with libevent; 0: not added */
	bool watched; /* libcurl wants events (after POLL_IN/OUT, until POLL_REMOVE) */
	bool ours;    /* opened by opensock_cb: we see its close */
	struct event ev;
	struct fetch_sock *prev, *next; /* all live ones, for fetcher_free */
};

/* Growable body buffer with a cap; handed to the caller on success. */
struct fetch_buf {
	char *data;
	size_t len, cap, max;
	bool too_big;
};

struct fetch_req {
	struct fetcher *f; /* NULL for a fetch_sync's handle */
	struct fetch_shard *sh;
	CURL *easy;
	CURLU *uh; /* url, parsed once: CURLOPT_CURLU */
	char *url; /* the URL the handle is set to, NULL: none yet */
	fetch_done_fn done;
	void *arg;
	struct fetch_buf buf;
	struct timespec start;
	struct event fail_ev;      /* delivers a failure that happened inside fetcher_get */
	enum app_fetch_error fail; /* its error */
	bool in_multi;
	bool live;                     /* in flight: guards against a second fetch_cancel */
	struct fetch_req *prev, *next; /* in flight list, or free list (next only) */
};

/* One multi handle, its timer and the idle transfers bound to it. */
struct fetch_shard {
	struct fetcher *f;
	CURLM *multi;
	struct event timer;
	struct fetch_req *free_list;
	unsigned ninflight;
};

struct fetcher {
	struct event_base *base;
	struct fetch_shard shard[FETCH_SHARDS];
	unsigned nshards;
	struct fetch_opts opts;
	struct fetch_req *inflight; /* doubly linked */
	unsigned ninflight, nfree;
	struct fetch_sock *socks;
	struct fetch_sock **byfd; /* libcurl forgets sockp at POLL_REMOVE; we do not */
	size_t nbyfd;
};

struct fetch_sync {
	struct fetch_req req;
};

/* Take r's result: fill *res, return the body (malloc'd, or NULL). */
void *fetch_take_result(struct fetch_req *r, CURLcode rc, struct app_fetch_result *res);
/* Finish r: recycle it, then run its callback. */
void fetch_req_finish(struct fetcher *f, struct fetch_req *r, struct app_fetch_result *res,
                      void *body);

/* fetch_loop.c: a shard's multi handle on the loop; the socket callbacks
 * every easy handle of a fetcher gets; a socket entry's end. */
bool fetch_shard_init(struct fetch_shard *sh, struct fetcher *f);
curl_socket_t fetch_opensock_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a);
int fetch_closesock_cb(void *clientp, curl_socket_t fd);
void fetch_sock_free(struct fetcher *f, struct fetch_sock *s);

#endif
