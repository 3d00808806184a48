/* SPDX-License-Identifier: MIT */
/*
 * Jobs over the API. A job is on disk (queued) before its 201; the runners take it from there.
 * Reading a job needs the read bit of its class (another user's job is "not found"); cancelling
 * it, the write bit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "node/admin.h"
#include "node/app.h"
#include "node/node.h"
#include "node/sched.h"

#define NS_PER_S    UINT64_C(1000000000)
#define SSE_PING_NS (15 * NS_PER_S)
#define CURSOR_MAX  64

static bool job_final(enum store_job_state s)
{
        return s == STORE_JOB_FINISHED || s == STORE_JOB_CANCELLED || s == STORE_JOB_FAILED;
}

json_t *node_job_json(struct store *st, const struct store_job *j, bool with_result)
{
        _cleanup_(store_app_clear) struct store_app a = {};
        _cleanup_(store_group_clear) struct store_group g = {};
        _cleanup_free_ char *owner = NULL;
        json_t *o, *result = NULL;

        if (j->app_id > 0)
                (void) store_app_get(st, j->app_id, &a);
        if (j->acl.group > 0)
                (void) store_group_get(st, j->acl.group, &g);
        owner = node_user_name(st, j->acl.owner);
        if (with_result && j->result) {
                result = json_loads(j->result, 0, NULL);
                if (!result)
                        return NULL;
        }
        o = json_pack("{s:s, s:s?, s:s?, s:s?, s:o, s:s, s:i, s:i, s:o, s:o, s:o, s:s?}", "id",
                      j->id, "app", a.name, "owner", owner, "group", g.name, "mode",
                      json_sprintf("%04o", j->acl.mode), "state",
                      store_job_state_to_string(j->state), "priority", j->priority, "attempts",
                      j->attempts, "created_at", node_time_json(j->created_at), "started_at",
                      node_time_json(j->started_at), "finished_at", node_time_json(j->finished_at),
                      "error", j->error);
        if (!o) {
                json_decref(result);
                return NULL;
        }
        if (json_object_set_new(o, "exit_code",
                                j->has_exit_code ? json_integer(j->exit_code) : json_null()) < 0) {
                json_decref(o);
                json_decref(result);
                return NULL;
        }
        /* Run by a worker of a master: which one's result this is. */
        if (result && json_is_string(json_object_get(result, "worker")) &&
            json_object_set(o, "worker", json_object_get(result, "worker")) < 0) {
                json_decref(o);
                json_decref(result);
                return NULL;
        }
        if (with_result && json_object_set_new(o, "result", result ? result : json_null()) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* ?wait=true&timeout=S: 0 (no wait), or the wait in ns; < 0 and answered if malformed. */
static int64_t wait_param(struct http_request *req)
{
        const char *w = http_request_query(req, "wait");
        const char *t = http_request_query(req, "timeout");
        uint64_t s = NODE_WAIT_DEFAULT_S;

        if (!w || strcmp(w, "false") == 0 || strcmp(w, "0") == 0)
                return 0;
        if (strcmp(w, "true") != 0 && strcmp(w, "1") != 0 && w[0] != '\0') {
                (void) http_reply_error(req, 400, "invalid", "'wait' is true or false");
                return -EINVAL;
        }
        if (t && parse_uint(t, 1, NODE_WAIT_MAX_S, &s) < 0) {
                (void) http_reply_error(req, 400, "invalid", "'timeout' is 1 to %d seconds",
                                        NODE_WAIT_MAX_S);
                return -EINVAL;
        }
        return (int64_t) (s * NS_PER_S);
}

/* The job named in the path, if the caller may do action (perm) to it; else answered. */
static int lookup_job(struct http_request *req, struct store *st, const struct node_caller *c,
                      enum auth_action action, enum auth_perm perm, struct store_job *ret)
{
        const char *id = http_request_param(req, "id");
        int r;

        r = node_authorize_audited(st, req, c, action, perm, NULL, "job", id);
        if (r < 0)
                return r;
        r = id && store_job_id_valid(id) ? store_job_get(st, id, ret) : -ENOENT;
        if (r < 0)
                return node_reply_denied(req, r, "job"), r;
        r = node_authorize_audited(st, req, c, action, perm, &ret->acl, "job", id);
        if (r < 0)
                store_job_clear(ret);
        return r;
}

/* Waits (bounded) for the job's end, then answers with the job as it is. */
static void reply_job_after_wait(struct node *n, struct http_request *req, struct store *st,
                                 const char *id, int64_t wait_ns, int status)
{
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        _cleanup_(store_job_clear) struct store_job j = {};
        int r;

        if (wait_ns > 0 && hub_watch(n->hub, id, &w) >= 0) {
                /* Watch first, then read: an end published after the read is not missed. */
                r = store_job_get(st, id, &j);
                if (r >= 0 && !job_final(j.state)) {
                        store_job_clear(&j);
                        (void) hub_wait_end(w, (uint64_t) wait_ns);
                }
        }
        if (!j.spec) {
                r = store_job_get(st, id, &j);
                if (r < 0) {
                        (void) http_reply_errno(req, r, "cannot read the job");
                        return;
                }
        }
        (void) http_reply_json(req, status, node_job_json(st, &j, true));
}

void node_route_jobs_create(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(jobspec_done) struct jobspec js = {};
        _cleanup_(store_app_clear) struct store_app a = {};
        _cleanup_(app_spec_done) struct app_spec spec = {};
        struct jobspec_bounds bounds = JOBSPEC_BOUNDS_DEFAULT;
        struct jobspec_limits limits;
        struct json_error err = {};
        const struct store_acl acl = {.owner = 0, .group = 0, .mode = 0700};
        struct store_acl job_acl;
        char id[STORE_JOB_ID_SIZE];
        struct auth_object obj;
        struct store *st = NULL;
        const char *body;
        size_t len;
        int64_t wait_ns;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        r = auth_check_insert(&c.subject, AUTH_ACTION_JOB_INSERT, acl.mode);
        if (r < 0) {
                (void) node_reply_denied(req, r, "job");
                goto out;
        }
        wait_ns = wait_param(req);
        if (wait_ns < 0)
                goto out;
        if (atomic_load(&n->stopping)) {
                (void) http_reply_error(req, 503, "unavailable", "the node is stopping");
                goto out;
        }
        body = http_request_body(req, &len);
        bounds.max_body = n->opts.max_body;
        r = jobspec_decode(body, len, &bounds, &js, &err);
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                goto out;
        }
        r = store_app_get_by_name(st, js.app, &a);
        if (r >= 0) {
                obj = node_acl_object(&a.acl);
                r = auth_check(&c.subject, AUTH_ACTION_APP_EXEC, &obj, AUTH_PERM_EXEC);
        }
        if (r < 0) {
                (void) node_reply_denied(req, r, "app");
                goto out;
        }
        r = app_spec_decode(a.spec, strlen(a.spec), &spec, &err);
        if (r >= 0)
                r = app_run_limits(&spec, &js, &limits, &err);
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                goto out;
        }
        for (size_t i = 0; js.source && i < js.n_inputs; i++)
                if (strcmp(js.inputs[i].path, spec.source_file) == 0) {
                        (void) http_reply_error(req, 400, "conflicting_fields",
                                                "input %zu's path is where the app puts the "
                                                "source ('%s')",
                                                i, spec.source_file);
                        goto out;
                }
        if (node_check_inputs(n, st, req, &c, &js) < 0)
                goto out;

        job_acl = (struct store_acl){.owner = c.user_id, .group = 0, .mode = acl.mode};
        r = store_job_insert(st, a.id, &job_acl, js.priority, body, id);
        if (r == -E2BIG) {
                (void) http_reply_error(req, 413, "too_large", "the job is too large to store");
                goto out;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot store the job");
                goto out;
        }
        log_info("event=job_insert job=%s app='%s' user='%s'", id, js.app, c.name);
        if (n->sched)
                sched_job_queued(n->sched, id);
        else
                hub_notify_work(n->hub);
        reply_job_after_wait(n, req, st, id, wait_ns, 201);
out:
        node_store_put(n, st);
}

void node_route_jobs_get(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        struct store *st = NULL;
        int64_t wait_ns;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_job(req, st, &c, AUTH_ACTION_JOB_GET, AUTH_PERM_READ, &j) < 0)
                goto out;
        wait_ns = wait_param(req);
        if (wait_ns < 0)
                goto out;
        reply_job_after_wait(n, req, st, j.id, wait_ns, 200);
out:
        node_store_put(n, st);
}

void node_route_jobs_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store_job_filter f = {.limit = 100};
        const char *state = http_request_query(req, "state");
        char after_id[STORE_JOB_ID_SIZE] = "";
        struct store_job *jobs = NULL;
        size_t count = 0;
        struct store *st = NULL;
        json_t *arr, *next = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        r = auth_check(&c.subject, AUTH_ACTION_JOB_LIST, NULL, AUTH_PERM_NONE);
        if (r < 0) {
                (void) node_reply_denied(req, r, "job");
                goto out;
        }
        if (state) {
                f.by_state = true;
                f.state = store_job_state_from_string(state);
                if (f.state < 0) {
                        (void) http_reply_error(req, 400, "invalid",
                                                "'state' is queued, running, finished, "
                                                "cancelled or failed");
                        goto out;
                }
        }
        if (node_parse_page(req, store_job_id_valid, &f.limit, &f.after_created_at, after_id) < 0)
                goto out;
        if (after_id[0])
                f.after_id = after_id;
        f.by_reader = true;
        f.reader = c.user_id;
        f.reader_is_admin = c.rights == AUTH_RIGHTS_ADMIN;
        f.reader_groups = c.groups;
        f.n_reader_groups = c.n_groups;
        r = store_job_list(st, &f, &jobs, &count);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot list the jobs");
                goto out;
        }
        arr = json_array();
        for (size_t i = 0; arr && i < count; i++)
                (void) json_array_append_new(arr, node_job_json(st, &jobs[i], false));
        if (count == f.limit && count > 0)
                next = json_sprintf("%" PRId64 ".%s", jobs[count - 1].created_at,
                                    jobs[count - 1].id);
        (void) store_job_array_free(jobs, count);
        (void) http_reply_json(
                req, 200,
                json_pack("{s:o, s:o}", "jobs", arr, "next_cursor", next ? next : json_null()));
out:
        node_store_put(n, st);
}

void node_route_jobs_cancel(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        struct store *st = NULL;
        int r = -ESTALE;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_job(req, st, &c, AUTH_ACTION_JOB_CANCEL, AUTH_PERM_WRITE, &j) < 0)
                goto out;
        /* queued or running → cancelled; the state may move under us once (queued → running). */
        for (int tries = 0; tries < 3 && r == -ESTALE; tries++) {
                if (tries > 0) {
                        store_job_clear(&j);
                        r = store_job_get(st, http_request_param(req, "id"), &j);
                        if (r < 0)
                                break;
                }
                if (job_final(j.state)) {
                        r = -EALREADY;
                        break;
                }
                r = store_job_finish(st, j.id, STORE_JOB_CANCELLED, NULL, NULL);
        }
        if (r == -EALREADY) {
                (void) http_reply_error(req, 409, "conflict", "the job has already ended (%s)",
                                        store_job_state_to_string(j.state));
                goto out;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot cancel the job");
                goto out;
        }
        log_info("event=job_cancel job=%s by='%s'", j.id, c.name);
        /* A runner that runs it kills it and tells its followers; otherwise we do. */
        if (n->sched)
                (void) sched_job_cancel(n->sched, j.id);
        if (node_runner_cancel(n, j.id) == 0)
                node_publish_end(n, st, j.id);
        reply_job_after_wait(n, req, st, j.id, 0, 200);
out:
        node_store_put(n, st);
}

/* ---- the event stream ---- */

struct sse {
        struct node *node;
        struct hub_watch *watch;
        uint64_t cursor;
        char *pending; /* formatted bytes not yet sent */
        size_t len, off;
        bool ended;  /* the end event is formatted */
        char *final; /* the end event's data when the hub no longer knows the job */
};

static void sse_free(void *cookie)
{
        struct sse *s = cookie;

        if (!s)
                return;
        (void) hub_unwatch(s->watch);
        free(s->pending);
        free(s->final);
        free(s);
}

static int sse_format(struct sse *s, uint64_t seq, const char *name, const char *data)
{
        free(s->pending);
        s->pending = NULL;
        s->off = 0;
        if (asprintf(&s->pending, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", seq, name, data) <
            0) {
                s->pending = NULL;
                return -ENOMEM;
        }
        s->len = strlen(s->pending);
        return 0;
}

static long sse_next(void *cookie, char *buf, size_t max)
{
        struct sse *s = cookie;
        struct hub_event ev = {};
        bool gap = false;
        size_t k;
        int r;

        if (s->pending && s->off < s->len) {
                k = s->len - s->off < max ? s->len - s->off : max;
                memcpy(buf, s->pending + s->off, k);
                s->off += k;
                return (long) k;
        }
        if (s->ended)
                return HTTP_STREAM_END;
        if (s->final) {
                s->ended = true;
                return sse_format(s, 1, "end", s->final) < 0 ? HTTP_STREAM_ERROR : 0;
        }
        r = hub_next(s->watch, &s->cursor, SSE_PING_NS, &ev, &gap);
        if (r == -ETIMEDOUT) {
                free(s->pending);
                s->pending = strdup(": ping\n\n");
                s->len = s->pending ? strlen(s->pending) : 0;
                s->off = 0;
                return s->pending ? 0 : HTTP_STREAM_ERROR;
        }
        if (r < 0)
                return HTTP_STREAM_END; /* the node is stopping */
        if (strcmp(ev.name, "end") == 0)
                s->ended = true;
        r = sse_format(s, ev.seq, ev.name, ev.data);
        if (r >= 0 && gap) {
                /* Output older than the replay buffer is gone: the follower is told, first. */
                _cleanup_free_ char *both = NULL;

                if (asprintf(&both, "event: gap\ndata: {}\n\n%s", s->pending) < 0)
                        both = NULL;
                if (!both)
                        r = -ENOMEM;
                else {
                        free(s->pending);
                        s->pending = TAKE_PTR(both);
                        s->len = strlen(s->pending);
                }
        }
        hub_event_clear(&ev);
        return r < 0 ? HTTP_STREAM_ERROR : 0;
}

void node_route_jobs_events(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        _cleanup_(store_job_clear) struct store_job now = {};
        struct store *st = NULL;
        struct sse *s = NULL;
        const char *last;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_job(req, st, &c, AUTH_ACTION_JOB_GET, AUTH_PERM_READ, &j) < 0)
                goto out;
        s = calloc(1, sizeof(*s));
        if (!s) {
                (void) http_reply_errno(req, -ENOMEM, "out of memory");
                goto out;
        }
        s->node = n;
        /* A reconnecting client resumes after the last event it saw. */
        last = http_request_header(req, "Last-Event-ID");
        if (last && parse_uint(last, 0, UINT64_MAX / 2, &s->cursor) < 0)
                s->cursor = 0;
        r = hub_watch(n->hub, j.id, &s->watch);
        /* Watch first, then read the state: an end after this read reaches the watch. */
        if (r >= 0)
                r = store_job_get(st, j.id, &now);
        if (r >= 0 && job_final(now.state) && !hub_ended(s->watch)) {
                /* The hub has forgotten this job (or never saw it): its end from the store. */
                json_t *o = node_job_json(st, &now, true);

                s->final = o ? json_dumps(o, JSON_COMPACT) : NULL;
                json_decref(o);
                if (!s->final)
                        r = -ENOMEM;
        }
        if (r < 0) {
                sse_free(s);
                (void) http_reply_errno(req, r, "cannot follow the job");
                goto out;
        }
        (void) http_request_add_header(req, "X-Accel-Buffering", "no");
        (void) http_reply_stream(req, 200, "text/event-stream; charset=utf-8", sse_next, s,
                                 sse_free);
out:
        node_store_put(n, st);
}

/* ---- blobs: only those the job's result names with a url ---- */

static bool find_blob(const json_t *v, const char *sha, uint64_t *ret_size)
{
        const char *key;
        json_t *x;
        size_t i;

        if (json_is_object(v)) {
                const json_t *h = json_object_get(v, "sha256");
                const json_t *size = json_object_get(v, "size");

                if (json_is_string(h) && strcmp(json_string_value(h), sha) == 0 &&
                    json_object_get(v, "url") && json_is_integer(size) &&
                    json_integer_value(size) >= 0) {
                        *ret_size = (uint64_t) json_integer_value(size);
                        return true;
                }
                json_object_foreach((json_t *) v, key,
                                    x) if (find_blob(x, sha, ret_size)) return true;
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, x) if (find_blob(x, sha, ret_size)) return true;
        }
        return false;
}

void node_route_jobs_blob(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        _cleanup_json_ json_t *result = NULL;
        const char *sha = http_request_param(req, "sha256");
        struct store *st = NULL;
        uint64_t size = 0;
        int fd = -EBADF, r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_job(req, st, &c, AUTH_ACTION_JOB_GET, AUTH_PERM_READ, &j) < 0)
                goto out;
        result = j.result ? json_loads(j.result, 0, NULL) : NULL;
        if (!sha || !blob_id_valid(sha) || !result || !find_blob(result, sha, &size)) {
                (void) http_reply_error(req, 404, "not_found", "the job has no such blob");
                goto out;
        }
        r = blob_open(n->blobs, sha, size, &fd);
        if (r == -EBADMSG) {
                log_error("event=blob_corrupt job=%s blob=%s", j.id, sha);
                (void) http_reply_error(req, 500, "corrupt",
                                        "the stored blob does not match its digest");
                goto out;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot read the blob");
                goto out;
        }
        (void) http_reply_fd(req, 200, "application/octet-stream", fd, size);
out:
        node_store_put(n, st);
}
