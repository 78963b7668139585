/* upstream_setup.c — the upstream stub's start-up: its command line (one
 * table that parses the flags and prints --help) and its listen socket.
 */
#include "upstream.h"

#include "corobench_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { K_STR, K_ULONG, K_INT, K_FLAG };

struct flag {
	const char *name;
	enum kind kind;
	void *dest;
	const char *metavar;
	const char *help;
	unsigned long min, max;
};

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
	}
}

int upstream_listen(const char *spec, int backlog, const char **why, char *bound, size_t boundcap)
{
	char host[256];
	const char *port;
	size_t hlen;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':') {
			*why = "expected HOST:PORT, [IPV6]:PORT or :PORT";
			return -1;
		}
		hlen = (size_t)(close - spec - 1);
		port = close + 2;
		if (hlen >= sizeof(host)) {
			*why = "address too long";
			return -1;
		}
		memcpy(host, spec + 1, hlen);
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec))) {
			*why = "expected HOST:PORT, [IPV6]:PORT or :PORT";
			return -1;
		}
		hlen = (size_t)(colon - spec);
		port = colon + 1;
		if (hlen >= sizeof(host)) {
			*why = "host name too long";
			return -1;
		}
		memcpy(host, spec, hlen);
	}
	host[hlen] = '\0';
	unsigned long pnum;
	if (!upstream_parse_ulong(port, strlen(port), 65535, &pnum)) {
		*why = "bad port (0..65535)";
		return -1;
	}
	struct addrinfo hints = {
	    .ai_family = hlen ? AF_UNSPEC : AF_INET,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
	if (gai != 0) {
		*why = gai_strerror(gai);
		return -1;
	}
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*why = strerror(err);
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		format_addr((const struct sockaddr *)&ss, bound, boundcap);
	else
		snprintf(bound, boundcap, "%s", spec);
	return fd;
}

static void usage(FILE *f, const struct flag *flags)
{
	fprintf(f, "Usage: " PROG " [OPTION]...\n"
	           "The stub remote service: answers every GET with 200 and --size bytes after\n"
	           "--delay-ms. Per-request overrides in the query: ?delay=MS ?size=BYTES\n"
	           "?status=CODE ?close=1 (drop without answering) ?reset=1 (close mid-body)\n"
	           "?stall=1 (never answer). GET /_stats: connection and request counters.\n\n"
	           "Options (--flag VALUE or --flag=VALUE):\n");
	for (const struct flag *d = flags; d->name; d++) {
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "--%s%s%s", d->name, d->metavar ? " " : "",
		         d->metavar ? d->metavar : "");
		fprintf(f, "  %-20s  %s", lhs, d->help);
		switch (d->kind) {
		case K_STR:
			fprintf(f, " (default: %s)\n", *(const char **)d->dest);
			break;
		case K_ULONG:
			fprintf(f, " (default: %lu)\n", *(const unsigned long *)d->dest);
			break;
		case K_INT:
			fprintf(f, " (default: %d)\n", *(const int *)d->dest);
			break;
		case K_FLAG:
			if (d->dest)
				fprintf(f, " (default: %s)\n",
				        *(const bool *)d->dest ? "on" : "off");
			else
				fputc('\n', f);
			break;
		}
	}
}

int upstream_parse_args(struct config *cfg, int argc, char **argv)
{
	const struct flag flags[] = {
	    {"listen", K_STR, &cfg->listen, "ADDR", "HOST:PORT, [IPV6]:PORT or :PORT", 0, 0},
	    {"delay-ms", K_ULONG, &cfg->delay_ms, "D", "wait before answering, ms", 0, MAX_DELAY},
	    {"size", K_ULONG, &cfg->size, "BYTES", "body size of every answer", 0, MAX_SIZE},
	    {"backlog", K_INT, &cfg->backlog, "N", "listen(2) backlog", 1, 65535},
	    {"quiet", K_FLAG, &cfg->quiet, NULL, "no line but the readiness line \"listening on\"",
	     0, 0},
	    {"wake-per-request", K_FLAG, &cfg->wake_per_request, NULL,
	     "wake up for every request as it arrives, also while answers wait", 0, 0},
	    {"help", K_FLAG, NULL, NULL, "print this help and exit", 0, 0},
	    {"version", K_FLAG, NULL, NULL, "print the version and exit", 0, 0},
	    {0},
	};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout, flags);
			return 1;
		}
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf(PROG " %s\n", COROBENCH_VERSION);
			return 1;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, PROG ": unexpected argument '%s'\n", a);
			goto bad;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct flag *d = flags;
		while (d->name && !(strlen(d->name) == len && !memcmp(d->name, name, len)))
			d++;
		if (!d->name || !d->dest) {
			fprintf(stderr, PROG ": unknown flag '--%.*s'\n", (int)len, name);
			goto bad;
		}
		if (d->kind == K_FLAG) {
			if (eq) {
				fprintf(stderr, PROG ": --%s takes no value\n", d->name);
				goto bad;
			}
			*(bool *)d->dest = true;
			continue;
		}
		const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
		if (!v) {
			fprintf(stderr, PROG ": --%s needs a value (%s)\n", d->name, d->metavar);
			goto bad;
		}
		if (d->kind == K_STR) {
			*(const char **)d->dest = v;
			continue;
		}
		unsigned long n;
		bool digits = *v && strspn(v, "0123456789") == strlen(v);
		if (!digits || !upstream_parse_ulong(v, strlen(v), d->max, &n) || n < d->min) {
			fprintf(stderr, PROG ": --%s: '%s' %s (%lu..%lu)\n", d->name, v,
			        digits ? "is out of range" : "is not a number", d->min, d->max);
			goto bad;
		}
		if (d->kind == K_INT)
			*(int *)d->dest = (int)n;
		else
			*(unsigned long *)d->dest = n;
	}
	return 0;
bad:
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return -1;
}
