/* heap.c - binary min-heap; invariant: v[i]->idx == i and no child's key is
 * smaller than its parent's. */
#include "base/heap.h"

#include <stdlib.h>

void tqi_heap_init(tqi_heap *h)
{
	h->v = NULL;
	h->len = h->cap = 0;
}

void tqi_heap_destroy(tqi_heap *h)
{
	for (uint32_t i = 0; i < h->len; i++)
		h->v[i]->idx = TQI_HEAP_NONE;
	free(h->v);
	tqi_heap_init(h);
}

static void place(tqi_heap *h, uint32_t i, tqi_heap_node *n)
{
	h->v[i] = n;
	n->idx = i;
}

static void sift_up(tqi_heap *h, uint32_t i)
{
	tqi_heap_node *n = h->v[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (h->v[parent]->key <= n->key)
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, n);
}

static void sift_down(tqi_heap *h, uint32_t i)
{
	tqi_heap_node *n = h->v[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= h->len)
			break;
		if (c + 1 < h->len && h->v[c + 1]->key < h->v[c]->key)
			c++;
		if (n->key <= h->v[c]->key)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, n);
}

int tqi_heap_push(tqi_heap *h, tqi_heap_node *n)
{
	if (h->len == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		tqi_heap_node **v = realloc(h->v, (size_t)cap * sizeof *v);
		if (v == NULL)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	place(h, h->len++, n);
	sift_up(h, n->idx);
	return 0;
}

void tqi_heap_remove(tqi_heap *h, tqi_heap_node *n)
{
	uint32_t i = n->idx;
	if (i == TQI_HEAP_NONE || i >= h->len || h->v[i] != n)
		return;
	n->idx = TQI_HEAP_NONE;
	h->len--;
	if (i == h->len)
		return;
	place(h, i, h->v[h->len]);
	sift_down(h, i);
	sift_up(h, h->v[i]->idx);
}
