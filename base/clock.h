/* clock.h - the two clocks tq uses.  Deadlines and timers use the monotonic
 * clock, in milliseconds; nothing in tq compares monotonic readings taken on
 * different hosts (the wire carries relative timeouts instead). */
#ifndef TQI_CLOCK_H
#define TQI_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t tqi_now_ms(void);

/* Microseconds on CLOCK_MONOTONIC, for measurements. */
uint64_t tqi_now_us(void);

/* Sleeps for ms milliseconds (restarting after signals).  Only for pacing
 * loops that poll a condition, never as a stand-in for a condition. */
void tqi_sleep_ms(uint64_t ms);

#endif
