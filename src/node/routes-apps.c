/* SPDX-License-Identifier: MIT */
/* Apps over the API: listed by what the caller may read, changed by what it may write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "node/admin.h"
#include "node/app.h"
#include "node/node.h"

static json_t *mode_json(uint32_t mode)
{
        return json_sprintf("%04o", mode);
}

/* The app's public JSON: its spec, and who owns it. */
static json_t *app_json(struct store *st, const struct store_app *a)
{
        _cleanup_(app_spec_done) struct app_spec spec = {};
        _cleanup_free_ char *owner = NULL, *group = NULL;
        _cleanup_(store_group_clear) struct store_group g = {};
        struct json_error err = {};
        json_t *o;

        if (!a->spec || app_spec_decode(a->spec, strlen(a->spec), &spec, &err) < 0)
                o = json_pack("{s:s, s:s}", "name", a->name, "description",
                              a->description ? a->description : "");
        else
                o = app_spec_to_json(&spec);
        if (!o)
                return NULL;
        owner = node_user_name(st, a->acl.owner);
        if (a->acl.group > 0 && store_group_get(st, a->acl.group, &g) >= 0)
                group = TAKE_PTR(g.name);
        if (json_object_set_new(o, "owner", owner ? json_string(owner) : json_null()) < 0 ||
            json_object_set_new(o, "group", group ? json_string(group) : json_null()) < 0 ||
            json_object_set_new(o, "mode", mode_json(a->acl.mode)) < 0 ||
            json_object_set_new(o, "created_at", node_time_json(a->created_at)) < 0 ||
            json_object_set_new(o, "updated_at", node_time_json(a->updated_at)) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

void node_route_apps_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store *st = NULL;
        int64_t after = 0;
        json_t *arr = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        r = auth_check(&c.subject, AUTH_ACTION_APP_LIST, NULL, AUTH_PERM_NONE);
        if (r < 0) {
                (void) node_reply_denied(req, r, "app");
                goto out;
        }
        arr = json_array();
        r = arr ? 0 : -ENOMEM;
        while (r >= 0) {
                struct store_app *apps = NULL;
                size_t count = 0;

                r = store_app_list(st, after, STORE_LIST_MAX, &apps, &count);
                if (r < 0)
                        break;
                for (size_t i = 0; i < count; i++) {
                        _cleanup_(store_app_clear) struct store_app full = {};
                        struct auth_object obj = node_acl_object(&apps[i].acl);

                        if (auth_check(&c.subject, AUTH_ACTION_APP_GET, &obj, AUTH_PERM_READ) < 0)
                                continue;
                        if (store_app_get(st, apps[i].id, &full) >= 0)
                                (void) json_array_append_new(arr, app_json(st, &full));
                }
                if (count > 0)
                        after = apps[count - 1].id;
                (void) store_app_array_free(apps, count);
                if (count < STORE_LIST_MAX)
                        break;
        }
        if (r < 0) {
                json_decref(arr);
                (void) http_reply_errno(req, r, "cannot list the apps");
                goto out;
        }
        (void) http_reply_json(req, 200, json_pack("{s:o}", "apps", arr));
out:
        node_store_put(n, st);
}

/* The app named in the path, if the caller may do action (perm) to it; else answered. */
static int lookup_app(struct http_request *req, struct store *st, const struct node_caller *c,
                      enum auth_action action, enum auth_perm perm, struct store_app *ret)
{
        const char *name = http_request_param(req, "name");
        int r;

        r = node_authorize_audited(st, req, c, action, perm, NULL, "app", name);
        if (r < 0)
                return r;
        r = name && store_name_valid(name) ? store_app_get_by_name(st, name, ret) : -ENOENT;
        if (r < 0)
                return node_reply_denied(req, r, "app"), r;
        r = node_authorize_audited(st, req, c, action, perm, &ret->acl, "app", name);
        if (r < 0)
                store_app_clear(ret);
        return r;
}

void node_route_apps_get(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_app_clear) struct store_app a = {};
        struct store *st = NULL;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_app(req, st, &c, AUTH_ACTION_APP_GET, AUTH_PERM_READ, &a) >= 0)
                (void) http_reply_json(req, 200, app_json(st, &a));
        node_store_put(n, st);
}

/* Decodes the body as an app spec and renders its canonical text; answered on failure. */
static int decode_body(struct http_request *req, struct app_spec *spec, char **ret_text)
{
        struct json_error err = {};
        size_t len;
        const char *body = http_request_body(req, &len);
        json_t *o;
        int r;

        r = app_spec_decode(body, len, spec, &err);
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                return r;
        }
        o = app_spec_to_json(spec);
        *ret_text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        if (!*ret_text) {
                (void) http_reply_errno(req, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        return 0;
}

void node_route_apps_create(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(app_spec_done) struct app_spec spec = {};
        _cleanup_(store_app_clear) struct store_app a = {};
        _cleanup_free_ char *text = NULL;
        struct store_acl acl;
        struct store *st = NULL;
        int64_t id;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        /* Administrators publish apps; everyone else keeps theirs private. */
        acl = (struct store_acl){.owner = c.user_id,
                                 .mode = c.rights == AUTH_RIGHTS_ADMIN ? 0755 : 0700};
        r = auth_check_insert(&c.subject, AUTH_ACTION_APP_INSERT, acl.mode);
        if (r < 0) {
                (void) node_reply_denied(req, r, "app");
                goto out;
        }
        if (decode_body(req, &spec, &text) < 0)
                goto out;
        r = store_app_create(st, spec.name, spec.description, text, &acl, &id);
        if (r == -EEXIST) {
                (void) http_reply_error(req, 409, "conflict", "the app '%s' exists", spec.name);
                goto out;
        }
        if (r >= 0)
                r = store_app_get(st, id, &a);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot create the app");
                goto out;
        }
        node_audit(st, &c, req, "app_create", spec.name, NULL);
        (void) http_reply_json(req, 201, app_json(st, &a));
out:
        node_store_put(n, st);
}

void node_route_apps_replace(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(app_spec_done) struct app_spec spec = {};
        _cleanup_(store_app_clear) struct store_app a = {};
        _cleanup_(store_app_clear) struct store_app after = {};
        _cleanup_free_ char *text = NULL;
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_app(req, st, &c, AUTH_ACTION_APP_UPDATE, AUTH_PERM_WRITE, &a) < 0)
                goto out;
        if (decode_body(req, &spec, &text) < 0)
                goto out;
        if (strcmp(spec.name, a.name) != 0) {
                (void) http_reply_error(req, 400, "invalid",
                                        "the body's 'name' must be the app's name, '%s'", a.name);
                goto out;
        }
        r = store_app_update(st, a.id, spec.description, text);
        if (r >= 0)
                r = store_app_get(st, a.id, &after);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot change the app");
                goto out;
        }
        node_audit(st, &c, req, "app_update", a.name, NULL);
        (void) http_reply_json(req, 200, app_json(st, &after));
out:
        node_store_put(n, st);
}

void node_route_apps_delete(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_app_clear) struct store_app a = {};
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_app(req, st, &c, AUTH_ACTION_APP_DELETE, AUTH_PERM_WRITE, &a) < 0)
                goto out;
        r = store_app_delete(st, a.id);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot delete the app");
                goto out;
        }
        node_audit(st, &c, req, "app_delete", a.name, NULL);
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

int node_apps_seed(struct store *st, int64_t owner)
{
        const struct store_acl acl = {.owner = owner, .mode = 0755};

        for (size_t i = 0; i < app_builtin_count(); i++) {
                _cleanup_(app_spec_done) struct app_spec spec = {};
                _cleanup_(store_app_clear) struct store_app a = {};
                _cleanup_free_ char *text = NULL;
                const char *json = app_builtin_json(i);
                struct json_error err = {};
                json_t *o;
                int r;

                r = app_spec_decode(json, strlen(json), &spec, &err);
                if (r < 0)
                        return log_error_errno(r, "The ready-made app #%zu is invalid: %s", i,
                                               err.message);
                r = store_app_get_by_name(st, spec.name, &a);
                if (r >= 0)
                        continue; /* an administrator's copy (changed, or kept) stands */
                if (r != -ENOENT)
                        return r;
                o = app_spec_to_json(&spec);
                text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                json_decref(o);
                if (!text)
                        return -ENOMEM;
                r = store_app_create(st, spec.name, spec.description, text, &acl, NULL);
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        return 0;
}
