/*
 * tickets.h - the ticket board: who may run a task that sits in an
 * executor's pipe, and where a small result comes back.
 *
 * An executor holds up to TQI_EXEC_DEPTH tasks at once - one running, the
 * others written into its socket ahead of time, so that a stream of short
 * tasks costs no process wake-up each.  Each held task has a ticket in
 * memory shared by the worker's loop and every executor (mapped before the
 * zygote is forked).  The executor claims a ticket (QUEUED -> RUNNING) just
 * before it runs the task; the loop may withdraw one (QUEUED -> WITHDRAWN)
 * to cancel the task, expire it, or give it to an idle executor instead.
 * One compare-and-swap decides who wins, so a withdrawn task never runs and
 * a running one is never handed out twice.
 *
 * The ticket is also the way back.  A result that fits in it (text and
 * payload, TQI_TICKET_DATA bytes) is written into it and the ticket is set
 * DONE; a withdrawn task the executor passed over is set SKIPPED.  No
 * system call, no wake-up: the loop collects DONE and SKIPPED tickets, in
 * pipe order, each turn.  Since the memory is shared, a result written
 * there is not lost if the executor dies right after (an executor that
 * gathered results in its own memory would lose finished tasks with it).  A
 * bigger result goes through the socket and the ticket stays RUNNING.
 *
 * Bells: so that a loop about to sleep learns of a result, it arms its
 * executors' bells first and then looks at their tickets once more; an
 * executor that finds its bell armed after publishing a ticket disarms it
 * and writes a one-byte frame to its socket, which wakes the loop.  With
 * every access sequentially consistent, either the loop sees the ticket or
 * the executor sees the bell (the store-load pairs of Dekker's algorithm),
 * so no result sleeps unseen; while the loop is busy, no bell is rung.
 */
#ifndef TQI_TICKETS_H
#define TQI_TICKETS_H

#include <stdbool.h>
#include <stdint.h>

#define TQI_EXEC_DEPTH 64
#define TQI_TICKET_DATA 236 /* result bytes a ticket holds: its size is 256 */

enum {
	TQI_TICKET_FREE = 0,
	TQI_TICKET_QUEUED,
	TQI_TICKET_RUNNING,
	TQI_TICKET_WITHDRAWN,
	TQI_TICKET_DONE,   /* the result is in the ticket */
	TQI_TICKET_SKIPPED /* withdrawn, and the executor has passed it */
};

/* One ticket.  state is accessed atomically; the other fields are
 * written by the executor before it sets DONE and read by the loop after
 * it sees DONE. */
typedef struct {
	uint32_t state;
	uint32_t code;     /* DONE: the task's outcome */
	uint32_t run_us;   /* DONE: the executor's time on it */
	uint32_t text_len; /* DONE: data holds the text, then the payload */
	uint32_t len;      /* DONE: bytes of data used */
	uint8_t data[TQI_TICKET_DATA];
} tqi_ticket;

typedef struct {
	tqi_ticket *v; /* shared: MAP_SHARED | MAP_ANONYMOUS */
	uint32_t n;
	uint32_t *bells; /* one per executor, shared too */
	uint32_t nbells;
} tqi_tickets;

/* Maps n tickets, all FREE, and nbells bells, all disarmed.  0, or -1
 * with errno set. */
int tqi_tickets_map(tqi_tickets *b, uint32_t n, uint32_t nbells);
void tqi_tickets_unmap(tqi_tickets *b);

static inline uint32_t tqi_ticket_get(const tqi_tickets *b, uint32_t i)
{
	return __atomic_load_n(&b->v[i].state, __ATOMIC_SEQ_CST);
}

static inline void tqi_ticket_set(tqi_tickets *b, uint32_t i, uint32_t state)
{
	__atomic_store_n(&b->v[i].state, state, __ATOMIC_SEQ_CST);
}

/* Moves ticket i from `from` to `to`; false if it was not in `from`. */
static inline bool tqi_ticket_move(tqi_tickets *b, uint32_t i, uint32_t from, uint32_t to)
{
	return __atomic_compare_exchange_n(&b->v[i].state, &from, to, false, __ATOMIC_SEQ_CST,
	                                   __ATOMIC_SEQ_CST);
}

static inline void tqi_bell_arm(tqi_tickets *b, uint32_t ex, bool armed)
{
	__atomic_store_n(&b->bells[ex], armed ? 1u : 0u, __ATOMIC_SEQ_CST);
}

/* Disarms executor ex's bell; true when it was armed (ring it). */
static inline bool tqi_bell_take(tqi_tickets *b, uint32_t ex)
{
	return __atomic_exchange_n(&b->bells[ex], 0u, __ATOMIC_SEQ_CST) != 0;
}

#endif
