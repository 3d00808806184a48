/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * User namespaces and the per-sandbox host identity.
 *
 * As root, each running sandbox holds a *slot*: an exclusive flock() on STATE/slots/N. Slot N maps
 * two inside ids: 0 (the sandbox's own root, which builds the file system and runs init, with
 * capabilities only over the sandbox's namespaces) to host uid/gid BASE + 2N, and the program's
 * unprivileged uid/gid to BASE + 2N + 1. No two sandboxes running at the same moment share a host
 * identity, and none is 0. The lock dies with its holder, even on
 * SIGKILL, so a slot is never leaked. Without root the kernel lets a process map only its own
 * ids, so every sandbox of that user shares the caller's uid (as bubblewrap does).
 */

#include <stdbool.h>

#include <sys/types.h>

struct userns_slot {
        int lock_fd;
        unsigned index;
        uid_t host_root_uid; /* inside 0 */
        uid_t host_uid;      /* inside SANDBOX_UID/GID; gids are the same numbers */
};

#define USERNS_SLOT_NULL ((struct userns_slot){.lock_fd = -EBADF})

/* Takes a free slot in slots_dirfd; -EAGAIN when all n are in use. hint spreads the search. */
int userns_slot_acquire(int slots_dirfd, unsigned n, uid_t base, unsigned hint,
                        struct userns_slot *ret);
void userns_slot_release(struct userns_slot *slot);

/* Whether slot `index` is held by a live process (used to find stale cgroups). */
bool userns_slot_busy(int slots_dirfd, unsigned index);

/*
 * Writes /proc/PID/{setgroups,uid_map,gid_map}: setgroups denied; inside 0 -> host_root (uid and
 * gid), unless host_root is (uid_t) -1 (an unprivileged caller can map only itself); and the
 * inside id -> host_uid / host_gid.
 */
int userns_write_maps(pid_t pid, uid_t inside, uid_t host_uid, gid_t host_gid, uid_t host_root);
