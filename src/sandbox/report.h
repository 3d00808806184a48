/* SPDX-License-Identifier: MIT */
#pragma once

/* How a sandboxed program ended, and what it used. */

#include <stdbool.h>
#include <stdint.h>

enum sandbox_status {
        SANDBOX_EXITED,
        SANDBOX_SIGNALED,
        SANDBOX_WALL_TIME_LIMIT,
        SANDBOX_CPU_TIME_LIMIT,
        SANDBOX_MEMORY_LIMIT,
        SANDBOX_OUTPUT_LIMIT,
        SANDBOX_EXEC_ERROR,
        SANDBOX_INTERNAL_ERROR,
        _SANDBOX_STATUS_MAX,
};

struct sandbox_report {
        enum sandbox_status status;
        int exit_code; /* < 0: null */
        int signal;    /* 0: null */
        uint64_t wall_ns;
        uint64_t cpu_ns;
        uint64_t user_ns;
        uint64_t sys_ns;
        uint64_t peak_memory;
        uint64_t stdout_bytes;
        uint64_t stderr_bytes;
        bool oom_killed;
        int error_errno; /* the errno behind exec_error/internal_error, 0 otherwise */
        char error[512]; /* empty: null */
};

const char *sandbox_status_to_string(enum sandbox_status s);

/* The report as a JSON object with exactly the documented fields. Caller frees. */
char *sandbox_report_to_json(const struct sandbox_report *r);

/* The exit code `warren run` gives for this report (docker/podman conventions). */
int sandbox_report_exit_code(const struct sandbox_report *r);
