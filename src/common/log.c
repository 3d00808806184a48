/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static enum log_level max_level = LOG_LEVEL_WARNING;

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
                (void) fprintf(stderr, "warren: %s\n", line);
        }
        errno = saved;
        return -error;
}
