/*
 * tickets.h - the ticket board: who may run a task that sits in an
 * executor's pipe.
 *
 * An executor holds up to TQI_EXEC_DEPTH tasks at once - one running, the
 * others written into its socket ahead of time, so that a stream of short
 * tasks costs no process wake-up each.  Each held task has a ticket, one
 * word in memory shared by the worker's loop and every executor (mapped
 * before the zygote is forked).  The executor claims a ticket
 * (QUEUED -> RUNNING) just before it runs the task; the loop may withdraw
 * one (QUEUED -> WITHDRAWN) to cancel the task, expire it, or give it to an
 * idle executor instead.  One compare-and-swap decides who wins, so a
 * withdrawn task never runs and a running one is never handed out twice.
 */
#ifndef TQI_TICKETS_H
#define TQI_TICKETS_H

#include <stdbool.h>
#include <stdint.h>

#define TQI_EXEC_DEPTH 64

enum { TQI_TICKET_FREE = 0, TQI_TICKET_QUEUED, TQI_TICKET_RUNNING, TQI_TICKET_WITHDRAWN };

typedef struct {
	uint32_t *v; /* shared: MAP_SHARED | MAP_ANONYMOUS */
	uint32_t n;
} tqi_tickets;

/* Maps n tickets, all FREE.  0, or -1 with errno set. */
int tqi_tickets_map(tqi_tickets *b, uint32_t n);
void tqi_tickets_unmap(tqi_tickets *b);

static inline uint32_t tqi_ticket_get(const tqi_tickets *b, uint32_t i)
{
	return __atomic_load_n(&b->v[i], __ATOMIC_SEQ_CST);
}

static inline void tqi_ticket_set(tqi_tickets *b, uint32_t i, uint32_t state)
{
	__atomic_store_n(&b->v[i], state, __ATOMIC_SEQ_CST);
}

/* Moves ticket i from `from` to `to`; false if it was not in `from`. */
static inline bool tqi_ticket_move(tqi_tickets *b, uint32_t i, uint32_t from, uint32_t to)
{
	return __atomic_compare_exchange_n(&b->v[i], &from, to, false, __ATOMIC_SEQ_CST,
	                                   __ATOMIC_SEQ_CST);
}

#endif
