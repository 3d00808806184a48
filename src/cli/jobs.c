/* SPDX-License-Identifier: MIT */
/* warren jobs, status, logs, result, cancel: a user's jobs, read through the API. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_BLOB (UINT64_C(1) << 40) /* a blob's announced size beyond this is not believed */

static const char jobs_help[] =
        "Usage: warren jobs [OPTIONS]\n"
        "\n"
        "Lists the jobs you may read, newest first: ID, APP, STATE, EXIT, CREATED.\n"
        "\n"
        "  --state STATE   only jobs in STATE (queued, running, finished, cancelled, failed)\n"
        "  --limit N       at most N jobs (1..1000; with --all: per request; default 100)\n"
        "  --all           every job, following the node's pages\n"
        "  --json          the node's reply as JSON\n"
        "  --url URL       the node's URL\n"
        "  --help          show this help\n";

static const char status_help[] = "Usage: warren status [OPTIONS] ID\n"
                                  "\n"
                                  "Shows a job's state.\n"
                                  "\n"
                                  "  --json          the job as JSON\n"
                                  "  --url URL       the node's URL\n"
                                  "  --help          show this help\n";

static const char logs_help[] =
        "Usage: warren logs [OPTIONS] ID\n"
        "\n"
        "Prints an ended job's output: the run step's stdout on stdout, its stderr and the\n"
        "build step's output on stderr.\n"
        "\n"
        "  -f, --follow    follow the job's output as it comes, until the job ends\n"
        "  --url URL       the node's URL\n"
        "  --help          show this help\n";

static const char result_help[] = "Usage: warren result [OPTIONS] ID\n"
                                  "\n"
                                  "Prints the job with its result, as JSON.\n"
                                  "\n"
                                  "  --json          the same (as with status)\n"
                                  "  --url URL       the node's URL\n"
                                  "  --help          show this help\n";

static const char cancel_help[] = "Usage: warren cancel [OPTIONS] ID\n"
                                  "\n"
                                  "Cancels a queued job, or kills and cancels a running one.\n"
                                  "\n"
                                  "  --json          print the cancelled job as JSON\n"
                                  "  --url URL       the node's URL\n"
                                  "  --help          show this help\n";

enum {
        ACCEPT_JSON = 1 << 0,
        ACCEPT_FOLLOW = 1 << 1,
        ACCEPT_LIST = 1 << 2, /* --state, --limit, --all; and no ID */
};

struct jobs_args {
        const char *url, *id, *state;
        uint64_t limit; /* 0: the node's default */
        bool json, follow, all;
};

static int take_limit(const char *cmd, int key, const char *value, void *userdata)
{
        struct jobs_args *a = userdata;

        if (parse_uint(value, 1, 1000, &a->limit) < 0) {
                log_error("%s: invalid value for --limit: '%s' (1..1000)", cmd, value);
                return 2;
        }
        return 0;
}

/* 0: go on; -1: --help was shown; 2: a usage error (said). */
static int parse_args(const char *cmd, const char *help, unsigned accept, int argc, char *argv[],
                      struct jobs_args *a)
{
        const struct client_option options[] = {
                {.name = "json", .need = ACCEPT_JSON, .flag = &a->json},
                {.name = "follow", .short_name = 'f', .need = ACCEPT_FOLLOW, .flag = &a->follow},
                {.name = "state", .need = ACCEPT_LIST, .value = &a->state},
                {.name = "limit", .need = ACCEPT_LIST}, /* take_limit() */
                {.name = "all", .need = ACCEPT_LIST, .flag = &a->all},
                {.name = "url", .value = &a->url},
                {},
        };

        return client_parse_args(
                &(const struct client_args){
                        .cmd = cmd,
                        .help = help,
                        .options = options,
                        .accept = accept,
                        .arg = accept & ACCEPT_LIST ? NULL : &a->id,
                        .arg_name = "job ID",
                        .take = take_limit,
                        .userdata = a,
                },
                argc, argv);
}

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

/* "/api/v1/jobs/ID" + suffix */
static char *job_path(const char *id, const char *suffix)
{
        _cleanup_free_ char *escaped = client_escape(id);
        char *path;

        if (!escaped || asprintf(&path, "/api/v1/jobs/%s%s", escaped, suffix) < 0)
                return NULL;
        return path;
}

static int get_job(struct client *c, const char *id, json_t **ret)
{
        _cleanup_free_ char *path = job_path(id, "");

        if (!path)
                return log_error_errno(ENOMEM, "%m");
        return client_call(c, "GET", path, NULL, ret, NULL);
}

/* The exit code a job shows: its result's, or one the list may give at the top level. */
static void exit_code_text(const json_t *job, char *buf, size_t size)
{
        json_t *code = json_object_get(json_object_get(job, "result"), "exit_code");

        if (!json_is_integer(code))
                code = json_object_get(job, "exit_code");
        if (json_is_integer(code))
                (void) snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(code));
        else
                (void) snprintf(buf, size, "-");
}

static void print_table(const json_t *jobs)
{
        size_t i;
        json_t *job;

        client_print_cell("ID", 32, false);
        client_print_cell("APP", 10, false);
        client_print_cell("STATE", 9, false);
        client_print_cell("EXIT", 4, false);
        client_print_cell("CREATED", 0, true);
        json_array_foreach(jobs, i, job)
        {
                char code[32];

                exit_code_text(job, code, sizeof(code));
                client_print_cell(client_json_str(job, "id"), 32, false);
                client_print_cell(client_json_str(job, "app"), 10, false);
                client_print_cell(client_json_str(job, "state"), 9, false);
                client_print_cell(code, 4, false);
                client_print_cell(client_json_str(job, "created_at"), 0, true);
        }
}

static int list_path(const struct jobs_args *a, const char *cursor, char **ret)
{
        _cleanup_free_ char *state = a->state ? client_escape(a->state) : NULL;
        _cleanup_free_ char *cur = cursor ? client_escape(cursor) : NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        char sep = '?';

        if ((a->state && !state) || (cursor && !cur))
                return -ENOMEM;
        f = open_memstream(&path, &size);
        if (!f)
                return -ENOMEM;
        (void) fputs("/api/v1/jobs", f);
        if (state) {
                (void) fprintf(f, "%cstate=%s", sep, state);
                sep = '&';
        }
        if (a->limit) {
                (void) fprintf(f, "%climit=%" PRIu64, sep, a->limit);
                sep = '&';
        }
        if (cur)
                (void) fprintf(f, "%ccursor=%s", sep, cur);
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(path);
        return 0;
}

int cmd_jobs(int argc, char *argv[])
{
        struct jobs_args a = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *all = NULL;
        _cleanup_free_ char *cursor = NULL;
        int r;

        r = parse_args("jobs", jobs_help, ACCEPT_JSON | ACCEPT_LIST, argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        all = json_array();
        if (!all)
                return oom();

        for (;;) {
                _cleanup_free_ char *path = NULL;
                _cleanup_json_ json_t *reply = NULL;
                json_t *jobs, *next;

                if (list_path(&a, cursor, &path) < 0)
                        return oom();
                if (client_call(c, "GET", path, NULL, &reply, NULL) < 0)
                        return 1;
                jobs = json_object_get(reply, "jobs");
                if (!json_is_array(jobs)) {
                        log_error("jobs: the reply from %s has no job list", client_url(c));
                        return 1;
                }
                if (!a.all) {
                        if (a.json)
                                return client_print_json(reply) < 0 ? 1 : 0;
                        print_table(jobs);
                        return fflush(stdout) == 0 ? 0 : 1;
                }
                if (json_array_extend(all, jobs) < 0)
                        return oom();
                next = json_object_get(reply, "next_cursor");
                if (!json_is_string(next) || json_string_length(next) == 0)
                        break;
                if (cursor && strcmp(cursor, json_string_value(next)) == 0) {
                        log_error("jobs: %s sent the same page cursor twice", client_url(c));
                        return 1;
                }
                free(cursor);
                cursor = strdup(json_string_value(next));
                if (!cursor)
                        return oom();
        }
        if (a.json) {
                _cleanup_json_ json_t *out = json_pack("{s:O, s:n}", "jobs", all, "next_cursor");

                if (!out)
                        return oom();
                return client_print_json(out) < 0 ? 1 : 0;
        }
        print_table(all);
        return fflush(stdout) == 0 ? 0 : 1;
}

static void print_field(const char *label, const char *value)
{
        client_print_cell(label, 9, false);
        client_print_cell(value, 0, true);
}

int cmd_status(int argc, char *argv[])
{
        struct jobs_args a = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *job = NULL;
        const json_t *result, *step;
        char code[32];
        int r;

        r = parse_args("status", status_help, ACCEPT_JSON, argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0 || get_job(c, a.id, &job) < 0)
                return 1;
        if (a.json)
                return client_print_json(job) < 0 ? 1 : 0;

        result = json_object_get(job, "result");
        step = json_object_get(result, "run");
        if (!step)
                step = json_object_get(result, "build");
        exit_code_text(job, code, sizeof(code));
        print_field("id", client_json_str(job, "id"));
        print_field("app", client_json_str(job, "app"));
        print_field("owner", client_json_str(job, "owner"));
        print_field("state", client_json_str(job, "state"));
        if (step)
                print_field("status", client_json_str(json_object_get(step, "report"), "status"));
        print_field("exit code", code);
        print_field("created", client_json_str(job, "created_at"));
        print_field("started", client_json_str(job, "started_at"));
        print_field("finished", client_json_str(job, "finished_at"));
        if (client_json_str(job, "error"))
                print_field("error", client_json_str(job, "error"));
        return fflush(stdout) == 0 ? 0 : 1;
}

/* A blob's path on the node, as the node gave it: only ever a job's blob under the API. */
static bool blob_url_valid(const char *url)
{
        if (strncmp(url, "/api/v1/jobs/", strlen("/api/v1/jobs/")) != 0 || strstr(url, ".."))
                return false;
        for (const char *p = url; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '/' || *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return true;
}

/* Writes a <blob> (docs/api.md) to fd. A closed stdout ends the output quietly. */
static int print_blob(struct client *c, const json_t *blob, int fd)
{
        const json_t *text = json_object_get(blob, "text"), *b64 = json_object_get(blob, "base64");
        const json_t *size = json_object_get(blob, "size");
        const char *url = client_json_str(blob, "url");
        _cleanup_free_ char *bytes = NULL;
        uint64_t got = 0;
        size_t len;
        int r;

        if (json_is_string(text))
                r = write_full(fd, json_string_value(text), json_string_length(text));
        else if (json_is_string(b64)) {
                if (client_base64_decode(json_string_value(b64), json_string_length(b64), &bytes,
                                         &len) < 0) {
                        log_error("logs: the node sent malformed base64");
                        return -EBADMSG;
                }
                r = write_full(fd, bytes, len);
        } else if (url) {
                if (!blob_url_valid(url) || !json_is_integer(size) ||
                    json_integer_value(size) < 0 ||
                    (uint64_t) json_integer_value(size) > MAX_BLOB) {
                        log_error("logs: the node sent a malformed blob reference");
                        return -EBADMSG;
                }
                r = client_download(c, url, fd, (uint64_t) json_integer_value(size), &got);
                if (r < 0)
                        return r == -EPIPE ? 0 : r;
                if (got != (uint64_t) json_integer_value(size)) {
                        log_error("logs: %s sent %" PRIu64 " bytes of a %" JSON_INTEGER_FORMAT
                                  "-byte output",
                                  client_url(c), got, json_integer_value(size));
                        return -EBADMSG;
                }
                return 0;
        } else
                return 0;
        if (r == -EPIPE)
                return 0;
        if (r < 0)
                return log_error_errno(r, "logs: cannot write the output: %m");
        return 0;
}

static int print_step(struct client *c, const json_t *step, bool build)
{
        int r;

        if (!step)
                return 0;
        r = print_blob(c, json_object_get(step, "stdout"), build ? STDERR_FILENO : STDOUT_FILENO);
        if (r >= 0)
                r = print_blob(c, json_object_get(step, "stderr"), STDERR_FILENO);
        return r;
}

int cmd_logs(int argc, char *argv[])
{
        struct jobs_args a = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *job = NULL;
        const json_t *result;
        const char *state;
        int r;

        r = parse_args("logs", logs_help, ACCEPT_FOLLOW, argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        if (a.follow)
                return client_follow_job(c, a.id, NULL, CLIENT_FOLLOW_PROGRESS, &job) < 0 ? 1 : 0;

        if (get_job(c, a.id, &job) < 0)
                return 1;
        result = json_object_get(job, "result");
        state = client_json_str(job, "state");
        if (!json_is_object(result)) {
                char s[32];

                (void) snprintf(s, sizeof(s), "%s", state ? state : "?");
                for (char *p = s; *p; p++)
                        if (*p < 0x20 || *p == 0x7f)
                                *p = '?';
                if (state && (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0))
                        log_error("logs: job %s has no output yet (it is %s); 'warren logs -f' "
                                  "follows it",
                                  a.id, s);
                else
                        log_error("logs: job %s has no output (it is %s)", a.id, s);
                return 1;
        }
        r = print_step(c, json_object_get(result, "build"), true);
        if (r >= 0)
                r = print_step(c, json_object_get(result, "run"), false);
        return r < 0 ? 1 : 0;
}

int cmd_result(int argc, char *argv[])
{
        struct jobs_args a = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *job = NULL;
        int r;

        r = parse_args("result", result_help, ACCEPT_JSON, argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0 || get_job(c, a.id, &job) < 0)
                return 1;
        return client_print_json(job) < 0 ? 1 : 0;
}

int cmd_cancel(int argc, char *argv[])
{
        struct jobs_args a = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *job = NULL;
        int r;

        r = parse_args("cancel", cancel_help, ACCEPT_JSON, argc, argv, &a);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        path = job_path(a.id, "");
        if (!path)
                return oom();
        if (client_call(c, "DELETE", path, NULL, &job, NULL) < 0)
                return 1;
        if (a.json && job)
                return client_print_json(job) < 0 ? 1 : 0;
        return 0;
}
