/*
 * messages.h - the sample messages of the codec tests, in one table.
 *
 * The unit tests check every entry (a round trip for the good envelopes,
 * the stated error for the others), and tests/fuzz/make_corpus.c writes
 * the same entries out as the seed corpus of the fuzz targets, so what the
 * unit tests know about the wire is where the fuzzers start from.
 *
 * Helpers shared by the tests are prefixed tqt_ (test), apart from the
 * library's tq_ and tqi_.
 */
#ifndef TQT_MESSAGES_H
#define TQT_MESSAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"
#include "tq/err.h"

/* A valid envelope: encoding env and decoding the bytes gives env back. */
typedef struct {
	const char *name;
	tqi_env env;
} tqt_env_sample;

/* Some bytes and what their decoder must say about them: a tq_err for the
 * msgpack, JSON and envelope decoders, 0 or -1 for tqi_exec_result_parse. */
typedef struct {
	const char *name;
	const uint8_t *data;
	size_t len;
	int want;
} tqt_bytes;

/* Every command at least once, with its limits' boundary values. */
const tqt_env_sample *tqt_env_samples(size_t *n);

/* Hostile envelopes and their distinct errors (ETRUNCATED, EMAGIC, ...). */
const tqt_bytes *tqt_bad_envelopes(size_t *n);

/* msgpack values, good and hostile, with tq_value_check's verdict at the
 * default depth (TQ_MAX_DEPTH). */
const tqt_bytes *tqt_values(size_t *n);

/* JSON texts with tqi_json_to_msgpack's verdict. */
const tqt_bytes *tqt_jsons(size_t *n);

/* Result frames from an executor (the bytes after the length), with
 * tqi_exec_result_parse's verdict; the good ones ran TQT_SAMPLE_RUN_US. */
#define TQT_SAMPLE_RUN_US 0x01020304u
const tqt_bytes *tqt_exec_frames(size_t *n);

/* True when a and b hold the same command with the same field values
 * (strings and lists compared by content, not by address). */
bool tqt_env_equal(const tqi_env *a, const tqi_env *b);

#endif
