/*
 * log.h - one line per event on stderr:
 *   2026-11-28T14:03:07.123Z broker warn  malformed message from client 3f2a..: bad magic
 * The level comes from TQ_LOG (error, warn, info, debug; default info).
 * Lines from a remote peer's misbehaviour go through a rate limiter so that
 * a hostile peer cannot flood the log.
 */
#ifndef TQI_LOG_H
#define TQI_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { TQI_LOG_ERROR, TQI_LOG_WARN, TQI_LOG_INFO, TQI_LOG_DEBUG } tqi_log_level;

/* Sets the component name printed on each line ("broker", "worker", ...). */
void tqi_log_set_component(const char *name);

/* True when lines of this level are printed. */
int tqi_log_enabled(tqi_log_level level);

void tqi_log(tqi_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A token bucket.  Zero-initialised, it is full at its first use. */
typedef struct {
	double tokens;
	uint64_t last_ms;    /* of the last take; 0 before the first */
	uint64_t suppressed; /* lines dropped since the last one printed */
} tqi_ratelimit;

/* Refills rl at per_sec tokens a second, holding at most burst, and takes
 * one token: true when there was one.  now_ms: the monotonic clock. */
bool tqi_ratelimit_take(tqi_ratelimit *rl, uint64_t now_ms, double per_sec, double burst);

/* Logs like tqi_log when the bucket has a token (a burst of 20 lines, then 5
 * a second); otherwise counts the line as suppressed.  The next line
 * printed says how many were suppressed. */
void tqi_log_limited(tqi_ratelimit *rl, tqi_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* When rl has suppressed lines and a token again, logs how many, as
 * "N WHAT suppressed", so that a flood that has stopped is still counted.
 * Cheap when there is nothing to say: call it on a timer. */
void tqi_log_suppressed(tqi_ratelimit *rl, tqi_log_level level, const char *what);

#define tqi_error(...) tqi_log(TQI_LOG_ERROR, __VA_ARGS__)
#define tqi_warn(...) tqi_log(TQI_LOG_WARN, __VA_ARGS__)
#define tqi_info(...) tqi_log(TQI_LOG_INFO, __VA_ARGS__)
#define tqi_debug(...)                                       \
	do {                                                 \
		if (tqi_log_enabled(TQI_LOG_DEBUG))          \
			tqi_log(TQI_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
