/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sandbox: runs one program in a fresh set of namespaces, a read-only root of its own,
 * cgroup limits, no capabilities and a seccomp allowlist, and reports how it ended.
 * It knows nothing of jobs or networks. See the theory of operation at the top of sandbox.c.
 */

#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

#include "report.h"

/* The unprivileged identity the program has inside its sandbox. */
#define SANDBOX_UID      1000
#define SANDBOX_GID      1000
#define SANDBOX_HOSTNAME "warren"

enum sandbox_mount_kind {
        SANDBOX_BIND_RO,
        SANDBOX_BIND_RW,
        SANDBOX_TMPFS,
};

struct sandbox_mount {
        enum sandbox_mount_kind kind;
        const char *src; /* host path (binds) */
        const char *dst; /* absolute path inside the sandbox, no ".." */
        uint64_t size;   /* tmpfs: bytes */
};

struct sandbox_config {
        const char *rootfs; /* read-only root directory; NULL: the host profile */
        const struct sandbox_mount *mounts;
        size_t n_mounts;
        const char *chdir; /* default "/tmp" */
        char *const *argv; /* argv[0] is the program: a path, or a name looked up in PATH */
        char *const *envp; /* the whole environment; NULL: PATH and HOME only */

        uint64_t memory;       /* bytes, 0 = none */
        uint64_t pids;         /* 0 = none */
        double cpus;           /* cpu bandwidth in cpus, 0 = none */
        uint64_t cpu_time_ns;  /* whole-sandbox cpu time, 0 = none */
        uint64_t wall_time_ns; /* 0 = none */
        uint64_t output_limit; /* stdout + stderr bytes, 0 = none */
        uint64_t file_size;    /* RLIMIT_FSIZE, 0 = none */
        uint64_t open_files;   /* RLIMIT_NOFILE, 0 = default */
        uint64_t tmp_size;     /* size of the /tmp tmpfs; 0 = default */

        int stdin_fd;  /* borrowed; < 0: /dev/null */
        int stdout_fd; /* borrowed; where the program's stdout is copied; < 0: discarded */
        int stderr_fd; /* borrowed; likewise for stderr */
};

#define SANDBOX_DEFAULT_TMP_SIZE (UINT64_C(64) << 20)
#define SANDBOX_DEFAULT_NOFILE   UINT64_C(256)

struct sandbox_context_options {
        const char *cgroup_mount; /* NULL: /sys/fs/cgroup */
        const char *state_dir; /* slot locks; NULL: /run/warren (root) or $XDG_RUNTIME_DIR/warren */
        uid_t uid_base;        /* first host uid of the per-sandbox range; 0: the default */
        unsigned n_slots;      /* how many sandboxes may run at once; 0: the default */
};

#define SANDBOX_DEFAULT_UID_BASE UINT32_C(2000000000)
#define SANDBOX_DEFAULT_SLOTS    4096u

struct sandbox_context;

/*
 * Per-process state shared by every sandbox the process starts: the compiled seccomp filter, the
 * cgroup hierarchy, the slot locks. Sweeps cgroups left behind by a killed predecessor.
 */
int sandbox_context_new(const struct sandbox_context_options *opts, struct sandbox_context **ret);
struct sandbox_context *sandbox_context_free(struct sandbox_context *ctx);

enum sandbox_limit {
        SANDBOX_LIMIT_MEMORY,
        SANDBOX_LIMIT_PIDS,
        SANDBOX_LIMIT_CPUS,
        SANDBOX_LIMIT_CPU_TIME,
};

/* Whether the context can enforce this limit (its cgroup controller is usable). */
bool sandbox_context_can_limit(const struct sandbox_context *ctx, enum sandbox_limit limit);

/*
 * Runs cfg->argv in a new sandbox and waits for it. Returns < 0 only when the arguments are
 * invalid; every failure after that (setup, exec) is described in *ret_report, whose status is
 * then exec_error or internal_error. Must be called from a single-threaded process.
 */
int sandbox_run(struct sandbox_context *ctx, const struct sandbox_config *cfg,
                struct sandbox_report *ret_report);

/* Forwards sig to the program of the sandbox currently running in this process, if any. */
void sandbox_forward_signal(int sig);

/*
 * Kills the sandbox currently running in this process, if any: its report says signaled, by
 * SIGKILL. Async-signal-safe (for a cancel that arrives as a signal).
 */
void sandbox_cancel(void);
