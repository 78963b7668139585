/* driver_h1_int.h: what driver_h1.c and driver_h1_pipe.c (its --pipeline
 * handler) share: one connection's and one thread's state, and the few
 * functions each calls in the other. Internal to the HTTP/1.x driver. */
#ifndef DRIVER_H1_INT_H
#define DRIVER_H1_INT_H

#include "engine_int.h"

#define CBUFFSIZE 8192 /* ab's header buffer: a head must fit in 8191 bytes */

enum cstate {
	ST_UNCONN,
	ST_CONNECTING,
	ST_WRITE,
	ST_READ,
	ST_IDLE,
	ST_RATEWAIT,
	ST_BUSY, /* a Unix listener's queue was full: connect again shortly */
	ST_PIPE, /* --pipeline: requests go out and answers come in at once */
};

/* --pipeline: one request in flight on a connection */
struct pl_req {
	uint64_t start, connect, endwrite;
};

struct h1t;

struct conn {
	struct ev_sock s; /* first: the handlers get the connection from it */
	struct h1t *h;
	int state;
	int keepalive, gotheader, chunked, chunk_done, has_status;
	int sending; /* the request is with ev_send() */
	int status;
	long cl; /* Content-Length seen, -1 if none */
	size_t read, bread, length;
	int cbx;
	char *cbuff; /* allocated only when a head arrives in pieces */
	uint64_t start, connect, endwrite, beginread;
	/* --rate (engine_int.h's schedule): start is when the request really
	 * started, its connect or (on a connection opened before it was due)
	 * its send */
	uint64_t intended;    /* when the request in flight was due */
	uint64_t due;         /* when the next one is: request k of connection j */
	uint64_t k;           /* requests this connection sent on its schedule */
	uint64_t free_at;     /* when its last request ended */
	uint32_t j;           /* the connection's number in the run */
	int opened_for;       /* the connection was opened for a request already due */
	int busy;             /* still busy with the previous request when this one was due */
	struct ev_timer rate; /* fires at due */
	struct resp_chunked ch;
	struct ev_timer retry; /* ST_BUSY: fires when the connect is tried again */
	/* --pipeline: the requests in flight, oldest (the one being answered)
	 * first, in a ring of cf->pipeline */
	struct pl_req *pl;
	int pl_head, pl_n;
	int pl_sending;  /* the newest pl_sending of them are with ev_send() */
	int pl_fresh;    /* no request sent on this connection yet: the first carry its connect */
	int queued;      /* in h->plq, for its next requests */
	int pl_sendfail; /* a send failed: nothing more goes out; the read side ends it */
};

struct h1t {
	struct thr *t;
	const struct lg_conf *cf;
	struct ev *ev;
	struct conn *conns;
	struct conn **pending; /* keep-alive connections whose next request waits */
	int npending;
	int nconns, initialized;
	int nratewait; /* --rate: connections waiting for their start */
	int nretry;    /* connections in ST_BUSY */
	int pipe;      /* --pipeline: requests in flight per connection (1: off) */
	char *pipereq; /* --pipeline: pipe copies of the request back to back */
	struct pl_req *plmem;
	struct conn **plq; /* --pipeline: connections to refill after the batch of events */
	int nplq;
	struct ev_timer scan;
};

static inline void reset_conn(struct conn *c)
{
	c->read = c->bread = c->length = 0;
	c->keepalive = c->gotheader = c->chunked = c->chunk_done = 0;
	c->has_status = 0;
	c->cbx = 0;
	c->cl = -1;
	c->beginread = c->endwrite = 0;
}

static inline int check_length(struct thr *t, struct conn *c)
{
	return lge_check_length(t, c->bread, c->gotheader, c->cl, c->has_status, c->status);
}

/* driver_h1.c */
void dh1_start_connect(struct h1t *h, struct conn *c);
void dh1_got_head(struct h1t *h, struct conn *c, const char *head, size_t hlen);
void dh1_head_too_big(struct h1t *h, struct conn *c);
void dh1_on_event(struct ev_sock *s, unsigned ev);
/* Closes c's socket; a request still going out was not sent after all (its
 * place in -n is given back). */
void dh1_drop(struct h1t *h, struct conn *c);

/* driver_h1_timeout.c: the -s scan (h->scan's timer, every SCAN_US) and
 * --rate's drain after -s. */
#define SCAN_US 1000000 /* -s timeouts are looked for once a second */
void dh1_check_timeouts(struct ev_timer *tm, uint64_t now);
void dh1_drain_expired(struct h1t *h);

/* driver_h1_pipe.c: --pipeline */
extern const struct ev_handler dh1_pl_handler;
void dh1_pl_drop(struct h1t *h, struct conn *c, int keep);
void dh1_pl_reconnect(struct h1t *h, struct conn *c);
void dh1_pl_start(struct h1t *h, struct conn *c, uint64_t now);
void dh1_pl_fill(struct h1t *h, struct conn *c, uint64_t now);
void dh1_pl_flush(struct h1t *h);

#endif
