/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Control groups, v1 and v2 behind one face.
 *
 * cgroup_root_open() detects the layout under a mount point (normally /sys/fs/cgroup):
 *   - v2 (unified): MOUNT/cgroup.controllers exists. Warren's subtree is MOUNT/warren, with
 *     the controllers it needs enabled in MOUNT/warren/cgroup.subtree_control.
 *   - v1 (legacy or hybrid): one directory per controller (MOUNT/memory, MOUNT/pids, MOUNT/cpu,
 *     MOUNT/cpuacct, MOUNT/freezer; co-mounted directories such as "cpu,cpuacct" are found too).
 *     Warren's subtree is MOUNT/<controller>/warren in each.
 * Warren never creates, changes or removes anything outside those warren/ subtrees.
 *
 * Everything is done relative to directory fds, so the unit tests can point the code at a
 * temporary directory laid out like either kind of mount.
 */

#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

enum cgroup_version {
        CGROUP_V1 = 1,
        CGROUP_V2 = 2,
};

enum cgroup_controller {
        CGROUP_MEMORY = 0,
        CGROUP_PIDS,
        CGROUP_CPU,     /* bandwidth (quota/period) */
        CGROUP_CPUACCT, /* usage accounting; v2 always has it (cpu.stat) */
        CGROUP_FREEZER, /* v1 only; v2 has cgroup.freeze / cgroup.kill in the core */
        _CGROUP_CONTROLLER_MAX,
};

#define CGROUP_WANT(c) (1u << (c))

struct cgroup_limits {
        uint64_t memory;        /* bytes, 0 = unlimited; swap is limited to 0 where possible */
        uint64_t pids;          /* 0 = unlimited */
        uint64_t cpu_quota_us;  /* 0 = unlimited; with cpu_period_us: --cpus N = N * period */
        uint64_t cpu_period_us; /* 0 = the default 100000 */
        /*
         * v1: the controllers the group is needed in, as CGROUP_WANT() bits; the group is made
         * only in the hierarchies that serve one of them (each costs a mkdir, an attach and an
         * rmdir). 0: every hierarchy. v2 has one hierarchy and ignores it.
         */
        unsigned want;
};

struct cgroup_stats {
        uint64_t cpu_ns; /* user + system, all processes that ever ran in the group */
        uint64_t user_ns;
        uint64_t sys_ns;
        uint64_t memory_peak; /* bytes; 0 when the kernel cannot tell */
        uint64_t oom_kills;   /* processes killed by the OOM killer inside the group */
};

struct cgroup_root;
struct cgroup;

/*
 * Detects the hierarchy under `mount` and opens (creating if needed) Warren's warren/ subtree.
 * Returns -ENOENT when no usable hierarchy is found, -EACCES/-EPERM/-EROFS when it may not be
 * written.
 */
int cgroup_root_open(const char *mount, struct cgroup_root **ret);
struct cgroup_root *cgroup_root_free(struct cgroup_root *root);
enum cgroup_version cgroup_root_version(const struct cgroup_root *root);
/* Whether a controller can be used for limits/accounting in this root. */
bool cgroup_root_has(const struct cgroup_root *root, enum cgroup_controller c);

/*
 * Creates the group `name` (one path component of at most 64 characters from [A-Za-z0-9_.-], not
 * "." or ".."; else -EINVAL) in every hierarchy and applies the limits (NULL: none). A stale group
 * of the same name is killed and removed first. A limit whose controller is unavailable is
 * -EOPNOTSUPP: nothing is ever silently skipped. A CPU quota below 1000 us or a period outside
 * [1000, 1000000] us is -EINVAL. On failure nothing is left behind.
 * The group holds its own fds: it may outlive root.
 */
int cgroup_create(struct cgroup_root *root, const char *name, const struct cgroup_limits *limits,
                  struct cgroup **ret);

/*
 * v2: an O_RDONLY|O_DIRECTORY fd of the group, for clone3(CLONE_INTO_CGROUP); v1: -EOPNOTSUPP.
 * The fd belongs to cg (O_CLOEXEC; do not close it) and is valid until cg is freed.
 */
int cgroup_fd(const struct cgroup *cg);

/* Moves pid into the group in every hierarchy (on failure it may be in some of them). */
int cgroup_attach(const struct cgroup *cg, pid_t pid);

/* CPU time (user + system) of the group so far, in ns. Cheap: one small read. */
int cgroup_cpu_usage(const struct cgroup *cg, uint64_t *ret_ns);

/* Fields whose controller is unavailable (v1 without cpuacct or memory) are 0. */
int cgroup_read_stats(const struct cgroup *cg, struct cgroup_stats *ret);

/*
 * SIGKILLs every process in the group (v2: cgroup.kill; v1: freeze, kill each, thaw) and waits,
 * bounded, until it is empty. Returns -EBUSY if processes remain.
 */
int cgroup_kill(const struct cgroup *cg);

/* cgroup_kill() then removes the group from every hierarchy. Always frees cg. */
int cgroup_destroy(struct cgroup *cg);

/* Releases memory and fds only; the group stays on disk. Accepts NULL, returns NULL. */
struct cgroup *cgroup_free(struct cgroup *cg);

/*
 * Removes stale groups: for each child group of warren/ (in any hierarchy) for which
 * is_stale(name, userdata) returns true, kills its processes and removes it.
 * Only directories whose names cgroup_create() accepts are considered. Every stale group is tried;
 * returns the number removed, or the first negative errno if any of them could not be removed.
 */
int cgroup_sweep(struct cgroup_root *root, bool (*is_stale)(const char *name, void *userdata),
                 void *userdata);
