/*
 * heap.h - an intrusive binary min-heap of timers (deadlines).
 *
 * Each object embeds a tqi_heap_node holding its key (an absolute monotonic
 * time in ms) and its index in the heap, so removal of an arbitrary timer
 * (a task that finished before its deadline) is O(log n) with no search.
 */
#ifndef TQI_HEAP_H
#define TQI_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define TQI_HEAP_NONE ((uint32_t)-1)

typedef struct {
	uint64_t key; /* absolute deadline, ms on the monotonic clock */
	uint32_t idx; /* position in the heap; TQI_HEAP_NONE when not in it */
} tqi_heap_node;

typedef struct {
	tqi_heap_node **v;
	uint32_t len, cap;
} tqi_heap;

void tqi_heap_init(tqi_heap *h);
void tqi_heap_destroy(tqi_heap *h);

static inline void tqi_heap_node_init(tqi_heap_node *n)
{
	n->idx = TQI_HEAP_NONE;
}

static inline int tqi_heap_node_queued(const tqi_heap_node *n)
{
	return n->idx != TQI_HEAP_NONE;
}

/* Adds n with n->key set; returns 0, or -1 when memory runs out (n is then
 * not in the heap). */
int tqi_heap_push(tqi_heap *h, tqi_heap_node *n);

/* Removes n if it is in the heap. */
void tqi_heap_remove(tqi_heap *h, tqi_heap_node *n);

/* The node with the smallest key, or NULL. */
static inline tqi_heap_node *tqi_heap_top(const tqi_heap *h)
{
	return h->len ? h->v[0] : NULL;
}

#endif
