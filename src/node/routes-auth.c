/* SPDX-License-Identifier: MIT */
/* Who is asking: login, tokens, and the user records. */
#include <errno.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/cert.h"
#include "auth/password.h"
#include "auth/token.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "node/admin.h"
#include "node/node.h"
#include "node/oidc.h"

#define BEARER "Bearer "

static const struct json_field login_fields[] = {
        {"user", JSON_FIELD_STRING, true},
        {"password", JSON_FIELD_STRING, true},
};

static const struct json_field user_create_fields[] = {
        {"name", JSON_FIELD_STRING, true},
        {"password", JSON_FIELD_STRING, true},
        {"rights", JSON_FIELD_STRING, false},
};

static const struct json_field user_approve_fields[] = {
        {"rights", JSON_FIELD_STRING, false},
};

static const struct json_field user_update_fields[] = {
        {"password", JSON_FIELD_STRING, false},
        {"rights", JSON_FIELD_STRING, false},
};

/* A hash to verify against when the user does not exist: the refusal then takes as long. */
static char dummy_hash[AUTH_PASSWORD_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy_hash(void)
{
        char pw[AUTH_PASSWORD_GENERATED_LEN + 1];

        if (auth_password_generate(pw) >= 0)
                (void) auth_password_hash(pw, strlen(pw), dummy_hash);
        sodium_memzero(pw, sizeof(pw));
}

/* argon2id takes 64 MiB per verification: at most two at a time. */
static sem_t verify_slots;
static pthread_once_t verify_once = PTHREAD_ONCE_INIT;

static void init_verify_slots(void)
{
        (void) sem_init(&verify_slots, 0, 2);
}

static int verify_password(const char *hash, const char *password, size_t len)
{
        int r;

        (void) pthread_once(&verify_once, init_verify_slots);
        while (sem_wait(&verify_slots) < 0 && errno == EINTR)
                ;
        r = auth_password_verify(hash, password, len);
        (void) sem_post(&verify_slots);
        return r;
}

static int hash_password(const char *password, size_t len, char hash[static AUTH_PASSWORD_HASH_MAX])
{
        int r;

        (void) pthread_once(&verify_once, init_verify_slots);
        while (sem_wait(&verify_slots) < 0 && errno == EINTR)
                ;
        r = auth_password_hash(password, len, hash);
        (void) sem_post(&verify_slots);
        return r;
}

int node_authorize(struct http_request *req, const struct node_caller *c, enum auth_action action,
                   enum auth_perm perm, const struct store_acl *acl, const char *what)
{
        struct auth_object obj;
        int r;

        if (acl)
                obj = node_acl_object(acl);
        r = auth_check(&c->subject, action, acl ? &obj : NULL, perm);
        if (r < 0)
                (void) node_reply_denied(req, r, what);
        return r;
}

int node_reply_denied(struct http_request *req, int r, const char *what)
{
        if (r == -ENOENT)
                return http_reply_error(req, 404, "not_found", "no such %s", what);
        if (r == -EACCES || r == -EPERM)
                return http_reply_error(req, 403, "forbidden", "you may not do this to this %s",
                                        what);
        return http_reply_errno(req, r, "cannot decide access to the %s", what);
}

int node_parse_body(struct http_request *req, const struct json_field *fields, size_t n,
                    json_t **ret)
{
        struct json_error err = {};
        size_t len;
        const char *body = http_request_body(req, &len);
        json_t *root = NULL;
        int r;

        r = json_parse_strict(body, len, &root, &err);
        if (r >= 0) {
                r = json_check_fields(root, NULL, fields, n, &err);
                if (r < 0)
                        json_decref(root);
        }
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                return r;
        }
        *ret = root;
        return 0;
}

int node_parse_page(struct http_request *req, bool (*id_valid)(const char *id), size_t *limit,
                    int64_t *after_created_at, char after_id[static STORE_JOB_ID_SIZE])
{
        const char *l = http_request_query(req, "limit"),
                   *cursor = http_request_query(req, "cursor");
        uint64_t v;

        if (l) {
                if (parse_uint(l, 1, STORE_LIST_MAX, &v) < 0) {
                        (void) http_reply_error(req, 400, "invalid", "'limit' is 1 to %d",
                                                STORE_LIST_MAX);
                        return -EINVAL;
                }
                *limit = (size_t) v;
        }
        if (cursor) {
                /* "<created_at ns>.<id>", as the lists make it */
                const char *dot = strchr(cursor, '.');
                char num[24];

                if (!dot || (size_t) (dot - cursor) >= sizeof(num) || !id_valid(dot + 1)) {
                        (void) http_reply_error(req, 400, "invalid", "'cursor' is malformed");
                        return -EINVAL;
                }
                memcpy(num, cursor, (size_t) (dot - cursor));
                num[dot - cursor] = '\0';
                if (parse_uint(num, 0, INT64_MAX, &v) < 0) {
                        (void) http_reply_error(req, 400, "invalid", "'cursor' is malformed");
                        return -EINVAL;
                }
                *after_created_at = (int64_t) v;
                (void) snprintf(after_id, STORE_JOB_ID_SIZE, "%s", dot + 1);
        }
        return 0;
}

/* ---- login throttling: failures per account and per address, in a fixed window ---- */

/*
 * The table is bounded, so a new key takes the place of another: an empty or expired entry if
 * there is one, else the one with the fewest failures (the oldest of those). A flood of new keys
 * (names that do not exist, addresses of a botnet) thus evicts its own one-failure entries, not
 * the counter of an account under attack that has reached its limit.
 */
static struct node_throttle_entry *throttle_find(struct node *n, const char *key, int64_t now,
                                                 bool create)
{
        struct node_throttle_entry *victim = NULL;
        int64_t window = (int64_t) n->opts.login_window_s * 1000000000;

        for (size_t i = 0; i < NODE_THROTTLE_ENTRIES; i++) {
                struct node_throttle_entry *e = &n->throttle[i];
                bool expired = !e->key[0] || now - e->window_start >= window;

                if (e->key[0] && strcmp(e->key, key) == 0) {
                        if (expired) {
                                e->failures = 0;
                                e->window_start = now;
                        }
                        return e;
                }
                if (expired) {
                        if (!victim || victim->failures > 0)
                                victim = e;
                        e->failures = 0;
                        e->key[0] = '\0';
                } else if (!victim || e->failures < victim->failures ||
                           (e->failures == victim->failures &&
                            e->window_start < victim->window_start))
                        victim = e;
        }
        if (!create || !victim)
                return NULL;
        (void) snprintf(victim->key, sizeof(victim->key), "%s", key);
        victim->failures = 0;
        victim->window_start = now;
        return victim;
}

/* Seconds until the key may try again, or 0. */
static int64_t throttle_check(struct node *n, const char *key, unsigned max, int64_t now)
{
        struct node_throttle_entry *e = throttle_find(n, key, now, false);
        int64_t window = (int64_t) n->opts.login_window_s * 1000000000;

        if (!e || e->failures < max)
                return 0;
        return (e->window_start + window - now) / 1000000000 + 1;
}

static void throttle_fail(struct node *n, const char *key, int64_t now)
{
        struct node_throttle_entry *e = throttle_find(n, key, now, true);

        if (e)
                e->failures++;
}

/* The caller record of user u (active), authenticated by session_id (0: a client certificate). */
static int caller_fill(struct store *st, struct http_request *req, const struct store_user *u,
                       enum node_auth_method method, int64_t session_id, struct node_caller *ret)
{
        int64_t *groups = NULL;
        size_t n_groups = 0;
        int r;

        r = store_user_groups(st, u->id, &groups, &n_groups);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot authenticate");
                return r;
        }
        *ret = (struct node_caller){
                .user_id = u->id,
                .session_id = session_id,
                .method = method,
                .rights = (enum auth_rights) u->rights,
                .groups = groups,
                .n_groups = n_groups,
        };
        (void) snprintf(ret->name, sizeof(ret->name), "%s", u->name);
        ret->subject = (struct auth_subject){
                .user = u->id,
                .rights = (enum auth_rights) u->rights,
                .groups = ret->groups,
                .n_groups = n_groups,
        };
        return 0;
}

/*
 * Mutual TLS: the client presented n certificates in the handshake (which checked nothing of
 * them); they name the caller only if they verify against the node's client CAs and CRLs, and
 * the user their CN names exists and is active. Any other outcome is a 401 that says why: a
 * certificate that was presented is never ignored into an anonymous request.
 */
static int authenticate_cert(struct node *n, struct store *st, struct http_request *req,
                             const void *const *ders, const size_t *lens, size_t k,
                             struct node_caller *ret)
{
        _cleanup_(store_user_clear) struct store_user u = {};
        struct cert_peer peer = {};
        int r;

        r = cert_trust_verify(n->opts.client_trust, ders, lens, k, time(NULL), &peer);
        if (r < 0) {
                node_audit(st, NULL, req, "login_cert_failed", NULL, "the certificate %s",
                           cert_verify_strerror(r));
                (void) http_reply_error(req, 401, "unauthorized", "the client certificate %s",
                                        cert_verify_strerror(r));
                return -EACCES;
        }
        r = store_user_get_by_name(st, peer.cn, &u);
        if (r >= 0 && u.state != STORE_USER_ACTIVE)
                r = -EACCES;
        if (r == -ENOENT || r == -EACCES) {
                node_audit(st, NULL, req, "login_cert_failed", peer.cn,
                           "serial %s: no such active user", peer.serial);
                (void) http_reply_error(req, 401, "unauthorized",
                                        "the client certificate names user '%s', who does not "
                                        "exist or is not active",
                                        peer.cn);
                return -EACCES;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot authenticate");
                return r;
        }
        r = caller_fill(st, req, &u, NODE_AUTH_CERTIFICATE, 0, ret);
        if (r < 0)
                return r;
        node_audit(st, ret, req, "login_cert", u.name, "serial %s", peer.serial);
        return 0;
}

/*
 * The names a new user of an OpenID Connect identity may take, best first: the username claim
 * when it is a valid user name, then "oidc-" and 20 hex digits of SHA-256(issuer NUL subject),
 * which no two identities share in practice. A name that is taken is never the identity's: a
 * token saying "preferred_username": "admin" does not make its bearer the local admin.
 */
static size_t oidc_names(const struct jwt_claims *cl, char names[2][STORE_NAME_MAX + 1])
{
        uint8_t digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_state h;
        size_t k = 0;
        char hex[2 * sizeof(digest) + 1];

        if (cl->username && store_name_valid(cl->username))
                (void) snprintf(names[k++], STORE_NAME_MAX + 1, "%s", cl->username);
        (void) crypto_hash_sha256_init(&h);
        (void) crypto_hash_sha256_update(&h, (const uint8_t *) cl->iss, strlen(cl->iss) + 1);
        (void) crypto_hash_sha256_update(&h, (const uint8_t *) cl->sub, strlen(cl->sub));
        (void) crypto_hash_sha256_final(&h, digest);
        (void) sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
        (void) snprintf(names[k++], STORE_NAME_MAX + 1, "oidc-%.20s", hex);
        return k;
}

/*
 * A verified identity the node has not seen: a user of its own, active standard_user (admission
 * "auto") or pending with no rights until an administrator approves it ("approval"). Two first
 * requests of one identity may race: the loser finds the winner's binding.
 */
static int oidc_admit(struct node *n, struct store *st, struct http_request *req,
                      const struct jwt_claims *cl, int64_t *ret_id)
{
        const bool automatic = n->opts.admission == NODE_ADMISSION_AUTO;
        const struct store_acl acl = {.mode = 0700};
        char names[2][STORE_NAME_MAX + 1];
        size_t k = oidc_names(cl, names);
        int r = -EEXIST;

        for (size_t i = 0; i < k && r == -EEXIST; i++) {
                r = store_identity_create_user(st, cl->iss, cl->sub, names[i],
                                               automatic ? AUTH_RIGHTS_STANDARD : AUTH_RIGHTS_NONE,
                                               automatic ? STORE_USER_ACTIVE : STORE_USER_PENDING,
                                               &acl, ret_id);
                if (r == -EEXIST && store_identity_lookup(st, cl->iss, cl->sub, ret_id) >= 0)
                        return 0;
                if (r >= 0) {
                        const struct node_caller who = {.user_id = *ret_id};

                        node_audit(st, &who, req, automatic ? "user_admit" : "user_pending",
                                   names[i], "issuer %s subject %s", cl->iss, cl->sub);
                }
        }
        if (r == -EEXIST) {
                (void) http_reply_error(req, 409, "conflict",
                                        "no user name is free for this identity");
                return r;
        }
        if (r < 0)
                (void) http_reply_errno(req, r, "cannot create the user");
        return r;
}

/*
 * An OpenID Connect bearer token. Each refusal counts as a failed login of the address, so that
 * a flood of forged tokens is throttled (and its audit records bounded) like password guessing.
 */
static int authenticate_oidc(struct node *n, struct store *st, struct http_request *req,
                             const char *token, struct node_caller *ret)
{
        _cleanup_(jwt_claims_clear) struct jwt_claims cl = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        enum jwt_error reason = JWT_OK;
        int64_t now = (int64_t) now_ns(CLOCK_MONOTONIC), wait_s, id;
        char akey[80], retry[32];
        int r;

        (void) snprintf(akey, sizeof(akey), "a:%s", http_request_peer(req));
        (void) pthread_mutex_lock(&n->throttle_lock);
        wait_s = throttle_check(n, akey, n->opts.login_addr_max, now);
        (void) pthread_mutex_unlock(&n->throttle_lock);
        if (wait_s > 0) {
                (void) snprintf(retry, sizeof(retry), "%lld", (long long) wait_s);
                (void) http_request_add_header(req, "Retry-After", retry);
                (void) http_reply_error(req, 429, "rate_limited",
                                        "too many refused credentials; retry in %lld seconds",
                                        (long long) wait_s);
                return -EACCES;
        }
        r = node_oidc_verify(n->opts.oidc, token, &cl, &reason);
        if (r == -EKEYREJECTED) {
                (void) pthread_mutex_lock(&n->throttle_lock);
                throttle_fail(n, akey, now);
                (void) pthread_mutex_unlock(&n->throttle_lock);
                node_audit(st, NULL, req, "login_oidc_failed", NULL, "%s",
                           jwt_error_to_string(reason));
                (void) http_request_add_header(req, "WWW-Authenticate",
                                               "Bearer error=\"invalid_token\"");
                (void) http_reply_error(req, 401, "unauthorized", "the bearer token is refused: %s",
                                        jwt_error_to_string(reason));
                return -EACCES;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot check the token");
                return r;
        }
        r = store_identity_lookup(st, cl.iss, cl.sub, &id);
        if (r == -ENOENT)
                r = oidc_admit(n, st, req, &cl, &id);
        else if (r < 0)
                (void) http_reply_errno(req, r, "cannot authenticate");
        if (r < 0)
                return r;
        r = store_user_get(st, id, &u);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot authenticate");
                return r;
        }
        if (u.state == STORE_USER_PENDING) {
                (void) http_reply_error(req, 403, "pending_approval",
                                        "the account '%s' awaits an administrator's approval",
                                        u.name);
                return -EACCES;
        }
        if (u.state != STORE_USER_ACTIVE) {
                (void) http_reply_error(req, 401, "unauthorized", "the account '%s' is disabled",
                                        u.name);
                return -EACCES;
        }
        return caller_fill(st, req, &u, NODE_AUTH_OIDC, 0, ret);
}

int node_authenticate(struct node *n, struct store *st, struct http_request *req,
                      struct node_caller *ret)
{
        _cleanup_(store_user_clear) struct store_user u = {};
        uint8_t hash[AUTH_TOKEN_HASH_LEN];
        const char *h = http_request_header(req, "Authorization");
        const void *ders[CERT_CHAIN_MAX];
        size_t lens[CERT_CHAIN_MAX], k;
        const char *token;
        int64_t user_id, session_id;
        int r;

        /* A bearer token, when there is one, wins over a client certificate. */
        if (!h && n->opts.client_trust) {
                k = http_request_client_certs(req, ders, lens, CERT_CHAIN_MAX);
                if (k > 0)
                        return authenticate_cert(n, st, req, ders, lens, k, ret);
        }
        if (!h) {
                (void) http_request_add_header(req, "WWW-Authenticate", "Bearer");
                (void) http_reply_error(req, 401, "unauthorized",
                                        n->opts.client_trust
                                                ? "a bearer token or a client certificate is "
                                                  "required"
                                                : "a bearer token is required");
                return -EACCES;
        }
        if (strncasecmp(h, BEARER, strlen(BEARER)) != 0) {
                (void) http_reply_error(req, 401, "unauthorized",
                                        "the Authorization header must be 'Bearer <token>'");
                return -EACCES;
        }
        token = h + strlen(BEARER);
        if (n->opts.oidc && jwt_looks_like(token, strlen(token)))
                return authenticate_oidc(n, st, req, token, ret);
        r = auth_token_hash(token, strlen(token), hash);
        if (r >= 0)
                r = store_session_lookup(st, hash, (int64_t) now_ns(CLOCK_REALTIME), &user_id,
                                         &session_id);
        if (r >= 0)
                r = store_user_get(st, user_id, &u);
        if (r >= 0 && u.state != STORE_USER_ACTIVE)
                r = -EACCES;
        if (r == -EINVAL || r == -ENOENT || r == -EACCES) {
                (void) http_reply_error(req, 401, "unauthorized",
                                        "the token is unknown, expired or revoked");
                return -EACCES;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot authenticate");
                return r;
        }
        return caller_fill(st, req, &u, NODE_AUTH_TOKEN, session_id, ret);
}

char *node_user_name(struct store *st, int64_t id)
{
        _cleanup_(store_user_clear) struct store_user u = {};

        if (id <= 0 || store_user_get(st, id, &u) < 0)
                return NULL;
        return TAKE_PTR(u.name);
}

json_t *node_user_json(struct store *st, const struct store_user *u)
{
        _cleanup_free_ int64_t *groups = NULL;
        size_t n = 0;
        json_t *names = json_array();

        if (names && store_user_groups(st, u->id, &groups, &n) >= 0)
                for (size_t i = 0; i < n; i++) {
                        _cleanup_(store_group_clear) struct store_group g = {};

                        if (store_group_get(st, groups[i], &g) >= 0)
                                (void) json_array_append_new(names, json_string(g.name));
                }
        return json_pack("{s:s, s:s?, s:s?, s:o?, s:o}", "name", u->name, "rights",
                         auth_rights_to_string((enum auth_rights) u->rights), "state",
                         store_user_state_to_string(u->state), "groups", names, "created_at",
                         node_time_json(u->created_at));
}

void node_route_login(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(store_user_clear) struct store_user u = {};
        char token[AUTH_TOKEN_LEN + 1];
        uint8_t hash[AUTH_TOKEN_HASH_LEN];
        char ukey[80], akey[80], retry[32];
        const char *name, *password;
        size_t name_len, password_len;
        struct json_error err = {};
        struct store *st = NULL;
        int64_t now = (int64_t) now_ns(CLOCK_MONOTONIC), wait_s, expires, sid;
        int r;

        if (node_parse_body(req, login_fields, ELEMENTSOF(login_fields), &root) < 0)
                return;
        r = json_get_string(root, "user", STORE_NAME_MAX, &name, &name_len, &err);
        if (r >= 0)
                r = json_get_string(root, "password", AUTH_PASSWORD_MAX, &password, &password_len,
                                    &err);
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                return;
        }

        r = node_store_get(n, &st);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot open the store");
                return;
        }
        (void) snprintf(ukey, sizeof(ukey), "u:%s", name);
        (void) snprintf(akey, sizeof(akey), "a:%s", http_request_peer(req));
        (void) pthread_mutex_lock(&n->throttle_lock);
        wait_s = throttle_check(n, ukey, n->opts.login_user_max, now);
        if (wait_s == 0)
                wait_s = throttle_check(n, akey, n->opts.login_addr_max, now);
        (void) pthread_mutex_unlock(&n->throttle_lock);
        if (wait_s > 0) {
                (void) snprintf(retry, sizeof(retry), "%lld", (long long) wait_s);
                (void) http_request_add_header(req, "Retry-After", retry);
                node_audit(st, NULL, req, "login_throttled", name, NULL);
                (void) http_reply_error(req, 429, "rate_limited",
                                        "too many failed logins; retry in %lld seconds",
                                        (long long) wait_s);
                goto out;
        }

        r = store_name_valid(name) ? store_user_get_by_name(st, name, &u) : -ENOENT;
        if (r == -ENOENT || (r >= 0 && !u.password_hash)) {
                (void) pthread_once(&dummy_once, make_dummy_hash);
                (void) verify_password(dummy_hash, password, password_len);
                r = -EACCES;
        } else if (r >= 0)
                r = verify_password(u.password_hash, password, password_len);
        if (r >= 0 && u.state != STORE_USER_ACTIVE)
                r = -EACCES;
        if (r == -EACCES || r == -EINVAL) {
                (void) pthread_mutex_lock(&n->throttle_lock);
                throttle_fail(n, ukey, now);
                throttle_fail(n, akey, now);
                (void) pthread_mutex_unlock(&n->throttle_lock);
                node_audit(st, NULL, req, "login_failed", name, NULL);
                (void) http_reply_error(req, 401, "unauthorized", "wrong user name or password");
                goto out;
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot check the password");
                goto out;
        }

        expires = (int64_t) now_ns(CLOCK_REALTIME) + (int64_t) n->opts.token_ttl_s * 1000000000;
        r = auth_token_new(token, hash);
        if (r >= 0)
                r = store_session_create(st, u.id, hash, expires, &sid);
        if (r < 0) {
                sodium_memzero(token, sizeof(token));
                (void) http_reply_errno(req, r, "cannot create a session");
                goto out;
        }
        {
                const struct node_caller who = {.user_id = u.id};

                node_audit(st, &who, req, "login", u.name, "session %lld", (long long) sid);
        }
        (void) http_reply_json(req, 200,
                               json_pack("{s:s, s:o, s:o}", "token", token, "expires_at",
                                         node_time_json(expires), "user", node_user_json(st, &u)));
        sodium_memzero(token, sizeof(token));
out:
        node_store_put(n, st);
}

int node_begin(struct node *n, struct http_request *req, struct store **st,
               struct node_caller *caller)
{
        int r = node_store_get(n, st);

        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot open the store");
                return r;
        }
        r = node_authenticate(n, *st, req, caller);
        if (r < 0) {
                node_store_put(n, *st);
                *st = NULL;
        }
        return r;
}

void node_route_logout(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (c.method != NODE_AUTH_TOKEN) {
                /* A client certificate or a JWT: there is no session to end. */
                (void) http_reply_error(req, 400, "bad_request",
                                        "authenticated by a %s: there is no session to end",
                                        c.method == NODE_AUTH_OIDC ? "OpenID Connect token"
                                                                   : "client certificate");
                node_store_put(n, st);
                return;
        }
        r = store_session_revoke(st, c.session_id);
        if (r < 0)
                (void) http_reply_errno(req, r, "cannot revoke the session");
        else
                (void) http_reply_json(req, 204, NULL);
        node_store_put(n, st);
}

/* Answers 200 with the user's JSON as it is now. */
static void reply_user(struct http_request *req, struct store *st, int64_t id)
{
        _cleanup_(store_user_clear) struct store_user u = {};
        int r = store_user_get(st, id, &u);

        if (r < 0)
                (void) http_reply_errno(req, r, "cannot read the user");
        else
                (void) http_reply_json(req, 200, node_user_json(st, &u));
}

void node_route_whoami(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store *st = NULL;

        _cleanup_(store_user_clear) struct store_user u = {};
        static const char *const methods[] = {
                [NODE_AUTH_TOKEN] = "token",
                [NODE_AUTH_CERTIFICATE] = "certificate",
                [NODE_AUTH_OIDC] = "oidc",
        };
        json_t *j;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        r = store_user_get(st, c.user_id, &u);
        j = r >= 0 ? node_user_json(st, &u) : NULL;
        if (j && json_object_set_new(j, "auth", json_string(methods[c.method])) < 0)
                j = (json_decref(j), NULL);
        if (!j)
                (void) http_reply_errno(req, r < 0 ? r : -ENOMEM, "cannot read the user");
        else
                (void) http_reply_json(req, 200, j);
        node_store_put(n, st);
}

static int get_password(struct http_request *req, const json_t *root, const char **ret,
                        size_t *ret_len)
{
        struct json_error err = {};
        int r = json_get_string(root, "password", AUTH_PASSWORD_MAX, ret, ret_len, &err);

        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                return r;
        }
        if (r > 0 && (*ret_len < AUTH_PASSWORD_MIN || memchr(*ret, '\0', *ret_len))) {
                (void) http_reply_error(req, 400, "invalid",
                                        "a password is %d to %d bytes without NUL",
                                        AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
                return -EINVAL;
        }
        return r;
}

static int get_rights(struct http_request *req, const json_t *root, enum auth_rights *ret)
{
        const json_t *v = json_object_get(root, "rights");

        if (!v)
                return 0;
        if (auth_rights_from_string(json_string_value(v), ret) < 0 || *ret == AUTH_RIGHTS_NONE) {
                (void) http_reply_error(req, 400, "invalid",
                                        "'rights' is 'standard_user', 'administrator' or "
                                        "'worker_user'");
                return -EINVAL;
        }
        return 1;
}

void node_route_users_create(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        _cleanup_json_ json_t *root = NULL;
        enum auth_rights rights = AUTH_RIGHTS_STANDARD;
        char hash[AUTH_PASSWORD_HASH_MAX];
        const struct store_acl acl = {.mode = 0700};
        struct json_error err = {};
        const char *name, *password;
        size_t name_len, password_len;
        struct store *st = NULL;
        int64_t id;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_USER_INSERT, AUTH_PERM_NONE, NULL,
                                   "user", "users") < 0)
                goto out;
        if (node_parse_body(req, user_create_fields, ELEMENTSOF(user_create_fields), &root) < 0)
                goto out;
        r = json_get_string(root, "name", STORE_NAME_MAX, &name, &name_len, &err);
        if (r < 0) {
                (void) http_reply_error(req, err.status, err.code, "%s", err.message);
                goto out;
        }
        if (!store_name_valid(name)) {
                (void) http_reply_error(req, 400, "invalid",
                                        "a user name is 1 to 64 of [a-z0-9_.-], starting with a "
                                        "letter");
                goto out;
        }
        if (get_password(req, root, &password, &password_len) < 0 ||
            get_rights(req, root, &rights) < 0)
                goto out;
        r = hash_password(password, password_len, hash);
        if (r >= 0)
                r = store_user_create(st, name, hash, rights, STORE_USER_ACTIVE, &acl, &id);
        if (r == -EEXIST) {
                (void) http_reply_error(req, 409, "conflict", "the user '%s' exists", name);
                goto out;
        }
        if (r >= 0)
                r = store_user_get(st, id, &u);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot create the user");
                goto out;
        }
        node_audit(st, &c, req, "user_create", name, "rights %s", auth_rights_to_string(rights));
        (void) http_reply_json(req, 201, node_user_json(st, &u));
out:
        node_store_put(n, st);
}

void node_route_users_list(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        struct store_user *users = NULL;
        const char *state;
        size_t count = 0;
        int64_t after = 0;
        struct store *st = NULL;
        json_t *arr;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (node_authorize_audited(st, req, &c, AUTH_ACTION_USER_LIST, AUTH_PERM_NONE, NULL, "user",
                                   "users") < 0)
                goto out;
        state = http_request_query(req, "state");
        if (state && store_user_state_from_string(state) < 0) {
                (void) http_reply_error(req, 400, "invalid",
                                        "'state' is 'active', 'pending' or 'disabled'");
                goto out;
        }
        arr = json_array();
        for (;;) {
                r = store_user_list(st, after, STORE_LIST_MAX, &users, &count);
                if (r < 0 || !arr)
                        break;
                for (size_t i = 0; i < count; i++)
                        if (!state || users[i].state == store_user_state_from_string(state))
                                (void) json_array_append_new(arr, node_user_json(st, &users[i]));
                if (count > 0)
                        after = users[count - 1].id;
                users = store_user_array_free(users, count);
                if (count < STORE_LIST_MAX)
                        break;
        }
        if (r < 0 || !arr) {
                json_decref(arr);
                (void) http_reply_errno(req, r < 0 ? r : -ENOMEM, "cannot list the users");
                goto out;
        }
        (void) http_reply_json(req, 200, json_pack("{s:o}", "users", arr));
out:
        node_store_put(n, st);
}

/* The user named in the path, if the caller may do action to it; else answered. */
static int lookup_user(struct http_request *req, struct store *st, const struct node_caller *c,
                       enum auth_action action, enum auth_perm perm, struct store_user *ret)
{
        const char *name = http_request_param(req, "name");
        int r;

        r = node_authorize_audited(st, req, c, action, perm, NULL, "user", name);
        if (r < 0)
                return r;
        r = name && store_name_valid(name) ? store_user_get_by_name(st, name, ret) : -ENOENT;
        if (r < 0)
                return node_reply_denied(req, r, "user"), r;
        r = node_authorize_audited(st, req, c, action, perm, &ret->acl, "user", name);
        if (r < 0)
                store_user_clear(ret);
        return r;
}

void node_route_users_get(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        struct store *st = NULL;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_user(req, st, &c, AUTH_ACTION_USER_GET, AUTH_PERM_READ, &u) >= 0)
                (void) http_reply_json(req, 200, node_user_json(st, &u));
        node_store_put(n, st);
}

void node_route_users_update(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        _cleanup_json_ json_t *root = NULL;
        enum auth_rights rights;
        char hash[AUTH_PASSWORD_HASH_MAX];
        const char *password = NULL;
        size_t password_len = 0;
        struct store *st = NULL;
        int has_password, has_rights, r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_user(req, st, &c, AUTH_ACTION_USER_UPDATE, AUTH_PERM_WRITE, &u) < 0)
                goto out;
        if (node_parse_body(req, user_update_fields, ELEMENTSOF(user_update_fields), &root) < 0)
                goto out;
        has_password = get_password(req, root, &password, &password_len);
        if (has_password < 0)
                goto out;
        has_rights = get_rights(req, root, &rights);
        if (has_rights < 0)
                goto out;
        if (has_rights) {
                if (node_authorize_audited(st, req, &c, AUTH_ACTION_USER_SET_RIGHTS, AUTH_PERM_NONE,
                                           NULL, "user", "user rights") < 0)
                        goto out;
                r = store_user_set_rights(st, u.id, rights);
                if (r < 0) {
                        (void) http_reply_errno(req, r, "cannot change the rights");
                        goto out;
                }
                node_audit(st, &c, req, "user_rights", u.name, "rights %s -> %s",
                           auth_rights_to_string((enum auth_rights) u.rights),
                           auth_rights_to_string(rights));
        }
        if (has_password) {
                r = hash_password(password, password_len, hash);
                if (r >= 0)
                        r = store_user_set_password_hash(st, u.id, hash);
                /* A new password ends every other session of the user. */
                if (r >= 0)
                        r = store_session_revoke_user(st, u.id, NULL);
                if (r < 0) {
                        (void) http_reply_errno(req, r, "cannot change the password");
                        goto out;
                }
                node_audit(st, &c, req, "user_password", u.name, NULL);
        }
        reply_user(req, st, u.id);
out:
        node_store_put(n, st);
}

void node_route_users_delete(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        struct store *st = NULL;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_user(req, st, &c, AUTH_ACTION_USER_DELETE, AUTH_PERM_WRITE, &u) < 0)
                goto out;
        if (u.id == c.user_id) {
                (void) http_reply_error(req, 409, "conflict", "you cannot delete yourself");
                goto out;
        }
        r = store_user_delete(st, u.id);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot delete the user");
                goto out;
        }
        node_audit(st, &c, req, "user_delete", u.name, NULL);
        (void) http_reply_json(req, 204, NULL);
out:
        node_store_put(n, st);
}

/*
 * POST /users/{name}/approve: an account held by admission "approval" becomes active, with the
 * rights the body asks for (default standard_user). Only a pending account can be approved; the
 * refusal of one is its deletion.
 */
void node_route_users_approve(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        _cleanup_(node_caller_clear) struct node_caller c = {};
        _cleanup_(store_user_clear) struct store_user u = {};
        _cleanup_json_ json_t *root = NULL;
        enum auth_rights rights = AUTH_RIGHTS_STANDARD;
        struct store *st = NULL;
        size_t len = 0;
        int r;

        if (node_begin(n, req, &st, &c) < 0)
                return;
        if (lookup_user(req, st, &c, AUTH_ACTION_USER_APPROVE, AUTH_PERM_WRITE, &u) < 0)
                goto out;
        (void) http_request_body(req, &len);
        if (len > 0 && (node_parse_body(req, user_approve_fields, ELEMENTSOF(user_approve_fields),
                                        &root) < 0 ||
                        get_rights(req, root, &rights) < 0))
                goto out;
        if (u.state != STORE_USER_PENDING) {
                (void) http_reply_error(req, 409, "not_pending",
                                        "the user '%s' is %s, not pending approval", u.name,
                                        store_user_state_to_string(u.state));
                goto out;
        }
        r = store_user_set_rights(st, u.id, rights);
        if (r >= 0)
                r = store_user_set_state(st, u.id, STORE_USER_ACTIVE);
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot approve the user");
                goto out;
        }
        node_audit(st, &c, req, "user_approve", u.name, "rights %s", auth_rights_to_string(rights));
        reply_user(req, st, u.id);
out:
        node_store_put(n, st);
}
