/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sandbox's file system: a *plan* of mount operations computed in the parent (where errors
 * can still be reported with care and memory allocated), applied in the child inside its new
 * user and mount namespaces with the new mount API (open_tree, fsopen/fsmount, move_mount,
 * mount_setattr), ending with pivot_root into a read-only tmpfs root.
 *
 * Every destination is resolved component by component from the new root with O_NOFOLLOW, so a
 * symbolic link in an image cannot redirect a mount outside the sandbox.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sandbox_config;

enum mount_op_kind {
        MOUNT_OP_DIR,
        MOUNT_OP_FILE,    /* arg: contents */
        MOUNT_OP_SYMLINK, /* arg: link target */
        MOUNT_OP_BIND,    /* arg: host source */
        MOUNT_OP_TMPFS,
        MOUNT_OP_PROC, /* proc with the sensitive entries masked or read-only */
        MOUNT_OP_DEV,  /* minimal /dev: null zero full random urandom, shm, fd links */
};

struct mount_op {
        enum mount_op_kind kind;
        char *arg;
        char *dst;     /* absolute path inside the sandbox, normalised */
        uint64_t size; /* tmpfs bytes */
        unsigned mode; /* tmpfs root / dir mode */
        bool ro;
        bool src_is_dir;
        bool sandbox_owned; /* tmpfs owned by the sandbox user */
        int fd;             /* child: the cloned tree */
};

struct mount_plan {
        struct mount_op *ops;
        size_t n;
        size_t cap;
};

/*
 * Builds the plan for cfg. On a user error (missing source, bad destination) returns -errno and,
 * if ret_bad is not NULL, points it at the offending path (owned by cfg).
 */
int mount_plan_build(const struct sandbox_config *cfg, struct mount_plan **ret,
                     const char **ret_bad);
struct mount_plan *mount_plan_free(struct mount_plan *plan);

/*
 * Child side: applies the plan and pivots into the new root. On failure returns -errno and the
 * index of the failing operation (plan->n for the pivot itself).
 */
int mount_plan_apply(struct mount_plan *plan, size_t *ret_failed);

/* Validates and normalises an absolute sandbox path ("/a//b/" -> "/a/b"); rejects "..", "/". */
int mount_normalize_path(const char *path, char **ret);
