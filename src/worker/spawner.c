/* SPDX-License-Identifier: MIT */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_MOUNTS 64

struct spawner {
        unsigned n;
        int *fds;    /* our end of each slot's socket */
        pid_t *pids; /* the slot's process */
        /* For spawner_respawn(): the options, as arguments of `warren spawner-internal`. */
        char *cgroup_mount, *state_dir;
        uid_t uid_base;
        unsigned n_slots;
};

/* ---- the wire format: u32 length, JSON configuration; fds with the first byte ---- */

static json_t *strv_to_json(char *const *v)
{
        json_t *a = json_array();

        for (; a && v && *v; v++)
                if (json_array_append_new(a, json_string(*v)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static char *encode_config(const struct sandbox_config *cfg)
{
        json_t *o, *mounts;
        char *s;

        mounts = json_array();
        for (size_t i = 0; mounts && i < cfg->n_mounts; i++) {
                const struct sandbox_mount *m = &cfg->mounts[i];
                if (json_array_append_new(mounts, json_pack("{s:i, s:s?, s:s, s:I}", "kind",
                                                            (int) m->kind, "src", m->src, "dst",
                                                            m->dst, "size", (json_int_t) m->size)) <
                    0) {
                        json_decref(mounts);
                        return NULL;
                }
        }
        o = json_pack("{s:s?, s:o?, s:s?, s:o?, s:o?, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, "
                      "s:I, s:b, s:b, s:b}",
                      "rootfs", cfg->rootfs, "mounts", mounts, "chdir", cfg->chdir, "argv",
                      strv_to_json(cfg->argv), "envp", cfg->envp ? strv_to_json(cfg->envp) : NULL,
                      "memory", (json_int_t) cfg->memory, "pids", (json_int_t) cfg->pids, "cpus",
                      cfg->cpus, "cpu_time_ns", (json_int_t) cfg->cpu_time_ns, "wall_time_ns",
                      (json_int_t) cfg->wall_time_ns, "output_limit",
                      (json_int_t) cfg->output_limit, "file_size", (json_int_t) cfg->file_size,
                      "open_files", (json_int_t) cfg->open_files, "tmp_size",
                      (json_int_t) cfg->tmp_size, "stdin", cfg->stdin_fd >= 0, "stdout",
                      cfg->stdout_fd >= 0, "stderr", cfg->stderr_fd >= 0);
        if (!o)
                return NULL;
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* A decoded request: everything points into the JSON object, which it owns. */
struct request {
        json_t *json;
        struct sandbox_config cfg;
        struct sandbox_mount mounts[MAX_MOUNTS];
        char **argv;
        char **envp;
};

static void request_done(struct request *q)
{
        free(q->argv);
        free(q->envp);
        json_decref(q->json);
}

static int json_to_strv(json_t *a, size_t max, char ***ret)
{
        size_t n = json_array_size(a);
        char **v;

        if (!json_is_array(a) || n > max)
                return -EINVAL;
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(json_array_get(a, i));
                if (!s) {
                        free(v);
                        return -EINVAL;
                }
                v[i] = (char *) s;
        }
        *ret = v;
        return 0;
}

static uint64_t get_u64(json_t *o, const char *key)
{
        json_int_t v = json_integer_value(json_object_get(o, key));
        return v > 0 ? (uint64_t) v : 0;
}

static int decode_config(const char *buf, size_t len, struct request *q)
{
        json_t *o, *mounts, *envp;
        json_error_t err;
        int r;

        o = q->json = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
        if (!json_is_object(o))
                return -EBADMSG;
        r = json_to_strv(json_object_get(o, "argv"), 4096, &q->argv);
        if (r < 0 || !q->argv[0])
                return -EBADMSG;
        envp = json_object_get(o, "envp");
        if (envp && !json_is_null(envp) && json_to_strv(envp, 4096, &q->envp) < 0)
                return -EBADMSG;
        mounts = json_object_get(o, "mounts");
        if (json_array_size(mounts) > MAX_MOUNTS)
                return -EBADMSG;
        for (size_t i = 0; i < json_array_size(mounts); i++) {
                json_t *m = json_array_get(mounts, i);
                json_int_t kind = json_integer_value(json_object_get(m, "kind"));

                if (kind < SANDBOX_BIND_RO || kind > SANDBOX_TMPFS)
                        return -EBADMSG;
                q->mounts[i] = (struct sandbox_mount){
                        .kind = (enum sandbox_mount_kind) kind,
                        .src = json_string_value(json_object_get(m, "src")),
                        .dst = json_string_value(json_object_get(m, "dst")),
                        .size = get_u64(m, "size"),
                };
        }
        q->cfg = (struct sandbox_config){
                .rootfs = json_string_value(json_object_get(o, "rootfs")),
                .mounts = q->mounts,
                .n_mounts = json_array_size(mounts),
                .chdir = json_string_value(json_object_get(o, "chdir")),
                .argv = q->argv,
                .envp = q->envp,
                .memory = get_u64(o, "memory"),
                .pids = get_u64(o, "pids"),
                .cpus = json_real_value(json_object_get(o, "cpus")),
                .cpu_time_ns = get_u64(o, "cpu_time_ns"),
                .wall_time_ns = get_u64(o, "wall_time_ns"),
                .output_limit = get_u64(o, "output_limit"),
                .file_size = get_u64(o, "file_size"),
                .open_files = get_u64(o, "open_files"),
                .tmp_size = get_u64(o, "tmp_size"),
                .stdin_fd = -EBADF,
                .stdout_fd = -EBADF,
                .stderr_fd = -EBADF,
        };
        return 0;
}

/* Sends len bytes, the first of them with the fds attached. */
static int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
        char control[CMSG_SPACE(3 * sizeof(int))] = {0};
        struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        if (n_fds > 0) {
                struct cmsghdr *c;

                mh.msg_control = control;
                mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return write_full(sock, (const char *) buf + n, len - (size_t) n);
}

/* Receives the 4-byte header and the fds that come with it. */
static int recv_header(int sock, uint32_t *ret_len, int *fds, size_t max_fds, size_t *ret_n_fds)
{
        char control[CMSG_SPACE(3 * sizeof(int))];
        uint32_t len = 0;
        struct iovec iov = {.iov_base = &len, .iov_len = sizeof(len)};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control,
                .msg_controllen = sizeof(control),
        };
        size_t n_fds = 0;
        ssize_t n;

        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n_fds < max_fds)
                                fds[n_fds++] = fd;
                        else
                                (void) close(fd);
                }
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                for (size_t i = 0; i < n_fds; i++)
                        (void) close(fds[i]);
                return -EBADMSG;
        }
        if (n == 0)
                return 0; /* EOF */
        if ((size_t) n != sizeof(len)) {
                for (size_t i = 0; i < n_fds; i++)
                        (void) close(fds[i]);
                return -EBADMSG;
        }
        *ret_len = len;
        *ret_n_fds = n_fds;
        return 1;
}

/* ---- the spawner process ---- */

static void on_cancel(int sig)
{
        sandbox_cancel();
}

/* One request: returns 0 to go on, < 0 to stop (EOF or a broken peer). */
static int serve_one(struct sandbox_context *ctx, int sock)
{
        int fds[3] = {-EBADF, -EBADF, -EBADF};
        struct request q = {0};
        struct sandbox_report rep = {0};
        _cleanup_free_ char *buf = NULL;
        size_t n_fds = 0, k = 0;
        uint32_t len = 0;
        ssize_t n;
        int r;

        r = recv_header(sock, &len, fds, 3, &n_fds);
        if (r <= 0)
                return r == 0 ? -EPIPE : r;
        if (len == 0 || len > SPAWNER_MAX_REQUEST) {
                r = -E2BIG;
                goto out;
        }
        buf = malloc(len);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        n = read_full(sock, buf, len);
        if (n != (ssize_t) len) {
                r = n < 0 ? (int) n : -EPIPE;
                goto out;
        }
        r = decode_config(buf, len, &q);
        if (r >= 0) {
                json_t *o = q.json;
                if (json_is_true(json_object_get(o, "stdin")))
                        q.cfg.stdin_fd = k < n_fds ? fds[k++] : -EBADF;
                if (json_is_true(json_object_get(o, "stdout")))
                        q.cfg.stdout_fd = k < n_fds ? fds[k++] : -EBADF;
                if (json_is_true(json_object_get(o, "stderr")))
                        q.cfg.stderr_fd = k < n_fds ? fds[k++] : -EBADF;
                if (k != n_fds)
                        r = -EBADMSG;
        }
        if (r >= 0)
                r = sandbox_run(ctx, &q.cfg, &rep);
        if (r < 0) {
                rep = (struct sandbox_report){.status = SANDBOX_INTERNAL_ERROR, .exit_code = -1};
                rep.error_errno = -r;
                (void) snprintf(rep.error, sizeof(rep.error), "invalid sandbox request: %s",
                                strerror(-r));
        }
        r = write_full(sock, &rep, sizeof(rep));
out:
        for (size_t i = 0; i < n_fds; i++)
                (void) close(fds[i]);
        request_done(&q);
        return r;
}

_noreturn_ void spawner_serve(const struct sandbox_context_options *opts, int sock)
{
        struct sandbox_context *ctx = NULL;
        struct sigaction sa = {.sa_handler = on_cancel};
        int r;

        /* The daemon's death ends us (and, through init's own PDEATHSIG, our sandbox). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(1);
        (void) signal(SIGPIPE, SIG_IGN);
        (void) signal(SIGINT, SIG_IGN);
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(SIGUSR1, &sa, NULL) < 0)
                _exit(1);

        r = sandbox_context_new(opts, &ctx);
        if (r < 0) {
                log_error_errno(r, "spawner: cannot initialise the sandbox runtime: %m");
                _exit(1);
        }
        while (serve_one(ctx, sock) >= 0)
                ;
        sandbox_context_free(ctx);
        _exit(0);
}

/* ---- the daemon's side ---- */

int spawner_new(const struct sandbox_context_options *opts, unsigned n, struct spawner **ret)
{
        struct spawner *s;
        int r = 0;

        if (n == 0 || n > 1024)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fds = malloc(n * sizeof(int));
        s->pids = malloc(n * sizeof(pid_t));
        if (opts && opts->cgroup_mount)
                s->cgroup_mount = strdup(opts->cgroup_mount);
        if (opts && opts->state_dir)
                s->state_dir = strdup(opts->state_dir);
        s->uid_base = opts ? opts->uid_base : 0;
        s->n_slots = opts ? opts->n_slots : 0;
        if (!s->fds || !s->pids || (opts && opts->cgroup_mount && !s->cgroup_mount) ||
            (opts && opts->state_dir && !s->state_dir)) {
                spawner_free(s);
                return -ENOMEM;
        }
        for (; s->n < n; s->n++) {
                int pair[2];
                pid_t pid;

                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
                        r = -errno;
                        break;
                }
                pid = fork();
                if (pid < 0) {
                        r = -errno;
                        (void) close(pair[0]);
                        (void) close(pair[1]);
                        break;
                }
                if (pid == 0) {
                        (void) close(pair[0]);
                        /* Not the other slots' sockets: their EOF must not wait for us. */
                        for (unsigned i = 0; i < s->n; i++)
                                (void) close(s->fds[i]);
                        spawner_serve(opts, pair[1]);
                }
                (void) close(pair[1]);
                s->fds[s->n] = pair[0];
                s->pids[s->n] = pid;
        }
        if (r < 0) {
                spawner_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

struct spawner *spawner_free(struct spawner *s)
{
        if (!s)
                return NULL;
        for (unsigned i = 0; i < s->n; i++)
                s->fds[i] = safe_close(s->fds[i]);
        for (unsigned i = 0; i < s->n; i++) {
                /* EOF ends a spawner between sandboxes; a running one is cut short. */
                (void) kill(s->pids[i], SIGUSR1);
                while (waitpid(s->pids[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(s->fds);
        free(s->pids);
        free(s->cgroup_mount);
        free(s->state_dir);
        free(s);
        return NULL;
}

int spawner_respawn(struct spawner *s, unsigned slot)
{
        char fd_arg[16], uid_arg[24], slots_arg[24];
        const char *argv[16];
        size_t n = 0;
        int pair[2];
        pid_t pid;

        if (slot >= s->n)
                return -EINVAL;
        /* The old one is gone, or made to go: reap it. */
        (void) kill(s->pids[slot], SIGKILL);
        while (waitpid(s->pids[slot], NULL, 0) < 0 && errno == EINTR)
                ;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;

        /* Everything the child needs is made now: between fork() and execve() in a threaded
         * process, only async-signal-safe calls. */
        (void) snprintf(fd_arg, sizeof(fd_arg), "%d", 3);
        (void) snprintf(uid_arg, sizeof(uid_arg), "%u", (unsigned) s->uid_base);
        (void) snprintf(slots_arg, sizeof(slots_arg), "%u", s->n_slots);
        argv[n++] = "warren";
        argv[n++] = "spawner-internal";
        argv[n++] = "--fd";
        argv[n++] = fd_arg;
        argv[n++] = "--uid-base";
        argv[n++] = uid_arg;
        argv[n++] = "--slots";
        argv[n++] = slots_arg;
        if (s->cgroup_mount) {
                argv[n++] = "--cgroup-root";
                argv[n++] = s->cgroup_mount;
        }
        if (s->state_dir) {
                argv[n++] = "--state-dir";
                argv[n++] = s->state_dir;
        }
        argv[n] = NULL;

        pid = fork();
        if (pid < 0) {
                int r = -errno;
                (void) close(pair[0]);
                (void) close(pair[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t none;

                (void) sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                if (pair[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(pair[1], 3) < 0)
                        _exit(1);
                if (close_range(4, ~0U, 0) < 0)
                        _exit(1);
                (void) execv("/proc/self/exe", (char *const *) argv);
                _exit(127);
        }
        (void) close(pair[1]);
        (void) close(s->fds[slot]);
        s->fds[slot] = pair[0];
        s->pids[slot] = pid;
        return 0;
}

unsigned spawner_size(const struct spawner *s)
{
        return s->n;
}

int spawner_start(struct spawner *s, unsigned slot, const struct sandbox_config *cfg)
{
        _cleanup_free_ char *json = NULL;
        _cleanup_free_ char *msg = NULL;
        int fds[3];
        size_t n_fds = 0, len;
        uint32_t len32;

        if (slot >= s->n || !cfg || !cfg->argv || !cfg->argv[0])
                return -EINVAL;
        if (cfg->n_mounts > MAX_MOUNTS)
                return -E2BIG;
        json = encode_config(cfg);
        if (!json)
                return -ENOMEM;
        len = strlen(json);
        if (len > SPAWNER_MAX_REQUEST)
                return -E2BIG;
        msg = malloc(sizeof(len32) + len);
        if (!msg)
                return -ENOMEM;
        len32 = (uint32_t) len;
        memcpy(msg, &len32, sizeof(len32));
        memcpy(msg + sizeof(len32), json, len);

        if (cfg->stdin_fd >= 0)
                fds[n_fds++] = cfg->stdin_fd;
        if (cfg->stdout_fd >= 0)
                fds[n_fds++] = cfg->stdout_fd;
        if (cfg->stderr_fd >= 0)
                fds[n_fds++] = cfg->stderr_fd;

        return send_with_fds(s->fds[slot], msg, sizeof(len32) + len, fds, n_fds);
}

int spawner_fd(const struct spawner *s, unsigned slot)
{
        if (slot >= s->n)
                return -EINVAL;
        return s->fds[slot];
}

int spawner_finish(struct spawner *s, unsigned slot, struct sandbox_report *ret)
{
        struct sandbox_report rep;
        ssize_t n;

        if (slot >= s->n)
                return -EINVAL;
        n = read_full(s->fds[slot], &rep, sizeof(rep));
        if (n < 0)
                return (int) n;
        if (n != (ssize_t) sizeof(rep))
                return -EPIPE;
        rep.error[sizeof(rep.error) - 1] = '\0';
        *ret = rep;
        return 0;
}

int spawner_run(struct spawner *s, unsigned slot, const struct sandbox_config *cfg,
                struct sandbox_report *ret)
{
        int r;

        r = spawner_start(s, slot, cfg);
        if (r < 0)
                return r;
        return spawner_finish(s, slot, ret);
}

int spawner_cancel(struct spawner *s, unsigned slot)
{
        if (slot >= s->n)
                return -EINVAL;
        if (kill(s->pids[slot], SIGUSR1) < 0)
                return -errno;
        return 0;
}
