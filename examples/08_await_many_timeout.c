/*
 * 08_await_many_timeout.c - one deadline for several tasks.
 *
 *     t1 = Task.async(fn -> Process.sleep(6000) end)
 *     t2 = Task.async(fn -> Process.sleep(5000) end)
 *     Task.await_many([t1, t2], 7000)
 *
 * The 7000 ms cover both tasks together, not each in turn: they run at
 * once, so both end within about 6 s.  (Awaited one after the other with
 * 7000 ms each, the waits would add up.)  The results keep input order.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./08_await_many_timeout
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

	tq_task *t[2];
	if (tq_client_async_json(c, "sleep", "[6000]", NULL, &t[0]) != TQ_OK ||
	    tq_client_async_json(c, "sleep", "[5000]", NULL, &t[1]) != TQ_OK)
		return 1;
	double t0 = now();
	size_t failed;
	tq_err e = tq_await_many(t, 2, 7000, &failed);
	if (e == TQ_OK) {
		int64_t a = 0, b = 0;
		tq_task_result_int(t[0], &a);
		tq_task_result_int(t[1], &b);
		printf("[%lld, %lld] after %.2f s, on %s and %s\n", (long long)a, (long long)b,
		       now() - t0, tq_task_worker(t[0]), tq_task_worker(t[1]));
	} else {
		printf("failed: %s\n", tq_task_error(t[failed]));
	}

	tq_task_destroy(&t[0]);
	tq_task_destroy(&t[1]);
	tq_client_destroy(&c);
	return e == TQ_OK ? 0 : 1;
}
