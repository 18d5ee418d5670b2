/*
 * fuzz_value.c - tq_value_check, tq_reader and tq_value_to_json on any
 * bytes.
 *
 * Oracles: the reader's typed functions walk a checked value to its exact
 * end without an error; tq_pack_msgpack and tq_value_to_json give the same
 * verdict as tq_value_check (the JSON writer may also refuse a value whose
 * text would be too big); and the JSON text of a value parses back, and
 * is stable after one (lossy) trip through msgpack.
 */
#include "tests/fuzz/fuzz.h"

#include "proto/json.h"
#include "proto/wbuf.h"
#include "tq/value.h"

#include <string.h>

/* Reads one item with the function made for its type; returns 0 or -1. */
static int walk(tq_reader *r, int depth)
{
	tq_type t;
	if (tq_reader_peek(r, &t) != TQ_OK)
		return -1;
	size_t left = tq_reader_left(r);
	bool b;
	int64_t i;
	uint64_t u;
	double d;
	const char *s;
	const uint8_t *p;
	size_t n;
	uint32_t c;
	tq_err e;
	switch (t) {
	case TQ_TYPE_NIL:
		e = tq_read_nil(r);
		break;
	case TQ_TYPE_BOOL:
		e = tq_read_bool(r, &b);
		break;
	case TQ_TYPE_INT:
		e = tq_read_int(r, &i);
		FUZZ_CHECK(e != TQ_OK || i < 0);
		break;
	case TQ_TYPE_UINT:
		e = tq_read_uint(r, &u);
		break;
	case TQ_TYPE_FLOAT:
		e = tq_read_double(r, &d);
		break;
	case TQ_TYPE_STR:
		e = tq_read_str(r, &s, &n);
		if (e == TQ_OK && n > 0)
			FUZZ_CHECK((const uint8_t *)s + n == r->p_);
		break;
	case TQ_TYPE_BIN:
		e = tq_read_bin(r, &p, &n);
		if (e == TQ_OK && n > 0)
			FUZZ_CHECK(p + n == r->p_);
		break;
	case TQ_TYPE_EXT:
		e = tq_read_value(r, &p, &n);
		break;
	case TQ_TYPE_ARRAY:
	case TQ_TYPE_MAP:
		if (depth >= TQ_MAX_DEPTH)
			return -1;
		e = t == TQ_TYPE_ARRAY ? tq_read_array(r, &c) : tq_read_map(r, &c);
		if (e != TQ_OK)
			return -1;
		for (uint64_t k = 0; k < (t == TQ_TYPE_MAP ? 2ULL * c : c); k++)
			if (walk(r, depth + 1) != 0)
				return -1;
		return 0;
	default:
		return -1;
	}
	if (e != TQ_OK) {
		FUZZ_CHECK(tq_reader_left(r) == left); /* no move on error */
		return -1;
	}
	FUZZ_CHECK(tq_reader_left(r) < left);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tq_err check = tq_value_check(data, size, 0);

	tq_buf *b;
	FUZZ_CHECK(tq_buf_new(&b) == TQ_OK);
	FUZZ_CHECK(tq_pack_msgpack(b, data, size) == check);
	FUZZ_CHECK(tq_buf_size(b) == (check == TQ_OK ? size : 0));
	tq_buf_destroy(&b);

	char *json = NULL;
	tq_err e = tq_value_to_json(data, size, &json);
	/* Same verdict, except that JSON text may be refused for its size
	 * (container keys escaped at every level of nesting). */
	FUZZ_CHECK(e == check || (check == TQ_OK && e == TQ_ETOOBIG));
	if (e != TQ_OK)
		return 0;

	tq_reader r;
	tq_reader_init(&r, data, size);
	FUZZ_CHECK(walk(&r, 0) == 0);
	FUZZ_CHECK(tq_reader_end(&r) == TQ_OK);

	/* the text parses back; after that one lossy trip (invalid UTF-8
	 * becomes U+FFFD, binaries strings, ...) the text is stable */
	char *text1 = NULL, *text2 = NULL;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	FUZZ_CHECK(tqi_json_to_msgpack(json, strlen(json), &w) == TQ_OK);
	FUZZ_CHECK(tq_value_check(w.data, w.len, 0) == TQ_OK);
	FUZZ_CHECK(tq_value_to_json(w.data, w.len, &text1) == TQ_OK);
	tqi_wbuf_reset(&w);
	FUZZ_CHECK(tqi_json_to_msgpack(text1, strlen(text1), &w) == TQ_OK);
	FUZZ_CHECK(tq_value_to_json(w.data, w.len, &text2) == TQ_OK);
	FUZZ_CHECK(strcmp(text1, text2) == 0);
	free(text1);
	free(text2);
	tqi_wbuf_free(&w);
	free(json);
	return 0;
}
