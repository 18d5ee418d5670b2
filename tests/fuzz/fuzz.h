/*
 * fuzz.h - what the libFuzzer targets share: the entry point's prototype
 * and FUZZ_CHECK, the oracle that stops the run (and so saves the input)
 * when a property of the decoder does not hold.
 */
#ifndef TQT_FUZZ_H
#define TQT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

#endif
