/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging. Library code returns errors and logs at debug level at most; entry points log once.
 * `%m` in a format prints strerror() of the error passed to the *_errno() variants.
 */

#include "cleanup.h"

enum log_level {
        LOG_LEVEL_ERROR = 0,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

enum log_format {
        LOG_FORMAT_TEXT, /* "warren: message": commands */
        LOG_FORMAT_KV,   /* "ts=... level=... event=... key=value": the daemon */
};

void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
enum log_level log_get_level(void);

/* Logs at level; when error != 0 errno is set to |error| for %m. Returns -|error| (or 0). */
int log_internal(enum log_level level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_error(...)   ((void) log_internal(LOG_LEVEL_ERROR, 0, __VA_ARGS__))
#define log_warning(...) ((void) log_internal(LOG_LEVEL_WARNING, 0, __VA_ARGS__))
#define log_info(...)    ((void) log_internal(LOG_LEVEL_INFO, 0, __VA_ARGS__))
#define log_debug(...)                                                   \
        ((void) (log_get_level() >= LOG_LEVEL_DEBUG                      \
                         ? log_internal(LOG_LEVEL_DEBUG, 0, __VA_ARGS__) \
                         : 0))

#define log_error_errno(r, ...)   log_internal(LOG_LEVEL_ERROR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal(LOG_LEVEL_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...)                                                               \
        (log_get_level() >= LOG_LEVEL_DEBUG ? log_internal(LOG_LEVEL_DEBUG, (r), __VA_ARGS__) \
                                            : -abs(r))
