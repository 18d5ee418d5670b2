/*
 * args.h - arguments as people type them, turned into a msgpack list.
 *
 * A word that is a JSON number, array, object or string is that value;
 * anything else is a string.  So `tq call double 21` sends [21],
 * `tq call echo '[1,2]' hi` sends [[1,2],"hi"], and `tq call echo 007x`
 * sends ["007x"].  In a line (tq map), words are separated by blanks, and a
 * JSON array, object or string extends to its end, blanks included.
 */
#ifndef TQC_ARGS_H
#define TQC_ARGS_H

#include <stddef.h>

#include "tq/value.h"

/* Packs one word as a value. */
tq_err tqc_pack_word(tq_buf *b, const char *word, size_t len);

/* Packs argv[0..argc) as one list. */
tq_err tqc_pack_argv(tq_buf *b, char **argv, int argc);

/* Packs the words of one line as one list; TQ_EINVAL with *why set when a
 * JSON value in it is malformed. */
tq_err tqc_pack_line(tq_buf *b, const char *line, size_t len, const char **why);

#endif
