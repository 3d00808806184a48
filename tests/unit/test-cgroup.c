/* SPDX-License-Identifier: MIT */

/*
 * Tests of src/sandbox/cgroup.c.
 *
 * Most tests run against FAKE hierarchies built in a mkdtemp() directory: a v2 mount, a v1 mount
 * (separate controller mounts, or "cpu,cpuacct" co-mounted behind symlinks) and broken variants.
 * A fake cannot create interface files by itself the way the kernel does, so mkdirat() and
 * unlinkat() are wrapped (-Wl,--wrap=mkdirat -Wl,--wrap=unlinkat): while a fake is active, a new
 * directory gets the files the kernel would give it (a v2 child's cgroup.controllers is its
 * parent's cgroup.subtree_control, a v1 hierarchy's files follow the hidden .fake-controllers
 * marker), and rmdir() removes them first, refusing with EBUSY, like the kernel, while the group
 * has children or processes.
 *
 * The real-kernel tests run only as root with a usable hierarchy under /sys/fs/cgroup, and only
 * ever create groups named test-cgroup-<pid> under warren/.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "sandbox/cgroup.h"

/* clang-format off: cmocka.h needs <setjmp.h>, <stdarg.h> and <stddef.h> first */
#include <cmocka.h>
/* clang-format on */

#define MARKER     ".fake-controllers" /* v1 fake: the controllers of this hierarchy */
#define FILE_MAX   65536
#define MIB        (UINT64_C(1) << 20)
#define MSEC       UINT64_C(1000000)
#define REAL_MOUNT "/sys/fs/cgroup"

int __real_mkdirat(int dirfd, const char *path, mode_t mode);
int __wrap_mkdirat(int dirfd, const char *path, mode_t mode);
int __real_unlinkat(int dirfd, const char *path, int flags);
int __wrap_unlinkat(int dirfd, const char *path, int flags);

/* What the fake kernel does; only while active, so the real-kernel tests see the real calls. */
static struct {
        bool active;
        bool no_swap;       /* v2: no memory.swap.max (swap accounting off) */
        bool no_kill;       /* v2: no cgroup.kill (before 5.14) */
        bool no_memsw;      /* v1: no memory.memsw.limit_in_bytes */
        bool no_usage_user; /* v1: no cpuacct.usage_user/usage_sys (before 4.16) */
        const char *broken; /* this interface file refuses writes (ENOSPC) */
} fake;

/* ---- small file helpers (tests only: these create files) ---- */

static int put_raw(int dirfd, const char *path, const char *content)
{
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        return write_full(fd, content, strlen(content));
}

static void put(int dirfd, const char *path, const char *content)
{
        assert_int_equal(put_raw(dirfd, path, content), 0);
}

static char *get(int dirfd, const char *path)
{
        char *s = NULL;

        assert_int_equal(read_file_at(dirfd, path, FILE_MAX, &s), 0);
        return s;
}

static void assert_file(int dirfd, const char *path, const char *expected)
{
        _cleanup_free_ char *s = get(dirfd, path);

        if (strcmp(s, expected) != 0)
                print_error("%s: '%s' != '%s'\n", path, s, expected);
        assert_string_equal(s, expected);
}

static bool exists(int dirfd, const char *path)
{
        struct stat st;

        return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void dir(int dirfd, const char *path)
{
        assert_int_equal(__real_mkdirat(dirfd, path, 0755), 0);
}

/* Whether word is in a list separated by spaces, newlines or commas ("+x" counts as x). */
static bool has_word(const char *list, const char *word)
{
        size_t wlen = strlen(word);

        for (const char *p = list; *p;) {
                size_t len;

                p += strspn(p, " \n,+");
                len = strcspn(p, " \n,");
                if (len == wlen && memcmp(p, word, len) == 0)
                        return true;
                p += len;
        }
        return false;
}

/* ---- the fake kernel ---- */

struct fake_file {
        const char *controller; /* NULL: core file */
        const char *name;
        const char *content;
        const bool *absent_if;
};

static const struct fake_file fake_v2_files[] = {
        {NULL, "cgroup.procs", "", NULL},
        {NULL, "cgroup.subtree_control", "", NULL},
        {NULL, "cgroup.events", "populated 0\nfrozen 0\n", NULL},
        {NULL, "cgroup.freeze", "0\n", NULL},
        {NULL, "cgroup.kill", "", &fake.no_kill},
        {NULL, "cgroup.type", "domain\n", NULL},
        {NULL, "cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n", NULL},
        {"memory", "memory.max", "max\n", NULL},
        {"memory", "memory.swap.max", "max\n", &fake.no_swap},
        {"memory", "memory.peak", "0\n", NULL},
        {"memory", "memory.current", "0\n", NULL},
        {"memory", "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
         NULL},
        {"pids", "pids.max", "max\n", NULL},
        {"pids", "pids.current", "0\n", NULL},
        {"cpu", "cpu.max", "max 100000\n", NULL},
        {"cpu", "cpu.weight", "100\n", NULL},
};

static const struct fake_file fake_v1_files[] = {
        {NULL, "cgroup.procs", "", NULL},
        {NULL, "tasks", "", NULL},
        {NULL, "notify_on_release", "0\n", NULL},
        {"memory", "memory.limit_in_bytes", "9223372036854771712\n", NULL},
        {"memory", "memory.memsw.limit_in_bytes", "9223372036854771712\n", &fake.no_memsw},
        {"memory", "memory.max_usage_in_bytes", "0\n", NULL},
        {"memory", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", NULL},
        {"pids", "pids.max", "max\n", NULL},
        {"cpu", "cpu.cfs_period_us", "100000\n", NULL},
        {"cpu", "cpu.cfs_quota_us", "-1\n", NULL},
        {"cpuacct", "cpuacct.usage", "0\n", NULL},
        {"cpuacct", "cpuacct.usage_user", "0\n", &fake.no_usage_user},
        {"cpuacct", "cpuacct.usage_sys", "0\n", &fake.no_usage_user},
        {"cpuacct", "cpuacct.stat", "user 0\nsystem 0\n", NULL},
        {"freezer", "freezer.state", "THAWED\n", NULL},
};

static int fake_fill(int fd, const struct fake_file *files, size_t n, const char *controllers)
{
        for (size_t i = 0; i < n; i++) {
                int r;

                if (files[i].absent_if && *files[i].absent_if)
                        continue;
                if (files[i].controller && !has_word(controllers, files[i].controller))
                        continue;
                if (fake.broken && strcmp(files[i].name, fake.broken) == 0)
                        r = symlinkat("/dev/full", fd, files[i].name) < 0 ? -errno : 0;
                else
                        r = put_raw(fd, files[i].name, files[i].content);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What the kernel puts in a new cgroup directory dirfd/path. */
static int fake_populate(int dirfd, const char *path)
{
        _cleanup_free_ char *list = NULL, *parent_path = NULL;
        _cleanup_close_ int fd = -EBADF, parent = -EBADF;
        const char *slash = strrchr(path, '/');
        int r;

        parent_path = slash ? strndup(path, (size_t) (slash - path)) : strdup(".");
        if (!parent_path)
                return -ENOMEM;
        parent = openat(dirfd, parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0)
                return -errno;
        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (exists(parent, "cgroup.controllers")) {
                /* v2: a child is offered what its parent enabled for its children. */
                r = read_file_at(parent, "cgroup.subtree_control", FILE_MAX, &list);
                if (r < 0)
                        return r;
                for (char *p = list; *p; p++)
                        if (*p == '+')
                                *p = ' ';
                r = put_raw(fd, "cgroup.controllers", list);
                if (r < 0)
                        return r;
                return fake_fill(fd, fake_v2_files, ELEMENTSOF(fake_v2_files), list);
        }
        r = read_file_at(parent, MARKER, FILE_MAX, &list);
        if (r == -ENOENT)
                return 0; /* not a cgroup: a plain directory */
        if (r < 0)
                return r;
        r = put_raw(fd, MARKER, list);
        if (r < 0)
                return r;
        return fake_fill(fd, fake_v1_files, ELEMENTSOF(fake_v1_files), list);
}

int __wrap_mkdirat(int dirfd, const char *path, mode_t mode)
{
        int r;

        if (__real_mkdirat(dirfd, path, mode) < 0)
                return -1;
        if (!fake.active)
                return 0;
        r = fake_populate(dirfd, path);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return 0;
}

/* rmdir of a cgroup: EBUSY with children or processes, else its interface files go with it. */
static int fake_rmdir(int dirfd, const char *path)
{
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_free_ char *procs = NULL;
        struct dirent *de;
        int fd;

        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode))
                        return -EBUSY;
        }
        if (read_file_at(fd, "cgroup.procs", FILE_MAX, &procs) >= 0 && procs[0] != '\0')
                return -EBUSY;
        rewinddir(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (__real_unlinkat(fd, de->d_name, 0) < 0)
                        return -errno;
        }
        if (__real_unlinkat(dirfd, path, AT_REMOVEDIR) < 0)
                return -errno;
        return 0;
}

int __wrap_unlinkat(int dirfd, const char *path, int flags)
{
        int r;

        if (!fake.active || !(flags & AT_REMOVEDIR))
                return __real_unlinkat(dirfd, path, flags);
        r = fake_rmdir(dirfd, path);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return 0;
}

/* ---- fixtures ---- */

struct fixture {
        char path[PATH_MAX];
        int fd;
        char *snapshot; /* everything outside the warren/ directories */
        struct cgroup_root *root;
};

static int remove_tree_at(int dirfd, const char *name)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        struct stat st;
        int fd;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return __real_unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                int r;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                r = remove_tree_at(fd, de->d_name);
                if (r < 0)
                        return r;
        }
        return __real_unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int skip_warren(const struct dirent *de)
{
        return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
               strcmp(de->d_name, "warren") != 0;
}

static void snapshot_at(int dirfd, const char *prefix, FILE *out)
{
        struct dirent **list = NULL;
        int n;

        n = scandirat(dirfd, ".", &list, skip_warren, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                const char *name = list[i]->d_name;
                struct stat st;

                assert_int_equal(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t len = readlinkat(dirfd, name, target, sizeof(target) - 1);

                        assert_true(len > 0);
                        target[len] = '\0';
                        fprintf(out, "%s/%s -> %s\n", prefix, name, target);
                } else if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int fd = -EBADF;
                        char sub[PATH_MAX];

                        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        assert_true(fd >= 0);
                        fprintf(out, "%s/%s/\n", prefix, name);
                        (void) snprintf(sub, sizeof(sub), "%s/%s", prefix, name);
                        snapshot_at(fd, sub, out);
                } else {
                        _cleanup_free_ char *s = get(dirfd, name);

                        fprintf(out, "%s/%s = '%s'\n", prefix, name, s);
                }
                free(list[i]);
        }
        free(list);
}

static char *snapshot(int dirfd)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);

        assert_non_null(out);
        snapshot_at(dirfd, "", out);
        assert_int_equal(fclose(out), 0);
        return buf;
}

/* Nothing outside the warren/ directories was created, changed or removed. */
static void assert_outside_untouched(const struct fixture *f)
{
        _cleanup_free_ char *now = snapshot(f->fd);

        assert_string_equal(now, f->snapshot);
}

static struct fixture *fixture_new(void)
{
        struct fixture *f = calloc(1, sizeof(*f));
        const char *tmp = getenv("TMPDIR");

        assert_non_null(f);
        (void) snprintf(f->path, sizeof(f->path), "%s/test-cgroup-XXXXXX", tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(f->path));
        f->fd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->fd >= 0);
        memset(&fake, 0, sizeof(fake));
        return f;
}

/* Call once the layout is built: snapshots it and turns the fake kernel on. */
static int fixture_ready(struct fixture *f, void **state)
{
        f->snapshot = snapshot(f->fd);
        fake.active = true;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        int r;

        fake.active = false;
        cgroup_root_free(f->root);
        free(f->snapshot);
        r = remove_tree_at(AT_FDCWD, f->path);
        (void) close(f->fd);
        free(f);
        return r;
}

/* v2: a root cgroup with other software's groups next to ours. */
static void build_v2(int fd, const char *root_subtree_control)
{
        _cleanup_close_ int sys = -EBADF;

        put(fd, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
        put(fd, "cgroup.subtree_control", root_subtree_control);
        put(fd, "cgroup.procs", "");
        put(fd, "cgroup.max.depth", "max\n");
        put(fd, "cgroup.stat", "nr_descendants 2\nnr_dying_descendants 0\n");
        put(fd, "cpu.stat", "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n");
        put(fd, "memory.stat", "anon 4096\n");
        dir(fd, "system.slice");
        sys = openat(fd, "system.slice", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(sys >= 0);
        put(sys, "cgroup.controllers", root_subtree_control);
        put(sys, "cgroup.subtree_control", "memory pids\n");
        put(sys, "cgroup.procs", "");
        put(sys, "cgroup.events", "populated 1\nfrozen 0\n");
        put(sys, "memory.max", "max\n");
        dir(sys, "other.service");
        put(sys, "other.service/cgroup.procs", "");
        put(sys, "other.service/memory.max", "1073741824\n");
}

static int setup_v2(void **state)
{
        struct fixture *f = fixture_new();

        build_v2(f->fd, "cpuset cpu io memory pids\n");
        return fixture_ready(f, state);
}

/* (c): the system manager did not delegate memory to the root's children. */
static int setup_v2_no_memory(void **state)
{
        struct fixture *f = fixture_new();

        build_v2(f->fd, "cpu io pids\n");
        return fixture_ready(f, state);
}

/* A v1 hierarchy root named dirname serving `controllers` (the marker drives the fake). */
static void build_v1_hierarchy(int fd, const char *dirname, const char *controllers)
{
        _cleanup_close_ int h = -EBADF;

        dir(fd, dirname);
        h = openat(fd, dirname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(h >= 0);
        put(h, MARKER, controllers);
        put(h, "cgroup.procs", "");
        put(h, "tasks", "");
        put(h, "cgroup.sane_behavior", "0\n");
        put(h, "release_agent", "");
        if (has_word(controllers, "memory")) {
                put(h, "memory.limit_in_bytes", "9223372036854771712\n");
                put(h, "memory.use_hierarchy", "1\n");
                put(h, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
                /* another program's group, with its own limit */
                dir(h, "process_api");
                put(h, "process_api/cgroup.procs", "");
                put(h, "process_api/memory.limit_in_bytes", "1073741824\n");
        }
        if (has_word(controllers, "cpu")) {
                put(h, "cpu.cfs_period_us", "100000\n");
                put(h, "cpu.cfs_quota_us", "-1\n");
        }
        if (has_word(controllers, "cpuacct"))
                put(h, "cpuacct.usage", "987654321\n");
}

/* The rest of a hybrid machine, which must be ignored and left alone. */
static void build_v1_others(int fd)
{
        build_v1_hierarchy(fd, "cpuset", "cpuset");
        put(fd, "cpuset/cpuset.cpus", "0-3\n");
        build_v1_hierarchy(fd, "blkio", "blkio");
        build_v1_hierarchy(fd, "systemd", "name=systemd");
        dir(fd, "unified");
        put(fd, "unified/cgroup.controllers", "");
        put(fd, "unified/cgroup.subtree_control", "");
        put(fd, "unified/cgroup.procs", "");
}

static int setup_v1(void **state)
{
        struct fixture *f = fixture_new();

        build_v1_hierarchy(f->fd, "memory", "memory");
        build_v1_hierarchy(f->fd, "pids", "pids");
        build_v1_hierarchy(f->fd, "cpu", "cpu");
        build_v1_hierarchy(f->fd, "cpuacct", "cpuacct");
        build_v1_hierarchy(f->fd, "freezer", "freezer");
        build_v1_others(f->fd);
        return fixture_ready(f, state);
}

static int setup_v1_comounted(void **state)
{
        struct fixture *f = fixture_new();

        build_v1_hierarchy(f->fd, "memory", "memory");
        build_v1_hierarchy(f->fd, "pids", "pids");
        build_v1_hierarchy(f->fd, "cpu,cpuacct", "cpu,cpuacct");
        assert_int_equal(symlinkat("cpu,cpuacct", f->fd, "cpu"), 0);
        assert_int_equal(symlinkat("cpu,cpuacct", f->fd, "cpuacct"), 0);
        build_v1_hierarchy(f->fd, "net_cls,net_prio", "net_cls,net_prio");
        assert_int_equal(symlinkat("net_cls,net_prio", f->fd, "net_cls"), 0);
        assert_int_equal(symlinkat("net_cls,net_prio", f->fd, "net_prio"), 0);
        build_v1_hierarchy(f->fd, "freezer", "freezer");
        build_v1_others(f->fd);
        return fixture_ready(f, state);
}

/* No pids mount; memory/ is an empty directory with nothing mounted on it. */
static int setup_v1_partial(void **state)
{
        struct fixture *f = fixture_new();

        dir(f->fd, "memory");
        build_v1_hierarchy(f->fd, "cpu", "cpu");
        build_v1_hierarchy(f->fd, "cpuacct", "cpuacct");
        build_v1_hierarchy(f->fd, "freezer", "freezer");
        return fixture_ready(f, state);
}

static int setup_empty(void **state)
{
        return fixture_ready(fixture_new(), state);
}

static int at(const struct fixture *f, const char *path)
{
        int fd = openat(f->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_true(fd >= 0);
        return fd;
}

static void open_root(struct fixture *f)
{
        assert_int_equal(cgroup_root_open(f->path, &f->root), 0);
}

static const struct cgroup_limits limits_64m_16_half = {
        .memory = 64 * MIB,
        .pids = 16,
        .cpu_quota_us = 50000,
        .cpu_period_us = 100000,
};

/* Number of entries of a directory that are directories. */
static int count_dirs(int dirfd, const char *path)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd, n = 0;

        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        d = fdopendir(fd);
        assert_non_null(d);
        while ((de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                assert_int_equal(fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
                n += S_ISDIR(st.st_mode);
        }
        return n;
}

/* ---- detection ---- */

static void test_no_hierarchy(void **state)
{
        struct fixture *f = *state;
        struct cgroup_root *root = NULL;

        assert_int_equal(cgroup_root_open(f->path, &root), -ENOENT);
        assert_null(root);
        assert_int_equal(cgroup_root_open("/nonexistent/cgroup", &root), -ENOENT);

        /* A hybrid machine's cgroup2 "unified", a named hierarchy, an unmounted "memory/". */
        build_v1_hierarchy(f->fd, "systemd", "name=systemd");
        dir(f->fd, "unified");
        put(f->fd, "unified/cgroup.controllers", "");
        put(f->fd, "unified/cgroup.subtree_control", "");
        dir(f->fd, "memory");
        free(f->snapshot);
        f->snapshot = snapshot(f->fd);

        assert_int_equal(cgroup_root_open(f->path, &root), -ENOENT);
        assert_false(exists(f->fd, "unified/warren"));
        assert_false(exists(f->fd, "memory/warren"));
        assert_false(exists(f->fd, "systemd/warren"));
        assert_outside_untouched(f);
}

static void test_v2_detect(void **state)
{
        struct fixture *f = *state;

        open_root(f);
        assert_int_equal(cgroup_root_version(f->root), CGROUP_V2);
        assert_true(cgroup_root_has(f->root, CGROUP_MEMORY));
        assert_true(cgroup_root_has(f->root, CGROUP_PIDS));
        assert_true(cgroup_root_has(f->root, CGROUP_CPU));
        assert_true(cgroup_root_has(f->root, CGROUP_CPUACCT));
        assert_true(cgroup_root_has(f->root, CGROUP_FREEZER)); /* cgroup.freeze */
        assert_false(cgroup_root_has(f->root, _CGROUP_CONTROLLER_MAX));

        /* Enabled for warren/'s children, in one write, only in warren/. */
        assert_file(f->fd, "warren/cgroup.subtree_control", "+memory +pids +cpu");
        assert_outside_untouched(f);

        /* Opening again finds them enabled and writes nothing. */
        put(f->fd, "warren/cgroup.subtree_control", "cpu memory pids\n");
        cgroup_root_free(f->root);
        open_root(f);
        assert_file(f->fd, "warren/cgroup.subtree_control", "cpu memory pids\n");
        assert_outside_untouched(f);
}

static void test_v2_root_lacks_memory(void **state)
{
        struct fixture *f = *state;
        struct cgroup_limits mem = {.memory = 64 * MIB};
        struct cgroup *cg = NULL;

        open_root(f);
        assert_int_equal(cgroup_root_version(f->root), CGROUP_V2);
        assert_false(cgroup_root_has(f->root, CGROUP_MEMORY));
        assert_true(cgroup_root_has(f->root, CGROUP_PIDS));
        assert_true(cgroup_root_has(f->root, CGROUP_CPU));
        assert_file(f->fd, "warren/cgroup.subtree_control", "+pids +cpu");

        /* Refused, not skipped, and nothing left behind. */
        assert_int_equal(cgroup_create(f->root, "g", &mem, &cg), -EOPNOTSUPP);
        assert_null(cg);
        assert_int_equal(count_dirs(f->fd, "warren"), 0);

        /* What the root does delegate works. */
        struct cgroup_limits pids = {.pids = 8};
        assert_int_equal(cgroup_create(f->root, "g", &pids, &cg), 0);
        assert_file(f->fd, "warren/g/pids.max", "8");
        assert_false(exists(f->fd, "warren/g/memory.max"));
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_false(exists(f->fd, "warren/g"));
        assert_outside_untouched(f);
}

static void test_v1_detect(void **state)
{
        struct fixture *f = *state;
        static const char *const dirs[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

        open_root(f);
        assert_int_equal(cgroup_root_version(f->root), CGROUP_V1);
        for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++)
                assert_true(cgroup_root_has(f->root, (enum cgroup_controller) c));
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char p[64];

                (void) snprintf(p, sizeof(p), "%s/warren", dirs[i]);
                assert_true(exists(f->fd, p));
        }
        assert_false(exists(f->fd, "cpuset/warren"));
        assert_false(exists(f->fd, "blkio/warren"));
        assert_false(exists(f->fd, "systemd/warren"));
        assert_false(exists(f->fd, "unified/warren"));
        assert_outside_untouched(f);
}

static void test_v1_comounted(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        uint64_t ns = 0;

        open_root(f);
        assert_int_equal(cgroup_root_version(f->root), CGROUP_V1);
        assert_true(cgroup_root_has(f->root, CGROUP_CPU));
        assert_true(cgroup_root_has(f->root, CGROUP_CPUACCT));
        assert_true(exists(f->fd, "cpu,cpuacct/warren"));
        assert_false(exists(f->fd, "net_cls,net_prio/warren"));

        /* One group directory in the co-mounted hierarchy, found through either name. */
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        assert_int_equal(count_dirs(f->fd, "cpu,cpuacct/warren"), 1);
        assert_file(f->fd, "cpu/warren/g/cpu.cfs_quota_us", "50000");
        assert_file(f->fd, "cpu/warren/g/cpu.cfs_period_us", "100000");
        put(f->fd, "cpuacct/warren/g/cpuacct.usage", "4242\n");
        assert_int_equal(cgroup_cpu_usage(cg, &ns), 0);
        assert_int_equal(ns, 4242);

        assert_int_equal(cgroup_attach(cg, 12345), 0);
        assert_file(f->fd, "cpu,cpuacct/warren/g/cgroup.procs", "12345");
        put(f->fd, "cpu,cpuacct/warren/g/cgroup.procs", "");
        put(f->fd, "memory/warren/g/cgroup.procs", "");
        put(f->fd, "pids/warren/g/cgroup.procs", "");
        put(f->fd, "freezer/warren/g/cgroup.procs", "");

        assert_int_equal(cgroup_destroy(cg), 0);
        assert_int_equal(count_dirs(f->fd, "cpu,cpuacct/warren"), 0);
        assert_false(exists(f->fd, "memory/warren/g"));
        assert_outside_untouched(f);
}

static void test_v1_partial(void **state)
{
        struct fixture *f = *state;
        struct cgroup_limits pids = {.pids = 16}, mem = {.memory = MIB};
        struct cgroup *cg = NULL;

        open_root(f);
        assert_false(cgroup_root_has(f->root, CGROUP_MEMORY)); /* nothing mounted there */
        assert_false(cgroup_root_has(f->root, CGROUP_PIDS));
        assert_true(cgroup_root_has(f->root, CGROUP_CPU));
        assert_false(exists(f->fd, "memory/warren"));

        assert_int_equal(cgroup_create(f->root, "g", &pids, &cg), -EOPNOTSUPP);
        assert_int_equal(cgroup_create(f->root, "g", &mem, &cg), -EOPNOTSUPP);
        assert_null(cg);
        assert_int_equal(count_dirs(f->fd, "cpu/warren"), 0);
        assert_int_equal(count_dirs(f->fd, "cpuacct/warren"), 0);
        assert_int_equal(count_dirs(f->fd, "freezer/warren"), 0);
        assert_int_equal(count_dirs(f->fd, "memory"), 0);
        assert_outside_untouched(f);
}

/* ---- create: names, limits ---- */

static void test_invalid_names(void **state)
{
        struct fixture *f = *state;
        static const char *const bad[] = {
                "",      ".",    "..",       "a/b",        "../x", "/abs", "with space",
                "tab\t", "nl\n", "\xc3\xa9", "semi;colon", "*",    "a:b",
        };
        char long_name[66];
        struct cgroup *cg = NULL;

        open_root(f);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(cgroup_create(f->root, bad[i], NULL, &cg), -EINVAL);
        assert_int_equal(cgroup_create(f->root, NULL, NULL, &cg), -EINVAL);
        memset(long_name, 'x', 65);
        long_name[65] = '\0';
        assert_int_equal(cgroup_create(f->root, long_name, NULL, &cg), -EINVAL);
        assert_null(cg);
        assert_int_equal(count_dirs(f->fd, "warren"), 0);

        /* The longest name, and every allowed character. */
        long_name[64] = '\0';
        assert_int_equal(cgroup_create(f->root, long_name, NULL, &cg), 0);
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_int_equal(cgroup_create(f->root, "Az09_.-x", NULL, &cg), 0);
        assert_true(exists(f->fd, "warren/Az09_.-x"));
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_int_equal(count_dirs(f->fd, "warren"), 0);
        assert_outside_untouched(f);
}

static void test_invalid_cpu_limits(void **state)
{
        struct fixture *f = *state;
        static const struct cgroup_limits bad[] = {
                {.cpu_quota_us = 999},
                {.cpu_quota_us = 50000, .cpu_period_us = 999},
                {.cpu_quota_us = 50000, .cpu_period_us = 1000001},
        };
        struct cgroup *cg = NULL;

        open_root(f);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(cgroup_create(f->root, "g", &bad[i], &cg), -EINVAL);
        assert_null(cg);
        assert_int_equal(count_dirs(f->fd, "warren"), 0);
}

static void test_v2_limits(void **state)
{
        struct fixture *f = *state;
        struct cgroup_limits two_cpus = {.cpu_quota_us = 200000}; /* default period */
        struct cgroup *cg = NULL;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        assert_file(f->fd, "warren/g/memory.max", "67108864");
        assert_file(f->fd, "warren/g/memory.swap.max", "0");
        assert_file(f->fd, "warren/g/pids.max", "16");
        assert_file(f->fd, "warren/g/cpu.max", "50000 100000");
        assert_int_equal(cgroup_destroy(cg), 0);

        /* Unlimited is left at the kernel's default. */
        assert_int_equal(cgroup_create(f->root, "g", &two_cpus, &cg), 0);
        assert_file(f->fd, "warren/g/cpu.max", "200000 100000");
        assert_file(f->fd, "warren/g/memory.max", "max\n");
        assert_file(f->fd, "warren/g/memory.swap.max", "max\n");
        assert_file(f->fd, "warren/g/pids.max", "max\n");
        assert_int_equal(cgroup_destroy(cg), 0);

        /* Without swap accounting there is no memory.swap.max: fine. */
        fake.no_swap = true;
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        assert_file(f->fd, "warren/g/memory.max", "67108864");
        assert_false(exists(f->fd, "warren/g/memory.swap.max"));
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_int_equal(count_dirs(f->fd, "warren"), 0);
        assert_outside_untouched(f);
}

static void test_v1_limits(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        assert_file(f->fd, "memory/warren/g/memory.limit_in_bytes", "67108864");
        assert_file(f->fd, "memory/warren/g/memory.memsw.limit_in_bytes", "67108864");
        assert_file(f->fd, "pids/warren/g/pids.max", "16");
        assert_file(f->fd, "cpu/warren/g/cpu.cfs_period_us", "100000");
        assert_file(f->fd, "cpu/warren/g/cpu.cfs_quota_us", "50000");
        assert_int_equal(cgroup_destroy(cg), 0);

        fake.no_memsw = true;
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        assert_file(f->fd, "memory/warren/g/memory.limit_in_bytes", "67108864");
        assert_false(exists(f->fd, "memory/warren/g/memory.memsw.limit_in_bytes"));
        assert_int_equal(cgroup_destroy(cg), 0);

        static const char *const dirs[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char p[64];

                (void) snprintf(p, sizeof(p), "%s/warren", dirs[i]);
                assert_int_equal(count_dirs(f->fd, p), 0);
        }
        assert_outside_untouched(f);
}

/* A limit the kernel refuses: the group is removed again in every hierarchy. */
static void test_v1_limit_failure_cleans_up(void **state)
{
        static const char *const dirs[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
        struct fixture *f = *state;
        struct cgroup *cg = NULL;

        open_root(f);
        /* The last write fails, after the memory, pids and period ones went through. */
        fake.broken = "cpu.cfs_quota_us";
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), -ENOSPC);
        assert_null(cg);
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char p[64];

                (void) snprintf(p, sizeof(p), "%s/warren", dirs[i]);
                assert_int_equal(count_dirs(f->fd, p), 0);
        }
        assert_outside_untouched(f);
}

static void test_v2_stale_group_replaced(void **state)
{
        struct fixture *f = *state;
        struct cgroup_limits pids = {.pids = 16};
        struct cgroup *cg = NULL;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", &pids, &cg), 0);
        cg = cgroup_free(cg); /* a crashed run: the group stays on disk */
        assert_true(exists(f->fd, "warren/g"));
        put(f->fd, "warren/g/memory.max", "12345\n");

        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        assert_file(f->fd, "warren/g/memory.max", "max\n"); /* a new directory */
        assert_file(f->fd, "warren/g/pids.max", "max\n");
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_outside_untouched(f);
}

static void test_v1_stale_partial_group_replaced(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;

        open_root(f);
        /* Left over in two hierarchies only (a crash in the middle of a create). */
        assert_int_equal(mkdirat(f->fd, "memory/warren/g", 0755), 0);
        assert_int_equal(mkdirat(f->fd, "freezer/warren/g", 0755), 0);
        put(f->fd, "memory/warren/g/memory.limit_in_bytes", "1\n");

        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        assert_file(f->fd, "memory/warren/g/memory.limit_in_bytes", "67108864");
        assert_file(f->fd, "freezer/warren/g/freezer.state", "THAWED\n");
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_false(exists(f->fd, "memory/warren/g"));
        assert_outside_untouched(f);
}

/* ---- fd, attach, stats ---- */

static void test_v2_fd_and_attach(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        struct stat a, b;
        int fd;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        fd = cgroup_fd(cg);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(fstat(fd, &a), 0);
        assert_int_equal(fstatat(f->fd, "warren/g", &b, 0), 0);
        assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);

        assert_int_equal(cgroup_attach(cg, 0), -EINVAL);
        assert_int_equal(cgroup_attach(cg, -1), -EINVAL);
        assert_int_equal(cgroup_attach(cg, 4242), 0);
        assert_file(f->fd, "warren/g/cgroup.procs", "4242");
        put(f->fd, "warren/g/cgroup.procs", "");
        assert_int_equal(cgroup_destroy(cg), 0);
}

static void test_v1_fd(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        assert_int_equal(cgroup_fd(cg), -EOPNOTSUPP);
        assert_int_equal(cgroup_attach(cg, 777), 0);
        assert_file(f->fd, "memory/warren/g/cgroup.procs", "777");
        assert_file(f->fd, "pids/warren/g/cgroup.procs", "777");
        assert_file(f->fd, "cpu/warren/g/cgroup.procs", "777");
        assert_file(f->fd, "cpuacct/warren/g/cgroup.procs", "777");
        assert_file(f->fd, "freezer/warren/g/cgroup.procs", "777");
        cg = cgroup_free(cg);
}

static void test_v2_stats(void **state)
{
        struct fixture *f = *state;
        struct cgroup_stats s = {0};
        struct cgroup *cg = NULL;
        uint64_t ns = 0;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        put(f->fd, "warren/g/cpu.stat",
            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n"
            "core_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 7\n"
            "nr_bursts 0\nburst_usec 0\n");
        put(f->fd, "warren/g/memory.peak", "52428800\n");
        put(f->fd, "warren/g/memory.events",
            "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n");
        assert_int_equal(cgroup_read_stats(cg, &s), 0);
        assert_int_equal(s.cpu_ns, UINT64_C(1500000000));
        assert_int_equal(s.user_ns, UINT64_C(1000000000));
        assert_int_equal(s.sys_ns, UINT64_C(500000000));
        assert_int_equal(s.memory_peak, 52428800);
        assert_int_equal(s.oom_kills, 2);

        /* The cheap read sees the file change under the fd it keeps. */
        assert_int_equal(cgroup_cpu_usage(cg, &ns), 0);
        assert_int_equal(ns, UINT64_C(1500000000));
        put(f->fd, "warren/g/cpu.stat", "usage_usec 2000001\nuser_usec 1\nsystem_usec 0\n");
        assert_int_equal(cgroup_cpu_usage(cg, &ns), 0);
        assert_int_equal(ns, UINT64_C(2000001000));

        /* Before 5.19 there is no memory.peak: 0, "cannot tell". */
        assert_int_equal(__real_unlinkat(f->fd, "warren/g/memory.peak", 0), 0);
        assert_int_equal(cgroup_read_stats(cg, &s), 0);
        assert_int_equal(s.memory_peak, 0);
        assert_int_equal(s.oom_kills, 2);

        /* Junk is an error, and ret is left alone. */
        put(f->fd, "warren/g/cpu.stat", "usage_usec 12x\nuser_usec 1\nsystem_usec 0\n");
        s.cpu_ns = 77;
        assert_int_equal(cgroup_read_stats(cg, &s), -EBADMSG);
        assert_int_equal(s.cpu_ns, 77);
        ns = 99;
        assert_int_equal(cgroup_cpu_usage(cg, &ns), -EBADMSG);
        assert_int_equal(ns, 99);
        put(f->fd, "warren/g/cpu.stat", "user_usec 1\nsystem_usec 0\n");
        assert_int_equal(cgroup_read_stats(cg, &s), -EBADMSG);
        put(f->fd, "warren/g/cpu.stat", "usage_usec 99999999999999999999\n");
        assert_int_equal(cgroup_cpu_usage(cg, &ns), -EBADMSG);
        put(f->fd, "warren/g/cpu.stat", "usage_usec 18446744073709552\n");
        assert_int_equal(cgroup_cpu_usage(cg, &ns), -ERANGE);
        assert_int_equal(ns, 99);
        assert_int_equal(cgroup_destroy(cg), 0);
}

static void test_v1_stats(void **state)
{
        struct fixture *f = *state;
        struct cgroup_stats s = {0};
        struct cgroup *cg = NULL;
        uint64_t ns = 0;
        long hz = sysconf(_SC_CLK_TCK);

        assert_true(hz > 0);
        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        put(f->fd, "cpuacct/warren/g/cpuacct.usage", "3000000123\n");
        put(f->fd, "cpuacct/warren/g/cpuacct.usage_user", "2000000000\n");
        put(f->fd, "cpuacct/warren/g/cpuacct.usage_sys", "1000000000\n");
        put(f->fd, "memory/warren/g/memory.max_usage_in_bytes", "104857600\n");
        put(f->fd, "memory/warren/g/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n");
        assert_int_equal(cgroup_read_stats(cg, &s), 0);
        assert_int_equal(s.cpu_ns, UINT64_C(3000000123));
        assert_int_equal(s.user_ns, UINT64_C(2000000000));
        assert_int_equal(s.sys_ns, UINT64_C(1000000000));
        assert_int_equal(s.memory_peak, 104857600);
        assert_int_equal(s.oom_kills, 5);
        assert_int_equal(cgroup_cpu_usage(cg, &ns), 0);
        assert_int_equal(ns, UINT64_C(3000000123));

        /* Before 4.13 oom_control has no oom_kill line. */
        put(f->fd, "memory/warren/g/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
        assert_int_equal(cgroup_read_stats(cg, &s), 0);
        assert_int_equal(s.oom_kills, 0);
        assert_int_equal(cgroup_destroy(cg), 0);

        /* Before 4.16: user/system from cpuacct.stat, in USER_HZ ticks. */
        fake.no_usage_user = true;
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        put(f->fd, "cpuacct/warren/g/cpuacct.stat", "user 250\nsystem 3\n");
        assert_int_equal(cgroup_read_stats(cg, &s), 0);
        assert_int_equal(s.user_ns, UINT64_C(250) * 1000000000 / (uint64_t) hz);
        assert_int_equal(s.sys_ns, UINT64_C(3) * 1000000000 / (uint64_t) hz);
        put(f->fd, "cpuacct/warren/g/cpuacct.stat", "user 1\n");
        assert_int_equal(cgroup_read_stats(cg, &s), -ENOENT);
        assert_int_equal(cgroup_destroy(cg), 0);
}

/* v1 without cpuacct or memory: 0 for what cannot be known, and no cheap usage. */
static void test_v1_stats_without_controllers(void **state)
{
        struct fixture *f = *state;
        struct cgroup_stats s = {.cpu_ns = 1, .memory_peak = 1};
        struct cgroup *cg = NULL;
        uint64_t ns = 5;

        /* setup_v1_partial, minus cpuacct */
        assert_int_equal(remove_tree_at(f->fd, "cpuacct"), 0);
        free(f->snapshot);
        f->snapshot = snapshot(f->fd);
        open_root(f);
        assert_false(cgroup_root_has(f->root, CGROUP_CPUACCT));
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        assert_int_equal(cgroup_cpu_usage(cg, &ns), -EOPNOTSUPP);
        assert_int_equal(ns, 5);
        assert_int_equal(cgroup_read_stats(cg, &s), 0);
        assert_int_equal(s.cpu_ns, 0);
        assert_int_equal(s.memory_peak, 0);
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_outside_untouched(f);
}

/* ---- kill, destroy ---- */

static void test_v2_destroy(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        _cleanup_close_ int gfd = -EBADF;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", &limits_64m_16_half, &cg), 0);
        gfd = at(f, "warren/g");
        assert_int_equal(cgroup_kill(cg), 0);
        assert_file(gfd, "cgroup.kill", "1");
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_false(exists(f->fd, "warren/g"));
        assert_true(exists(f->fd, "warren"));
        assert_int_equal(cgroup_destroy(NULL), 0);
        assert_null(cgroup_free(NULL));
        assert_outside_untouched(f);
}

static void test_v2_kill_without_cgroup_kill(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        _cleanup_close_ int gfd = -EBADF;

        fake.no_kill = true;
        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        gfd = at(f, "warren/g");
        /* frozen (the fake reports "frozen 1" at once), nobody listed, thawed */
        put(gfd, "cgroup.events", "populated 0\nfrozen 1\n");
        assert_int_equal(cgroup_kill(cg), 0);
        assert_file(gfd, "cgroup.freeze", "0");
        assert_false(exists(gfd, "cgroup.kill"));
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_false(exists(f->fd, "warren/g"));
}

/* A group that never empties: -EBUSY after the bounded wait, and destroy still frees it. */
static void test_v2_kill_busy(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        uint64_t start;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        put(f->fd, "warren/g/cgroup.events", "populated 1\nfrozen 0\n");
        start = now_ns(CLOCK_MONOTONIC);
        assert_int_equal(cgroup_destroy(cg), -EBUSY);
        assert_in_range(now_ns(CLOCK_MONOTONIC) - start, 1000 * MSEC, 3000 * MSEC);
        /* the fake's rmdir succeeds (no procs listed), like a kernel that raced to empty */
}

struct reaper {
        pid_t pid;
        int status;
        int fd; /* the mount, to clear the fake cgroup.procs files */
};

/* Plays the kernel: once the child is dead, it is no longer listed in the fake groups. */
static void *reaper_main(void *userdata)
{
        static const char *const procs[] = {
                "memory/warren/g/cgroup.procs",  "pids/warren/g/cgroup.procs",
                "cpu/warren/g/cgroup.procs",     "cpuacct/warren/g/cgroup.procs",
                "freezer/warren/g/cgroup.procs",
        };
        struct reaper *r = userdata;

        while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
                ;
        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                (void) put_raw(r->fd, procs[i], "");
        return NULL;
}

static pid_t fork_sleeper(void)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        return pid;
}

static void test_v1_kill_processes(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        struct reaper rp = {.fd = f->fd};
        pthread_t thread;
        pid_t bystander;
        char list[64];
        int status;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        rp.pid = fork_sleeper();
        bystander = fork_sleeper();
        /* "0" is how v2 lists a process outside the reader's pid namespace: never killed */
        (void) snprintf(list, sizeof(list), "0\n%d\n", (int) rp.pid);
        put(f->fd, "memory/warren/g/cgroup.procs", list);
        put(f->fd, "pids/warren/g/cgroup.procs", list);
        put(f->fd, "cpu/warren/g/cgroup.procs", list);
        put(f->fd, "cpuacct/warren/g/cgroup.procs", list);
        put(f->fd, "freezer/warren/g/cgroup.procs", list);
        assert_int_equal(pthread_create(&thread, NULL, reaper_main, &rp), 0);

        assert_int_equal(cgroup_kill(cg), 0);
        assert_int_equal(pthread_join(thread, NULL), 0);
        assert_true(WIFSIGNALED(rp.status));
        assert_int_equal(WTERMSIG(rp.status), SIGKILL);
        assert_file(f->fd, "freezer/warren/g/freezer.state", "THAWED");

        /* Not listed, not touched. */
        assert_int_equal(waitpid(bystander, &status, WNOHANG), 0);
        assert_int_equal(kill(bystander, SIGKILL), 0);
        assert_int_equal(waitpid(bystander, &status, 0), bystander);

        assert_int_equal(cgroup_destroy(cg), 0);
        assert_false(exists(f->fd, "freezer/warren/g"));
        assert_outside_untouched(f);
}

static void test_v1_kill_rejects_junk(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        put(f->fd, "pids/warren/g/cgroup.procs", "12 34\n");
        assert_int_equal(cgroup_kill(cg), -EBADMSG);
        put(f->fd, "pids/warren/g/cgroup.procs", "99999999999999\n");
        assert_int_equal(cgroup_kill(cg), -EBADMSG);
        /* whatever happens, the freezer is not left frozen */
        {
                _cleanup_free_ char *fs = get(f->fd, "freezer/warren/g/freezer.state");
                assert_int_equal(strncmp(fs, "THAWED", 6), 0);
        }
        put(f->fd, "pids/warren/g/cgroup.procs", "");
        assert_int_equal(cgroup_destroy(cg), 0);
}

/* Removed under us (by a sweep elsewhere): nobody can be left in it, so that is success. */
static void destroy_removed_group(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        bool v2;

        open_root(f);
        /* (v1: the freezer's directory is among those gone) */
        v2 = cgroup_root_version(f->root) == CGROUP_V2;
        assert_int_equal(cgroup_create(f->root, "g", NULL, &cg), 0);
        if (v2) {
                assert_int_equal(unlinkat(f->fd, "warren/g", AT_REMOVEDIR), 0);
        } else {
                assert_int_equal(unlinkat(f->fd, "memory/warren/g", AT_REMOVEDIR), 0);
                assert_int_equal(unlinkat(f->fd, "freezer/warren/g", AT_REMOVEDIR), 0);
        }
        assert_int_equal(cgroup_kill(cg), 0);
        assert_int_equal(cgroup_destroy(cg), 0);
        assert_false(exists(f->fd, "cpu/warren/g"));
        assert_false(exists(f->fd, "warren/g"));
}

static void test_v2_destroy_removed_group(void **state)
{
        destroy_removed_group(state);
}

static void test_v1_destroy_removed_group(void **state)
{
        destroy_removed_group(state);
}

/* ---- sweep ---- */

static bool stale_a_or_c(const char *name, void *userdata)
{
        int *calls = userdata;

        (*calls)++;
        assert_true(strcmp(name, "a1") == 0 || strcmp(name, "b") == 0 || strcmp(name, "c1") == 0);
        return name[0] == 'a' || name[0] == 'c';
}

static void test_v2_sweep(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        int calls = 0;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "a1", NULL, &cg), 0);
        cg = cgroup_free(cg);
        assert_int_equal(cgroup_create(f->root, "b", NULL, &cg), 0);
        cg = cgroup_free(cg);
        assert_int_equal(cgroup_create(f->root, "c1", NULL, &cg), 0);
        cg = cgroup_free(cg);
        /* Not Warren's: a name it cannot have made, and a file. */
        dir(f->fd, "warren/bad name");
        put(f->fd, "warren/notadir", "");

        assert_int_equal(cgroup_sweep(f->root, stale_a_or_c, &calls), 2);
        assert_int_equal(calls, 3);
        assert_false(exists(f->fd, "warren/a1"));
        assert_true(exists(f->fd, "warren/b"));
        assert_false(exists(f->fd, "warren/c1"));
        assert_true(exists(f->fd, "warren/bad name"));
        assert_true(exists(f->fd, "warren/notadir"));
        assert_outside_untouched(f);
}

static bool stale_all(const char *name, void *userdata)
{
        int *calls = userdata;

        (*calls)++;
        return true;
}

static void test_v1_sweep(void **state)
{
        struct fixture *f = *state;
        struct cgroup *cg = NULL;
        int calls = 0;

        open_root(f);
        assert_int_equal(cgroup_create(f->root, "x", NULL, &cg), 0);
        cg = cgroup_free(cg);
        assert_int_equal(cgroup_create(f->root, "y", NULL, &cg), 0);
        cg = cgroup_free(cg);
        assert_int_equal(unlinkat(f->fd, "memory/warren/y", AT_REMOVEDIR), 0);
        assert_int_equal(mkdirat(f->fd, "freezer/warren/z", 0755), 0); /* in one hierarchy only */

        /* Each name once, whichever hierarchies it is in. */
        assert_int_equal(cgroup_sweep(f->root, stale_all, &calls), 3);
        assert_int_equal(calls, 3);
        static const char *const dirs[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char p[64];

                (void) snprintf(p, sizeof(p), "%s/warren", dirs[i]);
                assert_int_equal(count_dirs(f->fd, p), 0);
        }
        calls = 0;
        assert_int_equal(cgroup_sweep(f->root, stale_all, &calls), 0);
        assert_int_equal(calls, 0);
        assert_outside_untouched(f);
}

/* ---- the real kernel ---- */

struct real {
        struct cgroup_root *root;
        struct cgroup *cg;
        pid_t pid;
        char name[64];
};

static int setup_real(void **state)
{
        struct real *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        memset(&fake, 0, sizeof(fake));
        t->pid = -1;
        (void) snprintf(t->name, sizeof(t->name), "test-cgroup-%d", (int) getpid());
        *state = t;
        return 0;
}

static int teardown_real(void **state)
{
        struct real *t = *state;
        int status;

        /* After a failed assertion: nothing may outlive the test. */
        if (t->cg)
                (void) cgroup_destroy(t->cg);
        if (t->pid > 0) {
                (void) kill(t->pid, SIGKILL);
                (void) waitpid(t->pid, &status, 0);
        }
        cgroup_root_free(t->root);
        free(t);
        return 0;
}

static void burn_cpu(uint64_t ns)
{
        struct timespec ts;
        volatile uint64_t sink = 0;

        for (;;) {
                for (int i = 0; i < 10000; i++)
                        sink += (uint64_t) i;
                (void) clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
                if ((uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec >= ns)
                        break;
        }
        (void) sink;
}

/* The child: waits for "go", burns CPU, forks grandchildren, says "done", sleeps. */
static _noreturn_ void child_main(int go_fd, int done_fd, int grandchildren)
{
        char c;

        if (read(go_fd, &c, 1) != 1)
                _exit(1);
        burn_cpu(60 * MSEC);
        for (int i = 0; i < grandchildren; i++) {
                pid_t p = fork();
                if (p < 0)
                        _exit(2);
                if (p == 0)
                        for (;;)
                                pause();
        }
        if (write(done_fd, "x", 1) != 1)
                _exit(3);
        for (;;)
                pause();
}

static pid_t clone_into(int cgroup_fd)
{
        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) cgroup_fd,
        };

        return (pid_t) syscall(SYS_clone3, &args, sizeof(args));
}

/* Starts the child in cg (clone3 into it on v2, attach on v1) and lets it run. */
static void start_child(struct real *t, int done[2], int grandchildren)
{
        int go[2];

        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(done, O_CLOEXEC), 0);
        t->pid = cgroup_fd(t->cg) >= 0 ? clone_into(cgroup_fd(t->cg)) : fork();
        assert_true(t->pid >= 0);
        if (t->pid == 0) {
                (void) close(go[1]);
                (void) close(done[0]);
                child_main(go[0], done[1], grandchildren);
        }
        (void) close(go[0]);
        (void) close(done[1]);
        if (cgroup_fd(t->cg) < 0)
                assert_int_equal(cgroup_attach(t->cg, t->pid), 0);
        assert_int_equal(write(go[1], "x", 1), 1);
        (void) close(go[1]);
}

static void wait_done(int fd)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;

        assert_int_equal(poll(&p, 1, 5000), 1);
        assert_int_equal(read(fd, &c, 1), 1);
        (void) close(fd);
}

/* Every line of /proc/PID/cgroup for one of our controllers (v1) or the v2 line shows the group. */
static void assert_in_group(pid_t pid, enum cgroup_version v, const char *name)
{
        _cleanup_free_ char *s = NULL;
        char path[64], want[128];
        int seen = 0;

        (void) snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        assert_int_equal(read_file_at(AT_FDCWD, path, FILE_MAX, &s), 0);
        (void) snprintf(want, sizeof(want), "/warren/%s", name);
        for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
                char *ctrls = strchr(line, ':'), *cpath;

                assert_non_null(ctrls);
                ctrls++;
                cpath = strchr(ctrls, ':');
                assert_non_null(cpath);
                *cpath++ = '\0';
                if (v == CGROUP_V2 ? ctrls[0] != '\0'
                                   : !(has_word(ctrls, "memory") || has_word(ctrls, "pids") ||
                                       has_word(ctrls, "cpu") || has_word(ctrls, "cpuacct") ||
                                       has_word(ctrls, "freezer")))
                        continue;
                if (strcmp(cpath, want) != 0)
                        print_error("%s: %s:%s\n", path, ctrls, cpath);
                assert_string_equal(cpath, want);
                seen++;
        }
        assert_true(seen >= 1);
}

static void assert_gone(pid_t pid)
{
        int status;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* The v2 test's mount: the real thing on pure v2, else a hybrid machine's cgroup2 mount. */
static const char *real_v2_mount(void)
{
        struct stat st;

        return stat(REAL_MOUNT "/cgroup.controllers", &st) == 0 ? REAL_MOUNT
                                                                : REAL_MOUNT "/unified";
}

/*
 * Why a real-kernel test cannot run on mount, or NULL. main() leaves such tests out rather than
 * calling skip(): cmocka 1.1.5 reports a skip as "not ok N # SKIP", which meson counts as failed.
 */
static const char *real_skip_reason(const char *mount, bool need_limits)
{
        struct cgroup_root *root = NULL;
        const char *why = NULL;
        int r;

        if (geteuid() != 0)
                return "not root";
        r = cgroup_root_open(mount, &root);
        if (r == -ENOENT || r == -EACCES || r == -EPERM || r == -EROFS)
                return "no usable cgroup hierarchy";
        if (r < 0)
                return NULL; /* a real failure: let the test report it */
        if (need_limits &&
            !(cgroup_root_has(root, CGROUP_MEMORY) && cgroup_root_has(root, CGROUP_PIDS) &&
              cgroup_root_has(root, CGROUP_CPU) && cgroup_root_has(root, CGROUP_CPUACCT)))
                why = "memory, pids, cpu or cpuacct unavailable";
        cgroup_root_free(root);
        return why;
}

/* REAL_MOUNT/[hierarchy/]warren/name/file reads expected (optional: if the kernel has it). */
static void assert_real_file(const char *hierarchy, const char *name, const char *file,
                             const char *expected, bool optional)
{
        char p[PATH_MAX];

        (void) snprintf(p, sizeof(p), "%s/%s%swarren/%s/%s", REAL_MOUNT, hierarchy,
                        hierarchy[0] ? "/" : "", name, file);
        if (optional && !exists(AT_FDCWD, p)) {
                print_message("%s: absent on this kernel\n", p);
                return;
        }
        assert_file(AT_FDCWD, p, expected);
}

static void test_real_kernel(void **state)
{
        struct real *t = *state;
        struct cgroup_stats s = {0};
        uint64_t before = 0, after = 0;
        enum cgroup_version v;
        int done[2];

        if (real_skip_reason(REAL_MOUNT, true))
                skip();
        assert_int_equal(cgroup_root_open(REAL_MOUNT, &t->root), 0);
        v = cgroup_root_version(t->root);

        assert_int_equal(cgroup_create(t->root, t->name, &limits_64m_16_half, &t->cg), 0);
        if (v == CGROUP_V2) {
                assert_real_file("", t->name, "memory.max", "67108864\n", false);
                assert_real_file("", t->name, "pids.max", "16\n", false);
                assert_real_file("", t->name, "cpu.max", "50000 100000\n", false);
                assert_real_file("", t->name, "memory.swap.max", "0\n", true);
        } else {
                assert_real_file("memory", t->name, "memory.limit_in_bytes", "67108864\n", false);
                assert_real_file("memory", t->name, "memory.memsw.limit_in_bytes", "67108864\n",
                                 true);
                assert_real_file("pids", t->name, "pids.max", "16\n", false);
                assert_real_file("cpu", t->name, "cpu.cfs_period_us", "100000\n", false);
                assert_real_file("cpu", t->name, "cpu.cfs_quota_us", "50000\n", false);
        }

        assert_int_equal(cgroup_cpu_usage(t->cg, &before), 0);
        start_child(t, done, 3);
        wait_done(done[0]);
        assert_in_group(t->pid, v, t->name);
        assert_int_equal(cgroup_cpu_usage(t->cg, &after), 0);
        /* 60 ms burnt; allow for a tick not yet accounted */
        assert_true(after >= before + 40 * MSEC);

        assert_int_equal(cgroup_read_stats(t->cg, &s), 0);
        assert_true(s.cpu_ns >= after);
        assert_true(s.user_ns + s.sys_ns > 0);
        assert_int_equal(s.oom_kills, 0);
        print_message("# real %s: cpu %" PRIu64 " ns (user %" PRIu64 ", sys %" PRIu64
                      "), peak %" PRIu64 " bytes\n",
                      v == CGROUP_V2 ? "v2" : "v1", s.cpu_ns, s.user_ns, s.sys_ns, s.memory_peak);

        /* Kills the child and its 3 children, waits, removes the group everywhere. */
        assert_int_equal(cgroup_destroy(t->cg), 0);
        t->cg = NULL;
        assert_gone(t->pid);
        t->pid = -1;
        {
                static const char *const dirs[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};
                _cleanup_close_ int m = open(REAL_MOUNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                char p[256];

                assert_true(m >= 0);
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        if (v == CGROUP_V2)
                                (void) snprintf(p, sizeof(p), "warren/%s", t->name);
                        else
                                (void) snprintf(p, sizeof(p), "%s/warren/%s", dirs[i], t->name);
                        assert_false(exists(m, p));
                }
        }
}

/*
 * The v2 path on a real kernel even on a hybrid machine: its cgroup2 mount has no controllers,
 * but cgroup.kill, cgroup.events, cpu.stat and CLONE_INTO_CGROUP all work there.
 */
static void test_real_kernel_v2_core(void **state)
{
        struct real *t = *state;
        struct cgroup_limits mem = {.memory = 64 * MIB};
        struct cgroup *cg = NULL;
        uint64_t before = 0, after = 0, start;
        const char *mount = real_v2_mount();
        _cleanup_close_ int m = -EBADF;
        char p[128];
        int done[2];

        if (real_skip_reason(mount, false))
                skip();
        assert_int_equal(cgroup_root_open(mount, &t->root), 0);
        assert_int_equal(cgroup_root_version(t->root), CGROUP_V2);
        m = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(m >= 0);
        (void) snprintf(p, sizeof(p), "warren/%s", t->name);

        if (!cgroup_root_has(t->root, CGROUP_MEMORY)) {
                assert_int_equal(cgroup_create(t->root, t->name, &mem, &cg), -EOPNOTSUPP);
                assert_false(exists(m, p));
        }
        assert_int_equal(cgroup_create(t->root, t->name, NULL, &t->cg), 0);
        assert_true(cgroup_fd(t->cg) >= 0);
        assert_int_equal(cgroup_cpu_usage(t->cg, &before), 0);
        start_child(t, done, 2);
        wait_done(done[0]);
        assert_in_group(t->pid, CGROUP_V2, t->name);
        assert_int_equal(cgroup_cpu_usage(t->cg, &after), 0);
        assert_true(after >= before + 40 * MSEC);

        /* cgroup.kill, then woken by "populated 0": well before the 2 s bound. */
        start = now_ns(CLOCK_MONOTONIC);
        assert_int_equal(cgroup_destroy(t->cg), 0);
        t->cg = NULL;
        assert_true(now_ns(CLOCK_MONOTONIC) - start < 1000 * MSEC);
        assert_gone(t->pid);
        t->pid = -1;
        assert_false(exists(m, p));
}

int main(void)
{
        static const struct CMUnitTest fakes[] = {
                cmocka_unit_test_setup_teardown(test_no_hierarchy, setup_empty, teardown),
                cmocka_unit_test_setup_teardown(test_v2_detect, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v2_root_lacks_memory, setup_v2_no_memory,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_v1_detect, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v1_comounted, setup_v1_comounted, teardown),
                cmocka_unit_test_setup_teardown(test_v1_partial, setup_v1_partial, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_names, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_cpu_limits, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v2_limits, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_limits, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v1_limit_failure_cleans_up, setup_v1,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_v2_stale_group_replaced, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_stale_partial_group_replaced, setup_v1,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_v2_fd_and_attach, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_fd, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v2_stats, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_stats, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v1_stats_without_controllers, setup_v1_partial,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_v2_destroy, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v2_kill_without_cgroup_kill, setup_v2,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_v2_kill_busy, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_kill_processes, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v1_kill_rejects_junk, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v2_destroy_removed_group, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_destroy_removed_group, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(test_v2_sweep, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(test_v1_sweep, setup_v1, teardown),
        };

        const struct {
                struct CMUnitTest test;
                const char *why_not;
        } real[] = {
                {cmocka_unit_test_setup_teardown(test_real_kernel, setup_real, teardown_real),
                 real_skip_reason(REAL_MOUNT, true)},
                {cmocka_unit_test_setup_teardown(test_real_kernel_v2_core, setup_real,
                                                 teardown_real),
                 real_skip_reason(real_v2_mount(), false)},
        };
        struct CMUnitTest tests[ELEMENTSOF(fakes) + ELEMENTSOF(real)];
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(fakes); i++)
                tests[n++] = fakes[i];
        for (size_t i = 0; i < ELEMENTSOF(real); i++) {
                if (real[i].why_not)
                        printf("# SKIP %s: %s\n", real[i].test.name, real[i].why_not);
                else
                        tests[n++] = real[i].test;
        }
        return _cmocka_run_group_tests("cgroup", tests, n, NULL, NULL);
}
