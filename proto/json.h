/* json.h - JSON text to msgpack (the other direction is the public
 * tq_value_to_json). */
#ifndef TQI_JSON_H
#define TQI_JSON_H

#include "proto/wbuf.h"
#include "tq/err.h"

/* Parses exactly one JSON value from json[0..len) (whitespace around it is
 * allowed) and appends its msgpack encoding to out.  TQ_EINVAL on malformed
 * JSON, TQ_EDEPTH past TQ_MAX_DEPTH, TQ_ENOMEM.  On error out may hold a
 * partial value: callers write into a scratch buffer. */
tq_err tqi_json_to_msgpack(const char *json, size_t len, tqi_wbuf *out);

/* Like tqi_json_to_msgpack, but parses one value at *pos and leaves *pos
 * after it (for a line holding several values). */
tq_err tqi_json_parse_value(const char *json, size_t len, size_t *pos, tqi_wbuf *out);

#endif
