/* SPDX-License-Identifier: MIT */
/*
 * OpenID Connect: the node's one configured issuer, its keys (a JWKS file) and the check of a
 * bearer JWT against them. The keys are re-read when the file changes (an identity provider
 * rotates its keys; the administrator replaces the file), at most once a second and only when
 * its inode, size or mtime moved; a file that no longer parses keeps the previous keys and says
 * so in the log, so a half-written file never locks everyone out or lets anyone in.
 */
#include "node/oidc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define RELOAD_INTERVAL_NS (INT64_C(1000000000))

struct node_oidc {
        char *issuer, *audience, *jwks_file, *username_claim;
        pthread_mutex_t lock;
        struct jwt_keyset *keys; /* under lock */
        struct stat seen;        /* the file the keys came from */
        int64_t checked_at;      /* monotonic ns of the last stat() */
};

struct node_oidc *node_oidc_free(struct node_oidc *o)
{
        if (!o)
                return NULL;
        free(o->issuer);
        free(o->audience);
        free(o->jwks_file);
        free(o->username_claim);
        (void) jwt_keyset_free(o->keys);
        (void) pthread_mutex_destroy(&o->lock);
        free(o);
        return NULL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Loads the JWKS file into *ret, and its stat into *ret_st: one log line on failure. */
static int load_keys(const char *path, struct jwt_keyset **ret, struct stat *ret_st)
{
        _cleanup_free_ char *error = NULL;
        struct stat st;
        int r;

        if (stat(path, &st) < 0)
                return log_error_errno(-errno, "Failed to read the JWKS file '%s': %m", path);
        r = jwt_keyset_load(path, ret, &error);
        if (r < 0 && error)
                return log_error_errno(r, "the JWKS file '%s' is refused: %s", path, error);
        if (r < 0)
                return log_error_errno(r, "Failed to read the JWKS file '%s': %m", path);
        /* A shared secret in a file others may read lets them forge any token. */
        if (jwt_keyset_has_secret(*ret) && (st.st_uid != geteuid() || (st.st_mode & 077))) {
                *ret = jwt_keyset_free(*ret);
                return log_error_errno(-EPERM,
                                       "the JWKS file '%s' holds a shared secret (HS*) and is "
                                       "not private to the node's user (owner uid %u, mode "
                                       "%04o); run 'chmod 600 %s'",
                                       path, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777),
                                       path);
        }
        *ret_st = st;
        return 0;
}

int node_oidc_new(const char *issuer, const char *audience, const char *jwks_file,
                  const char *username_claim, struct node_oidc **ret)
{
        struct node_oidc *o;
        int r;

        if (!issuer || !audience || !jwks_file || !username_claim)
                return -EINVAL;
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        r = -pthread_mutex_init(&o->lock, NULL);
        if (r < 0) {
                free(o);
                return r;
        }
        o->issuer = strdup(issuer);
        o->audience = strdup(audience);
        o->jwks_file = strdup(jwks_file);
        o->username_claim = strdup(username_claim);
        if (!o->issuer || !o->audience || !o->jwks_file || !o->username_claim) {
                (void) node_oidc_free(o);
                return -ENOMEM;
        }
        r = load_keys(jwks_file, &o->keys, &o->seen);
        if (r < 0) {
                (void) node_oidc_free(o);
                return r;
        }
        if (jwt_keyset_size(o->keys) == 0) {
                (void) node_oidc_free(o);
                return log_error_errno(-ENOKEY, "the JWKS file '%s' holds no key", jwks_file);
        }
        o->checked_at = (int64_t) now_ns(CLOCK_MONOTONIC);
        *ret = o;
        return 0;
}

const char *node_oidc_issuer(const struct node_oidc *o)
{
        return o->issuer;
}

/* Under o->lock: picks up a changed file. */
static void maybe_reload(struct node_oidc *o)
{
        struct jwt_keyset *keys = NULL;
        int64_t now = (int64_t) now_ns(CLOCK_MONOTONIC);
        struct stat st;

        if (now - o->checked_at < RELOAD_INTERVAL_NS)
                return;
        o->checked_at = now;
        if (stat(o->jwks_file, &st) < 0) {
                log_warning("event=oidc_keys_kept file=%s reason=\"%s\"", o->jwks_file,
                            strerror(errno));
                return;
        }
        if (same_file(&st, &o->seen))
                return;
        if (load_keys(o->jwks_file, &keys, &st) < 0) {
                o->seen = st; /* not again until it changes once more */
                log_warning("event=oidc_keys_kept file=%s", o->jwks_file);
                return;
        }
        (void) jwt_keyset_free(o->keys);
        o->keys = keys;
        o->seen = st;
        log_info("event=oidc_keys_loaded file=%s keys=%zu", o->jwks_file, jwt_keyset_size(keys));
}

int node_oidc_verify(struct node_oidc *o, const char *token, struct jwt_claims *ret,
                     enum jwt_error *ret_reason)
{
        const struct jwt_expect expect = {
                .issuer = o->issuer,
                .audience = o->audience,
                .now = (int64_t) time(NULL),
                .leeway = NODE_OIDC_LEEWAY_S,
                .username_claim = o->username_claim,
        };
        int r;

        (void) pthread_mutex_lock(&o->lock);
        maybe_reload(o);
        r = jwt_verify(o->keys, token, strlen(token), &expect, ret, ret_reason);
        (void) pthread_mutex_unlock(&o->lock);
        return r;
}
