/* SPDX-License-Identifier: MIT */
/* warren app ls | show | add | rm: the apps jobs run with. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"

#define MAX_APP_FILE ((size_t) 1 << 20)

static const char help_text[] =
        "Usage: warren app COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  ls [--json]               list the apps you may use: NAME, OWNER, MODE, DESCRIPTION\n"
        "  show NAME                 an app, as JSON\n"
        "  add FILE.json [--replace] create the app FILE.json describes (see docs/api.md);\n"
        "                            with --replace, replace it if it exists\n"
        "  rm NAME                   remove an app (the results of its jobs stay)\n"
        "\n"
        "Options:\n"
        "  --url URL                 the node's URL\n"
        "  --help                    show this help\n";

enum {
        ACCEPT_JSON = 1 << 0,
        ACCEPT_REPLACE = 1 << 1,
};

struct app_args {
        const char *url, *arg;
        bool json, replace;
};

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

static char *app_path(const char *name)
{
        _cleanup_free_ char *escaped = client_escape(name);
        char *path;

        if (!escaped || asprintf(&path, "/api/v1/apps/%s", escaped) < 0)
                return NULL;
        return path;
}

static int app_ls(struct client *c, const struct app_args *a)
{
        static const struct client_list list = {
                .path = "/api/v1/apps",
                .key = "apps",
                .what = "app",
                .columns = {{"NAME", "name", 12},
                            {"OWNER", "owner", 12},
                            {"MODE", "mode", 4},
                            {"DESCRIPTION", "description", 0},
                            {}},
        };

        return client_print_list(c, "app ls", &list, a->json);
}

static int app_show(struct client *c, const struct app_args *a)
{
        _cleanup_free_ char *path = app_path(a->arg);
        _cleanup_json_ json_t *reply = NULL;

        if (!path)
                return oom();
        if (client_call(c, "GET", path, NULL, &reply, NULL) < 0)
                return 1;
        return client_print_json(reply) < 0 ? 1 : 0;
}

static int app_add(struct client *c, const struct app_args *a)
{
        _cleanup_free_ char *text = NULL, *path = NULL;
        _cleanup_json_ json_t *spec = NULL, *reply = NULL;
        struct json_error err;
        struct client_error e;
        const char *name;
        size_t len;
        int r;

        if (client_read_file(a->arg, MAX_APP_FILE, &text, &len) < 0)
                return 1;
        /* Checked here so that a typo is named with its file, not as the node's bad_json. */
        if (json_parse_strict(text, len, &spec, &err) < 0) {
                log_error("app add: '%s' is not a JSON object: %s", a->arg, err.message);
                return 1;
        }
        name = client_json_str(spec, "name");
        if (!name || name[0] == '\0') {
                log_error("app add: '%s' has no \"name\"", a->arg);
                return 1;
        }
        r = client_call_raw(c, "POST", "/api/v1/apps", text, len, &reply, &e);
        if (r == -EREMOTEIO && a->replace && e.status == 409) {
                path = app_path(name);
                if (!path)
                        return oom();
                r = client_call_raw(c, "PUT", path, text, len, &reply, NULL);
        } else if (r == -EREMOTEIO)
                client_error_log(c, &e);
        return r < 0 ? 1 : 0;
}

static int app_rm(struct client *c, const struct app_args *a)
{
        _cleanup_free_ char *path = app_path(a->arg);

        if (!path)
                return oom();
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

int cmd_app(int argc, char *argv[])
{
        static const struct {
                const char *name;       /* first, for client_sub_command() */
                const char *cmd, *what; /* what: the argument; NULL: none */
                unsigned accept;
                int (*run)(struct client *c, const struct app_args *a);
        } subs[] = {
                {"ls", "app ls", NULL, ACCEPT_JSON, app_ls},
                {"show", "app show", "app name", ACCEPT_JSON, app_show},
                {"add", "app add", "file", ACCEPT_REPLACE, app_add},
                {"rm", "app rm", "app name", 0, app_rm},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        struct app_args a = {0};
        const struct client_option options[] = {
                {.name = "json", .need = ACCEPT_JSON, .flag = &a.json},
                {.name = "replace", .need = ACCEPT_REPLACE, .flag = &a.replace},
                {.name = "url", .value = &a.url},
                {},
        };
        size_t i;
        int r;

        r = client_sub_command("app", help_text, subs, ELEMENTSOF(subs), sizeof(subs[0]), argc,
                               argv, &i);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = client_parse_args(
                &(const struct client_args){
                        .cmd = subs[i].cmd,
                        .help = help_text,
                        .options = options,
                        .accept = subs[i].accept,
                        .arg = subs[i].what ? &a.arg : NULL,
                        .arg_name = subs[i].what,
                        .see = "app",
                },
                argc - 1, argv + 1);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        return subs[i].run(c, &a);
}
