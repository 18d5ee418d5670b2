/*
 * test_slab.c - records from the slab: distinct, aligned, writable end to
 * end across several chunks; a freed record is handed out again before new
 * memory is carved; the live count follows; destroy gives everything back
 * (valgrind and LeakSanitizer would tell otherwise) and leaves a slab that
 * serves again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/slab.h"

#include <stdlib.h>
#include <string.h>

enum { SIZE = 184, N = 30000 }; /* 184: a broker task record; N: 3 chunks */

static void test_records_are_distinct_and_whole(void **state)
{
	(void)state;
	tqi_slab s;
	tqi_slab_init(&s, SIZE);
	uint8_t **v = calloc(N, sizeof *v);
	assert_non_null(v);
	for (size_t i = 0; i < N; i++) {
		v[i] = tqi_slab_alloc(&s);
		assert_non_null(v[i]);
		assert_int_equal((uintptr_t)v[i] % 16, 0);
		memset(v[i], (int)(i & 0xff), SIZE);
	}
	assert_true(s.nchunks >= 3);
	assert_int_equal(s.live, N);
	/* Each kept its own bytes: no two overlap. */
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < SIZE; k++)
			assert_int_equal(v[i][k], (uint8_t)(i & 0xff));
	/* Freed ones come back first, newest first, and no chunk is added. */
	size_t chunks = s.nchunks;
	tqi_slab_free(&s, v[10]);
	tqi_slab_free(&s, v[20000]);
	assert_int_equal(s.live, N - 2);
	assert_ptr_equal(tqi_slab_alloc(&s), v[20000]);
	assert_ptr_equal(tqi_slab_alloc(&s), v[10]);
	assert_int_equal(s.nchunks, chunks);
	tqi_slab_free(&s, NULL); /* ignored */
	assert_int_equal(s.live, N);
	tqi_slab_destroy(&s);
	assert_int_equal(s.nchunks, 0);
	assert_int_equal(s.live, 0);
	/* and it serves again */
	void *p = tqi_slab_alloc(&s);
	assert_non_null(p);
	memset(p, 0xab, SIZE);
	tqi_slab_destroy(&s);
	free(v);
}

static void test_sizes_round_up(void **state)
{
	(void)state;
	tqi_slab s;
	tqi_slab_init(&s, 1);
	assert_true(s.size >= sizeof(void *) && s.size % 16 == 0);
	uint8_t *a = tqi_slab_alloc(&s), *b = tqi_slab_alloc(&s);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(b - a == (ptrdiff_t)s.size || a - b == (ptrdiff_t)s.size);
	tqi_slab_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_are_distinct_and_whole),
		cmocka_unit_test(test_sizes_round_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
