/*
 * test_json.c - JSON text to msgpack (tqi_json_to_msgpack, tq_pack_json)
 * and msgpack to JSON text (tq_value_to_json): escapes, surrogate pairs,
 * numbers of every kind, nesting limits, malformed input, and the lossy
 * corners of the way back (invalid UTF-8, binaries, non-string keys, NaN).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/json.h"
#include "proto/wbuf.h"
#include "tests/unit/messages.h"
#include "tq/value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Parses a copy of json in a buffer of exactly len bytes (no NUL after
 * it, so ASan sees any read past the end) into out, which is reset. */
static tq_err parse_exact(const void *json, size_t len, tqi_wbuf *out)
{
	char *p = malloc(len ? len : 1);
	assert_non_null(p);
	if (len > 0)
		memcpy(p, json, len);
	tqi_wbuf_reset(out);
	tq_err e = tqi_json_to_msgpack(p, len, out);
	free(p);
	return e;
}

static tq_err parse(const char *json, tqi_wbuf *out)
{
	return parse_exact(json, strlen(json), out);
}

/* The JSON text of msgpack bytes, or fails the test. Free the result. */
static char *to_json(const void *data, size_t len)
{
	char *out = NULL;
	tq_err e = tq_value_to_json(data, len, &out);
	if (e != TQ_OK)
		fail_msg("tq_value_to_json gave %s", tq_errname(e));
	assert_non_null(out);
	return out;
}

/* ---- JSON -> msgpack ------------------------------------------------- */

static void test_json_table(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *j = tqt_jsons(&n);
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	for (size_t i = 0; i < n; i++) {
		tq_err e = parse_exact(j[i].data, j[i].len, &w);
		if (e != (tq_err)j[i].want)
			fail_msg("%s: got %s, want %s", j[i].name, tq_errname(e),
			         tq_errname((tq_err)j[i].want));
		if (e == TQ_OK)
			assert_int_equal(tq_value_check(w.data, w.len, 0), TQ_OK);
		/* tq_pack_json says the same and leaves the buffer alone on error */
		tq_pack_nil(b);
		size_t before = tq_buf_size(b);
		assert_int_equal(tq_pack_json(b, (const char *)j[i].data, j[i].len), e);
		if (e == TQ_OK) {
			assert_int_equal(tq_buf_size(b), before + w.len);
			assert_memory_equal(tq_buf_data(b) + before, w.data, w.len);
		} else {
			assert_int_equal(tq_buf_size(b), before);
			assert_int_equal(tq_buf_error(b), TQ_OK);
		}
	}
	tq_buf_destroy(&b);
	tqi_wbuf_free(&w);
}

/* Parses json, which must be one scalar of type t1 or t2, reads it with
 * read(r, out) and checks that nothing follows it. */
static void parse_scalar(const char *json, tq_type t1, tq_type t2,
                         tq_err (*read)(tq_reader *r, void *out), void *out)
{
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	assert_int_equal(parse(json, &w), TQ_OK);
	tq_reader r;
	tq_type t;
	tq_reader_init(&r, w.data, w.len);
	assert_int_equal(tq_reader_peek(&r, &t), TQ_OK);
	if (t != t1 && t != t2)
		fail_msg("%s: type %d, want %d or %d", json, t, t1, t2);
	assert_int_equal(read(&r, out), TQ_OK);
	assert_int_equal(tq_reader_end(&r), TQ_OK);
	tqi_wbuf_free(&w);
}

static tq_err read_int(tq_reader *r, void *out)
{
	return tq_read_int(r, out);
}

static tq_err read_double(tq_reader *r, void *out)
{
	return tq_read_double(r, out);
}

static void json_int_is(const char *json, int64_t want)
{
	int64_t v;
	parse_scalar(json, TQ_TYPE_INT, TQ_TYPE_UINT, read_int, &v);
	assert_true(v == want);
}

static void json_double_is(const char *json, double want)
{
	double v;
	parse_scalar(json, TQ_TYPE_FLOAT, TQ_TYPE_FLOAT, read_double, &v);
	assert_memory_equal(&v, &want, sizeof v);
}

static void test_json_numbers(void **state)
{
	(void)state;
	json_int_is("0", 0);
	json_int_is("-0", 0);
	json_int_is("-1", -1);
	json_int_is("127", 127);
	json_int_is("-9223372036854775808", INT64_MIN);
	json_int_is("9223372036854775807", INT64_MAX);
	json_int_is("  42  ", 42);

	tqi_wbuf w;
	tqi_wbuf_init(&w);
	uint64_t u;
	tq_reader r;
	assert_int_equal(parse("18446744073709551615", &w), TQ_OK);
	tq_reader_init(&r, w.data, w.len);
	assert_int_equal(tq_read_uint(&r, &u), TQ_OK);
	assert_true(u == UINT64_MAX);
	tqi_wbuf_free(&w);

	/* too big for 64 bits: a double, as JSON allows */
	json_double_is("18446744073709551616", 18446744073709551616.0);
	json_double_is("-9223372036854775809", -9223372036854775809.0);
	json_double_is("123456789012345678901234567890123456789012345678901234567890123456789",
	               123456789012345678901234567890123456789012345678901234567890123456789.0);
	json_double_is("1.5", 1.5);
	json_double_is("-0.0", -0.0);
	json_double_is("0.0", 0.0);
	json_double_is("1e2", 100.0);
	json_double_is("1E+2", 100.0);
	json_double_is("2.5e-5", 2.5e-5);
	json_double_is("1e300", 1e300);
	json_double_is("1e999", INFINITY);
	json_double_is("-1e999", -INFINITY);
	json_double_is("1e-400", 0.0);
}

static void json_string_is(const char *json, const char *want, size_t wantlen)
{
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	tq_err e = parse(json, &w);
	if (e != TQ_OK)
		fail_msg("%s: got %s", json, tq_errname(e));
	tq_reader r;
	const char *s;
	size_t n;
	tq_reader_init(&r, w.data, w.len);
	assert_int_equal(tq_read_str(&r, &s, &n), TQ_OK);
	assert_int_equal(n, wantlen);
	assert_memory_equal(s, want, n);
	assert_int_equal(tq_reader_end(&r), TQ_OK);
	tqi_wbuf_free(&w);
}

#define JSON_STRING_IS(json, want) json_string_is(json, want, sizeof(want) - 1)

static void test_json_strings(void **state)
{
	(void)state;
	JSON_STRING_IS("\"\"", "");
	JSON_STRING_IS("\"abc\"", "abc");
	JSON_STRING_IS("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
	JSON_STRING_IS("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac");
	JSON_STRING_IS("\"\\u07ff\\u0800\\uffff\"", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
	JSON_STRING_IS("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"); /* U+1F600 */
	JSON_STRING_IS("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80"); /* U+10000 */
	JSON_STRING_IS("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	JSON_STRING_IS("\"a\\u0000b\"", "a\0b");
	JSON_STRING_IS("\"h\xc3\xa9llo \xf0\x9f\x98\x80\"", "h\xc3\xa9llo \xf0\x9f\x98\x80");
	JSON_STRING_IS("\"\x7f\"", "\x7f");
	/* the decoded text can be as long as the escaped one: a string of only
	 * escapes, and a long one that needs the heap */
	char *big = malloc(2 + 6 * 1000 + 1);
	char *want = malloc(3 * 1000);
	assert_non_null(big);
	assert_non_null(want);
	big[0] = '"';
	for (int i = 0; i < 1000; i++) {
		memcpy(big + 1 + 6 * i, "\\u20ac", 6);
		memcpy(want + 3 * i, "\xe2\x82\xac", 3);
	}
	strcpy(big + 1 + 6 * 1000, "\"");
	json_string_is(big, want, 3 * 1000);
	free(big);
	free(want);
}

static void test_json_containers(void **state)
{
	(void)state;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	tq_reader r;
	uint32_t n;
	const char *s;
	size_t len;
	assert_int_equal(parse("{\"a\": [1, {\"b\": null}], \"c\": {}}", &w), TQ_OK);
	tq_reader_init(&r, w.data, w.len);
	assert_int_equal(tq_read_map(&r, &n), TQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(tq_read_str(&r, &s, &len), TQ_OK);
	assert_memory_equal(s, "a", 1);
	assert_int_equal(tq_read_array(&r, &n), TQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(tq_read_skip(&r), TQ_OK);
	assert_int_equal(tq_read_map(&r, &n), TQ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(tq_read_skip(&r), TQ_OK);
	assert_int_equal(tq_read_nil(&r), TQ_OK);
	assert_int_equal(tq_read_str(&r, &s, &len), TQ_OK);
	assert_int_equal(tq_read_map(&r, &n), TQ_OK);
	assert_int_equal(n, 0);
	assert_int_equal(tq_reader_end(&r), TQ_OK);

	/* the container headers shrink to the count: 15, 16, 65535, 65536 */
	static const struct {
		uint32_t count;
		uint8_t arr, map;
		size_t hdr;
	} sizes[] = { { 15, 0x9f, 0x8f, 1 },
		      { 16, 0xdc, 0xde, 3 },
		      { 65535, 0xdc, 0xde, 3 },
		      { 65536, 0xdd, 0xdf, 5 } };
	for (size_t k = 0; k < 4; k++) {
		for (int is_map = 0; is_map < 2; is_map++) {
			uint32_t c = sizes[k].count;
			size_t per = is_map ? 5 : 2; /* "\"\":0," or "0," */
			char *text = malloc(2 + per * c + 1);
			assert_non_null(text);
			size_t p = 0;
			text[p++] = is_map ? '{' : '[';
			for (uint32_t i = 0; i < c; i++) {
				memcpy(text + p, is_map ? "\"\":0," : "0,", per);
				p += per;
			}
			text[p - 1] = is_map ? '}' : ']';
			text[p] = '\0';
			assert_int_equal(parse(text, &w), TQ_OK);
			free(text);
			assert_int_equal(w.data[0], is_map ? sizes[k].map : sizes[k].arr);
			assert_int_equal(w.len, sizes[k].hdr + (size_t)c * (is_map ? 2 : 1));
			tq_reader_init(&r, w.data, w.len);
			assert_int_equal(is_map ? tq_read_map(&r, &n) : tq_read_array(&r, &n),
			                 TQ_OK);
			assert_int_equal(n, c);
			assert_int_equal(tq_value_check(w.data, w.len, 0), TQ_OK);
		}
	}
	tqi_wbuf_free(&w);
}

static void test_json_depth(void **state)
{
	(void)state;
	char text[2 * (TQ_MAX_DEPTH + 2) + 1];
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	for (int depth = TQ_MAX_DEPTH - 1; depth <= TQ_MAX_DEPTH + 2; depth++) {
		memset(text, '[', (size_t)depth);
		memset(text + depth, ']', (size_t)depth);
		text[2 * depth] = '\0';
		tq_err want = depth <= TQ_MAX_DEPTH ? TQ_OK : TQ_EDEPTH;
		assert_int_equal(parse(text, &w), want);
		if (want == TQ_OK) {
			assert_int_equal(tq_value_check(w.data, w.len, 0), TQ_OK);
			char *out = to_json(w.data, w.len);
			assert_string_equal(out, text);
			free(out);
		}
	}
	/* a deep value inside a wide one: depth is nesting, not count */
	char wide[4 * 100 + 3];
	strcpy(wide, "[");
	for (int i = 0; i < 100; i++)
		strcat(wide, i ? ",[1]" : "[1]");
	strcat(wide, "]");
	assert_int_equal(parse(wide, &w), TQ_OK);
	tqi_wbuf_free(&w);
}

static void test_json_parse_value_positions(void **state)
{
	(void)state;
	const char *line = " 1 [2,3]\t{\"a\":\"b\"} \"s\"  ";
	size_t len = strlen(line), pos = 0;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	static const size_t ends[] = { 2, 8, 18, 22 };
	for (int i = 0; i < 4; i++) {
		tqi_wbuf_reset(&w);
		assert_int_equal(tqi_json_parse_value(line, len, &pos, &w), TQ_OK);
		assert_int_equal(pos, ends[i]);
		assert_int_equal(tq_value_check(w.data, w.len, 0), TQ_OK);
	}
	tqi_wbuf_reset(&w);
	assert_int_equal(tqi_json_parse_value(line, len, &pos, &w), TQ_EINVAL);
	assert_int_equal(pos, ends[3]); /* not moved on error */
	tqi_wbuf_free(&w);
}

/* ---- msgpack -> JSON --------------------------------------------------- */

#define MP(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static const struct {
	const uint8_t *mp;
	size_t len;
	const char *json;
} to_json_cases[] = {
	{ MP(0xc0), "null" },
	{ MP(0xc3), "true" },
	{ MP(0xc2), "false" },
	{ MP(0x00), "0" },
	{ MP(0xff), "-1" },
	{ MP(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "18446744073709551615" },
	{ MP(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), "-9223372036854775808" },
	/* floats keep a '.' (or an exponent) so they read back as floats */
	{ MP(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), "1.5" },
	{ MP(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0), "1.0" },
	{ MP(0xcb, 0x40, 0x59, 0, 0, 0, 0, 0, 0), "100.0" },
	{ MP(0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0), "-0.0" },
	{ MP(0xcb, 0, 0, 0, 0, 0, 0, 0, 0), "0.0" },
	{ MP(0xcb, 0x44, 0x15, 0xaf, 0x1d, 0x78, 0xb5, 0x8c, 0x40), "1e+20" },
	{ MP(0xca, 0x3d, 0xcc, 0xcc, 0xcd), "0.10000000149011612" },
	{ MP(0xca, 0x40, 0x40, 0, 0), "3.0" },
	/* NaN and the infinities have no JSON form */
	{ MP(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), "null" },
	{ MP(0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0), "null" },
	{ MP(0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0), "null" },
	{ MP(0xca, 0x7f, 0xc0, 0, 0), "null" },
	/* strings: escapes */
	{ MP(0xa0), "\"\"" },
	{ MP(0xa5, 'a', '"', 'b', '\\', '/'), "\"a\\\"b\\\\/\"" },
	{ MP(0xa4, 0x01, '\n', 0x1f, 0x7f), "\"\\u0001\\u000a\\u001f\x7f\"" },
	{ MP(0xa3, 'a', 0x00, 'b'), "\"a\\u0000b\"" },
	/* valid UTF-8 passes through */
	{ MP(0xa9, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80),
	  "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"" },
	/* invalid UTF-8: one U+FFFD per byte that does not start a valid sequence */
	{ MP(0xa3, 'a', 0xff, 'b'), "\"a\\ufffdb\"" },
	{ MP(0xa2, 0xc0, 0x80), "\"\\ufffd\\ufffd\"" },                           /* overlong NUL */
	{ MP(0xa3, 0xe0, 0x80, 0x80), "\"\\ufffd\\ufffd\\ufffd\"" },              /* overlong */
	{ MP(0xa3, 0xed, 0xa0, 0x80), "\"\\ufffd\\ufffd\\ufffd\"" },              /* surrogate */
	{ MP(0xa4, 0xf4, 0x90, 0x80, 0x80), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* > U+10FFFF */
	{ MP(0xa2, 0xe2, 0x82), "\"\\ufffd\\ufffd\"" },                           /* cut short */
	{ MP(0xa2, 0x80, 'x'), "\"\\ufffdx\"" }, /* lone continuation */
	{ MP(0xa1, 0xf8), "\"\\ufffd\"" },
	/* binaries become base64 (RFC 4648 test vectors) */
	{ MP(0xc4, 0), "\"\"" },
	{ MP(0xc4, 1, 'f'), "\"Zg==\"" },
	{ MP(0xc4, 2, 'f', 'o'), "\"Zm8=\"" },
	{ MP(0xc4, 3, 'f', 'o', 'o'), "\"Zm9v\"" },
	{ MP(0xc4, 4, 'f', 'o', 'o', 'b'), "\"Zm9vYg==\"" },
	{ MP(0xc4, 5, 'f', 'o', 'o', 'b', 'a'), "\"Zm9vYmE=\"" },
	{ MP(0xc4, 6, 'f', 'o', 'o', 'b', 'a', 'r'), "\"Zm9vYmFy\"" },
	{ MP(0xc4, 3, 0xfb, 0xff, 0xfe), "\"+//+\"" },
	/* extensions */
	{ MP(0xd4, 1, 0), "\"<msgpack ext>\"" },
	/* containers, and keys that are not strings */
	{ MP(0x93, 0x01, 0x92, 0x02, 0x90, 0x80), "[1,[2,[]],{}]" },
	{ MP(0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc0), "{\"a\":1,\"b\":null}" },
	{ MP(0x81, 0x01, 0xa1, 'a'), "{\"1\":\"a\"}" },
	{ MP(0x81, 0xff, 0xc3), "{\"-1\":true}" },
	{ MP(0x81, 0xc0, 0x01), "{\"null\":1}" },
	{ MP(0x81, 0xc2, 0x01), "{\"false\":1}" },
	{ MP(0x81, 0x92, 0x01, 0x02, 0x01), "{\"[1,2]\":1}" },
	{ MP(0x81, 0x81, 0xa1, 'k', 0xa1, 'v', 0x01), "{\"{\\\"k\\\":\\\"v\\\"}\":1}" },
	{ MP(0x81, 0xc4, 1, 'f', 0x01), "{\"\\\"Zg==\\\"\":1}" },
	{ MP(0x81, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x00), "{\"1.5\":0}" },
};

static void test_to_json_cases(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof to_json_cases / sizeof to_json_cases[0]; k++) {
		char *out = to_json(to_json_cases[k].mp, to_json_cases[k].len);
		if (strcmp(out, to_json_cases[k].json) != 0)
			fail_msg("case %zu: got %s, want %s", k, out, to_json_cases[k].json);
		/* and the text is JSON that parses back */
		tqi_wbuf w;
		tqi_wbuf_init(&w);
		assert_int_equal(parse(out, &w), TQ_OK);
		tqi_wbuf_free(&w);
		free(out);
	}
}

/* Every float comes out with a '.' or an exponent, or as null. */
static void test_to_json_floats_stay_floats(void **state)
{
	(void)state;
	tq_buf *b;
	assert_int_equal(tq_buf_new(&b), TQ_OK);
	for (int e = -320; e <= 308; e += 7) {
		for (int m = 1; m <= 9; m += 4) {
			double d = m * pow(10, e);
			tq_buf_reset(b);
			tq_pack_double(b, d);
			char *out = to_json(tq_buf_data(b), tq_buf_size(b));
			assert_non_null(strpbrk(out, ".eE"));
			/* and reads back as the same double */
			tqi_wbuf w;
			tqi_wbuf_init(&w);
			assert_int_equal(parse(out, &w), TQ_OK);
			tq_reader r;
			tq_type t;
			double back;
			tq_reader_init(&r, w.data, w.len);
			assert_int_equal(tq_reader_peek(&r, &t), TQ_OK);
			assert_int_equal(t, TQ_TYPE_FLOAT);
			assert_int_equal(tq_read_double(&r, &back), TQ_OK);
			assert_memory_equal(&back, &d, sizeof d);
			tqi_wbuf_free(&w);
			free(out);
		}
	}
	tq_buf_destroy(&b);
}

static void test_to_json_rejects_what_check_rejects(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *v = tqt_values(&n);
	for (size_t i = 0; i < n; i++) {
		char *copy = malloc(v[i].len ? v[i].len : 1);
		assert_non_null(copy);
		if (v[i].len > 0)
			memcpy(copy, v[i].data, v[i].len);
		char *out = NULL;
		tq_err want = tq_value_check(copy, v[i].len, 0);
		tq_err e = tq_value_to_json(copy, v[i].len, &out);
		if (e != want) {
			free(copy);
			if (e == TQ_OK)
				free(out);
			fail_msg("%s: tq_value_to_json gave %s, tq_value_check %s", v[i].name,
			         tq_errname(e), tq_errname(want));
		}
		if (e == TQ_OK) {
			tqi_wbuf w;
			tqi_wbuf_init(&w);
			tq_err pe = parse(out, &w);
			if (pe != TQ_OK)
				fail_msg("%s: its JSON %s does not parse back: %s", v[i].name, out,
				         tq_errname(pe));
			tqi_wbuf_free(&w);
			free(out);
		}
		free(copy);
	}
}

/* JSON -> msgpack -> JSON -> msgpack: after one trip the text is stable. */
static void test_round_trip(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *j = tqt_jsons(&n);
	tqi_wbuf w1, w2;
	tqi_wbuf_init(&w1);
	tqi_wbuf_init(&w2);
	for (size_t i = 0; i < n; i++) {
		if (j[i].want != TQ_OK)
			continue;
		assert_int_equal(parse_exact(j[i].data, j[i].len, &w1), TQ_OK);
		char *text1 = to_json(w1.data, w1.len);
		assert_int_equal(parse(text1, &w2), TQ_OK);
		char *text2 = to_json(w2.data, w2.len);
		if (strcmp(text1, text2) != 0)
			fail_msg("%s: %s then %s", j[i].name, text1, text2);
		/* no infinity in it: the msgpack is the same too */
		if (strstr(j[i].name, "huge") == NULL) {
			assert_int_equal(w1.len, w2.len);
			assert_memory_equal(w1.data, w2.data, w1.len);
		}
		free(text1);
		free(text2);
	}
	tqi_wbuf_free(&w1);
	tqi_wbuf_free(&w2);
}

/* A map whose key is a map whose key is a map...: each level escapes the
 * one inside it, so the text must not grow exponentially with the depth. */
static void test_to_json_nested_keys_stay_bounded(void **state)
{
	(void)state;
	enum { DEPTH = 20 };
	uint8_t mp[2 * DEPTH + 1];
	memset(mp, 0x81, DEPTH);
	mp[DEPTH] = 0xa0;
	memset(mp + DEPTH + 1, 0xc0, DEPTH);
	assert_int_equal(tq_value_check(mp, sizeof mp, 0), TQ_OK);
	char *out = NULL;
	tq_err e = tq_value_to_json(mp, sizeof mp, &out);
	if (e == TQ_OK) {
		size_t len = strlen(out);
		free(out);
		if (len > 64 * sizeof mp)
			fail_msg("%zu bytes of msgpack made %zu bytes of JSON", sizeof mp, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_table),
		cmocka_unit_test(test_json_numbers),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_json_containers),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_json_parse_value_positions),
		cmocka_unit_test(test_to_json_cases),
		cmocka_unit_test(test_to_json_floats_stay_floats),
		cmocka_unit_test(test_to_json_rejects_what_check_rejects),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_to_json_nested_keys_stay_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
