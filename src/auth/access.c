/* SPDX-License-Identifier: MIT */
#include "access.h"

#include <errno.h>
#include <string.h>

#include "common/cleanup.h"

static const char *const rights_names[_AUTH_RIGHTS_MAX] = {
        [AUTH_RIGHTS_NONE] = "none",
        [AUTH_RIGHTS_WORKER] = "worker_user",
        [AUTH_RIGHTS_STANDARD] = "standard_user",
        [AUTH_RIGHTS_ADMIN] = "administrator",
};

/* A row left out has no name and level NONE: auth_check() refuses it. */
static const struct auth_action_info action_table[_AUTH_ACTION_MAX] = {
        [AUTH_ACTION_WORK_REQUEST] = {"work_request", AUTH_RIGHTS_WORKER, true},
        [AUTH_ACTION_WORK_HEARTBEAT] = {"work_heartbeat", AUTH_RIGHTS_WORKER, true},
        [AUTH_ACTION_WORK_APP_DOWNLOAD] = {"work_app_download", AUTH_RIGHTS_WORKER, true},
        [AUTH_ACTION_WORK_DATA_DOWNLOAD] = {"work_data_download", AUTH_RIGHTS_WORKER, true},
        [AUTH_ACTION_WORK_RESULT_UPLOAD] = {"work_result_upload", AUTH_RIGHTS_WORKER, true},

        [AUTH_ACTION_SESSION_LIST] = {"session_list", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_SESSION_REVOKE] = {"session_revoke", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_USER_GET] = {"user_get", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_USER_UPDATE] = {"user_update", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_GROUP_LIST] = {"group_list", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_GROUP_GET] = {"group_get", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_JOB_INSERT] = {"job_insert", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_JOB_LIST] = {"job_list", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_JOB_GET] = {"job_get", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_JOB_CANCEL] = {"job_cancel", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_DATA_INSERT] = {"data_insert", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_DATA_LIST] = {"data_list", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_DATA_GET] = {"data_get", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_DATA_USE] = {"data_use", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_DATA_DELETE] = {"data_delete", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_APP_INSERT] = {"app_insert", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_APP_LIST] = {"app_list", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_APP_GET] = {"app_get", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_APP_EXEC] = {"app_exec", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_APP_UPDATE] = {"app_update", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_APP_DELETE] = {"app_delete", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_CHMOD] = {"chmod", AUTH_RIGHTS_STANDARD, false},
        [AUTH_ACTION_CHGRP] = {"chgrp", AUTH_RIGHTS_STANDARD, false},

        [AUTH_ACTION_USER_INSERT] = {"user_insert", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_USER_LIST] = {"user_list", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_USER_DELETE] = {"user_delete", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_USER_SET_RIGHTS] = {"user_set_rights", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_USER_APPROVE] = {"user_approve", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_GROUP_INSERT] = {"group_insert", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_GROUP_DELETE] = {"group_delete", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_GROUP_SET_MEMBERS] = {"group_set_members", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_CHOWN] = {"chown", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_AUDIT_READ] = {"audit_read", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_WORKER_INSERT] = {"worker_insert", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_WORKER_LIST] = {"worker_list", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_WORKER_GET] = {"worker_get", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_WORKER_DELETE] = {"worker_delete", AUTH_RIGHTS_ADMIN, false},
        [AUTH_ACTION_WORKER_TOKEN] = {"worker_token", AUTH_RIGHTS_ADMIN, false},
};

int auth_rights_from_string(const char *s, enum auth_rights *ret)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(rights_names); i++)
                if (strcmp(s, rights_names[i]) == 0) {
                        *ret = (enum auth_rights) i;
                        return 0;
                }
        return -EINVAL;
}

const char *auth_rights_to_string(enum auth_rights rights)
{
        if ((unsigned) rights >= _AUTH_RIGHTS_MAX)
                return NULL;
        return rights_names[rights];
}

const struct auth_action_info *auth_action_info(enum auth_action action)
{
        if ((unsigned) action >= _AUTH_ACTION_MAX || !action_table[action].name)
                return NULL;
        return &action_table[action];
}

const char *auth_action_to_string(enum auth_action action)
{
        const struct auth_action_info *info = auth_action_info(action);

        return info ? info->name : NULL;
}

static int subject_check(const struct auth_subject *who)
{
        if (!who || who->user < 0 || (unsigned) who->rights >= _AUTH_RIGHTS_MAX ||
            (who->n_groups > 0 && !who->groups))
                return -EINVAL;
        return 0;
}

static int object_check(const struct auth_object *obj)
{
        if (!obj || obj->owner < 0 || obj->group < 0 || obj->mode > AUTH_MODE_MAX)
                return -EINVAL;
        return 0;
}

static bool rights_allow(enum auth_rights rights, const struct auth_action_info *info)
{
        if (info->level == AUTH_RIGHTS_NONE || rights == AUTH_RIGHTS_NONE)
                return false;
        if (rights == AUTH_RIGHTS_ADMIN)
                return true;
        /* worker_user is a kind of principal, not a rank: neither side gets the other's actions */
        if (info->worker_only || rights == AUTH_RIGHTS_WORKER)
                return info->worker_only && rights == AUTH_RIGHTS_WORKER;
        return info->level <= rights;
}

static bool is_owner(const struct auth_subject *who, const struct auth_object *obj)
{
        return obj->owner > 0 && who->user == obj->owner;
}

static bool in_group(const struct auth_subject *who, int64_t group)
{
        if (group <= 0)
                return false;
        for (size_t i = 0; i < who->n_groups; i++)
                if (who->groups[i] == group)
                        return true;
        return false;
}

/* The rwx bits of the one class that applies to who. */
static unsigned class_bits(const struct auth_subject *who, const struct auth_object *obj)
{
        if (is_owner(who, obj))
                return (obj->mode >> 6) & 7;
        if (in_group(who, obj->group))
                return (obj->mode >> 3) & 7;
        return obj->mode & 7;
}

/* Not allowed to act on an object: is it at least visible? */
static int refusal(const struct auth_subject *who, const struct auth_object *obj)
{
        return class_bits(who, obj) & AUTH_PERM_READ ? -EACCES : -ENOENT;
}

int auth_check(const struct auth_subject *who, enum auth_action action,
               const struct auth_object *obj, enum auth_perm perm)
{
        const struct auth_action_info *info;
        int r;

        r = subject_check(who);
        if (r < 0)
                return r;
        info = auth_action_info(action);
        if (!info)
                return -EINVAL;
        if (perm != AUTH_PERM_READ && perm != AUTH_PERM_WRITE && perm != AUTH_PERM_EXEC &&
            (obj || perm != AUTH_PERM_NONE))
                return -EINVAL;
        if (obj) {
                r = object_check(obj);
                if (r < 0)
                        return r;
        }

        if (!rights_allow(who->rights, info))
                return -EPERM;
        if (who->rights == AUTH_RIGHTS_ADMIN || !obj)
                return 0;
        if (class_bits(who, obj) & (unsigned) perm)
                return 0;
        return refusal(who, obj);
}

int auth_check_insert(const struct auth_subject *who, enum auth_action action, uint32_t mode)
{
        int r;

        if (mode > AUTH_MODE_MAX)
                return -EINVAL;
        r = auth_check(who, action, NULL, AUTH_PERM_NONE);
        if (r < 0)
                return r;
        if (who->rights == AUTH_RIGHTS_ADMIN)
                return 0;
        return mode & ~AUTH_MODE_PRIVATE ? -EPERM : 0;
}

/* The checks chmod and chgrp share: arguments, rights, then who is an admin (1) or the owner (0);
 * anyone else is refused as by auth_check(). */
static int check_owner_action(const struct auth_subject *who, enum auth_action action,
                              const struct auth_object *obj)
{
        int r;

        r = object_check(obj);
        if (r < 0)
                return r;
        r = auth_check(who, action, NULL, AUTH_PERM_NONE);
        if (r < 0)
                return r;
        if (who->rights == AUTH_RIGHTS_ADMIN)
                return 1;
        if (!is_owner(who, obj))
                return refusal(who, obj);
        return 0;
}

int auth_check_chmod(const struct auth_subject *who, const struct auth_object *obj,
                     uint32_t new_mode)
{
        int r;

        if (new_mode > AUTH_MODE_MAX)
                return -EINVAL;
        r = check_owner_action(who, AUTH_ACTION_CHMOD, obj);
        if (r != 0)
                return r < 0 ? r : 0;
        /* the owner may lower: no bit of new_mode that the old mode lacks */
        return new_mode & ~obj->mode ? -EPERM : 0;
}

int auth_check_chgrp(const struct auth_subject *who, const struct auth_object *obj,
                     int64_t new_group)
{
        unsigned g, o;
        int r;

        if (new_group < 0)
                return -EINVAL;
        r = check_owner_action(who, AUTH_ACTION_CHGRP, obj);
        if (r != 0)
                return r < 0 ? r : 0;
        if (new_group == obj->group)
                return 0;
        if (new_group != 0 && !in_group(who, new_group))
                return -EPERM;

        /* No one may gain access. Classes are exclusive: the old group's members fall back to
         * the other bits, the new group's members leave them. */
        g = (obj->mode >> 3) & 7;
        o = obj->mode & 7;
        if (obj->group != 0 && (o & ~g))
                return -EPERM;
        if (new_group != 0 && (g & ~o))
                return -EPERM;
        return 0;
}

int auth_check_chown(const struct auth_subject *who, const struct auth_object *obj,
                     int64_t new_owner)
{
        int r;

        if (new_owner < 0)
                return -EINVAL;
        r = object_check(obj);
        if (r < 0)
                return r;
        return auth_check(who, AUTH_ACTION_CHOWN, NULL, AUTH_PERM_NONE);
}
