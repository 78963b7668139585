/* fetch_loop.c — the fetcher's libcurl multi handles on the worker's
 * libevent loop (fetch.h), after libcurl's hiperfifo.c: libcurl says which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
 * (CURLMOPT_TIMERFUNCTION); libevent's events go back through
 * curl_multi_socket_action(), and finished transfers are read off
 * curl_multi_info_read(). Sockets we open ourselves stay registered while
 * their connection idles (see struct fetch_sock).
 */
#include "fetch_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections each multi handle keeps open (curl's default is 4 per easy
 * handle added, which closes and reopens under a burst). */
#define FETCH_MAXCONNECTS 4096
/* ---- the multi handle and the loop ---- */

static void check_done(struct fetch_shard *sh)
{
	struct fetcher *f = sh->f;
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(sh->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		struct fetch_req *r = (struct fetch_req *)priv;
		CURLcode rc = msg->data.result;
		struct app_fetch_result res;
		void *body = fetch_take_result(r, rc, &res);
		fetch_req_finish(f, r, &res, body);
	}
}

static void sock_arm(struct fetch_sock *s, short kind);

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_sock *s = arg;
	struct fetch_shard *sh = s->sh;
	if (!s->watched) {
		/* An idle connection turned readable: the upstream closed it (or
		 * sent junk). Stop listening; libcurl's liveness check at the
		 * next reuse closes it. */
		sock_arm(s, 0);
		return;
	}
	int action =
	    ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	/* s may be freed in here (libcurl closing the socket): not used after. */
	curl_multi_socket_action(sh->multi, fd, action, &running);
	/* No "running == 0: drop the timer" here, as hiperfifo.c does: a
	 * callback in check_done() may have started a transfer that needs it.
	 * libcurl removes its timer itself through multi_timer_cb(-1). */
	check_done(sh);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fetch_shard *sh = arg;
	int running;
	curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(sh);
}

/* CURLMOPT_TIMERFUNCTION: only arm; calling back into libcurl from here
 * is not allowed. */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct fetch_shard *sh = userp;
	if (timeout_ms < 0) {
		evtimer_del(&sh->timer);
		return 0;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(&sh->timer, &tv);
	return 0;
}

/* Register s with libevent for kind (EV_READ|EV_WRITE), or for nothing
 * (0). Nothing happens when it already is: no epoll_ctl() for a request
 * that reuses a connection whose interest did not change. */
static void sock_arm(struct fetch_sock *s, short kind)
{
	if (kind == s->armed)
		return;
	if (s->armed)
		event_del(&s->ev);
	s->armed = 0;
	if (!kind)
		return;
	event_assign(&s->ev, s->f->base, s->fd, (short)(kind | EV_PERSIST), sock_event_cb, s);
	if (event_add(&s->ev, NULL) == 0)
		s->armed = kind;
}

static struct fetch_sock *sock_find(const struct fetcher *f, curl_socket_t fd)
{
	return fd >= 0 && (size_t)fd < f->nbyfd ? f->byfd[fd] : NULL;
}

static struct fetch_sock *sock_new(struct fetch_shard *sh, curl_socket_t fd, bool ours)
{
	struct fetcher *f = sh->f;
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= f->nbyfd) {
		size_t n = f->nbyfd ? f->nbyfd : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct fetch_sock **p = realloc(f->byfd, n * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + f->nbyfd, 0, (n - f->nbyfd) * sizeof(*p));
		f->byfd = p;
		f->nbyfd = n;
	}
	struct fetch_sock *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->f = f;
	s->sh = sh;
	s->fd = fd;
	s->ours = ours;
	s->next = f->socks;
	if (f->socks)
		f->socks->prev = s;
	f->socks = s;
	f->byfd[fd] = s;
	return s;
}

void fetch_sock_free(struct fetcher *f, struct fetch_sock *s)
{
	sock_arm(s, 0);
	if (s->prev)
		s->prev->next = s->next;
	else
		f->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (sock_find(f, s->fd) == s)
		f->byfd[s->fd] = NULL;
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: mirror libcurl's interest in a socket. */
static int multi_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	(void)e;
	struct fetch_shard *sh = userp;
	struct fetcher *f = sh->f;
	struct fetch_sock *s = sockp ? sockp : sock_find(f, fd);
	if (what == CURL_POLL_REMOVE) {
		if (!s || s->sh != sh) /* the fd lives on elsewhere (see fetch_opensock_cb) */
			return 0;
		s->watched = false;
		if (!s->ours)
			fetch_sock_free(
			    f, s); /* e.g. a resolver's socket: we would not see it close */
		else if (s->armed & EV_WRITE)
			sock_arm(s, 0); /* a writable socket would fire at once */
		return 0;
	}
	if (!s) {
		s = sock_new(sh, fd, false);
		if (!s)
			return -1; /* libcurl fails the transfer */
	}
	if (!sockp)
		curl_multi_assign(sh->multi, fd, s);
	s->watched = true;
	sock_arm(s, (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	                    ((what & CURL_POLL_OUT) ? EV_WRITE : 0)));
	return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: as libcurl would, but we now know the socket
 * is a connection whose close we will see. */
curl_socket_t fetch_opensock_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)purpose;
	struct fetch_shard *sh = clientp;
	struct fetcher *f = sh->f;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == CURL_SOCKET_BAD)
		return fd;
	struct fetch_sock *s = sock_find(f, fd);
	if (s) {
		/* The fd number was closed behind our back (a threaded resolver's
		 * socket pair, which libcurl closes itself) and comes back now.
		 * A multi handle may still hold the old entry as this fd's sockp,
		 * so the entry itself is taken over rather than freed. Its
		 * registration went with the old socket: event_del() only tidies
		 * libevent's books (epoll_ctl's ENOENT is ignored there). */
		sock_arm(s, 0);
		s->sh = sh;
		s->watched = false;
		s->ours = true;
		return fd;
	}
	if (!sock_new(sh, fd, true)) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: leave libevent before the fd goes. */
int fetch_closesock_cb(void *clientp, curl_socket_t fd)
{
	struct fetcher *f = ((struct fetch_shard *)clientp)->f;
	struct fetch_sock *s = sock_find(f, fd);
	if (s)
		fetch_sock_free(f, s);
	return close(fd);
}

bool fetch_shard_init(struct fetch_shard *sh, struct fetcher *f)
{
	sh->f = f;
	sh->multi = curl_multi_init();
	if (!sh->multi)
		return false;
	evtimer_assign(&sh->timer, f->base, timer_event_cb, sh);
	curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
	curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
	curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
	long maxconn = FETCH_MAXCONNECTS;
	if (f->opts.max_host_connections) {
		curl_multi_setopt(sh->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
		                  (long)f->opts.max_host_connections);
		if (f->opts.max_host_connections > (unsigned)maxconn)
			maxconn = (long)f->opts.max_host_connections;
	}
	curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, maxconn);
	return true;
}
