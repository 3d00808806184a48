/* SPDX-License-Identifier: MIT */
/*
 * Administration over the API: groups, the owner/group/mode of every object, one's own sessions,
 * and the audit log. Every decision is auth/'s (auth_check(), auth_check_chmod/chgrp/chown());
 * every change of rights, mode or membership and every refusal is audited.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "node/admin.h"

#define AUDIT_PAGE_DEFAULT 100
#define SESSION_PAGE       STORE_LIST_MAX

void node_audit(struct store *st, const struct node_caller *c, struct http_request *req,
                const char *event, const char *object, const char *fmt, ...)
{
        char detail[1024] = "";
        const char *peer = req ? http_request_peer(req) : NULL;
        int r;

        if (fmt) {
                va_list ap;

                va_start(ap, fmt);
                (void) vsnprintf(detail, sizeof(detail), fmt, ap);
                va_end(ap);
        }
        r = store_audit_append(st, c ? c->user_id : 0, event, object, fmt ? detail : NULL, peer);
        if (r < 0)
                log_error_errno(r, "event=audit_lost audit_event=%s: %m", event);
        log_info("event=audit audit_event=%s actor='%s' object='%s' peer=%s", event,
                 c ? c->name : "", object ? object : "", peer ? peer : "");
}

int node_authorize_audited(struct store *st, struct http_request *req, const struct node_caller *c,
                           enum auth_action action, enum auth_perm perm,
                           const struct store_acl *acl, const char *what, const char *object)
{
        int r = node_authorize(req, c, action, perm, acl, what);

        /* A refusal of something the caller can see; an invisible object is only "not found". */
        if (r == -EPERM || r == -EACCES)
                node_audit(st, c, req, "denied", object, "%s", auth_action_to_string(action));
        return r;
}

static json_t *mode_json(uint32_t mode)
{
        return json_sprintf("%04o", mode);
}

static char *group_name(struct store *st, int64_t id)
{
        _cleanup_(store_group_clear) struct store_group g = {};

        if (id <= 0 || store_group_get(st, id, &g) < 0)
                return NULL;
        return TAKE_PTR(g.name);
}

/* {"owner", "group", "mode"} of an acl, by names. */
static json_t *acl_json(struct store *st, const struct store_acl *acl)
{
        _cleanup_free_ char *owner = node_user_name(st, acl->owner);
        _cleanup_free_ char *group = group_name(st, acl->group);

        return json_pack("{s:s?, s:s?, s:o}", "owner", owner, "group", group, "mode",
                         mode_json(acl->mode));
}

/* ---- groups ---- */

static json_t *group_json(struct store *st, const struct store_group *g)
{
        _cleanup_free_ int64_t *members = NULL;
        size_t n = 0;
        json_t *o = acl_json(st, &g->acl), *names = json_array();

        if (!o || !names)
                goto fail;
        if (store_group_members(st, g->id, &members, &n) >= 0)
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *name = node_user_name(st, members[i]);

                        if (name && json_array_append_new(names, json_string(name)) < 0)
                                goto fail;
                }
        if (json_object_set_new(o, "name", json_string(g->name)) < 0 ||
            json_object_set_new(o, "members", names) < 0)
                goto fail_o;
        if (json_object_set_new(o, "created_at", node_time_json(g->created_at)) < 0)
                goto fail_o;
        return o;
fail:
        json_decref(names);
fail_o:
        json_decref(o);
        return NULL;
}

static const struct json_field group_fields[] = {
        {"name", JSON_FIELD_STRING, true},
};

void node_route_groups_create(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_group_clear) struct store_group g = {};
        _cleanup_json_ json_t *root = NULL;
        struct store_acl acl = {.mode = 0750};
        const char *name;
        struct store *st = NULL;
        int64_t id;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        acl.owner = c.user_id;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_GROUP_INSERT, AUTH_PERM_NONE, NULL,
                                   "group", "group") < 0)
                goto out;
        if (node_parse_body(req, group_fields, ELEMENTSOF(group_fields), &root) < 0)
                goto out;
        name = json_string_value(json_object_get(root, "name"));
        if (!store_name_valid(name)) {
                (void) http_reply_error(req, 400, "invalid",
                                        "a group name is 1 to 64 of [a-z0-9_.-], starting with a "
                                        "letter");
                goto out;
        }
        r = store_group_create(st, name, &acl, &id);
        if (r == -EEXIST) {
                (void) http_reply_error(req, 409, "conflict", "the group '%s' exists", name);
                goto out;
        }
        /* Its members may read it: the group of a group is itself. */
        if (r >= 0) {
                acl.group = id;
                r = store_object_set_acl(st, STORE_KIND_GROUP, id, &acl);
        }
        if (r >= 0)
                r = store_group_get(st, id, &g);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot create the group");
                goto out;
        }
        node_audit(st, &c, req, "group_create", name, NULL);
        (void) http_reply_json(req, 201, group_json(st, &g));
out:
        node_store_put(n, st);
}

void node_route_groups_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store *st = NULL;
        int64_t after = 0;
        json_t *arr = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize(req, &c, AUTH_ACTION_GROUP_LIST, AUTH_PERM_NONE, NULL, "group") < 0)
                goto out;
        arr = json_array();
        r = arr ? 0 : -ENOMEM;
        while (r >= 0) {
                struct store_group *groups = NULL;
                size_t count = 0;

                r = store_group_list(st, after, STORE_LIST_MAX, &groups, &count);
                if (r < 0)
                        break;
                for (size_t i = 0; i < count; i++) {
                        struct auth_object obj = node_acl_object(&groups[i].acl);

                        if (auth_check(&c.subject, AUTH_ACTION_GROUP_GET, &obj, AUTH_PERM_READ) >=
                            0)
                                (void) json_array_append_new(arr, group_json(st, &groups[i]));
                }
                if (count > 0)
                        after = groups[count - 1].id;
                (void) store_group_array_free(groups, count);
                if (count < STORE_LIST_MAX)
                        break;
        }
        if (r < 0) {
                json_decref(arr);
                (void) http_reply_errno(req, r, "cannot list the groups");
                goto out;
        }
        (void) http_reply_json(req, 200, json_pack("{s:o}", "groups", arr));
out:
        node_store_put(n, st);
}

/* The group named by the path parameter `param`, if the caller may do action (perm) to it. */
static int lookup_group(struct http_request *req, struct store *st, const struct node_caller *c,
                        enum auth_action action, enum auth_perm perm, struct store_group *ret)
{
        const char *name = http_request_param(req, "name");
        int r;

        r = node_authorize_audited(st, req, c, action, perm, NULL, "group", name);
        if (r < 0)
                return r;
        r = name && store_name_valid(name) ? store_group_get_by_name(st, name, ret) : -ENOENT;
        if (r < 0)
                return node_reply_denied(req, r, "group"), r;
        r = node_authorize_audited(st, req, c, action, perm, &ret->acl, "group", name);
        if (r < 0)
                store_group_clear(ret);
        return r;
}

void node_route_groups_get(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_group_clear) struct store_group g = {};
        struct store *st = NULL;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_group(req, st, &c, AUTH_ACTION_GROUP_GET, AUTH_PERM_READ, &g) >= 0)
                (void) http_reply_json(req, 200, group_json(st, &g));
        node_store_put(n, st);
}

void node_route_groups_delete(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_group_clear) struct store_group g = {};
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_group(req, st, &c, AUTH_ACTION_GROUP_DELETE, AUTH_PERM_WRITE, &g) < 0)
                goto out;
        r = store_group_delete(st, g.id);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot delete the group");
                goto out;
        }
        node_audit(st, &c, req, "group_delete", g.name, NULL);
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

static void member_change(struct http_request *req, struct node *n, bool add)
{
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_group_clear) struct store_group g = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        const char *user = http_request_param(req, "user");
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_group(req, st, &c, AUTH_ACTION_GROUP_SET_MEMBERS, AUTH_PERM_WRITE, &g) < 0)
                goto out;
        r = user && store_name_valid(user) ? store_user_get_by_name(st, user, &u) : -ENOENT;
        if (r >= 0)
                r = add ? store_group_add_member(st, g.id, u.id)
                        : store_group_remove_member(st, g.id, u.id);
        if (r == -EEXIST) {
                (void) http_reply_error(req, 409, "conflict", "already a member");
                goto out;
        }
        if (r == -ENOENT) {
                (void) http_reply_error(req, 404, "not_found",
                                        add ? "no such user" : "no such user in the group");
                goto out;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot change the members");
                goto out;
        }
        node_audit(st, &c, req, add ? "group_member_add" : "group_member_remove", g.name, "user %s",
                   u.name);
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

void node_route_groups_member_add(struct http_request *req, void *userdata)
{
        member_change(req, userdata, true);
}

void node_route_groups_member_remove(struct http_request *req, void *userdata)
{
        member_change(req, userdata, false);
}

/* ---- owner, group and mode of any object ---- */

static const struct json_field acl_fields[] = {
        {"mode", JSON_FIELD_STRING, false},
        {"group", JSON_FIELD_STRING_OR_NULL, false},
        {"owner", JSON_FIELD_STRING, false},
};

struct acl_target {
        enum store_kind kind;
        int64_t id;
        char job_id[STORE_JOB_ID_SIZE]; /* a job's or a data object's */
        bool confidential;              /* confidential data: private for good */
        struct store_acl acl;
        char object[96]; /* "job:ID", for the audit */
        const char *what;
};

/* The object of the path, whatever the caller may do to it (auth/ decides below). */
static int find_target(struct http_request *req, struct store *st, struct acl_target *t)
{
        const char *name = http_request_param(
                req, t->kind == STORE_KIND_JOB || t->kind == STORE_KIND_DATA ? "id" : "name");
        int r = -ENOENT;

        if (!name)
                return -ENOENT;
        switch (t->kind) {
        case STORE_KIND_JOB: {
                _cleanup_(store_job_clear) struct store_job j = {};

                t->what = "job";
                if (store_job_id_valid(name))
                        r = store_job_get(st, name, &j);
                if (r >= 0) {
                        memcpy(t->job_id, j.id, sizeof(t->job_id));
                        t->acl = j.acl;
                }
                break;
        }
        case STORE_KIND_DATA: {
                _cleanup_(store_data_clear) struct store_data d = {};

                t->what = "data";
                if (store_data_id_valid(name))
                        r = store_data_get(st, name, &d);
                if (r >= 0) {
                        memcpy(t->job_id, d.id, sizeof(t->job_id));
                        t->acl = d.acl;
                        t->confidential = d.confidential;
                }
                break;
        }
        case STORE_KIND_APP: {
                _cleanup_(store_app_clear) struct store_app a = {};

                t->what = "app";
                if (store_name_valid(name))
                        r = store_app_get_by_name(st, name, &a);
                if (r >= 0) {
                        t->id = a.id;
                        t->acl = a.acl;
                }
                break;
        }
        case STORE_KIND_USER: {
                _cleanup_(store_user_clear) struct store_user u = {};

                t->what = "user";
                if (store_name_valid(name))
                        r = store_user_get_by_name(st, name, &u);
                if (r >= 0) {
                        t->id = u.id;
                        t->acl = u.acl;
                }
                break;
        }
        case STORE_KIND_GROUP: {
                _cleanup_(store_group_clear) struct store_group g = {};

                t->what = "group";
                if (store_name_valid(name))
                        r = store_group_get_by_name(st, name, &g);
                if (r >= 0) {
                        t->id = g.id;
                        t->acl = g.acl;
                }
                break;
        }
        case _STORE_KIND_MAX:
        default:
                return -EINVAL;
        }
        (void) snprintf(t->object, sizeof(t->object), "%s:%s", t->what, name);
        return r;
}

/* "0750", "750": 0..0777. */
static int parse_mode(const char *s, uint32_t *ret)
{
        uint32_t v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 4)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '7')
                        return -EINVAL;
                v = v * 8 + (uint32_t) (s[i] - '0');
        }
        if (v > 0777)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void acl_route(struct http_request *req, struct node *n, enum store_kind kind)
{
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_json_ json_t *root = NULL;
        struct acl_target t = {.kind = kind};
        struct store_acl old;
        struct auth_object obj;
        struct store *st = NULL;
        const json_t *mode, *group, *owner;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        r = find_target(req, st, &t);
        if (r < 0) {
                (void) node_reply_denied(req, r, t.what ? t.what : "object");
                goto out;
        }
        if (node_parse_body(req, acl_fields, ELEMENTSOF(acl_fields), &root) < 0)
                goto out;
        mode = json_object_get(root, "mode");
        group = json_object_get(root, "group");
        owner = json_object_get(root, "owner");
        if (!mode && !group && !owner) {
                (void) http_reply_error(req, 400, "missing_field",
                                        "give at least one of 'mode', 'group' and 'owner'");
                goto out;
        }
        old = t.acl;
        obj = node_acl_object(&t.acl);

        /* In this order, each checked against what the previous one made: as three requests. */
        if (mode) {
                uint32_t m;

                if (parse_mode(json_string_value(mode), &m) < 0) {
                        (void) http_reply_error(req, 400, "invalid",
                                                "'mode' is octal, 0 to 0777, e.g. \"0750\"");
                        goto out;
                }
                r = auth_check_chmod(&c.subject, &obj, m);
                if (r < 0)
                        goto denied;
                if (t.confidential && (m & 077))
                        goto confidential;
                obj.mode = t.acl.mode = m;
        }
        if (group) {
                _cleanup_(store_group_clear) struct store_group g = {};

                r = json_is_null(group) ? 0
                    : store_name_valid(json_string_value(group))
                            ? store_group_get_by_name(st, json_string_value(group), &g)
                            : -ENOENT;
                if (r < 0) {
                        (void) http_reply_error(req, 404, "not_found", "no such group");
                        goto out;
                }
                r = auth_check_chgrp(&c.subject, &obj, g.id);
                if (r < 0)
                        goto denied;
                if (t.confidential && g.id != 0)
                        goto confidential;
                obj.group = t.acl.group = g.id;
        }
        if (owner) {
                _cleanup_(store_user_clear) struct store_user u = {};

                r = auth_check_chown(&c.subject, &obj, 1);
                if (r < 0)
                        goto denied;
                r = store_name_valid(json_string_value(owner))
                            ? store_user_get_by_name(st, json_string_value(owner), &u)
                            : -ENOENT;
                if (r < 0) {
                        (void) http_reply_error(req, 404, "not_found", "no such user");
                        goto out;
                }
                obj.owner = t.acl.owner = u.id;
        }

        r = kind == STORE_KIND_JOB    ? store_job_set_acl(st, t.job_id, &t.acl)
            : kind == STORE_KIND_DATA ? store_data_set_acl(st, t.job_id, &t.acl)
                                      : store_object_set_acl(st, kind, t.id, &t.acl);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot change the %s", t.what);
                goto out;
        }
        node_audit(st, &c, req, "acl_change", t.object,
                   "mode %04o->%04o group %" PRId64 "->%" PRId64 " owner %" PRId64 "->%" PRId64,
                   old.mode, t.acl.mode, old.group, t.acl.group, old.owner, t.acl.owner);
        (void) http_reply_json(req, 200, acl_json(st, &t.acl));
        goto out;
confidential:
        /* Whoever asks, an administrator too: a certificate or a key never leaves its owner. */
        node_audit(st, &c, req, "denied", t.object, "acl change: confidential data");
        (void) http_reply_error(req, 403, "confidential",
                                "confidential data stays private: no group, no group or other "
                                "permission");
        goto out;
denied:
        if (r == -EPERM || r == -EACCES)
                node_audit(st, &c, req, "denied", t.object, "acl change");
        (void) node_reply_denied(req, r, t.what);
out:
        node_store_put(n, st);
}

void node_route_jobs_acl(struct http_request *req, void *userdata)
{
        acl_route(req, userdata, STORE_KIND_JOB);
}

void node_route_data_acl(struct http_request *req, void *userdata)
{
        acl_route(req, userdata, STORE_KIND_DATA);
}

void node_route_apps_acl(struct http_request *req, void *userdata)
{
        acl_route(req, userdata, STORE_KIND_APP);
}

void node_route_users_acl(struct http_request *req, void *userdata)
{
        acl_route(req, userdata, STORE_KIND_USER);
}

void node_route_groups_acl(struct http_request *req, void *userdata)
{
        acl_route(req, userdata, STORE_KIND_GROUP);
}

/* ---- one's own sessions ---- */

void node_route_sessions_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_free_ struct store_session *sessions = NULL;
        size_t count = 0;
        struct store *st = NULL;
        json_t *arr;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize(req, &c, AUTH_ACTION_SESSION_LIST, AUTH_PERM_NONE, NULL, "session") < 0)
                goto out;
        r = store_session_list(st, c.user_id, 0, SESSION_PAGE, &sessions, &count);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot list the sessions");
                goto out;
        }
        arr = json_array();
        for (size_t i = 0; arr && i < count; i++) {
                const struct store_session *s = &sessions[i];

                if (s->revoked || s->expires_at <= (int64_t) now_ns(CLOCK_REALTIME))
                        continue;
                (void) json_array_append_new(
                        arr,
                        json_pack("{s:I, s:o, s:o, s:b}", "id", (json_int_t) s->id, "created_at",
                                  node_time_json(s->created_at), "expires_at",
                                  node_time_json(s->expires_at), "current", s->id == c.session_id));
        }
        (void) http_reply_json(req, 200, json_pack("{s:o}", "sessions", arr));
out:
        node_store_put(n, st);
}

void node_route_sessions_revoke(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_free_ struct store_session *sessions = NULL;
        const char *param = http_request_param(req, "id");
        size_t count = 0;
        struct store *st = NULL;
        bool found = false;
        uint64_t id = 0;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize(req, &c, AUTH_ACTION_SESSION_REVOKE, AUTH_PERM_WRITE, NULL, "session") <
            0)
                goto out;
        /* Only one's own sessions exist for the caller: another user's id is "not found". */
        r = param && parse_uint(param, 1, INT64_MAX, &id) >= 0
                    ? store_session_list(st, c.user_id, 0, SESSION_PAGE, &sessions, &count)
                    : -ENOENT;
        for (size_t i = 0; r >= 0 && i < count; i++)
                found |= sessions[i].id == (int64_t) id && !sessions[i].revoked;
        if (r >= 0 && !found)
                r = -ENOENT;
        if (r >= 0)
                r = store_session_revoke(st, (int64_t) id);
        if (r < 0) {
                (void) node_reply_denied(req, r, "session");
                goto out;
        }
        node_audit(st, &c, req, "session_revoke", NULL, "session %" PRIu64, id);
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

/* ---- the audit log ---- */

void node_route_audit_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        const char *after_q = http_request_query(req, "after");
        const char *limit_q = http_request_query(req, "limit");
        struct store_audit *recs = NULL;
        uint64_t after = 0, limit = AUDIT_PAGE_DEFAULT;
        size_t count = 0;
        struct store *st = NULL;
        json_t *arr;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_AUDIT_READ, AUTH_PERM_NONE, NULL,
                                   "audit log", "audit") < 0)
                goto out;
        if ((after_q && parse_uint(after_q, 0, INT64_MAX, &after) < 0) ||
            (limit_q && parse_uint(limit_q, 1, STORE_LIST_MAX, &limit) < 0)) {
                (void) http_reply_error(req, 400, "invalid",
                                        "'after' is a record id, 'limit' 1 to %d", STORE_LIST_MAX);
                goto out;
        }
        r = store_audit_list(st, (int64_t) after, (size_t) limit, &recs, &count);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot read the audit log");
                goto out;
        }
        arr = json_array();
        for (size_t i = 0; arr && i < count; i++) {
                _cleanup_free_ char *actor = node_user_name(st, recs[i].actor);

                (void) json_array_append_new(
                        arr,
                        json_pack("{s:I, s:o, s:s?, s:s, s:s?, s:s?, s:s?}", "id",
                                  (json_int_t) recs[i].id, "at", node_time_json(recs[i].at),
                                  "actor", actor, "event", recs[i].event, "object", recs[i].object,
                                  "detail", recs[i].detail, "peer", recs[i].peer));
        }
        (void) http_reply_json(
                req, 200,
                json_pack("{s:o, s:o}", "records", arr, "next_after",
                          count == limit ? json_integer(recs[count - 1].id) : json_null()));
        (void) store_audit_array_free(recs, count);
out:
        node_store_put(n, st);
}
