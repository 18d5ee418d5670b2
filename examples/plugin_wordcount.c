/*
 * plugin_wordcount.c - functions of your own, loaded into tq-worker.
 *
 *     tq-worker --broker tcp://HOST:5556 --plugin ./plugin_wordcount.so
 *     tq call wordcount "the quick brown fox"      # 4
 *
 * A plugin is a shared object that defines tq_plugin_init; tq-worker calls
 * it once at start-up to register the plugin's functions, next to its
 * built-in ones.  Handlers run in the worker's executor processes: a crash
 * in one fails only that task.
 */
#include <tq/tq.h>

#include <ctype.h>
#include <stdbool.h>

/* wordcount TEXT: the number of blank-separated words in TEXT. */
static tq_err wordcount(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	const char *text; /* points into the arguments: not NUL-terminated */
	size_t len;
	/* The arguments are a list: here exactly one string. */
	if (tq_read_array(args, &n) != TQ_OK || n != 1 || tq_read_str(args, &text, &len) != TQ_OK)
		return tq_ctx_fail(ctx, "usage: wordcount TEXT");

	int64_t words = 0;
	bool in_word = false;
	for (size_t i = 0; i < len; i++) {
		bool blank = isspace((unsigned char)text[i]);
		if (!blank && !in_word)
			words++;
		in_word = !blank;
	}
	return tq_pack_int(reply, words); /* the result: one value */
}

tq_err tq_plugin_init(tq_worker *w)
{
	return tq_worker_register(w, "wordcount", wordcount, NULL);
}
