/* SPDX-License-Identifier: MIT */
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <sys/file.h>

#include "common/cleanup.h"
#include "common/util.h"

static int slot_try(int dirfd, unsigned index, int *ret_fd)
{
        _cleanup_close_ int fd = -EBADF;
        char name[16];

        (void) snprintf(name, sizeof(name), "%u", index);
        fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int userns_slot_acquire(int slots_dirfd, unsigned n, uid_t base, unsigned hint,
                        struct userns_slot *ret)
{
        if (n == 0)
                return -EINVAL;
        for (unsigned i = 0; i < n; i++) {
                unsigned index = (hint + i) % n;
                int fd, r;

                r = slot_try(slots_dirfd, index, &fd);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                *ret = (struct userns_slot){
                        .lock_fd = fd,
                        .index = index,
                        .host_root_uid = base + 2 * index,
                        .host_uid = base + 2 * index + 1,
                };
                return 0;
        }
        return -EAGAIN;
}

void userns_slot_release(struct userns_slot *slot)
{
        slot->lock_fd = safe_close(slot->lock_fd);
}

bool userns_slot_busy(int slots_dirfd, unsigned index)
{
        int fd, r;

        r = slot_try(slots_dirfd, index, &fd);
        if (r == -EAGAIN)
                return true;
        if (r == 0)
                (void) close(fd);
        return false;
}

static int write_proc(pid_t pid, const char *file, const char *s)
{
        char path[64];

        (void) snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        return write_file_at(AT_FDCWD, path, s);
}

int userns_write_maps(pid_t pid, uid_t inside, uid_t host_uid, gid_t host_gid, uid_t host_root)
{
        char map[96];
        int r;

        r = write_proc(pid, "setgroups", "deny");
        if (r < 0)
                return r;
        if (host_root != (uid_t) -1)
                (void) snprintf(map, sizeof(map), "0 %u 1\n%u %u 1\n", (unsigned) host_root,
                                (unsigned) inside, (unsigned) host_uid);
        else
                (void) snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) inside,
                                (unsigned) host_uid);
        r = write_proc(pid, "uid_map", map);
        if (r < 0)
                return r;
        if (host_root != (uid_t) -1)
                (void) snprintf(map, sizeof(map), "0 %u 1\n%u %u 1\n", (unsigned) host_root,
                                (unsigned) inside, (unsigned) host_gid);
        else
                (void) snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) inside,
                                (unsigned) host_gid);
        return write_proc(pid, "gid_map", map);
}
