/* SPDX-License-Identifier: MIT */
/* warren login, warren logout: a token from a node, kept in the saved configuration. */
#include <errno.h>
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
        "\n"
        "Over https://, the node's certificate is always verified: against the system's CAs,\n"
        "or the CA given with --ca (or WARREN_CA), or by its public key with --pin. What is\n"
        "given is saved with the token, for this URL, and used by every later command.\n"
        "\n"
        "  --user NAME        the user (default: asked on the terminal)\n"
        "  --password-stdin   read the password from stdin (one line) instead of the terminal\n"
        "  --url URL          the node's URL\n"
        "  --ca FILE          trust this CA (PEM) for the node, and only it ('warren cert\n"
        "                     init' writes one: DIR/ca.pem); its content is saved\n"
        "  --pin sha256//B64  the SHA-256 of the node's public key, base64, as curl's\n"
        "                     --pinnedpubkey takes it; checked on every connection; without\n"
        "                     --ca, the pin alone identifies the node. Compute it with:\n"
        "                       openssl x509 -in server.pem -pubkey -noout |\n"
        "                       openssl pkey -pubin -outform der |\n"
        "                       openssl dgst -sha256 -binary | base64\n"
        "  --cert FILE        mutual TLS: a client certificate (PEM; 'warren cert client DIR\n"
        "                     NAME' issues one) for a node started with --tls-client-ca\n"
        "  --key FILE         its private key (PEM, mode 0600). Both are saved (their\n"
        "                     content) and presented by every later command; they identify\n"
        "                     you: no password is asked, login only checks whom the node\n"
        "                     says they name (GET /api/v1/whoami). A saved token wins\n"
        "  --token-stdin      read a bearer token from stdin (one line) instead: an OpenID\n"
        "                     Connect token (JWT) from your identity provider, for a node\n"
        "                     started with --oidc-issuer; it is checked (GET\n"
        "                     /api/v1/whoami) and saved. A new identity may first have to\n"
        "                     be approved by an administrator ('warren user approve')\n"
        "  --help             show this help\n";

static const char logout_help[] =
        "Usage: warren logout [OPTIONS]\n"
        "\n"
        "Revokes the token in use and removes it from the saved configuration; without a\n"
        "token, forgets the saved client certificate and key instead.\n"
        "\n"
        "  --url URL          the node's URL\n"
        "  --help             show this help\n";

/* The URL, given once: as the argument (not after "--") or with --url. */
static int take_url(const char *cmd, int key, const char *value, void *userdata)
{
        const char **url = userdata;

        if (key == CLIENT_ARG_REST || (key == CLIENT_ARG && *url)) {
                log_error("%s: unexpected argument '%s'", cmd, value);
                return 2;
        }
        if (*url) {
                log_error("%s: the URL is given twice", cmd);
                return 2;
        }
        *url = value;
        return 0;
}

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

/*
 * A credential the client already holds (a token from an identity provider, a client
 * certificate): the node says whom it names (GET /api/v1/whoami), and it is saved. what names
 * the credential in messages.
 */
static int login_whoami(struct client *c, const char *user, const char *what)
{
        _cleanup_json_ json_t *reply = NULL;
        struct client_config cfg;
        const char *name;

        if (client_call(c, "GET", "/api/v1/whoami", NULL, &reply, NULL) < 0)
                return 1;
        name = client_json_str(reply, "name");
        if (!name) {
                log_error("login: the reply from %s names no user", client_url(c));
                return 1;
        }
        if (user && strcmp(user, name) != 0) {
                log_error("login: the %s names user '%s', not '%s'", what, name, user);
                return 1;
        }
        cfg = (struct client_config){
                .url = (char *) client_url(c),
                .token = (char *) client_token(c),
                .ca = (char *) client_ca(c),
                .pin = (char *) client_pin(c),
                .cert = (char *) client_cert(c),
                .key = (char *) client_key(c),
        };
        if (client_config_save(&cfg) < 0)
                return 1;
        (void) printf("logged in to %s as %s (%s)\n", client_url(c), name, what);
        return 0;
}

/* A token from elsewhere (an identity provider's JWT), one line on stdin. */
static int login_token(struct client *c, const char *user)
{
        char buf[CLIENT_MAX_TOKEN + 2];
        size_t len;
        int r;

        if (!fgets(buf, sizeof(buf), stdin)) {
                log_error("login: no token on stdin");
                return 1;
        }
        len = strcspn(buf, "\r\n");
        if (buf[len] == '\0' && len == sizeof(buf) - 1) {
                explicit_bzero(buf, sizeof(buf));
                log_error("login: the token is longer than %d bytes", CLIENT_MAX_TOKEN);
                return 1;
        }
        buf[len] = '\0';
        r = len == 0 ? -EINVAL : 0;
        for (size_t i = 0; i < len; i++)
                if (buf[i] <= 0x20 || buf[i] >= 0x7f)
                        r = -EINVAL;
        if (r < 0) {
                explicit_bzero(buf, sizeof(buf));
                log_error("login: the token on stdin is empty or holds spaces or control "
                          "characters");
                return 1;
        }
        r = client_set_token(c, buf);
        explicit_bzero(buf, sizeof(buf));
        if (r < 0)
                return 1;
        return login_whoami(c, user, "token");
}

int cmd_login(int argc, char *argv[])
{
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *body = NULL, *reply = NULL;
        _cleanup_free_ char *asked_user = NULL;
        const char *url = NULL, *user = NULL, *ca = NULL, *pin = NULL, *token, *name;
        const char *cert = NULL, *key = NULL;
        struct client_config cfg;
        bool password_stdin = false, token_stdin = false;
        char *password = NULL;
        const struct client_option options[] = {
                {.name = "user", .value = &user},
                {.name = "password-stdin", .flag = &password_stdin},
                {.name = "token-stdin", .flag = &token_stdin},
                {.name = "url"}, /* take_url() */
                {.name = "ca", .value = &ca},
                {.name = "pin", .value = &pin},
                {.name = "cert", .value = &cert},
                {.name = "key", .value = &key},
                {},
        };
        int r;

        r = client_parse_args(
                &(const struct client_args){
                        .cmd = "login",
                        .help = login_help,
                        .options = options,
                        .take = take_url,
                        .take_arg = take_url,
                        .userdata = &url,
                },
                argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (user && (user[0] == '\0' || strlen(user) > USER_NAME_MAX)) {
                log_error("login: invalid user '%s'", user);
                return 2;
        }

        if (!cert != !key) {
                log_error("login: --cert and --key go together: give both or neither");
                return 2;
        }
        if (cert && password_stdin) {
                log_error("login: with --cert there is no password to read");
                return 2;
        }
        if (token_stdin && (cert || password_stdin)) {
                log_error("login: --token-stdin goes with neither --cert nor --password-stdin");
                return 2;
        }

        if (client_new(url, 0, &c) < 0)
                return 1;
        if ((ca || pin || cert) && strncmp(client_url(c), "https://", 8) != 0) {
                log_error("login: --ca, --pin and --cert are for https:// URLs, not %s",
                          client_url(c));
                return 2;
        }
        /* What is given replaces what was saved: a CA and a pin given together are both kept. */
        if ((ca || pin) && (client_set_ca_file(c, ca) < 0 || client_set_pin(c, pin) < 0))
                return 1;
        /* A token kept for this node is not sent along with a password. */
        if (client_set_token(c, NULL) < 0)
                return 1;
        if (cert)
                return client_set_cert_files(c, cert, key) < 0
                               ? 1
                               : login_whoami(c, user, "client certificate");
        if (token_stdin)
                return login_token(c, user);
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
        cfg = (struct client_config){
                .url = (char *) client_url(c),
                .token = (char *) token,
                .ca = (char *) client_ca(c),
                .pin = (char *) client_pin(c),
                .cert = (char *) client_cert(c),
                .key = (char *) client_key(c),
        };
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

/* Removes the client certificate and key from the saved configuration, keeping the rest. */
static int forget_cert(void)
{
        _cleanup_(client_config_done) struct client_config cfg = {0};
        int r;

        r = client_config_load(&cfg);
        if (r < 0)
                return r;
        if (!cfg.cert && !cfg.key)
                return 0;
        free(TAKE_PTR(cfg.cert));
        client_password_free(TAKE_PTR(cfg.key));
        return client_config_save(&cfg);
}

int cmd_logout(int argc, char *argv[])
{
        _cleanup_(client_freep) struct client *c = NULL;
        const char *url = NULL;
        const struct client_option options[] = {
                {.name = "url", .value = &url},
                {},
        };
        struct client_error e;
        int r;

        /* --help wins over an argument too many. */
        r = client_parse_args(
                &(const struct client_args){
                        .cmd = "logout",
                        .help = logout_help,
                        .options = options,
                        .flags = CLIENT_ARGS_OPTIONS_FIRST,
                },
                argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        if (!client_has_token(c)) {
                /* A client certificate: nothing to revoke on the node. */
                if (client_cert(c) && forget_cert() < 0)
                        return 1;
                return 0;
        }
        r = client_call(c, "POST", "/api/v1/logout", NULL, NULL, &e);
        if (r == -EREMOTEIO && e.status == 400)
                /* A token the node keeps no session for (OpenID Connect): it ends at its
                 * issuer; here it is only forgotten. */
                (void) fprintf(stderr, "the node keeps no session for this token; it is "
                                       "forgotten here and stays valid until it expires\n");
        else if (r == -EREMOTEIO && e.status != 401) {
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
