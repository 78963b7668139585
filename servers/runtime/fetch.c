/* fetch.c — upstream GETs for a worker: libcurl multi handles driven by
 * the worker's libevent loop, after libcurl's hiperfifo.c example. libcurl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake
 * it (CURLMOPT_TIMERFUNCTION); libevent tells libcurl what happened through
 * curl_multi_socket_action(). Finished transfers are read off
 * curl_multi_info_read() and handed to their callback.
 *
 * The steady state allocates only the body handed to the caller: transfers
 * (easy handle, options and parsed URL already set, event for deferred
 * failures) come from free lists, and each multi handle's connection cache
 * keeps upstream connections alive for the next transfer to any of its easy
 * handles. A proxied request is what a worker does most, so the per-request
 * cost is kept down where libcurl lets us (measured with callgrind, see the
 * comments at FETCH_SHARDS, struct fetch_sock and req_set_url): no
 * epoll_ctl() for a reused connection, no URL parsing, no getenv(), short
 * connection-cache walks. */
#include "fetch_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Transfers kept on the free list after a burst; beyond this they are
 * freed so a spike does not pin memory forever. */
#define FETCH_FREE_MAX 4096

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
void *fetch_take_result(struct fetch_req *r, CURLcode rc, struct app_fetch_result *res)
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
	curl_easy_setopt(e, CURLOPT_PROXY, "");    /* never a proxy from the environment */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* nor two getenv() per transfer for no_proxy */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body_bytes);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->sh) {
		curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, fetch_opensock_cb);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r->sh);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, fetch_closesock_cb);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r->sh);
	}
	return e;
}

static void req_destroy(struct fetch_req *r)
{
	if (r->f)
		event_del(&r->fail_ev);
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_url_cleanup(r->uh); /* after the handle that points to it */
	free(r->url);
	free(r->buf.data);
	free(r);
}

/* Point r's handle at url. A handle is mostly reused for the URL it had
 * (a proxy fetches one upstream), and then nothing is done at all. Else the
 * URL is parsed here once and handed over as CURLOPT_CURLU besides
 * CURLOPT_URL: libcurl then copies the parsed URL at each transfer instead
 * of parsing the string and printing it back (a sixth of its work per
 * request). When we cannot parse it, libcurl gets the string alone and
 * reports the error its usual way. */
static CURLcode req_set_url(struct fetch_req *r, const char *url)
{
	if (r->url && strcmp(r->url, url) == 0)
		return CURLE_OK;
	free(r->url);
	r->url = NULL;
	CURLcode rc = curl_easy_setopt(r->easy, CURLOPT_URL, url);
	if (rc != CURLE_OK)
		return rc;
	if (!r->uh)
		r->uh = curl_url();
	/* libcurl's own flags for CURLOPT_URL (url.c, parseurlandfillconn) */
	if (r->uh && curl_url_set(r->uh, CURLUPART_URL, url,
	                          CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
		rc = curl_easy_setopt(r->easy, CURLOPT_CURLU, r->uh);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_CURLU, NULL);
		return CURLE_OK; /* not remembered: parsed again next time */
	}
	if (rc == CURLE_OK)
		r->url = strdup(url); /* NULL: just no shortcut next time */
	return rc;
}

static void fail_cb(evutil_socket_t fd, short what, void *arg);

static struct fetch_req *req_get(struct fetcher *f)
{
	struct fetch_shard *sh = &f->shard[0];
	for (unsigned i = 1; i < f->nshards; i++)
		if (f->shard[i].ninflight < sh->ninflight)
			sh = &f->shard[i];
	struct fetch_req *r = sh->free_list;
	if (r) {
		sh->free_list = r->next;
		f->nfree--;
		r->prev = r->next = NULL;
		return r;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->f = f;
	r->sh = sh;
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
	r->sh->ninflight--;
}

/* Take r out of flight and back to the free list. */
static void req_put(struct fetcher *f, struct fetch_req *r)
{
	r->live = false;
	inflight_unlink(f, r);
	if (r->in_multi) {
		curl_multi_remove_handle(r->sh->multi, r->easy);
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
	r->next = r->sh->free_list;
	r->sh->free_list = r;
	f->nfree++;
}

/* Finish r: recycle it first (the callback may start new transfers and
 * reuse it), then run the callback. */
void fetch_req_finish(struct fetcher *f, struct fetch_req *r, struct app_fetch_result *res,
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
	fetch_req_finish(r->f, r, &res, NULL);
}

struct fetcher *fetcher_new(struct event_base *base, const struct fetch_opts *opts)
{
	struct fetcher *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->base = base;
	f->opts = opts ? *opts : fetch_opts_default();
	/* A per-host cap holds per multi handle: one handle keeps it exact. */
	f->nshards = f->opts.max_host_connections ? 1 : FETCH_SHARDS;
	for (unsigned i = 0; i < f->nshards; i++) {
		if (!fetch_shard_init(&f->shard[i], f)) {
			f->nshards = i;
			fetcher_free(f);
			errno = ENOMEM;
			return NULL;
		}
	}
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
			curl_multi_remove_handle(r->sh->multi, r->easy);
		req_destroy(r);
	}
	for (unsigned i = 0; i < f->nshards; i++) {
		struct fetch_shard *sh = &f->shard[i];
		while (sh->free_list) {
			struct fetch_req *r = sh->free_list;
			sh->free_list = r->next;
			req_destroy(r);
		}
		curl_multi_cleanup(sh->multi); /* closes its connections: closesock_cb */
		evtimer_del(&sh->timer);
	}
	while (f->socks) /* whatever libcurl did not close through us */
		fetch_sock_free(f, f->socks);
	free(f->byfd);
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
	r->sh->ninflight++;
	if (out_req)
		*out_req = r;

	CURLcode rc = req_set_url(r, url);
	CURLMcode mrc = CURLM_OK;
	if (rc == CURLE_OK)
		mrc = curl_multi_add_handle(r->sh->multi, r->easy);
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
	*body = fetch_take_result(r, rc, res);
}
