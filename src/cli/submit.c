/* SPDX-License-Identifier: MIT */
/* warren submit: a job from local files; with --wait, followed live to its end. */
#include <errno.h>
#include <math.h>
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

#define MAX_FILES   64                  /* the node's default cap */
#define MAX_FILE    ((size_t) 16 << 20) /* the node's default cap on content */
#define MAX_CONTENT ((size_t) 32 << 20) /* the node's default cap on a body */
#define MAX_STDIN   ((size_t) 8 << 20)
#define MAX_SIZE    (UINT64_C(1) << 50)
#define MAX_SECONDS 1e6

static const char help_text[] =
        "Usage: warren submit [OPTIONS] FILE... [-- ARG...]\n"
        "\n"
        "Submits a job and prints its id. One FILE is the job's source; several are its files\n"
        "(named by their base names). The app is --app, or follows from the first FILE's\n"
        "extension: .sh sh, .py python3, .c c, .cpp/.cc cpp, .js node. ARGs after '--' are\n"
        "the program's arguments, after those given with --arg.\n"
        "\n"
        "  --app NAME            the app that runs the job\n"
        "  --stdin FILE          the program's stdin ('-': this command's own)\n"
        "  --arg ARG             an argument for the program (repeatable)\n"
        "  --output NAME         a file of the job's directory to return (repeatable)\n"
        "  --input ID:PATH       data ID (see 'warren data') copied into the job's\n"
        "                        directory as PATH before it starts (repeatable)\n"
        "  --priority N          -100..100, higher first (default 0)\n"
        "Limits of the run step (sizes take K, M, G; times are seconds):\n"
        "  --memory SIZE  --pids N  --cpus N  --cpu-time S  --wall-time S\n"
        "  --output-limit SIZE  --file-size SIZE  --open-files N\n"
        "Waiting:\n"
        "  --wait                follow the job: its output as it comes (the build's on\n"
        "                        stderr), then exit with the job's exit code: 125 if the\n"
        "                        job failed or was cancelled, 1 if the node could not be\n"
        "                        reached or refused\n"
        "  --json                print the job as JSON (with --wait: the ended job, and not\n"
        "                        its output)\n"
        "  --url URL             the node's URL\n"
        "  --help                show this help\n";

/* The options that take() converts or collects. */
enum {
        OPT_ARG = 0x100,
        OPT_OUTPUT,
        OPT_INPUT,
        OPT_PRIORITY,
        OPT_MEMORY,
        OPT_PIDS,
        OPT_CPUS,
        OPT_CPU_TIME,
        OPT_WALL_TIME,
        OPT_OUTPUT_LIMIT,
        OPT_FILE_SIZE,
        OPT_OPEN_FILES,
};

struct submit_options {
        const char *app, *stdin_path, *url;
        const char *files[MAX_FILES];
        size_t n_files;
        json_t *args, *outputs, *limits, *inputs; /* owned */
        json_t *priority;                         /* owned; NULL: not given */
        bool wait, json;
};

static void submit_options_done(struct submit_options *o)
{
        json_decref(o->args);
        json_decref(o->outputs);
        json_decref(o->inputs);
        json_decref(o->limits);
        json_decref(o->priority);
}

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

static int bad_value(const char *opt, const char *value)
{
        log_error("submit: invalid value for --%s: '%s'", opt, value);
        return 2;
}

static int add_string(json_t *array, const char *opt, const char *s)
{
        if (json_array_append_new(array, json_string(s)) < 0) {
                log_error("submit: --%s '%s' is not valid UTF-8", opt, s);
                return 2;
        }
        return 0;
}

static int set_limit(json_t *limits, const char *name, json_t *v)
{
        if (!v || json_object_set_new(limits, name, v) < 0)
                return oom();
        return 0;
}

static int parse_limit(struct submit_options *o, int opt, const char *arg)
{
        uint64_t v;
        double d;
        char *end = NULL;

        switch (opt) {
        case OPT_MEMORY:
        case OPT_OUTPUT_LIMIT:
        case OPT_FILE_SIZE: {
                const char *name = opt == OPT_MEMORY         ? "memory"
                                   : opt == OPT_OUTPUT_LIMIT ? "output_limit"
                                                             : "file_size";
                if (parse_size(arg, MAX_SIZE, &v) < 0 || v == 0)
                        return bad_value(opt == OPT_MEMORY         ? "memory"
                                         : opt == OPT_OUTPUT_LIMIT ? "output-limit"
                                                                   : "file-size",
                                         arg);
                return set_limit(o->limits, name, json_integer((json_int_t) v));
        }
        case OPT_PIDS:
                if (parse_uint(arg, 1, UINT64_C(4194304), &v) < 0)
                        return bad_value("pids", arg);
                return set_limit(o->limits, "pids", json_integer((json_int_t) v));
        case OPT_OPEN_FILES:
                if (parse_uint(arg, 4, UINT64_C(1) << 20, &v) < 0)
                        return bad_value("open-files", arg);
                return set_limit(o->limits, "open_files", json_integer((json_int_t) v));
        case OPT_CPUS:
                errno = 0;
                d = strtod(arg, &end);
                if (errno || !end || *end || end == arg || !isfinite(d) || d < 0.01 || d > 4096)
                        return bad_value("cpus", arg);
                return set_limit(o->limits, "cpus", json_real(d));
        case OPT_CPU_TIME:
        case OPT_WALL_TIME:
                if (parse_seconds(arg, MAX_SECONDS, &v) < 0)
                        return bad_value(opt == OPT_CPU_TIME ? "cpu-time" : "wall-time", arg);
                d = ns_to_s(v);
                /* Whole seconds as integers: "10" reads better in the job than 10.0. */
                return set_limit(o->limits, opt == OPT_CPU_TIME ? "cpu_time" : "wall_time",
                                 v % UINT64_C(1000000000) == 0
                                         ? json_integer((json_int_t) (v / UINT64_C(1000000000)))
                                         : json_real(d));
        default:
                return 1;
        }
}

static int parse_priority(struct submit_options *o, const char *arg)
{
        bool neg = arg[0] == '-';
        uint64_t v;

        if (parse_uint(arg + (neg || arg[0] == '+'), 0, 100, &v) < 0)
                return bad_value("priority", arg);
        json_decref(o->priority);
        o->priority = json_integer(neg ? -(json_int_t) v : (json_int_t) v);
        return o->priority ? 0 : 1;
}

/* "ID:PATH" as {"data": ID, "path": PATH}; the node checks both. */
static int add_input(json_t *inputs, const char *value)
{
        const char *colon = strchr(value, ':');
        json_t *in;

        if (!colon || colon == value || colon[1] == '\0') {
                log_error("submit: --input is ID:PATH, not '%s'", value);
                return 2;
        }
        in = json_pack("{s:s%, s:s}", "data", value, (size_t) (colon - value), "path", colon + 1);
        if (!in) {
                log_error("submit: --input '%s' is not valid UTF-8", value);
                return 2;
        }
        if (json_array_append_new(inputs, in) < 0)
                return oom();
        return 0;
}

/* A value that is not simply kept, or an argument: a FILE, or after "--" an ARG. */
static int take(const char *cmd, int key, const char *value, void *userdata)
{
        struct submit_options *o = userdata;

        switch (key) {
        case CLIENT_ARG:
                if (o->n_files >= MAX_FILES) {
                        log_error("submit: too many files (at most %d)", MAX_FILES);
                        return 2;
                }
                o->files[o->n_files++] = value;
                return 0;
        case CLIENT_ARG_REST:
        case OPT_ARG:
                return add_string(o->args, "arg", value);
        case OPT_OUTPUT:
                return add_string(o->outputs, "output", value);
        case OPT_INPUT:
                return add_input(o->inputs, value);
        case OPT_PRIORITY:
                return parse_priority(o, value);
        default:
                return parse_limit(o, key, value);
        }
}

/* 0: go on; 1 (an error, said), 2 (a usage error, said), or -1: --help was shown. */
static int parse_options(int argc, char *argv[], struct submit_options *o)
{
        const struct client_option options[] = {
                {.name = "app", .value = &o->app},
                {.name = "stdin", .value = &o->stdin_path},
                {.name = "arg", .key = OPT_ARG},
                {.name = "output", .key = OPT_OUTPUT},
                {.name = "input", .key = OPT_INPUT},
                {.name = "priority", .key = OPT_PRIORITY},
                {.name = "memory", .key = OPT_MEMORY},
                {.name = "pids", .key = OPT_PIDS},
                {.name = "cpus", .key = OPT_CPUS},
                {.name = "cpu-time", .key = OPT_CPU_TIME},
                {.name = "wall-time", .key = OPT_WALL_TIME},
                {.name = "output-limit", .key = OPT_OUTPUT_LIMIT},
                {.name = "file-size", .key = OPT_FILE_SIZE},
                {.name = "open-files", .key = OPT_OPEN_FILES},
                {.name = "wait", .flag = &o->wait},
                {.name = "json", .flag = &o->json},
                {.name = "url", .value = &o->url},
                {},
        };
        int r;

        o->args = json_array();
        o->outputs = json_array();
        o->inputs = json_array();
        o->limits = json_object();
        if (!o->args || !o->outputs || !o->inputs || !o->limits) {
                return oom();
        }
        r = client_parse_args(
                &(const struct client_args){
                        .cmd = "submit",
                        .help = help_text,
                        .options = options,
                        .take = take,
                        .take_arg = take,
                        .userdata = o,
                },
                argc, argv);
        if (r != 0)
                return r;
        if (o->n_files == 0) {
                log_error("submit: no file given; see 'warren submit --help'");
                return 2;
        }
        return 0;
}

static const char *app_from_extension(const char *path)
{
        static const struct {
                const char *ext, *app;
        } table[] = {
                {".sh", "sh"},   {".py", "python3"}, {".c", "c"},
                {".cpp", "cpp"}, {".cc", "cpp"},     {".js", "node"},
        };

        const char *dot = strrchr(path, '.');

        if (!dot || strchr(dot, '/'))
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcmp(dot, table[i].ext) == 0)
                        return table[i].app;
        return NULL;
}

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

/* Reads a file into its JSON form (a string or {"base64"}); *total counts the bytes. */
static int file_json(const char *path, size_t *total, json_t **ret)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        json_t *v;

        if (client_read_file(path, MAX_FILE, &data, &len) < 0)
                return 1;
        *total += len;
        if (*total > MAX_CONTENT) {
                log_error("submit: the files are larger than %zu MiB together", MAX_CONTENT >> 20);
                return 1;
        }
        v = client_content_json(data, len);
        if (!v)
                return oom();
        *ret = v;
        return 0;
}

static int build_body(const struct submit_options *o, json_t **ret)
{
        _cleanup_json_ json_t *body = json_object();
        const char *app = o->app;
        size_t total = 0;
        json_t *v = NULL;
        int r;

        if (!body)
                return oom();
        if (!app)
                app = app_from_extension(o->files[0]);
        if (!app) {
                log_error("submit: cannot tell which app runs '%s'; use --app", o->files[0]);
                return 2;
        }
        if (json_object_set_new(body, "app", json_string(app)) < 0) {
                log_error("submit: invalid app '%s'", app);
                return 2;
        }
        if (o->n_files == 1) {
                r = file_json(o->files[0], &total, &v);
                if (r != 0)
                        return r;
                if (json_object_set_new(body, "source", v) < 0)
                        return oom();
        } else {
                json_t *files = json_object();

                if (!files || json_object_set_new(body, "files", files) < 0)
                        return oom();
                for (size_t i = 0; i < o->n_files; i++) {
                        const char *name = base_name(o->files[i]);

                        if (name[0] == '\0' || !utf8_valid(name, strlen(name))) {
                                log_error("submit: '%s' has no usable file name", o->files[i]);
                                return 2;
                        }
                        if (json_object_get(files, name)) {
                                log_error("submit: two files are named '%s'", name);
                                return 2;
                        }
                        r = file_json(o->files[i], &total, &v);
                        if (r != 0)
                                return r;
                        if (json_object_set_new(files, name, v) < 0)
                                return oom();
                }
        }
        if (o->stdin_path) {
                _cleanup_free_ char *data = NULL;
                size_t len;

                if (client_read_file(o->stdin_path, MAX_STDIN, &data, &len) < 0)
                        return 1;
                v = client_content_json(data, len);
                if (!v || json_object_set_new(body, "stdin", v) < 0)
                        return oom();
        }
        if ((json_array_size(o->args) > 0 && json_object_set(body, "args", o->args) < 0) ||
            (json_array_size(o->outputs) > 0 && json_object_set(body, "outputs", o->outputs) < 0) ||
            (json_array_size(o->inputs) > 0 && json_object_set(body, "inputs", o->inputs) < 0) ||
            (json_object_size(o->limits) > 0 && json_object_set(body, "limits", o->limits) < 0) ||
            (o->priority && json_object_set(body, "priority", o->priority) < 0))
                return oom();
        *ret = TAKE_PTR(body);
        return 0;
}

int cmd_submit(int argc, char *argv[])
{
        _cleanup_(submit_options_done) struct submit_options o = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *body = NULL, *job = NULL, *ended = NULL;
        const char *id;
        int r;

        r = parse_options(argc, argv, &o);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = build_body(&o, &body);
        if (r != 0)
                return r;
        if (client_new(o.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        if (client_call(c, "POST", "/api/v1/jobs", body, &job, NULL) < 0)
                return 1;
        id = client_json_str(job, "id");
        if (!id) {
                log_error("submit: the reply from %s has no job id", client_url(c));
                return 1;
        }
        if (!o.wait) {
                if (o.json)
                        return client_print_json(job) < 0 ? 1 : 0;
                (void) printf("%s\n", id);
                return fflush(stdout) == 0 ? 0 : 1;
        }

        r = client_follow_job(c, id, job, o.json ? CLIENT_FOLLOW_QUIET : CLIENT_FOLLOW_PROGRESS,
                              &ended);
        if (r < 0)
                return 1;
        if (o.json && client_print_json(ended) < 0)
                return 1;
        return client_job_exit_code(ended, !o.json);
}
