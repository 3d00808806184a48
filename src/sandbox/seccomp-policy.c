/* SPDX-License-Identifier: MIT */
/*
 * The seccomp allowlist: theory of operation.
 *
 * seccomp_policy_compile() describes the policy to libseccomp, has it compiled to classic BPF
 * (exported to a memfd, since libseccomp 2.5.4 has no seccomp_export_bpf_mem()), reads the program
 * back into heap memory, and checks it before handing it out. It runs at build time: gen-seccomp
 * writes the program into the binary (seccomp.c), so a sandbox pays neither libseccomp's compile
 * nor the check; seccomp_program_load() is then a single prctl() in the child.
 *
 * libseccomp's rule semantics that the policy depends on (observed in 2.5.4, see below):
 *   - The default action is ERRNO(ENOSYS); libseccomp refuses a rule whose action equals the
 *     default (-EACCES), so clone3 has no rule of its own: it gets ENOSYS by default.
 *   - An unconditional rule for a syscall discards every conditional rule for it, whatever the
 *     order and the actions: ALLOW(ioctl) plus ERRNO(ioctl, cmd == TIOCSTI) compiles to a plain
 *     ALLOW. A condition that is always true by construction (MASKED_EQ with mask 0) is turned
 *     into an unconditional rule and does the same. So "allow, except ..." and "only ..., else
 *     EPERM" cannot be written as one unconditional rule plus exceptions.
 *   - The conditional rules of one syscall form a tree; at each level the nodes are tried in a
 *     fixed order (higher argument first; on one argument EQ/NE/MASKED_EQ before LT/LE before
 *     GT/GE), and when a whole subtree fails to match, evaluation continues with the next node of
 *     the level above; if nothing matches, the filter's default action applies.
 *   Therefore each filtered syscall gets its specific MASKED_EQ rules first and an "otherwise"
 *   rule on the same argument written as `arg >= 0` (true for every value, but a GE node, so it
 *   sorts after all the MASKED_EQ nodes and is not folded into an unconditional rule).
 *
 * Because the result depends on the ordering inside libseccomp (a shared library that can be
 * upgraded under us), seccomp_policy_compile() runs the compiled program through a small BPF
 * interpreter against a table of expected verdicts and refuses a program that deviates
 * (-EPROTO). The unit tests check the same policy against the kernel.
 *
 * Arguments are compared the way the kernel reads them: an `int` or `unsigned int` parameter
 * (socket family, ioctl cmd, personality) is compared on its low 32 bits only (MASKED_EQ with mask
 * 0xffffffff), so that garbage in the upper half of the register cannot steer past a rule
 * (ioctl(fd, 0x100005412) is TIOCSTI to the kernel).
 *
 * Names are resolved with libseccomp for the native architecture; a name that does not exist there
 * (open on aarch64) or that this libseccomp does not know is skipped, which is always safe: that
 * syscall keeps the default verdict, ENOSYS.
 */

#include "seccomp-policy.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* Allowed with any arguments. */
static const char *const allow_syscalls[] = {
        /* files and file descriptors */
        "open", "openat", "openat2", "creat", "close", "close_range", "read", "write", "pread64",
        "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2", "lseek", "stat",
        "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
        "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename", "renameat",
        "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "unlink", "unlinkat", "symlink",
        "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
        "fchown", "lchown", "fchownat", "umask", "truncate", "ftruncate", "fallocate", "fsync",
        "fdatasync", "sync", "syncfs", "sync_file_range", "fadvise64", "readahead", "flock",
        "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "splice", "tee", "vmsplice", "sendfile",
        "copy_file_range", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat",
        "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "setxattr",
        "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "inotify_init",
        "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "memfd_create",
        /* memory */
        "brk", "mmap", "munmap", "mprotect", "mremap", "msync", "mincore", "madvise", "mlock",
        "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "get_mempolicy",
        "set_mempolicy", "mbind", "pkey_mprotect", "pkey_alloc", "pkey_free",
        /* processes, threads, signals, identity */
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill",
        "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigqueueinfo", "rt_sigsuspend", "rt_tgsigqueueinfo", "sigaltstack",
        "pause", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "futex", "futex_waitv",
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
        "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
        "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
        "getpriority", "setpriority", "ioprio_get", "ioprio_set", "prctl", "arch_prctl",
        "getrlimit", "setrlimit", "prlimit64", "getrusage", "uname", "sysinfo", "times", "getcpu",
        "capget", "capset", "getuid", "geteuid", "getgid", "getegid", "setuid", "setgid",
        "setreuid", "setregid", "setresuid", "setresgid", "getresuid", "getresgid", "setfsuid",
        "setfsgid", "getgroups", "setgroups", "pidfd_open", "pidfd_send_signal",
        /* time */
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
        "alarm", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
        "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        /* polling and event fds */
        "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
        /* sockets (creating one is filtered below) */
        "connect", "accept", "accept4", "bind", "listen", "shutdown", "sendto", "sendmsg",
        "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "getsockname", "getpeername", "setsockopt",
        "getsockopt",
        /* SysV IPC and POSIX message queues: the sandbox has its own IPC namespace */
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
        "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
        "mq_notify", "mq_getsetattr",
        /* misc */
        "getrandom", "restart_syscall", "io_setup", "io_submit", "io_getevents", "io_pgetevents",
        "io_cancel", "io_destroy", "landlock_create_ruleset", "landlock_add_rule",
        "landlock_restrict_self"};

/* Refused with EPERM ("Operation not permitted"), whatever the arguments. */
static const char *const eperm_syscalls[] = {
        /* mounts, namespaces, roots */
        "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig",
        "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
        /* other processes' memory and the kernel's */
        "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "process_mrelease",
        "pidfd_getfd", "kcmp", "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
        "fanotify_init",
        /* keyrings and file handles */
        "keyctl", "add_key", "request_key", "open_by_handle_at", "name_to_handle_at",
        /* kernel, modules, machine */
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
        "swapon", "swapoff", "quotactl", "quotactl_fd", "acct", "syslog", "vhangup", "iopl",
        "ioperm", "modify_ldt", "sysfs", "uselib", "ustat", "nfsservctl", "_sysctl",
        /* clocks */
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        /* the sandbox's own host name is set once, by Warren */
        "sethostname", "setdomainname",
        /* io_uring bypasses this filter: its operations are not syscalls */
        "io_uring_setup", "io_uring_enter", "io_uring_register"};

#define NS_CLONE_FLAGS                                                                 \
        (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
         CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)

#define LOW32 UINT64_C(0xffffffff)

/*
 * The personalities container runtimes allow: PER_LINUX, PER_LINUX32, each with UNAME26, and the
 * query. Everything else (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, other ABIs) is refused.
 */
static const uint64_t allowed_personalities[] = {
        PER_LINUX, PER_LINUX32, PER_LINUX | UNAME26, PER_LINUX32 | UNAME26, 0xffffffff,
};

/*
 * socket(family, type & 0xf, protocol) triples a program may create. Protocols are explicit: a
 * protocol the kernel has not loaded (SCTP, DCCP, ...) must not be reachable, since asking for it
 * would make the kernel load its module; ping sockets stay subject to net.ipv4.ping_group_range.
 */
static const struct {
        int family, type, protocol;
} allowed_sockets[] = {
        {AF_UNIX, SOCK_STREAM, 0},
        {AF_UNIX, SOCK_DGRAM, 0},
        {AF_UNIX, SOCK_SEQPACKET, 0},
        {AF_INET, SOCK_STREAM, 0},
        {AF_INET, SOCK_STREAM, IPPROTO_TCP},
        {AF_INET, SOCK_DGRAM, 0},
        {AF_INET, SOCK_DGRAM, IPPROTO_UDP},
        {AF_INET, SOCK_DGRAM, IPPROTO_ICMP},
        {AF_INET6, SOCK_STREAM, 0},
        {AF_INET6, SOCK_STREAM, IPPROTO_TCP},
        {AF_INET6, SOCK_DGRAM, 0},
        {AF_INET6, SOCK_DGRAM, IPPROTO_UDP},
        {AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6},
};

static const int allowed_netlink_types[] = {SOCK_RAW, SOCK_DGRAM};
static const uint64_t denied_ioctls[] = {TIOCSTI, TIOCLINUX};

/* Upper bound of the exported program; the kernel's own limit is BPF_MAXINSNS. */
#define PROGRAM_MAX_BYTES (BPF_MAXINSNS * sizeof(struct sock_filter))

static inline void seccomp_releasep(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}

/* Adds one rule; a name unknown on this architecture is skipped (see the top of the file). */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n_cmp,
                    const struct scmp_arg_cmp *cmp)
{
        int nr, r;

        nr = seccomp_syscall_resolve_name(name);
        if (nr < 0) {
                log_debug("seccomp: no syscall '%s' on this architecture, skipped", name);
                return 0;
        }

        r = seccomp_rule_add_exact_array(ctx, action, nr, n_cmp, cmp);
        if (r < 0)
                return log_debug_errno(r, "seccomp: failed to add a rule for '%s': %m", name);
        return 0;
}

/* The "otherwise" rule of a filtered syscall: see the top of the file for why it is `arg >= 0`. */
static int add_otherwise_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned arg)
{
        struct scmp_arg_cmp any = SCMP_CMP64(arg, SCMP_CMP_GE, 0);

        return add_rule(ctx, action, name, 1, &any);
}

static int add_clone_rules(scmp_filter_ctx ctx)
{
        /* Flags are an unsigned long, but the kernel only reads the low 32 bits (as do we). */
        struct scmp_arg_cmp no_ns = SCMP_A0_64(SCMP_CMP_MASKED_EQ, NS_CLONE_FLAGS, 0);
        int r;

        r = add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &no_ns);
        if (r < 0)
                return r;
        return add_otherwise_rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 0);
}

static int add_ioctl_rules(scmp_filter_ctx ctx)
{
        int r;

        for (size_t i = 0; i < ELEMENTSOF(denied_ioctls); i++) {
                struct scmp_arg_cmp cmd = SCMP_A1_64(SCMP_CMP_MASKED_EQ, LOW32, denied_ioctls[i]);

                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &cmd);
                if (r < 0)
                        return r;
        }
        return add_otherwise_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1);
}

static int add_socket_rules(scmp_filter_ctx ctx)
{
        int r;

        /* socket(): the type's low 4 bits are the type, the rest SOCK_NONBLOCK/SOCK_CLOEXEC. */
        for (size_t i = 0; i < ELEMENTSOF(allowed_sockets); i++) {
                struct scmp_arg_cmp cmp[] = {
                        SCMP_A0_64(SCMP_CMP_MASKED_EQ, LOW32, (uint64_t) allowed_sockets[i].family),
                        SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xf, (uint64_t) allowed_sockets[i].type),
                        SCMP_A2_64(SCMP_CMP_MASKED_EQ, LOW32,
                                   (uint64_t) allowed_sockets[i].protocol),
                };

                r = add_rule(ctx, SCMP_ACT_ALLOW, "socket", ELEMENTSOF(cmp), cmp);
                if (r < 0)
                        return r;
        }

        for (size_t j = 0; j < ELEMENTSOF(allowed_netlink_types); j++) {
                struct scmp_arg_cmp cmp[] = {
                        SCMP_A0_64(SCMP_CMP_MASKED_EQ, LOW32, AF_NETLINK),
                        SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xf, (uint64_t) allowed_netlink_types[j]),
                        SCMP_A2_64(SCMP_CMP_MASKED_EQ, LOW32, NETLINK_ROUTE),
                };

                r = add_rule(ctx, SCMP_ACT_ALLOW, "socket", ELEMENTSOF(cmp), cmp);
                if (r < 0)
                        return r;
        }

        r = add_otherwise_rule(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 0);
        if (r < 0)
                return r;

        struct scmp_arg_cmp unix_only = SCMP_A0_64(SCMP_CMP_MASKED_EQ, LOW32, AF_UNIX);

        r = add_rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, &unix_only);
        if (r < 0)
                return r;
        return add_otherwise_rule(ctx, SCMP_ACT_ERRNO(EPERM), "socketpair", 0);
}

static int add_personality_rules(scmp_filter_ctx ctx)
{
        int r;

        for (size_t i = 0; i < ELEMENTSOF(allowed_personalities); i++) {
                struct scmp_arg_cmp p =
                        SCMP_A0_64(SCMP_CMP_MASKED_EQ, LOW32, allowed_personalities[i]);

                r = add_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &p);
                if (r < 0)
                        return r;
        }
        return add_otherwise_rule(ctx, SCMP_ACT_ERRNO(EPERM), "personality", 0);
}

static int add_policy(scmp_filter_ctx ctx)
{
        int r;

        for (size_t i = 0; i < ELEMENTSOF(allow_syscalls); i++) {
                r = add_rule(ctx, SCMP_ACT_ALLOW, allow_syscalls[i], 0, NULL);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < ELEMENTSOF(eperm_syscalls); i++) {
                r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), eperm_syscalls[i], 0, NULL);
                if (r < 0)
                        return r;
        }

        r = add_clone_rules(ctx);
        if (r < 0)
                return r;
        r = add_ioctl_rules(ctx);
        if (r < 0)
                return r;
        r = add_socket_rules(ctx);
        if (r < 0)
                return r;
        return add_personality_rules(ctx);
}

/* libseccomp writes the program to an fd; a memfd holds any size without a reader. */
static int export_program(scmp_filter_ctx ctx, struct sock_fprog *ret)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ struct sock_filter *insns = NULL;
        off_t size;
        ssize_t n;
        int r;

        fd = memfd_create("warren-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;

        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;

        size = lseek(fd, 0, SEEK_END);
        if (size < 0)
                return -errno;
        if (size == 0 || (size_t) size % sizeof(struct sock_filter) != 0)
                return -EBADMSG;
        if ((size_t) size > PROGRAM_MAX_BYTES)
                return -E2BIG;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;

        insns = malloc((size_t) size);
        if (!insns)
                return -ENOMEM;
        n = read_full(fd, insns, (size_t) size);
        if (n < 0)
                return (int) n;
        if (n != size)
                return -EIO;

        ret->len = (unsigned short) ((size_t) size / sizeof(struct sock_filter));
        ret->filter = TAKE_PTR(insns);
        return 0;
}

/*
 * A classic-BPF interpreter for seccomp programs, enough for what libseccomp emits (loads from
 * struct seccomp_data, AND, conditional and unconditional jumps, returns). Anything else, an
 * out-of-range load or a jump out of the program fails the check rather than being guessed at.
 */
static int bpf_run(const struct sock_fprog *prog, const struct seccomp_data *data,
                   uint32_t *ret_action)
{
        uint32_t a = 0;

        for (size_t pc = 0; pc < prog->len; pc++) {
                const struct sock_filter *insn = &prog->filter[pc];
                size_t off;
                bool cond;

                switch (insn->code) {
                case BPF_LD | BPF_W | BPF_ABS:
                        if (insn->k % 4 != 0 || insn->k > sizeof(*data) - 4)
                                return -EBADMSG;
                        memcpy(&a, (const char *) data + insn->k, sizeof(a));
                        continue;
                case BPF_ALU | BPF_AND | BPF_K:
                        a &= insn->k;
                        continue;
                case BPF_JMP | BPF_JA:
                        off = insn->k;
                        if (off >= prog->len - pc - 1)
                                return -EBADMSG;
                        pc += off;
                        continue;
                case BPF_JMP | BPF_JEQ | BPF_K:
                        cond = a == insn->k;
                        break;
                case BPF_JMP | BPF_JGT | BPF_K:
                        cond = a > insn->k;
                        break;
                case BPF_JMP | BPF_JGE | BPF_K:
                        cond = a >= insn->k;
                        break;
                case BPF_JMP | BPF_JSET | BPF_K:
                        cond = (a & insn->k) != 0;
                        break;
                case BPF_RET | BPF_K:
                        *ret_action = insn->k;
                        return 0;
                default:
                        return -EBADMSG;
                }

                off = cond ? insn->jt : insn->jf;
                if (off >= prog->len - pc - 1)
                        return -EBADMSG;
                pc += off;
        }

        return -EBADMSG; /* fell off the end */
}

#define RET_ALLOW  SECCOMP_RET_ALLOW
#define RET_EPERM  (SECCOMP_RET_ERRNO | EPERM)
#define RET_ENOSYS (SECCOMP_RET_ERRNO | ENOSYS)
#define RET_KILL   SECCOMP_RET_KILL_PROCESS

#define CLONE_THREAD_FLAGS                                                                  \
        (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | \
         CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

/*
 * Expected verdicts, checked on every build. Above all the cases where libseccomp's rule ordering
 * matters (filtered syscalls, both sides of every boundary, upper register halves), plus samples
 * of the plain lists and the default.
 */
static const struct policy_check {
        const char *name; /* NULL: use nr */
        int nr;
        uint64_t args[3];
        uint32_t expect;
} policy_checks[] = {
        {"getpid", 0, {0}, RET_ALLOW},
        {"execve", 0, {0}, RET_ALLOW},
        {"mount", 0, {0}, RET_EPERM},
        {"unshare", 0, {CLONE_NEWUSER}, RET_EPERM},
        {"ptrace", 0, {0}, RET_EPERM},
        {"io_uring_setup", 0, {0}, RET_EPERM},
        {"clone3", 0, {0}, RET_ENOSYS},
        {"seccomp", 0, {0}, RET_ENOSYS},
        {NULL, 1000, {0}, RET_ENOSYS},

        {"clone", 0, {SIGCHLD}, RET_ALLOW},
        {"clone", 0, {CLONE_THREAD_FLAGS}, RET_ALLOW},
        {"clone", 0, {UINT64_C(0xffffffff00000000) | SIGCHLD}, RET_ALLOW},
        {"clone", 0, {CLONE_NEWNS | SIGCHLD}, RET_EPERM},
        {"clone", 0, {CLONE_NEWCGROUP}, RET_EPERM},
        {"clone", 0, {CLONE_NEWUTS}, RET_EPERM},
        {"clone", 0, {CLONE_NEWIPC}, RET_EPERM},
        {"clone", 0, {CLONE_NEWUSER | SIGCHLD}, RET_EPERM},
        {"clone", 0, {CLONE_NEWPID}, RET_EPERM},
        {"clone", 0, {CLONE_NEWNET}, RET_EPERM},
        {"clone", 0, {CLONE_NEWTIME}, RET_EPERM},
        {"clone", 0, {UINT64_C(0x100000000) | CLONE_THREAD_FLAGS | CLONE_NEWUSER}, RET_EPERM},

        {"ioctl", 0, {1, FIONREAD}, RET_ALLOW},
        {"ioctl", 0, {1, TIOCSTI - 1}, RET_ALLOW},
        {"ioctl", 0, {1, TIOCSTI + 1}, RET_ALLOW},
        {"ioctl", 0, {1, UINT64_C(0xffffffff)}, RET_ALLOW},
        {"ioctl", 0, {1, UINT64_C(0x100000000)}, RET_ALLOW},
        {"ioctl", 0, {1, TIOCSTI}, RET_EPERM},
        {"ioctl", 0, {1, TIOCLINUX}, RET_EPERM},
        {"ioctl", 0, {1, UINT64_C(0x100000000) | TIOCSTI}, RET_EPERM},
        {"ioctl", 0, {1, UINT64_C(0xffffffff00000000) | TIOCLINUX}, RET_EPERM},

        {"socket", 0, {AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC}, RET_ALLOW},
        {"socket", 0, {AF_INET, SOCK_DGRAM | SOCK_NONBLOCK}, RET_ALLOW},
        {"socket", 0, {AF_INET6, SOCK_STREAM, IPPROTO_TCP}, RET_ALLOW},
        {"socket", 0, {AF_INET, SOCK_DGRAM, IPPROTO_ICMP}, RET_ALLOW},
        {"socket", 0, {AF_INET6, SOCK_SEQPACKET}, RET_EPERM},
        {"socket", 0, {AF_INET, SOCK_STREAM, IPPROTO_SCTP}, RET_EPERM},
        {"socket", 0, {AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP}, RET_EPERM},
        {"socket", 0, {AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE}, RET_EPERM},
        {"socket", 0, {AF_INET, SOCK_STREAM, UINT64_C(0x100000000) | IPPROTO_SCTP}, RET_EPERM},
        {"socket", 0, {UINT64_C(0x100000000) | AF_INET, SOCK_STREAM}, RET_ALLOW},
        {"socket", 0, {AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE}, RET_ALLOW},
        {"socket", 0, {AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE}, RET_ALLOW},
        {"sethostname", 0, {0}, RET_EPERM},
        {"setdomainname", 0, {0}, RET_EPERM},
        {"socket", 0, {AF_INET, SOCK_RAW}, RET_EPERM},
        {"socket", 0, {AF_INET6, SOCK_PACKET}, RET_EPERM},
        {"socket", 0, {AF_PACKET, SOCK_RAW}, RET_EPERM},
        {"socket", 0, {AF_PACKET, SOCK_DGRAM}, RET_EPERM},
        {"socket", 0, {AF_VSOCK, SOCK_STREAM}, RET_EPERM},
        {"socket", 0, {AF_ALG, SOCK_SEQPACKET}, RET_EPERM},
        {"socket", 0, {UINT64_C(0x100000000) | AF_PACKET, SOCK_DGRAM}, RET_EPERM},
        {"socket", 0, {AF_NETLINK, SOCK_RAW, NETLINK_AUDIT}, RET_EPERM},
        {"socket", 0, {AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE}, RET_EPERM},
        {"socket", 0, {AF_NETLINK, SOCK_RAW, UINT64_C(0x100000000) | NETLINK_AUDIT}, RET_EPERM},
        {"socketpair", 0, {AF_UNIX, SOCK_STREAM}, RET_ALLOW},
        {"socketpair", 0, {AF_INET, SOCK_STREAM}, RET_EPERM},

        {"personality", 0, {0}, RET_ALLOW},
        {"personality", 0, {0x8}, RET_ALLOW},
        {"personality", 0, {0x20000}, RET_ALLOW},
        {"personality", 0, {0x20008}, RET_ALLOW},
        {"personality", 0, {0xffffffff}, RET_ALLOW},
        {"personality", 0, {ADDR_NO_RANDOMIZE}, RET_EPERM},
        {"personality", 0, {READ_IMPLIES_EXEC}, RET_EPERM},
        {"personality", 0, {PER_BSD}, RET_EPERM},
        {"personality", 0, {0xfffffffe}, RET_EPERM},
        {"personality", 0, {UINT64_C(0x100000000) | READ_IMPLIES_EXEC}, RET_EPERM},
};

static int check_verdict(const struct sock_fprog *prog, const struct seccomp_data *data,
                         uint32_t expect)
{
        uint32_t action;
        int r;

        r = bpf_run(prog, data, &action);
        if (r < 0)
                return log_debug_errno(r, "seccomp: the program does not run: %m");
        if (action != expect)
                return log_debug_errno(-EPROTO,
                                       "seccomp: arch %#x nr %d args %#llx %#llx %#llx: got %#x, "
                                       "expected %#x",
                                       data->arch, data->nr, (unsigned long long) data->args[0],
                                       (unsigned long long) data->args[1],
                                       (unsigned long long) data->args[2], action, expect);
        return 0;
}

int seccomp_policy_check(const struct sock_fprog *prog)
{
        uint32_t arch = seccomp_arch_native();
        struct seccomp_data data;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(policy_checks); i++) {
                const struct policy_check *c = &policy_checks[i];
                int nr = c->name ? seccomp_syscall_resolve_name(c->name) : c->nr;

                if (nr < 0)
                        continue;
                data = (struct seccomp_data){.nr = nr, .arch = arch};
                memcpy(data.args, c->args, sizeof(c->args));
                r = check_verdict(prog, &data, c->expect);
                if (r < 0)
                        return r;
        }

        /* Any other architecture is killed, whatever the syscall. */
        data = (struct seccomp_data){.nr = 0, .arch = arch ^ 1};
        r = check_verdict(prog, &data, RET_KILL);
        if (r < 0)
                return r;

#if defined(__x86_64__)
        /* x32 syscalls come with the x86_64 audit arch and __X32_SYSCALL_BIT set in nr. */
        data = (struct seccomp_data){.nr = 0x40000000 | 39 /* getpid */, .arch = arch};
        r = check_verdict(prog, &data, RET_KILL);
        if (r < 0)
                return r;
#endif

        return 0;
}

int seccomp_policy_compile(struct sock_fprog *ret)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        struct sock_fprog prog = {0};
        int r;

        assert(ret);

        ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
        if (!ctx)
                return -ENOMEM;

        /* Only the native arch (seccomp_init() adds it): any other, x32 included, is killed. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return r;
        /* A binary tree of syscall numbers instead of a linear list: fewer instructions to run. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return r;

        r = add_policy(ctx);
        if (r < 0)
                return r;

        r = export_program(ctx, &prog);
        if (r < 0)
                return r;

        r = seccomp_policy_check(&prog);
        if (r < 0) {
                free(prog.filter);
                return r;
        }

        *ret = prog;
        return 0;
}
