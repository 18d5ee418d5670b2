/*
 * test_demo.c - `tq demo` (issue 5): with --local it starts a broker and
 * workers, walks through every step of the lesson - each step's output
 * checked - and leaves no process or file behind: after a normal run, on
 * Ctrl-C, and when it is killed outright.  The same walk-through against a
 * remote broker, and its command line.
 *
 * This test process is a child subreaper (PR_SET_CHILD_SUBREAPER): any
 * process the demo leaves behind becomes our child, so "nothing left"
 * means waitpid(-1) finds no child at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *const two[] = { "--concurrency", "2", NULL };

/* What `tq demo --local` says it started. */
typedef struct {
	int pids[17];
	int npids;
	char dir[256];
} started;

static void parse_started(const char *out, started *st)
{
	const char *s = strstr(out, "local: started ");
	assert_non_null(s);
	st->npids = 0;
	const char *end = strchr(s, '\n');
	assert_non_null(end);
	for (const char *p = strstr(s, "(pid "); p && p < end; p = strstr(p + 1, "(pid "))
		st->pids[st->npids++] = atoi(p + 5);
	const char *d = strstr(end, "on ipc:// in ");
	assert_non_null(d);
	assert_int_equal(sscanf(d, "on ipc:// in %255[^,]", st->dir), 1);
}

static bool gone(const char *path)
{
	struct stat sb;
	return stat(path, &sb) != 0 && errno == ENOENT;
}

/* Reaps what the demo left to us; true once no child of ours is left. */
static bool no_children(void *arg)
{
	(void)arg;
	int status;
	pid_t r;
	while ((r = waitpid(-1, &status, WNOHANG)) > 0)
		;
	return r < 0 && errno == ECHILD;
}

/* The text between "\nN. " and the next step's header (or the end). */
static char *step_text(const char *out, int n)
{
	char head[16], next[16];
	snprintf(head, sizeof head, "\n%d. ", n);
	snprintf(next, sizeof next, "\n%d. ", n + 1);
	const char *s = strstr(out, head);
	assert_non_null(s);
	const char *e = strstr(s, n < 9 ? next : "\nlocal: stopped");
	if (e == NULL)
		e = s + strlen(s);
	return strndup(s, (size_t)(e - s));
}

/* True when s has "task XXXXXXXX (fn) rest" - tq_task_error's words. */
static bool has_task_error(const char *s, const char *fn, const char *rest)
{
	char want[128];
	snprintf(want, sizeof want, " (%s) %s", fn, rest);
	const char *p = strstr(s, want);
	return p != NULL && p - s >= 13 && strncmp(p - 13, "task ", 5) == 0;
}

/* Checks the walk-through, step by step. */
static void check_lesson(const char *out)
{
	char *s;
	double a, b, c;

	s = step_text(out, 1);
	assert_non_null(strstr(s, "1. Task.start: fire and forget\n"));
	assert_non_null(strstr(s, "   elixir: Task.start(fn ->"));
	assert_non_null(strstr(s, "   tq:     tq start echo"));
	assert_non_null(strstr(s, "   the broker accepted task "));
	assert_non_null(strstr(s, "   it ran: the broker counted it completed "));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 2);
	assert_non_null(strstr(s, "   double(21) = 42   ran on "));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 3);
	int tick = 0, tock = 0;
	for (const char *p = strstr(s, "ms  t"); p; p = strstr(p + 1, "ms  t")) {
		tick += strncmp(p, "ms  tick  (on ", 14) == 0;
		tock += strncmp(p, "ms  tock  (on ", 14) == 0;
	}
	assert_int_equal(tick, 3);
	assert_int_equal(tock, 3);
	assert_non_null(strstr(s, "   +   0 ms  t"));
	assert_non_null(strstr(s, "the two ran at the same time"));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 4);
	const char *m = strstr(s, "   sequential: ");
	assert_non_null(m);
	assert_int_equal(
	    sscanf(m, "   sequential: %lf s   parallel: %lf s   speed-up %lfx", &a, &b, &c), 3);
	/* Lower bounds only: that the two 1 s runs of the parallel part
	 * overlapped is seen at the broker, in the remote walk-through. */
	assert_true(a >= 2.0);
	assert_true(b >= 1.0);
	assert_non_null(strstr(s, "one after the other on "));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 5);
	assert_non_null(strstr(s, "   [2, 4, 6, 8, 10]   in "));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 6);
	m = strstr(s, "   await returned ETIMEDOUT after ");
	assert_non_null(m);
	assert_int_equal(sscanf(m, "   await returned ETIMEDOUT after %lf s", &a), 1);
	assert_true(a >= 5.0);
	assert_true(has_task_error(m, "sleep", "timed out after 5000 ms\n"));
	assert_non_null(strstr(s, "the task was cancelled on its worker"));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 7);
	m = strstr(s, "   6000   ran on ");
	assert_non_null(m);
	assert_int_equal(sscanf(strstr(m, "in "), "in %lf s", &a), 1);
	assert_true(a >= 6.0);
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 8);
	m = strstr(s, "   [6000, 5000]   in ");
	assert_non_null(m);
	assert_int_equal(sscanf(m, "   [6000, 5000]   in %lf s", &a), 1);
	assert_true(a >= 6.0);
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	s = step_text(out, 9);
	m = strstr(s, "   await returned ETIMEDOUT after ");
	assert_non_null(m);
	assert_true(has_task_error(m, "sleep", "timed out after 1000 ms\n"));
	assert_non_null(strstr(s, "   ok\n"));
	free(s);

	assert_null(strstr(out, "NOT AS THE LESSON SAYS"));
	assert_non_null(strstr(out, "\nevery step behaved as the lesson says (9 of 9)\n"));
}

static int subreaper_setup(void **state)
{
	/* Orphans of the demo's children become ours, so that none can hide. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return -1;
	unsetenv("TQ_BROKER");
	return th_setup(state);
}

static void test_local_demo_runs_every_step_and_leaves_nothing(void **state)
{
	th_env *e = *state;
	const char *argv[] = { TQ_CLI_BIN, "demo", "--local", NULL };
	char *out, *err;
	int rc = th_run(e, argv, 120000, &out, &err);
	printf("%s%s", out, err);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "run by tq on a local broker and 2 workers\n"));
	assert_non_null(strstr(out, "ready: 2 workers ("));
	check_lesson(out);
	started st;
	parse_started(out, &st);
	assert_int_equal(st.npids, 3); /* the broker, w1, w2 */
	assert_non_null(strstr(out, "local: stopped the workers and the broker in "));
	/* Nothing is left: no process (not even an executor of a worker, nor
	 * a zombie handed to us), no directory. */
	int status;
	errno = 0;
	assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	for (int i = 0; i < st.npids; i++)
		assert_true(kill(st.pids[i], 0) != 0 && errno == ESRCH);
	assert_true(gone(st.dir));
	free(out);
	free(err);
}

static void test_ctrl_c_stops_the_demo_and_all_it_started(void **state)
{
	th_env *e = *state;
	const char *argv[] = { TQ_CLI_BIN, "demo", "--local", "--workers", "3", NULL };
	th_proc *p = th_spawn(e, "demo", argv);
	assert_non_null(p);
	/* Interrupt it in the middle of a step, with tasks running. */
	assert_true(th_log_has(p, "\n4. two 1-second computations", 30000));
	th_signal(p, SIGINT);
	int status = th_wait_exit(p, 20000);
	assert_true(status >= 0 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 128 + SIGINT);
	assert_true(
	    th_log_has(p, "tq demo: interrupted; stopping the local broker and workers", 0));
	FILE *f = fopen(p->log, "r");
	assert_non_null(f);
	char text[8192];
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	started st;
	parse_started(text, &st);
	assert_int_equal(st.npids, 4);
	int wstatus;
	errno = 0;
	assert_int_equal(waitpid(-1, &wstatus, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	for (int i = 0; i < st.npids; i++)
		assert_true(kill(st.pids[i], 0) != 0 && errno == ESRCH);
	assert_true(gone(st.dir));
}

static void test_killed_demo_takes_its_processes_along(void **state)
{
	th_env *e = *state;
	const char *argv[] = { TQ_CLI_BIN, "demo", NULL }; /* --local is the default */
	th_proc *p = th_spawn(e, "demo", argv);
	assert_non_null(p);
	assert_true(th_log_has(p, "\nready: 2 workers", 30000));
	FILE *f = fopen(p->log, "r");
	assert_non_null(f);
	char text[8192];
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	started st;
	parse_started(text, &st);
	th_signal(p, SIGKILL); /* no handler runs: the children must go by themselves */
	int status = th_wait_exit(p, 5000);
	assert_true(status >= 0 && WIFSIGNALED(status));
	/* They come to us as orphans and die (PR_SET_PDEATHSIG); the janitor
	 * removes the directory. */
	assert_true(th_wait_for(no_children, NULL, 10000));
	for (int i = 0; i < st.npids; i++)
		assert_true(kill(st.pids[i], 0) != 0 && errno == ESRCH);
	assert_true(gone(st.dir));
}

/* For th_watch: true while the demo's output (th_run's run.out, written
 * as it goes) is in step 4, two 1-second computations. */
typedef struct {
	char path[512];
} demo_output;

static bool in_step_4(void *arg)
{
	FILE *f = fopen(((demo_output *)arg)->path, "r");
	if (f == NULL)
		return false;
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	return strstr(text, "\n4. ") != NULL && strstr(text, "\n5. ") == NULL;
}

static void test_the_same_walk_through_against_a_remote_broker(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", two));
	assert_non_null(th_worker(e, "w2", two));
	/* The tasks the workers hold at once during step 4: one at a time in
	 * its sequential part, both in its parallel part - so the two 1 s
	 * runs overlapped, which the step's times only suggest. */
	demo_output o;
	snprintf(o.path, sizeof o.path, "%s/run.out", e->dir);
	th_watch *held = th_watch_start(e, "load", in_step_4, &o);
	const char *argv[] = { TQ_CLI_BIN, "demo", "--broker", e->client_ep, NULL };
	char *out, *err;
	int rc = th_run(e, argv, 120000, &out, &err);
	uint64_t samples, most = th_watch_end(held, &samples);
	printf("%s%s", out, err);
	printf("step 4: the workers held up to %llu tasks at once (%llu samples)\n",
	       (unsigned long long)most, (unsigned long long)samples);
	assert_int_equal(rc, 0);
	assert_true(samples > 0);
	assert_int_equal(most, 2);
	char want[300];
	snprintf(want, sizeof want, "run by tq on the broker at %s\n", e->client_ep);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "ready: 2 workers ("));
	assert_null(strstr(out, "local:"));
	check_lesson(out);
	free(out);
	free(err);
}

static void test_demo_command_line(void **state)
{
	th_env *e = *state;
	const char *cases[][7] = {
		{ TQ_CLI_BIN, "demo", "--workers", "0", NULL },
		{ TQ_CLI_BIN, "demo", "--workers", "17", NULL },
		{ TQ_CLI_BIN, "demo", "--local", "--broker", "tcp://127.0.0.1:9", NULL },
		{ TQ_CLI_BIN, "demo", "--broker", "tcp://127.0.0.1:9", "--workers", "2", NULL },
		{ TQ_CLI_BIN, "demo", "extra", NULL },
		{ TQ_CLI_BIN, "demo", "--bogus", NULL },
	};
	char *out, *err;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(th_run(e, cases[i], 10000, &out, &err), 2);
		assert_non_null(strstr(err, "tq demo: "));
		assert_non_null(strstr(err, "usage: tq demo"));
		free(out);
		free(err);
	}
	const char *help[] = { TQ_CLI_BIN, "demo", "--help", NULL };
	assert_int_equal(th_run(e, help, 10000, &out, &err), 0);
	assert_non_null(strstr(out, "usage: tq demo"));
	free(out);
	free(err);
	const char *list[] = { TQ_CLI_BIN, "--help", NULL };
	assert_int_equal(th_run(e, list, 10000, &out, &err), 0);
	assert_non_null(strstr(out, "  demo "));
	free(out);
	free(err);
	/* $TQ_BROKER names a broker: the demo runs against it, not locally,
	 * and says so when nothing answers there (exit 4). */
	setenv("TQ_BROKER", "tcp://127.0.0.1:9", 1);
	const char *remote[] = { TQ_CLI_BIN, "demo", NULL };
	int rc = th_run(e, remote, 30000, &out, &err);
	unsetenv("TQ_BROKER");
	assert_int_equal(rc, 4);
	assert_non_null(strstr(out, "run by tq on the broker at tcp://127.0.0.1:9\n"));
	assert_non_null(strstr(err, "tq demo: no answer from the broker at tcp://127.0.0.1:9"));
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_local_demo_runs_every_step_and_leaves_nothing,
		                                subreaper_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_c_stops_the_demo_and_all_it_started,
		                                subreaper_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_killed_demo_takes_its_processes_along,
		                                subreaper_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_the_same_walk_through_against_a_remote_broker,
		                                subreaper_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_demo_command_line, subreaper_setup,
		                                th_teardown),
	};
	return cmocka_run_group_tests_name("demo", tests, NULL, NULL);
}
