/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The store: Warren's durable state (users, groups, sessions, apps, jobs, the audit log) in one
 * SQLite file.
 *
 * Threads. A `struct store` wraps ONE SQLite connection and is not thread-safe: each thread of
 * the node opens its own store on the same file (SQLite's WAL lets readers run beside one writer;
 * writers take turns, waiting up to STORE_BUSY_TIMEOUT_MS before -EBUSY). Never share a store
 * between threads, and never use one in a child after fork().
 *
 * Durability. The file is in WAL mode with synchronous=FULL: when a writing function returns 0,
 * its change is in the WAL and fdatasync'd, so it survives kill -9 and power loss. Each writing
 * function is one transaction (one fsync); no function leaves a transaction open, but
 * store_batch_begin(), whose transaction store_batch_end() ends.
 *
 * Errors. Every fallible function returns >= 0 on success or a negative errno; SQLite's codes never
 * leave this module:
 *   -EEXIST   a unique name, token hash or membership already exists
 *   -ENOENT   the object (or one it refers to: user, group, app, an acl's owner or group) does not
 *             exist
 *   -ESTALE   a job or replica is not in the state (or lease) the caller expected
 *             (compare-and-set lost)
 *   -EINVAL   invalid argument (bad name, mode, state, limit, job id)
 *   -E2BIG    a text is longer than its STORE_*_MAX, or a set would exceed its bound (the
 *             groups of a user, the members of a group); audit texts are cut instead
 *   -EBUSY    another connection held the write lock for longer than the busy timeout
 *   -EBADMSG  the file is not a database, or is corrupt
 *   -EPROTONOSUPPORT  the file's schema is newer than this program
 *   -ECANCELED  the open batch's transaction was lost (see store_batch_begin())
 *   -ENOSPC, -EIO, -ENOMEM, -EROFS  as usual
 *
 * Ownership. Pointer parameters are borrowed. Records returned to the caller (struct store_user,
 * store_group, store_app, store_job, store_audit) own their strings: release them with
 * store_*_clear(), which frees the strings and zeroes the record, and which is usable as a
 * cleanup attribute:
 *         _cleanup_(store_job_clear) struct store_job job = {};
 * Arrays returned by the list functions are released with store_*_array_free() (sessions, group
 * ids and member ids: free()). Out parameters (ret_*) are written only on success.
 *
 * Times are Unix time in nanoseconds (int64_t, CLOCK_REALTIME), everywhere; 0 means "not yet"
 * (started_at, finished_at). Ids of users, groups, sessions, apps and audit records are positive
 * and never reused, even after a deletion, so a new object never inherits permissions granted to a
 * deleted one.
 *
 * Schema. PRAGMA user_version numbers the schema: 1 the first, 2 adds the audit log, 3 the
 * identities of OpenID Connect users, 4 data objects, 5 workers and replicas. store_open()
 * upgrades an older file in place, keeping its data, in one transaction.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define STORE_NAME_MAX          64          /* user, group and app names, in bytes */
#define STORE_PASSWORD_HASH_MAX 512         /* encoded password hash (argon2id: ~100) */
#define STORE_DESCRIPTION_MAX   4096        /* app description */
#define STORE_ERROR_MAX         4096        /* a job's error text */
#define STORE_JSON_MAX          (16u << 20) /* app spec, job spec, job result */
#define STORE_LIST_MAX          1000        /* the largest page a list function returns */
#define STORE_USER_GROUPS_MAX   256         /* groups one user may belong to */
#define STORE_GROUP_MEMBERS_MAX 4096        /* members one group may have */
#define STORE_TOKEN_HASH_SIZE   32          /* a session token's hash, in bytes */
#define STORE_JOB_ID_LEN        32          /* lowercase hex digits of 16 random bytes */
#define STORE_JOB_ID_SIZE       (STORE_JOB_ID_LEN + 1)
#define STORE_BUSY_TIMEOUT_MS   5000
#define STORE_DATA_NAME_MAX     255              /* a data object's name (a file name), in bytes */
#define STORE_DATA_ID_LEN       STORE_JOB_ID_LEN /* data ids look like job ids */
#define STORE_DATA_ID_SIZE      (STORE_DATA_ID_LEN + 1)
#define STORE_SHA256_LEN        64 /* lowercase hex digits of a SHA-256 */
#define STORE_SHA256_SIZE       (STORE_SHA256_LEN + 1)
#define STORE_AUDIT_EVENT_MAX   64  /* an audit event name, in bytes */
#define STORE_AUDIT_OBJECT_MAX  256 /* an audit record's texts, in bytes: longer ones are cut */
#define STORE_AUDIT_DETAIL_MAX  1024
#define STORE_AUDIT_PEER_MAX    64
#define STORE_IDENTITY_TEXT_MAX 256 /* an identity's issuer and subject, in bytes */

struct store;

/* Every object has an owner (user id), a group (group id, 0 = none) and a mode (0..0777). */
struct store_acl {
        int64_t owner;
        int64_t group;
        uint32_t mode;
};

/* The kinds of objects that carry a struct store_acl. */
enum store_kind {
        STORE_KIND_USER,
        STORE_KIND_GROUP,
        STORE_KIND_APP,
        STORE_KIND_JOB,
        STORE_KIND_DATA,
        _STORE_KIND_MAX,
};

/*
 * Opens (creating it 0600 if missing, tightening it to 0600 if it is wider) the database at path
 * and brings its schema to the current version. A symlink at path is refused (-ELOOP).
 */
int store_open(const char *path, struct store **ret);
/* Accepts NULL; returns NULL. */
struct store *store_close(struct store *s);
DEFINE_FREE_FUNC(struct store *, store_close) /* _cleanup_(store_closep) */

/* True if name is 1..STORE_NAME_MAX bytes of [a-z0-9_.-] starting with [a-z]. */
bool store_name_valid(const char *name);

/* ---- users ---- */

enum store_user_state {
        STORE_USER_ACTIVE,
        STORE_USER_PENDING, /* waiting for an administrator's approval */
        STORE_USER_DISABLED,
        _STORE_USER_STATE_MAX,
        _STORE_USER_STATE_INVALID = -EINVAL,
};

/* NULL / -EINVAL for values outside the enum. */
const char *store_user_state_to_string(enum store_user_state state);
enum store_user_state store_user_state_from_string(const char *s);

struct store_user {
        int64_t id;
        char *name;
        char *password_hash; /* NULL for identities without a password */
        int rights;          /* opaque to the store: auth/ defines the levels */
        enum store_user_state state;
        struct store_acl acl;
        int64_t created_at;
};

void store_user_clear(struct store_user *u);
/* Clears n users and frees the array; accepts NULL; returns NULL. */
struct store_user *store_user_array_free(struct store_user *users, size_t n);

/*
 * password_hash may be NULL. acl->owner == 0 makes the new user the owner of its own record.
 * -EEXIST if the name is taken, -EINVAL for a bad name, state or mode.
 */
int store_user_create(struct store *s, const char *name, const char *password_hash, int rights,
                      enum store_user_state state, const struct store_acl *acl, int64_t *ret_id);
int store_user_get(struct store *s, int64_t id, struct store_user *ret);
int store_user_get_by_name(struct store *s, const char *name, struct store_user *ret);
/* Users with id > after_id in id order, at most limit (1..STORE_LIST_MAX); the array may be NULL
 * when *ret_n is 0. */
int store_user_list(struct store *s, int64_t after_id, size_t limit, struct store_user **ret_users,
                    size_t *ret_n);
int store_user_set_password_hash(struct store *s, int64_t id, const char *password_hash);
int store_user_set_rights(struct store *s, int64_t id, int rights);
int store_user_set_state(struct store *s, int64_t id, enum store_user_state state);
/* Deletes the user, its sessions and memberships. Objects it owns keep their owner id (which is
 * never reused); deciding what happens to them is the caller's policy. */
int store_user_delete(struct store *s, int64_t id);

/* ---- identities (OpenID Connect) ---- */

/*
 * An identity is an (issuer, subject) pair that a verified token vouched for; it names one user
 * for good (deleting the user deletes it). Issuer and subject are 1..STORE_IDENTITY_TEXT_MAX
 * bytes, compared byte for byte.
 */

/* The user the identity belongs to; -ENOENT if none. */
int store_identity_lookup(struct store *s, const char *issuer, const char *subject,
                          int64_t *ret_user_id);
/* Creates a user without a password (as store_user_create()) and binds the identity to it, in
 * one transaction. -EEXIST if the name is taken or the identity is already bound. */
int store_identity_create_user(struct store *s, const char *issuer, const char *subject,
                               const char *name, int rights, enum store_user_state state,
                               const struct store_acl *acl, int64_t *ret_id);

/* ---- groups ---- */

struct store_group {
        int64_t id;
        char *name;
        struct store_acl acl;
        int64_t created_at;
};

void store_group_clear(struct store_group *g);
/* Clears n groups and frees the array; accepts NULL; returns NULL. */
struct store_group *store_group_array_free(struct store_group *groups, size_t n);

int store_group_create(struct store *s, const char *name, const struct store_acl *acl,
                       int64_t *ret_id);
int store_group_get(struct store *s, int64_t id, struct store_group *ret);
int store_group_get_by_name(struct store *s, const char *name, struct store_group *ret);
/* Groups with id > after_id in id order, at most limit (1..STORE_LIST_MAX); the array may be NULL
 * when *ret_n is 0. -EINVAL for a bad limit. */
int store_group_list(struct store *s, int64_t after_id, size_t limit, struct store_group **ret,
                     size_t *ret_n);
/* Deletes the group and its memberships. */
int store_group_delete(struct store *s, int64_t id);
/* -ENOENT if the user or the group does not exist, -EEXIST if already a member, -E2BIG if the user
 * is already in STORE_USER_GROUPS_MAX groups or the group already has STORE_GROUP_MEMBERS_MAX
 * members. */
int store_group_add_member(struct store *s, int64_t group_id, int64_t user_id);
/* -ENOENT if not a member. */
int store_group_remove_member(struct store *s, int64_t group_id, int64_t user_id);
/* Returns 1 if the user is a member of the group, 0 if not. */
int store_group_has_member(struct store *s, int64_t group_id, int64_t user_id);
/* The ids of the user's groups, ascending (at most STORE_USER_GROUPS_MAX); free() the array, which
 * may be NULL when *ret_n is 0. */
int store_user_groups(struct store *s, int64_t user_id, int64_t **ret_group_ids, size_t *ret_n);
/*
 * The ids of the group's members, ascending: all of them, as a group has at most
 * STORE_GROUP_MEMBERS_MAX. free() the array, which is NULL when *ret_n is 0 (a group without
 * members). -ENOENT if the group does not exist; -E2BIG if it has more than
 * STORE_GROUP_MEMBERS_MAX (only a file written before the bound, or by hand, can).
 */
int store_group_members(struct store *s, int64_t group_id, int64_t **ret_user_ids, size_t *ret_n);

/* ---- sessions (API tokens) ---- */

/* The token itself is never stored, only its hash (computed by auth/). */
struct store_session {
        int64_t id;
        int64_t user_id;
        int64_t created_at;
        int64_t expires_at;
        bool revoked;
};

/* -ENOENT if the user does not exist, -EEXIST if the hash is already stored. */
int store_session_create(struct store *s, int64_t user_id,
                         const uint8_t token_hash[STORE_TOKEN_HASH_SIZE], int64_t expires_at,
                         int64_t *ret_id);
/*
 * The session whose token has this hash, if it is valid at time now (expires_at > now, not
 * revoked). -ENOENT whether the hash is unknown, expired or revoked: one answer for all three.
 * The user's own state (disabled, pending) is not checked here.
 */
int store_session_lookup(struct store *s, const uint8_t token_hash[STORE_TOKEN_HASH_SIZE],
                         int64_t now, int64_t *ret_user_id, int64_t *ret_session_id);
/* -ENOENT if there is no such session. Revoking a revoked session succeeds. */
int store_session_revoke(struct store *s, int64_t id);
/* Revokes every session of the user; ret_count (may be NULL) gets the number newly revoked. */
int store_session_revoke_user(struct store *s, int64_t user_id, uint64_t *ret_count);
/* The user's sessions with id > after_id, at most limit (1..STORE_LIST_MAX); free() the array. */
int store_session_list(struct store *s, int64_t user_id, int64_t after_id, size_t limit,
                       struct store_session **ret_sessions, size_t *ret_n);
/* Housekeeping: deletes the sessions that are revoked or no longer valid at now. */
int store_session_purge(struct store *s, int64_t now, uint64_t *ret_count);

/* ---- apps ---- */

struct store_app {
        int64_t id;
        char *name;
        char *description; /* never NULL in a record from store_app_get*() */
        char *spec; /* JSON text, opaque to the store; NULL in records from store_app_list() */
        struct store_acl acl;
        int64_t created_at;
        int64_t updated_at;
};

void store_app_clear(struct store_app *a);
struct store_app *store_app_array_free(struct store_app *apps, size_t n);

/* description may be NULL (stored as ""). -EEXIST if the name is taken. */
int store_app_create(struct store *s, const char *name, const char *description, const char *spec,
                     const struct store_acl *acl, int64_t *ret_id);
int store_app_get(struct store *s, int64_t id, struct store_app *ret);
int store_app_get_by_name(struct store *s, const char *name, struct store_app *ret);
/* Apps with id > after_id in id order, at most limit; without their spec (use store_app_get). */
int store_app_list(struct store *s, int64_t after_id, size_t limit, struct store_app **ret_apps,
                   size_t *ret_n);
/* Replaces the description and/or the spec (NULL: unchanged) and sets updated_at. */
int store_app_update(struct store *s, int64_t id, const char *description, const char *spec);
/* Jobs of a deleted app keep their record, with app_id 0. */
int store_app_delete(struct store *s, int64_t id);

/* ---- jobs ---- */

/*
 * queued → running → finished | failed | cancelled, and queued → cancelled.
 * running → queued is the re-queue of a job whose worker disappeared (or of a node restart).
 * failed means Warren's own fault, never the program's.
 */
enum store_job_state {
        STORE_JOB_QUEUED,
        STORE_JOB_RUNNING,
        STORE_JOB_FINISHED,
        STORE_JOB_CANCELLED,
        STORE_JOB_FAILED,
        _STORE_JOB_STATE_MAX,
        _STORE_JOB_STATE_INVALID = -EINVAL,
};

const char *store_job_state_to_string(enum store_job_state state);
enum store_job_state store_job_state_from_string(const char *s);

struct store_job {
        char id[STORE_JOB_ID_SIZE];
        int64_t app_id; /* 0 once the app is deleted */
        struct store_acl acl;
        enum store_job_state state;
        int priority; /* higher runs first */
        int attempts; /* times it was moved to running */
        char *spec;   /* JSON text as submitted; NULL in records from store_job_list() */
        char *result; /* JSON text or NULL; NULL in records from store_job_list() */
        char *error;  /* text or NULL; NULL in records from store_job_list() */
        int64_t created_at;
        int64_t started_at;  /* 0 if never started; the start of the latest attempt */
        int64_t finished_at; /* 0 unless finished, failed or cancelled */
        /* The result's top-level "exit_code", when it is an integer: in every record, lists too
         * (the store reads that one member of the result; the rest stays opaque). */
        bool has_exit_code;
        int exit_code;
};

void store_job_clear(struct store_job *j);
struct store_job *store_job_array_free(struct store_job *jobs, size_t n);

/* True if id is STORE_JOB_ID_LEN lowercase hex digits. */
bool store_job_id_valid(const char *id);

/*
 * Inserts a queued job and returns its id: 32 lowercase hex digits of 16 bytes from getrandom(),
 * never sequential. The job is on disk (fsync'd) when this returns 0. -ENOENT if the app does not
 * exist.
 */
int store_job_insert(struct store *s, int64_t app_id, const struct store_acl *acl, int priority,
                     const char *spec, char ret_id[static STORE_JOB_ID_SIZE]);
/* -EINVAL for a malformed id, -ENOENT for an unknown one. */
int store_job_get(struct store *s, const char *id, struct store_job *ret);

struct store_job_filter {
        int64_t owner; /* 0: every owner (for administrators) */
        bool by_state; /* only jobs in state */
        enum store_job_state state;
        /*
         * by_reader: only the jobs the reader may READ, by the rule of src/auth/access.h (the store
         * does not depend on auth/; test-store checks the two agree): every job if
         * reader_is_admin, else the one class that applies to the reader, exclusively — owner
         * (owner != 0 and owner == reader) needs 0400, else group (group != 0 and in
         * reader_groups) needs 0040, else other needs 0004. The caller has already checked that
         * the reader's rights allow listing jobs at all (workers and anonymous may not).
         */
        bool by_reader;
        int64_t reader;               /* user id, >= 0; 0 (anonymous) owns nothing */
        bool reader_is_admin;         /* reads every job */
        const int64_t *reader_groups; /* ids >= 0 (0 matches nothing); borrowed */
        size_t n_reader_groups;       /* <= STORE_USER_GROUPS_MAX */
        /* The cursor: the created_at and id of the last job of the previous page; after_id NULL
         * (or "") for the first page. */
        int64_t after_created_at;
        const char *after_id;
        size_t limit; /* 1..STORE_LIST_MAX */
};

/* Jobs newest first (created_at, then id, descending), without spec, result and error, that pass
 * every filter. Every job that exists for the whole pagination (with an unchanged acl) appears on
 * exactly one page. -EINVAL for a bad filter, -E2BIG for more than STORE_USER_GROUPS_MAX
 * reader_groups. */
int store_job_list(struct store *s, const struct store_job_filter *filter,
                   struct store_job **ret_jobs, size_t *ret_n);

/*
 * Compare-and-set: moves the job from `from` to `to` if it is in `from`; this is how two actors
 * never both run or both cancel a job. -ESTALE if the job is in another state, -ENOENT if it does
 * not exist, -EINVAL if from → to is not an edge of the state machine. Moving to running counts
 * an attempt and sets started_at; to a final state sets finished_at.
 */
int store_job_transition(struct store *s, const char *id, enum store_job_state from,
                         enum store_job_state to);
/*
 * Ends a job with its result (JSON, may be NULL) and error (may be NULL): finished and failed only
 * from running, cancelled from queued or running. -ESTALE otherwise (already ended, or not yet
 * started), -ENOENT if the job does not exist.
 */
int store_job_finish(struct store *s, const char *id, enum store_job_state state,
                     const char *result, const char *error);
/*
 * Atomically moves the queued job of highest priority (then the oldest) to running, counts the
 * attempt, sets started_at, and returns it (with its spec). -ENOENT when no job is queued. Two
 * connections never claim the same job.
 */
int store_job_claim_next(struct store *s, struct store_job *ret);
/* At start-up: every running job goes back to queued (its attempt stays counted; the next claim
 * counts another). ret_count (may be NULL) gets the number of jobs re-queued. */
int store_jobs_requeue_running(struct store *s, uint64_t *ret_count);
/* The number of jobs in each state, indexed by enum store_job_state. */
int store_job_count_by_state(struct store *s, uint64_t ret_counts[static _STORE_JOB_STATE_MAX]);

/* ---- data ---- */

/*
 * A data object: a named byte string whose content lives in the blob store under its SHA-256;
 * the store keeps its name, size, digest and acl. Confidential data (an X.509 certificate, a
 * private key: the API decides) is private for good: the schema refuses any row where a
 * confidential object has a group or a group or other bit (a CHECK, so no statement can widen
 * it; such an insert or acl change is -EINVAL).
 */
struct store_data {
        char id[STORE_DATA_ID_SIZE];
        char *name;
        uint64_t size;
        char sha256[STORE_SHA256_SIZE];
        bool confidential;
        struct store_acl acl;
        int64_t created_at;
};

void store_data_clear(struct store_data *d);
struct store_data *store_data_array_free(struct store_data *d, size_t n);

/* True if name is 1..STORE_DATA_NAME_MAX bytes of UTF-8 without '/' or a control character
 * (C0, DEL, C1), and not "." or "..": a file name a job's directory can hold. */
bool store_data_name_valid(const char *name);
/* True if id is STORE_DATA_ID_LEN lowercase hex digits. */
bool store_data_id_valid(const char *id);
/* True if s is STORE_SHA256_LEN lowercase hex digits. */
bool store_sha256_valid(const char *s);

/*
 * Inserts a data object and returns its random id (as store_job_insert()). -EINVAL for a bad
 * name, digest or acl, or a confidential acl that is not private (group != 0 or mode & 077).
 */
int store_data_insert(struct store *s, const char *name, uint64_t size, const char *sha256,
                      bool confidential, const struct store_acl *acl,
                      char ret_id[static STORE_DATA_ID_SIZE]);
/* -EINVAL for a malformed id, -ENOENT for an unknown one. */
int store_data_get(struct store *s, const char *id, struct store_data *ret);

/* As struct store_job_filter's reader and cursor fields, with the same rule. */
struct store_data_filter {
        bool by_reader;
        int64_t reader;
        bool reader_is_admin;
        const int64_t *reader_groups;
        size_t n_reader_groups;
        int64_t after_created_at;
        const char *after_id; /* NULL or "": the first page */
        size_t limit;         /* 1..STORE_LIST_MAX */
};

/* Data newest first (created_at, then id, descending) that pass the filter; as store_job_list(). */
int store_data_list(struct store *s, const struct store_data_filter *filter,
                    struct store_data **ret, size_t *ret_n);

/*
 * Deletes the data object, and says in *ret_unreferenced (may be NULL) whether its blob is now
 * unreferenced: no other data object has its digest and no job's spec or result mentions it (a
 * conservative textual test: a job result names its blobs by digest), decided in the same
 * transaction. -ENOENT if there is no such object.
 */
int store_data_delete(struct store *s, const char *id, bool *ret_unreferenced);
/* 1 if a data object has this digest or a job's spec or result mentions it, else 0. */
int store_blob_referenced(struct store *s, const char *sha256);

/* ---- workers and replicas (schema v5; the network: node --role master) ---- */

#define STORE_CURVE_KEY_LEN          40 /* a CURVE public key in Z85 */
#define STORE_CURVE_KEY_SIZE         (STORE_CURVE_KEY_LEN + 1)
#define STORE_LEASE_ID_LEN           32 /* lowercase hex of 16 random bytes */
#define STORE_LEASE_ID_SIZE          (STORE_LEASE_ID_LEN + 1)
#define STORE_WORKER_TOKEN_HASH_SIZE 32
#define STORE_REPLICAS_MAX           16 /* replicas of one job */

/*
 * What a worker may receive (MISSION.md R5): a public worker runs public apps only; a group
 * worker its group's apps (and public ones); a private worker its owner's jobs only.
 */
enum store_worker_confinement {
        STORE_WORKER_PUBLIC,
        STORE_WORKER_GROUP,
        STORE_WORKER_PRIVATE,
        _STORE_WORKER_CONFINEMENT_MAX,
        _STORE_WORKER_CONFINEMENT_INVALID = -EINVAL,
};

const char *store_worker_confinement_to_string(enum store_worker_confinement c);
enum store_worker_confinement store_worker_confinement_from_string(const char *s);

/*
 * A registered worker. Its identity on the network is its CURVE public key; the key maps to a
 * worker_user account (user_id) made with it, named like the worker, in the same transaction:
 * an active user without a password that owns its own record (mode 0700). Deleting that
 * account (store_user_delete()) deletes the worker too, as store_worker_delete() does.
 * group_id and owner_id are checked when the worker is made, then kept like an acl's ids: a
 * group or owner deleted later leaves an id that is never reused, so such a worker gets
 * nothing of theirs.
 */
struct store_worker {
        int64_t id;
        char *name; /* store_name_valid() */
        char public_key[STORE_CURVE_KEY_SIZE];
        enum store_worker_confinement confinement;
        int64_t group_id; /* GROUP: the group whose apps it runs; else 0 */
        int64_t owner_id; /* PRIVATE: the user whose jobs it runs; else 0 */
        int64_t user_id;  /* its worker_user account */
        uint64_t errors;  /* its results that were outvoted */
        int64_t created_at;
        int64_t last_seen; /* 0: never connected */
};

void store_worker_clear(struct store_worker *w);
struct store_worker *store_worker_array_free(struct store_worker *w, size_t n);

/* True if key is STORE_CURVE_KEY_LEN characters of the Z85 alphabet. */
bool store_curve_key_valid(const char *key);

/*
 * Registers a worker and its worker_user account (rights: worker_rights, the caller's number
 * for worker_user; no password) in one transaction.
 *   -EINVAL  bad name or key; confinement out of range; GROUP without group_id > 0, PRIVATE
 *            without owner_id > 0, or a group/owner given for another confinement
 *   -EEXIST  the name (as a worker or as a user) or the key is taken
 *   -ENOENT  group_id or owner_id names nothing
 */
int store_worker_create(struct store *s, const char *name, const char *public_key,
                        enum store_worker_confinement confinement, int64_t group_id,
                        int64_t owner_id, int worker_rights, int64_t *ret_id);
int store_worker_get(struct store *s, int64_t id, struct store_worker *ret);
int store_worker_get_by_name(struct store *s, const char *name, struct store_worker *ret);
int store_worker_get_by_key(struct store *s, const char *public_key, struct store_worker *ret);
/* Workers in id order with id > after_id, at most limit (1..STORE_LIST_MAX). */
int store_worker_list(struct store *s, int64_t after_id, size_t limit, struct store_worker **ret,
                      size_t *ret_n);
/* Deletes the worker and its account. Its replicas that are assigned go back to queued (lease
 * cleared) in the same transaction. -ENOENT if there is none. */
int store_worker_delete(struct store *s, int64_t id);
/* errors += 1. */
int store_worker_add_error(struct store *s, int64_t id);
/* last_seen = at (Unix ns). */
int store_worker_touch(struct store *s, int64_t id, int64_t at);

/*
 * One-time join tokens: an administrator makes one (the API keeps only its SHA-256) with the
 * confinement the joining worker will get; a worker that presents it before expires_at
 * registers its own key under its own name, and the token is gone.
 * store_worker_token_create(): -EINVAL for a confinement and ids as store_worker_create()
 * refuses them, -ENOENT if group_id or owner_id names nothing, -EEXIST if the hash is stored.
 */
int store_worker_token_create(struct store *s,
                              const uint8_t hash[static STORE_WORKER_TOKEN_HASH_SIZE],
                              enum store_worker_confinement confinement, int64_t group_id,
                              int64_t owner_id, int64_t expires_at);
/*
 * In one transaction: finds the unexpired token (expires_at > now), deletes it, and registers
 * the worker (as store_worker_create(), with the token's confinement). -ENOENT: no such token or
 * expired (an expired one is deleted too); store_worker_create()'s errors otherwise, and then
 * the token is kept.
 */
int store_worker_token_redeem(struct store *s,
                              const uint8_t hash[static STORE_WORKER_TOKEN_HASH_SIZE], int64_t now,
                              const char *name, const char *public_key, int worker_rights,
                              int64_t *ret_worker_id);
/* The number of unexpired tokens (expires_at > now). */
int store_worker_tokens_pending(struct store *s, int64_t now, uint64_t *ret_count);

/*
 * Replicas. A job the master schedules runs as one replica or more (its spec's "replicas"), each
 * on a distinct worker; the job ends when a quorum of replicas agree. A replica is
 *   queued    waiting for a worker
 *   assigned  held by worker_id under lease (a random id the worker must quote back)
 *   done      its result came back under its lease: vote is the digest the master computed
 *   failed    it could not run (error), or it ran out of attempts
 * Lease expiry is the master's business (in memory); the store keeps who holds what, so that a
 * restarted master knows.
 */
enum store_replica_state {
        STORE_REPLICA_QUEUED,
        STORE_REPLICA_ASSIGNED,
        STORE_REPLICA_DONE,
        STORE_REPLICA_FAILED,
        _STORE_REPLICA_STATE_MAX,
        _STORE_REPLICA_STATE_INVALID = -EINVAL,
};

const char *store_replica_state_to_string(enum store_replica_state st);

struct store_replica {
        char job_id[STORE_JOB_ID_SIZE];
        int idx; /* 0..replicas-1 */
        enum store_replica_state state;
        int64_t worker_id;               /* ASSIGNED, DONE, FAILED: who (0: none) */
        char lease[STORE_LEASE_ID_SIZE]; /* ASSIGNED: the lease; else "" */
        int attempts;                    /* times assigned */
        char vote[STORE_SHA256_SIZE];    /* DONE: the digest of its outcome; else "" */
        char *result;                    /* DONE: result JSON; may be NULL */
        char *error;                     /* FAILED: why; may be NULL */
};

void store_replica_clear(struct store_replica *r);
struct store_replica *store_replica_array_free(struct store_replica *r, size_t n);

/*
 * In one transaction, for a queued job: moves it to running (an attempt, started_at, as
 * store_job_transition()) and inserts n (1..STORE_REPLICAS_MAX) queued replicas 0..n-1; the
 * replicas of an earlier start (a job re-queued since) are replaced. Deleting a job deletes its
 * replicas. -ESTALE if the job is not queued, -ENOENT if it does not exist, -EINVAL for a bad n.
 *
 * The functions below take idx 0..STORE_REPLICAS_MAX-1 and a lease of STORE_LEASE_ID_LEN
 * lowercase hex digits (else -EINVAL), and return -ENOENT for a replica that does not exist.
 */
int store_job_start_replicas(struct store *s, const char *job_id, int n);
/* The replicas of a job in idx order (none: *ret_n 0). */
int store_replica_list(struct store *s, const char *job_id, struct store_replica **ret,
                       size_t *ret_n);
/* Every assigned replica (of any job), for a master that starts. Without result and error. */
int store_replica_list_assigned(struct store *s, struct store_replica **ret, size_t *ret_n);
/* Every queued replica whose job is running, in job seq then idx order, for a master that
 * starts. Without result and error. */
int store_replica_list_queued(struct store *s, struct store_replica **ret, size_t *ret_n);
/* queued → assigned to worker_id under lease; attempts += 1. -ESTALE if not queued, -ENOENT
 * also if there is no such worker. */
int store_replica_assign(struct store *s, const char *job_id, int idx, int64_t worker_id,
                         const char *lease);
/* assigned under lease → queued (lease and worker cleared). -ESTALE if not assigned under that
 * lease. */
int store_replica_requeue(struct store *s, const char *job_id, int idx, const char *lease);
/* assigned under lease → done with vote (a SHA-256 in hex) and result. -ESTALE as above. */
int store_replica_done(struct store *s, const char *job_id, int idx, const char *lease,
                       const char *vote, const char *result);
/* queued, or assigned under lease (lease NULL: any lease) → failed with error (may be NULL;
 * cut to STORE_ERROR_MAX bytes at a UTF-8 character boundary, never refused). -ESTALE
 * otherwise. */
int store_replica_fail(struct store *s, const char *job_id, int idx, const char *lease,
                       const char *error);

/*
 * Batching: a master that assigns many replicas at once wraps them in one transaction (one
 * fsync). store_batch_begin() takes the write lock (BEGIN IMMEDIATE); every store function
 * called on s until store_batch_end() joins that transaction instead of opening its own (they
 * use savepoints while a batch is open, so one that fails undoes only its own work and the
 * batch goes on). store_batch_end(s, true) commits, (s, false) rolls back. store_batch_begin():
 * -EBUSY if a batch is already open; store_batch_end(): -EINVAL if none is. Closing the store
 * with a batch open rolls it back.
 * Should SQLite roll the batch's transaction back on its own (after an I/O error, a full disk
 * or lack of memory in a call within it), the calls that would write fail with -ECANCELED
 * rather than commit alone, and store_batch_end(s, true) returns -ECANCELED: nothing of the
 * batch was kept.
 */
int store_batch_begin(struct store *s);
int store_batch_end(struct store *s, bool commit);

/* ---- acls (chmod, chgrp, chown) ---- */

/*
 * Sets the owner, group and mode of an object at once, in one transaction; the caller (the API,
 * after auth/ allowed the change) decides who may. acl->owner 0 (nobody) and acl->group 0 (no
 * group) are stored as they are (unlike store_user_create(), owner 0 does not mean "itself");
 * an owner or group > 0 must exist when the transaction commits.
 * store_object_set_acl() is for users, groups and apps (kind USER, GROUP, APP), named by id;
 * store_job_set_acl() for jobs and store_data_set_acl() for data, named by their text ids.
 *   -EINVAL  acl NULL, mode > 0777, owner < 0, group < 0, another kind (STORE_KIND_JOB included),
 *            a malformed job id
 *   -ENOENT  the object does not exist, or acl->owner > 0 is no user, or acl->group > 0 is no
 *            group; nothing is changed
 */
int store_object_set_acl(struct store *s, enum store_kind kind, int64_t id,
                         const struct store_acl *acl);
int store_job_set_acl(struct store *s, const char *job_id, const struct store_acl *acl);
/* -EINVAL also for an acl that would widen confidential data (see store_data_insert()). */
int store_data_set_acl(struct store *s, const char *data_id, const struct store_acl *acl);

/* ---- audit log ---- */

/*
 * Append-only: no function changes or deletes a record, and the schema's triggers make an UPDATE
 * or DELETE on the table fail (from any connection). A record outlives its actor: deleting a user
 * keeps the records of what they did.
 */
struct store_audit {
        int64_t id;    /* ascending in the order of appending */
        int64_t at;    /* when it was appended */
        int64_t actor; /* user id; 0: anonymous or unknown */
        char *event;   /* [a-z_], 1..STORE_AUDIT_EVENT_MAX bytes; never NULL */
        char *object;  /* what it concerns; may be NULL */
        char *detail;  /* may be NULL */
        char *peer;    /* the client's address; may be NULL */
};

void store_audit_clear(struct store_audit *a);
/* Clears n records and frees the array; accepts NULL; returns NULL. */
struct store_audit *store_audit_array_free(struct store_audit *a, size_t n);

/*
 * Appends a record at the current time; it is on disk (fsync'd) when this returns 0. object,
 * detail and peer may be NULL; a text longer than its STORE_AUDIT_*_MAX is cut to fit rather
 * than refused (a record must never be lost for its length), at a UTF-8 character boundary: a
 * character that would straddle the bound is dropped whole. The texts are stored as they are,
 * control characters included: whoever prints them escapes them.
 *   -EINVAL  actor < 0, or event NULL, empty, longer than STORE_AUDIT_EVENT_MAX or not [a-z_]
 *            (events are the program's own names, never cut)
 */
int store_audit_append(struct store *s, int64_t actor, const char *event, const char *object,
                       const char *detail, const char *peer);
/* Records with id > after_id in id order, at most limit (1..STORE_LIST_MAX, else -EINVAL); the
 * array may be NULL when *ret_n is 0. */
int store_audit_list(struct store *s, int64_t after_id, size_t limit, struct store_audit **ret,
                     size_t *ret_n);
