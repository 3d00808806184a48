/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Authorization: the one place that decides whether a subject may perform an action on an
 * object (MISSION.md R5, after XtremWeb-HEP). Handlers call auth_check() and map its answer to
 * HTTP; they never test rights or modes themselves.
 *
 * 1. Rights level. Every action has a minimum level; action A is allowed to rights R iff
 *    0 < level(A) <= R, with one exception: worker_user is a different kind of principal, not a
 *    weaker user. Its actions (worker_only in the table) are allowed to workers and
 *    administrators only, and a worker is allowed nothing else: it lists, inserts and deletes
 *    nothing. Rights NONE (anonymous, or an account awaiting approval) is allowed nothing.
 * 2. Administrators may do everything to every object.
 * 3. Mode bits, Unix style: one class applies — owner if the subject is the object's owner, else
 *    group if the object has a group (!= 0) and the subject is in it, else other — and only that
 *    class's bits count (an owner without the owner read bit cannot read, whatever the group and
 *    other bits say). Read = see it and its results; write = change, cancel or delete it;
 *    execute = run an app, use data as a job's input.
 *
 * Answers of auth_check(), in this order:
 *   -EINVAL  a programmer error or corrupted data (NULL subject, unknown action, rights or perm,
 *            mode > 0777, negative ids): fail closed, answer 500.
 *   -EPERM   the subject's rights do not allow this action at all (403). It never depends on the
 *            object, so a handler calls auth_check(who, action, NULL, perm) before it looks the
 *            object up: a missing object and a forbidden one must not answer differently.
 *   0        allowed: an administrator, an action on no object, or the class has the perm bit.
 *   -EACCES  the class has the read bit but not perm: the subject can see the object, not do
 *            this to it (403).
 *   -ENOENT  the class lacks the read bit (and perm): the object is invisible to the subject and
 *            the answer is the one a missing object gets (404). Another user's job is "not found",
 *            never "forbidden".
 *
 * A store query that lists objects must select exactly the objects auth_check() lets the caller
 * READ: admin, or (owner != 0 and owner = user and mode & 0400), or (not the owner and group != 0
 * and group in the user's groups and mode & 0040), or (neither and mode & 0004). The store's
 * tests compare the two.
 *
 * Ids: users and groups are > 0; owner 0 (nobody) and group 0 (no group) match no one.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Dense and ordered. The numbers never leave the process (users are stored and sent with the
 * names below), so a level added later renumbers the enum and nothing else; dense values index
 * tables and let -Wswitch-enum check every switch.
 */
enum auth_rights {
        AUTH_RIGHTS_NONE = 0, /* "none": anonymous, or an account held for approval */
        AUTH_RIGHTS_WORKER,   /* "worker_user" */
        AUTH_RIGHTS_STANDARD, /* "standard_user" */
        AUTH_RIGHTS_ADMIN,    /* "administrator" */
        _AUTH_RIGHTS_MAX,
};

/* The mode bits of one class. */
enum auth_perm {
        AUTH_PERM_NONE = 0, /* only for actions on no object */
        AUTH_PERM_EXEC = 1,
        AUTH_PERM_WRITE = 2,
        AUTH_PERM_READ = 4,
};

#define AUTH_MODE_MAX     0777u
#define AUTH_MODE_PRIVATE 0700u /* the widest mode a non-administrator may create */

/*
 * Every action, with its minimum level and the object and perm its handler passes. The level of
 * each is in the table in access.c (auth_action_info()).
 */
enum auth_action {
        /* worker_user (and administrators) only. The caller also checks that the job concerned
         * is assigned to this worker: that assignment, not the object's mode, is what lets a
         * worker fetch its inputs and report its result, so these pass obj = NULL. */
        AUTH_ACTION_WORK_REQUEST,       /* ask for a job to run; no object */
        AUTH_ACTION_WORK_HEARTBEAT,     /* no object */
        AUTH_ACTION_WORK_APP_DOWNLOAD,  /* an app by id, for an assigned job */
        AUTH_ACTION_WORK_DATA_DOWNLOAD, /* data by id, for an assigned job */
        AUTH_ACTION_WORK_RESULT_UPLOAD, /* the result of an assigned job */

        /* standard_user and up (never a worker) */
        AUTH_ACTION_SESSION_LIST,   /* one's own sessions; no object */
        AUTH_ACTION_SESSION_REVOKE, /* a session (owner: its user), WRITE */
        AUTH_ACTION_USER_GET,       /* a user record, READ */
        AUTH_ACTION_USER_UPDATE,    /* a user record (e.g. own password), WRITE */
        AUTH_ACTION_GROUP_LIST,     /* no object; rows filtered by READ */
        AUTH_ACTION_GROUP_GET,      /* a group, READ */
        AUTH_ACTION_JOB_INSERT,     /* auth_check_insert() */
        AUTH_ACTION_JOB_LIST,       /* no object; rows filtered by READ */
        AUTH_ACTION_JOB_GET,        /* a job, its events and results, READ */
        AUTH_ACTION_JOB_CANCEL,     /* a job, WRITE */
        AUTH_ACTION_DATA_INSERT,    /* auth_check_insert() */
        AUTH_ACTION_DATA_LIST,      /* no object; rows filtered by READ */
        AUTH_ACTION_DATA_GET,       /* data, READ */
        AUTH_ACTION_DATA_USE,       /* data as a job's input, EXEC */
        AUTH_ACTION_DATA_DELETE,    /* data, WRITE */
        AUTH_ACTION_APP_INSERT,     /* auth_check_insert(): private apps; wider modes need admin */
        AUTH_ACTION_APP_LIST,       /* no object; rows filtered by READ */
        AUTH_ACTION_APP_GET,        /* an app, READ */
        AUTH_ACTION_APP_EXEC,       /* run a job with an app, EXEC */
        AUTH_ACTION_APP_UPDATE,     /* an app, WRITE */
        AUTH_ACTION_APP_DELETE,     /* an app, WRITE */
        AUTH_ACTION_CHMOD,          /* auth_check_chmod() */
        AUTH_ACTION_CHGRP,          /* auth_check_chgrp() */

        /* administrator only */
        AUTH_ACTION_USER_INSERT,
        AUTH_ACTION_USER_LIST, /* every user */
        AUTH_ACTION_USER_DELETE,
        AUTH_ACTION_USER_SET_RIGHTS,
        AUTH_ACTION_USER_APPROVE, /* admission mode "approval" */
        AUTH_ACTION_GROUP_INSERT,
        AUTH_ACTION_GROUP_DELETE,
        AUTH_ACTION_GROUP_SET_MEMBERS,
        AUTH_ACTION_CHOWN, /* auth_check_chown() */
        AUTH_ACTION_AUDIT_READ,
        AUTH_ACTION_WORKER_INSERT, /* register a worker (the network: node --role master) */
        AUTH_ACTION_WORKER_LIST,
        AUTH_ACTION_WORKER_GET,
        AUTH_ACTION_WORKER_DELETE,
        AUTH_ACTION_WORKER_TOKEN, /* make a one-time join token */
        _AUTH_ACTION_MAX,
};

struct auth_action_info {
        const char *name;       /* "job_get": for audit lines */
        enum auth_rights level; /* the minimum rights */
        bool worker_only;       /* allowed to workers and administrators only */
};

struct auth_object {
        int64_t owner; /* user id; 0: nobody */
        int64_t group; /* group id; 0: none */
        uint32_t mode; /* 0..0777: owner/group/other x read 4, write 2, execute 1 */
};

struct auth_subject {
        int64_t user; /* 0: anonymous */
        enum auth_rights rights;
        const int64_t *groups; /* the groups the user is in; borrowed */
        size_t n_groups;
};

/* "none", "worker_user", "standard_user", "administrator". -EINVAL for anything else. */
int auth_rights_from_string(const char *s, enum auth_rights *ret);
/* NULL for a value out of range. */
const char *auth_rights_to_string(enum auth_rights rights);

/* The table's row for an action; NULL for a value out of range. */
const struct auth_action_info *auth_action_info(enum auth_action action);
const char *auth_action_to_string(enum auth_action action);

/* May who do action with perm on obj (NULL: an action on no object)? See the answers above. */
int auth_check(const struct auth_subject *who, enum auth_action action,
               const struct auth_object *obj, enum auth_perm perm);

/*
 * May who create an object with this mode through action (JOB_INSERT, DATA_INSERT, APP_INSERT,
 * ...)? The rights as in auth_check(), then: an administrator may use any mode <= 0777; anyone
 * else only modes within AUTH_MODE_PRIVATE, because a new object's mode starts private and only
 * an administrator may raise a mode. So a standard user inserts private apps, and public (0755)
 * and group (0750) apps are an administrator's. -EINVAL, -EPERM.
 */
int auth_check_insert(const struct auth_subject *who, enum auth_action action, uint32_t mode);

/*
 * chmod. Rights: standard_user and up (-EPERM: workers, anonymous). An administrator may set any
 * mode. The owner may lower the mode: new_mode has no bit that obj->mode lacks (the same mode
 * included); a raise is -EPERM. Anyone else: -EACCES if they can read the object, -ENOENT if
 * not. -EINVAL: new_mode > 0777 or bad arguments.
 */
int auth_check_chmod(const struct auth_subject *who, const struct auth_object *obj,
                     uint32_t new_mode);

/*
 * chgrp. Rights: standard_user and up. An administrator may set any group (>= 0). The owner may
 * keep the group, or move the object to group 0 or to a group the owner is a member of, provided
 * no one gains access by it. Classes being exclusive, the old group's members fall back to the
 * other bits and the new group's members leave them, so: leaving a group (!= 0) needs
 * other bits within group bits, entering one needs group bits within other bits (0700 moves
 * freely, 0750 may only leave its group, 0705 may only enter one, 0755 moves freely). Giving a
 * group more is a chmod raise, an administrator's. Otherwise -EPERM. Non-owners: -EACCES or
 * -ENOENT as for chmod.
 */
int auth_check_chgrp(const struct auth_subject *who, const struct auth_object *obj,
                     int64_t new_group);

/* chown: administrators only (-EPERM for everyone else, whatever the object). new_owner >= 0. */
int auth_check_chown(const struct auth_subject *who, const struct auth_object *obj,
                     int64_t new_owner);
