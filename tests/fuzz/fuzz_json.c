/*
 * fuzz_json.c - tqi_json_to_msgpack on any text (not NUL-terminated).
 *
 * Oracles: a rejection is EINVAL or EDEPTH; what it accepts is one
 * well-formed msgpack value that tq_value_to_json can write; that text
 * parses back, and is stable after one more (lossy) trip.
 */
#include "tests/fuzz/fuzz.h"

#include "proto/json.h"
#include "proto/wbuf.h"
#include "tq/value.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	tq_err e = tqi_json_to_msgpack((const char *)data, size, &w);
	if (e != TQ_OK) {
		FUZZ_CHECK(e == TQ_EINVAL || e == TQ_EDEPTH);
		tqi_wbuf_free(&w);
		return 0;
	}
	FUZZ_CHECK(tq_value_check(w.data, w.len, 0) == TQ_OK);

	/* the value parsed alone from the start ends where the text does,
	 * but for white space */
	size_t pos = 0;
	tqi_wbuf one;
	tqi_wbuf_init(&one);
	FUZZ_CHECK(tqi_json_parse_value((const char *)data, size, &pos, &one) == TQ_OK);
	FUZZ_CHECK(one.len == w.len && memcmp(one.data, w.data, w.len) == 0);
	for (size_t i = pos; i < size; i++)
		FUZZ_CHECK(data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r');
	tqi_wbuf_free(&one);

	/* the text parses back; after one lossy trip (invalid UTF-8 becomes
	 * U+FFFD, infinities null) it is stable */
	char *text = NULL, *text2 = NULL, *text3 = NULL;
	FUZZ_CHECK(tq_value_to_json(w.data, w.len, &text) == TQ_OK);
	tqi_wbuf w2;
	tqi_wbuf_init(&w2);
	FUZZ_CHECK(tqi_json_to_msgpack(text, strlen(text), &w2) == TQ_OK);
	FUZZ_CHECK(tq_value_to_json(w2.data, w2.len, &text2) == TQ_OK);
	tqi_wbuf_reset(&w2);
	FUZZ_CHECK(tqi_json_to_msgpack(text2, strlen(text2), &w2) == TQ_OK);
	FUZZ_CHECK(tq_value_to_json(w2.data, w2.len, &text3) == TQ_OK);
	FUZZ_CHECK(strcmp(text2, text3) == 0);
	free(text);
	free(text2);
	free(text3);
	tqi_wbuf_free(&w2);
	tqi_wbuf_free(&w);
	return 0;
}
