/* SPDX-License-Identifier: MIT */
/*
 * The workers of the network over the API (docs/api.md, "Workers"): an administrator registers
 * a worker by its CURVE public key, lists, shows and removes workers, and makes one-time join
 * tokens with which a worker registers itself. Every route is an administrator's (auth/: the
 * worker_* actions); each is authorized before anything is looked up, so that a refusal never
 * says whether a worker exists.
 *
 * A worker's identity is its key; the store makes a worker_user account named like it in the
 * same transaction. What the master knows of a connected worker now (slots, leases, its last
 * heartbeat) is the scheduler's, in memory: a node without one (not a master) shows every
 * worker disconnected. A join token is shown once, in the reply that makes it; the store keeps
 * only its SHA-256, and the audit log never sees it.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/token.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "node/admin.h"
#include "node/node.h"
#include "node/sched.h"

#define WORKER_PAGE_DEFAULT      100
#define WORKER_TOKEN_TTL_MIN     60
#define WORKER_TOKEN_TTL_MAX     (7 * 24 * 3600)
#define WORKER_TOKEN_TTL_DEFAULT 3600

static const struct json_field worker_create_fields[] = {
        {"name", JSON_FIELD_STRING, true},
        {"public_key", JSON_FIELD_STRING, true},     /* Z85 */
        {"confinement", JSON_FIELD_STRING, false},   /* default "public" */
        {"group", JSON_FIELD_STRING_OR_NULL, false}, /* with "group" only */
        {"owner", JSON_FIELD_STRING_OR_NULL, false}, /* with "private" only */
};

static const struct json_field worker_token_fields[] = {
        {"confinement", JSON_FIELD_STRING, false},
        {"group", JSON_FIELD_STRING_OR_NULL, false},
        {"owner", JSON_FIELD_STRING_OR_NULL, false},
        {"ttl", JSON_FIELD_INTEGER, false},
};

static char *group_name(struct store *st, int64_t id)
{
        _cleanup_(store_group_clear) struct store_group g = {};

        if (id <= 0 || store_group_get(st, id, &g) < 0)
                return NULL;
        return TAKE_PTR(g.name);
}

static json_t *worker_json(struct node *n, struct store *st, const struct store_worker *w)
{
        _cleanup_free_ char *group = group_name(st, w->group_id),
                            *owner = node_user_name(st, w->owner_id),
                            *user = node_user_name(st, w->user_id);
        struct sched_worker_status s = {};
        bool live = false;

        if (n->sched && sched_worker_status(n->sched, w->id, &s) >= 0)
                live = s.connected;
        if (!live)
                s = (struct sched_worker_status){};
        return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:o, s:o, s:s, s:I, s:I, s:I, "
                         "s:I, s:o}",
                         "name", w->name, "public_key", w->public_key, "confinement",
                         store_worker_confinement_to_string(w->confinement), "group", group,
                         "owner", owner, "user", user, "errors", (json_int_t) w->errors,
                         "created_at", node_time_json(w->created_at), "last_seen",
                         node_time_json(w->last_seen), "state", live ? "connected" : "disconnected",
                         "slots", (json_int_t) s.slots, "running", (json_int_t) s.running, "cpus",
                         (json_int_t) s.cpus, "memory", (json_int_t) s.memory, "last_heartbeat",
                         node_time_json(live ? s.last_heartbeat : 0));
}

/* What a worker (or a token's worker) may receive, as the body asks it. */
struct confinement {
        enum store_worker_confinement kind;
        int64_t group_id, owner_id;
        const char *group, *owner; /* borrowed from the body; NULL unless given */
};

/* A member that is a string; NULL if absent or null. */
static const char *body_string(const json_t *root, const char *key)
{
        return json_string_value(json_object_get(root, key));
}

/*
 * {"confinement"?, "group"?, "owner"?}: "public" (the default) takes neither, "group" a group
 * name, "private" a user name (a standard user or an administrator). 0, or the request has been
 * answered (400, 404).
 */
static int parse_confinement(struct http_request *req, struct store *st, const json_t *root,
                             struct confinement *ret)
{
        const char *kind = body_string(root, "confinement");
        struct confinement c = {
                .kind = STORE_WORKER_PUBLIC,
                .group = body_string(root, "group"),
                .owner = body_string(root, "owner"),
        };
        int r;

        if (kind) {
                c.kind = store_worker_confinement_from_string(kind);
                if (c.kind < 0)
                        return http_reply_error(req, 400, "invalid",
                                                "'confinement' is 'public', 'group' or "
                                                "'private'"),
                               -EINVAL;
        }
        if (c.group && c.kind != STORE_WORKER_GROUP)
                return http_reply_error(req, 400, "invalid",
                                        "'group' goes with confinement 'group' only"),
                       -EINVAL;
        if (c.owner && c.kind != STORE_WORKER_PRIVATE)
                return http_reply_error(req, 400, "invalid",
                                        "'owner' goes with confinement 'private' only"),
                       -EINVAL;
        if (c.kind == STORE_WORKER_GROUP) {
                _cleanup_(store_group_clear) struct store_group g = {};

                if (!c.group)
                        return http_reply_error(req, 400, "missing_field",
                                                "confinement 'group' needs 'group': the group "
                                                "whose apps the worker runs"),
                               -EINVAL;
                r = store_name_valid(c.group) ? store_group_get_by_name(st, c.group, &g) : -ENOENT;
                if (r == -ENOENT)
                        return http_reply_error(req, 404, "not_found", "no such group"), r;
                if (r < 0)
                        return http_reply_errno(req, r, "cannot read the group"), r;
                c.group_id = g.id;
        }
        if (c.kind == STORE_WORKER_PRIVATE) {
                _cleanup_(store_user_clear) struct store_user u = {};

                if (!c.owner)
                        return http_reply_error(req, 400, "missing_field",
                                                "confinement 'private' needs 'owner': the user "
                                                "whose jobs the worker runs"),
                               -EINVAL;
                r = store_name_valid(c.owner) ? store_user_get_by_name(st, c.owner, &u) : -ENOENT;
                if (r == -ENOENT)
                        return http_reply_error(req, 404, "not_found", "no such user"), r;
                if (r < 0)
                        return http_reply_errno(req, r, "cannot read the user"), r;
                if (u.rights != AUTH_RIGHTS_STANDARD && u.rights != AUTH_RIGHTS_ADMIN)
                        return http_reply_error(req, 400, "invalid",
                                                "'owner' is a standard_user or an "
                                                "administrator"),
                               -EINVAL;
                c.owner_id = u.id;
        }
        *ret = c;
        return 0;
}

/* "group team", "owner alice" or "" for the audit's detail. */
static void confinement_detail(const struct confinement *c, char *buf, size_t size)
{
        if (c->kind == STORE_WORKER_GROUP)
                (void) snprintf(buf, size, " group %s", c->group);
        else if (c->kind == STORE_WORKER_PRIVATE)
                (void) snprintf(buf, size, " owner %s", c->owner);
        else
                buf[0] = '\0';
}

void node_route_workers_create(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_worker_clear) struct store_worker w = {};
        _cleanup_json_ json_t *root = NULL;
        struct confinement conf;
        const char *name, *key;
        char object[STORE_NAME_MAX + 8], detail[STORE_NAME_MAX + 8];
        struct store *st = NULL;
        int64_t id;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_WORKER_INSERT, AUTH_PERM_NONE, NULL,
                                   "worker", "workers") < 0)
                goto out;
        if (node_parse_body(req, worker_create_fields, ELEMENTSOF(worker_create_fields), &root) < 0)
                goto out;
        name = body_string(root, "name");
        key = body_string(root, "public_key");
        if (!store_name_valid(name)) {
                (void) http_reply_error(req, 400, "invalid",
                                        "a worker name is 1 to 64 of [a-z0-9_.-], starting with a "
                                        "letter");
                goto out;
        }
        if (!store_curve_key_valid(key)) {
                (void) http_reply_error(req, 400, "invalid",
                                        "'public_key' is a CURVE public key: %d characters of "
                                        "Z85",
                                        STORE_CURVE_KEY_LEN);
                goto out;
        }
        if (parse_confinement(req, st, root, &conf) < 0)
                goto out;
        r = store_worker_create(st, name, key, conf.kind, conf.group_id, conf.owner_id,
                                AUTH_RIGHTS_WORKER, &id);
        if (r == -EEXIST) {
                _cleanup_(store_worker_clear) struct store_worker other = {};

                if (store_worker_get_by_key(st, key, &other) >= 0)
                        (void) http_reply_error(req, 409, "conflict",
                                                "the key is registered already, to the worker "
                                                "'%s'",
                                                other.name);
                else
                        (void) http_reply_error(req, 409, "conflict",
                                                "the name '%s' is taken (by a worker or a user)",
                                                name);
                goto out;
        }
        if (r == -ENOENT) {
                /* the group or the owner went away since we looked */
                (void) http_reply_error(req, 404, "not_found", "no such group or user");
                goto out;
        }
        if (r >= 0)
                r = store_worker_get(st, id, &w);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot register the worker");
                goto out;
        }
        (void) snprintf(object, sizeof(object), "worker:%s", name);
        confinement_detail(&conf, detail, sizeof(detail));
        node_audit(st, &c, req, "worker_add", object, "key %s confinement %s%s", w.public_key,
                   store_worker_confinement_to_string(w.confinement), detail);
        (void) http_reply_json(req, 201, worker_json(n, st, &w));
out:
        node_store_put(n, st);
}

void node_route_workers_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        const char *limit_q = http_request_query(req, "limit"),
                   *cursor_q = http_request_query(req, "cursor");
        struct store_worker *list = NULL;
        uint64_t limit = WORKER_PAGE_DEFAULT, after = 0;
        size_t count = 0;
        struct store *st = NULL;
        json_t *arr, *next = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_WORKER_LIST, AUTH_PERM_NONE, NULL,
                                   "worker", "workers") < 0)
                goto out;
        if (limit_q && parse_uint(limit_q, 1, STORE_LIST_MAX, &limit) < 0) {
                (void) http_reply_error(req, 400, "invalid", "'limit' is 1 to %d", STORE_LIST_MAX);
                goto out;
        }
        /* The cursor is the next_cursor of the previous page. */
        if (cursor_q && parse_uint(cursor_q, 0, INT64_MAX, &after) < 0) {
                (void) http_reply_error(req, 400, "invalid", "'cursor' is malformed");
                goto out;
        }
        r = store_worker_list(st, (int64_t) after, (size_t) limit, &list, &count);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot list the workers");
                goto out;
        }
        arr = json_array();
        for (size_t i = 0; arr && i < count; i++)
                (void) json_array_append_new(arr, worker_json(n, st, &list[i]));
        if (count == limit && count > 0)
                next = json_sprintf("%" PRId64, list[count - 1].id);
        (void) store_worker_array_free(list, count);
        (void) http_reply_json(
                req, 200,
                json_pack("{s:o, s:o}", "workers", arr, "next_cursor", next ? next : json_null()));
out:
        node_store_put(n, st);
}

/* The worker named in the path, if the caller may do action to it; else answered. */
static int lookup_worker(struct http_request *req, struct store *st, const struct node_caller *c,
                         enum auth_action action, struct store_worker *ret)
{
        const char *name = http_request_param(req, "name");
        int r;

        r = node_authorize_audited(st, req, c, action, AUTH_PERM_NONE, NULL, "worker", name);
        if (r < 0)
                return r;
        r = name && store_name_valid(name) ? store_worker_get_by_name(st, name, ret) : -ENOENT;
        if (r < 0)
                return node_reply_denied(req, r, "worker"), r;
        return 0;
}

void node_route_workers_get(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_worker_clear) struct store_worker w = {};
        struct store *st = NULL;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_worker(req, st, &c, AUTH_ACTION_WORKER_GET, &w) >= 0)
                (void) http_reply_json(req, 200, worker_json(n, st, &w));
        node_store_put(n, st);
}

void node_route_workers_delete(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_worker_clear) struct store_worker w = {};
        char object[STORE_NAME_MAX + 8];
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_worker(req, st, &c, AUTH_ACTION_WORKER_DELETE, &w) < 0)
                goto out;
        r = store_worker_delete(st, w.id);
        if (r < 0) {
                (void) node_reply_denied(req, r, "worker");
                goto out;
        }
        /* Its connection is dropped and its leases go back to the queue. */
        if (n->sched)
                sched_worker_removed(n->sched, w.id);
        (void) snprintf(object, sizeof(object), "worker:%s", w.name);
        node_audit(st, &c, req, "worker_remove", object, "key %s", w.public_key);
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

void node_route_workers_token(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_json_ json_t *root = NULL;
        char token[AUTH_WORKER_TOKEN_LEN + 1], detail[STORE_NAME_MAX + 8];
        uint8_t hash[AUTH_TOKEN_HASH_LEN];
        struct json_error err = {};
        struct confinement conf;
        struct store *st = NULL;
        int64_t ttl, expires;
        json_t *reply;
        int r;

        _Static_assert(AUTH_TOKEN_HASH_LEN == STORE_WORKER_TOKEN_HASH_SIZE, "token hash size");

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_WORKER_TOKEN, AUTH_PERM_NONE, NULL,
                                   "worker", "worker tokens") < 0)
                goto out;
        if (node_parse_body(req, worker_token_fields, ELEMENTSOF(worker_token_fields), &root) < 0)
                goto out;
        r = json_get_int(root, "ttl", WORKER_TOKEN_TTL_MIN, WORKER_TOKEN_TTL_MAX,
                         WORKER_TOKEN_TTL_DEFAULT, &ttl, &err);
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code,
                                        "'ttl' is %d to %d seconds (7 days)", WORKER_TOKEN_TTL_MIN,
                                        WORKER_TOKEN_TTL_MAX);
                goto out;
        }
        if (parse_confinement(req, st, root, &conf) < 0)
                goto out;
        expires = (int64_t) now_ns(CLOCK_REALTIME) + ttl * INT64_C(1000000000);
        r = auth_worker_token_new(token, hash);
        if (r >= 0)
                r = store_worker_token_create(st, hash, conf.kind, conf.group_id, conf.owner_id,
                                              expires);
        if (r < 0) {
                sodium_memzero(token, sizeof(token));
                (void) http_reply_errno(req, r, "cannot make a join token");
                goto out;
        }
        confinement_detail(&conf, detail, sizeof(detail));
        /* never the token: what it grants and until when */
        node_audit(st, &c, req, "worker_token", NULL, "confinement %s%s ttl %" PRId64 "s",
                   store_worker_confinement_to_string(conf.kind), detail, ttl);
        reply = json_pack("{s:s, s:o, s:I, s:s, s:s?, s:s?}", "token", token, "expires_at",
                          node_time_json(expires), "ttl", (json_int_t) ttl, "confinement",
                          store_worker_confinement_to_string(conf.kind), "group", conf.group,
                          "owner", conf.owner);
        (void) http_reply_json(req, 201, reply);
        sodium_memzero(token, sizeof(token));
out:
        node_store_put(n, st);
}
