/* master.c — the pre-fork master both servers share, after gunicorn's arbiter.
 *
 * The master binds and listens once, says so on stderr (readiness: the socket
 * already accepts when the line appears), forks the workers and then only
 * supervises: it reaps and replaces workers that die (backing off when they
 * die young, giving up when they cannot start at all), and on SIGTERM/SIGINT
 * it forwards SIGTERM, shuts the listener down so new clients are refused,
 * waits for the workers to finish their requests within the graceful timeout
 * and SIGKILLs the rest.
 *
 * Signals reach the master through a signalfd (they stay blocked), so there
 * are no signal handlers at all and nothing async-signal-unsafe can run in
 * one. Children get default dispositions and an empty mask back, as master.h
 * promises.
 */
#include "master.h"
#include "master_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A worker that dies sooner than this after its start counts as a fast
 * failure; repeated fast failures back off, and a worker that cannot even
 * start (non-zero exit, fast) MASTER_BOOT_FAILURES times in a row means the
 * configuration is broken, so the master gives up as gunicorn does. */
#define MASTER_FAST_DEATH_MS 1000
#define MASTER_BACKOFF_FIRST_MS 100
#define MASTER_BACKOFF_MAX_MS 5000
#define MASTER_BOOT_FAILURES 5

struct worker_slot {
	pid_t pid;           /* 0 when not running */
	int64_t started_ms;  /* when it was forked */
	int64_t respawn_at;  /* when to fork it again; -1: not scheduled */
	unsigned fast_fails; /* consecutive deaths within MASTER_FAST_DEATH_MS */
	unsigned boot_fails; /* consecutive fast non-zero exits */
};

/* SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1: see master_signals[]. */
#define MASTER_NSIGNALS 5

struct master {
	const struct server_opts *opts;
	worker_main_fn fn;
	void *arg;
	const char *prog;
	int *lfds; /* listen sockets: one per worker (SO_REUSEPORT), or one */
	int nlisten;
	struct stat unix_made; /* --unix: the socket file we made */
	int sig_fd;
	sigset_t old_mask;
	struct sigaction old_act[MASTER_NSIGNALS]; /* of master_signals[], restored at the end */
	int nworkers;
	struct worker_slot *slots;
	int *cpus; /* allowed CPUs, for --cpu-affinity */
	int ncpus;
	int live;
	bool stopping;
	int64_t deadline_ms; /* graceful shutdown deadline */
};

/* The signals the master reads from its signalfd. */
static const int master_signals[MASTER_NSIGNALS] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- CPUs ---- */

/* The CPUs this process may run on, in order. Returns the count (>= 1). */
static int allowed_cpus(int **out)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	int n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0) {
		*out = NULL;
		return 1;
	}
	int *cpus = malloc((size_t)n * sizeof(*cpus));
	if (!cpus) {
		*out = NULL;
		return n;
	}
	int k = 0;
	for (int c = 0; c < CPU_SETSIZE && k < n; c++)
		if (CPU_ISSET(c, &set))
			cpus[k++] = c;
	*out = cpus;
	return k;
}

/* ---- workers ---- */

static const char *signal_name(int sig)
{
	static char buf[24];
	const char *abbrev = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	abbrev = sigabbrev_np(sig);
#else
	/* No sigabbrev_np: the signals a worker dies of, in practice. */
	static const struct {
		int sig;
		const char *name;
	} known[] = {{SIGKILL, "KILL"}, {SIGTERM, "TERM"}, {SIGINT, "INT"},
	             {SIGSEGV, "SEGV"}, {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},
	             {SIGFPE, "FPE"},   {SIGILL, "ILL"},   {SIGPIPE, "PIPE"}};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].sig == sig)
			abbrev = known[i].name;
#endif
	if (abbrev)
		snprintf(buf, sizeof(buf), "SIG%s", abbrev);
	else
		snprintf(buf, sizeof(buf), "signal %d", sig);
	return buf;
}

/* In the child: undo the master's signal set-up, pin, run the worker. */
static void worker_child(struct master *m, int index, pid_t master_pid)
{
	close(m->sig_fd);
	/* Die with the master: a SIGKILLed master must not leave workers
	 * serving on an orphaned socket. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Default dispositions: the master's own signals, and whatever was
	 * inherited as ignored. Handlers the process installed itself before
	 * master_run (a sanitizer's SIGSEGV report, say) are kept on purpose. */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	for (int s = 1; s < NSIG; s++) {
		struct sigaction cur;
		if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &cur) != 0)
			continue;
		bool ours =
		    s == SIGCHLD || s == SIGTERM || s == SIGINT || s == SIGHUP || s == SIGUSR1;
		bool ignored = !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN;
		if (ours || ignored)
			(void)sigaction(s, &dfl, NULL);
	}
	/* SIGUSR1 (the stats dump the master forwards) is ignored until the
	 * worker watches it on its loop: with the default disposition a dump
	 * asked for during a worker's start-up would kill it. */
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	(void)sigaction(SIGUSR1, &ign, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (getppid() != master_pid)
		exit(0); /* the master died before PDEATHSIG was armed */

	if (m->opts->cpu_affinity && m->cpus) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(m->cpus[index % m->ncpus], &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			fprintf(stderr, "%s: worker %d: cannot pin to CPU %d: %s\n", m->prog, index,
			        m->cpus[index % m->ncpus], strerror(errno));
	}
	/* Only this worker's listen socket stays open in it. */
	int lfd = m->lfds[index % m->nlisten];
	for (int i = 0; i < m->nlisten; i++)
		if (m->lfds[i] != lfd)
			close(m->lfds[i]);
	struct worker_env env = {
	    .listen_fd = lfd,
	    .index = index,
	    .nworkers = m->nworkers,
	    .opts = m->opts,
	};
	worker_main_fn fn = m->fn;
	void *arg = m->arg;
	free(m->slots);
	free(m->cpus);
	free(m->lfds);
	m->slots = NULL;
	m->cpus = NULL;
	m->lfds = NULL;
	int rc = fn(&env, arg);
	fflush(NULL);
	exit(rc < 0 || rc > 255 ? 1 : rc);
}

static int spawn(struct master *m, int index)
{
	struct worker_slot *w = &m->slots[index];
	pid_t master_pid = getpid();
	fflush(NULL); /* nothing buffered may be written twice */
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: cannot fork worker %d: %s\n", m->prog, index, strerror(errno));
		return -1;
	}
	if (pid == 0)
		worker_child(m, index, master_pid); /* does not return */
	w->pid = pid;
	w->started_ms = now_ms();
	w->respawn_at = -1;
	m->live++;
	return 0;
}

static void schedule_respawn(struct master *m, int index, bool fast)
{
	struct worker_slot *w = &m->slots[index];
	int64_t delay = 0;
	if (fast) {
		w->fast_fails++;
		if (w->fast_fails > 1) {
			delay = MASTER_BACKOFF_FIRST_MS;
			for (unsigned i = 2; i < w->fast_fails && delay < MASTER_BACKOFF_MAX_MS;
			     i++)
				delay *= 2;
			if (delay > MASTER_BACKOFF_MAX_MS)
				delay = MASTER_BACKOFF_MAX_MS;
		}
	} else {
		w->fast_fails = 0;
	}
	w->respawn_at = now_ms() + delay;
	if (delay > 0)
		fprintf(stderr, "%s: worker %d keeps dying; restarting in %lld ms\n", m->prog,
		        index, (long long)delay);
}

/* Describe how a worker ended: "exited with status 3", "killed by SIGKILL". */
static void describe_status(int status, char *out, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "killed by %s%s", signal_name(WTERMSIG(status)),
		         WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(out, cap, "ended with wait status %#x", (unsigned)status);
}

/* Reap every child that ended. Returns -1 when workers keep failing to
 * start (give up), else 0. */
static int reap(struct master *m)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return 0;
		int index = -1;
		for (int i = 0; i < m->nworkers; i++)
			if (m->slots[i].pid == pid)
				index = i;
		if (index < 0)
			continue; /* not a worker: nothing to do */
		struct worker_slot *w = &m->slots[index];
		w->pid = 0;
		m->live--;
		char why[96];
		describe_status(status, why, sizeof(why));
		if (m->stopping) {
			/* Dying of the SIGTERM we sent is a normal end too: a worker
			 * that had not yet set up its own handling of it had nothing
			 * in flight. */
			bool clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
			             (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
			if (!clean)
				fprintf(stderr, "%s: worker %d (pid %d) %s during shutdown\n",
				        m->prog, index, (int)pid, why);
			continue;
		}
		bool fast = now_ms() - w->started_ms < MASTER_FAST_DEATH_MS;
		if (fast && WIFEXITED(status) && WEXITSTATUS(status) != 0)
			w->boot_fails++;
		else
			w->boot_fails = 0;
		fprintf(stderr, "%s: worker %d (pid %d) %s; restarting it\n", m->prog, index,
		        (int)pid, why);
		if (w->boot_fails >= MASTER_BOOT_FAILURES) {
			fprintf(stderr,
			        "%s: worker %d failed to start %d times in a row; giving up\n",
			        m->prog, index, MASTER_BOOT_FAILURES);
			return -1;
		}
		schedule_respawn(m, index, fast);
	}
}

static void begin_shutdown(struct master *m, int sig)
{
	m->stopping = true;
	m->deadline_ms = now_ms() + (int64_t)m->opts->graceful_timeout * 1000;
	if (!m->opts->quiet)
		fprintf(stderr, "%s: %s received, stopping %d worker%s (graceful timeout %u s)\n",
		        m->prog, signal_name(sig), m->live, m->live == 1 ? "" : "s",
		        m->opts->graceful_timeout);
	for (int i = 0; i < m->nworkers; i++) {
		if (m->slots[i].pid > 0)
			kill(m->slots[i].pid, SIGTERM);
		m->slots[i].respawn_at = -1;
	}
	/* Stop accepting for every process at once: shutdown(2) on a listening
	 * socket stops the listener itself, not just this descriptor, so new
	 * clients are refused at once instead of queueing in the backlog of a
	 * worker that will never accept them (one blocked in a real sleep, say)
	 * and being reset when it exits. Workers see accept() fail (EINVAL). */
	for (int i = 0; i < m->nlisten; i++) {
		if (m->lfds[i] >= 0) {
			(void)shutdown(m->lfds[i], SHUT_RDWR);
			close(m->lfds[i]);
			m->lfds[i] = -1;
		}
	}
}

/* Close what is left of the listen sockets; remove the --unix file. */
static void close_listeners(struct master *m)
{
	for (int i = 0; i < m->nlisten; i++)
		if (m->lfds[i] >= 0)
			close(m->lfds[i]);
	m->nlisten = 0;
	if (m->opts->unix_path)
		remove_unix(m->opts->unix_path, &m->unix_made);
}

static void kill_all(struct master *m, const char *why)
{
	for (int i = 0; i < m->nworkers; i++) {
		if (m->slots[i].pid <= 0)
			continue;
		fprintf(stderr, "%s: worker %d (pid %d) %s; killing it\n", m->prog, i,
		        (int)m->slots[i].pid, why);
		kill(m->slots[i].pid, SIGKILL);
	}
}

/* Block until every worker has been reaped (they were sent SIGKILL). */
static void reap_all_blocking(struct master *m)
{
	while (m->live > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nothing left */
		}
		for (int i = 0; i < m->nworkers; i++) {
			if (m->slots[i].pid == pid) {
				m->slots[i].pid = 0;
				m->live--;
			}
		}
	}
}

/* Read the signalfd; act on each signal. Returns -1 to give up. */
static int handle_signals(struct master *m)
{
	struct signalfd_siginfo si[8];
	ssize_t n = read(m->sig_fd, si, sizeof(si));
	if (n <= 0)
		return 0;
	int rc = 0;
	for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
		int sig = (int)si[i].ssi_signo;
		switch (sig) {
		case SIGCHLD:
			if (reap(m) != 0)
				rc = -1;
			break;
		case SIGTERM:
		case SIGINT:
			if (!m->stopping) {
				begin_shutdown(m, sig);
			} else {
				/* A second one: the operator does not want to wait. */
				kill_all(m, "still running at a second stop signal");
			}
			break;
		case SIGUSR1:
			/* Each worker logs its live counters (stats.h). */
			for (int w = 0; w < m->nworkers; w++)
				if (m->slots[w].pid > 0)
					kill(m->slots[w].pid, SIGUSR1);
			break;
		case SIGHUP:
			if (!m->opts->quiet)
				fprintf(stderr, "%s: SIGHUP ignored (no reload; restart instead)\n",
				        m->prog);
			break;
		default:
			break;
		}
	}
	return rc;
}

/* Milliseconds until the next thing the master must do, -1 for none. */
static int next_timeout(const struct master *m)
{
	int64_t now = now_ms(), next = -1;
	if (m->stopping) {
		next = m->deadline_ms;
	} else {
		for (int i = 0; i < m->nworkers; i++) {
			int64_t at = m->slots[i].respawn_at;
			if (m->slots[i].pid == 0 && at >= 0 && (next < 0 || at < next))
				next = at;
		}
	}
	if (next < 0)
		return -1;
	if (next <= now)
		return 0;
	return next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

static void respawn_due(struct master *m)
{
	int64_t now = now_ms();
	for (int i = 0; i < m->nworkers; i++) {
		struct worker_slot *w = &m->slots[i];
		if (w->pid != 0 || w->respawn_at < 0 || w->respawn_at > now)
			continue;
		if (spawn(m, i) != 0) {
			w->started_ms = now;
			schedule_respawn(m, i, true);
		}
	}
}

static int supervise(struct master *m)
{
	int rc = 0;
	for (;;) {
		if (m->stopping && m->live == 0)
			break;
		if (m->stopping && now_ms() >= m->deadline_ms) {
			kill_all(m, "still running after the graceful timeout");
			reap_all_blocking(m);
			break;
		}
		if (!m->stopping)
			respawn_due(m);
		struct pollfd pfd = {.fd = m->sig_fd, .events = POLLIN};
		int n = poll(&pfd, 1, next_timeout(m));
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "%s: poll: %s\n", m->prog, strerror(errno));
			rc = 1;
			kill_all(m, "master failing");
			reap_all_blocking(m);
			break;
		}
		if (n > 0 && handle_signals(m) != 0) {
			/* Workers cannot start: stop the others and fail. */
			if (!m->stopping)
				begin_shutdown(m, SIGTERM);
			rc = 1;
		}
	}
	return rc;
}

/* Give the caller back its signal state. A signal still pending (a second
 * SIGTERM, a late SIGCHLD) is discarded by SIG_IGN first, so unblocking it
 * cannot kill the process on its way out of a clean shutdown. */
static void restore_signals(struct master *m)
{
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	for (size_t i = 0; i < MASTER_NSIGNALS; i++)
		sigaction(master_signals[i], &ign, NULL);
	sigprocmask(SIG_SETMASK, &m->old_mask, NULL);
	for (size_t i = 0; i < MASTER_NSIGNALS; i++)
		sigaction(master_signals[i], &m->old_act[i], NULL);
}

int master_run(const struct server_opts *opts, worker_main_fn fn, void *arg, const char *prog)
{
	struct master m = {
	    .opts = opts,
	    .fn = fn,
	    .arg = arg,
	    .prog = prog ? prog : "server",
	    .sig_fd = -1,
	};
	m.ncpus = allowed_cpus(&m.cpus);
	m.nworkers = opts->workers > 0 ? opts->workers : m.ncpus;
	/* One worker needs no SO_REUSEPORT: one socket, as before, at no cost. */
	m.nlisten = opts->unix_path || opts->shared_listener ? 1 : m.nworkers;
	m.slots = calloc((size_t)m.nworkers, sizeof(*m.slots));
	m.lfds = calloc((size_t)m.nlisten, sizeof(*m.lfds));
	if (!m.slots || !m.lfds) {
		fprintf(stderr, "%s: out of memory\n", m.prog);
		free(m.slots);
		free(m.lfds);
		free(m.cpus);
		return 1;
	}
	char bound[INET6_ADDRSTRLEN + 128];
	int rc = 0;
	if (opts->unix_path) {
		m.lfds[0] = open_unix(opts->unix_path, opts->backlog, m.prog, &m.unix_made);
		rc = m.lfds[0] < 0 ? -1 : 0;
		snprintf(bound, sizeof(bound), "unix:%s", opts->unix_path);
	} else {
		rc = open_tcp(opts, m.prog, m.lfds, m.nlisten, bound, sizeof(bound));
	}
	if (rc != 0) {
		free(m.slots);
		free(m.lfds);
		free(m.cpus);
		return 1;
	}

	/* Block the signals the master acts on before the first fork, so none
	 * is lost between fork and the supervise loop. Their dispositions go to
	 * SIG_DFL: an inherited SIG_IGN would discard them before the signalfd
	 * sees them (and an ignored SIGCHLD would reap the workers for us). */
	sigset_t mask;
	sigemptyset(&mask);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	for (size_t i = 0; i < MASTER_NSIGNALS; i++) {
		sigaddset(&mask, master_signals[i]);
		sigaction(master_signals[i], &dfl, &m.old_act[i]);
	}
	sigprocmask(SIG_BLOCK, &mask, &m.old_mask);
	m.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m.sig_fd < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", m.prog, strerror(errno));
		restore_signals(&m);
		close_listeners(&m);
		free(m.slots);
		free(m.lfds);
		free(m.cpus);
		return 1;
	}

	/* listen() has run: connections queue from now on, so the line below
	 * is a true readiness signal. */
	fprintf(stderr, "%s: listening on %s (%d worker%s)\n", m.prog, bound, m.nworkers,
	        m.nworkers == 1 ? "" : "s");
	fflush(stderr);

	for (int i = 0; i < m.nworkers; i++) {
		m.slots[i].respawn_at = -1;
		if (spawn(&m, i) != 0) {
			m.slots[i].started_ms = now_ms();
			schedule_respawn(&m, i, true);
		}
	}

	rc = supervise(&m);
	if (rc == 0 && !m.opts->quiet)
		fprintf(stderr, "%s: stopped\n", m.prog);

	close_listeners(&m);
	close(m.sig_fd);
	restore_signals(&m);
	free(m.slots);
	free(m.lfds);
	free(m.cpus);
	return rc;
}
