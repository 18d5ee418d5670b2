/*
 * test_client_answers.c - every answer the client library gives is unambiguous
 * (issue 14, client points 6 to 11): strays are only real strays,
 * tq_task_status sees what has arrived, shutdown tells a clean stop from a
 * kill, the _many forms refuse tasks of two clients, yield_many answers for
 * each task, and handles and streams that outlive their client answer
 * TQ_ESTATE instead of reaching freed memory (run under ASan to see it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "tq/stream.h"

#include <stdio.h>
#include <stdlib.h>
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

static const char *const conc4[] = { "--concurrency", "4", NULL };

static void test_yield_many_answers_each_task(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	tq_task *ts[3] = { th_async(c, "double", "[1]", NULL), th_async(c, "double", "[2]", NULL),
		           th_async(c, "sleep", "[1000]", NULL) };
	tq_err out[3];
	assert_int_equal(tq_yield_many(ts, 3, 500, out), TQ_OK);
	assert_int_equal(out[0], TQ_OK);
	assert_int_equal(out[1], TQ_OK);
	assert_int_equal(out[2], TQ_ERUNNING);
	assert_int_equal(th_result_int(ts[1]), 4);

	/* Again on the same array, as Elixir's loops do: the two returned
	 * already say so and do not hold the wait up; the third is waited
	 * for until it ends, not until the timeout. */
	uint64_t t0 = th_now_ms();
	assert_int_equal(tq_yield_many(ts, 3, 10000, out), TQ_OK);
	assert_true(th_now_ms() - t0 < 5000);
	assert_int_equal(out[0], TQ_ESTATE);
	assert_int_equal(out[1], TQ_ESTATE);
	assert_int_equal(out[2], TQ_OK);
	assert_int_equal(th_result_int(ts[2]), 1000);

	/* Nothing left to wait for: an unbounded call returns at once. */
	t0 = th_now_ms();
	assert_int_equal(tq_yield_many(ts, 3, TQ_INFINITY, out), TQ_OK);
	assert_true(th_now_ms() - t0 < 1000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(out[i], TQ_ESTATE);
	/* await_many answers for all at once: it refuses. */
	assert_int_equal(tq_await_many(ts, 3, 1000, NULL), TQ_ESTATE);
	for (int i = 0; i < 3; i++)
		tq_task_destroy(&ts[i]);
	tq_client_destroy(&c);
}

/* Every call a task handle takes, on one whose client was destroyed. */
static void expect_orphaned(tq_task *t, tq_err status, const char *ref)
{
	assert_int_equal(tq_task_await(t, 1000), TQ_ESTATE);
	assert_int_equal(tq_task_yield(t, 1000), TQ_ESTATE);
	assert_int_equal(tq_task_shutdown(t, 1000), TQ_ESTATE);
	assert_int_equal(tq_task_status(t), status);
	assert_string_equal(tq_task_ref(t), ref);
	assert_string_equal(tq_task_function(t), "");
	assert_string_equal(tq_task_worker(t), "");
	assert_true(tq_task_attempt(t) <= 1);
	assert_null(tq_task_owner(t));
	tq_task *one_task[1] = { t };
	tq_err out[1] = { TQ_EPROTO };
	assert_int_equal(tq_await_many(one_task, 1, 1000, NULL), TQ_EINVAL);
	assert_int_equal(tq_yield_many(one_task, 1, 1000, out), TQ_EINVAL);
	assert_int_equal(out[0], TQ_EPROTO);
}

static void test_tasks_outlive_their_client(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	tq_task *done = th_async(c, "double", "[21]", NULL);
	assert_true(th_wait_for(has_outcome, done, 5000)); /* arrived, not consumed */
	tq_task *awaited = th_async(c, "double", "[1]", NULL);
	assert_int_equal(tq_task_await(awaited, 5000), TQ_OK);
	tq_task *pending = th_async(c, "sleep", "[20000]", NULL);
	tq_task *ignored = th_async(c, "sleep", "[20000]", NULL);
	char refs[4][33];
	tq_task *all[4] = { done, awaited, pending, ignored };
	for (int i = 0; i < 4; i++)
		snprintf(refs[i], sizeof refs[i], "%s", tq_task_ref(all[i]));

	tq_client_destroy(&c);

	expect_orphaned(done, TQ_OK, refs[0]);
	assert_int_equal(th_result_int(done), 42);
	char *json;
	assert_int_equal(tq_task_result_json(done, &json), TQ_OK);
	assert_string_equal(json, "42");
	free(json);
	assert_string_equal(tq_task_error(done), "");

	expect_orphaned(awaited, TQ_OK, refs[1]);
	assert_int_equal(th_result_int(awaited), 2);

	expect_orphaned(pending, TQ_ECANCELLED, refs[2]);
	size_t len = 99;
	assert_null(tq_task_result(pending, &len));
	assert_int_equal(len, 0);
	int64_t v;
	assert_int_equal(tq_task_result_int(pending, &v), TQ_ESTATE);
	assert_int_equal(tq_task_result_json(pending, &json), TQ_ESTATE);
	assert_non_null(strstr(tq_task_error(pending), "(sleep) was given up: its client was "
	                                               "destroyed"));

	expect_orphaned(ignored, TQ_ECANCELLED, refs[3]);
	tq_task_ignore(&ignored); /* nothing to tell anyone: it only frees */
	assert_null(ignored);
	tq_task_destroy(&done);
	tq_task_destroy(&awaited);
	tq_task_destroy(&pending);
	assert_null(pending);
}

/* Inputs [ms[0]], [ms[1]], ... until a negative entry. */
static int next_ms(void *arg, tq_buf *args)
{
	const int **ms = arg;
	if (**ms < 0)
		return 0;
	tq_pack_array(args, 1);
	tq_pack_int(args, *(*ms)++);
	return tq_buf_error(args) == TQ_OK ? 1 : -1;
}

static void test_streams_outlive_their_client(void **state)
{
	th_env *e = *state;
	tq_client *c = th_start(e, NULL, conc4);
	tq_stream_opts o = { .max_concurrency = 4 };

	/* One that ended, */
	static const int quick[] = { 1, 2, -1 };
	const int *qi = quick;
	tq_stream *ended;
	assert_int_equal(tq_client_async_stream(c, "sleep", next_ms, &qi, &o, &ended), TQ_OK);
	tq_stream_item it;
	assert_int_equal(tq_stream_next(ended, &it), TQ_OK);
	assert_int_equal(tq_stream_next(ended, &it), TQ_OK);
	assert_int_equal(tq_stream_next(ended, &it), TQ_EEND);

	/* one with tasks running and an item in hand, */
	static const int slow[] = { 10, 20000, 20000, 20000, 20000, 20000, -1 };
	const int *si = slow;
	tq_stream *running;
	assert_int_equal(tq_client_async_stream(c, "sleep", next_ms, &si, &o, &running), TQ_OK);
	assert_int_equal(tq_stream_next(running, &it), TQ_OK);
	assert_int_equal(it.index, 0);
	assert_int_equal(it.outcome, TQ_OK);
	/* Its slot refilled before the item came back: four run. */
	assert_true(th_stat_is(e, "load", 4, 5000));

	/* and one never started. */
	static const int none[] = { 5, -1 };
	const int *ni = none;
	tq_stream *idle;
	assert_int_equal(tq_client_async_stream(c, "sleep", next_ms, &ni, &o, &idle), TQ_OK);

	uint64_t cancelled = th_stat_of(e, "counters.cancelled");
	tq_client_destroy(&c);

	/* The item in hand is still whole: its strings are the stream's. */
	assert_string_equal(it.worker, "w1");
	assert_string_equal(it.error, "");
	tq_reader r;
	int64_t v;
	tq_reader_init(&r, it.result, it.len);
	assert_int_equal(tq_read_int(&r, &v), TQ_OK);
	assert_int_equal(v, 10);

	/* The running one was cancelled and says why, for good. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tq_stream_next(running, &it), TQ_ESTATE);
		assert_non_null(strstr(tq_stream_error(running), "its client was destroyed"));
	}
	assert_int_equal(tq_stream_submitted(running), 5);
	assert_int_equal(tq_stream_yielded(running), 1);
	assert_true(th_stat_reaches(e, "counters.cancelled", cancelled + 4, 5000));
	assert_true(th_stat_is(e, "load", 0, 5000));

	assert_int_equal(tq_stream_next(idle, &it), TQ_ESTATE);
	assert_non_null(strstr(tq_stream_error(idle), "its client was destroyed"));
	assert_int_equal(tq_stream_submitted(idle), 0);

	/* What had ended stays ended. */
	assert_int_equal(tq_stream_next(ended, &it), TQ_EEND);
	assert_string_equal(tq_stream_error(ended), "");

	tq_stream_destroy(&running);
	tq_stream_destroy(&idle);
	tq_stream_destroy(&ended);
	assert_null(running);
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
		cmocka_unit_test_setup_teardown(test_yield_many_answers_each_task, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_tasks_outlive_their_client, th_setup,
		                                th_teardown),
		cmocka_unit_test_setup_teardown(test_streams_outlive_their_client, th_setup,
		                                th_teardown),
	};
	return cmocka_run_group_tests_name("client_answers", tests, NULL, NULL);
}
