/* SPDX-License-Identifier: MIT */
#include "mount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/cleanup.h"
#include "sandbox.h"

/* What the host profile shares with a sandbox: the system's programs and libraries, read-only. */
static const char *const host_profile_dirs[] = {
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
};

/* What it shares of the host's /etc: only what the dynamic loader and alternatives need. */
static const char *const host_profile_etc[] = {
        "/etc/ld.so.cache",  "/etc/ld.so.conf", "/etc/ld.so.conf.d",
        "/etc/alternatives", "/etc/localtime",
};

static const struct {
        const char *path;
        const char *contents;
} generated_etc[] = {
        {"/etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                        "sandbox:x:1000:1000:sandbox:/tmp:/bin/sh\n"
                        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
        {"/etc/group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"},
        {"/etc/hosts", "127.0.0.1\tlocalhost " SANDBOX_HOSTNAME "\n::1\tlocalhost\n"},
        {"/etc/hostname", SANDBOX_HOSTNAME "\n"},
        {"/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n"},
};

/* Entries of /proc a sandbox must not read (masked with /dev/null or an empty read-only dir). */
static const char *const proc_masked_files[] = {
        "kcore",         "keys",        "timer_list", "sched_debug",
        "latency_stats", "timer_stats", "kallsyms",   "sysrq-trigger",
};
static const char *const proc_masked_dirs[] = {"acpi", "scsi", "asound", "firmware"};
static const char *const proc_readonly[] = {"sys", "irq", "bus", "fs"};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};

static const struct {
        const char *name;
        const char *target;
} dev_links[] = {
        {"fd", "/proc/self/fd"},
        {"stdin", "/proc/self/fd/0"},
        {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"},
};

#define ROOT_TMPFS_SIZE (UINT64_C(1) << 20)
#define DEV_TMPFS_SIZE  (UINT64_C(64) << 10)
#define SHM_TMPFS_SIZE  (UINT64_C(16) << 20)
#define MAX_USER_MOUNTS 64

int mount_normalize_path(const char *path, char **ret)
{
        _cleanup_free_ char *out = NULL;
        size_t len, o = 0;
        const char *p;

        if (!path || path[0] != '/')
                return -EINVAL;
        len = strlen(path);
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        for (p = path; *p;) {
                size_t n;

                while (*p == '/')
                        p++;
                n = strcspn(p, "/");
                if (n == 0)
                        break;
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                out[o++] = '/';
                memcpy(out + o, p, n);
                o += n;
                p += n;
        }
        if (o == 0)
                return -EINVAL; /* "/" itself */
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

static int plan_add(struct mount_plan *plan, enum mount_op_kind kind, const char *dst,
                    const char *arg, struct mount_op **ret)
{
        struct mount_op *op;

        if (plan->n == plan->cap) {
                size_t cap = plan->cap ? plan->cap * 2 : 32;
                struct mount_op *ops = reallocarray(plan->ops, cap, sizeof(*ops));
                if (!ops)
                        return -ENOMEM;
                plan->ops = ops;
                plan->cap = cap;
        }
        op = &plan->ops[plan->n];
        *op = (struct mount_op){.kind = kind, .fd = -EBADF, .mode = 0755};
        op->dst = strdup(dst);
        if (!op->dst)
                return -ENOMEM;
        if (arg) {
                op->arg = strdup(arg);
                if (!op->arg) {
                        free(op->dst);
                        return -ENOMEM;
                }
        }
        plan->n++;
        if (ret)
                *ret = op;
        return 0;
}

/* A host path shared read-only: a directory or file is bound, a symbolic link recreated. */
static int plan_add_host_entry(struct mount_plan *plan, const char *src, const char *dst)
{
        struct stat st;
        struct mount_op *op;
        int r;

        if (lstat(src, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = '\0';
                return plan_add(plan, MOUNT_OP_SYMLINK, dst, target, NULL);
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return 0;
        r = plan_add(plan, MOUNT_OP_BIND, dst, src, &op);
        if (r < 0)
                return r;
        op->ro = true;
        op->src_is_dir = S_ISDIR(st.st_mode);
        return 0;
}

static bool is_reserved_top(const char *name)
{
        return strcmp(name, "proc") == 0 || strcmp(name, "dev") == 0 || strcmp(name, "tmp") == 0;
}

static int plan_add_rootfs(struct mount_plan *plan, const char *rootfs)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        struct stat st;

        if (stat(rootfs, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        d = opendir(rootfs);
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                char src[PATH_MAX], dst[NAME_MAX + 2];
                int r;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    is_reserved_top(de->d_name))
                        continue;
                if (snprintf(src, sizeof(src), "%s/%s", rootfs, de->d_name) >= (int) sizeof(src))
                        return -ENAMETOOLONG;
                (void) snprintf(dst, sizeof(dst), "/%s", de->d_name);
                r = plan_add_host_entry(plan, src, dst);
                if (r < 0)
                        return r;
        }
        return errno ? -errno : 0;
}

static int plan_add_host_profile(struct mount_plan *plan)
{
        struct mount_op *op;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(host_profile_dirs); i++) {
                r = plan_add_host_entry(plan, host_profile_dirs[i], host_profile_dirs[i]);
                if (r < 0)
                        return r;
        }
        r = plan_add(plan, MOUNT_OP_DIR, "/etc", NULL, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(generated_etc); i++) {
                r = plan_add(plan, MOUNT_OP_FILE, generated_etc[i].path, generated_etc[i].contents,
                             &op);
                if (r < 0)
                        return r;
                op->mode = 0644;
        }
        for (size_t i = 0; i < ELEMENTSOF(host_profile_etc); i++) {
                r = plan_add_host_entry(plan, host_profile_etc[i], host_profile_etc[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool path_is_under(const char *path, const char *top)
{
        size_t n = strlen(top);
        return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int mount_plan_build(const struct sandbox_config *cfg, struct mount_plan **ret,
                     const char **ret_bad)
{
        struct mount_plan *plan;
        struct mount_op *op;
        bool user_tmp = false;
        int r;

        if (cfg->n_mounts > MAX_USER_MOUNTS)
                return -E2BIG;

        plan = calloc(1, sizeof(*plan));
        if (!plan)
                return -ENOMEM;

        r = cfg->rootfs ? plan_add_rootfs(plan, cfg->rootfs) : plan_add_host_profile(plan);
        if (r < 0) {
                if (ret_bad)
                        *ret_bad = cfg->rootfs ? cfg->rootfs : "/";
                goto fail;
        }
        r = plan_add(plan, MOUNT_OP_PROC, "/proc", NULL, NULL);
        if (r < 0)
                goto fail;
        r = plan_add(plan, MOUNT_OP_DEV, "/dev", NULL, NULL);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < cfg->n_mounts; i++) {
                _cleanup_free_ char *dst = NULL;
                if (mount_normalize_path(cfg->mounts[i].dst, &dst) >= 0 && strcmp(dst, "/tmp") == 0)
                        user_tmp = true;
        }
        if (!user_tmp) {
                r = plan_add(plan, MOUNT_OP_TMPFS, "/tmp", NULL, &op);
                if (r < 0)
                        goto fail;
                op->size = cfg->tmp_size ? cfg->tmp_size : SANDBOX_DEFAULT_TMP_SIZE;
                op->mode = 01777;
        }

        for (size_t i = 0; i < cfg->n_mounts; i++) {
                const struct sandbox_mount *m = &cfg->mounts[i];
                _cleanup_free_ char *dst = NULL;
                struct stat st;

                if (ret_bad)
                        *ret_bad = m->dst;
                r = mount_normalize_path(m->dst, &dst);
                if (r < 0)
                        goto fail;
                if (path_is_under(dst, "/proc") || path_is_under(dst, "/dev")) {
                        r = -EPERM;
                        goto fail;
                }
                switch (m->kind) {
                case SANDBOX_BIND_RO:
                case SANDBOX_BIND_RW:
                        if (ret_bad)
                                *ret_bad = m->src;
                        if (!m->src || m->src[0] != '/') {
                                r = -EINVAL;
                                goto fail;
                        }
                        if (stat(m->src, &st) < 0) {
                                r = -errno;
                                goto fail;
                        }
                        r = plan_add(plan, MOUNT_OP_BIND, dst, m->src, &op);
                        if (r < 0)
                                goto fail;
                        op->ro = m->kind == SANDBOX_BIND_RO;
                        op->src_is_dir = S_ISDIR(st.st_mode);
                        break;
                case SANDBOX_TMPFS:
                        if (m->size == 0) {
                                r = -EINVAL;
                                goto fail;
                        }
                        r = plan_add(plan, MOUNT_OP_TMPFS, dst, NULL, &op);
                        if (r < 0)
                                goto fail;
                        op->size = m->size;
                        op->mode = strcmp(dst, "/tmp") == 0 ? 01777 : 0755;
                        op->sandbox_owned = true;
                        break;
                }
        }
        if (ret_bad)
                *ret_bad = NULL;
        *ret = plan;
        return 0;
fail:
        mount_plan_free(plan);
        return r;
}

struct mount_plan *mount_plan_free(struct mount_plan *plan)
{
        if (!plan)
                return NULL;
        for (size_t i = 0; i < plan->n; i++) {
                free(plan->ops[i].dst);
                free(plan->ops[i].arg);
                (void) safe_close(plan->ops[i].fd);
        }
        free(plan->ops);
        free(plan);
        return NULL;
}

/* ---- child side: everything below runs inside the new namespaces ---- */

/*
 * Opens (creating as needed) the path rel below rootfd without following any symbolic link.
 * kind: 'd' a directory, 'f' a regular file; the result is an O_PATH fd.
 */
static int open_below(int rootfd, const char *dst, char kind, unsigned mode, int *ret)
{
        char buf[PATH_MAX];
        _cleanup_close_ int owned = -EBADF;
        int dirfd = rootfd, fd;
        char *p, *slash;
        size_t len = strlen(dst);

        if (len >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, dst, len + 1);
        p = buf;
        while (*p == '/')
                p++;
        while ((slash = strchr(p, '/'))) {
                *slash = '\0';
                if (mkdirat(dirfd, p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                fd = openat(dirfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                (void) safe_close(owned);
                dirfd = owned = fd;
                p = slash + 1;
        }
        if (kind == 'd') {
                if (mkdirat(dirfd, p, mode) < 0 && errno != EEXIST)
                        return -errno;
                fd = openat(dirfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
                /* mknodat() makes the empty file in one call, without an fd to close. */
                if (mknodat(dirfd, p, S_IFREG | mode, 0) < 0 && errno != EEXIST)
                        return -errno;
                fd = openat(dirfd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

static int attach(int treefd, int rootfd, const char *dst, char kind)
{
        _cleanup_close_ int target = -EBADF;
        int r;

        r = open_below(rootfd, dst, kind, 0755, &target);
        if (r < 0)
                return r;
        if (move_mount(treefd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
            0)
                return -errno;
        return 0;
}

/* A detached clone of the host tree at src, with the given attributes set recursively. */
static int clone_tree(int dirfd, const char *src, uint64_t attr_set, int *ret)
{
        _cleanup_close_ int fd = -EBADF;
        struct mount_attr attr = {
                .attr_set = attr_set,
                .propagation = MS_PRIVATE,
        };

        fd = open_tree(dirfd, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fd < 0)
                return -errno;
        if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

/*
 * mount(2) onto an fd resolved with O_NOFOLLOW, through its /proc/self/fd link: one system call
 * where the new mount API needs six for a tmpfs, and no path is looked up twice. Runs before the
 * pivot, while the host's /proc still answers for /proc/self.
 */
static int mount_on_fd(const char *source, int target, const char *fstype, unsigned long flags,
                       const char *data)
{
        char path[32];

        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", target);
        if (mount(source, path, fstype, flags, data) < 0)
                return -errno;
        return 0;
}

static int mount_tmpfs(int target, uint64_t size, uint64_t inodes, unsigned mode,
                       bool sandbox_owned, unsigned long flags)
{
        char data[128];

        (void) snprintf(data, sizeof(data), "size=%llu,nr_inodes=%llu,mode=%o%s",
                        (unsigned long long) size, (unsigned long long) inodes, mode,
                        sandbox_owned ? ",uid=1000,gid=1000" : "");
        return mount_on_fd("tmpfs", target, "tmpfs", flags, data);
}

static uint64_t tmpfs_inodes(uint64_t size)
{
        /* One inode per 16 KiB of space, within bounds: no sandbox can exhaust inodes of others. */
        uint64_t n = size / (16 << 10);
        if (n < 1024)
                n = 1024;
        if (n > 1 << 20)
                n = 1 << 20;
        return n;
}

static int setattr_ro(int mntfd)
{
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};

        if (mount_setattr(mntfd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                return -errno;
        return 0;
}

static int setup_proc(int rootfd, const char *dst)
{
        _cleanup_close_ int mp = -EBADF, mnt = -EBADF;
        int r;

        r = open_below(rootfd, dst, 'd', 0555, &mp);
        if (r < 0)
                return r;
        /* The PID namespace's own proc: we are its init. */
        r = mount_on_fd("proc", mp, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        if (r < 0)
                return r;
        r = open_below(rootfd, dst, 'd', 0555, &mnt);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(proc_readonly); i++) {
                _cleanup_close_ int tree = -EBADF, target = -EBADF;

                target = openat(mnt, proc_readonly[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (target < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                r = clone_tree(mnt, proc_readonly[i],
                               MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                       MOUNT_ATTR_NOEXEC,
                               &tree);
                if (r < 0)
                        return r;
                if (move_mount(tree, "", target, "",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        return -errno;
        }
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_files); i++) {
                _cleanup_close_ int tree = -EBADF, target = -EBADF;

                target = openat(mnt, proc_masked_files[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (target < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                /* nodev too: the mask must not even open as a device. */
                r = clone_tree(AT_FDCWD, "/dev/null",
                               MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, &tree);
                if (r < 0)
                        return r;
                if (move_mount(tree, "", target, "",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        return -errno;
        }
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_dirs); i++) {
                _cleanup_close_ int target = -EBADF;

                target = openat(mnt, proc_masked_dirs[i],
                                O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (target < 0) {
                        if (errno == ENOENT || errno == ENOTDIR)
                                continue;
                        return -errno;
                }
                r = mount_tmpfs(target, 4096, 16, 0555, false,
                                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int setup_dev(int rootfd, const char *dst)
{
        _cleanup_close_ int target = -EBADF, mnt = -EBADF, shm = -EBADF;
        int r;

        r = open_below(rootfd, dst, 'd', 0755, &target);
        if (r < 0)
                return r;
        r = mount_tmpfs(target, DEV_TMPFS_SIZE, 64, 0755, false, MS_NOSUID | MS_NOEXEC);
        if (r < 0)
                return r;
        r = open_below(rootfd, dst, 'd', 0755, &mnt);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                _cleanup_close_ int tree = -EBADF;
                char src[32];

                (void) snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
                r = clone_tree(AT_FDCWD, src, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, &tree);
                if (r < 0)
                        return r;
                r = attach(tree, mnt, dev_nodes[i], 'f');
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(dev_links); i++)
                if (symlinkat(dev_links[i].target, mnt, dev_links[i].name) < 0)
                        return -errno;

        r = open_below(mnt, "shm", 'd', 01777, &shm);
        if (r < 0)
                return r;
        r = mount_tmpfs(shm, SHM_TMPFS_SIZE, tmpfs_inodes(SHM_TMPFS_SIZE), 01777, false,
                        MS_NOSUID | MS_NODEV | MS_NOEXEC);
        if (r < 0)
                return r;
        return setattr_ro(mnt);
}

static int parent_and_leaf(int rootfd, const char *dst, int *ret_dirfd, const char **ret_leaf)
{
        char parent[PATH_MAX];
        const char *slash = strrchr(dst, '/');
        size_t n;

        if (!slash)
                return -EINVAL;
        n = (size_t) (slash - dst);
        if (n == 0) {
                int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                *ret_dirfd = fd;
        } else {
                memcpy(parent, dst, n);
                parent[n] = '\0';
                int r = open_below(rootfd, parent, 'd', 0755, ret_dirfd);
                if (r < 0)
                        return r;
        }
        *ret_leaf = slash + 1;
        return 0;
}

static int apply_op(struct mount_op *op, int rootfd)
{
        _cleanup_close_ int fd = -EBADF, dirfd = -EBADF;
        const char *leaf;
        int r;

        switch (op->kind) {
        case MOUNT_OP_DIR:
                return open_below(rootfd, op->dst, 'd', op->mode, &fd);
        case MOUNT_OP_FILE:
                r = parent_and_leaf(rootfd, op->dst, &dirfd, &leaf);
                if (r < 0)
                        return r;
                fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            op->mode);
                if (fd < 0)
                        return -errno;
                if (write(fd, op->arg, strlen(op->arg)) != (ssize_t) strlen(op->arg))
                        return errno ? -errno : -EIO;
                return 0;
        case MOUNT_OP_SYMLINK:
                r = parent_and_leaf(rootfd, op->dst, &dirfd, &leaf);
                if (r < 0)
                        return r;
                if (symlinkat(op->arg, dirfd, leaf) < 0)
                        return -errno;
                return 0;
        case MOUNT_OP_BIND:
                return attach(op->fd, rootfd, op->dst, op->src_is_dir ? 'd' : 'f');
        case MOUNT_OP_TMPFS:
                r = open_below(rootfd, op->dst, 'd', 0755, &fd);
                if (r < 0)
                        return r;
                return mount_tmpfs(fd, op->size, tmpfs_inodes(op->size), op->mode,
                                   op->sandbox_owned, MS_NOSUID | MS_NODEV);
        case MOUNT_OP_PROC:
                return setup_proc(rootfd, op->dst);
        case MOUNT_OP_DEV:
                return setup_dev(rootfd, op->dst);
        }
        return -EINVAL;
}

/* Somewhere to attach the new root while it is built; hidden from the host by our mount ns. */
static const char *const staging_dirs[] = {"/tmp", "/mnt", "/run", "/var/tmp"};

int mount_plan_apply(struct mount_plan *plan, size_t *ret_failed)
{
        _cleanup_close_ int root = -EBADF;
        int r;

        *ret_failed = plan->n;

        /* Nothing we do from here on propagates back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;

        /* Clone the host trees first, while every host path is still where it was. */
        for (size_t i = 0; i < plan->n; i++) {
                struct mount_op *op = &plan->ops[i];
                uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

                if (op->kind != MOUNT_OP_BIND)
                        continue;
                if (op->ro)
                        attrs |= MOUNT_ATTR_RDONLY;
                r = clone_tree(AT_FDCWD, op->arg, attrs, &op->fd);
                if (r < 0) {
                        *ret_failed = i;
                        return r;
                }
        }

        r = -ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(staging_dirs); i++) {
                char data[64];

                (void) snprintf(data, sizeof(data), "size=%llu,nr_inodes=4096,mode=755",
                                (unsigned long long) ROOT_TMPFS_SIZE);
                if (mount("tmpfs", staging_dirs[i], "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) {
                        r = -errno;
                        continue;
                }
                root = open(staging_dirs[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = root < 0 ? -errno : 0;
                break;
        }
        if (r < 0)
                return r;

        for (size_t i = 0; i < plan->n; i++) {
                r = apply_op(&plan->ops[i], root);
                plan->ops[i].fd = safe_close(plan->ops[i].fd);
                if (r < 0) {
                        *ret_failed = i;
                        return r;
                }
        }

        r = setattr_ro(root);
        if (r < 0)
                return r;
        if (fchdir(root) < 0)
                return -errno;
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return -errno;
        if (umount2(".", MNT_DETACH) < 0)
                return -errno;
        if (chdir("/") < 0)
                return -errno;
        return 0;
}
