/* core.c — the worker process both servers run: the command line, the app,
 * the descriptor limit, the event loop, signals and the graceful timeout,
 * the live counters, the accept loop, and the books of live connections
 * (core.h). The worker's own code is reached through its struct
 * core_class; everything else about a process is decided here, once.
 */
#include "core_h1.h"

#include "corobench_config.h"

#include <event2/event.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per readiness event before the loop gets a turn. */
#define ACCEPT_BATCH 64
/* After accept(2) fails for want of descriptors (EMFILE and friends). */
#define ACCEPT_RETRY_MS 100
/* The master kills a worker still running at the graceful timeout: what
 * is left is cancelled this much before (at most a quarter of the
 * timeout), so it unwinds and the worker exits on its own, status 0. */
#define GRACE_MARGIN_MS 250

/* ---- accepting ---- */

static void accept_pause(struct core *w)
{
	if (w->accepting) {
		event_del(&w->accept_ev);
		w->accepting = false;
	}
}

static bool may_accept(struct core *w)
{
	return !w->cls->may_accept || w->cls->may_accept(w);
}

void core_accept_resume(struct core *w)
{
	if (!w->accepting && !w->stopping && w->listen_fd >= 0 && may_accept(w) &&
	    event_add(&w->accept_ev, NULL) == 0)
		w->accepting = true;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct core *w = arg;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		if (!may_accept(w)) {
			accept_pause(w); /* resumed when a connection ends */
			return;
		}
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* Drained without running out: an episode ends. */
				if (__builtin_expect(stats_accept_is_paused(), 0))
					stats_accept_resumed();
				return;
			}
			accept_pause(w);
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: back off instead of spinning on
				 * a level-triggered event, saying so once per episode. */
				if (errno == EMFILE || errno == ENFILE)
					stats_accept_paused(errno);
				struct timeval tv = core_tv(ACCEPT_RETRY_MS);
				evtimer_add(&w->retry_ev, &tv);
			}
			/* Anything else (EINVAL: the master shut the listener down
			 * at shutdown) means there is nothing to accept. */
			return;
		}
		if (w->tcp) {
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		w->cls->conn_open(w, fd);
	}
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	core_accept_resume(arg);
}

/* ---- connections ---- */

int core_conn_open(struct core *w, struct core_conn *c, int fd)
{
	c->w = w;
	c->fd = fd;
	c->r.w = w;
	c->parser = w->nparsers ? w->parsers[--w->nparsers] : http1_parser_new(&w->limits);
	c->tls = NULL;
	if (!c->parser || (w->tls && !(c->tls = tls_conn_new(w->tls)))) {
		if (c->parser && w->nparsers < CORE_PARSER_CACHE)
			w->parsers[w->nparsers++] = c->parser;
		else
			http1_parser_free(c->parser);
		c->parser = NULL;
		close(fd);
		return -1;
	}
	http_obuf_init(&c->out);
	c->obuf = &c->out;
	c->h2 = NULL;
	c->head_t0 = 0;
	c->head_nl = 0;
	c->fresh = true;
	c->head_done = c->partial = c->head = c->busy = c->queued = false;
	c->close_after = c->linger = c->dead = c->hold = false;
	c->answer_ka = true;
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	return 0;
}

/* TLS: say close_notify and send what is left for the peer, without
 * waiting (a full socket just loses it: the connection ends anyway). */
static void tls_goodbye(struct core_conn *c)
{
	if (!c->tls)
		return;
	tls_conn_close_notify(c->tls);
	struct http_obuf *o = tls_conn_out(c->tls);
	if (o->len > 0) {
		ssize_t n = send(c->fd, o->data, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		http_obuf_consume(o, n > 0 ? (size_t)n : 0);
	}
}

void core_conn_shut_wr(struct core_conn *c)
{
	tls_goodbye(c);
	(void)shutdown(c->fd, SHUT_WR);
}

void core_conn_close(struct core_conn *c)
{
	struct core *w = c->w;
	core_uncork(c);
	if (c->busy) {
		core_req_cancel(&c->r);
		core_h1_abort(c);
	}
	c->queued = false;
	if (c->h2) {
		struct core_h2 *h = c->h2;
		c->h2 = NULL;
		h->c = NULL;
		h->held_req = NULL;
		/* Every stream still running ends here (the worker's cancel
		 * unwinds it at once); the last reference frees the session. */
		for (struct core_stream *st = h->streams, *next; st; st = next) {
			next = st->next;
			w->cls->stream_cancel(st);
		}
		core_h2_unref(h);
	}
	tls_goodbye(c);
	close(c->fd);
	c->fd = -1;
	tls_conn_free(c->tls);
	c->tls = NULL;
	http_obuf_free(&c->out);
	if (w->nparsers < CORE_PARSER_CACHE) {
		http1_parser_reset(c->parser);
		w->parsers[w->nparsers++] = c->parser;
	} else {
		http1_parser_free(c->parser);
	}
	c->parser = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	core_maybe_done(w);
}

int core_adopt(struct core *w, int fd)
{
	evutil_make_socket_nonblocking(fd);
	return w->cls->conn_open(w, fd);
}

/* ---- shutdown ---- */

void core_maybe_done(struct core *w)
{
	if (w->stopping && w->nconns == 0 && (!w->cls->live || w->cls->live(w) == 0))
		event_base_loopbreak(w->base);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct core *w = arg;
	w->cls->expire(w);
	core_maybe_done(w);
}

void core_stop(struct core *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	w->ka_now = false;
	accept_pause(w);
	evtimer_del(&w->retry_ev);
	w->cls->stop(w);
	core_maybe_done(w);
	unsigned ms = w->opts->graceful_timeout * 1000u;
	ms -= ms / 4 < GRACE_MARGIN_MS ? ms / 4 : GRACE_MARGIN_MS;
	struct timeval tv = core_tv(ms);
	evtimer_add(&w->grace_ev, &tv);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	core_stop(arg);
}

/* ---- live counters (stats.h) ---- */

static void stats_fill(void *arg, struct worker_stats *out)
{
	struct core *w = arg;
	out->conns = w->nconns;
	out->inflight = w->inflight;
	out->streams = w->nstreams;
	out->coros = out->stack_pool = 0;
	if (w->cls->fill)
		w->cls->fill(w, out);
}

static void usr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	stats_log();
}

/* ---- the worker ---- */

/* The app's ops: the worker's blocking calls, the core's explicit calls
 * and answers (core_calls.c, core_h1.c, core_h2.c). */
int core_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg);
void core_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg);
void core_h1_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
                     size_t len);
void core_h2_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
                     size_t len);

/* The end of a loop turn (libevent runs an event activated during the
 * turn after the ones already active): send the corked answers. As many
 * as were corked when it began: a connection corked again meanwhile
 * (input it had kept) waits for the next turn, so no client holds the
 * loop here. */
static void cork_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct core *w = arg;
	for (unsigned n = w->ncorked; n > 0 && w->corked; n--) {
		struct core_conn *c = w->corked;
		core_uncork(c);
		w->cls->uncork(c);
	}
	if (w->corked) {
		struct timeval next = {0, 0};
		if (event_add(&w->cork_ev, &next) != 0) /* the next turn; if not, now */
			event_active(&w->cork_ev, EV_TIMEOUT, 1);
	}
}

struct core *core_new(struct event_base *base, const struct core_class *cls,
                      const struct server_opts *opts, const struct app *app, void *cfg,
                      int listen_fd)
{
	struct core *w = calloc(1, cls->size);
	if (!w)
		return NULL;
	w->cls = cls;
	w->opts = opts;
	w->app = app;
	w->base = base;
	w->listen_fd = listen_fd;
	int domain = AF_INET;
	socklen_t dl = sizeof(domain);
	if (listen_fd >= 0)
		(void)getsockopt(listen_fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl);
	w->tcp = domain != AF_UNIX;
	w->max_inflight = UINT32_MAX;
	w->keep_alive = opts->keepalive_timeout > 0;
	w->ka_now = w->keep_alive;
	w->read_ms = w->keep_alive ? opts->keepalive_timeout * 1000u : CORE_READ_MS_NO_KEEPALIVE;
	w->limits = http1_limits_default();
	w->limits.max_body_bytes = opts->max_body;
	w->h2_limits = h2_limits_default();
	w->h2_limits.http = w->limits;
	if (opts->h2_max_streams)
		w->h2_limits.max_streams = opts->h2_max_streams;
	w->h1_ops = (struct app_ctx_ops){cls->fetch, cls->sleep_ms, core_fetch_async,
	                                 core_sleep_async, core_h1_respond};
	w->h2_ops = w->h1_ops;
	w->h2_ops.respond = core_h2_respond;
	w->fopts = fetch_opts_default();
	w->fopts.timeout_ms = opts->upstream_timeout_ms;
	w->fopts.max_body_bytes = opts->upstream_max_body;
	w->fetcher = fetcher_new(base, &w->fopts);
	event_assign(&w->accept_ev, base, listen_fd, EV_READ | EV_PERSIST, accept_cb, w);
	evtimer_assign(&w->retry_ev, base, accept_retry_cb, w);
	evtimer_assign(&w->grace_ev, base, grace_cb, w);
	event_assign(&w->cork_ev, base, -1, 0, cork_cb, w);
	w->corked_tail = &w->corked;
	w->cork = !opts->send_at_once && cls->uncork != NULL;
	if (!w->fetcher || cls->start(w, cfg) != 0) {
		int err = errno;
		fetcher_free(w->fetcher);
		free(w);
		errno = err ? err : ENOMEM;
		return NULL;
	}
	core_accept_resume(w);
	return w;
}

void core_free(struct core *w)
{
	if (!w)
		return;
	w->stopping = false; /* no loopbreak from the teardown */
	w->cls->expire(w);   /* every connection and task ends */
	accept_pause(w);
	evtimer_del(&w->retry_ev);
	evtimer_del(&w->grace_ev);
	event_del(&w->cork_ev);
	w->cls->finish(w);
	fetcher_free(w->fetcher);
	core_calls_free(w);
	while (w->nparsers)
		http1_parser_free(w->parsers[--w->nparsers]);
	free(w);
}

struct core_run {
	const struct core_class *cls;
	const struct app *app;
	void *cfg;
	struct tls_server *tls;
};

/* master_run()'s worker function: one event loop until a graceful stop. */
static int worker_main(const struct worker_env *env, void *arg)
{
	const struct core_run *run = arg;
	const char *prog = run->cls->prog;
	signal(SIGPIPE, SIG_IGN);
	/* Precise timers for apps that sleep: libevent otherwise reads
	 * CLOCK_MONOTONIC_COARSE, so a sleep could end up to a jiffy early, and
	 * rounds waits up to epoll_wait's millisecond. They cost a
	 * timerfd_settime() per loop turn (one per ~3 hello requests under
	 * wrk, 3% of the worker's CPU; a quarter of one per proxied request at
	 * c = 10), so other apps run without: their timers are second-long
	 * timeouts, and libcurl's (the fetching apps') are checked against
	 * libcurl's own clock when they fire, so an early one is only armed
	 * again for the rest. */
	struct event_config *ec = event_config_new();
	struct event_base *base = NULL;
	if (ec) {
		int fl = EVENT_BASE_FLAG_NOLOCK;
		if (run->app->flags & APP_USES_SLEEP)
			fl |= EVENT_BASE_FLAG_PRECISE_TIMER;
		event_config_set_flag(ec, fl);
		base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (!base) {
		fprintf(stderr, "%s: worker %d: cannot create the event loop\n", prog, env->index);
		return 1;
	}
	struct core *w = core_new(base, run->cls, env->opts, run->app, run->cfg, env->listen_fd);
	if (!w) {
		fprintf(stderr, "%s: worker %d: %s\n", prog, env->index, strerror(errno));
		event_base_free(base);
		return 1;
	}
	w->tls = run->tls;
	evsignal_assign(&w->term_ev, base, SIGTERM, stop_cb, w);
	evsignal_assign(&w->int_ev, base, SIGINT, stop_cb, w);
	evsignal_assign(&w->usr1_ev, base, SIGUSR1, usr1_cb, w);
	int rc = 1;
	if (evsignal_add(&w->term_ev, NULL) == 0 && evsignal_add(&w->int_ev, NULL) == 0 &&
	    evsignal_add(&w->usr1_ev, NULL) == 0) {
		stats_bind(prog, w->fetcher, stats_fill, w);
		rc = event_base_dispatch(base) < 0 ? 1 : 0;
		stats_bind(prog, NULL, NULL, NULL);
	}
	evsignal_del(&w->term_ev);
	evsignal_del(&w->int_ev);
	evsignal_del(&w->usr1_ev);
	core_free(w);
	event_base_free(base);
	return rc;
}

/* Idle keep-alive connections cost a descriptor each: use what the hard
 * limit allows, as nginx's worker_rlimit_nofile does. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int core_main(int argc, char **argv, const struct core_class *cls, const struct opt_def *extra,
              void *cfg)
{
	struct server_opts opts;
	server_opts_default(&opts);
	int rc = server_opts_parse(&opts, extra, argc, argv, cls->prog, COROBENCH_VERSION);
	if (rc > 0)
		return 0;
	if (rc < 0)
		return 2;
	const struct app *app = app_find(opts.app);
	if (!app) {
		fprintf(stderr, "%s: unknown app '%s' (see --help)\n", cls->prog, opts.app);
		return 2;
	}
	if ((app->flags & APP_USES_BLOCKING) && cls->blocks)
		fprintf(stderr, "%s: warning: app '%s' %s\n", cls->prog, app->name, cls->blocks);
	if (fetch_global_init() != 0) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", cls->prog);
		return 1;
	}
	/* Certificate and key are read once, here, so that a bad one is one
	 * line at start (exit 2, as a bad flag), not a worker that dies. */
	struct tls_server *tls = NULL;
	if (opts.tls_cert) {
		char why[512];
		tls = tls_server_new(opts.tls_cert, opts.tls_key, why, sizeof(why));
		if (!tls) {
			fprintf(stderr, "%s: %s\n", cls->prog, why);
			return 2;
		}
	}
	raise_nofile();
	/* --stats-path answers the worker's counters (stats.h) before the app. */
	struct core_run run = {cls, stats_app_wrap(app, opts.stats_path), cfg, tls};
	rc = master_run(&opts, worker_main, &run, cls->prog);
	tls_server_free(tls);
	return rc;
}
