/*
 * test_client_answers.c - every answer the client library gives is unambiguous
 * (issue 14, client points 6, 7, 9 and 10): strays are only real strays,
 * tq_task_status sees what has arrived, shutdown tells a clean stop from a
 * kill, and the _many forms refuse tasks of two clients.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <string.h>

static const char *const one[] = { "--concurrency", "1", NULL };

/* Waits until the broker has counted `n` cancellations, then runs a probe
 * on c: the broker answered those cancels to c before the probe's result,
 * so when the probe's await returns, c has read them. */
static void settle_cancels(th_env *e, tq_client *c, uint64_t n)
{
	assert_true(th_stat_reaches(e, "counters.cancelled", n, 5000));
	th_expect_int(c, "double", "[1]", 2, NULL);
}

static void test_cancel_confirmations_are_not_strays(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, one);
	th_path fw;

	/* Destroyed while it runs: the client cancels it. */
	tq_task *t = th_mark_running(e, c, &fw, "destroyed", 20000, NULL);
	tq_task_destroy(&t);
	settle_cancels(e, c, 1);

	/* An await that times out cancels its task. */
	t = th_mark_running(e, c, &fw, "timed-out", 20000, NULL);
	assert_int_equal(tq_task_await(t, 100), TQ_ETIMEDOUT);
	settle_cancels(e, c, 2);
	tq_task_destroy(&t);

	/* So does an await_many that times out, for each task it gives up:
	 * one running, one queued behind it. */
	tq_task *ts[2];
	ts[0] = th_mark_running(e, c, &fw, "many", 20000, NULL);
	ts[1] = th_async(c, "sleep", "[20000]", NULL);
	assert_int_equal(tq_await_many(ts, 2, 100, NULL), TQ_ETIMEDOUT);
	settle_cancels(e, c, 4);
	tq_task_destroy(&ts[0]);
	tq_task_destroy(&ts[1]);

	/* Each cancel was answered, and each answer was expected. */
	assert_int_equal(tq_client_strays(c), 0);

	/* A real late answer still counts: the result of a task an await
	 * left running. */
	tq_task_opts keep = { .keep_on_timeout = true };
	t = th_async(c, "sleep", "[300]", &keep);
	assert_int_equal(tq_task_await(t, 50), TQ_ETIMEDOUT);
	assert_true(th_stat_reaches(e, "counters.completed", 4, 5000));
	th_expect_int(c, "double", "[1]", 2, NULL);
	assert_int_equal(tq_client_strays(c), 1);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static bool has_outcome(void *arg)
{
	return tq_task_status(arg) != TQ_ERUNNING;
}

static void test_status_reads_what_has_arrived(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	tq_task *t = th_async(c, "double", "[21]", NULL);
	/* The broker has sent the result; no call on c waits for it. */
	assert_true(th_stat_reaches(e, "counters.completed", 1, 5000));
	assert_true(th_wait_for(has_outcome, t, 3000));
	assert_int_equal(tq_task_status(t), TQ_OK);
	/* Seen, not consumed: the await still returns it. */
	assert_int_equal(tq_task_await(t, 0), TQ_OK);
	assert_int_equal(th_result_int(t), 42);
	tq_task_destroy(&t);

	/* A task that runs on says so at once: status never waits. */
	t = th_async(c, "sleep", "[2000]", NULL);
	uint64_t t0 = th_now_ms();
	for (int i = 0; i < 100; i++)
		assert_int_equal(tq_task_status(t), TQ_ERUNNING);
	assert_true(th_now_ms() - t0 < 1000);
	assert_int_equal(tq_task_await(t, 5000), TQ_OK);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

static void test_shutdown_tells_a_kill_from_a_stop(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, one);
	th_path fw;

	/* Ended by SIGTERM within its grace: Elixir's nil. */
	tq_task *t = th_mark_running(e, c, &fw, "stopped", 20000, NULL);
	assert_int_equal(tq_task_shutdown(t, 2000), TQ_ECANCELLED);
	tq_task_destroy(&t);

	/* Still running when the grace ran out, so killed: {:exit, :killed}. */
	t = th_async(c, "stubborn", "[20000]", NULL);
	assert_true(th_stat_is(e, "load", 1, 5000));
	assert_int_equal(tq_task_yield(t, 300), TQ_ERUNNING); /* SIGTERM ignored by now */
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_task_shutdown(t, 400), TQ_EKILLED);
	assert_true(th_now_ms() - t0 >= 400);
	assert_non_null(strstr(tq_task_error(t), "(stubborn) was killed on worker w1"));
	assert_non_null(strstr(tq_task_error(t), "grace period ran out"));
	tq_task_destroy(&t);

	/* Killed at once (TQ_BRUTAL_KILL) is a plain cancel: Elixir's nil. */
	t = th_async(c, "stubborn", "[20000]", NULL);
	assert_true(th_stat_is(e, "load", 1, 5000));
	assert_int_equal(tq_task_yield(t, 300), TQ_ERUNNING);
	assert_int_equal(tq_task_shutdown(t, TQ_BRUTAL_KILL), TQ_ECANCELLED);
	tq_task_destroy(&t);

	assert_string_equal(tq_errname(TQ_EKILLED), "EKILLED");
	tq_client_destroy(&c);
}

static void test_many_refuses_tasks_of_two_clients(void **state)
{
	th_env *e = *state;
	tq_client *a = th_start(e, NULL, NULL);
	tq_client *b = th_client(e, 0);
	tq_task *ts[2] = { th_async(a, "double", "[1]", NULL), th_async(b, "double", "[2]", NULL) };
	tq_err out[2] = { TQ_EPROTO, TQ_EPROTO };
	assert_int_equal(tq_await_many(ts, 2, 1000, NULL), TQ_EINVAL);
	assert_int_equal(tq_yield_many(ts, 2, 1000, out), TQ_EINVAL);
	assert_int_equal(out[0], TQ_EPROTO); /* nothing written */
	/* A NULL task, first or not, is refused the same way. */
	tq_task *holes[2] = { NULL, ts[0] };
	assert_int_equal(tq_await_many(holes, 2, 1000, NULL), TQ_EINVAL);
	assert_int_equal(tq_yield_many(holes, 2, 1000, out), TQ_EINVAL);
	/* The tasks were left as they were. */
	assert_int_equal(tq_task_await(ts[0], 5000), TQ_OK);
	assert_int_equal(tq_task_await(ts[1], 5000), TQ_OK);
	assert_int_equal(th_result_int(ts[1]), 4);
	tq_task_destroy(&ts[0]);
	tq_task_destroy(&ts[1]);
	tq_client_destroy(&b);
	tq_client_destroy(&a);
}

static void test_no_worker_is_told_at_the_deadline(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, NULL);
	/* The await's timeout: not at once, since a worker may still come. */
	tq_task *t = th_async(c, "nosuch", "[]", NULL);
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_task_await(t, 600), TQ_ENOWORKER);
	assert_true(th_now_ms() - t0 >= 600);
	tq_task_destroy(&t);
	/* The task's own deadline, for an await without one. */
	tq_task_opts o = { .timeout_ms = 600 };
	t = th_async(c, "nosuch", "[]", &o);
	t0 = th_now_ms();
	assert_int_equal(tq_task_await(t, TQ_INFINITY), TQ_ENOWORKER);
	uint64_t took = th_now_ms() - t0;
	assert_true(took >= 500 && took < 5000);
	tq_task_destroy(&t);
	tq_client_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cancel_confirmations_are_not_strays, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_status_reads_what_has_arrived, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_tells_a_kill_from_a_stop, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_many_refuses_tasks_of_two_clients, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_no_worker_is_told_at_the_deadline, th_setup,
		                                th_teardown),
	};
	return cmocka_run_group_tests_name("client_answers", tests, NULL, NULL);
}
