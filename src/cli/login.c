/* SPDX-License-Identifier: MIT */
/* warren login, warren logout: a token from a node, kept in the saved configuration. */
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

#define USER_NAME_MAX 64

static const char login_help[] =
        "Usage: warren login [OPTIONS] [URL]\n"
        "\n"
        "Logs in to the node at URL (default: --url, WARREN_URL, the saved URL, "
        "or\n" CLIENT_DEFAULT_URL ") and keeps the token in ~/.config/warren/config.json\n"
        "($XDG_CONFIG_HOME/warren/config.json), mode 0600.\n"
        "\n"
        "  --user NAME        the user (default: asked on the terminal)\n"
        "  --password-stdin   read the password from stdin (one line) instead of the terminal\n"
        "  --url URL          the node's URL\n"
        "  --help             show this help\n";

static const char logout_help[] =
        "Usage: warren logout [OPTIONS]\n"
        "\n"
        "Revokes the token in use and removes it from the saved configuration.\n"
        "\n"
        "  --url URL          the node's URL\n"
        "  --help             show this help\n";

enum {
        OPT_USER = 0x100,
        OPT_PASSWORD_STDIN,
        OPT_URL,
};

static int ask_user(char **ret)
{
        int r = client_prompt("User: ", true, ret);

        if (r == -ENXIO) {
                log_error("login: no terminal to ask for the user on; use --user");
                return 2;
        }
        if (r < 0) {
                log_error_errno(r, "login: cannot read the user: %m");
                return 1;
        }
        if ((*ret)[0] == '\0') {
                log_error("login: no user given");
                return 2; /* *ret is the caller's to free */
        }
        return 0;
}

int cmd_login(int argc, char *argv[])
{
        static const struct option options[] = {
                {"user", required_argument, NULL, OPT_USER},
                {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
                {"url", required_argument, NULL, OPT_URL},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *body = NULL, *reply = NULL;
        _cleanup_free_ char *asked_user = NULL;
        const char *url = NULL, *user = NULL, *token, *name;
        struct client_config cfg;
        bool password_stdin = false;
        char *password = NULL;
        int ch, r;

        opterr = 0;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "-:h", options, NULL)) >= 0) {
                switch (ch) {
                case 1:
                        if (url) {
                                log_error("login: unexpected argument '%s'", optarg);
                                return 2;
                        }
                        url = optarg;
                        break;
                case OPT_USER:
                        user = optarg;
                        break;
                case OPT_PASSWORD_STDIN:
                        password_stdin = true;
                        break;
                case OPT_URL:
                        if (url) {
                                log_error("login: the URL is given twice");
                                return 2;
                        }
                        url = optarg;
                        break;
                case 'h':
                        (void) fputs(login_help, stdout);
                        return 0;
                default:
                        return client_option_error("login", ch, argv);
                }
        }
        if (optind < argc) {
                log_error("login: unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (user && (user[0] == '\0' || strlen(user) > USER_NAME_MAX)) {
                log_error("login: invalid user '%s'", user);
                return 2;
        }

        if (client_new(url, 0, &c) < 0)
                return 1;
        /* A token kept for this node is not sent along with a password. */
        if (client_set_token(c, NULL) < 0)
                return 1;
        if (!user) {
                r = ask_user(&asked_user);
                if (r != 0)
                        return r;
                user = asked_user;
        }
        if (client_read_password("Password: ", password_stdin, false, &password) < 0)
                return 1;
        body = json_pack("{s:s, s:s}", "user", user, "password", password);
        client_password_free(password);
        if (!body) {
                log_error("login: the user or password is not valid UTF-8");
                return 1;
        }
        r = client_call(c, "POST", "/api/v1/login", body, &reply, NULL);
        if (r < 0)
                return 1;
        token = client_json_str(reply, "token");
        if (!token) {
                log_error("login: the reply from %s has no token", client_url(c));
                return 1;
        }
        if (client_set_token(c, token) < 0)
                return 1;
        cfg = (struct client_config){.url = (char *) client_url(c), .token = (char *) token};
        if (client_config_save(&cfg) < 0)
                return 1;
        name = client_json_str(json_object_get(reply, "user"), "name");
        (void) printf("logged in to %s as %s\n", client_url(c), name ? name : user);
        return 0;
}

/* Removes the token from the saved configuration, keeping the URL. */
static int forget_token(void)
{
        _cleanup_(client_config_done) struct client_config cfg = {0};
        int r;

        r = client_config_load(&cfg);
        if (r < 0)
                return r;
        if (!cfg.token)
                return 0;
        client_password_free(TAKE_PTR(cfg.token));
        return client_config_save(&cfg);
}

int cmd_logout(int argc, char *argv[])
{
        static const struct option options[] = {
                {"url", required_argument, NULL, OPT_URL},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        const char *url = NULL;
        struct client_error e;
        int ch, r;

        opterr = 0;
        optind = 1;
        while ((ch = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (ch) {
                case OPT_URL:
                        url = optarg;
                        break;
                case 'h':
                        (void) fputs(logout_help, stdout);
                        return 0;
                default:
                        return client_option_error("logout", ch, argv);
                }
        }
        if (optind < argc) {
                log_error("logout: unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (client_new(url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        r = client_call(c, "POST", "/api/v1/logout", NULL, NULL, &e);
        if (r == -EREMOTEIO && e.status != 401) {
                client_error_log(c, &e);
                return 1;
        }
        if (r < 0 && r != -EREMOTEIO)
                return 1; /* the node was not reached: the token may still be alive there */
        /* Revoked now, or already invalid (401): either way it is of no use any more. */
        if (client_token_is_saved(c) && forget_token() < 0)
                return 1;
        return 0;
}
