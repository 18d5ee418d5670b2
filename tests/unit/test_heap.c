/*
 * test_heap.c - the intrusive timer heap: random pushes, removals of
 * arbitrary nodes and pops, checked against a sorted array of the keys that
 * should be queued, with the heap's own invariant checked as it goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/heap.h"
#include "base/rand.h"

#include <stdlib.h>
#include <string.h>

enum { N = 5000 };

/* The reference: the queued keys, kept sorted. */
typedef struct {
	uint64_t *keys;
	size_t n;
} sorted;

static size_t lower_bound(const sorted *s, uint64_t k)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->keys[mid] < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void sorted_add(sorted *s, uint64_t k)
{
	size_t i = lower_bound(s, k);
	memmove(s->keys + i + 1, s->keys + i, (s->n - i) * sizeof *s->keys);
	s->keys[i] = k;
	s->n++;
}

static void sorted_del(sorted *s, uint64_t k)
{
	size_t i = lower_bound(s, k);
	assert_true(i < s->n && s->keys[i] == k);
	memmove(s->keys + i, s->keys + i + 1, (s->n - i - 1) * sizeof *s->keys);
	s->n--;
}

static void check_invariant(const tqi_heap *h)
{
	for (uint32_t i = 0; i < h->len; i++) {
		assert_int_equal(h->v[i]->idx, i);
		if (i > 0)
			assert_true(h->v[(i - 1) / 2]->key <= h->v[i]->key);
	}
}

static tqi_heap_node *pop(tqi_heap *h)
{
	tqi_heap_node *n = tqi_heap_top(h);
	if (n != NULL)
		tqi_heap_remove(h, n);
	return n;
}

static void test_random_against_sorted(void **state)
{
	(void)state;
	tqi_heap h;
	tqi_heap_init(&h);
	tqi_heap_node *nodes = calloc(N, sizeof *nodes);
	sorted ref = { calloc(N, sizeof(uint64_t)), 0 };
	assert_non_null(nodes);
	assert_non_null(ref.keys);
	for (size_t i = 0; i < N; i++)
		tqi_heap_node_init(&nodes[i]);
	tqi_rand rng = { { 5, 6, 7, 8 } };
	size_t pops = 0, removes = 0, pushes = 0;
	for (int op = 0; op < 40 * N; op++) {
		uint64_t r = tqi_rand_u64(&rng);
		tqi_heap_node *n = &nodes[(r >> 16) % N];
		switch (r % 8) {
		case 0:
		case 1:
		case 2:
		case 3: /* push, with many equal keys */
			if (!tqi_heap_node_queued(n)) {
				n->key = (r >> 40) % 1000;
				assert_int_equal(tqi_heap_push(&h, n), 0);
				sorted_add(&ref, n->key);
				pushes++;
			}
			break;
		case 4:
		case 5: /* remove an arbitrary node, queued or not */
			if (tqi_heap_node_queued(n)) {
				sorted_del(&ref, n->key);
				removes++;
			}
			tqi_heap_remove(&h, n);
			assert_false(tqi_heap_node_queued(n));
			break;
		default: { /* pop the earliest */
			tqi_heap_node *top = pop(&h);
			if (ref.n == 0) {
				assert_null(top);
			} else {
				assert_non_null(top);
				assert_true(top->key == ref.keys[0]);
				assert_false(tqi_heap_node_queued(top));
				sorted_del(&ref, top->key);
				pops++;
			}
			break;
		}
		}
		assert_int_equal(h.len, ref.n);
		if (op % 1000 == 0)
			check_invariant(&h);
	}
	assert_true(pushes > N && removes > N / 2 && pops > N / 2);
	/* drain: the keys come out in order */
	check_invariant(&h);
	size_t i = 0;
	for (tqi_heap_node *n; (n = pop(&h)) != NULL; i++)
		assert_true(n->key == ref.keys[i]);
	assert_int_equal(i, ref.n);
	tqi_heap_destroy(&h);
	free(ref.keys);
	free(nodes);
}

static void test_remove_positions(void **state)
{
	(void)state;
	/* removing the root, a leaf, the last node and an inner node, where
	 * the node moved into the hole must go up rather than down */
	static const uint64_t keys[] = { 1, 50, 2, 60, 70, 3, 4, 61, 62, 71, 72, 5, 6, 7, 8 };
	enum { K = sizeof keys / sizeof keys[0] };
	for (size_t victim = 0; victim < K; victim++) {
		tqi_heap h;
		tqi_heap_node nodes[K];
		tqi_heap_init(&h);
		for (size_t i = 0; i < K; i++) {
			tqi_heap_node_init(&nodes[i]);
			nodes[i].key = keys[i];
			assert_int_equal(tqi_heap_push(&h, &nodes[i]), 0);
		}
		check_invariant(&h);
		tqi_heap_remove(&h, &nodes[victim]);
		assert_false(tqi_heap_node_queued(&nodes[victim]));
		tqi_heap_remove(&h, &nodes[victim]); /* twice is harmless */
		check_invariant(&h);
		assert_int_equal(h.len, K - 1);
		uint64_t last = 0;
		for (tqi_heap_node *n; (n = pop(&h)) != NULL;) {
			assert_ptr_not_equal(n, &nodes[victim]);
			assert_true(n->key >= last);
			last = n->key;
		}
		tqi_heap_destroy(&h);
	}
}

static void test_destroy_unqueues(void **state)
{
	(void)state;
	tqi_heap h;
	tqi_heap_node a, b, c;
	tqi_heap_init(&h);
	assert_null(tqi_heap_top(&h));
	tqi_heap_node_init(&a);
	tqi_heap_node_init(&b);
	tqi_heap_node_init(&c);
	a.key = 3;
	b.key = 1;
	c.key = 2;
	tqi_heap_push(&h, &a);
	tqi_heap_push(&h, &b);
	tqi_heap_push(&h, &c);
	assert_ptr_equal(tqi_heap_top(&h), &b);
	/* a node that is not in this heap is left alone */
	tqi_heap other;
	tqi_heap_init(&other);
	tqi_heap_remove(&other, &a);
	assert_true(tqi_heap_node_queued(&a));
	tqi_heap_destroy(&h);
	assert_false(tqi_heap_node_queued(&a));
	assert_false(tqi_heap_node_queued(&b));
	assert_false(tqi_heap_node_queued(&c));
	assert_int_equal(h.len, 0);
	tqi_heap_destroy(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_sorted),
		cmocka_unit_test(test_remove_positions),
		cmocka_unit_test(test_destroy_unqueues),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
