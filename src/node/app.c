/* SPDX-License-Identifier: MIT */
#include "node/app.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "store/store.h"

/*
 * Theory of operation.
 *
 * Decoding. The JSON goes through json_parse_strict_limits() (size, depth, value count, syntax,
 * UTF-8, duplicates), then the output-only fields and a null rootfs are taken out of the tree
 * (they are the only members that may be null: json_check_fields() never accepts null), then
 * every object is checked against its field table, then each field is decoded into owned memory.
 * A failure leaves *ret untouched, as jobspec_decode() does.
 *
 * Templates. An argv element is either literal or exactly "{args}" / "{source}": a template
 * inside a longer element would let the job's arguments be glued onto an option, which the
 * app's author cannot have meant to allow. "{args}" appears at most once, so an expanded argv
 * has at most APP_ARGV_MAX + the job's arguments elements; argv[0] is always literal (the job
 * never chooses the program).
 *
 * The work directory. After a run, everything in it was written by the sandbox, which may have
 * left symlinks (to /etc/shadow), fifos (a read that blocks forever), sockets, directories
 * without permissions, huge files, trees deeper than any fd budget. Every open is beneath a
 * directory fd with O_NOFOLLOW, reads are bounded and of regular files only, and the recursive
 * removal never follows a link: it opens each directory with O_DIRECTORY | O_NOFOLLOW beneath its
 * parent's fd, and unlinks by name beneath the fd it just read. Its recursion holds one fd (and a
 * DIR buffer) per level, so it stops at APP_CLEAR_MAX_DEPTH levels; rather than give up on a
 * deeper tree (which would leave the job's files on the node for ever), a directory found at
 * that depth is renamed up into the top directory under a fresh name and removed from there on
 * a further pass. Every such move makes a subtree shallower and nothing deeper, so the passes
 * end.
 */

/* Room for a path in messages: "build.argv[63]" and the like. */
#define PATH_SIZE 64

/* Levels of directories app_workdir_clear() descends before moving a subtree up. */
#define APP_CLEAR_MAX_DEPTH 64

/* A valid spec has ~20 + 2 * APP_ARGV_MAX + APP_ENV_MAX + 3 * 8 values; the rest is slack. */
#define APP_SPEC_MAX_VALUES ((size_t) 2048)

static const struct json_field top_fields[] = {
        {"name", JSON_FIELD_STRING, true},        {"description", JSON_FIELD_STRING, false},
        {"rootfs", JSON_FIELD_STRING, false},     {"source_file", JSON_FIELD_STRING, true},
        {"build", JSON_FIELD_OBJECT, false},      {"run", JSON_FIELD_OBJECT, true},
        {"env", JSON_FIELD_ARRAY, false},         {"limits", JSON_FIELD_OBJECT, false},
        {"max_limits", JSON_FIELD_OBJECT, false}, {"build_limits", JSON_FIELD_OBJECT, false},
};

static const struct json_field step_fields[] = {
        {"argv", JSON_FIELD_ARRAY, true},
};

/* What a GET adds: accepted (a string or null) so that a GET's body can be PUT back, and dropped.
 */
static const char *const output_only_fields[] = {
        "owner", "group", "mode", "created_at", "updated_at",
};

#define TEMPLATE_ARGS   "{args}"
#define TEMPLATE_SOURCE "{source}"

static int no_memory(struct json_error *err)
{
        return json_error_set(err, -ENOMEM, JSON_ERR_INTERNAL, "out of memory");
}

static char *memdup_nul(const char *s, size_t len)
{
        char *p = malloc(len + 1);

        if (!p)
                return NULL;
        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static void step_done(struct app_step *step)
{
        strv_free(step->argv);
        *step = (struct app_step){};
}

void app_spec_done(struct app_spec *app)
{
        if (!app)
                return;
        free(app->name);
        free(app->description);
        free(app->rootfs);
        free(app->source_file);
        step_done(&app->build);
        step_done(&app->run);
        strv_free(app->env);
        *app = (struct app_spec){};
}

/* The members that may be null, and those that are output only, leave the tree here. */
static int strip_fields(json_t *root, struct json_error *err)
{
        json_t *v;

        for (size_t i = 0; i < ELEMENTSOF(output_only_fields); i++) {
                v = json_object_get(root, output_only_fields[i]);
                if (!v)
                        continue;
                if (!json_is_string(v) && !json_is_null(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'%s' must be a string or null",
                                              output_only_fields[i]);
                (void) json_object_del(root, output_only_fields[i]);
        }
        v = json_object_get(root, "rootfs");
        if (v && json_is_null(v))
                (void) json_object_del(root, "rootfs");
        return 0;
}

static int decode_name(const json_t *root, struct app_spec *s, struct json_error *err)
{
        const char *name;
        size_t len;
        int r;

        r = json_get_string(root, "name", STORE_NAME_MAX, &name, &len, err);
        if (r < 0)
                return r;
        if (!store_name_valid(name)) {
                char text[JSON_EXCERPT_SIZE];

                (void) json_excerpt(text, sizeof(text), name, len, JSON_EXCERPT_MAX);
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'name' must be 1..%d bytes of [a-z0-9_.-] starting with "
                                      "a letter, not '%s'",
                                      STORE_NAME_MAX, text);
        }
        s->name = memdup_nul(name, len);
        return s->name ? 0 : no_memory(err);
}

/*
 * An absolute path whose components are neither "." nor "..": repeated and trailing slashes are
 * dropped, so that the result is normalised. "/" itself is refused: the host's whole tree as a
 * root is not a profile (null is the host profile).
 */
static int decode_rootfs(const json_t *root, struct app_spec *s, struct json_error *err)
{
        _cleanup_free_ char *out = NULL;
        const char *path;
        size_t len, o = 0;
        int r;

        r = json_get_string(root, "rootfs", APP_PATH_MAX, &path, &len, err);
        if (r <= 0)
                return r;
        if (len == 0 || path[0] != '/')
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'rootfs' must be an absolute path or null");
        out = malloc(len + 1);
        if (!out)
                return no_memory(err);
        for (size_t i = 0; i < len;) {
                size_t start, n;

                while (i < len && path[i] == '/')
                        i++;
                start = i;
                while (i < len && path[i] != '/')
                        i++;
                n = i - start;
                if (n == 0)
                        break;
                if ((n == 1 && path[start] == '.') ||
                    (n == 2 && path[start] == '.' && path[start + 1] == '.'))
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "'rootfs' must not contain '.' or '..' components");
                out[o++] = '/';
                memcpy(out + o, path + start, n);
                o += n;
        }
        if (o == 0)
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'rootfs' must not be '/' (null is the host profile)");
        out[o] = '\0';
        s->rootfs = TAKE_PTR(out);
        return 0;
}

static int decode_source_file(const json_t *root, struct app_spec *s, struct json_error *err)
{
        const char *name, *problem;
        size_t len;
        int r;

        r = json_get_string(root, "source_file", SIZE_MAX, &name, &len, err);
        if (r < 0)
                return r;
        problem = jobspec_file_name_problem(name, len);
        if (problem) {
                char text[JSON_EXCERPT_SIZE];

                (void) json_excerpt(text, sizeof(text), name, len, JSON_EXCERPT_MAX);
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE, "'source_file' '%s' %s",
                                      text, problem);
        }
        s->source_file = memdup_nul(name, len);
        return s->source_file ? 0 : no_memory(err);
}

/* Checks one element of an argv template; i is its index, *seen_args whether "{args}" was seen. */
static int check_template_arg(const char *path, size_t i, const char *a, size_t len,
                              bool *seen_args, struct json_error *err)
{
        bool is_args = strcmp(a, TEMPLATE_ARGS) == 0;
        bool is_source = strcmp(a, TEMPLATE_SOURCE) == 0;

        if (len == 0)
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'%s[%zu]' must not be empty", path, i);
        if (len > APP_ARG_LEN_MAX)
                return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                      "'%s[%zu]' is longer than %d bytes", path, i,
                                      APP_ARG_LEN_MAX);
        if (i == 0 && (is_args || is_source))
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'%s[0]' must name the program, not be a template", path);
        if (!is_args && !is_source && (strstr(a, TEMPLATE_ARGS) || strstr(a, TEMPLATE_SOURCE)))
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'%s[%zu]': '" TEMPLATE_ARGS "' and '" TEMPLATE_SOURCE
                                      "' must be whole elements",
                                      path, i);
        if (is_args && *seen_args)
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'%s[%zu]': '" TEMPLATE_ARGS "' may appear only once", path,
                                      i);
        if (is_args)
                *seen_args = true;
        return 0;
}

static int decode_step(const json_t *root, const char *field, struct app_step *step,
                       struct json_error *err)
{
        const json_t *obj = json_object_get(root, field), *argv;
        char path[PATH_SIZE];
        bool seen_args = false;
        size_t n;
        int r;

        if (!obj)
                return 0;
        r = json_check_fields(obj, field, step_fields, ELEMENTSOF(step_fields), err);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof(path), "%s.argv", field);
        argv = json_object_get(obj, "argv");
        n = json_array_size(argv);
        if (n == 0)
                return json_error_set(err, -EINVAL, JSON_ERR_OUT_OF_RANGE,
                                      "'%s' must have at least one element", path);
        if (n > APP_ARGV_MAX)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_MANY,
                                      "'%s' has %zu elements, over the maximum of %d", path, n,
                                      APP_ARGV_MAX);
        step->argv = calloc(n + 1, sizeof(char *));
        if (!step->argv)
                return no_memory(err);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(argv, i);

                if (!json_is_string(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'%s[%zu]' must be a string", path, i);
                r = check_template_arg(path, i, json_string_value(v), json_string_length(v),
                                       &seen_args, err);
                if (r < 0)
                        return r;
                step->argv[i] = memdup_nul(json_string_value(v), json_string_length(v));
                if (!step->argv[i])
                        return no_memory(err);
                step->argc++;
        }
        return 0;
}

static bool env_name_char(char c, bool first)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
               (!first && c >= '0' && c <= '9');
}

/* The length of the NAME of "NAME=value", or 0 if e is not of that form. */
static size_t env_name_len(const char *e, size_t len)
{
        size_t i;

        for (i = 0; i < len && e[i] != '='; i++)
                if (!env_name_char(e[i], i == 0))
                        return 0;
        return i < len ? i : 0;
}

static int decode_env(const json_t *root, struct app_spec *s, struct json_error *err)
{
        const json_t *env = json_object_get(root, "env");
        size_t n = json_array_size(env);

        if (!env)
                return 0;
        if (n > APP_ENV_MAX)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_MANY,
                                      "'env' has %zu entries, over the maximum of %d", n,
                                      APP_ENV_MAX);
        s->env = calloc(n + 1, sizeof(char *));
        if (!s->env)
                return no_memory(err);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(env, i);
                const char *e;
                size_t len, name_len;

                if (!json_is_string(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'env[%zu]' must be a string", i);
                e = json_string_value(v);
                len = json_string_length(v);
                if (len > APP_ARG_LEN_MAX)
                        return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                              "'env[%zu]' is longer than %d bytes", i,
                                              APP_ARG_LEN_MAX);
                name_len = env_name_len(e, len);
                if (name_len == 0)
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "'env[%zu]' must be NAME=value, NAME of "
                                              "[A-Za-z_][A-Za-z0-9_]*",
                                              i);
                for (size_t k = 0; k < i; k++)
                        if (strncmp(s->env[k], e, name_len + 1) == 0)
                                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                                      "'env[%zu]' sets a variable that "
                                                      "'env[%zu]' sets already",
                                                      i, k);
                s->env[i] = memdup_nul(e, len);
                if (!s->env[i])
                        return no_memory(err);
                s->n_env++;
        }
        return 0;
}

/* Each default that has a maximum is within it (limit_exceeded, 422, as for a job). */
static int check_defaults(const struct app_spec *s, struct json_error *err)
{
        struct jobspec probe = {.limits = s->limits};

        probe.limits.set &= s->max_limits.set;
        return jobspec_check_limits(&probe, &s->max_limits, err);
}

int app_spec_decode(const char *json, size_t len, struct app_spec *ret, struct json_error *err)
{
        _cleanup_(app_spec_done) struct app_spec s = {};
        _cleanup_json_ json_t *root = NULL;
        static const struct json_limits limits = {
                .max_bytes = APP_SPEC_MAX_BYTES,
                .max_depth = JSON_DEFAULT_MAX_DEPTH,
                .max_values = APP_SPEC_MAX_VALUES,
        };
        const char *description;
        size_t description_len;
        int r;

        r = json_parse_strict_limits(json, len, &limits, &root, err);
        if (r < 0)
                return r;
        r = strip_fields(root, err);
        if (r < 0)
                return r;
        r = json_check_fields(root, NULL, top_fields, ELEMENTSOF(top_fields), err);
        if (r < 0)
                return r;

        r = decode_name(root, &s, err);
        if (r < 0)
                return r;
        r = json_get_string(root, "description", APP_DESCRIPTION_MAX, &description,
                            &description_len, err);
        if (r < 0)
                return r;
        s.description = description ? memdup_nul(description, description_len) : strdup("");
        if (!s.description)
                return no_memory(err);
        r = decode_rootfs(root, &s, err);
        if (r < 0)
                return r;
        r = decode_source_file(root, &s, err);
        if (r < 0)
                return r;
        r = decode_step(root, "build", &s.build, err);
        if (r < 0)
                return r;
        r = decode_step(root, "run", &s.run, err);
        if (r < 0)
                return r;
        r = decode_env(root, &s, err);
        if (r < 0)
                return r;

        r = jobspec_decode_limits(root, "limits", &s.limits, err);
        if (r < 0)
                return r;
        r = jobspec_decode_limits(root, "max_limits", &s.max_limits, err);
        if (r < 0)
                return r;
        r = jobspec_decode_limits(root, "build_limits", &s.build_limits, err);
        if (r < 0)
                return r;
        r = check_defaults(&s, err);
        if (r < 0)
                return r;

        *ret = s;
        s = (struct app_spec){};
        return 0;
}

static json_t *strv_to_json(char *const *v, size_t n)
{
        _cleanup_json_ json_t *a = json_array();

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

static json_t *step_to_json(const struct app_step *step)
{
        _cleanup_json_ json_t *o = json_object();

        if (!o || json_object_set_new(o, "argv", strv_to_json(step->argv, step->argc)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Whole seconds as an integer (as people write them), others as a real that reads back exactly. */
static json_t *seconds_to_json(uint64_t ns)
{
        if (ns % 1000000000 == 0)
                return json_integer((json_int_t) (ns / 1000000000));
        return json_real((double) ns / 1e9);
}

static json_t *limits_to_json(const struct jobspec_limits *l)
{
        _cleanup_json_ json_t *o = json_object();

        if (!o)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_MEMORY) &&
            json_object_set_new(o, "memory", json_integer((json_int_t) l->memory)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_PIDS) &&
            json_object_set_new(o, "pids", json_integer((json_int_t) l->pids)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_CPUS) && json_object_set_new(o, "cpus", json_real(l->cpus)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_CPU_TIME) &&
            json_object_set_new(o, "cpu_time", seconds_to_json(l->cpu_time_ns)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_WALL_TIME) &&
            json_object_set_new(o, "wall_time", seconds_to_json(l->wall_time_ns)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_OUTPUT) &&
            json_object_set_new(o, "output_limit", json_integer((json_int_t) l->output_limit)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_FILE_SIZE) &&
            json_object_set_new(o, "file_size", json_integer((json_int_t) l->file_size)) < 0)
                return NULL;
        if ((l->set & JOBSPEC_LIMIT_OPEN_FILES) &&
            json_object_set_new(o, "open_files", json_integer((json_int_t) l->open_files)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_t *app_spec_to_json(const struct app_spec *app)
{
        _cleanup_json_ json_t *o = json_object();

        if (!o)
                return NULL;
        /* json_object_set_new() takes (and on failure drops) a NULL value as a failure. */
        if (json_object_set_new(o, "name", json_string(app->name)) < 0 ||
            json_object_set_new(o, "description",
                                json_string(app->description ? app->description : "")) < 0 ||
            json_object_set_new(o, "rootfs", app->rootfs ? json_string(app->rootfs) : json_null()) <
                    0 ||
            json_object_set_new(o, "source_file", json_string(app->source_file)) < 0)
                return NULL;
        if (app->build.argv && json_object_set_new(o, "build", step_to_json(&app->build)) < 0)
                return NULL;
        if (json_object_set_new(o, "run", step_to_json(&app->run)) < 0)
                return NULL;
        if (app->env && json_object_set_new(o, "env", strv_to_json(app->env, app->n_env)) < 0)
                return NULL;
        if (json_object_set_new(o, "limits", limits_to_json(&app->limits)) < 0 ||
            json_object_set_new(o, "max_limits", limits_to_json(&app->max_limits)) < 0 ||
            json_object_set_new(o, "build_limits", limits_to_json(&app->build_limits)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ---- the ready-made apps ---- */

#define BUILTIN_ENV \
        "\"env\": [\"PATH=/usr/local/bin:/usr/bin:/bin\", \"LANG=C.UTF-8\", \"HOME=/tmp\"]"

#define BUILTIN_MAX_LIMITS                                                                    \
        "\"max_limits\": {\"memory\": \"1G\", \"pids\": 256, \"cpus\": 2, \"cpu_time\": 30, " \
        "\"wall_time\": 60, \"output_limit\": \"64M\", \"file_size\": \"256M\", "             \
        "\"open_files\": 1024}"

#define BUILTIN_LIMITS(memory)                                                       \
        "\"limits\": {\"memory\": \"" memory "\", \"pids\": 64, \"wall_time\": 10, " \
        "\"cpu_time\": 5, \"output_limit\": \"1M\", \"file_size\": \"16M\"}"

/* Compilers: more memory and time than a run; a larger file for the linker's output. */
#define BUILTIN_BUILD_LIMITS                                                         \
        "\"build_limits\": {\"memory\": \"512M\", \"pids\": 64, \"wall_time\": 30, " \
        "\"cpu_time\": 20, \"output_limit\": \"1M\", \"file_size\": \"64M\"}"

static const char *const builtins[] = {
        "{\"name\": \"sh\", \"description\": \"POSIX shell script (/bin/sh)\", "
        "\"rootfs\": null, \"source_file\": \"main.sh\", "
        "\"run\": {\"argv\": [\"/bin/sh\", \"{source}\", \"{args}\"]}, " BUILTIN_ENV
        ", " BUILTIN_LIMITS("256M") ", " BUILTIN_MAX_LIMITS "}",

        "{\"name\": \"python3\", \"description\": \"Python 3\", "
        "\"rootfs\": null, \"source_file\": \"main.py\", "
        "\"run\": {\"argv\": [\"python3\", \"{source}\", \"{args}\"]}, " BUILTIN_ENV
        ", " BUILTIN_LIMITS("256M") ", " BUILTIN_MAX_LIMITS "}",

        "{\"name\": \"c\", \"description\": \"C (gcc -std=gnu17 -O2), built then run\", "
        "\"rootfs\": null, \"source_file\": \"main.c\", "
        "\"build\": {\"argv\": [\"gcc\", \"-std=gnu17\", \"-O2\", \"-pipe\", \"-o\", \"main\", "
        "\"{source}\", \"-lm\"]}, "
        "\"run\": {\"argv\": [\"./main\", \"{args}\"]}, " BUILTIN_ENV
        ", " BUILTIN_LIMITS("256M") ", " BUILTIN_MAX_LIMITS ", " BUILTIN_BUILD_LIMITS "}",

        "{\"name\": \"cpp\", \"description\": \"C++ (g++ -std=gnu++17 -O2), built then run\", "
        "\"rootfs\": null, \"source_file\": \"main.cpp\", "
        "\"build\": {\"argv\": [\"g++\", \"-std=gnu++17\", \"-O2\", \"-pipe\", \"-o\", \"main\", "
        "\"{source}\"]}, "
        "\"run\": {\"argv\": [\"./main\", \"{args}\"]}, " BUILTIN_ENV
        ", " BUILTIN_LIMITS("256M") ", " BUILTIN_MAX_LIMITS ", " BUILTIN_BUILD_LIMITS "}",

        /* V8 reserves and touches more than a C program: a larger default memory. */
        "{\"name\": \"node\", \"description\": \"JavaScript (Node.js)\", "
        "\"rootfs\": null, \"source_file\": \"main.js\", "
        "\"run\": {\"argv\": [\"node\", \"{source}\", \"{args}\"]}, " BUILTIN_ENV
        ", " BUILTIN_LIMITS("512M") ", " BUILTIN_MAX_LIMITS "}",
};

size_t app_builtin_count(void)
{
        return ELEMENTSOF(builtins);
}

const char *app_builtin_json(size_t i)
{
        return i < ELEMENTSOF(builtins) ? builtins[i] : NULL;
}

/* ---- turning a job into steps ---- */

int app_run_limits(const struct app_spec *app, const struct jobspec *job,
                   struct jobspec_limits *ret, struct json_error *err)
{
        struct jobspec_limits l = app->limits;
        const struct jobspec_limits *j;
        int r;

        if (job) {
                j = &job->limits;
                r = jobspec_check_limits(job, &app->max_limits, err);
                if (r < 0)
                        return r;
                if (j->set & JOBSPEC_LIMIT_MEMORY)
                        l.memory = j->memory;
                if (j->set & JOBSPEC_LIMIT_PIDS)
                        l.pids = j->pids;
                if (j->set & JOBSPEC_LIMIT_CPUS)
                        l.cpus = j->cpus;
                if (j->set & JOBSPEC_LIMIT_CPU_TIME)
                        l.cpu_time_ns = j->cpu_time_ns;
                if (j->set & JOBSPEC_LIMIT_WALL_TIME)
                        l.wall_time_ns = j->wall_time_ns;
                if (j->set & JOBSPEC_LIMIT_OUTPUT)
                        l.output_limit = j->output_limit;
                if (j->set & JOBSPEC_LIMIT_FILE_SIZE)
                        l.file_size = j->file_size;
                if (j->set & JOBSPEC_LIMIT_OPEN_FILES)
                        l.open_files = j->open_files;
                l.set |= j->set;
        }
        *ret = l;
        return 0;
}

int app_expand_argv(const struct app_step *step, const struct app_spec *app,
                    const struct jobspec *job, char ***ret)
{
        char **v = NULL;
        size_t n_args = job ? job->n_args : 0, n = 0, o = 0;

        if (!step || !step->argv || step->argc == 0 || !app || !app->source_file)
                return -EINVAL;
        for (size_t i = 0; i < step->argc; i++) {
                size_t add = strcmp(step->argv[i], TEMPLATE_ARGS) == 0 ? n_args : 1;

                if (add > SIZE_MAX / 2 - n)
                        return -E2BIG;
                n += add;
        }
        if (step->argc > APP_ARGV_MAX || n_args > SIZE_MAX / 2 || n > APP_ARGV_MAX + n_args)
                return -E2BIG;

        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < step->argc; i++) {
                const char *a = step->argv[i];

                if (strcmp(a, TEMPLATE_ARGS) == 0) {
                        for (size_t k = 0; k < n_args; k++) {
                                v[o] = strdup(job->args[k]);
                                if (!v[o++])
                                        goto nomem;
                        }
                        continue;
                }
                v[o] = strdup(strcmp(a, TEMPLATE_SOURCE) == 0 ? app->source_file : a);
                if (!v[o++])
                        goto nomem;
        }
        *ret = v;
        return 0;

nomem:
        strv_free(v);
        return -ENOMEM;
}

void app_step_config(const struct app_spec *app, const struct jobspec_limits *limits, char **argv,
                     const char *workdir, struct sandbox_mount *mounts, struct sandbox_config *cfg)
{
        mounts[0] = (struct sandbox_mount){
                .kind = SANDBOX_BIND_RW,
                .src = workdir,
                .dst = APP_WORKDIR,
        };
        *cfg = (struct sandbox_config){
                .rootfs = app->rootfs,
                .mounts = mounts,
                .n_mounts = 1,
                .chdir = APP_WORKDIR,
                .argv = argv,
                .envp = app->env,
                .memory = limits->memory,
                .pids = limits->pids,
                .cpus = limits->cpus,
                .cpu_time_ns = limits->cpu_time_ns,
                .wall_time_ns = limits->wall_time_ns,
                .output_limit = limits->output_limit,
                .file_size = limits->file_size,
                .open_files = limits->open_files,
                .stdin_fd = -1,
                .stdout_fd = -1,
                .stderr_fd = -1,
        };
}

/* ---- the work directory ---- */

static int write_new_file(int dirfd, const char *name, const char *data, size_t size)
{
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!name || jobspec_file_name_problem(name, strlen(name)))
                return -EINVAL;
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        /* Readable by the sandbox's user whatever our umask is. */
        if (fchmod(fd, 0644) < 0)
                return -errno;
        r = write_full(fd, data, size);
        if (r < 0)
                return r;
        if (close(TAKE_FD(fd)) < 0)
                return -errno;
        return 0;
}

int app_workdir_populate(int dirfd, const struct app_spec *app, const struct jobspec *job)
{
        int r;

        if (job->source)
                return write_new_file(dirfd, app->source_file, job->source, job->source_size);
        if (!job->files)
                return -EINVAL;
        for (size_t i = 0; i < job->n_files; i++) {
                r = write_new_file(dirfd, job->files[i].name, job->files[i].data,
                                   job->files[i].size);
                if (r < 0)
                        return r;
        }
        return 0;
}

int app_workdir_read(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t cap, len = 0;

        if (!name || jobspec_file_name_problem(name, strlen(name)))
                return -EINVAL;
        /* O_NONBLOCK: opening a fifo does not wait for a writer (and nothing reads it). */
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                /* ENXIO: a socket. */
                return errno == ENXIO ? -EINVAL : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size < 0 || (uint64_t) st.st_size > max)
                return -EFBIG;

        /*
         * The size is a hint: the file may still change (a process that escaped the kill would
         * be a bug elsewhere, but the bound must not depend on it). Read until end of file,
         * growing the buffer up to max + 1 bytes, the +1 to tell "exactly max" from "more".
         */
        cap = (size_t) st.st_size + 1;
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        size_t limit = max < SIZE_MAX - 1 ? max + 1 : SIZE_MAX - 1;
                        size_t next = cap < limit / 2 ? cap * 2 : limit;
                        char *p;

                        if (cap >= limit)
                                return -EFBIG;
                        p = realloc(buf, next + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        cap = next;
                }
                n = read_full(fd, buf + len, cap - len);
                if (n < 0)
                        return (int) n;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
                if (len < cap)
                        break;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* Opens the directory name beneath dfd, without following a link, making it ours to empty. */
static int open_subdir(int dfd, const char *name)
{
        int fd;

        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && (errno == EACCES || errno == EPERM)) {
                /*
                 * The sandbox's user took its own permissions away (mode 0000). glibc does
                 * AT_SYMLINK_NOFOLLOW through an O_PATH fd (or fchmodat2()): a link is refused,
                 * never followed.
                 */
                if (fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        }
        if (fd < 0)
                return -errno;
        return fd;
}

/* Moves the directory name (beneath dfd) into the top directory under a name of its own. */
static int move_up(int dfd, const char *name, int topfd)
{
        char to[64];

        for (unsigned i = 0; i < 4096; i++) {
                (void) snprintf(to, sizeof(to), ".warren-deep-%u", i);
                if (renameat2(dfd, name, topfd, to, RENAME_NOREPLACE) == 0)
                        return 0;
                if (errno != EEXIST)
                        return -errno;
        }
        return -ELOOP;
}

static int clear_dir(int fd, unsigned depth, int topfd, bool *moved);

/* Removes the entry name beneath dfd, whatever it is. */
static int remove_entry(int dfd, const char *name, unsigned char type, unsigned depth, int topfd,
                        bool *moved)
{
        _cleanup_close_ int sub = -EBADF;
        struct stat st;
        int r;

        if (type == DT_UNKNOWN) {
                if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        if (type != DT_DIR) {
                if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EISDIR)
                        return -errno;
                /* d_type was stale: it is a directory after all. */
        }
        if (depth + 1 >= APP_CLEAR_MAX_DEPTH) {
                r = move_up(dfd, name, topfd);
                if (r < 0)
                        return r;
                *moved = true;
                return 0;
        }
        sub = open_subdir(dfd, name);
        if (sub < 0)
                return sub == -ENOENT ? 0 : sub;
        r = clear_dir(TAKE_FD(sub), depth + 1, topfd, moved);
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* Empties the directory open at fd (taken: closed on return). */
static int clear_dir(int fd, unsigned depth, int topfd, bool *moved)
{
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_close_ int owned = fd;
        struct stat st;
        struct dirent *de;
        int r;

        /*
         * Writable and searchable by its owner, so that its entries can go when we are not root;
         * if that fails, unlinkat() says what matters. The top directory is the caller's: left
         * as it is.
         */
        if (depth > 0 && fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
                (void) fchmod(fd, (st.st_mode & 07777) | 0700);
        d = fdopendir(owned);
        if (!d)
                return -errno;
        (void) TAKE_FD(owned);

        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return -errno;
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                r = remove_entry(dirfd(d), de->d_name, de->d_type, depth, topfd, moved);
                if (r < 0)
                        return r;
        }
        return 0;
}

int app_workdir_clear(int dirfd)
{
        bool moved;
        int r;

        do {
                int fd;

                /*
                 * A fresh open file description: a dup would share dirfd's offset (readdir
                 * would start wherever the caller's stream stopped) and fdopendir() cannot use
                 * an O_PATH fd. If "." cannot be opened (its mode denies us), dup after all.
                 */
                fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
                        if (fd < 0)
                                return -errno;
                        if (lseek(fd, 0, SEEK_SET) < 0) {
                                r = -errno;
                                (void) close(fd);
                                return r;
                        }
                }
                moved = false;
                r = clear_dir(fd, 0, dirfd, &moved);
                if (r < 0)
                        return r;
        } while (moved);
        return 0;
}
