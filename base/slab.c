/* slab.c - fixed-size records from 2 MiB chunks on huge pages. */
#include "base/slab.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define TQI_SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TQI_SLAB_ASAN 1
#endif
#endif
#ifdef TQI_SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

void tqi_slab_init(tqi_slab *s, size_t size)
{
	memset(s, 0, sizeof *s);
	s->size = (size + 15) & ~(size_t)15;
	if (s->size < sizeof(void *))
		s->size = sizeof(void *);
}

void tqi_slab_destroy(tqi_slab *s)
{
	for (size_t i = 0; i < s->nchunks; i++) {
		UNPOISON(s->chunks[i], TQI_SLAB_CHUNK);
		free(s->chunks[i]);
	}
	free(s->chunks);
	size_t size = s->size;
	tqi_slab_init(s, size);
}

void *tqi_huge_alloc(size_t bytes)
{
	void *p = NULL;
	if (posix_memalign(&p, TQI_SLAB_CHUNK, bytes) != 0)
		return NULL;
	/* Advice only: where huge pages are off, small ones serve. */
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

/* A new chunk to carve records from.  0, or -1 when out of memory. */
static int grow(tqi_slab *s)
{
	if (s->nchunks == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		void **v = realloc(s->chunks, cap * sizeof *v);
		if (v == NULL)
			return -1;
		s->chunks = v;
		s->cap = cap;
	}
	void *c = tqi_huge_alloc(TQI_SLAB_CHUNK);
	if (c == NULL)
		return -1;
	POISON(c, TQI_SLAB_CHUNK);
	s->chunks[s->nchunks++] = c;
	s->next = c;
	s->left = TQI_SLAB_CHUNK / s->size;
	return 0;
}

void *tqi_slab_alloc(tqi_slab *s)
{
	void *p = s->free;
	if (p != NULL) {
		UNPOISON(p, s->size);
		memcpy(&s->free, p, sizeof(void *));
	} else {
		if (s->left == 0 && grow(s) != 0)
			return NULL;
		p = s->next;
		s->next += s->size;
		s->left--;
		UNPOISON(p, s->size);
	}
	s->live++;
	return p;
}

void tqi_slab_free(tqi_slab *s, void *p)
{
	if (p == NULL)
		return;
	memcpy(p, &s->free, sizeof(void *));
	POISON(p, s->size);
	s->free = p;
	s->live--;
}
