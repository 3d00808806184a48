/* SPDX-License-Identifier: MIT */
/*
 * The master–worker protocol: framing, the field table of every command, keys and socket set-up.
 * See proto.h for the messages.
 */
#include "net/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

static const char *const command_names[_NET_COMMAND_MAX] = {
        [NET_READY] = "READY",           [NET_JOIN] = "JOIN",           [NET_WELCOME] = "WELCOME",
        [NET_ASSIGN] = "ASSIGN",         [NET_OUTPUT] = "OUTPUT",       [NET_RESULT] = "RESULT",
        [NET_RESULT_ACK] = "RESULT_ACK", [NET_HEARTBEAT] = "HEARTBEAT", [NET_CANCEL] = "CANCEL",
        [NET_FETCH] = "FETCH",           [NET_BLOB] = "BLOB",           [NET_ERROR] = "ERROR",
        [NET_DISCONNECT] = "DISCONNECT",
};

const char *net_command_to_string(enum net_command c)
{
        if (c <= 0 || c >= _NET_COMMAND_MAX)
                return "?";
        return command_names[c];
}

/* Bit 0: may travel to the master; bit 1: to a worker. */
#define TO_M 1u
#define TO_W 2u

struct command_info {
        unsigned ways;
        const struct json_field *fields;
        size_t n_fields;
        unsigned max_payloads;
};

#define F(n, t, req)                                               \
        {                                                          \
                .name = n, .type = JSON_FIELD_##t, .required = req \
        }

static const struct json_field f_ready[] = {
        F("name", STRING, true),    F("slots", INTEGER, true),  F("cpus", INTEGER, true),
        F("memory", INTEGER, true), F("profiles", ARRAY, true), F("leases", ARRAY, true),
};
static const struct json_field f_join[] = {F("name", STRING, true), F("token", STRING, true)};
static const struct json_field f_welcome[] = {
        F("worker", STRING, true),
        F("heartbeat_ms", INTEGER, true),
        F("lease_ms", INTEGER, true),
        F("leases", ARRAY, true),
};
static const struct json_field f_assign[] = {
        F("lease", STRING, true), F("job", STRING, true),  F("replica", INTEGER, true),
        F("app", OBJECT, true),   F("spec", OBJECT, true), F("inputs", ARRAY, true),
};
static const struct json_field f_output[] = {
        F("lease", STRING, true),
        F("step", STRING, true),
        F("stream", STRING, true),
};
static const struct json_field f_result[] = {
        F("lease", STRING, true),
        F("result", OBJECT, false),
        F("error", STRING, false),
        F("blobs", ARRAY, true),
};
static const struct json_field f_result_ack[] = {F("lease", STRING, true),
                                                 F("accepted", BOOL, true)};
static const struct json_field f_heartbeat[] = {F("leases", ARRAY, false),
                                                F("free", INTEGER, false)};
static const struct json_field f_cancel[] = {F("lease", STRING, true)};
static const struct json_field f_fetch[] = {
        F("sha256", STRING, true),
        F("offset", INTEGER, true),
        F("length", INTEGER, true),
};
static const struct json_field f_blob[] = {
        F("sha256", STRING, true),
        F("offset", INTEGER, true),
        F("size", INTEGER, true),
};
static const struct json_field f_error[] = {
        F("code", STRING, true),
        F("message", STRING, true),
        F("lease", STRING, false),
        F("sha256", STRING, false),
};
static const struct json_field f_disconnect[] = {F("reason", STRING, true)};

#define C(w, f, p)                                                                         \
        {                                                                                  \
                .ways = (w), .fields = (f), .n_fields = ELEMENTSOF(f), .max_payloads = (p) \
        }

static const struct command_info commands[_NET_COMMAND_MAX] = {
        [NET_READY] = C(TO_M, f_ready, 0),
        [NET_JOIN] = C(TO_M, f_join, 0),
        [NET_WELCOME] = C(TO_W, f_welcome, 0),
        [NET_ASSIGN] = C(TO_W, f_assign, 0),
        [NET_OUTPUT] = C(TO_M, f_output, 1),
        [NET_RESULT] = C(TO_M, f_result, NET_PAYLOADS_MAX),
        [NET_RESULT_ACK] = C(TO_W, f_result_ack, 0),
        [NET_HEARTBEAT] = C(TO_M | TO_W, f_heartbeat, 0),
        [NET_CANCEL] = C(TO_W, f_cancel, 0),
        [NET_FETCH] = C(TO_M, f_fetch, 0),
        [NET_BLOB] = C(TO_W, f_blob, 1),
        [NET_ERROR] = C(TO_W, f_error, 0),
        [NET_DISCONNECT] = C(TO_M | TO_W, f_disconnect, 0),
};

/* An array of at most max strings (READY's profiles and leases, a HEARTBEAT's leases...). */
static bool string_array(const json_t *a, size_t max)
{
        size_t i;
        json_t *v;

        if (!a)
                return true; /* optional and absent: the field table has said whether it may be */
        if (json_array_size(a) > max)
                return false;
        json_array_foreach(a, i, v) if (!json_is_string(v)) return false;
        return true;
}

static bool string_max(const json_t *s, size_t max)
{
        return !s || json_string_length(s) <= max;
}

/*
 * What the field table cannot say: the element types and lengths of lists, the lengths of names
 * and tokens, RESULT's exactly-one-of and its blobs (one payload frame each, in order).
 */
static int check_body(enum net_command c, const json_t *body, size_t n_payloads)
{
        switch (c) {
        case NET_READY:
                if (!string_max(json_object_get(body, "name"), NET_NAME_MAX) ||
                    !string_array(json_object_get(body, "profiles"), NET_LIST_MAX) ||
                    !string_array(json_object_get(body, "leases"), NET_LIST_MAX))
                        return -EINVAL;
                return 0;
        case NET_JOIN:
                if (!string_max(json_object_get(body, "name"), NET_NAME_MAX) ||
                    !string_max(json_object_get(body, "token"), NET_TOKEN_MAX))
                        return -EINVAL;
                return 0;
        case NET_WELCOME:
        case NET_HEARTBEAT:
                return string_array(json_object_get(body, "leases"), NET_LIST_MAX) ? 0 : -EINVAL;
        case NET_RESULT: {
                const json_t *blobs = json_object_get(body, "blobs");

                if (!json_object_get(body, "result") == !json_object_get(body, "error"))
                        return -EINVAL;
                if (!string_array(blobs, NET_PAYLOADS_MAX) || json_array_size(blobs) != n_payloads)
                        return -EINVAL;
                return 0;
        }
        case NET_ASSIGN:
        case NET_OUTPUT:
        case NET_RESULT_ACK:
        case NET_CANCEL:
        case NET_FETCH:
        case NET_BLOB:
        case NET_ERROR:
        case NET_DISCONNECT:
        case _NET_COMMAND_MAX:
                break;
        }
        return 0;
}

void net_msg_done(struct net_msg *m)
{
        if (!m)
                return;
        json_decref(m->body);
        for (size_t i = 0; i < m->n_payloads; i++)
                zframe_destroy(&m->payloads[i]);
        *m = (struct net_msg){};
}

static int send_part(void *raw, const void *data, size_t len, bool more)
{
        int flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0);

        if (zmq_send(raw, data, len, flags) < 0)
                return -errno;
        return 0;
}

int net_send(zsock_t *sock, zframe_t *routing_id, enum net_command command, json_t *body,
             const struct iovec *payloads, size_t n_payloads)
{
        _cleanup_free_ char *text = NULL;
        struct json_error err = {};
        uint8_t header[NET_HEADER_SIZE] = {'W', 'R', 'N', NET_VERSION, (uint8_t) command};
        void *raw;
        int r;

        if (!body)
                return -ENOMEM;
        if (command <= 0 || command >= _NET_COMMAND_MAX ||
            n_payloads > commands[command].max_payloads ||
            json_check_fields(body, NULL, commands[command].fields, commands[command].n_fields,
                              &err) < 0 ||
            check_body(command, body, n_payloads) < 0) {
                json_decref(body);
                return -EINVAL;
        }
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text)
                return -ENOMEM;
        if (strlen(text) > NET_BODY_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n_payloads; i++)
                if (payloads[i].iov_len > NET_PAYLOAD_MAX)
                        return -E2BIG;

        raw = zsock_resolve(sock);
        if (routing_id) {
                r = send_part(raw, zframe_data(routing_id), zframe_size(routing_id), true);
                if (r < 0)
                        return r;
        }
        /* Once the first part is queued the rest follow (ZeroMQ queues whole messages). */
        r = send_part(raw, header, sizeof(header), true);
        if (r < 0)
                return r;
        r = send_part(raw, text, strlen(text), n_payloads > 0);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_payloads; i++) {
                r = send_part(raw, payloads[i].iov_base, payloads[i].iov_len, i + 1 < n_payloads);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Receives one part into m (initialised by the caller); 1 if more parts follow. */
static int recv_part(void *raw, zmq_msg_t *m)
{
        int more;
        size_t len = sizeof(more);

        if (zmq_msg_recv(m, raw, ZMQ_DONTWAIT) < 0)
                return -errno;
        if (zmq_getsockopt(raw, ZMQ_RCVMORE, &more, &len) < 0)
                return -errno;
        return more ? 1 : 0;
}

/* Throws away the rest of a multipart message. */
static void drain(void *raw)
{
        for (;;) {
                zmq_msg_t m;
                int more;

                zmq_msg_init(&m);
                more = recv_part(raw, &m);
                zmq_msg_close(&m);
                if (more <= 0)
                        return;
        }
}

int net_recv(zsock_t *sock, enum net_side side, struct net_msg *ret, zframe_t **ret_routing_id,
             char **ret_user_id)
{
        void *raw = zsock_resolve(sock);
        struct net_msg msg = {};
        _cleanup_free_ char *user = NULL;
        zframe_t *routing = NULL;
        struct json_error jerr = {};
        struct json_limits limits = {
                .max_bytes = NET_BODY_MAX, .max_depth = 32, .max_values = 1u << 20};
        const struct command_info *info;
        zmq_msg_t m;
        uint8_t header[NET_HEADER_SIZE];
        int more, r;

        zmq_msg_init(&m);
        more = recv_part(raw, &m);
        if (more < 0) {
                zmq_msg_close(&m);
                return more;
        }
        if (ret_routing_id) {
                routing = zframe_new(zmq_msg_data(&m), zmq_msg_size(&m));
                zmq_msg_close(&m);
                if (!routing) {
                        r = -ENOMEM;
                        goto fail_drain;
                }
                if (!more) {
                        r = -EBADMSG;
                        goto fail;
                }
                zmq_msg_init(&m);
                more = recv_part(raw, &m);
                if (more < 0) {
                        zmq_msg_close(&m);
                        r = -EBADMSG;
                        goto fail;
                }
        }
        if (ret_user_id) {
                /* From the header frame, not the routing id: libzmq (4.3.4) leaves the routing
                 * id's frame without the connection's metadata when the ROUTER was polled
                 * first (router_t::xhas_in() prefetches it), i.e. always in an event loop. */
                const char *uid = zmq_msg_gets(&m, "User-Id");

                user = strdup(uid ? uid : "");
                if (!user) {
                        zmq_msg_close(&m);
                        r = -ENOMEM;
                        goto fail_drain_if;
                }
        }

        /* The header. */
        if (zmq_msg_size(&m) != NET_HEADER_SIZE) {
                zmq_msg_close(&m);
                r = -EBADMSG;
                goto fail_drain_if;
        }
        memcpy(header, zmq_msg_data(&m), sizeof(header));
        zmq_msg_close(&m);
        if (header[0] != 'W' || header[1] != 'R' || header[2] != 'N' || header[4] == 0 ||
            header[4] >= _NET_COMMAND_MAX) {
                r = -EBADMSG;
                goto fail_drain_if;
        }
        msg.command = header[4];
        if (header[3] != NET_VERSION) {
                ret->command = msg.command;
                r = -EPROTONOSUPPORT;
                goto fail_drain_if;
        }
        info = &commands[msg.command];
        if (!(info->ways & (side == NET_TO_MASTER ? TO_M : TO_W)) || !more) {
                r = -EBADMSG;
                goto fail_drain_if;
        }

        /* The body. */
        zmq_msg_init(&m);
        more = recv_part(raw, &m);
        if (more < 0) {
                zmq_msg_close(&m);
                r = -EBADMSG;
                goto fail;
        }
        r = json_parse_strict_limits(zmq_msg_data(&m), zmq_msg_size(&m), &limits, &msg.body, &jerr);
        zmq_msg_close(&m);
        if (r < 0 || json_check_fields(msg.body, NULL, info->fields, info->n_fields, &jerr) < 0) {
                r = -EBADMSG;
                goto fail_drain_if;
        }

        /* The payloads, at most the command's number. */
        while (more) {
                if (msg.n_payloads >= info->max_payloads) {
                        r = -EBADMSG;
                        goto fail_drain_if;
                }
                zmq_msg_init(&m);
                more = recv_part(raw, &m);
                if (more < 0) {
                        zmq_msg_close(&m);
                        r = -EBADMSG;
                        goto fail;
                }
                if (zmq_msg_size(&m) > NET_PAYLOAD_MAX) {
                        /* The socket's bound (ZMQ_MAXMSGSIZE, per frame) is the body's plus this.
                         */
                        zmq_msg_close(&m);
                        r = -EBADMSG;
                        goto fail_drain_if;
                }
                msg.payloads[msg.n_payloads] = zframe_new(zmq_msg_data(&m), zmq_msg_size(&m));
                zmq_msg_close(&m);
                if (!msg.payloads[msg.n_payloads]) {
                        r = -ENOMEM;
                        goto fail_drain_if;
                }
                msg.n_payloads++;
        }
        if (check_body(msg.command, msg.body, msg.n_payloads) < 0) {
                r = -EBADMSG;
                goto fail;
        }

        *ret = msg;
        if (ret_routing_id)
                *ret_routing_id = routing;
        if (ret_user_id)
                *ret_user_id = TAKE_PTR(user);
        return 0;

fail_drain_if:
        if (more > 0)
                drain(raw);
        goto fail;
fail_drain:
        if (more > 0)
                drain(raw);
fail:
        zframe_destroy(&routing);
        net_msg_done(&msg);
        return r;
}

/* ---- keys ---- */

int net_keygen(struct net_keypair *ret)
{
        if (zmq_curve_keypair(ret->public_key, ret->secret_key) < 0)
                return -errno;
        return 0;
}

static int write_new(const char *path, mode_t mode, const char *text)
{
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        int r;

        if (fd < 0)
                return -errno;
        r = fchmod(fd, mode) < 0 ? -errno : 0;
        if (r >= 0)
                r = write_full(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(path); /* ours (O_EXCL): a half-written key file must not stay */
        return r;
}

int net_key_write(const char *path, const struct net_keypair *kp)
{
        _cleanup_free_ char *secret_path = NULL, *pub = NULL, *sec = NULL;
        int r;

        if (asprintf(&secret_path, "%s.secret", path) < 0 ||
            asprintf(&pub, "%s\n", kp->public_key) < 0 ||
            asprintf(&sec, "public %s\nsecret %s\n", kp->public_key, kp->secret_key) < 0)
                return -ENOMEM;
        r = write_new(secret_path, 0600, sec);
        explicit_bzero(sec, strlen(sec));
        if (r < 0)
                return r;
        r = write_new(path, 0644, pub);
        if (r < 0) {
                (void) unlink(secret_path);
                return r;
        }
        return 0;
}

/* Reads a small key file whole (at most 4 KiB). */
static int read_small(const char *path, bool secret, char buf[static 4096])
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        ssize_t k;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (secret && (st.st_mode & 077))
                return -EPERM;
        k = read(fd, buf, 4095);
        if (k < 0)
                return -errno;
        buf[k] = '\0';
        return 0;
}

/* Finds "<word> <key>" at the start of a line (word NULL: a bare key line). */
static int find_key(const char *text, const char *word, char key[static 41])
{
        const char *p = text;

        while (*p) {
                const char *eol = strchrnul(p, '\n');
                const char *k = p;

                if (word) {
                        size_t wl = strlen(word);

                        if ((size_t) (eol - p) > wl && strncmp(p, word, wl) == 0 && p[wl] == ' ')
                                k = p + wl + 1;
                        else
                                k = NULL;
                }
                if (k && z85_key_valid(k, (size_t) (eol - k))) {
                        memcpy(key, k, 40);
                        key[40] = '\0';
                        return 0;
                }
                p = *eol ? eol + 1 : eol;
        }
        return -EINVAL;
}

int net_key_read_secret(const char *path, struct net_keypair *ret)
{
        char buf[4096];
        int r;

        r = read_small(path, true, buf);
        if (r < 0)
                return r;
        r = find_key(buf, "public", ret->public_key);
        if (r >= 0)
                r = find_key(buf, "secret", ret->secret_key);
        explicit_bzero(buf, sizeof(buf));
        return r;
}

int net_key_read_public(const char *path, char key[static 41])
{
        char buf[4096];
        int r;

        r = read_small(path, false, buf);
        if (r < 0)
                return r;
        r = find_key(buf, NULL, key);
        if (r < 0)
                r = find_key(buf, "public", key);
        explicit_bzero(buf, sizeof(buf));
        return r;
}

/* ---- sockets ---- */

static void common_setup(zsock_t *sock, unsigned heartbeat_ms)
{
        zsock_set_linger(sock, 0);
        zsock_set_sndtimeo(sock, 0);
        zsock_set_maxmsgsize(sock, (int) (NET_PAYLOAD_MAX + NET_BODY_MAX));
        zsock_set_sndhwm(sock, 100000);
        zsock_set_rcvhwm(sock, 100000);
        zsock_set_tcp_keepalive(sock, 1);
        /* ZMTP heartbeats find dead TCP connections; leases are the protocol's HEARTBEATs'
         * business. They are kept slow: libzmq (4.3) cancels a timer by scanning them all, so
         * a master with 10 000 connections pays per connection for each ping. */
        zsock_set_heartbeat_ivl(sock, (int) heartbeat_ms * 5);
        zsock_set_heartbeat_timeout(sock, (int) heartbeat_ms * 15);
        /* No TTL: a TTL in our PINGs makes the peer arm a timeout timer that every message
         * re-arms, which is the master's cost again (below). */
        zsock_set_heartbeat_ttl(sock, 0);
        zsock_set_handshake_ivl(sock, 10000);
}

int net_socket_server(zsock_t *sock, const struct net_keypair *kp, unsigned heartbeat_ms)
{
        common_setup(sock, heartbeat_ms);
        /* The workers ping (ZMTP) and the master answers; the master itself sets no heartbeat
         * timers. libzmq 4.3 cancels a timer by scanning all of them, and every message that
         * arrives on a connection cancels its heartbeat timeout: with 5 000 workers, 24 to 35% of
         * the master's CPU went to std::_Rb_tree_increment. A silent worker is found by the
         * protocol's HEARTBEATs (its leases expire). */
        zsock_set_heartbeat_ivl(sock, 0);
        /* Without it a ROUTER drops a message to an unknown peer (or a full queue) silently:
         * net_send() promises -EHOSTUNREACH (and -EAGAIN). */
        if (zsock_type(sock) == ZMQ_ROUTER)
                zsock_set_router_mandatory(sock, 1);
        zsock_set_zap_domain(sock, NET_ZAP_DOMAIN);
        zsock_set_zap_enforce_domain(sock, 1);
        zsock_set_curve_server(sock, 1);
        zsock_set_curve_secretkey(sock, kp->secret_key);
        if (zsock_curve_server(sock) != 1)
                return -EPROTONOSUPPORT;
        return 0;
}

int net_socket_client(zsock_t *sock, const struct net_keypair *kp, const char *server_key,
                      unsigned heartbeat_ms)
{
        if (!z85_key_valid(server_key, strlen(server_key)))
                return -EINVAL;
        common_setup(sock, heartbeat_ms);
        zsock_set_curve_serverkey(sock, server_key);
        zsock_set_curve_publickey(sock, kp->public_key);
        zsock_set_curve_secretkey(sock, kp->secret_key);
        return 0;
}

void net_lease_new(char ret[static 33])
{
        uint8_t b[16];
        static const char hex[] = "0123456789abcdef";

        /* getrandom() on 16 bytes does not fail once the pool is initialised. */
        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                abort();
        for (size_t i = 0; i < sizeof(b); i++) {
                ret[2 * i] = hex[b[i] >> 4];
                ret[2 * i + 1] = hex[b[i] & 15];
        }
        ret[32] = '\0';
}

bool net_lease_valid(const char *s)
{
        if (!s || strlen(s) != 32)
                return false;
        for (size_t i = 0; i < 32; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}
