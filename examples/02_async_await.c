/*
 * 02_async_await.c - Task.async, then Task.await.
 *
 *     task = Task.async(fn -> 21 * 2 end)
 *     Task.await(task)   # 42
 *
 * tq_client_async_json submits the task and returns at once with a handle;
 * the task runs on a worker while this program could do other work.
 * tq_task_await then waits for its result, for at most 5000 ms.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./02_async_await
 */
#include <tq/tq.h>

#include <stdio.h>

int main(void)
{
	tq_client *c;
	if (tq_client_new(&c, NULL) != TQ_OK)
		return 1;

	tq_task *t;
	if (tq_client_async_json(c, "double", "[21]", NULL, &t) != TQ_OK)
		return 1;
	/* ... other work could happen here, while the task runs ... */
	tq_err e = tq_task_await(t, TQ_DEFAULT_TIMEOUT);

	int64_t v;
	if (e == TQ_OK && tq_task_result_int(t, &v) == TQ_OK)
		printf("double(21) = %lld, computed by %s\n", (long long)v, tq_task_worker(t));
	else
		printf("failed: %s\n", tq_task_error(t));

	tq_task_destroy(&t);
	tq_client_destroy(&c);
	return e == TQ_OK ? 0 : 1;
}
