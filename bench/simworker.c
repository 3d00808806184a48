/* SPDX-License-Identifier: MIT */
/*
 * simworker: N simulated workers for the master's benchmark (bench/cluster.py).
 *
 * Each simulated worker is a DEALER of its own, CURVE with the master's key pinned, speaking
 * src/net/proto.h as a real worker would, but running nothing: READY when it starts, HEARTBEAT
 * every --heartbeat-ms with the leases it holds, and for each ASSIGN at once one OUTPUT chunk and
 * a RESULT whose stdout is "ok\n" ("lie\n" with --lie, so that replicas disagree). A lease is
 * held until its RESULT_ACK (or a CANCEL).
 *
 * One thread, one epoll set over every socket's ZMQ_FD (zmq_poll() over 10 000 sockets would
 * cost O(N) getsockopt() calls per wake-up, which shows in the latencies we measure). ZMQ_FD is
 * a notification, not readiness: on a wake-up, and after every send on a socket, the socket is
 * read while ZMQ_EVENTS says POLLIN.
 *
 * File descriptors: libzmq gives every socket a mailbox (one eventfd) and its I/O thread one TCP
 * socket per connection, so a worker costs 2 descriptors, plus a handful for the process. With
 * RLIMIT_NOFILE raised to its hard limit (20 000 here) one process holds about 9 900 workers;
 * --shard k/K runs the k-th of K slices of --workers so that several processes share them.
 *
 * Output: one JSON line on stdout at the end, {"workers", "connected", "assigned", "acked",
 * "errors", ...}; with --stats FILE one JSON line per ASSIGN, {"job", "replica", "worker",
 * "recv_ns"} (CLOCK_REALTIME), for the bench to set against its submission times.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/param.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "net/proto.h"

#define FDS_PER_WORKER 2
#define FDS_SPARE      64
#define EVENTS_MAX     256
#define SIG_TAG        UINT32_MAX
#define STDOUT_OK      "ok\n"
#define STDOUT_LIE     "lie\n"
/* sha256 of "ok\n", "lie\n" and "" (the results carry them as a real worker's would). */
#define SHA256_OK    "dc51b8c96c2d745df3bd5590d990230a482fd247123599548e0632fdbf97fc22"
#define SHA256_LIE   "24b4d2157737e1449ef7840538f4519e2dc709d5f01694e74adfabd32a7b1f06"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct options {
        const char *master;
        const char *master_key_file;
        const char *key_file;
        const char *keys_dir;
        const char *name;
        const char *stats;
        unsigned workers;
        unsigned slots;
        unsigned heartbeat_ms;
        unsigned connect_rate; /* connections started per second */
        unsigned io_threads;
        unsigned shard, shards;
        double duration_s;
        bool lie;
        bool keygen_only;
};

struct held {
        char lease[33];
        uint64_t assigned_ns; /* CLOCK_MONOTONIC */
};

struct worker {
        zsock_t *sock;
        unsigned index; /* global, across shards */
        char name[NET_NAME_MAX + 1];
        struct net_keypair kp;
        bool welcomed, ever_welcomed, need_ready;
        struct held *held;
        size_t n_held, cap_held;
};

struct counters {
        uint64_t connected, assigned, results, acked, rejected, cancelled, errors, send_errors,
                recv_errors, master_errors, disconnects;
};

struct sim {
        struct options o;
        char master_key[41];
        struct worker *w;
        unsigned n, first; /* this shard's workers: indices first..first+n */
        unsigned started;  /* sockets created and connecting so far */
        int epfd;
        FILE *stats;
        struct counters c;
        uint32_t *rtt_us; /* ASSIGN to RESULT_ACK, per acked lease */
        size_t n_rtt, cap_rtt;
        uint64_t t0;
};

/* ---- keys ---- */

static int worker_key_path(const struct options *o, unsigned i, char **ret)
{
        return asprintf(ret, "%s/w%u", o->keys_dir, i) < 0 ? -ENOMEM : 0;
}

/* DIR/w<i>.secret, made if missing. */
static int worker_key(const struct options *o, unsigned i, struct net_keypair *ret)
{
        _cleanup_free_ char *base = NULL, *secret = NULL;
        struct net_keypair kp;
        int r;

        if (worker_key_path(o, i, &base) < 0 || asprintf(&secret, "%s.secret", base) < 0)
                return -ENOMEM;
        r = net_key_read_secret(secret, ret);
        if (r != -ENOENT)
                return r;
        r = net_keygen(&kp);
        if (r < 0)
                return r;
        r = net_key_write(base, &kp);
        if (r == -EEXIST) /* another shard made it meanwhile */
                return net_key_read_secret(secret, ret);
        if (r < 0)
                return r;
        *ret = kp;
        return 0;
}

static void worker_name(const struct options *o, unsigned i, char ret[static NET_NAME_MAX + 1])
{
        (void) snprintf(ret, NET_NAME_MAX + 1, "%s-%u", o->name, i);
}

/* DIR/keys.txt: "name public_key" per worker, written whole, then renamed into place. */
static int write_keys_txt(const struct options *o, const struct worker *w, unsigned n)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_fclose_ FILE *f = NULL;

        if (asprintf(&path, "%s/keys.txt", o->keys_dir) < 0 ||
            asprintf(&tmp, "%s/.keys.txt.%d", o->keys_dir, (int) getpid()) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "%s %s\n", w[i].name, w[i].kp.public_key);
        if (fflush(f) != 0 || ferror(f)) {
                (void) unlink(tmp);
                return -EIO;
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;

                (void) unlink(tmp);
                return r;
        }
        return 0;
}

/* ---- messages ---- */

static void note_send(struct sim *s, int r)
{
        if (r < 0) {
                s->c.errors++;
                s->c.send_errors++;
        }
}

static json_t *leases_json(const struct worker *w)
{
        json_t *a = json_array();

        for (size_t i = 0; a && i < w->n_held; i++)
                if (json_array_append_new(a, json_string(w->held[i].lease)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static unsigned free_slots(const struct sim *s, const struct worker *w)
{
        return w->n_held >= s->o.slots ? 0 : s->o.slots - (unsigned) w->n_held;
}

static void send_ready(struct sim *s, struct worker *w)
{
        json_t *b = json_pack("{s:s, s:I, s:I, s:I, s:[s], s:o*}", "name", w->name, "slots",
                              (json_int_t) s->o.slots, "cpus", (json_int_t) s->o.slots, "memory",
                              (json_int_t) s->o.slots << 30, "profiles", "host", "leases",
                              leases_json(w));

        note_send(s, net_send(w->sock, NULL, NET_READY, b, NULL, 0));
        w->need_ready = false;
}

static void send_heartbeat(struct sim *s, struct worker *w)
{
        json_t *b = json_pack("{s:o*, s:I}", "leases", leases_json(w), "free",
                              (json_int_t) free_slots(s, w));

        note_send(s, net_send(w->sock, NULL, NET_HEARTBEAT, b, NULL, 0));
}

static json_t *blob_json(const char *text, const char *sha)
{
        return json_pack("{s:I, s:s, s:s}", "size", (json_int_t) strlen(text), "sha256", sha,
                         "text", text);
}

/* What runner.c's step_json() makes of a run that printed out and exited 0. */
static json_t *result_json(bool lie)
{
        const char *out = lie ? STDOUT_LIE : STDOUT_OK;
        json_t *report =
                json_pack("{s:s, s:i, s:n, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:b, s:n}", "status",
                          "exited", "exit_code", 0, "signal", "wall_time", 0.0, "cpu_time", 0.0,
                          "user_time", 0.0, "sys_time", 0.0, "peak_memory", (json_int_t) 0,
                          "stdout_bytes", (json_int_t) strlen(out), "stderr_bytes", (json_int_t) 0,
                          "oom_killed", false, "error");

        return json_pack("{s:{s:o*, s:o*, s:o*}, s:i}", "run", "report", report, "stdout",
                         blob_json(out, lie ? SHA256_LIE : SHA256_OK), "stderr",
                         blob_json("", SHA256_EMPTY), "exit_code", 0);
}

static int held_add(struct worker *w, const char *lease, uint64_t now)
{
        if (w->n_held == w->cap_held) {
                size_t cap = w->cap_held ? w->cap_held * 2 : 4;
                struct held *h = reallocarray(w->held, cap, sizeof(*h));

                if (!h)
                        return -ENOMEM;
                w->held = h;
                w->cap_held = cap;
        }
        (void) snprintf(w->held[w->n_held].lease, sizeof(w->held[0].lease), "%s", lease);
        w->held[w->n_held++].assigned_ns = now;
        return 0;
}

/* Drops lease; its assignment time, or 0 if it was not held. */
static uint64_t held_drop(struct worker *w, const char *lease)
{
        for (size_t i = 0; i < w->n_held; i++)
                if (strcmp(w->held[i].lease, lease) == 0) {
                        uint64_t t = w->held[i].assigned_ns;

                        w->held[i] = w->held[--w->n_held];
                        return t;
                }
        return 0;
}

static void rtt_add(struct sim *s, uint64_t ns)
{
        if (s->n_rtt == s->cap_rtt) {
                size_t cap = s->cap_rtt ? s->cap_rtt * 2 : 4096;
                uint32_t *a = reallocarray(s->rtt_us, cap, sizeof(*a));

                if (!a)
                        return; /* a sample less */
                s->rtt_us = a;
                s->cap_rtt = cap;
        }
        s->rtt_us[s->n_rtt++] = ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t) (ns / 1000);
}

static void on_assign(struct sim *s, struct worker *w, const json_t *body)
{
        uint64_t recv_real = now_ns(CLOCK_REALTIME), recv_mono = now_ns(CLOCK_MONOTONIC);
        const char *lease = json_string_value(json_object_get(body, "lease"));
        const char *job = json_string_value(json_object_get(body, "job"));
        json_int_t replica = json_integer_value(json_object_get(body, "replica"));
        const char *out = s->o.lie ? STDOUT_LIE : STDOUT_OK;
        struct iovec chunk = {(void *) out, strlen(out)};
        json_t *b;

        s->c.assigned++;
        if (s->stats) {
                _cleanup_free_ char *job_json =
                        json_dumps(json_object_get(body, "job"), JSON_ENCODE_ANY);

                fprintf(s->stats,
                        "{\"job\":%s,\"replica\":%" JSON_INTEGER_FORMAT
                        ",\"worker\":\"%s\",\"recv_ns\":%" PRIu64 "}\n",
                        job_json ? job_json : "null", replica, w->name, recv_real);
        }
        if (!lease || !job || held_add(w, lease, recv_mono) < 0) {
                s->c.errors++;
                return;
        }

        b = json_pack("{s:s, s:s, s:s}", "lease", lease, "step", "run", "stream", "stdout");
        note_send(s, net_send(w->sock, NULL, NET_OUTPUT, b, &chunk, 1));
        b = json_pack("{s:s, s:o*, s:[]}", "lease", lease, "result", result_json(s->o.lie),
                      "blobs");
        note_send(s, net_send(w->sock, NULL, NET_RESULT, b, NULL, 0));
        s->c.results++;
}

static void on_message(struct sim *s, struct worker *w, const struct net_msg *m)
{
        const char *lease = json_string_value(json_object_get(m->body, "lease"));
        uint64_t t;

        switch (m->command) {
        case NET_WELCOME:
                w->welcomed = true;
                if (!w->ever_welcomed) {
                        w->ever_welcomed = true;
                        s->c.connected++;
                        if (s->c.connected == s->n)
                                log_info("simworker: all %u workers welcomed after %.2f s", s->n,
                                         ns_to_s(now_ns(CLOCK_MONOTONIC) - s->t0));
                }
                return;
        case NET_ASSIGN:
                on_assign(s, w, m->body);
                return;
        case NET_RESULT_ACK:
                t = lease ? held_drop(w, lease) : 0;
                if (t == 0) {
                        s->c.errors++; /* an ack of nothing we hold */
                        return;
                }
                rtt_add(s, now_ns(CLOCK_MONOTONIC) - t);
                if (json_is_true(json_object_get(m->body, "accepted")))
                        s->c.acked++;
                else
                        s->c.rejected++;
                return;
        case NET_CANCEL:
                if (lease && held_drop(w, lease) > 0)
                        s->c.cancelled++;
                return;
        case NET_ERROR:
                s->c.errors++;
                s->c.master_errors++;
                /* Not about a lease: the master does not know this connection (it restarted,
                 * or dropped us); say READY again at the next heartbeat. */
                if (!lease)
                        w->need_ready = true;
                return;
        case NET_DISCONNECT:
                s->c.disconnects++;
                w->welcomed = false;
                w->need_ready = true;
                return;
        case NET_HEARTBEAT:
        case NET_BLOB:
                return;
        case NET_READY:
        case NET_JOIN:
        case NET_OUTPUT:
        case NET_RESULT:
        case NET_FETCH:
        case _NET_COMMAND_MAX:
                break;
        }
        s->c.errors++;
}

/* Reads what waits on w's socket (after a wake-up of its ZMQ_FD, and after each send). */
static void service(struct sim *s, struct worker *w)
{
        while (zsock_events(w->sock) & ZMQ_POLLIN) {
                struct net_msg m = {};
                int r = net_recv(w->sock, NET_TO_WORKER, &m, NULL, NULL);

                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        s->c.errors++;
                        s->c.recv_errors++;
                        continue;
                }
                on_message(s, w, &m);
                net_msg_done(&m);
        }
}

/* ---- sockets ---- */

static int worker_start(struct sim *s, struct worker *w)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) (w - s->w)};
        int r;

        w->sock = zsock_new(ZMQ_DEALER);
        if (!w->sock)
                return -ENOMEM;
        r = net_socket_client(w->sock, &w->kp, s->master_key, s->o.heartbeat_ms);
        if (r < 0)
                return r;
        if (zsock_connect(w->sock, "%s", s->o.master) < 0)
                return -EINVAL;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, zsock_fd(w->sock), &ev) < 0)
                return -errno;
        send_ready(s, w); /* queued until the handshake is done */
        service(s, w);
        return 0;
}

/* Heartbeats are spread evenly: worker i's fall at t0 + round * period + i * period / n. */
struct beat {
        unsigned cursor;
        uint64_t round;
};

static uint64_t beat_due(const struct sim *s, const struct beat *b)
{
        uint64_t period = (uint64_t) s->o.heartbeat_ms * 1000000;

        return s->t0 + b->round * period + period * b->cursor / s->n;
}

static void beats(struct sim *s, struct beat *b, uint64_t now)
{
        while (beat_due(s, b) <= now) {
                struct worker *w = &s->w[b->cursor];

                if (w->sock) {
                        if (w->need_ready)
                                send_ready(s, w);
                        else if (w->welcomed)
                                send_heartbeat(s, w);
                        service(s, w);
                }
                if (++b->cursor == s->n) {
                        b->cursor = 0;
                        b->round++;
                }
        }
}

/* ---- set-up ---- */

static int raise_nofile(unsigned workers)
{
        struct rlimit rl;
        rlim_t need = (rlim_t) workers * FDS_PER_WORKER + FDS_SPARE;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        if (rl.rlim_cur < need) {
                log_error("simworker: %u workers need %llu file descriptors, the hard limit is "
                          "%llu: split them with --shard k/K over several processes (at most "
                          "%llu workers each)",
                          workers, (unsigned long long) need, (unsigned long long) rl.rlim_cur,
                          (unsigned long long) ((rl.rlim_cur - FDS_SPARE) / FDS_PER_WORKER));
                return -EMFILE;
        }
        return 0;
}

static int parse_shard(const char *v, unsigned *ret_k, unsigned *ret_n)
{
        unsigned k, n;
        int end = 0;

        if (sscanf(v, "%u/%u%n", &k, &n, &end) != 2 || v[end] || n == 0 || k >= n)
                return -EINVAL;
        *ret_k = k;
        *ret_n = n;
        return 0;
}

static void usage(FILE *f)
{
        fputs("Usage: simworker --master tcp://HOST:PORT --master-key PUBFILE\n"
              "                 (--key SECRETFILE | --keys-dir DIR) --workers N [options]\n"
              "N simulated workers (one CURVE DEALER each) that answer every ASSIGN at once.\n"
              "  --slots S            slots each announces (default 1)\n"
              "  --heartbeat-ms MS    heartbeat period (default 1000)\n"
              "  --lie                answer \"lie\\n\" instead of \"ok\\n\"\n"
              "  --name PREFIX        workers are PREFIX-<i> (default \"sim\")\n"
              "  --stats FILE         one JSON line per ASSIGN: job, replica, worker, recv_ns\n"
              "  --duration S         stop after S seconds (default: at SIGINT/SIGTERM)\n"
              "  --shard k/K          run the k-th of K equal slices of the N workers\n"
              "  --connect-rate R     connections started per second (default 2000)\n"
              "  --io-threads T       ZeroMQ I/O threads (default 1)\n"
              "  --keygen-only        make the missing keys of all N in --keys-dir, write\n"
              "                       DIR/keys.txt (\"name public_key\" lines) and exit\n"
              "With --keys-dir, worker i uses DIR/w<i>.secret (made if missing); an unsharded\n"
              "run writes DIR/keys.txt too. With --key all N share one key pair.\n"
              "At the end: DISCONNECT, and one JSON line on stdout.\n",
              f);
}

enum {
        OPT_MASTER = 256,
        OPT_MASTER_KEY,
        OPT_KEY,
        OPT_KEYS_DIR,
        OPT_WORKERS,
        OPT_SLOTS,
        OPT_HEARTBEAT_MS,
        OPT_LIE,
        OPT_NAME,
        OPT_STATS,
        OPT_DURATION,
        OPT_SHARD,
        OPT_CONNECT_RATE,
        OPT_IO_THREADS,
        OPT_KEYGEN_ONLY,
};

static int parse_args(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = {
                {"master", required_argument, NULL, OPT_MASTER},
                {"master-key", required_argument, NULL, OPT_MASTER_KEY},
                {"key", required_argument, NULL, OPT_KEY},
                {"keys-dir", required_argument, NULL, OPT_KEYS_DIR},
                {"workers", required_argument, NULL, OPT_WORKERS},
                {"slots", required_argument, NULL, OPT_SLOTS},
                {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT_MS},
                {"lie", no_argument, NULL, OPT_LIE},
                {"name", required_argument, NULL, OPT_NAME},
                {"stats", required_argument, NULL, OPT_STATS},
                {"duration", required_argument, NULL, OPT_DURATION},
                {"shard", required_argument, NULL, OPT_SHARD},
                {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
                {"io-threads", required_argument, NULL, OPT_IO_THREADS},
                {"keygen-only", no_argument, NULL, OPT_KEYGEN_ONLY},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        uint64_t v;
        int c;

        *o = (struct options){.name = "sim",
                              .slots = 1,
                              .heartbeat_ms = 1000,
                              .connect_rate = 2000,
                              .io_threads = 1,
                              .shards = 1};
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case OPT_MASTER:
                        o->master = optarg;
                        break;
                case OPT_MASTER_KEY:
                        o->master_key_file = optarg;
                        break;
                case OPT_KEY:
                        o->key_file = optarg;
                        break;
                case OPT_KEYS_DIR:
                        o->keys_dir = optarg;
                        break;
                case OPT_WORKERS:
                        if (parse_uint(optarg, 1, 1000000, &v) < 0)
                                return log_error_errno(-EINVAL, "--workers: 1 to 1000000");
                        o->workers = (unsigned) v;
                        break;
                case OPT_SLOTS:
                        if (parse_uint(optarg, 1, 4096, &v) < 0)
                                return log_error_errno(-EINVAL, "--slots: 1 to 4096");
                        o->slots = (unsigned) v;
                        break;
                case OPT_HEARTBEAT_MS:
                        if (parse_uint(optarg, 10, 3600000, &v) < 0)
                                return log_error_errno(-EINVAL, "--heartbeat-ms: 10 to 3600000");
                        o->heartbeat_ms = (unsigned) v;
                        break;
                case OPT_LIE:
                        o->lie = true;
                        break;
                case OPT_NAME:
                        if (!*optarg || strlen(optarg) > NET_NAME_MAX - 8)
                                return log_error_errno(-EINVAL, "--name: 1 to %d bytes",
                                                       NET_NAME_MAX - 8);
                        o->name = optarg;
                        break;
                case OPT_STATS:
                        o->stats = optarg;
                        break;
                case OPT_DURATION: {
                        char *end = NULL;

                        o->duration_s = strtod(optarg, &end);
                        if (!end || *end || !(o->duration_s > 0))
                                return log_error_errno(-EINVAL, "--duration: seconds > 0");
                        break;
                }
                case OPT_SHARD:
                        if (parse_shard(optarg, &o->shard, &o->shards) < 0)
                                return log_error_errno(-EINVAL, "--shard: k/K with k < K");
                        break;
                case OPT_CONNECT_RATE:
                        if (parse_uint(optarg, 1, 1000000, &v) < 0)
                                return log_error_errno(-EINVAL, "--connect-rate: 1 to 1000000");
                        o->connect_rate = (unsigned) v;
                        break;
                case OPT_IO_THREADS:
                        if (parse_uint(optarg, 1, 64, &v) < 0)
                                return log_error_errno(-EINVAL, "--io-threads: 1 to 64");
                        o->io_threads = (unsigned) v;
                        break;
                case OPT_KEYGEN_ONLY:
                        o->keygen_only = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc || !o->workers || (!o->key_file == !o->keys_dir) ||
            (!o->keygen_only && (!o->master || !o->master_key_file)) ||
            (o->keygen_only && !o->keys_dir)) {
                usage(stderr);
                return -EINVAL;
        }
        if (o->shards > o->workers)
                return log_error_errno(-EINVAL, "--shard: more shards than workers");
        return 0;
}

/* This shard's workers, their names and keys. */
static int make_workers(struct sim *s)
{
        const struct options *o = &s->o;
        struct net_keypair shared;
        int r;

        if (o->keygen_only) {
                s->first = 0;
                s->n = o->workers;
        } else {
                s->first = (unsigned) ((uint64_t) o->workers * o->shard / o->shards);
                s->n = (unsigned) ((uint64_t) o->workers * (o->shard + 1) / o->shards) - s->first;
        }
        s->w = calloc(s->n, sizeof(*s->w));
        if (!s->w)
                return log_error_errno(-ENOMEM, "simworker: out of memory");
        if (o->key_file) {
                r = net_key_read_secret(o->key_file, &shared);
                if (r < 0)
                        return log_error_errno(r, "simworker: cannot read '%s': %m", o->key_file);
                if (s->n > 1)
                        log_warning("simworker: %u workers share one key: the master sees one "
                                    "worker, reconnecting; --keys-dir gives each its own",
                                    s->n);
        } else if (mkdir(o->keys_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "simworker: cannot make '%s': %m", o->keys_dir);

        for (unsigned i = 0; i < s->n; i++) {
                struct worker *w = &s->w[i];

                w->index = s->first + i;
                worker_name(o, w->index, w->name);
                if (o->key_file)
                        w->kp = shared;
                else {
                        r = worker_key(o, w->index, &w->kp);
                        if (r < 0)
                                return log_error_errno(r,
                                                       "simworker: the key of worker %u in "
                                                       "'%s': %m",
                                                       w->index, o->keys_dir);
                }
        }
        explicit_bzero(&shared, sizeof(shared));
        if (o->keys_dir && o->shards == 1) {
                r = write_keys_txt(o, s->w, s->n);
                if (r < 0)
                        return log_error_errno(r, "simworker: cannot write '%s/keys.txt': %m",
                                               o->keys_dir);
        }
        return 0;
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

static double rtt_ms(struct sim *s, double q)
{
        if (s->n_rtt == 0)
                return 0;
        return s->rtt_us[(size_t) (q * (double) (s->n_rtt - 1))] / 1000.0;
}

static void summary(struct sim *s, double elapsed_s)
{
        qsort(s->rtt_us, s->n_rtt, sizeof(*s->rtt_us), cmp_u32);
        printf("{\"workers\":%u,\"shard\":\"%u/%u\",\"connected\":%" PRIu64 ",\"assigned\":%" PRIu64
               ",\"results\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"cancelled\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"send_errors\":%" PRIu64
               ",\"recv_errors\":%" PRIu64 ",\"master_errors\":%" PRIu64 ",\"disconnects\":%" PRIu64
               ",\"rtt_p50_ms\":%.3f,\"rtt_p99_ms\":%.3f,\"rtt_max_ms\":%.3f,\"seconds\":%.3f}\n",
               s->n, s->o.shard, s->o.shards, s->c.connected, s->c.assigned, s->c.results,
               s->c.acked, s->c.rejected, s->c.cancelled, s->c.errors, s->c.send_errors,
               s->c.recv_errors, s->c.master_errors, s->c.disconnects, rtt_ms(s, 0.50),
               rtt_ms(s, 0.99), rtt_ms(s, 1.0), elapsed_s);
        fflush(stdout);
}

static int run(struct sim *s)
{
        _cleanup_close_ int sfd = -EBADF;
        struct epoll_event events[EVENTS_MAX];
        struct epoll_event sev = {.events = EPOLLIN, .data.u32 = SIG_TAG};
        struct beat beat = {};
        uint64_t deadline, next_flush;
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, sfd, &sev) < 0)
                return log_error_errno(-errno, "simworker: signalfd: %m");

        s->t0 = now_ns(CLOCK_MONOTONIC);
        deadline = s->o.duration_s > 0 ? s->t0 + (uint64_t) (s->o.duration_s * 1e9) : UINT64_MAX;
        next_flush = s->t0 + 1000000000;
        for (;;) {
                uint64_t now = now_ns(CLOCK_MONOTONIC), wake;
                int n, timeout_ms;

                if (now >= deadline)
                        return 0;
                /* Connections, paced: --connect-rate per second from t0. */
                if (s->started < s->n) {
                        uint64_t due = (now - s->t0) * s->o.connect_rate / 1000000000 + 1;

                        while (s->started < s->n && s->started < due) {
                                int r = worker_start(s, &s->w[s->started]);

                                if (r < 0)
                                        return log_error_errno(r, "simworker: worker %u: %m",
                                                               s->w[s->started].index);
                                s->started++;
                        }
                }
                beats(s, &beat, now);
                if (s->stats && now >= next_flush) {
                        (void) fflush(s->stats);
                        next_flush = now + 1000000000;
                }

                wake = beat_due(s, &beat);
                if (s->started < s->n)
                        wake = MIN(wake, now + 1000000); /* the next connections */
                wake = MIN(wake, deadline);
                timeout_ms = wake <= now ? 0 : (int) MIN((wake - now + 999999) / 1000000, 1000);
                n = epoll_wait(s->epfd, events, EVENTS_MAX, timeout_ms);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(-errno, "simworker: epoll_wait: %m");
                }
                for (int i = 0; i < n; i++) {
                        if (events[i].data.u32 == SIG_TAG)
                                return 0;
                        service(s, &s->w[events[i].data.u32]);
                }
        }
}

int main(int argc, char **argv)
{
        struct sim s = {.epfd = -EBADF};
        sigset_t mask;
        uint64_t t_start;
        int r;

        log_set_level(LOG_LEVEL_INFO);
        r = parse_args(argc, argv, &s.o);
        if (r < 0)
                return 2;
        r = make_workers(&s);
        if (r < 0)
                return 1;
        if (s.o.keygen_only) {
                printf("{\"keys\":%u,\"keys_txt\":\"%s/keys.txt\"}\n", s.n, s.o.keys_dir);
                return 0;
        }
        r = net_key_read_public(s.o.master_key_file, s.master_key);
        if (r < 0) {
                log_error_errno(r, "simworker: cannot read '%s': %m", s.o.master_key_file);
                return 1;
        }
        if (raise_nofile(s.n) < 0)
                return 1;
        if (s.o.stats) {
                s.stats = fopen(s.o.stats, "we");
                if (!s.stats) {
                        log_error_errno(-errno, "simworker: cannot open '%s': %m", s.o.stats);
                        return 1;
                }
                (void) setvbuf(s.stats, NULL, _IOFBF, 1 << 20);
        }

        /* SIGINT and SIGTERM come through a signalfd: blocked before libzmq's threads start. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        zsys_handler_set(NULL);
        zsys_set_max_sockets(s.n + FDS_SPARE);
        zsys_set_io_threads(s.o.io_threads);
        zsys_set_logstream(stderr);
        if (!zsys_init()) {
                log_error("simworker: cannot start ZeroMQ");
                return 1;
        }
        if (zsys_socket_limit() < s.n + 2) {
                log_error("simworker: ZeroMQ allows %zu sockets, %u are needed",
                          zsys_socket_limit(), s.n + 2);
                return 1;
        }
        s.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s.epfd < 0) {
                log_error_errno(-errno, "simworker: epoll_create1: %m");
                return 1;
        }

        t_start = now_ns(CLOCK_MONOTONIC);
        r = run(&s);

        /* DISCONNECT from each, given a moment to leave (ZMQ_LINGER) when the context ends. */
        for (unsigned i = 0; i < s.started; i++) {
                json_t *b = json_pack("{s:s}", "reason", "shutdown");

                (void) net_send(s.w[i].sock, NULL, NET_DISCONNECT, b, NULL, 0);
                zsock_set_linger(s.w[i].sock, 500);
        }
        summary(&s, ns_to_s(now_ns(CLOCK_MONOTONIC) - t_start));
        if (s.stats)
                (void) fclose(s.stats);
        for (unsigned i = 0; i < s.n; i++) {
                zsock_destroy(&s.w[i].sock);
                free(s.w[i].held);
        }
        zsys_shutdown();
        free(s.w);
        free(s.rtt_us);
        (void) close(s.epfd);
        return r < 0 ? 1 : 0;
}
