/*
 * test_inline.c - a worker whose handlers run in its loop
 * (tq-worker --isolation none): results and failures come back as from
 * executors; a task waiting behind a running one can be cancelled, and
 * expires at its deadline, without ever running; a crash takes the worker
 * down and its task ends as lost; a task that outlasts the broker's
 * patience costs the worker its registration, not its life - it registers
 * again and serves on; a quick task's answer is not held back
 * behind a slow task the loop runs next; bad option combinations are
 * refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* The broker gives a silent worker up after heartbeat x liveness; a
 * worker running in its loop is silent while a task runs, so the tests'
 * long tasks run under a patient broker. */
static const char *const patient[] = { "--liveness", "40", NULL };
static const char *const inline_opts[] = { "--isolation", "none", "--prefetch", "4", NULL };

static void test_results_and_failures_come_back(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, inline_opts);
	th_expect_int(c, "double", "[21]", 42, "w1");
	/* Many at once: every one answered, each with its own result. */
	enum { N = 500 };
	tq_task *ts[N];
	for (int i = 0; i < N; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", i);
		ts[i] = th_async(c, "double", args, NULL);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(tq_task_await(ts[i], 10000), TQ_OK);
		assert_int_equal(th_result_int(ts[i]), 2 * i);
		tq_task_destroy(&ts[i]);
	}
	tq_task *f = th_async(c, "fail", "[\"no luck\"]", NULL);
	assert_int_equal(tq_task_await(f, 5000), TQ_EFAILED);
	assert_non_null(strstr(tq_task_error(f), "no luck"));
	tq_task_destroy(&f);
	tq_client_destroy(&c);
}

static void test_cancelled_waiting_task_never_runs(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, patient, inline_opts);
	th_path first, second;
	tq_task *a = th_mark_running(e, c, &first, "a", 600, NULL);
	/* b waits in the worker's queue while a runs in its loop. */
	tq_task *b = th_mark(e, c, &second, "b", 0, NULL);
	assert_true(th_stat_reaches(e, "load", 2, 3000));
	assert_int_equal(tq_task_shutdown(b, 5000), TQ_ECANCELLED);
	assert_int_equal(tq_task_await(a, 5000), TQ_OK);
	th_expect_never_ran(c, &second);
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	tq_client_destroy(&c);
}

static void test_waiting_task_expires_unrun(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, patient, inline_opts);
	th_path first, second;
	tq_task *a = th_mark_running(e, c, &first, "a", 600, NULL);
	tq_task_opts o = { .timeout_ms = 150 };
	tq_task *b = th_mark(e, c, &second, "late", 0, &o);
	assert_int_equal(tq_task_await(b, 5000), TQ_ETIMEDOUT);
	assert_int_equal(tq_task_await(a, 5000), TQ_OK);
	th_expect_never_ran(c, &second);
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	tq_client_destroy(&c);
}

static void test_a_crash_takes_the_worker_down(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	th_proc *w = th_worker(e, "w1", inline_opts);
	assert_non_null(w);
	tq_client *c = th_client(e, 0);
	tq_task *t = th_async(c, "crash", "[]", NULL);
	/* No executor to lose: the worker itself dies, and the broker ends
	 * the task as it ends a lost worker's. */
	int status = th_wait_exit(w, 10000);
	assert_true(status != -1 && WIFSIGNALED(status));
	assert_int_equal(tq_task_await(t, 30000), TQ_EWORKERLOST);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_a_task_longer_than_the_liveness_is_lost_and_the_worker_returns(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL)); /* heartbeat 250 ms x liveness 3 */
	assert_non_null(th_worker(e, "w1", inline_opts));
	tq_client *c = th_client(e, 0);
	/* Silent for 1.5 s while it runs: the broker gives the worker up. */
	tq_task *t = th_async(c, "sleep", "[1500]", NULL);
	assert_int_equal(tq_task_await(t, 10000), TQ_EWORKERLOST);
	tq_task_destroy(&t);
	assert_true(th_log_has(e->broker, "missed heartbeats", 5000));
	/* Told it is unknown when it speaks again, it registers anew. */
	th_expect_int(c, "double", "[21]", 42, "w1");
	uint64_t lost = 0;
	assert_int_equal(th_stat(e, "counters.workers_lost", &lost), 0);
	assert_int_equal(lost, 1);
	tq_client_destroy(&c);
}

static void test_a_quick_answer_does_not_wait_for_a_slow_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, patient, inline_opts);
	th_expect_int(c, "double", "[1]", 2, "w1"); /* double: known to be quick */
	/* While `first` runs, `quick` and then `slow` queue up behind it; the
	 * loop then runs them in one turn.  quick's answer must go before
	 * slow runs - slow's function has no quick record - not with slow's. */
	th_path mark_path;
	tq_task *first = th_mark_running(e, c, &mark_path, "first", 300, NULL);
	tq_task *quick = th_async(c, "double", "[2]", NULL);
	tq_task *slow = th_async(c, "sleep", "[3000]", NULL);
	assert_int_equal(tq_task_await(quick, 5000), TQ_OK);
	assert_int_equal(th_result_int(quick), 4);
	assert_int_equal(tq_task_yield(slow, 0), TQ_ERUNNING);
	assert_int_equal(tq_task_await(first, 5000), TQ_OK);
	assert_int_equal(tq_task_await(slow, 10000), TQ_OK);
	tq_task_destroy(&first);
	tq_task_destroy(&quick);
	tq_task_destroy(&slow);
	tq_client_destroy(&c);
}

static void test_bad_options_are_refused(void **state)
{
	th_env *e = *state;
	static const char *const many[] = { TQ_WORKER_BIN,   "--isolation", "none",
		                            "--concurrency", "2",           NULL };
	static const char *const bogus[] = { TQ_WORKER_BIN, "--isolation", "thread", NULL };
	char *out = NULL, *err = NULL;
	assert_int_equal(th_run(e, many, 5000, &out, &err), 2);
	assert_non_null(strstr(err, "one task at a time"));
	free(out);
	free(err);
	assert_int_equal(th_run(e, bogus, 5000, &out, &err), 2);
	assert_non_null(strstr(err, "process or none"));
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_results_and_failures_come_back, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_waiting_task_never_runs, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_waiting_task_expires_unrun, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_a_crash_takes_the_worker_down, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_a_quick_answer_does_not_wait_for_a_slow_task,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_task_longer_than_the_liveness_is_lost_and_the_worker_returns, th_setup,
		    th_teardown),
		cmocka_unit_test_setup_teardown(test_bad_options_are_refused, th_setup,
		                                th_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
