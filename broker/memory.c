/*
 * memory.c - the broker's byte budget: what it holds for tasks (records
 * and arguments) and for peers (replies and commands waiting in outboxes),
 * in total (--max-memory) and per client (--max-client-memory).
 *
 * Invariant: b->mem.held is the sum of the cost of every task in the table
 * and the bytes of every outbox; each client's account holds the cost of
 * the tasks it submitted (owned or detached) and of its own outbox.  An
 * account outlives its client while a detached task it submitted lives, so
 * that a client cannot free its share by leaving its tasks behind.  Both
 * bounds are checked before anything is taken: a SUBMIT past either is
 * refused with TQ_EBUSY, and a reply past them cuts its reader off
 * (outbox.c), so the budget holds whatever peers send.
 *
 * What ZeroMQ itself holds for a peer is outside the count and bounded
 * apart: its send pipe by the socket's high-water mark (broker.c), its
 * receive pipe by the loop reading as fast as libzmq's thread writes.
 */
#include "broker/broker.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

/* A task's record, its share of the task table (two buckets) and of its
 * lists, beyond its arguments. */
#define TASK_OVERHEAD (sizeof(btask) + 4 * sizeof(void *))

/* malloc_trim runs when this much was freed since the peak. */
#define TRIM_AFTER ((uint64_t)32 << 20)

bacct *tqi_acct_new(void)
{
	bacct *a = calloc(1, sizeof *a);
	if (a != NULL)
		a->refs = 1;
	return a;
}

bacct *tqi_acct_get(bacct *a)
{
	a->refs++;
	return a;
}

void tqi_acct_put(bacct **ap)
{
	bacct *a = *ap;
	*ap = NULL;
	if (a != NULL && --a->refs == 0)
		free(a);
}

uint64_t tqi_task_cost(size_t args_len)
{
	return TASK_OVERHEAD + args_len;
}

tq_err tqi_budget_admit(const tqi_broker *b, const bacct *a, uint64_t bytes, char *why,
                        size_t whylen)
{
	if (a != NULL && a->bytes + bytes > b->opts.max_client_memory) {
		snprintf(why, whylen,
		         "this client's share of the broker's memory is full (%llu of %llu bytes "
		         "held)",
		         (unsigned long long)a->bytes,
		         (unsigned long long)b->opts.max_client_memory);
		return TQ_EBUSY;
	}
	if (b->mem.held + bytes > b->opts.max_memory) {
		snprintf(why, whylen,
		         "the broker's memory budget is full (%llu of %llu bytes held)",
		         (unsigned long long)b->mem.held, (unsigned long long)b->opts.max_memory);
		return TQ_EBUSY;
	}
	return TQ_OK;
}

void tqi_budget_charge(tqi_broker *b, bacct *a, uint64_t bytes)
{
	b->mem.held += bytes;
	if (b->mem.held > b->mem.peak)
		b->mem.peak = b->mem.held;
	if (a != NULL)
		a->bytes += bytes;
}

void tqi_budget_release(tqi_broker *b, bacct *a, uint64_t bytes)
{
	b->mem.held -= bytes;
	if (a != NULL)
		a->bytes -= bytes;
}

void tqi_memory_tick(tqi_broker *b)
{
	if (b->mem.peak - b->mem.held < TRIM_AFTER)
		return;
	/* After a burst, the freed arguments and replies lie in malloc's
	 * arenas (libzmq's I/O thread allocated most of them, in its own):
	 * give the free pages back to the system. */
	malloc_trim(0);
	b->mem.peak = b->mem.held;
}
