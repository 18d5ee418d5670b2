/* log.c - timestamped, levelled lines on stderr, written with one write(2)
 * each so that lines from several processes sharing a terminal don't mix. */
#include "base/log.h"

#include "base/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *component = "tq";
static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static tqi_log_level max_level = TQI_LOG_INFO;

static const char *const level_names[] = { "error", "warn ", "info ", "debug" };

void tqi_log_set_component(const char *name)
{
	component = name;
}

static void read_level(void)
{
	const char *s = getenv("TQ_LOG");
	if (s == NULL || *s == '\0')
		return;
	for (int i = 0; i <= TQI_LOG_DEBUG; i++)
		if (strncmp(s, level_names[i], strlen(s)) == 0)
			max_level = (tqi_log_level)i;
}

static tqi_log_level configured_level(void)
{
	/* Clients on several threads log too: read TQ_LOG exactly once. */
	pthread_once(&level_once, read_level);
	return max_level;
}

int tqi_log_enabled(tqi_log_level level)
{
	return level <= configured_level();
}

static void vlog(tqi_log_level level, const char *extra, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vlog(tqi_log_level level, const char *extra, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, (int)(tv.tv_usec / 1000), component, level_names[level]);
	if (n < 0)
		return;
	size_t len = (size_t)n;
	int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
	if (m > 0)
		len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
	if (extra != NULL && len < sizeof line - 1) {
		m = snprintf(line + len, sizeof line - len, "%s", extra);
		if (m > 0)
			len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
	}
	if (len >= sizeof line - 1)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void tqi_log(tqi_log_level level, const char *fmt, ...)
{
	if (!tqi_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

bool tqi_ratelimit_take(tqi_ratelimit *rl, uint64_t now_ms, double per_sec, double burst)
{
	if (rl->last_ms == 0)
		rl->tokens = burst;
	else if (now_ms > rl->last_ms)
		rl->tokens += (double)(now_ms - rl->last_ms) * per_sec / 1000.0;
	if (rl->tokens > burst)
		rl->tokens = burst;
	rl->last_ms = now_ms;
	if (rl->tokens < 1.0)
		return false;
	rl->tokens -= 1.0;
	return true;
}

void tqi_log_limited(tqi_ratelimit *rl, tqi_log_level level, const char *fmt, ...)
{
	if (!tqi_log_enabled(level))
		return;
	if (!tqi_ratelimit_take(rl, tqi_now_ms(), 5.0, 20.0)) {
		rl->suppressed++;
		return;
	}
	char extra[64] = "";
	if (rl->suppressed > 0)
		snprintf(extra, sizeof extra, " (%llu similar lines suppressed)",
		         (unsigned long long)rl->suppressed);
	rl->suppressed = 0;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, extra[0] ? extra : NULL, fmt, ap);
	va_end(ap);
}

void tqi_log_suppressed(tqi_ratelimit *rl, tqi_log_level level, const char *what)
{
	if (rl->suppressed == 0 || !tqi_ratelimit_take(rl, tqi_now_ms(), 5.0, 20.0))
		return;
	tqi_log(level, "%llu %s suppressed", (unsigned long long)rl->suppressed, what);
	rl->suppressed = 0;
}
