/*
 * list.h - intrusive circular doubly-linked lists.
 *
 * A node lives inside the object it links, so insertion and removal are
 * O(1) and allocate nothing; an object can sit in several lists through
 * several nodes.  A detached node points to itself, so tqi_list_remove is
 * safe to call twice and tqi_node_linked tells whether a node is in a list.
 */
#ifndef TQI_LIST_H
#define TQI_LIST_H

#include <stddef.h>

typedef struct tqi_node {
	struct tqi_node *next, *prev;
} tqi_node;

typedef struct {
	tqi_node head;
	size_t len;
} tqi_list;

#define tqi_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void tqi_node_init(tqi_node *n)
{
	n->next = n->prev = n;
}

static inline int tqi_node_linked(const tqi_node *n)
{
	return n->next != n;
}

static inline void tqi_list_init(tqi_list *l)
{
	tqi_node_init(&l->head);
	l->len = 0;
}

static inline int tqi_list_empty(const tqi_list *l)
{
	return l->head.next == &l->head;
}

static inline void tqi_list_insert_before_(tqi_node *at, tqi_node *n)
{
	n->prev = at->prev;
	n->next = at;
	at->prev->next = n;
	at->prev = n;
}

static inline void tqi_list_push_back(tqi_list *l, tqi_node *n)
{
	tqi_list_insert_before_(&l->head, n);
	l->len++;
}

static inline void tqi_list_push_front(tqi_list *l, tqi_node *n)
{
	tqi_list_insert_before_(l->head.next, n);
	l->len++;
}

/* Removes n from l; n must be in l or detached. */
static inline void tqi_list_remove(tqi_list *l, tqi_node *n)
{
	if (!tqi_node_linked(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	tqi_node_init(n);
	l->len--;
}

static inline tqi_node *tqi_list_front(const tqi_list *l)
{
	return tqi_list_empty(l) ? NULL : l->head.next;
}

static inline tqi_node *tqi_list_pop_front(tqi_list *l)
{
	tqi_node *n = tqi_list_front(l);
	if (n != NULL)
		tqi_list_remove(l, n);
	return n;
}

/* Moves n (already in l) to the back of l. */
static inline void tqi_list_move_back(tqi_list *l, tqi_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	tqi_list_insert_before_(&l->head, n);
}

/* Iterates safely against removal of the current node. */
#define tqi_list_each(l, it, nx)                                           \
	for ((it) = (l)->head.next, (nx) = (it)->next; (it) != &(l)->head; \
	     (it) = (nx), (nx) = (it)->next)

#endif
