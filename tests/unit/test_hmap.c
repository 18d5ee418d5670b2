/*
 * test_hmap.c - the intrusive hash map: 100k nodes inserted, found and
 * removed while the table grows and shrinks with a rehash in progress,
 * against a plain array as the reference, and foreach removing the node it
 * visits; 400k nodes, so that the table passes 2 MiB of buckets and is
 * taken from huge pages (a zeroed table all the same).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/hmap.h"
#include "base/list.h"
#include "base/rand.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { N = 100000 };

typedef struct {
	tqi_hnode node;
	uint64_t key;
	bool in;    /* the reference: is it in the map? */
	int visits; /* foreach */
} item;

typedef struct {
	tqi_hmap map;
	item *items;
	tqi_rand rng;
} fixture;

static int eq(const tqi_hnode *n, const void *key, size_t len)
{
	const item *it = tqi_container_of(n, item, node);
	return len == sizeof it->key && memcmp(&it->key, key, len) == 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	f->items = calloc(N, sizeof *f->items);
	if (f->items == NULL) {
		free(f);
		return -1;
	}
	for (uint64_t i = 0; i < N; i++)
		f->items[i].key = i * 0x9e3779b97f4a7c15ULL; /* distinct */
	f->rng = (tqi_rand){ { 1, 2, 3, 4 } };               /* a fixed sequence */
	tqi_hmap_init(&f->map, eq);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tqi_hmap_destroy(&f->map);
	free(f->items);
	free(f);
	return 0;
}

static item *find(fixture *f, uint64_t key)
{
	tqi_hnode *n = tqi_hmap_find(&f->map, &key, sizeof key);
	return n ? tqi_container_of(n, item, node) : NULL;
}

static void insert(fixture *f, item *it)
{
	tqi_hmap_insert(&f->map, &it->node, &it->key, sizeof it->key);
	it->in = true;
}

static void remove_item(fixture *f, item *it)
{
	tqi_hmap_remove(&f->map, &it->node);
	it->in = false;
}

static size_t reference_count(const fixture *f)
{
	size_t c = 0;
	for (size_t i = 0; i < N; i++)
		c += f->items[i].in;
	return c;
}

static void check_all(fixture *f)
{
	for (size_t i = 0; i < N; i++) {
		item *got = find(f, f->items[i].key);
		if (f->items[i].in)
			assert_ptr_equal(got, &f->items[i]);
		else
			assert_null(got);
	}
	assert_int_equal(tqi_hmap_count(&f->map), reference_count(f));
}

static bool rehashing(const fixture *f)
{
	return f->map.tab[1] != NULL;
}

static bool growing(const fixture *f)
{
	return rehashing(f) && f->map.size[1] > f->map.size[0];
}

static bool shrinking(const fixture *f)
{
	return rehashing(f) && f->map.size[1] < f->map.size[0];
}

static void test_grow_and_shrink(void **state)
{
	fixture *f = *state;
	size_t rehash_seen = 0, peak = 0;
	/* grow: every insert is findable at once, even mid-rehash */
	for (size_t i = 0; i < N; i++) {
		insert(f, &f->items[i]);
		rehash_seen += growing(f);
		assert_ptr_equal(find(f, f->items[i].key), &f->items[i]);
		size_t j = (size_t)(tqi_rand_u64(&f->rng) % (i + 1));
		assert_ptr_equal(find(f, f->items[j].key), &f->items[j]);
		uint64_t absent = f->items[i].key + 1;
		assert_null(find(f, absent));
		assert_int_equal(tqi_hmap_count(&f->map), i + 1);
		if (f->map.size[0] > peak)
			peak = f->map.size[0];
	}
	assert_true(rehash_seen > 0);
	assert_true(peak >= N / 2);
	check_all(f);

	/* shrink: remove in a random order */
	size_t *order = malloc(N * sizeof *order);
	assert_non_null(order);
	for (size_t i = 0; i < N; i++)
		order[i] = i;
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = (size_t)(tqi_rand_u64(&f->rng) % (i + 1));
		size_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	rehash_seen = 0;
	for (size_t k = 0; k < N; k++) {
		item *it = &f->items[order[k]];
		assert_ptr_equal(find(f, it->key), it);
		remove_item(f, it);
		rehash_seen += shrinking(f);
		assert_null(find(f, it->key));
		if (k + 1 < N) {
			item *other = &f->items[order[k + 1 + tqi_rand_u64(&f->rng) % (N - k - 1)]];
			assert_ptr_equal(find(f, other->key), other);
		}
		assert_int_equal(tqi_hmap_count(&f->map), N - k - 1);
		if (k == N / 2)
			check_all(f);
	}
	free(order);
	assert_true(rehash_seen > 0);
	assert_int_equal(tqi_hmap_count(&f->map), 0);

	/* a few more operations finish the shrinking: back on the inline
	 * table of TQI_HMAP_MIN_SIZE buckets, which is never freed */
	for (int i = 0; i < 1000 && (rehashing(f) || f->map.size[0] > TQI_HMAP_MIN_SIZE); i++) {
		insert(f, &f->items[0]);
		remove_item(f, &f->items[0]);
	}
	assert_false(rehashing(f));
	assert_int_equal(f->map.size[0], TQI_HMAP_MIN_SIZE);
	assert_ptr_equal(f->map.tab[0], f->map.small);
	assert_int_equal(sizeof f->map.small / sizeof f->map.small[0], TQI_HMAP_MIN_SIZE);
	insert(f, &f->items[1]);
	assert_ptr_equal(find(f, f->items[1].key), &f->items[1]);
}

/* Inserts and removes interleaved at random, so that growth and shrinkage
 * start while another rehash may be in progress. */
static void test_random_churn(void **state)
{
	fixture *f = *state;
	size_t in = 0, grow_seen = 0, shrink_seen = 0;
	enum { PHASE = 3 * N };
	for (size_t op = 0; op < 4 * PHASE; op++) {
		/* phases: mostly inserting, then mostly removing, twice */
		size_t phase = op / PHASE;
		bool grow = phase % 2 == 0;
		uint64_t r = tqi_rand_u64(&f->rng);
		item *it = &f->items[(r >> 8) % N];
		bool want_insert = (r & 0xff) < (grow ? 248u : 8u);
		if (want_insert && !it->in) {
			insert(f, it);
			in++;
		} else if (!want_insert && it->in) {
			remove_item(f, it);
			in--;
		}
		grow_seen += growing(f);
		shrink_seen += shrinking(f);
		assert_ptr_equal(find(f, it->key), it->in ? it : NULL);
		assert_int_equal(tqi_hmap_count(&f->map), in);
		if (op % PHASE == PHASE - 1)
			check_all(f);
	}
	assert_true(grow_seen > 0);
	assert_true(shrink_seen > 0);
}

typedef struct {
	fixture *f;
	size_t visited;
	int remove_mod; /* remove nodes whose index % remove_mod == 0 */
} walk;

static void visit(tqi_hnode *n, void *arg)
{
	walk *w = arg;
	item *it = tqi_container_of(n, item, node);
	it->visits++;
	w->visited++;
	size_t idx = (size_t)(it - w->f->items);
	if (idx % (size_t)w->remove_mod == 0)
		remove_item(w->f, it);
}

static void test_foreach_removing_visited(void **state)
{
	fixture *f = *state;
	enum { M = 20000 };
	/* stop while a rehash is in progress, to check foreach finishes it */
	size_t n = 0;
	while (n < M || !rehashing(f))
		insert(f, &f->items[n++]);
	walk w = { f, 0, 3 };
	tqi_hmap_foreach(&f->map, visit, &w);
	assert_int_equal(w.visited, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(f->items[i].visits, 1);
	check_all(f);
	assert_int_equal(tqi_hmap_count(&f->map), n - (n + 2) / 3);

	/* remove everything that is left, one visit each */
	for (size_t i = 0; i < n; i++)
		f->items[i].visits = 0;
	w = (walk){ f, 0, 1 };
	tqi_hmap_foreach(&f->map, visit, &w);
	assert_int_equal(w.visited, n - (n + 2) / 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(f->items[i].visits, i % 3 == 0 ? 0 : 1);
	assert_int_equal(tqi_hmap_count(&f->map), 0);
	check_all(f);

	/* the map is usable afterwards */
	insert(f, &f->items[0]);
	assert_ptr_equal(find(f, f->items[0].key), &f->items[0]);
	walk none = { f, 0, 1 << 30 };
	tqi_hmap_foreach(&f->map, visit, &none);
	assert_int_equal(none.visited, 1);
}

static void test_empty_map(void **state)
{
	fixture *f = *state;
	uint64_t k = 7;
	assert_null(tqi_hmap_find(&f->map, &k, sizeof k));
	assert_int_equal(tqi_hmap_count(&f->map), 0);
	walk w = { f, 0, 1 };
	tqi_hmap_foreach(&f->map, visit, &w);
	assert_int_equal(w.visited, 0);
	/* keys of other lengths do not match */
	insert(f, &f->items[1]);
	assert_null(tqi_hmap_find(&f->map, &f->items[1].key, 4));
	assert_non_null(tqi_hmap_find(&f->map, &f->items[1].key, 8));
}

/* 400,000 nodes: the table grows to 1,048,576 buckets (8 MiB; it keeps
 * at least two buckets a node, so that chains stay short), past the size
 * that comes from huge pages; every node is found, then removed.  A
 * prefetch - of a node there, or not, mid-rehash or not - is only a hint. */
static void test_big_table(void **state)
{
	(void)state;
	enum { BIG = 400000 };
	item *items = calloc(BIG, sizeof *items);
	assert_non_null(items);
	tqi_hmap m;
	tqi_hmap_init(&m, eq);
	for (uint64_t i = 0; i < BIG; i++) {
		items[i].key = i * 0x9e3779b97f4a7c15ULL;
		tqi_hmap_prefetch(&m, &items[i].key, sizeof items[i].key);
		tqi_hmap_insert(&m, &items[i].node, &items[i].key, sizeof items[i].key);
		tqi_hmap_prefetch(&m, &items[i / 2].key, sizeof items[i].key);
	}
	assert_int_equal(tqi_hmap_count(&m), BIG);
	while (m.tab[1] != NULL) /* a finished rehash */
		assert_null(tqi_hmap_find(&m, &(uint64_t){ 1 }, sizeof(uint64_t)));
	assert_int_equal(m.size[0], 1048576);
	for (uint64_t i = 0; i < BIG; i++)
		assert_ptr_equal(tqi_hmap_find(&m, &items[i].key, sizeof items[i].key),
		                 &items[i].node);
	uint64_t absent = 12345;
	assert_null(tqi_hmap_find(&m, &absent, sizeof absent));
	for (uint64_t i = 0; i < BIG; i++)
		tqi_hmap_remove(&m, &items[i].node);
	assert_int_equal(tqi_hmap_count(&m), 0);
	tqi_hmap_destroy(&m);
	free(items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grow_and_shrink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_removing_visited, setup, teardown),
		cmocka_unit_test(test_big_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
