/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one table that maps an errno to an HTTP status and a stable error code (STYLE.md §3), and
 * the error body every failing request gets: {"error": {"code": "...", "message": "..."}}.
 * Handlers return -errno; the API layer answers with api_error_from_errno() unless the failure
 * already carries a more precise code (a struct json_error from a decoder).
 */

#include <stddef.h>

struct api_error_info {
        int status;       /* HTTP status */
        const char *code; /* stable, lower_snake_case */
};

/*
 * The status and code for -errno r (r < 0). Unknown errors are 500 "internal_error", never
 * a status that would blame the client. Notable choices: -ENOENT is 404 (an object the caller
 * may not read answers as missing), -EPERM/-EACCES 403, -EEXIST and -ESTALE 409, -E2BIG 413,
 * -EBUSY and -EAGAIN 503 (retry), -EOPNOTSUPP 501.
 */
struct api_error_info api_error_from_errno(int r);

/*
 * The JSON body {"error": {"code": code, "message": message}} as a heap string (caller frees),
 * or NULL without memory. The message is one line: control characters become spaces, and it is
 * cut to a bounded length, so that nothing a client sent can shape the response.
 */
char *api_error_body(const char *code, const char *message);
