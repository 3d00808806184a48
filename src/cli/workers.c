/* SPDX-License-Identifier: MIT */
/*
 * warren worker add | ls | show | rm | token, and `warren workers`: the workers of a master
 * (docs/api.md, "Workers"), administrators only.
 *
 * A worker is registered by its CURVE public key (40 characters of Z85). `--key FILE` reads it
 * from a key file as `warren keygen` writes them: PATH holds the public key on a line of its
 * own, PATH.secret the lines "public <key>" and "secret <key>". Only a bare key line or a
 * "public" line is ever taken, so that a secret key is never sent, whichever file is given.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define CURVE_KEY_LEN   40
#define KEY_FILE_MAX    ((size_t) 64 << 10)
#define TTL_MIN         60
#define TTL_MAX         (7 * 24 * 3600)
#define WORKER_PAGE_MAX 1000

static const char help_text[] =
        "Usage: warren worker COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  add NAME (--key FILE | --key-text KEY) [--public | --group GROUP | --private USER]\n"
        "                          register a worker by its CURVE public key (40 characters\n"
        "                          of Z85); FILE is a key file of 'warren keygen', the\n"
        "                          public one or its .secret (only its public line is read)\n"
        "  ls [--json]             list the workers: NAME, STATE, CONFINEMENT, SLOTS,\n"
        "                          RUNNING, ERRORS, LAST-HEARTBEAT ('warren workers' too)\n"
        "  show NAME [--json]      a worker, and what the master knows of it now\n"
        "  rm NAME                 remove a worker: its connection is dropped, its jobs are\n"
        "                          queued again\n"
        "  token [--public | --group GROUP | --private USER] [--ttl TTL]\n"
        "                          make a one-time join token and print it (shown once);\n"
        "                          a worker that presents it registers its own key\n"
        "\n"
        "What a worker may run: --public (the default) public apps; --group GROUP the group's\n"
        "apps and public ones; --private USER that user's jobs only.\n"
        "\n"
        "Options:\n"
        "  --ttl TTL               a token's life: seconds, or with a unit (90s, 30m, 1h, 7d);\n"
        "                          1m to 7d, default 1h\n"
        "  --json                  print the node's JSON\n"
        "  --url URL               the node's URL\n"
        "  --help                  show this help\n"
        "\n"
        "Administrators only.\n";

enum {
        ACCEPT_JSON = 1 << 0,
        ACCEPT_KEY = 1 << 1,
        ACCEPT_CONFINEMENT = 1 << 2,
        ACCEPT_TTL = 1 << 3,
};

struct worker_args {
        const char *url, *name, *key_file, *key_text, *group, *owner, *ttl;
        bool json, public;
};

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

static int finish_output(void)
{
        if (fflush(stdout) != 0) {
                log_error_errno(errno, "cannot write to stdout: %m");
                return 1;
        }
        return 0;
}

/* The public key of a key file (see the top of this file) into ret. */
static int read_key_file(const char *cmd, const char *path, char ret[static CURVE_KEY_LEN + 1])
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *line, *end;

        if (client_read_file(path, KEY_FILE_MAX, &text, &len) < 0)
                return 1;
        if (memchr(text, '\0', len)) {
                log_error("%s: '%s' is not a key file", cmd, path);
                return 2;
        }
        for (line = text; *line; line = end) {
                size_t n;

                end = strchrnul(line, '\n');
                n = (size_t) (end - line);
                if (*end)
                        *end++ = '\0';
                while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
                        line[--n] = '\0';
                if (strncmp(line, "public ", 7) == 0) {
                        line += 7;
                        n -= 7;
                        while (*line == ' ') {
                                line++;
                                n--;
                        }
                }
                if (z85_key_valid(line, n)) {
                        memcpy(ret, line, CURVE_KEY_LEN + 1);
                        return 0;
                }
        }
        log_error("%s: '%s' holds no CURVE public key (a line of 40 Z85 characters, or "
                  "'public <key>')",
                  cmd, path);
        return 2;
}

/* Adds {"confinement", "group"?, "owner"?} to body from the options; exit code 2 if they clash. */
static int add_confinement(const char *cmd, const struct worker_args *a, json_t *body)
{
        int given = a->public + !!a->group + !!a->owner;

        if (given > 1) {
                log_error("%s: give at most one of --public, --group and --private", cmd);
                return 2;
        }
        if ((a->group && !a->group[0]) || (a->owner && !a->owner[0])) {
                log_error("%s: %s needs a name", cmd, a->group ? "--group" : "--private");
                return 2;
        }
        if (json_object_set_new(body, "confinement",
                                json_string(a->group   ? "group"
                                            : a->owner ? "private"
                                                       : "public")) < 0 ||
            (a->group && json_object_set_new(body, "group", json_string(a->group)) < 0) ||
            (a->owner && json_object_set_new(body, "owner", json_string(a->owner)) < 0)) {
                log_error("%s: the group or user name is not valid UTF-8", cmd);
                return 2;
        }
        return 0;
}

/* "3600", "90s", "30m", "1h", "7d" → seconds, TTL_MIN..TTL_MAX. */
static int parse_ttl(const char *s, uint64_t *ret)
{
        _cleanup_free_ char *num = strdup(s);
        uint64_t unit = 1, v;
        size_t n;

        if (!num)
                return -ENOMEM;
        n = strlen(num);
        if (n > 1) {
                switch (num[n - 1]) {
                case 's':
                        unit = 1;
                        break;
                case 'm':
                        unit = 60;
                        break;
                case 'h':
                        unit = 3600;
                        break;
                case 'd':
                        unit = 24 * 3600;
                        break;
                default:
                        unit = 0;
                        break;
                }
                if (unit)
                        num[n - 1] = '\0';
                else
                        unit = 1;
        }
        if (parse_uint(num, 1, TTL_MAX, &v) < 0 || v * unit < TTL_MIN || v * unit > TTL_MAX)
                return -EINVAL;
        *ret = v * unit;
        return 0;
}

static char *worker_path(const char *name)
{
        _cleanup_free_ char *escaped = client_escape(name);
        char *path;

        if (!escaped || asprintf(&path, "/api/v1/workers/%s", escaped) < 0)
                return NULL;
        return path;
}

/* The decimal text of an integer member ("-" if it is not one). */
static const char *int_text(const json_t *o, const char *key, char *buf, size_t size)
{
        const json_t *v = json_object_get(o, key);

        if (!json_is_integer(v))
                return "-";
        (void) snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
}

/* "public", "group:team", "private:alice". */
static const char *confinement_text(const json_t *w, char *buf, size_t size)
{
        const char *kind = client_json_str(w, "confinement");
        const char *who = client_json_str(w, "group") ? client_json_str(w, "group")
                                                      : client_json_str(w, "owner");

        if (!kind)
                return NULL;
        if (!who)
                return kind;
        (void) snprintf(buf, size, "%s:%s", kind, who);
        return buf;
}

/* What worker add sends, from the command line alone (before the node is asked anything). */
static int prepare_add(const struct worker_args *a, json_t *body)
{
        char key[CURVE_KEY_LEN + 1];
        int r;

        if (!!a->key_file == !!a->key_text) {
                log_error("worker add: give the worker's public key: --key FILE or --key-text "
                          "KEY");
                return 2;
        }
        if (a->key_file) {
                r = read_key_file("worker add", a->key_file, key);
                if (r != 0)
                        return r;
        } else {
                if (!z85_key_valid(a->key_text, strlen(a->key_text))) {
                        log_error("worker add: --key-text is a CURVE public key: 40 characters "
                                  "of Z85");
                        return 2;
                }
                memcpy(key, a->key_text, sizeof(key));
        }
        r = add_confinement("worker add", a, body);
        if (r != 0)
                return r;
        if (json_object_set_new(body, "name", json_string(a->name)) < 0 ||
            json_object_set_new(body, "public_key", json_string(key)) < 0) {
                log_error("worker add: the worker name is not valid UTF-8");
                return 2;
        }
        return 0;
}

static int worker_add(struct client *c, const struct worker_args *a, const json_t *body)
{
        _cleanup_json_ json_t *reply = NULL;

        if (client_call(c, "POST", "/api/v1/workers", body, &reply, NULL) < 0)
                return 1;
        return a->json ? (client_print_json(reply) < 0 ? 1 : 0) : 0;
}

/* Every page of the list, as one {"workers": [...]}. */
static int fetch_all(struct client *c, const char *cmd, json_t **ret)
{
        _cleanup_json_ json_t *all = json_array();
        _cleanup_free_ char *cursor = NULL;

        if (!all)
                return -ENOMEM;
        for (;;) {
                _cleanup_json_ json_t *reply = NULL;
                _cleanup_free_ char *path = NULL, *esc = cursor ? client_escape(cursor) : NULL;
                const json_t *workers, *next;

                if (cursor && !esc)
                        return -ENOMEM;
                if (asprintf(&path, "/api/v1/workers?limit=%d%s%s", WORKER_PAGE_MAX,
                             esc ? "&cursor=" : "", esc ? esc : "") < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                if (client_call(c, "GET", path, NULL, &reply, NULL) < 0)
                        return -EREMOTEIO;
                workers = json_object_get(reply, "workers");
                next = json_object_get(reply, "next_cursor");
                if (!json_is_array(workers) || !(json_is_null(next) || json_is_string(next))) {
                        log_error("%s: the reply from %s has no worker list", cmd, client_url(c));
                        return -EBADMSG;
                }
                if (json_array_extend(all, (json_t *) workers) < 0)
                        return -ENOMEM;
                if (!json_is_string(next) || json_array_size(workers) == 0 ||
                    streq_ptr(cursor, json_string_value(next)))
                        break;
                free(cursor);
                cursor = strdup(json_string_value(next));
                if (!cursor)
                        return -ENOMEM;
        }
        *ret = json_pack("{s:O}", "workers", all);
        return *ret ? 0 : -ENOMEM;
}

static int worker_ls(struct client *c, const struct worker_args *a, const json_t *body)
{
        _cleanup_json_ json_t *reply = NULL;
        const json_t *w;
        size_t i;
        int r;

        r = fetch_all(c, "worker ls", &reply);
        if (r == -ENOMEM)
                return oom();
        if (r < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        client_print_cell("NAME", 16, false);
        client_print_cell("STATE", 12, false);
        client_print_cell("CONFINEMENT", 20, false);
        client_print_cell("SLOTS", 5, false);
        client_print_cell("RUNNING", 7, false);
        client_print_cell("ERRORS", 6, false);
        client_print_cell("LAST-HEARTBEAT", 0, true);
        json_array_foreach(json_object_get(reply, "workers"), i, w)
        {
                char conf[128], slots[24], running[24], errors[24];

                client_print_cell(client_json_str(w, "name"), 16, false);
                client_print_cell(client_json_str(w, "state"), 12, false);
                client_print_cell(confinement_text(w, conf, sizeof(conf)), 20, false);
                client_print_cell(int_text(w, "slots", slots, sizeof(slots)), 5, false);
                client_print_cell(int_text(w, "running", running, sizeof(running)), 7, false);
                client_print_cell(int_text(w, "errors", errors, sizeof(errors)), 6, false);
                client_print_cell(client_json_str(w, "last_heartbeat"), 0, true);
        }
        return finish_output();
}

static void print_field(const char *label, const char *value)
{
        client_print_cell(label, 14, false);
        client_print_cell(value, 0, true);
}

static int worker_show(struct client *c, const struct worker_args *a, const json_t *body)
{
        _cleanup_free_ char *path = worker_path(a->name);
        _cleanup_json_ json_t *w = NULL;
        char conf[128], buf[24];

        if (!path)
                return oom();
        if (client_call(c, "GET", path, NULL, &w, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(w) < 0 ? 1 : 0;
        print_field("name", client_json_str(w, "name"));
        print_field("state", client_json_str(w, "state"));
        print_field("public key", client_json_str(w, "public_key"));
        print_field("confinement", confinement_text(w, conf, sizeof(conf)));
        print_field("account", client_json_str(w, "user"));
        print_field("slots", int_text(w, "slots", buf, sizeof(buf)));
        print_field("running", int_text(w, "running", buf, sizeof(buf)));
        print_field("cpus", int_text(w, "cpus", buf, sizeof(buf)));
        print_field("memory", int_text(w, "memory", buf, sizeof(buf)));
        print_field("errors", int_text(w, "errors", buf, sizeof(buf)));
        print_field("created", client_json_str(w, "created_at"));
        print_field("last seen", client_json_str(w, "last_seen"));
        print_field("heartbeat", client_json_str(w, "last_heartbeat"));
        return finish_output();
}

static int worker_rm(struct client *c, const struct worker_args *a, const json_t *body)
{
        _cleanup_free_ char *path = worker_path(a->name);

        if (!path)
                return oom();
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

static int prepare_token(const struct worker_args *a, json_t *body)
{
        uint64_t ttl = 0;

        if (a->ttl) {
                if (parse_ttl(a->ttl, &ttl) < 0) {
                        log_error("worker token: invalid --ttl '%s': 1m to 7d, e.g. 3600, 30m, "
                                  "1h, 2d",
                                  a->ttl);
                        return 2;
                }
                if (json_object_set_new(body, "ttl", json_integer((json_int_t) ttl)) < 0)
                        return oom();
        }
        return add_confinement("worker token", a, body);
}

static int worker_token(struct client *c, const struct worker_args *a, const json_t *body)
{
        _cleanup_json_ json_t *reply = NULL;
        const char *token, *expires;
        int r;

        if (client_call(c, "POST", "/api/v1/workers/tokens", body, &reply, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        token = client_json_str(reply, "token");
        expires = client_json_str(reply, "expires_at");
        if (!token) {
                log_error("worker token: the reply from %s has no token", client_url(c));
                return 1;
        }
        (void) printf("%s\n", token);
        r = finish_output();
        /* stdout holds the token alone, for scripts */
        (void) fprintf(stderr, "expires %s; valid once, and not shown again\n",
                       expires ? expires : "?");
        return r;
}

static const struct worker_sub {
        const char *name; /* first, for client_sub_command() */
        const char *cmd;
        unsigned accept;
        bool takes_name;
        /* The request's body from the command line, checked before the node is asked: an
         * exit code. NULL: no body. */
        int (*prepare)(const struct worker_args *a, json_t *body);
        int (*run)(struct client *c, const struct worker_args *a, const json_t *body);
} subs[] = {
        {"add", "worker add", ACCEPT_KEY | ACCEPT_CONFINEMENT | ACCEPT_JSON, true, prepare_add,
         worker_add},
        {"ls", "worker ls", ACCEPT_JSON, false, NULL, worker_ls},
        {"show", "worker show", ACCEPT_JSON, true, NULL, worker_show},
        {"rm", "worker rm", 0, true, NULL, worker_rm},
        {"token", "worker token", ACCEPT_CONFINEMENT | ACCEPT_TTL | ACCEPT_JSON, false,
         prepare_token, worker_token},
};

static const struct worker_sub workers_alias = {"workers", "workers", ACCEPT_JSON,
                                                false,     NULL,      worker_ls};

static int run_sub(const struct worker_sub *sub, int argc, char *argv[])
{
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *body = NULL;
        struct worker_args a = {0};
        const struct client_option options[] = {
                {.name = "key", .need = ACCEPT_KEY, .value = &a.key_file},
                {.name = "key-text", .need = ACCEPT_KEY, .value = &a.key_text},
                {.name = "public", .need = ACCEPT_CONFINEMENT, .flag = &a.public},
                {.name = "group", .need = ACCEPT_CONFINEMENT, .value = &a.group},
                {.name = "private", .need = ACCEPT_CONFINEMENT, .value = &a.owner},
                {.name = "ttl", .need = ACCEPT_TTL, .value = &a.ttl},
                {.name = "json", .need = ACCEPT_JSON, .flag = &a.json},
                {.name = "url", .value = &a.url},
                {},
        };
        int r;

        r = client_parse_args(
                &(const struct client_args){
                        .cmd = sub->cmd,
                        .help = help_text,
                        .options = options,
                        .accept = sub->accept,
                        .arg = sub->takes_name ? &a.name : NULL,
                        .arg_name = "worker name",
                        .see = "worker",
                        .flags = CLIENT_ARG_EMPTY_OK,
                },
                argc, argv);
        if (r == 0 && a.name && a.name[0] == '\0') {
                log_error("%s: the worker name is empty", sub->cmd);
                r = 2;
        }
        if (r != 0)
                return r < 0 ? 0 : r;
        if (sub->prepare) {
                body = json_object();
                if (!body)
                        return oom();
                r = sub->prepare(&a, body);
                if (r != 0)
                        return r;
        }
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        return sub->run(c, &a, body);
}

int cmd_worker(int argc, char *argv[])
{
        size_t i;
        int r;

        r = client_sub_command("worker", help_text, subs, ELEMENTSOF(subs), sizeof(subs[0]), argc,
                               argv, &i);
        if (r != 0)
                return r < 0 ? 0 : r;
        return run_sub(&subs[i], argc - 1, argv + 1);
}

/* `warren workers` is `warren worker ls`. */
int cmd_workers(int argc, char *argv[])
{
        return run_sub(&workers_alias, argc, argv);
}
