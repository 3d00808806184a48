/* SPDX-License-Identifier: MIT */
#include "store.h"

/*
 * Theory of operation.
 *
 * One SQLite file holds everything; each thread of the node opens its own connection (struct
 * store). The connection is opened SQLITE_OPEN_NOMUTEX ("multi-thread" mode): SQLite keeps its
 * global locks, but drops the per-connection mutex that would only guard against sharing a
 * connection between threads, which we never do. SQLite's unix VFS opens the database, the WAL and
 * the shared-memory file with O_CLOEXEC (robust_open() adds it whenever the libc defines it; the
 * unit test checks every fd of the directory), so no sandbox or child inherits them.
 *
 * WAL mode lets readers run beside one writer. Writers serialise on the WAL write lock; SQLite's
 * busy handler retries for up to STORE_BUSY_TIMEOUT_MS. A transaction that reads and then writes
 * must take the write lock first (BEGIN IMMEDIATE, or be a single UPDATE/INSERT/DELETE, which
 * takes it when the statement starts): a deferred transaction whose snapshot is overtaken by
 * another writer would fail with SQLITE_BUSY_SNAPSHOT, which no waiting can cure.
 *
 * synchronous=FULL in WAL mode: every commit fdatasync()s the WAL before it returns, so a job
 * is durable when store_job_insert() returns; checkpoints (every ~1000 pages, in the committing
 * connection) additionally sync the database file.
 *
 * Statements are prepared per call, bound with parameters only, and finalized before the function
 * returns (by a cleanup attribute), so no statement keeps a read transaction, and with it an old
 * snapshot, open between calls. The only SQL assembled at run time is the job list query, from
 * constant fragments chosen by which filters are set.
 *
 * The schema is versioned with PRAGMA user_version. migrations[i] brings a file from version i to
 * i + 1; store_open() applies the missing ones in one IMMEDIATE transaction (re-reading the
 * version under the lock, as two connections may open a new file at once). Version 1 is the
 * first schema; version 2 adds the audit log; version 3 the OpenID Connect identities; version 4
 * data objects; version 5 workers, their join tokens and the replicas of jobs. An existing
 * file upgrades in place on its next open; a migration never rewrites the rows already there.
 *
 * The audit log is append-only twice over: this module has no statement that changes or removes
 * an audit row, and triggers make any UPDATE or DELETE on the table (or an INSERT that would
 * REPLACE a row) fail, so a mistaken statement elsewhere cannot rewrite history. They do not stop
 * someone who can write the file. Its actor is a plain integer, not a foreign key: deleting a user
 * keeps the records of what that user did.
 *
 * Batches. store_batch_begin() opens one IMMEDIATE transaction that the calls up to
 * store_batch_end() share: tx_begin()/tx_commit() become SAVEPOINT/RELEASE (ROLLBACK TO on
 * failure), so a failing call undoes its own statements only; a single statement that fails is
 * undone by SQLite alone. SQLite may still roll the whole transaction back after an I/O error,
 * a full disk or lack of memory; a commit hook then refuses the commit that a later statement
 * would make on its own (-ECANCELED), so no call of a lost batch persists half of it.
 *
 * Workers and replicas. A worker's row refers to its account (users, ON DELETE CASCADE), so
 * deleting either deletes both; the trigger workers_requeue returns the replicas the worker held
 * to the queue on any deletion of the row, which is why a replica's worker_id needs no foreign
 * key (a done or failed replica keeps the id of a worker that is gone, like an acl's owner).
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/random.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

struct store {
        sqlite3 *db;
        bool batch; /* store_batch_begin() opened a transaction that tx_begin() nests in */
};

/* ---- schema ---- */

/*
 * STRICT tables enforce column types. Ids that others refer to use AUTOINCREMENT so that they are
 * never reused. Jobs have a sequence number (rowid) for FIFO order, and a random public id.
 */
static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE users ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),"
        "  password_hash TEXT,"
        "  rights INTEGER NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN ('active', 'pending', 'disabled')),"
        "  owner_id INTEGER NOT NULL,"
        "  group_id INTEGER NOT NULL,"
        "  mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 511),"
        "  created_at INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE groups ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),"
        "  owner_id INTEGER NOT NULL,"
        "  group_id INTEGER NOT NULL,"
        "  mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 511),"
        "  created_at INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE memberships ("
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
        "  PRIMARY KEY (user_id, group_id)"
        ") STRICT, WITHOUT ROWID;"
        "CREATE INDEX memberships_group ON memberships(group_id);"
        "CREATE TABLE sessions ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
        "  created_at INTEGER NOT NULL,"
        "  expires_at INTEGER NOT NULL,"
        "  revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))"
        ") STRICT;"
        "CREATE INDEX sessions_user ON sessions(user_id);"
        "CREATE TABLE apps ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),"
        "  description TEXT NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  owner_id INTEGER NOT NULL,"
        "  group_id INTEGER NOT NULL,"
        "  mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 511),"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE jobs ("
        "  seq INTEGER PRIMARY KEY,"
        "  id TEXT NOT NULL UNIQUE CHECK (length(id) = 32),"
        "  app_id INTEGER REFERENCES apps(id) ON DELETE SET NULL,"
        "  owner_id INTEGER NOT NULL,"
        "  group_id INTEGER NOT NULL,"
        "  mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 511),"
        "  state TEXT NOT NULL"
        "    CHECK (state IN ('queued', 'running', 'finished', 'cancelled', 'failed')),"
        "  priority INTEGER NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  spec TEXT NOT NULL,"
        "  result TEXT,"
        "  error TEXT,"
        "  created_at INTEGER NOT NULL,"
        "  started_at INTEGER,"
        "  finished_at INTEGER"
        ") STRICT;"
        /* claim_next: the best queued job is the first entry of this index */
        "CREATE INDEX jobs_queue ON jobs(priority DESC, seq) WHERE state = 'queued';"
        /* counts, requeue_running, lists filtered by state */
        "CREATE INDEX jobs_state ON jobs(state, created_at, id);"
        "CREATE INDEX jobs_owner ON jobs(owner_id, created_at, id);"
        "CREATE INDEX jobs_created ON jobs(created_at, id);"
        /* ON DELETE SET NULL of an app */
        "CREATE INDEX jobs_app ON jobs(app_id);",

        /* 1 → 2: the audit log. Lengths are in bytes (length() of a text counts characters). */
        "CREATE TABLE audit ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  at INTEGER NOT NULL,"
        "  actor INTEGER NOT NULL CHECK (actor >= 0),"
        "  event TEXT NOT NULL"
        "    CHECK (length(CAST(event AS BLOB)) BETWEEN 1 AND 64 AND event NOT GLOB '*[^a-z_]*'),"
        "  object TEXT CHECK (length(CAST(object AS BLOB)) <= 256),"
        "  detail TEXT CHECK (length(CAST(detail AS BLOB)) <= 1024),"
        "  peer TEXT CHECK (length(CAST(peer AS BLOB)) <= 64)"
        ") STRICT;"
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
        " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
        " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
        /* INSERT OR REPLACE deletes the old row without firing DELETE triggers */
        "CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit"
        " WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)"
        " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",

        /* 2 → 3: identities from OpenID Connect issuers, each bound to one user for good. */
        "CREATE TABLE identities ("
        "  issuer TEXT NOT NULL CHECK (length(CAST(issuer AS BLOB)) BETWEEN 1 AND 256),"
        "  subject TEXT NOT NULL CHECK (length(CAST(subject AS BLOB)) BETWEEN 1 AND 256),"
        "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
        "  created_at INTEGER NOT NULL,"
        "  PRIMARY KEY (issuer, subject)"
        ") STRICT, WITHOUT ROWID;"
        "CREATE INDEX identities_user ON identities(user_id);",

        /* 3 → 4: data objects; their content is in the blob store, under sha256. Confidential
         * data stays private whatever statement runs: the last CHECK. */
        "CREATE TABLE data ("
        "  seq INTEGER PRIMARY KEY,"
        "  id TEXT NOT NULL UNIQUE CHECK (length(id) = 32),"
        "  name TEXT NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 255),"
        "  size INTEGER NOT NULL CHECK (size >= 0),"
        "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
        "  confidential INTEGER NOT NULL CHECK (confidential IN (0, 1)),"
        "  owner_id INTEGER NOT NULL,"
        "  group_id INTEGER NOT NULL,"
        "  mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 511),"
        "  created_at INTEGER NOT NULL,"
        "  CHECK (confidential = 0 OR (group_id = 0 AND (mode & 63) = 0))"
        ") STRICT;"
        "CREATE INDEX data_created ON data(created_at, id);"
        "CREATE INDEX data_sha256 ON data(sha256);",

        /* 4 → 5: workers (each with its worker_user account: deleting the account deletes the
         * worker), their one-time join tokens, and the replicas of jobs. group_id and owner_id
         * are plain ids like an acl's (checked when written, never reused); a replica's
         * worker_id is not a foreign key either, but no replica stays assigned to a worker that
         * is gone: the trigger puts it back in the queue, whichever way the worker goes. */
        "CREATE TABLE workers ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),"
        "  public_key TEXT NOT NULL UNIQUE CHECK (length(CAST(public_key AS BLOB)) = 40),"
        "  confinement TEXT NOT NULL CHECK (confinement IN ('public', 'group', 'private')),"
        "  group_id INTEGER NOT NULL,"
        "  owner_id INTEGER NOT NULL,"
        "  user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,"
        "  errors INTEGER NOT NULL DEFAULT 0 CHECK (errors >= 0),"
        "  created_at INTEGER NOT NULL,"
        "  last_seen INTEGER NOT NULL DEFAULT 0,"
        "  CHECK ((confinement = 'public' AND group_id = 0 AND owner_id = 0)"
        "      OR (confinement = 'group' AND group_id > 0 AND owner_id = 0)"
        "      OR (confinement = 'private' AND group_id = 0 AND owner_id > 0))"
        ") STRICT;"
        "CREATE TABLE worker_tokens ("
        "  hash BLOB NOT NULL PRIMARY KEY CHECK (length(hash) = 32),"
        "  confinement TEXT NOT NULL CHECK (confinement IN ('public', 'group', 'private')),"
        "  group_id INTEGER NOT NULL,"
        "  owner_id INTEGER NOT NULL,"
        "  expires_at INTEGER NOT NULL,"
        "  CHECK ((confinement = 'public' AND group_id = 0 AND owner_id = 0)"
        "      OR (confinement = 'group' AND group_id > 0 AND owner_id = 0)"
        "      OR (confinement = 'private' AND group_id = 0 AND owner_id > 0))"
        ") STRICT, WITHOUT ROWID;"
        /* a rowid table: a replica's result may be large */
        "CREATE TABLE replicas ("
        "  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
        "  idx INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 15),"
        "  state TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'done', 'failed')),"
        "  worker_id INTEGER NOT NULL DEFAULT 0 CHECK (worker_id >= 0),"
        "  lease TEXT CHECK (length(lease) = 32),"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  vote TEXT CHECK (length(vote) = 64),"
        "  result TEXT,"
        "  error TEXT,"
        "  PRIMARY KEY (job_id, idx),"
        "  CHECK ((state = 'assigned') = (lease IS NOT NULL AND worker_id > 0)),"
        "  CHECK ((state = 'done') = (vote IS NOT NULL))"
        ") STRICT;"
        "CREATE INDEX replicas_assigned ON replicas(worker_id) WHERE state = 'assigned';"
        "CREATE INDEX replicas_queued ON replicas(job_id, idx) WHERE state = 'queued';"
        "CREATE TRIGGER workers_requeue AFTER DELETE ON workers BEGIN"
        " UPDATE replicas SET state = 'queued', lease = NULL, worker_id = 0"
        "  WHERE worker_id = OLD.id AND state = 'assigned';"
        " END;"
        /* A job's attempts are those of its most tried replica: what its client sees. */
        "CREATE TRIGGER replicas_attempts AFTER UPDATE OF attempts ON replicas"
        " WHEN NEW.attempts > OLD.attempts BEGIN"
        " UPDATE jobs SET attempts = NEW.attempts WHERE id = NEW.job_id AND attempts < "
        "NEW.attempts;"
        " END;",
};

/* The schema's CHECKs spell the bounds of store.h as numbers. */
_Static_assert(STORE_IDENTITY_TEXT_MAX == 256, "identities: the CHECKs of migration 2 → 3");
_Static_assert(STORE_DATA_NAME_MAX == 255 && STORE_DATA_ID_LEN == 32 && STORE_SHA256_LEN == 64,
               "data: the CHECKs of migration 3 → 4");
_Static_assert(STORE_NAME_MAX == 64, "names: CHECK (length(name) BETWEEN 1 AND 64)");
_Static_assert(STORE_CURVE_KEY_LEN == 40 && STORE_WORKER_TOKEN_HASH_SIZE == 32 &&
                       STORE_LEASE_ID_LEN == 32 && STORE_REPLICAS_MAX == 16,
               "workers and replicas: the CHECKs of migration 4 → 5");
_Static_assert(STORE_AUDIT_EVENT_MAX == 64 && STORE_AUDIT_OBJECT_MAX == 256 &&
                       STORE_AUDIT_DETAIL_MAX == 1024 && STORE_AUDIT_PEER_MAX == 64,
               "audit: the CHECKs of migration 1 → 2");

/* ---- errors ---- */

/* The one place where SQLite's result codes become errno values. */
static int sqlite_errno(sqlite3 *db, int rc)
{
        int r;

        switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                r = -EEXIST;
                break;
        case SQLITE_CONSTRAINT_FOREIGNKEY: /* we only ever violate one by referring to nothing */
                r = -ENOENT;
                break;
        case SQLITE_CONSTRAINT_COMMITHOOK: /* batch_commit_hook(): the batch is lost */
                r = -ECANCELED;
                break;
        case SQLITE_IOERR_NOMEM:
                r = -ENOMEM;
                break;
        default:
                switch (rc & 0xff) {
                case SQLITE_CONSTRAINT: /* CHECK, NOT NULL: input we should have refused */
                case SQLITE_MISUSE:
                case SQLITE_RANGE:
                        r = -EINVAL;
                        break;
                case SQLITE_NOTFOUND:
                        r = -ENOENT;
                        break;
                case SQLITE_BUSY:
                case SQLITE_LOCKED:
                        r = -EBUSY;
                        break;
                case SQLITE_FULL:
                        r = -ENOSPC;
                        break;
                case SQLITE_NOMEM:
                        r = -ENOMEM;
                        break;
                case SQLITE_CORRUPT:
                case SQLITE_NOTADB:
                        r = -EBADMSG;
                        break;
                case SQLITE_READONLY:
                        r = -EROFS;
                        break;
                case SQLITE_TOOBIG:
                        r = -E2BIG;
                        break;
                case SQLITE_PERM:
                case SQLITE_AUTH:
                        r = -EPERM;
                        break;
                case SQLITE_INTERRUPT:
                        r = -EINTR;
                        break;
                case SQLITE_CANTOPEN: {
                        int e = db ? sqlite3_system_errno(db) : 0;
                        r = e > 0 ? -e : -EIO;
                        break;
                }
                default:
                        r = -EIO;
                        break;
                }
        }
        log_debug("store: %s (%d): %s", sqlite3_errstr(rc), rc,
                  db ? sqlite3_errmsg(db) : "no connection");
        return r;
}

/* ---- statement helpers ---- */

static void finalizep(sqlite3_stmt **st)
{
        if (*st)
                (void) sqlite3_finalize(*st);
}

#define _cleanup_stmt_ _cleanup_(finalizep)

static int prepare(struct store *s, const char *sql, sqlite3_stmt **ret)
{
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v3(s->db, sql, -1, 0, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(s->db, rc);
        assert(st); /* our SQL is never empty */
        *ret = st;
        return 0;
}

/*
 * Binds parameters 1.. in order, by type letter: 'l' int64_t, 'i' int, 't' const char * (NULL
 * binds NULL; the text must outlive the statement's use), 's' const char * + int (the text's
 * first n bytes; NULL binds NULL), 'b' const void * + int (a blob).
 */
static int bind(struct store *s, sqlite3_stmt *st, const char *types, ...)
{
        va_list ap;
        int rc = SQLITE_OK;

        /* a mismatch would read arguments that were never passed */
        assert(strlen(types) == (size_t) sqlite3_bind_parameter_count(st));
        va_start(ap, types);
        for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
                int idx = i + 1;

                switch (types[i]) {
                case 'l':
                        rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
                        break;
                case 'i':
                        rc = sqlite3_bind_int(st, idx, va_arg(ap, int));
                        break;
                case 't': {
                        const char *t = va_arg(ap, const char *);
                        rc = t ? sqlite3_bind_text(st, idx, t, -1, SQLITE_STATIC)
                               : sqlite3_bind_null(st, idx);
                        break;
                }
                case 's': {
                        const char *t = va_arg(ap, const char *);
                        int n = va_arg(ap, int);
                        rc = t ? sqlite3_bind_text(st, idx, t, n, SQLITE_STATIC)
                               : sqlite3_bind_null(st, idx);
                        break;
                }
                case 'b': {
                        const void *p = va_arg(ap, const void *);
                        int n = va_arg(ap, int);
                        rc = sqlite3_bind_blob(st, idx, p, n, SQLITE_STATIC);
                        break;
                }
                default:
                        assert(!"unknown bind type");
                        rc = SQLITE_MISUSE;
                }
        }
        va_end(ap);
        return rc == SQLITE_OK ? 0 : sqlite_errno(s->db, rc);
}

/* Returns 1 for a row, 0 when done. */
static int step(struct store *s, sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return sqlite_errno(s->db, rc);
}

/* Steps a statement that returns no row (or whose rows we do not want) to its end. */
static int step_done(struct store *s, sqlite3_stmt *st)
{
        int r;

        while ((r = step(s, st)) > 0)
                ;
        return r;
}

static int exec(struct store *s, const char *sql)
{
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : sqlite_errno(s->db, rc);
}

/* A copy of a text column; NULL for SQL NULL. */
static int column_strdup(sqlite3_stmt *st, int col, char **ret)
{
        const unsigned char *t;
        char *copy;
        int n;

        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;
        n = sqlite3_column_bytes(st, col);
        copy = malloc((size_t) n + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, t, (size_t) n);
        copy[n] = '\0';
        *ret = copy;
        return 0;
}

/* ---- transactions ---- */

/*
 * Multi-statement operations:
 *         _cleanup_(tx_rollbackp) struct store *tx = NULL;
 *         r = tx_begin(s, &tx);          takes the write lock now (BEGIN IMMEDIATE)
 *         ...
 *         return tx_commit(&tx);         on any earlier return, the cleanup rolls back
 *
 * Inside a batch (store_batch_begin()) the same calls use a savepoint of the batch's
 * transaction instead: a function that fails undoes its own work only, and the batch goes on.
 * No function calls another that opens a transaction, so savepoints never nest and one name
 * serves.
 */
static int tx_begin(struct store *s, struct store **ret_tx)
{
        int r;

        if (s->batch) {
                /* SQLite rolled the batch back after an error: a savepoint would open a
                 * transaction of its own */
                if (sqlite3_get_autocommit(s->db))
                        return -ECANCELED;
                r = exec(s, "SAVEPOINT store_tx");
        } else
                r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        *ret_tx = s;
        return 0;
}

static int tx_commit(struct store **tx)
{
        int r = exec(*tx, (*tx)->batch ? "RELEASE store_tx" : "COMMIT");

        if (r < 0)
                return r; /* the cleanup rolls back what COMMIT may have left open */
        *tx = NULL;
        return 0;
}

static void tx_rollbackp(struct store **tx)
{
        if (!*tx || sqlite3_get_autocommit((*tx)->db))
                return;
        (void) sqlite3_exec((*tx)->db,
                            (*tx)->batch ? "ROLLBACK TO store_tx; RELEASE store_tx" : "ROLLBACK",
                            NULL, NULL, NULL);
}

/*
 * While a batch is open every commit is store_batch_end()'s, which clears s->batch first. Any
 * other means SQLite rolled the batch's transaction back (after an I/O error, a full disk, lack
 * of memory) and a statement is about to commit on its own, outside the batch the caller thinks
 * it is in: refused (-ECANCELED).
 */
static int batch_commit_hook(void *userdata)
{
        const struct store *s = userdata;

        return s->batch ? 1 : 0;
}

int store_batch_begin(struct store *s)
{
        int r;

        if (!s)
                return -EINVAL;
        if (s->batch)
                return -EBUSY;
        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        s->batch = true;
        return 0;
}

int store_batch_end(struct store *s, bool commit)
{
        int r;

        if (!s || !s->batch)
                return -EINVAL;
        s->batch = false;
        if (sqlite3_get_autocommit(s->db))
                return commit ? -ECANCELED : 0; /* already rolled back by SQLite */
        r = exec(s, commit ? "COMMIT" : "ROLLBACK");
        if (r < 0 && !sqlite3_get_autocommit(s->db))
                (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* ---- validation ---- */

bool store_name_valid(const char *name)
{
        size_t n;

        if (!name || !(name[0] >= 'a' && name[0] <= 'z'))
                return false;
        n = strnlen(name, STORE_NAME_MAX + 1);
        if (n > STORE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                      c == '-'))
                        return false;
        }
        return true;
}

bool store_job_id_valid(const char *id)
{
        if (!id)
                return false;
        for (size_t i = 0; i < STORE_JOB_ID_LEN; i++)
                if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
                        return false;
        return id[STORE_JOB_ID_LEN] == '\0';
}

/* NULL is -EINVAL unless nullable; longer than max is -E2BIG. */
static int check_text(const char *t, size_t max, bool nullable)
{
        if (!t)
                return nullable ? 0 : -EINVAL;
        return strnlen(t, max + 1) > max ? -E2BIG : 0;
}

static int check_acl(const struct store_acl *acl)
{
        if (!acl || acl->owner < 0 || acl->group < 0 || (acl->mode & ~UINT32_C(0777)))
                return -EINVAL;
        return 0;
}

static int check_limit(size_t limit)
{
        return limit >= 1 && limit <= STORE_LIST_MAX ? 0 : -EINVAL;
}

static int64_t now(void)
{
        return (int64_t) now_ns(CLOCK_REALTIME);
}

/* ---- enums ---- */

static const char *const user_state_names[_STORE_USER_STATE_MAX] = {
        [STORE_USER_ACTIVE] = "active",
        [STORE_USER_PENDING] = "pending",
        [STORE_USER_DISABLED] = "disabled",
};

static const char *const job_state_names[_STORE_JOB_STATE_MAX] = {
        [STORE_JOB_QUEUED] = "queued",     [STORE_JOB_RUNNING] = "running",
        [STORE_JOB_FINISHED] = "finished", [STORE_JOB_CANCELLED] = "cancelled",
        [STORE_JOB_FAILED] = "failed",
};

static int lookup_name(const char *const *names, int n, const char *s)
{
        if (s)
                for (int i = 0; i < n; i++)
                        if (strcmp(names[i], s) == 0)
                                return i;
        return -EINVAL;
}

const char *store_user_state_to_string(enum store_user_state state)
{
        if ((int) state < 0 || state >= _STORE_USER_STATE_MAX)
                return NULL;
        return user_state_names[state];
}

enum store_user_state store_user_state_from_string(const char *s)
{
        return (enum store_user_state) lookup_name(user_state_names, _STORE_USER_STATE_MAX, s);
}

const char *store_job_state_to_string(enum store_job_state state)
{
        if ((int) state < 0 || state >= _STORE_JOB_STATE_MAX)
                return NULL;
        return job_state_names[state];
}

enum store_job_state store_job_state_from_string(const char *s)
{
        return (enum store_job_state) lookup_name(job_state_names, _STORE_JOB_STATE_MAX, s);
}

/* ---- open, close, migrate ---- */

static int read_user_version(struct store *s, int64_t *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "PRAGMA user_version", &st);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int migrate(struct store *s)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        const int64_t latest = (int64_t) ELEMENTSOF(migrations);
        int64_t version;
        char sql[64];
        int r;

        r = read_user_version(s, &version);
        if (r < 0)
                return r;
        if (version == latest)
                return 0;

        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = read_user_version(s, &version); /* another connection may have migrated meanwhile */
        if (r < 0)
                return r;
        if (version < 0 || version > latest)
                return -EPROTONOSUPPORT;
        for (int64_t v = version; v < latest; v++) {
                r = exec(s, migrations[v]);
                if (r < 0)
                        return r;
        }
        /* PRAGMA takes no parameters; latest is our own constant. */
        r = snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64, latest);
        assert(r > 0 && (size_t) r < sizeof(sql));
        r = exec(s, sql);
        if (r < 0)
                return r;
        r = tx_commit(&tx);
        if (r < 0)
                return r;
        if (version != latest)
                log_debug("store: schema migrated from version %" PRId64 " to %" PRId64, version,
                          latest);
        return 0;
}

/* Creates the file 0600 if missing, narrows a wider mode, refuses symlinks and non-files. */
static int prepare_file(const char *path)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        /* SQLite gives the -wal and -shm files the database's mode: tighten it first. */
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
                return -errno;
        return 0;
}

static int pragma_expect(struct store *s, const char *sql, const char *expected)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const unsigned char *v;
        int r;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOTSUP;
        v = sqlite3_column_text(st, 0);
        if (!v)
                return -ENOMEM;
        if (strcasecmp((const char *) v, expected) != 0)
                return -ENOTSUP;
        return step_done(s, st);
}

/*
 * Waiting for another connection's write lock: SQLite's own handler sleeps 1, 2, 5 ... 100 ms,
 * which turns a lock held for a millisecond into tens of milliseconds of latency when a master's
 * scheduler and the API's inserts take turns. This one polls every 100 us at first, backing off
 * to 2 ms, for STORE_BUSY_TIMEOUT_MS in all.
 */
static int busy_wait(void *userdata, int count)
{
        uint64_t us = count < 5 ? 100 : count < 20 ? 500 : 2000;
        uint64_t waited = count < 5    ? (uint64_t) count * 100
                          : count < 20 ? 500 + (uint64_t) (count - 5) * 500
                                       : 8000 + (uint64_t) (count - 20) * 2000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long) (us * 1000)};

        if (waited >= (uint64_t) STORE_BUSY_TIMEOUT_MS * 1000)
                return 0;
        (void) nanosleep(&ts, NULL);
        return 1;
}

static int configure(struct store *s)
{
        static const int off[] = {
                SQLITE_DBCONFIG_TRUSTED_SCHEMA, /* no SQL functions with side effects in schema */
                SQLITE_DBCONFIG_DQS_DML,        /* "x" is an identifier, never a string */
                SQLITE_DBCONFIG_DQS_DDL,
                SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
        };
        int rc, r;

        rc = sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(s->db, rc);
        for (size_t i = 0; i < ELEMENTSOF(off); i++) {
                rc = sqlite3_db_config(s->db, off[i], 0, NULL);
                if (rc != SQLITE_OK)
                        return sqlite_errno(s->db, rc);
        }
        /* Nothing we store legitimately exceeds this; a corrupt file claiming more is refused. */
        (void) sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, (int) (2 * STORE_JSON_MAX + (1u << 20)));

        rc = sqlite3_busy_handler(s->db, busy_wait, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(s->db, rc);

        /* The first statement reads the header: a file that is not a database fails here. */
        r = pragma_expect(s, "PRAGMA journal_mode = WAL", "wal");
        if (r < 0)
                return r;
        r = exec(s, "PRAGMA synchronous = FULL;"
                    "PRAGMA foreign_keys = ON;"
                    /* the WAL is truncated back to this after a checkpoint */
                    "PRAGMA journal_size_limit = 67108864");
        if (r < 0)
                return r;
        /* Both are silently ignored by builds that lack them; we depend on them. */
        r = pragma_expect(s, "PRAGMA foreign_keys", "1");
        if (r < 0)
                return r;
        return pragma_expect(s, "PRAGMA synchronous", "2");
}

int store_open(const char *path, struct store **ret)
{
        _cleanup_(store_closep) struct store *s = NULL;
        int rc, r;

        if (!path || !ret)
                return -EINVAL;
        if (!sqlite3_threadsafe())
                return -ENOTSUP; /* connections in several threads need SQLite's global locks */

        r = prepare_file(path);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
                                     SQLITE_OPEN_PRIVATECACHE | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(s->db, rc);

        (void) sqlite3_commit_hook(s->db, batch_commit_hook, s);

        r = configure(s);
        if (r < 0)
                return r;
        r = migrate(s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

struct store *store_close(struct store *s)
{
        if (!s)
                return NULL;
        /* Every statement is finalized by now, so this closes at once (the last connection
         * checkpoints the WAL and removes it). */
        (void) sqlite3_close_v2(s->db);
        free(s);
        return NULL;
}

/* ---- users ---- */

#define USER_COLUMNS "id, name, password_hash, rights, state, owner_id, group_id, mode, created_at"

void store_user_clear(struct store_user *u)
{
        if (!u)
                return;
        free(u->name);
        free(u->password_hash);
        *u = (struct store_user){};
}

struct store_user *store_user_array_free(struct store_user *users, size_t n)
{
        for (size_t i = 0; users && i < n; i++)
                store_user_clear(&users[i]);
        free(users);
        return NULL;
}

static void acl_from_row(sqlite3_stmt *st, int col, struct store_acl *ret)
{
        ret->owner = sqlite3_column_int64(st, col);
        ret->group = sqlite3_column_int64(st, col + 1);
        ret->mode = (uint32_t) sqlite3_column_int64(st, col + 2) & 0777;
}

static int state_from_row(sqlite3_stmt *st, int col, const char *const *names, int n)
{
        const unsigned char *t = sqlite3_column_text(st, col);
        int v;

        if (!t)
                return sqlite3_column_type(st, col) == SQLITE_NULL ? -EBADMSG : -ENOMEM;
        v = lookup_name(names, n, (const char *) t);
        return v < 0 ? -EBADMSG : v;
}

static int user_from_row(sqlite3_stmt *st, struct store_user *ret)
{
        _cleanup_(store_user_clear) struct store_user u = {};
        int r;

        u.id = sqlite3_column_int64(st, 0);
        r = column_strdup(st, 1, &u.name);
        if (r < 0)
                return r;
        if (!u.name)
                return -EBADMSG;
        r = column_strdup(st, 2, &u.password_hash);
        if (r < 0)
                return r;
        u.rights = sqlite3_column_int(st, 3);
        r = state_from_row(st, 4, user_state_names, _STORE_USER_STATE_MAX);
        if (r < 0)
                return r;
        u.state = (enum store_user_state) r;
        acl_from_row(st, 5, &u.acl);
        u.created_at = sqlite3_column_int64(st, 8);

        *ret = u;
        u = (struct store_user){};
        return 0;
}

/* Inserts a user inside the caller's transaction. */
static int user_insert(struct store *s, const char *name, const char *password_hash, int rights,
                       enum store_user_state state, const struct store_acl *acl, int64_t *ret_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL, *own = NULL;
        const char *state_name = store_user_state_to_string(state);
        int64_t id;
        int r;

        if (!store_name_valid(name) || !state_name)
                return -EINVAL;
        r = check_text(password_hash, STORE_PASSWORD_HASH_MAX, true);
        if (r < 0)
                return r;
        r = check_acl(acl);
        if (r < 0)
                return r;

        r = prepare(s,
                    "INSERT INTO users (name, password_hash, rights, state, owner_id, group_id,"
                    " mode, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ttitllil", name, password_hash, rights, state_name, acl->owner, acl->group,
                 (int) acl->mode, now());
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        id = sqlite3_column_int64(st, 0);
        r = step_done(s, st);
        if (r < 0)
                return r;

        if (acl->owner == 0) {
                r = prepare(s, "UPDATE users SET owner_id = id WHERE id = ?", &own);
                if (r < 0)
                        return r;
                r = bind(s, own, "l", id);
                if (r < 0)
                        return r;
                r = step_done(s, own);
                if (r < 0)
                        return r;
        }
        *ret_id = id;
        return 0;
}

int store_user_create(struct store *s, const char *name, const char *password_hash, int rights,
                      enum store_user_state state, const struct store_acl *acl, int64_t *ret_id)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        int64_t id;
        int r;

        if (!store_name_valid(name) || !store_user_state_to_string(state))
                return -EINVAL;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = user_insert(s, name, password_hash, rights, state, acl, &id);
        if (r < 0)
                return r;
        r = tx_commit(&tx);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

static int user_get(struct store *s, const char *sql, const char *types, int64_t id,
                    const char *name, struct store_user *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_user u;
        int r;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = name ? bind(s, st, types, name) : bind(s, st, types, id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = user_from_row(st, &u);
        if (r < 0)
                return r;
        *ret = u;
        return 0;
}

int store_user_get(struct store *s, int64_t id, struct store_user *ret)
{
        return user_get(s, "SELECT " USER_COLUMNS " FROM users WHERE id = ?", "l", id, NULL, ret);
}

int store_user_get_by_name(struct store *s, const char *name, struct store_user *ret)
{
        if (!store_name_valid(name))
                return -EINVAL;
        return user_get(s, "SELECT " USER_COLUMNS " FROM users WHERE name = ?", "t", 0, name, ret);
}

int store_user_list(struct store *s, int64_t after_id, size_t limit, struct store_user **ret_users,
                    size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_user *users = NULL;
        size_t n = 0;
        int r;

        r = check_limit(limit);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT " USER_COLUMNS " FROM users WHERE id > ? ORDER BY id LIMIT ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", after_id, (int64_t) limit);
        if (r < 0)
                return r;
        users = calloc(limit, sizeof(*users));
        if (!users)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < limit) {
                r = user_from_row(st, &users[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_user_array_free(users, n);
                return r;
        }
        if (n == 0)
                users = (free(users), NULL);
        *ret_users = users;
        *ret_n = n;
        return 0;
}

/* Runs a one-row UPDATE or DELETE; -ENOENT when it changed nothing. */
static int update_one(struct store *s, sqlite3_stmt *st)
{
        int r = step_done(s, st);

        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_user_set_password_hash(struct store *s, int64_t id, const char *password_hash)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = check_text(password_hash, STORE_PASSWORD_HASH_MAX, true);
        if (r < 0)
                return r;
        r = prepare(s, "UPDATE users SET password_hash = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tl", password_hash, id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_user_set_rights(struct store *s, int64_t id, int rights)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "UPDATE users SET rights = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "il", rights, id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_user_set_state(struct store *s, int64_t id, enum store_user_state state)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const char *state_name = store_user_state_to_string(state);
        int r;

        if (!state_name)
                return -EINVAL;
        r = prepare(s, "UPDATE users SET state = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tl", state_name, id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_user_delete(struct store *s, int64_t id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "DELETE FROM users WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

/* ---- identities ---- */

static int check_identity(const char *issuer, const char *subject)
{
        if (!issuer || !subject || !*issuer || !*subject)
                return -EINVAL;
        if (strnlen(issuer, STORE_IDENTITY_TEXT_MAX + 1) > STORE_IDENTITY_TEXT_MAX ||
            strnlen(subject, STORE_IDENTITY_TEXT_MAX + 1) > STORE_IDENTITY_TEXT_MAX)
                return -E2BIG;
        return 0;
}

int store_identity_lookup(struct store *s, const char *issuer, const char *subject,
                          int64_t *ret_user_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = check_identity(issuer, subject);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT user_id FROM identities WHERE issuer = ? AND subject = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tt", issuer, subject);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        *ret_user_id = sqlite3_column_int64(st, 0);
        return 0;
}

int store_identity_create_user(struct store *s, const char *issuer, const char *subject,
                               const char *name, int rights, enum store_user_state state,
                               const struct store_acl *acl, int64_t *ret_id)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t id;
        int r;

        r = check_identity(issuer, subject);
        if (r < 0)
                return r;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = user_insert(s, name, NULL, rights, state, acl, &id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO identities (issuer, subject, user_id, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ttll", issuer, subject, id, now());
        if (r < 0)
                return r;
        r = step_done(s, st);
        if (r < 0)
                return r;
        r = tx_commit(&tx);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

/* ---- groups ---- */

#define GROUP_COLUMNS "id, name, owner_id, group_id, mode, created_at"

void store_group_clear(struct store_group *g)
{
        if (!g)
                return;
        free(g->name);
        *g = (struct store_group){};
}

int store_group_create(struct store *s, const char *name, const struct store_acl *acl,
                       int64_t *ret_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t id;
        int r;

        if (!store_name_valid(name))
                return -EINVAL;
        r = check_acl(acl);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO groups (name, owner_id, group_id, mode, created_at)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tllil", name, acl->owner, acl->group, (int) acl->mode, now());
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        id = sqlite3_column_int64(st, 0);
        r = step_done(s, st); /* the commit happens here */
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

struct store_group *store_group_array_free(struct store_group *groups, size_t n)
{
        for (size_t i = 0; groups && i < n; i++)
                store_group_clear(&groups[i]);
        free(groups);
        return NULL;
}

static int group_from_row(sqlite3_stmt *st, struct store_group *ret)
{
        _cleanup_(store_group_clear) struct store_group g = {};
        int r;

        g.id = sqlite3_column_int64(st, 0);
        r = column_strdup(st, 1, &g.name);
        if (r < 0)
                return r;
        if (!g.name)
                return -EBADMSG;
        acl_from_row(st, 2, &g.acl);
        g.created_at = sqlite3_column_int64(st, 5);
        *ret = g;
        g = (struct store_group){};
        return 0;
}

static int group_get(struct store *s, const char *sql, const char *types, int64_t id,
                     const char *name, struct store_group *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = name ? bind(s, st, types, name) : bind(s, st, types, id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        return group_from_row(st, ret);
}

int store_group_get(struct store *s, int64_t id, struct store_group *ret)
{
        return group_get(s, "SELECT " GROUP_COLUMNS " FROM groups WHERE id = ?", "l", id, NULL,
                         ret);
}

int store_group_get_by_name(struct store *s, const char *name, struct store_group *ret)
{
        if (!store_name_valid(name))
                return -EINVAL;
        return group_get(s, "SELECT " GROUP_COLUMNS " FROM groups WHERE name = ?", "t", 0, name,
                         ret);
}

int store_group_list(struct store *s, int64_t after_id, size_t limit, struct store_group **ret,
                     size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_group *groups = NULL;
        size_t n = 0;
        int r;

        r = check_limit(limit);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT " GROUP_COLUMNS " FROM groups WHERE id > ? ORDER BY id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", after_id, (int64_t) limit);
        if (r < 0)
                return r;
        groups = calloc(limit, sizeof(*groups));
        if (!groups)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < limit) {
                r = group_from_row(st, &groups[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_group_array_free(groups, n);
                return r;
        }
        if (n == 0)
                groups = (free(groups), NULL);
        *ret = groups;
        *ret_n = n;
        return 0;
}

int store_group_delete(struct store *s, int64_t id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "DELETE FROM groups WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_group_add_member(struct store *s, int64_t group_id, int64_t user_id)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *count = NULL, *members = NULL, *insert = NULL;
        int r;

        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT count(*) FROM memberships WHERE user_id = ?", &count);
        if (r < 0)
                return r;
        r = bind(s, count, "l", user_id);
        if (r < 0)
                return r;
        r = step(s, count);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        if (sqlite3_column_int64(count, 0) >= STORE_USER_GROUPS_MAX)
                return -E2BIG;
        r = step_done(s, count);
        if (r < 0)
                return r;
        /* and the group's side, so that store_group_members() always returns every member */
        r = prepare(s, "SELECT count(*) FROM memberships WHERE group_id = ?", &members);
        if (r < 0)
                return r;
        r = bind(s, members, "l", group_id);
        if (r < 0)
                return r;
        r = step(s, members);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        if (sqlite3_column_int64(members, 0) >= STORE_GROUP_MEMBERS_MAX)
                return -E2BIG;
        r = step_done(s, members);
        if (r < 0)
                return r;

        r = prepare(s, "INSERT INTO memberships (user_id, group_id) VALUES (?, ?)", &insert);
        if (r < 0)
                return r;
        r = bind(s, insert, "ll", user_id, group_id);
        if (r < 0)
                return r;
        r = step_done(s, insert);
        if (r < 0)
                return r;
        return tx_commit(&tx);
}

int store_group_remove_member(struct store *s, int64_t group_id, int64_t user_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "DELETE FROM memberships WHERE user_id = ? AND group_id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", user_id, group_id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_group_has_member(struct store *s, int64_t group_id, int64_t user_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "SELECT 1 FROM memberships WHERE user_id = ? AND group_id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", user_id, group_id);
        if (r < 0)
                return r;
        return step(s, st);
}

int store_user_groups(struct store *s, int64_t user_id, int64_t **ret_group_ids, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int r;

        r = prepare(s,
                    "SELECT group_id FROM memberships WHERE user_id = ? ORDER BY group_id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", user_id, (int64_t) STORE_USER_GROUPS_MAX);
        if (r < 0)
                return r;
        ids = calloc(STORE_USER_GROUPS_MAX, sizeof(*ids));
        if (!ids)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < STORE_USER_GROUPS_MAX)
                ids[n++] = sqlite3_column_int64(st, 0);
        if (r < 0)
                return r;
        if (n == 0)
                ids = (free(ids), NULL);
        *ret_group_ids = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int store_group_members(struct store *s, int64_t group_id, int64_t **ret_user_ids, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int r;

        /*
         * One statement, so one snapshot: the first row says whether the group exists (a group
         * without members gives one row with a NULL user id). One row more than the maximum
         * tells a group that holds too many (from a file written before the bound).
         */
        r = prepare(s,
                    "SELECT m.user_id FROM groups g LEFT JOIN memberships m ON m.group_id = g.id"
                    " WHERE g.id = ? ORDER BY m.user_id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", group_id, (int64_t) STORE_GROUP_MEMBERS_MAX + 1);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
                ids = calloc(STORE_GROUP_MEMBERS_MAX, sizeof(*ids));
                if (!ids)
                        return -ENOMEM;
                do {
                        if (n >= STORE_GROUP_MEMBERS_MAX)
                                return -E2BIG;
                        ids[n++] = sqlite3_column_int64(st, 0);
                } while ((r = step(s, st)) > 0);
                if (r < 0)
                        return r;
        }
        *ret_user_ids = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

/* ---- sessions ---- */

int store_session_create(struct store *s, int64_t user_id,
                         const uint8_t token_hash[STORE_TOKEN_HASH_SIZE], int64_t expires_at,
                         int64_t *ret_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t id;
        int r;

        if (!token_hash)
                return -EINVAL;
        r = prepare(s,
                    "INSERT INTO sessions (user_id, token_hash, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?) RETURNING id",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "lbll", user_id, (const void *) token_hash, STORE_TOKEN_HASH_SIZE, now(),
                 expires_at);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        id = sqlite3_column_int64(st, 0);
        r = step_done(s, st);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

int store_session_lookup(struct store *s, const uint8_t token_hash[STORE_TOKEN_HASH_SIZE],
                         int64_t now_at, int64_t *ret_user_id, int64_t *ret_session_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (!token_hash)
                return -EINVAL;
        r = prepare(s,
                    "SELECT id, user_id FROM sessions"
                    " WHERE token_hash = ? AND revoked = 0 AND expires_at > ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "bl", (const void *) token_hash, STORE_TOKEN_HASH_SIZE, now_at);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (ret_session_id)
                *ret_session_id = sqlite3_column_int64(st, 0);
        if (ret_user_id)
                *ret_user_id = sqlite3_column_int64(st, 1);
        return 0;
}

int store_session_revoke(struct store *s, int64_t id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "UPDATE sessions SET revoked = 1 WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

/* Runs a statement that changes any number of rows and returns that number. */
static int update_many(struct store *s, sqlite3_stmt *st, uint64_t *ret_count)
{
        int r = step_done(s, st);

        if (r < 0)
                return r;
        if (ret_count)
                *ret_count = (uint64_t) sqlite3_changes64(s->db);
        return 0;
}

int store_session_revoke_user(struct store *s, int64_t user_id, uint64_t *ret_count)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "UPDATE sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", user_id);
        if (r < 0)
                return r;
        return update_many(s, st, ret_count);
}

int store_session_list(struct store *s, int64_t user_id, int64_t after_id, size_t limit,
                       struct store_session **ret_sessions, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ struct store_session *sessions = NULL;
        size_t n = 0;
        int r;

        r = check_limit(limit);
        if (r < 0)
                return r;
        r = prepare(s,
                    "SELECT id, user_id, created_at, expires_at, revoked FROM sessions"
                    " WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "lll", user_id, after_id, (int64_t) limit);
        if (r < 0)
                return r;
        sessions = calloc(limit, sizeof(*sessions));
        if (!sessions)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < limit) {
                sessions[n] = (struct store_session){
                        .id = sqlite3_column_int64(st, 0),
                        .user_id = sqlite3_column_int64(st, 1),
                        .created_at = sqlite3_column_int64(st, 2),
                        .expires_at = sqlite3_column_int64(st, 3),
                        .revoked = sqlite3_column_int(st, 4) != 0,
                };
                n++;
        }
        if (r < 0)
                return r;
        if (n == 0)
                sessions = (free(sessions), NULL);
        *ret_sessions = TAKE_PTR(sessions);
        *ret_n = n;
        return 0;
}

int store_session_purge(struct store *s, int64_t now_at, uint64_t *ret_count)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "DELETE FROM sessions WHERE expires_at <= ? OR revoked = 1", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", now_at);
        if (r < 0)
                return r;
        return update_many(s, st, ret_count);
}

/* ---- apps ---- */

#define APP_COLUMNS "id, name, description, spec, owner_id, group_id, mode, created_at, updated_at"
#define APP_SUMMARY_COLUMNS \
        "id, name, description, NULL, owner_id, group_id, mode, created_at, updated_at"

void store_app_clear(struct store_app *a)
{
        if (!a)
                return;
        free(a->name);
        free(a->description);
        free(a->spec);
        *a = (struct store_app){};
}

struct store_app *store_app_array_free(struct store_app *apps, size_t n)
{
        for (size_t i = 0; apps && i < n; i++)
                store_app_clear(&apps[i]);
        free(apps);
        return NULL;
}

static int app_from_row(sqlite3_stmt *st, struct store_app *ret)
{
        _cleanup_(store_app_clear) struct store_app a = {};
        int r;

        a.id = sqlite3_column_int64(st, 0);
        r = column_strdup(st, 1, &a.name);
        if (r < 0)
                return r;
        r = column_strdup(st, 2, &a.description);
        if (r < 0)
                return r;
        r = column_strdup(st, 3, &a.spec);
        if (r < 0)
                return r;
        if (!a.name || !a.description)
                return -EBADMSG;
        acl_from_row(st, 4, &a.acl);
        a.created_at = sqlite3_column_int64(st, 7);
        a.updated_at = sqlite3_column_int64(st, 8);
        *ret = a;
        a = (struct store_app){};
        return 0;
}

int store_app_create(struct store *s, const char *name, const char *description, const char *spec,
                     const struct store_acl *acl, int64_t *ret_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t id, t = now();
        int r;

        if (!store_name_valid(name))
                return -EINVAL;
        r = check_text(description, STORE_DESCRIPTION_MAX, true);
        if (r < 0)
                return r;
        r = check_text(spec, STORE_JSON_MAX, false);
        if (r < 0)
                return r;
        r = check_acl(acl);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO apps (name, description, spec, owner_id, group_id, mode,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tttllill", name, description ?: "", spec, acl->owner, acl->group,
                 (int) acl->mode, t, t);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        id = sqlite3_column_int64(st, 0);
        r = step_done(s, st);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

static int app_get(struct store *s, const char *sql, const char *types, int64_t id,
                   const char *name, struct store_app *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_app a;
        int r;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = name ? bind(s, st, types, name) : bind(s, st, types, id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = app_from_row(st, &a);
        if (r < 0)
                return r;
        *ret = a;
        return 0;
}

int store_app_get(struct store *s, int64_t id, struct store_app *ret)
{
        return app_get(s, "SELECT " APP_COLUMNS " FROM apps WHERE id = ?", "l", id, NULL, ret);
}

int store_app_get_by_name(struct store *s, const char *name, struct store_app *ret)
{
        if (!store_name_valid(name))
                return -EINVAL;
        return app_get(s, "SELECT " APP_COLUMNS " FROM apps WHERE name = ?", "t", 0, name, ret);
}

int store_app_list(struct store *s, int64_t after_id, size_t limit, struct store_app **ret_apps,
                   size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_app *apps = NULL;
        size_t n = 0;
        int r;

        r = check_limit(limit);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT " APP_SUMMARY_COLUMNS " FROM apps WHERE id > ? ORDER BY id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", after_id, (int64_t) limit);
        if (r < 0)
                return r;
        apps = calloc(limit, sizeof(*apps));
        if (!apps)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < limit) {
                r = app_from_row(st, &apps[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_app_array_free(apps, n);
                return r;
        }
        if (n == 0)
                apps = (free(apps), NULL);
        *ret_apps = apps;
        *ret_n = n;
        return 0;
}

int store_app_update(struct store *s, int64_t id, const char *description, const char *spec)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = check_text(description, STORE_DESCRIPTION_MAX, true);
        if (r < 0)
                return r;
        r = check_text(spec, STORE_JSON_MAX, true);
        if (r < 0)
                return r;
        r = prepare(s,
                    "UPDATE apps SET description = coalesce(?, description),"
                    " spec = coalesce(?, spec), updated_at = ? WHERE id = ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ttll", description, spec, now(), id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_app_delete(struct store *s, int64_t id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "DELETE FROM apps WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

/* ---- jobs ---- */

/* The last column is the result's top-level exit_code (an integer, or NULL), for lists that do
 * not read the result itself. */
#define JOB_COLUMNS                                                                             \
        "id, app_id, owner_id, group_id, mode, state, priority, attempts, spec, result, error," \
        " created_at, started_at, finished_at, " JOB_EXIT_CODE
#define JOB_SUMMARY_COLUMNS                                                                  \
        "id, app_id, owner_id, group_id, mode, state, priority, attempts, NULL, NULL, NULL," \
        " created_at, started_at, finished_at, " JOB_EXIT_CODE
#define JOB_EXIT_CODE                                                                   \
        "CASE WHEN json_valid(result) AND json_type(result, '$.exit_code') = 'integer'" \
        " THEN json_extract(result, '$.exit_code') END"

void store_job_clear(struct store_job *j)
{
        if (!j)
                return;
        free(j->spec);
        free(j->result);
        free(j->error);
        *j = (struct store_job){};
}

struct store_job *store_job_array_free(struct store_job *jobs, size_t n)
{
        for (size_t i = 0; jobs && i < n; i++)
                store_job_clear(&jobs[i]);
        free(jobs);
        return NULL;
}

static int job_from_row(sqlite3_stmt *st, struct store_job *ret)
{
        _cleanup_(store_job_clear) struct store_job j = {};
        const unsigned char *id;
        int r;

        id = sqlite3_column_text(st, 0);
        if (!id)
                return sqlite3_column_type(st, 0) == SQLITE_NULL ? -EBADMSG : -ENOMEM;
        if (!store_job_id_valid((const char *) id))
                return -EBADMSG;
        memcpy(j.id, id, STORE_JOB_ID_SIZE);
        j.app_id = sqlite3_column_int64(st, 1);
        acl_from_row(st, 2, &j.acl);
        r = state_from_row(st, 5, job_state_names, _STORE_JOB_STATE_MAX);
        if (r < 0)
                return r;
        j.state = (enum store_job_state) r;
        j.priority = sqlite3_column_int(st, 6);
        j.attempts = sqlite3_column_int(st, 7);
        r = column_strdup(st, 8, &j.spec);
        if (r < 0)
                return r;
        r = column_strdup(st, 9, &j.result);
        if (r < 0)
                return r;
        r = column_strdup(st, 10, &j.error);
        if (r < 0)
                return r;
        j.created_at = sqlite3_column_int64(st, 11);
        j.started_at = sqlite3_column_int64(st, 12);
        j.finished_at = sqlite3_column_int64(st, 13);
        j.has_exit_code = sqlite3_column_type(st, 14) == SQLITE_INTEGER;
        j.exit_code = j.has_exit_code ? sqlite3_column_int(st, 14) : 0;
        *ret = j;
        j = (struct store_job){};
        return 0;
}

static int job_id_new(char ret[static STORE_JOB_ID_SIZE])
{
        static const char hex[] = "0123456789abcdef";
        uint8_t b[STORE_JOB_ID_LEN / 2];
        size_t got = 0;

        while (got < sizeof(b)) {
                ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) n;
        }
        for (size_t i = 0; i < sizeof(b); i++) {
                ret[2 * i] = hex[b[i] >> 4];
                ret[2 * i + 1] = hex[b[i] & 0xf];
        }
        ret[STORE_JOB_ID_LEN] = '\0';
        return 0;
}

int store_job_insert(struct store *s, int64_t app_id, const struct store_acl *acl, int priority,
                     const char *spec, char ret_id[static STORE_JOB_ID_SIZE])
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char id[STORE_JOB_ID_SIZE];
        int r;

        if (app_id <= 0)
                return -EINVAL;
        r = check_acl(acl);
        if (r < 0)
                return r;
        r = check_text(spec, STORE_JSON_MAX, false);
        if (r < 0)
                return r;
        /* 128 random bits: a collision (-EEXIST) would need ~2^64 jobs. */
        r = job_id_new(id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO jobs (id, app_id, owner_id, group_id, mode, state, priority, spec,"
                    " created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tllliitl", id, app_id, acl->owner, acl->group, (int) acl->mode, priority,
                 spec, now());
        if (r < 0)
                return r;
        r = step_done(s, st); /* commits: the WAL is fdatasync'd before this returns */
        if (r < 0)
                return r;
        memcpy(ret_id, id, STORE_JOB_ID_SIZE);
        return 0;
}

int store_job_get(struct store *s, const char *id, struct store_job *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_job j;
        int r;

        if (!store_job_id_valid(id))
                return -EINVAL;
        r = prepare(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "t", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = job_from_row(st, &j);
        if (r < 0)
                return r;
        *ret = j;
        return 0;
}

/*
 * The READ rule of src/auth/access.h, for a reader who is not an administrator: exactly one class
 * applies (owner, else group, else other) and only its read bit counts (0400 = 256, 0040 = 32,
 * 0004 = 4). Owner 0 and group 0 match no one. The reader's groups come bound as one JSON array of
 * integers, so the statement text never depends on them.
 */
#define READER_CLAUSE                                                                       \
        " AND (CASE WHEN owner_id != 0 AND owner_id = :reader THEN mode & 256"              \
        " WHEN group_id != 0 AND group_id IN (SELECT value FROM json_each(:reader_groups))" \
        " THEN mode & 32 ELSE mode & 4 END) != 0"

/* "[g1,g2,...]": at most STORE_USER_GROUPS_MAX ids of at most 19 digits, commas, brackets. */
#define READER_GROUPS_JSON_SIZE (STORE_USER_GROUPS_MAX * 20 + 3)

static int reader_groups_json(const int64_t *groups, size_t n,
                              char ret[static READER_GROUPS_JSON_SIZE])
{
        size_t len = 0;
        int r;

        if (n > STORE_USER_GROUPS_MAX)
                return -E2BIG;
        if (n > 0 && !groups)
                return -EINVAL;
        ret[len++] = '[';
        for (size_t i = 0; i < n; i++) {
                if (groups[i] < 0)
                        return -EINVAL;
                r = snprintf(ret + len, READER_GROUPS_JSON_SIZE - len, "%s%" PRIi64,
                             i > 0 ? "," : "", groups[i]);
                assert(r > 0 && (size_t) r < READER_GROUPS_JSON_SIZE - len);
                len += (size_t) r;
        }
        assert(len + 2 <= READER_GROUPS_JSON_SIZE);
        ret[len++] = ']';
        ret[len] = '\0';
        return 0;
}

int store_job_list(struct store *s, const struct store_job_filter *f, struct store_job **ret_jobs,
                   size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_job *jobs = NULL;
        char groups_json[READER_GROUPS_JSON_SIZE] = "[]";
        bool cursor, by_reader;
        char sql[1024];
        size_t n = 0;
        int r;

        if (!f || f->owner < 0 || (f->by_state && !store_job_state_to_string(f->state)))
                return -EINVAL;
        cursor = f->after_id && f->after_id[0];
        if (cursor && !store_job_id_valid(f->after_id))
                return -EINVAL;
        r = check_limit(f->limit);
        if (r < 0)
                return r;
        if (f->by_reader) {
                if (f->reader < 0)
                        return -EINVAL;
                r = reader_groups_json(f->reader_groups, f->n_reader_groups, groups_json);
                if (r < 0)
                        return r;
        }
        /* an administrator reads everything: no clause */
        by_reader = f->by_reader && !f->reader_is_admin;

        /* Constant fragments only; the values are bound. */
        r = snprintf(sql, sizeof(sql), "SELECT %s FROM jobs WHERE 1%s%s%s%s %s",
                     JOB_SUMMARY_COLUMNS, f->owner > 0 ? " AND owner_id = :owner" : "",
                     f->by_state ? " AND state = :state" : "", by_reader ? READER_CLAUSE : "",
                     cursor ? " AND (created_at, id) < (:after_created_at, :after_id)" : "",
                     "ORDER BY created_at DESC, id DESC LIMIT :limit");
        assert(r > 0 && (size_t) r < sizeof(sql));
        r = prepare(s, sql, &st);
        if (r < 0)
                return r;

        struct {
                const char *name;
                bool text;
                int64_t v;
                const char *t;
        } params[] = {
                {":owner", false, f->owner, NULL},
                {":state", true, 0, f->by_state ? store_job_state_to_string(f->state) : NULL},
                {":reader", false, f->reader, NULL},
                {":reader_groups", true, 0, groups_json},
                {":after_created_at", false, f->after_created_at, NULL},
                {":after_id", true, 0, f->after_id},
                {":limit", false, (int64_t) f->limit, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(params); i++) {
                int idx = sqlite3_bind_parameter_index(st, params[i].name), rc;

                if (idx == 0)
                        continue; /* this filter is not in the query */
                rc = params[i].text ? sqlite3_bind_text(st, idx, params[i].t, -1, SQLITE_STATIC)
                                    : sqlite3_bind_int64(st, idx, params[i].v);
                if (rc != SQLITE_OK)
                        return sqlite_errno(s->db, rc);
        }

        jobs = calloc(f->limit, sizeof(*jobs));
        if (!jobs)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < f->limit) {
                r = job_from_row(st, &jobs[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_job_array_free(jobs, n);
                return r;
        }
        if (n == 0)
                jobs = (free(jobs), NULL);
        *ret_jobs = jobs;
        *ret_n = n;
        return 0;
}

/* The edges of the state machine: allowed_from[to] is the set of states a job may leave for it. */
#define BIT(s) (1u << (s))
static const unsigned allowed_from[_STORE_JOB_STATE_MAX] = {
        [STORE_JOB_QUEUED] = BIT(STORE_JOB_RUNNING),
        [STORE_JOB_RUNNING] = BIT(STORE_JOB_QUEUED),
        [STORE_JOB_FINISHED] = BIT(STORE_JOB_RUNNING),
        [STORE_JOB_FAILED] = BIT(STORE_JOB_RUNNING),
        [STORE_JOB_CANCELLED] = BIT(STORE_JOB_QUEUED) | BIT(STORE_JOB_RUNNING),
};

/* After an UPDATE ... WHERE id = ? AND state ... changed nothing: was the job there at all? */
static int job_missing_or_stale(struct store *s, const char *id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "SELECT 1 FROM jobs WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "t", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        return r > 0 ? -ESTALE : -ENOENT;
}

/*
 * Moves the job to `to` if its state is in from_mask (a subset of allowed_from[to]), in one
 * UPDATE: the compare and the set happen under the write lock. For final states with_result also
 * stores result and error.
 */
static int job_move(struct store *s, const char *id, unsigned from_mask, enum store_job_state to,
                    bool with_result, const char *result, const char *error)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const char *from_names[2] = {};
        size_t k = 0;
        int r;

        for (int i = 0; i < _STORE_JOB_STATE_MAX; i++)
                if (from_mask & BIT(i)) {
                        assert(k < ELEMENTSOF(from_names));
                        from_names[k++] = job_state_names[i];
                }
        if (k == 1)
                from_names[1] = from_names[0];

        switch (to) {
        case STORE_JOB_RUNNING:
                r = prepare(s,
                            "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
                            " started_at = ?, finished_at = NULL WHERE id = ? AND state IN (?, ?)",
                            &st);
                if (r < 0)
                        return r;
                r = bind(s, st, "lttt", now(), id, from_names[0], from_names[1]);
                break;
        case STORE_JOB_QUEUED:
                /* started_at stays: the start of the latest attempt */
                r = prepare(s,
                            "UPDATE jobs SET state = 'queued', finished_at = NULL"
                            " WHERE id = ? AND state IN (?, ?)",
                            &st);
                if (r < 0)
                        return r;
                r = bind(s, st, "ttt", id, from_names[0], from_names[1]);
                break;
        case STORE_JOB_FINISHED:
        case STORE_JOB_FAILED:
        case STORE_JOB_CANCELLED:
                if (with_result) {
                        r = prepare(s,
                                    "UPDATE jobs SET state = ?, finished_at = ?, result = ?,"
                                    " error = ? WHERE id = ? AND state IN (?, ?)",
                                    &st);
                        if (r < 0)
                                return r;
                        r = bind(s, st, "tlttttt", job_state_names[to], now(), result, error, id,
                                 from_names[0], from_names[1]);
                } else {
                        r = prepare(s,
                                    "UPDATE jobs SET state = ?, finished_at = ?"
                                    " WHERE id = ? AND state IN (?, ?)",
                                    &st);
                        if (r < 0)
                                return r;
                        r = bind(s, st, "tlttt", job_state_names[to], now(), id, from_names[0],
                                 from_names[1]);
                }
                break;
        case _STORE_JOB_STATE_MAX:
        case _STORE_JOB_STATE_INVALID:
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        r = step_done(s, st);
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0)
                return 0;
        return job_missing_or_stale(s, id);
}

int store_job_transition(struct store *s, const char *id, enum store_job_state from,
                         enum store_job_state to)
{
        if (!store_job_id_valid(id) || !store_job_state_to_string(from) ||
            !store_job_state_to_string(to) || !(allowed_from[to] & BIT(from)))
                return -EINVAL;
        return job_move(s, id, BIT(from), to, false, NULL, NULL);
}

int store_job_finish(struct store *s, const char *id, enum store_job_state state,
                     const char *result, const char *error)
{
        int r;

        if (!store_job_id_valid(id))
                return -EINVAL;
        if (state != STORE_JOB_FINISHED && state != STORE_JOB_FAILED &&
            state != STORE_JOB_CANCELLED)
                return -EINVAL;
        r = check_text(result, STORE_JSON_MAX, true);
        if (r < 0)
                return r;
        r = check_text(error, STORE_ERROR_MAX, true);
        if (r < 0)
                return r;
        return job_move(s, id, allowed_from[state], state, true, result, error);
}

int store_job_claim_next(struct store *s, struct store_job *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_(store_job_clear) struct store_job j = {};
        int r;

        /*
         * One statement, so one transaction: it takes the write lock before it reads, so no
         * other connection can claim the same row between our choice and our update.
         * INDEXED BY: without statistics the planner prefers jobs_state and sorts every queued
         * job; the partial index has the answer as its first entry (and a schema without it
         * fails loudly here instead of slowly).
         */
        r = prepare(s,
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?"
                    " WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_queue"
                    "              WHERE state = 'queued' ORDER BY priority DESC, seq LIMIT 1)"
                    " RETURNING " JOB_COLUMNS,
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", now());
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = job_from_row(st, &j);
        if (r < 0)
                return r;
        r = step_done(s, st); /* the commit (and its fsync) happens here */
        if (r < 0)
                return r;
        *ret = j;
        j = (struct store_job){};
        return 0;
}

int store_jobs_requeue_running(struct store *s, uint64_t *ret_count)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "UPDATE jobs SET state = 'queued' WHERE state = 'running'", &st);
        if (r < 0)
                return r;
        return update_many(s, st, ret_count);
}

int store_job_count_by_state(struct store *s, uint64_t ret_counts[static _STORE_JOB_STATE_MAX])
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        uint64_t counts[_STORE_JOB_STATE_MAX] = {};
        int r;

        r = prepare(s, "SELECT state, count(*) FROM jobs GROUP BY state", &st);
        if (r < 0)
                return r;
        while ((r = step(s, st)) > 0) {
                int k = state_from_row(st, 0, job_state_names, _STORE_JOB_STATE_MAX);
                if (k < 0)
                        return k;
                counts[k] = (uint64_t) sqlite3_column_int64(st, 1);
        }
        if (r < 0)
                return r;
        memcpy(ret_counts, counts, sizeof(counts));
        return 0;
}

/* ---- data ---- */

#define DATA_COLUMNS "id, name, size, sha256, confidential, owner_id, group_id, mode, created_at"

void store_data_clear(struct store_data *d)
{
        if (!d)
                return;
        free(d->name);
        *d = (struct store_data){};
}

struct store_data *store_data_array_free(struct store_data *d, size_t n)
{
        for (size_t i = 0; d && i < n; i++)
                store_data_clear(&d[i]);
        free(d);
        return NULL;
}

bool store_data_name_valid(const char *name)
{
        size_t n;

        if (!name)
                return false;
        n = strnlen(name, STORE_DATA_NAME_MAX + 1);
        if (n == 0 || n > STORE_DATA_NAME_MAX || !utf8_valid(name, n))
                return false;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) name[i];

                if (c == '/' || c < 0x20 || c == 0x7f)
                        return false;
                /* C1 controls, U+0080..U+009F: 0xc2 0x80..0x9f in UTF-8 */
                if (c == 0xc2 && i + 1 < n && (unsigned char) name[i + 1] <= 0x9f)
                        return false;
        }
        return true;
}

bool store_data_id_valid(const char *id)
{
        return store_job_id_valid(id);
}

bool store_sha256_valid(const char *s)
{
        if (!s)
                return false;
        for (size_t i = 0; i < STORE_SHA256_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return s[STORE_SHA256_LEN] == '\0';
}

static int data_from_row(sqlite3_stmt *st, struct store_data *ret)
{
        _cleanup_(store_data_clear) struct store_data d = {};
        const unsigned char *id, *sha;
        int64_t size;
        int r;

        id = sqlite3_column_text(st, 0);
        sha = sqlite3_column_text(st, 3);
        if (!id || !sha)
                return -EBADMSG;
        if (!store_data_id_valid((const char *) id) || !store_sha256_valid((const char *) sha))
                return -EBADMSG;
        memcpy(d.id, id, STORE_DATA_ID_SIZE);
        memcpy(d.sha256, sha, STORE_SHA256_SIZE);
        r = column_strdup(st, 1, &d.name);
        if (r < 0)
                return r;
        if (!d.name)
                return -EBADMSG;
        size = sqlite3_column_int64(st, 2);
        if (size < 0)
                return -EBADMSG;
        d.size = (uint64_t) size;
        d.confidential = sqlite3_column_int(st, 4) != 0;
        acl_from_row(st, 5, &d.acl);
        d.created_at = sqlite3_column_int64(st, 8);
        *ret = d;
        d = (struct store_data){};
        return 0;
}

int store_data_insert(struct store *s, const char *name, uint64_t size, const char *sha256,
                      bool confidential, const struct store_acl *acl,
                      char ret_id[static STORE_DATA_ID_SIZE])
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char id[STORE_DATA_ID_SIZE];
        int r;

        if (!store_data_name_valid(name) || !store_sha256_valid(sha256) || size > INT64_MAX)
                return -EINVAL;
        r = check_acl(acl);
        if (r < 0)
                return r;
        r = job_id_new(id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO data (id, name, size, sha256, confidential, owner_id, group_id,"
                    " mode, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ttltillil", id, name, (int64_t) size, sha256, confidential ? 1 : 0,
                 acl->owner, acl->group, (int) acl->mode, now());
        if (r < 0)
                return r;
        r = step_done(s, st);
        if (r < 0)
                return r;
        memcpy(ret_id, id, STORE_DATA_ID_SIZE);
        return 0;
}

int store_data_get(struct store *s, const char *id, struct store_data *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_data d;
        int r;

        if (!store_data_id_valid(id))
                return -EINVAL;
        r = prepare(s, "SELECT " DATA_COLUMNS " FROM data WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "t", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = data_from_row(st, &d);
        if (r < 0)
                return r;
        *ret = d;
        return 0;
}

int store_data_list(struct store *s, const struct store_data_filter *f, struct store_data **ret,
                    size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_data *list = NULL;
        char groups_json[READER_GROUPS_JSON_SIZE] = "[]";
        bool cursor, by_reader;
        char sql[1024];
        size_t n = 0;
        int r;

        if (!f)
                return -EINVAL;
        cursor = f->after_id && f->after_id[0];
        if (cursor && !store_data_id_valid(f->after_id))
                return -EINVAL;
        r = check_limit(f->limit);
        if (r < 0)
                return r;
        if (f->by_reader) {
                if (f->reader < 0)
                        return -EINVAL;
                r = reader_groups_json(f->reader_groups, f->n_reader_groups, groups_json);
                if (r < 0)
                        return r;
        }
        by_reader = f->by_reader && !f->reader_is_admin;

        /* Constant fragments only; the values are bound. */
        r = snprintf(sql, sizeof(sql), "SELECT %s FROM data WHERE 1%s%s %s", DATA_COLUMNS,
                     by_reader ? READER_CLAUSE : "",
                     cursor ? " AND (created_at, id) < (:after_created_at, :after_id)" : "",
                     "ORDER BY created_at DESC, id DESC LIMIT :limit");
        assert(r > 0 && (size_t) r < sizeof(sql));
        r = prepare(s, sql, &st);
        if (r < 0)
                return r;

        struct {
                const char *name;
                bool text;
                int64_t v;
                const char *t;
        } params[] = {
                {":reader", false, f->reader, NULL},
                {":reader_groups", true, 0, groups_json},
                {":after_created_at", false, f->after_created_at, NULL},
                {":after_id", true, 0, f->after_id},
                {":limit", false, (int64_t) f->limit, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(params); i++) {
                int idx = sqlite3_bind_parameter_index(st, params[i].name), rc;

                if (idx == 0)
                        continue;
                rc = params[i].text ? sqlite3_bind_text(st, idx, params[i].t, -1, SQLITE_STATIC)
                                    : sqlite3_bind_int64(st, idx, params[i].v);
                if (rc != SQLITE_OK)
                        return sqlite_errno(s->db, rc);
        }

        list = calloc(f->limit, sizeof(*list));
        if (!list)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < f->limit) {
                r = data_from_row(st, &list[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_data_array_free(list, n);
                return r;
        }
        if (n == 0)
                list = (free(list), NULL);
        *ret = list;
        *ret_n = n;
        return 0;
}

/* 1 if a data object has the digest or a job's spec or result mentions it; inside or outside a
 * transaction. A digest is 64 hex digits: a textual match in a job's JSON is a reference or a
 * coincidence no one can arrange without the content, and keeping a blob is the safe side. */
static int blob_referenced(struct store *s, const char *sha256)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s,
                    "SELECT EXISTS (SELECT 1 FROM data WHERE sha256 = ?1)"
                    " OR EXISTS (SELECT 1 FROM jobs WHERE instr(result, ?1) > 0"
                    "            OR instr(spec, ?1) > 0)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "t", sha256);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        return sqlite3_column_int(st, 0) != 0;
}

int store_blob_referenced(struct store *s, const char *sha256)
{
        if (!store_sha256_valid(sha256))
                return -EINVAL;
        return blob_referenced(s, sha256);
}

int store_data_delete(struct store *s, const char *id, bool *ret_unreferenced)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char sha[STORE_SHA256_SIZE];
        const unsigned char *t;
        int r, referenced;

        if (!store_data_id_valid(id))
                return -EINVAL;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = prepare(s, "DELETE FROM data WHERE id = ? RETURNING sha256", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "t", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        t = sqlite3_column_text(st, 0);
        if (!t || !store_sha256_valid((const char *) t))
                return -EBADMSG;
        memcpy(sha, t, sizeof(sha));
        r = step_done(s, st);
        if (r < 0)
                return r;
        st = (sqlite3_finalize(st), NULL);
        referenced = blob_referenced(s, sha);
        if (referenced < 0)
                return referenced;
        r = tx_commit(&tx);
        if (r < 0)
                return r;
        if (ret_unreferenced)
                *ret_unreferenced = referenced == 0;
        return 0;
}

/* ---- acls ---- */

/* Constant statements, one per kind: the table name is never assembled at run time. */
static const char *const set_acl_sql[_STORE_KIND_MAX] = {
        [STORE_KIND_USER] = "UPDATE users SET owner_id = ?, group_id = ?, mode = ? WHERE id = ?",
        [STORE_KIND_GROUP] = "UPDATE groups SET owner_id = ?, group_id = ?, mode = ? WHERE id = ?",
        [STORE_KIND_APP] = "UPDATE apps SET owner_id = ?, group_id = ?, mode = ? WHERE id = ?",
        [STORE_KIND_JOB] = "UPDATE jobs SET owner_id = ?, group_id = ?, mode = ? WHERE id = ?",
        [STORE_KIND_DATA] = "UPDATE data SET owner_id = ?, group_id = ?, mode = ? WHERE id = ?",
};

/* 0 if a row with this id is in the table, -ENOENT if not; the SQL selects by one id. */
static int row_exists(struct store *s, const char *sql, int64_t id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        return r > 0 ? 0 : -ENOENT;
}

/*
 * Checks the new owner and group and updates the object in one transaction: the write lock is
 * taken first, so neither can be deleted between the check and the update. The object is
 * text_id (a job or data) if not NULL, else id.
 */
static int set_acl(struct store *s, enum store_kind kind, int64_t id, const char *text_id,
                   const struct store_acl *acl)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = check_acl(acl);
        if (r < 0)
                return r;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        if (acl->owner > 0) {
                r = row_exists(s, "SELECT 1 FROM users WHERE id = ?", acl->owner);
                if (r < 0)
                        return r;
        }
        if (acl->group > 0) {
                r = row_exists(s, "SELECT 1 FROM groups WHERE id = ?", acl->group);
                if (r < 0)
                        return r;
        }
        r = prepare(s, set_acl_sql[kind], &st);
        if (r < 0)
                return r;
        r = text_id ? bind(s, st, "llit", acl->owner, acl->group, (int) acl->mode, text_id)
                    : bind(s, st, "llil", acl->owner, acl->group, (int) acl->mode, id);
        if (r < 0)
                return r;
        r = update_one(s, st);
        if (r < 0)
                return r;
        return tx_commit(&tx);
}

int store_object_set_acl(struct store *s, enum store_kind kind, int64_t id,
                         const struct store_acl *acl)
{
        /* a job is named by its text id: store_job_set_acl() */
        if (kind != STORE_KIND_USER && kind != STORE_KIND_GROUP && kind != STORE_KIND_APP)
                return -EINVAL;
        return set_acl(s, kind, id, NULL, acl);
}

int store_job_set_acl(struct store *s, const char *job_id, const struct store_acl *acl)
{
        if (!store_job_id_valid(job_id))
                return -EINVAL;
        return set_acl(s, STORE_KIND_JOB, 0, job_id, acl);
}

int store_data_set_acl(struct store *s, const char *data_id, const struct store_acl *acl)
{
        if (!store_data_id_valid(data_id))
                return -EINVAL;
        return set_acl(s, STORE_KIND_DATA, 0, data_id, acl);
}

/* ---- audit ---- */

#define AUDIT_COLUMNS "id, at, actor, event, object, detail, peer"

void store_audit_clear(struct store_audit *a)
{
        if (!a)
                return;
        free(a->event);
        free(a->object);
        free(a->detail);
        free(a->peer);
        *a = (struct store_audit){};
}

struct store_audit *store_audit_array_free(struct store_audit *a, size_t n)
{
        for (size_t i = 0; a && i < n; i++)
                store_audit_clear(&a[i]);
        free(a);
        return NULL;
}

static bool audit_event_valid(const char *event)
{
        size_t n;

        if (!event)
                return false;
        n = strnlen(event, STORE_AUDIT_EVENT_MAX + 1);
        if (n == 0 || n > STORE_AUDIT_EVENT_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((event[i] >= 'a' && event[i] <= 'z') || event[i] == '_'))
                        return false;
        return true;
}

/*
 * The number of bytes of t to keep so that it fits in max: all of it if it fits, else max bytes
 * less a UTF-8 character that the cut would split (its lead byte and the continuation bytes that
 * fit go too). Never reads past t[max]. A text that is not UTF-8 loses at most 3 more bytes.
 */
static size_t utf8_cut(const char *t, size_t max)
{
        size_t n = strnlen(t, max + 1);

        if (n <= max)
                return n;
        n = max;
        /* t[n] is the first byte dropped: while it continues a character, drop that one too */
        for (int k = 0; k < 3 && n > 0 && ((unsigned char) t[n] & 0xc0) == 0x80; k++)
                n--;
        return n;
}

int store_audit_append(struct store *s, int64_t actor, const char *event, const char *object,
                       const char *detail, const char *peer)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (actor < 0 || !audit_event_valid(event))
                return -EINVAL;
        r = prepare(s,
                    "INSERT INTO audit (at, actor, event, object, detail, peer)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "lltsss", now(), actor, event, object,
                 object ? (int) utf8_cut(object, STORE_AUDIT_OBJECT_MAX) : 0, detail,
                 detail ? (int) utf8_cut(detail, STORE_AUDIT_DETAIL_MAX) : 0, peer,
                 peer ? (int) utf8_cut(peer, STORE_AUDIT_PEER_MAX) : 0);
        if (r < 0)
                return r;
        return step_done(s, st); /* commits: the record is fsync'd before this returns */
}

static int audit_from_row(sqlite3_stmt *st, struct store_audit *ret)
{
        _cleanup_(store_audit_clear) struct store_audit a = {};
        int r;

        a.id = sqlite3_column_int64(st, 0);
        a.at = sqlite3_column_int64(st, 1);
        a.actor = sqlite3_column_int64(st, 2);
        r = column_strdup(st, 3, &a.event);
        if (r < 0)
                return r;
        if (!a.event)
                return -EBADMSG;
        r = column_strdup(st, 4, &a.object);
        if (r < 0)
                return r;
        r = column_strdup(st, 5, &a.detail);
        if (r < 0)
                return r;
        r = column_strdup(st, 6, &a.peer);
        if (r < 0)
                return r;
        *ret = a;
        a = (struct store_audit){};
        return 0;
}

int store_audit_list(struct store *s, int64_t after_id, size_t limit, struct store_audit **ret,
                     size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_audit *records = NULL;
        size_t n = 0;
        int r;

        r = check_limit(limit);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT " AUDIT_COLUMNS " FROM audit WHERE id > ? ORDER BY id LIMIT ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", after_id, (int64_t) limit);
        if (r < 0)
                return r;
        records = calloc(limit, sizeof(*records));
        if (!records)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < limit) {
                r = audit_from_row(st, &records[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_audit_array_free(records, n);
                return r;
        }
        if (n == 0)
                records = (free(records), NULL);
        *ret = records;
        *ret_n = n;
        return 0;
}

/* ---- workers ---- */

#define WORKER_COLUMNS                                                                        \
        "id, name, public_key, confinement, group_id, owner_id, user_id, errors, created_at," \
        " last_seen"

static const char *const confinement_names[_STORE_WORKER_CONFINEMENT_MAX] = {
        [STORE_WORKER_PUBLIC] = "public",
        [STORE_WORKER_GROUP] = "group",
        [STORE_WORKER_PRIVATE] = "private",
};

const char *store_worker_confinement_to_string(enum store_worker_confinement c)
{
        if ((int) c < 0 || c >= _STORE_WORKER_CONFINEMENT_MAX)
                return NULL;
        return confinement_names[c];
}

enum store_worker_confinement store_worker_confinement_from_string(const char *s)
{
        return (enum store_worker_confinement) lookup_name(confinement_names,
                                                           _STORE_WORKER_CONFINEMENT_MAX, s);
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

bool store_curve_key_valid(const char *key)
{
        return key && z85_key_valid(key, strnlen(key, STORE_CURVE_KEY_LEN + 1));
}

/* A confinement and the ids that go with it (the schema's CHECK, said first as -EINVAL). */
static int check_confinement(enum store_worker_confinement c, int64_t group_id, int64_t owner_id)
{
        switch (c) {
        case STORE_WORKER_PUBLIC:
                return group_id == 0 && owner_id == 0 ? 0 : -EINVAL;
        case STORE_WORKER_GROUP:
                return group_id > 0 && owner_id == 0 ? 0 : -EINVAL;
        case STORE_WORKER_PRIVATE:
                return group_id == 0 && owner_id > 0 ? 0 : -EINVAL;
        case _STORE_WORKER_CONFINEMENT_MAX:
        case _STORE_WORKER_CONFINEMENT_INVALID:
        default:
                return -EINVAL;
        }
}

/* -ENOENT if the group or the owner of a confinement names nothing; in a transaction. */
static int confinement_targets_exist(struct store *s, int64_t group_id, int64_t owner_id)
{
        int r;

        if (group_id > 0) {
                r = row_exists(s, "SELECT 1 FROM groups WHERE id = ?", group_id);
                if (r < 0)
                        return r;
        }
        if (owner_id > 0) {
                r = row_exists(s, "SELECT 1 FROM users WHERE id = ?", owner_id);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int worker_from_row(sqlite3_stmt *st, struct store_worker *ret)
{
        _cleanup_(store_worker_clear) struct store_worker w = {};
        const unsigned char *key;
        int r;

        w.id = sqlite3_column_int64(st, 0);
        r = column_strdup(st, 1, &w.name);
        if (r < 0)
                return r;
        if (!w.name)
                return -EBADMSG;
        key = sqlite3_column_text(st, 2);
        if (!key || !store_curve_key_valid((const char *) key))
                return -EBADMSG;
        memcpy(w.public_key, key, STORE_CURVE_KEY_SIZE);
        r = state_from_row(st, 3, confinement_names, _STORE_WORKER_CONFINEMENT_MAX);
        if (r < 0)
                return r;
        w.confinement = (enum store_worker_confinement) r;
        w.group_id = sqlite3_column_int64(st, 4);
        w.owner_id = sqlite3_column_int64(st, 5);
        w.user_id = sqlite3_column_int64(st, 6);
        w.errors = (uint64_t) sqlite3_column_int64(st, 7);
        w.created_at = sqlite3_column_int64(st, 8);
        w.last_seen = sqlite3_column_int64(st, 9);
        *ret = w;
        w = (struct store_worker){};
        return 0;
}

/*
 * Inserts a worker and its account inside the caller's transaction. The account is a user
 * without a password that owns its own record (mode 0700), named like the worker: a name taken
 * by a user or a worker is -EEXIST either way (a worker's name is its account's).
 */
static int worker_insert(struct store *s, const char *name, const char *public_key,
                         enum store_worker_confinement c, int64_t group_id, int64_t owner_id,
                         int worker_rights, int64_t *ret_id)
{
        static const struct store_acl self_acl = {.owner = 0, .group = 0, .mode = 0700};
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t user_id, id;
        int r;

        r = confinement_targets_exist(s, group_id, owner_id);
        if (r < 0)
                return r;
        r = user_insert(s, name, NULL, worker_rights, STORE_USER_ACTIVE, &self_acl, &user_id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO workers (name, public_key, confinement, group_id, owner_id,"
                    " user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tttllll", name, public_key, confinement_names[c], group_id, owner_id,
                 user_id, now());
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        id = sqlite3_column_int64(st, 0);
        r = step_done(s, st);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int check_worker_args(const char *name, const char *public_key,
                             enum store_worker_confinement c, int64_t group_id, int64_t owner_id)
{
        if (!store_name_valid(name) || !store_curve_key_valid(public_key))
                return -EINVAL;
        return check_confinement(c, group_id, owner_id);
}

int store_worker_create(struct store *s, const char *name, const char *public_key,
                        enum store_worker_confinement confinement, int64_t group_id,
                        int64_t owner_id, int worker_rights, int64_t *ret_id)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        int64_t id;
        int r;

        r = check_worker_args(name, public_key, confinement, group_id, owner_id);
        if (r < 0)
                return r;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = worker_insert(s, name, public_key, confinement, group_id, owner_id, worker_rights, &id);
        if (r < 0)
                return r;
        r = tx_commit(&tx);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

static int worker_get(struct store *s, const char *sql, int64_t id, const char *text,
                      struct store_worker *ret)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        r = text ? bind(s, st, "t", text) : bind(s, st, "l", id);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        return worker_from_row(st, ret);
}

int store_worker_get(struct store *s, int64_t id, struct store_worker *ret)
{
        return worker_get(s, "SELECT " WORKER_COLUMNS " FROM workers WHERE id = ?", id, NULL, ret);
}

int store_worker_get_by_name(struct store *s, const char *name, struct store_worker *ret)
{
        if (!store_name_valid(name))
                return -EINVAL;
        return worker_get(s, "SELECT " WORKER_COLUMNS " FROM workers WHERE name = ?", 0, name, ret);
}

int store_worker_get_by_key(struct store *s, const char *public_key, struct store_worker *ret)
{
        if (!store_curve_key_valid(public_key))
                return -EINVAL;
        return worker_get(s, "SELECT " WORKER_COLUMNS " FROM workers WHERE public_key = ?", 0,
                          public_key, ret);
}

int store_worker_list(struct store *s, int64_t after_id, size_t limit, struct store_worker **ret,
                      size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        struct store_worker *workers = NULL;
        size_t n = 0;
        int r;

        r = check_limit(limit);
        if (r < 0)
                return r;
        r = prepare(s, "SELECT " WORKER_COLUMNS " FROM workers WHERE id > ? ORDER BY id LIMIT ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", after_id, (int64_t) limit);
        if (r < 0)
                return r;
        workers = calloc(limit, sizeof(*workers));
        if (!workers)
                return -ENOMEM;
        while ((r = step(s, st)) > 0 && n < limit) {
                r = worker_from_row(st, &workers[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_worker_array_free(workers, n);
                return r;
        }
        if (n == 0)
                workers = (free(workers), NULL);
        *ret = workers;
        *ret_n = n;
        return 0;
}

int store_worker_delete(struct store *s, int64_t id)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *del = NULL, *user = NULL;
        int64_t user_id;
        int r;

        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        /* the trigger workers_requeue puts its assigned replicas back in the queue */
        r = prepare(s, "DELETE FROM workers WHERE id = ? RETURNING user_id", &del);
        if (r < 0)
                return r;
        r = bind(s, del, "l", id);
        if (r < 0)
                return r;
        r = step(s, del);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        user_id = sqlite3_column_int64(del, 0);
        r = step_done(s, del);
        if (r < 0)
                return r;
        r = prepare(s, "DELETE FROM users WHERE id = ?", &user);
        if (r < 0)
                return r;
        r = bind(s, user, "l", user_id);
        if (r < 0)
                return r;
        r = step_done(s, user);
        if (r < 0)
                return r;
        return tx_commit(&tx);
}

int store_worker_add_error(struct store *s, int64_t id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "UPDATE workers SET errors = errors + 1 WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

int store_worker_touch(struct store *s, int64_t id, int64_t at)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "UPDATE workers SET last_seen = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ll", at, id);
        if (r < 0)
                return r;
        return update_one(s, st);
}

/* ---- worker join tokens ---- */

int store_worker_token_create(struct store *s,
                              const uint8_t hash[static STORE_WORKER_TOKEN_HASH_SIZE],
                              enum store_worker_confinement confinement, int64_t group_id,
                              int64_t owner_id, int64_t expires_at)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = check_confinement(confinement, group_id, owner_id);
        if (r < 0)
                return r;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = confinement_targets_exist(s, group_id, owner_id);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO worker_tokens (hash, confinement, group_id, owner_id, expires_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "btlll", (const void *) hash, STORE_WORKER_TOKEN_HASH_SIZE,
                 confinement_names[confinement], group_id, owner_id, expires_at);
        if (r < 0)
                return r;
        r = step_done(s, st);
        if (r < 0)
                return r;
        return tx_commit(&tx);
}

int store_worker_token_redeem(struct store *s,
                              const uint8_t hash[static STORE_WORKER_TOKEN_HASH_SIZE],
                              int64_t now_at, const char *name, const char *public_key,
                              int worker_rights, int64_t *ret_worker_id)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *del = NULL;
        int64_t group_id, owner_id, expires_at, id;
        enum store_worker_confinement c;
        int r;

        if (!store_name_valid(name) || !store_curve_key_valid(public_key))
                return -EINVAL;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = prepare(s,
                    "DELETE FROM worker_tokens WHERE hash = ?"
                    " RETURNING confinement, group_id, owner_id, expires_at",
                    &del);
        if (r < 0)
                return r;
        r = bind(s, del, "b", (const void *) hash, STORE_WORKER_TOKEN_HASH_SIZE);
        if (r < 0)
                return r;
        r = step(s, del);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = state_from_row(del, 0, confinement_names, _STORE_WORKER_CONFINEMENT_MAX);
        if (r < 0)
                return r;
        c = (enum store_worker_confinement) r;
        group_id = sqlite3_column_int64(del, 1);
        owner_id = sqlite3_column_int64(del, 2);
        expires_at = sqlite3_column_int64(del, 3);
        r = step_done(s, del);
        if (r < 0)
                return r;

        if (expires_at <= now_at) {
                /* an expired token is of no use to anyone: its deletion is kept */
                r = tx_commit(&tx);
                return r < 0 ? r : -ENOENT;
        }
        /* a failure here rolls the deletion back too: the token stays for another try */
        r = worker_insert(s, name, public_key, c, group_id, owner_id, worker_rights, &id);
        if (r < 0)
                return r;
        r = tx_commit(&tx);
        if (r < 0)
                return r;
        if (ret_worker_id)
                *ret_worker_id = id;
        return 0;
}

int store_worker_tokens_pending(struct store *s, int64_t now_at, uint64_t *ret_count)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "SELECT count(*) FROM worker_tokens WHERE expires_at > ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "l", now_at);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        *ret_count = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

/* ---- replicas ---- */

#define REPLICA_COLUMNS                                                                 \
        "r.job_id, r.idx, r.state, r.worker_id, r.lease, r.attempts, r.vote, r.result," \
        " r.error"
#define REPLICA_SUMMARY_COLUMNS \
        "r.job_id, r.idx, r.state, r.worker_id, r.lease, r.attempts, r.vote, NULL, NULL"

static const char *const replica_state_names[_STORE_REPLICA_STATE_MAX] = {
        [STORE_REPLICA_QUEUED] = "queued",
        [STORE_REPLICA_ASSIGNED] = "assigned",
        [STORE_REPLICA_DONE] = "done",
        [STORE_REPLICA_FAILED] = "failed",
};

const char *store_replica_state_to_string(enum store_replica_state st)
{
        if ((int) st < 0 || st >= _STORE_REPLICA_STATE_MAX)
                return NULL;
        return replica_state_names[st];
}

void store_replica_clear(struct store_replica *r)
{
        if (!r)
                return;
        free(r->result);
        free(r->error);
        *r = (struct store_replica){};
}

struct store_replica *store_replica_array_free(struct store_replica *r, size_t n)
{
        for (size_t i = 0; r && i < n; i++)
                store_replica_clear(&r[i]);
        free(r);
        return NULL;
}

/* A lease is written like a job id: 32 lowercase hex digits. */
_Static_assert(STORE_LEASE_ID_LEN == STORE_JOB_ID_LEN, "lease ids look like job ids");

static bool lease_valid(const char *lease)
{
        return store_job_id_valid(lease);
}

/* Copies a text column that is NULL ("") or passes valid() into ret[size]; -EBADMSG else. */
static int column_fixed(sqlite3_stmt *st, int col, bool (*valid)(const char *), char *ret,
                        size_t size)
{
        const unsigned char *t;

        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                ret[0] = '\0';
                return 0;
        }
        t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;
        if (!valid((const char *) t))
                return -EBADMSG;
        memcpy(ret, t, size);
        return 0;
}

static int replica_from_row(sqlite3_stmt *st, struct store_replica *ret)
{
        _cleanup_(store_replica_clear) struct store_replica rep = {};
        int r;

        r = column_fixed(st, 0, store_job_id_valid, rep.job_id, sizeof(rep.job_id));
        if (r < 0)
                return r;
        if (!rep.job_id[0])
                return -EBADMSG;
        rep.idx = sqlite3_column_int(st, 1);
        r = state_from_row(st, 2, replica_state_names, _STORE_REPLICA_STATE_MAX);
        if (r < 0)
                return r;
        rep.state = (enum store_replica_state) r;
        rep.worker_id = sqlite3_column_int64(st, 3);
        r = column_fixed(st, 4, lease_valid, rep.lease, sizeof(rep.lease));
        if (r < 0)
                return r;
        rep.attempts = sqlite3_column_int(st, 5);
        r = column_fixed(st, 6, store_sha256_valid, rep.vote, sizeof(rep.vote));
        if (r < 0)
                return r;
        r = column_strdup(st, 7, &rep.result);
        if (r < 0)
                return r;
        r = column_strdup(st, 8, &rep.error);
        if (r < 0)
                return r;
        *ret = rep;
        rep = (struct store_replica){};
        return 0;
}

static bool replica_idx_valid(int idx)
{
        return idx >= 0 && idx < STORE_REPLICAS_MAX;
}

int store_job_start_replicas(struct store *s, const char *job_id, int n)
{
        _cleanup_(tx_rollbackp) struct store *tx = NULL;
        _cleanup_stmt_ sqlite3_stmt *old = NULL, *ins = NULL;
        int r;

        if (!store_job_id_valid(job_id) || n < 1 || n > STORE_REPLICAS_MAX)
                return -EINVAL;
        r = tx_begin(s, &tx);
        if (r < 0)
                return r;
        r = job_move(s, job_id, BIT(STORE_JOB_QUEUED), STORE_JOB_RUNNING, false, NULL, NULL);
        if (r < 0)
                return r;
        /* a job re-queued after an earlier start begins afresh */
        r = prepare(s, "DELETE FROM replicas WHERE job_id = ?", &old);
        if (r < 0)
                return r;
        r = bind(s, old, "t", job_id);
        if (r < 0)
                return r;
        r = step_done(s, old);
        if (r < 0)
                return r;
        r = prepare(s, "INSERT INTO replicas (job_id, idx, state) VALUES (?, ?, 'queued')", &ins);
        if (r < 0)
                return r;
        for (int i = 0; i < n; i++) {
                r = bind(s, ins, "ti", job_id, i);
                if (r < 0)
                        return r;
                r = step_done(s, ins);
                if (r < 0)
                        return r;
                (void) sqlite3_reset(ins);
        }
        return tx_commit(&tx);
}

/* Runs a replica query (its parameters bound by the caller) and collects every row. */
static int replica_collect(struct store *s, sqlite3_stmt *st, struct store_replica **ret,
                           size_t *ret_n)
{
        struct store_replica *list = NULL;
        size_t n = 0, size = 0;
        int r;

        while ((r = step(s, st)) > 0) {
                if (n == size) {
                        size_t new_size = size ? 2 * size : STORE_REPLICAS_MAX;
                        struct store_replica *p;

                        if (new_size > SIZE_MAX / sizeof(*list)) {
                                r = -ENOMEM;
                                break;
                        }
                        p = realloc(list, new_size * sizeof(*list));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        list = p;
                        size = new_size;
                }
                r = replica_from_row(st, &list[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                (void) store_replica_array_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int store_replica_list(struct store *s, const char *job_id, struct store_replica **ret,
                       size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (!store_job_id_valid(job_id))
                return -EINVAL;
        r = prepare(s,
                    "SELECT " REPLICA_COLUMNS " FROM replicas r WHERE r.job_id = ? ORDER BY r.idx",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "t", job_id);
        if (r < 0)
                return r;
        return replica_collect(s, st, ret, ret_n);
}

int store_replica_list_assigned(struct store *s, struct store_replica **ret, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s,
                    "SELECT " REPLICA_SUMMARY_COLUMNS
                    " FROM replicas r JOIN jobs j ON j.id = r.job_id"
                    " WHERE r.state = 'assigned' ORDER BY j.seq, r.idx",
                    &st);
        if (r < 0)
                return r;
        return replica_collect(s, st, ret, ret_n);
}

int store_replica_list_queued(struct store *s, struct store_replica **ret, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s,
                    "SELECT " REPLICA_SUMMARY_COLUMNS
                    " FROM replicas r JOIN jobs j ON j.id = r.job_id"
                    " WHERE r.state = 'queued' AND j.state = 'running' ORDER BY j.seq, r.idx",
                    &st);
        if (r < 0)
                return r;
        return replica_collect(s, st, ret, ret_n);
}

/*
 * After a compare-and-set UPDATE of a replica changed nothing: -ENOENT if the replica (or, with
 * worker_id > 0, the worker) does not exist, else -ESTALE.
 */
static int replica_missing_or_stale(struct store *s, const char *job_id, int idx, int64_t worker_id)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "SELECT 1 FROM replicas WHERE job_id = ? AND idx = ?", &st);
        if (r < 0)
                return r;
        r = bind(s, st, "ti", job_id, idx);
        if (r < 0)
                return r;
        r = step(s, st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (worker_id > 0) {
                r = row_exists(s, "SELECT 1 FROM workers WHERE id = ?", worker_id);
                if (r < 0)
                        return r;
        }
        return -ESTALE;
}

/* Runs a one-row compare-and-set UPDATE of a replica. */
static int replica_cas(struct store *s, sqlite3_stmt *st, const char *job_id, int idx,
                       int64_t worker_id)
{
        int r = step_done(s, st);

        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0)
                return 0;
        return replica_missing_or_stale(s, job_id, idx, worker_id);
}

int store_replica_assign(struct store *s, const char *job_id, int idx, int64_t worker_id,
                         const char *lease)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (!store_job_id_valid(job_id) || !replica_idx_valid(idx) || worker_id <= 0 ||
            !lease_valid(lease))
                return -EINVAL;
        /* the worker must exist: once it is gone, workers_requeue could not free the replica */
        r = prepare(s,
                    "UPDATE replicas SET state = 'assigned', worker_id = ?3, lease = ?4,"
                    " attempts = attempts + 1"
                    " WHERE job_id = ?1 AND idx = ?2 AND state = 'queued'"
                    " AND EXISTS (SELECT 1 FROM workers WHERE id = ?3)",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tilt", job_id, idx, worker_id, lease);
        if (r < 0)
                return r;
        return replica_cas(s, st, job_id, idx, worker_id);
}

int store_replica_requeue(struct store *s, const char *job_id, int idx, const char *lease)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (!store_job_id_valid(job_id) || !replica_idx_valid(idx) || !lease_valid(lease))
                return -EINVAL;
        r = prepare(s,
                    "UPDATE replicas SET state = 'queued', worker_id = 0, lease = NULL"
                    " WHERE job_id = ? AND idx = ? AND state = 'assigned' AND lease = ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tit", job_id, idx, lease);
        if (r < 0)
                return r;
        return replica_cas(s, st, job_id, idx, 0);
}

int store_replica_done(struct store *s, const char *job_id, int idx, const char *lease,
                       const char *vote, const char *result)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (!store_job_id_valid(job_id) || !replica_idx_valid(idx) || !lease_valid(lease) ||
            !store_sha256_valid(vote))
                return -EINVAL;
        r = check_text(result, STORE_JSON_MAX, true);
        if (r < 0)
                return r;
        r = prepare(s,
                    "UPDATE replicas SET state = 'done', lease = NULL, vote = ?, result = ?,"
                    " error = NULL WHERE job_id = ? AND idx = ? AND state = 'assigned'"
                    " AND lease = ?",
                    &st);
        if (r < 0)
                return r;
        r = bind(s, st, "tttit", vote, result, job_id, idx, lease);
        if (r < 0)
                return r;
        return replica_cas(s, st, job_id, idx, 0);
}

int store_replica_fail(struct store *s, const char *job_id, int idx, const char *lease,
                       const char *error)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (!store_job_id_valid(job_id) || !replica_idx_valid(idx) ||
            (lease && !lease_valid(lease)))
                return -EINVAL;
        r = prepare(
                s,
                "UPDATE replicas SET state = 'failed', lease = NULL, error = ?1"
                " WHERE job_id = ?2 AND idx = ?3"
                " AND (state = 'queued' OR (state = 'assigned' AND (?4 IS NULL OR lease = ?4)))",
                &st);
        if (r < 0)
                return r;
        /* an error text is cut rather than refused, at a character boundary */
        r = bind(s, st, "stit", error, error ? (int) utf8_cut(error, STORE_ERROR_MAX) : 0, job_id,
                 idx, lease);
        if (r < 0)
                return r;
        return replica_cas(s, st, job_id, idx, 0);
}
