/*
 * test_threads.c - several threads in one process, each with its own
 * client, against one broker: the way the client's header says to share a
 * process.  Built under ThreadSanitizer by `make tsan` (label tsan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum { THREADS = 4, TASKS = 300 };

typedef struct {
	const char *ep;
	int id;
	int ok; /* tasks with the right result */
} job;

static void *run(void *arg)
{
	job *j = arg;
	tq_client_opts o = { .broker = j->ep };
	tq_client *c;
	if (tq_client_new(&c, &o) != TQ_OK)
		return NULL;
	tq_task *ts[TASKS];
	for (int i = 0; i < TASKS; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", j->id * 100000 + i);
		if (tq_client_async_json(c, "double", args, NULL, &ts[i]) != TQ_OK)
			ts[i] = NULL;
	}
	for (int i = 0; i < TASKS; i++) {
		int64_t v;
		if (ts[i] != NULL && tq_task_await(ts[i], 30000) == TQ_OK &&
		    tq_task_result_int(ts[i], &v) == TQ_OK && v == 2 * (j->id * 100000 + i))
			j->ok++;
		tq_task_destroy(&ts[i]);
	}
	tq_client_destroy(&c);
	return NULL;
}

static void test_one_client_per_thread(void **state)
{
	th_env *e = *state;
	assert_non_null(th_broker(e, NULL));
	assert_non_null(th_worker(e, "w1", NULL));
	pthread_t th[THREADS];
	job jobs[THREADS];
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (job){ e->client_ep, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, run, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].ok, TASKS);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_client_per_thread, th_setup, th_teardown),
	};
	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
