/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation
 * ===================
 *
 * sandbox_run() starts one program in a sandbox and waits for it. Three processes take part:
 *
 *   parent (the caller)   child = sandbox PID 1 ("init")        program
 *   -------------------   -------------------------------       -------
 *   slot, plan, (v2) cgroup
 *   clone3(NEWUSER|NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS, PIDFD, INTO_CGROUP on v2)
 *                         waits on the sync socket
 *   uid_map/gid_map
 *   byte 1  ---------->   becomes the sandbox's root, PDEATHSIG=SIGKILL (after the
 *   (v1) cgroup made      credential change, which clears it), hostname, lo up,
 *   and attached while    mounts + pivot_root (mount.c), setsid
 *   the child works
 *   byte 2  ---------->   unshare(NEWCGROUP), not dumpable,
 *                         zeroes the caller's argv/env copy,
 *                         clone(VM|VFORK) --------------------> rlimits, chdir, setresgid/uid,
 *                         (resumes at the program's execve)      caps dropped, no_new_privs,
 *                         keeps only CAP_KILL, closes fds;       fds closed on exec, seccomp,
 *                                                                execve
 *                         reaps and forwards signals
 *   poll: pidfd, stdout,                                            ...
 *   stderr, wall timer,   <- writes the program's wait status
 *   cpu timer               and exits when the program exits; the kernel then kills
 *                           everything else in the PID namespace
 *   reaps init, reads the cgroup's accounting, kills and removes the cgroup, frees the slot.
 *
 * Any failure in the child before execve() is written as (step, errno, index) to a close-on-exec
 * error pipe; the parent turns it into internal_error, or exec_error for execve() itself. Nothing
 * fails silently.
 *
 * The parent never leaves a sandbox behind: init has PDEATHSIG=SIGKILL (and exits if the sync
 * socket reaches EOF, or the parent's pidfd says it is gone), so if the parent dies the whole
 * PID namespace dies with it;
 * the cgroup it leaves is swept by the next sandbox_context_new(), and the slot lock (an flock)
 * dies with the process.
 *
 * The child is made with a raw clone3() from a single-threaded process: it may use libc, but not
 * the functions that rely on the cached thread id (raise, abort, pthread_*). The compiled seccomp
 * filter, the mount plan and every string the child needs are prepared before the clone.
 *
 * Limits: memory, pids and cpu bandwidth are the cgroup's; the CPU-time limit covers the whole
 * cgroup: the parent reads its usage when the earliest moment it could be exceeded comes (the
 * remaining budget divided by the cpus it may use), so it costs a handful of reads per run;
 * RLIMIT_CPU is a per-process backstop. Output is cut by the parent, which holds the pipes.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "caps.h"
#include "cgroup.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "mount.h"
#include "seccomp.h"
#include "userns.h"

#define DEFAULT_PATH       "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ARGS           4096
#define MAX_ENV            4096
#define MAX_ARG_LEN        (UINT64_C(128) << 10)
#define COPY_BUFSIZE       (64 << 10)
#define PROGRAM_STACK_SIZE (256 << 10)

struct sandbox_context {
        struct seccomp_program *seccomp;
        struct cgroup_root *cgroups; /* NULL: no usable hierarchy */
        int slots_fd;
        uid_t uid_base;
        unsigned n_slots;
        bool privileged;
        int last_cap;
        long ncpus;
};

/* The running sandbox's init, for sandbox_forward_signal() from a signal handler. */
static volatile sig_atomic_t current_pidfd = -1;
static volatile sig_atomic_t cancelled;

enum child_step {
        STEP_SYNC,
        STEP_CGROUPNS,
        STEP_HOSTNAME,
        STEP_LOOPBACK,
        STEP_MOUNT,
        STEP_SESSION,
        STEP_FORK,
        STEP_RLIMIT,
        STEP_CHDIR,
        STEP_SETID,
        STEP_CAPS,
        STEP_NO_NEW_PRIVS,
        STEP_FDS,
        STEP_SECCOMP,
        STEP_EXEC,
        _STEP_MAX,
};

static const char *const step_names[_STEP_MAX] = {
        [STEP_SYNC] = "waiting for the parent",
        [STEP_CGROUPNS] = "creating the cgroup namespace",
        [STEP_HOSTNAME] = "setting the host name",
        [STEP_LOOPBACK] = "bringing up the loopback interface",
        [STEP_MOUNT] = "building the file system",
        [STEP_SESSION] = "creating a session",
        [STEP_FORK] = "forking the program",
        [STEP_RLIMIT] = "setting resource limits",
        [STEP_CHDIR] = "changing directory",
        [STEP_SETID] = "switching to the sandbox user",
        [STEP_CAPS] = "dropping capabilities",
        [STEP_NO_NEW_PRIVS] = "setting no_new_privs",
        [STEP_FDS] = "closing inherited file descriptors",
        [STEP_SECCOMP] = "loading the seccomp filter",
        [STEP_EXEC] = "executing",
};

struct child_error {
        int32_t step;
        int32_t error; /* positive errno */
        int64_t index; /* mount operation, or -1 */
};

struct child_args {
        struct sandbox_context *ctx;
        const struct sandbox_config *cfg;
        struct mount_plan *plan;
        char *const *argv; /* cfg->argv, or init's copy of it */
        char *const *envp;
        const char *path;
        const char *chdir;
        int parent_pidfd; /* readable once the parent is gone */
        int sync_fd;      /* read end */
        int error_fd;     /* write end, O_CLOEXEC */
        int status_fd;    /* write end */
        int stdin_fd;
        int stdout_fd; /* write end */
        int stderr_fd; /* write end */
};

_noreturn_ static void child_fail(int error_fd, enum child_step step, int error, int64_t index)
{
        struct child_error e = {.step = step, .error = abs(error), .index = index};

        (void) write_full(error_fd, &e, sizeof(e));
        _exit(125);
}

static int loopback_up(void)
{
        _cleanup_close_ int fd = -EBADF;
        struct ifreq ifr = {0};

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memcpy(ifr.ifr_name, "lo", 3);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return -errno;
        return 0;
}

static int set_rlimit(int resource, uint64_t value)
{
        struct rlimit rl = {.rlim_cur = value, .rlim_max = value};

        if (setrlimit(resource, &rl) < 0)
                return -errno;
        return 0;
}

static int apply_rlimits(const struct sandbox_config *cfg)
{
        int r;

        r = set_rlimit(RLIMIT_CORE, 0);
        if (r < 0)
                return r;
        r = set_rlimit(RLIMIT_NOFILE, cfg->open_files ? cfg->open_files : SANDBOX_DEFAULT_NOFILE);
        if (r < 0)
                return r;
        if (cfg->file_size) {
                r = set_rlimit(RLIMIT_FSIZE, cfg->file_size);
                if (r < 0)
                        return r;
        }
        if (cfg->cpu_time_ns) {
                /* A per-process backstop; the real limit is over the whole cgroup. */
                uint64_t s = (cfg->cpu_time_ns + UINT64_C(999999999)) / UINT64_C(1000000000) + 1;
                r = set_rlimit(RLIMIT_CPU, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* execvpe() without allocation, against the sandbox's own PATH. */
static int exec_program(const char *file, char *const argv[], char *const envp[], const char *path)
{
        char buf[PATH_MAX];
        bool eacces = false;
        size_t flen;

        if (strchr(file, '/')) {
                execve(file, argv, envp);
                return -errno;
        }
        flen = strlen(file);
        while (*path) {
                size_t n = strcspn(path, ":");

                if (n > 0 && n + 1 + flen < sizeof(buf)) {
                        memcpy(buf, path, n);
                        buf[n] = '/';
                        memcpy(buf + n + 1, file, flen + 1);
                        execve(buf, argv, envp);
                        if (errno == EACCES)
                                eacces = true;
                        else if (errno != ENOENT && errno != ENOTDIR)
                                return -errno;
                }
                path += n;
                if (*path == ':')
                        path++;
        }
        return eacces ? -EACCES : -ENOENT;
}

_noreturn_ static void program_main(const struct child_args *a)
{
        const struct sandbox_config *cfg = a->cfg;
        sigset_t none;
        int r;

        /* Signal state back to defaults: init blocked everything it forwards. */
        for (int sig = 1; sig < _NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        r = apply_rlimits(cfg);
        if (r < 0)
                child_fail(a->error_fd, STEP_RLIMIT, r, -1);

        if (chdir(a->chdir) < 0)
                child_fail(a->error_fd, STEP_CHDIR, errno, -1);

        /* The bounding set needs CAP_SETPCAP, so it goes before the switch to the sandbox user. */
        r = caps_drop_bounding(a->ctx->last_cap);
        if (r < 0)
                child_fail(a->error_fd, STEP_CAPS, r, -1);
        if (setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) < 0 ||
            setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0)
                child_fail(a->error_fd, STEP_SETID, errno, -1);
        r = caps_drop_all();
        if (r < 0)
                child_fail(a->error_fd, STEP_CAPS, r, -1);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(a->error_fd, STEP_NO_NEW_PRIVS, errno, -1);

        /* Everything beyond stdio goes at execve(), the error pipe included. */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                child_fail(a->error_fd, STEP_FDS, errno, -1);

        r = seccomp_program_load(a->ctx->seccomp);
        if (r < 0)
                child_fail(a->error_fd, STEP_SECCOMP, r, -1);

        r = exec_program(a->argv[0], a->argv, a->envp, a->path);
        {
                struct child_error e = {.step = STEP_EXEC, .error = -r, .index = -1};
                (void) write_full(a->error_fd, &e, sizeof(e));
        }
        _exit(r == -ENOENT ? 127 : 126);
}

static const int forwarded_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/* PID 1 of the sandbox: reaps every process and forwards signals to the program. */
_noreturn_ static void init_loop(pid_t program, int status_fd, const sigset_t *set)
{
        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(set, &si);

                if (sig < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(125);
                }
                if (sig != SIGCHLD) {
                        (void) kill(program, sig);
                        continue;
                }
                for (;;) {
                        int status;
                        pid_t p = waitpid(-1, &status, WNOHANG);

                        if (p <= 0)
                                break;
                        if (p == program) {
                                (void) write_full(status_fd, &status, sizeof(status));
                                /* Exiting kills whatever else still runs in the namespace. */
                                _exit(0);
                        }
                }
        }
}

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer cannot follow a switch to a stack it did not allocate: plain fork() there. */
static pid_t start_program(struct child_args *a)
{
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0)
                program_main(a);
        return pid;
}
#else
static int program_entry(void *arg)
{
        program_main(arg);
}

/*
 * The program starts the way posix_spawn() does: sharing our memory, on a stack of its own, while
 * we wait for its execve(). No page is copied, and init resumes only once the program runs (or
 * has failed and reported why).
 */
static pid_t start_program(struct child_args *a)
{
        void *stack;
        pid_t pid;

        stack = mmap(NULL, PROGRAM_STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED)
                return -errno;
        pid = clone(program_entry, (char *) stack + PROGRAM_STACK_SIZE,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, a);
        if (pid < 0)
                pid = -errno;
        (void) munmap(stack, PROGRAM_STACK_SIZE);
        return pid;
}
#endif

/*
 * init is a copy of its parent, whose command line and environment are the caller's. Its
 * /proc/1/environ is closed to the sandbox (init is not dumpable), but /proc/1/cmdline is open
 * to anyone: zero the area the kernel shows there. The kernel put argv's and then envp's strings
 * side by side at the top of the stack, argv[0] first; the area ends after the last environment
 * string that lies in it (setenv() puts new strings elsewhere; they are not shown). Done before
 * the program exists, once init has copied what the program is started with.
 */
static void scrub_arguments(void)
{
        char *start = program_invocation_name, *end = start;

        if (!start)
                return;
        end = start + strlen(start) + 1;
        for (char **e = environ; e && *e; e++) {
                char *s = *e;
                if (s > start && (size_t) (s - start) < (UINT64_C(1) << 24)) {
                        char *t = s + strlen(s) + 1;
                        if (t > end)
                                end = t;
                }
        }
        if (end == start + strlen(start) + 1) {
                /* No environment to bound the area by: ask the kernel where it ends. */
                _cleanup_free_ char *stat = NULL;
                unsigned long long arg_end;
                const char *p;

                if (read_file_at(AT_FDCWD, "/proc/self/stat", 4096, &stat) < 0)
                        return;
                /* Field 49 (arg_end); the command name (field 2) may hold spaces. */
                p = strrchr(stat, ')');
                for (int field = 2; p && field < 49; field++)
                        p = strchr(p + 1, ' ');
                if (!p || sscanf(p, " %llu", &arg_end) != 1 || arg_end <= (uintptr_t) start ||
                    arg_end - (uintptr_t) start > (UINT64_C(1) << 24))
                        return;
                end = (char *) (uintptr_t) arg_end;
        }
        explicit_bzero(start, (size_t) (end - start));
}

static char **strv_copy(char *const *v)
{
        size_t n = 0;
        char **c;

        while (v && v[n])
                n++;
        c = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; c && i < n; i++)
                if (!(c[i] = strdup(v[i])))
                        return NULL; /* init exits at once: nothing to free */
        return c;
}

/* init's own copies of the strings the program is started with (init never frees them). */
static int copy_program_strings(struct child_args *a)
{
        a->argv = strv_copy(a->cfg->argv);
        if (!a->argv)
                return -ENOMEM;
        if (a->envp) {
                a->envp = strv_copy(a->envp);
                if (!a->envp)
                        return -ENOMEM;
        }
        if (a->path && !(a->path = strdup(a->path)))
                return -ENOMEM;
        if (a->chdir && !(a->chdir = strdup(a->chdir)))
                return -ENOMEM;
        return 0;
}

_noreturn_ static void child_main(struct child_args *a)
{
        sigset_t set;
        size_t failed;
        pid_t program;
        char c;
        int r;

        /* EOF instead of the byte: the parent died before it could set us up. */
        if (read(a->sync_fd, &c, 1) != 1)
                _exit(125);

        /* Become the sandbox's root: mapped, so that it can create the files of the new root. */
        if (a->ctx->privileged && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
                child_fail(a->error_fd, STEP_SETID, errno, -1);

        /*
         * Die with the parent. Set only now: a change of credentials clears it. If the parent
         * is already gone (its pidfd is readable), the signal would never come: leave at once.
         */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                child_fail(a->error_fd, STEP_SYNC, errno, -1);
        {
                struct pollfd p = {.fd = a->parent_pidfd, .events = POLLIN};
                if (poll(&p, 1, 0) != 0)
                        _exit(125);
        }
        (void) close(a->parent_pidfd);

        if (sethostname(SANDBOX_HOSTNAME, strlen(SANDBOX_HOSTNAME)) < 0 || setdomainname("", 0) < 0)
                child_fail(a->error_fd, STEP_HOSTNAME, errno, -1);
        r = loopback_up();
        if (r < 0)
                child_fail(a->error_fd, STEP_LOOPBACK, r, -1);

        r = mount_plan_apply(a->plan, &failed);
        if (r < 0)
                child_fail(a->error_fd, STEP_MOUNT, r, (int64_t) failed);

        if (setsid() < 0)
                child_fail(a->error_fd, STEP_SESSION, errno, -1);

        /* The second byte: we are in our cgroup now (v1 attaches us while we built the root). */
        if (read(a->sync_fd, &c, 1) != 1)
                _exit(125);
        (void) close(a->sync_fd);
        if (unshare(CLONE_NEWCGROUP) < 0)
                child_fail(a->error_fd, STEP_CGROUPNS, errno, -1);

        if (dup2(a->stdin_fd, 0) < 0 || dup2(a->stdout_fd, 1) < 0 || dup2(a->stderr_fd, 2) < 0)
                child_fail(a->error_fd, STEP_FDS, errno, -1);

        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&set, forwarded_signals[i]);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                child_fail(a->error_fd, STEP_FORK, errno, -1);

        /* Before the program exists: nothing in the sandbox may ever open init's /proc files. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                child_fail(a->error_fd, STEP_FORK, errno, -1);
        /*
         * Zero the caller's command line before the program exists: once it runs, it may read
         * /proc/1/cmdline before init gets the cpu back. What the program needs of that area
         * (argv, envp, PATH, the working directory may point into it) is copied first.
         */
        if (copy_program_strings(a) < 0)
                child_fail(a->error_fd, STEP_FORK, -ENOMEM, -1);
        scrub_arguments();

        program = start_program(a);
        if (program < 0)
                child_fail(a->error_fd, STEP_FORK, program, -1);

        /* init keeps nothing the program could reach: no fds, no capabilities, not dumpable. */
        if (dup3(a->status_fd, 3, O_CLOEXEC) < 0 && a->status_fd != 3)
                _exit(125);
        if (close_range(4, ~0U, 0) < 0)
                _exit(125);
        (void) close(0);
        (void) close(1);
        (void) close(2);
        /*
         * CAP_KILL (over the sandbox's own user namespace only) to forward signals. The bounding
         * set only limits what an execve() could gain, and init never executes anything.
         */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || caps_keep_only(CAP_KILL) < 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                (void) kill(program, SIGKILL);
                _exit(125);
        }
        init_loop(program, 3, &set);
}

/* ---- parent side ---- */

static const char *env_path(char *const *envp)
{
        for (; envp && *envp; envp++)
                if (strncmp(*envp, "PATH=", 5) == 0)
                        return *envp + 5;
        return DEFAULT_PATH;
}

static char *default_env[] = {"PATH=" DEFAULT_PATH, "HOME=/tmp", NULL};

static int validate_config(const struct sandbox_config *cfg)
{
        size_t n;

        if (!cfg->argv || !cfg->argv[0] || cfg->argv[0][0] == '\0')
                return -EINVAL;
        for (n = 0; cfg->argv[n]; n++)
                if (n >= MAX_ARGS || strlen(cfg->argv[n]) > MAX_ARG_LEN)
                        return -E2BIG;
        for (n = 0; cfg->envp && cfg->envp[n]; n++)
                if (n >= MAX_ENV || strlen(cfg->envp[n]) > MAX_ARG_LEN ||
                    !strchr(cfg->envp[n], '='))
                        return -EINVAL;
        if (cfg->chdir && cfg->chdir[0] != '/')
                return -EINVAL;
        /* The kernel's smallest cpu quota is 1 ms per 100 ms period. */
        if (!isfinite(cfg->cpus) || (cfg->cpus != 0 && cfg->cpus < 0.01) || cfg->cpus > 4096)
                return -EINVAL;
        return 0;
}

static int arm_timer(int fd, uint64_t ns)
{
        struct itimerspec its = {
                .it_value = {.tv_sec = (time_t) (ns / 1000000000),
                             .tv_nsec = (long) (ns % 1000000000)},
        };

        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
                its.it_value.tv_nsec = 1;
        if (timerfd_settime(fd, 0, &its, NULL) < 0)
                return -errno;
        return 0;
}

struct stream {
        int fd;   /* read end, -EBADF once at EOF */
        int sink; /* borrowed, < 0: discard */
        uint64_t *count;
};

struct run_state {
        struct sandbox_report *report;
        bool killed;
        enum sandbox_status kill_reason;
        uint64_t output_total;
};

static void kill_sandbox(int pidfd, struct run_state *st, enum sandbox_status reason)
{
        if (!st->killed) {
                st->killed = true;
                st->kill_reason = reason;
        }
        (void) pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
}

/* Copies what is available on one stream to its sink, cut at the output limit. */
static int pump(struct stream *s, const struct sandbox_config *cfg, struct run_state *st, int pidfd,
                char *buf)
{
        ssize_t n = read(s->fd, buf, COPY_BUFSIZE);

        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return -errno;
        }
        if (n == 0) {
                s->fd = safe_close(s->fd);
                return 0;
        }
        size_t keep = (size_t) n;
        if (cfg->output_limit) {
                uint64_t room = cfg->output_limit > st->output_total
                                        ? cfg->output_limit - st->output_total
                                        : 0;
                if ((uint64_t) n > room) {
                        keep = (size_t) room;
                        kill_sandbox(pidfd, st, SANDBOX_OUTPUT_LIMIT);
                }
        }
        st->output_total += keep;
        *s->count += keep;
        if (keep > 0 && s->sink >= 0 && write_full(s->sink, buf, keep) < 0)
                s->sink = -EBADF; /* a closed reader loses the rest, the run goes on */
        return 0;
}

static void set_error(struct sandbox_report *rep, enum sandbox_status status, int error,
                      const char *fmt, ...) _printf_(4, 5);

static void set_error(struct sandbox_report *rep, enum sandbox_status status, int error,
                      const char *fmt, ...)
{
        va_list ap;
        int saved = errno;

        rep->status = status;
        rep->error_errno = abs(error);
        errno = abs(error);
        va_start(ap, fmt);
        (void) vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
        va_end(ap);
        errno = saved;
}

static void describe_child_error(const struct child_error *e, const struct sandbox_config *cfg,
                                 const struct mount_plan *plan, struct sandbox_report *rep)
{
        const char *step = (unsigned) e->step < _STEP_MAX ? step_names[e->step] : "setting up";

        if (e->step == STEP_EXEC) {
                set_error(rep, SANDBOX_EXEC_ERROR, e->error, "cannot execute '%s': %m",
                          cfg->argv[0]);
                return;
        }
        if (e->step == STEP_MOUNT && e->index >= 0 && (size_t) e->index < plan->n) {
                const struct mount_op *op = &plan->ops[e->index];
                if (op->kind == MOUNT_OP_BIND)
                        set_error(rep, SANDBOX_INTERNAL_ERROR, e->error,
                                  "cannot mount '%s' on '%s' in the sandbox: %m", op->arg, op->dst);
                else
                        set_error(rep, SANDBOX_INTERNAL_ERROR, e->error,
                                  "cannot set up '%s' in the sandbox: %m", op->dst);
                return;
        }
        if (e->step == STEP_CHDIR) {
                set_error(rep, SANDBOX_INTERNAL_ERROR, e->error,
                          "cannot change directory to '%s': %m", cfg->chdir ? cfg->chdir : "/tmp");
                return;
        }
        set_error(rep, SANDBOX_INTERNAL_ERROR, e->error, "sandbox setup failed while %s: %m", step);
}

static int open_null(int flags)
{
        int fd = open("/dev/null", flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

static int make_pipe(int fds[2], int flags)
{
        if (pipe2(fds, O_CLOEXEC | flags) < 0)
                return -errno;
        return 0;
}

static void close_pair(int fds[2])
{
        fds[0] = safe_close(fds[0]);
        fds[1] = safe_close(fds[1]);
}

static int send_sync(int fd)
{
        ssize_t n;

        do
                n = send(fd, "x", 1, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == 1 ? 0 : -EIO;
}

static int make_cgroup(struct sandbox_context *ctx, const struct sandbox_config *cfg, unsigned slot,
                       struct cgroup **ret)
{
        struct cgroup_limits lim = {
                .memory = cfg->memory,
                /* the sandbox's init is one more process than the user asked for */
                .pids = cfg->pids ? cfg->pids + 1 : 0,
                .cpu_quota_us = cfg->cpus > 0 ? (uint64_t) ceil(cfg->cpus * 100000) : 0,
                .cpu_period_us = 100000,
                /*
                 * v1: memory and cpuacct for the accounting, pids and cpu only for their limits.
                 * No freezer: killing init takes the whole PID namespace down at once.
                 */
                .want = CGROUP_WANT(CGROUP_MEMORY) | CGROUP_WANT(CGROUP_CPUACCT),
        };
        char name[32];

        (void) snprintf(name, sizeof(name), "sbx-%u", slot);
        return cgroup_create(ctx->cgroups, name, &lim, ret);
}

static pid_t clone_child(int cgroup_fd, int *ret_pidfd)
{
        struct clone_args args = {
                .flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                         CLONE_NEWUTS | CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
        };

        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) cgroup_fd;
        }
        return (pid_t) syscall(SYS_clone3, &args, sizeof(args));
}

int sandbox_run(struct sandbox_context *ctx, const struct sandbox_config *cfg,
                struct sandbox_report *ret_report)
{
        struct mount_plan *plan = NULL;
        struct cgroup *cg = NULL;
        struct userns_slot slot = USERNS_SLOT_NULL;
        int sync_pipe[2] = {-EBADF, -EBADF}, error_pipe[2] = {-EBADF, -EBADF};
        int status_pipe[2] = {-EBADF, -EBADF}, out_pipe[2] = {-EBADF, -EBADF};
        int err_pipe[2] = {-EBADF, -EBADF};
        _cleanup_close_ int null_fd = -EBADF, pidfd = -EBADF, wall_fd = -EBADF, cpu_fd = -EBADF;
        _cleanup_close_ int self_pidfd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct sandbox_report rep = {.exit_code = -1};
        struct run_state st = {.report = &rep};
        struct child_error cerr;
        struct rusage ru = {0};
        const char *bad = NULL;
        uint64_t start, cpu_eff_ns = 0;
        int wstatus = 0, status_read = 0;
        pid_t pid = -1;
        int r;

        r = validate_config(cfg);
        if (r < 0)
                return r;
        if ((cfg->memory && !sandbox_context_can_limit(ctx, SANDBOX_LIMIT_MEMORY)) ||
            (cfg->pids && !sandbox_context_can_limit(ctx, SANDBOX_LIMIT_PIDS)) ||
            (cfg->cpus > 0 && !sandbox_context_can_limit(ctx, SANDBOX_LIMIT_CPUS)) ||
            (cfg->cpu_time_ns && !sandbox_context_can_limit(ctx, SANDBOX_LIMIT_CPU_TIME)))
                return -EOPNOTSUPP;

        buf = malloc(COPY_BUFSIZE);
        if (!buf)
                return -ENOMEM;

        r = mount_plan_build(cfg, &plan, &bad);
        if (r < 0) {
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "invalid mount '%s': %m",
                          bad ? bad : "?");
                goto done;
        }

        r = userns_slot_acquire(ctx->slots_fd, ctx->n_slots, ctx->uid_base, 0, &slot);
        if (r < 0) {
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "no free sandbox slot: %m");
                goto done;
        }

        /*
         * On v2 the child is born in its cgroup (CLONE_INTO_CGROUP), which must exist first. On v1
         * it is attached after the clone, so the cgroup is made while the child builds its root.
         */
        if (ctx->cgroups && cgroup_root_version(ctx->cgroups) == CGROUP_V2) {
                r = make_cgroup(ctx, cfg, slot.index, &cg);
                if (r < 0) {
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot create the cgroup: %m");
                        goto done;
                }
        }
        /* A socket, not a pipe: a child that died early must not SIGPIPE our caller. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pipe) < 0)
                r = -errno;
        else
                r = 0;
        if (r < 0 || (r = make_pipe(error_pipe, 0)) < 0 || (r = make_pipe(status_pipe, 0)) < 0 ||
            (r = make_pipe(out_pipe, 0)) < 0 || (r = make_pipe(err_pipe, 0)) < 0) {
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot create pipes: %m");
                goto done;
        }
        if (cfg->stdin_fd < 0) {
                null_fd = open_null(O_RDONLY);
                if (null_fd < 0) {
                        r = null_fd;
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot open /dev/null: %m");
                        goto done;
                }
        }

        self_pidfd = pidfd_open(getpid(), 0);
        if (self_pidfd < 0) {
                r = -errno;
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot open a pidfd: %m");
                goto done;
        }

        struct child_args args = {
                .parent_pidfd = self_pidfd,
                .ctx = ctx,
                .cfg = cfg,
                .plan = plan,
                .envp = cfg->envp ? cfg->envp : default_env,
                .path = env_path(cfg->envp ? cfg->envp : default_env),
                .chdir = cfg->chdir ? cfg->chdir : "/tmp",
                .sync_fd = sync_pipe[0],
                .error_fd = error_pipe[1],
                .status_fd = status_pipe[1],
                .stdin_fd = cfg->stdin_fd >= 0 ? cfg->stdin_fd : null_fd,
                .stdout_fd = out_pipe[1],
                .stderr_fd = err_pipe[1],
        };

        start = now_ns(CLOCK_MONOTONIC);
        pid = clone_child(cg ? cgroup_fd(cg) : -1, &pidfd);
        if (pid < 0) {
                r = -errno;
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot create the sandbox: %m");
                goto done;
        }
        if (pid == 0) {
                (void) close(sync_pipe[1]);
                (void) close(error_pipe[0]);
                (void) close(status_pipe[0]);
                (void) close(out_pipe[0]);
                (void) close(err_pipe[0]);
                child_main(&args);
        }
        cancelled = 0;
        current_pidfd = pidfd;

        sync_pipe[0] = safe_close(sync_pipe[0]);
        error_pipe[1] = safe_close(error_pipe[1]);
        status_pipe[1] = safe_close(status_pipe[1]);
        out_pipe[1] = safe_close(out_pipe[1]);
        err_pipe[1] = safe_close(err_pipe[1]);

        if (ctx->privileged)
                r = userns_write_maps(pid, SANDBOX_UID, slot.host_uid, slot.host_uid,
                                      slot.host_root_uid);
        else
                r = userns_write_maps(pid, SANDBOX_UID, getuid(), getgid(), (uid_t) -1);
        if (r < 0) {
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot write the uid/gid maps: %m");
                goto kill;
        }
        r = send_sync(sync_pipe[1]);
        if (r < 0) {
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot start the sandbox: %m");
                goto kill;
        }
        if (ctx->cgroups && !cg) {
                r = make_cgroup(ctx, cfg, slot.index, &cg);
                if (r < 0) {
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot create the cgroup: %m");
                        goto kill;
                }
                r = cgroup_attach(cg, pid);
                if (r < 0) {
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, r,
                                  "cannot attach to the cgroup: %m");
                        goto kill;
                }
        }
        /* EPIPE here is a child that failed during its setup: the error pipe will say why. */
        r = send_sync(sync_pipe[1]);
        if (r < 0 && r != -EPIPE) {
                set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot start the sandbox: %m");
                goto kill;
        }
        sync_pipe[1] = safe_close(sync_pipe[1]);

        if (cfg->wall_time_ns) {
                wall_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                if (wall_fd < 0 || arm_timer(wall_fd, cfg->wall_time_ns) < 0) {
                        r = -errno;
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot arm the wall timer: %m");
                        goto kill;
                }
        }
        if (cfg->cpu_time_ns) {
                double cpus = ctx->ncpus;
                if (cfg->cpus > 0 && cfg->cpus < cpus)
                        cpus = cfg->cpus;
                cpu_eff_ns = (uint64_t) (cpus * 1e9);
                cpu_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                if (cpu_fd < 0 ||
                    arm_timer(cpu_fd, (uint64_t) ((double) cfg->cpu_time_ns / cpus)) < 0) {
                        r = -errno;
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, r, "cannot arm the cpu timer: %m");
                        goto kill;
                }
        }

        {
                struct stream streams[2] = {
                        {.fd = out_pipe[0], .sink = cfg->stdout_fd, .count = &rep.stdout_bytes},
                        {.fd = err_pipe[0], .sink = cfg->stderr_fd, .count = &rep.stderr_bytes},
                };
                bool exited = false;

                out_pipe[0] = err_pipe[0] = -EBADF; /* owned by streams[] now */
                (void) fcntl(streams[0].fd, F_SETFL, O_NONBLOCK);
                (void) fcntl(streams[1].fd, F_SETFL, O_NONBLOCK);

                while (!exited || streams[0].fd >= 0 || streams[1].fd >= 0) {
                        struct pollfd p[5] = {
                                {.fd = exited ? -1 : pidfd, .events = POLLIN},
                                {.fd = streams[0].fd, .events = POLLIN},
                                {.fd = streams[1].fd, .events = POLLIN},
                                {.fd = exited ? -1 : wall_fd, .events = POLLIN},
                                {.fd = exited ? -1 : cpu_fd, .events = POLLIN},
                        };

                        if (poll(p, ELEMENTSOF(p), -1) < 0) {
                                if (errno == EINTR)
                                        continue;
                                r = -errno;
                                break;
                        }
                        for (int i = 0; i < 2; i++)
                                if (p[1 + i].revents && pump(&streams[i], cfg, &st, pidfd, buf) < 0)
                                        streams[i].fd = safe_close(streams[i].fd);
                        if (p[3].revents)
                                kill_sandbox(pidfd, &st, SANDBOX_WALL_TIME_LIMIT);
                        if (p[4].revents) {
                                uint64_t ticks, used = 0;
                                if (read(cpu_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                                        log_debug_errno(errno, "Failed to read the cpu timer: %m");
                                if (cgroup_cpu_usage(cg, &used) < 0 || used >= cfg->cpu_time_ns)
                                        kill_sandbox(pidfd, &st, SANDBOX_CPU_TIME_LIMIT);
                                else {
                                        uint64_t wait =
                                                (uint64_t) ((double) (cfg->cpu_time_ns - used) *
                                                            1e9 / (double) cpu_eff_ns);
                                        (void) arm_timer(cpu_fd, wait < 2000000 ? 2000000 : wait);
                                }
                        }
                        /*
                         * init is gone, and with it (the kernel waits for them) every process of
                         * the namespace: the pipes are at EOF, or will be once drained.
                         */
                        if (p[0].revents)
                                exited = true;
                }
                streams[0].fd = safe_close(streams[0].fd);
                streams[1].fd = safe_close(streams[1].fd);
        }
        goto reap;

kill:
        (void) pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
reap:
        while (wait4(pid, &wstatus, 0, &ru) < 0 && errno == EINTR)
                ;
        rep.wall_ns = now_ns(CLOCK_MONOTONIC) - start;
        current_pidfd = -1;
        if (rep.status == SANDBOX_INTERNAL_ERROR && rep.error[0])
                goto done;

        /* What the child said before dying, if anything. */
        (void) fcntl(error_pipe[0], F_SETFL, O_NONBLOCK);
        if (read_full(error_pipe[0], &cerr, sizeof(cerr)) == (ssize_t) sizeof(cerr)) {
                describe_child_error(&cerr, cfg, plan, &rep);
        } else {
                (void) fcntl(status_pipe[0], F_SETFL, O_NONBLOCK);
                status_read = read_full(status_pipe[0], &wstatus, sizeof(wstatus)) ==
                              (ssize_t) sizeof(wstatus);
        }

done:
        if (cg) {
                struct cgroup_stats cs = {0};

                if (pid > 0 && cgroup_read_stats(cg, &cs) >= 0) {
                        rep.cpu_ns = cs.cpu_ns;
                        rep.user_ns = cs.user_ns;
                        rep.sys_ns = cs.sys_ns;
                        rep.peak_memory = cs.memory_peak;
                        rep.oom_killed = cs.oom_kills > 0;
                }
                r = cgroup_destroy(TAKE_PTR(cg));
                if (r < 0)
                        log_debug_errno(r, "Failed to remove the sandbox's cgroup: %m");
        } else if (pid > 0) {
                rep.user_ns = (uint64_t) ru.ru_utime.tv_sec * 1000000000 +
                              (uint64_t) ru.ru_utime.tv_usec * 1000;
                rep.sys_ns = (uint64_t) ru.ru_stime.tv_sec * 1000000000 +
                             (uint64_t) ru.ru_stime.tv_usec * 1000;
                rep.cpu_ns = rep.user_ns + rep.sys_ns;
        }
        if (pid > 0 && rep.peak_memory == 0)
                rep.peak_memory = (uint64_t) ru.ru_maxrss * 1024;

        if (pid > 0 && rep.error[0] == '\0') {
                if (st.killed) {
                        rep.status = st.kill_reason;
                        rep.signal = SIGKILL;
                } else if (!status_read && cancelled) {
                        rep.status = SANDBOX_SIGNALED;
                        rep.signal = SIGKILL;
                } else if (!status_read && rep.oom_killed) {
                        /* The OOM killer chose init (a program can make itself small): still its
                         * limit. */
                        rep.status = SANDBOX_MEMORY_LIMIT;
                        rep.signal = SIGKILL;
                } else if (!status_read) {
                        set_error(&rep, SANDBOX_INTERNAL_ERROR, EPROTO,
                                  "the sandbox's init died unexpectedly");
                } else if (WIFEXITED(wstatus)) {
                        rep.status = SANDBOX_EXITED;
                        rep.exit_code = WEXITSTATUS(wstatus);
                } else if (WIFSIGNALED(wstatus)) {
                        rep.status = SANDBOX_SIGNALED;
                        rep.signal = WTERMSIG(wstatus);
                }
                if (rep.status == SANDBOX_SIGNALED && rep.signal == SIGXCPU && cfg->cpu_time_ns)
                        rep.status = SANDBOX_CPU_TIME_LIMIT;
                if (rep.oom_killed && (rep.status == SANDBOX_SIGNALED ||
                                       (rep.status == SANDBOX_EXITED && rep.exit_code != 0)))
                        rep.status = SANDBOX_MEMORY_LIMIT;
                if (rep.status == SANDBOX_CPU_TIME_LIMIT && rep.cpu_ns < cfg->cpu_time_ns)
                        rep.cpu_ns = cfg->cpu_time_ns; /* killed at the limit, by the backstop */
        }

        userns_slot_release(&slot);
        close_pair(sync_pipe);
        close_pair(error_pipe);
        close_pair(status_pipe);
        close_pair(out_pipe);
        close_pair(err_pipe);
        mount_plan_free(plan);
        *ret_report = rep;
        return 0;
}

void sandbox_cancel(void)
{
        int fd = current_pidfd;

        if (fd >= 0) {
                cancelled = 1;
                (void) pidfd_send_signal(fd, SIGKILL, NULL, 0);
        }
}

void sandbox_forward_signal(int sig)
{
        int fd = current_pidfd;

        if (fd >= 0)
                (void) pidfd_send_signal(fd, sig, NULL, 0);
}

static int open_slots_dir(const char *state_dir, int *ret)
{
        _cleanup_free_ char *dir = NULL, *fallback = NULL;
        const char *base = state_dir;
        int fd;

        if (!base && geteuid() == 0)
                base = "/run/warren";
        if (!base) {
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                int n = xdg && xdg[0] == '/'
                                ? asprintf(&fallback, "%s/warren", xdg)
                                : asprintf(&fallback, "/tmp/warren-%u", (unsigned) getuid());
                if (n < 0)
                        return -ENOMEM;
                base = fallback;
        }
        if (mkdir(base, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (asprintf(&dir, "%s/slots", base) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

static bool slot_is_stale(const char *name, void *userdata)
{
        struct sandbox_context *ctx = userdata;
        uint64_t index;

        if (strncmp(name, "sbx-", 4) != 0 || parse_uint(name + 4, 0, UINT32_MAX, &index) < 0)
                return false;
        return !userns_slot_busy(ctx->slots_fd, (unsigned) index);
}

int sandbox_context_new(const struct sandbox_context_options *opts, struct sandbox_context **ret)
{
        struct sandbox_context *ctx;
        int r;

        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->slots_fd = -EBADF;
        ctx->privileged = geteuid() == 0;
        ctx->uid_base = opts && opts->uid_base ? opts->uid_base : SANDBOX_DEFAULT_UID_BASE;
        ctx->n_slots = opts && opts->n_slots ? opts->n_slots : SANDBOX_DEFAULT_SLOTS;
        ctx->last_cap = caps_last_cap();
        ctx->ncpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (ctx->ncpus < 1)
                ctx->ncpus = 1;

        if (ctx->privileged) {
                /*
                 * The sandbox inherits our supplementary groups and, with setgroups denied in its
                 * user namespace, could never drop them: a host group 0 would follow it inside.
                 */
                if (setgroups(0, NULL) < 0) {
                        r = -errno;
                        goto fail;
                }
        }

        r = open_slots_dir(opts ? opts->state_dir : NULL, &ctx->slots_fd);
        if (r < 0)
                goto fail;

        r = seccomp_program_build(&ctx->seccomp);
        if (r < 0)
                goto fail;

        r = cgroup_root_open(opts && opts->cgroup_mount ? opts->cgroup_mount : "/sys/fs/cgroup",
                             &ctx->cgroups);
        if (r < 0) {
                log_debug_errno(r, "No usable cgroup hierarchy: %m");
                ctx->cgroups = NULL;
        } else {
                r = cgroup_sweep(ctx->cgroups, slot_is_stale, ctx);
                if (r < 0)
                        log_debug_errno(r, "Failed to sweep stale cgroups: %m");
        }
        *ret = ctx;
        return 0;
fail:
        sandbox_context_free(ctx);
        return r;
}

struct sandbox_context *sandbox_context_free(struct sandbox_context *ctx)
{
        if (!ctx)
                return NULL;
        seccomp_program_free(ctx->seccomp);
        cgroup_root_free(ctx->cgroups);
        (void) safe_close(ctx->slots_fd);
        free(ctx);
        return NULL;
}

bool sandbox_context_can_limit(const struct sandbox_context *ctx, enum sandbox_limit limit)
{
        switch (limit) {
        case SANDBOX_LIMIT_MEMORY:
                return cgroup_root_has(ctx->cgroups, CGROUP_MEMORY);
        case SANDBOX_LIMIT_PIDS:
                return cgroup_root_has(ctx->cgroups, CGROUP_PIDS);
        case SANDBOX_LIMIT_CPUS:
                return cgroup_root_has(ctx->cgroups, CGROUP_CPU);
        case SANDBOX_LIMIT_CPU_TIME:
                return cgroup_root_has(ctx->cgroups, CGROUP_CPUACCT);
        }
        return false;
}
