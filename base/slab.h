/*
 * slab.h - records of one size, carved from big chunks backed by huge
 * pages, for tables that grow to millions of entries.
 *
 * A million records from malloc lie on 50,000 small pages; touched in no
 * order (a queue's oldest task, a task found by its ref), nearly every
 * access misses the TLB, and in a virtual machine a miss walks two page
 * tables.  Measured on the broker: with 1,000,000 tasks queued it ran at
 * 0.72-0.87x its rate with 1,000; on huge pages, 0.89-0.95x.  So a slab
 * takes its memory in 2 MiB chunks, aligned, marked MADV_HUGEPAGE (the
 * kernel's transparent huge pages, in "madvise" mode on most systems).
 *
 * Freed records go on a free list and are handed out again first; chunks
 * are returned only by tqi_slab_destroy, so a slab's memory is what its
 * busiest moment needed (as malloc's often is).  Under AddressSanitizer a
 * record is poisoned while it is not handed out, so a stale pointer used
 * then is reported.  Single-threaded.
 */
#ifndef TQI_SLAB_H
#define TQI_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define TQI_SLAB_CHUNK ((size_t)2 << 20)

typedef struct {
	size_t size;   /* of a record, rounded up to 16 */
	void *free;    /* records freed, linked through their first word */
	uint8_t *next; /* the rest of the newest chunk */
	size_t left;   /* records left there */
	void **chunks; /* every chunk, to give back at the end */
	size_t nchunks, cap;
	size_t live; /* records handed out */
} tqi_slab;

/* bytes of memory aligned to TQI_SLAB_CHUNK and advised onto huge pages
 * (contents undefined), for any big table read in no order; free() gives
 * it back.  NULL when out of memory. */
void *tqi_huge_alloc(size_t bytes);

/* A slab of records of `size` bytes (1 .. 64 KiB). */
void tqi_slab_init(tqi_slab *s, size_t size);
/* Gives every chunk back: records still handed out become invalid. */
void tqi_slab_destroy(tqi_slab *s);

/* A record (contents undefined), or NULL when out of memory. */
void *tqi_slab_alloc(tqi_slab *s);
/* Takes p (from tqi_slab_alloc of s) back for reuse.  NULL is ignored. */
void tqi_slab_free(tqi_slab *s, void *p);

#endif
