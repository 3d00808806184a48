/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/uio.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/proto.h"
#include "unit.h"

/*
 * Real sockets, no mocks: a CURVE ROUTER and DEALER over TCP on 127.0.0.1, and a ZAP handler of
 * our own (ZeroMQ RFC 27) in a czmq actor, bound where libzmq asks (NET_ZAP_ENDPOINT): it admits
 * the one known worker key and names the connection WORKER_NAME (the User-Id net_recv()
 * returns), and refuses every other key. Malformed messages are forged with zmq_send() on the
 * raw sockets, each followed by a good one that must arrive intact (the bad one's remaining
 * frames were drained).
 *
 * The actor's thread never calls cmocka: it only answers ZAP requests.
 */

#define WAIT_MS     10000 /* a wait that should never run out */
#define SILENCE_MS  500   /* how long "nothing arrives" is watched for */
#define WORKER_NAME "w-1"
#define LEASE       "0123456789abcdef0123456789abcdef"
#define SHA_OK      "dc51b8c96c2d745df3bd5590d990230a482fd247123599548e0632fdbf97fc22"

static struct net_keypair master_kp, worker_kp;
static zactor_t *zap;

/* ---- the ZAP handler ---- */

static bool frame_is(zframe_t *f, const char *s)
{
        return f && zframe_streq(f, s);
}

static void zap_answer(zsock_t *rep, zmsg_t *req, const uint8_t known[32])
{
        zframe_t *version = zmsg_pop(req), *id = zmsg_pop(req), *domain = zmsg_pop(req);
        zframe_t *address = zmsg_pop(req), *identity = zmsg_pop(req), *mech = zmsg_pop(req);
        zframe_t *cred = zmsg_pop(req);
        bool ok = frame_is(version, "1.0") && frame_is(domain, NET_ZAP_DOMAIN) &&
                  frame_is(mech, "CURVE") && cred && zframe_size(cred) == 32 &&
                  memcmp(zframe_data(cred), known, 32) == 0;
        zmsg_t *reply = zmsg_new();

        if (reply) {
                (void) zmsg_addstr(reply, "1.0");
                (void) zmsg_addmem(reply, id ? zframe_data(id) : NULL, id ? zframe_size(id) : 0);
                (void) zmsg_addstr(reply, ok ? "200" : "400");
                (void) zmsg_addstr(reply, ok ? "OK" : "unknown key");
                (void) zmsg_addstr(reply, ok ? WORKER_NAME : "");
                (void) zmsg_addmem(reply, NULL, 0);
                (void) zmsg_send(&reply, rep);
        }
        zframe_destroy(&version);
        zframe_destroy(&id);
        zframe_destroy(&domain);
        zframe_destroy(&address);
        zframe_destroy(&identity);
        zframe_destroy(&mech);
        zframe_destroy(&cred);
}

static void zap_actor(zsock_t *pipe, void *args)
{
        uint8_t known[32];
        zsock_t *rep = zsock_new_rep(NET_ZAP_ENDPOINT);
        zpoller_t *poller = rep ? zpoller_new(pipe, rep, NULL) : NULL;

        (void) zmq_z85_decode(known, args);
        (void) zsock_signal(pipe, poller ? 0 : 1);
        while (poller) {
                void *which = zpoller_wait(poller, -1);
                zmsg_t *m;

                if (which != rep) {
                        /* $TERM (or an interrupted wait): the actor ends. */
                        m = zmsg_recv(pipe);
                        zmsg_destroy(&m);
                        break;
                }
                m = zmsg_recv(rep);
                if (!m)
                        break;
                zap_answer(rep, m, known);
                zmsg_destroy(&m);
        }
        zpoller_destroy(&poller);
        zsock_destroy(&rep);
}

static int group_setup(void **state)
{
        if (net_keygen(&master_kp) < 0 || net_keygen(&worker_kp) < 0)
                return -1;
        zap = zactor_new(zap_actor, worker_kp.public_key);
        return zap ? 0 : -1;
}

static int group_teardown(void **state)
{
        zactor_destroy(&zap);
        return 0;
}

/* ---- helpers ---- */

struct conn {
        zsock_t *router, *dealer;
        zframe_t *rid; /* the dealer's routing id on the router */
        int port;
};

static void conn_done(struct conn *c)
{
        zsock_destroy(&c->dealer);
        zsock_destroy(&c->router);
        zframe_destroy(&c->rid);
}

/* A poll of one socket: 1 if a message waits, 0 if none came within ms. */
static int wait_in(zsock_t *s, int ms)
{
        zmq_pollitem_t it = {.socket = zsock_resolve(s), .events = ZMQ_POLLIN};
        int r = zmq_poll(&it, 1, ms);

        return r < 0 ? -errno : r;
}

static int recv_wait(zsock_t *s, enum net_side side, struct net_msg *m, zframe_t **rid, char **uid,
                     int ms)
{
        int r = wait_in(s, ms);

        if (r < 0)
                return r;
        if (r == 0)
                return -ETIMEDOUT;
        return net_recv(s, side, m, rid, uid);
}

static void make_router(struct conn *c)
{
        c->router = zsock_new(ZMQ_ROUTER);
        assert_non_null(c->router);
        assert_int_equal(net_socket_server(c->router, &master_kp, 1000), 0);
        c->port = zsock_bind(c->router, "tcp://127.0.0.1:*");
        assert_true(c->port > 0);
}

static void make_dealer(struct conn *c, const struct net_keypair *kp, const char *server_key)
{
        c->dealer = zsock_new(ZMQ_DEALER);
        assert_non_null(c->dealer);
        assert_int_equal(net_socket_client(c->dealer, kp, server_key, 1000), 0);
        assert_int_equal(zsock_connect(c->dealer, "tcp://127.0.0.1:%d", c->port), 0);
}

static json_t *body_of(const char *text)
{
        json_t *j = json_loads(text, 0, NULL);

        assert_non_null(j);
        return j;
}

/*
 * Sends text as command from one side and checks that the other receives it the same, payloads
 * and all. To the master the User-Id must be the worker's name.
 */
static void round_trip(struct conn *c, enum net_side side, enum net_command cmd, const char *text,
                       const struct iovec *payloads, size_t n)
{
        _cleanup_(json_decrefp) json_t *expect = body_of(text);
        _cleanup_free_ char *uid = NULL;
        struct net_msg m = {};
        zframe_t *rid = NULL;

        if (side == NET_TO_MASTER) {
                assert_int_equal(net_send(c->dealer, NULL, cmd, body_of(text), payloads, n), 0);
                assert_int_equal(recv_wait(c->router, NET_TO_MASTER, &m, &rid, &uid, WAIT_MS), 0);
                assert_non_null(rid);
                assert_string_equal(uid, WORKER_NAME);
                if (c->rid) {
                        assert_true(zframe_eq(rid, c->rid));
                        zframe_destroy(&rid);
                } else
                        c->rid = rid;
        } else {
                assert_non_null(c->rid);
                assert_int_equal(net_send(c->router, c->rid, cmd, body_of(text), payloads, n), 0);
                assert_int_equal(recv_wait(c->dealer, NET_TO_WORKER, &m, NULL, NULL, WAIT_MS), 0);
        }
        assert_int_equal(m.command, cmd);
        assert_true(json_equal(m.body, expect));
        assert_int_equal(m.n_payloads, n);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(zframe_size(m.payloads[i]), payloads[i].iov_len);
                assert_memory_equal(zframe_data(m.payloads[i]), payloads[i].iov_base,
                                    payloads[i].iov_len);
        }
        net_msg_done(&m);
}

/* A connection that works: the worker's key, the master's pinned; the routing id learnt. */
static void connect_good(struct conn *c)
{
        make_router(c);
        make_dealer(c, &worker_kp, master_kp.public_key);
        round_trip(c, NET_TO_MASTER, NET_HEARTBEAT, "{\"leases\": [], \"free\": 1}", NULL, 0);
}

struct part {
        const void *data;
        size_t len;
};

#define P(s)                       \
        {                          \
                (s), sizeof(s) - 1 \
        }
#define HDR(v, c)                                                                      \
        {                                                                              \
                (const char[]){'W', 'R', 'N', (char) (v), (char) (c)}, NET_HEADER_SIZE \
        }
#define TAIL P("trailing"), P("frames")
#define READY_BODY \
        "{\"name\":\"w-1\",\"slots\":1,\"cpus\":1,\"memory\":1,\"profiles\":[],\"leases\":[]}"

/* Sends parts as one multipart message, raw (routing id first if rid). */
static void send_raw(zsock_t *s, zframe_t *rid, const struct part *parts, size_t n)
{
        void *raw = zsock_resolve(s);

        if (rid)
                assert_int_equal(zmq_send(raw, zframe_data(rid), zframe_size(rid), ZMQ_SNDMORE),
                                 (int) zframe_size(rid));
        for (size_t i = 0; i < n; i++)
                assert_int_equal(
                        zmq_send(raw, parts[i].data, parts[i].len, i + 1 < n ? ZMQ_SNDMORE : 0),
                        (int) parts[i].len);
}

/* The message after a rejected one arrives whole. */
static void expect_next_good(struct conn *c, bool to_master)
{
        struct iovec pl[] = {{(void *) "after\0x", 7}};

        if (to_master)
                round_trip(c, NET_TO_MASTER, NET_OUTPUT,
                           "{\"lease\":\"" LEASE "\",\"step\":\"run\",\"stream\":\"stdout\"}", pl,
                           1);
        else
                round_trip(c, NET_TO_WORKER, NET_BLOB,
                           "{\"sha256\":\"" SHA_OK "\",\"offset\":0,\"size\":7}", pl, 1);
}

/* Forges parts toward one side, expects net_recv() to say r, then a good message intact. */
static void expect_rejected(struct conn *c, bool to_master, const struct part *parts, size_t n,
                            int r, enum net_command cmd)
{
        _cleanup_free_ char *uid = NULL;
        struct net_msg m = {};
        zframe_t *rid = NULL;

        if (to_master) {
                send_raw(c->dealer, NULL, parts, n);
                assert_int_equal(recv_wait(c->router, NET_TO_MASTER, &m, &rid, &uid, WAIT_MS), r);
        } else {
                send_raw(c->router, c->rid, parts, n);
                assert_int_equal(recv_wait(c->dealer, NET_TO_WORKER, &m, NULL, NULL, WAIT_MS), r);
        }
        assert_null(rid);
        assert_null(uid);
        assert_null(m.body);
        assert_int_equal(m.n_payloads, 0);
        assert_int_equal(m.command, cmd);
        expect_next_good(c, to_master);
}

#define REJECT(c, to_master, r, cmd, ...)                                          \
        do {                                                                       \
                const struct part _p[] = {__VA_ARGS__};                            \
                expect_rejected((c), (to_master), _p, ELEMENTSOF(_p), (r), (cmd)); \
        } while (0)

/* ---- keys ---- */

struct dir {
        char path[PATH_MAX / 2];
};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        (void) remove(p);
        return 0;
}

static void dir_done(struct dir *d)
{
        if (d->path[0])
                (void) nftw(d->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void dir_make(struct dir *d)
{
        const char *tmp = getenv("TMPDIR");

        assert_true(snprintf(d->path, sizeof(d->path), "%s/warren-test-net-XXXXXX",
                             tmp && *tmp ? tmp : "/tmp") < (int) sizeof(d->path));
        assert_non_null(mkdtemp(d->path));
}

static void write_file(const char *path, mode_t mode, const char *text)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(write_full(fd, text, strlen(text)), 0);
}

static void test_keys(void **state)
{
        _cleanup_(dir_done) struct dir d = {};
        char path[PATH_MAX], secret[PATH_MAX + 8], other[PATH_MAX], key[41];
        struct net_keypair kp = {}, back = {}, kp2 = {};
        struct stat st;

        dir_make(&d);
        (void) snprintf(path, sizeof(path), "%s/k", d.path);
        (void) snprintf(secret, sizeof(secret), "%s.secret", path);

        assert_int_equal(net_keygen(&kp), 0);
        assert_int_equal(strlen(kp.public_key), 40);
        assert_int_equal(strlen(kp.secret_key), 40);
        assert_int_equal(net_keygen(&kp2), 0);
        assert_string_not_equal(kp.public_key, kp2.public_key);

        assert_int_equal(net_key_write(path, &kp), 0);
        assert_int_equal(stat(secret, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0077 & ~0044, 0); /* readable, never writable by others */

        assert_int_equal(net_key_read_secret(secret, &back), 0);
        assert_string_equal(back.public_key, kp.public_key);
        assert_string_equal(back.secret_key, kp.secret_key);
        assert_int_equal(net_key_read_public(path, key), 0);
        assert_string_equal(key, kp.public_key);
        memset(key, 0, sizeof(key));
        assert_int_equal(net_key_read_public(secret, key), 0);
        assert_string_equal(key, kp.public_key);

        /* Never overwritten: neither file changes. */
        assert_int_equal(net_key_write(path, &kp2), -EEXIST);
        assert_int_equal(net_key_read_secret(secret, &back), 0);
        assert_string_equal(back.secret_key, kp.secret_key);
        assert_int_equal(net_key_read_public(path, key), 0);
        assert_string_equal(key, kp.public_key);

        /* A public file in the way: the new secret file is taken back. */
        (void) snprintf(other, sizeof(other), "%s/o", d.path);
        write_file(other, 0644, "x\n");
        assert_int_equal(net_key_write(other, &kp2), -EEXIST);
        (void) snprintf(other, sizeof(other), "%s/o.secret", d.path);
        assert_int_equal(access(other, F_OK), -1);
        assert_int_equal(errno, ENOENT);

        /* A secret readable by the group (or anyone) is refused; the public half still reads. */
        assert_int_equal(chmod(secret, 0640), 0);
        assert_int_equal(net_key_read_secret(secret, &back), -EPERM);
        assert_int_equal(chmod(secret, 0604), 0);
        assert_int_equal(net_key_read_secret(secret, &back), -EPERM);
        assert_int_equal(net_key_read_public(secret, key), 0);
        assert_string_equal(key, kp.public_key);

        /* Garbage. */
        (void) snprintf(other, sizeof(other), "%s/g", d.path);
        write_file(other, 0600, "not a key\n");
        assert_int_equal(net_key_read_public(other, key), -EINVAL);
        assert_int_equal(net_key_read_secret(other, &back), -EINVAL);
        (void) snprintf(other, sizeof(other), "%s/short", d.path);
        write_file(other, 0600, "public 0123456789\nsecret 0123456789\n");
        assert_int_equal(net_key_read_public(other, key), -EINVAL);
        assert_int_equal(net_key_read_secret(other, &back), -EINVAL);
        (void) snprintf(other, sizeof(other), "%s/half", d.path); /* no secret line */
        {
                _cleanup_free_ char *text = NULL;

                assert_true(asprintf(&text, "public %s\n", kp.public_key) > 0);
                write_file(other, 0600, text);
        }
        assert_int_equal(net_key_read_secret(other, &back), -EINVAL);
        assert_int_equal(net_key_read_public(other, key), 0);
        (void) snprintf(other, sizeof(other), "%s/empty", d.path);
        write_file(other, 0600, "");
        assert_int_equal(net_key_read_public(other, key), -EINVAL);
        assert_int_equal(net_key_read_public(d.path, key), -EINVAL); /* a directory */
        (void) snprintf(other, sizeof(other), "%s/missing", d.path);
        assert_int_equal(net_key_read_public(other, key), -ENOENT);
        assert_int_equal(net_key_read_secret(other, &back), -ENOENT);
}

static void test_leases_and_names(void **state)
{
        char a[33], b[33];

        net_lease_new(a);
        net_lease_new(b);
        assert_true(net_lease_valid(a));
        assert_true(net_lease_valid(b));
        assert_string_not_equal(a, b);
        assert_true(net_lease_valid(LEASE));
        assert_false(net_lease_valid(NULL));
        assert_false(net_lease_valid(""));
        assert_false(net_lease_valid("0123456789ABCDEF0123456789abcdef"));
        assert_false(net_lease_valid("0123456789abcdef0123456789abcde"));
        assert_false(net_lease_valid("0123456789abcdef0123456789abcdef0"));
        assert_false(net_lease_valid("0123456789abcdeg0123456789abcdef"));

        assert_string_equal(net_command_to_string(NET_READY), "READY");
        assert_string_equal(net_command_to_string(NET_RESULT_ACK), "RESULT_ACK");
        assert_string_equal(net_command_to_string(NET_DISCONNECT), "DISCONNECT");
        assert_string_equal(net_command_to_string(0), "?");
        assert_string_equal(net_command_to_string(_NET_COMMAND_MAX), "?");
}

/* ---- sockets ---- */

static void test_round_trip(void **state)
{
        _cleanup_(conn_done) struct conn c = {};
        static const char bin[] = {0, 1, 2, (char) 0xff, 0, 'x'};
        struct iovec one[] = {{(void *) "hello\n", 6}};
        struct iovec three[] = {
                {(void *) bin, sizeof(bin)}, {(void *) "", 0}, {(void *) "ok\n", 3}};
        struct iovec many[NET_PAYLOADS_MAX];
        _cleanup_free_ char *blobs = NULL;
        size_t len = 0;
        FILE *f;

        connect_good(&c);

        /* Toward the master. */
        round_trip(&c, NET_TO_MASTER, NET_READY,
                   "{\"name\":\"w-1\",\"slots\":4,\"cpus\":2,\"memory\":1073741824,"
                   "\"profiles\":[\"host\"],\"leases\":[\"" LEASE "\"]}",
                   NULL, 0);
        round_trip(&c, NET_TO_MASTER, NET_JOIN, "{\"name\":\"w-1\",\"token\":\"t0k3n\"}", NULL, 0);
        round_trip(&c, NET_TO_MASTER, NET_OUTPUT,
                   "{\"lease\":\"" LEASE "\",\"step\":\"run\",\"stream\":\"stdout\"}", one, 1);
        round_trip(&c, NET_TO_MASTER, NET_RESULT,
                   "{\"lease\":\"" LEASE "\",\"result\":{\"exit_code\":0,\"run\":{\"stdout\":"
                   "{\"size\":3,\"sha256\":\"" SHA_OK "\",\"text\":\"ok\\n\"}}},"
                   "\"blobs\":[\"a\",\"b\",\"" SHA_OK "\"]}",
                   three, 3);
        round_trip(&c, NET_TO_MASTER, NET_RESULT,
                   "{\"lease\":\"" LEASE "\",\"error\":\"no\",\"blobs\":[]}", NULL, 0);
        round_trip(&c, NET_TO_MASTER, NET_HEARTBEAT, "{\"leases\":[\"" LEASE "\"],\"free\":3}",
                   NULL, 0);
        round_trip(&c, NET_TO_MASTER, NET_FETCH,
                   "{\"sha256\":\"" SHA_OK "\",\"offset\":0,\"length\":1048576}", NULL, 0);

        /* The most payloads a RESULT may carry. */
        f = open_memstream(&blobs, &len);
        assert_non_null(f);
        fputs("{\"lease\":\"" LEASE "\",\"result\":{},\"blobs\":[", f);
        for (size_t i = 0; i < NET_PAYLOADS_MAX; i++) {
                many[i] = (struct iovec){(void *) "p", 1};
                fprintf(f, "%s\"b%zu\"", i ? "," : "", i);
        }
        fputs("]}", f);
        assert_int_equal(fclose(f), 0);
        round_trip(&c, NET_TO_MASTER, NET_RESULT, blobs, many, NET_PAYLOADS_MAX);

        /* Toward the worker. */
        round_trip(&c, NET_TO_WORKER, NET_WELCOME,
                   "{\"worker\":\"w-1\",\"heartbeat_ms\":1000,\"lease_ms\":10000,\"leases\":[]}",
                   NULL, 0);
        round_trip(&c, NET_TO_WORKER, NET_ASSIGN,
                   "{\"lease\":\"" LEASE "\",\"job\":\"" LEASE "\",\"replica\":0,"
                   "\"app\":{\"name\":\"sh\"},\"spec\":{\"files\":{\"main.sh\":\"echo hi\"}},"
                   "\"inputs\":[{\"path\":\"in\",\"sha256\":\"" SHA_OK "\",\"size\":3}]}",
                   NULL, 0);
        round_trip(&c, NET_TO_WORKER, NET_RESULT_ACK, "{\"lease\":\"" LEASE "\",\"accepted\":true}",
                   NULL, 0);
        round_trip(&c, NET_TO_WORKER, NET_HEARTBEAT, "{}", NULL, 0);
        round_trip(&c, NET_TO_WORKER, NET_CANCEL, "{\"lease\":\"" LEASE "\"}", NULL, 0);
        round_trip(&c, NET_TO_WORKER, NET_BLOB,
                   "{\"sha256\":\"" SHA_OK "\",\"offset\":0,\"size\":3}", one, 1);
        round_trip(&c, NET_TO_WORKER, NET_ERROR,
                   "{\"code\":\"unknown_lease\",\"message\":\"no such lease\",\"lease\":\"" LEASE
                   "\"}",
                   NULL, 0);
        round_trip(&c, NET_TO_WORKER, NET_DISCONNECT, "{\"reason\":\"shutdown\"}", NULL, 0);

        /* Received without a poll first (libzmq takes another path then): the same. */
        {
                _cleanup_free_ char *uid = NULL;
                struct net_msg m = {};
                zframe_t *rid = NULL;
                uint64_t until = now_ns(CLOCK_MONOTONIC) + (uint64_t) WAIT_MS * 1000000;
                int r;

                assert_int_equal(
                        net_send(c.dealer, NULL, NET_HEARTBEAT, body_of("{\"free\":2}"), NULL, 0),
                        0);
                while ((r = net_recv(c.router, NET_TO_MASTER, &m, &rid, &uid)) == -EAGAIN)
                        assert_true(now_ns(CLOCK_MONOTONIC) < until);
                assert_int_equal(r, 0);
                assert_int_equal(m.command, NET_HEARTBEAT);
                assert_string_equal(uid, WORKER_NAME);
                assert_true(zframe_eq(rid, c.rid));
                zframe_destroy(&rid);
                net_msg_done(&m);
        }
        round_trip(&c, NET_TO_MASTER, NET_DISCONNECT, "{\"reason\":\"bye\"}", NULL, 0);
}

static void test_send_refuses(void **state)
{
        _cleanup_(conn_done) struct conn c = {};
        struct iovec two[] = {{(void *) "a", 1}, {(void *) "b", 1}};
        _cleanup_free_ char *big = NULL;
        zframe_t *nobody;
        json_t *j;

        connect_good(&c);

        /* Bodies that do not match the field table. */
        assert_int_equal(net_send(c.dealer, NULL, NET_READY, body_of("{\"name\":\"w\"}"), NULL, 0),
                         -EINVAL);
        assert_int_equal(net_send(c.dealer, NULL, NET_CANCEL, body_of("{\"lease\":1}"), NULL, 0),
                         -EINVAL);
        assert_int_equal(net_send(c.dealer, NULL, NET_DISCONNECT,
                                  body_of("{\"reason\":\"x\",\"extra\":true}"), NULL, 0),
                         -EINVAL);
        assert_int_equal(
                net_send(c.dealer, NULL, NET_HEARTBEAT, body_of("{\"leases\":[1]}"), NULL, 0),
                -EINVAL);
        assert_int_equal(net_send(c.dealer, NULL, NET_RESULT,
                                  body_of("{\"lease\":\"l\",\"blobs\":[]}"), NULL, 0),
                         -EINVAL); /* neither result nor error */
        assert_int_equal(net_send(c.dealer, NULL, NET_RESULT,
                                  body_of("{\"lease\":\"l\",\"result\":{},\"error\":\"e\","
                                          "\"blobs\":[]}"),
                                  NULL, 0),
                         -EINVAL); /* both */
        assert_int_equal(net_send(c.dealer, NULL, NET_RESULT,
                                  body_of("{\"lease\":\"l\",\"result\":{},\"blobs\":[\"x\"]}"),
                                  NULL, 0),
                         -EINVAL); /* a blob without its frame */
        assert_int_equal(
                net_send(c.dealer, NULL, NET_OUTPUT,
                         body_of("{\"lease\":\"l\",\"step\":\"run\",\"stream\":\"stdout\"}"), two,
                         2),
                -EINVAL); /* too many payloads */
        assert_int_equal(net_send(c.dealer, NULL, NET_READY, body_of(READY_BODY), two, 1), -EINVAL);
        assert_int_equal(net_send(c.dealer, NULL, 0, body_of("{}"), NULL, 0), -EINVAL);
        assert_int_equal(net_send(c.dealer, NULL, _NET_COMMAND_MAX, body_of("{}"), NULL, 0),
                         -EINVAL);
        assert_int_equal(net_send(c.dealer, NULL, NET_HEARTBEAT, NULL, NULL, 0), -ENOMEM);

        /* A body over NET_BODY_MAX. */
        big = malloc(NET_BODY_MAX + 1);
        assert_non_null(big);
        memset(big, 'a', NET_BODY_MAX);
        big[NET_BODY_MAX] = '\0';
        j = json_pack("{s:s}", "reason", big);
        assert_non_null(j);
        assert_int_equal(net_send(c.dealer, NULL, NET_DISCONNECT, j, NULL, 0), -E2BIG);

        /* A routing id the ROUTER does not know. */
        nobody = zframe_new("nobody", 6);
        assert_non_null(nobody);
        assert_int_equal(
                net_send(c.router, nobody, NET_CANCEL, body_of("{\"lease\":\"l\"}"), NULL, 0),
                -EHOSTUNREACH);
        zframe_destroy(&nobody);

        /* Nothing of the above went out: the next message is the next one received. */
        expect_next_good(&c, true);
        expect_next_good(&c, false);
}

static void expect_silence(struct conn *c)
{
        zframe_t *rid = NULL;
        char *uid = NULL;
        struct net_msg m = {};

        assert_int_equal(net_send(c->dealer, NULL, NET_READY, body_of(READY_BODY), NULL, 0), 0);
        assert_int_equal(recv_wait(c->router, NET_TO_MASTER, &m, &rid, &uid, SILENCE_MS),
                         -ETIMEDOUT);
}

static void test_wrong_server_key(void **state)
{
        _cleanup_(conn_done) struct conn c = {};
        struct net_keypair other;

        assert_int_equal(net_keygen(&other), 0);
        make_router(&c);
        make_dealer(&c, &worker_kp, other.public_key);
        expect_silence(&c);

        /* A malformed pinned key is refused before anything is set. */
        zsock_destroy(&c.dealer);
        c.dealer = zsock_new(ZMQ_DEALER);
        assert_non_null(c.dealer);
        assert_int_equal(net_socket_client(c.dealer, &worker_kp, "short", 1000), -EINVAL);
}

static void test_unknown_client_key(void **state)
{
        _cleanup_(conn_done) struct conn c = {};
        struct net_keypair stranger;

        assert_int_equal(net_keygen(&stranger), 0);
        make_router(&c);
        make_dealer(&c, &stranger, master_kp.public_key);
        expect_silence(&c);

        /* The router still serves the known key. */
        zsock_destroy(&c.dealer);
        make_dealer(&c, &worker_kp, master_kp.public_key);
        round_trip(&c, NET_TO_MASTER, NET_HEARTBEAT, "{}", NULL, 0);
}

static void test_recv_rejects_to_master(void **state)
{
        _cleanup_(conn_done) struct conn c = {};
        _cleanup_free_ char *long_name = NULL;

        connect_good(&c);

        /* The header: magic, size, command, version. */
        REJECT(&c, true, -EBADMSG, 0, {"XRN\1\1", 5}, P(READY_BODY), TAIL);
        REJECT(&c, true, -EBADMSG, 0, {"WRN\1", 4}, P(READY_BODY), TAIL);
        REJECT(&c, true, -EBADMSG, 0, {"WRN\1\1\1", 6}, P(READY_BODY), TAIL);
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, 0), P(READY_BODY), TAIL);
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, _NET_COMMAND_MAX), P(READY_BODY), TAIL);
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, 0xff), P(READY_BODY));
        REJECT(&c, true, -EPROTONOSUPPORT, NET_READY, HDR(NET_VERSION + 1, NET_READY),
               P(READY_BODY), TAIL);
        REJECT(&c, true, -EPROTONOSUPPORT, NET_DISCONNECT, HDR(0, NET_DISCONNECT),
               P("{\"reason\":\"x\"}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY)); /* no body */
        REJECT(&c, true, -EBADMSG, 0, P(""), TAIL);

        /* Commands that travel the other way. */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_WELCOME),
               P("{\"worker\":\"w\",\"heartbeat_ms\":1,\"lease_ms\":1,\"leases\":[]}"), TAIL);
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_CANCEL), P("{\"lease\":\"l\"}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_RESULT_ACK),
               P("{\"lease\":\"l\",\"accepted\":true}"));

        /* The body. */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY),
               P("{\"name\":\"w-1\",\"slots\":1,\"cpus\":1,\"memory\":1,\"profiles\":[],"
                 "\"leases\":[],\"x\":1}"),
               TAIL); /* unknown field */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY),
               P("{\"name\":\"w-1\",\"slots\":1,\"cpus\":1,\"profiles\":[],\"leases\":[]}"),
               TAIL); /* missing */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY),
               P("{\"name\":\"w-1\",\"slots\":\"1\",\"cpus\":1,\"memory\":1,\"profiles\":[],"
                 "\"leases\":[]}"),
               TAIL); /* wrong type */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY),
               P("{\"name\":\"w-1\",\"slots\":1.5,\"cpus\":1,\"memory\":1,\"profiles\":[],"
                 "\"leases\":[]}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY),
               P("{\"name\":\"w-1\",\"slots\":1,\"cpus\":1,\"memory\":1,\"profiles\":[1],"
                 "\"leases\":[]}")); /* a list of strings holds strings */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), P("{\"leases\":null}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT),
               P("{\"free\":1,\"free\":2}")); /* duplicate key */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), P("{\"leases\":[],"),
               TAIL); /* not JSON */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), P("[]"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), P(""));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), P("{} {}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), {"{\"free\":1}\0", 11});
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_RESULT),
               P("{\"lease\":\"l\",\"result\":{},\"error\":\"e\",\"blobs\":[]}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_RESULT),
               P("{\"lease\":\"l\",\"blobs\":[]}"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_RESULT),
               P("{\"lease\":\"l\",\"result\":{},\"blobs\":[\"a\",\"b\"]}"),
               P("only one")); /* a blob without its frame */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_RESULT),
               P("{\"lease\":\"l\",\"result\":{},\"blobs\":[]}"), P("a frame of no blob"));
        assert_true(asprintf(&long_name, "{\"name\":\"%0*d\",\"token\":\"t\"}", NET_NAME_MAX + 1,
                             0) > 0);
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_JOIN), {long_name, strlen(long_name)});

        /* Too many payloads. */
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_READY), P(READY_BODY), P("x"));
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_OUTPUT),
               P("{\"lease\":\"l\",\"step\":\"run\",\"stream\":\"stdout\"}"), P("1"), P("2"), TAIL);
        REJECT(&c, true, -EBADMSG, 0, HDR(NET_VERSION, NET_HEARTBEAT), P("{}"), P(""));
}

static void test_recv_rejects_to_worker(void **state)
{
        _cleanup_(conn_done) struct conn c = {};

        connect_good(&c);

        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_READY), P(READY_BODY), TAIL);
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_OUTPUT),
               P("{\"lease\":\"l\",\"step\":\"run\",\"stream\":\"stdout\"}"), P("x"));
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_FETCH),
               P("{\"sha256\":\"s\",\"offset\":0,\"length\":1}"));
        REJECT(&c, false, -EPROTONOSUPPORT, NET_ASSIGN, HDR(NET_VERSION + 1, NET_ASSIGN), P("{}"),
               TAIL);
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_ASSIGN),
               P("{\"lease\":\"l\",\"job\":\"j\",\"replica\":0,\"app\":{},\"inputs\":[]}"),
               TAIL); /* no spec */
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_RESULT_ACK),
               P("{\"lease\":\"l\",\"accepted\":1}"));
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_WELCOME),
               P("{\"worker\":\"w\",\"heartbeat_ms\":1,\"lease_ms\":1,\"leases\":[{}]}"));
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_BLOB),
               P("{\"sha256\":\"s\",\"offset\":0,\"size\":2}"), P("a"), P("b"));
        REJECT(&c, false, -EBADMSG, 0, {"WRN", 3});
        REJECT(&c, false, -EBADMSG, 0, HDR(NET_VERSION, NET_CANCEL), P("nope"), TAIL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_leases_and_names),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_send_refuses),
                cmocka_unit_test(test_wrong_server_key),
                cmocka_unit_test(test_unknown_client_key),
                cmocka_unit_test(test_recv_rejects_to_master),
                cmocka_unit_test(test_recv_rejects_to_worker),
        };
        int r;

        /* Our own signal handling (none): czmq's would swallow SIGINT in a test run. */
        zsys_handler_set(NULL);
        r = cmocka_run_group_tests(tests, group_setup, group_teardown);
        /* czmq's global context and its threads, so that valgrind sees nothing left. */
        zsys_shutdown();
        return r;
}
