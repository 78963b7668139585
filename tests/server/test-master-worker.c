/* test-master-worker.c — a test double for the process model: master_run()
 * with a trivial worker that answers one HTTP request per connection,
 * blocking, and tells the test who it is. test_master.py drives it to check
 * master.c on its own, without the real servers.
 *
 * Paths (any method; the query is read as written):
 *   /               "pid=P index=I nworkers=N ppid=Q clean=0|1"; clean says
 *                   the worker started with an empty signal mask and default
 *                   dispositions, as master.h promises
 *   /sleep?ms=N     sleep N ms (through signals), then answer
 *   /affinity       the CPUs the worker may run on ("0,1")
 *   /exit?code=N    answer, then the worker exits with N
 *   /abort          answer, then the worker dies of SIGABRT
 *   /ignore-term    answer; from now on the worker ignores SIGTERM
 *
 * Flags: --listen ADDR --workers N --graceful-timeout S --cpu-affinity
 * --backlog N --quiet, as the servers'; --fail-start N makes every worker
 * return N at once (a worker that cannot start).
 */
#include "master.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct test_cfg {
	int fail_start;
};

static bool started_clean(void)
{
	sigset_t cur;
	sigemptyset(&cur);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (sigismember(&cur, s) == 1)
			return false;
		/* SIGUSR1 starts ignored (master.h): the stats dump must not
		 * kill a worker that is not watching it yet. */
		void (*want)(int) = s == SIGUSR1 ? SIG_IGN : SIG_DFL;
		struct sigaction sa;
		if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler != want &&
		    !(sa.sa_flags & SA_SIGINFO))
			return false;
	}
	return true;
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static unsigned long query_ulong(const char *target, const char *name, unsigned long def)
{
	const char *q = strchr(target, '?');
	size_t nlen = strlen(name);
	while (q) {
		q++;
		if (strncmp(q, name, nlen) == 0 && q[nlen] == '=')
			return strtoul(q + nlen + 1, NULL, 10);
		q = strchr(q, '&');
	}
	return def;
}

static void answer(int fd, const char *body)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
	                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n%s",
	                 strlen(body), body);
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(fd, p, (size_t)n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (int)w;
	}
}

/* Serve one connection. Returns the exit status to die with, or -1. */
static int serve(int fd, const struct worker_env *env, bool clean)
{
	char req[2048];
	size_t len = 0;
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		len += (size_t)r;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[len] = '\0';
	char target[1024] = "/";
	sscanf(req, "%*s %1023s", target);

	char body[256];
	if (strncmp(target, "/sleep", 6) == 0) {
		unsigned long ms = query_ulong(target, "ms", 100);
		sleep_ms(ms);
		snprintf(body, sizeof(body), "slept %lu ms pid=%d\n", ms, (int)getpid());
	} else if (strncmp(target, "/affinity", 9) == 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		sched_getaffinity(0, sizeof(set), &set);
		size_t off = 0;
		body[0] = '\0';
		for (int c = 0; c < CPU_SETSIZE && off < sizeof(body) - 8; c++)
			if (CPU_ISSET(c, &set))
				off += (size_t)snprintf(body + off, sizeof(body) - off, "%s%d",
				                        off ? "," : "", c);
	} else if (strncmp(target, "/exit", 5) == 0) {
		answer(fd, "bye\n");
		return (int)query_ulong(target, "code", 0);
	} else if (strncmp(target, "/abort", 6) == 0) {
		answer(fd, "aborting\n");
		close(fd);
		signal(SIGABRT, SIG_DFL);
		raise(SIGABRT);
		return 1;
	} else if (strncmp(target, "/ignore-term", 12) == 0) {
		signal(SIGTERM, SIG_IGN);
		snprintf(body, sizeof(body), "ignoring SIGTERM pid=%d\n", (int)getpid());
	} else {
		snprintf(body, sizeof(body), "pid=%d index=%d nworkers=%d ppid=%d clean=%d\n",
		         (int)getpid(), env->index, env->nworkers, (int)getppid(), clean ? 1 : 0);
	}
	answer(fd, body);
	return -1;
}

static int test_worker(const struct worker_env *env, void *arg)
{
	const struct test_cfg *cfg = arg;
	bool clean = started_clean();
	if (cfg->fail_start)
		return cfg->fail_start;
	struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: poll wakes */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	while (!stop_flag) {
		struct pollfd pfd = {.fd = env->listen_fd, .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0)
			continue; /* EINTR: look at stop_flag */
		int fd = accept4(env->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue; /* EAGAIN: another worker took it */
		int rc = serve(fd, env, clean);
		close(fd);
		if (rc >= 0)
			return rc;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct server_opts o = {
	    .listen = "127.0.0.1:8080",
	    .workers = 1,
	    .app = "hello",
	    .upstream = "http://127.0.0.1:9000/",
	    .graceful_timeout = 30,
	    .keepalive_timeout = 5,
	    .upstream_timeout_ms = 10000,
	    .max_body = 1u << 20,
	    .backlog = 4096,
	};
	struct test_cfg cfg = {0};
	enum { O_LISTEN = 1, O_WORKERS, O_GRACE, O_AFF, O_BACKLOG, O_QUIET, O_FAIL };
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"workers", required_argument, NULL, O_WORKERS},
	    {"graceful-timeout", required_argument, NULL, O_GRACE},
	    {"cpu-affinity", no_argument, NULL, O_AFF},
	    {"backlog", required_argument, NULL, O_BACKLOG},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"fail-start", required_argument, NULL, O_FAIL},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			o.listen = optarg;
			break;
		case O_WORKERS:
			o.workers = atoi(optarg);
			break;
		case O_GRACE:
			o.graceful_timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_AFF:
			o.cpu_affinity = true;
			break;
		case O_BACKLOG:
			o.backlog = atoi(optarg);
			break;
		case O_QUIET:
			o.quiet = true;
			break;
		case O_FAIL:
			cfg.fail_start = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	return master_run(&o, test_worker, &cfg, "test-master-worker");
}
