/* SPDX-License-Identifier: MIT */
/*
 * bench-spawn: how fast the sandbox library itself starts, runs and reaps sandboxes.
 *
 *   bench-spawn ROOTFS [N] [P]
 *
 * Runs ROOTFS/bin/true (as /bin/true, with ROOTFS as the sandbox's root, a 64M memory and a
 * 32-process limit, stdout and stderr discarded) N times (default 500):
 *   - sequential: one process, one context, one sandbox after the other;
 *   - parallel:   P processes (default: the number of online cpus), each with its own context,
 *                 each running N/P sandboxes; all start together when a pipe is closed.
 * For each it prints sandboxes per second (over the wall time of the whole batch) and the median
 * and 90th percentile of one sandbox_run() call. Without exec of a CLI or a Python harness in the
 * way, this is the library's own cost per sandbox.
 *
 * Any sandbox that does not end as "exited" with code 0 stops the bench with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "sandbox/sandbox.h"

#define DEFAULT_N 500
#define MAX_N     1000000
#define MAX_P     1024
#define MEMORY    (UINT64_C(64) << 20)
#define PIDS      32

struct batch {
        const char *name;
        unsigned processes;
        unsigned n;          /* sandboxes run */
        uint64_t elapsed_ns; /* wall time of the whole batch */
        uint64_t *lat_ns;    /* n latencies of sandbox_run() */
};

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct)
{
        size_t rank = (n * pct + 99) / 100;

        return v[rank > 0 ? rank - 1 : 0];
}

static void print_batch(struct batch *b)
{
        qsort(b->lat_ns, b->n, sizeof(uint64_t), cmp_u64);
        printf("library %s (%u process%s): %u sandboxes in %.3f s = %.1f sandboxes/s; "
               "per sandbox median %.2f ms, p90 %.2f ms\n",
               b->name, b->processes, b->processes == 1 ? "" : "es", b->n, ns_to_s(b->elapsed_ns),
               (double) b->n / ns_to_s(b->elapsed_ns),
               (double) percentile(b->lat_ns, b->n, 50) / 1e6,
               (double) percentile(b->lat_ns, b->n, 90) / 1e6);
        fflush(stdout);
}

static int new_context(const char *who, struct sandbox_context **ret)
{
        int r = sandbox_context_new(NULL, ret);

        if (r < 0) {
                fprintf(stderr, "bench-spawn: %s: cannot create the sandbox context: %s\n", who,
                        strerror(-r));
                return r;
        }
        if (!sandbox_context_can_limit(*ret, SANDBOX_LIMIT_MEMORY) ||
            !sandbox_context_can_limit(*ret, SANDBOX_LIMIT_PIDS)) {
                fprintf(stderr,
                        "bench-spawn: %s: cannot enforce memory and pids limits here "
                        "(no usable cgroup controllers)\n",
                        who);
                *ret = sandbox_context_free(*ret);
                return -EOPNOTSUPP;
        }
        return 0;
}

/* Runs n sandboxes, storing each one's latency in lat_ns. Prints and returns < 0 on failure. */
static int run_many(struct sandbox_context *ctx, const struct sandbox_config *cfg, unsigned n,
                    uint64_t *lat_ns, const char *who)
{
        for (unsigned i = 0; i < n; i++) {
                struct sandbox_report rep;
                uint64_t t0 = now_ns(CLOCK_MONOTONIC);
                int r = sandbox_run(ctx, cfg, &rep);

                lat_ns[i] = now_ns(CLOCK_MONOTONIC) - t0;
                if (r < 0) {
                        fprintf(stderr, "bench-spawn: %s: sandbox %u: sandbox_run() failed: %s\n",
                                who, i, strerror(-r));
                        return r;
                }
                if (rep.status != SANDBOX_EXITED || rep.exit_code != 0) {
                        fprintf(stderr,
                                "bench-spawn: %s: sandbox %u ended as '%s' (exit code %d, "
                                "signal %d)%s%s\n",
                                who, i, sandbox_status_to_string(rep.status), rep.exit_code,
                                rep.signal, rep.error[0] ? ": " : "", rep.error);
                        return -EPROTO;
                }
        }
        return 0;
}

static int bench_sequential(const struct sandbox_config *cfg, struct batch *b)
{
        struct sandbox_context *ctx = NULL;
        uint64_t t0;
        int r;

        r = new_context("sequential", &ctx);
        if (r < 0)
                return r;
        t0 = now_ns(CLOCK_MONOTONIC);
        r = run_many(ctx, cfg, b->n, b->lat_ns, "sequential");
        b->elapsed_ns = now_ns(CLOCK_MONOTONIC) - t0;
        (void) sandbox_context_free(ctx);
        return r;
}

_noreturn_ static void worker(const struct sandbox_config *cfg, unsigned n, uint64_t *lat_ns,
                              int go_fd, unsigned index)
{
        struct sandbox_context *ctx = NULL;
        char who[32], c;
        ssize_t k;

        (void) snprintf(who, sizeof(who), "parallel worker %u", index);
        /* The context is made before the start: its cost is not a sandbox's. */
        if (new_context(who, &ctx) < 0)
                _exit(1);
        do
                k = read(go_fd, &c, 1);
        while (k < 0 && errno == EINTR);
        if (k != 0) /* EOF is the start signal; anything else means the parent is confused */
                _exit(1);
        (void) close(go_fd);
        if (run_many(ctx, cfg, n, lat_ns, who) < 0)
                _exit(1);
        (void) sandbox_context_free(ctx);
        _exit(0);
}

static int bench_parallel(const struct sandbox_config *cfg, struct batch *b)
{
        pid_t pids[MAX_P];
        unsigned started = 0, per = b->n / b->processes, failed = 0;
        uint64_t *shared, t0;
        size_t size = (size_t) per * b->processes * sizeof(uint64_t);
        int go[2], r = 0;

        /* Each worker writes its latencies into its own slice of a shared mapping. */
        shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED) {
                r = -errno;
                fprintf(stderr, "bench-spawn: cannot map %zu bytes: %s\n", size, strerror(errno));
                return r;
        }
        if (pipe2(go, O_CLOEXEC) < 0) {
                r = -errno;
                fprintf(stderr, "bench-spawn: cannot create a pipe: %s\n", strerror(errno));
                (void) munmap(shared, size);
                return r;
        }
        fflush(stdout);
        fflush(stderr);
        for (; started < b->processes; started++) {
                pid_t pid = fork();

                if (pid < 0) {
                        r = -errno;
                        fprintf(stderr, "bench-spawn: cannot fork worker %u: %s\n", started,
                                strerror(errno));
                        break;
                }
                if (pid == 0) {
                        (void) close(go[1]);
                        worker(cfg, per, shared + (size_t) started * per, go[0], started);
                }
                pids[started] = pid;
        }
        (void) close(go[0]);
        if (r < 0) {
                /* Workers that did start see a byte instead of EOF and give up. */
                (void) write_full(go[1], "x", 1);
        }
        /*
         * Contexts are made before the start; give the workers a moment to make theirs so that
         * the clock measures sandboxes only. A worker that is late merely starts late.
         */
        if (r == 0)
                (void) nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
        t0 = now_ns(CLOCK_MONOTONIC);
        (void) close(go[1]);

        for (unsigned i = 0; i < started; i++) {
                int status;
                pid_t p;

                do
                        p = waitpid(pids[i], &status, 0);
                while (p < 0 && errno == EINTR);
                if (p < 0) {
                        fprintf(stderr, "bench-spawn: cannot wait for worker %u: %s\n", i,
                                strerror(errno));
                        failed++;
                } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr,
                                "bench-spawn: parallel worker %u failed (wait status 0x%x)\n", i,
                                (unsigned) status);
                        failed++;
                }
        }
        b->elapsed_ns = now_ns(CLOCK_MONOTONIC) - t0;
        if (r == 0 && failed > 0)
                r = -EPROTO;
        if (r == 0) {
                b->n = per * b->processes;
                memcpy(b->lat_ns, shared, size);
        }
        (void) munmap(shared, size);
        return r;
}

static int parse_count(const char *s, const char *what, unsigned max, unsigned *ret)
{
        uint64_t v;

        if (parse_uint(s, 1, max, &v) < 0) {
                fprintf(stderr, "bench-spawn: invalid %s '%s' (1..%u)\n", what, s, max);
                return -EINVAL;
        }
        *ret = (unsigned) v;
        return 0;
}

int main(int argc, char *argv[])
{
        char *prog_argv[] = {"/bin/true", NULL};
        char true_path[4096];
        unsigned n = DEFAULT_N, p;
        long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
        struct batch seq = {.name = "sequential", .processes = 1};
        struct batch par = {.name = "parallel"};
        struct stat st;
        int r;

        if (argc < 2 || argc > 4 || argv[1][0] == '-') {
                fprintf(stderr,
                        "Usage: %s ROOTFS [N] [P]\n"
                        "Runs ROOTFS/bin/true in N sandboxes (default %d) one after the "
                        "other, then in P processes at once (default: the cpus).\n",
                        argv[0], DEFAULT_N);
                return 2;
        }
        p = ncpus > 0 ? (unsigned) ncpus : 1;
        if (argc > 2 && parse_count(argv[2], "N", MAX_N, &n) < 0)
                return 2;
        if (argc > 3 && parse_count(argv[3], "P", MAX_P, &p) < 0)
                return 2;
        if (p > n) {
                fprintf(stderr, "bench-spawn: P (%u) must not exceed N (%u)\n", p, n);
                return 2;
        }
        if (snprintf(true_path, sizeof(true_path), "%s/bin/true", argv[1]) >=
            (int) sizeof(true_path)) {
                fprintf(stderr, "bench-spawn: path too long: '%s'\n", argv[1]);
                return 2;
        }
        if (stat(true_path, &st) < 0) {
                fprintf(stderr, "bench-spawn: cannot find '%s': %s\n", true_path, strerror(errno));
                return 1;
        }
        struct sandbox_config cfg = {
                .rootfs = argv[1],
                .argv = prog_argv,
                .memory = MEMORY,
                .pids = PIDS,
                .stdin_fd = -1,
                .stdout_fd = -1,
                .stderr_fd = -1,
        };

        seq.n = n;
        par.n = n;
        par.processes = p;
        seq.lat_ns = calloc(n, sizeof(uint64_t));
        par.lat_ns = calloc(n, sizeof(uint64_t));
        if (!seq.lat_ns || !par.lat_ns) {
                fprintf(stderr, "bench-spawn: out of memory\n");
                return 1;
        }

        r = bench_sequential(&cfg, &seq);
        if (r < 0)
                return 1;
        print_batch(&seq);

        r = bench_parallel(&cfg, &par);
        if (r < 0)
                return 1;
        print_batch(&par);

        free(seq.lat_ns);
        free(par.lat_ns);
        return 0;
}
