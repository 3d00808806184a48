/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "auth/access.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "store/store.h"
#include "unit.h"

/*
 * Every test gets a fresh directory under $TMPDIR with a database path in it, removed afterwards.
 * The store is real: a file on disk, WAL, fsync. Raw SQLite is used only to inspect or to craft
 * files (an old schema, a newer one).
 */

struct fixture {
        char dir[PATH_MAX / 2];
        char path[PATH_MAX];
};

static int setup(void **state)
{
        const char *tmp = getenv("TMPDIR");
        struct fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (snprintf(f->dir, sizeof(f->dir), "%s/test-store-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
                    (int) sizeof(f->dir) ||
            !mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        if (snprintf(f->path, sizeof(f->path), "%s/warren.db", f->dir) >= (int) sizeof(f->path)) {
                (void) rmdir(f->dir);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        _cleanup_close_ int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        struct dirent *de;

        if (dfd >= 0) {
                d = fdopendir(dfd);
                if (d) {
                        dfd = -EBADF; /* owned by d now */
                        while ((de = readdir(d)))
                                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        (void) closedir(d);
                }
        }
        (void) rmdir(f->dir);
        free(f);
        return 0;
}

/* dir/name into out[PATH_MAX]; the tests' paths are short, truncation is a failure. */
static void join(char *out, const char *dir, const char *name)
{
        int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

        assert_true(n > 0 && n < PATH_MAX);
}

static double mono_s(void)
{
        return ns_to_s(now_ns(CLOCK_MONOTONIC));
}

static const struct store_acl acl_700 = {.owner = 1, .group = 0, .mode = 0700};

/* The schema version this store writes: 1 the first, 2 adds the audit log, 3 the identities,
 * 4 data objects, 5 workers and replicas. */
enum { SCHEMA_VERSION = 5 };

/* Drops what version 5 added (the trigger and indexes go with their tables). */
#define DROP_V5                                                              \
        "DROP TABLE replicas; DROP TABLE worker_tokens; DROP TABLE workers;" \
        "DELETE FROM sqlite_sequence WHERE name = 'workers';"

/* Raw access, for inspection. */
static sqlite3 *raw_open(const char *path)
{
        sqlite3 *db = NULL;

        assert_int_equal(
                sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
        return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        int64_t v;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static struct store *open_ok(const char *path)
{
        struct store *s = NULL;

        assert_int_equal(store_open(path, &s), 0);
        assert_non_null(s);
        return s;
}

static int64_t make_app(struct store *s, const char *name)
{
        int64_t id = 0;

        assert_int_equal(store_app_create(s, name, "test app", "{\"run\":[\"sh\"]}", &acl_700, &id),
                         0);
        assert_true(id > 0);
        return id;
}

static void insert_job(struct store *s, int64_t app, int64_t owner, int priority,
                       char id[static STORE_JOB_ID_SIZE])
{
        struct store_acl acl = {.owner = owner, .group = 0, .mode = 0700};

        assert_int_equal(store_job_insert(s, app, &acl, priority, "{\"source\":\"echo 1\"}", id),
                         0);
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static bool path_exists(const char *dir, const char *name, struct stat *ret)
{
        char p[PATH_MAX];

        join(p, dir, name);
        return stat(p, ret) == 0;
}

/* Checks that every open fd on a file of dir is close-on-exec; returns their number. */
static int check_fds_cloexec(const char *dir)
{
        _cleanup_(closedirp) DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char link[64], target[PATH_MAX];
                ssize_t len;
                uint64_t fd;
                int flags;

                if (parse_uint(de->d_name, 0, INT_MAX, &fd) < 0)
                        continue;
                (void) snprintf(link, sizeof(link), "/proc/self/fd/%" PRIu64, fd);
                len = readlink(link, target, sizeof(target) - 1);
                if (len < 0)
                        continue;
                target[len] = '\0';
                if (strncmp(target, dir, strlen(dir)) != 0 || target[strlen(dir)] != '/')
                        continue;
                flags = fcntl((int) fd, F_GETFD);
                assert_true(flags >= 0);
                if (!(flags & FD_CLOEXEC))
                        fail_msg("fd %" PRIu64 " on '%s' is not close-on-exec", fd, target);
                n++;
        }
        return n;
}

static int count_fds(void)
{
        _cleanup_(closedirp) DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        return n;
}

/* ---- open, schema, files ---- */

static void test_open_schema_wal(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        struct stat st;
        sqlite3 *db;
        sqlite3_stmt *q;
        int64_t id;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         0);
        /* after a write the WAL holds it */
        assert_true(path_exists(f->dir, "warren.db-wal", &st));
        assert_true(st.st_size > 0);
        assert_true(path_exists(f->dir, "warren.db-shm", &st));
        /* the database, the WAL and the shm are open, all close-on-exec */
        assert_true(check_fds_cloexec(f->dir) >= 3);

        db = raw_open(f->path);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *) sqlite3_column_text(q, 0), "wal");
        assert_int_equal(sqlite3_finalize(q), SQLITE_OK);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                                     " name IN ('users', 'groups', 'memberships', 'sessions',"
                                     " 'apps', 'jobs', 'audit', 'workers', 'worker_tokens',"
                                     " 'replicas')"),
                         10);
        /* the write through the store is visible to another connection */
        assert_int_equal(raw_int(db, "SELECT count(*) FROM users WHERE name = 'alice'"), 1);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        /* opening again is a no-op for the schema */
        s = store_close(s);
        s = open_ok(f->path);
        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_file_mode(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        struct stat st;
        mode_t old = umask(0);
        char other[PATH_MAX];
        int64_t id;
        int fd;

        s = open_ok(f->path);
        (void) umask(old);
        assert_int_equal(store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         0);
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_true(path_exists(f->dir, "warren.db-wal", &st));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_true(path_exists(f->dir, "warren.db-shm", &st));
        assert_int_equal(st.st_mode & 07777, 0600);
        s = store_close(s);

        /* an existing file with a wider mode is tightened */
        join(other, f->dir, "wide.db");
        fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, 0644), 0);
        (void) close(fd);
        s = open_ok(other);
        assert_int_equal(stat(other, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_open_refuses(void **state)
{
        struct fixture *f = *state;
        struct store *s = NULL;
        char p[PATH_MAX];

        /* a symlink */
        join(p, f->dir, "link.db");
        assert_int_equal(symlink(f->path, p), 0);
        assert_int_equal(store_open(p, &s), -ELOOP);
        assert_null(s);
        /* a directory */
        assert_int_equal(store_open(f->dir, &s), -EISDIR);
        /* a missing directory */
        join(p, f->dir, "missing/warren.db");
        assert_int_equal(store_open(p, &s), -ENOENT);
        assert_int_equal(store_open(NULL, &s), -EINVAL);
        assert_null(s);
        assert_null(store_close(NULL));
}

static void test_reopen_keeps_data(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_user_clear) struct store_user u = {};
        _cleanup_(store_app_clear) struct store_app a = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        struct store_acl acl = {.owner = 7, .group = 3, .mode = 0750};
        char job_id[STORE_JOB_ID_SIZE];
        int64_t uid, app;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "bob", "$argon2id$v=19$x", 2, STORE_USER_PENDING, &acl, &uid),
                0);
        assert_int_equal(
                store_app_create(s, "python3", "Python 3", "{\"run\":[\"python3\"]}", &acl, &app),
                0);
        assert_int_equal(store_job_insert(s, app, &acl, 4, "{\"source\":\"print(1)\"}", job_id), 0);
        s = store_close(s);

        s = open_ok(f->path);
        assert_int_equal(store_user_get_by_name(s, "bob", &u), 0);
        assert_int_equal(u.id, uid);
        assert_string_equal(u.name, "bob");
        assert_string_equal(u.password_hash, "$argon2id$v=19$x");
        assert_int_equal(u.rights, 2);
        assert_int_equal(u.state, STORE_USER_PENDING);
        assert_int_equal(u.acl.owner, 7);
        assert_int_equal(u.acl.group, 3);
        assert_int_equal(u.acl.mode, 0750);
        assert_true(u.created_at > 0);

        assert_int_equal(store_app_get(s, app, &a), 0);
        assert_string_equal(a.name, "python3");
        assert_string_equal(a.description, "Python 3");
        assert_string_equal(a.spec, "{\"run\":[\"python3\"]}");
        assert_int_equal(a.acl.mode, 0750);

        assert_int_equal(store_job_get(s, job_id, &j), 0);
        assert_string_equal(j.id, job_id);
        assert_int_equal(j.app_id, app);
        assert_int_equal(j.state, STORE_JOB_QUEUED);
        assert_int_equal(j.priority, 4);
        assert_int_equal(j.attempts, 0);
        assert_string_equal(j.spec, "{\"source\":\"print(1)\"}");
        assert_null(j.result);
        assert_null(j.error);
        assert_int_equal(j.acl.owner, 7);
        assert_int_equal(j.acl.group, 3);
        assert_int_equal(j.acl.mode, 0750);
        assert_true(j.created_at > 0);
        assert_int_equal(j.started_at, 0);
        assert_int_equal(j.finished_at, 0);
}

static void test_migration_from_v0(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        int64_t id;
        sqlite3 *db;

        /* a version-0 file: some table of its own, none of ours */
        db = raw_open(f->path);
        raw_exec(db, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('kept');");
        assert_int_equal(raw_int(db, "PRAGMA user_version"), 0);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         0);
        s = store_close(s);

        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM notes WHERE x = 'kept'"), 1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
                                     " name IN ('users', 'groups', 'memberships', 'sessions',"
                                     " 'apps', 'jobs', 'audit', 'workers', 'worker_tokens',"
                                     " 'replicas')"),
                         10);
        assert_int_equal(
                raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs_queue'"), 1);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_migration_failure_rolls_back(void **state)
{
        struct fixture *f = *state;
        struct store *s = NULL;
        sqlite3 *db;

        /* a version-0 file whose "jobs" is not ours: the migration fails as a whole */
        db = raw_open(f->path);
        raw_exec(db, "CREATE TABLE jobs (x TEXT)");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_true(store_open(f->path, &s) < 0);
        assert_null(s);

        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), 0);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'users'"), 0);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_newer_schema_refused(void **state)
{
        struct fixture *f = *state;
        struct store *s = NULL;
        sqlite3 *db;

        db = raw_open(f->path);
        raw_exec(db, "PRAGMA user_version = 99");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        assert_int_equal(store_open(f->path, &s), -EPROTONOSUPPORT);
        assert_null(s);
}

static void test_corrupt_file(void **state)
{
        struct fixture *f = *state;
        struct store *s = NULL;
        char garbage[8192], back[sizeof(garbage)];
        int fd, before = count_fds();

        for (size_t i = 0; i < sizeof(garbage); i++)
                garbage[i] = (char) ("not a database "[i % 15] ^ (i & 0x10));
        fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write_full(fd, garbage, sizeof(garbage)), 0);
        (void) close(fd);

        assert_int_equal(store_open(f->path, &s), -EBADMSG);
        assert_null(s);
        assert_int_equal(count_fds(), before); /* nothing leaked */

        /* and the file is untouched */
        fd = open(f->path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read_full(fd, back, sizeof(back)), (ssize_t) sizeof(back));
        (void) close(fd);
        assert_memory_equal(garbage, back, sizeof(garbage));
}

static void test_corrupt_pages(void **state)
{
        struct fixture *f = *state;
        struct store *s = NULL;
        struct stat st;
        char junk[4096];
        int fd, r, bad = 0;
        sqlite3 *db;

        s = open_ok(f->path);
        s = store_close(s);
        /* a few pages of users, in one transaction */
        db = raw_open(f->path);
        raw_exec(db,
                 "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 199)"
                 " INSERT INTO users (name, rights, state, owner_id, group_id, mode, created_at)"
                 " SELECT 'user' || x, 1, 'active', 1, 0, 448, 0 FROM c");
        assert_int_equal(sqlite3_close(db), SQLITE_OK); /* the last close checkpoints the WAL */

        /* keep page 1 (header and the start of the schema), trash every other page */
        assert_int_equal(stat(f->path, &st), 0);
        assert_true(st.st_size > 4 * 4096);
        memset(junk, 0xa5, sizeof(junk));
        fd = open(f->path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        for (off_t off = 4096; off < st.st_size; off += 4096)
                assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t) sizeof(junk));
        (void) close(fd);

        r = store_open(f->path, &s);
        if (r < 0) {
                assert_int_equal(r, -EBADMSG);
                assert_null(s);
                return;
        }
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                r = store_user_get_by_name(s, "user100", &u);
                bad += r == -EBADMSG;
        }
        {
                uint64_t counts[_STORE_JOB_STATE_MAX];
                r = store_job_count_by_state(s, counts);
                bad += r == -EBADMSG;
        }
        s = store_close(s);
        assert_true(bad > 0);
}

/* ---- users ---- */

static void test_users(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_user_clear) struct store_user u = {};
        struct store_user *list = NULL;
        struct store_acl bad_mode = {.owner = 1, .mode = 01777};
        char big[STORE_PASSWORD_HASH_MAX + 2];
        int64_t alice, bob, carol, id = -1;
        size_t n = 99;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h1", 1, STORE_USER_ACTIVE,
                                           &(struct store_acl){.mode = 0700}, &alice),
                         0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        assert_true(bob > alice);

        /* duplicate name */
        assert_int_equal(store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         -EEXIST);
        assert_int_equal(id, -1);

        /* invalid names, states, modes, sizes */
        static const char *const bad_names[] = {
                "",
                "Alice",
                "1alice",
                "_x",
                "al ice",
                "al/ice",
                "al\nice",
                "ali\xc3\xa9",
                ".x",
                "-x",
                "a*",
                "a'--",
                "x;DROP TABLE users",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
                assert_int_equal(store_user_create(s, bad_names[i], NULL, 1, STORE_USER_ACTIVE,
                                                   &acl_700, &id),
                                 -EINVAL);
        assert_int_equal(store_user_create(s, NULL, NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         -EINVAL);
        char longname[STORE_NAME_MAX + 2];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(store_user_create(s, longname, NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         -EINVAL);
        longname[STORE_NAME_MAX] = '\0'; /* exactly the maximum */
        assert_int_equal(store_user_create(s, longname, NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         0);
        assert_true(store_name_valid("a.b-c_9"));
        assert_int_equal(
                store_user_create(s, "dave", NULL, 1, (enum store_user_state) 7, &acl_700, &id),
                -EINVAL);
        assert_int_equal(store_user_create(s, "dave", NULL, 1, STORE_USER_ACTIVE, &bad_mode, &id),
                         -EINVAL);
        assert_int_equal(store_user_create(s, "dave", NULL, 1, STORE_USER_ACTIVE, NULL, &id),
                         -EINVAL);
        memset(big, 'h', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(store_user_create(s, "dave", big, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         -E2BIG);

        /* get */
        assert_int_equal(store_user_get(s, alice, &u), 0);
        assert_string_equal(u.name, "alice");
        assert_string_equal(u.password_hash, "h1");
        assert_int_equal(u.acl.owner, alice); /* owner 0: the user owns itself */
        store_user_clear(&u);
        assert_int_equal(store_user_get(s, bob, &u), 0);
        assert_null(u.password_hash);
        assert_int_equal(u.acl.owner, 1);
        store_user_clear(&u);
        assert_int_equal(store_user_get(s, 424242, &u), -ENOENT);
        assert_int_equal(store_user_get_by_name(s, "nobody", &u), -ENOENT);
        assert_int_equal(store_user_get_by_name(s, "No Body", &u), -EINVAL);
        assert_null(u.name); /* untouched on failure */

        /* setters */
        assert_int_equal(store_user_set_password_hash(s, bob, "h2"), 0);
        assert_int_equal(store_user_set_rights(s, bob, 9), 0);
        assert_int_equal(store_user_set_state(s, bob, STORE_USER_DISABLED), 0);
        assert_int_equal(store_user_get_by_name(s, "bob", &u), 0);
        assert_string_equal(u.password_hash, "h2");
        assert_int_equal(u.rights, 9);
        assert_int_equal(u.state, STORE_USER_DISABLED);
        store_user_clear(&u);
        assert_int_equal(store_user_set_password_hash(s, bob, NULL), 0);
        assert_int_equal(store_user_get(s, bob, &u), 0);
        assert_null(u.password_hash);
        store_user_clear(&u);
        assert_int_equal(store_user_set_rights(s, 424242, 1), -ENOENT);
        assert_int_equal(store_user_set_state(s, 424242, STORE_USER_ACTIVE), -ENOENT);
        assert_int_equal(store_user_set_password_hash(s, 424242, "x"), -ENOENT);
        assert_int_equal(store_user_set_state(s, bob, _STORE_USER_STATE_MAX), -EINVAL);

        /* list, in pages of 2: alice, bob, aaaa... */
        assert_int_equal(
                store_user_create(s, "carol", NULL, 1, STORE_USER_ACTIVE, &acl_700, &carol), 0);
        assert_int_equal(store_user_list(s, 0, 2, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, alice);
        assert_int_equal(list[1].id, bob);
        id = list[1].id;
        list = store_user_array_free(list, n);
        assert_int_equal(store_user_list(s, id, 2, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[1].id, carol);
        id = list[1].id;
        list = store_user_array_free(list, n);
        assert_int_equal(store_user_list(s, id, 2, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);
        assert_int_equal(store_user_list(s, 0, 0, &list, &n), -EINVAL);
        assert_int_equal(store_user_list(s, 0, STORE_LIST_MAX + 1, &list, &n), -EINVAL);

        /* delete; ids are never reused */
        assert_int_equal(store_user_delete(s, carol), 0);
        assert_int_equal(store_user_delete(s, carol), -ENOENT);
        assert_int_equal(store_user_get(s, carol, &u), -ENOENT);
        assert_int_equal(store_user_create(s, "erin", NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         0);
        assert_true(id > carol);

        /* enum strings */
        assert_string_equal(store_user_state_to_string(STORE_USER_PENDING), "pending");
        assert_null(store_user_state_to_string(_STORE_USER_STATE_MAX));
        assert_int_equal(store_user_state_from_string("disabled"), STORE_USER_DISABLED);
        assert_int_equal(store_user_state_from_string("Disabled"), -EINVAL);
        assert_int_equal(store_user_state_from_string(NULL), -EINVAL);
}

/* ---- groups ---- */

static void test_groups(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_group_clear) struct store_group g = {};
        _cleanup_free_ int64_t *ids = NULL;
        int64_t alice, bob, staff, devs, id;
        size_t n;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);
        assert_int_equal(store_group_create(s, "devs", &acl_700, &devs), 0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &id), -EEXIST);
        assert_int_equal(store_group_create(s, "Staff", &acl_700, &id), -EINVAL);

        assert_int_equal(store_group_get_by_name(s, "devs", &g), 0);
        assert_int_equal(g.id, devs);
        assert_string_equal(g.name, "devs");
        store_group_clear(&g);
        assert_int_equal(store_group_get(s, staff, &g), 0);
        assert_string_equal(g.name, "staff");
        assert_int_equal(store_group_get(s, 999, &g), -ENOENT);

        assert_int_equal(store_group_add_member(s, staff, alice), 0);
        assert_int_equal(store_group_add_member(s, devs, alice), 0);
        assert_int_equal(store_group_add_member(s, staff, bob), 0);
        assert_int_equal(store_group_add_member(s, staff, alice), -EEXIST);
        assert_int_equal(store_group_add_member(s, 999, alice), -ENOENT);
        assert_int_equal(store_group_add_member(s, staff, 999), -ENOENT);
        assert_int_equal(store_group_has_member(s, staff, alice), 1);
        assert_int_equal(store_group_has_member(s, devs, bob), 0);

        assert_int_equal(store_user_groups(s, alice, &ids, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(ids[0], staff);
        assert_int_equal(ids[1], devs);
        ids = (free(ids), NULL);

        assert_int_equal(store_group_remove_member(s, devs, alice), 0);
        assert_int_equal(store_group_remove_member(s, devs, alice), -ENOENT);
        assert_int_equal(store_user_groups(s, alice, &ids, &n), 0);
        assert_int_equal(n, 1);
        ids = (free(ids), NULL);

        /* deleting a group or a user drops its memberships */
        assert_int_equal(store_group_delete(s, staff), 0);
        assert_int_equal(store_group_delete(s, staff), -ENOENT);
        assert_int_equal(store_user_groups(s, alice, &ids, &n), 0);
        assert_int_equal(n, 0);
        assert_null(ids);
        assert_int_equal(store_group_add_member(s, devs, bob), 0);
        assert_int_equal(store_user_delete(s, bob), 0);
        assert_int_equal(store_group_has_member(s, devs, bob), 0);
}

static void test_group_limit(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        int64_t alice, g;
        size_t n;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        /* the fixture in one transaction: alice in STORE_USER_GROUPS_MAX - 1 groups */
        db = raw_open(f->path);
        raw_exec(db, "BEGIN;"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 255)"
                     " INSERT INTO groups (name, owner_id, group_id, mode, created_at)"
                     " SELECT 'g' || x, 1, 0, 448, 0 FROM c;"
                     "INSERT INTO memberships (user_id, group_id) SELECT 1, id FROM groups;"
                     "COMMIT;");
        assert_int_equal(raw_int(db, "SELECT count(*) FROM memberships"),
                         STORE_USER_GROUPS_MAX - 1);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_int_equal(store_group_create(s, "last", &acl_700, &g), 0);
        assert_int_equal(store_group_add_member(s, g, alice), 0);
        assert_int_equal(store_group_create(s, "one-too-many", &acl_700, &g), 0);
        assert_int_equal(store_group_add_member(s, g, alice), -E2BIG);
        assert_int_equal(store_group_has_member(s, g, alice), 0);
        assert_int_equal(store_user_groups(s, alice, &ids, &n), 0);
        assert_int_equal(n, STORE_USER_GROUPS_MAX);
}

/* ---- sessions ---- */

static void hash_of(uint8_t h[STORE_TOKEN_HASH_SIZE], uint8_t seed)
{
        for (size_t i = 0; i < STORE_TOKEN_HASH_SIZE; i++)
                h[i] = (uint8_t) (seed * 31 + i);
}

static void test_sessions(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ struct store_session *list = NULL;
        uint8_t h1[32], h2[32], h3[32], unknown[32];
        int64_t alice, bob, sid1, sid2, sid3, uid = -1, sid = -1, id;
        const int64_t t0 = INT64_C(1700000000) * 1000000000;
        uint64_t count;
        size_t n;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        hash_of(h1, 1);
        hash_of(h2, 2);
        hash_of(h3, 3);
        hash_of(unknown, 9);
        assert_int_equal(store_session_create(s, alice, h1, t0 + 100, &sid1), 0);
        assert_int_equal(store_session_create(s, alice, h2, t0 + 100, &sid2), 0);
        assert_int_equal(store_session_create(s, bob, h3, t0 + 100, &sid3), 0);
        assert_int_equal(store_session_create(s, bob, h1, t0 + 100, &id), -EEXIST);
        assert_int_equal(store_session_create(s, 999, unknown, t0 + 100, &id), -ENOENT);

        /* valid */
        assert_int_equal(store_session_lookup(s, h1, t0, &uid, &sid), 0);
        assert_int_equal(uid, alice);
        assert_int_equal(sid, sid1);
        assert_int_equal(store_session_lookup(s, h3, t0 + 99, &uid, &sid), 0);
        assert_int_equal(uid, bob);
        assert_int_equal(sid, sid3);
        /* expired: at expires_at and after */
        uid = sid = -1;
        assert_int_equal(store_session_lookup(s, h1, t0 + 100, &uid, &sid), -ENOENT);
        assert_int_equal(store_session_lookup(s, h1, t0 + 1000, &uid, &sid), -ENOENT);
        /* unknown */
        assert_int_equal(store_session_lookup(s, unknown, t0, &uid, &sid), -ENOENT);
        /* revoked */
        assert_int_equal(store_session_revoke(s, sid1), 0);
        assert_int_equal(store_session_revoke(s, sid1), 0);
        assert_int_equal(store_session_revoke(s, 999), -ENOENT);
        assert_int_equal(store_session_lookup(s, h1, t0, &uid, &sid), -ENOENT);
        assert_int_equal(uid, -1);
        assert_int_equal(sid, -1);
        assert_int_equal(store_session_lookup(s, h2, t0, &uid, &sid), 0);

        /* list */
        assert_int_equal(store_session_list(s, alice, 0, 10, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, sid1);
        assert_true(list[0].revoked);
        assert_int_equal(list[1].id, sid2);
        assert_false(list[1].revoked);
        assert_int_equal(list[1].expires_at, t0 + 100);
        assert_int_equal(list[1].user_id, alice);
        list = (free(list), NULL);
        assert_int_equal(store_session_list(s, alice, sid1, 10, &list, &n), 0);
        assert_int_equal(n, 1);
        list = (free(list), NULL);

        /* revoke all of a user */
        assert_int_equal(store_session_revoke_user(s, alice, &count), 0);
        assert_int_equal(count, 1);
        assert_int_equal(store_session_lookup(s, h2, t0, &uid, &sid), -ENOENT);
        assert_int_equal(store_session_lookup(s, h3, t0, &uid, &sid), 0); /* bob's stays */

        /* purge: alice's two revoked ones go */
        assert_int_equal(store_session_purge(s, t0, &count), 0);
        assert_int_equal(count, 2);
        assert_int_equal(store_session_list(s, alice, 0, 10, &list, &n), 0);
        assert_int_equal(n, 0);
}

static void test_session_cascade(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        uint8_t h[32];
        int64_t alice, bob, id, uid, sid;
        const int64_t far = INT64_MAX;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        for (uint8_t i = 0; i < 3; i++) {
                hash_of(h, i);
                assert_int_equal(store_session_create(s, alice, h, far, &id), 0);
        }
        hash_of(h, 50);
        assert_int_equal(store_session_create(s, bob, h, far, &id), 0);

        assert_int_equal(store_user_delete(s, alice), 0);
        for (uint8_t i = 0; i < 3; i++) {
                hash_of(h, i);
                assert_int_equal(store_session_lookup(s, h, 0, &uid, &sid), -ENOENT);
        }
        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sessions"), 1);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        hash_of(h, 50);
        assert_int_equal(store_session_lookup(s, h, 0, &uid, &sid), 0);
        assert_int_equal(uid, bob);
}

/* ---- apps ---- */

static void test_apps(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_app_clear) struct store_app a = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        struct store_app *list = NULL;
        char job_id[STORE_JOB_ID_SIZE];
        int64_t sh, py, id;
        size_t n;

        s = open_ok(f->path);
        sh = make_app(s, "sh");
        assert_int_equal(store_app_create(s, "python3", NULL, "{}", &acl_700, &py), 0);
        assert_int_equal(store_app_create(s, "sh", NULL, "{}", &acl_700, &id), -EEXIST);
        assert_int_equal(store_app_create(s, "C++", NULL, "{}", &acl_700, &id), -EINVAL);
        assert_int_equal(store_app_create(s, "c", NULL, NULL, &acl_700, &id), -EINVAL);

        assert_int_equal(store_app_get_by_name(s, "python3", &a), 0);
        assert_int_equal(a.id, py);
        assert_string_equal(a.description, "");
        assert_string_equal(a.spec, "{}");
        assert_int_equal(a.created_at, a.updated_at);
        store_app_clear(&a);
        assert_int_equal(store_app_get(s, 999, &a), -ENOENT);
        assert_int_equal(store_app_get_by_name(s, "nope", &a), -ENOENT);

        /* update: NULL leaves a field alone */
        assert_int_equal(store_app_update(s, py, "Python", NULL), 0);
        assert_int_equal(store_app_get(s, py, &a), 0);
        assert_string_equal(a.description, "Python");
        assert_string_equal(a.spec, "{}");
        assert_true(a.updated_at >= a.created_at);
        store_app_clear(&a);
        assert_int_equal(store_app_update(s, py, NULL, "{\"run\":[\"python3\"]}"), 0);
        assert_int_equal(store_app_get(s, py, &a), 0);
        assert_string_equal(a.description, "Python");
        assert_string_equal(a.spec, "{\"run\":[\"python3\"]}");
        store_app_clear(&a);
        assert_int_equal(store_app_update(s, 999, "x", NULL), -ENOENT);

        /* list: metadata only */
        assert_int_equal(store_app_list(s, 0, 10, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].name, "sh");
        assert_null(list[0].spec);
        assert_string_equal(list[1].description, "Python");
        list = store_app_array_free(list, n);

        /* a deleted app leaves its jobs with app_id 0 */
        insert_job(s, sh, 1, 0, job_id);
        assert_int_equal(store_app_delete(s, sh), 0);
        assert_int_equal(store_app_delete(s, sh), -ENOENT);
        assert_int_equal(store_job_get(s, job_id, &j), 0);
        assert_int_equal(j.app_id, 0);
        /* and a job cannot refer to a missing app */
        assert_int_equal(store_job_insert(s, sh, &acl_700, 0, "{}", job_id), -ENOENT);
        assert_int_equal(store_job_insert(s, 0, &acl_700, 0, "{}", job_id), -EINVAL);
}

static void test_bounds(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *huge = malloc(STORE_JSON_MAX + 2);
        _cleanup_free_ char *desc = malloc(STORE_DESCRIPTION_MAX + 2);
        _cleanup_(store_job_clear) struct store_job j = {};
        char job_id[STORE_JOB_ID_SIZE];
        int64_t app, id;

        assert_non_null(huge);
        assert_non_null(desc);
        s = open_ok(f->path);
        app = make_app(s, "sh");

        memset(huge, ' ', STORE_JSON_MAX + 1);
        huge[STORE_JSON_MAX + 1] = '\0';
        memset(desc, 'd', STORE_DESCRIPTION_MAX + 1);
        desc[STORE_DESCRIPTION_MAX + 1] = '\0';

        assert_int_equal(store_job_insert(s, app, &acl_700, 0, huge, job_id), -E2BIG);
        assert_int_equal(store_app_create(s, "big", NULL, huge, &acl_700, &id), -E2BIG);
        assert_int_equal(store_app_create(s, "big", desc, "{}", &acl_700, &id), -E2BIG);
        assert_int_equal(store_app_update(s, app, NULL, huge), -E2BIG);
        assert_int_equal(store_app_update(s, app, desc, NULL), -E2BIG);

        /* exactly the maximum is accepted, and read back whole */
        huge[STORE_JSON_MAX] = '\0';
        assert_int_equal(store_job_insert(s, app, &acl_700, 0, huge, job_id), 0);
        insert_job(s, app, 1, 0, job_id);
        assert_int_equal(store_job_claim_next(s, &j), 0);
        assert_int_equal(strlen(j.spec), STORE_JSON_MAX);
        assert_int_equal(store_job_finish(s, j.id, STORE_JOB_FINISHED, huge, desc), -E2BIG);
        huge[STORE_JSON_MAX] = ' ';
        assert_int_equal(store_job_finish(s, j.id, STORE_JOB_FINISHED, huge, NULL), -E2BIG);
}

/* ---- jobs ---- */

static int cmp_id(const void *a, const void *b)
{
        return strcmp(a, b);
}

static void test_job_ids(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char(*ids)[STORE_JOB_ID_SIZE] = calloc(1000, STORE_JOB_ID_SIZE);
        int64_t app;
        double t;

        assert_non_null(ids);
        s = open_ok(f->path);
        app = make_app(s, "sh");

        t = mono_s();
        for (int i = 0; i < 1000; i++) {
                insert_job(s, app, 1, 0, ids[i]);
                assert_int_equal(strlen(ids[i]), STORE_JOB_ID_LEN);
                assert_true(store_job_id_valid(ids[i]));
        }
        t = mono_s() - t;
        printf("# 1000 job inserts (one fsync'd transaction each): %.3f s, %.0f inserts/s\n", t,
               1000 / t);

        qsort(ids, 1000, STORE_JOB_ID_SIZE, cmp_id);
        for (int i = 1; i < 1000; i++)
                assert_string_not_equal(ids[i - 1], ids[i]);

        assert_false(store_job_id_valid("0123456789abcdef0123456789ABCDEF"));
        assert_false(store_job_id_valid("0123456789abcdef0123456789abcde"));
        assert_false(store_job_id_valid("0123456789abcdef0123456789abcdef0"));
        assert_false(store_job_id_valid(NULL));
        {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_get(s, "0123456789abcdef0123456789abcdef", &j), -ENOENT);
                assert_int_equal(store_job_get(s, "' OR 1=1 --", &j), -EINVAL);
        }
}

static void test_claim_order(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        static const int prio[] = {0, 5, 0, 5, 10, -3};
        static const int expect[] = {4, 1, 3, 0, 2, 5}; /* priority, then the oldest */
        char ids[ELEMENTSOF(prio)][STORE_JOB_ID_SIZE];
        int64_t app;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (size_t i = 0; i < ELEMENTSOF(prio); i++)
                insert_job(s, app, 1, prio[i], ids[i]);

        for (size_t i = 0; i < ELEMENTSOF(expect); i++) {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_claim_next(s, &j), 0);
                assert_string_equal(j.id, ids[expect[i]]);
                assert_int_equal(j.state, STORE_JOB_RUNNING);
                assert_int_equal(j.attempts, 1);
                assert_int_equal(j.priority, prio[expect[i]]);
                assert_true(j.started_at >= j.created_at);
                assert_non_null(j.spec);
        }
        {
                struct store_job j = {.priority = 77};
                assert_int_equal(store_job_claim_next(s, &j), -ENOENT);
                assert_int_equal(j.priority, 77);
        }

        /* claim latency, on a small queue */
        char id[STORE_JOB_ID_SIZE];
        for (int i = 0; i < 50; i++)
                insert_job(s, app, 1, i % 7, id);
        double t = mono_s();
        for (int i = 0; i < 50; i++) {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_claim_next(s, &j), 0);
        }
        t = mono_s() - t;
        printf("# claim_next: %.0f us per claim (one fsync'd transaction each)\n", t / 50 * 1e6);
}

static void test_transition_cas(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_job_clear) struct store_job j = {};
        char id[STORE_JOB_ID_SIZE];
        int64_t app;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        insert_job(s, app, 1, 0, id);

        assert_int_equal(store_job_transition(s, id, STORE_JOB_QUEUED, STORE_JOB_RUNNING), 0);
        /* the second actor that believed it queued loses */
        assert_int_equal(store_job_transition(s, id, STORE_JOB_QUEUED, STORE_JOB_RUNNING), -ESTALE);
        assert_int_equal(store_job_transition(s, id, STORE_JOB_QUEUED, STORE_JOB_CANCELLED),
                         -ESTALE);
        assert_int_equal(store_job_get(s, id, &j), 0);
        assert_int_equal(j.state, STORE_JOB_RUNNING);
        assert_int_equal(j.attempts, 1);
        assert_true(j.started_at > 0);
        store_job_clear(&j);

        /* back to the queue, and again: attempts count */
        assert_int_equal(store_job_transition(s, id, STORE_JOB_RUNNING, STORE_JOB_QUEUED), 0);
        assert_int_equal(store_job_transition(s, id, STORE_JOB_QUEUED, STORE_JOB_RUNNING), 0);
        assert_int_equal(store_job_get(s, id, &j), 0);
        assert_int_equal(j.attempts, 2);
        store_job_clear(&j);

        /* not edges of the state machine */
        assert_int_equal(store_job_transition(s, id, STORE_JOB_QUEUED, STORE_JOB_FINISHED),
                         -EINVAL);
        assert_int_equal(store_job_transition(s, id, STORE_JOB_FINISHED, STORE_JOB_QUEUED),
                         -EINVAL);
        assert_int_equal(store_job_transition(s, id, STORE_JOB_RUNNING, STORE_JOB_RUNNING),
                         -EINVAL);
        assert_int_equal(store_job_transition(s, id, (enum store_job_state) 9, STORE_JOB_QUEUED),
                         -EINVAL);

        assert_int_equal(store_job_transition(s, id, STORE_JOB_RUNNING, STORE_JOB_CANCELLED), 0);
        assert_int_equal(store_job_transition(s, id, STORE_JOB_RUNNING, STORE_JOB_CANCELLED),
                         -ESTALE);
        assert_int_equal(store_job_get(s, id, &j), 0);
        assert_int_equal(j.state, STORE_JOB_CANCELLED);
        assert_true(j.finished_at >= j.started_at);

        assert_int_equal(store_job_transition(s, "00000000000000000000000000000000",
                                              STORE_JOB_QUEUED, STORE_JOB_RUNNING),
                         -ENOENT);
        assert_int_equal(store_job_transition(s, "nope", STORE_JOB_QUEUED, STORE_JOB_RUNNING),
                         -EINVAL);

        /* enum strings */
        for (int i = 0; i < _STORE_JOB_STATE_MAX; i++)
                assert_int_equal(store_job_state_from_string(store_job_state_to_string(i)), i);
        assert_int_equal(store_job_state_from_string("done"), -EINVAL);
        assert_null(store_job_state_to_string(_STORE_JOB_STATE_INVALID));
}

static void test_finish(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_job_clear) struct store_job j = {};
        char a[STORE_JOB_ID_SIZE], b[STORE_JOB_ID_SIZE], c[STORE_JOB_ID_SIZE];
        int64_t app;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        insert_job(s, app, 1, 0, a);
        insert_job(s, app, 1, 0, b);
        insert_job(s, app, 1, 0, c);

        /* finished and failed only from running */
        assert_int_equal(store_job_finish(s, a, STORE_JOB_FINISHED, "{}", NULL), -ESTALE);
        assert_int_equal(store_job_finish(s, a, STORE_JOB_FAILED, NULL, "x"), -ESTALE);
        assert_int_equal(store_job_finish(s, a, STORE_JOB_QUEUED, NULL, NULL), -EINVAL);
        assert_int_equal(store_job_finish(s, a, STORE_JOB_RUNNING, NULL, NULL), -EINVAL);
        assert_int_equal(store_job_transition(s, a, STORE_JOB_QUEUED, STORE_JOB_RUNNING), 0);
        assert_int_equal(store_job_finish(s, a, STORE_JOB_FINISHED, "{\"exit_code\":0}", NULL), 0);
        assert_int_equal(store_job_get(s, a, &j), 0);
        assert_int_equal(j.state, STORE_JOB_FINISHED);
        assert_string_equal(j.result, "{\"exit_code\":0}");
        assert_null(j.error);
        assert_true(j.finished_at > 0);
        store_job_clear(&j);
        /* ended is ended */
        assert_int_equal(store_job_finish(s, a, STORE_JOB_FINISHED, "{}", NULL), -ESTALE);
        assert_int_equal(store_job_finish(s, a, STORE_JOB_CANCELLED, NULL, NULL), -ESTALE);
        assert_int_equal(store_job_finish(s, "11111111111111111111111111111111", STORE_JOB_FINISHED,
                                          NULL, NULL),
                         -ENOENT);

        /* cancel from queued */
        assert_int_equal(store_job_finish(s, b, STORE_JOB_CANCELLED, NULL, "cancelled by alice"),
                         0);
        assert_int_equal(store_job_get(s, b, &j), 0);
        assert_int_equal(j.state, STORE_JOB_CANCELLED);
        assert_int_equal(j.attempts, 0);
        assert_string_equal(j.error, "cancelled by alice");
        store_job_clear(&j);
        assert_int_equal(store_job_transition(s, b, STORE_JOB_QUEUED, STORE_JOB_RUNNING), -ESTALE);

        /* failed from running, and cancel from running */
        assert_int_equal(store_job_claim_next(s, &j), 0);
        assert_string_equal(j.id, c);
        store_job_clear(&j);
        assert_int_equal(store_job_finish(s, c, STORE_JOB_FAILED, NULL, "rootfs missing"), 0);
        assert_int_equal(store_job_get(s, c, &j), 0);
        assert_int_equal(j.state, STORE_JOB_FAILED);
        assert_string_equal(j.error, "rootfs missing");
        store_job_clear(&j);

        insert_job(s, app, 1, 0, c);
        assert_int_equal(store_job_claim_next(s, &j), 0);
        store_job_clear(&j);
        assert_int_equal(store_job_finish(s, c, STORE_JOB_CANCELLED, NULL, NULL), 0);
        assert_int_equal(store_job_claim_next(s, &j), -ENOENT);
}

/* The result's exit_code is read for every record, lists included; only an integer counts. */
static void test_exit_code(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_job_clear) struct store_job j = {};

        static const struct {
                const char *result;
                bool has;
                int code;
        } cases[] = {
                {"{\"exit_code\":3,\"run\":{\"exit_code\":9}}", true, 3},
                {"{\"exit_code\":-1}", true, -1},
                {"{\"exit_code\":\"3\"}", false, 0},
                {"{\"exit_code\":1.5}", false, 0},
                {"{\"run\":{\"exit_code\":9}}", false, 0},
                {"not json at all", false, 0},
                {NULL, false, 0},
        };
        const struct store_job_filter filter = {.limit = 10};
        struct store_job *list = NULL;
        char ids[ELEMENTSOF(cases)][STORE_JOB_ID_SIZE];
        size_t n = 0;
        int64_t app;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                insert_job(s, app, 1, 0, ids[i]);
                assert_int_equal(
                        store_job_transition(s, ids[i], STORE_JOB_QUEUED, STORE_JOB_RUNNING), 0);
                assert_int_equal(
                        store_job_finish(s, ids[i], STORE_JOB_FINISHED, cases[i].result, NULL), 0);
                assert_int_equal(store_job_get(s, ids[i], &j), 0);
                assert_int_equal(j.has_exit_code, cases[i].has);
                assert_int_equal(j.exit_code, cases[i].code);
                store_job_clear(&j);
        }
        assert_int_equal(store_job_list(s, &filter, &list, &n), 0);
        assert_int_equal(n, ELEMENTSOF(cases));
        for (size_t k = 0; k < n; k++)
                for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                        if (strcmp(list[k].id, ids[i]) == 0) {
                                assert_null(list[k].result);
                                assert_int_equal(list[k].has_exit_code, cases[i].has);
                                assert_int_equal(list[k].exit_code, cases[i].code);
                        }
        list = store_job_array_free(list, n);
}

static void test_requeue_after_crash(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        char ids[3][STORE_JOB_ID_SIZE];
        uint64_t count = 0;
        int64_t app;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (int i = 0; i < 3; i++)
                insert_job(s, app, 1, 0, ids[i]);
        for (int i = 0; i < 2; i++) {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_claim_next(s, &j), 0);
                assert_string_equal(j.id, ids[i]);
        }
        s = store_close(s); /* the "crash": nothing finished */

        s = open_ok(f->path);
        assert_int_equal(store_jobs_requeue_running(s, &count), 0);
        assert_int_equal(count, 2);
        for (int i = 0; i < 3; i++) {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_get(s, ids[i], &j), 0);
                assert_int_equal(j.state, STORE_JOB_QUEUED);
                assert_int_equal(j.attempts, i < 2 ? 1 : 0);
        }
        assert_int_equal(store_jobs_requeue_running(s, &count), 0);
        assert_int_equal(count, 0);

        /* the next claim is a second attempt, in the original order */
        {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_claim_next(s, &j), 0);
                assert_string_equal(j.id, ids[0]);
                assert_int_equal(j.attempts, 2);
        }
}

static void test_crash_in_child(void **state)
{
        /* a real kill -9 right after insert returns: the job is there */
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_job_clear) struct store_job j = {};
        char id[STORE_JOB_ID_SIZE] = "";
        int pipefd[2], status;
        int64_t app;
        pid_t pid;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        s = store_close(s);

        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct store *c = NULL;
                char cid[STORE_JOB_ID_SIZE];

                if (store_open(f->path, &c) < 0 ||
                    store_job_insert(c, app, &acl_700, 0, "{\"k\":1}", cid) < 0)
                        _exit(1);
                (void) write_full(pipefd[1], cid, sizeof(cid));
                pause(); /* killed here, with the connection open */
                _exit(2);
        }
        (void) close(pipefd[1]);
        assert_int_equal(read_full(pipefd[0], id, sizeof(id)), (ssize_t) sizeof(id));
        (void) close(pipefd[0]);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));

        s = open_ok(f->path);
        assert_int_equal(store_job_get(s, id, &j), 0);
        assert_string_equal(j.spec, "{\"k\":1}");
        assert_int_equal(j.state, STORE_JOB_QUEUED);
}

static void test_list_pagination(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;

        enum { N = 80 };

        char ids[N][STORE_JOB_ID_SIZE];
        int seen[N] = {};
        int64_t app;
        sqlite3 *db;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (int i = 0; i < N; i++)
                insert_job(s, app, i % 3 == 0 ? 2 : 1, 0, ids[i]);
        /* ties on created_at must be broken by id */
        db = raw_open(f->path);
        raw_exec(db, "UPDATE jobs SET created_at = 42 WHERE seq % 5 = 0");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        for (int i = 0; i < 20; i++) {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_claim_next(s, &j), 0);
        }

        /* all owners (an administrator), pages of 7 */
        struct store_job_filter filter = {.limit = 7};
        int64_t prev_at = INT64_MAX;
        char prev_id[STORE_JOB_ID_SIZE] = "~";
        char cursor[STORE_JOB_ID_SIZE];
        int total = 0, pages = 0;
        for (;;) {
                struct store_job *page = NULL;
                size_t n = 0;

                assert_int_equal(store_job_list(s, &filter, &page, &n), 0);
                if (n == 0) {
                        assert_null(page);
                        break;
                }
                pages++;
                assert_true(n <= 7);
                for (size_t k = 0; k < n; k++) {
                        int found = -1;

                        for (int i = 0; i < N; i++)
                                if (strcmp(ids[i], page[k].id) == 0)
                                        found = i;
                        assert_true(found >= 0);
                        seen[found]++;
                        total++;
                        /* newest first, strictly */
                        assert_true(
                                page[k].created_at < prev_at ||
                                (page[k].created_at == prev_at && strcmp(page[k].id, prev_id) < 0));
                        prev_at = page[k].created_at;
                        memcpy(prev_id, page[k].id, STORE_JOB_ID_SIZE);
                        assert_null(page[k].spec);
                }
                memcpy(cursor, page[n - 1].id, STORE_JOB_ID_SIZE);
                filter.after_created_at = page[n - 1].created_at;
                filter.after_id = cursor;
                page = store_job_array_free(page, n);
        }
        assert_int_equal(total, N);
        assert_int_equal(pages, (N + 6) / 7);
        for (int i = 0; i < N; i++)
                assert_int_equal(seen[i], 1);

        /* one owner, one state */
        filter = (struct store_job_filter){.owner = 2, .limit = STORE_LIST_MAX};
        {
                struct store_job *page = NULL;
                size_t n = 0;
                assert_int_equal(store_job_list(s, &filter, &page, &n), 0);
                assert_int_equal(n, (N + 2) / 3); /* i % 3 == 0 */
                for (size_t k = 0; k < n; k++)
                        assert_int_equal(page[k].acl.owner, 2);
                page = store_job_array_free(page, n);

                filter.by_state = true;
                filter.state = STORE_JOB_RUNNING;
                assert_int_equal(store_job_list(s, &filter, &page, &n), 0);
                assert_true(n > 0 && n < 20);
                for (size_t k = 0; k < n; k++) {
                        assert_int_equal(page[k].acl.owner, 2);
                        assert_int_equal(page[k].state, STORE_JOB_RUNNING);
                }
                page = store_job_array_free(page, n);

                filter.owner = 0;
                assert_int_equal(store_job_list(s, &filter, &page, &n), 0);
                assert_int_equal(n, 20);
                page = store_job_array_free(page, n);
        }

        /* bad filters */
        struct store_job *page = NULL;
        size_t n = 0;
        filter = (struct store_job_filter){.limit = 0};
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL);
        filter.limit = STORE_LIST_MAX + 1;
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL);
        filter.limit = 5;
        filter.after_id = "x' OR '1'='1";
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL);
        filter.after_id = NULL;
        filter.by_state = true;
        filter.state = _STORE_JOB_STATE_MAX;
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL);
        assert_int_equal(store_job_list(s, NULL, &page, &n), -EINVAL);
}

/*
 * The reader filter against auth_check(): for every subject, the jobs store_job_list() returns
 * must be exactly those auth_check(subject, JOB_GET, job, READ) allows, whole or page by page.
 */
enum { READER_N_JOBS = 11 * 5 * 4 };

struct reader_job {
        char id[STORE_JOB_ID_SIZE];
        struct store_acl acl;
};

static int reader_job_index(const struct reader_job *jobs, const char *id)
{
        for (int i = 0; i < READER_N_JOBS; i++)
                if (strcmp(jobs[i].id, id) == 0)
                        return i;
        return -1;
}

static void reader_filter_of(const struct auth_subject *who, struct store_job_filter *ret)
{
        *ret = (struct store_job_filter){
                .by_reader = true,
                .reader = who->user,
                .reader_is_admin = who->rights == AUTH_RIGHTS_ADMIN,
                .reader_groups = who->groups,
                .n_reader_groups = who->n_groups,
                .limit = STORE_LIST_MAX,
        };
}

/* Lists with filter in pages of page_size, counting in seen[] how often each job comes back. */
static void reader_list_all(struct store *s, const struct reader_job *jobs,
                            struct store_job_filter filter, size_t page_size,
                            int seen[static READER_N_JOBS])
{
        char cursor[STORE_JOB_ID_SIZE];

        memset(seen, 0, READER_N_JOBS * sizeof(*seen));
        filter.limit = page_size;
        filter.after_id = NULL;
        for (;;) {
                struct store_job *page = NULL;
                size_t n = 0;

                assert_int_equal(store_job_list(s, &filter, &page, &n), 0);
                if (n == 0) {
                        assert_null(page);
                        return;
                }
                assert_true(n <= page_size);
                for (size_t k = 0; k < n; k++) {
                        int i = reader_job_index(jobs, page[k].id);

                        assert_true(i >= 0);
                        assert_int_equal(page[k].acl.owner, jobs[i].acl.owner);
                        assert_int_equal(page[k].acl.group, jobs[i].acl.group);
                        assert_int_equal(page[k].acl.mode, jobs[i].acl.mode);
                        seen[i]++;
                }
                memcpy(cursor, page[n - 1].id, STORE_JOB_ID_SIZE);
                filter.after_created_at = page[n - 1].created_at;
                filter.after_id = cursor;
                page = store_job_array_free(page, n);
        }
}

static void test_list_reader(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;

        static const uint32_t modes[] = {0700, 0750, 0755, 0770, 0704, 0740,
                                         0705, 0000, 0400, 0040, 0004};
        static const int64_t owners[] = {0, 1, 2, 3, 4};
        static const int64_t groups[] = {0, 10, 20, 30};
        static const int64_t g_10_20[] = {10, 20}, g_10[] = {10}, g_20_30[] = {20, 30},
                             g_0_30[] = {0, 30}, g_40[] = {40};
        int64_t g_max[STORE_USER_GROUPS_MAX];
        struct reader_job jobs[READER_N_JOBS];
        int seen[READER_N_JOBS];
        bool visible[READER_N_JOBS];
        int64_t app;
        sqlite3 *db;
        size_t k = 0;

        /* g_max: full, with huge ids (the longest JSON array) and group 20 last */
        for (size_t i = 0; i < STORE_USER_GROUPS_MAX; i++)
                g_max[i] = INT64_MAX - (int64_t) i;
        g_max[STORE_USER_GROUPS_MAX - 1] = 20;

        const struct auth_subject subjects[] = {
                /* owner of some jobs, in two of their groups */
                {.user = 1, .rights = AUTH_RIGHTS_STANDARD, .groups = g_10_20, .n_groups = 2},
                {.user = 2, .rights = AUTH_RIGHTS_STANDARD, .groups = g_10, .n_groups = 1},
                {.user = 3, .rights = AUTH_RIGHTS_STANDARD, .groups = g_20_30, .n_groups = 2},
                /* group 0 in the list matches no job, not even those with no group */
                {.user = 4, .rights = AUTH_RIGHTS_STANDARD, .groups = g_0_30, .n_groups = 2},
                /* owns nothing, in a group no job has: other bits only */
                {.user = 5, .rights = AUTH_RIGHTS_STANDARD, .groups = g_40, .n_groups = 1},
                {.user = 6, .rights = AUTH_RIGHTS_STANDARD, .groups = NULL, .n_groups = 0},
                /* user 0 must not own the jobs of owner 0 */
                {.user = 0, .rights = AUTH_RIGHTS_STANDARD, .groups = NULL, .n_groups = 0},
                {.user = 3,
                 .rights = AUTH_RIGHTS_STANDARD,
                 .groups = g_max,
                 .n_groups = STORE_USER_GROUPS_MAX},
                {.user = 7, .rights = AUTH_RIGHTS_ADMIN, .groups = NULL, .n_groups = 0},
                {.user = 1, .rights = AUTH_RIGHTS_ADMIN, .groups = g_10, .n_groups = 1},
        };

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t o = 0; o < ELEMENTSOF(owners); o++)
                        for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
                                assert_true(k < READER_N_JOBS);
                                jobs[k].acl = (struct store_acl){
                                        .owner = owners[o], .group = groups[g], .mode = modes[m]};
                                assert_int_equal(
                                        store_job_insert(s, app, &jobs[k].acl, 0, "{}", jobs[k].id),
                                        0);
                                k++;
                        }
        assert_int_equal(k, READER_N_JOBS);
        /* ties on created_at, so that pages also cut through equal times */
        db = raw_open(f->path);
        raw_exec(db, "UPDATE jobs SET created_at = 42 WHERE seq % 3 = 0");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        for (size_t w = 0; w < ELEMENTSOF(subjects); w++) {
                const struct auth_subject *who = &subjects[w];
                struct store_job_filter filter;
                int n_visible = 0;

                for (int i = 0; i < READER_N_JOBS; i++) {
                        const struct auth_object obj = {.owner = jobs[i].acl.owner,
                                                        .group = jobs[i].acl.group,
                                                        .mode = jobs[i].acl.mode};

                        visible[i] =
                                auth_check(who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ) == 0;
                        n_visible += visible[i];
                }
                /* the matrix is not degenerate */
                assert_true(n_visible > 0);
                if (who->rights == AUTH_RIGHTS_ADMIN)
                        assert_int_equal(n_visible, READER_N_JOBS);
                else
                        assert_true(n_visible < READER_N_JOBS);

                /* one page, then pages of 7: each visible job exactly once, nothing else */
                reader_filter_of(who, &filter);
                reader_list_all(s, jobs, filter, STORE_LIST_MAX, seen);
                for (int i = 0; i < READER_N_JOBS; i++)
                        assert_int_equal(seen[i], visible[i] ? 1 : 0);
                reader_list_all(s, jobs, filter, 7, seen);
                for (int i = 0; i < READER_N_JOBS; i++)
                        assert_int_equal(seen[i], visible[i] ? 1 : 0);

                /* with owner: the intersection */
                filter.owner = 2;
                reader_list_all(s, jobs, filter, 5, seen);
                for (int i = 0; i < READER_N_JOBS; i++)
                        assert_int_equal(seen[i], visible[i] && jobs[i].acl.owner == 2 ? 1 : 0);
        }

        /* without by_reader the reader fields are ignored: every job */
        struct store_job_filter filter = {.reader = 6, .limit = STORE_LIST_MAX};
        reader_list_all(s, jobs, filter, STORE_LIST_MAX, seen);
        for (int i = 0; i < READER_N_JOBS; i++)
                assert_int_equal(seen[i], 1);

        /* bad reader filters */
        struct store_job *page = NULL;
        size_t n = 0;
        static const int64_t g_neg[] = {10, -1};
        int64_t g_big[STORE_USER_GROUPS_MAX + 1] = {};
        filter = (struct store_job_filter){.by_reader = true, .reader = -1, .limit = 5};
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL);
        filter.reader = 1;
        filter.n_reader_groups = 1;
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL); /* NULL groups */
        filter.reader_groups = g_neg;
        filter.n_reader_groups = ELEMENTSOF(g_neg);
        assert_int_equal(store_job_list(s, &filter, &page, &n), -EINVAL);
        filter.reader_groups = g_big;
        filter.n_reader_groups = ELEMENTSOF(g_big);
        assert_int_equal(store_job_list(s, &filter, &page, &n), -E2BIG);
        filter.reader_is_admin = true; /* still checked */
        assert_int_equal(store_job_list(s, &filter, &page, &n), -E2BIG);
        assert_null(page);
        assert_int_equal(n, 0);
}

static void test_counts(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        uint64_t counts[_STORE_JOB_STATE_MAX];
        char id[STORE_JOB_ID_SIZE];
        int64_t app;

        s = open_ok(f->path);
        assert_int_equal(store_job_count_by_state(s, counts), 0);
        for (int i = 0; i < _STORE_JOB_STATE_MAX; i++)
                assert_int_equal(counts[i], 0);

        app = make_app(s, "sh");
        for (int i = 0; i < 10; i++)
                insert_job(s, app, 1, 0, id);
        for (int i = 0; i < 6; i++) {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_claim_next(s, &j), 0);
                if (i < 3)
                        assert_int_equal(store_job_finish(s, j.id, STORE_JOB_FINISHED, "{}", NULL),
                                         0);
                else if (i < 4)
                        assert_int_equal(store_job_finish(s, j.id, STORE_JOB_FAILED, NULL, "e"), 0);
        }
        assert_int_equal(store_job_finish(s, id, STORE_JOB_CANCELLED, NULL, NULL), 0);

        assert_int_equal(store_job_count_by_state(s, counts), 0);
        assert_int_equal(counts[STORE_JOB_QUEUED], 3);
        assert_int_equal(counts[STORE_JOB_RUNNING], 2);
        assert_int_equal(counts[STORE_JOB_FINISHED], 3);
        assert_int_equal(counts[STORE_JOB_FAILED], 1);
        assert_int_equal(counts[STORE_JOB_CANCELLED], 1);
}

/* A text column of the first row, copied; NULL for SQL NULL. */
static char *raw_str(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        char *v = NULL;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
                v = strdup((const char *) sqlite3_column_text(st, 0));
                assert_non_null(v);
        }
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        return v;
}

#define SCHEMA_SQL                                                                       \
        "SELECT group_concat(type || ' ' || name || ' ' || coalesce(sql, ''), char(10))" \
        " FROM (SELECT * FROM sqlite_schema ORDER BY type, name)"

/*
 * Turns a current file into the version-1 file an older release wrote: version 2 only added the
 * audit table (its triggers go with it) and, once used, its sqlite_sequence row; version 3 the
 * identities table (its index goes with it).
 */
static void downgrade_to_v1(const char *path)
{
        sqlite3 *db = raw_open(path);

        raw_exec(db, "BEGIN;" DROP_V5 "DROP TABLE data;"
                     "DROP TABLE identities;"
                     "DROP TABLE audit;"
                     "DELETE FROM sqlite_sequence WHERE name = 'audit';"
                     "PRAGMA user_version = 1;"
                     "COMMIT;");
        assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'audit'"),
                         0);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_migration_from_v1(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *fresh = NULL, *migrated = NULL;
        _cleanup_free_ int64_t *members = NULL;
        _cleanup_free_ struct store_audit *none = NULL;
        struct store_audit *records = NULL;
        const struct store_acl acl = {.owner = 1, .group = 1, .mode = 0750};
        char job_id[STORE_JOB_ID_SIZE];
        uint8_t h[STORE_TOKEN_HASH_SIZE];
        int64_t alice, staff, app, uid = 0, sid = 0, sid1;
        size_t n;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h", 2, STORE_USER_ACTIVE, &acl_700, &alice),
                         0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);
        assert_int_equal(store_group_add_member(s, staff, alice), 0);
        hash_of(h, 7);
        assert_int_equal(store_session_create(s, alice, h, INT64_MAX, &sid1), 0);
        app = make_app(s, "sh");
        assert_int_equal(store_job_insert(s, app, &acl, 3, "{\"k\":1}", job_id), 0);
        s = store_close(s);
        db = raw_open(f->path);
        fresh = raw_str(db, SCHEMA_SQL);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        downgrade_to_v1(f->path);

        s = open_ok(f->path);
        /* the data of version 1 is all there */
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                _cleanup_(store_group_clear) struct store_group g = {};
                _cleanup_(store_app_clear) struct store_app a = {};
                _cleanup_(store_job_clear) struct store_job j = {};

                assert_int_equal(store_user_get_by_name(s, "alice", &u), 0);
                assert_int_equal(u.id, alice);
                assert_string_equal(u.password_hash, "h");
                assert_int_equal(u.rights, 2);
                assert_int_equal(store_group_get(s, staff, &g), 0);
                assert_string_equal(g.name, "staff");
                assert_int_equal(store_app_get(s, app, &a), 0);
                assert_string_equal(a.name, "sh");
                assert_int_equal(store_job_get(s, job_id, &j), 0);
                assert_string_equal(j.spec, "{\"k\":1}");
                assert_int_equal(j.priority, 3);
                assert_int_equal(j.acl.group, 1);
                assert_int_equal(j.acl.mode, 0750);
        }
        assert_int_equal(store_group_members(s, staff, &members, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(members[0], alice);
        assert_int_equal(store_session_lookup(s, h, 0, &uid, &sid), 0);
        assert_int_equal(uid, alice);
        assert_int_equal(sid, sid1);
        /* and the audit log is new and empty, then works */
        assert_int_equal(store_audit_list(s, 0, 10, &none, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(store_audit_append(s, alice, "login", NULL, NULL, NULL), 0);
        assert_int_equal(store_audit_list(s, 0, 10, &records, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(records[0].id, 1);
        records = store_audit_array_free(records, n);
        s = store_close(s);

        /* the upgraded schema is exactly the one a new file gets */
        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        migrated = raw_str(db, SCHEMA_SQL);
        assert_string_equal(migrated, fresh);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_identities(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_user_clear) struct store_user u = {};
        char long_text[STORE_IDENTITY_TEXT_MAX + 2];
        int64_t id, id2, found = 0, local;

        s = open_ok(f->path);
        assert_int_equal(store_identity_lookup(s, "https://idp", "sub-1", &found), -ENOENT);
        assert_int_equal(store_identity_create_user(s, "https://idp", "sub-1", "carol", 2,
                                                    STORE_USER_PENDING, &acl_700, &id),
                         0);
        assert_int_equal(store_identity_lookup(s, "https://idp", "sub-1", &found), 0);
        assert_int_equal(found, id);
        /* a user like any other, without a password, in the state asked for */
        assert_int_equal(store_user_get(s, id, &u), 0);
        assert_string_equal(u.name, "carol");
        assert_null(u.password_hash);
        assert_int_equal(u.state, STORE_USER_PENDING);
        assert_int_equal(u.rights, 2);
        /* byte for byte: another issuer, or another case, is another identity */
        assert_int_equal(store_identity_lookup(s, "https://idp/", "sub-1", &found), -ENOENT);
        assert_int_equal(store_identity_lookup(s, "https://idp", "SUB-1", &found), -ENOENT);
        /* an identity is bound once; a taken name creates nothing, identity included */
        assert_int_equal(store_identity_create_user(s, "https://idp", "sub-1", "carol2", 2,
                                                    STORE_USER_ACTIVE, &acl_700, &id2),
                         -EEXIST);
        assert_int_equal(store_user_create(s, "dave", "h", 2, STORE_USER_ACTIVE, &acl_700, &local),
                         0);
        assert_int_equal(store_identity_create_user(s, "https://idp", "sub-2", "dave", 2,
                                                    STORE_USER_ACTIVE, &acl_700, &id2),
                         -EEXIST);
        assert_int_equal(store_identity_lookup(s, "https://idp", "sub-2", &found), -ENOENT);
        assert_int_equal(store_user_get_by_name(s, "carol2", &u), -ENOENT);
        /* bounds */
        memset(long_text, 'a', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = '\0';
        assert_int_equal(store_identity_lookup(s, long_text, "x", &found), -E2BIG);
        assert_int_equal(store_identity_create_user(s, "i", long_text, "erin", 2, STORE_USER_ACTIVE,
                                                    &acl_700, &id2),
                         -E2BIG);
        long_text[STORE_IDENTITY_TEXT_MAX] = '\0';
        assert_int_equal(store_identity_create_user(s, long_text, long_text, "erin", 2,
                                                    STORE_USER_ACTIVE, &acl_700, &id2),
                         0);
        assert_int_equal(store_identity_lookup(s, "", "x", &found), -EINVAL);
        assert_int_equal(store_identity_lookup(s, "i", NULL, &found), -EINVAL);
        assert_int_equal(store_identity_create_user(s, "i", "s", "Bad Name", 2, STORE_USER_ACTIVE,
                                                    &acl_700, &id2),
                         -EINVAL);
        /* deleting the user unbinds the identity; a new user never inherits it */
        assert_int_equal(store_user_delete(s, id), 0);
        assert_int_equal(store_identity_lookup(s, "https://idp", "sub-1", &found), -ENOENT);
        assert_int_equal(store_identity_create_user(s, "https://idp", "sub-1", "carol", 2,
                                                    STORE_USER_ACTIVE, &acl_700, &id2),
                         0);
        assert_true(id2 > id);
}

/* A version-2 file (no identities) upgrades to 3 and keeps its audit records. */
static void test_migration_from_v2(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *fresh = NULL, *migrated = NULL;
        struct store_audit *records = NULL;
        int64_t alice, found = 0, id;
        size_t n;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h", 2, STORE_USER_ACTIVE, &acl_700, &alice),
                         0);
        assert_int_equal(store_audit_append(s, alice, "login", "alice", NULL, NULL), 0);
        s = store_close(s);
        db = raw_open(f->path);
        fresh = raw_str(db, SCHEMA_SQL);
        raw_exec(db, "BEGIN;" DROP_V5 "DROP TABLE data; DROP TABLE identities;"
                     " PRAGMA user_version = 2; COMMIT;");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        s = open_ok(f->path);
        assert_int_equal(store_audit_list(s, 0, 10, &records, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(records[0].event, "login");
        records = store_audit_array_free(records, n);
        assert_int_equal(store_identity_create_user(s, "iss", "sub", "bob", 2, STORE_USER_ACTIVE,
                                                    &acl_700, &id),
                         0);
        assert_int_equal(store_identity_lookup(s, "iss", "sub", &found), 0);
        assert_int_equal(found, id);
        s = store_close(s);

        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        migrated = raw_str(db, SCHEMA_SQL);
        assert_string_equal(migrated, fresh);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_migration_from_v1_failure_rolls_back(void **state)
{
        struct fixture *f = *state;
        struct store *s = NULL;
        int64_t id;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &id),
                         0);
        s = store_close(s);
        downgrade_to_v1(f->path);
        /* a version-1 file with an "audit" table of its own: step 1 → 2 fails as a whole */
        db = raw_open(f->path);
        raw_exec(db, "CREATE TABLE audit (x TEXT); INSERT INTO audit VALUES ('mine');");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_true(store_open(f->path, &s) < 0);
        assert_null(s);

        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM audit WHERE x = 'mine'"), 1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"),
                         0);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM users WHERE name = 'alice'"), 1);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- acls ---- */

/* Sets the acl of a user, group or app (by id) or of a job (by job_id). */
static int set_acl_of(struct store *s, enum store_kind kind, int64_t id, const char *job_id,
                      const struct store_acl *acl)
{
        return kind == STORE_KIND_JOB    ? store_job_set_acl(s, job_id, acl)
               : kind == STORE_KIND_DATA ? store_data_set_acl(s, job_id, acl)
                                         : store_object_set_acl(s, kind, id, acl);
}

static struct store_acl acl_of(struct store *s, enum store_kind kind, int64_t id,
                               const char *job_id)
{
        struct store_acl acl = {};

        switch (kind) {
        case STORE_KIND_USER: {
                _cleanup_(store_user_clear) struct store_user u = {};
                assert_int_equal(store_user_get(s, id, &u), 0);
                acl = u.acl;
                break;
        }
        case STORE_KIND_GROUP: {
                _cleanup_(store_group_clear) struct store_group g = {};
                assert_int_equal(store_group_get(s, id, &g), 0);
                acl = g.acl;
                break;
        }
        case STORE_KIND_APP: {
                _cleanup_(store_app_clear) struct store_app a = {};
                assert_int_equal(store_app_get(s, id, &a), 0);
                acl = a.acl;
                break;
        }
        case STORE_KIND_JOB: {
                _cleanup_(store_job_clear) struct store_job j = {};
                assert_int_equal(store_job_get(s, job_id, &j), 0);
                acl = j.acl;
                break;
        }
        case STORE_KIND_DATA: {
                _cleanup_(store_data_clear) struct store_data d = {};
                assert_int_equal(store_data_get(s, job_id, &d), 0);
                acl = d.acl;
                break;
        }
        case _STORE_KIND_MAX:
        default:
                fail();
        }
        return acl;
}

static void assert_acl_equal(struct store_acl a, struct store_acl b)
{
        assert_int_equal(a.owner, b.owner);
        assert_int_equal(a.group, b.group);
        assert_int_equal(a.mode, b.mode);
}

static void test_set_acl(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        char job_id[STORE_JOB_ID_SIZE], data_id[STORE_DATA_ID_SIZE];
        int64_t alice, bob, carol, staff, devs, gone, app;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", "hb", 5, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        assert_int_equal(
                store_user_create(s, "carol", NULL, 1, STORE_USER_ACTIVE, &acl_700, &carol), 0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);
        assert_int_equal(store_group_create(s, "devs", &acl_700, &devs), 0);
        assert_int_equal(store_group_create(s, "gone", &acl_700, &gone), 0);
        app = make_app(s, "sh");
        insert_job(s, app, alice, 2, job_id);
        assert_int_equal(store_data_insert(s, "d", 1, SHA_A, false, &acl_700, data_id), 0);
        /* deleted ones are never valid owners or groups again (ids are not reused) */
        assert_int_equal(store_user_delete(s, carol), 0);
        assert_int_equal(store_group_delete(s, gone), 0);

        const struct {
                enum store_kind kind;
                int64_t id;
                const char *job_id;
        } objects[] = {
                {STORE_KIND_USER, bob, NULL},  {STORE_KIND_GROUP, staff, NULL},
                {STORE_KIND_APP, app, NULL},   {STORE_KIND_JOB, 0, job_id},
                {STORE_KIND_DATA, 0, data_id},
        };
        const struct store_acl good[] = {
                {.owner = bob, .group = devs, .mode = 0751}, /* chown, chgrp and chmod at once */
                {.owner = bob, .group = devs, .mode = 0700}, /* chmod */
                {.owner = bob, .group = 0, .mode = 0700},    /* chgrp to none */
                {.owner = alice, .group = staff, .mode = 0777},
                {.owner = 0, .group = 0, .mode = 0}, /* nobody, stored as such */
                {.owner = alice, .group = devs, .mode = 0640},
        };
        const struct store_acl invalid[] = {
                {.owner = bob, .group = devs, .mode = 01000},
                {.owner = bob, .group = devs, .mode = 04755},
                {.owner = bob, .group = devs, .mode = UINT32_MAX},
                {.owner = -1, .group = devs, .mode = 0700},
                {.owner = bob, .group = -1, .mode = 0700},
                {.owner = INT64_MIN, .group = 0, .mode = 0700},
        };
        const struct store_acl missing[] = {
                {.owner = 999, .group = devs, .mode = 0700},
                {.owner = bob, .group = 999, .mode = 0700},
                {.owner = carol, .group = 0, .mode = 0700},
                {.owner = bob, .group = gone, .mode = 0700},
                {.owner = 999, .group = 999, .mode = 0700},
        };

        for (size_t o = 0; o < ELEMENTSOF(objects); o++) {
                enum store_kind kind = objects[o].kind;
                int64_t id = objects[o].id;
                const char *jid = objects[o].job_id;
                struct store_acl before;

                for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                        assert_int_equal(set_acl_of(s, kind, id, jid, &good[i]), 0);
                        assert_acl_equal(acl_of(s, kind, id, jid), good[i]);
                }
                /* refused, and nothing changed */
                before = acl_of(s, kind, id, jid);
                for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                        assert_int_equal(set_acl_of(s, kind, id, jid, &invalid[i]), -EINVAL);
                        assert_acl_equal(acl_of(s, kind, id, jid), before);
                }
                assert_int_equal(set_acl_of(s, kind, id, jid, NULL), -EINVAL);
                for (size_t i = 0; i < ELEMENTSOF(missing); i++) {
                        assert_int_equal(set_acl_of(s, kind, id, jid, &missing[i]), -ENOENT);
                        assert_acl_equal(acl_of(s, kind, id, jid), before);
                }
        }

        /* the object itself does not exist */
        const struct store_acl ok = {.owner = bob, .group = devs, .mode = 0700};
        assert_int_equal(store_object_set_acl(s, STORE_KIND_USER, 999, &ok), -ENOENT);
        assert_int_equal(store_object_set_acl(s, STORE_KIND_USER, carol, &ok), -ENOENT);
        assert_int_equal(store_object_set_acl(s, STORE_KIND_GROUP, gone, &ok), -ENOENT);
        assert_int_equal(store_object_set_acl(s, STORE_KIND_APP, 999, &ok), -ENOENT);
        assert_int_equal(store_object_set_acl(s, STORE_KIND_APP, 0, &ok), -ENOENT);
        assert_int_equal(store_object_set_acl(s, STORE_KIND_APP, -3, &ok), -ENOENT);
        assert_int_equal(store_job_set_acl(s, "0123456789abcdef0123456789abcdef", &ok), -ENOENT);
        /* invalid argument wins over a missing object */
        assert_int_equal(store_object_set_acl(s, STORE_KIND_APP, 999, &invalid[0]), -EINVAL);

        /* bad kinds, and malformed job ids */
        assert_int_equal(store_object_set_acl(s, STORE_KIND_JOB, app, &ok), -EINVAL);
        assert_int_equal(store_object_set_acl(s, STORE_KIND_DATA, app, &ok), -EINVAL);
        assert_int_equal(store_data_set_acl(s, "0123456789abcdef0123456789abcdef", &ok), -ENOENT);
        assert_int_equal(store_data_set_acl(s, "nope", &ok), -EINVAL);
        assert_int_equal(store_object_set_acl(s, _STORE_KIND_MAX, app, &ok), -EINVAL);
        assert_int_equal(store_object_set_acl(s, (enum store_kind) - 1, app, &ok), -EINVAL);
        assert_int_equal(store_object_set_acl(s, (enum store_kind) 42, app, &ok), -EINVAL);
        assert_int_equal(store_job_set_acl(s, NULL, &ok), -EINVAL);
        assert_int_equal(store_job_set_acl(s, "nope", &ok), -EINVAL);
        assert_int_equal(store_job_set_acl(s, "0123456789ABCDEF0123456789ABCDEF", &ok), -EINVAL);
        assert_int_equal(store_job_set_acl(s, "' OR 1=1 --", &ok), -EINVAL);

        /* only the acl changes */
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                _cleanup_(store_job_clear) struct store_job j = {};

                assert_int_equal(store_user_get(s, bob, &u), 0);
                assert_string_equal(u.name, "bob");
                assert_string_equal(u.password_hash, "hb");
                assert_int_equal(u.rights, 5);
                assert_int_equal(u.state, STORE_USER_ACTIVE);
                assert_int_equal(store_job_get(s, job_id, &j), 0);
                assert_int_equal(j.state, STORE_JOB_QUEUED);
                assert_int_equal(j.priority, 2);
                assert_int_equal(j.app_id, app);
                assert_string_equal(j.spec, "{\"source\":\"echo 1\"}");
        }
        /* and survives a reopen */
        s = store_close(s);
        s = open_ok(f->path);
        assert_acl_equal(acl_of(s, STORE_KIND_JOB, 0, job_id), good[ELEMENTSOF(good) - 1]);
        assert_acl_equal(acl_of(s, STORE_KIND_APP, app, NULL), good[ELEMENTSOF(good) - 1]);
}

/* Does a by_reader list show the job to who? */
static bool reader_sees(struct store *s, const struct auth_subject *who, const char *job_id)
{
        struct store_job_filter filter = {
                .by_reader = true,
                .reader = who->user,
                .reader_is_admin = who->rights == AUTH_RIGHTS_ADMIN,
                .reader_groups = who->groups,
                .n_reader_groups = who->n_groups,
                .limit = STORE_LIST_MAX,
        };
        struct store_job *page = NULL;
        size_t n = 0;
        bool seen = false;

        assert_int_equal(store_job_list(s, &filter, &page, &n), 0);
        for (size_t k = 0; k < n; k++)
                seen = seen || strcmp(page[k].id, job_id) == 0;
        page = store_job_array_free(page, n);
        return seen;
}

/* After a chmod, chgrp or chown, the reader filter follows the new acl, as auth_check() does. */
static void test_set_acl_reader(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ int64_t *bob_groups = NULL;
        char job[STORE_JOB_ID_SIZE], control[STORE_JOB_ID_SIZE];
        int64_t alice, bob, carol, root, staff, app;
        size_t n_bob_groups, changes_seen = 0, changes_hidden = 0;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        assert_int_equal(
                store_user_create(s, "carol", NULL, 1, STORE_USER_ACTIVE, &acl_700, &carol), 0);
        assert_int_equal(store_user_create(s, "root", NULL, 1, STORE_USER_ACTIVE, &acl_700, &root),
                         0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);
        assert_int_equal(store_group_add_member(s, staff, bob), 0);
        assert_int_equal(store_user_groups(s, bob, &bob_groups, &n_bob_groups), 0);
        assert_int_equal(n_bob_groups, 1);
        app = make_app(s, "sh");
        insert_job(s, app, alice, 0, job);
        insert_job(s, app, alice, 0, control);

        const struct auth_subject subjects[] = {
                {.user = alice, .rights = AUTH_RIGHTS_STANDARD},
                {.user = bob,
                 .rights = AUTH_RIGHTS_STANDARD,
                 .groups = bob_groups,
                 .n_groups = n_bob_groups},
                {.user = carol, .rights = AUTH_RIGHTS_STANDARD},
                {.user = root, .rights = AUTH_RIGHTS_ADMIN},
        };
        const struct store_acl acls[] = {
                {.owner = alice, .group = 0, .mode = 0700},
                {.owner = alice, .group = staff, .mode = 0750},
                {.owner = alice, .group = staff, .mode = 0704},
                {.owner = alice, .group = staff, .mode = 0070},
                {.owner = bob, .group = 0, .mode = 0400},
                {.owner = bob, .group = 0, .mode = 0044},
                {.owner = carol, .group = staff, .mode = 0000},
                {.owner = 0, .group = 0, .mode = 0004},
                {.owner = 0, .group = staff, .mode = 0040},
                {.owner = alice, .group = 0, .mode = 0700},
        };

        for (size_t i = 0; i < ELEMENTSOF(acls); i++) {
                const struct auth_object obj = {
                        .owner = acls[i].owner, .group = acls[i].group, .mode = acls[i].mode};

                assert_int_equal(store_job_set_acl(s, job, &acls[i]), 0);
                for (size_t w = 0; w < ELEMENTSOF(subjects); w++) {
                        bool allowed = auth_check(&subjects[w], AUTH_ACTION_JOB_GET, &obj,
                                                  AUTH_PERM_READ) == 0;

                        assert_int_equal(reader_sees(s, &subjects[w], job), allowed);
                        changes_seen += allowed && subjects[w].rights != AUTH_RIGHTS_ADMIN;
                        changes_hidden += !allowed;
                        /* the other job keeps its acl: alice's and the administrator's only */
                        assert_int_equal(reader_sees(s, &subjects[w], control),
                                         subjects[w].user == alice ||
                                                 subjects[w].rights == AUTH_RIGHTS_ADMIN);
                }
        }
        /* the sequence is not degenerate */
        assert_true(changes_seen >= ELEMENTSOF(acls));
        assert_true(changes_hidden >= ELEMENTSOF(acls));
}

/* ---- data ---- */

static void test_data(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        char id[STORE_DATA_ID_SIZE], id2[STORE_DATA_ID_SIZE], id3[STORE_DATA_ID_SIZE];
        char job[STORE_JOB_ID_SIZE], name_max[STORE_DATA_NAME_MAX + 2];
        const struct store_acl conf = {.owner = 1, .group = 0, .mode = 0700};
        const struct store_acl widen[] = {
                {.owner = 1, .group = 0, .mode = 0740},
                {.owner = 1, .group = 0, .mode = 0701},
                {.owner = 1, .group = 0, .mode = 0777},
        };
        bool unref = false;
        int64_t staff, app;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &app),
                         0);
        assert_int_equal(app, 1); /* the owner of acl_700 */
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);

        /* names: file names */
        static const char *const good_names[] = {"a", "data.bin", "é", "...", ".hidden", "a b"};
        static const char *const bad_names[] = {"",     ".",     "..",       "a/b",  "/",
                                                "a\nb", "a\x7f", "\xc2\x85", "\xff", "\xc3"};
        for (size_t i = 0; i < ELEMENTSOF(good_names); i++)
                assert_true(store_data_name_valid(good_names[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
                assert_false(store_data_name_valid(bad_names[i]));
        assert_false(store_data_name_valid(NULL));
        memset(name_max, 'n', sizeof(name_max));
        name_max[STORE_DATA_NAME_MAX] = '\0';
        assert_true(store_data_name_valid(name_max));
        name_max[STORE_DATA_NAME_MAX] = 'n';
        name_max[STORE_DATA_NAME_MAX + 1] = '\0';
        assert_false(store_data_name_valid(name_max));
        assert_int_equal(store_data_insert(s, name_max, 1, SHA_A, false, &acl_700, id), -EINVAL);
        assert_int_equal(store_data_insert(s, "a/b", 1, SHA_A, false, &acl_700, id), -EINVAL);
        assert_int_equal(store_data_insert(s, "x", 1, "AAAA", false, &acl_700, id), -EINVAL);
        assert_int_equal(store_data_insert(s, "x", 1, SHA_A "a", false, &acl_700, id), -EINVAL);
        assert_int_equal(store_data_insert(s, "x", UINT64_MAX, SHA_A, false, &acl_700, id),
                         -EINVAL);
        assert_int_equal(store_data_insert(s, "x", 1, SHA_A, false, NULL, id), -EINVAL);

        /* insert, get */
        assert_int_equal(store_data_insert(s, "in.txt", 12345, SHA_A, false, &acl_700, id), 0);
        assert_true(store_data_id_valid(id));
        {
                _cleanup_(store_data_clear) struct store_data d = {};

                assert_int_equal(store_data_get(s, id, &d), 0);
                assert_string_equal(d.id, id);
                assert_string_equal(d.name, "in.txt");
                assert_int_equal(d.size, 12345);
                assert_string_equal(d.sha256, SHA_A);
                assert_false(d.confidential);
                assert_int_equal(d.acl.owner, 1);
                assert_int_equal(d.acl.mode, 0700);
                assert_true(d.created_at > 0);
        }
        assert_int_equal(
                store_data_get(s, "0123456789abcdef0123456789abcdef", &(struct store_data){}),
                -ENOENT);
        assert_int_equal(store_data_get(s, "nope", &(struct store_data){}), -EINVAL);

        /* confidential data is private, by the schema itself */
        assert_int_equal(store_data_insert(s, "key.pem", 10, SHA_B, true, &conf, id2), 0);
        for (size_t i = 0; i < ELEMENTSOF(widen); i++) {
                assert_int_equal(store_data_insert(s, "k", 1, SHA_B, true, &widen[i], id3),
                                 -EINVAL);
                assert_int_equal(store_data_set_acl(s, id2, &widen[i]), -EINVAL);
        }
        assert_int_equal(
                store_data_set_acl(s, id2,
                                   &(struct store_acl){.owner = 1, .group = staff, .mode = 0700}),
                -EINVAL);
        /* lowering and chown stay possible */
        assert_int_equal(store_data_set_acl(
                                 s, id2, &(struct store_acl){.owner = 1, .group = 0, .mode = 0400}),
                         0);
        {
                _cleanup_(store_data_clear) struct store_data d = {};

                assert_int_equal(store_data_get(s, id2, &d), 0);
                assert_true(d.confidential);
                assert_int_equal(d.acl.mode, 0400);
                assert_int_equal(d.acl.group, 0);
        }
        /* a raw UPDATE cannot widen it either */
        {
                sqlite3 *db = raw_open(f->path);

                assert_int_not_equal(
                        sqlite3_exec(db, "UPDATE data SET mode = 493 WHERE confidential = 1", NULL,
                                     NULL, NULL),
                        SQLITE_OK);
                assert_int_equal(sqlite3_close(db), SQLITE_OK);
        }

        /* delete: the blob stays referenced while another object or a job names the digest */
        assert_int_equal(store_data_insert(s, "copy", 12345, SHA_A, false, &acl_700, id3), 0);
        assert_int_equal(store_blob_referenced(s, SHA_A), 1);
        assert_int_equal(store_data_delete(s, id, &unref), 0);
        assert_false(unref);
        assert_int_equal(store_data_get(s, id, &(struct store_data){}), -ENOENT);
        assert_int_equal(store_data_delete(s, id, &unref), -ENOENT);
        app = make_app(s, "sh");
        assert_int_equal(store_job_insert(s, app, &acl_700, 0, "{\"source\":\"x\"}", job), 0);
        assert_int_equal(store_job_transition(s, job, STORE_JOB_QUEUED, STORE_JOB_RUNNING), 0);
        assert_int_equal(store_job_finish(s, job, STORE_JOB_FINISHED,
                                          "{\"run\":{\"stdout\":{\"sha256\":\"" SHA_A "\"}}}",
                                          NULL),
                         0);
        unref = true;
        assert_int_equal(store_data_delete(s, id3, &unref), 0);
        assert_false(unref); /* the job's result names it */
        assert_int_equal(store_blob_referenced(s, SHA_A), 1);
        unref = false;
        assert_int_equal(store_data_delete(s, id2, &unref), 0);
        assert_true(unref);
        assert_int_equal(store_blob_referenced(s, SHA_B), 0);
        assert_int_equal(store_blob_referenced(s, "x"), -EINVAL);
        assert_int_equal(store_data_delete(s, "nope", NULL), -EINVAL);

        /* survives a reopen */
        assert_int_equal(store_data_insert(s, "keep", 0, SHA_B, false, &acl_700, id), 0);
        s = store_close(s);
        s = open_ok(f->path);
        {
                _cleanup_(store_data_clear) struct store_data d = {};

                assert_int_equal(store_data_get(s, id, &d), 0);
                assert_string_equal(d.name, "keep");
                assert_int_equal(d.size, 0);
        }
}

/* Lists every data object a filter passes, in pages of page_size; counts each id's appearances
 * in seen[] (indexed like ids). */
static void data_list_all(struct store *s, char (*ids)[STORE_DATA_ID_SIZE], size_t n_ids,
                          struct store_data_filter filter, size_t page_size, int *seen)
{
        int64_t last_created = 0, prev_created = INT64_MAX;
        char last_id[STORE_DATA_ID_SIZE] = "";

        memset(seen, 0, n_ids * sizeof(*seen));
        filter.limit = page_size;
        for (;;) {
                struct store_data *page = NULL;
                size_t n = 0;

                filter.after_created_at = last_created;
                filter.after_id = last_id[0] ? last_id : NULL;
                assert_int_equal(store_data_list(s, &filter, &page, &n), 0);
                for (size_t k = 0; k < n; k++) {
                        bool found = false;

                        /* newest first */
                        assert_true(page[k].created_at <= prev_created);
                        prev_created = page[k].created_at;
                        for (size_t i = 0; i < n_ids; i++)
                                if (strcmp(ids[i], page[k].id) == 0) {
                                        seen[i]++;
                                        found = true;
                                }
                        assert_true(found);
                }
                if (n > 0) {
                        last_created = page[n - 1].created_at;
                        memcpy(last_id, page[n - 1].id, sizeof(last_id));
                }
                page = store_data_array_free(page, n);
                if (n < page_size)
                        break;
        }
}

/* The reader filter of store_data_list() selects exactly what auth_check() lets one READ. */
static void test_data_list_reader(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        static const uint32_t modes[] = {0700, 0750, 0755, 0704, 0740,
                                         0705, 0000, 0400, 0040, 0004};
        static const int64_t owners[] = {0, 1, 2, 3};
        static const int64_t groups[] = {0, 10, 20};
        static const int64_t g_10_20[] = {10, 20}, g_10[] = {10}, g_0_30[] = {0, 30};

        enum { N = ELEMENTSOF(modes) * ELEMENTSOF(owners) * ELEMENTSOF(groups) };

        char ids[N][STORE_DATA_ID_SIZE];
        struct store_acl acls[N];
        int seen[N];
        size_t k = 0;
        sqlite3 *db;

        const struct auth_subject subjects[] = {
                {.user = 1, .rights = AUTH_RIGHTS_STANDARD, .groups = g_10_20, .n_groups = 2},
                {.user = 2, .rights = AUTH_RIGHTS_STANDARD, .groups = g_10, .n_groups = 1},
                {.user = 3, .rights = AUTH_RIGHTS_STANDARD, .groups = g_0_30, .n_groups = 2},
                {.user = 5, .rights = AUTH_RIGHTS_STANDARD},
                {.user = 0, .rights = AUTH_RIGHTS_STANDARD},
                {.user = 7, .rights = AUTH_RIGHTS_ADMIN},
        };

        s = open_ok(f->path);
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                for (size_t o = 0; o < ELEMENTSOF(owners); o++)
                        for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
                                acls[k] = (struct store_acl){
                                        .owner = owners[o], .group = groups[g], .mode = modes[m]};
                                assert_int_equal(store_data_insert(s, "d", 1, SHA_A, false,
                                                                   &acls[k], ids[k]),
                                                 0);
                                k++;
                        }
        assert_int_equal(k, N);
        /* ties on created_at, so that pages also cut through equal times */
        db = raw_open(f->path);
        raw_exec(db, "UPDATE data SET created_at = 42 WHERE seq % 3 = 0");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        for (size_t w = 0; w < ELEMENTSOF(subjects); w++) {
                const struct auth_subject *who = &subjects[w];
                const struct store_data_filter filter = {
                        .by_reader = true,
                        .reader = who->user,
                        .reader_is_admin = who->rights == AUTH_RIGHTS_ADMIN,
                        .reader_groups = who->groups,
                        .n_reader_groups = who->n_groups,
                };
                int n_visible = 0;
                bool visible[N];

                for (size_t i = 0; i < N; i++) {
                        const struct auth_object obj = {.owner = acls[i].owner,
                                                        .group = acls[i].group,
                                                        .mode = acls[i].mode};

                        visible[i] =
                                auth_check(who, AUTH_ACTION_DATA_GET, &obj, AUTH_PERM_READ) == 0;
                        n_visible += visible[i];
                }
                assert_true(n_visible > 0);
                if (who->rights != AUTH_RIGHTS_ADMIN)
                        assert_true(n_visible < (int) N);
                data_list_all(s, ids, N, filter, STORE_LIST_MAX, seen);
                for (size_t i = 0; i < N; i++)
                        assert_int_equal(seen[i], visible[i] ? 1 : 0);
                data_list_all(s, ids, N, filter, 7, seen);
                for (size_t i = 0; i < N; i++)
                        assert_int_equal(seen[i], visible[i] ? 1 : 0);
        }
        /* bad filters */
        {
                struct store_data *page = NULL;
                size_t n = 0;
                struct store_data_filter bad = {.by_reader = true, .reader = -1, .limit = 5};

                assert_int_equal(store_data_list(s, &bad, &page, &n), -EINVAL);
                bad = (struct store_data_filter){.limit = 0};
                assert_int_equal(store_data_list(s, &bad, &page, &n), -EINVAL);
                bad = (struct store_data_filter){.limit = 5, .after_id = "nope"};
                assert_int_equal(store_data_list(s, &bad, &page, &n), -EINVAL);
                assert_int_equal(store_data_list(s, NULL, &page, &n), -EINVAL);
        }
}

static void test_migration_from_v3(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *fresh = NULL, *migrated = NULL;
        char id[STORE_DATA_ID_SIZE];
        int64_t alice;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h", 2, STORE_USER_ACTIVE, &acl_700, &alice),
                         0);
        s = store_close(s);
        db = raw_open(f->path);
        fresh = raw_str(db, SCHEMA_SQL);
        raw_exec(db, "BEGIN;" DROP_V5 "DROP TABLE data; PRAGMA user_version = 3; COMMIT;");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        s = open_ok(f->path);
        assert_int_equal(store_data_insert(s, "x", 3, SHA_A, false, &acl_700, id), 0);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                assert_int_equal(store_user_get(s, alice, &u), 0);
        }
        s = store_close(s);
        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        migrated = raw_str(db, SCHEMA_SQL);
        assert_string_equal(migrated, fresh);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- group lists and members ---- */

static void test_group_list(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        struct store_group *list = NULL;
        static const char *const names[] = {"g1", "g2", "g3", "g4", "g5"};
        int64_t ids[ELEMENTSOF(names)], id;
        size_t n = 99;

        s = open_ok(f->path);
        assert_int_equal(store_group_list(s, 0, 10, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const struct store_acl acl = {.owner = 1, .group = 0, .mode = 0700 + (uint32_t) i};
                assert_int_equal(store_group_create(s, names[i], &acl, &ids[i]), 0);
        }
        assert_int_equal(store_group_delete(s, ids[2]), 0);

        /* pages of 2: g1 g2 | g4 g5 | nothing */
        assert_int_equal(store_group_list(s, 0, 2, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, ids[0]);
        assert_string_equal(list[0].name, "g1");
        assert_int_equal(list[0].acl.owner, 1);
        assert_int_equal(list[0].acl.mode, 0700);
        assert_true(list[0].created_at > 0);
        assert_int_equal(list[1].id, ids[1]);
        id = list[1].id;
        list = store_group_array_free(list, n);
        assert_int_equal(store_group_list(s, id, 2, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, ids[3]);
        assert_string_equal(list[0].name, "g4");
        assert_int_equal(list[1].id, ids[4]);
        assert_string_equal(list[1].name, "g5");
        assert_int_equal(list[1].acl.mode, 0704);
        id = list[1].id;
        list = store_group_array_free(list, n);
        assert_int_equal(store_group_list(s, id, 2, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);

        /* one page of everything, from a cursor in a gap */
        assert_int_equal(store_group_list(s, ids[2], STORE_LIST_MAX, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, ids[3]);
        list = store_group_array_free(list, n);
        assert_int_equal(store_group_list(s, -5, STORE_LIST_MAX, &list, &n), 0);
        assert_int_equal(n, 4);
        list = store_group_array_free(list, n);

        n = 99;
        assert_int_equal(store_group_list(s, 0, 0, &list, &n), -EINVAL);
        assert_int_equal(store_group_list(s, 0, STORE_LIST_MAX + 1, &list, &n), -EINVAL);
        assert_null(list);
        assert_int_equal(n, 99);
        assert_null(store_group_array_free(NULL, 3));
}

static void test_group_members(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        int64_t *ids = NULL;
        int64_t alice, bob, carol, staff, empty;
        size_t n = 99;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);
        assert_int_equal(
                store_user_create(s, "carol", NULL, 1, STORE_USER_ACTIVE, &acl_700, &carol), 0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);
        assert_int_equal(store_group_create(s, "empty", &acl_700, &empty), 0);

        /* no members: zero, NULL */
        assert_int_equal(store_group_members(s, empty, &ids, &n), 0);
        assert_int_equal(n, 0);
        assert_null(ids);
        /* unknown group: -ENOENT, outputs untouched */
        n = 99;
        assert_int_equal(store_group_members(s, 999, &ids, &n), -ENOENT);
        assert_int_equal(store_group_members(s, 0, &ids, &n), -ENOENT);
        assert_int_equal(n, 99);
        assert_null(ids);

        /* added out of order, returned ascending */
        assert_int_equal(store_group_add_member(s, staff, carol), 0);
        assert_int_equal(store_group_add_member(s, staff, alice), 0);
        assert_int_equal(store_group_add_member(s, staff, bob), 0);
        assert_int_equal(store_group_members(s, staff, &ids, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(ids[0], alice);
        assert_int_equal(ids[1], bob);
        assert_int_equal(ids[2], carol);
        ids = (free(ids), NULL);

        /* removals and deletions follow */
        assert_int_equal(store_group_remove_member(s, staff, alice), 0);
        assert_int_equal(store_user_delete(s, carol), 0);
        assert_int_equal(store_group_members(s, staff, &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], bob);
        ids = (free(ids), NULL);
        assert_int_equal(store_group_delete(s, staff), 0);
        assert_int_equal(store_group_members(s, staff, &ids, &n), -ENOENT);
        assert_null(ids);
}

static void test_group_members_limit(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        int64_t big, last, extra;
        size_t n = 0;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_group_create(s, "big", &acl_700, &big), 0);
        /* the fixture in one transaction: STORE_GROUP_MEMBERS_MAX + 1 users, all but two in big */
        db = raw_open(f->path);
        raw_exec(db,
                 "BEGIN;"
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4097)"
                 " INSERT INTO users (name, rights, state, owner_id, group_id, mode, created_at)"
                 " SELECT 'u' || x, 1, 'active', 1, 0, 448, 0 FROM c;"
                 "INSERT INTO memberships (user_id, group_id)"
                 " SELECT u.id, g.id FROM users u, groups g WHERE g.name = 'big'"
                 " ORDER BY u.id DESC LIMIT 4095;"
                 "COMMIT;");
        assert_int_equal(raw_int(db, "SELECT count(*) FROM users"), STORE_GROUP_MEMBERS_MAX + 1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM memberships"),
                         STORE_GROUP_MEMBERS_MAX - 1);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                assert_int_equal(store_user_get_by_name(s, "u2", &u), 0);
                last = u.id;
                store_user_clear(&u);
                assert_int_equal(store_user_get_by_name(s, "u1", &u), 0);
                extra = u.id;
        }

        /* the last place, then a full group */
        assert_int_equal(store_group_add_member(s, big, last), 0);
        assert_int_equal(store_group_add_member(s, big, extra), -E2BIG);
        assert_int_equal(store_group_has_member(s, big, extra), 0);
        assert_int_equal(store_group_members(s, big, &ids, &n), 0);
        assert_int_equal(n, STORE_GROUP_MEMBERS_MAX);
        for (size_t i = 1; i < n; i++)
                assert_true(ids[i - 1] < ids[i]);
        assert_int_equal(ids[0], extra + 1);
        ids = (free(ids), NULL);

        /* a group over the bound (by hand, or from before it): refused, not cut short */
        db = raw_open(f->path);
        raw_exec(db, "INSERT INTO memberships (user_id, group_id)"
                     " SELECT u.id, g.id FROM users u, groups g WHERE u.name = 'u1' AND"
                     " g.name = 'big'");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        n = 7;
        assert_int_equal(store_group_members(s, big, &ids, &n), -E2BIG);
        assert_null(ids);
        assert_int_equal(n, 7);
}

/* ---- audit ---- */

static void test_audit(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        struct store_audit *list = NULL;
        const char *ctl = "bad \x01\x1b[31mred\x1b[0m\n\tline\x7f \"q\" \\ end";
        char event64[STORE_AUDIT_EVENT_MAX + 2];
        int64_t alice, bob, t0, last;
        size_t n = 99;

        s = open_ok(f->path);
        assert_int_equal(
                store_user_create(s, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &alice), 0);
        assert_int_equal(store_user_create(s, "bob", NULL, 1, STORE_USER_ACTIVE, &acl_700, &bob),
                         0);

        assert_int_equal(store_audit_list(s, 0, 10, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);

        t0 = (int64_t) now_ns(CLOCK_REALTIME);
        assert_int_equal(
                store_audit_append(s, alice, "login", "user:alice", "password", "192.0.2.1:5000"),
                0);
        assert_int_equal(store_audit_append(s, 0, "login_failed", NULL, NULL, NULL), 0);
        assert_int_equal(store_audit_append(s, bob, "job_cancel", "job:0123", ctl, "[2001:db8::1]"),
                         0);
        assert_int_equal(store_audit_append(s, bob, "chmod", "", "", ""), 0);

        assert_int_equal(store_audit_list(s, 0, 10, &list, &n), 0);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++) {
                if (i > 0) {
                        assert_true(list[i].id > list[i - 1].id);
                        assert_true(list[i].at >= list[i - 1].at);
                }
                assert_true(list[i].at >= t0);
        }
        assert_int_equal(list[0].actor, alice);
        assert_string_equal(list[0].event, "login");
        assert_string_equal(list[0].object, "user:alice");
        assert_string_equal(list[0].detail, "password");
        assert_string_equal(list[0].peer, "192.0.2.1:5000");
        assert_int_equal(list[1].actor, 0);
        assert_string_equal(list[1].event, "login_failed");
        assert_null(list[1].object);
        assert_null(list[1].detail);
        assert_null(list[1].peer);
        /* control characters as they were given */
        assert_int_equal(list[2].actor, bob);
        assert_string_equal(list[2].detail, ctl);
        assert_string_equal(list[2].peer, "[2001:db8::1]");
        /* empty is not NULL */
        assert_string_equal(list[3].object, "");
        assert_string_equal(list[3].detail, "");
        assert_string_equal(list[3].peer, "");
        list = store_audit_array_free(list, n);

        /* pages of 3, then 3 */
        assert_int_equal(store_audit_list(s, 0, 3, &list, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(list[0].event, "login");
        last = list[2].id;
        list = store_audit_array_free(list, n);
        assert_int_equal(store_audit_list(s, last, 3, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].event, "chmod");
        last = list[0].id;
        list = store_audit_array_free(list, n);
        assert_int_equal(store_audit_list(s, last, 3, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);

        /* bad events and actors are refused (events are ours, never cut) */
        static const char *const bad_events[] = {
                "", "Login", "log-in", "login1", " login", "login\n", "l\xc3\xa9", "job.get",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_events); i++)
                assert_int_equal(store_audit_append(s, alice, bad_events[i], NULL, NULL, NULL),
                                 -EINVAL);
        assert_int_equal(store_audit_append(s, alice, NULL, NULL, NULL, NULL), -EINVAL);
        memset(event64, 'e', sizeof(event64) - 1);
        event64[sizeof(event64) - 1] = '\0';
        assert_int_equal(store_audit_append(s, alice, event64, NULL, NULL, NULL), -EINVAL);
        event64[STORE_AUDIT_EVENT_MAX] = '\0'; /* exactly the maximum */
        event64[0] = '_';
        assert_int_equal(store_audit_append(s, alice, event64, NULL, NULL, NULL), 0);
        assert_int_equal(store_audit_append(s, -1, "login", NULL, NULL, NULL), -EINVAL);
        assert_int_equal(store_audit_append(s, INT64_MIN, "login", NULL, NULL, NULL), -EINVAL);
        assert_int_equal(store_audit_list(s, last, 10, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].event, event64);
        list = store_audit_array_free(list, n);

        n = 99;
        assert_int_equal(store_audit_list(s, 0, 0, &list, &n), -EINVAL);
        assert_int_equal(store_audit_list(s, 0, STORE_LIST_MAX + 1, &list, &n), -EINVAL);
        assert_null(list);
        assert_int_equal(n, 99);

        /* deleting a user keeps their records; a reopen keeps everything */
        assert_int_equal(store_user_delete(s, bob), 0);
        s = store_close(s);
        s = open_ok(f->path);
        assert_int_equal(store_audit_list(s, 0, STORE_LIST_MAX, &list, &n), 0);
        assert_int_equal(n, 5);
        assert_int_equal(list[2].actor, bob);
        assert_string_equal(list[2].event, "job_cancel");
        assert_int_equal(list[3].actor, bob);
        list = store_audit_array_free(list, n);
        assert_null(store_audit_array_free(NULL, 2));
        store_audit_clear(NULL);
}

/* A text of n copies of c followed by tail, into a malloc'd buffer. */
static char *text_of(char c, size_t n, const char *tail)
{
        size_t t = strlen(tail);
        char *p = malloc(n + t + 1);

        assert_non_null(p);
        memset(p, c, n);
        memcpy(p + n, tail, t + 1);
        return p;
}

/* Appends one record and returns the latest record. */
static void audit_roundtrip(struct store *s, const char *object, const char *detail,
                            const char *peer, struct store_audit *ret)
{
        struct store_audit *list = NULL;
        size_t n = 0;

        assert_int_equal(store_audit_append(s, 1, "cut", object, detail, peer), 0);
        assert_int_equal(store_audit_list(s, 0, STORE_LIST_MAX, &list, &n), 0);
        assert_true(n > 0);
        *ret = list[n - 1];
        list[n - 1] = (struct store_audit){};
        list = store_audit_array_free(list, n);
}

static void assert_text(const char *got, char c, size_t n, const char *tail)
{
        assert_non_null(got);
        assert_int_equal(strlen(got), n + strlen(tail));
        for (size_t i = 0; i < n; i++)
                assert_int_equal(got[i], c);
        assert_string_equal(got + n, tail);
}

#define EMOJI  "\xf0\x9f\x98\x80" /* U+1F600, 4 bytes */
#define EURO   "\xe2\x82\xac"     /* U+20AC, 3 bytes */
#define EACUTE "\xc3\xa9"         /* U+00E9, 2 bytes */

static void test_audit_cut(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        const size_t D = STORE_AUDIT_DETAIL_MAX, O = STORE_AUDIT_OBJECT_MAX,
                     P = STORE_AUDIT_PEER_MAX;

        s = open_ok(f->path);

        /* exactly the bounds: kept whole */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *o = text_of('o', O, ""), *d = text_of('d', D, ""),
                                    *p = text_of('p', P, "");
                audit_roundtrip(s, o, d, p, &a);
                assert_string_equal(a.object, o);
                assert_string_equal(a.detail, d);
                assert_string_equal(a.peer, p);
        }
        /* one byte over: cut to the bound */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *o = text_of('o', O + 1, ""), *d = text_of('d', D + 1, ""),
                                    *p = text_of('p', P + 1, "");
                audit_roundtrip(s, o, d, p, &a);
                assert_text(a.object, 'o', O, "");
                assert_text(a.detail, 'd', D, "");
                assert_text(a.peer, 'p', P, "");
        }
        /* a 4-byte character straddling the bound (at every offset) is dropped whole */
        for (size_t k = 1; k <= 3; k++) {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *d = text_of('d', D - k, EMOJI "tail");
                audit_roundtrip(s, NULL, d, NULL, &a);
                assert_text(a.detail, 'd', D - k, "");
                assert_null(a.object);
                assert_null(a.peer);
        }
        /* ending exactly at the bound, it stays, whatever follows */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *d = text_of('d', D - 4, EMOJI "x" EMOJI);
                audit_roundtrip(s, NULL, d, NULL, &a);
                assert_text(a.detail, 'd', D - 4, EMOJI);
        }
        /* 3- and 2-byte characters too */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *o = text_of('o', O - 2, EURO),
                                    *p = text_of('p', P - 1, EACUTE);
                audit_roundtrip(s, o, NULL, p, &a);
                assert_text(a.object, 'o', O - 2, "");
                assert_text(a.peer, 'p', P - 1, "");
        }
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *o = text_of('o', O - 3, EURO EURO),
                                    *p = text_of('p', P - 2, EACUTE EACUTE);
                audit_roundtrip(s, o, NULL, p, &a);
                assert_text(a.object, 'o', O - 3, EURO);
                assert_text(a.peer, 'p', P - 2, EACUTE);
        }
        /* multi-byte all the way: whole characters only */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                char d[STORE_AUDIT_DETAIL_MAX + 64] = "";
                for (size_t i = 0; i + 4 < sizeof(d); i += 3)
                        memcpy(d + i, EURO, 3);
                audit_roundtrip(s, NULL, d, NULL, &a);
                assert_int_equal(strlen(a.detail), D / 3 * 3);
                assert_int_equal(memcmp(a.detail, d, D / 3 * 3), 0);
        }
        /* a huge text is never refused: a record is never lost for its length */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *d = text_of('h', 1u << 20, "");
                audit_roundtrip(s, d, d, d, &a);
                assert_text(a.object, 'h', O, "");
                assert_text(a.detail, 'h', D, "");
                assert_text(a.peer, 'h', P, "");
        }
        /* not UTF-8 (continuation bytes only): at most 3 more bytes go, the record stays */
        {
                _cleanup_(store_audit_clear) struct store_audit a = {};
                _cleanup_free_ char *p = text_of('\x80', P + 8, "");
                audit_roundtrip(s, NULL, NULL, p, &a);
                assert_int_equal(strlen(a.peer), P - 3);
        }
}

static void test_audit_append_only(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        struct store_audit *list = NULL;
        char *err = NULL;
        size_t n;
        sqlite3 *db;

        static const char *const forbidden[] = {
                "UPDATE audit SET actor = 9",
                "UPDATE audit SET detail = 'rewritten' WHERE id = 1",
                "DELETE FROM audit",
                "DELETE FROM audit WHERE id = 2",
                /* REPLACE would delete the old row without a DELETE trigger */
                "INSERT OR REPLACE INTO audit (id, at, actor, event) VALUES (1, 0, 0, 'forged')",
                "REPLACE INTO audit (id, at, actor, event) VALUES (2, 0, 0, 'forged')",
                "INSERT INTO audit (id, at, actor, event) VALUES (1, 0, 0, 'forged')"
                " ON CONFLICT (id) DO UPDATE SET event = 'forged'",
                /* and the schema's own checks */
                "INSERT INTO audit (at, actor, event) VALUES (0, 0, 'Bad')",
                "INSERT INTO audit (at, actor, event) VALUES (0, -1, 'ok')",
                "INSERT INTO audit (at, actor, event, peer) VALUES (0, 0, 'ok', hex(zeroblob(33)))",
        };

        s = open_ok(f->path);
        assert_int_equal(store_audit_append(s, 1, "login", "user:alice", "first", NULL), 0);
        assert_int_equal(store_audit_append(s, 2, "logout", NULL, "second", NULL), 0);

        db = raw_open(f->path);
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                assert_int_not_equal(sqlite3_exec(db, forbidden[i], NULL, NULL, &err), SQLITE_OK);
                assert_non_null(err);
                if (i < 7 && !strstr(err, "append-only"))
                        fail_msg("'%s' failed with '%s'", forbidden[i], err);
                sqlite3_free(err);
                err = NULL;
        }
        /* in a transaction too: the failing statement changes nothing */
        raw_exec(db, "BEGIN");
        assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);
        raw_exec(db, "COMMIT");
        /* appending is what remains */
        raw_exec(db, "INSERT INTO audit (at, actor, event) VALUES (0, 0, 'raw')");
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_int_equal(store_audit_list(s, 0, 10, &list, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(list[0].id, 1);
        assert_int_equal(list[0].actor, 1);
        assert_string_equal(list[0].event, "login");
        assert_string_equal(list[0].detail, "first");
        assert_int_equal(list[1].id, 2);
        assert_string_equal(list[1].event, "logout");
        assert_string_equal(list[1].detail, "second");
        assert_string_equal(list[2].event, "raw");
        list = store_audit_array_free(list, n);
}

/* ---- workers, join tokens, replicas, batches ---- */

/* A CURVE key in Z85: 40 characters, all c. */
static const char *key_of(char out[static STORE_CURVE_KEY_SIZE], char c)
{
        memset(out, c, STORE_CURVE_KEY_LEN);
        out[STORE_CURVE_KEY_LEN] = '\0';
        return out;
}

#define LEASE_A "0123456789abcdef0123456789abcdef"
#define LEASE_B "fedcba9876543210fedcba9876543210"

static int64_t make_worker(struct store *s, const char *name, char key_char)
{
        char key[STORE_CURVE_KEY_SIZE];
        int64_t id = 0;

        assert_int_equal(store_worker_create(s, name, key_of(key, key_char), STORE_WORKER_PUBLIC, 0,
                                             0, 4, &id),
                         0);
        assert_true(id > 0);
        return id;
}

static void test_worker_names(void **state)
{
        static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
        static const char not_z85[] = " \"',;\\_`|~\t\x7f\x80\xff";
        char key[STORE_CURVE_KEY_SIZE + 1];

        (void) state;
        assert_string_equal(store_worker_confinement_to_string(STORE_WORKER_PUBLIC), "public");
        assert_string_equal(store_worker_confinement_to_string(STORE_WORKER_GROUP), "group");
        assert_string_equal(store_worker_confinement_to_string(STORE_WORKER_PRIVATE), "private");
        assert_null(store_worker_confinement_to_string(_STORE_WORKER_CONFINEMENT_MAX));
        assert_null(store_worker_confinement_to_string(-1));
        assert_int_equal(store_worker_confinement_from_string("group"), STORE_WORKER_GROUP);
        assert_int_equal(store_worker_confinement_from_string("Group"), -EINVAL);
        assert_int_equal(store_worker_confinement_from_string(NULL), -EINVAL);
        assert_string_equal(store_replica_state_to_string(STORE_REPLICA_QUEUED), "queued");
        assert_string_equal(store_replica_state_to_string(STORE_REPLICA_ASSIGNED), "assigned");
        assert_string_equal(store_replica_state_to_string(STORE_REPLICA_DONE), "done");
        assert_string_equal(store_replica_state_to_string(STORE_REPLICA_FAILED), "failed");
        assert_null(store_replica_state_to_string(_STORE_REPLICA_STATE_MAX));
        assert_null(store_replica_state_to_string(-1));

        /* every character of the alphabet, at every position */
        assert_int_equal(strlen(z85), 85);
        for (size_t i = 0; i < 85; i++) {
                key_of(key, 'a');
                key[i % STORE_CURVE_KEY_LEN] = z85[i];
                assert_true(store_curve_key_valid(key));
        }
        for (size_t i = 0; i < sizeof(not_z85) - 1; i++) {
                key_of(key, 'a');
                key[i] = not_z85[i];
                assert_false(store_curve_key_valid(key));
        }
        key_of(key, 'a');
        key[STORE_CURVE_KEY_LEN - 1] = '\0';
        assert_false(store_curve_key_valid(key)); /* 39 */
        key_of(key, 'a');
        key[STORE_CURVE_KEY_LEN] = 'a';
        key[STORE_CURVE_KEY_LEN + 1] = '\0';
        assert_false(store_curve_key_valid(key)); /* 41 */
        assert_false(store_curve_key_valid(""));
        assert_false(store_curve_key_valid(NULL));
}

static void test_workers(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        struct store_worker *list = NULL;
        char k[STORE_CURVE_KEY_SIZE], k2[STORE_CURVE_KEY_SIZE];
        int64_t alice, staff, w1, w2, w3, id = 0;
        size_t n;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h", 1, STORE_USER_ACTIVE, &acl_700, &alice),
                         0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);

        assert_int_equal(
                store_worker_create(s, "w1", key_of(k, 'A'), STORE_WORKER_PUBLIC, 0, 0, 4, &w1), 0);
        {
                _cleanup_(store_worker_clear) struct store_worker w = {};
                _cleanup_(store_worker_clear) struct store_worker by_name = {};
                _cleanup_(store_worker_clear) struct store_worker by_key = {};
                _cleanup_(store_user_clear) struct store_user u = {};

                assert_int_equal(store_worker_get(s, w1, &w), 0);
                assert_int_equal(w.id, w1);
                assert_string_equal(w.name, "w1");
                assert_string_equal(w.public_key, k);
                assert_int_equal(w.confinement, STORE_WORKER_PUBLIC);
                assert_int_equal(w.group_id, 0);
                assert_int_equal(w.owner_id, 0);
                assert_int_equal(w.errors, 0);
                assert_true(w.created_at > 0);
                assert_int_equal(w.last_seen, 0);
                /* its account: a user of the same name, no password, owner of itself */
                assert_int_equal(store_user_get(s, w.user_id, &u), 0);
                assert_string_equal(u.name, "w1");
                assert_null(u.password_hash);
                assert_int_equal(u.rights, 4);
                assert_int_equal(u.state, STORE_USER_ACTIVE);
                assert_int_equal(u.acl.owner, w.user_id);
                assert_int_equal(u.acl.group, 0);
                assert_int_equal(u.acl.mode, 0700);
                assert_int_equal(store_worker_get_by_name(s, "w1", &by_name), 0);
                assert_int_equal(by_name.id, w1);
                assert_int_equal(store_worker_get_by_key(s, k, &by_key), 0);
                assert_int_equal(by_key.id, w1);
                assert_int_equal(by_key.user_id, w.user_id);
        }
        assert_int_equal(
                store_worker_create(s, "w2", key_of(k, 'B'), STORE_WORKER_GROUP, staff, 0, 4, &w2),
                0);
        assert_int_equal(store_worker_create(s, "w3", key_of(k, 'C'), STORE_WORKER_PRIVATE, 0,
                                             alice, 4, &w3),
                         0);
        {
                _cleanup_(store_worker_clear) struct store_worker w = {};

                assert_int_equal(store_worker_get(s, w2, &w), 0);
                assert_int_equal(w.confinement, STORE_WORKER_GROUP);
                assert_int_equal(w.group_id, staff);
                assert_int_equal(w.owner_id, 0);
                store_worker_clear(&w);
                assert_int_equal(store_worker_get(s, w3, &w), 0);
                assert_int_equal(w.confinement, STORE_WORKER_PRIVATE);
                assert_int_equal(w.group_id, 0);
                assert_int_equal(w.owner_id, alice);
        }

        /* -EINVAL: name, key, confinement and the ids that go with it */
        key_of(k, 'D');
        assert_int_equal(store_worker_create(s, "W4", k, STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, NULL, k, STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", "short", STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", NULL, STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(
                store_worker_create(s, "w4", k, _STORE_WORKER_CONFINEMENT_MAX, 0, 0, 4, &id),
                -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, -1, 0, 0, 4, &id), -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_PUBLIC, staff, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_PUBLIC, 0, alice, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_GROUP, 0, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_GROUP, staff, alice, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_GROUP, -1, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_PRIVATE, 0, 0, 4, &id),
                         -EINVAL);
        assert_int_equal(
                store_worker_create(s, "w4", k, STORE_WORKER_PRIVATE, staff, alice, 4, &id),
                -EINVAL);
        /* -ENOENT: a group or owner that is not there */
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_GROUP, 999, 0, 4, &id),
                         -ENOENT);
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_PRIVATE, 0, 999, 4, &id),
                         -ENOENT);
        /* -EEXIST: a worker's name, a user's name, a key; nothing is left behind */
        assert_int_equal(store_worker_create(s, "w1", k, STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                         -EEXIST);
        assert_int_equal(store_worker_create(s, "alice", k, STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                         -EEXIST);
        assert_int_equal(
                store_worker_create(s, "w4", key_of(k2, 'A'), STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                -EEXIST);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                _cleanup_(store_worker_clear) struct store_worker w = {};

                assert_int_equal(store_user_get_by_name(s, "w4", &u), -ENOENT);
                assert_int_equal(store_worker_get_by_name(s, "w4", &w), -ENOENT);
                assert_int_equal(store_worker_get_by_name(s, "alice", &w), -ENOENT);
                assert_int_equal(store_worker_get(s, 999, &w), -ENOENT);
                assert_int_equal(store_worker_get_by_key(s, k, &w), -ENOENT);
                assert_int_equal(store_worker_get_by_name(s, "Bad", &w), -EINVAL);
                assert_int_equal(store_worker_get_by_key(s, "short", &w), -EINVAL);
        }
        /* ret_id may be NULL */
        assert_int_equal(store_worker_create(s, "w4", k, STORE_WORKER_PUBLIC, 0, 0, 4, NULL), 0);

        /* lists */
        assert_int_equal(store_worker_list(s, 0, 2, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, w1);
        assert_int_equal(list[1].id, w2);
        assert_string_equal(list[1].name, "w2");
        assert_int_equal(list[1].group_id, staff);
        list = store_worker_array_free(list, n);
        assert_int_equal(store_worker_list(s, w2, STORE_LIST_MAX, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, w3);
        assert_string_equal(list[1].name, "w4");
        list = store_worker_array_free(list, n);
        assert_int_equal(store_worker_list(s, INT64_MAX, 5, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);
        assert_int_equal(store_worker_list(s, 0, 0, &list, &n), -EINVAL);
        assert_int_equal(store_worker_list(s, 0, STORE_LIST_MAX + 1, &list, &n), -EINVAL);

        /* errors and last_seen */
        assert_int_equal(store_worker_add_error(s, w1), 0);
        assert_int_equal(store_worker_add_error(s, w1), 0);
        assert_int_equal(store_worker_touch(s, w1, 12345), 0);
        assert_int_equal(store_worker_add_error(s, 999), -ENOENT);
        assert_int_equal(store_worker_touch(s, 999, 1), -ENOENT);
        {
                _cleanup_(store_worker_clear) struct store_worker w = {};

                assert_int_equal(store_worker_get(s, w1, &w), 0);
                assert_int_equal(w.errors, 2);
                assert_int_equal(w.last_seen, 12345);
        }

        /* deleting a worker deletes its account; deleting the account deletes the worker */
        {
                _cleanup_(store_worker_clear) struct store_worker w = {}, w2r = {};
                struct store_user u = {};

                assert_int_equal(store_worker_get(s, w1, &w), 0);
                assert_int_equal(store_worker_delete(s, w1), 0);
                assert_int_equal(store_worker_delete(s, w1), -ENOENT);
                assert_int_equal(store_user_get(s, w.user_id, &u), -ENOENT);
                assert_int_equal(store_worker_get(s, w2, &w2r), 0);
                assert_int_equal(store_user_delete(s, w2r.user_id), 0);
                store_worker_clear(&w2r);
                assert_int_equal(store_worker_get(s, w2, &w2r), -ENOENT);
                /* the name and the key are free again, but never the id */
                assert_int_equal(store_worker_create(s, "w1", w.public_key, STORE_WORKER_PUBLIC, 0,
                                                     0, 4, &id),
                                 0);
                assert_true(id > w3);
        }

        /* the schema refuses a confinement without its ids, whatever the statement */
        db = raw_open(f->path);
        assert_int_not_equal(sqlite3_exec(db,
                                          "UPDATE workers SET group_id = 1"
                                          " WHERE confinement = 'private'",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(db,
                                          "UPDATE workers SET owner_id = 0"
                                          " WHERE confinement = 'private'",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(db,
                                          "UPDATE workers SET group_id = 1"
                                          " WHERE confinement = 'public'",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(
                sqlite3_exec(db, "UPDATE workers SET confinement = 'nobody'", NULL, NULL, NULL),
                SQLITE_OK);
        assert_int_not_equal(
                sqlite3_exec(db, "UPDATE workers SET public_key = 'short'", NULL, NULL, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_worker_tokens(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        uint8_t h1[STORE_WORKER_TOKEN_HASH_SIZE], h2[STORE_WORKER_TOKEN_HASH_SIZE],
                h3[STORE_WORKER_TOKEN_HASH_SIZE], hx[STORE_WORKER_TOKEN_HASH_SIZE],
                h4[STORE_WORKER_TOKEN_HASH_SIZE], hu[STORE_WORKER_TOKEN_HASH_SIZE];
        char k[STORE_CURVE_KEY_SIZE];
        int64_t alice, staff, other, j1, j2, j3, id = 0;
        uint64_t count = 99;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h", 1, STORE_USER_ACTIVE, &acl_700, &alice),
                         0);
        assert_int_equal(store_group_create(s, "staff", &acl_700, &staff), 0);
        assert_int_equal(store_group_create(s, "other", &acl_700, &other), 0);
        hash_of(h1, 1);
        hash_of(h2, 2);
        hash_of(h3, 3);
        hash_of(hx, 4);
        hash_of(h4, 5);
        hash_of(hu, 6);

        assert_int_equal(store_worker_tokens_pending(s, 0, &count), 0);
        assert_int_equal(count, 0);
        assert_int_equal(store_worker_token_create(s, h1, STORE_WORKER_PUBLIC, 0, 0, 1000), 0);
        assert_int_equal(store_worker_token_create(s, h2, STORE_WORKER_GROUP, staff, 0, 1000), 0);
        assert_int_equal(store_worker_token_create(s, h3, STORE_WORKER_PRIVATE, 0, alice, 1000), 0);
        assert_int_equal(store_worker_token_create(s, hx, STORE_WORKER_PUBLIC, 0, 0, 10), 0);
        assert_int_equal(store_worker_token_create(s, h4, STORE_WORKER_GROUP, other, 0, 1000), 0);
        /* the errors of creation */
        assert_int_equal(store_worker_token_create(s, h1, STORE_WORKER_PUBLIC, 0, 0, 1000),
                         -EEXIST);
        assert_int_equal(store_worker_token_create(s, hu, STORE_WORKER_PUBLIC, staff, 0, 1000),
                         -EINVAL);
        assert_int_equal(store_worker_token_create(s, hu, STORE_WORKER_GROUP, 0, 0, 1000), -EINVAL);
        assert_int_equal(store_worker_token_create(s, hu, STORE_WORKER_PRIVATE, 0, 0, 1000),
                         -EINVAL);
        assert_int_equal(store_worker_token_create(s, hu, 7, 0, 0, 1000), -EINVAL);
        assert_int_equal(store_worker_token_create(s, hu, STORE_WORKER_GROUP, 999, 0, 1000),
                         -ENOENT);
        assert_int_equal(store_worker_token_create(s, hu, STORE_WORKER_PRIVATE, 0, 999, 1000),
                         -ENOENT);
        assert_int_equal(store_worker_tokens_pending(s, 5, &count), 0);
        assert_int_equal(count, 5);
        assert_int_equal(store_worker_tokens_pending(s, 10, &count), 0);
        assert_int_equal(count, 4); /* expires_at > now */

        /* once, then never again */
        assert_int_equal(store_worker_token_redeem(s, h1, 500, "j1", key_of(k, '1'), 4, &j1), 0);
        assert_int_equal(store_worker_token_redeem(s, h1, 500, "j9", key_of(k, '9'), 4, &id),
                         -ENOENT);
        {
                _cleanup_(store_worker_clear) struct store_worker w = {};
                _cleanup_(store_user_clear) struct store_user u = {};

                assert_int_equal(store_worker_get(s, j1, &w), 0);
                assert_string_equal(w.name, "j1");
                assert_string_equal(w.public_key, key_of(k, '1'));
                assert_int_equal(w.confinement, STORE_WORKER_PUBLIC);
                assert_int_equal(store_user_get(s, w.user_id, &u), 0);
                assert_string_equal(u.name, "j1");
                assert_int_equal(u.rights, 4);
        }
        assert_int_equal(store_worker_token_redeem(s, h2, 500, "j2", key_of(k, '2'), 4, &j2), 0);
        {
                _cleanup_(store_worker_clear) struct store_worker w = {};

                assert_int_equal(store_worker_get(s, j2, &w), 0);
                assert_int_equal(w.confinement, STORE_WORKER_GROUP);
                assert_int_equal(w.group_id, staff);
        }
        assert_int_equal(store_worker_tokens_pending(s, 5, &count), 0);
        assert_int_equal(count, 3);

        /* expired: -ENOENT, and gone */
        assert_int_equal(store_worker_token_redeem(s, hx, 10, "jx", key_of(k, 'x'), 4, &id),
                         -ENOENT);
        assert_int_equal(store_worker_tokens_pending(s, 5, &count), 0);
        assert_int_equal(count, 2);
        assert_int_equal(store_worker_token_redeem(s, hx, 5, "jx", key_of(k, 'x'), 4, &id),
                         -ENOENT);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                assert_int_equal(store_user_get_by_name(s, "jx", &u), -ENOENT);
        }
        /* unknown */
        assert_int_equal(store_worker_token_redeem(s, hu, 5, "ju", key_of(k, 'u'), 4, &id),
                         -ENOENT);

        /* a clash or a bad argument keeps the token */
        assert_int_equal(store_worker_token_redeem(s, h3, 500, "j1", key_of(k, '3'), 4, &id),
                         -EEXIST);
        assert_int_equal(store_worker_token_redeem(s, h3, 500, "alice", key_of(k, '3'), 4, &id),
                         -EEXIST);
        assert_int_equal(store_worker_token_redeem(s, h3, 500, "j3", key_of(k, '1'), 4, &id),
                         -EEXIST);
        assert_int_equal(store_worker_token_redeem(s, h3, 500, "J3", key_of(k, '3'), 4, &id),
                         -EINVAL);
        assert_int_equal(store_worker_token_redeem(s, h3, 500, "j3", "short", 4, &id), -EINVAL);
        assert_int_equal(store_worker_tokens_pending(s, 5, &count), 0);
        assert_int_equal(count, 2);
        assert_int_equal(store_worker_token_redeem(s, h3, 500, "j3", key_of(k, '3'), 4, &j3), 0);
        {
                _cleanup_(store_worker_clear) struct store_worker w = {};

                assert_int_equal(store_worker_get(s, j3, &w), 0);
                assert_int_equal(w.confinement, STORE_WORKER_PRIVATE);
                assert_int_equal(w.owner_id, alice);
        }

        /* a token whose group went away since: -ENOENT at redemption, and it is kept */
        assert_int_equal(store_group_delete(s, other), 0);
        assert_int_equal(store_worker_token_redeem(s, h4, 500, "j4", key_of(k, '4'), 4, &id),
                         -ENOENT);
        assert_int_equal(store_worker_tokens_pending(s, 5, &count), 0);
        assert_int_equal(count, 1);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                assert_int_equal(store_user_get_by_name(s, "j4", &u), -ENOENT);
        }
}

/* The replica idx of job_id, read back. */
static void replica_get(struct store *s, const char *job_id, int idx, struct store_replica *ret)
{
        struct store_replica *list = NULL;
        size_t n = 0;

        assert_int_equal(store_replica_list(s, job_id, &list, &n), 0);
        assert_true(idx >= 0 && (size_t) idx < n);
        assert_int_equal(list[idx].idx, idx);
        *ret = list[idx];
        list[idx] = (struct store_replica){};
        (void) store_replica_array_free(list, n);
}

static void test_replicas(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *huge = malloc(STORE_JSON_MAX + 2);
        _cleanup_free_ char *long_error = malloc(STORE_ERROR_MAX + 16);
        struct store_replica *list = NULL;
        struct store_replica r = {};
        char j1[STORE_JOB_ID_SIZE], j2[STORE_JOB_ID_SIZE], j3[STORE_JOB_ID_SIZE];
        const char *unknown = "00000000000000000000000000000000";
        int64_t app, wa, wb;
        size_t n = 0;
        sqlite3 *db;

        assert_non_null(huge);
        assert_non_null(long_error);
        s = open_ok(f->path);
        app = make_app(s, "sh");
        insert_job(s, app, 1, 0, j1);
        insert_job(s, app, 1, 0, j2);
        insert_job(s, app, 1, 0, j3);
        wa = make_worker(s, "wa", 'a');
        wb = make_worker(s, "wb", 'b');

        /* start */
        assert_int_equal(store_job_start_replicas(s, j1, 0), -EINVAL);
        assert_int_equal(store_job_start_replicas(s, j1, STORE_REPLICAS_MAX + 1), -EINVAL);
        assert_int_equal(store_job_start_replicas(s, "nope", 1), -EINVAL);
        assert_int_equal(store_job_start_replicas(s, NULL, 1), -EINVAL);
        assert_int_equal(store_job_start_replicas(s, unknown, 1), -ENOENT);
        assert_int_equal(store_replica_list(s, j1, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);
        assert_int_equal(store_job_start_replicas(s, j1, 3), 0);
        {
                _cleanup_(store_job_clear) struct store_job j = {};

                assert_int_equal(store_job_get(s, j1, &j), 0);
                assert_int_equal(j.state, STORE_JOB_RUNNING);
                assert_int_equal(j.attempts, 1);
                assert_true(j.started_at > 0);
        }
        assert_int_equal(store_replica_list(s, j1, &list, &n), 0);
        assert_int_equal(n, 3);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(list[i].job_id, j1);
                assert_int_equal(list[i].idx, (int) i);
                assert_int_equal(list[i].state, STORE_REPLICA_QUEUED);
                assert_int_equal(list[i].worker_id, 0);
                assert_string_equal(list[i].lease, "");
                assert_int_equal(list[i].attempts, 0);
                assert_string_equal(list[i].vote, "");
                assert_null(list[i].result);
                assert_null(list[i].error);
        }
        list = store_replica_array_free(list, n);
        /* not queued any more: -ESTALE, and nothing changes */
        assert_int_equal(store_job_start_replicas(s, j1, 2), -ESTALE);
        assert_int_equal(store_replica_list(s, j1, &list, &n), 0);
        assert_int_equal(n, 3);
        list = store_replica_array_free(list, n);
        assert_int_equal(store_job_transition(s, j3, STORE_JOB_QUEUED, STORE_JOB_CANCELLED), 0);
        assert_int_equal(store_job_start_replicas(s, j3, 1), -ESTALE);

        /* only the replicas of running jobs are queued for a master */
        assert_int_equal(store_replica_list_queued(s, &list, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(list[2].job_id, j1);
        assert_int_equal(list[2].idx, 2);
        list = store_replica_array_free(list, n);

        /* assign */
        assert_int_equal(store_replica_assign(s, j1, 0, wa, LEASE_A), 0);
        assert_int_equal(store_replica_assign(s, j1, 0, wb, LEASE_B), -ESTALE);
        assert_int_equal(store_replica_assign(s, j1, 1, 999, LEASE_A), -ENOENT);
        assert_int_equal(store_replica_assign(s, j1, 9, wa, LEASE_A), -ENOENT);
        assert_int_equal(store_replica_assign(s, unknown, 0, wa, LEASE_A), -ENOENT);
        assert_int_equal(store_replica_assign(s, j1, STORE_REPLICAS_MAX, wa, LEASE_A), -EINVAL);
        assert_int_equal(store_replica_assign(s, j1, -1, wa, LEASE_A), -EINVAL);
        assert_int_equal(store_replica_assign(s, j1, 1, 0, LEASE_A), -EINVAL);
        assert_int_equal(store_replica_assign(s, j1, 1, wa, "0123456789ABCDEF0123456789ABCDEF"),
                         -EINVAL);
        assert_int_equal(store_replica_assign(s, j1, 1, wa, "0123"), -EINVAL);
        assert_int_equal(store_replica_assign(s, j1, 1, wa, NULL), -EINVAL);
        assert_int_equal(store_replica_assign(s, "nope", 1, wa, LEASE_A), -EINVAL);
        replica_get(s, j1, 0, &r);
        assert_int_equal(r.state, STORE_REPLICA_ASSIGNED);
        assert_int_equal(r.worker_id, wa);
        assert_string_equal(r.lease, LEASE_A);
        assert_int_equal(r.attempts, 1);
        store_replica_clear(&r);
        assert_int_equal(store_replica_list_assigned(s, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].job_id, j1);
        assert_int_equal(list[0].idx, 0);
        assert_string_equal(list[0].lease, LEASE_A);
        list = store_replica_array_free(list, n);
        assert_int_equal(store_replica_list_queued(s, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].idx, 1);
        list = store_replica_array_free(list, n);

        /* requeue: under its lease only */
        assert_int_equal(store_replica_requeue(s, j1, 0, LEASE_B), -ESTALE);
        assert_int_equal(store_replica_requeue(s, j1, 1, LEASE_A), -ESTALE); /* queued */
        assert_int_equal(store_replica_requeue(s, j1, 9, LEASE_A), -ENOENT);
        assert_int_equal(store_replica_requeue(s, j1, 0, "x"), -EINVAL);
        assert_int_equal(store_replica_requeue(s, j1, 0, LEASE_A), 0);
        assert_int_equal(store_replica_requeue(s, j1, 0, LEASE_A), -ESTALE);
        replica_get(s, j1, 0, &r);
        assert_int_equal(r.state, STORE_REPLICA_QUEUED);
        assert_int_equal(r.worker_id, 0);
        assert_string_equal(r.lease, "");
        assert_int_equal(r.attempts, 1);
        store_replica_clear(&r);

        /* done: under its lease only, with a vote */
        assert_int_equal(store_replica_assign(s, j1, 0, wa, LEASE_B), 0);
        assert_int_equal(store_replica_done(s, j1, 0, LEASE_A, SHA_A, "{}"), -ESTALE);
        assert_int_equal(store_replica_done(s, j1, 0, LEASE_B, "ABC", "{}"), -EINVAL);
        assert_int_equal(store_replica_done(s, j1, 0, LEASE_B, NULL, "{}"), -EINVAL);
        assert_int_equal(store_replica_done(s, j1, 0, NULL, SHA_A, "{}"), -EINVAL);
        assert_int_equal(store_replica_done(s, j1, 9, LEASE_B, SHA_A, "{}"), -ENOENT);
        memset(huge, ' ', STORE_JSON_MAX + 1);
        huge[STORE_JSON_MAX + 1] = '\0';
        assert_int_equal(store_replica_done(s, j1, 0, LEASE_B, SHA_A, huge), -E2BIG);
        assert_int_equal(store_replica_done(s, j1, 0, LEASE_B, SHA_A, "{\"exit_code\":0}"), 0);
        assert_int_equal(store_replica_done(s, j1, 0, LEASE_B, SHA_A, "{}"), -ESTALE);
        assert_int_equal(store_replica_requeue(s, j1, 0, LEASE_B), -ESTALE);
        assert_int_equal(store_replica_fail(s, j1, 0, NULL, "late"), -ESTALE);
        replica_get(s, j1, 0, &r);
        assert_int_equal(r.state, STORE_REPLICA_DONE);
        assert_int_equal(r.worker_id, wa);
        assert_string_equal(r.lease, "");
        assert_int_equal(r.attempts, 2);
        assert_string_equal(r.vote, SHA_A);
        assert_string_equal(r.result, "{\"exit_code\":0}");
        assert_null(r.error);
        store_replica_clear(&r);

        /* fail: queued, or assigned under its lease (or any, with NULL) */
        assert_int_equal(store_replica_fail(s, j1, 1, NULL, "no worker fits"), 0);
        assert_int_equal(store_replica_fail(s, j1, 1, NULL, "again"), -ESTALE);
        replica_get(s, j1, 1, &r);
        assert_int_equal(r.state, STORE_REPLICA_FAILED);
        assert_int_equal(r.worker_id, 0);
        assert_string_equal(r.error, "no worker fits");
        store_replica_clear(&r);
        assert_int_equal(store_replica_assign(s, j1, 2, wb, LEASE_A), 0);
        assert_int_equal(store_replica_fail(s, j1, 2, LEASE_B, "x"), -ESTALE);
        assert_int_equal(store_replica_fail(s, j1, 2, "bad", "x"), -EINVAL);
        assert_int_equal(store_replica_fail(s, j1, 9, NULL, "x"), -ENOENT);
        /* an error text is cut at the bound, never across a character: "é" straddles it */
        memset(long_error, 'e', STORE_ERROR_MAX + 8);
        long_error[STORE_ERROR_MAX - 1] = (char) 0xc3;
        long_error[STORE_ERROR_MAX] = (char) 0xa9;
        long_error[STORE_ERROR_MAX + 8] = '\0';
        assert_int_equal(store_replica_fail(s, j1, 2, LEASE_A, long_error), 0);
        replica_get(s, j1, 2, &r);
        assert_int_equal(r.state, STORE_REPLICA_FAILED);
        assert_int_equal(r.worker_id, wb);
        assert_string_equal(r.lease, "");
        assert_non_null(r.error);
        assert_int_equal(strlen(r.error), STORE_ERROR_MAX - 1);
        store_replica_clear(&r);

        /* lists over jobs, in job then idx order */
        assert_int_equal(store_job_start_replicas(s, j2, 2), 0);
        assert_int_equal(store_replica_assign(s, j2, 1, wb, LEASE_B), 0);
        assert_int_equal(store_replica_assign(s, j2, 0, wa, LEASE_A), 0);
        assert_int_equal(store_replica_list_assigned(s, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0].job_id, j2);
        assert_int_equal(list[0].idx, 0);
        assert_int_equal(list[0].worker_id, wa);
        assert_int_equal(list[1].idx, 1);
        assert_int_equal(list[1].worker_id, wb);
        assert_null(list[1].result);
        list = store_replica_array_free(list, n);
        assert_int_equal(store_replica_fail(s, j2, 1, NULL, NULL), 0); /* any lease */
        replica_get(s, j2, 1, &r);
        assert_int_equal(r.state, STORE_REPLICA_FAILED);
        assert_null(r.error);
        store_replica_clear(&r);
        assert_int_equal(store_replica_done(s, j2, 0, LEASE_A, SHA_B, NULL), 0);
        replica_get(s, j2, 0, &r);
        assert_null(r.result);
        assert_string_equal(r.vote, SHA_B);
        store_replica_clear(&r);

        /* a deleted worker's assigned replicas go back to the queue; its results stay its own */
        {
                char j4[STORE_JOB_ID_SIZE];
                _cleanup_(store_worker_clear) struct store_worker w = {};

                insert_job(s, app, 1, 0, j4);
                assert_int_equal(store_job_start_replicas(s, j4, 2), 0);
                assert_int_equal(store_replica_assign(s, j4, 0, wa, LEASE_A), 0);
                assert_int_equal(store_replica_assign(s, j4, 1, wb, LEASE_B), 0);
                assert_int_equal(store_worker_delete(s, wa), 0);
                replica_get(s, j4, 0, &r);
                assert_int_equal(r.state, STORE_REPLICA_QUEUED);
                assert_int_equal(r.worker_id, 0);
                assert_string_equal(r.lease, "");
                assert_int_equal(r.attempts, 1);
                store_replica_clear(&r);
                replica_get(s, j4, 1, &r);
                assert_int_equal(r.state, STORE_REPLICA_ASSIGNED);
                store_replica_clear(&r);
                replica_get(s, j1, 0, &r);
                assert_int_equal(r.state, STORE_REPLICA_DONE);
                assert_int_equal(r.worker_id, wa);
                store_replica_clear(&r);
                /* and so do those of a worker whose account is deleted */
                assert_int_equal(store_worker_get(s, wb, &w), 0);
                assert_int_equal(store_user_delete(s, w.user_id), 0);
                replica_get(s, j4, 1, &r);
                assert_int_equal(r.state, STORE_REPLICA_QUEUED);
                assert_int_equal(r.worker_id, 0);
                store_replica_clear(&r);
                assert_int_equal(store_replica_list_assigned(s, &list, &n), 0);
                assert_int_equal(n, 0);
                assert_int_equal(store_replica_assign(s, j4, 0, wa, LEASE_A), -ENOENT);
        }

        /* a job re-queued and started again gets fresh replicas */
        assert_int_equal(store_job_transition(s, j2, STORE_JOB_RUNNING, STORE_JOB_QUEUED), 0);
        assert_int_equal(store_replica_list_queued(s, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                assert_string_not_equal(list[i].job_id, j2);
        list = store_replica_array_free(list, n);
        assert_int_equal(store_job_start_replicas(s, j2, 1), 0);
        assert_int_equal(store_replica_list(s, j2, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].state, STORE_REPLICA_QUEUED);
        assert_int_equal(list[0].attempts, 0);
        assert_string_equal(list[0].vote, "");
        list = store_replica_array_free(list, n);
        {
                _cleanup_(store_job_clear) struct store_job j = {};

                assert_int_equal(store_job_get(s, j2, &j), 0);
                assert_int_equal(j.attempts, 2);
        }
        assert_int_equal(store_replica_list(s, "nope", &list, &n), -EINVAL);

        /* the schema: a replica is assigned exactly when it has a lease and a worker; deleting
         * a job deletes its replicas */
        db = raw_open(f->path);
        raw_exec(db, "PRAGMA foreign_keys = ON");
        assert_int_not_equal(sqlite3_exec(db,
                                          "UPDATE replicas SET state = 'assigned'"
                                          " WHERE state = 'queued'",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(
                sqlite3_exec(db, "UPDATE replicas SET lease = 'short'", NULL, NULL, NULL),
                SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(db, "UPDATE replicas SET state = 'done', vote = NULL",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(db, "UPDATE replicas SET idx = 16", NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_not_equal(sqlite3_exec(db,
                                          "INSERT INTO replicas (job_id, idx, state)"
                                          " VALUES ('00000000000000000000000000000000', 0,"
                                          " 'queued')",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM replicas"), 3 + 1 + 2);
        raw_exec(db, "DELETE FROM jobs WHERE state = 'running'");
        assert_int_equal(raw_int(db, "SELECT count(*) FROM replicas"), 0);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_batch(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(store_closep) struct store *other = NULL;
        struct store_replica *list = NULL;
        char job[STORE_JOB_ID_SIZE], k[STORE_CURVE_KEY_SIZE];
        char leases[STORE_REPLICAS_MAX][STORE_LEASE_ID_SIZE];
        int64_t app, w, id;
        size_t n;

        s = open_ok(f->path);
        other = open_ok(f->path);
        app = make_app(s, "sh");
        insert_job(s, app, 1, 0, job);
        w = make_worker(s, "w", 'w');
        assert_int_equal(store_job_start_replicas(s, job, STORE_REPLICAS_MAX), 0);
        for (int i = 0; i < STORE_REPLICAS_MAX; i++) {
                assert_int_equal(snprintf(leases[i], sizeof(leases[i]), "%032x", i + 1),
                                 STORE_LEASE_ID_LEN);
        }

        assert_int_equal(store_batch_end(s, true), -EINVAL); /* none open */

        /* many assigns, one commit: another connection sees none, then all */
        assert_int_equal(store_batch_begin(s), 0);
        assert_int_equal(store_batch_begin(s), -EBUSY);
        for (int i = 0; i < STORE_REPLICAS_MAX; i++)
                assert_int_equal(store_replica_assign(s, job, i, w, leases[i]), 0);
        assert_int_equal(store_replica_list_assigned(s, &list, &n), 0);
        assert_int_equal(n, STORE_REPLICAS_MAX);
        list = store_replica_array_free(list, n);
        assert_int_equal(store_replica_list_assigned(other, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(store_batch_end(s, true), 0);
        assert_int_equal(store_batch_end(s, true), -EINVAL);
        assert_int_equal(store_replica_list_assigned(other, &list, &n), 0);
        assert_int_equal(n, STORE_REPLICAS_MAX);
        list = store_replica_array_free(list, n);

        /* a rollback undoes every call of the batch, transactions of their own included */
        assert_int_equal(store_batch_begin(s), 0);
        for (int i = 0; i < STORE_REPLICAS_MAX; i++)
                assert_int_equal(store_replica_requeue(s, job, i, leases[i]), 0);
        assert_int_equal(
                store_worker_create(s, "wz", key_of(k, 'z'), STORE_WORKER_PUBLIC, 0, 0, 4, &id), 0);
        assert_int_equal(store_batch_end(s, false), 0);
        assert_int_equal(store_replica_list_assigned(s, &list, &n), 0);
        assert_int_equal(n, STORE_REPLICAS_MAX);
        list = store_replica_array_free(list, n);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                _cleanup_(store_worker_clear) struct store_worker wz = {};

                assert_int_equal(store_worker_get_by_name(s, "wz", &wz), -ENOENT);
                assert_int_equal(store_user_get_by_name(s, "wz", &u), -ENOENT);
        }

        /* a call that fails inside a batch undoes its own work only; the batch goes on */
        assert_int_equal(store_batch_begin(s), 0);
        assert_int_equal(store_replica_requeue(s, job, 0, leases[0]), 0);
        /* its user is inserted, then the key clashes: the user goes, the requeue stays */
        assert_int_equal(
                store_worker_create(s, "wy", key_of(k, 'w'), STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                -EEXIST);
        assert_int_equal(
                store_worker_create(s, "w", key_of(k, 'y'), STORE_WORKER_PUBLIC, 0, 0, 4, &id),
                -EEXIST);
        assert_int_equal(store_job_start_replicas(s, job, 1), -ESTALE);
        assert_int_equal(store_replica_requeue(s, job, 1, leases[0]), -ESTALE);
        assert_int_equal(store_replica_requeue(s, job, 1, leases[1]), 0);
        assert_int_equal(
                store_worker_create(s, "wx", key_of(k, 'x'), STORE_WORKER_PUBLIC, 0, 0, 4, &id), 0);
        assert_int_equal(store_batch_end(s, true), 0);
        assert_int_equal(store_replica_list_queued(other, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].idx, 0);
        assert_int_equal(list[1].idx, 1);
        list = store_replica_array_free(list, n);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                _cleanup_(store_worker_clear) struct store_worker wx = {};

                assert_int_equal(store_user_get_by_name(other, "wy", &u), -ENOENT);
                assert_int_equal(store_worker_get_by_name(other, "wx", &wx), 0);
                assert_int_equal(wx.id, id);
        }

        /* outside a batch, calls commit on their own again */
        assert_int_equal(store_replica_assign(s, job, 0, w, leases[0]), 0);
        assert_int_equal(store_replica_list_queued(other, &list, &n), 0);
        assert_int_equal(n, 1);
        list = store_replica_array_free(list, n);

        /* closing the store with a batch open rolls it back */
        assert_int_equal(store_batch_begin(s), 0);
        assert_int_equal(store_replica_requeue(s, job, 2, leases[2]), 0);
        s = store_close(s);
        assert_int_equal(store_replica_list_queued(other, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].idx, 1);
        list = store_replica_array_free(list, n);
}

static void test_migration_from_v4(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_free_ char *fresh = NULL, *migrated = NULL;
        struct store_replica *list = NULL;
        char job[STORE_JOB_ID_SIZE], data[STORE_DATA_ID_SIZE];
        int64_t alice, app, w;
        size_t n;
        sqlite3 *db;

        s = open_ok(f->path);
        assert_int_equal(store_user_create(s, "alice", "h", 2, STORE_USER_ACTIVE, &acl_700, &alice),
                         0);
        app = make_app(s, "sh");
        insert_job(s, app, alice, 0, job);
        assert_int_equal(store_data_insert(s, "x", 3, SHA_A, false, &acl_700, data), 0);
        s = store_close(s);
        db = raw_open(f->path);
        fresh = raw_str(db, SCHEMA_SQL);
        raw_exec(db, "BEGIN;" DROP_V5 "PRAGMA user_version = 4; COMMIT;");
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE"
                                     " '%replica%' OR name LIKE '%worker%'"),
                         0);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        s = open_ok(f->path);
        {
                _cleanup_(store_user_clear) struct store_user u = {};
                _cleanup_(store_job_clear) struct store_job j = {};
                _cleanup_(store_data_clear) struct store_data d = {};

                assert_int_equal(store_user_get(s, alice, &u), 0);
                assert_string_equal(u.password_hash, "h");
                assert_int_equal(store_job_get(s, job, &j), 0);
                assert_int_equal(j.state, STORE_JOB_QUEUED);
                assert_int_equal(store_data_get(s, data, &d), 0);
        }
        w = make_worker(s, "w", 'w');
        assert_int_equal(store_job_start_replicas(s, job, 2), 0);
        assert_int_equal(store_replica_assign(s, job, 1, w, LEASE_A), 0);
        assert_int_equal(store_replica_list(s, job, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[1].state, STORE_REPLICA_ASSIGNED);
        list = store_replica_array_free(list, n);
        s = store_close(s);

        db = raw_open(f->path);
        assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
        migrated = raw_str(db, SCHEMA_SQL);
        assert_string_equal(migrated, fresh);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- two connections ---- */

static void test_two_connections(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *a = NULL;
        _cleanup_(store_closep) struct store *b = NULL;
        _cleanup_(store_user_clear) struct store_user u = {};
        _cleanup_(store_job_clear) struct store_job j = {};
        char id[STORE_JOB_ID_SIZE];
        int64_t uid, app;

        a = open_ok(f->path);
        b = open_ok(f->path);

        assert_int_equal(store_user_create(a, "alice", NULL, 1, STORE_USER_ACTIVE, &acl_700, &uid),
                         0);
        assert_int_equal(store_user_get_by_name(b, "alice", &u), 0);
        assert_int_equal(u.id, uid);

        app = make_app(b, "sh");
        insert_job(a, app, uid, 0, id);
        assert_int_equal(store_job_claim_next(b, &j), 0);
        assert_string_equal(j.id, id);
        store_job_clear(&j);
        assert_int_equal(store_job_get(a, id, &j), 0);
        assert_int_equal(j.state, STORE_JOB_RUNNING);
        store_job_clear(&j);
        /* both believe it is running; only one may end it */
        assert_int_equal(store_job_finish(a, id, STORE_JOB_FINISHED, "{}", NULL), 0);
        assert_int_equal(store_job_finish(b, id, STORE_JOB_CANCELLED, NULL, NULL), -ESTALE);
}

enum { CLAIM_JOBS = 200 };

struct worker {
        const char *path;
        struct store *s;
        char (*claimed)[STORE_JOB_ID_SIZE];
        size_t n;
        int error;
        pthread_barrier_t *start;
};

static void *claim_worker(void *arg)
{
        struct worker *w = arg;

        (void) pthread_barrier_wait(w->start);
        for (;;) {
                struct store_job j = {};
                int r = store_job_claim_next(w->s, &j);

                if (r == -ENOENT)
                        break;
                if (r < 0) {
                        w->error = r;
                        break;
                }
                if (w->n < CLAIM_JOBS)
                        memcpy(w->claimed[w->n], j.id, STORE_JOB_ID_SIZE);
                w->n++;
                store_job_clear(&j);
        }
        return NULL;
}

static void test_concurrent_claim(void **state)
{
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        char ids[CLAIM_JOBS][STORE_JOB_ID_SIZE];
        char claimed[2][CLAIM_JOBS][STORE_JOB_ID_SIZE];
        struct worker w[2];
        pthread_barrier_t start;
        pthread_t t[2];
        int64_t app;
        double dt;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (int i = 0; i < CLAIM_JOBS; i++)
                insert_job(s, app, 1, i % 4, ids[i]);

        assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
        for (int k = 0; k < 2; k++) {
                /* each thread has its own connection, as the node's threads will */
                w[k] = (struct worker){.path = f->path, .claimed = claimed[k], .start = &start};
                w[k].s = open_ok(f->path);
        }
        dt = mono_s();
        for (int k = 0; k < 2; k++)
                assert_int_equal(pthread_create(&t[k], NULL, claim_worker, &w[k]), 0);
        for (int k = 0; k < 2; k++)
                assert_int_equal(pthread_join(t[k], NULL), 0);
        dt = mono_s() - dt;
        for (int k = 0; k < 2; k++)
                w[k].s = store_close(w[k].s);
        (void) pthread_barrier_destroy(&start);

        printf("# concurrent claim: %zu + %zu jobs in %.3f s (%.0f claims/s)\n", w[0].n, w[1].n, dt,
               CLAIM_JOBS / dt);
        assert_int_equal(w[0].error, 0);
        assert_int_equal(w[1].error, 0);
        assert_int_equal(w[0].n + w[1].n, CLAIM_JOBS);

        /* every job exactly once */
        for (int i = 0; i < CLAIM_JOBS; i++) {
                int times = 0;
                for (int k = 0; k < 2; k++)
                        for (size_t m = 0; m < w[k].n; m++)
                                times += strcmp(claimed[k][m], ids[i]) == 0;
                assert_int_equal(times, 1);
        }
        uint64_t counts[_STORE_JOB_STATE_MAX];
        assert_int_equal(store_job_count_by_state(s, counts), 0);
        assert_int_equal(counts[STORE_JOB_RUNNING], CLAIM_JOBS);
        assert_int_equal(counts[STORE_JOB_QUEUED], 0);
}

static void test_concurrent_claim_processes(void **state)
{
        /* the same with two forked processes, each opening its own store after fork() */
        enum { JOBS = CLAIM_JOBS / 2 };
        struct fixture *f = *state;
        _cleanup_(store_closep) struct store *s = NULL;
        char ids[JOBS][STORE_JOB_ID_SIZE];
        char got[2][JOBS][STORE_JOB_ID_SIZE];
        size_t n[2] = {};
        int pipes[2][2];
        pid_t pids[2];
        int64_t app;

        s = open_ok(f->path);
        app = make_app(s, "sh");
        for (int i = 0; i < JOBS; i++)
                insert_job(s, app, 1, 0, ids[i]);
        s = store_close(s); /* never carried across fork() */

        for (int k = 0; k < 2; k++) {
                assert_int_equal(pipe2(pipes[k], O_CLOEXEC), 0);
                pids[k] = fork();
                assert_true(pids[k] >= 0);
                if (pids[k] == 0) {
                        struct store *c = NULL;
                        int r;

                        (void) close(pipes[k][0]);
                        if (store_open(f->path, &c) < 0)
                                _exit(1);
                        for (;;) {
                                struct store_job j = {};
                                r = store_job_claim_next(c, &j);
                                if (r < 0)
                                        break;
                                if (write_full(pipes[k][1], j.id, STORE_JOB_ID_SIZE) < 0)
                                        _exit(3);
                                store_job_clear(&j);
                        }
                        (void) store_close(c);
                        _exit(r == -ENOENT ? 0 : 2);
                }
                (void) close(pipes[k][1]);
        }
        for (int k = 0; k < 2; k++) {
                char junk[STORE_JOB_ID_SIZE];
                int status;
                ssize_t len;

                while (n[k] < JOBS && (len = read_full(pipes[k][0], got[k][n[k]],
                                                       STORE_JOB_ID_SIZE)) == STORE_JOB_ID_SIZE)
                        n[k]++;
                len = read_full(pipes[k][0], junk, sizeof(junk)); /* nothing more */
                assert_int_equal(len, 0);
                (void) close(pipes[k][0]);
                assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        assert_int_equal(n[0] + n[1], JOBS);
        for (int i = 0; i < JOBS; i++) {
                int times = 0;
                for (int k = 0; k < 2; k++)
                        for (size_t m = 0; m < n[k]; m++)
                                times += strcmp(got[k][m], ids[i]) == 0;
                assert_int_equal(times, 1);
        }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_open_schema_wal),
                T(test_file_mode),
                T(test_open_refuses),
                T(test_reopen_keeps_data),
                T(test_migration_from_v0),
                T(test_migration_from_v2),
                T(test_identities),
                T(test_migration_failure_rolls_back),
                T(test_migration_from_v1),
                T(test_migration_from_v1_failure_rolls_back),
                T(test_newer_schema_refused),
                T(test_corrupt_file),
                T(test_corrupt_pages),
                T(test_users),
                T(test_groups),
                T(test_group_limit),
                T(test_sessions),
                T(test_session_cascade),
                T(test_apps),
                T(test_bounds),
                T(test_job_ids),
                T(test_claim_order),
                T(test_transition_cas),
                T(test_finish),
                T(test_exit_code),
                T(test_requeue_after_crash),
                T(test_crash_in_child),
                T(test_list_pagination),
                T(test_list_reader),
                T(test_counts),
                T(test_set_acl),
                T(test_set_acl_reader),
                T(test_data),
                T(test_data_list_reader),
                T(test_migration_from_v3),
                T(test_migration_from_v4),
                T(test_group_list),
                T(test_group_members),
                T(test_group_members_limit),
                T(test_audit),
                T(test_audit_cut),
                T(test_audit_append_only),
                T(test_worker_names),
                T(test_workers),
                T(test_worker_tokens),
                T(test_replicas),
                T(test_batch),
                T(test_two_connections),
                T(test_concurrent_claim),
                T(test_concurrent_claim_processes),
        };
#undef T
        return cmocka_run_group_tests(tests, NULL, NULL);
}
