/* tickets.c - the shared mapping behind the ticket board and the bells. */
#include "worker/tickets.h"

#include <stddef.h>
#include <sys/mman.h>

static size_t map_size(uint32_t n, uint32_t nbells)
{
	return (size_t)n * sizeof(tqi_ticket) + (size_t)nbells * sizeof(uint32_t);
}

int tqi_tickets_map(tqi_tickets *b, uint32_t n, uint32_t nbells)
{
	void *p = mmap(NULL, map_size(n, nbells), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	b->v = p; /* zero-filled: every ticket FREE, every bell disarmed */
	b->n = n;
	b->bells = (uint32_t *)(b->v + n);
	b->nbells = nbells;
	return 0;
}

void tqi_tickets_unmap(tqi_tickets *b)
{
	if (b->v != NULL)
		munmap(b->v, map_size(b->n, b->nbells));
	b->v = NULL;
	b->bells = NULL;
	b->n = b->nbells = 0;
}
