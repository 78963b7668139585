/* master_listen.c — the master's listen sockets (split out of master.c,
 * which forks and supervises the workers): address parsing, one TCP socket
 * per worker with SO_REUSEPORT (or one shared, --shared-listener), and the
 * Unix-domain socket of --unix. Declared in master_internal.h.
 */
#include "master_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Split "host:port", "[v6]:port" or ":port" into host (NULL for "any") and
 * port. Returns 0, or -1 with *why set. */
static int split_addr(const char *spec, char *host, size_t hostcap, const char **port,
                      const char **why)
{
	const char *colon;
	size_t hlen;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':') {
			*why = "expected [IPv6]:PORT";
			return -1;
		}
		hlen = (size_t)(close - spec - 1);
		if (hlen == 0 || hlen >= hostcap) {
			*why = hlen ? "address too long" : "empty IPv6 address";
			return -1;
		}
		memcpy(host, spec + 1, hlen);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon) {
			*why = "expected HOST:PORT, [IPv6]:PORT or :PORT";
			return -1;
		}
		hlen = (size_t)(colon - spec);
		if (memchr(spec, ':', hlen)) {
			*why = "an IPv6 address needs brackets: [ADDR]:PORT";
			return -1;
		}
		if (hlen >= hostcap) {
			*why = "host name too long";
			return -1;
		}
		memcpy(host, spec, hlen);
	}
	host[hlen] = '\0';
	*port = colon + 1;
	if (**port == '\0' || strspn(*port, "0123456789") != strlen(*port) ||
	    strtoul(*port, NULL, 10) > 65535) {
		*why = "bad port (expected 0..65535)";
		return -1;
	}
	return 0;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
		return;
	}
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
	port = ntohs(s4->sin_port);
	snprintf(out, cap, "%s:%u", host, port);
}

/* One TCP socket bound to ai and listening; reuseport: SO_REUSEPORT set
 * first. The fd, or -1 with errno. */
static int tcp_socket(const struct addrinfo *ai, int backlog, bool reuseport)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((!reuseport || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0) &&
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
		return fd;
	int err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Bind and listen on opts->listen: n sockets (one per worker, n > 1: each
 * with SO_REUSEPORT, so the kernel spreads new connections over them by a
 * hash of the client's address and port, as nginx's "listen ... reuseport"
 * does; one socket shared by every worker left the spread to whichever
 * worker woke first: 2/18, 20/0, 6/14 of 20 connections over two). Into
 * fds[0..n); 0, or -1 with one line on stderr. The bound address (the real
 * port when 0 was asked for) goes to bound. */
int open_tcp(const struct server_opts *opts, const char *prog, int *fds, int n, char *bound,
             size_t boundcap)
{
	const char *spec = opts->listen ? opts->listen : "";
	char host[256];
	const char *port, *why = NULL;
	if (split_addr(spec, host, sizeof(host), &port, &why) != 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, spec, why);
		return -1;
	}
	struct addrinfo hints = {
	    .ai_family = host[0] ? AF_UNSPEC : AF_INET, /* ":port" = 0.0.0.0, as gunicorn */
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai != 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, spec, gai_strerror(gai));
		return -1;
	}
	int backlog = opts->backlog > 0 ? opts->backlog : SOMAXCONN;
	int err = 0, got = 0;
	for (struct addrinfo *ai = res; ai && got == 0; ai = ai->ai_next) {
		if (n > 1 && strcmp(port, "0") != 0) {
			/* SO_REUSEPORT would let us join another server's group on
			 * this port (same user) and steal half its connections:
			 * bind once without it, which fails when anything has the
			 * port, then let it go for the group. */
			int probe = tcp_socket(ai, backlog, false);
			if (probe < 0) {
				err = errno;
				continue;
			}
			close(probe);
		}
		struct sockaddr_storage addr;
		memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
		struct addrinfo one = *ai;
		one.ai_addr = (struct sockaddr *)&addr;
		for (got = 0; got < n; got++) {
			fds[got] = tcp_socket(&one, backlog, n > 1);
			if (fds[got] < 0)
				break;
			if (got == 0) { /* the rest take the port the first one got */
				socklen_t sl = (socklen_t)sizeof(addr);
				if (getsockname(fds[0], (struct sockaddr *)&addr, &sl) != 0)
					break;
				one.ai_addrlen = sl;
			}
		}
		if (got < n) {
			err = errno;
			while (got > 0)
				close(fds[--got]);
		}
	}
	freeaddrinfo(res);
	if (got < n) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, spec, strerror(err));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fds[0], (struct sockaddr *)&ss, &sl) == 0)
		format_addr((const struct sockaddr *)&ss, bound, boundcap);
	else
		snprintf(bound, boundcap, "%s", spec);
	return 0;
}

/* Bind and listen on the Unix-domain socket at path (one socket, shared by
 * the workers: SO_REUSEPORT does not spread AF_UNIX connections). A socket
 * file already there is taken over when nothing listens on it (a server
 * that was killed left it); any other file is refused, never removed. The
 * fd, or -1 with one line on stderr; *made identifies the file we made. */
int open_unix(const char *path, int backlog, const char *prog, struct stat *made)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: cannot listen on %s: path too long\n", prog, path);
		return -1;
	}
	memcpy(sa.sun_path, path, len + 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr,
			        "%s: cannot listen on %s: the file exists and is not a socket\n",
			        prog, path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			fprintf(stderr, "%s: cannot listen on %s: a server is listening there\n",
			        prog, path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) != 0) {
			fprintf(stderr, "%s: cannot listen on %s: removing the stale socket: %s\n",
			        prog, path, strerror(errno));
			return -1;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0 || stat(path, made) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, path, strerror(err));
		return -1;
	}
	return fd;
}

/* The socket file is ours (still the one we made): remove it at exit. */
void remove_unix(const char *path, const struct stat *made)
{
	struct stat st;
	if (lstat(path, &st) == 0 && st.st_dev == made->st_dev && st.st_ino == made->st_ino)
		(void)unlink(path);
}
