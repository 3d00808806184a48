/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sandbox's seccomp-bpf allowlist.
 *
 * The filter is compiled at build time with libseccomp (seccomp-policy.c, run by gen-seccomp) and
 * embedded as a raw BPF program; loading it in the child is a single prctl() that allocates
 * nothing, so it is safe in a freshly cloned child and costs nothing per sandbox.
 *
 * Policy (x86_64 and the native arch only; every other arch, x32 included, kills the process):
 *   - syscalls on the allowlist are allowed, some only with filtered arguments:
 *       clone: only without namespace flags (CLONE_NEW*); clone3: ENOSYS (libc falls back to clone)
 *       ioctl: everything except TIOCSTI and TIOCLINUX (compared on the low 32 bits, as the
 *              kernel does)
 *       socket/socketpair: AF_UNIX, AF_INET, AF_INET6 with SOCK_STREAM/SOCK_DGRAM/SOCK_SEQPACKET,
 *                          and AF_NETLINK with NETLINK_ROUTE; never raw, packet, vsock or alg
 *       personality: only the harmless values, as runtimes do: the query (0xffffffff), PER_LINUX,
 *                    PER_LINUX32, each optionally with UNAME26; not ADDR_NO_RANDOMIZE, not
 *                    READ_IMPLIES_EXEC
 *   - the dangerous ones named in the policy (mount family, pivot_root, unshare, setns, ptrace,
 *     process_vm_*, bpf, perf_event_open, userfaultfd, keyrings, open_by_handle_at, kexec, modules,
 *     reboot, swap, io_uring, ...) fail with EPERM;
 *   - anything else fails with ENOSYS, so that libc falls back from syscalls it does not know.
 */

#include <linux/filter.h>

struct seccomp_program {
        struct sock_fprog prog; /* prog.filter is heap memory owned by this struct */
};

/* The program compiled from the policy at build time (seccomp-policy.h), embedded in the binary. */
extern const struct sock_filter seccomp_builtin_filter[];
extern const unsigned short seccomp_builtin_len;

/* A copy of the built-in program. */
int seccomp_program_build(struct seccomp_program **ret);
struct seccomp_program *seccomp_program_free(struct seccomp_program *p);

/*
 * Installs the filter on the calling thread. Needs no_new_privs set (or CAP_SYS_ADMIN).
 * Async-signal-safe: no allocation. Returns 0 or -errno.
 */
int seccomp_program_load(const struct seccomp_program *p);
