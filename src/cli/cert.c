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

static const char cert_help[] =
        "Usage: warren cert COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  init DIR   write a private CA and a server certificate for a node's HTTPS\n"
        "\n"
        "'warren cert init --help' describes it.\n";

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

enum { KEY_SAN = 1 };

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

static const struct {
        const char *name;
        int (*run)(int argc, char *argv[]);
} subs[] = {
        {"init", cert_init},
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
