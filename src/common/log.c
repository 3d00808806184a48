/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level max_level = LOG_LEVEL_WARNING;
static enum log_format format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARNING] = "warning",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_format(enum log_format f)
{
        format = f;
}

/* One key=value line: ts and level first; a message that is not key=value already is msg="...". */
static void emit_kv(enum log_level level, const char *line)
{
        char ts[40] = "", msg[4200];
        struct timespec now;
        struct tm tm;
        size_t o = 0;

        if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm))
                (void) strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        if (strncmp(line, "event=", 6) == 0) {
                (void) fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", ts, now.tv_nsec / 1000000,
                               level_names[level], line);
                return;
        }
        for (const char *p = line; *p && o + 5 < sizeof(msg); p++) {
                unsigned char c = (unsigned char) *p;

                if (c == '"' || c == '\\') {
                        msg[o++] = '\\';
                        msg[o++] = (char) c;
                } else
                        msg[o++] = c < 0x20 || c == 0x7f ? ' ' : (char) c;
        }
        msg[o] = '\0';
        (void) fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"%s\"\n", ts, now.tv_nsec / 1000000,
                       level_names[level], msg);
}

void log_set_level(enum log_level level)
{
        max_level = level;
}

enum log_level log_get_level(void)
{
        return max_level;
}

int log_internal(enum log_level level, int error, const char *fmt, ...)
{
        int saved = errno;
        va_list ap;

        error = abs(error);
        if (level <= max_level) {
                char line[2048];

                errno = error;
                va_start(ap, fmt);
                (void) vsnprintf(line, sizeof(line), fmt, ap);
                va_end(ap);
                if (format == LOG_FORMAT_KV)
                        emit_kv(level, line);
                else
                        (void) fprintf(stderr, "warren: %s\n", line);
        }
        errno = saved;
        return -error;
}
