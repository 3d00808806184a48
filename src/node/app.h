/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Apps: how a job runs. An app spec (docs/api.md, "Apps") is decoded strictly from the API's
 * JSON or from the store's copy, and turns a job into the sandbox configuration of its build and
 * run steps. The job's files land in a work directory (/work in the sandbox); after the run, the
 * files the job declared as outputs are read back from it, which the sandbox may have filled
 * with anything (symlinks, fifos, huge files): every path is opened beneath the directory's fd,
 * without following links, regular files only, bounded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/jobspec.h"
#include "common/json.h"
#include "sandbox/sandbox.h"

#define APP_DESCRIPTION_MAX 4096
#define APP_ARGV_MAX        64   /* elements of a build or run argv template */
#define APP_ARG_LEN_MAX     4096 /* bytes of one template element */
#define APP_ENV_MAX         64   /* entries of env */
#define APP_PATH_MAX        4096 /* rootfs */
#define APP_WORKDIR         "/work"
#define APP_SPEC_MAX_BYTES  ((size_t) 4 << 20) /* of an app spec's JSON */

struct app_step {
        char **argv; /* NULL-terminated template; NULL: the app has no such step */
        size_t argc;
};

/* Everything owned; app_spec_done() frees. */
struct app_spec {
        char *name;        /* store_name_valid() */
        char *description; /* "" if none */
        char *rootfs;      /* NULL: the host profile; else an absolute, normalised directory */
        char *source_file; /* a valid jobspec file name; where "source" lands */
        struct app_step build;
        struct app_step run; /* required */
        char **env;          /* NULL-terminated "NAME=value"; NULL: the sandbox's default */
        size_t n_env;
        struct jobspec_limits limits;       /* run step defaults (set says which) */
        struct jobspec_limits max_limits;   /* the most a job may ask (0: may not ask) */
        struct jobspec_limits build_limits; /* the build step's */
};

/*
 * Decodes and checks an app spec (strict JSON: unknown fields refused). Output-only fields
 * (owner, group, mode, created_at, updated_at) are accepted and ignored so that a GET's body can be
 * PUT back. Errors as jobspec_decode(): -errno and *err.
 * rootfs: repeated and trailing slashes are dropped; "." and ".." components, a relative path and
 * "/" itself are refused (invalid_value). A default in "limits" above its "max_limits" is
 * limit_exceeded (422). An empty "env" is an empty environment (env non-NULL, n_env 0).
 */
int app_spec_decode(const char *json, size_t len, struct app_spec *ret, struct json_error *err);
/* The spec as a JSON object (without owner/mode/times, which the caller adds); NULL: no memory. */
json_t *app_spec_to_json(const struct app_spec *app);
void app_spec_done(struct app_spec *app);

/* The ready-made apps (sh, python3, c, cpp, node), as JSON texts that app_spec_decode() accepts. */
size_t app_builtin_count(void);
const char *app_builtin_json(size_t i);

/* The limits of the run step: the app's defaults overridden by the job's, each checked against
 * max_limits (-ERANGE and *err limit_exceeded, 422). */
int app_run_limits(const struct app_spec *app, const struct jobspec *job,
                   struct jobspec_limits *ret, struct json_error *err);

/* A template with "{args}" replaced by the job's args and "{source}" by source_file: a
 * NULL-terminated array the caller frees with strv_free(). -E2BIG beyond APP_ARGV_MAX + args.
 * job may be NULL (no args); -EINVAL if the app has no such step. */
int app_expand_argv(const struct app_step *step, const struct app_spec *app,
                    const struct jobspec *job, char ***ret);
void strv_free(char **v);

/*
 * Fills *cfg for a step (argv from app_expand_argv(), owned by the caller; limits as given;
 * rootfs; env; chdir APP_WORKDIR; a read-write bind of the host directory workdir on
 * APP_WORKDIR). The fds are left at -1 for the caller. mounts must have room for 1 entry.
 */
void app_step_config(const struct app_spec *app, const struct jobspec_limits *limits, char **argv,
                     const char *workdir, struct sandbox_mount *mounts, struct sandbox_config *cfg);

/* Writes the job's source (as app->source_file) or files into the directory dirfd: new files
 * only (O_EXCL, O_NOFOLLOW), mode 0644 whatever the umask. On failure the files already written
 * stay: the caller clears the directory. */
int app_workdir_populate(int dirfd, const struct app_spec *app, const struct jobspec *job);

/*
 * Reads the regular file `name` (a jobspec file name: no '/') beneath dirfd, at most max bytes:
 * 0 and *ret (malloc'd, NUL-terminated, ret_len bytes), -ENOENT if missing, -ELOOP (a symlink),
 * -EISDIR / -EINVAL (not a regular file), -EFBIG (over max). Never blocks (a fifo is refused).
 */
int app_workdir_read(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);

/*
 * Removes everything beneath dirfd (not dirfd itself), never following a link; bounded depth: the
 * recursion holds at most 64 directories open, and a deeper subtree is moved up into dirfd (as
 * ".warren-deep-N") and removed from there, so that no tree a job can make is left behind.
 * dirfd may be O_PATH.
 */
int app_workdir_clear(int dirfd);
