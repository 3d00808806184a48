/* SPDX-License-Identifier: MIT */
/* warren user add | ls | passwd | rm: accounts on a node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"

static const char help_text[] =
        "Usage: warren user COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  add NAME [--admin] [--password-stdin]  create a user (administrators); the\n"
        "                                         password is asked twice on the terminal\n"
        "  ls [--pending] [--json]                list the users (administrators): NAME,\n"
        "                                         RIGHTS, STATE, CREATED; --pending: only\n"
        "                                         those held for approval\n"
        "  passwd [NAME] [--password-stdin]       change a password (default: your own);\n"
        "                                         the user's other sessions end\n"
        "  rm NAME                                remove a user (administrators)\n"
        "  approve NAME [--admin]                 let in a user held for approval (an\n"
        "                                         OpenID Connect identity new to the node,\n"
        "                                         under admission 'approval'); as a\n"
        "                                         standard_user, or an administrator\n"
        "\n"
        "Options:\n"
        "  --admin                                the user is an administrator\n"
        "  --password-stdin                       read the password from stdin (one line)\n"
        "  --url URL                              the node's URL\n"
        "  --help                                 show this help\n";

enum {
        ACCEPT_ADMIN = 1 << 0,
        ACCEPT_PASSWORD = 1 << 1,
        ACCEPT_JSON = 1 << 2,
        NAME_REQUIRED = 1 << 3,
        NAME_OPTIONAL = 1 << 4,
        ACCEPT_PENDING = 1 << 5,
};

struct user_args {
        const char *url, *name;
        bool admin, password_stdin, json, pending;
};

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

static char *user_path(const char *name)
{
        _cleanup_free_ char *escaped = client_escape(name);
        char *path;

        if (!escaped || asprintf(&path, "/api/v1/users/%s", escaped) < 0)
                return NULL;
        return path;
}

/* Sends {"name"?, "password", "rights"?} and wipes the password, whatever happens. */
static int send_password(struct client *c, const char *method, const char *path, const char *name,
                         char *password, const char *rights)
{
        _cleanup_json_ json_t *body = json_object();
        int r = 0;

        if (!body || (name && json_object_set_new(body, "name", json_string(name)) < 0) ||
            (rights && json_object_set_new(body, "rights", json_string(rights)) < 0))
                r = -EINVAL;
        else if (json_object_set_new(body, "password", json_string(password)) < 0)
                r = -EILSEQ;
        client_password_free(password);
        if (r == -EILSEQ) {
                log_error("the password is not valid UTF-8");
                return 1;
        }
        if (r < 0) {
                log_error("the user name is not valid UTF-8");
                return 1;
        }
        return client_call(c, method, path, body, NULL, NULL) < 0 ? 1 : 0;
}

static int user_add(struct client *c, const struct user_args *a)
{
        _cleanup_free_ char *prompt = NULL;
        char *password = NULL;

        if (asprintf(&prompt, "Password for '%s': ", a->name) < 0) {
                prompt = NULL;
                return oom();
        }
        if (client_read_password(prompt, a->password_stdin, true, &password) < 0)
                return 1;
        return send_password(c, "POST", "/api/v1/users", a->name, password,
                             a->admin ? "administrator" : NULL);
}

static int user_ls(struct client *c, const struct user_args *a)
{
        struct client_list list = {
                .path = a->pending ? "/api/v1/users?state=pending" : "/api/v1/users",
                .key = "users",
                .what = "user",
                .columns = {{"NAME", "name", 16},
                            {"RIGHTS", "rights", 13},
                            {"STATE", "state", 8},
                            {"CREATED", "created_at", 0},
                            {}},
        };

        return client_print_list(c, "user ls", &list, a->json);
}

static int user_passwd(struct client *c, const struct user_args *a)
{
        _cleanup_json_ json_t *me = NULL;
        _cleanup_free_ char *path = NULL, *prompt = NULL;
        const char *name = a->name;
        char *password = NULL;

        if (!name) {
                if (client_call(c, "GET", "/api/v1/whoami", NULL, &me, NULL) < 0)
                        return 1;
                name = client_json_str(me, "name");
                if (!name) {
                        log_error("user passwd: the reply from %s has no user name", client_url(c));
                        return 1;
                }
        }
        path = user_path(name);
        if (!path || asprintf(&prompt, "New password for '%s': ", name) < 0) {
                prompt = NULL;
                return oom();
        }
        if (client_read_password(prompt, a->password_stdin, true, &password) < 0)
                return 1;
        return send_password(c, "PATCH", path, NULL, password, NULL);
}

static int user_rm(struct client *c, const struct user_args *a)
{
        _cleanup_free_ char *path = user_path(a->name);

        if (!path)
                return oom();
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

static int user_approve(struct client *c, const struct user_args *a)
{
        _cleanup_free_ char *path = user_path(a->name), *full = NULL;
        _cleanup_json_ json_t *body = NULL;

        if (!path || asprintf(&full, "%s/approve", path) < 0) {
                full = NULL;
                return oom();
        }
        if (a->admin) {
                body = json_pack("{s:s}", "rights", "administrator");
                if (!body)
                        return oom();
        }
        return client_call(c, "POST", full, body, NULL, NULL) < 0 ? 1 : 0;
}

int cmd_user(int argc, char *argv[])
{
        static const struct {
                const char *name; /* first, for client_sub_command() */
                const char *cmd;
                unsigned accept;
                int (*run)(struct client *c, const struct user_args *a);
        } subs[] = {
                {"add", "user add", NAME_REQUIRED | ACCEPT_ADMIN | ACCEPT_PASSWORD, user_add},
                {"ls", "user ls", ACCEPT_JSON | ACCEPT_PENDING, user_ls},
                {"passwd", "user passwd", NAME_OPTIONAL | ACCEPT_PASSWORD, user_passwd},
                {"rm", "user rm", NAME_REQUIRED, user_rm},
                {"approve", "user approve", NAME_REQUIRED | ACCEPT_ADMIN, user_approve},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        struct user_args a = {0};
        const struct client_option options[] = {
                {.name = "admin", .need = ACCEPT_ADMIN, .flag = &a.admin},
                {.name = "password-stdin", .need = ACCEPT_PASSWORD, .flag = &a.password_stdin},
                {.name = "json", .need = ACCEPT_JSON, .flag = &a.json},
                {.name = "pending", .need = ACCEPT_PENDING, .flag = &a.pending},
                {.name = "url", .value = &a.url},
                {},
        };
        unsigned accept;
        size_t i;
        int r;

        r = client_sub_command("user", help_text, subs, ELEMENTSOF(subs), sizeof(subs[0]), argc,
                               argv, &i);
        if (r != 0)
                return r < 0 ? 0 : r;
        accept = subs[i].accept;
        /* An empty name is not a missing one: it is said below. */
        r = client_parse_args(
                &(const struct client_args){
                        .cmd = subs[i].cmd,
                        .help = help_text,
                        .options = options,
                        .accept = accept,
                        .arg = accept & (NAME_REQUIRED | NAME_OPTIONAL) ? &a.name : NULL,
                        .arg_name = "user name",
                        .see = "user",
                        .flags = CLIENT_ARG_EMPTY_OK |
                                 (accept & NAME_OPTIONAL ? CLIENT_ARG_OPTIONAL : 0),
                },
                argc - 1, argv + 1);
        if (r == 0 && a.name && a.name[0] == '\0') {
                log_error("%s: the user name is empty", subs[i].cmd);
                r = 2;
        }
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        return subs[i].run(c, &a);
}
