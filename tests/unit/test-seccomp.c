/* SPDX-License-Identifier: MIT */
/*
 * Tests of the seccomp allowlist against the kernel.
 *
 * Loading a filter cannot be undone, so every check runs in a forked child that sets
 * no_new_privs, loads the program and reports the first failure as text through a pipe (never
 * through cmocka, whose failure handling would unwind into the child's copy of the runner).
 *
 * Denied calls get arguments for which the kernel itself would fail with something other than
 * EPERM (EFAULT, EINVAL, EBADF...), so that EPERM proves the filter answered, and so that nothing
 * happens even if the filter let them through. The few exceptions (unshare, ptrace(TRACEME),
 * socket families) only affect the throwaway child.
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
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

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "sandbox/seccomp-policy.h"
#include "sandbox/seccomp.h"

/* after <setjmp.h>, <stdarg.h> and <stddef.h>, which it needs */
#include <cmocka.h>

#define MSG_MAX 1024

static struct seccomp_program *program;

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT};

/* In the child: where failures are reported. */
static int report_fd = -EBADF;

static _noreturn_ _printf_(1, 2) void child_fail(const char *fmt, ...)
{
        char buf[MSG_MAX];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n > 0)
                (void) write_full(report_fd, buf, strnlen(buf, sizeof(buf)));
        _exit(EXIT_FAILURE);
}

static void expect_errno(const char *what, long r, int expected)
{
        int e = errno;

        if (r != -1 || e != expected)
                child_fail("%s: returned %ld, errno %d (%s); expected -1 with errno %d (%s)", what,
                           r, r == -1 ? e : 0, r == -1 ? strerror(e) : "-", expected,
                           strerror(expected));
}

static void expect_success(const char *what, long r)
{
        if (r < 0)
                child_fail("%s: %s", what, strerror(errno));
}

static void load_filter_or_fail(void)
{
        int r;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) < 0)
                child_fail("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        r = seccomp_program_load(program);
        if (r < 0)
                child_fail("seccomp_program_load: %s", strerror(-r));
}

/*
 * Forks; the child loads the filter (if load), runs fn and exits 0, or reports why not.
 * Returns the child's wait status; ret_msg receives what the child reported.
 */
static int run_child(void (*fn)(void), bool load, char *ret_msg, size_t msg_size)
{
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        int fds[2], status;
        ssize_t n;
        pid_t pid;

        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        rfd = fds[0];
        wfd = fds[1];

        /* What stdio holds must not be written twice. */
        (void) fflush(stdout);
        (void) fflush(stderr);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* cmocka's handlers would turn a crash into a longjmp into its runner. */
                for (size_t i = 0; i < ELEMENTSOF(crash_signals); i++)
                        (void) signal(crash_signals[i], SIG_DFL);
                report_fd = wfd;
                if (load)
                        load_filter_or_fail();
                fn();
                _exit(EXIT_SUCCESS);
        }

        wfd = safe_close(wfd);
        n = read_full(rfd, ret_msg, msg_size - 1);
        ret_msg[n > 0 ? n : 0] = '\0';

        while (waitpid(pid, &status, 0) < 0)
                assert_int_equal(errno, EINTR);
        return status;
}

/* Runs fn under the filter and fails the test with the child's report unless it exits 0. */
static void run_filtered(void (*fn)(void))
{
        char msg[MSG_MAX];
        int status;

        status = run_child(fn, true, msg, sizeof(msg));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("child (wait status %#x): %s", (unsigned) status,
                         msg[0] ? msg : "no report");
}

/*
 * cmocka 1.1.5 reports skip() as "not ok ... # SKIP", which meson's TAP parser counts as a
 * failure; a test that does not apply passes with a TAP comment instead.
 */
static void not_applicable(const char *why)
{
        print_message("# not applicable: %s\n", why);
}

static int group_setup(void **state)
{
        int r = seccomp_program_build(&program);

        if (r < 0) {
                print_error("seccomp_program_build: %s\n", strerror(-r));
                return -1;
        }
        return 0;
}

static int group_teardown(void **state)
{
        program = seccomp_program_free(program);
        return 0;
}

/* ---- building ---- */

static void test_build(void **state)
{
        struct seccomp_program *again = NULL;

        assert_non_null(program);
        assert_non_null(program->prog.filter);
        assert_true(program->prog.len > 0);
        assert_true(program->prog.len <= BPF_MAXINSNS);

        /* libseccomp's prologue: load the arch, kill on mismatch. */
        assert_int_equal(program->prog.filter[0].code, BPF_LD | BPF_W | BPF_ABS);
        assert_int_equal(program->prog.filter[0].k, offsetof(struct seccomp_data, arch));

        /* Each copy is the same program. */
        assert_int_equal(seccomp_program_build(&again), 0);
        assert_int_equal(again->prog.len, program->prog.len);
        assert_memory_equal(again->prog.filter, program->prog.filter,
                            program->prog.len * sizeof(struct sock_filter));
        assert_null(seccomp_program_free(again));
        assert_null(seccomp_program_free(NULL));
}

/* The built-in program is what the policy compiles to now (deterministic, and checked). */
static void test_builtin_matches_policy(void **state)
{
        struct sock_fprog fresh = {0};

        assert_int_equal(seccomp_policy_compile(&fresh), 0);
        assert_int_equal(fresh.len, program->prog.len);
        assert_memory_equal(fresh.filter, program->prog.filter,
                            fresh.len * sizeof(struct sock_filter));
        assert_int_equal(seccomp_policy_check(&program->prog), 0);

        /* The check is not a rubber stamp: flip the final verdict of the program's default. */
        for (unsigned i = 0; i < fresh.len; i++)
                if (fresh.filter[i].code == (BPF_RET | BPF_K) &&
                    fresh.filter[i].k == (SECCOMP_RET_ERRNO | EPERM))
                        fresh.filter[i].k = SECCOMP_RET_ALLOW;
        assert_int_equal(seccomp_policy_check(&fresh), -EPROTO);
        free(fresh.filter);
}

/* Without no_new_privs and without CAP_SYS_ADMIN the kernel refuses, and we say so as -errno. */
static void child_load_without_privs(void)
{
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2] = {};
        int r;

        expect_success("capset (drop all)", syscall(SYS_capset, &header, data));
        r = seccomp_program_load(program);
        if (r != -EACCES)
                child_fail("seccomp_program_load without privileges: %d, expected -EACCES", r);
}

static void test_load_needs_no_new_privs(void **state)
{
        char msg[MSG_MAX];
        int status;

        if (prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) != 0) {
                not_applicable("no_new_privs is already set for the test runner");
                return;
        }
        status = run_child(child_load_without_privs, false, msg, sizeof(msg));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("child (wait status %#x): %s", (unsigned) status, msg);
}

/* ---- what ordinary programs do still works ---- */

static void child_ordinary_calls(void)
{
        _cleanup_free_ char *status = NULL;
        char path[] = "/tmp/test-seccomp-XXXXXX", buf[5] = {};
        int fd, fds[2], wstatus, avail, r;
        struct timespec ts;
        uint64_t rnd;
        void *mem;
        pid_t pid;

        expect_success("getpid", getpid());
        expect_success("gettid", gettid());
        expect_success("clock_gettime", clock_gettime(CLOCK_MONOTONIC, &ts));
        expect_success("getrandom", getrandom(&rnd, sizeof(rnd), 0));

        /* /proc/self/status also tells that the filter is in force. */
        r = read_file_at(AT_FDCWD, "/proc/self/status", 64 * 1024, &status);
        if (r < 0)
                child_fail("read /proc/self/status: %s", strerror(-r));
        if (!strstr(status, "\nSeccomp:\t2\n"))
                child_fail("/proc/self/status does not show seccomp mode 2");

        fd = mkostemp(path, O_CLOEXEC);
        expect_success("mkostemp", fd);
        expect_success("unlink", unlink(path));
        if (write(fd, "data", 4) != 4)
                child_fail("write to temporary file: %s", strerror(errno));
        if (pread(fd, buf, 4, 0) != 4 || memcmp(buf, "data", 4) != 0)
                child_fail("pread from temporary file: %s", strerror(errno));
        expect_success("close", close(fd));

        mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                child_fail("mmap: %s", strerror(errno));
        expect_success("mprotect", mprotect(mem, 4096, PROT_READ));
        expect_success("munmap", munmap(mem, 4096));

        /* fork() is clone(SIGCHLD | CLONE_CHILD_*) underneath */
        pid = fork();
        expect_success("fork", pid);
        if (pid == 0)
                _exit(7);
        expect_success("waitpid", waitpid(pid, &wstatus, 0));
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 7)
                child_fail("forked child: wait status %#x", (unsigned) wstatus);

        expect_success("pipe2", pipe2(fds, O_CLOEXEC));
        if (write(fds[1], "abc", 3) != 3)
                child_fail("write to pipe: %s", strerror(errno));
        expect_success("ioctl(FIONREAD)", ioctl(fds[0], FIONREAD, &avail));
        if (avail != 3)
                child_fail("FIONREAD: %d, expected 3", avail);
        /* The kernel reads cmd as 32 bits: garbage above them does not change FIONREAD. */
        expect_success("ioctl(1 << 32 | FIONREAD)",
                       syscall(SYS_ioctl, fds[0], UINT64_C(0x100000000) | FIONREAD, &avail));
        expect_success("close", close(fds[0]));
        expect_success("close", close(fds[1]));

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        expect_success("socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC)", fd);
        expect_success("close", close(fd));
        fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        /* A kernel without IPv6 answers EAFNOSUPPORT; the filter answers EPERM. */
        if (fd < 0 && errno != EAFNOSUPPORT)
                child_fail("socket(AF_INET6, SOCK_DGRAM): %s", strerror(errno));
        if (fd >= 0)
                expect_success("close", close(fd));
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        expect_success("socket(AF_UNIX, SOCK_SEQPACKET)", fd);
        expect_success("close", close(fd));
        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        expect_success("socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)", fd);
        expect_success("close", close(fd));
        expect_success("socketpair(AF_UNIX)",
                       socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        expect_success("close", close(fds[0]));
        expect_success("close", close(fds[1]));

        expect_success("personality(0xffffffff)", personality(0xffffffff));
        expect_success("personality(PER_LINUX)", personality(PER_LINUX));
}

static void test_ordinary_calls(void **state)
{
        run_filtered(child_ordinary_calls);
}

static void *thread_main(void *arg)
{
        *(int *) arg = 42;
        return arg;
}

/* glibc 2.36 tries clone3 first, gets ENOSYS and falls back to clone(CLONE_THREAD | ...). */
static void child_threads(void)
{
        pthread_t thread;
        int value = 0, r;
        void *result;

        r = pthread_create(&thread, NULL, thread_main, &value);
        if (r != 0)
                child_fail("pthread_create: %s", strerror(r));
        r = pthread_join(thread, &result);
        if (r != 0)
                child_fail("pthread_join: %s", strerror(r));
        if (value != 42 || result != &value)
                child_fail("the thread did not run");
}

static void test_threads(void **state)
{
        run_filtered(child_threads);
}

/* A real program after execve(), which keeps the filter. */
static void child_exec_shell(void)
{
        static const char script[] = "while read k v; do "
                                     "[ \"$k\" = Seccomp: ] && [ \"$v\" = 2 ] && exit 3; "
                                     "done < /proc/self/status; exit 1";
        int wstatus;
        pid_t pid;

        pid = fork();
        expect_success("fork", pid);
        if (pid == 0) {
                execl("/bin/sh", "sh", "-c", script, (char *) NULL);
                _exit(127);
        }
        expect_success("waitpid", waitpid(pid, &wstatus, 0));
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 3)
                child_fail("/bin/sh under the filter: wait status %#x", (unsigned) wstatus);
}

static void test_exec(void **state)
{
        if (access("/bin/sh", X_OK) < 0) {
                not_applicable("no /bin/sh");
                return;
        }
        run_filtered(child_exec_shell);
}

/* ---- what is refused ---- */

#define PTR(x) ((unsigned long) (x))

static const struct denied_call {
        const char *name;
        long nr;
        unsigned long args[6];
} denied_calls[] = {
        /* kernel's own answer for these arguments in the comment */
        {"mount(NULL, NULL, NULL)", __NR_mount, {0}},              /* EFAULT */
        {"umount2(NULL, ~0)", __NR_umount2, {0, ~0UL}},            /* EINVAL */
        {"pivot_root(NULL, NULL)", __NR_pivot_root, {0}},          /* EFAULT */
        {"chroot(NULL)", __NR_chroot, {0}},                        /* EFAULT */
        {"unshare(CLONE_NEWUSER)", __NR_unshare, {CLONE_NEWUSER}}, /* 0 */
        {"setns(-1, 0)", __NR_setns, {~0UL}},                      /* EBADF */
        {"ptrace(PTRACE_TRACEME)", __NR_ptrace, {0}},              /* 0 */
        {"process_vm_readv(flags ~0)", __NR_process_vm_readv, {0, 0, 0, 0, 0, ~0UL}},
        {"process_vm_writev(flags ~0)", __NR_process_vm_writev, {0, 0, 0, 0, 0, ~0UL}},
        {"bpf(-1, NULL, 0)", __NR_bpf, {~0UL}}, /* EINVAL */
        {"perf_event_open(NULL, flags ~0)", __NR_perf_event_open, {0, 0, ~0UL, ~0UL, ~0UL}},
        {"userfaultfd(~0)", __NR_userfaultfd, {~0UL}},                   /* EINVAL */
        {"keyctl(-1)", __NR_keyctl, {~0UL}},                             /* EOPNOTSUPP */
        {"add_key(NULL...)", __NR_add_key, {0}},                         /* EFAULT */
        {"request_key(NULL...)", __NR_request_key, {0}},                 /* EFAULT */
        {"open_by_handle_at(-1, NULL)", __NR_open_by_handle_at, {~0UL}}, /* EBADF */
        {"name_to_handle_at(flags ~0)", __NR_name_to_handle_at, {~0UL, 0, 0, 0, ~0UL}},
        {"init_module(NULL, 0)", __NR_init_module, {0}},                    /* ENOEXEC */
        {"finit_module(-1, flags ~0)", __NR_finit_module, {~0UL, 0, ~0UL}}, /* EINVAL */
        {"delete_module(NULL)", __NR_delete_module, {0}},                   /* EFAULT */
        /* 1000 segments with a bogus arch: EINVAL; never nr_segments 0, which unloads */
        {"kexec_load(bogus)", __NR_kexec_load, {0, 1000, 0, 0x00ff0100}},
        {"kexec_file_load(flags ~0)", __NR_kexec_file_load, {~0UL, ~0UL, 0, 0, ~0UL}},
        {"reboot(bad magic)", __NR_reboot, {0, 0, 0, 0}},          /* EINVAL */
        {"swapon(NULL, ~0)", __NR_swapon, {0, ~0UL}},              /* EINVAL */
        {"swapoff(NULL)", __NR_swapoff, {0}},                      /* EFAULT */
        {"io_uring_setup(0, NULL)", __NR_io_uring_setup, {0}},     /* EINVAL */
        {"io_uring_enter(-1)", __NR_io_uring_enter, {~0UL}},       /* EBADF */
        {"io_uring_register(-1)", __NR_io_uring_register, {~0UL}}, /* EBADF */
        {"fsopen(NULL, ~0)", __NR_fsopen, {0, ~0UL}},              /* EINVAL */
        {"fsmount(-1, ~0)", __NR_fsmount, {~0UL, ~0UL}},           /* EINVAL */
        {"fspick(flags ~0)", __NR_fspick, {~0UL, 0, ~0UL}},        /* EINVAL */
        {"move_mount(flags ~0)", __NR_move_mount, {~0UL, 0, ~0UL, 0, ~0UL}},
        {"open_tree(flags ~0)", __NR_open_tree, {~0UL, 0, ~0UL}},         /* EINVAL */
        {"mount_setattr(flags ~0)", __NR_mount_setattr, {~0UL, 0, ~0UL}}, /* EINVAL */
        {"fsconfig(-1)", __NR_fsconfig, {~0UL}},                          /* EBADF */
        {"acct(bad pointer)", __NR_acct, {1}},                   /* EFAULT; acct(NULL) stops it */
        {"settimeofday(NULL, bad)", __NR_settimeofday, {0, 1}},  /* EFAULT */
        {"clock_settime(-1)", __NR_clock_settime, {~0UL, 0}},    /* EINVAL */
        {"clock_adjtime(-1)", __NR_clock_adjtime, {~0UL, 0}},    /* EINVAL */
        {"adjtimex(NULL)", __NR_adjtimex, {0}},                  /* EFAULT */
        {"syslog(-1)", __NR_syslog, {~0UL}},                     /* EINVAL */
        {"fanotify_init(~0)", __NR_fanotify_init, {~0UL}},       /* EINVAL */
        {"kcmp(-1, -1)", __NR_kcmp, {~0UL, ~0UL}},               /* ESRCH */
        {"pidfd_getfd(-1)", __NR_pidfd_getfd, {~0UL, ~0UL}},     /* EBADF */
        {"process_madvise(-1)", __NR_process_madvise, {~0UL}},   /* EBADF */
        {"process_mrelease(-1)", __NR_process_mrelease, {~0UL}}, /* EBADF */
        {"quotactl(0, NULL)", __NR_quotactl, {0}},               /* EFAULT */
#ifdef __NR_iopl
        {"iopl(4)", __NR_iopl, {4}},                 /* EINVAL */
        {"ioperm(~0)", __NR_ioperm, {~0UL, 1, 0}},   /* EINVAL */
        {"modify_ldt(-1)", __NR_modify_ldt, {~0UL}}, /* ENOSYS */
        {"uselib(NULL)", __NR_uselib, {0}},          /* EFAULT */
        {"sysfs(0)", __NR_sysfs, {0}},               /* EINVAL */
#endif
        /* vhangup() is on the list but not called: if it got through it would hang up the tty */
};

static void child_denied_calls(void)
{
        for (size_t i = 0; i < ELEMENTSOF(denied_calls); i++) {
                const struct denied_call *c = &denied_calls[i];

                expect_errno(c->name,
                             syscall(c->nr, c->args[0], c->args[1], c->args[2], c->args[3],
                                     c->args[4], c->args[5]),
                             EPERM);
        }
}

static void test_denied_calls(void **state)
{
        run_filtered(child_denied_calls);
}

static const unsigned long ns_flags[] = {
        CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
        CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET, CLONE_NEWTIME,
};

/* A raw clone that would create a child if allowed: the child leaves at once. */
static void expect_clone_refused(const char *what, unsigned long flags)
{
        long r = syscall(SYS_clone, flags, 0UL, 0UL, 0UL, 0UL);

        if (r == 0)
                _exit(EXIT_SUCCESS);
        if (r > 0) {
                (void) waitpid((pid_t) r, NULL, 0);
                child_fail("%s: created a child", what);
        }
        expect_errno(what, r, EPERM);
}

static void child_clone(void)
{
        char what[64];

        expect_clone_refused("clone(CLONE_NEWUSER | SIGCHLD)", CLONE_NEWUSER | SIGCHLD);
        expect_clone_refused("clone(CLONE_NEWNS | SIGCHLD)", CLONE_NEWNS | SIGCHLD);

        /* Each flag with CLONE_THREAD but no CLONE_SIGHAND, which the kernel rejects (EINVAL). */
        for (size_t i = 0; i < ELEMENTSOF(ns_flags); i++) {
                (void) snprintf(what, sizeof(what), "clone(%#lx | CLONE_THREAD)", ns_flags[i]);
                expect_errno(what,
                             syscall(SYS_clone, ns_flags[i] | CLONE_THREAD, 0UL, 0UL, 0UL, 0UL),
                             EPERM);
        }
        expect_errno(
                "clone(1 << 32 | CLONE_NEWUSER | CLONE_THREAD)",
                syscall(SYS_clone, (1UL << 32) | CLONE_NEWUSER | CLONE_THREAD, 0UL, 0UL, 0UL, 0UL),
                EPERM);

        /* clone3 carries its flags in memory, where a filter cannot look: ENOSYS for libc. */
        expect_errno("clone3(NULL, 0)", syscall(__NR_clone3, NULL, 0UL), ENOSYS);
}

static void test_clone(void **state)
{
        run_filtered(child_clone);
}

static void child_ioctl(void)
{
        int fds[2];
        char c = 'x';

        expect_success("pipe2", pipe2(fds, O_CLOEXEC));
        /* On a pipe the kernel would answer ENOTTY. */
        expect_errno("ioctl(TIOCSTI)", ioctl(fds[0], TIOCSTI, &c), EPERM);
        expect_errno("ioctl(TIOCLINUX)", ioctl(fds[0], TIOCLINUX, &c), EPERM);
        expect_errno("ioctl(0x100005412)",
                     syscall(SYS_ioctl, fds[0], UINT64_C(0x100000000) | TIOCSTI, &c), EPERM);
        expect_errno("ioctl(0xffffffff0000541c)",
                     syscall(SYS_ioctl, fds[0], UINT64_C(0xffffffff00000000) | TIOCLINUX, &c),
                     EPERM);
        /* Neighbours are not caught: the kernel's own answer, ENOTTY. */
        expect_errno("ioctl(TIOCSTI + 1)", ioctl(fds[0], TIOCSTI + 1, &c), ENOTTY);
}

static void test_ioctl(void **state)
{
        run_filtered(child_ioctl);
}

static void child_socket(void)
{
        static const struct {
                const char *what;
                uint64_t family, type, protocol;
        } denied[] = {
                {"AF_PACKET, SOCK_RAW", AF_PACKET, SOCK_RAW, 0},
                {"AF_PACKET, SOCK_DGRAM", AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0},
                {"1 << 32 | AF_PACKET", UINT64_C(0x100000000) | AF_PACKET, SOCK_DGRAM, 0},
                {"AF_INET, SOCK_RAW", AF_INET, SOCK_RAW, IPPROTO_ICMP},
                {"AF_INET6, SOCK_RAW", AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6},
                {"AF_INET, SOCK_PACKET", AF_INET, SOCK_PACKET, 0},
                {"AF_VSOCK, SOCK_STREAM", AF_VSOCK, SOCK_STREAM, 0},
                {"AF_ALG, SOCK_SEQPACKET", AF_ALG, SOCK_SEQPACKET, 0},
                {"AF_KEY, SOCK_RAW", AF_KEY, SOCK_RAW, 2 /* PF_KEY_V2 */},
                {"AF_XDP, SOCK_RAW", AF_XDP, SOCK_RAW, 0},
                {"AF_NETLINK, NETLINK_AUDIT", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT},
                {"AF_NETLINK, 1 << 32 | NETLINK_AUDIT", AF_NETLINK, SOCK_RAW,
                 UINT64_C(0x100000000) | NETLINK_AUDIT},
                {"AF_NETLINK, SOCK_STREAM", AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE},
        };

        char what[128];
        int fds[2];

        for (size_t i = 0; i < ELEMENTSOF(denied); i++) {
                long r = syscall(SYS_socket, denied[i].family, denied[i].type, denied[i].protocol);

                (void) snprintf(what, sizeof(what), "socket(%s)", denied[i].what);
                if (r >= 0)
                        (void) close((int) r);
                expect_errno(what, r, EPERM);
        }

        expect_errno("socketpair(AF_INET)", socketpair(AF_INET, SOCK_STREAM, 0, fds), EPERM);
        expect_errno("socketpair(AF_NETLINK)", socketpair(AF_NETLINK, SOCK_RAW, 0, fds), EPERM);
}

static void test_socket(void **state)
{
        run_filtered(child_socket);
}

static void child_personality(void)
{
        expect_success("personality(0xffffffff)", personality(0xffffffff));
        expect_success("personality(PER_LINUX32)", personality(PER_LINUX32));
        expect_success("personality(PER_LINUX | UNAME26)", personality(PER_LINUX | UNAME26));
        expect_success("personality(PER_LINUX)", personality(PER_LINUX));
        expect_errno("personality(ADDR_NO_RANDOMIZE)", personality(ADDR_NO_RANDOMIZE), EPERM);
        expect_errno("personality(READ_IMPLIES_EXEC)", personality(READ_IMPLIES_EXEC), EPERM);
        expect_errno("personality(1 << 32 | READ_IMPLIES_EXEC)",
                     syscall(SYS_personality, (1UL << 32) | READ_IMPLIES_EXEC), EPERM);
        if (personality(0xffffffff) != PER_LINUX)
                child_fail("the personality changed");
}

static void test_personality(void **state)
{
        run_filtered(child_personality);
}

static void child_default_enosys(void)
{
        uint32_t action = SECCOMP_RET_ALLOW;

        expect_errno("syscall 1000", syscall(1000), ENOSYS);
        /* A real syscall that is on no list: the kernel would answer 0. */
        expect_errno("seccomp(SECCOMP_GET_ACTION_AVAIL)",
                     syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action), ENOSYS);
}

static void test_default_enosys(void **state)
{
        run_filtered(child_default_enosys);
}

#if defined(__x86_64__)
static void child_x32(void)
{
        (void) syscall(__X32_SYSCALL_BIT | __NR_getpid);
        child_fail("an x32 syscall returned");
}

/* getpid through the i386 entry point, which a 64-bit process can still reach. */
static long int80_getpid(void)
{
        long r = 20; /* getpid in the i386 table */

        __asm__ volatile("int $0x80" : "+a"(r) : : "memory");
        return r;
}

static void child_int80_probe(void)
{
        if (int80_getpid() != getpid())
                child_fail("int $0x80 does not reach getpid");
}

static void child_int80(void)
{
        child_fail("an i386 syscall returned %ld", int80_getpid());
}

static void expect_killed_by_sigsys(void (*fn)(void))
{
        char msg[MSG_MAX];
        int status;

        status = run_child(fn, true, msg, sizeof(msg));
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
                fail_msg("child (wait status %#x): %s", (unsigned) status,
                         msg[0] ? msg : "not killed by SIGSYS");
}
#endif

/* x32 numbers come with the x86_64 audit arch and bit 30 set: libseccomp kills them. */
static void test_x32_killed(void **state)
{
#if defined(__x86_64__)
        expect_killed_by_sigsys(child_x32);
#else
        not_applicable("not x86_64");
#endif
}

/* The i386 ABI (int $0x80 from a 64-bit process) is another arch: killed. */
static void test_i386_killed(void **state)
{
#if defined(__x86_64__)
        char msg[MSG_MAX];
        int status;

        /* Some kernels and hypervisors have no i386 entry at all (SIGSEGV): nothing to test. */
        status = run_child(child_int80_probe, false, msg, sizeof(msg));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                not_applicable("no i386 syscall entry here");
                return;
        }
        expect_killed_by_sigsys(child_int80);
#else
        not_applicable("not x86_64");
#endif
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_build),
                cmocka_unit_test(test_builtin_matches_policy),
                cmocka_unit_test(test_load_needs_no_new_privs),
                cmocka_unit_test(test_ordinary_calls),
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_exec),
                cmocka_unit_test(test_denied_calls),
                cmocka_unit_test(test_clone),
                cmocka_unit_test(test_ioctl),
                cmocka_unit_test(test_socket),
                cmocka_unit_test(test_personality),
                cmocka_unit_test(test_default_enosys),
                cmocka_unit_test(test_x32_killed),
                cmocka_unit_test(test_i386_killed),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
