/* harness.c - spawning, watching and reaping tq processes for the tests. */
#include "harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t th_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool th_file_exists(void *arg)
{
	struct stat st;
	return stat(((th_path *)arg)->path, &st) == 0;
}

static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

bool th_wait_for(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	uint64_t until = th_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if (cond(arg))
			return true;
		if (th_now_ms() >= until)
			return false;
		pause_ms(5);
	}
}

/* Whether the running test failed an assertion.  cmocka calls _fail() for
 * every failed assertion (assert_*, fail_msg) before it jumps out of the
 * test, and runs the teardown after that; it prints the messages only
 * after the teardown, so this is how th_teardown knows.  This definition
 * takes the place of libcmocka's (its own calls go through the PLT too;
 * the program exports it: see CMakeLists.txt), notes the failure and hands
 * over to the real one. */
static bool test_failed;

__attribute__((visibility("default"))) void _fail(const char *const file, const int line)
{
	static void (*real)(const char *const, const int);
	test_failed = true;
	if (real == NULL)
		real = (void (*)(const char *const, const int))dlsym(RTLD_NEXT, "_fail");
	if (real == NULL) {
		fprintf(stderr, "%s:%d: assertion failed (and cmocka's _fail not found)\n", file,
		        line);
		abort();
	}
	real(file, line);
	abort(); /* not reached: cmocka's _fail jumps out of the test */
}

int th_setup(void **state)
{
	th_env *e = calloc(1, sizeof *e);
	if (e == NULL)
		return -1;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(e->dir, sizeof e->dir, "%s/tq-test-XXXXXX", tmp);
	if (mkdtemp(e->dir) == NULL) {
		free(e);
		return -1;
	}
	snprintf(e->plugin, sizeof e->plugin, "%s", TQ_TEST_PLUGIN);
	signal(SIGPIPE, SIG_IGN);
	test_failed = false;
	static bool told;
	if (!told && dlsym(RTLD_DEFAULT, "_fail") != (void *)_fail) {
		told = true;
		fprintf(stderr, "harness: failed assertions go unseen (_fail is not exported): "
		                "set TQ_TEST_LOGS=1 to see the processes' logs\n");
	}
	*state = e;
	return 0;
}

/* Prints the last `lines` lines of a log (all of it when lines < 0). */
static void print_log(const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	fprintf(stderr, "----- %s%s -----\n", path, lines >= 0 ? " (its last lines)" : "");
	static char buf[1 << 16];
	size_t n;
	if (lines < 0) {
		while ((n = fread(buf, 1, sizeof buf, f)) > 0)
			fwrite(buf, 1, n, stderr);
		fclose(f);
		return;
	}
	/* The tail is in the file's last 64 KiB. */
	long skipped = 0;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		if (size > (long)sizeof buf - 1)
			skipped = size - ((long)sizeof buf - 1);
		fseek(f, skipped, SEEK_SET);
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *start = buf;
	if (skipped > 0) { /* its first line is cut: leave it out */
		const char *nl = strchr(buf, '\n');
		start = nl ? nl + 1 : buf + n;
	}
	const char *p = buf + n;
	if (p > start && p[-1] == '\n')
		p--;
	for (int k = 0; p > start; p--)
		if (p[-1] == '\n' && ++k == lines)
			break;
	fputs(p, stderr);
	if (n > 0 && buf[n - 1] != '\n')
		fputc('\n', stderr);
}

static int log_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 4 && strcmp(d->d_name + n - 4, ".log") == 0;
}

/* Every process's log in the test's directory, in the order they were
 * started (also those of processes whose slot was reused). */
static void print_logs(const th_env *e, int lines)
{
	struct dirent **names;
	int n = scandir(e->dir, &names, log_name, alphasort);
	for (int i = 0; i < n; i++) {
		char path[sizeof e->dir + 300];
		snprintf(path, sizeof path, "%s/%s", e->dir, names[i]->d_name);
		print_log(path, lines);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "teardown: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Removes the test's own directory and what the test left in it.  Only a
 * directory that th_setup made (mkdtemp's tq-test-XXXXXX); symbolic links
 * are removed, never followed, and the walk stays on its file system. */
static void remove_test_dir(const th_env *e)
{
	const char *base = strrchr(e->dir, '/');
	if (base == NULL || strncmp(base, "/tq-test-", 9) != 0 || strlen(base) != 15) {
		fprintf(stderr, "teardown: not removing %s: not a test directory\n", e->dir);
		return;
	}
	nftw(e->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int th_teardown(void **state)
{
	th_env *e = *state;
	for (int i = 0; i < e->nprocs; i++) {
		th_proc *p = &e->procs[i];
		if (p->pid <= 0)
			continue;
		if (p->stopped)
			kill(p->pid, SIGCONT);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = -1;
	}
	/* A failed test shows what its processes said last; TQ_TEST_LOGS
	 * shows every log in full, failed or not. */
	if (getenv("TQ_TEST_LOGS") != NULL)
		print_logs(e, -1);
	else if (test_failed)
		print_logs(e, 40);
	test_failed = false;
	remove_test_dir(e);
	free(e);
	return 0;
}

th_proc *th_spawn(th_env *e, const char *what, const char *const *argv)
{
	/* The slot of a process already reaped is taken again, so that a
	 * test may start any number of processes over its run, TH_MAX_PROCS
	 * at a time. */
	int slot = 0;
	while (slot < e->nprocs && e->procs[slot].pid > 0)
		slot++;
	if (slot == TH_MAX_PROCS)
		return NULL;
	th_proc *p = &e->procs[slot];
	memset(p, 0, sizeof *p);
	snprintf(p->what, sizeof p->what, "%s", what);
	char dir[sizeof e->dir];
	memcpy(dir, e->dir, sizeof dir);
	/* Each process its own log, kept until teardown, numbered in the
	 * order of starting. */
	snprintf(p->log, sizeof p->log, "%s/%03d-%s.log", dir, e->started, what);
	pid_t pid = fork();
	if (pid < 0)
		return NULL;
	if (pid == 0) {
		int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setenv("TQ_LOG", "debug", 0);
		if (e->nofile > 0) {
			struct rlimit rl = { (rlim_t)e->nofile, (rlim_t)e->nofile };
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				_exit(126);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	p->pid = pid;
	e->started++;
	if (slot == e->nprocs)
		e->nprocs++;
	return p;
}

static char *read_log(const th_proc *p)
{
	FILE *f = fopen(p->log, "r");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *b = realloc(buf, cap * 2);
			if (b == NULL)
				break;
			buf = b;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

typedef struct {
	th_proc *p;
	const char *text, *then;
} log_wait;

static bool log_contains(void *arg)
{
	log_wait *lw = arg;
	char *s = read_log(lw->p);
	bool found = s && strstr(s, lw->text) != NULL;
	free(s);
	return found;
}

bool th_log_has(th_proc *p, const char *text, int timeout_ms)
{
	log_wait lw = { p, text, NULL };
	return th_wait_for(log_contains, &lw, timeout_ms);
}

static bool log_line_contains(void *arg)
{
	log_wait *lw = arg;
	char *s = read_log(lw->p);
	bool found = false;
	for (char *line = s; line && *line && !found;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		const char *a = strstr(line, lw->text);
		found = a != NULL && strstr(a + strlen(lw->text), lw->then) != NULL;
		line = end ? end + 1 : NULL;
	}
	free(s);
	return found;
}

bool th_log_has_line(th_proc *p, const char *text, const char *then, int timeout_ms)
{
	log_wait lw = { p, text, then };
	return th_wait_for(log_line_contains, &lw, timeout_ms);
}

/* Kills and reaps a process that did not start as it should (a broker
 * whose port was still taken, a worker that did not register), so that
 * its slot can be used again; its log stays for teardown to show. */
static void discard(th_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = -1;
}

/* argv = {program, fixed..., extra..., NULL} */
static const char **build_argv(const char *const *fixed, const char *const *extra)
{
	static const char *argv[64];
	int n = 0;
	for (; fixed && *fixed && n < 40; fixed++)
		argv[n++] = *fixed;
	for (; extra && *extra && n < 63; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	return argv;
}

static th_proc *start_broker(th_env *e, const char *cep, const char *wep, const char *const *args)
{
	const char *fixed[] = { TQ_BROKER_BIN, "--clients", cep,   "--workers",
		                wep,           "--grace",   "500", NULL };
	th_proc *p = th_spawn(e, "broker", build_argv(fixed, args));
	if (p == NULL)
		return NULL;
	if (!th_log_has(p, "listening clients=", 5000)) {
		discard(p);
		return NULL;
	}
	char *log = read_log(p);
	const char *c = log ? strstr(log, "listening clients=") : NULL;
	if (c == NULL) {
		free(log);
		discard(p);
		return NULL;
	}
	sscanf(c, "listening clients=%127s workers=%127s", e->client_ep, e->worker_ep);
	free(log);
	e->broker = p;
	return p;
}

th_proc *th_broker(th_env *e, const char *const *args)
{
	return start_broker(e, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", args);
}

th_proc *th_broker_again(th_env *e, const char *const *args)
{
	char cep[128], wep[128];
	snprintf(cep, sizeof cep, "%s", e->client_ep);
	snprintf(wep, sizeof wep, "%s", e->worker_ep);
	/* The old port may linger for a moment: retry the bind briefly. */
	for (int i = 0; i < 100; i++) {
		th_proc *p = start_broker(e, cep, wep, args);
		if (p != NULL)
			return p;
		pause_ms(50);
	}
	return NULL;
}

th_proc *th_worker(th_env *e, const char *name, const char *const *args)
{
	const char *fixed[] = { TQ_WORKER_BIN, "--broker", e->worker_ep, "--name",
		                name,          "--plugin", e->plugin,    NULL };
	th_proc *p = th_spawn(e, name, build_argv(fixed, args));
	if (p == NULL)
		return NULL;
	if (!th_log_has(p, "registered with broker", 10000)) {
		discard(p);
		return NULL;
	}
	return p;
}

static char *slurp(const char *path)
{
	th_proc tmp;
	if (strlen(path) >= sizeof tmp.log)
		return strdup("");
	memcpy(tmp.log, path, strlen(path) + 1);
	char *s = read_log(&tmp);
	unlink(path);
	return s ? s : strdup("");
}

int th_run(th_env *e, const char *const *argv, int timeout_ms, char **out, char **err)
{
	char dir[sizeof e->dir], opath[400], epath[400];
	memcpy(dir, e->dir, sizeof dir);
	snprintf(opath, sizeof opath, "%s/run.out", dir);
	snprintf(epath, sizeof epath, "%s/run.err", dir);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int r = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || r < 0)
			_exit(126);
		dup2(o, 1);
		dup2(r, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	th_proc p = { .pid = pid };
	int status = th_wait_exit(&p, timeout_ms);
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	*out = slurp(opath);
	*err = slurp(epath);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

void th_signal(th_proc *p, int sig)
{
	if (p == NULL || p->pid <= 0)
		return;
	kill(p->pid, sig);
	if (sig == SIGSTOP)
		p->stopped = true;
	if (sig == SIGCONT)
		p->stopped = false;
}

int th_wait_exit(th_proc *p, int timeout_ms)
{
	uint64_t until = th_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int status;
		pid_t r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid) {
			p->pid = -1;
			return status;
		}
		if (r < 0 || th_now_ms() >= until)
			return -1;
		pause_ms(5);
	}
}

tq_client *th_client(th_env *e, int broker_timeout_ms)
{
	tq_client_opts o = { .broker = e->client_ep, .broker_timeout_ms = broker_timeout_ms };
	tq_client *c = NULL;
	if (tq_client_new(&c, &o) != TQ_OK)
		return NULL;
	return c;
}

tq_task *th_async(tq_client *c, const char *fn, const char *json_args, const tq_task_opts *o)
{
	tq_task *t = NULL;
	if (tq_client_async_json(c, fn, json_args, o, &t) != TQ_OK)
		return NULL;
	return t;
}

tq_client *th_start(th_env *e, const char *const *broker_args, const char *const *worker_args)
{
	assert_non_null(th_broker(e, broker_args));
	assert_non_null(th_worker(e, "w1", worker_args));
	tq_client *c = th_client(e, 0);
	assert_non_null(c);
	return c;
}

tq_task *th_mark(th_env *e, tq_client *c, th_path *fw, const char *tag, int ms,
                 const tq_task_opts *o)
{
	snprintf(fw->path, sizeof fw->path, "%s/%s", e->dir, tag);
	char args[640];
	snprintf(args, sizeof args, "[\"%s\", %d]", fw->path, ms);
	return th_async(c, "mark", args, o);
}

tq_task *th_mark_running(th_env *e, tq_client *c, th_path *fw, const char *tag, int ms,
                         const tq_task_opts *o)
{
	tq_task *t = th_mark(e, c, fw, tag, ms, o);
	assert_non_null(t);
	assert_true(th_wait_for(th_file_exists, fw, 5000));
	return t;
}

void th_expect_never_ran(tq_client *c, th_path *fw)
{
	tq_task *probe = th_async(c, "double", "[1]", NULL);
	assert_non_null(probe);
	assert_int_equal(tq_task_await(probe, 5000), TQ_OK);
	tq_task_destroy(&probe);
	assert_false(th_file_exists(fw));
}

int64_t th_result_int(const tq_task *t)
{
	int64_t v = -1;
	assert_int_equal(tq_task_result_int(t, &v), TQ_OK);
	return v;
}

void th_expect_int(tq_client *c, const char *fn, const char *json_args, int64_t want,
                   const char *worker)
{
	tq_task *t = th_async(c, fn, json_args, NULL);
	assert_non_null(t);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	int64_t v = th_result_int(t);
	if (v != want)
		fail_msg("%s(%s) = %lld, want %lld", fn, json_args, (long long)v, (long long)want);
	if (worker != NULL)
		assert_string_equal(tq_task_worker(t), worker);
	tq_task_destroy(&t);
}

/* Reads `key` (a uint) of the worker named `name` from the stats map at
 * r; 0 or -1. */
static int worker_field(tq_reader r, const char *name, size_t namelen, const char *key,
                        uint64_t *out)
{
	uint32_t n;
	if (tq_read_find(&r, "workers", &r) != TQ_OK || tq_read_array(&r, &n) != TQ_OK)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		tq_reader w = r, v = r;
		const char *s;
		size_t slen;
		if (tq_read_find(&w, "name", &w) == TQ_OK && tq_read_str(&w, &s, &slen) == TQ_OK &&
		    slen == namelen && memcmp(s, name, slen) == 0)
			return tq_read_find(&v, key, &v) == TQ_OK && tq_read_uint(&v, out) == TQ_OK
			           ? 0
			           : -1;
		if (tq_read_skip(&r) != TQ_OK)
			return -1;
	}
	return -1;
}

int th_stat(th_env *e, const char *what, uint64_t *out)
{
	tq_client *c = th_client(e, 0);
	if (c == NULL)
		return -1;
	uint8_t *data;
	size_t len;
	int rc = -1;
	if (tq_client_stats(c, 2000, &data, &len) == TQ_OK) {
		tq_reader r;
		tq_reader_init(&r, data, len);
		if (strncmp(what, "counters.", 9) == 0) {
			if (tq_read_find(&r, "counters", &r) == TQ_OK &&
			    tq_read_find(&r, what + 9, &r) == TQ_OK &&
			    tq_read_uint(&r, out) == TQ_OK)
				rc = 0;
		} else if (strcmp(what, "load") == 0 || strcmp(what, "capacity") == 0) {
			/* the tasks held (or that may be held) by all workers together */
			uint32_t n;
			*out = 0;
			if (tq_read_find(&r, "workers", &r) == TQ_OK &&
			    tq_read_array(&r, &n) == TQ_OK) {
				rc = 0;
				for (uint32_t i = 0; i < n && rc == 0; i++) {
					tq_reader w = r;
					uint64_t load;
					if (tq_read_find(&w, what, &w) == TQ_OK &&
					    tq_read_uint(&w, &load) == TQ_OK)
						*out += load;
					else
						rc = -1;
					if (tq_read_skip(&r) != TQ_OK)
						rc = -1;
				}
			}
		} else if (strncmp(what, "workers.", 8) == 0 && strchr(what + 8, '.') != NULL) {
			const char *name = what + 8, *key = strchr(name, '.') + 1;
			rc = worker_field(r, name, (size_t)(key - 1 - name), key, out);
		} else if (strcmp(what, "workers") == 0) {
			uint32_t n;
			if (tq_read_find(&r, "workers", &r) == TQ_OK &&
			    tq_read_array(&r, &n) == TQ_OK) {
				*out = n;
				rc = 0;
			}
		} else if (tq_read_find(&r, what, &r) == TQ_OK && tq_read_uint(&r, out) == TQ_OK) {
			rc = 0;
		}
		free(data);
	}
	tq_client_destroy(&c);
	return rc;
}

uint64_t th_stat_of(th_env *e, const char *what)
{
	uint64_t v = 0;
	assert_int_equal(th_stat(e, what, &v), 0);
	return v;
}

typedef struct {
	th_env *e;
	const char *what;
	uint64_t want, last;
} stat_wait;

static bool stat_ok(void *arg)
{
	stat_wait *sw = arg;
	return th_stat(sw->e, sw->what, &sw->last) == 0 && sw->last >= sw->want;
}

bool th_stat_reaches(th_env *e, const char *what, uint64_t want, int timeout_ms)
{
	stat_wait sw = { e, what, want, 0 };
	bool ok = th_wait_for(stat_ok, &sw, timeout_ms);
	if (!ok)
		fprintf(stderr, "stat %s stayed at %llu, wanted %llu\n", what,
		        (unsigned long long)sw.last, (unsigned long long)want);
	return ok;
}

static bool stat_is(void *arg)
{
	stat_wait *sw = arg;
	return th_stat(sw->e, sw->what, &sw->last) == 0 && sw->last == sw->want;
}

bool th_stat_is(th_env *e, const char *what, uint64_t want, int timeout_ms)
{
	stat_wait sw = { e, what, want, 0 };
	bool ok = th_wait_for(stat_is, &sw, timeout_ms);
	if (!ok)
		fprintf(stderr, "stat %s stayed at %llu, wanted exactly %llu\n", what,
		        (unsigned long long)sw.last, (unsigned long long)want);
	return ok;
}

struct th_watch {
	th_env *e;
	const char *what;
	bool (*gate)(void *arg);
	void *arg;
	pthread_t thread;
	atomic_bool stop;
	uint64_t max, samples;
};

static void *watch_run(void *arg)
{
	th_watch *w = arg;
	while (!atomic_load(&w->stop)) {
		uint64_t v;
		/* A sample counts when the gate held before and after it. */
		if ((w->gate == NULL || w->gate(w->arg)) && th_stat(w->e, w->what, &v) == 0 &&
		    (w->gate == NULL || w->gate(w->arg))) {
			w->samples++;
			if (v > w->max)
				w->max = v;
		}
		pause_ms(5);
	}
	return NULL;
}

th_watch *th_watch_start(th_env *e, const char *what, bool (*gate)(void *arg), void *arg)
{
	th_watch *w = calloc(1, sizeof *w);
	assert_non_null(w);
	w->e = e;
	w->what = what;
	w->gate = gate;
	w->arg = arg;
	atomic_init(&w->stop, false);
	assert_int_equal(pthread_create(&w->thread, NULL, watch_run, w), 0);
	return w;
}

uint64_t th_watch_end(th_watch *w, uint64_t *samples)
{
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	uint64_t max = w->max;
	if (samples != NULL)
		*samples = w->samples;
	free(w);
	return max;
}

uint64_t th_rss_kb(const th_proc *p)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)p->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	unsigned long long kb = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}
