/*
 * 03_tick_tock.c - two tasks at the same time: tick and tock.
 *
 *     for word <- ["tick", "tock"] do
 *       Task.async(fn -> for _ <- 1..3, do: (IO.puts(word); Process.sleep(500)) end)
 *     end
 *
 * A worker's output goes to its own log, not to this terminal, so the
 * built-in `ticks WORD N MS` returns what it "printed" and when:
 * [[unix_ms, WORD], ...].  Merged by time, the two lists interleave: tick,
 * tock, tick, tock - the tasks ran at once, on two workers.
 *
 *     TQ_BROKER=tcp://127.0.0.1:5555 ./03_tick_tock
 */
#include <tq/tq.h>

#include <stdio.h>

/* One "printed" word and when, read from a ticks result. */
typedef struct {
	uint64_t ms;
	const char *word; /* points into the result: not NUL-terminated */
	size_t len;
} tick;

/* Reads up to 3 ticks from t's result [[unix_ms, word], ...]. */
static int read_ticks(const tq_task *t, tick out[3])
{
	size_t len;
	const uint8_t *data = tq_task_result(t, &len);
	tq_reader r;
	uint32_t n, pair;
	tq_reader_init(&r, data, len);
	if (tq_read_array(&r, &n) != TQ_OK || n != 3)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (tq_read_array(&r, &pair) != TQ_OK || tq_read_uint(&r, &out[i].ms) != TQ_OK ||
		    tq_read_str(&r, &out[i].word, &out[i].len) != TQ_OK)
			return -1;
	return 0;
}

int main(void)
{
	tq_client *c;
	if (tq_client_new(&c, NULL) != TQ_OK)
		return 1;

	/* Both are submitted before either is awaited: they run at once. */
	tq_task *tasks[2];
	if (tq_client_async_json(c, "ticks", "[\"tick\", 3, 500]", NULL, &tasks[0]) != TQ_OK ||
	    tq_client_async_json(c, "ticks", "[\"tock\", 3, 500]", NULL, &tasks[1]) != TQ_OK)
		return 1;
	size_t failed;
	if (tq_await_many(tasks, 2, TQ_DEFAULT_TIMEOUT, &failed) != TQ_OK) {
		printf("failed: %s\n", tq_task_error(tasks[failed]));
		return 1;
	}

	tick a[3], b[3];
	if (read_ticks(tasks[0], a) != 0 || read_ticks(tasks[1], b) != 0)
		return 1;
	/* Merge the two timelines, each already in order. */
	uint64_t start = a[0].ms < b[0].ms ? a[0].ms : b[0].ms;
	for (int i = 0, j = 0; i < 3 || j < 3;) {
		bool take_a = j == 3 || (i < 3 && a[i].ms <= b[j].ms);
		const tick *k = take_a ? &a[i++] : &b[j++];
		printf("%+6lld ms  %.*s  (on %s)\n", (long long)(k->ms - start), (int)k->len,
		       k->word, tq_task_worker(tasks[take_a ? 0 : 1]));
	}

	tq_task_destroy(&tasks[0]);
	tq_task_destroy(&tasks[1]);
	tq_client_destroy(&c);
	return 0;
}
