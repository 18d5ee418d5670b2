/* tickets.c - the shared mapping behind the ticket board. */
#include "worker/tickets.h"

#include <stddef.h>
#include <sys/mman.h>

int tqi_tickets_map(tqi_tickets *b, uint32_t n)
{
	void *p = mmap(NULL, (size_t)n * sizeof(uint32_t), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	b->v = p; /* zero-filled: every ticket FREE */
	b->n = n;
	return 0;
}

void tqi_tickets_unmap(tqi_tickets *b)
{
	if (b->v != NULL)
		munmap(b->v, (size_t)b->n * sizeof(uint32_t));
	b->v = NULL;
	b->n = 0;
}
