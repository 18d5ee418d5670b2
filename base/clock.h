/* clock.h - the two clocks tq uses.  Deadlines and timers use the monotonic
 * clock, in milliseconds; nothing in tq compares monotonic readings taken on
 * different hosts (the wire carries relative timeouts instead). */
#ifndef TQI_CLOCK_H
#define TQI_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC.  tqi_now_ms and tqi_sleep_ms are
 * async-signal-safe (clock_gettime, nanosleep): tq demo's signal handler
 * relies on it. */
uint64_t tqi_now_ms(void);

/* Microseconds on CLOCK_MONOTONIC, for measurements. */
uint64_t tqi_now_us(void);

/* The deadline timeout_ms after now_ms, saturating: a timeout too long to
 * represent (one from a peer may be any uint64) gives UINT64_MAX, a
 * deadline that never comes - never one that wrapped into the past. */
static inline uint64_t tqi_deadline_after(uint64_t now_ms, uint64_t timeout_ms)
{
	return timeout_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + timeout_ms;
}

/* Sleeps for ms milliseconds (restarting after signals).  Only for pacing
 * loops that poll a condition, never as a stand-in for a condition. */
void tqi_sleep_ms(uint64_t ms);

#endif
