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
#include "fetch_mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Transfers kept on the free list after a burst; beyond this they are
 * freed so a spike does not pin memory forever. */
#define FETCH_FREE_MAX 4096

struct fetch_opts fetch_opts_default(void)
{
	return (struct fetch_opts){
	    .timeout_ms = 10000,
	    .connect_timeout_ms = 2000,
	    .max_host_connections = 0,
	    .max_body_bytes = 1024 * 1024,
	};
}

int fetch_global_init(void)
{
	return fetch_mem_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
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

/* The answer's head, line by line (libcurl hands over each, interim
 * answers' too): what libcurl takes but nginx's proxy refuses as "upstream
 * sent ..." (ngx_http_proxy_process_header) ends the transfer here, and
 * the request gets 502: a 101 nobody asked for (libcurl would read the
 * rest as a body that never ends: 504 after the timeout), two
 * Content-Lengths or one that is not digits, Content-Length beside
 * Transfer-Encoding, a Transfer-Encoding other than "chunked". Returning
 * 0 makes libcurl stop with CURLE_WRITE_ERROR. */
/* A header line's value without OWS and the line end: [*v, return). */
static const char *field_value(const char **v, const char *end)
{
	while (*v < end && (**v == ' ' || **v == '\t'))
		(*v)++;
	while (end > *v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userp)
{
	struct fetch_buf *b = &((struct fetch_req *)userp)->buf;
	size_t len = size * nitems;
	const char *end = line + len;
	if (len >= 12 && memcmp(line, "HTTP/", 5) == 0) {
		/* A status line: a new head (after a 100 Continue, say). */
		b->ncl = b->nte = 0;
		const char *code = memchr(line, ' ', len);
		if (code && end - code >= 4 && memcmp(code + 1, "101", 3) == 0) {
			b->bad_head = true;
			return 0;
		}
		return len;
	}
	if (len > 15 && strncasecmp(line, "content-length:", 15) == 0) {
		const char *v = line + 15, *ve = field_value(&v, end);
		bool digits = ve > v;
		for (const char *d = v; d < ve; d++)
			digits &= *d >= '0' && *d <= '9';
		if (++b->ncl > 1 || !digits)
			b->bad_head = true;
	} else if (len > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
		const char *v = line + 18, *ve = field_value(&v, end);
		if (++b->nte > 1 || ve - v != 7 || strncasecmp(v, "chunked", 7) != 0)
			b->bad_head = true;
	} else {
		return len;
	}
	if (b->ncl && b->nte)
		b->bad_head = true;
	return b->bad_head ? 0 : len;
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
		/* Our write or header callback refused: too big or a bad head
		 * is the upstream's fault, a failed realloc is ours. */
		return b->too_big || b->bad_head ? APP_FETCH_EPROTO : APP_FETCH_ENOMEM;
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
	/* Any final status is the app's to pass on (app_fetch_status); a
	 * transfer that ended without one is not an answer. */
	if (res->error == APP_FETCH_OK && (status < 200 || status > 599))
		res->error = APP_FETCH_EPROTO;
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
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");    /* never a proxy from the environment */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* nor two getenv() per transfer for no_proxy */
	/* A name, once resolved, is kept: with the default (60 s) libcurl
	 * walks its whole DNS cache at the end of every transfer to expire
	 * entries (multi_done -> Curl_hostcache_prune), ~900 instructions.
	 * The upstream of a run does not move. */
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, -1L);
	/* libcurl's default Accept line (any type) says what no Accept header
	 * says (RFC 9110, 12.5.1): 13 bytes less for libcurl to format into every request, at ~70
	 * instructions a byte (its printf appends byte by byte). */
	static struct curl_slist no_accept = {"Accept:", NULL};
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, &no_accept);
	/* libcurl copies its CA paths into every transfer's connection
	 * template and frees them again, whatever the scheme (url.c,
	 * Curl_clone_primary_ssl_config): the proxy's are never needed (no
	 * proxy), the server's only for https (req_set_url). */
	curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, NULL);
	curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, NULL);
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
	char *scheme = NULL;
	bool parsed = r->uh && curl_url_set(r->uh, CURLUPART_URL, url,
	                                    CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
	                           CURLUE_OK;
	if (parsed) {
		curl_url_get(r->uh, CURLUPART_SCHEME, &scheme, 0);
		rc = curl_easy_setopt(r->easy, CURLOPT_CURLU, r->uh);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_CURLU, NULL);
	}
	/* The CA paths only where TLS may need them: libcurl's defaults (its
	 * build's, which curl_version_info reports) unless the URL is plain
	 * http. */
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	bool plain = scheme && strcmp(scheme, "http") == 0;
	curl_easy_setopt(r->easy, CURLOPT_CAINFO, plain ? NULL : v->cainfo);
	curl_easy_setopt(r->easy, CURLOPT_CAPATH, plain ? NULL : v->capath);
	curl_free(scheme);
	if (parsed && rc == CURLE_OK)
		r->url = strdup(url); /* NULL: just no shortcut next time */
	return rc;                    /* unparsed: not remembered, parsed again next time */
}

static void fail_cb(evutil_socket_t fd, short what, void *arg);

static struct fetch_req *req_get(struct fetcher *f)
{
	/* The first handle with room (FETCH_SHARD_FILL); all full: one more
	 * handle, or when none can be had, the least busy. */
	struct fetch_shard *sh = NULL, *least = &f->shard[0];
	for (unsigned i = 0; i < f->nshards && !sh; i++) {
		if (f->shard[i].ninflight < FETCH_SHARD_FILL)
			sh = &f->shard[i];
		else if (f->shard[i].ninflight < least->ninflight)
			least = &f->shard[i];
	}
	if (!sh && f->nshards < f->maxshards && fetch_shard_init(&f->shard[f->nshards], f))
		sh = &f->shard[f->nshards++];
	if (!sh)
		sh = least;
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
	/* A per-host cap holds per multi handle: one handle keeps it exact.
	 * The first handle now, the others as the load grows (req_get). */
	f->maxshards = f->opts.max_host_connections ? 1 : FETCH_SHARDS;
	if (!fetch_shard_init(&f->shard[0], f)) {
		fetcher_free(f);
		errno = ENOMEM;
		return NULL;
	}
	f->nshards = 1;
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
