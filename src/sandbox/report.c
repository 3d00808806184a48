/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <errno.h>
#include <jansson.h>

static const char *const status_names[_SANDBOX_STATUS_MAX] = {
        [SANDBOX_EXITED] = "exited",
        [SANDBOX_SIGNALED] = "signaled",
        [SANDBOX_WALL_TIME_LIMIT] = "wall_time_limit",
        [SANDBOX_CPU_TIME_LIMIT] = "cpu_time_limit",
        [SANDBOX_MEMORY_LIMIT] = "memory_limit",
        [SANDBOX_OUTPUT_LIMIT] = "output_limit",
        [SANDBOX_EXEC_ERROR] = "exec_error",
        [SANDBOX_INTERNAL_ERROR] = "internal_error",
};

const char *sandbox_status_to_string(enum sandbox_status s)
{
        if ((unsigned) s >= _SANDBOX_STATUS_MAX)
                return NULL;
        return status_names[s];
}

static json_t *int_or_null(int present, json_int_t v)
{
        return present ? json_integer(v) : json_null();
}

char *sandbox_report_to_json(const struct sandbox_report *r)
{
        json_t *o;
        char *s;

        o = json_pack("{s:s, s:o, s:o, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:b, s:o}", "status",
                      sandbox_status_to_string(r->status), "exit_code",
                      int_or_null(r->exit_code >= 0, r->exit_code), "signal",
                      int_or_null(r->signal > 0, r->signal), "wall_time", (double) r->wall_ns / 1e9,
                      "cpu_time", (double) r->cpu_ns / 1e9, "user_time", (double) r->user_ns / 1e9,
                      "sys_time", (double) r->sys_ns / 1e9, "peak_memory",
                      (json_int_t) r->peak_memory, "stdout_bytes", (json_int_t) r->stdout_bytes,
                      "stderr_bytes", (json_int_t) r->stderr_bytes, "oom_killed", r->oom_killed,
                      "error", r->error[0] ? json_string(r->error) : json_null());
        if (!o)
                return NULL;
        s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(o);
        return s;
}

int sandbox_report_exit_code(const struct sandbox_report *r)
{
        switch (r->status) {
        case SANDBOX_EXITED:
                return r->exit_code;
        case SANDBOX_EXEC_ERROR:
                return r->error_errno == ENOENT ? 127 : 126;
        case SANDBOX_INTERNAL_ERROR:
                return 125;
        case SANDBOX_SIGNALED:
        case SANDBOX_WALL_TIME_LIMIT:
        case SANDBOX_CPU_TIME_LIMIT:
        case SANDBOX_MEMORY_LIMIT:
        case SANDBOX_OUTPUT_LIMIT:
                if (r->signal > 0)
                        return 128 + r->signal;
                if (r->exit_code >= 0)
                        return r->exit_code;
                return 128 + 9;
        case _SANDBOX_STATUS_MAX:
                break;
        }
        return 125;
}
