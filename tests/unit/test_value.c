/*
 * test_value.c - the msgpack value API: tq_reader, tq_value_check and
 * tq_buf.  Every integer width and sign, both float widths, every
 * str/bin/ext header, and the hostile cases: truncated headers, lengths and
 * counts larger than the bytes present, 0xc1, nesting past TQ_MAX_DEPTH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/messages.h"
#include "tq/value.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A copy of data in a buffer of exactly len bytes, so that ASan sees any
 * read past the end. */
static uint8_t *exact(const void *data, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	if (len > 0)
		memcpy(p, data, len);
	return p;
}

static tq_err check_exact(const void *data, size_t len, int max_depth)
{
	uint8_t *p = exact(data, len);
	tq_err e = tq_value_check(p, len, max_depth);
	free(p);
	return e;
}

/* ---- the table of values --------------------------------------------- */

static void test_values_table(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *v = tqt_values(&n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = exact(v[i].data, v[i].len);
		tq_err e = tq_value_check(p, v[i].len, 0);
		/* tq_read_skip agrees, and does not move on error */
		tq_reader r;
		tq_reader_init(&r, p, v[i].len);
		tq_err skip = tq_read_skip(&r);
		tq_err end = tq_reader_end(&r);
		size_t left = tq_reader_left(&r);
		free(p);
		if (e != (tq_err)v[i].want)
			fail_msg("%s: tq_value_check gave %s, want %s", v[i].name, tq_errname(e),
			         tq_errname((tq_err)v[i].want));
		if (v[i].want == TQ_OK || v[i].want == TQ_ETRAILING) {
			assert_int_equal(skip, TQ_OK);
			assert_int_equal(end, v[i].want);
		} else {
			assert_int_equal(skip, v[i].want);
			assert_int_equal(left, v[i].len);
		}
	}
}

/* ---- integers -------------------------------------------------------- */

typedef struct {
	uint8_t b[9];
	uint8_t len;
	tq_type type;
	int64_t i;       /* when it fits */
	uint64_t u;      /* when non-negative */
	bool fits_int64; /* else tq_read_int gives ERANGE */
} int_case;

static const int_case ints[] = {
	{ { 0x00 }, 1, TQ_TYPE_UINT, 0, 0, true },
	{ { 0x7f }, 1, TQ_TYPE_UINT, 127, 127, true },
	{ { 0xe0 }, 1, TQ_TYPE_INT, -32, 0, true },
	{ { 0xff }, 1, TQ_TYPE_INT, -1, 0, true },
	{ { 0xcc, 0x00 }, 2, TQ_TYPE_UINT, 0, 0, true },
	{ { 0xcc, 0x80 }, 2, TQ_TYPE_UINT, 128, 128, true },
	{ { 0xcc, 0xff }, 2, TQ_TYPE_UINT, 255, 255, true },
	{ { 0xcd, 0x01, 0x00 }, 3, TQ_TYPE_UINT, 256, 256, true },
	{ { 0xcd, 0xff, 0xff }, 3, TQ_TYPE_UINT, 65535, 65535, true },
	{ { 0xce, 0x00, 0x01, 0x00, 0x00 }, 5, TQ_TYPE_UINT, 65536, 65536, true },
	{ { 0xce, 0xff, 0xff, 0xff, 0xff }, 5, TQ_TYPE_UINT, 4294967295, 4294967295, true },
	{ { 0xcf, 0, 0, 0, 1, 0, 0, 0, 0 }, 9, TQ_TYPE_UINT, 4294967296, 4294967296, true },
	{ { 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	  9,
	  TQ_TYPE_UINT,
	  INT64_MAX,
	  INT64_MAX,
	  true },
	{ { 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 9, TQ_TYPE_UINT, 0, 1ULL << 63, false },
	{ { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	  9,
	  TQ_TYPE_UINT,
	  0,
	  UINT64_MAX,
	  false },
	{ { 0xd0, 0x80 }, 2, TQ_TYPE_INT, -128, 0, true },
	{ { 0xd0, 0xff }, 2, TQ_TYPE_INT, -1, 0, true },
	{ { 0xd0, 0x7f }, 2, TQ_TYPE_UINT, 127, 127, true }, /* signed encoding, positive value */
	{ { 0xd0, 0x00 }, 2, TQ_TYPE_UINT, 0, 0, true },
	{ { 0xd1, 0x80, 0x00 }, 3, TQ_TYPE_INT, INT16_MIN, 0, true },
	{ { 0xd1, 0xff, 0x7f }, 3, TQ_TYPE_INT, -129, 0, true },
	{ { 0xd1, 0x7f, 0xff }, 3, TQ_TYPE_UINT, INT16_MAX, INT16_MAX, true },
	{ { 0xd2, 0x80, 0, 0, 0 }, 5, TQ_TYPE_INT, INT32_MIN, 0, true },
	{ { 0xd2, 0xff, 0xff, 0xff, 0xff }, 5, TQ_TYPE_INT, -1, 0, true },
	{ { 0xd2, 0x7f, 0xff, 0xff, 0xff }, 5, TQ_TYPE_UINT, INT32_MAX, INT32_MAX, true },
	{ { 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 9, TQ_TYPE_INT, INT64_MIN, 0, true },
	{ { 0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff },
	  9,
	  TQ_TYPE_INT,
	  -2147483649LL,
	  0,
	  true },
	{ { 0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	  9,
	  TQ_TYPE_UINT,
	  INT64_MAX,
	  INT64_MAX,
	  true },
};

/* No bytes at all, given as NULL (an empty list field): read as empty.
 * Without arithmetic on the null pointer, too: clang's UBSan finds that
 * (the fuzz build, whose corpus writer reads an empty CHECKED), GCC's
 * does not. */
static void test_null_is_empty(void **state)
{
	(void)state;
	tq_reader r;
	tq_reader_init(&r, NULL, 0);
	assert_int_equal(tq_reader_left(&r), 0);
	assert_int_equal(tq_reader_end(&r), TQ_OK);
	tq_type t;
	assert_int_not_equal(tq_reader_peek(&r, &t), TQ_OK);
	assert_int_not_equal(tq_value_check(NULL, 0, 0), TQ_OK);
}

static void test_every_int_width_and_sign(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
		const int_case *c = &ints[k];
		uint8_t *p = exact(c->b, c->len);
		tq_reader r;
		tq_type t;
		tq_reader_init(&r, p, c->len);
		assert_int_equal(tq_reader_peek(&r, &t), TQ_OK);
		if (t != c->type)
			fail_msg("case %zu (0x%02x): type %d, want %d", k, c->b[0], t, c->type);

		int64_t i = 0;
		tq_err e = tq_read_int(&r, &i);
		if (c->fits_int64) {
			assert_int_equal(e, TQ_OK);
			assert_true(i == c->i);
			assert_int_equal(tq_reader_left(&r), 0);
		} else {
			assert_int_equal(e, TQ_ERANGE);
			assert_int_equal(tq_reader_left(&r), c->len);
		}

		tq_reader_init(&r, p, c->len);
		uint64_t u = 0;
		e = tq_read_uint(&r, &u);
		if (c->type == TQ_TYPE_UINT) {
			assert_int_equal(e, TQ_OK);
			assert_true(u == c->u);
			assert_int_equal(tq_reader_end(&r), TQ_OK);
		} else {
			assert_int_equal(e, TQ_ERANGE);
			assert_int_equal(tq_reader_left(&r), c->len);
		}

		tq_reader_init(&r, p, c->len);
		double d = 0;
		assert_int_equal(tq_read_double(&r, &d), TQ_OK);
		assert_true(d == (c->type == TQ_TYPE_UINT ? (double)c->u : (double)c->i));

		/* not a string, a bool, nil, an array */
		const char *s;
		size_t n;
		bool b;
		uint32_t cnt;
		tq_reader_init(&r, p, c->len);
		assert_int_equal(tq_read_str(&r, &s, &n), TQ_ETYPE);
		assert_int_equal(tq_read_bool(&r, &b), TQ_ETYPE);
		assert_int_equal(tq_read_nil(&r), TQ_ETYPE);
		assert_int_equal(tq_read_array(&r, &cnt), TQ_ETYPE);
		assert_int_equal(tq_reader_left(&r), c->len);
		assert_int_equal(tq_value_check(p, c->len, 0), TQ_OK);

		/* every shorter prefix is truncated */
		for (size_t len = 0; len < c->len; len++)
			assert_int_equal(check_exact(c->b, len, 0), TQ_ETRUNCATED);
		free(p);
	}
}

static void test_pack_ints_round_trip(void **state)
{
	(void)state;
	static const int64_t sv[] = {
		0,         -1,        -32,           -33,       -128,
		-129,      INT16_MIN, INT16_MIN - 1, INT32_MIN, (int64_t)INT32_MIN - 1,
		INT64_MIN, 1,         127,           128,       INT64_MAX
	};
	static const uint64_t uv[] = { 0,
		                       127,
		                       128,
		                       255,
		                       256,
		                       UINT16_MAX,
		                       UINT16_MAX + 1,
		                       UINT32_MAX,
		                       (uint64_t)UINT32_MAX + 1,
		                       UINT64_MAX };
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	for (size_t k = 0; k < sizeof sv / sizeof sv[0]; k++) {
		tq_buf_reset(b);
		assert_int_equal(tq_pack_int(b, sv[k]), TQ_OK);
		tq_reader r;
		int64_t got;
		tq_reader_init(&r, tq_buf_data(b), tq_buf_size(b));
		assert_int_equal(tq_read_int(&r, &got), TQ_OK);
		assert_true(got == sv[k]);
		assert_int_equal(tq_reader_end(&r), TQ_OK);
	}
	for (size_t k = 0; k < sizeof uv / sizeof uv[0]; k++) {
		tq_buf_reset(b);
		assert_int_equal(tq_pack_uint(b, uv[k]), TQ_OK);
		tq_reader r;
		uint64_t got;
		tq_reader_init(&r, tq_buf_data(b), tq_buf_size(b));
		assert_int_equal(tq_read_uint(&r, &got), TQ_OK);
		assert_true(got == uv[k]);
		assert_int_equal(tq_reader_end(&r), TQ_OK);
	}
	/* the smallest encoding is used */
	tq_buf_reset(b);
	tq_pack_int(b, -1);
	assert_int_equal(tq_buf_size(b), 1);
	tq_buf_reset(b);
	tq_pack_uint(b, UINT64_MAX);
	assert_int_equal(tq_buf_size(b), 9);
	tq_buf_destroy(&b);
}

/* ---- floats ---------------------------------------------------------- */

static void test_floats(void **state)
{
	(void)state;
	static const uint8_t f32[] = { 0xca, 0x3f, 0xc0, 0x00, 0x00 };       /* 1.5f */
	static const uint8_t f32neg[] = { 0xca, 0xc0, 0x49, 0x0f, 0xdb };    /* -pi as float */
	static const uint8_t f32nan[] = { 0xca, 0x7f, 0xc0, 0x00, 0x00 };    /* NaN */
	static const uint8_t f64[] = { 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 }; /* 1.5 */
	static const uint8_t f64tiny[] = { 0xcb, 0, 0, 0, 0, 0, 0, 0, 1 }; /* smallest subnormal */
	double d;
	tq_reader r;
	tq_type t;

	tq_reader_init(&r, f32, sizeof f32);
	assert_int_equal(tq_reader_peek(&r, &t), TQ_OK);
	assert_int_equal(t, TQ_TYPE_FLOAT);
	assert_int_equal(tq_read_double(&r, &d), TQ_OK);
	assert_true(d == 1.5);
	assert_int_equal(tq_reader_end(&r), TQ_OK);

	tq_reader_init(&r, f32neg, sizeof f32neg);
	assert_int_equal(tq_read_double(&r, &d), TQ_OK);
	assert_true(d == (double)-3.14159265f);

	tq_reader_init(&r, f32nan, sizeof f32nan);
	assert_int_equal(tq_read_double(&r, &d), TQ_OK);
	assert_true(isnan(d));

	tq_reader_init(&r, f64, sizeof f64);
	assert_int_equal(tq_read_double(&r, &d), TQ_OK);
	assert_true(d == 1.5);

	tq_reader_init(&r, f64tiny, sizeof f64tiny);
	assert_int_equal(tq_read_double(&r, &d), TQ_OK);
	assert_true(d > 0 && d < DBL_MIN);

	/* a float is not an integer */
	int64_t i;
	uint64_t u;
	tq_reader_init(&r, f64, sizeof f64);
	assert_int_equal(tq_read_int(&r, &i), TQ_ETYPE);
	assert_int_equal(tq_read_uint(&r, &u), TQ_ETYPE);
	assert_int_equal(tq_reader_left(&r), sizeof f64);

	for (size_t len = 0; len < sizeof f64; len++)
		assert_int_equal(check_exact(f64, len, 0), TQ_ETRUNCATED);
	for (size_t len = 0; len < sizeof f32; len++)
		assert_int_equal(check_exact(f32, len, 0), TQ_ETRUNCATED);

	/* tq_pack_double round trips, signs and specials included */
	static const double dv[] = { 0.0,     -0.0,     1.5,    -2.25,    DBL_MIN,
		                     DBL_MAX, -DBL_MAX, 1e-310, INFINITY, -INFINITY };
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	for (size_t k = 0; k < sizeof dv / sizeof dv[0]; k++) {
		tq_buf_reset(b);
		assert_int_equal(tq_pack_double(b, dv[k]), TQ_OK);
		assert_int_equal(tq_buf_size(b), 9);
		assert_int_equal(tq_buf_data(b)[0], 0xcb);
		tq_reader_init(&r, tq_buf_data(b), tq_buf_size(b));
		assert_int_equal(tq_read_double(&r, &d), TQ_OK);
		assert_memory_equal(&d, &dv[k], sizeof d);
	}
	tq_buf_reset(b);
	tq_pack_double(b, NAN);
	tq_reader_init(&r, tq_buf_data(b), tq_buf_size(b));
	assert_int_equal(tq_read_double(&r, &d), TQ_OK);
	assert_true(isnan(d));
	tq_buf_destroy(&b);
}

/* ---- str, bin, ext headers ------------------------------------------- */

/* Writes a header of `hdr` bytes (type byte, big-endian length of
 * hdr-1 bytes, or hdr-2 and an ext type) for a body of n bytes. */
static size_t put_header(uint8_t *out, uint8_t type, size_t lenbytes, bool ext, size_t n)
{
	size_t k = 0;
	out[k++] = type;
	for (size_t i = 0; i < lenbytes; i++)
		out[k++] = (uint8_t)(n >> (8 * (lenbytes - 1 - i)));
	if (ext)
		out[k++] = 0x05; /* the extension's type */
	return k;
}

static void test_str_bin_ext_headers(void **state)
{
	(void)state;
	static const struct {
		uint8_t type;
		size_t lenbytes;
		tq_type t;
		bool ext;
	} kinds[] = {
		{ 0xd9, 1, TQ_TYPE_STR, false }, { 0xda, 2, TQ_TYPE_STR, false },
		{ 0xdb, 4, TQ_TYPE_STR, false }, { 0xc4, 1, TQ_TYPE_BIN, false },
		{ 0xc5, 2, TQ_TYPE_BIN, false }, { 0xc6, 4, TQ_TYPE_BIN, false },
		{ 0xc7, 1, TQ_TYPE_EXT, true },  { 0xc8, 2, TQ_TYPE_EXT, true },
		{ 0xc9, 4, TQ_TYPE_EXT, true },
	};
	static const size_t lens[] = { 0, 1, 31, 32, 255, 256, 65535, 65536, 70000 };
	uint8_t *buf = malloc(8 + 70000);
	assert_non_null(buf);
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
			size_t n = lens[li];
			if (kinds[k].lenbytes < 4 && n >> (8 * kinds[k].lenbytes) != 0)
				continue;
			size_t h =
			    put_header(buf, kinds[k].type, kinds[k].lenbytes, kinds[k].ext, n);
			for (size_t i = 0; i < n; i++)
				buf[h + i] = (uint8_t)('a' + i % 26);
			uint8_t *p = exact(buf, h + n);
			tq_reader r;
			tq_type t;
			tq_reader_init(&r, p, h + n);
			assert_int_equal(tq_reader_peek(&r, &t), TQ_OK);
			assert_int_equal(t, kinds[k].t);
			const uint8_t *data;
			const char *sdata;
			size_t got;
			if (t == TQ_TYPE_STR) {
				assert_int_equal(tq_read_str(&r, &sdata, &got), TQ_OK);
				data = (const uint8_t *)sdata;
			} else if (t == TQ_TYPE_BIN)
				assert_int_equal(tq_read_bin(&r, &data, &got), TQ_OK);
			else
				assert_int_equal(tq_read_value(&r, &data, &got), TQ_OK);
			if (t == TQ_TYPE_EXT) {
				assert_ptr_equal(data, p);
				assert_int_equal(got, h + n);
			} else {
				assert_ptr_equal(data, p + h); /* into the input, not copied */
				assert_int_equal(got, n);
			}
			assert_int_equal(tq_reader_end(&r), TQ_OK);
			assert_int_equal(tq_value_check(p, h + n, 0), TQ_OK);
			free(p);

			/* a header cut short is truncated; a body cut short is a
			 * length larger than the bytes present */
			for (size_t len = 0; len < h; len++)
				assert_int_equal(check_exact(buf, len, 0), TQ_ETRUNCATED);
			if (n > 0) {
				assert_int_equal(check_exact(buf, h + n - 1, 0), TQ_ELENGTH);
				assert_int_equal(check_exact(buf, h, 0), TQ_ELENGTH);
			}
		}
	}
	/* fixext 1, 2, 4, 8, 16 */
	static const uint8_t fixext[] = { 0xd4, 0xd5, 0xd6, 0xd7, 0xd8 };
	for (size_t k = 0; k < 5; k++) {
		size_t n = (size_t)1 << k;
		buf[0] = fixext[k];
		buf[1] = 0x05;
		memset(buf + 2, 0xee, n);
		assert_int_equal(check_exact(buf, 2 + n, 0), TQ_OK);
		assert_int_equal(check_exact(buf, 1, 0), TQ_ETRUNCATED);
		tq_err e = check_exact(buf, 1 + n, 0);
		assert_true(e == TQ_ELENGTH || e == TQ_ETRUNCATED);
		tq_reader r;
		tq_type t;
		tq_reader_init(&r, buf, 2 + n);
		assert_int_equal(tq_reader_peek(&r, &t), TQ_OK);
		assert_int_equal(t, TQ_TYPE_EXT);
		assert_int_equal(tq_read_skip(&r), TQ_OK);
		assert_int_equal(tq_reader_end(&r), TQ_OK);
	}
	free(buf);

	/* tq_buf picks the header by length */
	static const struct {
		size_t n;
		uint8_t str, bin;
	} picks[] = { { 31, 0xbf, 0xc4 },  { 32, 0xd9, 0xc4 },    { 255, 0xd9, 0xc4 },
		      { 256, 0xda, 0xc5 }, { 65535, 0xda, 0xc5 }, { 65536, 0xdb, 0xc6 } };
	char *text = calloc(1, 65536);
	assert_non_null(text);
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
		tq_buf_reset(b);
		assert_int_equal(tq_pack_strn(b, text, picks[k].n), TQ_OK);
		assert_int_equal(tq_buf_data(b)[0], picks[k].str);
		assert_int_equal(tq_value_check(tq_buf_data(b), tq_buf_size(b), 0), TQ_OK);
		tq_buf_reset(b);
		assert_int_equal(tq_pack_bin(b, text, picks[k].n), TQ_OK);
		assert_int_equal(tq_buf_data(b)[0], picks[k].bin);
		assert_int_equal(tq_value_check(tq_buf_data(b), tq_buf_size(b), 0), TQ_OK);
	}
	tq_buf_destroy(&b);
	free(text);
}

/* A 5-byte header declaring more than the bytes present: ELENGTH, at once,
 * whatever the declared size (and nothing is allocated for it). */
static void test_huge_declared_lengths(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[6];
		size_t len;
	} cases[] = {
		{ { 0xdd, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ { 0xdd, 0x00, 0xff, 0xff, 0xff }, 5 },
		{ { 0xdd, 0x00, 0x00, 0x00, 0x01 }, 5 },
		{ { 0xdc, 0xff, 0xff }, 3 },
		{ { 0xdf, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ { 0xde, 0xff, 0xff }, 3 },
		{ { 0xdb, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ { 0xda, 0xff, 0xff }, 3 },
		{ { 0xd9, 0xff }, 2 },
		{ { 0xc6, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ { 0xc5, 0xff, 0xff }, 3 },
		{ { 0xc4, 0xff }, 2 },
		{ { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01 }, 6 },
		{ { 0xc8, 0xff, 0xff, 0x01 }, 4 },
		{ { 0xc7, 0xff, 0x01 }, 3 },
		{ { 0x9f }, 1 },
		{ { 0x8f }, 1 },
		{ { 0xbf }, 1 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		tq_err e = check_exact(cases[k].b, cases[k].len, 0);
		if (e != TQ_ELENGTH)
			fail_msg("case %zu (0x%02x): got %s", k, cases[k].b[0], tq_errname(e));
	}
	/* the reader's header functions say so too, and do not move */
	static const uint8_t arr[] = { 0xdd, 0x00, 0xff, 0xff, 0xff, 1, 2, 3 };
	static const uint8_t map[] = { 0x82, 0x01, 0x02, 0x03 }; /* 2 pairs need 4 bytes */
	static const uint8_t fits[] = { 0x93, 0x01, 0x02, 0x03 };
	uint32_t n;
	tq_reader r;
	tq_reader_init(&r, arr, sizeof arr);
	assert_int_equal(tq_read_array(&r, &n), TQ_ELENGTH);
	assert_int_equal(tq_reader_left(&r), sizeof arr);
	tq_reader_init(&r, map, sizeof map);
	assert_int_equal(tq_read_map(&r, &n), TQ_ELENGTH);
	tq_reader_init(&r, fits, sizeof fits);
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(n, 3);
	assert_int_equal(tq_reader_left(&r), 3);
}

/* ---- 0xc1 -------------------------------------------------------------- */

static void test_c1_never_used(void **state)
{
	(void)state;
	static const uint8_t alone[] = { 0xc1 };
	static const uint8_t in_array[] = { 0x92, 0x01, 0xc1 };
	static const uint8_t as_key[] = { 0x81, 0xc1, 0x01 };
	static const uint8_t as_value[] = { 0x81, 0x01, 0xc1 };
	tq_reader r;
	tq_type t;
	tq_reader_init(&r, alone, 1);
	assert_int_equal(tq_reader_peek(&r, &t), TQ_ETYPE);
	bool b;
	int64_t i;
	uint64_t u;
	double d;
	const char *s;
	const uint8_t *p;
	size_t n;
	uint32_t c;
	assert_int_equal(tq_read_nil(&r), TQ_ETYPE);
	assert_int_equal(tq_read_bool(&r, &b), TQ_ETYPE);
	assert_int_equal(tq_read_int(&r, &i), TQ_ETYPE);
	assert_int_equal(tq_read_uint(&r, &u), TQ_ETYPE);
	assert_int_equal(tq_read_double(&r, &d), TQ_ETYPE);
	assert_int_equal(tq_read_str(&r, &s, &n), TQ_ETYPE);
	assert_int_equal(tq_read_bin(&r, &p, &n), TQ_ETYPE);
	assert_int_equal(tq_read_array(&r, &c), TQ_ETYPE);
	assert_int_equal(tq_read_map(&r, &c), TQ_ETYPE);
	assert_int_equal(tq_read_skip(&r), TQ_ETYPE);
	assert_int_equal(tq_read_value(&r, &p, &n), TQ_ETYPE);
	assert_int_equal(tq_reader_left(&r), 1);
	assert_int_equal(check_exact(alone, 1, 0), TQ_ETYPE);
	assert_int_equal(check_exact(in_array, sizeof in_array, 0), TQ_ETYPE);
	assert_int_equal(check_exact(as_key, sizeof as_key, 0), TQ_ETYPE);
	assert_int_equal(check_exact(as_value, sizeof as_value, 0), TQ_ETYPE);
}

/* ---- types ----------------------------------------------------------- */

static void test_wrong_type_reads(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[4];
		size_t len;
		tq_type t;
	} items[] = {
		{ { 0xc0 }, 1, TQ_TYPE_NIL },         { { 0xc3 }, 1, TQ_TYPE_BOOL },
		{ { 0xff }, 1, TQ_TYPE_INT },         { { 0x05 }, 1, TQ_TYPE_UINT },
		{ { 0xa1, 'x' }, 2, TQ_TYPE_STR },    { { 0xc4, 1, 7 }, 3, TQ_TYPE_BIN },
		{ { 0x91, 0xc0 }, 2, TQ_TYPE_ARRAY }, { { 0x81, 0xc0, 0xc0 }, 3, TQ_TYPE_MAP },
		{ { 0xd4, 1, 2 }, 3, TQ_TYPE_EXT },
	};
	for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
		tq_type t = items[k].t;
		tq_reader r;
		bool b;
		int64_t i;
		uint64_t u;
		double d;
		const char *s;
		const uint8_t *p;
		size_t n;
		uint32_t c;
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_nil(&r), t == TQ_TYPE_NIL ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_bool(&r, &b), t == TQ_TYPE_BOOL ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_int(&r, &i),
		                 t == TQ_TYPE_INT || t == TQ_TYPE_UINT ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_uint(&r, &u), t == TQ_TYPE_UINT  ? TQ_OK
		                                       : t == TQ_TYPE_INT ? TQ_ERANGE
		                                                          : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_double(&r, &d),
		                 t == TQ_TYPE_INT || t == TQ_TYPE_UINT ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_str(&r, &s, &n), t == TQ_TYPE_STR ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_bin(&r, &p, &n), t == TQ_TYPE_BIN ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_array(&r, &c), t == TQ_TYPE_ARRAY ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_map(&r, &c), t == TQ_TYPE_MAP ? TQ_OK : TQ_ETYPE);
		tq_reader_init(&r, items[k].b, items[k].len);
		assert_int_equal(tq_read_skip(&r), TQ_OK);
		assert_int_equal(tq_reader_end(&r), TQ_OK);
	}
}

static void test_reader_walk(void **state)
{
	(void)state;
	/* [nil, true, -5, 7, "ab", bin(1), {"k": [1]}] */
	static const uint8_t v[] = { 0x97, 0xc0, 0xc3, 0xfb, 0x07, 0xa2, 'a',  'b',
		                     0xc4, 1,    0x99, 0x81, 0xa1, 'k',  0x91, 0x01 };
	tq_reader r;
	uint32_t n;
	bool b;
	int64_t i;
	uint64_t u;
	const char *s;
	const uint8_t *p;
	size_t len;
	tq_reader_init(&r, v, sizeof v);
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(n, 7);
	assert_int_equal(tq_read_nil(&r), TQ_OK);
	assert_int_equal(tq_read_bool(&r, &b), TQ_OK);
	assert_true(b);
	assert_int_equal(tq_read_int(&r, &i), TQ_OK);
	assert_int_equal(i, -5);
	assert_int_equal(tq_read_uint(&r, &u), TQ_OK);
	assert_int_equal(u, 7);
	assert_int_equal(tq_read_str(&r, &s, &len), TQ_OK);
	assert_int_equal(len, 2);
	assert_memory_equal(s, "ab", 2);
	assert_int_equal(tq_read_bin(&r, &p, &len), TQ_OK);
	assert_int_equal(len, 1);
	assert_int_equal(p[0], 0x99);
	assert_int_equal(tq_read_value(&r, &p, &len), TQ_OK);
	assert_ptr_equal(p, v + 11);
	assert_int_equal(len, 5);
	assert_int_equal(tq_reader_left(&r), 0);
	assert_int_equal(tq_reader_end(&r), TQ_OK);
	tq_type t;
	assert_int_equal(tq_reader_peek(&r, &t), TQ_ETRUNCATED);
	assert_int_equal(tq_read_nil(&r), TQ_ETRUNCATED);

	/* a reader over nothing */
	tq_reader_init(&r, NULL, 10);
	assert_int_equal(tq_reader_left(&r), 0);
	assert_int_equal(tq_reader_peek(&r, &t), TQ_ETRUNCATED);
	assert_int_equal(tq_value_check(NULL, 10, 0), TQ_ETRUNCATED);
}

/* ---- depth ------------------------------------------------------------- */

/* depth nested containers (arrays, or maps with a nil key), the innermost
 * holding one integer, or empty. */
static size_t nest(uint8_t *out, int depth, bool maps, bool empty)
{
	size_t k = 0;
	for (int d = 0; d < depth; d++) {
		bool inner = d == depth - 1;
		out[k++] = maps ? (inner && empty ? 0x80 : 0x81) : (inner && empty ? 0x90 : 0x91);
		if (maps && !(inner && empty))
			out[k++] = 0xc0;
	}
	if (!empty)
		out[k++] = 0x01;
	return k;
}

static void test_depth_limit(void **state)
{
	(void)state;
	uint8_t buf[2 * (TQ_MAX_DEPTH + 4) + 1];
	for (int maps = 0; maps < 2; maps++) {
		for (int empty = 0; empty < 2; empty++) {
			for (int depth = 1; depth <= TQ_MAX_DEPTH + 3; depth++) {
				size_t n = nest(buf, depth, maps, empty);
				tq_err want = depth <= TQ_MAX_DEPTH ? TQ_OK : TQ_EDEPTH;
				tq_err e = check_exact(buf, n, 0);
				if (e != want)
					fail_msg("%d nested %s (innermost %s): got %s, want %s",
					         depth, maps ? "maps" : "arrays",
					         empty ? "empty" : "not empty", tq_errname(e),
					         tq_errname(want));
				tq_reader r;
				tq_reader_init(&r, buf, n);
				assert_int_equal(tq_read_skip(&r), want);
				/* a smaller limit of the caller's */
				want = depth <= 8 ? TQ_OK : TQ_EDEPTH;
				e = check_exact(buf, n, 8);
				if (e != want)
					fail_msg("%d nested %s (innermost %s), limit 8: got %s",
					         depth, maps ? "maps" : "arrays",
					         empty ? "empty" : "not empty", tq_errname(e));
			}
		}
	}
	/* out-of-range limits mean TQ_MAX_DEPTH */
	size_t n = nest(buf, TQ_MAX_DEPTH, false, false);
	assert_int_equal(tq_value_check(buf, n, -1), TQ_OK);
	assert_int_equal(tq_value_check(buf, n, TQ_MAX_DEPTH + 100), TQ_OK);
	n = nest(buf, TQ_MAX_DEPTH + 1, false, false);
	assert_int_equal(tq_value_check(buf, n, TQ_MAX_DEPTH + 100), TQ_EDEPTH);
	/* depth is nesting, not the number of containers */
	static const uint8_t wide[] = { 0x93, 0x91, 0x01, 0x91, 0x01, 0x91, 0x01 };
	assert_int_equal(tq_value_check(wide, sizeof wide, 2), TQ_OK);
	assert_int_equal(tq_value_check(wide, sizeof wide, 1), TQ_EDEPTH);
}

/* ---- tq_buf ------------------------------------------------------------ */

static void test_buf_build(void **state)
{
	(void)state;
	tq_buf *b = NULL;
	tq_buf_destroy(&b); /* NULL is fine */
	tq_buf_destroy(NULL);
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	assert_int_equal(tq_buf_size(b), 0);
	/* {"name": "x", "args": [nil, false, -3, 4, 0.5, bin"\0\1"], "big": "<300 bytes>"} */
	char big[300];
	memset(big, 'b', sizeof big);
	tq_pack_map(b, 3);
	tq_pack_str(b, "name");
	tq_pack_str(b, "x");
	tq_pack_str(b, "args");
	tq_pack_array(b, 6);
	tq_pack_nil(b);
	tq_pack_bool(b, false);
	tq_pack_int(b, -3);
	tq_pack_uint(b, 4);
	tq_pack_double(b, 0.5);
	tq_pack_bin(b, "\0\1", 2);
	tq_pack_str(b, "big");
	assert_int_equal(tq_pack_strn(b, big, sizeof big), TQ_OK);
	assert_int_equal(tq_buf_error(b), TQ_OK);
	assert_true(tq_buf_size(b) > TQI_WBUF_INLINE); /* moved to the heap */
	assert_int_equal(tq_value_check(tq_buf_data(b), tq_buf_size(b), 0), TQ_OK);

	tq_reader r;
	uint32_t n;
	const char *s;
	size_t len;
	tq_reader_init(&r, tq_buf_data(b), tq_buf_size(b));
	assert_int_equal(tq_read_map(&r, &n), TQ_OK);
	assert_int_equal(n, 3);
	assert_int_equal(tq_read_str(&r, &s, &len), TQ_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(s, "name", 4);
	assert_int_equal(tq_read_skip(&r), TQ_OK);
	assert_int_equal(tq_read_skip(&r), TQ_OK);
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(tq_read_skip(&r), TQ_OK);
	assert_int_equal(tq_read_str(&r, &s, &len), TQ_OK);
	assert_int_equal(tq_read_str(&r, &s, &len), TQ_OK);
	assert_int_equal(len, sizeof big);
	assert_int_equal(tq_reader_end(&r), TQ_OK);

	tq_buf_reset(b);
	assert_int_equal(tq_buf_size(b), 0);
	tq_pack_nil(b);
	assert_int_equal(tq_buf_size(b), 1);
	tq_buf_destroy(&b);
	assert_null(b);
}

static void test_buf_sticky_errors(void **state)
{
	(void)state;
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	tq_pack_array(b, 2);
	size_t before = tq_buf_size(b);
	/* the length is refused before anything is read */
	assert_int_equal(tq_pack_strn(b, "x", (size_t)UINT32_MAX + 1), TQ_ETOOBIG);
	assert_int_equal(tq_buf_error(b), TQ_ETOOBIG);
	assert_int_equal(tq_pack_nil(b), TQ_ETOOBIG);
	assert_int_equal(tq_pack_uint(b, 1), TQ_ETOOBIG);
	assert_int_equal(tq_pack_json(b, "1", 1), TQ_ETOOBIG);
	assert_int_equal(tq_pack_msgpack(b, "\xc0", 1), TQ_ETOOBIG);
	assert_int_equal(tq_buf_size(b), before);
	tq_buf_reset(b);
	assert_int_equal(tq_buf_error(b), TQ_OK);
	assert_int_equal(tq_pack_bin(b, "x", (size_t)UINT32_MAX + 1), TQ_ETOOBIG);
	assert_int_equal(tq_pack_str(b, "after"), TQ_ETOOBIG);
	tq_buf_reset(b);
	assert_int_equal(tq_pack_str(b, "after"), TQ_OK);
	tq_buf_destroy(&b);
}

static void test_pack_msgpack(void **state)
{
	(void)state;
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	tq_pack_array(b, 2);
	size_t n;
	const tqt_bytes *v = tqt_values(&n);
	size_t good = 0;
	for (size_t i = 0; i < n; i++) {
		/* leave room for the array around them */
		if (tq_value_check(v[i].data, v[i].len, TQ_MAX_DEPTH - 1) == TQ_EDEPTH)
			continue;
		size_t before = tq_buf_size(b);
		uint8_t *p = exact(v[i].data, v[i].len);
		tq_err e = tq_pack_msgpack(b, p, v[i].len);
		assert_int_equal(e, tq_value_check(p, v[i].len, 0));
		free(p);
		if (e == TQ_OK) {
			good++;
			assert_int_equal(tq_buf_size(b), before + v[i].len);
		} else {
			/* the caller's bytes were bad; b is unchanged and fine */
			assert_int_equal(tq_buf_size(b), before);
			assert_int_equal(tq_buf_error(b), TQ_OK);
		}
	}
	/* the accepted values, under one array, make one value */
	tq_buf *whole;
	assert_int_equal(tq_buf_new(&whole), TQ_OK);
	tq_pack_array(whole, (uint32_t)good);
	for (size_t i = 0; i < n; i++)
		if (tq_value_check(v[i].data, v[i].len, TQ_MAX_DEPTH - 1) != TQ_EDEPTH)
			tq_pack_msgpack(whole, v[i].data, v[i].len); /* the bad ones are refused */
	size_t hdr = good < 16 ? 1 : 3;
	assert_int_equal(tq_buf_size(whole) - hdr, tq_buf_size(b) - 1);
	assert_memory_equal(tq_buf_data(whole) + hdr, tq_buf_data(b) + 1, tq_buf_size(b) - 1);
	assert_int_equal(tq_value_check(tq_buf_data(whole), tq_buf_size(whole), 0), TQ_OK);
	tq_buf_destroy(&whole);
	tq_buf_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_table),
		cmocka_unit_test(test_null_is_empty),
		cmocka_unit_test(test_every_int_width_and_sign),
		cmocka_unit_test(test_pack_ints_round_trip),
		cmocka_unit_test(test_floats),
		cmocka_unit_test(test_str_bin_ext_headers),
		cmocka_unit_test(test_huge_declared_lengths),
		cmocka_unit_test(test_c1_never_used),
		cmocka_unit_test(test_wrong_type_reads),
		cmocka_unit_test(test_reader_walk),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_buf_build),
		cmocka_unit_test(test_buf_sticky_errors),
		cmocka_unit_test(test_pack_msgpack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
