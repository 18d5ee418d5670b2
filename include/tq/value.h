/*
 * tq/value.h - building and reading task arguments and results.
 *
 * Arguments and results travel as MessagePack.  tq_buf builds a value
 * (integers, floats, strings, binaries, arrays, maps, or JSON text), and
 * tq_reader reads one, so nobody hand-writes msgpack; raw msgpack bytes
 * are accepted wherever a tq_buf's bytes are.
 *
 * By convention a task's arguments are one array (the argument list) and
 * its result is one value.
 *
 * The reader works on the caller's bytes and never allocates: strings and
 * binaries it returns point into those bytes and are not NUL-terminated.
 * It never trusts a length: every declared length or count is checked
 * against the bytes present before anything is read.
 */
#ifndef TQ_VALUE_H
#define TQ_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tq/err.h"
#include "tq/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting of arrays and maps that tq accepts in a value. */
#define TQ_MAX_DEPTH 64

/* ---- building --------------------------------------------------------- */

typedef struct tq_buf tq_buf;

/* Creates an empty buffer.  Returns TQ_OK or TQ_ENOMEM. */
TQ_EXPORT tq_err tq_buf_new(tq_buf **out);

/* Frees *bp (NULL is fine) and sets *bp to NULL. */
TQ_EXPORT void tq_buf_destroy(tq_buf **bp);

/* Empties b for reuse and clears its error. */
TQ_EXPORT void tq_buf_reset(tq_buf *b);

/* The bytes written so far; valid until the next write or destroy. */
TQ_EXPORT const uint8_t *tq_buf_data(const tq_buf *b);
TQ_EXPORT size_t tq_buf_size(const tq_buf *b);

/* The first error any tq_pack_* call on b met, or TQ_OK.  Errors are
 * sticky: after one, further packs do nothing and return it, so a caller
 * may pack a whole value and check once. */
TQ_EXPORT tq_err tq_buf_error(const tq_buf *b);

/* Each appends one item and returns TQ_OK or the buffer's error. */
TQ_EXPORT tq_err tq_pack_nil(tq_buf *b);
TQ_EXPORT tq_err tq_pack_bool(tq_buf *b, bool v);
TQ_EXPORT tq_err tq_pack_int(tq_buf *b, int64_t v);
TQ_EXPORT tq_err tq_pack_uint(tq_buf *b, uint64_t v);
TQ_EXPORT tq_err tq_pack_double(tq_buf *b, double v);
/* A NUL-terminated string (s must not be NULL). */
TQ_EXPORT tq_err tq_pack_str(tq_buf *b, const char *s);
TQ_EXPORT tq_err tq_pack_strn(tq_buf *b, const char *s, size_t len);
TQ_EXPORT tq_err tq_pack_bin(tq_buf *b, const void *data, size_t len);
/* Headers: an array of n items or a map of n key/value pairs follows. */
TQ_EXPORT tq_err tq_pack_array(tq_buf *b, uint32_t n);
TQ_EXPORT tq_err tq_pack_map(tq_buf *b, uint32_t n);
/* Appends one complete msgpack value; it is checked first (TQ_ETRUNCATED,
 * TQ_ETRAILING, TQ_ELENGTH, TQ_EDEPTH, ... leave b unchanged). */
TQ_EXPORT tq_err tq_pack_msgpack(tq_buf *b, const void *data, size_t len);
/* Appends the value written as JSON text (len bytes; need not be
 * NUL-terminated).  TQ_EINVAL on malformed JSON leaves b unchanged.
 * Integers become msgpack integers, other numbers doubles. */
TQ_EXPORT tq_err tq_pack_json(tq_buf *b, const char *json, size_t len);

/* ---- reading ---------------------------------------------------------- */

typedef enum {
	TQ_TYPE_NIL,
	TQ_TYPE_BOOL,
	TQ_TYPE_INT,   /* negative integer */
	TQ_TYPE_UINT,  /* non-negative integer */
	TQ_TYPE_FLOAT, /* float32 or float64 */
	TQ_TYPE_STR,
	TQ_TYPE_BIN,
	TQ_TYPE_ARRAY,
	TQ_TYPE_MAP,
	TQ_TYPE_EXT
} tq_type;

/* A cursor over msgpack bytes.  Its fields are private; it lives on the
 * caller's stack and owns nothing. */
typedef struct {
	const uint8_t *p_;
	const uint8_t *end_;
} tq_reader;

TQ_EXPORT void tq_reader_init(tq_reader *r, const void *data, size_t len);

/* Bytes not yet read. */
TQ_EXPORT size_t tq_reader_left(const tq_reader *r);

/* The type of the next item, without consuming it.  TQ_ETRUNCATED at the
 * end; TQ_ETYPE for the one byte msgpack never uses (0xc1). */
TQ_EXPORT tq_err tq_reader_peek(const tq_reader *r, tq_type *type);

/* Each reads one item of the named type and advances; on error the reader
 * does not move.  TQ_ETYPE when the next item has another type,
 * TQ_ETRUNCATED when the input ends inside it, TQ_ELENGTH when its declared
 * length exceeds the bytes left, TQ_ERANGE when it does not fit. */
TQ_EXPORT tq_err tq_read_nil(tq_reader *r);
TQ_EXPORT tq_err tq_read_bool(tq_reader *r, bool *v);
/* Any integer that fits an int64_t. */
TQ_EXPORT tq_err tq_read_int(tq_reader *r, int64_t *v);
/* Any non-negative integer. */
TQ_EXPORT tq_err tq_read_uint(tq_reader *r, uint64_t *v);
/* A float or any integer. */
TQ_EXPORT tq_err tq_read_double(tq_reader *r, double *v);
/* *s points into the input and is not NUL-terminated. */
TQ_EXPORT tq_err tq_read_str(tq_reader *r, const char **s, size_t *len);
TQ_EXPORT tq_err tq_read_bin(tq_reader *r, const uint8_t **data, size_t *len);
/* A header; the n items (or n key/value pairs) follow.  n is at most the
 * bytes left (each item takes at least one byte): TQ_ELENGTH otherwise. */
TQ_EXPORT tq_err tq_read_array(tq_reader *r, uint32_t *n);
TQ_EXPORT tq_err tq_read_map(tq_reader *r, uint32_t *n);
/* Skips one whole item, nested ones included (at most TQ_MAX_DEPTH deep). */
TQ_EXPORT tq_err tq_read_skip(tq_reader *r);
/* Reads one whole item like tq_read_skip and returns its msgpack bytes
 * (pointing into the input), e.g. to pass a sub-value on unchanged. */
TQ_EXPORT tq_err tq_read_value(tq_reader *r, const uint8_t **data, size_t *len);
/* Looks up `key` (a string key) in the map at r, without moving r: on
 * TQ_OK, *value is a reader positioned at the key's value.  TQ_EEND when
 * the map has no such key; TQ_ETYPE when r is not at a map; other errors as
 * the readers above. */
TQ_EXPORT tq_err tq_read_find(const tq_reader *r, const char *key, tq_reader *value);
/* TQ_OK when every byte has been read, else TQ_ETRAILING. */
TQ_EXPORT tq_err tq_reader_end(const tq_reader *r);

/* Checks that data holds exactly one well-formed value no deeper than
 * max_depth (0 means TQ_MAX_DEPTH).  Returns TQ_OK, TQ_ETRUNCATED,
 * TQ_ETRAILING, TQ_ELENGTH, TQ_EDEPTH or TQ_ETYPE. */
TQ_EXPORT tq_err tq_value_check(const void *data, size_t len, int max_depth);

/* Writes data (one msgpack value) as JSON text into a new NUL-terminated
 * string *out, which the caller frees with free().  Binaries become
 * base64 strings, map keys that are not strings are written as JSON
 * text of the key, NaN and infinities become null.  Errors as
 * tq_value_check, TQ_ENOMEM, or TQ_ETOOBIG when the text would exceed
 * 8 x len + 1 MiB (deeply nested container keys). */
TQ_EXPORT tq_err tq_value_to_json(const void *data, size_t len, char **out);

#ifdef __cplusplus
}
#endif
#endif
