/* buf.c - tq_buf, the public msgpack builder, over tqi_wbuf and msgpack-c's
 * packer.  Errors are sticky so that a caller can pack a whole value and
 * check once. */
#include <msgpack.h>

#include "proto/json.h"
#include "proto/wbuf.h"
#include "tq/value.h"

#include <stdlib.h>
#include <string.h>

struct tq_buf {
	tqi_wbuf w;
	msgpack_packer pk;
	tq_err err;
};

tq_err tq_buf_new(tq_buf **out)
{
	tq_buf *b = malloc(sizeof *b);
	if (b == NULL)
		return TQ_ENOMEM;
	tqi_wbuf_init(&b->w);
	msgpack_packer_init(&b->pk, &b->w, tqi_wbuf_sink);
	b->err = TQ_OK;
	*out = b;
	return TQ_OK;
}

void tq_buf_destroy(tq_buf **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	tqi_wbuf_free(&(*bp)->w);
	free(*bp);
	*bp = NULL;
}

void tq_buf_reset(tq_buf *b)
{
	tqi_wbuf_reset(&b->w);
	b->err = TQ_OK;
}

const uint8_t *tq_buf_data(const tq_buf *b)
{
	return b->w.data;
}

size_t tq_buf_size(const tq_buf *b)
{
	return b->w.len;
}

tq_err tq_buf_error(const tq_buf *b)
{
	return b->err;
}

/* msgpack-c returns non-zero only when the sink failed to grow. */
static tq_err done(tq_buf *b, int rc)
{
	if (rc != 0 && b->err == TQ_OK)
		b->err = TQ_ENOMEM;
	return b->err;
}

#define GUARD(b)                         \
	do {                             \
		if ((b)->err != TQ_OK)   \
			return (b)->err; \
	} while (0)

tq_err tq_pack_nil(tq_buf *b)
{
	GUARD(b);
	return done(b, msgpack_pack_nil(&b->pk));
}

tq_err tq_pack_bool(tq_buf *b, bool v)
{
	GUARD(b);
	return done(b, v ? msgpack_pack_true(&b->pk) : msgpack_pack_false(&b->pk));
}

tq_err tq_pack_int(tq_buf *b, int64_t v)
{
	GUARD(b);
	return done(b, msgpack_pack_int64(&b->pk, v));
}

tq_err tq_pack_uint(tq_buf *b, uint64_t v)
{
	GUARD(b);
	return done(b, msgpack_pack_uint64(&b->pk, v));
}

tq_err tq_pack_double(tq_buf *b, double v)
{
	GUARD(b);
	return done(b, msgpack_pack_double(&b->pk, v));
}

tq_err tq_pack_str(tq_buf *b, const char *s)
{
	return tq_pack_strn(b, s, strlen(s));
}

tq_err tq_pack_strn(tq_buf *b, const char *s, size_t len)
{
	GUARD(b);
	if (len > UINT32_MAX)
		return b->err = TQ_ETOOBIG;
	return done(b, msgpack_pack_str_with_body(&b->pk, s, len));
}

tq_err tq_pack_bin(tq_buf *b, const void *data, size_t len)
{
	GUARD(b);
	if (len > UINT32_MAX)
		return b->err = TQ_ETOOBIG;
	return done(b, msgpack_pack_bin_with_body(&b->pk, data, len));
}

tq_err tq_pack_array(tq_buf *b, uint32_t n)
{
	GUARD(b);
	return done(b, msgpack_pack_array(&b->pk, n));
}

tq_err tq_pack_map(tq_buf *b, uint32_t n)
{
	GUARD(b);
	return done(b, msgpack_pack_map(&b->pk, n));
}

tq_err tq_pack_msgpack(tq_buf *b, const void *data, size_t len)
{
	GUARD(b);
	tq_err e = tq_value_check(data, len, 0);
	if (e != TQ_OK)
		return e; /* the caller's bytes are bad; b itself is fine */
	return done(b, tqi_wbuf_append(&b->w, data, len));
}

tq_err tq_pack_json(tq_buf *b, const char *json, size_t len)
{
	GUARD(b);
	tqi_wbuf tmp;
	tqi_wbuf_init(&tmp);
	tq_err e = tqi_json_to_msgpack(json, len, &tmp);
	if (e == TQ_OK)
		e = done(b, tqi_wbuf_append(&b->w, tmp.data, tmp.len));
	tqi_wbuf_free(&tmp);
	return e;
}
