/*
 * proc.c - the benchmark's child processes: brokers, workers, relays,
 * gearmand.  Each child leads its own process group (a tq-worker's zygote
 * and executors are in its group), so one kill of the group ends all of
 * it.
 *
 * Invariant: no process outlives tq-bench.  Every live child is in
 * `live`; an atexit handler, the SIGINT/SIGTERM/SIGHUP handler and the
 * watchdog (SIGALRM) kill every group in it, and each child also gets
 * PR_SET_PDEATHSIG so that even a SIGKILL of tq-bench takes it down.
 */
#include "bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_LIVE = 64 };

/* Written by the main thread, read by signal handlers: pids only. */
static volatile pid_t live[MAX_LIVE];
static char self_path[PATH_MAX];
static unsigned spawned;

static void kill_all(void)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		pid_t pid = live[i];
		if (pid > 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	}
}

static void reap_all(void)
{
	kill_all();
	for (int i = 0; i < MAX_LIVE; i++) {
		if (live[i] > 0) {
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	}
}

static void on_fatal_signal(int sig)
{
	static const char alarm_msg[] = "tq-bench: watchdog: the run took too long; stopping\n";
	static const char sig_msg[] = "tq-bench: interrupted; stopping\n";
	kill_all();
	/* Reap them: killed, they go at once, and leave no zombies behind. */
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] > 0)
			waitpid(live[i], NULL, 0);
	if (sig == SIGALRM)
		(void)!write(2, alarm_msg, sizeof alarm_msg - 1);
	else
		(void)!write(2, sig_msg, sizeof sig_msg - 1);
	_exit(sig == SIGALRM ? 3 : 128 + sig);
}

void tqb_proc_init(unsigned limit_s)
{
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
	self_path[n > 0 ? n : 0] = '\0';
	atexit(reap_all);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm(limit_s);
}

const char *tqb_self(void)
{
	return self_path;
}

static void track(pid_t pid, bool add)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		if (add && live[i] == 0) {
			live[i] = pid;
			return;
		}
		if (!add && live[i] == pid) {
			live[i] = 0;
			return;
		}
	}
}

int tqb_spawn(tqb_proc *p, const char *out_dir, const char *what, const char *const argv[])
{
	memset(p, 0, sizeof *p);
	p->pid = -1;
	snprintf(p->what, sizeof p->what, "%s", what);
	snprintf(p->log, sizeof p->log, "%s/%s-%u.log", out_dir, what, spawned++);
	/* The log is emptied here, before the child exists, so that nobody
	 * reads a line left in it by an earlier run. */
	int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "tq-bench: cannot create %s: %s\n", p->log, strerror(errno));
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		/* Dies with tq-bench, however tq-bench ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		dup2(fd, 1);
		dup2(fd, 2);
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0) {
			dup2(null, 0);
			close(null);
		}
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	/* Also from the parent: the group exists before any kill aims at it. */
	setpgid(pid, pid);
	p->pid = pid;
	track(pid, true);
	return 0;
}

bool tqb_alive(tqb_proc *p)
{
	if (p->pid <= 0)
		return false;
	int st;
	pid_t r = waitpid(p->pid, &st, WNOHANG);
	if (r == 0)
		return true;
	/* Gone: take down what it left in its group (a zygote). */
	kill(-p->pid, SIGKILL);
	track(p->pid, false);
	p->pid = -1;
	return false;
}

void tqb_stop(tqb_proc *p, int sig, unsigned grace_ms)
{
	if (p->pid <= 0)
		return;
	kill(-p->pid, sig);
	for (unsigned waited = 0; waited < grace_ms; waited += 5) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			kill(-p->pid, SIGKILL); /* what the leader left behind */
			track(p->pid, false);
			p->pid = -1;
			return;
		}
		tqb_sleep_ms(5);
	}
	kill(-p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	track(p->pid, false);
	p->pid = -1;
}

/* Finds needle in the file; copies from it to the end of its line. */
static bool find_in_file(const char *path, const char *needle, char *line, size_t n)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	char buf[4096];
	bool found = false;
	while (!found && fgets(buf, sizeof buf, f) != NULL) {
		const char *s = strstr(buf, needle);
		if (s == NULL)
			continue;
		found = true;
		if (line != NULL) {
			snprintf(line, n, "%s", s);
			line[strcspn(line, "\n")] = '\0';
		}
	}
	fclose(f);
	return found;
}

int tqb_wait_log(tqb_proc *p, const char *needle, char *line, size_t n, unsigned timeout_ms)
{
	for (unsigned waited = 0;; waited += 5) {
		if (find_in_file(p->log, needle, line, n))
			return 0;
		if (waited >= timeout_ms || !tqb_alive(p)) {
			fprintf(stderr, "tq-bench: %s did not log '%s' (see %s)\n", p->what, needle,
			        p->log);
			return -1;
		}
		tqb_sleep_ms(5);
	}
}

long tqb_rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}
