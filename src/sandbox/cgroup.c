/* SPDX-License-Identifier: MIT */

/*
 * Control groups, v1 and v2 behind one face.
 *
 * Theory of operation
 *
 * A root is a list of hierarchies, each reduced to one O_DIRECTORY fd of Warren's warren/
 * directory in it and a mask of the controllers it serves. A v2 mount is one hierarchy serving
 * every controller that both the mount's root and warren/ offer; a v1 mount is one hierarchy per
 * controller mount, found by directory name ("memory", "cpu,cpuacct", a "cpu" symlink ...) and
 * deduplicated by st_dev/st_ino, so co-mounted controllers share one entry. Everything after the
 * root's open() is an *at() call relative to those fds: nothing outside warren/ is ever written,
 * and the unit tests can point the code at a temporary directory laid out like either mount.
 *
 * A group is the same list of hierarchies with the group's own directory fd in each, plus a dup
 * of the warren/ fd so that it can remove itself without the root. It also keeps open the one
 * file cgroup_cpu_usage() reads (v2 cpu.stat, v1 cpuacct.usage), so that the sandbox's CPU-time
 * watchdog costs one pread() per poll.
 *
 * Killing: v2 writes cgroup.kill (5.14+), which also stops forks that race with it, then waits
 * for "populated 0" in cgroup.events, woken by the kernel's POLLPRI notification. Without
 * cgroup.kill (and on v1) the group is frozen, every listed pid is SIGKILLed, the group is thawed
 * (a v1 frozen task only dies once thawed) and the listing is re-read until empty; v1 notifies
 * neither "FROZEN" nor "empty", so those two waits are the only places with short bounded sleeps
 * (at most 2 s in all). A pid is only signalled through a pidfd opened before a second listing
 * that still shows it, so a pid that exits and is reused outside the group between the two reads
 * is never signalled.
 *
 * Groups are leaves: Warren never creates groups inside a group, and the sandbox cannot (it gets
 * no write access to cgroupfs), so removing a group is one rmdir per hierarchy.
 */

#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/pidfd.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define WARREN_DIR         "warren"
#define CGROUP_NAME_MAX    64
#define SMALL_FILE_MAX     4096 /* cgroup.controllers, cpu.stat, memory.events, freezer.state ... */
#define NSEC_PER_USEC      UINT64_C(1000)
#define NSEC_PER_MSEC      UINT64_C(1000000)
#define NSEC_PER_SEC       UINT64_C(1000000000)
#define KILL_TIMEOUT_NS    (2 * NSEC_PER_SEC)
#define FREEZE_TIMEOUT_NS  (1 * NSEC_PER_SEC)
#define BACKOFF_MIN_NS     (1 * NSEC_PER_MSEC)
#define BACKOFF_MAX_NS     (50 * NSEC_PER_MSEC)
#define KILL_BATCH         256             /* pidfds open at once while killing */
#define KILL_MAX_BATCHES   (4194304 / 256) /* PID_MAX_LIMIT pids */
#define SWEEP_MAX          65536           /* child groups looked at by one sweep */
#define CPU_PERIOD_DEFAULT UINT64_C(100000)
#define CPU_PERIOD_MIN     UINT64_C(1000) /* the kernel's bounds for cfs period and quota */
#define CPU_PERIOD_MAX     UINT64_C(1000000)
#define CPU_QUOTA_MIN      UINT64_C(1000)

#define BIT(c) (1u << (c))

static const char *const controller_names[_CGROUP_CONTROLLER_MAX] = {
        [CGROUP_MEMORY] = "memory",   [CGROUP_PIDS] = "pids",       [CGROUP_CPU] = "cpu",
        [CGROUP_CPUACCT] = "cpuacct", [CGROUP_FREEZER] = "freezer",
};

/* The controllers that are real controllers on v2 and must be enabled in warren/. */
static const enum cgroup_controller v2_controllers[] = {CGROUP_MEMORY, CGROUP_PIDS, CGROUP_CPU};

struct hierarchy {
        int fd;        /* warren/ in this hierarchy */
        unsigned mask; /* BIT(controller) for each controller this hierarchy serves */
        dev_t dev;     /* v1: the mount's root directory, to merge names of one mount */
        ino_t ino;
};

struct cgroup_root {
        enum cgroup_version version;
        unsigned mask;
        size_t n;
        struct hierarchy h[_CGROUP_CONTROLLER_MAX];
};

struct group_dir {
        int parent_fd; /* our own dup of warren/ */
        int fd;        /* the group's directory, -EBADF where it does not exist */
        unsigned mask;
};

struct cgroup {
        enum cgroup_version version;
        unsigned mask;
        size_t n;
        struct group_dir h[_CGROUP_CONTROLLER_MAX];
        int cpu_fd; /* v2 cpu.stat, v1 cpuacct.usage; -EBADF when unavailable */
        char name[CGROUP_NAME_MAX + 1];
};

DEFINE_FREE_FUNC(struct cgroup_root *, cgroup_root_free);
DEFINE_FREE_FUNC(struct cgroup *, cgroup_free);

/* A DIR stream of its own over the directory at fd (fd itself stays open and unmoved). */
static int opendir_at(int fd, DIR **ret)
{
        DIR *d;
        int dfd;

        dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                (void) close(dfd);
                return r;
        }
        *ret = d;
        return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

static bool name_is_valid(const char *name)
{
        size_t len;

        if (!name)
                return false;
        len = strnlen(name, CGROUP_NAME_MAX + 1);
        if (len == 0 || len > CGROUP_NAME_MAX)
                return false;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        for (const char *p = name; *p; p++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-'))
                        return false;
        }
        return true;
}

/* Whether the token [s, s+len) is the controller name c. */
static bool token_is(const char *s, size_t len, enum cgroup_controller c)
{
        return strlen(controller_names[c]) == len && memcmp(s, controller_names[c], len) == 0;
}

/* v2: a whitespace-separated list ("cpuset cpu io memory pids") to a mask of v2_controllers. */
static unsigned parse_v2_list(const char *s)
{
        unsigned mask = 0;

        for (;;) {
                size_t len;

                s += strspn(s, " \t\n");
                len = strcspn(s, " \t\n");
                if (len == 0)
                        return mask;
                for (size_t i = 0; i < ELEMENTSOF(v2_controllers); i++)
                        if (token_is(s, len, v2_controllers[i]))
                                mask |= BIT(v2_controllers[i]);
                s += len;
        }
}

/* v1: a mount directory's name ("memory", "cpu,cpuacct", "net_cls,net_prio") to a mask. */
static unsigned parse_v1_name(const char *s)
{
        unsigned mask = 0;

        for (;;) {
                size_t len = strcspn(s, ",");

                for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++)
                        if (token_is(s, len, (enum cgroup_controller) c))
                                mask |= BIT(c);
                if (s[len] == '\0')
                        return mask;
                s += len + 1;
        }
}

/*
 * Finds "key value" in a buffer of lines and parses the value. The caller passes only complete
 * lines (see read_lines()); a missing key is -ENOENT.
 */
static int parse_keyed(const char *buf, const char *key, uint64_t *ret)
{
        size_t klen = strlen(key);

        for (const char *p = buf; *p;) {
                size_t len = strcspn(p, "\n");

                if (len > klen && memcmp(p, key, klen) == 0 && p[klen] == ' ') {
                        char num[32];
                        size_t vlen = len - klen - 1;

                        if (vlen >= sizeof(num))
                                return -EBADMSG;
                        memcpy(num, p + klen + 1, vlen);
                        num[vlen] = '\0';
                        return parse_uint(num, 0, UINT64_MAX, ret) < 0 ? -EBADMSG : 0;
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        return -ENOENT;
}

/* A file holding one decimal number and a newline (memory.peak, cpuacct.usage ...). */
static int parse_number(char *s, uint64_t *ret)
{
        size_t len = strlen(s);

        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
                s[--len] = '\0';
        return parse_uint(s, 0, UINT64_MAX, ret) < 0 ? -EBADMSG : 0;
}

static int read_number_at(int dirfd, const char *path, uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_file_at(dirfd, path, SMALL_FILE_MAX, &s);
        if (r < 0)
                return r;
        return parse_number(s, ret);
}

static int read_keyed_at(int dirfd, const char *path, const char *key, uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_file_at(dirfd, path, SMALL_FILE_MAX, &s);
        if (r < 0)
                return r;
        return parse_keyed(s, key, ret);
}

/*
 * pread()s the start of an open interface file into buf (size > 1) as a string of complete lines:
 * when the file did not fit, the partial last line is cut off.
 */
static int read_lines(int fd, char *buf, size_t size)
{
        ssize_t n;

        do
                n = pread(fd, buf, size - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        if ((size_t) n == size - 1) {
                char *nl = strrchr(buf, '\n');
                if (!nl)
                        return -EBADMSG;
                nl[1] = '\0';
        }
        return 0;
}

static int mul_ns(uint64_t v, uint64_t unit_ns, uint64_t *ret)
{
        if (v > UINT64_MAX / unit_ns)
                return -ERANGE;
        *ret = v * unit_ns;
        return 0;
}

/* Sleeps a little longer each time, never past deadline; -ETIMEDOUT once it has passed. */
static int sleep_backoff(uint64_t *step_ns, uint64_t deadline)
{
        uint64_t now = now_ns(CLOCK_MONOTONIC), d;
        struct timespec ts;

        if (now >= deadline)
                return -ETIMEDOUT;
        d = min_u64(*step_ns, deadline - now);
        ts.tv_sec = (time_t) (d / NSEC_PER_SEC);
        ts.tv_nsec = (long) (d % NSEC_PER_SEC);
        /* EINTR only shortens one wait; the caller re-checks its condition and the deadline. */
        (void) clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        *step_ns = min_u64(*step_ns * 2, BACKOFF_MAX_NS);
        return 0;
}

/* mkdir (if needed) and open DIR/warren. */
static int open_subtree(int dirfd, int *ret_fd)
{
        int fd;

        if (mkdirat(dirfd, WARREN_DIR, 0755) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(dirfd, WARREN_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* A subtree we cannot create groups in (another user's) is no subtree of ours. */
        if (faccessat(fd, ".", W_OK, AT_EACCESS) < 0) {
                int r = -errno;
                (void) close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

static bool file_exists_at(int dirfd, const char *path)
{
        struct stat st;

        return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int root_open_v2(struct cgroup_root *root, int mfd)
{
        _cleanup_free_ char *top = NULL, *offered = NULL, *enabled = NULL;
        _cleanup_close_ int fd = -EBADF;
        unsigned avail, missing;
        int r;

        /*
         * Only what the mount's root already delegates to its children is usable: Warren never
         * writes the root's cgroup.subtree_control, which belongs to the system manager.
         */
        r = read_file_at(mfd, "cgroup.subtree_control", SMALL_FILE_MAX, &top);
        if (r < 0)
                return r;
        r = open_subtree(mfd, &fd);
        if (r < 0)
                return r;
        r = read_file_at(fd, "cgroup.controllers", SMALL_FILE_MAX, &offered);
        if (r < 0)
                return r;
        r = read_file_at(fd, "cgroup.subtree_control", SMALL_FILE_MAX, &enabled);
        if (r < 0)
                return r;
        avail = parse_v2_list(top) & parse_v2_list(offered);
        missing = avail & ~parse_v2_list(enabled);
        if (missing) {
                char buf[64] = "";
                size_t len = 0;

                for (size_t i = 0; i < ELEMENTSOF(v2_controllers); i++) {
                        if (!(missing & BIT(v2_controllers[i])))
                                continue;
                        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s+%s",
                                                 len > 0 ? " " : "",
                                                 controller_names[v2_controllers[i]]);
                }
                /* One write: the kernel applies the whole list or nothing. */
                r = write_file_at(fd, "cgroup.subtree_control", buf);
                if (r < 0)
                        return log_debug_errno(r, "Failed to enable '%s' in warren/: %m", buf);
        }

        /* Usage accounting (cpu.stat) is in the v2 core; so is the freezer, since 5.2. */
        root->mask = avail | BIT(CGROUP_CPUACCT);
        if (file_exists_at(fd, "cgroup.freeze"))
                root->mask |= BIT(CGROUP_FREEZER);
        root->version = CGROUP_V2;
        root->h[0].mask = root->mask;
        root->h[0].fd = TAKE_FD(fd);
        root->n = 1;
        return 0;
}

/* Adds one v1 mount directory (already opened as cfd) to root, merging co-mounts. */
static int root_add_v1(struct cgroup_root *root, int cfd, unsigned mask)
{
        struct stat st;
        int fd = -EBADF, r;

        if (fstat(cfd, &st) < 0)
                return -errno;
        /* An empty directory where no hierarchy is mounted is not a hierarchy. */
        if (!file_exists_at(cfd, "cgroup.procs"))
                return 0;

        /* Several names of one mount ("cpu" -> "cpu,cpuacct"): the inode of its root dedupes. */
        for (size_t i = 0; i < root->n; i++) {
                if (root->h[i].dev == st.st_dev && root->h[i].ino == st.st_ino) {
                        root->h[i].mask |= mask & ~root->mask;
                        root->mask |= mask;
                        return 0;
                }
        }

        /* A controller is mounted in one hierarchy only; never count it twice. */
        mask &= ~root->mask;
        if (mask == 0 || root->n == ELEMENTSOF(root->h))
                return 0;

        r = open_subtree(cfd, &fd);
        if (r < 0)
                return r;
        root->h[root->n] = (struct hierarchy){
                .fd = fd,
                .mask = mask,
                .dev = st.st_dev,
                .ino = st.st_ino,
        };
        root->n++;
        root->mask |= mask;
        return 0;
}

static int root_open_v1(struct cgroup_root *root, int mfd)
{
        _cleanup_(closedirp) DIR *d = NULL;
        int r;

        r = opendir_at(mfd, &d);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_close_ int cfd = -EBADF;
                struct dirent *de;
                unsigned mask;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return -errno;
                        break;
                }
                if (de->d_name[0] == '.')
                        continue;
                mask = parse_v1_name(de->d_name);
                if (mask == 0)
                        continue;
                /* Follows symlinks on purpose: "cpu" -> "cpu,cpuacct" inside the trusted mount. */
                cfd = openat(mfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cfd < 0) {
                        if (errno == ENOENT || errno == ENOTDIR)
                                continue;
                        return -errno;
                }
                r = root_add_v1(root, cfd, mask);
                if (r < 0)
                        return r;
        }

        if (root->n == 0)
                return -ENOENT;
        root->version = CGROUP_V1;
        return 0;
}

int cgroup_root_open(const char *mount, struct cgroup_root **ret)
{
        _cleanup_(cgroup_root_freep) struct cgroup_root *root = NULL;
        _cleanup_close_ int mfd = -EBADF;
        struct stat st;
        int r;

        if (!mount || !ret)
                return -EINVAL;
        mfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0)
                return -errno;

        root = calloc(1, sizeof(*root));
        if (!root)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(root->h); i++)
                root->h[i].fd = -EBADF;

        if (fstatat(mfd, "cgroup.controllers", &st, AT_SYMLINK_NOFOLLOW) == 0)
                r = root_open_v2(root, mfd);
        else if (errno == ENOENT)
                r = root_open_v1(root, mfd);
        else
                r = -errno;
        if (r < 0)
                return r;

        *ret = TAKE_PTR(root);
        return 0;
}

struct cgroup_root *cgroup_root_free(struct cgroup_root *root)
{
        if (!root)
                return NULL;
        for (size_t i = 0; i < root->n; i++)
                root->h[i].fd = safe_close(root->h[i].fd);
        free(root);
        return NULL;
}

enum cgroup_version cgroup_root_version(const struct cgroup_root *root)
{
        return root->version;
}

bool cgroup_root_has(const struct cgroup_root *root, enum cgroup_controller c)
{
        if (!root || (int) c < 0 || c >= _CGROUP_CONTROLLER_MAX)
                return false;
        return root->mask & BIT(c);
}

/* A group object for `name` in every hierarchy of root, with no group directory opened yet. */
static int group_new(const struct cgroup_root *root, const char *name, unsigned want,
                     struct cgroup **ret)
{
        _cleanup_(cgroup_freep) struct cgroup *cg = NULL;

        cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        cg->version = root->version;
        cg->mask = root->mask;
        cg->cpu_fd = -EBADF;
        for (size_t i = 0; i < ELEMENTSOF(cg->h); i++)
                cg->h[i].parent_fd = cg->h[i].fd = -EBADF;
        memcpy(cg->name, name, strlen(name) + 1); /* validated: at most CGROUP_NAME_MAX */
        for (size_t i = 0; i < root->n; i++) {
                struct group_dir *h = &cg->h[cg->n];

                if (root->version == CGROUP_V1 && want && !(root->h[i].mask & want))
                        continue;
                h->parent_fd = fcntl(root->h[i].fd, F_DUPFD_CLOEXEC, 3);
                if (h->parent_fd < 0)
                        return -errno;
                h->mask = root->h[i].mask;
                cg->n++;
        }
        if (root->version == CGROUP_V1 && want) {
                cg->mask = 0;
                for (size_t i = 0; i < cg->n; i++)
                        cg->mask |= cg->h[i].mask;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

/* Opens the group's directory where it exists. Returns in how many hierarchies it does. */
static int group_open_existing(struct cgroup *cg)
{
        int found = 0;

        for (size_t i = 0; i < cg->n; i++) {
                int fd = openat(cg->h[i].parent_fd, cg->name,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                cg->h[i].fd = fd;
                found++;
        }
        return found;
}

/* rmdir in every hierarchy; a group that is already gone is fine. */
static int group_remove(struct cgroup *cg)
{
        int r = 0;

        for (size_t i = 0; i < cg->n; i++) {
                if (unlinkat(cg->h[i].parent_fd, cg->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                        int k = log_debug_errno(errno, "Failed to remove cgroup '%s': %m",
                                                cg->name);
                        if (r == 0)
                                r = k;
                }
        }
        return r;
}

static int group_mkdir(struct cgroup *cg)
{
        size_t made = 0;
        int r = 0;

        for (; made < cg->n; made++) {
                if (mkdirat(cg->h[made].parent_fd, cg->name, 0755) < 0) {
                        r = -errno;
                        break;
                }
                cg->h[made].fd = openat(cg->h[made].parent_fd, cg->name,
                                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cg->h[made].fd < 0) {
                        r = -errno;
                        made++;
                        break;
                }
        }
        if (r == 0)
                return 0;
        for (size_t i = 0; i < made; i++) {
                cg->h[i].fd = safe_close(cg->h[i].fd);
                (void) unlinkat(cg->h[i].parent_fd, cg->name, AT_REMOVEDIR);
        }
        return r;
}

/* The group's directory in the hierarchy serving c, or -EOPNOTSUPP. */
static int group_fd_for(const struct cgroup *cg, enum cgroup_controller c)
{
        for (size_t i = 0; i < cg->n; i++)
                if ((cg->h[i].mask & BIT(c)) && cg->h[i].fd >= 0)
                        return cg->h[i].fd;
        return -EOPNOTSUPP;
}

static int write_u64_at(int dirfd, const char *path, uint64_t v)
{
        char buf[32];

        (void) snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return write_file_at(dirfd, path, buf);
}

static int apply_limits(const struct cgroup *cg, const struct cgroup_limits *l)
{
        int fd, r;

        if (l->memory > 0) {
                fd = group_fd_for(cg, CGROUP_MEMORY);
                if (fd < 0)
                        return fd;
                if (cg->version == CGROUP_V2) {
                        r = write_u64_at(fd, "memory.max", l->memory);
                        if (r < 0)
                                return r;
                        /* Absent without swap accounting: then there is no swap to limit. */
                        r = write_file_at(fd, "memory.swap.max", "0");
                        if (r < 0 && r != -ENOENT)
                                return r;
                } else {
                        /* memsw must stay >= the memory limit: memory first. */
                        r = write_u64_at(fd, "memory.limit_in_bytes", l->memory);
                        if (r < 0)
                                return r;
                        r = write_u64_at(fd, "memory.memsw.limit_in_bytes", l->memory);
                        if (r < 0 && r != -ENOENT)
                                return r;
                }
        }

        if (l->pids > 0) {
                fd = group_fd_for(cg, CGROUP_PIDS);
                if (fd < 0)
                        return fd;
                r = write_u64_at(fd, "pids.max", l->pids);
                if (r < 0)
                        return r;
        }

        if (l->cpu_quota_us > 0) {
                uint64_t period = l->cpu_period_us ? l->cpu_period_us : CPU_PERIOD_DEFAULT;

                fd = group_fd_for(cg, CGROUP_CPU);
                if (fd < 0)
                        return fd;
                if (cg->version == CGROUP_V2) {
                        char buf[64];

                        (void) snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64, l->cpu_quota_us,
                                        period);
                        r = write_file_at(fd, "cpu.max", buf);
                } else {
                        /* The default quota is -1 (none), so any period is accepted first. */
                        r = write_u64_at(fd, "cpu.cfs_period_us", period);
                        if (r >= 0)
                                r = write_u64_at(fd, "cpu.cfs_quota_us", l->cpu_quota_us);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_limits(const struct cgroup_root *root, const struct cgroup_limits *l)
{
        if (l->cpu_quota_us > 0) {
                uint64_t period = l->cpu_period_us ? l->cpu_period_us : CPU_PERIOD_DEFAULT;

                if (period < CPU_PERIOD_MIN || period > CPU_PERIOD_MAX ||
                    l->cpu_quota_us < CPU_QUOTA_MIN)
                        return -EINVAL;
        }
        if ((l->memory > 0 && !cgroup_root_has(root, CGROUP_MEMORY)) ||
            (l->pids > 0 && !cgroup_root_has(root, CGROUP_PIDS)) ||
            (l->cpu_quota_us > 0 && !cgroup_root_has(root, CGROUP_CPU)))
                return -EOPNOTSUPP;
        return 0;
}

static int open_cpu_file(struct cgroup *cg)
{
        const char *path = cg->version == CGROUP_V2 ? "cpu.stat" : "cpuacct.usage";
        int fd = group_fd_for(cg, CGROUP_CPUACCT);

        if (fd < 0)
                return 0; /* no accounting: cgroup_cpu_usage() says -EOPNOTSUPP */
        cg->cpu_fd = openat(fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (cg->cpu_fd < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int cgroup_create(struct cgroup_root *root, const char *name, const struct cgroup_limits *limits,
                  struct cgroup **ret)
{
        static const struct cgroup_limits none = {0};
        _cleanup_(cgroup_freep) struct cgroup *cg = NULL;
        unsigned want;
        int r;

        if (!root || !ret || !name_is_valid(name))
                return -EINVAL;
        if (!limits)
                limits = &none;
        /* Before anything is created, so that a refusal leaves nothing behind. */
        r = check_limits(root, limits);
        if (r < 0)
                return r;

        want = limits->want;
        if (want) {
                /* A limit always gets its controller. */
                if (limits->memory)
                        want |= CGROUP_WANT(CGROUP_MEMORY);
                if (limits->pids)
                        want |= CGROUP_WANT(CGROUP_PIDS);
                if (limits->cpu_quota_us)
                        want |= CGROUP_WANT(CGROUP_CPU);
        }
        r = group_new(root, name, want, &cg);
        if (r < 0)
                return r;
        r = group_open_existing(cg);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Left over by a crashed run: its processes and settings must not leak in. */
                log_debug("Removing stale cgroup '%s'", name);
                r = cgroup_kill(cg);
                if (r < 0)
                        return r;
                r = group_remove(cg);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < cg->n; i++)
                        cg->h[i].fd = safe_close(cg->h[i].fd);
        }

        r = group_mkdir(cg);
        if (r < 0)
                return r;
        r = apply_limits(cg, limits);
        if (r >= 0)
                r = open_cpu_file(cg);
        if (r < 0) {
                /* Empty (nothing was attached yet), so a plain rmdir removes it. */
                (void) group_remove(cg);
                return r;
        }

        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_fd(const struct cgroup *cg)
{
        if (!cg)
                return -EINVAL;
        if (cg->version != CGROUP_V2)
                return -EOPNOTSUPP;
        return cg->h[0].fd;
}

int cgroup_attach(const struct cgroup *cg, pid_t pid)
{
        char buf[32];

        if (!cg || pid <= 0)
                return -EINVAL;
        (void) snprintf(buf, sizeof(buf), "%d", (int) pid);
        for (size_t i = 0; i < cg->n; i++) {
                int r;

                if (cg->h[i].fd < 0)
                        return -ENOENT;
                r = write_file_at(cg->h[i].fd, "cgroup.procs", buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cgroup_cpu_usage(const struct cgroup *cg, uint64_t *ret_ns)
{
        char buf[512]; /* usage_usec is the first line of cpu.stat */
        uint64_t v;
        int r;

        if (!cg || !ret_ns)
                return -EINVAL;
        if (cg->cpu_fd < 0)
                return -EOPNOTSUPP;
        r = read_lines(cg->cpu_fd, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (cg->version == CGROUP_V2) {
                r = parse_keyed(buf, "usage_usec", &v);
                if (r < 0)
                        return r;
                return mul_ns(v, NSEC_PER_USEC, ret_ns);
        }
        r = parse_number(buf, &v);
        if (r < 0)
                return r;
        *ret_ns = v;
        return 0;
}

static int ticks_to_ns(uint64_t ticks, uint64_t hz, uint64_t *ret)
{
        uint64_t whole;
        int r;

        r = mul_ns(ticks / hz, NSEC_PER_SEC, &whole);
        if (r < 0)
                return r;
        /* (ticks % hz) < hz, a few thousand at most: the product cannot overflow. */
        *ret = whole + (ticks % hz) * NSEC_PER_SEC / hz;
        return 0;
}

static int read_cpu_v1(int fd, struct cgroup_stats *s)
{
        int r;

        r = read_number_at(fd, "cpuacct.usage", &s->cpu_ns);
        if (r < 0)
                return r;
        r = read_number_at(fd, "cpuacct.usage_user", &s->user_ns);
        if (r >= 0)
                r = read_number_at(fd, "cpuacct.usage_sys", &s->sys_ns);
        if (r == -ENOENT) {
                /* Before 4.16: cpuacct.stat, in USER_HZ ticks. */
                _cleanup_free_ char *st = NULL;
                uint64_t user, sys;
                long hz = sysconf(_SC_CLK_TCK);

                if (hz <= 0)
                        return -EINVAL;
                r = read_file_at(fd, "cpuacct.stat", SMALL_FILE_MAX, &st);
                if (r < 0)
                        return r;
                r = parse_keyed(st, "user", &user);
                if (r < 0)
                        return r;
                r = parse_keyed(st, "system", &sys);
                if (r < 0)
                        return r;
                r = ticks_to_ns(user, (uint64_t) hz, &s->user_ns);
                if (r < 0)
                        return r;
                r = ticks_to_ns(sys, (uint64_t) hz, &s->sys_ns);
        }
        return r;
}

static int read_cpu_v2(int fd, struct cgroup_stats *s)
{
        _cleanup_free_ char *st = NULL;
        uint64_t usage, user, sys;
        int r;

        r = read_file_at(fd, "cpu.stat", SMALL_FILE_MAX, &st);
        if (r < 0)
                return r;
        r = parse_keyed(st, "usage_usec", &usage);
        if (r >= 0)
                r = parse_keyed(st, "user_usec", &user);
        if (r >= 0)
                r = parse_keyed(st, "system_usec", &sys);
        if (r >= 0)
                r = mul_ns(usage, NSEC_PER_USEC, &s->cpu_ns);
        if (r >= 0)
                r = mul_ns(user, NSEC_PER_USEC, &s->user_ns);
        if (r >= 0)
                r = mul_ns(sys, NSEC_PER_USEC, &s->sys_ns);
        return r == -ENOENT ? -EBADMSG : r;
}

int cgroup_read_stats(const struct cgroup *cg, struct cgroup_stats *ret)
{
        struct cgroup_stats s = {0};
        int fd, r;

        if (!cg || !ret)
                return -EINVAL;

        fd = group_fd_for(cg, CGROUP_CPUACCT);
        if (fd >= 0) {
                r = cg->version == CGROUP_V2 ? read_cpu_v2(fd, &s) : read_cpu_v1(fd, &s);
                if (r < 0)
                        return r;
        }

        fd = group_fd_for(cg, CGROUP_MEMORY);
        if (fd >= 0) {
                bool v2 = cg->version == CGROUP_V2;

                /* memory.peak is 5.19+; v1's oom_kill line 4.13+: absent means "cannot tell". */
                r = read_number_at(fd, v2 ? "memory.peak" : "memory.max_usage_in_bytes",
                                   &s.memory_peak);
                if (r < 0 && r != -ENOENT)
                        return r;
                r = read_keyed_at(fd, v2 ? "memory.events" : "memory.oom_control", "oom_kill",
                                  &s.oom_kills);
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        *ret = s;
        return 0;
}

/* Calls cb for each pid listed in dirfd's cgroup.procs, streaming it with a fixed buffer. */
static int for_each_listed_pid(int dirfd, int (*cb)(pid_t pid, void *userdata), void *userdata)
{
        _cleanup_close_ int fd = -EBADF;
        bool in_number = false;
        int v = 0;

        fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                /* Removed under us (a directory fd outlives rmdir): nobody is left in it. */
                return errno == ENOENT ? 0 : -errno;
        for (;;) {
                char buf[4096];
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        char c = buf[i];

                        if (c >= '0' && c <= '9') {
                                if (v > (INT_MAX - (c - '0')) / 10)
                                        return -EBADMSG;
                                v = v * 10 + (c - '0');
                                in_number = true;
                                continue;
                        }
                        if (c != '\n')
                                return -EBADMSG;
                        /* 0 is a process outside our pid namespace: never a pid to kill(). */
                        if (in_number && v > 0) {
                                int r = cb((pid_t) v, userdata);
                                if (r != 0)
                                        return r < 0 ? r : 0;
                        }
                        v = 0;
                        in_number = false;
                }
        }
        if (in_number && v > 0) {
                int r = cb((pid_t) v, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int stop_at_first(pid_t pid, void *userdata)
{
        *(bool *) userdata = true;
        return 1;
}

/* 1 if no process is listed in dirfd's cgroup.procs, 0 if some is. */
static int procs_empty(int dirfd)
{
        bool any = false;
        int r;

        r = for_each_listed_pid(dirfd, stop_at_first, &any);
        if (r < 0)
                return r;
        return !any;
}

struct pid_batch {
        size_t skip;
        size_t n;
        bool more;
        pid_t pids[KILL_BATCH];
        bool listed[KILL_BATCH];
};

static int batch_collect(pid_t pid, void *userdata)
{
        struct pid_batch *b = userdata;

        if (b->skip > 0) {
                b->skip--;
                return 0;
        }
        if (b->n == KILL_BATCH) {
                b->more = true;
                return 1;
        }
        b->pids[b->n++] = pid;
        return 0;
}

static int cmp_pid(const void *a, const void *b)
{
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;

        return (x > y) - (x < y);
}

static int batch_mark(pid_t pid, void *userdata)
{
        struct pid_batch *b = userdata;
        const pid_t *hit = bsearch(&pid, b->pids, b->n, sizeof(pid_t), cmp_pid);

        if (hit)
                b->listed[hit - b->pids] = true;
        return 0;
}

/* Signals the listed pids of b (see the top of the file). pidfds[i] is -ESRCH for gone ones. */
static int batch_kill(const struct pid_batch *b, const int *pidfds)
{
        int r = 0;

        for (size_t i = 0; i < b->n; i++) {
                int k;

                if (!b->listed[i] || pidfds[i] == -ESRCH)
                        continue;
                if (pidfds[i] >= 0)
                        k = pidfd_send_signal(pidfds[i], SIGKILL, NULL, 0);
                else /* -ENOSYS: a kernel before 5.3; the race is only closed by the freezer */
                        k = kill(b->pids[i], SIGKILL);
                if (k < 0 && errno != ESRCH && r == 0)
                        r = -errno;
        }
        return r;
}

/* SIGKILLs every process listed in dirfd's cgroup.procs, KILL_BATCH at a time. */
static int kill_listed(int dirfd)
{
        size_t skip = 0;

        for (unsigned iter = 0; iter < KILL_MAX_BATCHES; iter++) {
                struct pid_batch b = {.skip = skip};
                int pidfds[KILL_BATCH];
                int r;

                r = for_each_listed_pid(dirfd, batch_collect, &b);
                if (r < 0)
                        return r;
                if (b.n == 0)
                        return 0;
                qsort(b.pids, b.n, sizeof(pid_t), cmp_pid);

                r = 0;
                for (size_t i = 0; i < b.n; i++) {
                        pidfds[i] = pidfd_open(b.pids[i], 0);
                        if (pidfds[i] < 0) {
                                pidfds[i] = -errno;
                                if (pidfds[i] != -ESRCH && pidfds[i] != -ENOSYS && r == 0)
                                        r = pidfds[i];
                        }
                }
                if (r >= 0)
                        r = for_each_listed_pid(dirfd, batch_mark, &b);
                if (r >= 0)
                        r = batch_kill(&b, pidfds);
                for (size_t i = 0; i < b.n; i++)
                        pidfds[i] = safe_close(pidfds[i]);
                if (r < 0)
                        return r;
                if (!b.more)
                        return 0;
                skip += b.n;
        }
        return -E2BIG;
}

static int kill_pass(const struct cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++) {
                int r;

                if (cg->h[i].fd < 0)
                        continue;
                r = kill_listed(cg->h[i].fd);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* 1 when cgroup.procs is empty in every hierarchy. */
static int all_empty(const struct cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++) {
                int r;

                if (cg->h[i].fd < 0)
                        continue;
                r = procs_empty(cg->h[i].fd);
                if (r <= 0)
                        return r;
        }
        return 1;
}

/* v2: waits until cgroup.events shows "key want", woken by the kernel's POLLPRI notification. */
static int wait_events(int dirfd, const char *key, uint64_t want, uint64_t deadline)
{
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLPRI};
                char buf[256];
                uint64_t v, now;
                int r;

                /* Reading from the start also re-arms the notification. */
                r = read_lines(fd, buf, sizeof(buf));
                if (r < 0)
                        return r;
                r = parse_keyed(buf, key, &v);
                if (r < 0)
                        return r;
                if (v == want)
                        return 0;
                now = now_ns(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) ((deadline - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC)) < 0 &&
                    errno != EINTR)
                        return -errno;
        }
}

static int kill_v2(const struct cgroup *cg)
{
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        int fd = cg->h[0].fd, r;

        if (fd < 0 || !file_exists_at(fd, "cgroup.procs"))
                return 0; /* no such group, or removed under us: nobody is left in it */
        r = write_file_at(fd, "cgroup.kill", "1");
        if (r == -ENOENT) {
                /* Before 5.14: freeze (5.2+) so that nothing forks while we read the list. */
                bool frozen = write_file_at(fd, "cgroup.freeze", "1") >= 0;

                if (frozen) {
                        r = wait_events(fd, "frozen", 1, now + FREEZE_TIMEOUT_NS);
                        if (r < 0)
                                (void) log_debug_errno(r, "cgroup '%s' did not freeze: %m",
                                                       cg->name);
                }
                r = kill_listed(fd);
                if (frozen) {
                        int k = write_file_at(fd, "cgroup.freeze", "0");
                        if (r >= 0)
                                r = k;
                }
        }
        if (r < 0)
                return r;
        r = wait_events(fd, "populated", 0, now + KILL_TIMEOUT_NS);
        return r == -ETIMEDOUT ? -EBUSY : r;
}

static int freeze_v1(int fd, uint64_t deadline)
{
        uint64_t step = BACKOFF_MIN_NS;

        for (;;) {
                _cleanup_free_ char *state = NULL;
                int r;

                r = read_file_at(fd, "freezer.state", 64, &state);
                if (r < 0)
                        return r;
                if (strncmp(state, "FROZEN", strlen("FROZEN")) == 0)
                        return 0;
                /* v1 has no notification for this: short bounded waits. */
                r = sleep_backoff(&step, deadline);
                if (r < 0)
                        return r;
        }
}

static int kill_v1(const struct cgroup *cg)
{
        uint64_t now = now_ns(CLOCK_MONOTONIC), deadline = now + KILL_TIMEOUT_NS;
        uint64_t step = BACKOFF_MIN_NS;
        int ffd = group_fd_for(cg, CGROUP_FREEZER), r;
        bool frozen = false;

        /* The common case: the sandbox's PID namespace is gone already. Freezing costs ~1.5 ms. */
        r = all_empty(cg);
        if (r != 0)
                return r < 0 ? r : 0;

        /* (Not if this hierarchy's directory was removed under us: see for_each_listed_pid().) */
        if (ffd >= 0 && file_exists_at(ffd, "cgroup.procs")) {
                r = write_file_at(ffd, "freezer.state", "FROZEN");
                if (r < 0)
                        return r;
                frozen = true;
                /* A task in uninterruptible sleep may not freeze: kill it anyway. */
                r = freeze_v1(ffd, now + FREEZE_TIMEOUT_NS);
                if (r < 0)
                        (void) log_debug_errno(r, "cgroup '%s' did not freeze: %m", cg->name);
        }
        r = kill_pass(cg);
        if (frozen) {
                /* Frozen tasks only act on SIGKILL once thawed. */
                int k = write_file_at(ffd, "freezer.state", "THAWED");
                if (r >= 0)
                        r = k;
        }
        if (r < 0)
                return r;

        for (;;) {
                r = all_empty(cg);
                if (r != 0)
                        return r < 0 ? r : 0;
                /* v1 has no "empty" notification: short bounded waits. */
                if (sleep_backoff(&step, deadline) < 0)
                        return -EBUSY;
                /* Without a freezer a fork may have raced the first pass. */
                r = kill_pass(cg);
                if (r < 0)
                        return r;
        }
}

int cgroup_kill(const struct cgroup *cg)
{
        if (!cg)
                return -EINVAL;
        return cg->version == CGROUP_V2 ? kill_v2(cg) : kill_v1(cg);
}

int cgroup_destroy(struct cgroup *cg)
{
        _cleanup_(cgroup_freep) _unused_ struct cgroup *owned = cg;
        int r, k;

        if (!cg)
                return 0;
        r = cgroup_kill(cg);
        /* Even after a failed kill: hierarchies that are empty can go now. */
        k = group_remove(cg);
        return r < 0 ? r : k;
}

struct cgroup *cgroup_free(struct cgroup *cg)
{
        if (!cg)
                return NULL;
        for (size_t i = 0; i < cg->n; i++) {
                cg->h[i].fd = safe_close(cg->h[i].fd);
                cg->h[i].parent_fd = safe_close(cg->h[i].parent_fd);
        }
        cg->cpu_fd = safe_close(cg->cpu_fd);
        free(cg);
        return NULL;
}

struct name_list {
        char **v;
        size_t n, cap;
};

static void name_list_done(struct name_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
}

static int name_list_add(struct name_list *l, const char *name)
{
        if (l->n == SWEEP_MAX)
                return -E2BIG;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **v = reallocarray(l->v, cap, sizeof(char *));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = strdup(name);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Adds the names of the child groups of one warren/ directory. */
static int collect_children(int fd, struct name_list *l)
{
        _cleanup_(closedirp) DIR *d = NULL;
        int r;

        r = opendir_at(fd, &d);
        if (r < 0)
                return r;
        for (;;) {
                struct dirent *de;
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de)
                        return errno != 0 ? -errno : 0;
                /* Only names Warren could have created: never anything else under warren/. */
                if (!name_is_valid(de->d_name))
                        continue;
                if (de->d_type != DT_DIR) {
                        if (de->d_type != DT_UNKNOWN)
                                continue;
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISDIR(st.st_mode))
                                continue;
                }
                r = name_list_add(l, de->d_name);
                if (r < 0)
                        return r;
        }
}

int cgroup_sweep(struct cgroup_root *root, bool (*is_stale)(const char *name, void *userdata),
                 void *userdata)
{
        _cleanup_(name_list_done) struct name_list names = {0};
        int removed = 0, first_error = 0;
        size_t u = 0;

        if (!root || !is_stale)
                return -EINVAL;
        for (size_t i = 0; i < root->n; i++) {
                int r = collect_children(root->h[i].fd, &names);
                if (r < 0)
                        return r;
        }
        /* The same group appears once per v1 hierarchy. */
        if (names.n > 0) {
                qsort(names.v, names.n, sizeof(char *), cmp_name);
                u = 1;
                for (size_t i = 1; i < names.n; i++) {
                        if (strcmp(names.v[i], names.v[u - 1]) == 0) {
                                free(names.v[i]);
                                continue;
                        }
                        names.v[u++] = names.v[i];
                }
                names.n = u;
        }

        for (size_t i = 0; i < names.n; i++) {
                _cleanup_(cgroup_freep) struct cgroup *cg = NULL;
                int r;

                if (!is_stale(names.v[i], userdata))
                        continue;
                r = group_new(root, names.v[i], 0, &cg);
                if (r >= 0)
                        r = group_open_existing(cg);
                if (r >= 0)
                        r = cgroup_destroy(TAKE_PTR(cg));
                if (r < 0) {
                        (void) log_debug_errno(r, "Failed to remove stale cgroup '%s': %m",
                                               names.v[i]);
                        if (first_error == 0)
                                first_error = r;
                        continue;
                }
                removed++;
        }
        return first_error < 0 ? first_error : removed;
}
