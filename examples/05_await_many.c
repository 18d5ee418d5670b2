/*
 * 05_await_many.c - many tasks, awaited together.
 *
 *     Enum.map(1..5, fn i -> Task.async(fn -> i * 2 end) end)
 *     |> Task.await_many()   # [2, 4, 6, 8, 10]
 *
 * tq_await_many waits for all the tasks with one deadline; each task then
 * holds its own result, so they read back in input order however the
 * workers finished them.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./05_await_many
 */
#include <tq/tq.h>

#include <stdio.h>

int main(void)
{
	tq_client *c;
	if (tq_client_new(&c, NULL) != TQ_OK)
		return 1;

	tq_task *tasks[5];
	for (int i = 0; i < 5; i++) {
		char args[16];
		snprintf(args, sizeof args, "[%d]", i + 1);
		if (tq_client_async_json(c, "double", args, NULL, &tasks[i]) != TQ_OK)
			return 1;
	}
	size_t failed;
	if (tq_await_many(tasks, 5, TQ_DEFAULT_TIMEOUT, &failed) != TQ_OK) {
		printf("task %zu failed: %s\n", failed, tq_task_error(tasks[failed]));
		return 1;
	}

	printf("[");
	for (int i = 0; i < 5; i++) {
		int64_t v = 0;
		tq_task_result_int(tasks[i], &v);
		printf("%s%lld", i ? ", " : "", (long long)v);
		tq_task_destroy(&tasks[i]);
	}
	printf("]\n");
	tq_client_destroy(&c);
	return 0;
}
