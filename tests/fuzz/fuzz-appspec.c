/* SPDX-License-Identifier: MIT */

/*
 * Fuzzes app_spec_decode() (and through it json_parse_strict_limits(), jobspec_decode_limits()
 * and the getters). Beyond crashes and leaks it checks what the decoder promises:
 *  - a failure has a known code, the status that goes with it, a one-line printable message,
 *    and leaves *ret untouched;
 *  - a success obeys every rule of app.h and docs/api.md (names, normalised rootfs, templates,
 *    environment, counts and lengths, defaults within their maxima);
 *  - it round-trips: decode(to_json(x)) == x, and to_json() of that is the same JSON;
 *  - its templates expand within APP_ARGV_MAX + the job's arguments, argv[0] never a template.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "fuzz.h"
#include "node/app.h"

static void check_error(int r, const struct json_error *err)
{
        int id;

        check(r < 0);
        for (id = 0; id < _JSON_ERR_MAX; id++)
                if (strcmp(err->code, json_error_code_string(id)) == 0)
                        break;
        check(id < _JSON_ERR_MAX);
        check(err->status == json_error_code_status(id));
        check(err->message[0] != '\0');
        check(strlen(err->message) < sizeof(err->message));
        for (const char *p = err->message; *p; p++)
                check((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f);
}

static void check_file_name(const char *name)
{
        size_t len = strlen(name);

        check(len >= 1 && len <= JOBSPEC_FILE_NAME_MAX);
        check(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
        check(!strchr(name, '/'));
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) name[i];

                check(c >= 0x20 && c != 0x7f);
                check(!(c == 0xc2 && i + 1 < len && (unsigned char) name[i + 1] <= 0x9f));
        }
}

static void check_rootfs(const char *p)
{
        size_t len = strlen(p);

        check(len >= 2 && len <= APP_PATH_MAX);
        check(p[0] == '/' && p[len - 1] != '/');
        check(!strstr(p, "//"));
        for (const char *c = p; c; c = strchr(c + 1, '/')) {
                const char *end = strchr(c + 1, '/');
                size_t n = end ? (size_t) (end - c - 1) : strlen(c + 1);

                check(n >= 1);
                check(!(n == 1 && c[1] == '.'));
                check(!(n == 2 && c[1] == '.' && c[2] == '.'));
        }
}

static void check_step(const struct app_step *s, bool required)
{
        bool seen_args = false;

        if (!s->argv) {
                check(!required && s->argc == 0);
                return;
        }
        check(s->argc >= 1 && s->argc <= APP_ARGV_MAX);
        check(s->argv[s->argc] == NULL);
        for (size_t i = 0; i < s->argc; i++) {
                const char *a = s->argv[i];
                bool is_args = strcmp(a, "{args}") == 0, is_source = strcmp(a, "{source}") == 0;

                check(a[0] != '\0' && strlen(a) <= APP_ARG_LEN_MAX);
                check(i > 0 || (!is_args && !is_source));
                check(is_args || is_source || (!strstr(a, "{args}") && !strstr(a, "{source}")));
                check(!(is_args && seen_args));
                seen_args = seen_args || is_args;
        }
}

static void check_limits(const struct jobspec_limits *l)
{
        check(!!(l->set & JOBSPEC_LIMIT_MEMORY) == (l->memory != 0));
        check(!!(l->set & JOBSPEC_LIMIT_PIDS) == (l->pids != 0));
        check(!!(l->set & JOBSPEC_LIMIT_CPUS) == (l->cpus != 0));
        check(!!(l->set & JOBSPEC_LIMIT_CPU_TIME) == (l->cpu_time_ns != 0));
        check(!!(l->set & JOBSPEC_LIMIT_WALL_TIME) == (l->wall_time_ns != 0));
        check(!!(l->set & JOBSPEC_LIMIT_OUTPUT) == (l->output_limit != 0));
        check(!!(l->set & JOBSPEC_LIMIT_FILE_SIZE) == (l->file_size != 0));
        check(!!(l->set & JOBSPEC_LIMIT_OPEN_FILES) == (l->open_files != 0));
        check(l->memory <= JOBSPEC_SIZE_MAX && l->output_limit <= JOBSPEC_SIZE_MAX);
        check(l->file_size <= JOBSPEC_SIZE_MAX && l->pids <= JOBSPEC_PIDS_MAX);
        check(!l->cpus || (l->cpus >= JOBSPEC_CPUS_MIN && l->cpus <= JOBSPEC_CPUS_MAX));
        check(!l->open_files ||
              (l->open_files >= JOBSPEC_OPEN_FILES_MIN && l->open_files <= JOBSPEC_OPEN_FILES_MAX));
}

/* Where both are set, the default is within the maximum. */
static void check_within(const struct jobspec_limits *l, const struct jobspec_limits *max)
{
        unsigned both = l->set & max->set;

        check(!(both & JOBSPEC_LIMIT_MEMORY) || l->memory <= max->memory);
        check(!(both & JOBSPEC_LIMIT_PIDS) || l->pids <= max->pids);
        check(!(both & JOBSPEC_LIMIT_CPUS) || l->cpus <= max->cpus);
        check(!(both & JOBSPEC_LIMIT_CPU_TIME) || l->cpu_time_ns <= max->cpu_time_ns);
        check(!(both & JOBSPEC_LIMIT_WALL_TIME) || l->wall_time_ns <= max->wall_time_ns);
        check(!(both & JOBSPEC_LIMIT_OUTPUT) || l->output_limit <= max->output_limit);
        check(!(both & JOBSPEC_LIMIT_FILE_SIZE) || l->file_size <= max->file_size);
        check(!(both & JOBSPEC_LIMIT_OPEN_FILES) || l->open_files <= max->open_files);
}

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
        if (!a || !b)
                return !a && !b && na == nb;
        if (na != nb)
                return false;
        for (size_t i = 0; i <= na; i++)
                if (a[i] ? !b[i] || strcmp(a[i], b[i]) != 0 : b[i] != NULL)
                        return false;
        return true;
}

static bool limits_equal(const struct jobspec_limits *a, const struct jobspec_limits *b)
{
        return a->set == b->set && a->memory == b->memory && a->pids == b->pids &&
               a->cpus == b->cpus && a->cpu_time_ns == b->cpu_time_ns &&
               a->wall_time_ns == b->wall_time_ns && a->output_limit == b->output_limit &&
               a->file_size == b->file_size && a->open_files == b->open_files;
}

static void check_same(const struct app_spec *a, const struct app_spec *b)
{
        check(strcmp(a->name, b->name) == 0);
        check(strcmp(a->description, b->description) == 0);
        check(!a->rootfs == !b->rootfs);
        check(!a->rootfs || strcmp(a->rootfs, b->rootfs) == 0);
        check(strcmp(a->source_file, b->source_file) == 0);
        check(strv_equal(a->build.argv, a->build.argc, b->build.argv, b->build.argc));
        check(strv_equal(a->run.argv, a->run.argc, b->run.argv, b->run.argc));
        check(strv_equal(a->env, a->n_env, b->env, b->n_env));
        check(limits_equal(&a->limits, &b->limits));
        check(limits_equal(&a->max_limits, &b->max_limits));
        check(limits_equal(&a->build_limits, &b->build_limits));
}

static void check_expand(const struct app_spec *app)
{
        static char *args[] = {"{args}", "{source}", "x", NULL};
        const struct jobspec job = {.args = args, .n_args = 3};
        const struct app_step *steps[] = {&app->build, &app->run};

        for (size_t s = 0; s < 2; s++) {
                char **v = NULL;
                size_t n = 0;
                int r;

                if (!steps[s]->argv)
                        continue;
                r = app_expand_argv(steps[s], app, &job, &v);
                check(r == 0);
                while (v[n])
                        n++;
                check(n <= APP_ARGV_MAX + job.n_args);
                check(strcmp(v[0], steps[s]->argv[0]) == 0);
                strv_free(v);
        }
}

static void check_spec(const struct app_spec *app)
{
        size_t len = strlen(app->name);

        check(len >= 1 && len <= 64);
        check(app->name[0] >= 'a' && app->name[0] <= 'z');
        check(strspn(app->name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len);
        check(app->description && strlen(app->description) <= APP_DESCRIPTION_MAX);
        if (app->rootfs)
                check_rootfs(app->rootfs);
        check_file_name(app->source_file);
        check_step(&app->build, false);
        check_step(&app->run, true);
        if (app->env) {
                check(app->n_env <= APP_ENV_MAX && app->env[app->n_env] == NULL);
                for (size_t i = 0; i < app->n_env; i++) {
                        const char *e = app->env[i];
                        size_t name = strcspn(e, "=");

                        check(e[name] == '=' && name >= 1 && strlen(e) <= APP_ARG_LEN_MAX);
                        check(!(e[0] >= '0' && e[0] <= '9'));
                        check(strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789_") == name);
                        for (size_t k = 0; k < i; k++)
                                check(strncmp(app->env[k], e, name + 1) != 0);
                }
        } else {
                check(app->n_env == 0);
        }
        check_limits(&app->limits);
        check_limits(&app->max_limits);
        check_limits(&app->build_limits);
        check_within(&app->limits, &app->max_limits);
        check_expand(app);
}

static void check_round_trip(const struct app_spec *app)
{
        struct app_spec again = {};
        struct json_error err = {};
        json_t *j, *j2;
        char *text;

        j = app_spec_to_json(app);
        check(j != NULL);
        text = json_dumps(j, JSON_COMPACT);
        check(text != NULL);
        check(app_spec_decode(text, strlen(text), &again, &err) == 0);
        check_same(app, &again);
        j2 = app_spec_to_json(&again);
        check(j2 != NULL);
        check(json_equal(j, j2));
        json_decref(j2);
        json_decref(j);
        free(text);
        app_spec_done(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct app_spec app, untouched;
        struct json_error err = {};
        int r;

        memset(&app, 0x5a, sizeof(app));
        memcpy(&untouched, &app, sizeof(app));
        r = app_spec_decode((const char *) data, size, &app, &err);
        if (r < 0) {
                check_error(r, &err);
                check(memcmp(&app, &untouched, sizeof(app)) == 0);
                return 0;
        }
        check(r == 0);
        check_spec(&app);
        check_round_trip(&app);
        app_spec_done(&app);
        check(!app.name && !app.run.argv && !app.env);
        return 0;
}
