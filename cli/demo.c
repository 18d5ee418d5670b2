/*
 * demo.c - `tq demo`: the Elixir Task lesson that tq grew out of, step by
 * step, as measured programs.  Each step prints the Elixir it mirrors and
 * the `tq` command that does the same, then what happened: the results,
 * which worker ran what, how long it took, and for the timeouts the error
 * as tq_task_error words it.  It checks that tq behaved as the lesson says;
 * the exit code tells whether every step did.
 *
 * --local (the default when no broker is named) first starts tq-broker and
 * N tq-workers - found next to this program - as child processes on ipc://
 * endpoints in a fresh temporary directory, which also holds their logs,
 * and at the end stops them and removes the directory.
 *
 * Invariant: no process the demo starts outlives it.  The children run in
 * a process group of their own, so that Ctrl-C reaches only the demo, whose
 * handler stops them in order (workers, then the broker, SIGKILL for any
 * that outstay a bound); and they die with the demo when it is killed
 * outright (PR_SET_PDEATHSIG), after which a janitor process, forked
 * before them, removes the directory.  Everything the handler touches is
 * set up before it can run, and all it calls is async-signal-safe.
 */
#include "cli/cli.h"

#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char demo_usage[] =
    "usage: tq demo [--local] [--broker EP] [--workers N]\n"
    "  Walks through Elixir's Task lesson with tq: start, async and await, tick and\n"
    "  tock, sequential against parallel, await_many, and the await timeouts - each\n"
    "  step measured, with the worker that ran each task.  Exit 0 when every step\n"
    "  behaved as the lesson says.\n"
    "  --local     start a broker and workers here, as child processes on ipc://,\n"
    "              and stop them at the end (the default without --broker and\n"
    "              $TQ_BROKER)\n"
    "  --broker    run against this broker's client endpoint; its workers must\n"
    "              offer tq-worker's built-in functions\n"
    "  --workers   local workers to start, 1..16 [2]\n";

#define DEMO_MAX_WORKERS 16
#define DEMO_PATH 160
#define DEMO_STEPS 9

/* ---- the local broker and workers ------------------------------------ */

/* A process the demo started: procs[0] is the broker, then the workers. */
typedef struct {
	pid_t pid;   /* 0 once reaped */
	int status;  /* its wait status, once reaped */
	bool killed; /* it had to be sent SIGKILL */
	char name[16];
	char log[DEMO_PATH];
} proc;

/* Written while signals are blocked, read by the signal handler: fixed
 * arrays, nothing allocated. */
static struct {
	char dir[DEMO_PATH];        /* "" when there is none */
	char sockets[2][DEMO_PATH]; /* the ipc:// files in dir */
	proc procs[1 + DEMO_MAX_WORKERS];
	int nprocs;     /* started */
	int nlogs;      /* procs[0..nlogs) have their log's name */
	pid_t janitor;  /* removes dir if the demo is killed outright */
	int janitor_fd; /* its pipe: the janitor wakes when this closes */
} local = { .janitor_fd = -1 };

/* Reaps *pid if it exits before `until` (monotonic ms): sets *pid to 0 and
 * *status.  False when it still runs.  The signal handler comes here too:
 * tqi_now_ms and tqi_sleep_ms are clock_gettime and nanosleep, both
 * async-signal-safe. */
static bool reap(pid_t *pid, int *status, uint64_t until)
{
	for (;;) {
		pid_t r = waitpid(*pid, status, WNOHANG);
		if (r == *pid || (r < 0 && errno != EINTR)) {
			*pid = 0;
			return true;
		}
		if (tqi_now_ms() >= until)
			return false;
		tqi_sleep_ms(5);
	}
}

/* Waits for p, which has had its SIGTERM, until `until`; then SIGKILL. */
static void finish(proc *p, uint64_t until)
{
	if (p->pid > 0 && !reap(&p->pid, &p->status, until)) {
		kill(p->pid, SIGKILL);
		p->killed = true;
		reap(&p->pid, &p->status, UINT64_MAX);
	}
}

static bool ended_cleanly(const proc *p)
{
	return !p->killed && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
}

/* Removes the directory: sockets, logs, the directory itself.  Only calls
 * that are async-signal-safe, as all below that the handler uses. */
static void remove_dir(const char *dir, const char sockets[2][DEMO_PATH], const proc *procs,
                       int nprocs)
{
	if (dir[0] == '\0')
		return;
	for (int i = 0; i < 2; i++)
		unlink(sockets[i]);
	for (int i = 0; i < nprocs; i++)
		unlink(procs[i].log);
	rmdir(dir);
}

/* Stops the local processes - the workers first (SIGTERM drains them: they
 * take no new task and say goodbye), then the broker, each given 3 s - and
 * removes the directory.  Harmless to call twice. */
static void stop_local(void)
{
	uint64_t until = tqi_now_ms() + 3000;
	for (int i = 1; i < local.nprocs; i++)
		if (local.procs[i].pid > 0)
			kill(local.procs[i].pid, SIGTERM);
	for (int i = 1; i < local.nprocs; i++)
		finish(&local.procs[i], until);
	if (local.nprocs > 0 && local.procs[0].pid > 0) {
		kill(local.procs[0].pid, SIGTERM);
		finish(&local.procs[0], tqi_now_ms() + 3000);
	}
	remove_dir(local.dir, local.sockets, local.procs, local.nlogs);
	local.dir[0] = '\0';
	if (local.janitor > 0) {
		int status;
		close(local.janitor_fd); /* it wakes, finds nothing to do, and exits */
		local.janitor_fd = -1;
		if (!reap(&local.janitor, &status, tqi_now_ms() + 1000)) {
			kill(local.janitor, SIGKILL);
			reap(&local.janitor, &status, UINT64_MAX);
		}
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "\ntq demo: interrupted; stopping the local broker and workers\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)w;
	stop_local();
	_exit(128 + sig);
}

static void block_signals(int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigprocmask(how, &s, NULL);
}

/* In a child: dies with the demo, however the demo ends; false if the demo
 * is gone already. */
static bool tie_to(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	return getppid() == parent;
}

/* The janitor: a copy of the demo that waits for the demo to end and then
 * removes the directory, for the one case the demo cannot clean up after
 * itself - SIGKILL.  (Its children die then by PR_SET_PDEATHSIG.) */
static int start_janitor(void)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[1]);
		signal(SIGINT, SIG_IGN); /* Ctrl-C is the demo's to handle */
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		char c;
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		/* The demo ended.  If it removed the directory, this finds
		 * nothing; otherwise let its children die, then clean up. */
		if (getppid() != parent)
			tqi_sleep_ms(200);
		remove_dir(local.dir, local.sockets, local.procs, local.nlogs);
		_exit(0);
	}
	close(fds[0]);
	local.janitor = pid;
	local.janitor_fd = fds[1];
	return 0;
}

/* Starts argv[0] with its output in its log, in process group `group` (0:
 * a new one).  Signals are blocked in the caller. */
static pid_t spawn(char *const argv[], const char *log, pid_t group)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0) {
		if (pid > 0)
			setpgid(pid, group ? group : pid); /* here and there: whoever runs first */
		return pid;
	}
	if (!tie_to(parent))
		_exit(127);
	setpgid(0, group);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int in = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0)
		_exit(127);
	dup2(in, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	execv(argv[0], argv);
	dprintf(STDERR_FILENO, "tq demo: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Finds tq-broker or tq-worker next to this program: in the same directory
 * when installed, in ../broker or ../worker in the build tree. */
static int find_program(const char *name, const char *subdir, char *out, size_t n)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len <= 0)
		return -1;
	self[len] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	int w = snprintf(out, n, "%s/%s", self, name);
	if (w > 0 && (size_t)w < n && access(out, X_OK) == 0)
		return 0;
	w = snprintf(out, n, "%s/../%s/%s", self, subdir, name);
	if (w > 0 && (size_t)w < n && access(out, X_OK) == 0)
		return 0;
	fprintf(stderr, "tq demo: cannot find %s in %s or %s/../%s\n", name, self, self, subdir);
	return -1;
}

/* dir/name into out (DEMO_PATH bytes); dir is at most 80 bytes (see
 * start_local) and names are short. */
static void in_dir(char *out, const char *name)
{
	size_t dl = strlen(local.dir), nl = strlen(name);
	memcpy(out, local.dir, dl);
	out[dl] = '/';
	memcpy(out + dl + 1, name, nl + 1);
}

/* Starts the broker and the workers; the client endpoint goes into ep. */
static int start_local(unsigned nworkers, char *ep, size_t n)
{
	char broker_bin[PATH_MAX], worker_bin[PATH_MAX];
	if (find_program("tq-broker", "broker", broker_bin, sizeof broker_bin) != 0 ||
	    find_program("tq-worker", "worker", worker_bin, sizeof worker_bin) != 0)
		return -1;
	/* An ipc:// path must fit a socket address (107 bytes). */
	const char *tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp != '/' || strlen(tmp) > 64)
		tmp = "/tmp";
	char dir[DEMO_PATH];
	snprintf(dir, sizeof dir, "%s/tq-demo-XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "tq demo: cannot create a directory in %s: %s\n", tmp,
		        strerror(errno));
		return -1;
	}
	block_signals(SIG_BLOCK);
	/* Every path first, so that the janitor and the handler know them. */
	memcpy(local.dir, dir, sizeof dir);
	in_dir(local.sockets[0], "clients");
	in_dir(local.sockets[1], "workers");
	for (unsigned i = 0; i <= nworkers; i++) {
		proc *p = &local.procs[i];
		char file[32];
		if (i == 0)
			snprintf(p->name, sizeof p->name, "tq-broker");
		else
			snprintf(p->name, sizeof p->name, "w%u", i);
		snprintf(file, sizeof file, "%s.log", i == 0 ? "broker" : p->name);
		in_dir(p->log, file);
	}
	local.nlogs = (int)nworkers + 1;
	local.nprocs = 0;
	int rc = start_janitor();
	/* Two slots a worker; on SIGTERM, 0.5 s for what it runs to end. */
	char wep[DEMO_PATH + 8], grace[] = "1000", conc[] = "2", drain[] = "500";
	snprintf(ep, n, "ipc://%s", local.sockets[0]);
	snprintf(wep, sizeof wep, "ipc://%s", local.sockets[1]);
	char *bargv[] = { broker_bin, "--clients", ep, "--workers", wep, "--grace", grace, NULL };
	for (unsigned i = 0; i <= nworkers && rc == 0; i++) {
		proc *p = &local.procs[i];
		char *wargv[] = { worker_bin,      "--broker", wep,       "--name", p->name,
			          "--concurrency", conc,       "--drain", drain,    NULL };
		p->pid = spawn(i == 0 ? bargv : wargv, p->log, i == 0 ? 0 : local.procs[0].pid);
		local.nprocs = (int)i + 1;
		if (p->pid <= 0)
			rc = -1;
	}
	block_signals(SIG_UNBLOCK);
	if (rc != 0) {
		fprintf(stderr, "tq demo: cannot start processes: %s\n", strerror(errno));
		return -1;
	}
	printf("local: started");
	for (int i = 0; i < local.nprocs; i++)
		printf("%s %s (pid %d)", i ? "," : "", local.procs[i].name,
		       (int)local.procs[i].pid);
	printf("\n       on ipc:// in %s, with their logs\n", local.dir);
	return 0;
}

/* Prints the end of a local process's log. */
static void print_log_tail(const proc *p)
{
	FILE *f = fopen(p->log, "r");
	if (f == NULL)
		return;
	char buf[2048];
	if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof buf - 1)
		fseek(f, -(long)(sizeof buf - 1), SEEK_END);
	else
		rewind(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "----- %s -----\n%s", p->log, buf);
}

/* A local process that has exited (reaped now), or NULL while all run. */
static const proc *local_exited(void)
{
	for (int i = 0; i < local.nprocs; i++) {
		proc *p = &local.procs[i];
		if (p->pid > 0 && waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
			p->pid = 0;
			return p;
		}
	}
	return NULL;
}

/* Says how each local process ended, if not cleanly; false if one did not. */
static bool report_ends(void)
{
	bool clean = true;
	for (int i = 0; i < local.nprocs; i++) {
		const proc *p = &local.procs[i];
		if (ended_cleanly(p))
			continue;
		clean = false;
		if (p->killed)
			printf("local: %s did not stop within 3 s and was killed\n", p->name);
		else if (WIFSIGNALED(p->status))
			printf("local: %s was ended by signal %d\n", p->name, WTERMSIG(p->status));
		else
			printf("local: %s exited with status %d\n", p->name,
			       WEXITSTATUS(p->status));
	}
	return clean;
}

/* ---- the broker's stats ------------------------------------------------ */

/* The workers the broker knows (their names, comma-separated, into names)
 * and its count of completed and cancelled tasks; -1 when it does not
 * answer within timeout_ms. */
typedef struct {
	uint32_t workers;
	char names[256];
	uint64_t completed, cancelled;
} broker_view;

static int look(tq_client *c, int64_t timeout_ms, broker_view *v)
{
	uint8_t *data;
	size_t len;
	memset(v, 0, sizeof *v);
	if (tq_client_stats(c, timeout_ms, &data, &len) != TQ_OK)
		return -1;
	tq_reader m, ws, x;
	tq_reader_init(&m, data, len);
	if (tq_read_find(&m, "counters", &x) == TQ_OK) {
		tq_reader y;
		if (tq_read_find(&x, "completed", &y) == TQ_OK)
			tq_read_uint(&y, &v->completed);
		if (tq_read_find(&x, "cancelled", &y) == TQ_OK)
			tq_read_uint(&y, &v->cancelled);
	}
	if (tq_read_find(&m, "workers", &ws) == TQ_OK && tq_read_array(&ws, &v->workers) == TQ_OK) {
		size_t used = 0;
		for (uint32_t i = 0; i < v->workers; i++) {
			const char *s;
			size_t sl;
			if (tq_read_find(&ws, "name", &x) == TQ_OK &&
			    tq_read_str(&x, &s, &sl) == TQ_OK && used + sl + 3 < sizeof v->names) {
				used += (size_t)snprintf(v->names + used, sizeof v->names - used,
				                         "%s%.*s", i ? ", " : "", (int)sl, s);
			}
			if (tq_read_skip(&ws) != TQ_OK)
				break;
		}
	}
	free(data);
	return 0;
}

/* Waits up to timeout_ms until `want` workers have registered; while it
 * waits, a local process that exits ends the wait. */
static int wait_ready(tq_client *c, unsigned want, int64_t timeout_ms, bool is_local)
{
	uint64_t t0 = tqi_now_ms();
	broker_view v = { 0 };
	bool answered = false;
	for (;;) {
		const proc *gone = is_local ? local_exited() : NULL;
		if (gone != NULL) {
			fprintf(stderr, "tq demo: %s exited while starting up; its log:\n",
			        gone->name);
			print_log_tail(gone);
			return -1;
		}
		if (look(c, 500, &v) == 0) {
			answered = true;
			if (v.workers >= want)
				break;
		}
		if (tqi_now_ms() - t0 >= (uint64_t)timeout_ms) {
			if (!answered)
				fprintf(stderr, "tq demo: no answer from the broker at %s\n",
				        tq_client_broker(c));
			else
				fprintf(stderr,
				        "tq demo: the broker at %s has %u workers after %.0f s, "
				        "wanted %u\n",
				        tq_client_broker(c), v.workers, (double)timeout_ms / 1000,
				        want);
			return -1;
		}
		tqi_sleep_ms(20);
	}
	printf("ready: %u worker%s (%s) registered with the broker after %.2f s\n", v.workers,
	       v.workers == 1 ? "" : "s", v.names, (double)(tqi_now_ms() - t0) / 1000);
	return 0;
}

/* ---- the lesson -------------------------------------------------------- */

typedef struct {
	tq_client *c;
	int step;
	int nfailed; /* steps that did not behave as the lesson says */
} lesson;

/* Prints the step's title, its Elixir (lines after the first indented to
 * match) and the tq command line that does the same. */
static void step(lesson *l, const char *title, const char *elixir, const char *tq)
{
	printf("\n%d. %s\n   elixir: ", ++l->step, title);
	for (const char *p = elixir; *p; p++)
		if (*p == '\n')
			fputs("\n           ", stdout);
		else
			putchar(*p);
	printf("\n   tq:     %s\n", tq);
}

static void verdict(lesson *l, bool ok, const char *why)
{
	if (ok) {
		printf("   ok\n");
	} else {
		printf("   NOT AS THE LESSON SAYS: %s\n", why);
		l->nfailed++;
	}
}

/* Seconds since t0 (tqi_now_us). */
static double secs_since(uint64_t t0)
{
	return (double)(tqi_now_us() - t0) / 1e6;
}

/* The time since t0 (tqi_now_us) for people: "0.4 ms", "1.00 s". */
static const char *took(uint64_t t0, char *buf, size_t n)
{
	uint64_t us = tqi_now_us() - t0;
	if (us < 1000000)
		snprintf(buf, n, "%.1f ms", (double)us / 1000);
	else
		snprintf(buf, n, "%.2f s", (double)us / 1e6);
	return buf;
}

static const char *worker_of(const tq_task *t)
{
	return *tq_task_worker(t) ? tq_task_worker(t) : "no worker";
}

/* Submits fn(json); NULL (and a line saying why) when refused. */
static tq_task *async(lesson *l, const char *fn, const char *json)
{
	tq_task *t = NULL;
	tq_err e = tq_client_async_json(l->c, fn, json, NULL, &t);
	if (e != TQ_OK)
		printf("   %s %s was not submitted: %s\n", fn, json, tq_strerror(e));
	return t;
}

/* Prints how an await ended that did not succeed. */
static void print_failure(const tq_task *t, tq_err e, uint64_t t0)
{
	printf("   await returned %s after %.2f s: %s\n", tq_errname(e), secs_since(t0),
	       t && *tq_task_error(t) ? tq_task_error(t) : tq_strerror(e));
}

static int64_t result_int(const tq_task *t)
{
	int64_t v = INT64_MIN;
	tq_task_result_int(t, &v);
	return v;
}

static void destroy_all(tq_task **ts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tq_task_destroy(&ts[i]);
}

/* Waits up to 3 s for the broker's count of cancelled tasks to pass
 * `before`: the worker has stopped the task the await gave up on. */
static void check_cancelled(lesson *l, uint64_t before, uint64_t t0)
{
	broker_view v;
	uint64_t until = tqi_now_us() + 3000000;
	while (look(l->c, 1000, &v) == 0 && v.cancelled <= before && tqi_now_us() < until)
		tqi_sleep_ms(10);
	if (v.cancelled > before) {
		printf("   the task was cancelled on its worker %.2f s after it started, as a\n"
		       "   task linked to its caller dies with it\n",
		       secs_since(t0));
		verdict(l, true, NULL);
	} else {
		verdict(l, false, "the broker did not count the task cancelled");
	}
}

static void step_start(lesson *l)
{
	step(l, "Task.start: fire and forget",
	     "Task.start(fn -> IO.puts(\"hello from a task\") end)",
	     "tq start echo \"hello from a task\"");
	broker_view v;
	uint64_t before = look(l->c, 2000, &v) == 0 ? v.completed : 0;
	char ref[33];
	uint64_t t0 = tqi_now_us();
	tq_err e = tq_client_start_json(l->c, "echo", "[\"hello from a task\"]", NULL, ref);
	if (e != TQ_OK) {
		printf("   the broker did not accept it: %s\n", tq_strerror(e));
		verdict(l, false, "start failed");
		return;
	}
	char buf[32];
	printf("   the broker accepted task %.8s in %s; no result is kept, nobody awaits it\n", ref,
	       took(t0, buf, sizeof buf));
	/* It runs all the same: the broker counts it completed. */
	uint64_t until = tqi_now_us() + 5000000;
	while (look(l->c, 1000, &v) == 0 && v.completed <= before && tqi_now_us() < until)
		tqi_sleep_ms(5);
	if (v.completed > before)
		printf("   it ran: the broker counted it completed %s after the start\n",
		       took(t0, buf, sizeof buf));
	verdict(l, v.completed > before, "the broker never counted it completed");
}

static void step_async_await(lesson *l)
{
	step(l, "Task.async, then Task.await", "Task.async(fn -> 21 * 2 end) |> Task.await()",
	     "tq call double 21");
	char buf[32];
	uint64_t t0 = tqi_now_us();
	tq_task *t = async(l, "double", "[21]");
	tq_err e = t ? tq_task_await(t, TQ_DEFAULT_TIMEOUT) : TQ_EINVAL;
	if (e == TQ_OK)
		printf("   double(21) = %lld   ran on %s   in %s\n", (long long)result_int(t),
		       worker_of(t), took(t0, buf, sizeof buf));
	else
		print_failure(t, e, t0);
	verdict(l, e == TQ_OK && result_int(t) == 42, "expected 42");
	tq_task_destroy(&t);
}

typedef struct {
	uint64_t ms; /* unix time */
	char word[8];
	const char *worker;
} tick;

static int tick_cmp(const void *a, const void *b)
{
	const tick *x = a, *y = b;
	return x->ms < y->ms ? -1 : x->ms > y->ms;
}

/* Appends the [[unix_ms, word], ...] of a `ticks` result to ev. */
static size_t read_ticks(const tq_task *t, tick *ev, size_t max)
{
	size_t len, n = 0;
	const uint8_t *d = tq_task_result(t, &len);
	tq_reader r;
	uint32_t count, two;
	tq_reader_init(&r, d, d ? len : 0);
	if (d == NULL || tq_read_array(&r, &count) != TQ_OK)
		return 0;
	for (uint32_t i = 0; i < count && n < max; i++) {
		const char *w;
		size_t wl;
		if (tq_read_array(&r, &two) != TQ_OK || two != 2 ||
		    tq_read_uint(&r, &ev[n].ms) != TQ_OK || tq_read_str(&r, &w, &wl) != TQ_OK)
			return n;
		snprintf(ev[n].word, sizeof ev[n].word, "%.*s", (int)wl, w);
		ev[n].worker = worker_of(t);
		n++;
	}
	return n;
}

static void step_tick_tock(lesson *l)
{
	step(l, "tick and tock, at the same time",
	     "for word <- [\"tick\", \"tock\"] do\n"
	     "  Task.async(fn -> for _ <- 1..3, do: (IO.puts(word); Process.sleep(500)) end)\n"
	     "end",
	     "tq call ticks tick 3 500 & tq call ticks tock 3 500");
	uint64_t t0 = tqi_now_us();
	tq_task *ts[2] = { async(l, "ticks", "[\"tick\", 3, 500]"),
		           async(l, "ticks", "[\"tock\", 3, 500]") };
	size_t failed = 0;
	tq_err e = ts[0] && ts[1] ? tq_await_many(ts, 2, TQ_DEFAULT_TIMEOUT, &failed) : TQ_EINVAL;
	if (e != TQ_OK) {
		print_failure(ts[failed], e, t0);
		verdict(l, false, "both tasks should have succeeded");
		destroy_all(ts, 2);
		return;
	}
	tick ev[6];
	size_t nt = read_ticks(ts[0], ev, 3), n = nt + read_ticks(ts[1], ev + nt, 3);
	qsort(ev, n, sizeof ev[0], tick_cmp);
	for (size_t i = 0; i < n; i++)
		printf("   +%4llu ms  %-4s  (on %s)\n", (unsigned long long)(ev[i].ms - ev[0].ms),
		       ev[i].word, ev[i].worker);
	/* Concurrent: each one's first tick came before the other's last. */
	uint64_t first[2] = { UINT64_MAX, UINT64_MAX }, last[2] = { 0, 0 };
	for (size_t i = 0; i < n; i++) {
		int k = strcmp(ev[i].word, "tick") != 0;
		first[k] = ev[i].ms < first[k] ? ev[i].ms : first[k];
		last[k] = ev[i].ms > last[k] ? ev[i].ms : last[k];
	}
	bool overlap = n == 6 && first[0] <= last[1] && first[1] <= last[0];
	printf("   both done in %.2f s: the two ran at the same time, on %s and %s\n",
	       secs_since(t0), worker_of(ts[0]), worker_of(ts[1]));
	verdict(l, overlap, "three ticks and three tocks, interleaved");
	destroy_all(ts, 2);
}

static void step_parallel(lesson *l)
{
	step(l, "two 1-second computations: one after the other, then in parallel",
	     "f = fn -> Process.sleep(1000) end\n"
	     "Task.await(Task.async(f)); Task.await(Task.async(f))\n"
	     "Task.await_many([Task.async(f), Task.async(f)])",
	     "tq call sleep 1000; tq call sleep 1000   vs   "
	     "tq call sleep 1000 & tq call sleep 1000");
	bool ok = true;
	char seq_on[2][64];
	uint64_t t0 = tqi_now_us();
	for (int i = 0; i < 2 && ok; i++) {
		uint64_t t1 = tqi_now_us();
		tq_task *t = async(l, "sleep", "[1000]");
		tq_err e = t ? tq_task_await(t, TQ_DEFAULT_TIMEOUT) : TQ_EINVAL;
		ok = e == TQ_OK && result_int(t) == 1000;
		if (!ok)
			print_failure(t, e, t1);
		else
			snprintf(seq_on[i], sizeof seq_on[i], "%s", worker_of(t));
		tq_task_destroy(&t);
	}
	uint64_t seq_us = tqi_now_us() - t0;
	if (!ok) {
		verdict(l, false, "the sequential tasks should have succeeded");
		return;
	}
	t0 = tqi_now_us();
	tq_task *ts[2] = { async(l, "sleep", "[1000]"), async(l, "sleep", "[1000]") };
	size_t failed = 0;
	tq_err e = ts[0] && ts[1] ? tq_await_many(ts, 2, TQ_DEFAULT_TIMEOUT, &failed) : TQ_EINVAL;
	uint64_t par_us = tqi_now_us() - t0;
	if (e != TQ_OK) {
		print_failure(ts[failed], e, t0);
		verdict(l, false, "the parallel tasks should have succeeded");
		destroy_all(ts, 2);
		return;
	}
	printf("   sequential: %.2f s   parallel: %.2f s   speed-up %.2fx\n", (double)seq_us / 1e6,
	       (double)par_us / 1e6, par_us ? (double)seq_us / (double)par_us : 0.0);
	printf("   one after the other on %s, then %s; at the same time on %s and %s\n", seq_on[0],
	       seq_on[1], worker_of(ts[0]), worker_of(ts[1]));
	/* Two 1-second tasks that end in under 2 s must have overlapped. */
	verdict(l, par_us < 2000000 && seq_us >= 2000000, "the parallel run should take about 1 s");
	destroy_all(ts, 2);
}

static void step_await_many(lesson *l)
{
	step(l, "await_many: Enum.map(1..5, &(&1 * 2)), each in a task",
	     "Enum.map(1..5, fn i -> Task.async(fn -> i * 2 end) end) |> Task.await_many()",
	     "seq 5 | tq map double");
	uint64_t t0 = tqi_now_us();
	tq_task *ts[5] = { 0 };
	for (int i = 0; i < 5; i++) {
		char arg[16];
		snprintf(arg, sizeof arg, "[%d]", i + 1);
		if ((ts[i] = async(l, "double", arg)) == NULL) {
			verdict(l, false, "submit failed");
			destroy_all(ts, 5);
			return;
		}
	}
	size_t failed = 0;
	tq_err e = tq_await_many(ts, 5, TQ_DEFAULT_TIMEOUT, &failed);
	bool ok = e == TQ_OK;
	if (ok) {
		printf("   [");
		for (int i = 0; i < 5; i++) {
			printf("%s%lld", i ? ", " : "", (long long)result_int(ts[i]));
			ok = ok && result_int(ts[i]) == 2 * (i + 1);
		}
		char buf[32];
		printf("]   in %s, in input order, ran on", took(t0, buf, sizeof buf));
		for (int i = 0; i < 5; i++)
			printf(" %s", worker_of(ts[i]));
		printf("\n");
	} else {
		print_failure(ts[failed], e, t0);
	}
	verdict(l, ok, "expected [2, 4, 6, 8, 10]");
	destroy_all(ts, 5);
}

static void step_default_timeout(lesson *l)
{
	step(l, "Task.await's default timeout is 5000 ms: a 6 s task fails it",
	     "task = Task.async(fn -> Process.sleep(6000) end)\n"
	     "Task.await(task)   # ** (exit) exited in: Task.await(..., 5000)",
	     "tq call sleep 6000   # exit 3");
	broker_view v;
	uint64_t cancelled = look(l->c, 2000, &v) == 0 ? v.cancelled : 0;
	uint64_t t0 = tqi_now_us();
	tq_task *t = async(l, "sleep", "[6000]");
	tq_err e = t ? tq_task_await(t, TQ_DEFAULT_TIMEOUT) : TQ_EINVAL;
	print_failure(t, e, t0);
	if (e != TQ_ETIMEDOUT)
		verdict(l, false, "the await should have timed out");
	else
		check_cancelled(l, cancelled, t0);
	tq_task_destroy(&t);
}

static void step_await_7000(lesson *l)
{
	step(l, "Task.await(task, 7000): a 6 s task in time",
	     "task = Task.async(fn -> Process.sleep(6000) end)\nTask.await(task, 7000)",
	     "tq call --timeout 7000 sleep 6000");
	uint64_t t0 = tqi_now_us();
	tq_task *t = async(l, "sleep", "[6000]");
	tq_err e = t ? tq_task_await(t, 7000) : TQ_EINVAL;
	if (e == TQ_OK)
		printf("   %lld   ran on %s   in %.2f s\n", (long long)result_int(t), worker_of(t),
		       secs_since(t0));
	else
		print_failure(t, e, t0);
	verdict(l, e == TQ_OK && result_int(t) == 6000, "expected 6000 within 7000 ms");
	tq_task_destroy(&t);
}

static void step_await_many_7000(lesson *l)
{
	step(l, "Task.await_many([t1, t2], 7000): a 6 s and a 5 s task, one 7 s deadline",
	     "t1 = Task.async(fn -> Process.sleep(6000) end)\n"
	     "t2 = Task.async(fn -> Process.sleep(5000) end)\n"
	     "Task.await_many([t1, t2], 7000)",
	     "printf '6000\\n5000\\n' | tq map --timeout 7000 sleep");
	uint64_t t0 = tqi_now_us();
	tq_task *ts[2] = { async(l, "sleep", "[6000]"), async(l, "sleep", "[5000]") };
	size_t failed = 0;
	tq_err e = ts[0] && ts[1] ? tq_await_many(ts, 2, 7000, &failed) : TQ_EINVAL;
	bool ok = e == TQ_OK && result_int(ts[0]) == 6000 && result_int(ts[1]) == 5000;
	if (e == TQ_OK)
		printf("   [%lld, %lld]   in %.2f s, on %s and %s: they ran at once, so one\n"
		       "   7000 ms deadline covers both (one after the other, their 11 s would\n"
		       "   not fit)\n",
		       (long long)result_int(ts[0]), (long long)result_int(ts[1]), secs_since(t0),
		       worker_of(ts[0]), worker_of(ts[1]));
	else
		print_failure(ts[failed], e, t0);
	verdict(l, ok, "expected [6000, 5000] within 7000 ms");
	destroy_all(ts, 2);
}

static void step_exercise(lesson *l)
{
	step(l, "exercise: a 1 s task awaited with a 1 s timeout must fail",
	     "task = Task.async(fn -> Process.sleep(1000) end)\nTask.await(task, 1000)",
	     "tq call --timeout 1000 sleep 1000   # exit 3");
	uint64_t t0 = tqi_now_us();
	tq_task *t = async(l, "sleep", "[1000]");
	tq_err e = t ? tq_task_await(t, 1000) : TQ_EINVAL;
	if (e == TQ_OK) {
		printf("   await returned OK after %.4f s, on %s\n", secs_since(t0), worker_of(t));
	} else {
		print_failure(t, e, t0);
		printf(
		    "   the task needs its 1000 ms of work plus the trip to a worker and back\n");
	}
	verdict(l, e == TQ_ETIMEDOUT, "the await should have timed out");
	tq_task_destroy(&t);
}

static int run_lesson(tq_client *c)
{
	lesson l = { .c = c };
	step_start(&l);
	step_async_await(&l);
	step_tick_tock(&l);
	step_parallel(&l);
	step_await_many(&l);
	step_default_timeout(&l);
	step_await_7000(&l);
	step_await_many_7000(&l);
	step_exercise(&l);
	printf("\n");
	return l.nfailed;
}

/* ---- the command -------------------------------------------------------- */

int tqc_demo(int argc, char **argv)
{
	static const struct option longs[] = { { "local", no_argument, 0, 'l' },
		                               { "broker", required_argument, 0, 'b' },
		                               { "workers", required_argument, 0, 'w' },
		                               { "help", no_argument, 0, 'h' },
		                               { 0, 0, 0, 0 } };
	const char *broker = NULL;
	unsigned long nworkers = 2;
	int is_local = 0, given_workers = 0, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'l':
			is_local = 1;
			break;
		case 'b':
			broker = optarg;
			break;
		case 'w':
			if (tqc_parse_count(optarg, DEMO_MAX_WORKERS, &nworkers) != 0 ||
			    nworkers == 0)
				return tqc_usage_error("demo", demo_usage,
				                       "--workers %s: expected 1..%d", optarg,
				                       DEMO_MAX_WORKERS);
			given_workers = 1;
			break;
		case 'h':
			fputs(demo_usage, stdout);
			return TQC_OK;
		default:
			return tqc_usage_error("demo", demo_usage,
			                       "unknown or incomplete option '%s'",
			                       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return tqc_usage_error("demo", demo_usage, "unexpected argument '%s'",
		                       argv[optind]);
	if (is_local && broker != NULL)
		return tqc_usage_error("demo", demo_usage,
		                       "--local and --broker exclude each other");
	const char *env = getenv("TQ_BROKER");
	if (broker == NULL && (env == NULL || *env == '\0'))
		is_local = 1;
	if (given_workers && !is_local)
		return tqc_usage_error("demo", demo_usage, "--workers applies to --local only");

	/* A line at a time: each step shows as it happens, also in a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	char local_ep[DEMO_PATH + 8];
	const char *ep = local_ep;
	if (is_local) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaddset(&sa.sa_mask, SIGINT);
		sigaddset(&sa.sa_mask, SIGTERM);
		sigaddset(&sa.sa_mask, SIGHUP);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		printf("tq demo: Elixir's Task lesson, run by tq on a local broker and %lu "
		       "worker%s\n",
		       nworkers, nworkers == 1 ? "" : "s");
		if (start_local((unsigned)nworkers, local_ep, sizeof local_ep) != 0) {
			stop_local();
			return TQC_BROKER;
		}
	} else {
		ep = tqc_broker(broker);
		printf("tq demo: Elixir's Task lesson, run by tq on the broker at %s\n", ep);
	}

	tq_client *cl = NULL;
	int failed = 0;
	int rc = tqc_connect("demo", ep, &cl);
	if (rc == TQC_OK) {
		if (wait_ready(cl, is_local ? (unsigned)nworkers : 1, is_local ? 20000 : 10000,
		               is_local) != 0) {
			rc = TQC_BROKER;
		} else {
			failed = run_lesson(cl);
			rc = failed ? TQC_TASK_FAILED : TQC_OK;
		}
	}
	tq_client_destroy(&cl);
	if (is_local) {
		/* From here on a signal waits: the stop below is already doing its job. */
		block_signals(SIG_BLOCK);
		char dir[DEMO_PATH];
		memcpy(dir, local.dir, sizeof dir);
		uint64_t t0 = tqi_now_us();
		stop_local();
		printf("local: stopped the workers and the broker in %.2f s and removed %s\n",
		       secs_since(t0), dir);
		if (!report_ends() && rc == TQC_OK)
			rc = TQC_TASK_FAILED;
	}
	if (failed > 0)
		printf("%d of %d steps did not behave as the lesson says\n", failed, DEMO_STEPS);
	else if (rc == TQC_OK)
		printf("every step behaved as the lesson says (%d of %d)\n", DEMO_STEPS,
		       DEMO_STEPS);
	return rc;
}
