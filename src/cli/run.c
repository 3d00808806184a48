/* SPDX-License-Identifier: MIT */
/* warren run: one program in one sandbox, from the command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "sandbox/sandbox.h"

#define EXIT_SETUP 125

/* Limits a sandbox gets unless told otherwise: a runaway program must not hurt the host. */
#define DEFAULT_MEMORY (UINT64_C(512) << 20)
#define DEFAULT_PIDS   256
#define DEFAULT_OUTPUT (UINT64_C(64) << 20)
#define MAX_SECONDS    1e6
#define MAX_SIZE       (UINT64_C(1) << 50)
#define MAX_MOUNTS     64
#define MAX_ENV        1024

static const char help_text[] =
        "Usage: warren run [OPTIONS] [--] PROGRAM [ARG...]\n"
        "\n"
        "Runs PROGRAM in a fresh sandbox: its own user, pid, mount, network (loopback only), ipc,\n"
        "uts and cgroup namespaces, a read-only root, no capabilities, a seccomp allowlist.\n"
        "Exits with the program's exit code, 128+N if it died of signal N, 125 if warren failed,\n"
        "126 if the program cannot be executed, 127 if it is not found.\n"
        "\n"
        "File system:\n"
        "  --rootfs DIR          read-only root (default: the host's /usr, /bin, /lib*, /sbin and\n"
        "                        a minimal /etc, read-only)\n"
        "  --bind SRC[:DST]      bind host path SRC read-write at DST (default: SRC)\n"
        "  --ro-bind SRC[:DST]   bind host path SRC read-only\n"
        "  --tmpfs DST[:SIZE]    a writable tmpfs of SIZE (default 64M) at DST\n"
        "  --chdir DIR           working directory (default /tmp, a 64M tmpfs)\n"
        "  --env NAME=VALUE      add to the environment (it starts with PATH and HOME only)\n"
        "Limits (sizes take K, M, G; times are seconds, may be fractional; 'unlimited' lifts "
        "one):\n"
        "  --memory SIZE         memory, swap excluded (default 512M)\n"
        "  --pids N              processes and threads (default 256)\n"
        "  --cpus N              cpu bandwidth, in cpus (e.g. 0.5)\n"
        "  --cpu-time S          cpu time of all the sandbox's processes together\n"
        "  --wall-time S         wall-clock time\n"
        "  --output-limit SIZE   stdout + stderr together (default 64M)\n"
        "  --file-size SIZE      largest file the program may write\n"
        "  --open-files N        open files per process (default 256)\n"
        "Input and output:\n"
        "  --stdin FILE          the program's stdin (default /dev/null; '-': warren's own)\n"
        "  --stdout FILE         write the program's stdout to FILE (default: warren's stdout)\n"
        "  --stderr FILE         write the program's stderr to FILE (default: warren's stderr)\n"
        "  --report FILE         write the JSON report to FILE\n"
        "  --help                show this help\n";

enum {
        OPT_ROOTFS = 0x100,
        OPT_BIND,
        OPT_RO_BIND,
        OPT_TMPFS,
        OPT_CHDIR,
        OPT_ENV,
        OPT_MEMORY,
        OPT_PIDS,
        OPT_CPUS,
        OPT_CPU_TIME,
        OPT_WALL_TIME,
        OPT_OUTPUT_LIMIT,
        OPT_FILE_SIZE,
        OPT_OPEN_FILES,
        OPT_STDIN,
        OPT_STDOUT,
        OPT_STDERR,
        OPT_REPORT,
        OPT_HELP,
};

static const struct option options[] = {
        {"rootfs", required_argument, NULL, OPT_ROOTFS},
        {"bind", required_argument, NULL, OPT_BIND},
        {"ro-bind", required_argument, NULL, OPT_RO_BIND},
        {"tmpfs", required_argument, NULL, OPT_TMPFS},
        {"chdir", required_argument, NULL, OPT_CHDIR},
        {"env", required_argument, NULL, OPT_ENV},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"pids", required_argument, NULL, OPT_PIDS},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"cpu-time", required_argument, NULL, OPT_CPU_TIME},
        {"wall-time", required_argument, NULL, OPT_WALL_TIME},
        {"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
        {"file-size", required_argument, NULL, OPT_FILE_SIZE},
        {"open-files", required_argument, NULL, OPT_OPEN_FILES},
        {"stdin", required_argument, NULL, OPT_STDIN},
        {"stdout", required_argument, NULL, OPT_STDOUT},
        {"stderr", required_argument, NULL, OPT_STDERR},
        {"report", required_argument, NULL, OPT_REPORT},
        {"help", no_argument, NULL, OPT_HELP},
        {},
};

struct run_options {
        struct sandbox_config cfg;
        struct sandbox_mount mounts[MAX_MOUNTS];
        char *mount_strings[MAX_MOUNTS]; /* owned copies the mounts point into */
        char *env[MAX_ENV + 3];
        size_t n_env;
        bool memory_set, pids_set;
        const char *stdin_path, *stdout_path, *stderr_path, *report_path;
};

static void run_options_done(struct run_options *o)
{
        for (size_t i = 0; i < o->cfg.n_mounts; i++)
                free(o->mount_strings[i]);
}

static int bad_value(const char *opt, const char *value, int r)
{
        log_error_errno(r, "run: invalid value for --%s: '%s': %m", opt, value);
        return -EINVAL;
}

/* "unlimited" or a size. */
static int parse_limit_size(const char *opt, const char *s, uint64_t *ret)
{
        int r;

        if (strcmp(s, "unlimited") == 0) {
                *ret = 0;
                return 0;
        }
        r = parse_size(s, MAX_SIZE, ret);
        if (r >= 0 && *ret == 0)
                r = -ERANGE;
        return r < 0 ? bad_value(opt, s, r) : 0;
}

static int parse_limit_count(const char *opt, const char *s, uint64_t max, uint64_t *ret)
{
        int r;

        if (strcmp(s, "unlimited") == 0) {
                *ret = 0;
                return 0;
        }
        r = parse_uint(s, 1, max, ret);
        return r < 0 ? bad_value(opt, s, r) : 0;
}

static int add_mount(struct run_options *o, enum sandbox_mount_kind kind, const char *opt,
                     const char *arg)
{
        struct sandbox_mount *m;
        char *copy, *colon;
        int r;

        if (o->cfg.n_mounts >= MAX_MOUNTS) {
                log_error("run: too many mounts (at most %d)", MAX_MOUNTS);
                return -E2BIG;
        }
        copy = strdup(arg);
        if (!copy)
                return log_error_errno(ENOMEM, "run: %m");
        o->mount_strings[o->cfg.n_mounts] = copy;
        m = &o->mounts[o->cfg.n_mounts++];
        *m = (struct sandbox_mount){.kind = kind};

        colon = strchr(copy, ':');
        if (colon)
                *colon = '\0';
        if (copy[0] != '/')
                return bad_value(opt, arg, EINVAL);
        if (kind == SANDBOX_TMPFS) {
                m->dst = copy;
                m->size = SANDBOX_DEFAULT_TMP_SIZE;
                if (colon) {
                        r = parse_size(colon + 1, MAX_SIZE, &m->size);
                        if (r >= 0 && m->size == 0)
                                r = -ERANGE;
                        if (r < 0)
                                return bad_value(opt, arg, r);
                }
        } else {
                m->src = copy;
                m->dst = colon ? colon + 1 : copy;
                if (m->dst[0] != '/')
                        return bad_value(opt, arg, EINVAL);
        }
        return 0;
}

static bool valid_env_name(const char *s, size_t n)
{
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9')))
                        return false;
        return true;
}

static int add_env(struct run_options *o, const char *arg)
{
        const char *eq = strchr(arg, '=');
        size_t n;

        if (!eq || !valid_env_name(arg, (size_t) (eq - arg)))
                return bad_value("env", arg, EINVAL);
        n = (size_t) (eq - arg) + 1;
        for (size_t i = 0; i < o->n_env; i++)
                if (strncmp(o->env[i], arg, n) == 0) {
                        o->env[i] = (char *) arg;
                        return 0;
                }
        if (o->n_env >= MAX_ENV) {
                log_error("run: too many --env (at most %d)", MAX_ENV);
                return -E2BIG;
        }
        o->env[o->n_env++] = (char *) arg;
        return 0;
}

static void add_default_env(struct run_options *o, const char *entry)
{
        size_t n = strchr(entry, '=') - entry + 1;

        for (size_t i = 0; i < o->n_env; i++)
                if (strncmp(o->env[i], entry, n) == 0)
                        return;
        o->env[o->n_env++] = (char *) entry;
}

static int parse_options(int argc, char *argv[], struct run_options *o)
{
        int c, r = 0;

        o->cfg.stdin_fd = o->cfg.stdout_fd = o->cfg.stderr_fd = -EBADF;
        o->cfg.output_limit = DEFAULT_OUTPUT;
        o->cfg.memory = DEFAULT_MEMORY;
        o->cfg.pids = DEFAULT_PIDS;

        opterr = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                uint64_t v;

                switch (c) {
                case OPT_ROOTFS:
                        if (optarg[0] != '/' && optarg[0] != '.')
                                return bad_value("rootfs", optarg, EINVAL);
                        o->cfg.rootfs = optarg;
                        break;
                case OPT_BIND:
                        r = add_mount(o, SANDBOX_BIND_RW, "bind", optarg);
                        break;
                case OPT_RO_BIND:
                        r = add_mount(o, SANDBOX_BIND_RO, "ro-bind", optarg);
                        break;
                case OPT_TMPFS:
                        r = add_mount(o, SANDBOX_TMPFS, "tmpfs", optarg);
                        break;
                case OPT_CHDIR:
                        if (optarg[0] != '/')
                                return bad_value("chdir", optarg, EINVAL);
                        o->cfg.chdir = optarg;
                        break;
                case OPT_ENV:
                        r = add_env(o, optarg);
                        break;
                case OPT_MEMORY:
                        r = parse_limit_size("memory", optarg, &o->cfg.memory);
                        o->memory_set = true;
                        break;
                case OPT_PIDS:
                        r = parse_limit_count("pids", optarg, 1 << 22, &o->cfg.pids);
                        o->pids_set = true;
                        break;
                case OPT_CPUS: {
                        char *end = NULL;
                        errno = 0;
                        o->cfg.cpus = strtod(optarg, &end);
                        if (errno || !end || *end || !(o->cfg.cpus >= 0.01) || o->cfg.cpus > 4096)
                                return bad_value("cpus", optarg, EINVAL);
                        break;
                }
                case OPT_CPU_TIME:
                        r = parse_seconds(optarg, MAX_SECONDS, &o->cfg.cpu_time_ns);
                        if (r < 0)
                                return bad_value("cpu-time", optarg, r);
                        break;
                case OPT_WALL_TIME:
                        r = parse_seconds(optarg, MAX_SECONDS, &o->cfg.wall_time_ns);
                        if (r < 0)
                                return bad_value("wall-time", optarg, r);
                        break;
                case OPT_OUTPUT_LIMIT:
                        r = parse_limit_size("output-limit", optarg, &o->cfg.output_limit);
                        break;
                case OPT_FILE_SIZE:
                        r = parse_limit_size("file-size", optarg, &o->cfg.file_size);
                        break;
                case OPT_OPEN_FILES:
                        r = parse_uint(optarg, 4, 1 << 20, &v);
                        if (r < 0)
                                return bad_value("open-files", optarg, r);
                        o->cfg.open_files = v;
                        break;
                case OPT_STDIN:
                        o->stdin_path = optarg;
                        break;
                case OPT_STDOUT:
                        o->stdout_path = optarg;
                        break;
                case OPT_STDERR:
                        o->stderr_path = optarg;
                        break;
                case OPT_REPORT:
                        o->report_path = optarg;
                        break;
                case 'h':
                case OPT_HELP:
                        (void) fputs(help_text, stdout);
                        return 1;
                case ':':
                        log_error("run: option '%s' needs a value", argv[optind - 1]);
                        return -EINVAL;
                default:
                        log_error("run: unknown option '%s'; see 'warren run --help'",
                                  argv[optind - 1]);
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (optind >= argc) {
                log_error("run: no program given; see 'warren run --help'");
                return -EINVAL;
        }
        if (argv[optind][0] == '\0') {
                log_error("run: the program name is empty");
                return -EINVAL;
        }
        o->cfg.argv = argv + optind;

        add_default_env(o, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        add_default_env(o, "HOME=/tmp");
        o->env[o->n_env] = NULL;
        o->cfg.envp = o->env;
        o->cfg.mounts = o->mounts;
        return 0;
}

static int open_output(const char *path, const char *what)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return log_error_errno(errno, "run: cannot open %s file '%s': %m", what, path);
        return fd;
}

static int write_report(const char *path, const struct sandbox_report *rep)
{
        _cleanup_free_ char *json = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        json = sandbox_report_to_json(rep);
        if (!json)
                return log_error_errno(ENOMEM, "run: cannot format the report: %m");
        fd = open_output(path, "report");
        if (fd < 0)
                return fd;
        r = write_full(fd, json, strlen(json));
        if (r >= 0)
                r = write_full(fd, "\n", 1);
        if (r < 0)
                return log_error_errno(r, "run: cannot write the report to '%s': %m", path);
        return 0;
}

static void drop_memory(struct run_options *o)
{
        o->cfg.memory = 0;
}

static void drop_pids(struct run_options *o)
{
        o->cfg.pids = 0;
}

/*
 * A limit asked for that cannot be enforced is an error; a default one that cannot is dropped
 * with a warning (a user without delegated cgroups can still run sandboxes).
 */
static int check_limits(const struct sandbox_context *ctx, struct run_options *o)
{
        const struct {
                enum sandbox_limit limit;
                const char *option;
                bool requested;
                bool explicit;
                void (*drop)(struct run_options *o);
        } limits[] = {
                {SANDBOX_LIMIT_MEMORY, "--memory", o->cfg.memory != 0, o->memory_set, drop_memory},
                {SANDBOX_LIMIT_PIDS, "--pids", o->cfg.pids != 0, o->pids_set, drop_pids},
                {SANDBOX_LIMIT_CPUS, "--cpus", o->cfg.cpus > 0, true, NULL},
                {SANDBOX_LIMIT_CPU_TIME, "--cpu-time", o->cfg.cpu_time_ns != 0, true, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                if (!limits[i].requested || sandbox_context_can_limit(ctx, limits[i].limit))
                        continue;
                if (limits[i].explicit) {
                        log_error("run: %s cannot be enforced here: no usable cgroup controller",
                                  limits[i].option);
                        return -EOPNOTSUPP;
                }
                log_warning("run: no usable cgroup controller: the default %s limit is not "
                            "enforced",
                            limits[i].option);
                limits[i].drop(o);
        }
        return 0;
}

static void forward_signal(int sig)
{
        sandbox_forward_signal(sig);
}

int cmd_run(int argc, char *argv[])
{
        struct run_options o = {0};
        _cleanup_close_ int in_fd = -EBADF, out_fd = -EBADF, err_fd = -EBADF;
        struct sandbox_context *ctx = NULL;
        struct sandbox_report rep;
        struct sigaction sa = {.sa_handler = forward_signal};
        int r, code = EXIT_SETUP;

        r = parse_options(argc, argv, &o);
        if (r != 0) {
                run_options_done(&o);
                return r > 0 ? 0 : EXIT_SETUP;
        }

        if (o.stdin_path && strcmp(o.stdin_path, "-") == 0) {
                if (isatty(STDIN_FILENO)) {
                        log_error("run: refusing to give a terminal to the sandbox as stdin");
                        goto out;
                }
                in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (in_fd < 0) {
                        log_error_errno(errno, "run: cannot use stdin: %m");
                        goto out;
                }
        } else if (o.stdin_path) {
                in_fd = open(o.stdin_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (in_fd < 0) {
                        log_error_errno(errno, "run: cannot open stdin file '%s': %m",
                                        o.stdin_path);
                        goto out;
                }
        }
        if (o.stdout_path && (out_fd = open_output(o.stdout_path, "stdout")) < 0)
                goto out;
        if (o.stderr_path && (err_fd = open_output(o.stderr_path, "stderr")) < 0)
                goto out;
        o.cfg.stdin_fd = in_fd;
        o.cfg.stdout_fd = o.stdout_path ? out_fd : STDOUT_FILENO;
        o.cfg.stderr_fd = o.stderr_path ? err_fd : STDERR_FILENO;

        r = sandbox_context_new(NULL, &ctx);
        if (r < 0) {
                log_error_errno(r, "run: cannot initialise the sandbox runtime: %m");
                goto out;
        }
        if (check_limits(ctx, &o) < 0)
                goto out;

        (void) signal(SIGPIPE, SIG_IGN);
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);
        (void) sigaction(SIGQUIT, &sa, NULL);

        r = sandbox_run(ctx, &o.cfg, &rep);
        if (r < 0) {
                log_error_errno(r, "run: %m");
                goto out;
        }
        if (rep.status == SANDBOX_INTERNAL_ERROR || rep.status == SANDBOX_EXEC_ERROR)
                log_error("run: %s", rep.error);
        code = sandbox_report_exit_code(&rep);
        if (o.report_path && write_report(o.report_path, &rep) < 0)
                code = EXIT_SETUP;
out:
        sandbox_context_free(ctx);
        run_options_done(&o);
        return code;
}
