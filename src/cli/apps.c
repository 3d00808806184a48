/* SPDX-License-Identifier: MIT */
/* warren app ls | show | add | rm: the apps jobs run with. */
#include <errno.h>
#include <getopt.h>
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
        OPT_JSON = 0x100,
        OPT_REPLACE,
        OPT_URL,
};

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

/* argv[0] is the sub-command. 0: go on; -1: --help shown; 2: a usage error (said). */
static int parse_args(const char *cmd, const char *what, unsigned accept, int argc, char *argv[],
                      struct app_args *a)
{
        static const struct option options[] = {
                {"json", no_argument, NULL, OPT_JSON},
                {"replace", no_argument, NULL, OPT_REPLACE},
                {"url", required_argument, NULL, OPT_URL},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        int ch;

        opterr = 0;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "-:h", options, NULL)) >= 0) {
                bool ok = true;

                switch (ch) {
                case 1:
                        if (!what || a->arg) {
                                log_error("%s: unexpected argument '%s'", cmd, optarg);
                                return 2;
                        }
                        a->arg = optarg;
                        break;
                case OPT_JSON:
                        ok = accept & ACCEPT_JSON;
                        a->json = true;
                        break;
                case OPT_REPLACE:
                        ok = accept & ACCEPT_REPLACE;
                        a->replace = true;
                        break;
                case OPT_URL:
                        a->url = optarg;
                        break;
                case 'h':
                        (void) fputs(help_text, stdout);
                        return -1;
                default:
                        return client_option_error(cmd, ch, argv);
                }
                if (!ok) {
                        optopt = 0;
                        return client_option_error(cmd, '?', argv);
                }
        }
        for (int i = optind; i < argc; i++) {
                if (!what || a->arg) {
                        log_error("%s: unexpected argument '%s'", cmd, argv[i]);
                        return 2;
                }
                a->arg = argv[i];
        }
        if (what && (!a->arg || a->arg[0] == '\0')) {
                log_error("%s: no %s given; see 'warren app --help'", cmd, what);
                return 2;
        }
        return 0;
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
        _cleanup_json_ json_t *reply = NULL;
        json_t *apps, *app;
        size_t i;

        if (client_call(c, "GET", "/api/v1/apps", NULL, &reply, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        apps = json_object_get(reply, "apps");
        if (!json_is_array(apps)) {
                log_error("app ls: the reply from %s has no app list", client_url(c));
                return 1;
        }
        client_print_cell("NAME", 12, false);
        client_print_cell("OWNER", 12, false);
        client_print_cell("MODE", 4, false);
        client_print_cell("DESCRIPTION", 0, true);
        json_array_foreach(apps, i, app)
        {
                client_print_cell(client_json_str(app, "name"), 12, false);
                client_print_cell(client_json_str(app, "owner"), 12, false);
                client_print_cell(client_json_str(app, "mode"), 4, false);
                client_print_cell(client_json_str(app, "description"), 0, true);
        }
        return fflush(stdout) == 0 ? 0 : 1;
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
                const char *name, *cmd, *what;
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
        int r;

        if (argc < 2) {
                log_error("app: no command given; see 'warren app --help'");
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                (void) fputs(help_text, stdout);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(subs); i++) {
                if (strcmp(argv[1], subs[i].name) != 0)
                        continue;
                r = parse_args(subs[i].cmd, subs[i].what, subs[i].accept, argc - 1, argv + 1, &a);
                if (r != 0)
                        return r < 0 ? 0 : r;
                if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                        return 1;
                return subs[i].run(c, &a);
        }
        log_error("app: unknown command '%s'; see 'warren app --help'", argv[1]);
        return 2;
}
