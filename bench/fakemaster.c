/* SPDX-License-Identifier: MIT */
/*
 * fakemaster: a stand-in for the master's worker side, to check simworker (and the benchmark's
 * plumbing) without the real scheduler. Not a scheduler: a CURVE ROUTER whose ZAP handler admits
 * the keys of a keys.txt ("name public_key" lines, as simworker --keys-dir writes it) and names
 * each connection after its line; READY gets WELCOME; ASSIGNs go round-robin to the welcomed
 * workers at --rate per second; each RESULT gets RESULT_ACK. It checks what a master would:
 * that READY's name is the connection's User-Id, and that each RESULT names a lease it gave.
 *
 *   fakemaster --listen tcp://127.0.0.1:PORT --key MASTER.secret --keys KEYS.TXT
 *              [--rate R] [--duration S] [--heartbeat-ms MS]
 *
 * At the end (--duration, SIGINT, SIGTERM): one JSON line on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/param.h>
#include <sys/resource.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "net/proto.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        stop = 1;
}

/* ---- ZAP: the keys of keys.txt, by their 32 bytes ---- */

struct known {
        size_t n;
        uint8_t (*key)[32];
        char (*name)[NET_NAME_MAX + 1];
};

static const char *known_name(const struct known *k, const uint8_t key[32])
{
        for (size_t i = 0; i < k->n; i++) /* a bench tool: linear is fine at 10^4 */
                if (memcmp(k->key[i], key, 32) == 0)
                        return k->name[i];
        return NULL;
}

static void zap_actor(zsock_t *pipe, void *args)
{
        const struct known *k = args;
        zsock_t *rep = zsock_new_rep(NET_ZAP_ENDPOINT);
        zpoller_t *poller = rep ? zpoller_new(pipe, rep, NULL) : NULL;

        (void) zsock_signal(pipe, poller ? 0 : 1);
        while (poller) {
                void *which = zpoller_wait(poller, -1);
                zmsg_t *m, *reply;
                zframe_t *id, *cred;
                const char *name = NULL;

                if (which != rep) {
                        m = zmsg_recv(pipe);
                        zmsg_destroy(&m);
                        break;
                }
                m = zmsg_recv(rep);
                if (!m)
                        break;
                zframe_t *version = zmsg_pop(m);
                id = zmsg_pop(m);
                for (int i = 0; i < 4; i++) { /* domain, address, identity, mechanism */
                        zframe_t *f = zmsg_pop(m);
                        zframe_destroy(&f);
                }
                cred = zmsg_pop(m);
                if (cred && zframe_size(cred) == 32)
                        name = known_name(k, zframe_data(cred));
                reply = zmsg_new();
                (void) zmsg_addstr(reply, "1.0");
                (void) zmsg_addmem(reply, id ? zframe_data(id) : NULL, id ? zframe_size(id) : 0);
                (void) zmsg_addstr(reply, name ? "200" : "400");
                (void) zmsg_addstr(reply, name ? "OK" : "unknown key");
                (void) zmsg_addstr(reply, name ? name : "");
                (void) zmsg_addmem(reply, NULL, 0);
                (void) zmsg_send(&reply, rep);
                zframe_destroy(&version);
                zframe_destroy(&id);
                zframe_destroy(&cred);
                zmsg_destroy(&m);
        }
        zpoller_destroy(&poller);
        zsock_destroy(&rep);
}

static int load_keys(const char *path, struct known *k)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char name[256], key[64];
        size_t cap = 0;

        if (!f)
                return -errno;
        while (fscanf(f, "%255s %63s", name, key) == 2) {
                if (strlen(key) != 40 || strlen(name) > NET_NAME_MAX)
                        return -EINVAL;
                if (k->n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        k->key = reallocarray(k->key, cap, sizeof(*k->key));
                        k->name = reallocarray(k->name, cap, sizeof(*k->name));
                        if (!k->key || !k->name)
                                return -ENOMEM;
                }
                if (!zmq_z85_decode(k->key[k->n], key))
                        return -EINVAL;
                (void) snprintf(k->name[k->n], sizeof(k->name[0]), "%s", name);
                k->n++;
        }
        return 0;
}

/* ---- the master's side ---- */

struct fm {
        zsock_t *router;
        zframe_t **welcomed; /* routing ids */
        size_t n_welcomed, cap_welcomed, next;
        zhashx_t *leases; /* lease -> send time (CLOCK_MONOTONIC ns, a uint64_t *) */
        uint64_t assigned, results, send_errors, bad, name_mismatch, jobs;
        uint32_t *lat_us;
        size_t n_lat, cap_lat;
};

static void on_ready(struct fm *f, zframe_t *rid, const char *uid, const json_t *body)
{
        const char *name = json_string_value(json_object_get(body, "name"));
        json_t *w;

        if (!name || strcmp(name, uid) != 0)
                f->name_mismatch++;
        w = json_pack("{s:s, s:i, s:i, s:[]}", "worker", uid, "heartbeat_ms", 1000, "lease_ms",
                      10000, "leases");
        if (net_send(f->router, rid, NET_WELCOME, w, NULL, 0) < 0) {
                f->send_errors++;
                return;
        }
        for (size_t i = 0; i < f->n_welcomed; i++)
                if (zframe_eq(f->welcomed[i], rid))
                        return; /* READY again */
        if (f->n_welcomed == f->cap_welcomed) {
                size_t cap = f->cap_welcomed ? f->cap_welcomed * 2 : 1024;
                zframe_t **a = reallocarray(f->welcomed, cap, sizeof(*a));

                if (!a)
                        return;
                f->welcomed = a;
                f->cap_welcomed = cap;
        }
        f->welcomed[f->n_welcomed++] = zframe_dup(rid);
}

static void assign_one(struct fm *f)
{
        char lease[33], job[33];
        uint64_t *t;
        json_t *b;
        int r;

        if (f->n_welcomed == 0)
                return;
        net_lease_new(lease);
        (void) snprintf(job, sizeof(job), "%032" PRIx64, ++f->jobs);
        b = json_pack("{s:s, s:s, s:i, s:{s:s}, s:{s:{s:s}}, s:[]}", "lease", lease, "job", job,
                      "replica", 0, "app", "name", "sh", "spec", "files", "main.sh", "echo hi",
                      "inputs");
        t = malloc(sizeof(*t));
        if (!t)
                return;
        *t = now_ns(CLOCK_MONOTONIC);
        r = net_send(f->router, f->welcomed[f->next++ % f->n_welcomed], NET_ASSIGN, b, NULL, 0);
        if (r < 0) {
                free(t);
                f->send_errors++;
                return;
        }
        (void) zhashx_insert(f->leases, lease, t);
        f->assigned++;
}

static void on_result(struct fm *f, zframe_t *rid, const json_t *body)
{
        const char *lease = json_string_value(json_object_get(body, "lease"));
        uint64_t *t = lease ? zhashx_lookup(f->leases, lease) : NULL;
        json_t *ack;

        if (!t) {
                f->bad++;
                return;
        }
        f->results++;
        if (f->n_lat == f->cap_lat) {
                size_t cap = f->cap_lat ? f->cap_lat * 2 : 4096;
                uint32_t *a = reallocarray(f->lat_us, cap, sizeof(*a));

                if (a) {
                        f->lat_us = a;
                        f->cap_lat = cap;
                }
        }
        if (f->n_lat < f->cap_lat)
                f->lat_us[f->n_lat++] = (uint32_t) ((now_ns(CLOCK_MONOTONIC) - *t) / 1000);
        ack = json_pack("{s:s, s:b}", "lease", lease, "accepted", true);
        if (net_send(f->router, rid, NET_RESULT_ACK, ack, NULL, 0) < 0)
                f->send_errors++;
        zhashx_delete(f->leases, lease);
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

static void free_u64(void **p)
{
        free(*p);
        *p = NULL;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"listen", required_argument, NULL, 'l'},
                {"key", required_argument, NULL, 'k'},
                {"keys", required_argument, NULL, 'K'},
                {"rate", required_argument, NULL, 'r'},
                {"duration", required_argument, NULL, 'd'},
                {"heartbeat-ms", required_argument, NULL, 'b'},
                {},
        };
        const char *listen = NULL, *key_file = NULL, *keys_file = NULL;
        double rate = 0, duration = 0;
        unsigned heartbeat_ms = 1000;
        struct known known = {};
        struct net_keypair kp;
        struct fm f = {};
        struct rlimit rl;
        zactor_t *zap;
        uint64_t t0, next_assign, deadline;
        int c, r;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (c) {
                case 'l':
                        listen = optarg;
                        break;
                case 'k':
                        key_file = optarg;
                        break;
                case 'K':
                        keys_file = optarg;
                        break;
                case 'r':
                        rate = strtod(optarg, NULL);
                        break;
                case 'd':
                        duration = strtod(optarg, NULL);
                        break;
                case 'b':
                        heartbeat_ms = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        }
        if (!listen || !key_file || !keys_file) {
                fputs("Usage: fakemaster --listen ENDPOINT --key MASTER.secret --keys KEYS.TXT "
                      "[--rate R] [--duration S] [--heartbeat-ms MS]\n",
                      stderr);
                return 2;
        }
        r = net_key_read_secret(key_file, &kp);
        if (r < 0)
                return log_error_errno(r, "fakemaster: '%s': %m", key_file), 1;
        r = load_keys(keys_file, &known);
        if (r < 0)
                return log_error_errno(r, "fakemaster: '%s': %m", keys_file), 1;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        (void) signal(SIGINT, on_signal);
        (void) signal(SIGTERM, on_signal);
        zsys_handler_set(NULL);
        zsys_set_max_sockets(0);
        zap = zactor_new(zap_actor, &known);
        f.router = zsock_new(ZMQ_ROUTER);
        f.leases = zhashx_new();
        if (!zap || !f.router || !f.leases)
                return log_error_errno(-ENOMEM, "fakemaster: set-up failed"), 1;
        zhashx_set_destructor(f.leases, free_u64);
        r = net_socket_server(f.router, &kp, heartbeat_ms);
        zsock_set_backlog(f.router, 4096); /* thousands of workers connect at once */
        if (r < 0 || zsock_bind(f.router, "%s", listen) < 0)
                return log_error("fakemaster: cannot listen on '%s'", listen), 1;
        log_info("fakemaster: listening on %s, %zu keys", listen, known.n);

        t0 = now_ns(CLOCK_MONOTONIC);
        next_assign = t0;
        deadline = duration > 0 ? t0 + (uint64_t) (duration * 1e9) : UINT64_MAX;
        while (!stop) {
                uint64_t now = now_ns(CLOCK_MONOTONIC);
                zmq_pollitem_t it = {.socket = zsock_resolve(f.router), .events = ZMQ_POLLIN};
                long timeout = 100;

                if (now >= deadline)
                        break;
                if (rate > 0) {
                        while (next_assign <= now && f.n_welcomed > 0) {
                                assign_one(&f);
                                next_assign += (uint64_t) (1e9 / rate);
                        }
                        if (f.n_welcomed == 0)
                                next_assign = now;
                        timeout = next_assign > now ? (long) ((next_assign - now) / 1000000) : 0;
                        timeout = MIN(timeout, 100);
                }
                if (zmq_poll(&it, 1, timeout) < 0 && errno != EINTR)
                        break;
                for (;;) {
                        _cleanup_free_ char *uid = NULL;
                        struct net_msg m = {};
                        zframe_t *rid = NULL;

                        r = net_recv(f.router, NET_TO_MASTER, &m, &rid, &uid);
                        if (r == -EAGAIN)
                                break;
                        if (r < 0) {
                                f.bad++;
                                continue;
                        }
                        if (m.command == NET_READY)
                                on_ready(&f, rid, uid, m.body);
                        else if (m.command == NET_RESULT)
                                on_result(&f, rid, m.body);
                        else if (m.command == NET_HEARTBEAT)
                                (void) net_send(f.router, rid, NET_HEARTBEAT, json_object(), NULL,
                                                0);
                        zframe_destroy(&rid);
                        net_msg_done(&m);
                }
        }

        qsort(f.lat_us, f.n_lat, sizeof(*f.lat_us), cmp_u32);
        printf("{\"welcomed\":%zu,\"assigned\":%" PRIu64 ",\"results\":%" PRIu64
               ",\"outstanding\":%zu,\"bad\":%" PRIu64 ",\"name_mismatch\":%" PRIu64
               ",\"send_errors\":%" PRIu64 ",\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
               f.n_welcomed, f.assigned, f.results, zhashx_size(f.leases), f.bad, f.name_mismatch,
               f.send_errors, f.n_lat ? f.lat_us[(f.n_lat - 1) / 2] / 1000.0 : 0.0,
               f.n_lat ? f.lat_us[(size_t) ((double) (f.n_lat - 1) * 0.99)] / 1000.0 : 0.0);
        for (size_t i = 0; i < f.n_welcomed; i++)
                zframe_destroy(&f.welcomed[i]);
        free(f.welcomed);
        free(f.lat_us);
        zhashx_destroy(&f.leases);
        zsock_destroy(&f.router);
        zactor_destroy(&zap);
        zsys_shutdown();
        free(known.key);
        free(known.name);
        return 0;
}
