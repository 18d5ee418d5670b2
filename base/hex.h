/* hex.h - lower-case hex for task references and peer ids in logs and errors. */
#ifndef TQI_HEX_H
#define TQI_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n hex digits and a NUL to out (which holds 2*n+1 bytes). */
void tqi_hex(const uint8_t *data, size_t n, char *out);

/* The value of one hex digit, or -1. */
int tqi_hexval(char c);

/* Parses exactly 2*n hex digits from s into out; returns 0, or -1 on a
 * non-hex digit or wrong length. */
int tqi_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
