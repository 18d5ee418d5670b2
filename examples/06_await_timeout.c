/*
 * 06_await_timeout.c - Task.await gives up after 5000 ms by default.
 *
 *     task = Task.async(fn -> Process.sleep(6000) end)
 *     Task.await(task)
 *     # ** (exit) exited in: Task.await(%Task{...}, 5000)
 *     #     ** (EXIT) time out
 *
 * In C an await that runs out of time returns TQ_ETIMEDOUT instead of
 * exiting, and tq_task_error says which task timed out.  As with a task
 * linked to its caller, the task is then cancelled on its worker.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./06_await_timeout
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
	tq_err e = tq_task_await(t, TQ_DEFAULT_TIMEOUT); /* 5000 ms */
	printf("await returned %s after %.2f s\n", tq_errname(e), now() - t0);
	printf("%s\n", tq_task_error(t));

	tq_task_destroy(&t);
	tq_client_destroy(&c);
	return e == TQ_ETIMEDOUT ? 0 : 1; /* the lesson: it must time out */
}
