/*
 * fib_worker.c - a worker program of your own, serving `fib N`.
 *
 *     TQ_BROKER=tcp://HOST:5556 ./fib_worker      # the broker's worker endpoint
 *     TQ_BROKER=tcp://HOST:5555 tq call fib 90    # 2880067194370816120
 *
 * tq_worker_run connects to the broker and serves until tq_worker_stop:
 * here on SIGTERM or Ctrl-C, which let the task in hand finish first (a
 * second signal stops at once).
 */
#include <tq/tq.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static tq_worker *worker;

static void on_signal(int sig)
{
	(void)sig;
	tq_worker_stop(worker); /* safe in a signal handler */
}

/* fib N: the Nth Fibonacci number, for N from 0 to 93 (it fits 64 bits). */
static tq_err fib(tq_reader *args, tq_buf *reply, tq_ctx *ctx)
{
	uint32_t n;
	int64_t k;
	if (tq_read_array(args, &n) != TQ_OK || n != 1 || tq_read_int(args, &k) != TQ_OK)
		return tq_ctx_fail(ctx, "usage: fib N");
	if (k < 0 || k > 93)
		return tq_ctx_fail(ctx, "fib: N must be 0..93, not %lld", (long long)k);
	uint64_t a = 0, b = 1;
	for (int64_t i = 0; i < k; i++) {
		uint64_t next = a + b;
		a = b;
		b = next;
	}
	return tq_pack_uint(reply, a);
}

int main(void)
{
	/* Defaults: the broker from $TQ_BROKER, one executor per core. */
	tq_worker_opts o = { .name = "fib-worker" };
	if (tq_worker_new(&worker, &o) != TQ_OK ||
	    tq_worker_register(worker, "fib", fib, NULL) != TQ_OK)
		return 1;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	tq_err e = tq_worker_run(worker); /* serves until stopped */
	if (e != TQ_OK)
		fprintf(stderr, "fib_worker: %s\n", tq_strerror(e));
	tq_worker_destroy(&worker);
	return e == TQ_OK ? 0 : 1;
}
