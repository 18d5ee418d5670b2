/*
 * tq/err.h - the one error space of tq.
 *
 * Every function of the public API that can fail returns a tq_err.  The
 * numbers are part of the wire protocol (the FAILED and DONE messages carry
 * them, see proto/PROTOCOL.md), so a code never changes its number; new codes
 * are added at the end.  The enum and the strings come from one list.
 */
#ifndef TQ_ERR_H
#define TQ_ERR_H

#include "tq/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, number, description) */
#define TQ_ERRORS(X)                                                         \
	X(OK, 0, "success")                                                  \
	X(EINVAL, 1, "invalid argument")                                     \
	X(ENOMEM, 2, "out of memory")                                        \
	X(ETIMEDOUT, 3, "timed out")                                         \
	X(EFAILED, 4, "task failed")                                         \
	X(ETASKCRASHED, 5, "task crashed")                                   \
	X(EWORKERLOST, 6, "worker lost")                                     \
	X(EBROKERLOST, 7, "broker lost")                                     \
	X(ENOWORKER, 8, "no worker offers the function")                     \
	X(ECANCELLED, 9, "task cancelled")                                   \
	X(ERUNNING, 10, "task still running")                                \
	X(EBUSY, 11, "broker queue full")                                    \
	X(ESESSION, 12, "session unknown to the broker")                     \
	X(ESTATE, 13, "operation not valid in the task's state")             \
	X(ETRANSPORT, 14, "transport error")                                 \
	X(EPROTO, 15, "protocol error")                                      \
	X(EMAGIC, 16, "bad magic")                                           \
	X(EVERSION, 17, "unsupported protocol version")                      \
	X(ECOMMAND, 18, "unknown or misdirected command")                    \
	X(EFRAMES, 19, "a command came without its payload")                 \
	X(ETRUNCATED, 20, "truncated input")                                 \
	X(ETRAILING, 21, "trailing bytes after the value")                   \
	X(ETYPE, 22, "wrong type")                                           \
	X(EDEPTH, 23, "nesting too deep")                                    \
	X(ELENGTH, 24, "declared length or count exceeds the bytes present") \
	X(ERANGE, 25, "value out of range")                                  \
	X(ETOOBIG, 26, "message too large")                                  \
	X(EEXIST, 27, "task reference already in use")                       \
	X(ESHUTDOWN, 28, "shutting down")                                    \
	X(ESYS, 29, "system call failed")                                    \
	X(EEND, 30, "no more items")                                         \
	X(ENOTFOUND, 31, "no such task")                                     \
	X(EKILLED, 32, "task killed: it outlived its grace period")

typedef enum {
#define TQ_ERR_ENUM_(name, num, text) TQ_##name = num,
	TQ_ERRORS(TQ_ERR_ENUM_)
#undef TQ_ERR_ENUM_
} tq_err;

/* A short English description of err ("timed out"); never NULL.  Unknown
 * numbers (from a newer peer) give "unknown error". */
TQ_EXPORT const char *tq_strerror(tq_err err);

/* The symbolic name of err without the TQ_ prefix ("ETIMEDOUT"); never NULL.
 * Unknown numbers give "EUNKNOWN". */
TQ_EXPORT const char *tq_errname(tq_err err);

#ifdef __cplusplus
}
#endif
#endif
