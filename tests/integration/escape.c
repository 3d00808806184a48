/* SPDX-License-Identifier: MIT */
/*
 * escape: the attack primitives of the adversarial tests (test_adversarial.py).
 *
 * `escape SUBCOMMAND [ARG...]` makes one attempt to get out of the sandbox, or to hurt the host,
 * with the real system calls (raw syscall() where libc has no wrapper, or where libc would
 * sanitise the arguments) and prints exactly one line on stdout:
 *
 *   BLOCKED <ERRNO-NAME> [detail]  exit 0: refused. ERRNO-NAME is strerrorname_np(), or a
 *                                  word (EMPTY, MASKED) where nothing failed and nothing leaked.
 *   ESCAPED <detail>               exit 1: the attack worked; the sandbox has a hole.
 *   ERROR <detail>                 exit 2: bad usage, or the helper itself failed.
 *
 * The tests assert on both the exit code and the errno, so a refusal for the wrong reason is
 * noticed as well. Attacks that would do damage if they worked stop at the step that proves the
 * point (a sysctl opened for writing is never written; reboot is asked an invalid command).
 * Destructive ones (forkbomb, memory, spin, fill-*) are meant to be cut short by the limits.
 *
 * Built static, libc only: the tests copy it into a bare busybox root. It deliberately does not
 * use the project's headers; it is the adversary, not part of Warren.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/if_alg.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <linux/vm_sockets.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* A cap on the loops that must be stopped by a limit: reaching it means the limit did not act. */
#define MAX_FILES  10000000UL
#define MAX_FORKS  100000UL
#define FILL_CHUNK (1 << 20)

enum verdict {
        VERDICT_BLOCKED = 0,
        VERDICT_ESCAPED = 1,
        VERDICT_ERROR = 2,
};

__attribute__((format(printf, 2, 0))) static int say(const char *word, const char *fmt, va_list ap)
{
        char line[512];

        (void) vsnprintf(line, sizeof(line), fmt, ap);
        if (printf("%s%s%s\n", word, line[0] ? " " : "", line) < 0 || fflush(stdout) != 0)
                return -EIO;
        return 0;
}

__attribute__((format(printf, 2, 3))) static int blocked(int err, const char *fmt, ...)
{
        const char *name = strerrorname_np(err);
        char word[64];
        va_list ap;

        (void) snprintf(word, sizeof(word), "BLOCKED %s", name ? name : "E?");
        va_start(ap, fmt);
        (void) say(word, fmt, ap);
        va_end(ap);
        return VERDICT_BLOCKED;
}

/* Nothing failed, but nothing leaked either: `word` says why (EMPTY, MASKED, ...). */
__attribute__((format(printf, 2, 3))) static int blocked_word(const char *word, const char *fmt,
                                                              ...)
{
        char w[64];
        va_list ap;

        (void) snprintf(w, sizeof(w), "BLOCKED %s", word);
        va_start(ap, fmt);
        (void) say(w, fmt, ap);
        va_end(ap);
        return VERDICT_BLOCKED;
}

__attribute__((format(printf, 1, 2))) static int escaped(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) say("ESCAPED", fmt, ap);
        va_end(ap);
        return VERDICT_ESCAPED;
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) say("ERROR", fmt, ap);
        va_end(ap);
        return VERDICT_ERROR;
}

/* The verdict on a call that must fail: r < 0 with errno set, or it worked. */
static int expect_failure(long r, const char *what)
{
        if (r < 0)
                return blocked(errno, "%s", what);
        return escaped("%s returned %ld", what, r);
}

static int parse_long(const char *s, long *ret)
{
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 0);
        if (errno != 0 || end == s || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

struct name_value {
        const char *name;
        unsigned long value;
};

static int lookup(const struct name_value *table, size_t n, const char *name, unsigned long *ret)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(table[i].name, name) == 0) {
                        *ret = table[i].value;
                        return 0;
                }
        return -ENOENT;
}

static const struct name_value namespaces[] = {
        {"user", CLONE_NEWUSER},     {"mnt", CLONE_NEWNS},    {"net", CLONE_NEWNET},
        {"pid", CLONE_NEWPID},       {"uts", CLONE_NEWUTS},   {"ipc", CLONE_NEWIPC},
        {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
};

static int ns_flag(const char *name, unsigned long *ret)
{
        return lookup(namespaces, ELEMENTSOF(namespaces), name, ret);
}

/* ---- mounts and roots ---- */

/*
 * A new file system (tmpfs over /tmp; proc; a v1 cgroup hierarchy, whose release_agent ran as root
 * on the host: CVE-2022-0492) or a bind of the root elsewhere.
 */
static int cmd_mount(int argc, char **argv)
{
        const char *what = argc > 1 ? argv[1] : "tmpfs";

        if (strcmp(what, "tmpfs") == 0)
                return expect_failure(mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m"), "tmpfs");
        if (strcmp(what, "proc") == 0)
                return expect_failure(mount("proc", "/tmp", "proc", 0, NULL), "proc");
        if (strcmp(what, "cgroup") == 0)
                return expect_failure(mount("cgroup", "/tmp", "cgroup", 0, "memory"), "cgroup");
        if (strcmp(what, "bind") == 0)
                return expect_failure(mount("/", "/tmp", NULL, MS_BIND | MS_REC, NULL), "bind");
        return fail("usage: mount [tmpfs|proc|cgroup|bind]");
}

static int cmd_remount(int argc, char **argv)
{
        return expect_failure(mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL),
                              "remount / read-write");
}

static int cmd_umount(int argc, char **argv)
{
        const char *path = argc > 1 ? argv[1] : "/proc";

        return expect_failure(umount2(path, MNT_DETACH), path);
}

static int cmd_pivot_root(int argc, char **argv)
{
        return expect_failure(syscall(SYS_pivot_root, "/tmp", "/tmp"), "pivot_root");
}

static int cmd_chroot(int argc, char **argv)
{
        return expect_failure(chroot("/tmp"), "chroot /tmp");
}

static int cmd_open_tree(int argc, char **argv)
{
        return expect_failure(syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */),
                              "open_tree /");
}

static int cmd_fsopen(int argc, char **argv)
{
        return expect_failure(syscall(SYS_fsopen, "tmpfs", 0), "fsopen tmpfs");
}

/* ---- namespaces ---- */

static int cmd_unshare(int argc, char **argv)
{
        unsigned long flag;

        if (argc < 2 || ns_flag(argv[1], &flag) < 0)
                return fail("usage: unshare user|mnt|net|pid|uts|ipc|cgroup|time");
        return expect_failure(unshare((int) flag), argv[1]);
}

/* clone() without libc, which would refuse nothing but hides the raw flags. */
static int cmd_clone(int argc, char **argv)
{
        unsigned long flag;
        long pid;
        int status;

        if (argc < 2 || ns_flag(argv[1], &flag) < 0)
                return fail("usage: clone NAMESPACE [hi]");
        flag |= SIGCHLD;
        /* The kernel reads only the low 32 bits: garbage above must not steer past the filter. */
        if (argc > 2 && strcmp(argv[2], "hi") == 0)
                flag |= 0xdead00000000UL;
        pid = syscall(SYS_clone, flag, NULL, NULL, NULL, 0UL);
        if (pid < 0)
                return blocked(errno, "clone %s", argv[1]);
        if (pid == 0)
                _exit(0);
        (void) waitpid((pid_t) pid, &status, 0);
        return escaped("clone(%s) created pid %ld", argv[1], pid);
}

static int cmd_clone3(int argc, char **argv)
{
        unsigned long flag = CLONE_NEWUSER;
        struct clone_args args = {0};
        long pid;
        int status;

        if (argc > 1 && ns_flag(argv[1], &flag) < 0)
                return fail("usage: clone3 [NAMESPACE]");
        args.flags = flag;
        args.exit_signal = SIGCHLD;
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return blocked(errno, "clone3");
        if (pid == 0)
                _exit(0);
        (void) waitpid((pid_t) pid, &status, 0);
        return escaped("clone3 created pid %ld", pid);
}

static int cmd_setns(int argc, char **argv)
{
        const char *path = argc > 1 ? argv[1] : "/proc/self/ns/net";
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return blocked(errno, "open %s", path);
        r = setns(fd, 0);
        (void) close(fd);
        return expect_failure(r, "setns");
}

/* ---- other processes ---- */

static int cmd_ptrace(int argc, char **argv)
{
        long pid = 1;

        if (argc < 2)
                return fail("usage: ptrace attach [PID] | traceme");
        if (strcmp(argv[1], "traceme") == 0)
                return expect_failure(syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0), "traceme");
        if (strcmp(argv[1], "attach") != 0 || (argc > 2 && parse_long(argv[2], &pid) < 0))
                return fail("usage: ptrace attach [PID] | traceme");
        return expect_failure(syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0), "attach");
}

static int cmd_kill(int argc, char **argv)
{
        long pid, sig = SIGKILL;

        if (argc < 2 || parse_long(argv[1], &pid) < 0 ||
            (argc > 2 && parse_long(argv[2], &sig) < 0))
                return fail("usage: kill PID [SIGNAL]");
        return expect_failure(kill((pid_t) pid, (int) sig), "kill");
}

static int cmd_process_vm_readv(int argc, char **argv)
{
        char buf[64];
        long pid = 1;
        struct iovec local = {.iov_base = buf, .iov_len = sizeof(buf)};
        /* Any address will do: the permission check comes before the address is looked at. */
        struct iovec remote = {.iov_base = (void *) 0x400000, .iov_len = sizeof(buf)};

        if (argc > 1 && parse_long(argv[1], &pid) < 0)
                return fail("usage: process-vm-readv [PID]");
        return expect_failure(syscall(SYS_process_vm_readv, pid, &local, 1UL, &remote, 1UL, 0UL),
                              "process_vm_readv");
}

static int cmd_pidfd_getfd(int argc, char **argv)
{
        long pid = 1, pidfd, r;

        if (argc > 1 && parse_long(argv[1], &pid) < 0)
                return fail("usage: pidfd-getfd [PID]");
        pidfd = syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return blocked(errno, "pidfd_open");
        r = syscall(SYS_pidfd_getfd, pidfd, 3, 0);
        (void) close((int) pidfd);
        return expect_failure(r, "pidfd_getfd");
}

/* ---- files ---- */

static int open_flags(const char *mode, int *ret)
{
        if (strcmp(mode, "r") == 0)
                *ret = O_RDONLY;
        else if (strcmp(mode, "w") == 0)
                *ret = O_WRONLY;
        else if (strcmp(mode, "rw") == 0)
                *ret = O_RDWR;
        else
                return -EINVAL;
        return 0;
}

/*
 * Opens PATH and stops there: for a sysctl or a host binary, being able to open it for writing is
 * the hole; writing would do the damage.
 */
static int cmd_open(int argc, char **argv)
{
        int flags = O_RDONLY, fd;

        if (argc < 2 || (argc > 2 && open_flags(argv[2], &flags) < 0))
                return fail("usage: open PATH [r|w|rw]");
        fd = open(argv[1], flags | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return blocked(errno, "open %s", argv[1]);
        (void) close(fd);
        return escaped("opened %s (%s)", argv[1], argc > 2 ? argv[2] : "r");
}

static int cmd_readlink(int argc, char **argv)
{
        char buf[PATH_MAX];
        ssize_t n;

        if (argc < 2)
                return fail("usage: readlink PATH");
        n = readlink(argv[1], buf, sizeof(buf) - 1);
        if (n < 0)
                return blocked(errno, "readlink %s", argv[1]);
        buf[n] = '\0';
        return escaped("%s -> %s", argv[1], buf);
}

/* A file that must not leak: absent, unreadable, or empty (masked with /dev/null). */
static int cmd_read(int argc, char **argv)
{
        char buf[4096];
        size_t total = 0;
        ssize_t n;
        int fd;

        if (argc < 2)
                return fail("usage: read PATH");
        fd = open(argv[1], O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return blocked(errno, "open %s", argv[1]);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                total += (size_t) n;
        if (n < 0) {
                int err = errno;
                (void) close(fd);
                return blocked(err, "read %s", argv[1]);
        }
        (void) close(fd);
        if (total == 0)
                return blocked_word("EMPTY", "%s", argv[1]);
        return escaped("read %zu bytes from %s", total, argv[1]);
}

static int cmd_create(int argc, char **argv)
{
        int fd;

        if (argc < 2)
                return fail("usage: create PATH");
        fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return blocked(errno, "create %s", argv[1]);
        (void) close(fd);
        return escaped("created %s", argv[1]);
}

static int cmd_mkdir(int argc, char **argv)
{
        if (argc < 2)
                return fail("usage: mkdir PATH");
        return expect_failure(mkdir(argv[1], 0755), argv[1]);
}

static int cmd_mknod(int argc, char **argv)
{
        const char *path = argc > 1 ? argv[1] : "/tmp/mem";

        /* 1:1 is /dev/mem: a device node the sandbox could open would be all of memory. */
        return expect_failure(mknod(path, S_IFCHR | 0666, makedev(1, 1)), "mknod c 1 1");
}

static int cmd_chown(int argc, char **argv)
{
        if (argc < 2)
                return fail("usage: chown PATH");
        return expect_failure(chown(argv[1], 0, 0), "chown 0:0");
}

/* An fd to a host file (--stdin FILE) must not let the program change the file's mode. */
static int cmd_fchmod(int argc, char **argv)
{
        long fd;

        if (argc < 2 || parse_long(argv[1], &fd) < 0)
                return fail("usage: fchmod FD");
        return expect_failure(fchmod((int) fd, 0777), "fchmod 0777");
}

/* /proc/sysrq-trigger must be gone or /dev/null; it is never written. */
static int cmd_sysrq(int argc, char **argv)
{
        struct stat st;
        int fd;

        fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return blocked(errno, "open /proc/sysrq-trigger");
        if (fstat(fd, &st) < 0) {
                int err = errno;
                (void) close(fd);
                return fail("fstat: %s", strerror(err));
        }
        (void) close(fd);
        if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
                return blocked_word("MASKED", "/proc/sysrq-trigger is /dev/null");
        return escaped("/proc/sysrq-trigger opened for writing (mode %o)", st.st_mode);
}

/* Every fd beyond stdio that the program inherited. */
static int cmd_fds(int argc, char **argv)
{
        for (int fd = 3; fd < 65536; fd++) {
                char link[64], target[PATH_MAX];
                ssize_t n;

                if (fcntl(fd, F_GETFD) < 0)
                        continue;
                (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                n = readlink(link, target, sizeof(target) - 1);
                target[n < 0 ? 0 : n] = '\0';
                return escaped("fd %d is open (%s)", fd, target);
        }
        return blocked(EBADF, "no fd beyond 2");
}

static int cmd_fstat(int argc, char **argv)
{
        struct stat st;
        long fd;

        if (argc < 2 || parse_long(argv[1], &fd) < 0)
                return fail("usage: fstat FD");
        if (fstat((int) fd, &st) < 0)
                return blocked(errno, "fstat %ld", fd);
        return escaped("fd %ld is open: inode %ju, size %jd", fd, (uintmax_t) st.st_ino,
                       (intmax_t) st.st_size);
}

static int copy_self(const char *dst, int *ret_fd)
{
        char buf[65536];
        ssize_t n;
        int in, out;

        in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;
        out = open(dst, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        if (out < 0) {
                int err = errno;
                (void) close(in);
                return -err;
        }
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t) n) != n) {
                        int err = errno ? errno : EIO;
                        (void) close(in);
                        (void) close(out);
                        return -err;
                }
        (void) close(in);
        if (n < 0) {
                int err = errno;
                (void) close(out);
                return -err;
        }
        *ret_fd = out;
        return 0;
}

/*
 * The set-uid trick: a copy of ourselves, mode 4755, in a directory the host shares. Making it
 * root's must fail; running it must not raise the effective uid (no_new_privs, nosuid).
 * Leaves DIR/suid behind for the host to inspect.
 */
static int cmd_setuid_file(int argc, char **argv)
{
        char path[PATH_MAX];
        pid_t pid;
        int fd, r, status, chown_errno;

        if (argc < 2)
                return fail("usage: setuid-file DIR");
        (void) snprintf(path, sizeof(path), "%s/suid", argv[1]);
        r = copy_self(path, &fd);
        if (r < 0)
                return fail("cannot copy to %s: %s", path, strerror(-r));
        if (fchmod(fd, 04755) < 0) {
                int err = errno;
                (void) close(fd);
                return fail("fchmod 4755: %s", strerror(err));
        }
        if (fchown(fd, 0, 0) == 0) {
                (void) close(fd);
                return escaped("%s is now owned by root, mode 4755", path);
        }
        chown_errno = errno;
        (void) close(fd);

        pid = fork();
        if (pid < 0)
                return fail("fork: %s", strerror(errno));
        if (pid == 0) {
                char *args[] = {path, "euid", NULL};
                (void) execv(path, args);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return fail("waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
                return fail("cannot run %s (status %#x)", path, status);
        if (WEXITSTATUS(status) != 0)
                return escaped("running %s raised the effective uid", path);
        return blocked(chown_errno, "chown to root; the set-uid copy ran as %u", getuid());
}

/* Exit status 0 when the effective uid is the real one (the set-uid bit did nothing). */
static int cmd_euid(int argc, char **argv)
{
        return geteuid() == getuid() ? 0 : 1;
}

/* ---- identity, host, clock ---- */

static int cmd_setid(int argc, char **argv)
{
        gid_t none = 0;

        if (argc < 2)
                return fail("usage: setid uid|gid|groups|resuid");
        if (strcmp(argv[1], "uid") == 0)
                return expect_failure(setuid(0), "setuid 0");
        if (strcmp(argv[1], "resuid") == 0)
                return expect_failure(setresuid(0, 0, 0), "setresuid 0");
        if (strcmp(argv[1], "gid") == 0)
                return expect_failure(setgid(0), "setgid 0");
        if (strcmp(argv[1], "groups") == 0)
                return expect_failure(setgroups(1, &none), "setgroups 0");
        return fail("usage: setid uid|gid|groups|resuid");
}

static int cmd_hostname(int argc, char **argv)
{
        if (argc > 1 && strcmp(argv[1], "domain") == 0)
                return expect_failure(setdomainname("evil", 4), "setdomainname");
        return expect_failure(sethostname("evil", 4), "sethostname");
}

static int cmd_clock(int argc, char **argv)
{
        struct timespec ts;
        struct timeval tv;
        struct timex tx = {0};

        if (argc < 2)
                return fail("usage: clock settime|settimeofday|adjtimex");
        /* Setting the clock to what it already says: harmless if it were allowed. */
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return fail("clock_gettime: %s", strerror(errno));
        if (strcmp(argv[1], "settime") == 0)
                return expect_failure(clock_settime(CLOCK_REALTIME, &ts), "clock_settime");
        if (strcmp(argv[1], "settimeofday") == 0) {
                tv.tv_sec = ts.tv_sec;
                tv.tv_usec = ts.tv_nsec / 1000;
                return expect_failure(syscall(SYS_settimeofday, &tv, NULL), "settimeofday");
        }
        if (strcmp(argv[1], "adjtimex") == 0) {
                /* A one-shot slew of 0 us: a change (only a reading would need no privilege). */
                tx.modes = ADJ_OFFSET_SINGLESHOT;
                tx.offset = 0;
                return expect_failure(syscall(SYS_adjtimex, &tx) < 0 ? -1 : 0, "adjtimex");
        }
        return fail("usage: clock settime|settimeofday|adjtimex");
}

static int cmd_rlimit(int argc, char **argv)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return fail("getrlimit: %s", strerror(errno));
        if (rl.rlim_max == RLIM_INFINITY)
                return escaped("RLIMIT_NOFILE has no hard limit");
        rl.rlim_max += 1;
        rl.rlim_cur = rl.rlim_max;
        return expect_failure(setrlimit(RLIMIT_NOFILE, &rl), "raise RLIMIT_NOFILE");
}

static int cmd_oom_adj(int argc, char **argv)
{
        int fd;
        ssize_t n;

        fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return blocked(errno, "open oom_score_adj");
        n = write(fd, "-1000", 5);
        (void) close(fd);
        return expect_failure(n, "oom_score_adj -1000");
}

static int cmd_personality(int argc, char **argv)
{
        return expect_failure(syscall(SYS_personality, (unsigned long) READ_IMPLIES_EXEC) < 0 ? -1
                                                                                              : 0,
                              "personality READ_IMPLIES_EXEC");
}

/*
 * Scheduling that would take cpus from the host whatever the cgroup says: a real-time or deadline
 * class, a negative nice value, real-time I/O priority.
 */
static int cmd_sched(int argc, char **argv)
{
        struct sched_param sp = {.sched_priority = 1};

        if (argc < 2)
                return fail("usage: sched fifo|deadline|nice|ioprio");
        if (strcmp(argv[1], "fifo") == 0)
                return expect_failure(sched_setscheduler(0, SCHED_FIFO, &sp), "SCHED_FIFO");
        if (strcmp(argv[1], "deadline") == 0) {
                struct {
                        uint32_t size, policy;
                        uint64_t flags;
                        int32_t nice;
                        uint32_t priority;
                        uint64_t runtime, deadline, period;
                } attr = {
                        .size = 48,
                        .policy = 6, /* SCHED_DEADLINE */
                        .runtime = 10000000,
                        .deadline = 10000000,
                        .period = 10000000,
                };

                return expect_failure(syscall(SYS_sched_setattr, 0, &attr, 0U), "SCHED_DEADLINE");
        }
        if (strcmp(argv[1], "nice") == 0)
                return expect_failure(setpriority(PRIO_PROCESS, 0, -20), "nice -20");
        if (strcmp(argv[1], "ioprio") == 0)
                /* IOPRIO_WHO_PROCESS, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_RT, 0) */
                return expect_failure(syscall(SYS_ioprio_set, 1, 0, 1 << 13), "ioprio RT");
        return fail("usage: sched fifo|deadline|nice|ioprio");
}

/* SysV IPC objects of the host, by key: another IPC namespace has none of them. */
static int cmd_sysv(int argc, char **argv)
{
        long key;
        int id;

        if (argc < 3 || parse_long(argv[2], &key) < 0)
                return fail("usage: sysv shm|msg KEY");
        if (strcmp(argv[1], "shm") == 0)
                id = shmget((key_t) key, 0, 0);
        else if (strcmp(argv[1], "msg") == 0)
                id = msgget((key_t) key, 0);
        else
                return fail("usage: sysv shm|msg KEY");
        if (id < 0)
                return blocked(errno, "%s key %#lx", argv[1], key);
        return escaped("found the host's %s %#lx: id %d", argv[1], key, id);
}

/* ---- the kernel ---- */

static int cmd_module(int argc, char **argv)
{
        static const char image[64];

        if (argc < 2)
                return fail("usage: module init|finit|delete");
        if (strcmp(argv[1], "init") == 0)
                return expect_failure(syscall(SYS_init_module, image, sizeof(image), ""),
                                      "init_module");
        if (strcmp(argv[1], "finit") == 0) {
                int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
                long r;

                if (fd < 0)
                        return fail("open /proc/self/exe: %s", strerror(errno));
                r = syscall(SYS_finit_module, fd, "", 0);
                if (r < 0) {
                        int err = errno;
                        (void) close(fd);
                        return blocked(err, "finit_module");
                }
                (void) close(fd);
                return escaped("finit_module returned %ld", r);
        }
        if (strcmp(argv[1], "delete") == 0)
                return expect_failure(syscall(SYS_delete_module, "loop", O_NONBLOCK),
                                      "delete_module loop");
        return fail("usage: module init|finit|delete");
}

static int cmd_reboot(int argc, char **argv)
{
        /* Right magics, an invalid command: even a kernel that let us through would say EINVAL. */
        return expect_failure(
                syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, 0x0badc0deUL, NULL),
                "reboot");
}

static int cmd_syslog(int argc, char **argv)
{
        char buf[256];

        return expect_failure(klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf)),
                              "syslog read-all");
}

static int cmd_iopl(int argc, char **argv)
{
        return expect_failure(syscall(SYS_iopl, 3), "iopl 3");
}

static int cmd_key(int argc, char **argv)
{
        if (argc < 2)
                return fail("usage: key get|add|request");
        if (strcmp(argv[1], "get") == 0)
                return expect_failure(
                        syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0),
                        "keyctl get session keyring");
        if (strcmp(argv[1], "add") == 0)
                return expect_failure(
                        syscall(SYS_add_key, "user", "warren", "x", 1UL, KEY_SPEC_SESSION_KEYRING),
                        "add_key");
        if (strcmp(argv[1], "request") == 0)
                return expect_failure(
                        syscall(SYS_request_key, "user", "warren", NULL, KEY_SPEC_SESSION_KEYRING),
                        "request_key");
        return fail("usage: key get|add|request");
}

struct socket_kind {
        const char *name;
        unsigned long family, type, protocol;
};

static const struct socket_kind socket_kinds[] = {
        {"packet", AF_PACKET, SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */},
        {"packet-dgram", AF_PACKET, SOCK_DGRAM, 0x0300},
        /* An upper half the kernel ignores: the filter must look at the low 32 bits only. */
        {"packet-hi", 0x100000000UL | AF_PACKET, SOCK_RAW, 0x0300},
        {"inet-raw", AF_INET, SOCK_RAW, IPPROTO_ICMP},
        {"inet6-raw", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6},
        {"inet-packet", AF_INET, SOCK_PACKET, 0x0300},
        {"vsock", AF_VSOCK, SOCK_STREAM, 0},
        {"alg", AF_ALG, SOCK_SEQPACKET, 0},
        {"netlink-audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT},
        {"netlink-uevent", AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT},
        {"netlink-hi", AF_NETLINK, SOCK_RAW, 0x100000000UL | NETLINK_AUDIT},
        {"key", 15 /* PF_KEY */, SOCK_RAW, 2 /* PF_KEY_V2 */},
        {"bluetooth", AF_BLUETOOTH, SOCK_RAW, 0},
};

static int cmd_socket(int argc, char **argv)
{
        long fd;

        if (argc < 2)
                return fail("usage: socket KIND");
        for (size_t i = 0; i < ELEMENTSOF(socket_kinds); i++) {
                const struct socket_kind *k = &socket_kinds[i];

                if (strcmp(k->name, argv[1]) != 0)
                        continue;
                fd = syscall(SYS_socket, k->family, k->type | SOCK_CLOEXEC, k->protocol);
                if (fd < 0)
                        return blocked(errno, "socket %s", k->name);
                (void) close((int) fd);
                return escaped("socket %s created", k->name);
        }
        return fail("unknown socket kind '%s'", argv[1]);
}

static int cmd_io_uring(int argc, char **argv)
{
        struct io_uring_params p = {0};

        return expect_failure(syscall(SYS_io_uring_setup, 8U, &p), "io_uring_setup");
}

static int cmd_userfaultfd(int argc, char **argv)
{
        return expect_failure(syscall(SYS_userfaultfd, O_CLOEXEC), "userfaultfd");
}

static int cmd_perf(int argc, char **argv)
{
        struct perf_event_attr attr = {
                .type = PERF_TYPE_SOFTWARE,
                .size = sizeof(attr),
                .config = PERF_COUNT_SW_CPU_CLOCK,
                .disabled = 1,
                .exclude_kernel = 1,
                .exclude_hv = 1,
        };

        return expect_failure(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0UL),
                              "perf_event_open");
}

static int cmd_bpf(int argc, char **argv)
{
        /* A socket filter that returns 0: the smallest program the verifier accepts. */
        struct bpf_insn insns[] = {
                {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
                {.code = BPF_JMP | BPF_EXIT},
        };
        union bpf_attr attr;

        memset(&attr, 0, sizeof(attr));
        if (argc > 1 && strcmp(argv[1], "prog") == 0) {
                attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
                attr.insn_cnt = ELEMENTSOF(insns);
                attr.insns = (uint64_t) (uintptr_t) insns;
                attr.license = (uint64_t) (uintptr_t) "GPL";
                return expect_failure(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)),
                                      "BPF_PROG_LOAD");
        }
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4;
        attr.value_size = 4;
        attr.max_entries = 1;
        return expect_failure(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)),
                              "BPF_MAP_CREATE");
}

static int cmd_open_by_handle(int argc, char **argv)
{
        /* The "shocker" attack: a guessed handle for the root inode of the host's file system. */
        struct {
                struct file_handle fh;
                unsigned char bytes[8];
        } h = {.fh = {.handle_bytes = 8, .handle_type = 1}};

        uint32_t ino = 2;

        memcpy(h.fh.f_handle, &ino, sizeof(ino));
        return expect_failure(syscall(SYS_open_by_handle_at, AT_FDCWD, &h.fh, O_RDONLY),
                              "open_by_handle_at");
}

/*
 * Other ABIs than the native one: an x32 syscall number, and the i386 entry point (int 0x80)
 * asking for unshare(CLONE_NEWUSER). The filter must kill the process (SIGSYS) before either
 * runs; an error return means it was not killed.
 */
static int cmd_abi(int argc, char **argv)
{
        long r;

        if (argc < 2)
                return fail("usage: abi x32|i386");
        if (strcmp(argv[1], "x32") == 0) {
                r = syscall(0x40000000L | SYS_unshare, (long) CLONE_NEWUSER);
                if (r < 0)
                        return blocked(errno, "x32 unshare returned instead of being killed");
                return escaped("x32 unshare(CLONE_NEWUSER) worked");
        }
#if defined(__x86_64__)
        if (strcmp(argv[1], "i386") == 0) {
                long nr = 310; /* __NR_unshare on i386 */
                long flags = CLONE_NEWUSER;

                __asm__ volatile("int $0x80" : "+a"(nr) : "b"(flags) : "memory", "cc");
                if (nr < 0 && nr > -4096)
                        return blocked((int) -nr, "i386 unshare returned instead of being killed");
                return escaped("i386 unshare(CLONE_NEWUSER) returned %ld", nr);
        }
#endif
        return fail("usage: abi x32|i386");
}

/*
 * Not an attack: whether the i386 entry point works at all here (run on the host, where a
 * hypervisor or ia32_emulation=0 may have turned it off). Dies of SIGSEGV when it does not.
 */
static int cmd_probe_i386(int argc, char **argv)
{
#if defined(__x86_64__)
        long nr = 20; /* __NR_getpid on i386 */

        __asm__ volatile("int $0x80" : "+a"(nr) : : "memory", "cc");
        if (nr == (long) getpid()) {
                if (printf("OK the i386 entry point works\n") < 0 || fflush(stdout) != 0)
                        return VERDICT_ERROR;
                return 0;
        }
        return fail("i386 getpid returned %ld", nr);
#else
        return fail("not x86_64");
#endif
}

/* ---- terminals ---- */

/*
 * TIOCSTI pushes bytes into a terminal's input queue: given the user's terminal, a sandbox could
 * type commands into the shell that runs after it. Variants: the plain request, the request with
 * an upper half the kernel ignores, and after making the terminal our controlling one.
 */
static int cmd_tiocsti(int argc, char **argv)
{
        const char *variant = argc > 1 ? argv[1] : "plain";
        static const char payload[] = "id\n";
        unsigned long req = TIOCSTI;
        int err = 0;

        if (strcmp(variant, "hi") == 0)
                req |= 0x100000000UL;
        else if (strcmp(variant, "ctty") == 0) {
                /* Lose init's session, then take the terminal as our own controlling terminal. */
                if (setsid() < 0)
                        return fail("setsid: %s", strerror(errno));
                if (ioctl(0, TIOCSCTTY, 0) < 0)
                        err = errno;
        } else if (strcmp(variant, "plain") != 0)
                return fail("usage: tiocsti [plain|hi|ctty]");
        if (!isatty(0))
                return fail("stdin is not a terminal");
        for (size_t i = 0; i < sizeof(payload) - 1; i++)
                if (syscall(SYS_ioctl, 0, req, &payload[i]) < 0) {
                        if (err)
                                return blocked(errno, "TIOCSTI (TIOCSCTTY: %s)",
                                               strerrorname_np(err));
                        return blocked(errno, "TIOCSTI");
                }
        return escaped("TIOCSTI pushed %zu bytes", sizeof(payload) - 1);
}

/* ---- network ---- */

static int cmd_connect(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        long port;
        int fd, r;

        if (argc < 3 || parse_long(argv[2], &port) < 0 || port <= 0 || port > 65535 ||
            inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
                return fail("usage: connect ADDR PORT");
        sa.sin_port = htons((uint16_t) port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail("socket: %s", strerror(errno));
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        if (r < 0) {
                int err = errno;
                (void) close(fd);
                return blocked(err, "connect %s:%ld", argv[1], port);
        }
        (void) close(fd);
        return escaped("connected to %s:%ld", argv[1], port);
}

/* A datagram to ADDR:PORT; refused is learned from the ICMP error on the connected socket. */
static int cmd_udp(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct pollfd p;
        char c;
        long port;
        int fd, r, err;

        if (argc < 3 || parse_long(argv[2], &port) < 0 || port <= 0 || port > 65535 ||
            inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
                return fail("usage: udp ADDR PORT");
        sa.sin_port = htons((uint16_t) port);
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || send(fd, "warren", 6, 0) < 0) {
                err = errno;
                (void) close(fd);
                return blocked(err, "send");
        }
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        r = poll(&p, 1, 2000);
        if (r < 0 || (r > 0 && recv(fd, &c, 1, MSG_DONTWAIT) < 0)) {
                err = errno;
                (void) close(fd);
                return blocked(err, "udp %s:%ld", argv[1], port);
        }
        (void) close(fd);
        if (r == 0)
                return escaped("no error from %s:%ld in 2 s: somebody may have received it",
                               argv[1], port);
        return escaped("received a reply from %s:%ld", argv[1], port);
}

static int cmd_connect_abstract(int argc, char **argv)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t len;
        int fd, r;

        if (argc < 2 || (len = strlen(argv[1])) + 1 > sizeof(sa.sun_path))
                return fail("usage: connect-abstract NAME");
        memcpy(sa.sun_path + 1, argv[1], len);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail("socket: %s", strerror(errno));
        r = connect(fd, (struct sockaddr *) &sa,
                    (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + len));
        if (r < 0) {
                int err = errno;
                (void) close(fd);
                return blocked(err, "connect @%s", argv[1]);
        }
        (void) close(fd);
        return escaped("connected to @%s", argv[1]);
}

/* ---- exhaustion: meant to be stopped by a limit ---- */

static int cmd_fill_inodes(int argc, char **argv)
{
        char path[PATH_MAX];
        unsigned long n;

        if (argc < 2)
                return fail("usage: fill-inodes DIR");
        for (n = 0; n < MAX_FILES; n++) {
                int fd;

                (void) snprintf(path, sizeof(path), "%s/i%lu", argv[1], n);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        return blocked(errno, "files=%lu", n);
                (void) close(fd);
        }
        return escaped("files=%lu and no limit", n);
}

/*
 * Writes DIR/fill until the file system is full. With "fallocate" the space is allocated without
 * a byte passing through our memory: the program stays tiny while the sandbox's memory (tmpfs
 * pages) fills up, the way to make the OOM killer look elsewhere.
 */
static int cmd_fill_space(int argc, char **argv)
{
        static char chunk[FILL_CHUNK];
        char path[PATH_MAX];
        unsigned long long total = 0;
        bool use_fallocate = argc > 2 && strcmp(argv[2], "fallocate") == 0;
        int fd;

        if (argc < 2)
                return fail("usage: fill-space DIR [fallocate]");
        (void) snprintf(path, sizeof(path), "%s/fill", argv[1]);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return fail("open %s: %s", path, strerror(errno));
        if (!use_fallocate)
                memset(chunk, 'x', sizeof(chunk));
        for (;;) {
                ssize_t n = sizeof(chunk);

                if (use_fallocate) {
                        if (fallocate(fd, 0, (off_t) total, (off_t) sizeof(chunk)) < 0)
                                n = -1;
                } else
                        n = write(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        int err = errno;
                        (void) close(fd);
                        return blocked(err, "bytes=%llu", total);
                }
                total += (unsigned long long) n;
                /* 64 GiB: far beyond any tmpfs a sandbox gets. */
                if (total >= (64ULL << 30)) {
                        (void) close(fd);
                        return escaped("bytes=%llu and no limit", total);
                }
        }
}

/*
 * Forks children that stay alive (pause) until fork fails, then reports how many it had: that is
 * how many processes the limit let it hold at once. With "wait", it then waits to be killed.
 */
static int cmd_forkbomb(int argc, char **argv)
{
        bool wait_forever = argc > 1 && strcmp(argv[1], "wait") == 0;
        unsigned long n;

        for (n = 0; n < MAX_FORKS; n++) {
                pid_t pid = fork();

                if (pid < 0) {
                        int err = errno;

                        (void) blocked(err, "forks=%lu", n);
                        while (wait_forever)
                                (void) pause();
                        return VERDICT_BLOCKED;
                }
                if (pid == 0) {
                        for (;;)
                                (void) pause();
                }
        }
        return escaped("forks=%lu and no limit", n);
}

/* A daemon: double fork, new session, the grandchild outlives its parents. */
static int cmd_daemon(int argc, char **argv)
{
        pid_t pid;
        int status;

        pid = fork();
        if (pid < 0)
                return fail("fork: %s", strerror(errno));
        if (pid == 0) {
                if (setsid() < 0)
                        _exit(1);
                pid = fork();
                if (pid < 0)
                        _exit(1);
                if (pid == 0) {
                        (void) signal(SIGHUP, SIG_IGN);
                        (void) signal(SIGTERM, SIG_IGN);
                        for (;;)
                                (void) pause();
                }
                _exit(0);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail("the daemon's parent failed");
        /* What happens to the daemon when we exit is for the host to check. */
        return blocked_word("DETACHED", "a daemon runs in a session of its own");
}

static int cmd_memory(int argc, char **argv)
{
        long mb;
        char *p;
        size_t size, page = (size_t) sysconf(_SC_PAGESIZE);

        if (argc < 2 || parse_long(argv[1], &mb) < 0 || mb <= 0)
                return fail("usage: memory MB");
        size = (size_t) mb << 20;
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
        if (p == MAP_FAILED)
                return blocked(errno, "mmap %ld MB", mb);
        for (size_t off = 0; off < size; off += page)
                p[off] = 1;
        return escaped("touched %ld MB", mb);
}

static void spin(void)
{
        volatile unsigned long x = 0;

        for (;;)
                x++;
}

static int cmd_spin(int argc, char **argv)
{
        long n = 1;

        if (argc > 1 && (parse_long(argv[1], &n) < 0 || n < 1 || n > 64))
                return fail("usage: spin [NPROC]");
        for (long i = 1; i < n; i++) {
                pid_t pid = fork();

                if (pid < 0)
                        return fail("fork: %s", strerror(errno));
                if (pid == 0)
                        spin();
        }
        spin();
        return VERDICT_ERROR;
}

/* Opens /dev/null until refused; reports how many it got (the --open-files limit at work). */
static int cmd_openmany(int argc, char **argv)
{
        long max;
        long n;

        if (argc < 2 || parse_long(argv[1], &max) < 0 || max <= 0)
                return fail("usage: openmany MAX");
        for (n = 0; n < max; n++)
                if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0)
                        return blocked(errno, "opened=%ld", n);
        return escaped("opened=%ld", n);
}

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
} commands[] = {
        {"openmany", cmd_openmany},
        {"mount", cmd_mount},
        {"remount", cmd_remount},
        {"umount", cmd_umount},
        {"pivot-root", cmd_pivot_root},
        {"chroot", cmd_chroot},
        {"open-tree", cmd_open_tree},
        {"fsopen", cmd_fsopen},
        {"unshare", cmd_unshare},
        {"clone", cmd_clone},
        {"clone3", cmd_clone3},
        {"setns", cmd_setns},
        {"ptrace", cmd_ptrace},
        {"kill", cmd_kill},
        {"process-vm-readv", cmd_process_vm_readv},
        {"pidfd-getfd", cmd_pidfd_getfd},
        {"open", cmd_open},
        {"readlink", cmd_readlink},
        {"read", cmd_read},
        {"create", cmd_create},
        {"mkdir", cmd_mkdir},
        {"mknod", cmd_mknod},
        {"chown", cmd_chown},
        {"fchmod", cmd_fchmod},
        {"sysrq", cmd_sysrq},
        {"fds", cmd_fds},
        {"fstat", cmd_fstat},
        {"setuid-file", cmd_setuid_file},
        {"euid", cmd_euid},
        {"setid", cmd_setid},
        {"hostname", cmd_hostname},
        {"clock", cmd_clock},
        {"rlimit", cmd_rlimit},
        {"oom-adj", cmd_oom_adj},
        {"personality", cmd_personality},
        {"sched", cmd_sched},
        {"sysv", cmd_sysv},
        {"module", cmd_module},
        {"reboot", cmd_reboot},
        {"syslog", cmd_syslog},
        {"iopl", cmd_iopl},
        {"key", cmd_key},
        {"socket", cmd_socket},
        {"io-uring", cmd_io_uring},
        {"userfaultfd", cmd_userfaultfd},
        {"perf", cmd_perf},
        {"bpf", cmd_bpf},
        {"open-by-handle", cmd_open_by_handle},
        {"abi", cmd_abi},
        {"probe-i386", cmd_probe_i386},
        {"tiocsti", cmd_tiocsti},
        {"connect", cmd_connect},
        {"udp", cmd_udp},
        {"connect-abstract", cmd_connect_abstract},
        {"fill-inodes", cmd_fill_inodes},
        {"fill-space", cmd_fill_space},
        {"forkbomb", cmd_forkbomb},
        {"daemon", cmd_daemon},
        {"memory", cmd_memory},
        {"spin", cmd_spin},
};

int main(int argc, char **argv)
{
        if (argc < 2) {
                (void) fprintf(stderr, "usage: escape SUBCOMMAND [ARG...]\n");
                return VERDICT_ERROR;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, argv[1]) == 0)
                        return commands[i].fn(argc - 1, argv + 1);
        return fail("unknown subcommand '%s'", argv[1]);
}
