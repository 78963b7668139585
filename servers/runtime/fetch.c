/* fetch.c — upstream GETs for a worker: one libcurl multi handle driven by
 * the worker's libevent loop, after libcurl's hiperfifo.c example. libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake
 * it (CURLMOPT_TIMERFUNCTION); libevent tells libcurl what happened through
 * curl_multi_socket_action(). Finished transfers are read off
 * curl_multi_info_read() and handed to their callback.
 *
 * The steady state allocates only the body handed to the caller: transfers
 * (easy handle, options already set, event for deferred failures) come from
 * a free list, and the multi handle's connection cache keeps upstream
 * connections alive for the next transfer to any easy handle.
 */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Transfers kept on the free list after a burst; beyond this they are
 * freed so a spike does not pin memory forever. */
#define FETCH_FREE_MAX 4096
/* Connections the multi handle keeps open (curl's default is 4 per easy
 * handle added, which closes and reopens under a burst). */
#define FETCH_MAXCONNECTS 4096

struct fetch_sock {
	struct fetcher *f;
	curl_socket_t fd;
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
	CURL *easy;
	fetch_done_fn done;
	void *arg;
	struct fetch_buf buf;
	struct timespec start;
	struct event fail_ev;      /* delivers a failure that happened inside fetcher_get */
	enum app_fetch_error fail; /* its error */
	bool in_multi;
	bool live; /* in flight: guards against a second fetch_cancel */
	struct fetch_req *prev, *next; /* in flight list, or free list (next only) */
};

struct fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event timer;
	struct fetch_opts opts;
	struct fetch_req *inflight; /* doubly linked */
	struct fetch_req *free_list;
	unsigned ninflight, nfree;
	struct fetch_sock *socks;
};

struct fetch_sync {
	struct fetch_req req;
};

struct fetch_opts fetch_opts_default(void)
{
	return (struct fetch_opts){
	    .timeout_ms = 10000,
	    .connect_timeout_ms = 2000,
	    .max_host_connections = 0,
	    .max_body_bytes = 16u * 1024 * 1024,
	};
}

int fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- the body ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userp)
{
	struct fetch_req *r = userp;
	struct fetch_buf *b = &r->buf;
	size_t n = size * nmemb;
	if (n > b->max - b->len) {
		b->too_big = true;
		return CURL_WRITEFUNC_ERROR;
	}
	if (b->len + n + 1 > b->cap) {
		/* First chunk: size the buffer from Content-Length when there is
		 * one, so a known-length body is one allocation. */
		size_t want = b->cap ? b->cap * 2 : 4096;
		curl_off_t cl = -1;
		if (!b->cap &&
		    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
		        CURLE_OK &&
		    cl > 0 && (curl_off_t)b->max >= cl)
			want = (size_t)cl + 1;
		if (want < b->len + n + 1)
			want = b->len + n + 1;
		char *p = realloc(b->data, want);
		if (!p)
			return CURL_WRITEFUNC_ERROR;
		b->data = p;
		b->cap = want;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

static void buf_reset(struct fetch_buf *b, size_t max)
{
	free(b->data);
	*b = (struct fetch_buf){.max = max};
}

/* ---- outcome ---- */

static enum app_fetch_error map_curlcode(CURLcode rc, const struct fetch_buf *b)
{
	switch (rc) {
	case CURLE_OK:
		return APP_FETCH_OK;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
		return APP_FETCH_ECONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return APP_FETCH_ETIMEOUT;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
		return APP_FETCH_ERESET;
	case CURLE_WRITE_ERROR:
		/* Our write callback refused: too big is the upstream's fault,
		 * a failed realloc is ours. */
		return b->too_big ? APP_FETCH_EPROTO : APP_FETCH_ENOMEM;
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_TOO_MANY_REDIRECTS:
		return APP_FETCH_EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return APP_FETCH_ENOMEM;
	default:
		return APP_FETCH_EINTERNAL;
	}
}

/* Fill res from a finished transfer; returns the body the caller now owns
 * (NULL when empty or failed) and leaves the buffer empty. */
static void *take_result(struct fetch_req *r, CURLcode rc, struct app_fetch_result *res)
{
	long status = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	*res = (struct app_fetch_result){
	    .error = map_curlcode(rc, &r->buf),
	    .status = (int)status,
	    .elapsed_ms = ms_since(&r->start),
	};
	if (res->error == APP_FETCH_OK && status >= 500)
		res->error = APP_FETCH_ESTATUS;
	void *body = NULL;
	if (res->error == APP_FETCH_OK && r->buf.len > 0) {
		r->buf.data[r->buf.len] = '\0'; /* a courtesy for string users */
		body = r->buf.data;
		res->body = body;
		res->len = r->buf.len;
		r->buf.data = NULL;
	}
	buf_reset(&r->buf, r->buf.max);
	return body;
}

/* ---- easy handles ---- */

/* Options that never change for a handle; only the URL does per transfer. */
static CURL *easy_new(struct fetch_req *r, const struct fetch_opts *o)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body_bytes);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	return e;
}

static void req_destroy(struct fetch_req *r)
{
	if (r->f)
		event_del(&r->fail_ev);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	free(r->buf.data);
	free(r);
}

static void fail_cb(evutil_socket_t fd, short what, void *arg);

static struct fetch_req *req_get(struct fetcher *f)
{
	struct fetch_req *r = f->free_list;
	if (r) {
		f->free_list = r->next;
		f->nfree--;
		r->prev = r->next = NULL;
		return r;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->f = f;
	r->buf.max = f->opts.max_body_bytes;
	r->easy = easy_new(r, &f->opts);
	if (!r->easy) {
		free(r);
		return NULL;
	}
	evtimer_assign(&r->fail_ev, f->base, fail_cb, r);
	return r;
}

static void inflight_unlink(struct fetcher *f, struct fetch_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		f->inflight = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	f->ninflight--;
}

/* Take r out of flight and back to the free list. */
static void req_put(struct fetcher *f, struct fetch_req *r)
{
	r->live = false;
	inflight_unlink(f, r);
	if (r->in_multi) {
		curl_multi_remove_handle(f->multi, r->easy);
		r->in_multi = false;
	}
	event_del(&r->fail_ev);
	buf_reset(&r->buf, r->buf.max);
	r->done = NULL;
	r->arg = NULL;
	if (f->nfree >= FETCH_FREE_MAX) {
		req_destroy(r);
		return;
	}
	r->next = f->free_list;
	f->free_list = r;
	f->nfree++;
}

/* Finish r: recycle it first (the callback may start new transfers and
 * reuse it), then run the callback. */
static void req_finish(struct fetcher *f, struct fetch_req *r, struct app_fetch_result *res,
                       void *body)
{
	fetch_done_fn done = r->done;
	void *arg = r->arg;
	req_put(f, r);
	done(arg, res, body);
}

static void fail_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fetch_req *r = arg;
	struct app_fetch_result res = {
	    .error = r->fail,
	    .elapsed_ms = ms_since(&r->start),
	};
	req_finish(r->f, r, &res, NULL);
}

/* ---- the multi handle and the loop ---- */

static void check_done(struct fetcher *f)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(f->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		struct fetch_req *r = (struct fetch_req *)priv;
		CURLcode rc = msg->data.result;
		struct app_fetch_result res;
		void *body = take_result(r, rc, &res);
		req_finish(f, r, &res, body);
	}
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetcher *f = arg;
	int action =
	    ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(f->multi, fd, action, &running);
	/* No "running == 0: drop the timer" here, as hiperfifo.c does: a
	 * callback in check_done() may have started a transfer that needs it.
	 * libcurl removes its timer itself through multi_timer_cb(-1). */
	check_done(f);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fetcher *f = arg;
	int running;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(f);
}

/* CURLMOPT_TIMERFUNCTION: only arm; calling back into libcurl from here
 * is not allowed. */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct fetcher *f = userp;
	if (timeout_ms < 0) {
		evtimer_del(&f->timer);
		return 0;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(&f->timer, &tv);
	return 0;
}

static void sock_free(struct fetcher *f, struct fetch_sock *s)
{
	event_del(&s->ev);
	if (s->prev)
		s->prev->next = s->next;
	else
		f->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: mirror libcurl's interest in a socket. */
static int multi_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	(void)e;
	struct fetcher *f = userp;
	struct fetch_sock *s = sockp;
	if (what == CURL_POLL_REMOVE) {
		if (s)
			sock_free(f, s);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1; /* libcurl fails the transfer */
		s->f = f;
		s->fd = fd;
		s->next = f->socks;
		if (f->socks)
			f->socks->prev = s;
		f->socks = s;
		curl_multi_assign(f->multi, fd, s);
	} else {
		event_del(&s->ev);
	}
	short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	                     ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	event_assign(&s->ev, f->base, fd, kind, sock_event_cb, f);
	event_add(&s->ev, NULL);
	return 0;
}

struct fetcher *fetcher_new(struct event_base *base, const struct fetch_opts *opts)
{
	struct fetcher *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->base = base;
	f->opts = opts ? *opts : fetch_opts_default();
	f->multi = curl_multi_init();
	if (!f->multi) {
		free(f);
		errno = ENOMEM;
		return NULL;
	}
	evtimer_assign(&f->timer, base, timer_event_cb, f);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	long maxconn = FETCH_MAXCONNECTS;
	if (f->opts.max_host_connections) {
		curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
		                  (long)f->opts.max_host_connections);
		if (f->opts.max_host_connections > (unsigned)maxconn)
			maxconn = (long)f->opts.max_host_connections;
	}
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, maxconn);
	return f;
}

void fetcher_free(struct fetcher *f)
{
	if (!f)
		return;
	while (f->inflight) {
		struct fetch_req *r = f->inflight;
		inflight_unlink(f, r);
		if (r->in_multi)
			curl_multi_remove_handle(f->multi, r->easy);
		req_destroy(r);
	}
	while (f->free_list) {
		struct fetch_req *r = f->free_list;
		f->free_list = r->next;
		req_destroy(r);
	}
	curl_multi_cleanup(f->multi);
	evtimer_del(&f->timer);
	while (f->socks) /* whatever libcurl did not ask us to remove */
		sock_free(f, f->socks);
	free(f);
}

int fetcher_get(struct fetcher *f, const char *url, fetch_done_fn done, void *arg,
                struct fetch_req **out_req)
{
	struct fetch_req *r = req_get(f);
	if (!r)
		return APP_FETCH_ENOMEM;
	r->done = done;
	r->arg = arg;
	r->live = true;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->next = f->inflight;
	if (f->inflight)
		f->inflight->prev = r;
	f->inflight = r;
	f->ninflight++;
	if (out_req)
		*out_req = r;

	CURLcode rc = curl_easy_setopt(r->easy, CURLOPT_URL, url);
	CURLMcode mrc = CURLM_OK;
	if (rc == CURLE_OK)
		mrc = curl_multi_add_handle(f->multi, r->easy);
	if (rc == CURLE_OK && mrc == CURLM_OK) {
		/* libcurl now arms a zero timeout through multi_timer_cb: the
		 * transfer starts, and can only finish, from the loop. */
		r->in_multi = true;
		return 0;
	}
	/* Failed already: still report from the loop, never from here. */
	r->fail = (rc == CURLE_OUT_OF_MEMORY || mrc == CURLM_OUT_OF_MEMORY) ? APP_FETCH_ENOMEM
	                                                                    : APP_FETCH_EINTERNAL;
	static const struct timeval now = {0, 0};
	evtimer_add(&r->fail_ev, &now);
	return 0;
}

void fetch_cancel(struct fetch_req *req)
{
	if (req && req->f && req->live)
		req_put(req->f, req);
}

unsigned fetcher_inflight(const struct fetcher *f)
{
	return f->ninflight;
}

/* ---- the blocking variant ---- */

struct fetch_sync *fetch_sync_new(const struct fetch_opts *opts)
{
	struct fetch_sync *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	struct fetch_opts o = opts ? *opts : fetch_opts_default();
	s->req.buf.max = o.max_body_bytes;
	s->req.easy = easy_new(&s->req, &o);
	if (!s->req.easy) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

void fetch_sync_free(struct fetch_sync *s)
{
	if (!s)
		return;
	curl_easy_cleanup(s->req.easy);
	free(s->req.buf.data);
	free(s);
}

void fetch_sync_get(struct fetch_sync *s, const char *url, struct app_fetch_result *res,
                    void **body)
{
	struct fetch_req *r = &s->req;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	CURLcode rc = curl_easy_setopt(r->easy, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(r->easy); /* the handle keeps its connection */
	*body = take_result(r, rc, res);
}
