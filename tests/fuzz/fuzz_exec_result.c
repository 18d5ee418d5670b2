/*
 * fuzz_exec_result.c - tqi_exec_result_parse on any bytes (a result frame
 * from an executor whose handler may have written over its memory).
 *
 * Oracles: the verdict matches the frame layout stated in executor.h, and
 * what it returns lies inside the frame, as the worker's loop uses it.
 */
#include "tests/fuzz/fuzz.h"

#include "proto/wire.h"
#include "worker/executor.h"

#include <string.h>

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* type 2 | u32 code | u32 text length | u32 run time | text | result */
	int want = size >= 13 && data[0] == TQI_EXEC_RESULT && le32(data + 5) <= TQI_MAX_TEXT &&
	                   le32(data + 5) <= size - 13
	               ? 0
	               : -1;
	tqi_exec_result res;
	int rc = tqi_exec_result_parse(data, size, &res);
	FUZZ_CHECK(rc == want);
	if (rc != 0)
		return 0;
	FUZZ_CHECK(res.code == le32(data + 1));
	FUZZ_CHECK(res.run_us == le32(data + 9));
	FUZZ_CHECK(res.text == (const char *)data + 13);
	FUZZ_CHECK(res.text_len == le32(data + 5));
	FUZZ_CHECK(res.payload_off == 13 + res.text_len && res.payload_off <= size);
	/* use it as the worker's loop does */
	char text[TQI_MAX_TEXT + 1];
	memcpy(text, res.text, res.text_len);
	text[res.text_len] = '\0';
	uint8_t sum = 0;
	for (size_t i = res.payload_off; i < size; i++)
		sum ^= data[i];
	(void)sum;
	return 0;
}
