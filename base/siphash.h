/* siphash.h - SipHash-1-3, a keyed hash: with a secret random key per process
 * a remote peer cannot choose task references or names that collide, so the
 * hash tables fed by the network stay O(1). */
#ifndef TQI_SIPHASH_H
#define TQI_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t tqi_siphash(const uint8_t key[16], const void *data, size_t len);

#endif
