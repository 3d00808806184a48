/* SPDX-License-Identifier: MIT */
/* warren cert init: a private CA and a server certificate for a node's HTTPS. */
#include "auth/cert.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

static const char cert_help[] =
        "Usage: warren cert COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  init DIR          write a private CA and a server certificate for a node's HTTPS\n"
        "  client DIR NAME   issue a client certificate for user NAME with DIR's CA\n"
        "\n"
        "'warren cert COMMAND --help' describes each.\n";

static const char init_help[] =
        "Usage: warren cert init [OPTIONS] DIR\n"
        "\n"
        "Writes a quick start's certificates into DIR (created if missing):\n"
        "  ca.pem       a self-signed CA (ECDSA P-256, 10 years): give it to clients\n"
        "               ('warren login https://... --ca DIR/ca.pem')\n"
        "  ca.key       its private key (0600): keep it away from the node\n"
        "  server.pem   the node's certificate, signed by the CA (1 year, serverAuth) for\n"
        "               localhost, 127.0.0.1, ::1 and every --san\n"
        "  server.key   its private key (0600)\n"
        "Then: warren node --tls-cert DIR/server.pem --tls-key DIR/server.key\n"
        "\n"
        "  --san NAME   another DNS name or IP address for the server (repeatable, at most 32)\n"
        "  --force      replace the files if they exist (by default nothing is overwritten)\n"
        "  --help       show this help\n";

static const char client_help[] =
        "Usage: warren cert client [OPTIONS] DIR NAME\n"
        "\n"
        "Issues a client certificate (mutual TLS) for the user NAME, signed by the CA of\n"
        "'warren cert init' (DIR/ca.pem and DIR/ca.key), and writes:\n"
        "  DIR/NAME.pem   the certificate: subject CN=NAME, extended key usage clientAuth,\n"
        "                 ECDSA P-256\n"
        "  DIR/NAME.key   its private key (0600)\n"
        "A node started with '--tls-client-ca DIR/ca.pem' takes it as NAME's identity:\n"
        "  warren login https://... --ca DIR/ca.pem --cert DIR/NAME.pem --key DIR/NAME.key\n"
        "\n"
        "  --days N     validity in days, 1 to 3650 (default 365)\n"
        "  --force      replace the files if they exist (by default nothing is overwritten)\n"
        "  --help       show this help\n";

enum { KEY_SAN = 1, KEY_DAYS };

struct init_args {
        const char *dir;
        const char *sans[CERT_SANS_MAX];
        size_t n_sans;
};

static int take_init(const char *cmd, int key, const char *value, void *userdata)
{
        struct init_args *a = userdata;

        if (key == KEY_SAN) {
                if (!cert_san_valid(value)) {
                        log_error("%s: --san must be a DNS name or an IP address, not '%s'", cmd,
                                  value);
                        return 2;
                }
                if (a->n_sans >= CERT_SANS_MAX) {
                        log_error("%s: at most %d --san", cmd, CERT_SANS_MAX);
                        return 2;
                }
                a->sans[a->n_sans++] = value;
                return 0;
        }
        if (a->dir) {
                log_error("%s: unexpected argument '%s'", cmd, value);
                return 2;
        }
        if (value[0] == '\0') {
                log_error("%s: the directory must not be empty", cmd);
                return 2;
        }
        a->dir = value;
        return 0;
}

static int cert_init(int argc, char *argv[])
{
        _cleanup_(cert_set_done) struct cert_set cs = {0};
        struct init_args a = {0};
        bool force = false;
        const struct client_option options[] = {
                {.name = "san", .key = KEY_SAN},
                {.name = "force", .flag = &force},
                {},
        };
        struct stat st;
        int r;

        r = client_parse_args(
                &(const struct client_args){
                        .cmd = "cert init",
                        .help = init_help,
                        .options = options,
                        .take = take_init,
                        .take_arg = take_init,
                        .userdata = &a,
                },
                argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (!a.dir) {
                log_error("cert init: no directory given; see 'warren cert init --help'");
                return 2;
        }
        if (!force)
                for (size_t i = 0; i < ELEMENTSOF(cert_file_names); i++) {
                        _cleanup_free_ char *path = NULL;

                        if (asprintf(&path, "%s/%s", a.dir, cert_file_names[i]) < 0)
                                return log_error_errno(ENOMEM, "%m"), 1;
                        if (lstat(path, &st) == 0 || errno != ENOENT) {
                                log_error("cert init: '%s' exists; use --force to replace it",
                                          path);
                                return 1;
                        }
                }

        r = cert_generate(a.sans, a.n_sans, &cs);
        if (r < 0) {
                log_error_errno(r, "cert init: cannot make the certificates: %m");
                return 1;
        }
        r = cert_write_dir(a.dir, &cs, force);
        if (r == -EEXIST) {
                log_error("cert init: a file of the set exists in '%s'; use --force to replace "
                          "it",
                          a.dir);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "cert init: cannot write into '%s': %m", a.dir);
                return 1;
        }
        (void) printf("wrote %s/%s, %s/%s (0600), %s/%s and %s/%s (0600)\n", a.dir, CERT_CA_CERT,
                      a.dir, CERT_CA_KEY, a.dir, CERT_SERVER_CERT, a.dir, CERT_SERVER_KEY);
        return 0;
}

struct client_cert_args {
        const char *dir, *name;
        unsigned days;
};

static int take_client(const char *cmd, int key, const char *value, void *userdata)
{
        struct client_cert_args *a = userdata;
        uint64_t days;

        if (key == KEY_DAYS) {
                if (parse_uint(value, 1, CERT_CA_DAYS, &days) < 0) {
                        log_error("%s: --days must be an integer from 1 to %d, not '%s'", cmd,
                                  CERT_CA_DAYS, value);
                        return 2;
                }
                a->days = (unsigned) days;
                return 0;
        }
        if (!a->dir) {
                if (value[0] == '\0') {
                        log_error("%s: the directory must not be empty", cmd);
                        return 2;
                }
                a->dir = value;
                return 0;
        }
        if (!a->name) {
                if (!cert_name_valid(value) || strcmp(value, "ca") == 0 ||
                    strcmp(value, "server") == 0) {
                        log_error("%s: '%s' is not a user name (1 to %d of a-z, 0-9, '_', '.', "
                                  "'-', starting with a letter; not 'ca' or 'server', the "
                                  "names of the node's files: use another DIR for them)",
                                  cmd, value, CERT_CN_MAX);
                        return 2;
                }
                a->name = value;
                return 0;
        }
        log_error("%s: unexpected argument '%s'", cmd, value);
        return 2;
}

/* Reads DIR/NAME, one line on failure. */
static int read_in_dir(const char *dir, const char *name, bool secret, char **ret)
{
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return log_error_errno(ENOMEM, "%m");
        r = cert_read_file(path, secret, ret, NULL);
        if (r == -EPERM)
                return log_error_errno(r,
                                       "cert client: refusing '%s': it must be yours and "
                                       "readable by you only (chmod 600)",
                                       path);
        if (r < 0)
                return log_error_errno(r, "cert client: cannot read '%s': %m", path);
        return 0;
}

static int cert_client(int argc, char *argv[])
{
        _cleanup_free_ char *ca = NULL, *cert = NULL;
        char *ca_key = NULL, *key = NULL;
        struct client_cert_args a = {.days = CERT_CLIENT_DAYS};
        bool force = false;
        const struct client_option options[] = {
                {.name = "days", .key = KEY_DAYS},
                {.name = "force", .flag = &force},
                {},
        };
        int r;

        r = client_parse_args(
                &(const struct client_args){
                        .cmd = "cert client",
                        .help = client_help,
                        .options = options,
                        .take = take_client,
                        .take_arg = take_client,
                        .userdata = &a,
                },
                argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (!a.dir || !a.name) {
                log_error("cert client: give a directory and a user name; see 'warren cert "
                          "client --help'");
                return 2;
        }
        if (read_in_dir(a.dir, CERT_CA_CERT, false, &ca) < 0)
                return 1;
        if (read_in_dir(a.dir, CERT_CA_KEY, true, &ca_key) < 0)
                return 1;
        r = cert_generate_client(ca, ca_key, a.name, a.days, &cert, &key);
        cert_key_free(ca_key);
        if (r == -EBADMSG || r == -ENOKEY || r == -EKEYREJECTED) {
                log_error("cert client: '%s/%s' and '%s/%s' are not a CA's certificate and its "
                          "key",
                          a.dir, CERT_CA_CERT, a.dir, CERT_CA_KEY);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "cert client: cannot make the certificate: %m");
                return 1;
        }
        r = cert_write_client(a.dir, a.name, cert, key, force);
        cert_key_free(key);
        if (r == -EEXIST) {
                log_error("cert client: '%s/%s.pem' or '%s/%s.key' exists; use --force to "
                          "replace them",
                          a.dir, a.name, a.dir, a.name);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "cert client: cannot write into '%s': %m", a.dir);
                return 1;
        }
        (void) printf("wrote %s/%s.pem and %s/%s.key (0600) for user '%s', valid %u days\n", a.dir,
                      a.name, a.dir, a.name, a.name, a.days);
        return 0;
}

static const struct {
        const char *name;
        int (*run)(int argc, char *argv[]);
} subs[] = {
        {"init", cert_init},
        {"client", cert_client},
};

int cmd_cert(int argc, char *argv[])
{
        size_t i;
        int r;

        r = client_sub_command("cert", cert_help, subs, ELEMENTSOF(subs), sizeof(subs[0]), argc,
                               argv, &i);
        if (r != 0)
                return r < 0 ? 0 : r;
        return subs[i].run(argc - 1, argv + 1);
}
