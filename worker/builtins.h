/* builtins.h - the functions tq-worker serves out of the box: the ones the
 * lesson, the tests and the benchmark need. */
#ifndef TQI_BUILTINS_H
#define TQI_BUILTINS_H

#include "tq/worker.h"

/* Registers sleep, echo, double, fail, crash, noop, burn and ticks on w. */
tq_err tqi_builtins_register(tq_worker *w);

#endif
