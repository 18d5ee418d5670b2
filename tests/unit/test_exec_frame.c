/*
 * test_exec_frame.c - the frames between a worker's loop and its executor
 * processes: tqi_exec_result_parse on good and hostile result frames (an
 * executor's handler can scribble over its memory, so the loop trusts
 * nothing it sends), with the run time the executor measured, and the
 * layout of the task header (its deadline is absolute, on the host's
 * monotonic clock).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/wire.h"
#include "tests/unit/messages.h"
#include "worker/executor.h"

#include <stdlib.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The bytes of a result frame's body before its text: type, code, text
 * length, run time. */
#define FIXED 13

/* A result frame body as an executor writes it. Free the result. */
static uint8_t *result_frame(uint32_t code, uint32_t run_us, const char *text, size_t tlen,
                             const void *payload, size_t plen, size_t *len)
{
	*len = FIXED + tlen + plen;
	uint8_t *f = malloc(*len);
	assert_non_null(f);
	f[0] = TQI_EXEC_RESULT;
	put32(f + 1, code);
	put32(f + 5, (uint32_t)tlen);
	put32(f + 9, run_us);
	if (tlen > 0)
		memcpy(f + FIXED, text, tlen);
	if (plen > 0)
		memcpy(f + FIXED + tlen, payload, plen);
	return f;
}

static int parse_exact(const uint8_t *data, size_t len, tqi_exec_result *out, uint8_t **keep)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	int rc = tqi_exec_result_parse(copy, len, out);
	*keep = copy;
	return rc;
}

static void test_frames_table(void **state)
{
	(void)state;
	size_t n;
	const tqt_bytes *fr = tqt_exec_frames(&n);
	for (size_t i = 0; i < n; i++) {
		tqi_exec_result res;
		uint8_t *copy;
		size_t len = fr[i].len;
		int rc = parse_exact(fr[i].data, len, &res, &copy);
		if (rc != fr[i].want)
			fail_msg("%s: got %d, want %d", fr[i].name, rc, fr[i].want);
		if (rc == 0) {
			assert_true(res.text_len <= TQI_MAX_TEXT);
			assert_int_equal(res.run_us, TQT_SAMPLE_RUN_US);
			assert_ptr_equal(res.text, (const char *)copy + FIXED);
			assert_int_equal(res.payload_off, FIXED + res.text_len);
			assert_true(res.payload_off <= len);
		}
		free(copy);
	}
}

static void test_good_frames(void **state)
{
	(void)state;
	static const struct {
		uint32_t code, run_us;
		const char *text;
		size_t plen;
	} cases[] = { { TQ_OK, 0, "", 1 },
		      { TQ_OK, 1, "", 0 },
		      { TQ_EFAILED, 250000, "handler failed", 0 },
		      { TQ_EPROTO, 0x80000000u, "x", 5 },
		      { UINT32_MAX, UINT32_MAX, "t", 1000 } };
	uint8_t payload[1000];
	memset(payload, 0xc0, sizeof payload);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t len, tlen = strlen(cases[k].text);
		uint8_t *f = result_frame(cases[k].code, cases[k].run_us, cases[k].text, tlen,
		                          payload, cases[k].plen, &len);
		tqi_exec_result res;
		assert_int_equal(tqi_exec_result_parse(f, len, &res), 0);
		assert_true(res.code == cases[k].code);
		assert_true(res.run_us == cases[k].run_us);
		assert_int_equal(res.text_len, tlen);
		assert_memory_equal(res.text, cases[k].text, tlen);
		assert_int_equal(res.payload_off, FIXED + tlen);
		assert_int_equal(len - res.payload_off, cases[k].plen);
		free(f);
	}
	/* the longest text allowed */
	char *text = malloc(TQI_MAX_TEXT + 1);
	assert_non_null(text);
	memset(text, 'e', TQI_MAX_TEXT + 1);
	size_t len;
	uint8_t *f = result_frame(TQ_EFAILED, 7, text, TQI_MAX_TEXT, NULL, 0, &len);
	tqi_exec_result res;
	assert_int_equal(tqi_exec_result_parse(f, len, &res), 0);
	assert_int_equal(res.text_len, TQI_MAX_TEXT);
	assert_int_equal(res.payload_off, len);
	free(f);
	/* one more is refused, even with every byte present */
	f = result_frame(TQ_EFAILED, 7, text, TQI_MAX_TEXT + 1, NULL, 0, &len);
	assert_int_equal(tqi_exec_result_parse(f, len, &res), -1);
	free(f);
	free(text);
}

static void test_truncated_at_every_length(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = result_frame(TQ_EFAILED, 42, "boom", 4, "\x92\x01\x02", 3, &len);
	for (size_t cut = 0; cut <= len; cut++) {
		tqi_exec_result res;
		uint8_t *copy;
		int rc = parse_exact(f, cut, &res, &copy);
		/* the header and the text must be whole; the result's bytes are
		 * opaque here and may be cut */
		assert_int_equal(rc, cut >= FIXED + 4 ? 0 : -1);
		if (rc == 0) {
			assert_int_equal(res.text_len, 4);
			assert_int_equal(res.run_us, 42);
			assert_int_equal(res.payload_off, FIXED + 4);
		}
		free(copy);
	}
	free(f);
}

static void test_hostile_lengths(void **state)
{
	(void)state;
	/* a text length at every bit, with 16 bytes present after the header */
	for (int bit = 0; bit < 32; bit++) {
		uint8_t f[FIXED + 16];
		memset(f, 'x', sizeof f);
		f[0] = TQI_EXEC_RESULT;
		put32(f + 1, 0);
		uint32_t tlen = (uint32_t)1 << bit;
		put32(f + 5, tlen);
		put32(f + 9, tlen); /* a run time like it, to be sure which is which */
		tqi_exec_result res;
		uint8_t *copy;
		int rc = parse_exact(f, sizeof f, &res, &copy);
		assert_int_equal(rc, tlen <= 16 ? 0 : -1);
		free(copy);
	}
	/* every type byte but the result's */
	for (unsigned t = 0; t < 256; t++) {
		uint8_t f[FIXED] = { (uint8_t)t };
		tqi_exec_result res;
		assert_int_equal(tqi_exec_result_parse(f, sizeof f, &res),
		                 t == TQI_EXEC_RESULT ? 0 : -1);
	}
}

static void test_task_header(void **state)
{
	(void)state;
	uint8_t hdr[TQI_EXEC_TASK_HDR];
	const uint8_t ref[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	tqi_exec_task_header(hdr, 7, 3, 0, ref, 0x0a0b0c0d, 100);
	static const uint8_t want[] = { /* len: everything after itself */
		                        TQI_EXEC_TASK_HDR - 4 + 100, 0, 0, 0,
		                        /* type, function index, attempt */
		                        TQI_EXEC_TASK, 7, 0, 0, 0, 3, 0, 0, 0,
		                        /* deadline: 0 (none), little-endian 64-bit */
		                        0, 0, 0, 0, 0, 0, 0, 0,
		                        /* ref */
		                        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		                        /* ticket */
		                        0x0d, 0x0c, 0x0b, 0x0a
	};
	assert_int_equal(sizeof want, TQI_EXEC_TASK_HDR);
	assert_memory_equal(hdr, want, sizeof want);
	tqi_exec_task_header(hdr, 0x01020304, 0, 0x0000000500000006ULL, ref, 0, 0);
	assert_memory_equal(hdr + 5, "\x04\x03\x02\x01", 4);
	assert_memory_equal(hdr + 13, "\x06\x00\x00\x00\x05\x00\x00\x00", 8);
	/* an absolute deadline uses all 64 bits, the top one too */
	tqi_exec_task_header(hdr, 0, 0, UINT64_MAX - 1, ref, 0, 0);
	assert_memory_equal(hdr + 13, "\xfe\xff\xff\xff\xff\xff\xff\xff", 8);
}

static void test_result_header_size(void **state)
{
	(void)state;
	/* u32 len | u8 type | u32 code | u32 text length | u32 run time */
	assert_int_equal(TQI_EXEC_RESULT_HDR, 4 + FIXED);
	/* a frame of the layout before the run time is too short now */
	uint8_t f[FIXED - 1] = { TQI_EXEC_RESULT };
	for (size_t len = 0; len <= sizeof f; len++) {
		tqi_exec_result res;
		assert_int_equal(tqi_exec_result_parse(f, len, &res), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_table),
		cmocka_unit_test(test_good_frames),
		cmocka_unit_test(test_truncated_at_every_length),
		cmocka_unit_test(test_hostile_lengths),
		cmocka_unit_test(test_task_header),
		cmocka_unit_test(test_result_header_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
