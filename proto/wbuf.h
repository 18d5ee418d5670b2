/*
 * wbuf.h - the growable byte buffer every msgpack writer in tq writes into.
 *
 * Small writes stay in the inline array (no allocation: envelopes are built
 * on the stack on the hot path); bigger ones move to the heap.  An
 * allocation failure is sticky: the buffer stops growing and reports it.
 */
#ifndef TQI_WBUF_H
#define TQI_WBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TQI_WBUF_INLINE 256

typedef struct {
	uint8_t *data; /* inline_ or heap */
	size_t len, cap;
	int oom;
	uint8_t inline_[TQI_WBUF_INLINE];
} tqi_wbuf;

/* Initialises b in place (it must not move afterwards: data may point
 * into it). */
void tqi_wbuf_init(tqi_wbuf *b);
void tqi_wbuf_free(tqi_wbuf *b);
void tqi_wbuf_reset(tqi_wbuf *b);
/* Appends len bytes.  0, or -1 when out of memory (sticky). */
int tqi_wbuf_grow_append(tqi_wbuf *b, const void *data, size_t len);
static inline int tqi_wbuf_append(tqi_wbuf *b, const void *data, size_t len)
{
	/* The common case, inline: msgpack writes an envelope a few bytes at
	 * a time, so this runs a dozen times per command. */
	if (!b->oom && len <= b->cap - b->len) {
		if (len > 0)
			memcpy(b->data + b->len, data, len);
		b->len += len;
		return 0;
	}
	return tqi_wbuf_grow_append(b, data, len);
}

/* Makes room for n more bytes and returns where they go: the caller
 * writes at most n bytes there and adds what it wrote to len.  NULL when
 * out of memory (sticky).  The envelope codec writes msgpack this way,
 * a field at a time, without a callback per piece. */
uint8_t *tqi_wbuf_grow(tqi_wbuf *b, size_t n);
static inline uint8_t *tqi_wbuf_room(tqi_wbuf *b, size_t n)
{
	if (!b->oom && n <= b->cap - b->len)
		return b->data + b->len;
	return tqi_wbuf_grow(b, n);
}

/* The msgpack_packer_write callback (data is the tqi_wbuf). */
int tqi_wbuf_sink(void *data, const char *buf, size_t len);

/* Hands the heap buffer to the caller (who frees it with free()), or a
 * malloc'd copy when the bytes are inline.  NULL on allocation failure. */
uint8_t *tqi_wbuf_release(tqi_wbuf *b, size_t *len);

#endif
