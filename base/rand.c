/* rand.c - xoshiro256** (Blackman and Vigna) seeded from getrandom. */
#include "base/rand.h"

#include "base/clock.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void tqi_rand_os(void *out, size_t n)
{
	uint8_t *p = out;
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)r;
	}
	if (got < n) {
		/* No kernel entropy: mix time and pid; still unique per process. */
		uint64_t x = tqi_now_us() ^ ((uint64_t)getpid() << 32);
		for (size_t i = got; i < n; i++)
			p[i] = (uint8_t)splitmix64(&x);
	}
}

void tqi_rand_seed(tqi_rand *r)
{
	tqi_rand_os(r->s, sizeof r->s);
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1; /* the all-zero state is a fixed point */
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t tqi_rand_u64(tqi_rand *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

void tqi_rand_bytes(tqi_rand *r, void *out, size_t n)
{
	uint8_t *p = out;
	while (n > 0) {
		uint64_t v = tqi_rand_u64(r);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}
