/* driver_h1_timeout: -s for HTTP/1.x connections. Once a second (SCAN_US)
 * the scan looks for a connect, send or wait older than the timeout; what
 * it finds fails as a Timeout and spends its place in -n (request_expired),
 * so a -n run ends whatever the other connections do. With --rate the drain
 * after the schedule ends after -s too (dh1_drain_expired). */
#include "driver_h1_int.h"
#include "engine_int.h"

#include <stddef.h>

/* -s: a request that went out (its place in -n taken: t->started) and got
 * no whole answer within the timeout. It fails as a Timeout and is not
 * complete (ab would abort the run: "The timeout specified has expired");
 * its place stays spent, as a pipelined one's (dh1_pl_drop(h, c, 1)), and
 * counts toward -n's end (lge_all_over()): the run ends once each of the
 * -n requests is complete or timed out, whatever the other connections do.
 * (Given back instead, as a send in flight was, it went out again: a
 * Timeout and a complete request for one place.) */
static void request_expired(struct h1t *h)
{
	h->t->r.err_timeout++;
	h->t->spent++;
	lge_publish_failed(h->t);
}

/* -s: c's connect took too long: the request it was for is spent
 * (lge_connect_expired()), and c connects again for the next one. */
static void connect_expired(struct h1t *h, struct conn *c)
{
	if (c->state == ST_BUSY)
		lge_retry_stop(h->ev, &c->retry, &h->nretry);
	else
		dh1_drop(h, c);
	c->state = ST_UNCONN;
	lge_connect_expired(h->t, c->j, &c->k, &c->due);
	dh1_start_connect(h, c);
}

/* -s: a request (connect, send or wait) older than the timeout fails. */
void dh1_check_timeouts(struct ev_timer *tm, uint64_t now)
{
	struct h1t *h = (struct h1t *)((char *)tm - offsetof(struct h1t, scan));
	ev_timer_start(h->ev, tm, now + SCAN_US);
	for (int i = 0; i < h->nconns; i++) {
		struct conn *c = &h->conns[i];
		if (c->state == ST_PIPE && c->pl_n > 0) {
			struct pl_req *q = &c->pl[c->pl_head];
			if (now <= (q->endwrite ? q->endwrite : q->start) + h->cf->timeout_us)
				continue;
			request_expired(h);
			dh1_pl_drop(h, c, 1); /* the one that timed out is spent */
			dh1_pl_reconnect(h, c);
			continue;
		}
		if (c->state != ST_CONNECTING && c->state != ST_BUSY && c->state != ST_WRITE &&
		    c->state != ST_READ)
			continue;
		uint64_t since = c->state == ST_READ && c->endwrite ? c->endwrite : c->start;
		if (now <= since + h->cf->timeout_us)
			continue;
		c->free_at = now;
		if (c->state != ST_READ && !c->sending) {
			connect_expired(h, c);
			continue;
		}
		request_expired(h);
		c->sending = 0; /* (else drop() gives its place back) */
		dh1_drop(h, c);
		c->state = ST_UNCONN;
		dh1_start_connect(h, c);
	}
}

/* --rate: the drain lasted -s; what is still on its way was sent before the
 * schedule's end, so it is older than -s: a timeout, as the -s scan (once
 * a second) would have found it. */
void dh1_drain_expired(struct h1t *h)
{
	for (int i = 0; i < h->nconns; i++) {
		const struct conn *c = &h->conns[i];
		if (c->state == ST_WRITE || c->state == ST_READ ||
		    (c->state == ST_CONNECTING && (!h->cf->keepalive || c->opened_for)))
			h->t->r.err_timeout++;
	}
	lge_publish_failed(h->t);
}
