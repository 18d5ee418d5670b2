/*
 * 07_await_longer.c - a longer timeout lets the 6 s task finish.
 *
 *     task = Task.async(fn -> Process.sleep(6000) end)
 *     Task.await(task, 7000)   # :ok, after 6 s
 *
 * Give the await as long as the work needs, plus a little for the trip to
 * a worker and back.  (tq-worker's built-in sleep returns how long it
 * slept: 6000.)
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./07_await_longer
 */
#include <tq/tq.h>

#include <stdio.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	tq_client *c;
	if (tq_client_new(&c, NULL) != TQ_OK)
		return 1;

	tq_task *t;
	if (tq_client_async_json(c, "sleep", "[6000]", NULL, &t) != TQ_OK)
		return 1;
	double t0 = now();
	tq_err e = tq_task_await(t, 7000);
	int64_t v = 0;
	if (e == TQ_OK && tq_task_result_int(t, &v) == TQ_OK)
		printf("%lld after %.2f s, on %s\n", (long long)v, now() - t0, tq_task_worker(t));
	else
		printf("failed: %s\n", tq_task_error(t));

	tq_task_destroy(&t);
	tq_client_destroy(&c);
	return e == TQ_OK ? 0 : 1;
}
