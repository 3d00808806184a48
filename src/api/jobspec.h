/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The body of POST /api/v1/jobs, decoded and checked into a typed struct:
 *
 *   {"app": "python3",
 *    "source": "print(1)"  |  "files": {"main.py": "...", "data.bin": {"base64": "..."}},
 *    "args": ["a", "b"], "stdin": "..." | {"base64": "..."},
 *    "limits": {"memory": 67108864 | "64M", "pids": 32, "cpus": 0.5, "cpu_time": 2.5,
 *               "wall_time": 10, "output_limit": "1M", "file_size": "1M", "open_files": 64},
 *    "priority": 0, "outputs": ["result.txt"],
 *    "inputs": [{"data": "<data id>", "path": "in.csv"}],
 *    "replicas": 3, "quorum": 2}
 *
 * Only "app" and one of "source" / "files" are required. Sizes are integers (bytes) or
 * parse_size() strings; times are numbers of seconds > 0; cpus a number. Every error is a
 * struct json_error (see json.h for codes and statuses); a limit above the app's maximum is
 * limit_exceeded (422), a body or content over the node's caps too_large (413), more files or
 * arguments than the caps too_many (413).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

#define JOBSPEC_APP_NAME_MAX  64
#define JOBSPEC_FILE_NAME_MAX 255

/* Absolute bounds, whatever the app says; those of `warren run`. */
#define JOBSPEC_SIZE_MAX       (UINT64_C(1) << 50)
#define JOBSPEC_PIDS_MAX       UINT64_C(4194304) /* the kernel's PID_MAX_LIMIT */
#define JOBSPEC_CPUS_MIN       0.01
#define JOBSPEC_CPUS_MAX       4096.0
#define JOBSPEC_SECONDS_MAX    1e6
#define JOBSPEC_OPEN_FILES_MIN UINT64_C(4)
#define JOBSPEC_OPEN_FILES_MAX (UINT64_C(1) << 20)
#define JOBSPEC_PRIORITY_MIN   (-100)
#define JOBSPEC_PRIORITY_MAX   100
#define JOBSPEC_REPLICAS_MAX   16 /* as STORE_REPLICAS_MAX */
#define JOBSPEC_MAX_OUTPUTS    16 /* entries of "outputs" */
#define JOBSPEC_MAX_INPUTS     64 /* entries of "inputs" */
#define JOBSPEC_DATA_ID_LEN    32 /* a data object's id: lowercase hex */

enum {
        JOBSPEC_LIMIT_MEMORY = 1u << 0,
        JOBSPEC_LIMIT_PIDS = 1u << 1,
        JOBSPEC_LIMIT_CPUS = 1u << 2,
        JOBSPEC_LIMIT_CPU_TIME = 1u << 3,
        JOBSPEC_LIMIT_WALL_TIME = 1u << 4,
        JOBSPEC_LIMIT_OUTPUT = 1u << 5,
        JOBSPEC_LIMIT_FILE_SIZE = 1u << 6,
        JOBSPEC_LIMIT_OPEN_FILES = 1u << 7,
};

/* The limits a job asks for; they map one to one onto struct sandbox_config's. */
struct jobspec_limits {
        uint64_t memory; /* bytes */
        uint64_t pids;
        double cpus;
        uint64_t cpu_time_ns;
        uint64_t wall_time_ns;
        uint64_t output_limit; /* bytes, stdout + stderr */
        uint64_t file_size;    /* bytes */
        uint64_t open_files;
        unsigned set; /* JOBSPEC_LIMIT_* of the limits the job gave; the others are 0 */
};

/* What a node and an app allow. Used as given: start from JOBSPEC_BOUNDS_DEFAULT. */
struct jobspec_bounds {
        size_t max_body;      /* bytes of JSON */
        size_t max_files;     /* entries of "files" */
        uint64_t max_content; /* decoded bytes of "source" or of all "files" together */
        size_t max_args;      /* entries of "args" */
        size_t max_arg_len;   /* bytes of each argument */
        uint64_t max_stdin;   /* decoded bytes of "stdin" */
        /*
         * The app's maximum for each limit (set is ignored; 0 means the job may not ask for
         * that limit), borrowed. NULL: not checked here, the caller looks the app up and calls
         * jobspec_check_limits() (the app is named inside the body).
         */
        const struct jobspec_limits *app_max;
};

#define JOBSPEC_DEFAULT_MAX_BODY    ((size_t) 32 << 20)
#define JOBSPEC_DEFAULT_MAX_FILES   ((size_t) 64)
#define JOBSPEC_DEFAULT_MAX_CONTENT (UINT64_C(16) << 20)
#define JOBSPEC_DEFAULT_MAX_ARGS    ((size_t) 256)
#define JOBSPEC_DEFAULT_MAX_ARG_LEN ((size_t) 4096)
#define JOBSPEC_DEFAULT_MAX_STDIN   (UINT64_C(8) << 20)

#define JOBSPEC_BOUNDS_DEFAULT                              \
        ((struct jobspec_bounds){                           \
                .max_body = JOBSPEC_DEFAULT_MAX_BODY,       \
                .max_files = JOBSPEC_DEFAULT_MAX_FILES,     \
                .max_content = JOBSPEC_DEFAULT_MAX_CONTENT, \
                .max_args = JOBSPEC_DEFAULT_MAX_ARGS,       \
                .max_arg_len = JOBSPEC_DEFAULT_MAX_ARG_LEN, \
                .max_stdin = JOBSPEC_DEFAULT_MAX_STDIN,     \
        })

struct jobspec_file {
        /* 1..255 bytes of UTF-8; no '/', no control character (C0, DEL, C1); not "." or "..". */
        char *name;
        char *data; /* size bytes, then a NUL; base64 content may contain NULs */
        size_t size;
};

/* A data object the job reads: copied into the work directory as path before the job starts.
 * The data itself (whether it exists, may be used, is intact) is the node's business. */
struct jobspec_input {
        char *data; /* JOBSPEC_DATA_ID_LEN lowercase hex digits */
        char *path; /* a valid file name; no other input's, no file's */
};

/* Everything in it is owned by it and freed by jobspec_done(). */
struct jobspec {
        char *app; /* [a-z0-9][a-z0-9_.-]{0,63}; the app itself is not looked up */
        /* Exactly one of source (a one-file program; the app names the file) and files. */
        char *source; /* source_size bytes, then a NUL; NULL when files are given */
        size_t source_size;
        struct jobspec_file *files; /* NULL when source is given; else 1..max_files */
        size_t n_files;
        char **args; /* n_args strings without NUL, then NULL; never NULL itself */
        size_t n_args;
        char *stdin_data; /* stdin_size bytes, then a NUL; NULL: none was given */
        size_t stdin_size;
        struct jobspec_limits limits;
        int priority; /* JOBSPEC_PRIORITY_MIN..MAX, default 0 */
        /* The files of the work directory to return with the result: valid file names, no
         * repeats, at most JOBSPEC_MAX_OUTPUTS; NULL-terminated; NULL if none were asked for. */
        char **outputs;
        size_t n_outputs;
        struct jobspec_input *inputs; /* NULL if none; at most JOBSPEC_MAX_INPUTS */
        size_t n_inputs;
        /* Replication (a master with workers): run on `replicas` distinct workers, done when
         * `quorum` (a majority) agree. 1..JOBSPEC_REPLICAS_MAX, default 1; quorum default
         * replicas / 2 + 1. A node that runs its jobs itself runs each once. */
        int replicas;
        int quorum;
};

/*
 * Decodes and checks body[0..len) (need not be NUL-terminated) against bounds (borrowed).
 * Returns 0 and *ret (the caller calls jobspec_done() on it), or a negative errno and *err;
 * *ret is untouched on failure. err->code is the contract; the errno is a hint: -E2BIG (too_large,
 * too_many), -ENOMEM (internal_error), -ERANGE (most out_of_range, limit_exceeded), -ELOOP
 * (too_deep), -EBADMSG (what the JSON parser refuses), -EINVAL (the rest).
 */
int jobspec_decode(const char *body, size_t len, const struct jobspec_bounds *bounds,
                   struct jobspec *ret, struct json_error *err);

/*
 * Checks spec's limits against an app's maximum (as jobspec_bounds.app_max). 0, or -ERANGE and
 * *err (limit_exceeded, 422) naming the first limit above its maximum, and the maximum.
 */
int jobspec_check_limits(const struct jobspec *spec, const struct jobspec_limits *app_max,
                         struct json_error *err);

/* NULL if name[0..len) is an acceptable file name (1..255 bytes, no '/', no control character,
 * not "." or ".."), else why not, as a phrase ("must not contain '/'"). */
const char *jobspec_file_name_problem(const char *name, size_t len);

/*
 * Decodes root[field] (absent: nothing set), an object of limits as in a job's "limits", into
 * *ret (set says which were given). Error paths name the field ("max_limits.memory").
 */
int jobspec_decode_limits(const json_t *root, const char *field, struct jobspec_limits *ret,
                          struct json_error *err);

/* Frees what spec owns and zeroes it; accepts NULL and a zeroed or already done spec. */
void jobspec_done(struct jobspec *spec);
