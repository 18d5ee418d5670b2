/*
 * 01_start.c - Task.start: fire and forget.
 *
 *     Task.start(fn -> IO.puts("hello from a task") end)
 *
 * tq_client_start_json hands a task to the broker and returns as soon as
 * the broker has accepted it.  Nobody awaits it and no result is kept; it
 * runs on a worker even if this program has ended by then.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./01_start
 */
#include <tq/tq.h>

#include <stdio.h>

int main(void)
{
	tq_client *c;
	/* No options: the broker's endpoint comes from $TQ_BROKER. */
	if (tq_client_new(&c, NULL) != TQ_OK)
		return 1;

	/* Arguments are a list, here written as JSON: echo gets one string. */
	char ref[33]; /* the task's reference: 32 hex digits */
	tq_err e = tq_client_start_json(c, "echo", "[\"hello from a task\"]", NULL, ref);
	if (e == TQ_OK)
		printf("started task %s; nobody waits for it\n", ref);
	else
		printf("the broker did not accept it: %s\n", tq_strerror(e));

	tq_client_destroy(&c);
	return e == TQ_OK ? 0 : 1;
}
