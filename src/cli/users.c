/* SPDX-License-Identifier: MIT */
/* warren user add | ls | passwd | rm: accounts on a node. */
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

static const char help_text[] =
        "Usage: warren user COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  add NAME [--admin] [--password-stdin]  create a user (administrators); the\n"
        "                                         password is asked twice on the terminal\n"
        "  ls [--json]                            list the users (administrators): NAME,\n"
        "                                         RIGHTS, STATE, CREATED\n"
        "  passwd [NAME] [--password-stdin]       change a password (default: your own);\n"
        "                                         the user's other sessions end\n"
        "  rm NAME                                remove a user (administrators)\n"
        "\n"
        "Options:\n"
        "  --admin                                the user is an administrator\n"
        "  --password-stdin                       read the password from stdin (one line)\n"
        "  --url URL                              the node's URL\n"
        "  --help                                 show this help\n";

enum {
        OPT_ADMIN = 0x100,
        OPT_PASSWORD_STDIN,
        OPT_JSON,
        OPT_URL,
};

enum {
        ACCEPT_ADMIN = 1 << 0,
        ACCEPT_PASSWORD = 1 << 1,
        ACCEPT_JSON = 1 << 2,
        NAME_REQUIRED = 1 << 3,
        NAME_OPTIONAL = 1 << 4,
};

struct user_args {
        const char *url, *name;
        bool admin, password_stdin, json;
};

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

/* argv[0] is the sub-command. 0: go on; -1: --help shown; 2: a usage error (said). */
static int parse_args(const char *cmd, unsigned accept, int argc, char *argv[], struct user_args *a)
{
        static const struct option options[] = {
                {"admin", no_argument, NULL, OPT_ADMIN},
                {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
                {"json", no_argument, NULL, OPT_JSON},
                {"url", required_argument, NULL, OPT_URL},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        bool takes_name = accept & (NAME_REQUIRED | NAME_OPTIONAL);
        int ch;

        opterr = 0;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "-:h", options, NULL)) >= 0) {
                bool ok = true;

                switch (ch) {
                case 1:
                        if (!takes_name || a->name) {
                                log_error("%s: unexpected argument '%s'", cmd, optarg);
                                return 2;
                        }
                        a->name = optarg;
                        break;
                case OPT_ADMIN:
                        ok = accept & ACCEPT_ADMIN;
                        a->admin = true;
                        break;
                case OPT_PASSWORD_STDIN:
                        ok = accept & ACCEPT_PASSWORD;
                        a->password_stdin = true;
                        break;
                case OPT_JSON:
                        ok = accept & ACCEPT_JSON;
                        a->json = true;
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
                if (!takes_name || a->name) {
                        log_error("%s: unexpected argument '%s'", cmd, argv[i]);
                        return 2;
                }
                a->name = argv[i];
        }
        if ((accept & NAME_REQUIRED) && !a->name) {
                log_error("%s: no user name given; see 'warren user --help'", cmd);
                return 2;
        }
        if (a->name && a->name[0] == '\0') {
                log_error("%s: the user name is empty", cmd);
                return 2;
        }
        return 0;
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
        _cleanup_json_ json_t *reply = NULL;
        json_t *users, *user;
        size_t i;

        if (client_call(c, "GET", "/api/v1/users", NULL, &reply, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        users = json_object_get(reply, "users");
        if (!json_is_array(users)) {
                log_error("user ls: the reply from %s has no user list", client_url(c));
                return 1;
        }
        client_print_cell("NAME", 16, false);
        client_print_cell("RIGHTS", 13, false);
        client_print_cell("STATE", 8, false);
        client_print_cell("CREATED", 0, true);
        json_array_foreach(users, i, user)
        {
                client_print_cell(client_json_str(user, "name"), 16, false);
                client_print_cell(client_json_str(user, "rights"), 13, false);
                client_print_cell(client_json_str(user, "state"), 8, false);
                client_print_cell(client_json_str(user, "created_at"), 0, true);
        }
        return fflush(stdout) == 0 ? 0 : 1;
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

int cmd_user(int argc, char *argv[])
{
        static const struct {
                const char *name, *cmd;
                unsigned accept;
                int (*run)(struct client *c, const struct user_args *a);
        } subs[] = {
                {"add", "user add", NAME_REQUIRED | ACCEPT_ADMIN | ACCEPT_PASSWORD, user_add},
                {"ls", "user ls", ACCEPT_JSON, user_ls},
                {"passwd", "user passwd", NAME_OPTIONAL | ACCEPT_PASSWORD, user_passwd},
                {"rm", "user rm", NAME_REQUIRED, user_rm},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        struct user_args a = {0};
        int r;

        if (argc < 2) {
                log_error("user: no command given; see 'warren user --help'");
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
                r = parse_args(subs[i].cmd, subs[i].accept, argc - 1, argv + 1, &a);
                if (r != 0)
                        return r < 0 ? 0 : r;
                if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                        return 1;
                return subs[i].run(c, &a);
        }
        log_error("user: unknown command '%s'; see 'warren user --help'", argv[1]);
        return 2;
}
