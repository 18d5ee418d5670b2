/* cli.h - the subcommands of `tq` and what they share. */
#ifndef TQC_CLI_H
#define TQC_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "tq/client.h"

/* Exit codes: distinct for each way a command can end. */
enum {
	TQC_OK = 0,
	TQC_TASK_FAILED = 1, /* the task ended in an error of its own */
	TQC_USAGE = 2,       /* bad command line */
	TQC_TIMEOUT = 3,     /* TQ_ETIMEDOUT or TQ_ENOWORKER */
	TQC_BROKER = 4       /* no broker, or it was lost */
};

int tqc_call(int argc, char **argv);
int tqc_start(int argc, char **argv);
int tqc_stats(int argc, char **argv);
int tqc_map(int argc, char **argv);
int tqc_demo(int argc, char **argv);
int tqc_cancel(int argc, char **argv);

/* Prints "tq <cmd>: <why>" and the command's usage to stderr; returns
 * TQC_USAGE. */
int tqc_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses a timeout: milliseconds, or "infinity".  0 or -1. */
int tqc_parse_timeout(const char *s, int64_t *out);
/* Parses a count within [0, max].  0 or -1. */
int tqc_parse_count(const char *s, unsigned long max, unsigned long *out);

/* The exit code for a task's outcome. */
int tqc_exit_code(tq_err e);

/* The broker endpoint: the option, else $TQ_BROKER, else the default. */
const char *tqc_broker(const char *opt);

/* Creates the client of `tq <cmd>` for the broker at endpoint.  TQC_OK
 * with *out set; otherwise prints "tq <cmd>: cannot use broker EP: why"
 * and returns the exit code (TQC_USAGE for a bad endpoint). */
int tqc_connect(const char *cmd, const char *endpoint, tq_client **out);

/* Why fn cannot name a function ("FUNCTION is empty", ...), or NULL. */
const char *tqc_bad_function(const char *fn);

#endif
