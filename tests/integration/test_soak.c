/*
 * test_soak.c - 20,000 tasks over 3 workers while a worker is killed and
 * replaced every half second.  Every task must end once, with a result or a
 * named error, and the client's and the broker's counts must agree.
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

/* A kill takes the 3-5 tasks its worker holds; with one task in five
 * without retries, ten or more kills all missing such a task is a chance of
 * about 0.8^35 (2e-4), so the run shows both outcomes. */
enum { N = 20000, WINDOW = 600, WORKERS = 3, KILL_EVERY_MS = 500 };

static void test_soak_with_a_worker_killed_every_second(void **state)
{
	th_env *e = *state;
	static const char *const opts[] = { "--concurrency", "2", NULL };
	assert_non_null(th_broker(e, NULL));
	th_proc *w[WORKERS];
	int generation = 0;
	char name[32];
	for (int i = 0; i < WORKERS; i++) {
		snprintf(name, sizeof name, "w%d", generation++);
		w[i] = th_worker(e, name, opts);
		assert_non_null(w[i]);
	}
	tq_client *c = th_client(e, 0);
	tq_task **ts = calloc(N, sizeof *ts);
	tq_err *out = calloc(N, sizeof *out);
	assert_non_null(ts);
	assert_non_null(out);
	int next = 0, done = 0, kills = 0;
	uint64_t next_kill = th_now_ms() + KILL_EVERY_MS, t0 = th_now_ms();
	int counts[32] = { 0 };
	while (done < N) {
		while (next < N && next - done < WINDOW) {
			char args[16];
			/* A few ms of work so that the run spans many kills. */
			/* Most may run twice; every fifth may not, and then
			 * ends with the worker's loss. */
			tq_task_opts o = { .retries = next % 5 == 0 ? 0 : 5 };
			snprintf(args, sizeof args, "[%d]", next % 7 == 0 ? 5 : 1);
			ts[next] = th_async(c, "sleep", args, &o);
			assert_non_null(ts[next]);
			next++;
		}
		/* Each task is awaited once, in order; its outcome is final. */
		tq_err r = tq_task_await(ts[done], 60000);
		assert_true(r != TQ_ETIMEDOUT && r != TQ_ESTATE);
		out[done] = r;
		counts[r < 32 ? r : 31]++;
		if (r == TQ_OK) {
			int64_t v = -1;
			assert_int_equal(tq_task_result_int(ts[done], &v), TQ_OK);
			assert_int_equal(v, done % 7 == 0 ? 5 : 1);
		}
		assert_int_equal(tq_task_await(ts[done], 0), TQ_ESTATE); /* never twice */
		tq_task_destroy(&ts[done]);
		done++;
		if (th_now_ms() >= next_kill && next < N) {
			int victim = kills % WORKERS;
			th_signal(w[victim], SIGKILL);
			th_wait_exit(w[victim], 2000);
			snprintf(name, sizeof name, "w%d", generation++);
			w[victim] = th_worker(e, name, opts);
			assert_non_null(w[victim]);
			kills++;
			next_kill = th_now_ms() + KILL_EVERY_MS;
		}
	}
	uint64_t took = th_now_ms() - t0;
	printf("soak: %d tasks in %llu ms, %d workers killed: ok %d, worker lost %d, other %d\n", N,
	       (unsigned long long)took, kills, counts[TQ_OK], counts[TQ_EWORKERLOST],
	       N - counts[TQ_OK] - counts[TQ_EWORKERLOST]);
	assert_true(kills >= 6);
	assert_true(counts[TQ_EWORKERLOST] > 0);
	assert_int_equal(counts[TQ_OK] + counts[TQ_EWORKERLOST], N);
	/* The broker's books agree with the client's. */
	uint64_t submitted, completed, lost, retried;
	assert_int_equal(th_stat(e, "counters.submitted", &submitted), 0);
	assert_int_equal(th_stat(e, "counters.completed", &completed), 0);
	assert_int_equal(th_stat(e, "counters.worker_lost", &lost), 0);
	assert_int_equal(th_stat(e, "counters.retried", &retried), 0);
	assert_int_equal(submitted, N);
	assert_int_equal(completed, (uint64_t)counts[TQ_OK]);
	assert_int_equal(lost, (uint64_t)counts[TQ_EWORKERLOST]);
	assert_true(retried > 0);
	assert_int_equal(tq_client_strays(c), 0);
	uint64_t held = 1;
	assert_int_equal(th_stat(e, "tasks", &held), 0);
	assert_int_equal(held, 0);
	free(ts);
	free(out);
	tq_client_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_soak_with_a_worker_killed_every_second,
		                                th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("soak", tests, NULL, NULL);
}
