/* SPDX-License-Identifier: MIT */
/*
 * Data objects over the API (docs/api.md, "Data"). An upload is a raw body: it is streamed into
 * a temporary file of the blob store while it is digested and scanned for certificates and keys,
 * never held in memory; the caller is authenticated and the query checked before a byte of it
 * is read. The blob gets its name (its SHA-256) and the row its digest and size in one step
 * under the node's data lock; a deletion removes the row, and the blob only if nothing else
 * names its digest (store_data_delete()), under the same lock.
 *
 * Every read of the content goes through blob_open(), which checks the size and the SHA-256
 * before the first byte is handed out: a damaged object is answered 500 data_corrupt (and
 * audited), never served.
 *
 * Confidential data (auth/cert.h tells it by its content) is stored 0700 without a group,
 * whatever was asked; no acl change may widen it (routes-admin.c, and the store's CHECK), and it
 * is never a job's input: it never reaches a sandbox or a worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/cert.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "node/admin.h"
#include "node/node.h"

/* ---- JSON ---- */

static json_t *data_json(struct store *st, const struct store_data *d)
{
        _cleanup_(store_group_clear) struct store_group g = {};
        _cleanup_free_ char *owner = node_user_name(st, d->acl.owner);

        if (d->acl.group > 0)
                (void) store_group_get(st, d->acl.group, &g);
        return json_pack("{s:s, s:s, s:I, s:s, s:s?, s:s?, s:o, s:b, s:o}", "id", d->id, "name",
                         d->name, "size", (json_int_t) d->size, "sha256", d->sha256, "owner", owner,
                         "group", g.name, "mode", json_sprintf("%04o", d->acl.mode), "confidential",
                         d->confidential, "created_at", node_time_json(d->created_at));
}

/* "0700", "700": 0..0777. */
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

/* ---- upload ---- */

struct upload {
        struct node *node;
        struct node_caller caller;
        char *name;
        struct store_acl acl; /* as asked (owner: the caller) */
        struct blob_writer *writer;
        struct cert_scan *scan;
};

static void upload_free(void *p)
{
        struct upload *u = p;

        if (!u)
                return;
        node_caller_clear(&u->caller);
        free(u->name);
        (void) blob_writer_free(u->writer);
        (void) cert_scan_free(u->scan);
        free(u);
}

DEFINE_FREE_FUNC(struct upload *, upload_free)

/* Before the body: who, what name, which mode and group. Answers and fails, or gives the sink. */
static int upload_open(struct http_request *req, void *userdata, void **ret_sink)
{
        struct node *n = userdata;
        _cleanup_(upload_freep) struct upload *u = NULL;
        const char *name = http_request_query(req, "name");
        const char *mode = http_request_query(req, "mode");
        const char *group = http_request_query(req, "group");
        struct store *st = NULL;
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->node = n;
        if (node_begin(n, req, &st, &u->caller) < 0)
                return -EACCES; /* answered */
        u->acl = (struct store_acl){.owner = u->caller.user_id, .group = 0, .mode = 0700};

        r = node_authorize_audited(st, req, &u->caller, AUTH_ACTION_DATA_INSERT, AUTH_PERM_NONE,
                                   NULL, "data", "data");
        if (r < 0)
                goto out;
        if (!name || !store_data_name_valid(name)) {
                r = http_reply_error(req, 400, "invalid",
                                     "'name' is a file name: 1 to %d bytes of UTF-8, no '/' nor "
                                     "control character, not '.' or '..'",
                                     STORE_DATA_NAME_MAX);
                r = -EINVAL;
                goto out;
        }
        if (mode && parse_mode(mode, &u->acl.mode) < 0) {
                (void) http_reply_error(req, 400, "invalid",
                                        "'mode' is octal, 0 to 0777, e.g. 0700");
                r = -EINVAL;
                goto out;
        }
        r = auth_check_insert(&u->caller.subject, AUTH_ACTION_DATA_INSERT, u->acl.mode);
        if (r < 0) {
                (void) node_reply_denied(req, r, "data");
                goto out;
        }
        if (group && group[0]) {
                _cleanup_(store_group_clear) struct store_group g = {};
                bool member = false;

                r = store_name_valid(group) ? store_group_get_by_name(st, group, &g) : -ENOENT;
                if (r < 0) {
                        (void) http_reply_error(req, 404, "not_found", "no such group");
                        goto out;
                }
                for (size_t i = 0; i < u->caller.n_groups; i++)
                        member |= u->caller.groups[i] == g.id;
                if (!member && u->caller.rights != AUTH_RIGHTS_ADMIN) {
                        (void) http_reply_error(req, 403, "forbidden",
                                                "you are not a member of the group '%s'", group);
                        r = -EPERM;
                        goto out;
                }
                u->acl.group = g.id;
        }
        if (atomic_load(&n->stopping)) {
                (void) http_reply_error(req, 503, "unavailable", "the node is stopping");
                r = -ESHUTDOWN;
                goto out;
        }
        u->name = strdup(name);
        if (!u->name) {
                r = -ENOMEM;
                goto out;
        }
        r = cert_scan_new(&u->scan);
        if (r >= 0)
                r = blob_writer_new(n->blobs, n->opts.data_max, &u->writer);
        if (r < 0) {
                log_error_errno(r, "event=data_upload_error user='%s': %m", u->caller.name);
                goto out;
        }
        *ret_sink = TAKE_PTR(u);
        r = 0;
out:
        node_store_put(n, st);
        return r;
}

static int upload_write(void *sink, const void *data, size_t len)
{
        struct upload *u = sink;
        int r;

        r = blob_writer_write(u->writer, data, len);
        if (r < 0)
                return r;
        return cert_scan_feed(u->scan, data, len);
}

const struct http_raw_body node_data_upload_body = {
        .media_type = "application/octet-stream",
        .open = upload_open,
        .write = upload_write,
        .close = upload_free,
};

void node_route_data_create(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        struct upload *u = http_request_sink(req);
        _cleanup_(store_data_clear) struct store_data d = {};
        char sha[BLOB_HEX_SIZE], id[STORE_DATA_ID_SIZE], object[64];
        struct store *st = NULL;
        bool confidential;
        uint64_t size = 0;
        int r;

        if (!u) {
                (void) http_reply_errno(req, -EIO, "the upload was not opened");
                return;
        }
        r = node_store_get(n, &st);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot open the store");
                return;
        }
        confidential = cert_scan_confidential(u->scan);
        if (confidential)
                /* whatever was asked: a certificate or a key stays its owner's alone */
                u->acl = (struct store_acl){.owner = u->caller.user_id, .group = 0, .mode = 0700};

        (void) pthread_mutex_lock(&n->data_lock);
        r = blob_writer_commit(u->writer, sha, &size);
        if (r >= 0)
                r = store_data_insert(st, u->name, size, sha, confidential, &u->acl, id);
        (void) pthread_mutex_unlock(&n->data_lock);
        if (r >= 0)
                r = store_data_get(st, id, &d);
        if (r < 0) {
                log_error_errno(r, "event=data_upload_error user='%s': %m", u->caller.name);
                (void) http_reply_errno(req, r, "cannot store the data");
                goto out;
        }
        (void) snprintf(object, sizeof(object), "data:%s", id);
        node_audit(st, &u->caller, req, "data_upload", object,
                   "name '%s' size %" PRIu64 " sha256 %s mode %04o%s", d.name, d.size, d.sha256,
                   d.acl.mode, d.confidential ? " confidential" : "");
        (void) http_reply_json(req, 201, data_json(st, &d));
out:
        node_store_put(n, st);
}

/* ---- reading, deleting ---- */

/* The data named in the path, if the caller may do action (perm) to it; else answered. */
static int lookup_data(struct http_request *req, struct store *st, const struct node_caller *c,
                       enum auth_action action, enum auth_perm perm, struct store_data *ret)
{
        const char *id = http_request_param(req, "id");
        int r;

        r = node_authorize_audited(st, req, c, action, perm, NULL, "data", id);
        if (r < 0)
                return r;
        r = id && store_data_id_valid(id) ? store_data_get(st, id, ret) : -ENOENT;
        if (r < 0)
                return node_reply_denied(req, r, "data"), r;
        r = node_authorize_audited(st, req, c, action, perm, &ret->acl, "data", id);
        if (r < 0)
                store_data_clear(ret);
        return r;
}

void node_route_data_get(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_data_clear) struct store_data d = {};
        struct store *st = NULL;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_data(req, st, &c, AUTH_ACTION_DATA_GET, AUTH_PERM_READ, &d) >= 0)
                (void) http_reply_json(req, 200, data_json(st, &d));
        node_store_put(n, st);
}

void node_route_data_content(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_data_clear) struct store_data d = {};
        struct store *st = NULL;
        char object[64];
        int fd = -EBADF, r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_data(req, st, &c, AUTH_ACTION_DATA_GET, AUTH_PERM_READ, &d) < 0)
                goto out;
        /* size and SHA-256 checked before a byte is sent */
        r = blob_open(n->blobs, d.sha256, d.size, &fd);
        if (r == -EBADMSG || r == -ENOENT) {
                (void) snprintf(object, sizeof(object), "data:%s", d.id);
                log_error("event=data_corrupt data=%s sha256=%s %s", d.id, d.sha256,
                          r == -ENOENT ? "missing" : "damaged");
                node_audit(st, &c, req, "data_corrupt", object, "sha256 %s %s", d.sha256,
                           r == -ENOENT ? "missing" : "size or digest mismatch");
                (void) http_reply_error(req, 500, "data_corrupt",
                                        "the stored data does not match its size and SHA-256");
                goto out;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot read the data");
                goto out;
        }
        (void) http_request_add_header(req, "X-Warren-SHA256", d.sha256);
        (void) http_reply_fd(req, 200, "application/octet-stream", fd, d.size);
out:
        node_store_put(n, st);
}

void node_route_data_delete(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_data_clear) struct store_data d = {};
        struct store *st = NULL;
        bool unreferenced = false;
        char object[64];
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_data(req, st, &c, AUTH_ACTION_DATA_DELETE, AUTH_PERM_WRITE, &d) < 0)
                goto out;
        (void) pthread_mutex_lock(&n->data_lock);
        r = store_data_delete(st, d.id, &unreferenced);
        if (r >= 0 && unreferenced) {
                int k = blob_remove(n->blobs, d.sha256);

                if (k < 0 && k != -ENOENT)
                        log_warning_errno(k, "event=blob_remove_error data=%s sha256=%s: %m", d.id,
                                          d.sha256);
        }
        (void) pthread_mutex_unlock(&n->data_lock);
        if (r < 0) {
                (void) node_reply_denied(req, r, "data");
                goto out;
        }
        (void) snprintf(object, sizeof(object), "data:%s", d.id);
        node_audit(st, &c, req, "data_delete", object, "name '%s' sha256 %s%s", d.name, d.sha256,
                   unreferenced ? " (blob removed)" : "");
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

void node_route_data_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store_data_filter f = {.limit = NODE_DATA_PAGE_DEFAULT};
        char after_id[STORE_DATA_ID_SIZE] = "";
        struct store_data *list = NULL;
        size_t count = 0;
        struct store *st = NULL;
        json_t *arr, *next = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize(req, &c, AUTH_ACTION_DATA_LIST, AUTH_PERM_NONE, NULL, "data") < 0)
                goto out;
        if (node_parse_page(req, store_data_id_valid, &f.limit, &f.after_created_at, after_id) < 0)
                goto out;
        if (after_id[0])
                f.after_id = after_id;
        f.by_reader = true;
        f.reader = c.user_id;
        f.reader_is_admin = c.rights == AUTH_RIGHTS_ADMIN;
        f.reader_groups = c.groups;
        f.n_reader_groups = c.n_groups;
        r = store_data_list(st, &f, &list, &count);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot list the data");
                goto out;
        }
        arr = json_array();
        for (size_t i = 0; arr && i < count; i++)
                (void) json_array_append_new(arr, data_json(st, &list[i]));
        if (count == f.limit && count > 0)
                next = json_sprintf("%" PRId64 ".%s", list[count - 1].created_at,
                                    list[count - 1].id);
        (void) store_data_array_free(list, count);
        (void) http_reply_json(
                req, 200,
                json_pack("{s:o, s:o}", "data", arr, "next_cursor", next ? next : json_null()));
out:
        node_store_put(n, st);
}

/* ---- job inputs ---- */

int node_check_inputs(struct node *n, struct store *st, struct http_request *req,
                      const struct node_caller *c, const struct jobspec *js)
{
        uint64_t total = 0;
        int r;

        for (size_t i = 0; i < js->n_inputs; i++) {
                _cleanup_(store_data_clear) struct store_data d = {};
                const char *id = js->inputs[i].data;
                struct auth_object obj;

                r = store_data_get(st, id, &d);
                if (r >= 0) {
                        obj = node_acl_object(&d.acl);
                        r = auth_check(&c->subject, AUTH_ACTION_DATA_USE, &obj, AUTH_PERM_EXEC);
                }
                if (r == -ENOENT)
                        return http_reply_error(req, 404, "not_found",
                                                "no such data '%s' (input %zu)", id, i),
                               r;
                if (r == -EACCES || r == -EPERM) {
                        char object[64];

                        (void) snprintf(object, sizeof(object), "data:%s", id);
                        node_audit(st, c, req, "denied", object, "data_use");
                        return http_reply_error(req, 403, "forbidden",
                                                "you may not use the data '%s' (input %zu) as an "
                                                "input: it lacks the execute permission",
                                                id, i),
                               r;
                }
                if (r < 0)
                        return http_reply_errno(req, r, "cannot read the data '%s'", id), r;
                if (d.confidential)
                        return http_reply_error(req, 422, "confidential_data",
                                                "the data '%s' (input %zu) is a certificate or a "
                                                "key: it never leaves the master",
                                                id, i),
                               -EPERM;
                total += d.size;
                if (total > n->opts.work_size)
                        return http_reply_error(req, 413, "too_large",
                                                "the inputs are larger than a job's work "
                                                "directory (%" PRIu64 " bytes)",
                                                n->opts.work_size),
                               -E2BIG;
        }
        return 0;
}
