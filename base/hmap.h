/*
 * hmap.h - an intrusive hash table with incremental rehashing.
 *
 * The node lives in the object; the object holds its own key.  Lookups
 * compare keys through the eq callback.  Growing and shrinking move a few
 * buckets per operation from the old table to the new one (as Redis's dict
 * does), so no single insert pays for rehashing a million entries: every
 * operation is O(1), which keeps the broker's loop free of pauses.
 *
 * Hashes are keyed SipHash with a per-table random key, so keys chosen by a
 * remote peer cannot be made to collide.
 */
#ifndef TQI_HMAP_H
#define TQI_HMAP_H

#include <stddef.h>
#include <stdint.h>

/* Buckets of the smallest table, which lives inside the map (a power of
 * two): a map never shrinks below it, and an empty map allocates nothing. */
#define TQI_HMAP_MIN_SIZE 16

typedef struct tqi_hnode {
	struct tqi_hnode *next;
	uint64_t hash;
} tqi_hnode;

/* Returns non-zero when node n has the key (key, len). */
typedef int (*tqi_hmap_eq_fn)(const tqi_hnode *n, const void *key, size_t len);

typedef struct {
	tqi_hnode **tab[2];
	size_t size[2]; /* buckets; a power of two, or 0 */
	size_t used[2];
	size_t rehash_idx;                   /* next bucket of tab[0] to move; valid while tab[1] */
	int iterating;                       /* inside tqi_hmap_foreach: no rehash, no resize */
	tqi_hnode *small[TQI_HMAP_MIN_SIZE]; /* the first table: an insert never lacks one */
	tqi_hmap_eq_fn eq;
	uint8_t key[16];
} tqi_hmap;

/* Initialises m in place; m must not move afterwards (its first table is
 * inside it). */
void tqi_hmap_init(tqi_hmap *m, tqi_hmap_eq_fn eq);

/* Frees the tables; the nodes belong to their objects and are not touched. */
void tqi_hmap_destroy(tqi_hmap *m);

size_t tqi_hmap_count(const tqi_hmap *m);

tqi_hnode *tqi_hmap_find(tqi_hmap *m, const void *key, size_t len);

/* Starts loading the bucket that a find of (key, len) will read, when the
 * table is too big to stay in the caches; otherwise does nothing.  With a
 * million entries each find misses the caches on its bucket: a receiver
 * that knows the next key while it works on the current one hides that
 * miss behind the work. */
void tqi_hmap_prefetch(const tqi_hmap *m, const void *key, size_t len);

/* Inserts n under (key, len); the caller has checked the key is absent.
 * Never fails: when a bigger table cannot be allocated, chains get longer. */
void tqi_hmap_insert(tqi_hmap *m, tqi_hnode *n, const void *key, size_t len);

/* Removes n, which must be in m. */
void tqi_hmap_remove(tqi_hmap *m, tqi_hnode *n);

/* Calls fn on every node.  fn may remove the node it is given, and no
 * other; it must not insert. */
void tqi_hmap_foreach(tqi_hmap *m, void (*fn)(tqi_hnode *n, void *arg), void *arg);

#endif
