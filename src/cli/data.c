/* SPDX-License-Identifier: MIT */
/* warren data put | ls | show | get | rm: data objects, the inputs of jobs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define CHUNK ((size_t) 64 << 10)

static const char help_text[] =
        "Usage: warren data COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  put FILE [--name NAME] [--mode MODE] [--group GROUP]\n"
        "                            upload FILE ('-': stdin) and print its id; the name is\n"
        "                            FILE's base name unless given; MODE is octal (default\n"
        "                            0700). A certificate or a key is always kept private\n"
        "  ls [--json]               list the data you may read: ID, NAME, OWNER, MODE\n"
        "  show ID [--json]          a data object's description\n"
        "  get ID [-o FILE]          its content, to stdout or FILE; the SHA-256 received is\n"
        "                            checked against the node's record before anything is\n"
        "                            written\n"
        "  rm ID                     remove it\n"
        "\n"
        "Options:\n"
        "  --json                    print the node's JSON\n"
        "  --url URL                 the node's URL\n"
        "  --help                    show this help\n"
        "\n"
        "A job reads data with 'warren submit --input ID:PATH'.\n";

enum {
        ACCEPT_JSON = 1 << 0,
        ACCEPT_PUT = 1 << 1,
        ACCEPT_OUT = 1 << 2,
};

struct data_args {
        const char *url, *arg, *name, *mode, *group, *out;
        bool json;
};

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

static char *data_path(const char *id, const char *suffix)
{
        _cleanup_free_ char *escaped = client_escape(id);
        char *path;

        if (!escaped || asprintf(&path, "/api/v1/data/%s%s", escaped, suffix) < 0)
                return NULL;
        return path;
}

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

static int data_put(struct client *c, const struct data_args *a)
{
        _cleanup_free_ char *name = NULL, *mode = NULL, *group = NULL, *path = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *id;

        if (strcmp(a->arg, "-") == 0)
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(a->arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                log_error_errno(errno, "data put: cannot open '%s': %m", a->arg);
                return 1;
        }
        if (!a->name && strcmp(a->arg, "-") == 0) {
                log_error("data put: give --name for stdin");
                return 2;
        }
        name = client_escape(a->name ? a->name : base_name(a->arg));
        mode = a->mode ? client_escape(a->mode) : NULL;
        group = a->group ? client_escape(a->group) : NULL;
        if (!name || (a->mode && !mode) || (a->group && !group))
                return oom();
        if (asprintf(&path, "/api/v1/data?name=%s%s%s%s%s", name, mode ? "&mode=" : "",
                     mode ? mode : "", group ? "&group=" : "", group ? group : "") < 0) {
                path = NULL;
                return oom();
        }
        if (client_upload(c, path, fd, &reply, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        id = client_json_str(reply, "id");
        if (!id) {
                log_error("data put: the reply from %s has no id", client_url(c));
                return 1;
        }
        if (json_is_true(json_object_get(reply, "confidential")))
                log_info("data put: '%s' is a certificate or a key: it is kept private", a->arg);
        (void) printf("%s\n", id);
        return fflush(stdout) == 0 ? 0 : 1;
}

static int data_ls(struct client *c, const struct data_args *a)
{
        static const struct client_list list = {
                .path = "/api/v1/data",
                .key = "data",
                .what = "data",
                .columns = {{"ID", "id", 32},
                            {"NAME", "name", 20},
                            {"OWNER", "owner", 12},
                            {"MODE", "mode", 4},
                            {"SHA256", "sha256", 0},
                            {}},
        };

        return client_print_list(c, "data ls", &list, a->json);
}

static int data_show(struct client *c, const struct data_args *a)
{
        _cleanup_free_ char *path = data_path(a->arg, "");
        _cleanup_json_ json_t *reply = NULL;

        if (!path)
                return oom();
        if (client_call(c, "GET", path, NULL, &reply, NULL) < 0)
                return 1;
        return client_print_json(reply) < 0 ? 1 : 0;
}

/* The SHA-256 (hex) and size of fd's content, read from offset 0. */
static int digest_fd(int fd, char hex[static crypto_hash_sha256_BYTES * 2 + 1], uint64_t *ret_size)
{
        _cleanup_free_ unsigned char *buf = malloc(CHUNK);
        unsigned char out[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_state st;
        uint64_t size = 0;

        if (!buf)
                return -ENOMEM;
        (void) crypto_hash_sha256_init(&st);
        for (;;) {
                ssize_t n = pread(fd, buf, CHUNK, (off_t) size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                (void) crypto_hash_sha256_update(&st, buf, (size_t) n);
                size += (uint64_t) n;
        }
        (void) crypto_hash_sha256_final(&st, out);
        (void) sodium_bin2hex(hex, crypto_hash_sha256_BYTES * 2 + 1, out, sizeof(out));
        *ret_size = size;
        return 0;
}

/* Copies fd from offset 0 to out. */
static int copy_out(int fd, int out)
{
        _cleanup_free_ char *buf = malloc(CHUNK);
        uint64_t off = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = pread(fd, buf, CHUNK, (off_t) off);
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                r = write_full(out, buf, (size_t) n);
                if (r < 0)
                        return r;
                off += (uint64_t) n;
        }
}

/*
 * The content goes to a temporary file first (beside FILE, or a memfd for stdout) and is
 * checked against the node's record of its size and SHA-256; only then is it given its name or
 * written out. A mismatch writes nothing.
 */
static int data_get(struct client *c, const struct data_args *a)
{
        _cleanup_free_ char *meta_path = data_path(a->arg, ""),
                            *content_path = data_path(a->arg, "/content"), *tmp = NULL;
        _cleanup_json_ json_t *meta = NULL;
        _cleanup_close_ int fd = -EBADF;
        char hex[crypto_hash_sha256_BYTES * 2 + 1];
        const char *sha;
        json_int_t size;
        uint64_t got = 0, got_size = 0;
        int r;

        if (!meta_path || !content_path)
                return oom();
        if (client_call(c, "GET", meta_path, NULL, &meta, NULL) < 0)
                return 1;
        sha = client_json_str(meta, "sha256");
        size = json_integer_value(json_object_get(meta, "size"));
        if (!sha || !json_is_integer(json_object_get(meta, "size")) || size < 0) {
                log_error("data get: the reply from %s has no size and sha256", client_url(c));
                return 1;
        }
        if (a->out) {
                if (asprintf(&tmp, "%s.warren-XXXXXX", a->out) < 0) {
                        tmp = NULL;
                        return oom();
                }
                fd = mkostemp(tmp, O_CLOEXEC);
                if (fd < 0) {
                        log_error_errno(errno, "data get: cannot create '%s': %m", tmp);
                        return 1;
                }
        } else {
                fd = memfd_create("warren-data", MFD_CLOEXEC);
                if (fd < 0) {
                        log_error_errno(errno, "data get: %m");
                        return 1;
                }
        }
        r = client_download(c, content_path, fd, (uint64_t) size, &got);
        if (r >= 0)
                r = digest_fd(fd, hex, &got_size);
        if (r >= 0 && (got_size != (uint64_t) size || strcmp(hex, sha) != 0)) {
                log_error("data get: what was received (%" PRIu64 " bytes, sha256 %s) is not the "
                          "data the node describes (%" PRIu64 " bytes, sha256 %s): not written",
                          got_size, hex, (uint64_t) size, sha);
                r = -EBADMSG;
        } else if (r < 0 && r != -EREMOTEIO && r != -E2BIG)
                log_error_errno(r, "data get: %m");
        if (r >= 0) {
                if (a->out) {
                        if (fchmod(fd, 0600) < 0 || fsync(fd) < 0 || rename(tmp, a->out) < 0) {
                                r = -errno;
                                log_error_errno(r, "data get: cannot write '%s': %m", a->out);
                        } else
                                tmp = (free(tmp), NULL);
                } else {
                        r = copy_out(fd, STDOUT_FILENO);
                        if (r < 0 && r != -EPIPE)
                                log_error_errno(r, "data get: cannot write the output: %m");
                }
        }
        if (tmp)
                (void) unlink(tmp);
        return r < 0 ? 1 : 0;
}

static int data_rm(struct client *c, const struct data_args *a)
{
        _cleanup_free_ char *path = data_path(a->arg, "");

        if (!path)
                return oom();
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

int cmd_data(int argc, char *argv[])
{
        static const struct {
                const char *name;       /* first, for client_sub_command() */
                const char *cmd, *what; /* what: the argument; NULL: none */
                unsigned accept;
                int (*run)(struct client *c, const struct data_args *a);
        } subs[] = {
                {"put", "data put", "file", ACCEPT_PUT | ACCEPT_JSON, data_put},
                {"ls", "data ls", NULL, ACCEPT_JSON, data_ls},
                {"show", "data show", "data id", ACCEPT_JSON, data_show},
                {"get", "data get", "data id", ACCEPT_OUT, data_get},
                {"rm", "data rm", "data id", 0, data_rm},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        struct data_args a = {0};
        const struct client_option options[] = {
                {.name = "json", .need = ACCEPT_JSON, .flag = &a.json},
                {.name = "name", .need = ACCEPT_PUT, .value = &a.name},
                {.name = "mode", .need = ACCEPT_PUT, .value = &a.mode},
                {.name = "group", .need = ACCEPT_PUT, .value = &a.group},
                {.name = "output", .short_name = 'o', .need = ACCEPT_OUT, .value = &a.out},
                {.name = "url", .value = &a.url},
                {},
        };
        size_t i;
        int r;

        r = client_sub_command("data", help_text, subs, ELEMENTSOF(subs), sizeof(subs[0]), argc,
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
                        .see = "data",
                },
                argc - 1, argv + 1);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        return subs[i].run(c, &a);
}
