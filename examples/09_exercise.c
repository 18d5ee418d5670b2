/*
 * 09_exercise.c - the exercise: a 1 s task awaited for 1 s must fail.
 *
 *     task = Task.async(fn -> Process.sleep(1000) end)
 *     Task.await(task, 1000)   # exits: time out
 *
 * Why: the task needs its 1000 ms of work plus the time to reach a worker
 * and for the result to come back, so a 1000 ms await always runs out
 * first.  A timeout must leave room for the trip.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./09_exercise
 */
#include <tq/tq.h>

#include <stdio.h>

int main(void)
{
	tq_client *c;
	if (tq_client_new(&c, NULL) != TQ_OK)
		return 1;

	tq_task *t;
	if (tq_client_async_json(c, "sleep", "[1000]", NULL, &t) != TQ_OK)
		return 1;
	tq_err e = tq_task_await(t, 1000);
	printf("await(task, 1000) returned %s: %s\n", tq_errname(e),
	       e == TQ_OK ? "it made it?" : tq_task_error(t));

	tq_task_destroy(&t);
	tq_client_destroy(&c);
	return e == TQ_ETIMEDOUT ? 0 : 1; /* the exercise: it must fail */
}
