/*
 * 04_parallel.c - two 1-second computations: one after the other, then in
 * parallel.
 *
 *     f = fn -> Process.sleep(1000) end
 *     Task.await(Task.async(f)); Task.await(Task.async(f))   # about 2 s
 *     Task.await_many([Task.async(f), Task.async(f)])        # about 1 s
 *
 * Awaiting each task before submitting the next runs them one after the
 * other.  Submitting both first lets two workers run them at once.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./04_parallel
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
	char ran_on[2][64];

	/* One after the other: submit, await, submit, await. */
	double t0 = now();
	for (int i = 0; i < 2; i++) {
		if (tq_client_async_json(c, "sleep", "[1000]", NULL, &t[i]) != TQ_OK ||
		    tq_task_await(t[i], TQ_DEFAULT_TIMEOUT) != TQ_OK)
			return 1;
		snprintf(ran_on[i], sizeof ran_on[i], "%s", tq_task_worker(t[i]));
		tq_task_destroy(&t[i]);
	}
	double sequential = now() - t0;
	printf("sequential: %.2f s on %s, then %s\n", sequential, ran_on[0], ran_on[1]);

	/* In parallel: submit both, then await both. */
	t0 = now();
	for (int i = 0; i < 2; i++)
		if (tq_client_async_json(c, "sleep", "[1000]", NULL, &t[i]) != TQ_OK)
			return 1;
	if (tq_await_many(t, 2, TQ_DEFAULT_TIMEOUT, NULL) != TQ_OK)
		return 1;
	double parallel = now() - t0;
	printf("parallel:   %.2f s on %s and %s\n", parallel, tq_task_worker(t[0]),
	       tq_task_worker(t[1]));

	printf("sequential: %.2f s   parallel: %.2f s   speed-up %.2fx\n", sequential, parallel,
	       sequential / parallel);
	tq_task_destroy(&t[0]);
	tq_task_destroy(&t[1]);
	tq_client_destroy(&c);
	return 0;
}
