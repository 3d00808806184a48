/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY — delete at the merge with the real schema v5 (store.c implements these).
 *
 * A stand-in for the store's workers and worker tokens (store.h, "workers and replicas"), only
 * so that the branch "workerapi" (the /api/v1/workers routes and `warren worker`) builds and its
 * tests run before the real implementation lands. It is crude on purpose:
 *   - its tables are stub_workers and stub_worker_tokens, created if missing on each call, so
 *     that they never collide with the real migration's tables;
 *   - store_worker_create() is not one transaction: it makes the worker_user account with
 *     store_user_create(), then the row, and deletes the account if the row fails;
 *   - only the functions the API calls are here (no redeem, no replicas).
 * It reaches into struct store, whose layout it copies from store.c.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "store/store.h"

struct store {
        sqlite3 *db; /* as in store.c */
};

static const char z85_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";

static const char *const confinement_names[_STORE_WORKER_CONFINEMENT_MAX] = {
        [STORE_WORKER_PUBLIC] = "public",
        [STORE_WORKER_GROUP] = "group",
        [STORE_WORKER_PRIVATE] = "private",
};

const char *store_worker_confinement_to_string(enum store_worker_confinement c)
{
        if ((unsigned) c >= _STORE_WORKER_CONFINEMENT_MAX)
                return NULL;
        return confinement_names[c];
}

enum store_worker_confinement store_worker_confinement_from_string(const char *s)
{
        for (int i = 0; s && i < _STORE_WORKER_CONFINEMENT_MAX; i++)
                if (strcmp(s, confinement_names[i]) == 0)
                        return (enum store_worker_confinement) i;
        return _STORE_WORKER_CONFINEMENT_INVALID;
}

bool store_curve_key_valid(const char *key)
{
        if (!key)
                return false;
        for (size_t i = 0; i < STORE_CURVE_KEY_LEN; i++)
                if (key[i] == '\0' || !strchr(z85_alphabet, key[i]))
                        return false;
        return key[STORE_CURVE_KEY_LEN] == '\0';
}

void store_worker_clear(struct store_worker *w)
{
        if (!w)
                return;
        free(w->name);
        *w = (struct store_worker){};
}

struct store_worker *store_worker_array_free(struct store_worker *w, size_t n)
{
        for (size_t i = 0; w && i < n; i++)
                store_worker_clear(&w[i]);
        free(w);
        return NULL;
}

static int stub_errno(int rc)
{
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                return -EEXIST;
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
                return -EBUSY;
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return -EINVAL;
        return -EIO;
}

static void finalizep(sqlite3_stmt **st)
{
        if (*st)
                (void) sqlite3_finalize(*st);
}

static int stub_schema(struct store *s)
{
        int rc = sqlite3_exec(s->db,
                              "CREATE TABLE IF NOT EXISTS stub_workers ("
                              "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                              "  name TEXT NOT NULL UNIQUE,"
                              "  public_key TEXT NOT NULL UNIQUE,"
                              "  confinement INTEGER NOT NULL,"
                              "  group_id INTEGER NOT NULL,"
                              "  owner_id INTEGER NOT NULL,"
                              "  user_id INTEGER NOT NULL,"
                              "  errors INTEGER NOT NULL DEFAULT 0,"
                              "  created_at INTEGER NOT NULL,"
                              "  last_seen INTEGER NOT NULL DEFAULT 0);"
                              "CREATE TABLE IF NOT EXISTS stub_worker_tokens ("
                              "  hash BLOB PRIMARY KEY,"
                              "  confinement INTEGER NOT NULL,"
                              "  group_id INTEGER NOT NULL,"
                              "  owner_id INTEGER NOT NULL,"
                              "  expires_at INTEGER NOT NULL);",
                              NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : stub_errno(rc);
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **ret)
{
        int r = stub_schema(s), rc;

        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);
        return rc == SQLITE_OK ? 0 : stub_errno(rc);
}

static int step_done(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        return rc == SQLITE_DONE ? 0 : stub_errno(sqlite3_extended_errcode(sqlite3_db_handle(st)));
}

static int check_confinement(struct store *s, enum store_worker_confinement c, int64_t group_id,
                             int64_t owner_id)
{
        switch (c) {
        case STORE_WORKER_PUBLIC:
                return group_id == 0 && owner_id == 0 ? 0 : -EINVAL;
        case STORE_WORKER_GROUP: {
                _cleanup_(store_group_clear) struct store_group g = {};

                if (group_id <= 0 || owner_id != 0)
                        return -EINVAL;
                return store_group_get(s, group_id, &g);
        }
        case STORE_WORKER_PRIVATE: {
                _cleanup_(store_user_clear) struct store_user u = {};

                if (owner_id <= 0 || group_id != 0)
                        return -EINVAL;
                return store_user_get(s, owner_id, &u);
        }
        case _STORE_WORKER_CONFINEMENT_MAX:
        case _STORE_WORKER_CONFINEMENT_INVALID:
        default:
                return -EINVAL;
        }
}

#define WORKER_COLUMNS                                                                         \
        "id, name, public_key, confinement, group_id, owner_id, user_id, errors, created_at, " \
        "last_seen"

static int worker_from_row(sqlite3_stmt *st, struct store_worker *ret)
{
        const char *name = (const char *) sqlite3_column_text(st, 1);
        const char *key = (const char *) sqlite3_column_text(st, 2);
        struct store_worker w = {
                .id = sqlite3_column_int64(st, 0),
                .confinement = (enum store_worker_confinement) sqlite3_column_int(st, 3),
                .group_id = sqlite3_column_int64(st, 4),
                .owner_id = sqlite3_column_int64(st, 5),
                .user_id = sqlite3_column_int64(st, 6),
                .errors = (uint64_t) sqlite3_column_int64(st, 7),
                .created_at = sqlite3_column_int64(st, 8),
                .last_seen = sqlite3_column_int64(st, 9),
        };

        w.name = strdup(name ? name : "");
        if (!w.name)
                return -ENOMEM;
        (void) snprintf(w.public_key, sizeof(w.public_key), "%s", key ? key : "");
        *ret = w;
        return 0;
}

static int worker_get(struct store *s, const char *where, int64_t id, const char *text,
                      struct store_worker *ret)
{
        _cleanup_(finalizep) sqlite3_stmt *st = NULL;
        char sql[256];
        int r, rc;

        (void) snprintf(sql, sizeof(sql), "SELECT " WORKER_COLUMNS " FROM stub_workers WHERE %s",
                        where);
        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        if (text)
                (void) sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        else
                (void) sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return stub_errno(rc);
        return worker_from_row(st, ret);
}

int store_worker_get(struct store *s, int64_t id, struct store_worker *ret)
{
        return worker_get(s, "id = ?", id, NULL, ret);
}

int store_worker_get_by_name(struct store *s, const char *name, struct store_worker *ret)
{
        if (!store_name_valid(name))
                return -EINVAL;
        return worker_get(s, "name = ?", 0, name, ret);
}

int store_worker_get_by_key(struct store *s, const char *public_key, struct store_worker *ret)
{
        if (!store_curve_key_valid(public_key))
                return -EINVAL;
        return worker_get(s, "public_key = ?", 0, public_key, ret);
}

int store_worker_create(struct store *s, const char *name, const char *public_key,
                        enum store_worker_confinement confinement, int64_t group_id,
                        int64_t owner_id, int worker_rights, int64_t *ret_id)
{
        _cleanup_(finalizep) sqlite3_stmt *st = NULL;
        _cleanup_(store_worker_clear) struct store_worker other = {};
        const struct store_acl acl = {.mode = 0700};
        int64_t user_id;
        int r;

        if (!store_name_valid(name) || !store_curve_key_valid(public_key))
                return -EINVAL;
        r = check_confinement(s, confinement, group_id, owner_id);
        if (r < 0)
                return r;
        r = store_worker_get_by_key(s, public_key, &other);
        if (r >= 0)
                return -EEXIST;
        if (r != -ENOENT)
                return r;
        r = store_worker_get_by_name(s, name, &other);
        if (r >= 0)
                return -EEXIST;
        if (r != -ENOENT)
                return r;
        r = store_user_create(s, name, NULL, worker_rights, STORE_USER_ACTIVE, &acl, &user_id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO stub_workers (name, public_key, confinement, group_id, owner_id, "
                    "user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &st);
        if (r >= 0) {
                (void) sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
                (void) sqlite3_bind_text(st, 2, public_key, -1, SQLITE_STATIC);
                (void) sqlite3_bind_int(st, 3, (int) confinement);
                (void) sqlite3_bind_int64(st, 4, group_id);
                (void) sqlite3_bind_int64(st, 5, owner_id);
                (void) sqlite3_bind_int64(st, 6, user_id);
                (void) sqlite3_bind_int64(st, 7, (int64_t) now_ns(CLOCK_REALTIME));
                r = step_done(st);
        }
        if (r < 0) {
                (void) store_user_delete(s, user_id);
                return r;
        }
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_worker_list(struct store *s, int64_t after_id, size_t limit, struct store_worker **ret,
                      size_t *ret_n)
{
        _cleanup_(finalizep) sqlite3_stmt *st = NULL;
        struct store_worker *arr = NULL;
        size_t n = 0;
        int r, rc;

        if (limit < 1 || limit > STORE_LIST_MAX)
                return -EINVAL;
        r = prepare(s,
                    "SELECT " WORKER_COLUMNS " FROM stub_workers WHERE id > ? ORDER BY id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(st, 1, after_id);
        (void) sqlite3_bind_int64(st, 2, (int64_t) limit);
        arr = calloc(limit, sizeof(*arr));
        if (!arr)
                return -ENOMEM;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = worker_from_row(st, &arr[n]);
                if (r < 0) {
                        (void) store_worker_array_free(arr, n);
                        return r;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                (void) store_worker_array_free(arr, n);
                return stub_errno(rc);
        }
        *ret = arr;
        *ret_n = n;
        return 0;
}

int store_worker_delete(struct store *s, int64_t id)
{
        _cleanup_(finalizep) sqlite3_stmt *st = NULL;
        _cleanup_(store_worker_clear) struct store_worker w = {};
        int r;

        r = store_worker_get(s, id, &w);
        if (r < 0)
                return r;
        r = prepare(s, "DELETE FROM stub_workers WHERE id = ?", &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(st, 1, id);
        r = step_done(st);
        if (r < 0)
                return r;
        r = store_user_delete(s, w.user_id);
        return r == -ENOENT ? 0 : r;
}

int store_worker_token_create(struct store *s,
                              const uint8_t hash[static STORE_WORKER_TOKEN_HASH_SIZE],
                              enum store_worker_confinement confinement, int64_t group_id,
                              int64_t owner_id, int64_t expires_at)
{
        _cleanup_(finalizep) sqlite3_stmt *st = NULL;
        int r;

        r = check_confinement(s, confinement, group_id, owner_id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO stub_worker_tokens (hash, confinement, group_id, owner_id, "
                    "expires_at) VALUES (?, ?, ?, ?, ?)",
                    &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_blob(st, 1, hash, STORE_WORKER_TOKEN_HASH_SIZE, SQLITE_STATIC);
        (void) sqlite3_bind_int(st, 2, (int) confinement);
        (void) sqlite3_bind_int64(st, 3, group_id);
        (void) sqlite3_bind_int64(st, 4, owner_id);
        (void) sqlite3_bind_int64(st, 5, expires_at);
        return step_done(st);
}
