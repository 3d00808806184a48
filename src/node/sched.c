/* SPDX-License-Identifier: MIT */
/*
 * The master's scheduler: one thread, one ROUTER, one ZAP handler, one store connection.
 *
 * The store is the truth (jobs, their replicas and who holds them); the thread keeps in memory
 * what it needs to decide quickly:
 *   jobs     every job it schedules that has not ended: its owner, app, inputs, acl, replicas
 *   queue    the replicas that wait for a worker, one FIFO per owner (priority first, then
 *            age); the owners take turns, so one user's 10 000 jobs do not starve another's one
 *   workers  every worker that said READY: its confinement, capacity, load, last heartbeat
 *   leases   every replica a worker holds, with its expiry (renewed by heartbeats)
 * A lease that expires (the worker went silent, its link is down, it died) puts its replica back
 * in the queue, up to max_attempts; a result under a lease the master no longer knows is
 * discarded. A job ends when a quorum of its replicas agree on the outcome (exit status, the
 * digests of stdout and of the declared outputs); the outvoted workers are counted.
 */
#include "node/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/eventfd.h>
#include <sys/uio.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "net/proto.h"
#include "node/app.h"
#include "node/node.h"

#define ROUND_MAX  4096 /* assignments per scheduling round (one store transaction) */
#define RECV_BATCH 1024 /* messages handled before the queue is looked at again */
#define TICK_MS    50

struct sched_input {
        char path[JOBSPEC_FILE_NAME_MAX + 1];
        char sha256[STORE_SHA256_SIZE];
        uint64_t size;
        struct store_acl acl;
};

struct sched_job {
        char id[STORE_JOB_ID_SIZE];
        int64_t owner, seq;
        int priority;
        int replicas, quorum;
        bool started; /* its replicas exist in the store */
        bool ended;
        struct store_acl app_acl;
        char *app_spec;  /* JSON text */
        char *spec;      /* JSON text */
        uint64_t memory; /* the run step's memory limit (0: the app's default) */
        struct sched_input *inputs;
        size_t n_inputs;
        int attempts[STORE_REPLICAS_MAX];
        int64_t workers[STORE_REPLICAS_MAX]; /* who holds or held each replica (0: none) */
        unsigned queued, leased;             /* tasks in the queue, leases held */
};

struct sched_task {
        struct sched_task *next;
        struct sched_job *job;
        int idx;
};

struct owner_queue {
        struct owner_queue *next;
        int64_t owner;
        struct sched_task *head, *tail;
        uint64_t served; /* assignments so far: the least served goes first among equals */
        bool blocked;    /* nothing of its head fits anywhere this round */
};

struct sched_worker {
        int64_t id;
        char name[STORE_NAME_MAX + 1];
        enum store_worker_confinement confinement;
        int64_t group_id, owner_id;
        zframe_t *routing; /* the connection it said READY on; NULL: not connected */
        unsigned slots, running, cpus;
        uint64_t memory;
        uint64_t last_seen;     /* monotonic ns */
        int64_t last_heartbeat; /* Unix ns */
        size_t index;           /* in s->ready */
};

struct sched_lease {
        char lease[STORE_LEASE_ID_SIZE];
        struct sched_job *job;
        int idx;
        int64_t worker_id;
        uint64_t expires; /* monotonic ns */
};

enum command_kind {
        CMD_QUEUED,
        CMD_CANCEL,
        CMD_REMOVED,
};

struct command {
        struct command *next;
        enum command_kind kind;
        char job_id[STORE_JOB_ID_SIZE];
        int64_t worker_id;
};

/* A message that may leave only once the iteration's transaction is on disk. */
struct outgoing {
        zframe_t *routing;
        enum net_command command;
        json_t *body;
        char job_id[STORE_JOB_ID_SIZE]; /* a job end to publish instead, when routing is NULL */
};

struct sched {
        struct node *n;
        struct sched_options o;
        struct net_keypair kp;
        struct store *st;
        zsock_t *router, *zap;
        int efd;
        pthread_t thread;
        bool started;

        pthread_mutex_t lock;     /* the state, held by the thread while it works; status readers */
        pthread_mutex_t cmd_lock; /* cmds and stopping */
        struct command *cmds, *cmds_tail;
        bool stopping;

        zhashx_t *jobs;              /* id → struct sched_job */
        zhashx_t *leases;            /* lease → struct sched_lease */
        zhashx_t *workers;           /* "id" → struct sched_worker */
        struct sched_worker **ready; /* connected workers, for placement */
        size_t n_ready, cap_ready, rr;
        struct owner_queue *owners;
        size_t queued;

        struct outgoing *out; /* the outbox, sent after each commit */
        size_t n_out, cap_out;
};

static void defer(struct sched *s, zframe_t *routing, enum net_command command, json_t *body,
                  const char *job_id)
{
        struct outgoing *o;

        if (s->n_out == s->cap_out) {
                size_t cap = s->cap_out ? s->cap_out * 2 : 256;
                struct outgoing *p = realloc(s->out, cap * sizeof(*p));

                if (!p) {
                        json_decref(body);
                        return;
                }
                s->out = p;
                s->cap_out = cap;
        }
        o = &s->out[s->n_out++];
        *o = (struct outgoing){.command = command, .body = body};
        if (routing)
                o->routing = zframe_dup(routing);
        if (job_id)
                (void) snprintf(o->job_id, sizeof(o->job_id), "%s", job_id);
}

/* After the commit: the messages go, the ends are published (commit: false drops them all). */
static void flush_outbox(struct sched *s, bool commit)
{
        for (size_t i = 0; i < s->n_out; i++) {
                struct outgoing *o = &s->out[i];

                if (commit && o->routing) {
                        int r = net_send(s->router, o->routing, o->command, o->body, NULL, 0);

                        if (r < 0)
                                log_warning_errno(r, "event=send_failed command=%s: %m",
                                                  net_command_to_string(o->command));
                } else {
                        if (commit && o->job_id[0])
                                node_publish_end(s->n, s->st, o->job_id);
                        json_decref(o->body);
                }
                zframe_destroy(&o->routing);
        }
        s->n_out = 0;
}

static uint64_t mono(void)
{
        return now_ns(CLOCK_MONOTONIC);
}

static void key_of_id(int64_t id, char buf[static 24])
{
        (void) snprintf(buf, 24, "%" PRId64, id);
}

static struct sched_worker *worker_find(struct sched *s, int64_t id)
{
        char k[24];

        key_of_id(id, k);
        return zhashx_lookup(s->workers, k);
}

/* A lease ends: its worker has a slot more, its job a lease less; l is freed. */
static void lease_release(struct sched *s, struct sched_lease *l)
{
        struct sched_worker *w = worker_find(s, l->worker_id);

        if (w && w->running > 0)
                w->running--;
        l->job->leased--;
        zhashx_delete(s->leases, l->lease);
}

/* ---- jobs and the queue ---- */

static void job_free(void *p)
{
        struct sched_job *j = p;

        if (!j)
                return;
        free(j->app_spec);
        free(j->spec);
        free(j->inputs);
        free(j);
}

static void job_destructor(void **item)
{
        job_free(*item);
        *item = NULL;
}

static void free_destructor(void **item)
{
        free(*item);
        *item = NULL;
}

static void enqueue(struct sched *s, struct sched_job *j, int idx, bool front)
{
        struct owner_queue *q;
        struct sched_task *t = calloc(1, sizeof(*t));
        uint64_t min_served = UINT64_MAX;

        if (!t) {
                log_error("event=sched_oom job=%s", j->id);
                return;
        }
        t->job = j;
        t->idx = idx;
        for (q = s->owners; q; q = q->next) {
                if (q->owner == j->owner)
                        break;
                if (q->served < min_served)
                        min_served = q->served;
        }
        if (!q) {
                q = calloc(1, sizeof(*q));
                if (!q) {
                        free(t);
                        return;
                }
                q->owner = j->owner;
                /* A newcomer takes its turn next, not after everyone's backlog. */
                q->served = min_served == UINT64_MAX ? 0 : min_served;
                q->next = s->owners;
                s->owners = q;
        }
        if (front || !q->head || (q->head->job->priority < j->priority)) {
                t->next = q->head;
                q->head = t;
                if (!q->tail)
                        q->tail = t;
        } else if (q->tail->job->priority >= j->priority) {
                q->tail->next = t;
                q->tail = t;
        } else {
                /* Higher than the tail: after the last task of equal or higher priority. */
                struct sched_task *p = q->head;

                while (p->next && p->next->job->priority >= j->priority)
                        p = p->next;
                t->next = p->next;
                p->next = t;
                if (!t->next)
                        q->tail = t;
        }
        j->queued++;
        s->queued++;
}

/* Removes every queued task of job j. */
static void unqueue_job(struct sched *s, struct sched_job *j)
{
        for (struct owner_queue *q = s->owners; q && j->queued > 0; q = q->next) {
                struct sched_task **p = &q->head, *prev = NULL;

                while (*p) {
                        struct sched_task *t = *p;

                        if (t->job != j) {
                                prev = t;
                                p = &t->next;
                                continue;
                        }
                        *p = t->next;
                        if (q->tail == t)
                                q->tail = prev;
                        free(t);
                        j->queued--;
                        s->queued--;
                }
        }
}

/* Loads a job's scheduling record from the store (it must be queued or running). */
static int job_load(struct sched *s, const char *id, struct sched_job **ret)
{
        _cleanup_(store_job_clear) struct store_job sj = {};
        _cleanup_(store_app_clear) struct store_app app = {};
        _cleanup_(jobspec_done) struct jobspec js = {};
        _cleanup_(app_spec_done) struct app_spec as = {};
        struct jobspec_bounds bounds = JOBSPEC_BOUNDS_DEFAULT;
        struct jobspec_limits limits = {};
        struct json_error jerr = {};
        struct sched_job *j;
        int r;

        j = zhashx_lookup(s->jobs, id);
        if (j) {
                *ret = j;
                return 0;
        }
        r = store_job_get(s->st, id, &sj);
        if (r < 0)
                return r;
        if (sj.state != STORE_JOB_QUEUED && sj.state != STORE_JOB_RUNNING)
                return -ESTALE;
        bounds.max_body = SIZE_MAX / 2;
        r = jobspec_decode(sj.spec, strlen(sj.spec), &bounds, &js, &jerr);
        if (r < 0)
                return r;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        memcpy(j->id, sj.id, sizeof(j->id));
        j->owner = sj.acl.owner;
        j->seq = sj.created_at;
        j->priority = sj.priority;
        j->replicas = js.replicas;
        j->quorum = js.quorum;
        j->started = sj.state == STORE_JOB_RUNNING;
        j->spec = TAKE_PTR(sj.spec);
        if (sj.app_id > 0 && store_app_get(s->st, sj.app_id, &app) >= 0) {
                j->app_acl = app.acl;
                j->app_spec = TAKE_PTR(app.spec);
                if (app_spec_decode(j->app_spec, strlen(j->app_spec), &as, &jerr) >= 0 &&
                    app_run_limits(&as, &js, &limits, &jerr) >= 0)
                        j->memory = limits.memory;
        }
        j->inputs = calloc(js.n_inputs + 1, sizeof(*j->inputs));
        if (!j->inputs) {
                job_free(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < js.n_inputs; i++) {
                _cleanup_(store_data_clear) struct store_data d = {};

                (void) snprintf(j->inputs[i].path, sizeof(j->inputs[i].path), "%s",
                                js.inputs[i].path);
                if (store_data_get(s->st, js.inputs[i].data, &d) >= 0 && !d.confidential) {
                        memcpy(j->inputs[i].sha256, d.sha256, sizeof(d.sha256));
                        j->inputs[i].size = d.size;
                        j->inputs[i].acl = d.acl;
                }
                /* A missing input keeps an empty digest: the job fails when it is placed. */
                j->n_inputs = i + 1;
        }
        if (zhashx_insert(s->jobs, j->id, j) < 0) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* Forgets a job that ended: its queued tasks, its leases (their workers are told). */
static void job_forget(struct sched *s, struct sched_job *j, bool cancel_leases)
{
        struct sched_lease *l;
        zlistx_t *keys;

        unqueue_job(s, j);
        if (j->leased > 0) {
                keys = zhashx_keys(s->leases);
                for (const char *k = keys ? zlistx_first(keys) : NULL; k; k = zlistx_next(keys)) {
                        struct sched_worker *w;

                        l = zhashx_lookup(s->leases, k);
                        if (!l || l->job != j)
                                continue;
                        w = worker_find(s, l->worker_id);
                        if (cancel_leases && w && w->routing)
                                (void) net_send(s->router, w->routing, NET_CANCEL,
                                                json_pack("{s:s}", "lease", l->lease), NULL, 0);
                        lease_release(s, l);
                }
                zlistx_destroy(&keys);
        }
        zhashx_delete(s->jobs, j->id);
}

/* ---- workers ---- */

static void ready_add(struct sched *s, struct sched_worker *w)
{
        if (s->n_ready == s->cap_ready) {
                size_t cap = s->cap_ready ? s->cap_ready * 2 : 64;
                struct sched_worker **p = realloc(s->ready, cap * sizeof(*p));

                if (!p)
                        return;
                s->ready = p;
                s->cap_ready = cap;
        }
        w->index = s->n_ready;
        s->ready[s->n_ready++] = w;
}

static void ready_remove(struct sched *s, struct sched_worker *w)
{
        size_t i = w->index;

        if (i >= s->n_ready || s->ready[i] != w)
                return;
        s->ready[i] = s->ready[--s->n_ready];
        s->ready[i]->index = i;
}

static void worker_disconnect(struct sched *s, struct sched_worker *w, const char *why)
{
        if (!w->routing)
                return;
        log_info("event=worker_disconnected worker=%s reason=%s", w->name, why);
        zframe_destroy(&w->routing);
        ready_remove(s, w);
}

static void worker_destructor(void **item)
{
        struct sched_worker *w = *item;

        if (w)
                zframe_destroy(&w->routing);
        free(w);
        *item = NULL;
}

/* Whether w may receive job j (MISSION.md R5): its confinement, and every input's acl. */
static bool confinement_allows(const struct sched_worker *w, const struct sched_job *j)
{
        switch (w->confinement) {
        case STORE_WORKER_PRIVATE:
                return j->owner == w->owner_id;
        case STORE_WORKER_GROUP: {
                bool app_ok = (j->app_acl.mode & 01) ||
                              (j->app_acl.group == w->group_id && (j->app_acl.mode & 010));

                if (!app_ok)
                        return false;
                for (size_t i = 0; i < j->n_inputs; i++)
                        if (!(j->inputs[i].acl.mode & 04) &&
                            !(j->inputs[i].acl.group == w->group_id &&
                              (j->inputs[i].acl.mode & 040)))
                                return false;
                return true;
        }
        case STORE_WORKER_PUBLIC:
                if (!(j->app_acl.mode & 01))
                        return false;
                for (size_t i = 0; i < j->n_inputs; i++)
                        if (!(j->inputs[i].acl.mode & 04))
                                return false;
                return true;
        case _STORE_WORKER_CONFINEMENT_MAX:
        case _STORE_WORKER_CONFINEMENT_INVALID:
                break;
        }
        return false;
}

static bool worker_fits(const struct sched_worker *w, const struct sched_job *j, int idx)
{
        if (!w->routing || w->running >= w->slots)
                return false;
        if (j->memory > 0 && w->memory > 0 && j->memory > w->memory)
                return false;
        /* Replicas run on distinct workers. */
        for (int i = 0; i < j->replicas; i++)
                if (i != idx && j->workers[i] == w->id)
                        return false;
        return confinement_allows(w, j);
}

static struct sched_worker *place(struct sched *s, const struct sched_job *j, int idx)
{
        for (size_t k = 0; k < s->n_ready; k++) {
                size_t i = (s->rr + k) % s->n_ready;
                struct sched_worker *w = s->ready[i];

                if (worker_fits(w, j, idx)) {
                        s->rr = i + 1;
                        return w;
                }
        }
        return NULL;
}

/* ---- assignment ---- */

struct pending_assign {
        struct sched_lease *lease;
        struct sched_worker *worker;
};

static json_t *assign_body(const struct sched_lease *l)
{
        const struct sched_job *j = l->job;
        json_t *app = json_loads(j->app_spec, 0, NULL), *spec = json_loads(j->spec, 0, NULL);
        json_t *inputs = json_array();

        for (size_t i = 0; inputs && i < j->n_inputs; i++)
                if (json_array_append_new(inputs,
                                          json_pack("{s:s, s:s, s:I}", "path", j->inputs[i].path,
                                                    "sha256", j->inputs[i].sha256, "size",
                                                    (json_int_t) j->inputs[i].size)) < 0) {
                        json_decref(inputs);
                        inputs = NULL;
                }
        return json_pack("{s:s, s:s, s:i, s:o?, s:o?, s:o?}", "lease", l->lease, "job", j->id,
                         "replica", l->idx, "app", app, "spec", spec, "inputs", inputs);
}

static void publish_running(struct sched *s, const struct sched_job *j, int attempt)
{
        node_publish_json(s->n, j->id, "state",
                          json_pack("{s:s, s:i}", "state", "running", "attempt", attempt));
}

static void job_end(struct sched *s, struct sched_job *j, enum store_job_state state,
                    const char *result, const char *error);

/* Moves a task to a worker under a new lease, in the open batch. */
static int assign(struct sched *s, struct sched_task *t, struct sched_worker *w,
                  struct pending_assign *ret)
{
        struct sched_job *j = t->job;
        struct sched_lease *l;
        int r;

        if (!j->app_spec) {
                job_end(s, j, STORE_JOB_FAILED, NULL, "the job's app was deleted");
                return -ENOENT;
        }
        for (size_t i = 0; i < j->n_inputs; i++)
                if (!j->inputs[i].sha256[0]) {
                        job_end(s, j, STORE_JOB_FAILED, NULL,
                                "input_missing: an input of the job is gone");
                        return -ENOENT;
                }
        if (!j->started) {
                r = store_job_start_replicas(s->st, j->id, j->replicas);
                if (r < 0) {
                        /* Cancelled meanwhile (-ESTALE), or gone. */
                        log_info("event=sched_drop job=%s: %s", j->id, strerror(-r));
                        job_forget(s, j, true);
                        return r;
                }
                j->started = true;
        }
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        net_lease_new(l->lease);
        l->job = j;
        l->idx = t->idx;
        l->worker_id = w->id;
        l->expires = mono() + (uint64_t) s->o.lease_ms * 1000000;
        r = store_replica_assign(s->st, j->id, t->idx, w->id, l->lease);
        if (r < 0) {
                free(l);
                log_error_errno(r, "event=sched_assign_failed job=%s replica=%d: %m", j->id,
                                t->idx);
                return r;
        }
        if (zhashx_insert(s->leases, l->lease, l) < 0) {
                free(l);
                return -ENOMEM;
        }
        j->attempts[t->idx]++;
        j->workers[t->idx] = w->id;
        j->leased++;
        w->running++;
        *ret = (struct pending_assign){.lease = l, .worker = w};
        return 0;
}

/* One scheduling round: assigns what fits; the assignments leave after the commit. */
static void schedule(struct sched *s)
{
        size_t n_sent = 0;

        if (s->queued == 0 || s->n_ready == 0)
                return;
        for (struct owner_queue *q = s->owners; q; q = q->next)
                q->blocked = false;

        while (n_sent < ROUND_MAX) {
                struct owner_queue *best = NULL;
                struct pending_assign sent;
                struct sched_task *t;
                struct sched_worker *w;
                int r;

                /* Priority first, then the owner served least, then (in its FIFO) age. */
                for (struct owner_queue *q = s->owners; q; q = q->next) {
                        if (!q->head || q->blocked)
                                continue;
                        if (!best || q->head->job->priority > best->head->job->priority ||
                            (q->head->job->priority == best->head->job->priority &&
                             (q->served < best->served ||
                              (q->served == best->served &&
                               q->head->job->seq < best->head->job->seq))))
                                best = q;
                }
                if (!best)
                        break;
                t = best->head;
                w = place(s, t->job, t->idx);
                if (!w) {
                        best->blocked = true;
                        continue;
                }
                best->head = t->next;
                if (!best->head)
                        best->tail = NULL;
                t->job->queued--;
                s->queued--;
                best->served++;
                r = assign(s, t, w, &sent);
                if (r >= 0) {
                        struct sched_lease *l = sent.lease;

                        n_sent++;
                        defer(s, w->routing, NET_ASSIGN, assign_body(l), NULL);
                        log_info("event=assign job=%s replica=%d worker=%s lease=%s attempt=%d",
                                 l->job->id, l->idx, w->name, l->lease, l->job->attempts[l->idx]);
                        if (l->idx == 0)
                                publish_running(s, l->job, l->job->attempts[0]);
                } else if (r == -ENOMEM || r == -EIO) {
                        /* The store failed: put it back and stop this round. */
                        enqueue(s, t->job, t->idx, true);
                        free(t);
                        break;
                }
                free(t);
        }
}

/* ---- the end of jobs ---- */

static void job_end(struct sched *s, struct sched_job *j, enum store_job_state state,
                    const char *result, const char *error)
{
        int r;

        r = store_job_finish(s->st, j->id, state, result, error);
        if (r < 0 && r != -ESTALE)
                log_error_errno(r, "event=store_error job=%s: %m", j->id);
        log_info("event=job_end job=%s state=%s%s%s", j->id, store_job_state_to_string(state),
                 error ? " error=" : "", error ? error : "");
        j->ended = true;
        defer(s, NULL, NET_ERROR, NULL, j->id); /* published once stored */
        job_forget(s, j, true);
}

/*
 * The digest a replica's result votes with: its exit status, and the digests of its stdout and
 * of every declared output. Workers that agree on these agree on what the job did.
 */
static int result_vote(json_t *result, char ret[static STORE_SHA256_SIZE])
{
        _cleanup_free_ char *text = NULL;
        json_t *run = json_object_get(result, "run");
        json_t *outs = json_object_get(result, "outputs");
        json_t *canon;

        canon = json_pack(
                "{s:O?, s:O?, s:O?, s:O?}", "exit_code", json_object_get(result, "exit_code"),
                "status", json_object_get(json_object_get(run, "report"), "status"), "stdout",
                json_object_get(json_object_get(run, "stdout"), "sha256"), "build_status",
                json_object_get(json_object_get(json_object_get(result, "build"), "report"),
                                "status"));
        if (!canon)
                return -ENOMEM;
        if (json_is_object(outs)) {
                const char *k;
                json_t *v, *o = json_object();

                json_object_foreach(outs, k, v)(void)
                        json_object_set(o, k,
                                        json_object_get(v, "sha256") ? json_object_get(v, "sha256")
                                                                     : json_object_get(v, "error"));
                (void) json_object_set_new(canon, "outputs", o);
        }
        text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(canon);
        if (!text)
                return -ENOMEM;
        blob_digest(text, strlen(text), ret);
        return 0;
}

static const char *worker_name(struct sched *s, int64_t id, char buf[static STORE_NAME_MAX + 1])
{
        struct sched_worker *w = worker_find(s, id);

        if (w)
                return w->name;
        (void) snprintf(buf, STORE_NAME_MAX + 1, "#%" PRId64, id);
        return buf;
}

/* After a replica ended: does the job end? */
static void evaluate(struct sched *s, struct sched_job *j)
{
        struct store_replica *reps = NULL;
        size_t n = 0, open = 0, best = SIZE_MAX, best_count = 0;
        int r;

        r = store_replica_list(s->st, j->id, &reps, &n);
        if (r < 0) {
                log_error_errno(r, "event=store_error job=%s: %m", j->id);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                size_t count = 0;

                if (reps[i].state == STORE_REPLICA_QUEUED ||
                    reps[i].state == STORE_REPLICA_ASSIGNED)
                        open++;
                if (reps[i].state != STORE_REPLICA_DONE)
                        continue;
                for (size_t k = 0; k < n; k++)
                        if (reps[k].state == STORE_REPLICA_DONE &&
                            strcmp(reps[k].vote, reps[i].vote) == 0)
                                count++;
                if (count > best_count) {
                        best_count = count;
                        best = i;
                }
        }

        if (best != SIZE_MAX && best_count >= (size_t) j->quorum) {
                _cleanup_json_ json_t *res = json_loads(reps[best].result, 0, NULL);
                _cleanup_free_ char *text = NULL;
                json_t *list = json_array();
                char buf[STORE_NAME_MAX + 1];

                for (size_t i = 0; i < n && list; i++) {
                        bool agreed = reps[i].state == STORE_REPLICA_DONE &&
                                      strcmp(reps[i].vote, reps[best].vote) == 0;

                        if (reps[i].state == STORE_REPLICA_DONE && !agreed) {
                                /* Outvoted: counted against the worker, for the administrators. */
                                (void) store_worker_add_error(s->st, reps[i].worker_id);
                                log_warning("event=outvoted job=%s worker=%s", j->id,
                                            worker_name(s, reps[i].worker_id, buf));
                        }
                        if (j->replicas > 1)
                                (void) json_array_append_new(
                                        list,
                                        json_pack("{s:s, s:s, s:b}", "worker",
                                                  reps[i].worker_id
                                                          ? worker_name(s, reps[i].worker_id, buf)
                                                          : "",
                                                  "state",
                                                  store_replica_state_to_string(reps[i].state),
                                                  "agreed", agreed));
                }
                if (res) {
                        (void) json_object_set_new(
                                res, "worker",
                                json_string(worker_name(s, reps[best].worker_id, buf)));
                        if (j->replicas > 1)
                                (void) json_object_set(res, "replicas", list);
                        text = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
                }
                json_decref(list);
                job_end(s, j, STORE_JOB_FINISHED, text ? text : reps[best].result, NULL);
        } else if (open + best_count < (size_t) j->quorum) {
                /* No quorum can be reached any more. */
                _cleanup_free_ char *why = NULL;

                if (j->replicas == 1) {
                        const char *e = n > 0 && reps[0].error ? reps[0].error : "it failed";

                        if (asprintf(&why, "%s", e) < 0)
                                why = NULL;
                } else if (asprintf(&why, "no_quorum: %zu of %d replicas agreed, %d needed",
                                    best_count, j->replicas, j->quorum) < 0)
                        why = NULL;
                job_end(s, j, STORE_JOB_FAILED, NULL, why ? why : "no_quorum");
        }
        store_replica_array_free(reps, n);
}

/* A lease is gone (expired, the worker left): its replica waits again, or has had its tries. */
static void lease_lost(struct sched *s, struct sched_lease *l, const char *why)
{
        struct sched_job *j = l->job;
        char lease[STORE_LEASE_ID_SIZE];
        int idx = l->idx, r;

        memcpy(lease, l->lease, sizeof(lease));
        lease_release(s, l);
        log_warning("event=lease_lost job=%s replica=%d lease=%s reason=%s attempt=%d", j->id, idx,
                    lease, why, j->attempts[idx]);
        if (j->attempts[idx] >= (int) s->o.max_attempts) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "lost: its worker %s, %d times (max_attempts)", why,
                             j->attempts[idx]) < 0)
                        msg = NULL;
                r = store_replica_fail(s->st, j->id, idx, lease, msg ? msg : "lost");
                if (r < 0)
                        log_error_errno(r, "event=store_error job=%s: %m", j->id);
                evaluate(s, j);
                return;
        }
        r = store_replica_requeue(s->st, j->id, idx, lease);
        if (r < 0 && r != -ESTALE) { /* -ESTALE: the store did it (the worker was deleted) */
                log_error_errno(r, "event=store_error job=%s: %m", j->id);
                return;
        }
        /* Another worker, if there is one: the one that lost it may be the problem. */
        j->workers[idx] = 0;
        enqueue(s, j, idx, true);
}

static void worker_leases_lost(struct sched *s, int64_t worker_id, const char *why, json_t *keep)
{
        zlistx_t *keys;
        bool any = false;

        for (struct sched_lease *l = zhashx_first(s->leases); l && !any; l = zhashx_next(s->leases))
                any = l->worker_id == worker_id;
        if (!any)
                return;
        keys = zhashx_keys(s->leases);

        for (const char *k = keys ? zlistx_first(keys) : NULL; k; k = zlistx_next(keys)) {
                struct sched_lease *l = zhashx_lookup(s->leases, k);
                bool kept = false;
                size_t i;
                json_t *v;

                if (!l || l->worker_id != worker_id)
                        continue;
                json_array_foreach(keep, i, v) if (json_is_string(v) &&
                                                   strcmp(json_string_value(v), l->lease) == 0)
                        kept = true;
                if (!kept)
                        lease_lost(s, l, why);
        }
        zlistx_destroy(&keys);
}

/* ---- messages from workers ---- */

static void reply_error(struct sched *s, zframe_t *routing, const char *code, const char *message,
                        const char *lease)
{
        json_t *b = json_pack("{s:s, s:s}", "code", code, "message", message);

        if (b && lease)
                (void) json_object_set_new(b, "lease", json_string(lease));
        (void) net_send(s->router, routing, NET_ERROR, b, NULL, 0);
}

/* The worker a connection speaks for: ZAP named it ("w:<id>"), or it joined ("join:<key>"). */
static struct sched_worker *worker_of(struct sched *s, const char *user_id, bool create)
{
        _cleanup_(store_worker_clear) struct store_worker rec = {};
        struct sched_worker *w;
        char k[24];
        int64_t id = 0;
        int r;

        if (strncmp(user_id, "w:", 2) == 0) {
                char *end;

                errno = 0;
                id = strtoll(user_id + 2, &end, 10);
                if (errno || *end || id <= 0)
                        return NULL;
        } else if (strncmp(user_id, "join:", 5) == 0) {
                if (store_worker_get_by_key(s->st, user_id + 5, &rec) < 0)
                        return NULL;
                id = rec.id;
                store_worker_clear(&rec);
        } else
                return NULL;

        key_of_id(id, k);
        w = zhashx_lookup(s->workers, k);
        if (w || !create)
                return w;
        r = store_worker_get(s->st, id, &rec);
        if (r < 0)
                return NULL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->id = rec.id;
        (void) snprintf(w->name, sizeof(w->name), "%s", rec.name);
        w->confinement = rec.confinement;
        w->group_id = rec.group_id;
        w->owner_id = rec.owner_id;
        if (zhashx_insert(s->workers, k, w) < 0) {
                free(w);
                return NULL;
        }
        return w;
}

static void on_ready(struct sched *s, struct sched_worker *w, zframe_t *routing, json_t *b)
{
        _cleanup_(store_worker_clear) struct store_worker rec = {};
        json_t *leases = json_object_get(b, "leases"), *honoured = json_array(), *v;
        json_int_t slots = json_integer_value(json_object_get(b, "slots"));
        json_int_t cpus = json_integer_value(json_object_get(b, "cpus"));
        json_int_t memory = json_integer_value(json_object_get(b, "memory"));
        size_t i;

        /* The registration may have changed since: read it again. */
        if (store_worker_get(s->st, w->id, &rec) < 0) {
                json_decref(honoured);
                reply_error(s, routing, "unknown_worker", "this worker is not registered", NULL);
                return;
        }
        w->confinement = rec.confinement;
        w->group_id = rec.group_id;
        w->owner_id = rec.owner_id;
        if (w->routing)
                worker_disconnect(s, w, "reconnected");
        w->routing = zframe_dup(routing);
        w->slots = slots > 0 && slots <= 4096 ? (unsigned) slots : 1;
        w->cpus = cpus > 0 && cpus <= 65536 ? (unsigned) cpus : 1;
        w->memory = memory > 0 ? (uint64_t) memory : 0;
        w->last_seen = mono();
        w->last_heartbeat = (int64_t) now_ns(CLOCK_REALTIME);
        ready_add(s, w);
        (void) store_worker_touch(s->st, w->id, w->last_heartbeat);

        /* The leases it still holds that the master still knows go on; the others are lost on
         * both sides. */
        json_array_foreach(leases, i, v)
        {
                struct sched_lease *l =
                        json_is_string(v) ? zhashx_lookup(s->leases, json_string_value(v)) : NULL;

                if (l && l->worker_id == w->id) {
                        l->expires = mono() + (uint64_t) s->o.lease_ms * 1000000;
                        (void) json_array_append(honoured, v);
                }
        }
        worker_leases_lost(s, w->id, "restarted", honoured);
        w->running = 0;
        json_array_foreach(honoured, i, v) w->running++;
        log_info("event=worker_ready worker=%s slots=%u cpus=%u memory=%" PRIu64 " leases=%zu",
                 w->name, w->slots, w->cpus, w->memory, json_array_size(honoured));
        (void) net_send(s->router, routing, NET_WELCOME,
                        json_pack("{s:s, s:i, s:i, s:o}", "worker", w->name, "heartbeat_ms",
                                  (int) s->o.heartbeat_ms, "lease_ms", (int) s->o.lease_ms,
                                  "leases", honoured),
                        NULL, 0);
}

static void on_join(struct sched *s, zframe_t *routing, const char *user_id, json_t *b)
{
        const char *name = json_string_value(json_object_get(b, "name"));
        const char *token = json_string_value(json_object_get(b, "token"));
        uint8_t hash[STORE_WORKER_TOKEN_HASH_SIZE];
        int64_t id;
        int r;

        if (strncmp(user_id, "join:", 5) != 0)
                return; /* already registered: nothing to join */
        crypto_hash_sha256(hash, (const uint8_t *) token, strlen(token));
        r = store_worker_token_redeem(s->st, hash, (int64_t) now_ns(CLOCK_REALTIME), name,
                                      user_id + 5, AUTH_RIGHTS_WORKER, &id);
        if (r < 0) {
                char peer[64];

                log_warning_errno(r, "event=join_refused name='%s': %m", name);
                (void) snprintf(peer, sizeof(peer), "worker key %.40s", user_id + 5);
                (void) store_audit_append(
                        s->st, 0, "worker_join_refused", peer,
                        r == -ENOENT ? "no such token, or used, or expired" : strerror(-r), NULL);
                reply_error(s, routing, "join_refused",
                            r == -ENOENT   ? "the join token is unknown, used or expired"
                            : r == -EEXIST ? "the name or the key is taken"
                                           : "the name is not valid",
                            NULL);
                return;
        }
        log_info("event=worker_joined worker=%s id=%" PRId64, name, id);
        {
                char object[96];

                (void) snprintf(object, sizeof(object), "worker:%s", name);
                (void) store_audit_append(s->st, 0, "worker_join", object, "with a join token",
                                          NULL);
        }
}

/* Checks a result's blob references against the blobs that came with it, stores those, and
 * names them under the job. -EBADMSG: the result refers to a blob it did not bring. */
static int adopt_blobs(struct sched *s, const struct sched_job *j, json_t *v, json_t *delivered)
{
        const char *k;
        json_t *m;
        size_t i;

        if (json_is_object(v)) {
                json_t *sha = json_object_get(v, "sha256");

                if (json_object_get(v, "url")) {
                        bool ok = false;

                        json_array_foreach(delivered, i, m) if (json_is_string(sha) &&
                                                                json_equal(m, sha)) ok = true;
                        if (!ok)
                                return -EBADMSG;
                        if (json_object_set_new(v, "url",
                                                json_sprintf("/api/v1/jobs/%s/blobs/%s", j->id,
                                                             json_string_value(sha))) < 0)
                                return -ENOMEM;
                }
                json_object_foreach(v, k, m)
                {
                        int r = adopt_blobs(s, j, m, delivered);

                        if (r < 0)
                                return r;
                }
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, m)
                {
                        int r = adopt_blobs(s, j, m, delivered);

                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static void on_result(struct sched *s, struct sched_worker *w, zframe_t *routing, struct net_msg *m)
{
        const char *lease = json_string_value(json_object_get(m->body, "lease"));
        json_t *result = json_object_get(m->body, "result");
        const char *error = json_string_value(json_object_get(m->body, "error"));
        json_t *blobs = json_object_get(m->body, "blobs"), *v;
        struct sched_lease *l = lease ? zhashx_lookup(s->leases, lease) : NULL;
        _cleanup_free_ char *text = NULL;
        char vote[STORE_SHA256_SIZE];
        struct sched_job *j;
        size_t i;
        int idx, r;

        if (!l || l->worker_id != w->id) {
                /* Not (or no longer) this worker's: discarded, and said so. */
                log_warning("event=result_discarded worker=%s lease=%s", w->name,
                            lease ? lease : "?");
                (void) net_send(
                        s->router, routing, NET_RESULT_ACK,
                        json_pack("{s:s, s:b}", "lease", lease ? lease : "", "accepted", false),
                        NULL, 0);
                return;
        }
        j = l->job;
        idx = l->idx;
        if (!!result == !!error || json_array_size(blobs) != m->n_payloads) {
                error = "the worker sent a malformed result";
                result = NULL;
        }
        if (result) {
                /* Every blob it brings must be what it says; every blob the result names must
                 * be one it brought (a result never points at someone else's blob). */
                json_array_foreach(blobs, i, v)
                {
                        char id[BLOB_HEX_SIZE];

                        r = blob_put(s->n->blobs, zframe_data(m->payloads[i]),
                                     zframe_size(m->payloads[i]), id);
                        if (r < 0 || !json_is_string(v) || strcmp(id, json_string_value(v)) != 0) {
                                error = r < 0 ? "the master could not store the result"
                                              : "the worker sent a blob that does not match its "
                                                "SHA-256";
                                result = NULL;
                                break;
                        }
                }
        }
        if (result && adopt_blobs(s, j, result, blobs) < 0) {
                error = "the worker's result names a blob it did not send";
                result = NULL;
        }
        if (result && result_vote(result, vote) >= 0)
                text = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
        if (result && !text)
                error = "the master is out of memory";

        if (text)
                r = store_replica_done(s->st, j->id, idx, l->lease, vote, text);
        else
                r = store_replica_fail(s->st, j->id, idx, l->lease, error);
        if (r < 0 && r != -ESTALE)
                log_error_errno(r, "event=store_error job=%s: %m", j->id);
        log_info("event=result job=%s replica=%d worker=%s %s%s", j->id, idx, w->name,
                 text ? "vote=" : "error=", text ? vote : error);
        /* Acknowledged once stored: until then the worker keeps it. */
        defer(s, routing, NET_RESULT_ACK,
              json_pack("{s:s, s:b}", "lease", l->lease, "accepted", true), NULL);
        lease_release(s, l);
        evaluate(s, j);
}

static void on_output(struct sched *s, struct sched_worker *w, struct net_msg *m)
{
        const char *lease = json_string_value(json_object_get(m->body, "lease"));
        struct sched_lease *l = lease ? zhashx_lookup(s->leases, lease) : NULL;
        const char *step = json_string_value(json_object_get(m->body, "step"));
        const char *stream = json_string_value(json_object_get(m->body, "stream"));
        json_t *ev;

        /* The live output of the first replica; the others' is in their results. */
        if (!l || l->worker_id != w->id || l->idx != 0 || m->n_payloads != 1)
                return;
        if (strcmp(step, "build") != 0 && strcmp(step, "run") != 0)
                return;
        if (strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0)
                return;
        ev = json_pack("{s:s, s:s}", "step", step, "stream", stream);
        if (ev && node_set_content(ev, (const char *) zframe_data(m->payloads[0]),
                                   zframe_size(m->payloads[0])) < 0) {
                json_decref(ev);
                ev = NULL;
        }
        node_publish_json(s->n, l->job->id, "output", ev);
}

static void on_fetch(struct sched *s, struct sched_worker *w, zframe_t *routing, json_t *b)
{
        const char *sha = json_string_value(json_object_get(b, "sha256"));
        json_int_t offset = json_integer_value(json_object_get(b, "offset"));
        json_int_t length = json_integer_value(json_object_get(b, "length"));
        const struct sched_input *in = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        zlistx_t *keys;
        ssize_t k;
        struct iovec iov;

        /* Only an input of a job this worker holds a lease on. */
        keys = zhashx_keys(s->leases);
        for (const char *key = keys ? zlistx_first(keys) : NULL; key && !in;
             key = zlistx_next(keys)) {
                struct sched_lease *l = zhashx_lookup(s->leases, key);

                if (!l || l->worker_id != w->id)
                        continue;
                for (size_t i = 0; i < l->job->n_inputs; i++)
                        if (sha && strcmp(l->job->inputs[i].sha256, sha) == 0)
                                in = &l->job->inputs[i];
        }
        zlistx_destroy(&keys);
        if (!in) {
                reply_error(s, routing, "not_found", "no input of yours has this digest", NULL);
                return;
        }
        if (offset < 0 || length < 0 || length > NET_CHUNK || (uint64_t) offset > in->size ||
            (uint64_t) length > in->size - (uint64_t) offset) {
                reply_error(s, routing, "out_of_range", "the piece asked for is out of range",
                            NULL);
                return;
        }
        buf = malloc((size_t) length + 1);
        if (!buf || blob_open(s->n->blobs, in->sha256, in->size, &fd) < 0) {
                reply_error(s, routing, "unavailable", "the master cannot read this input", NULL);
                return;
        }
        k = pread(fd, buf, (size_t) length, (off_t) offset);
        if (k != (ssize_t) length) {
                reply_error(s, routing, "unavailable", "the master cannot read this input", NULL);
                return;
        }
        iov = (struct iovec){.iov_base = buf, .iov_len = (size_t) length};
        (void) net_send(s->router, routing, NET_BLOB,
                        json_pack("{s:s, s:I, s:I}", "sha256", in->sha256, "offset", offset, "size",
                                  (json_int_t) in->size),
                        &iov, 1);
}

static void on_heartbeat(struct sched *s, struct sched_worker *w, zframe_t *routing, json_t *b)
{
        json_t *leases = json_object_get(b, "leases"), *v;
        uint64_t until = mono() + (uint64_t) s->o.lease_ms * 1000000;
        size_t i;

        json_array_foreach(leases, i, v)
        {
                struct sched_lease *l =
                        json_is_string(v) ? zhashx_lookup(s->leases, json_string_value(v)) : NULL;

                if (l && l->worker_id == w->id)
                        l->expires = until;
        }
        (void) net_send(s->router, routing, NET_HEARTBEAT, json_object(), NULL, 0);
}

static void on_message(struct sched *s, zframe_t *routing, const char *user_id, struct net_msg *m)
{
        struct sched_worker *w;

        log_debug("event=message command=%s user=%s", net_command_to_string(m->command), user_id);
        if (m->command == NET_JOIN) {
                on_join(s, routing, user_id, m->body);
                return;
        }
        w = worker_of(s, user_id, true);
        if (!w) {
                /* A joining key that has not joined, or a worker deleted meanwhile: nothing. */
                if (strncmp(user_id, "w:", 2) == 0)
                        reply_error(s, routing, "unknown_worker", "this worker is not registered",
                                    NULL);
                return;
        }
        if (m->command == NET_READY) {
                on_ready(s, w, routing, m->body);
                return;
        }
        if (!w->routing || !zframe_eq(w->routing, routing)) {
                /* A new connection that has not said READY (the master restarted, or the link
                 * came back): it must. */
                reply_error(s, routing, "not_ready", "say READY first", NULL);
                return;
        }
        w->last_seen = mono();
        w->last_heartbeat = (int64_t) now_ns(CLOCK_REALTIME);
        switch (m->command) {
        case NET_HEARTBEAT:
                on_heartbeat(s, w, routing, m->body);
                break;
        case NET_RESULT:
                on_result(s, w, routing, m);
                break;
        case NET_OUTPUT:
                on_output(s, w, m);
                break;
        case NET_FETCH:
                on_fetch(s, w, routing, m->body);
                break;
        case NET_DISCONNECT:
                worker_disconnect(s, w, "said goodbye");
                worker_leases_lost(s, w->id, "stopped", NULL);
                break;
        case NET_READY:
        case NET_JOIN:
        case NET_WELCOME:
        case NET_ASSIGN:
        case NET_RESULT_ACK:
        case NET_CANCEL:
        case NET_BLOB:
        case NET_ERROR:
        case _NET_COMMAND_MAX:
                break;
        }
}

/* ---- ZAP: who may connect ---- */

static void on_zap(struct sched *s)
{
        zmsg_t *req = zmsg_recv(s->zap), *rep;
        char *version = NULL, *request_id = NULL, *domain = NULL, *address = NULL, *identity = NULL,
             *mechanism = NULL;
        zframe_t *cred = NULL;
        char key[41] = "", user[64] = "";
        const char *status = "400", *text = "unknown key";

        if (!req)
                return;
        log_debug("event=zap_request frames=%zu", zmsg_size(req));
        version = zmsg_popstr(req);
        request_id = zmsg_popstr(req);
        domain = zmsg_popstr(req);
        address = zmsg_popstr(req);
        identity = zmsg_popstr(req);
        mechanism = zmsg_popstr(req);
        cred = zmsg_pop(req);
        if (version && strcmp(version, "1.0") == 0 && mechanism &&
            strcmp(mechanism, "CURVE") == 0 && domain && strcmp(domain, NET_ZAP_DOMAIN) == 0 &&
            cred && zframe_size(cred) == 32) {
                _cleanup_(store_worker_clear) struct store_worker rec = {};
                uint64_t pending = 0;

                (void) zmq_z85_encode(key, zframe_data(cred), 32);
                if (store_worker_get_by_key(s->st, key, &rec) >= 0) {
                        (void) snprintf(user, sizeof(user), "w:%" PRId64, rec.id);
                        status = "200";
                        text = "OK";
                } else if (store_worker_tokens_pending(s->st, (int64_t) now_ns(CLOCK_REALTIME),
                                                       &pending) >= 0 &&
                           pending > 0) {
                        /* It may only JOIN. */
                        (void) snprintf(user, sizeof(user), "join:%s", key);
                        status = "200";
                        text = "OK";
                } else
                        log_warning("event=zap_refused address=%s key=%s", address ? address : "?",
                                    key);
        } else {
                log_warning("event=zap_refused address=%s mechanism=%s", address ? address : "?",
                            mechanism ? mechanism : "?");
        }
        rep = zmsg_new();
        if (rep) {
                zmsg_addstr(rep, "1.0");
                zmsg_addstr(rep, request_id ? request_id : "");
                zmsg_addstr(rep, status);
                zmsg_addstr(rep, text);
                zmsg_addstr(rep, user);
                zmsg_addmem(rep, "", 0);
                if (zmsg_send(&rep, s->zap) < 0)
                        zmsg_destroy(&rep);
        }
        free(version);
        free(request_id);
        free(domain);
        free(address);
        free(identity);
        free(mechanism);
        zframe_destroy(&cred);
        zmsg_destroy(&req);
}

/* ---- commands from other threads ---- */

static void push_command(struct sched *s, enum command_kind kind, const char *job_id,
                         int64_t worker_id)
{
        struct command *c = calloc(1, sizeof(*c));
        uint64_t one = 1;

        if (!c)
                return;
        c->kind = kind;
        if (job_id)
                (void) snprintf(c->job_id, sizeof(c->job_id), "%s", job_id);
        c->worker_id = worker_id;
        (void) pthread_mutex_lock(&s->cmd_lock);
        if (s->cmds_tail)
                s->cmds_tail->next = c;
        else
                s->cmds = c;
        s->cmds_tail = c;
        (void) pthread_mutex_unlock(&s->cmd_lock);
        (void) !write(s->efd, &one, sizeof(one));
}

void sched_job_queued(struct sched *s, const char *job_id)
{
        if (s)
                push_command(s, CMD_QUEUED, job_id, 0);
}

int sched_job_cancel(struct sched *s, const char *job_id)
{
        if (!s)
                return 0;
        push_command(s, CMD_CANCEL, job_id, 0);
        return 1;
}

void sched_worker_removed(struct sched *s, int64_t worker_id)
{
        if (s)
                push_command(s, CMD_REMOVED, NULL, worker_id);
}

int sched_worker_status(struct sched *s, int64_t worker_id, struct sched_worker_status *ret)
{
        struct sched_worker *w;

        *ret = (struct sched_worker_status){};
        if (!s)
                return -ENOENT;
        (void) pthread_mutex_lock(&s->lock);
        w = worker_find(s, worker_id);
        if (w && w->routing)
                *ret = (struct sched_worker_status){
                        .connected = true,
                        .slots = w->slots,
                        .running = w->running,
                        .cpus = w->cpus,
                        .memory = w->memory,
                        .last_heartbeat = w->last_heartbeat,
                };
        else if (w)
                ret->last_heartbeat = w->last_heartbeat;
        (void) pthread_mutex_unlock(&s->lock);
        return ret->connected ? 0 : -ENOENT;
}

static void run_commands(struct sched *s)
{
        struct command *c;

        (void) pthread_mutex_lock(&s->cmd_lock);
        c = s->cmds;
        s->cmds = s->cmds_tail = NULL;
        (void) pthread_mutex_unlock(&s->cmd_lock);

        while (c) {
                struct command *next = c->next;
                struct sched_job *j;
                struct sched_worker *w;
                char k[24];
                int r;

                switch (c->kind) {
                case CMD_QUEUED:
                        r = job_load(s, c->job_id, &j);
                        if (r < 0)
                                log_warning_errno(r, "event=sched_load_failed job=%s: %m",
                                                  c->job_id);
                        else if (!j->started && j->queued == 0)
                                for (int i = 0; i < j->replicas; i++)
                                        enqueue(s, j, i, false);
                        break;
                case CMD_CANCEL:
                        j = zhashx_lookup(s->jobs, c->job_id);
                        if (j) {
                                log_info("event=sched_cancel job=%s leases=%u", j->id, j->leased);
                                job_forget(s, j, true);
                        }
                        break;
                case CMD_REMOVED:
                        key_of_id(c->worker_id, k);
                        w = zhashx_lookup(s->workers, k);
                        if (w) {
                                if (w->routing)
                                        (void) net_send(s->router, w->routing, NET_DISCONNECT,
                                                        json_pack("{s:s}", "reason",
                                                                  "this worker was removed"),
                                                        NULL, 0);
                                worker_disconnect(s, w, "removed");
                                /* The store re-queued its replicas; the queue follows. */
                                worker_leases_lost(s, w->id, "was removed", NULL);
                                zhashx_delete(s->workers, k);
                        }
                        break;
                }
                free(c);
                c = next;
        }
}

/* ---- the loop ---- */

static void check_timeouts(struct sched *s)
{
        uint64_t now = mono(), silent = (uint64_t) s->o.lease_ms * 1000000;
        size_t n_expired = 0;
        zlistx_t *keys;

        for (size_t i = 0; i < s->n_ready;) {
                struct sched_worker *w = s->ready[i];

                if (now - w->last_seen > silent) {
                        worker_disconnect(s, w, "silent");
                        continue; /* ready[i] is another worker now */
                }
                i++;
        }
        /* Expired leases are few: find them without copying the table, then handle them (which
         * changes the table). */
        for (struct sched_lease *l = zhashx_first(s->leases); l; l = zhashx_next(s->leases))
                if (l->expires < now)
                        n_expired++;
        if (n_expired == 0)
                return;
        keys = zhashx_keys(s->leases);
        for (const char *k = keys ? zlistx_first(keys) : NULL; k; k = zlistx_next(keys)) {
                struct sched_lease *l = zhashx_lookup(s->leases, k);

                if (l && l->expires < now)
                        lease_lost(s, l, "went silent");
        }
        zlistx_destroy(&keys);
}

static void *sched_main(void *arg)
{
        struct sched *s = arg;
        uint64_t last_tick = 0;

        for (;;) {
                zmq_pollitem_t items[3] = {
                        {.socket = zsock_resolve(s->router), .events = ZMQ_POLLIN},
                        {.socket = zsock_resolve(s->zap), .events = ZMQ_POLLIN},
                        {.fd = s->efd, .events = ZMQ_POLLIN},
                };
                bool stop, batch;
                int k;

                k = zmq_poll(items, 3, TICK_MS);
                if (k < 0 && errno != EINTR) {
                        log_error_errno(-errno, "event=sched_poll_failed: %m");
                        break;
                }
                (void) pthread_mutex_lock(&s->cmd_lock);
                stop = s->stopping;
                (void) pthread_mutex_unlock(&s->cmd_lock);
                if (stop)
                        break;

                (void) pthread_mutex_lock(&s->lock);
                /* One transaction per iteration: results, assignments and lease changes of
                 * the iteration share one fsync; what depends on them leaves after it. */
                batch = store_batch_begin(s->st) >= 0;
                if (k > 0 && (items[1].revents & ZMQ_POLLIN))
                        for (int i = 0; i < 64; i++) {
                                zmq_pollitem_t z = {.socket = zsock_resolve(s->zap),
                                                    .events = ZMQ_POLLIN};

                                if (zmq_poll(&z, 1, 0) <= 0)
                                        break;
                                on_zap(s);
                        }
                if (k > 0 && (items[2].revents & ZMQ_POLLIN)) {
                        uint64_t v;

                        (void) !read(s->efd, &v, sizeof(v));
                }
                run_commands(s);
                if (k > 0 && (items[0].revents & ZMQ_POLLIN))
                        for (int i = 0; i < RECV_BATCH; i++) {
                                struct net_msg m = {};
                                _cleanup_free_ char *user = NULL;
                                zframe_t *routing = NULL;
                                int r;

                                r = net_recv(s->router, NET_TO_MASTER, &m, &routing, &user);
                                if (r == -EAGAIN)
                                        break;
                                if (r == -EPROTONOSUPPORT && routing) {
                                        reply_error(s, routing, "version",
                                                    "this master speaks protocol version 1", NULL);
                                } else if (r < 0)
                                        log_warning_errno(r, "event=bad_message: %m");
                                else
                                        on_message(s, routing, user, &m);
                                net_msg_done(&m);
                                zframe_destroy(&routing);
                        }
                if (mono() - last_tick > (uint64_t) TICK_MS * 1000000) {
                        check_timeouts(s);
                        last_tick = mono();
                }
                schedule(s);
                if (batch && store_batch_end(s->st, true) < 0) {
                        /* Nothing of this iteration is on disk: nothing of it is said. The
                         * leases it made expire, and their replicas are queued again. */
                        log_error("event=sched_commit_failed messages=%zu", s->n_out);
                        flush_outbox(s, false);
                } else
                        flush_outbox(s, true);
                (void) pthread_mutex_unlock(&s->lock);
        }
        return NULL;
}

/* At start: the jobs the store says are queued or running, and who holds what. */
static int recover(struct sched *s)
{
        struct store_job_filter f = {.by_state = true, .limit = STORE_LIST_MAX};
        uint64_t grace = mono() + 2 * (uint64_t) s->o.lease_ms * 1000000;
        size_t queued = 0, leases = 0;
        int r;

        for (int pass = 0; pass < 2; pass++) {
                char after[STORE_JOB_ID_SIZE] = "";
                int64_t after_at = 0;

                f.state = pass == 0 ? STORE_JOB_QUEUED : STORE_JOB_RUNNING;
                for (;;) {
                        struct store_job *jobs = NULL;
                        size_t n = 0;

                        f.after_id = after;
                        f.after_created_at = after_at;
                        r = store_job_list(s->st, &f, &jobs, &n);
                        if (r < 0)
                                return r;
                        for (size_t i = 0; i < n; i++) {
                                struct store_replica *reps = NULL;
                                size_t nr = 0;
                                struct sched_job *j;

                                if (job_load(s, jobs[i].id, &j) < 0)
                                        continue;
                                if (!j->started) {
                                        for (int x = 0; x < j->replicas; x++)
                                                enqueue(s, j, x, false);
                                        queued++;
                                        continue;
                                }
                                if (store_replica_list(s->st, j->id, &reps, &nr) < 0)
                                        continue;
                                if (nr == 0) {
                                        /* Run by a node without a master's replicas: again. */
                                        if (store_job_transition(s->st, j->id, STORE_JOB_RUNNING,
                                                                 STORE_JOB_QUEUED) >= 0) {
                                                j->started = false;
                                                for (int x = 0; x < j->replicas; x++)
                                                        enqueue(s, j, x, false);
                                                queued++;
                                        }
                                }
                                for (size_t x = 0; x < nr; x++) {
                                        int idx = reps[x].idx;

                                        if (idx < 0 || idx >= STORE_REPLICAS_MAX)
                                                continue;
                                        j->attempts[idx] = reps[x].attempts;
                                        j->workers[idx] = reps[x].worker_id;
                                        if (reps[x].state == STORE_REPLICA_QUEUED) {
                                                enqueue(s, j, idx, false);
                                                queued++;
                                        } else if (reps[x].state == STORE_REPLICA_ASSIGNED) {
                                                struct sched_lease *l = calloc(1, sizeof(*l));

                                                if (!l)
                                                        continue;
                                                memcpy(l->lease, reps[x].lease, sizeof(l->lease));
                                                l->job = j;
                                                l->idx = idx;
                                                l->worker_id = reps[x].worker_id;
                                                /* Its worker has a while to come back. */
                                                l->expires = grace;
                                                if (zhashx_insert(s->leases, l->lease, l) < 0) {
                                                        free(l);
                                                        continue;
                                                }
                                                j->leased++;
                                                leases++;
                                        }
                                }
                                store_replica_array_free(reps, nr);
                        }
                        if (n > 0) {
                                (void) snprintf(after, sizeof(after), "%s", jobs[n - 1].id);
                                after_at = jobs[n - 1].created_at;
                        }
                        store_job_array_free(jobs, n);
                        if (n < f.limit)
                                break;
                }
        }
        if (queued || leases)
                log_info("event=sched_recover queued=%zu leases=%zu", queued, leases);
        return 0;
}

int sched_start(struct node *n, const struct sched_options *opts, struct sched **ret)
{
        struct sched *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->n = n;
        s->o = *opts;
        s->efd = -EBADF;
        (void) pthread_mutex_init(&s->lock, NULL);
        (void) pthread_mutex_init(&s->cmd_lock, NULL);
        s->jobs = zhashx_new();
        s->leases = zhashx_new();
        s->workers = zhashx_new();
        if (!s->jobs || !s->leases || !s->workers) {
                r = -ENOMEM;
                goto fail;
        }
        zhashx_set_destructor(s->jobs, job_destructor);
        zhashx_set_destructor(s->leases, free_destructor);
        zhashx_set_destructor(s->workers, worker_destructor);

        r = node_key_load(n->opts.state_dir, opts->key_file, &s->kp);
        if (r < 0)
                goto fail;
        r = store_open(n->db_path, &s->st);
        if (r < 0)
                goto fail;
        s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->efd < 0) {
                r = -errno;
                goto fail;
        }
        zsys_handler_set(NULL);
        zsys_set_max_sockets(0); /* as many as the process may have */
        /* The ZAP handler first: no handshake may happen without it. */
        s->zap = zsock_new(ZMQ_REP);
        if (!s->zap || zsock_bind(s->zap, NET_ZAP_ENDPOINT) < 0) {
                r = log_error_errno(-EADDRINUSE, "Failed to bind the ZAP handler");
                goto fail;
        }
        s->router = zsock_new(ZMQ_ROUTER);
        if (!s->router) {
                r = -ENOMEM;
                goto fail;
        }
        r = net_socket_server(s->router, &s->kp, opts->heartbeat_ms);
        if (r < 0)
                goto fail;
        zsock_set_router_mandatory(s->router, 1);
        zsock_set_router_handover(s->router, 1);
        if (zsock_bind(s->router, "%s", opts->listen) < 0) {
                r = log_error_errno(-errno ? -errno : -EADDRINUSE,
                                    "Failed to listen for workers on '%s': %m", opts->listen);
                goto fail;
        }
        r = recover(s);
        if (r < 0) {
                log_error_errno(r, "Failed to recover the queue: %m");
                goto fail;
        }
        r = -pthread_create(&s->thread, NULL, sched_main, s);
        if (r < 0)
                goto fail;
        s->started = true;
        (void) fprintf(stderr, "warren: listening for workers on %s, master key %s\n", opts->listen,
                       s->kp.public_key);
        log_info("event=sched_start listen=%s key=%s lease_ms=%u heartbeat_ms=%u max_attempts=%u",
                 opts->listen, s->kp.public_key, opts->lease_ms, opts->heartbeat_ms,
                 opts->max_attempts);
        *ret = s;
        return 0;
fail:
        sched_stop(s);
        return r;
}

void sched_stop(struct sched *s)
{
        if (!s)
                return;
        if (s->started) {
                (void) pthread_mutex_lock(&s->cmd_lock);
                s->stopping = true;
                (void) pthread_mutex_unlock(&s->cmd_lock);
                (void) !write(s->efd, &(uint64_t){1}, sizeof(uint64_t));
                (void) pthread_join(s->thread, NULL);
        }
        while (s->cmds) {
                struct command *c = s->cmds;

                s->cmds = c->next;
                free(c);
        }
        while (s->owners) {
                struct owner_queue *q = s->owners;

                s->owners = q->next;
                while (q->head) {
                        struct sched_task *t = q->head;

                        q->head = t->next;
                        free(t);
                }
                free(q);
        }
        flush_outbox(s, false);
        free(s->out);
        zhashx_destroy(&s->leases);
        zhashx_destroy(&s->workers);
        zhashx_destroy(&s->jobs);
        free(s->ready);
        zsock_destroy(&s->router);
        zsock_destroy(&s->zap);
        (void) store_close(s->st);
        safe_close(s->efd);
        explicit_bzero(&s->kp, sizeof(s->kp));
        (void) pthread_mutex_destroy(&s->lock);
        (void) pthread_mutex_destroy(&s->cmd_lock);
        free(s);
}
