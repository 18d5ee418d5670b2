/*
 * hmap.c - intrusive chained hash table, incremental rehash.
 *
 * Invariant: while tab[1] exists, buckets of tab[0] below rehash_idx are
 * empty and every node is in exactly one of the two tables; new nodes go to
 * tab[1].  Each operation moves up to STEP buckets.
 */
#include "base/hmap.h"

#include "base/rand.h"
#include "base/siphash.h"
#include "base/slab.h"

#include <stdlib.h>
#include <string.h>

enum { MIN_SIZE = TQI_HMAP_MIN_SIZE, STEP = 4 };

_Static_assert((MIN_SIZE & (MIN_SIZE - 1)) == 0, "bucket counts are powers of two");

void tqi_hmap_init(tqi_hmap *m, tqi_hmap_eq_fn eq)
{
	memset(m->small, 0, sizeof m->small);
	m->tab[0] = m->small;
	m->tab[1] = NULL;
	m->size[0] = MIN_SIZE;
	m->size[1] = 0;
	m->used[0] = m->used[1] = 0;
	m->rehash_idx = 0;
	m->iterating = 0;
	m->eq = eq;
	tqi_rand_os(m->key, sizeof m->key);
}

static void free_table(tqi_hmap *m, tqi_hnode **t)
{
	if (t != m->small)
		free(t);
}

void tqi_hmap_destroy(tqi_hmap *m)
{
	free_table(m, m->tab[0]);
	free_table(m, m->tab[1]);
	m->tab[0] = m->tab[1] = NULL;
	m->size[0] = m->size[1] = 0;
	m->used[0] = m->used[1] = 0;
}

size_t tqi_hmap_count(const tqi_hmap *m)
{
	return m->used[0] + m->used[1];
}

static int rehashing(const tqi_hmap *m)
{
	return m->tab[1] != NULL;
}

static void rehash_step(tqi_hmap *m)
{
	if (m->iterating)
		return;
	for (int i = 0; i < STEP && m->rehash_idx < m->size[0]; i++, m->rehash_idx++) {
		tqi_hnode *n = m->tab[0][m->rehash_idx];
		while (n != NULL) {
			tqi_hnode *next = n->next;
			size_t b = n->hash & (m->size[1] - 1);
			n->next = m->tab[1][b];
			m->tab[1][b] = n;
			m->used[0]--;
			m->used[1]++;
			n = next;
		}
		m->tab[0][m->rehash_idx] = NULL;
	}
	if (m->rehash_idx >= m->size[0]) {
		free_table(m, m->tab[0]);
		m->tab[0] = m->tab[1];
		m->size[0] = m->size[1];
		m->used[0] = m->used[1];
		m->tab[1] = NULL;
		m->size[1] = m->used[1] = 0;
		m->rehash_idx = 0;
	}
}

/* A zeroed table of size buckets.  One of 2 MiB or more (a quarter of a
 * million buckets) is read in no order, like a slab's records: it goes on
 * huge pages too (base/slab.h says why). */
static tqi_hnode **alloc_table(size_t size)
{
	if (size > SIZE_MAX / sizeof(tqi_hnode *))
		return NULL;
	size_t bytes = size * sizeof(tqi_hnode *);
	if (bytes < TQI_SLAB_CHUNK)
		return calloc(size, sizeof(tqi_hnode *));
	void *t = tqi_huge_alloc(bytes);
	if (t != NULL)
		memset(t, 0, bytes);
	return t;
}

static void start_resize(tqi_hmap *m, size_t size)
{
	/* Shrinking back to the smallest size reuses the inline table. */
	tqi_hnode **t = size == MIN_SIZE && m->tab[0] != m->small ? m->small : alloc_table(size);
	if (t == m->small)
		memset(m->small, 0, sizeof m->small);
	if (t == NULL)
		return; /* keep the old table; chains grow, nothing is lost */
	if (m->tab[0] == NULL) {
		m->tab[0] = t;
		m->size[0] = size;
		return;
	}
	m->tab[1] = t;
	m->size[1] = size;
	m->rehash_idx = 0;
}

static void maybe_resize(tqi_hmap *m)
{
	if (rehashing(m) || m->iterating)
		return;
	size_t used = m->used[0], size = m->size[0];
	if (size == 0)
		start_resize(m, MIN_SIZE);
	else if (used >= size / 2)
		start_resize(m, size * 2);
	else if (size > MIN_SIZE && used * 8 < size)
		start_resize(m, size / 2);
}

tqi_hnode *tqi_hmap_find(tqi_hmap *m, const void *key, size_t len)
{
	if (tqi_hmap_count(m) == 0)
		return NULL;
	if (rehashing(m))
		rehash_step(m);
	uint64_t h = tqi_siphash(m->key, key, len);
	for (int t = 0; t < 2; t++) {
		if (m->tab[t] == NULL)
			continue;
		for (tqi_hnode *n = m->tab[t][h & (m->size[t] - 1)]; n != NULL; n = n->next)
			if (n->hash == h && m->eq(n, key, len))
				return n;
	}
	return NULL;
}

void tqi_hmap_prefetch(const tqi_hmap *m, const void *key, size_t len)
{
	/* Below this (256 KiB of buckets) the table stays in the caches and
	 * the hash would cost more than the miss it hides. */
	enum { BIG = 32768 };
	if (m->size[0] + m->size[1] < BIG)
		return;
	uint64_t h = tqi_siphash(m->key, key, len);
	for (int t = 0; t < 2; t++)
		if (m->tab[t] != NULL)
			__builtin_prefetch(&m->tab[t][h & (m->size[t] - 1)]);
}

void tqi_hmap_insert(tqi_hmap *m, tqi_hnode *n, const void *key, size_t len)
{
	if (rehashing(m))
		rehash_step(m);
	maybe_resize(m);
	n->hash = tqi_siphash(m->key, key, len);
	int t = rehashing(m) ? 1 : 0;
	size_t b = n->hash & (m->size[t] - 1);
	n->next = m->tab[t][b];
	m->tab[t][b] = n;
	m->used[t]++;
}

void tqi_hmap_remove(tqi_hmap *m, tqi_hnode *n)
{
	for (int t = 0; t < 2; t++) {
		if (m->tab[t] == NULL)
			continue;
		tqi_hnode **pp = &m->tab[t][n->hash & (m->size[t] - 1)];
		for (; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == n) {
				*pp = n->next;
				n->next = NULL;
				m->used[t]--;
				if (rehashing(m))
					rehash_step(m);
				else
					maybe_resize(m);
				return;
			}
		}
	}
}

void tqi_hmap_foreach(tqi_hmap *m, void (*fn)(tqi_hnode *n, void *arg), void *arg)
{
	while (rehashing(m))
		rehash_step(m);
	m->iterating++; /* removals inside fn must not move nodes under us */
	for (size_t b = 0; b < m->size[0]; b++) {
		tqi_hnode *n = m->tab[0][b];
		while (n != NULL) {
			tqi_hnode *next = n->next;
			fn(n, arg);
			n = next;
		}
	}
	m->iterating--;
	maybe_resize(m);
}
