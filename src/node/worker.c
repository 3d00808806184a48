/* SPDX-License-Identifier: MIT */
/*
 * A worker node: the agent on the main thread, the runners (runner.c) on theirs.
 *
 * Each assignment is a lease entry, in one of these states:
 *   FETCHING  the agent is fetching an input the blob cache lacks (FETCH/BLOB, checked)
 *   READY     waiting for a runner
 *   RUNNING   a runner has it
 *   SENDING   its result is ready for the agent to send
 *   SENT      sent; kept until the master acknowledges it, and sent again after a reconnection
 * A lease the master cancels, or does not honour after a reconnection, is dropped (a running job
 * is killed first).
 */
#include "node/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "net/proto.h"
#include "node/node.h"

#define OUTQ_MAX_BYTES (UINT64_C(16) << 20) /* live output waiting to be sent; beyond: dropped */

enum lease_state {
        LEASE_FETCHING,
        LEASE_READY,
        LEASE_RUNNING,
        LEASE_SENDING,
        LEASE_SENT,
};

struct lease_ent {
        struct lease_ent *next;
        enum lease_state state;
        char lease[STORE_LEASE_ID_SIZE];
        char job_id[STORE_JOB_ID_SIZE];
        bool cancelled;      /* RUNNING, then dropped by the master: send nothing */
        struct node_exec ex; /* FETCHING, READY */

        /* FETCHING: the input being fetched, into w, at offset */
        size_t fetch_i;
        struct blob_writer *w;
        uint64_t offset;

        /* SENDING, SENT */
        json_t *body;
        size_t n_payloads;
        char **payloads;
        size_t *payload_lens;
};

struct out_chunk {
        struct out_chunk *next;
        char lease[STORE_LEASE_ID_SIZE];
        char step[8], stream[8];
        size_t len;
        char data[];
};

struct worker_agent {
        struct node *n;
        struct net_keypair kp;
        char master_key[41];
        zsock_t *sock;
        int efd; /* runners → agent */

        pthread_mutex_t lock; /* guards everything below */
        pthread_cond_t cond;
        struct lease_ent *leases;
        struct out_chunk *out_head, *out_tail;
        uint64_t out_bytes;
        bool shutdown;

        bool welcomed;
        bool join_sent;
        uint64_t last_rx, last_hb; /* monotonic ns */
        uint64_t connected_at;
};

static void lease_free(struct lease_ent *e)
{
        if (!e)
                return;
        node_exec_done(&e->ex);
        e->w = blob_writer_free(e->w);
        json_decref(e->body);
        for (size_t i = 0; i < e->n_payloads; i++)
                free(e->payloads[i]);
        free(e->payloads);
        free(e->payload_lens);
        free(e);
}

/* Under the lock. */
static struct lease_ent *lease_find(struct worker_agent *a, const char *lease)
{
        for (struct lease_ent *e = a->leases; e; e = e->next)
                if (strcmp(e->lease, lease) == 0)
                        return e;
        return NULL;
}

/* Under the lock. */
static void lease_remove(struct worker_agent *a, struct lease_ent *e)
{
        for (struct lease_ent **p = &a->leases; *p; p = &(*p)->next)
                if (*p == e) {
                        *p = e->next;
                        lease_free(e);
                        return;
                }
}

static void wake_agent(struct worker_agent *a)
{
        uint64_t one = 1;

        (void) !write(a->efd, &one, sizeof(one));
}

/* ---- the runners' side ---- */

int worker_agent_take(struct worker_agent *a, struct node_exec *ret)
{
        (void) pthread_mutex_lock(&a->lock);
        for (;;) {
                if (a->shutdown) {
                        (void) pthread_mutex_unlock(&a->lock);
                        return -ESHUTDOWN;
                }
                for (struct lease_ent *e = a->leases; e; e = e->next)
                        if (e->state == LEASE_READY) {
                                e->state = LEASE_RUNNING;
                                *ret = e->ex;
                                e->ex = (struct node_exec){};
                                (void) pthread_mutex_unlock(&a->lock);
                                wake_agent(a); /* the free slot count changed */
                                return 0;
                        }
                (void) pthread_cond_wait(&a->cond, &a->lock);
        }
}

void worker_agent_output(struct worker_agent *a, const char *lease, const char *step,
                         const char *stream, const char *data, size_t len)
{
        struct out_chunk *c;

        (void) pthread_mutex_lock(&a->lock);
        if (a->out_bytes + len > OUTQ_MAX_BYTES) {
                /* The master is slow or away: live output is dropped, the result keeps all. */
                (void) pthread_mutex_unlock(&a->lock);
                return;
        }
        c = malloc(sizeof(*c) + len);
        if (!c) {
                (void) pthread_mutex_unlock(&a->lock);
                return;
        }
        *c = (struct out_chunk){.len = len};
        (void) snprintf(c->lease, sizeof(c->lease), "%s", lease);
        (void) snprintf(c->step, sizeof(c->step), "%s", step);
        (void) snprintf(c->stream, sizeof(c->stream), "%s", stream);
        memcpy(c->data, data, len);
        if (a->out_tail)
                a->out_tail->next = c;
        else
                a->out_head = c;
        a->out_tail = c;
        a->out_bytes += len;
        (void) pthread_mutex_unlock(&a->lock);
        wake_agent(a);
}

/* Adds to blobs every digest of an object of result that names a stored blob ("url"). */
static int collect_blobs(json_t *v, json_t *blobs)
{
        const char *key;
        json_t *m;
        size_t i;

        if (json_is_object(v)) {
                json_t *url = json_object_get(v, "url"), *sha = json_object_get(v, "sha256");

                if (url && json_is_string(sha) && json_array_append(blobs, v) < 0)
                        return -ENOMEM;
                json_object_foreach(v, key, m) if (collect_blobs(m, blobs) < 0) return -ENOMEM;
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, m) if (collect_blobs(m, blobs) < 0) return -ENOMEM;
        }
        return 0;
}

/* The RESULT of e: its body, and the content of every blob its result names. */
static int build_result(struct worker_agent *a, struct lease_ent *e, const char *result,
                        const char *error)
{
        _cleanup_json_ json_t *body = NULL, *blobs = json_array();
        json_t *res = NULL;
        size_t i;
        json_t *v;
        int r;

        if (!blobs)
                return -ENOMEM;
        if (result) {
                res = json_loads(result, 0, NULL);
                if (!res)
                        return -EBADMSG;
                if (collect_blobs(res, blobs) < 0) {
                        json_decref(res);
                        return -ENOMEM;
                }
        }
        if (json_array_size(blobs) + 2 > NET_PAYLOADS_MAX) {
                json_decref(res);
                return -E2BIG;
        }
        body = json_pack("{s:s, s:[]}", "lease", e->lease, "blobs");
        if (!body || (res && json_object_set_new(body, "result", res) < 0) ||
            (!res && json_object_set_new(body, "error", json_string(error)) < 0))
                return -ENOMEM;
        e->payloads = calloc(json_array_size(blobs) + 1, sizeof(*e->payloads));
        e->payload_lens = calloc(json_array_size(blobs) + 1, sizeof(*e->payload_lens));
        if (!e->payloads || !e->payload_lens)
                return -ENOMEM;
        json_array_foreach(blobs, i, v)
        {
                const char *sha = json_string_value(json_object_get(v, "sha256"));
                json_t *size = json_object_get(v, "size");

                if (!json_is_integer(size) || json_integer_value(size) < 0 ||
                    json_integer_value(size) > NET_PAYLOAD_MAX)
                        return -E2BIG;
                /* The runner stored it a moment ago; it is read back checked. */
                r = blob_read(a->n->blobs, sha, (uint64_t) json_integer_value(size),
                              NET_PAYLOAD_MAX, &e->payloads[i]);
                if (r < 0)
                        return r;
                e->payload_lens[i] = (size_t) json_integer_value(size);
                e->n_payloads = i + 1;
                if (json_array_append_new(json_object_get(body, "blobs"), json_string(sha)) < 0)
                        return -ENOMEM;
        }
        e->body = TAKE_PTR(body);
        return 0;
}

void worker_agent_result(struct worker_agent *a, const char *lease, const char *result,
                         const char *error)
{
        struct lease_ent *e;
        int r;

        (void) pthread_mutex_lock(&a->lock);
        e = lease_find(a, lease);
        if (!e) {
                (void) pthread_mutex_unlock(&a->lock);
                return;
        }
        if (e->cancelled || (!result && !error)) {
                lease_remove(a, e);
                (void) pthread_mutex_unlock(&a->lock);
                wake_agent(a);
                return;
        }
        r = build_result(a, e, result, error);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;

                log_error_errno(r, "event=result_error lease=%s: %m", lease);
                json_decref(e->body);
                e->body = NULL;
                for (size_t i = 0; i < e->n_payloads; i++)
                        free(e->payloads[i]);
                e->n_payloads = 0;
                if (asprintf(&msg, "the worker could not send the result: %s", strerror(-r)) < 0)
                        msg = NULL;
                e->body = json_pack("{s:s, s:[], s:s}", "lease", e->lease, "blobs", "error",
                                    msg ? msg : "the worker could not send the result");
        }
        e->state = LEASE_SENDING;
        (void) pthread_mutex_unlock(&a->lock);
        wake_agent(a);
}

void worker_agent_shutdown(struct worker_agent *a)
{
        (void) pthread_mutex_lock(&a->lock);
        a->shutdown = true;
        (void) pthread_cond_broadcast(&a->cond);
        (void) pthread_mutex_unlock(&a->lock);
}

/* ---- the agent ---- */

static int agent_send(struct worker_agent *a, enum net_command cmd, json_t *body,
                      const struct iovec *iov, size_t n)
{
        int r = net_send(a->sock, NULL, cmd, body, iov, n);

        if (r < 0 && r != -EAGAIN)
                log_warning_errno(r, "event=send_failed command=%s: %m",
                                  net_command_to_string(cmd));
        return r;
}

static unsigned free_slots(struct worker_agent *a)
{
        unsigned held = 0;

        for (struct lease_ent *e = a->leases; e; e = e->next)
                if (e->state != LEASE_SENT)
                        held++;
        return held >= a->n->n_runners ? 0 : a->n->n_runners - held;
}

static json_t *lease_list(struct worker_agent *a)
{
        json_t *l = json_array();

        for (struct lease_ent *e = a->leases; e && l; e = e->next)
                if (json_array_append_new(l, json_string(e->lease)) < 0) {
                        json_decref(l);
                        return NULL;
                }
        return l;
}

static int send_ready(struct worker_agent *a)
{
        struct sysinfo si = {};
        json_t *leases, *body;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        (void) sysinfo(&si);
        (void) pthread_mutex_lock(&a->lock);
        leases = lease_list(a);
        (void) pthread_mutex_unlock(&a->lock);
        body = json_pack("{s:s, s:i, s:i, s:I, s:[s], s:o?}", "name",
                         a->n->opts.worker_name ? a->n->opts.worker_name : "", "slots",
                         (int) a->n->n_runners, "cpus", (int) (cpus > 0 ? cpus : 1), "memory",
                         (json_int_t) ((uint64_t) si.totalram * si.mem_unit), "profiles", "host",
                         "leases", leases);
        return agent_send(a, NET_READY, body, NULL, 0);
}

static int joined_marker(struct worker_agent *a, bool create)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (asprintf(&path, "%s/joined", a->n->opts.state_dir) < 0)
                return -ENOMEM;
        if (!create)
                return access(path, F_OK) == 0 ? 1 : 0;
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        return fd < 0 ? -errno : 0;
}

static int agent_connect(struct worker_agent *a)
{
        int r;

        zsock_destroy(&a->sock);
        a->sock = zsock_new(ZMQ_DEALER);
        if (!a->sock)
                return -ENOMEM;
        r = net_socket_client(a->sock, &a->kp, a->master_key, a->n->opts.heartbeat_ms);
        if (r < 0)
                return r;
        if (zsock_connect(a->sock, "%s", a->n->opts.master_endpoint) < 0)
                return log_error_errno(-EINVAL, "Cannot connect to '%s'",
                                       a->n->opts.master_endpoint);
        a->welcomed = false;
        a->connected_at = a->last_rx = a->last_hb = now_ns(CLOCK_MONOTONIC);
        if (a->n->opts.join_token && joined_marker(a, false) == 0) {
                r = agent_send(a, NET_JOIN,
                               json_pack("{s:s, s:s}", "name",
                                         a->n->opts.worker_name ? a->n->opts.worker_name : "",
                                         "token", a->n->opts.join_token),
                               NULL, 0);
                a->join_sent = r >= 0;
        }
        return send_ready(a);
}

/* Sends the next FETCH of e, or moves it on: the next missing input, or READY. Under the lock. */
static int fetch_next(struct worker_agent *a, struct lease_ent *e)
{
        while (e->fetch_i < e->ex.n_inputs) {
                const struct node_exec_input *in = &e->ex.inputs[e->fetch_i];
                _cleanup_close_ int fd = -EBADF;
                uint64_t left;

                if (!e->w) {
                        /* Cached by digest: a copy that passes its check needs no fetch. */
                        if (blob_open(a->n->blobs, in->sha256, in->size, &fd) >= 0) {
                                e->fetch_i++;
                                continue;
                        }
                        int r = blob_writer_new(a->n->blobs, in->size, &e->w);
                        if (r < 0)
                                return r;
                        e->offset = 0;
                }
                left = in->size - e->offset;
                return agent_send(a, NET_FETCH,
                                  json_pack("{s:s, s:I, s:I}", "sha256", in->sha256, "offset",
                                            (json_int_t) e->offset, "length",
                                            (json_int_t) (left < NET_CHUNK ? left : NET_CHUNK)),
                                  NULL, 0);
        }
        e->state = LEASE_READY;
        (void) pthread_cond_signal(&a->cond);
        return 0;
}

static void send_error_result(struct worker_agent *a, struct lease_ent *e, const char *fmt, ...)
        _printf_(3, 4);

/* Ends e with an error of the worker's (input_corrupt, no space...). Under the lock. */
static void send_error_result(struct worker_agent *a, struct lease_ent *e, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        e->w = blob_writer_free(e->w);
        node_exec_done(&e->ex);
        e->body = json_pack("{s:s, s:[], s:s}", "lease", e->lease, "blobs", "error",
                            msg ? msg : "out of memory");
        e->state = LEASE_SENDING;
}

static void on_assign(struct worker_agent *a, json_t *b)
{
        _cleanup_free_ struct lease_ent *e = calloc(1, sizeof(*e));
        const char *lease = json_string_value(json_object_get(b, "lease"));
        const char *job = json_string_value(json_object_get(b, "job"));
        json_t *app = json_object_get(b, "app"), *spec = json_object_get(b, "spec");
        json_t *inputs = json_object_get(b, "inputs"), *in;
        const char *app_name = json_string_value(json_object_get(app, "name"));
        size_t i;
        int r;

        if (!e)
                return;
        if (!net_lease_valid(lease) || !store_job_id_valid(job)) {
                log_warning("event=bad_assign reason=ids");
                return;
        }
        (void) pthread_mutex_lock(&a->lock);
        if (lease_find(a, lease)) {
                /* Sent twice (a retry): one is enough. */
                (void) pthread_mutex_unlock(&a->lock);
                return;
        }
        memcpy(e->lease, lease, sizeof(e->lease));
        memcpy(e->job_id, job, sizeof(e->job_id));
        memcpy(e->ex.lease, lease, sizeof(e->ex.lease));
        memcpy(e->ex.job_id, job, sizeof(e->ex.job_id));
        e->ex.spec = json_dumps(spec, JSON_COMPACT);
        e->ex.app_spec = json_dumps(app, JSON_COMPACT);
        e->ex.app_name = strdup(app_name ? app_name : "?");
        e->ex.inputs = calloc(json_array_size(inputs) + 1, sizeof(*e->ex.inputs));
        e->state = LEASE_FETCHING;
        e->next = a->leases;
        a->leases = e;
        if (!e->ex.spec || !e->ex.app_spec || !e->ex.app_name || !e->ex.inputs) {
                send_error_result(a, TAKE_PTR(e), "the worker is out of memory");
                goto out;
        }
        json_array_foreach(inputs, i, in)
        {
                const char *sha = json_string_value(json_object_get(in, "sha256"));
                json_t *size = json_object_get(in, "size");

                if (!sha || !store_sha256_valid(sha) || !json_is_integer(size) ||
                    json_integer_value(size) < 0) {
                        send_error_result(a, TAKE_PTR(e), "the assignment's input %zu is malformed",
                                          i);
                        goto out;
                }
                memcpy(e->ex.inputs[i].sha256, sha, STORE_SHA256_SIZE);
                e->ex.inputs[i].size = (uint64_t) json_integer_value(size);
                e->ex.n_inputs = i + 1;
        }
        log_info("event=assign job=%s lease=%s inputs=%zu", job, lease, e->ex.n_inputs);
        r = fetch_next(a, e);
        if (r < 0) {
                struct lease_ent *p = TAKE_PTR(e);

                send_error_result(a, p, "the worker cannot fetch the inputs: %s", strerror(-r));
        }
        TAKE_PTR(e);
out:
        (void) pthread_mutex_unlock(&a->lock);
}

static void on_blob(struct worker_agent *a, struct net_msg *m)
{
        const char *sha = json_string_value(json_object_get(m->body, "sha256"));
        json_int_t offset = json_integer_value(json_object_get(m->body, "offset"));
        json_int_t size = json_integer_value(json_object_get(m->body, "size"));

        (void) pthread_mutex_lock(&a->lock);
        for (struct lease_ent *e = a->leases; e; e = e->next) {
                const struct node_exec_input *in;
                char got[BLOB_HEX_SIZE];
                size_t len;
                int r;

                if (e->state != LEASE_FETCHING || !e->w)
                        continue;
                in = &e->ex.inputs[e->fetch_i];
                if (!sha || strcmp(in->sha256, sha) != 0 || (uint64_t) offset != e->offset)
                        continue;
                len = m->n_payloads == 1 ? zframe_size(m->payloads[0]) : 0;
                if ((uint64_t) size != in->size || (len == 0 && in->size > e->offset) ||
                    e->offset + len > in->size) {
                        send_error_result(a, e,
                                          "input_corrupt: the master sent '%s' with a "
                                          "wrong size",
                                          sha);
                        break;
                }
                r = len ? blob_writer_write(e->w, zframe_data(m->payloads[0]), len) : 0;
                if (r < 0) {
                        send_error_result(a, e, "the worker cannot store the input: %s",
                                          strerror(-r));
                        break;
                }
                e->offset += len;
                if (e->offset == in->size) {
                        uint64_t got_size;

                        r = blob_writer_commit(e->w, got, &got_size);
                        e->w = blob_writer_free(e->w);
                        if (r < 0 || strcmp(got, in->sha256) != 0 || got_size != in->size) {
                                log_error("event=input_corrupt job=%s sha256=%s", e->job_id, sha);
                                send_error_result(a, e,
                                                  "input_corrupt: the input '%s' did not "
                                                  "match its SHA-256 on arrival",
                                                  sha);
                                break;
                        }
                        e->fetch_i++;
                }
                r = fetch_next(a, e);
                if (r < 0)
                        send_error_result(a, e, "the worker cannot fetch the inputs: %s",
                                          strerror(-r));
                break;
        }
        (void) pthread_mutex_unlock(&a->lock);
}

/* Drops the lease (the master cancelled it, or no longer honours it). Under the lock. */
static void drop_lease(struct worker_agent *a, struct lease_ent *e)
{
        if (e->state == LEASE_RUNNING) {
                e->cancelled = true;
                (void) node_runner_cancel(a->n, e->job_id);
                log_info("event=cancel job=%s lease=%s", e->job_id, e->lease);
                return;
        }
        lease_remove(a, e);
}

static void on_welcome(struct worker_agent *a, json_t *b)
{
        json_t *honoured = json_object_get(b, "leases");
        struct lease_ent *e, *next;

        a->welcomed = true;
        if (a->join_sent) {
                (void) joined_marker(a, true);
                a->join_sent = false;
        }
        log_info("event=welcome worker=%s master=%s",
                 json_string_value(json_object_get(b, "worker")), a->n->opts.master_endpoint);
        (void) pthread_mutex_lock(&a->lock);
        for (e = a->leases; e; e = next) {
                bool kept = false;
                size_t i;
                json_t *v;

                next = e->next;
                json_array_foreach(honoured, i, v) if (json_is_string(v) &&
                                                       strcmp(json_string_value(v), e->lease) == 0)
                        kept = true;
                if (!kept) {
                        log_info("event=lease_lost job=%s lease=%s", e->job_id, e->lease);
                        drop_lease(a, e);
                } else if (e->state == LEASE_SENT)
                        e->state = LEASE_SENDING; /* it may not have arrived */
        }
        (void) pthread_mutex_unlock(&a->lock);
}

/* 1: the agent must stop (refused for good). */
static int on_message(struct worker_agent *a, struct net_msg *m)
{
        const char *lease = json_string_value(json_object_get(m->body, "lease"));
        struct lease_ent *e;

        switch (m->command) {
        case NET_WELCOME:
                on_welcome(a, m->body);
                break;
        case NET_ASSIGN:
                on_assign(a, m->body);
                break;
        case NET_BLOB:
                on_blob(a, m);
                break;
        case NET_CANCEL:
        case NET_RESULT_ACK:
                (void) pthread_mutex_lock(&a->lock);
                e = lease ? lease_find(a, lease) : NULL;
                if (e && m->command == NET_CANCEL)
                        drop_lease(a, e);
                else if (e && e->state == LEASE_SENT)
                        lease_remove(a, e);
                (void) pthread_mutex_unlock(&a->lock);
                break;
        case NET_ERROR: {
                const char *code = json_string_value(json_object_get(m->body, "code"));
                const char *msg = json_string_value(json_object_get(m->body, "message"));

                log_warning("event=master_error code=%s message='%s'", code, msg);
                if (code && strcmp(code, "join_refused") == 0) {
                        log_error("The master refused the join token: %s", msg);
                        return 1;
                }
                if (code && strcmp(code, "not_ready") == 0)
                        (void) send_ready(a);
                if (lease) {
                        (void) pthread_mutex_lock(&a->lock);
                        e = lease_find(a, lease);
                        if (e)
                                drop_lease(a, e);
                        (void) pthread_mutex_unlock(&a->lock);
                }
                break;
        }
        case NET_DISCONNECT:
                log_warning("event=master_disconnect reason='%s'",
                            json_string_value(json_object_get(m->body, "reason")));
                a->last_rx = 0; /* reconnect at once */
                break;
        case NET_HEARTBEAT:
                break;
        case NET_READY:
        case NET_JOIN:
        case NET_OUTPUT:
        case NET_RESULT:
        case NET_FETCH:
        case _NET_COMMAND_MAX:
                break;
        }
        return 0;
}

/* Sends queued output and ready results. */
static void flush(struct worker_agent *a)
{
        struct out_chunk *c;

        (void) pthread_mutex_lock(&a->lock);
        c = a->out_head;
        a->out_head = a->out_tail = NULL;
        a->out_bytes = 0;
        for (struct lease_ent *e = a->leases; e; e = e->next) {
                struct iovec iov[NET_PAYLOADS_MAX];

                if (e->state != LEASE_SENDING || !a->welcomed)
                        continue;
                for (size_t i = 0; i < e->n_payloads; i++)
                        iov[i] = (struct iovec){.iov_base = e->payloads[i],
                                                .iov_len = e->payload_lens[i]};
                if (agent_send(a, NET_RESULT, json_incref(e->body), iov, e->n_payloads) >= 0)
                        e->state = LEASE_SENT;
        }
        (void) pthread_mutex_unlock(&a->lock);

        while (c) {
                struct out_chunk *next = c->next;
                struct iovec iov = {.iov_base = c->data, .iov_len = c->len};

                (void) agent_send(a, NET_OUTPUT,
                                  json_pack("{s:s, s:s, s:s}", "lease", c->lease, "step", c->step,
                                            "stream", c->stream),
                                  &iov, 1);
                free(c);
                c = next;
        }
}

static void send_heartbeat(struct worker_agent *a)
{
        json_t *leases;
        unsigned fr;

        (void) pthread_mutex_lock(&a->lock);
        leases = lease_list(a);
        fr = free_slots(a);
        (void) pthread_mutex_unlock(&a->lock);
        (void) agent_send(a, NET_HEARTBEAT,
                          json_pack("{s:o?, s:i}", "leases", leases, "free", (int) fr), NULL, 0);
        a->last_hb = now_ns(CLOCK_MONOTONIC);
}

static int load_keys(struct worker_agent *a)
{
        struct node_options *o = &a->n->opts;
        int r;

        r = node_key_load(o->state_dir, o->key_file, &a->kp);
        if (r < 0)
                return r;
        if (!o->master_key || strlen(o->master_key) != 40)
                return log_error_errno(-EINVAL, "The master's public key is missing or malformed");
        memcpy(a->master_key, o->master_key, 41);
        return 0;
}

int worker_run(struct node *n)
{
        struct worker_agent *a;
        _cleanup_close_ int sfd = -EBADF;
        int r, ret = 1;

        a = calloc(1, sizeof(*a));
        if (!a)
                return log_error_errno(-ENOMEM, "Out of memory"), 1;
        a->n = n;
        a->efd = -EBADF;
        (void) pthread_mutex_init(&a->lock, NULL);
        (void) pthread_cond_init(&a->cond, NULL);
        if (load_keys(a) < 0)
                goto finish;
        a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->efd < 0) {
                log_error_errno(-errno, "eventfd() failed: %m");
                goto finish;
        }

        sfd = node_signalfd();
        if (sfd < 0)
                goto finish;
        /* czmq must not install its own signal handlers: the signalfd has the signals. */
        zsys_handler_set(NULL);

        n->agent = a;
        r = node_runners_start(n);
        if (r < 0) {
                log_error_errno(r, "Failed to start the runners: %m");
                goto stop;
        }
        r = agent_connect(a);
        if (r < 0) {
                log_error_errno(r, "Failed to connect to the master: %m");
                goto stop;
        }
        log_info("event=start node=%s role=worker slots=%u master=%s key=%s", WARREN_VERSION,
                 n->n_runners, n->opts.master_endpoint, a->kp.public_key);

        for (;;) {
                zmq_pollitem_t items[3] = {
                        {.socket = zsock_resolve(a->sock), .events = ZMQ_POLLIN},
                        {.fd = a->efd, .events = ZMQ_POLLIN},
                        {.fd = sfd, .events = ZMQ_POLLIN},
                };
                uint64_t now, hb_ns = (uint64_t) n->opts.heartbeat_ms * 1000000;
                int k;

                k = zmq_poll(items, 3, (long) n->opts.heartbeat_ms / 2 + 1);
                if (k < 0 && errno != EINTR) {
                        log_error_errno(-errno, "zmq_poll() failed: %m");
                        break;
                }
                if (k > 0 && (items[2].revents & ZMQ_POLLIN)) {
                        struct signalfd_siginfo si;

                        if (read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                log_info("event=signal signal=%s", strsignal((int) si.ssi_signo));
                                ret = 0;
                                break;
                        }
                }
                if (k > 0 && (items[0].revents & ZMQ_POLLIN)) {
                        for (unsigned i = 0; i < 256; i++) {
                                struct net_msg m = {};

                                r = net_recv(a->sock, NET_TO_WORKER, &m, NULL, NULL);
                                if (r == -EAGAIN)
                                        break;
                                if (r < 0) {
                                        log_warning_errno(r, "event=bad_message: %m");
                                        continue;
                                }
                                a->last_rx = now_ns(CLOCK_MONOTONIC);
                                r = on_message(a, &m);
                                net_msg_done(&m);
                                if (r > 0)
                                        goto stop;
                        }
                }
                if (k > 0 && (items[1].revents & ZMQ_POLLIN)) {
                        uint64_t v;

                        (void) !read(a->efd, &v, sizeof(v));
                }
                flush(a);

                now = now_ns(CLOCK_MONOTONIC);
                if (now - a->last_hb >= hb_ns)
                        send_heartbeat(a);
                /* The master has been silent for a lease: start over on a new connection (the
                 * jobs go on; READY tells the master which leases this worker still holds). */
                if (now - a->last_rx > (uint64_t) n->opts.lease_ms * 1000000) {
                        log_warning("event=master_silent ms=%" PRIu64 "; reconnecting",
                                    (now - a->connected_at) / 1000000);
                        r = agent_connect(a);
                        if (r < 0) {
                                log_error_errno(r, "Failed to reconnect: %m");
                                break;
                        }
                }
        }

stop:
        /* Running jobs are killed, and the master, told, queues them again at once: a worker that
         * stops holds nothing up. */
        node_runners_stop(n, true);
        if (a->sock && a->welcomed) {
                (void) agent_send(a, NET_DISCONNECT, json_pack("{s:s}", "reason", "stopping"), NULL,
                                  0);
                zsock_set_linger(a->sock, 1000);
        }
        log_info("event=stop");
finish:
        n->agent = NULL;
        zsock_destroy(&a->sock);
        while (a->leases) {
                struct lease_ent *e = a->leases;

                a->leases = e->next;
                lease_free(e);
        }
        while (a->out_head) {
                struct out_chunk *c = a->out_head;

                a->out_head = c->next;
                free(c);
        }
        safe_close(a->efd);
        explicit_bzero(&a->kp, sizeof(a->kp));
        (void) pthread_mutex_destroy(&a->lock);
        (void) pthread_cond_destroy(&a->cond);
        free(a);
        return ret;
}
