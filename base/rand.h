/* rand.h - random bytes for task references, session nonces and peer ids.
 * A xoshiro256** generator per owner, seeded from getrandom(2): 128-bit
 * references drawn from it are unique across clients and restarts without a
 * system call per task. */
#ifndef TQI_RAND_H
#define TQI_RAND_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t s[4];
} tqi_rand;

/* Seeds r from the kernel's entropy; falls back to time and pid mixing if
 * getrandom is unavailable (never fails). */
void tqi_rand_seed(tqi_rand *r);

uint64_t tqi_rand_u64(tqi_rand *r);

void tqi_rand_bytes(tqi_rand *r, void *out, size_t n);

/* Fills out with n bytes straight from the kernel (for hash keys). */
void tqi_rand_os(void *out, size_t n);

#endif
