/*
 * test_tasks.c - Elixir Task semantics across real processes (issue 3):
 * parallelism, await timeouts and the cancellation they cause, await_many,
 * start, yield, shutdown, crashes, and 10,000 tasks with none lost or
 * duplicated.
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
#include <sys/stat.h>
#include <unistd.h>

static const char *const one[] = { "--concurrency", "1", NULL };

/* Reads [start_us, end_us, worker] from a `span` result. */
static void read_span(tq_task *t, uint64_t *start, uint64_t *end, char *worker, size_t n)
{
	size_t len;
	const uint8_t *d = tq_task_result(t, &len);
	assert_non_null(d);
	tq_reader r;
	tq_reader_init(&r, d, len);
	uint32_t k;
	const char *s;
	size_t sl;
	assert_int_equal(tq_read_array(&r, &k), TQ_OK);
	assert_int_equal(k, 3);
	assert_int_equal(tq_read_uint(&r, start), TQ_OK);
	assert_int_equal(tq_read_uint(&r, end), TQ_OK);
	assert_int_equal(tq_read_str(&r, &s, &sl), TQ_OK);
	snprintf(worker, n, "%.*s", (int)sl, s);
}

static void test_two_sleeps_run_in_parallel(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", one));
	assert_non_null(th_worker(e, "w2", one));
	tq_client *c = th_client(e, 0);
	uint64_t t0 = th_now_ms();
	tq_task *a = th_async(c, "span", "[1000]", NULL);
	tq_task *b = th_async(c, "span", "[1000]", NULL);
	tq_task *both[] = { a, b };
	assert_int_equal(tq_await_many(both, 2, 5000, NULL), TQ_OK);
	uint64_t elapsed = th_now_ms() - t0;
	uint64_t s1, e1, s2, e2;
	char w1[64], w2[64];
	read_span(a, &s1, &e1, w1, sizeof w1);
	read_span(b, &s2, &e2, w2, sizeof w2);
	/* Two workers, and the two runs overlapped in time: parallel. */
	assert_string_not_equal(w1, w2);
	assert_true(s1 < e2 && s2 < e1);
	assert_string_equal(tq_task_worker(a), w1);
	printf("two 1 s tasks took %llu ms on %s and %s\n", (unsigned long long)elapsed, w1, w2);
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	tq_client_destroy(&c);
}

static void test_default_timeout_cancels_the_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, one);
	tq_task *t = th_async(c, "sleep", "[6000]", NULL);
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_task_await(t, TQ_DEFAULT_TIMEOUT), TQ_ETIMEDOUT);
	uint64_t waited = th_now_ms() - t0;
	assert_true(waited >= 5000);
	assert_non_null(strstr(tq_task_error(t), "(sleep) timed out after 5000 ms"));
	/* The owner gave up, so the worker stops the task: it is counted as
	 * cancelled, never as completed (which it would be had it run its 6 s),
	 * and the worker is free again. */
	assert_true(th_stat_reaches(e, "counters.cancelled", 1, 3000));
	uint64_t lost = 99;
	assert_int_equal(th_stat(e, "counters.worker_lost", &lost), 0);
	assert_int_equal(lost, 0); /* stopped by a cancel, not by losing its worker */
	uint64_t completed = 99;
	assert_int_equal(th_stat(e, "counters.completed", &completed), 0);
	assert_int_equal(completed, 0);
	uint64_t load = 99;
	assert_int_equal(th_stat(e, "load", &load), 0);
	assert_int_equal(load, 0);
	/* A task's outcome is returned once. */
	assert_int_equal(tq_task_await(t, 10), TQ_ESTATE);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_await_7000_succeeds(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, one);
	tq_task *t = th_async(c, "sleep", "[6000]", NULL);
	assert_int_equal(tq_task_await(t, 7000), TQ_OK);
	assert_int_equal(th_result_int(t), 6000);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_await_many_doubles(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *ts[5];
	for (int i = 0; i < 5; i++) {
		char args[16];
		snprintf(args, sizeof args, "[%d]", i + 1);
		ts[i] = th_async(c, "double", args, NULL);
		assert_non_null(ts[i]);
	}
	size_t failed = 99;
	assert_int_equal(tq_await_many(ts, 5, 5000, &failed), TQ_OK);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(th_result_int(ts[i]), 2 * (i + 1));
		tq_task_destroy(&ts[i]);
	}
	tq_client_destroy(&c);
}

static void test_await_many_names_the_failure(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *ts[3] = { th_async(c, "double", "[1]", NULL),
		           th_async(c, "fail", "[\"nope\"]", NULL),
		           th_async(c, "sleep", "[3000]", NULL) };
	size_t failed = 99;
	assert_int_equal(tq_await_many(ts, 3, 5000, &failed), TQ_EFAILED);
	assert_int_equal(failed, 1);
	assert_non_null(strstr(tq_task_error(ts[1]), "nope"));
	/* The one still running was given up on. */
	assert_int_equal(tq_task_status(ts[2]), TQ_ECANCELLED);
	assert_true(th_stat_reaches(e, "counters.cancelled", 1, 3000));
	for (int i = 0; i < 3; i++)
		tq_task_destroy(&ts[i]);
	tq_client_destroy(&c);
}

static void test_start_returns_before_the_task_runs(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	tq_client *c = th_client(e, 0);
	th_path fw;
	snprintf(fw.path, sizeof fw.path, "%s/started", e->dir);
	char args[600];
	snprintf(args, sizeof args, "[\"%s\", 0]", fw.path);
	/* No worker exists yet: start returns once the broker has the task. */
	char ref[33];
	assert_int_equal(tq_client_start_json(c, "touch", args, NULL, ref), TQ_OK);
	assert_int_equal(strlen(ref), 32);
	assert_false(th_file_exists(&fw));
	tq_client_destroy(&c); /* fire and forget: the task outlives its client */
	assert_non_null(th_worker(e, "w1", NULL));
	assert_true(th_wait_for(th_file_exists, &fw, 5000));
	unlink(fw.path);
}

static void test_yield_then_await(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *t = th_async(c, "sleep", "[800]", NULL);
	assert_int_equal(tq_task_yield(t, 100), TQ_ERUNNING);
	assert_int_equal(tq_task_status(t), TQ_ERUNNING);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	assert_int_equal(th_result_int(t), 800);
	assert_int_equal(tq_task_yield(t, 10), TQ_ESTATE);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_yield_many(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	static const char *const three[] = { "--concurrency", "3", NULL };
	assert_non_null(th_worker(e, "w1", three));
	tq_client *c = th_client(e, 0);
	tq_task *ts[3] = { th_async(c, "double", "[1]", NULL), th_async(c, "sleep", "[4000]", NULL),
		           th_async(c, "fail", "[\"no\"]", NULL) };
	/* The quick two have ended and their answers are on their way: the
	 * yield below finds them whatever time it took to get here, and the
	 * slow one (4 s) still runs. */
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000));
	assert_true(th_stat_reaches(e, "counters.failed", 1, 5000));
	tq_err out[3];
	assert_int_equal(tq_yield_many(ts, 3, 300, out), TQ_OK);
	assert_int_equal(out[0], TQ_OK);
	assert_int_equal(out[1], TQ_ERUNNING); /* left running, not cancelled */
	assert_int_equal(out[2], TQ_EFAILED);
	assert_int_equal(th_result_int(ts[0]), 2);
	assert_int_equal(tq_task_await(ts[1], 10000), TQ_OK);
	assert_int_equal(th_result_int(ts[1]), 4000);
	for (int i = 0; i < 3; i++)
		tq_task_destroy(&ts[i]);
	tq_client_destroy(&c);
}

static void test_kept_task_runs_on_and_its_late_result_is_a_stray(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task_opts keep = { .keep_on_timeout = true };
	tq_task *t = th_async(c, "sleep", "[600]", &keep);
	assert_int_equal(tq_task_await(t, 100), TQ_ETIMEDOUT);
	/* Not cancelled: it completes on the worker, and its result, which
	 * nobody awaits any more, is dropped and counted by the client. */
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000));
	tq_task *probe = th_async(c, "double", "[1]", NULL);
	assert_int_equal(tq_task_await(probe, 5000), TQ_OK); /* reads the late reply too */
	assert_int_equal(tq_client_strays(c), 1);
	uint64_t cancelled = 9;
	assert_int_equal(th_stat(e, "counters.cancelled", &cancelled), 0);
	assert_int_equal(cancelled, 0);
	tq_task_destroy(&t);
	tq_task_destroy(&probe);
	tq_client_destroy(&c);
}

static void test_shutdown_of_a_queued_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, one);
	tq_task *busy = th_async(c, "sleep", "[1500]", NULL);
	tq_task *queued = th_async(c, "sleep", "[100]", NULL);
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_task_shutdown(queued, 5000), TQ_ECANCELLED);
	assert_true(th_now_ms() - t0 < 5000); /* a queued task needs no grace */
	assert_int_equal(tq_task_await(busy, 5000), TQ_OK);
	uint64_t completed = 0;
	assert_int_equal(th_stat(e, "counters.completed", &completed), 0);
	assert_int_equal(completed, 1);
	tq_task_destroy(&busy);
	tq_task_destroy(&queued);
	tq_client_destroy(&c);
}

static bool process_gone(void *arg)
{
	pid_t pid = *(pid_t *)arg;
	return kill(pid, 0) != 0 && errno == ESRCH;
}

static void test_shutdown_kills_a_running_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, one);
	/* One executor: learn its pid, then run a task there. */
	tq_task *p = th_async(c, "pid", "[]", NULL);
	assert_int_equal(tq_task_await(p, 5000), TQ_OK);
	pid_t exec_pid = (pid_t)th_result_int(p);
	tq_task_destroy(&p);
	th_path fw;
	tq_task *t = th_mark_running(e, c, &fw, "running", 20000, NULL);
	assert_int_equal(tq_task_shutdown(t, 2000), TQ_ECANCELLED);
	/* Stopped for real: the process that ran it is gone. */
	assert_true(th_wait_for(process_gone, &exec_pid, 3000));
	tq_task_destroy(&t);

	/* A task that ignores SIGTERM is killed when the grace runs out. */
	tq_task *s = th_async(c, "stubborn", "[20000]", NULL);
	assert_int_equal(tq_task_yield(s, 300), TQ_ERUNNING);
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_task_shutdown(s, 400), TQ_EKILLED);
	uint64_t took = th_now_ms() - t0;
	assert_true(took >= 400);
	assert_true(took < 20000);
	tq_task_destroy(&s);
	tq_client_destroy(&c);
}

static void test_shutdown_returns_a_result_that_arrived(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *t = th_async(c, "double", "[50]", NULL);
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000));
	assert_int_equal(tq_task_shutdown(t, TQ_BRUTAL_KILL), TQ_OK);
	assert_int_equal(th_result_int(t), 100);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_crashing_handler_costs_only_its_task(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	th_proc *w = th_worker(e, "w1", one);
	assert_non_null(w);
	tq_client *c = th_client(e, 0);
	tq_task *t = th_async(c, "crash", "[]", NULL);
	assert_int_equal(tq_task_await(t, 5000), TQ_ETASKCRASHED);
	assert_non_null(strstr(tq_task_error(t), "SIGABRT"));
	assert_non_null(strstr(tq_task_error(t), "w1"));
	tq_task_destroy(&t);
	t = th_async(c, "segv", "[]", NULL);
	assert_int_equal(tq_task_await(t, 5000), TQ_ETASKCRASHED);
#ifndef __SANITIZE_ADDRESS__
	/* (Under the sanitizers the executor reports the fault and exits
	 * instead of dying by the signal: still TQ_ETASKCRASHED.) */
	assert_non_null(strstr(tq_task_error(t), "SIGSEGV"));
#endif
	tq_task_destroy(&t);
	/* The same worker serves on. */
	t = th_async(c, "double", "[4]", NULL);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	assert_int_equal(th_result_int(t), 8);
	assert_string_equal(tq_task_worker(t), "w1");
	assert_int_equal(kill(w->pid, 0), 0);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_failure_carries_the_reason(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *t = th_async(c, "fail", "[\"disk full\"]", NULL);
	assert_int_equal(tq_task_await(t, 5000), TQ_EFAILED);
	assert_non_null(strstr(tq_task_error(t), "disk full"));
	assert_non_null(strstr(tq_task_error(t), "(fail) failed on worker w1"));
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_no_worker_is_named(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *t = th_async(c, "nosuch", "[]", NULL);
	assert_int_equal(tq_task_await(t, 300), TQ_ENOWORKER);
	assert_non_null(strstr(tq_task_error(t), "no worker offers 'nosuch'"));
	tq_task_destroy(&t);
	/* With a deadline of its own, the broker says so too. */
	tq_task_opts o = { .timeout_ms = 200 };
	t = th_async(c, "nosuch", "[]", &o);
	assert_int_equal(tq_task_await(t, 5000), TQ_ENOWORKER);
	tq_task_destroy(&t);
	assert_true(th_stat_reaches(e, "counters.no_worker", 1, 2000));
	tq_client_destroy(&c);
}

static void test_ignored_task_runs_on(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	th_path fw;
	snprintf(fw.path, sizeof fw.path, "%s/ignored", e->dir);
	char args[600];
	snprintf(args, sizeof args, "[\"%s\", 300]", fw.path);
	tq_task *t = th_async(c, "touch", args, NULL);
	tq_task_ignore(&t);
	assert_null(t);
	tq_client_destroy(&c); /* its owner leaves; an ignored task is not linked */
	assert_true(th_wait_for(th_file_exists, &fw, 5000));
	unlink(fw.path);
}

static void test_ten_thousand_tasks_none_lost_or_duplicated(void **state)
{
	th_env *e = *state;
	enum { N = 10000 };
	static const char *const opts[] = { "--concurrency", "2", "--prefetch", "16", NULL };
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", opts));
	assert_non_null(th_worker(e, "w2", opts));
	assert_non_null(th_worker(e, "w3", opts));
	tq_client *c = th_client(e, 0);
	tq_task **ts = calloc(N, sizeof *ts);
	assert_non_null(ts);
	for (int i = 0; i < N; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", i);
		ts[i] = th_async(c, "double", args, NULL);
		assert_non_null(ts[i]);
	}
	assert_int_equal(tq_await_many(ts, N, 60000, NULL), TQ_OK);
	int per_worker[3] = { 0 };
	for (int i = 0; i < N; i++) {
		assert_int_equal(th_result_int(ts[i]), 2 * i);
		const char *w = tq_task_worker(ts[i]);
		assert_true(w[0] == 'w' && w[1] >= '1' && w[1] <= '3');
		per_worker[w[1] - '1']++;
		tq_task_destroy(&ts[i]);
	}
	free(ts);
	for (int i = 0; i < 3; i++)
		assert_true(per_worker[i] > 0);
	assert_int_equal(tq_client_strays(c), 0);
	uint64_t completed = 0, submitted = 0;
	assert_int_equal(th_stat(e, "counters.completed", &completed), 0);
	assert_int_equal(th_stat(e, "counters.submitted", &submitted), 0);
	assert_int_equal(completed, N);
	assert_int_equal(submitted, N);
	printf("10000 tasks: w1 %d, w2 %d, w3 %d\n", per_worker[0], per_worker[1], per_worker[2]);
	tq_client_destroy(&c);
}

static void test_infinity_and_refs(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *a = th_async(c, "sleep", "[200]", NULL);
	tq_task *b = th_async(c, "sleep", "[10]", NULL);
	assert_string_not_equal(tq_task_ref(a), tq_task_ref(b));
	assert_string_equal(tq_task_function(a), "sleep");
	assert_ptr_equal(tq_task_owner(a), c);
	assert_int_equal(tq_task_await(a, TQ_INFINITY), TQ_OK);
	assert_int_equal(tq_task_await(b, TQ_INFINITY), TQ_OK);
	assert_int_equal(tq_task_attempt(a), 1);
	tq_task_destroy(&a);
	tq_task_destroy(&b);
	/* Bad arguments never reach the broker. */
	tq_task *t = NULL;
	static const uint8_t bad[] = { 0x92, 0x01 }; /* an array of 2 with 1 item */
	assert_int_equal(tq_client_async(c, "echo", bad, sizeof bad, NULL, &t), TQ_EINVAL);
	assert_int_equal(tq_client_async_json(c, "echo", "[1,", NULL, &t), TQ_EINVAL);
	assert_int_equal(tq_client_async_json(c, "", "[]", NULL, &t), TQ_EINVAL);
	assert_null(t);
	tq_client_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_sleeps_run_in_parallel, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_await_many_doubles, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_await_many_names_the_failure, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_start_returns_before_the_task_runs, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_yield_then_await, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_yield_many, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(
		    test_kept_task_runs_on_and_its_late_result_is_a_stray, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_of_a_queued_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_kills_a_running_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_returns_a_result_that_arrived,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_crashing_handler_costs_only_its_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_failure_carries_the_reason, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_no_worker_is_named, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_ignored_task_runs_on, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_infinity_and_refs, th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_ten_thousand_tasks_none_lost_or_duplicated,
		                                th_setup, th_teardown),
		cmocka_unit_test_setup_teardown(test_default_timeout_cancels_the_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_await_7000_succeeds, th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("tasks", tests, NULL, NULL);
}
