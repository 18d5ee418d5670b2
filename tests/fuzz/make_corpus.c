/*
 * make_corpus.c - writes the seed corpus of every fuzz target from the
 * unit tests' sample messages (tests/unit/messages.c):
 *
 *   DIR/fuzz_envelope/     every sample envelope, encoded, and every hostile one
 *   DIR/fuzz_value/        every msgpack sample, and the field lists of the envelopes
 *   DIR/fuzz_json/         every JSON sample, and the JSON text of the msgpack ones
 *   DIR/fuzz_exec_result/  every executor result frame
 *
 *   fuzz_make_corpus DIR
 */
#include "proto/json.h"
#include "proto/wire.h"
#include "tests/unit/messages.h"
#include "tq/value.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root;
static int failed;

static void make_dir(const char *target)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", root, target);
	if (mkdir(root, 0777) != 0 && errno != EEXIST)
		perror(root), failed = 1;
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		perror(path), failed = 1;
}

static void put(const char *target, const char *prefix, const char *name, const void *data,
                size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s/%s-%s", root, target, prefix, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		failed = 1;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	make_dir("fuzz_envelope");
	make_dir("fuzz_value");
	make_dir("fuzz_json");
	make_dir("fuzz_exec_result");

	size_t n;
	tqi_wbuf w;
	tqi_wbuf_init(&w);
	const tqt_env_sample *s = tqt_env_samples(&n);
	for (size_t i = 0; i < n; i++) {
		if (tqi_env_encode(&s[i].env, &w) != TQ_OK) {
			fprintf(stderr, "%s: does not encode\n", s[i].name);
			failed = 1;
			continue;
		}
		put("fuzz_envelope", "env", s[i].name, w.data, w.len);
		put("fuzz_value", "fields", s[i].name, w.data + TQI_HDR_LEN, w.len - TQI_HDR_LEN);
	}
	const tqt_bytes *b = tqt_bad_envelopes(&n);
	for (size_t i = 0; i < n; i++)
		put("fuzz_envelope", "bad", b[i].name, b[i].data, b[i].len);

	b = tqt_values(&n);
	for (size_t i = 0; i < n; i++) {
		put("fuzz_value", "value", b[i].name, b[i].data, b[i].len);
		char *json;
		if (tq_value_to_json(b[i].data, b[i].len, &json) == TQ_OK) {
			put("fuzz_json", "value", b[i].name, json, strlen(json));
			free(json);
		}
	}

	b = tqt_jsons(&n);
	for (size_t i = 0; i < n; i++) {
		put("fuzz_json", "json", b[i].name, b[i].data, b[i].len);
		tqi_wbuf_reset(&w);
		if (tqi_json_to_msgpack((const char *)b[i].data, b[i].len, &w) == TQ_OK)
			put("fuzz_value", "json", b[i].name, w.data, w.len);
	}

	b = tqt_exec_frames(&n);
	for (size_t i = 0; i < n; i++)
		put("fuzz_exec_result", "frame", b[i].name, b[i].data, b[i].len);
	tqi_wbuf_free(&w);
	return failed;
}
