/* SPDX-License-Identifier: MIT */
#include "jobspec.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

/*
 * The body is parsed by json_parse_strict_limits() (size, depth, value count, syntax, UTF-8,
 * duplicates, number overflow), then checked against field tables (unknown fields, types), then
 * each field is decoded into owned memory. Byte budgets are checked before anything is
 * allocated for content, from the lengths jansson already knows. File names reach messages only
 * through json_excerpt(): they are hostile.
 */

/* A path for messages: "files['<excerpt>']" plus a suffix. */
#define PATH_SIZE (JSON_EXCERPT_SIZE + 32)

static const struct json_field top_fields[] = {
        {"app", JSON_FIELD_STRING, true},
        {"source", JSON_FIELD_STRING_OR_OBJECT, false},
        {"files", JSON_FIELD_OBJECT, false},
        {"args", JSON_FIELD_ARRAY, false},
        {"stdin", JSON_FIELD_STRING_OR_OBJECT, false},
        {"limits", JSON_FIELD_OBJECT, false},
        {"priority", JSON_FIELD_INTEGER, false},
        {"outputs", JSON_FIELD_ARRAY, false},
        {"inputs", JSON_FIELD_ARRAY, false},
        {"replicas", JSON_FIELD_INTEGER, false},
        {"quorum", JSON_FIELD_INTEGER, false},
};

static const struct json_field input_fields[] = {
        {"data", JSON_FIELD_STRING, true},
        {"path", JSON_FIELD_STRING, true},
};

static const struct json_field limit_fields[] = {
        {"memory", JSON_FIELD_INTEGER_OR_STRING, false},
        {"pids", JSON_FIELD_INTEGER, false},
        {"cpus", JSON_FIELD_NUMBER, false},
        {"cpu_time", JSON_FIELD_NUMBER, false},
        {"wall_time", JSON_FIELD_NUMBER, false},
        {"output_limit", JSON_FIELD_INTEGER_OR_STRING, false},
        {"file_size", JSON_FIELD_INTEGER_OR_STRING, false},
        {"open_files", JSON_FIELD_INTEGER, false},
};

static const struct json_field content_fields[] = {
        {"base64", JSON_FIELD_STRING, true},
};

void jobspec_done(struct jobspec *spec)
{
        if (!spec)
                return;
        free(spec->app);
        free(spec->source);
        for (size_t i = 0; i < spec->n_files; i++) {
                free(spec->files[i].name);
                free(spec->files[i].data);
        }
        free(spec->files);
        if (spec->args)
                for (size_t i = 0; i < spec->n_args; i++)
                        free(spec->args[i]);
        free(spec->args);
        free(spec->stdin_data);
        if (spec->outputs)
                for (size_t i = 0; i < spec->n_outputs; i++)
                        free(spec->outputs[i]);
        free(spec->outputs);
        for (size_t i = 0; i < spec->n_inputs; i++) {
                free(spec->inputs[i].data);
                free(spec->inputs[i].path);
        }
        free(spec->inputs);
        *spec = (struct jobspec){};
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

static int no_memory(struct json_error *err)
{
        return json_error_set(err, -ENOMEM, JSON_ERR_INTERNAL, "out of memory");
}

/*
 * Strict RFC 4648 §4 base64: the standard alphabet, no white space, padded to a multiple of 4,
 * '=' only at the end, and the bits that padding leaves over zero (so each content has exactly
 * one encoding). Returns 0 and the decoded size, or -EINVAL and *bad_offset.
 */
static int base64_decoded_size(const char *s, size_t len, size_t *ret, size_t *bad_offset)
{
        size_t pad = 0;

        if (len % 4 != 0) {
                *bad_offset = len;
                return -EINVAL;
        }
        if (len > 0 && s[len - 1] == '=')
                pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < len - pad; i++)
                if (base64_digit(s[i], false) < 0) {
                        *bad_offset = i;
                        return -EINVAL;
                }
        if (pad == 2 && (base64_digit(s[len - 3], false) & 0x0f) != 0) {
                *bad_offset = len - 3;
                return -EINVAL;
        }
        if (pad == 1 && (base64_digit(s[len - 2], false) & 0x03) != 0) {
                *bad_offset = len - 2;
                return -EINVAL;
        }
        *ret = len / 4 * 3 - pad;
        return 0;
}

/* s must have passed base64_decoded_size(); out has room for its result. */
static void base64_decode(const char *s, size_t len, char *out)
{
        size_t o = 0;

        for (size_t i = 0; i < len; i += 4) {
                uint32_t v = 0;
                int n = 0;

                for (int k = 0; k < 4; k++) {
                        int d = s[i + k] == '=' ? 0 : base64_digit(s[i + k], false);

                        if (s[i + k] != '=')
                                n++;
                        v = v << 6 | (uint32_t) d;
                }
                out[o++] = (char) (v >> 16);
                if (n > 2)
                        out[o++] = (char) (v >> 8 & 0xff);
                if (n > 3)
                        out[o++] = (char) (v & 0xff);
        }
}

/*
 * Content: a string (taken as is) or {"base64": "..."}. *used bytes of cap are taken already
 * (by the other files); shared says so, for the message.
 */
static int decode_content(const json_t *v, const char *path, uint64_t cap, uint64_t *used,
                          bool shared, char **ret, size_t *ret_size, struct json_error *err)
{
        _cleanup_free_ char *data = NULL;
        char base64_path[PATH_SIZE + 8];
        bool is_base64 = json_is_object(v);
        const char *s;
        size_t len, size, bad = 0;
        int r;

        if (!is_base64) {
                s = json_string_value(v);
                size = len = json_string_length(v);
        } else {
                r = json_check_fields(v, path, content_fields, ELEMENTSOF(content_fields), err);
                if (r < 0)
                        return r;
                v = json_object_get(v, "base64");
                s = json_string_value(v);
                len = json_string_length(v);
                (void) snprintf(base64_path, sizeof(base64_path), "%s.base64", path);
                r = base64_decoded_size(s, len, &size, &bad);
                if (r < 0)
                        return json_error_set(err, r, JSON_ERR_INVALID_VALUE,
                                              "'%s' is not strict base64 (at offset %zu)",
                                              base64_path, bad);
        }
        if (*used > cap || size > cap - *used) {
                if (shared)
                        return json_error_set(err, -E2BIG, JSON_ERR_TOO_LARGE,
                                              "'%s' takes the files over their maximum of "
                                              "%" PRIu64 " bytes together",
                                              path, cap);
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_LARGE,
                                      "'%s' is %zu bytes, over the maximum of %" PRIu64, path, size,
                                      cap);
        }

        data = malloc(size + 1);
        if (!data)
                return no_memory(err);
        if (is_base64)
                base64_decode(s, len, data);
        else
                memcpy(data, s, size);
        data[size] = '\0';

        *used += size;
        *ret_size = size;
        *ret = TAKE_PTR(data);
        return 0;
}

static bool app_name_valid(const char *s, size_t len)
{
        if (len < 1 || len > JOBSPEC_APP_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

                if (i > 0)
                        ok = ok || c == '_' || c == '.' || c == '-';
                if (!ok)
                        return false;
        }
        return true;
}

const char *jobspec_file_name_problem(const char *s, size_t len)
{
        if (len == 0)
                return "must not be empty";
        if (len > JOBSPEC_FILE_NAME_MAX)
                return "is longer than 255 bytes";
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
                return "must not be '.' or '..'";
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == '/')
                        return "must not contain '/'";
                if (c < 0x20 || c == 0x7f)
                        return "must not contain control characters";
                /* C1 controls, U+0080..U+009F: 0xc2 0x80..0x9f in UTF-8 (jansson checked it). */
                if (c == 0xc2 && i + 1 < len && (unsigned char) s[i + 1] <= 0x9f)
                        return "must not contain control characters";
        }
        return NULL;
}

static int decode_files(const json_t *files, const struct jobspec_bounds *bounds, struct jobspec *s,
                        struct json_error *err)
{
        uint64_t used = 0;
        size_t n = json_object_size(files);
        int r;

        if (n == 0)
                return json_error_set(err, -EINVAL, JSON_ERR_OUT_OF_RANGE,
                                      "'files' must have at least one entry");
        if (n > bounds->max_files)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_MANY,
                                      "'files' has %zu entries, over the maximum of %zu", n,
                                      bounds->max_files);
        s->files = calloc(n, sizeof(*s->files));
        if (!s->files)
                return no_memory(err);

        for (void *it = json_object_iter((json_t *) files); it;
             it = json_object_iter_next((json_t *) files, it)) {
                const char *key = json_object_iter_key(it);
                size_t key_len = json_object_iter_key_len(it);
                const json_t *v = json_object_iter_value(it);
                struct jobspec_file *f = &s->files[s->n_files];
                char text[JSON_EXCERPT_SIZE], path[PATH_SIZE];
                const char *problem;

                (void) json_excerpt(text, sizeof(text), key, key_len, JSON_EXCERPT_MAX);
                (void) snprintf(path, sizeof(path), "files['%s']", text);
                problem = jobspec_file_name_problem(key, key_len);
                if (problem)
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "file name '%s' %s", text, problem);
                if (!json_is_string(v) && !json_is_object(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'%s' must be a string or an object", path);

                f->name = memdup_nul(key, key_len);
                if (!f->name)
                        return no_memory(err);
                /* Counted now so that jobspec_done() frees the name if the content fails. */
                s->n_files++;
                r = decode_content(v, path, bounds->max_content, &used, true, &f->data, &f->size,
                                   err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int decode_args(const json_t *args, const struct jobspec_bounds *bounds, struct jobspec *s,
                       struct json_error *err)
{
        size_t n = args ? json_array_size(args) : 0;

        if (n > bounds->max_args)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_MANY,
                                      "'args' has %zu entries, over the maximum of %zu", n,
                                      bounds->max_args);
        s->args = calloc(n + 1, sizeof(*s->args));
        if (!s->args)
                return no_memory(err);

        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(args, i);

                if (!json_is_string(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'args[%zu]' must be a string", i);
                if (json_string_length(v) > bounds->max_arg_len)
                        return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                              "'args[%zu]' is longer than %zu bytes", i,
                                              bounds->max_arg_len);
                /* No NUL: jansson refuses \u0000 without JSON_ALLOW_NUL. */
                s->args[i] = memdup_nul(json_string_value(v), json_string_length(v));
                if (!s->args[i])
                        return no_memory(err);
                s->n_args++;
        }
        return 0;
}

static int get_seconds(const json_t *root, const char *name, uint64_t *ret, struct json_error *err)
{
        double v = 0;
        uint64_t ns;
        int r;

        r = json_get_number(root, name, 0, JOBSPEC_SECONDS_MAX, 0, &v, err);
        if (r <= 0)
                return r;
        ns = (uint64_t) llround(v * 1e9);
        if (ns == 0)
                return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                      "'%s' must be more than 0 and at most %g seconds", name,
                                      JOBSPEC_SECONDS_MAX);
        *ret = ns;
        return 1;
}

static int get_count(const json_t *root, const char *name, uint64_t min, uint64_t max,
                     uint64_t *ret, struct json_error *err)
{
        int64_t v = 0;
        int r;

        r = json_get_int(root, name, (int64_t) min, (int64_t) max, 0, &v, err);
        if (r <= 0)
                return r;
        *ret = (uint64_t) v;
        return 1;
}

/* "field.name", for the dotted paths of json.h's getters and their error messages. */
static const char *limit_path(char *buf, size_t size, const char *field, const char *name)
{
        (void) snprintf(buf, size, "%s.%s", field, name);
        return buf;
}

int jobspec_decode_limits(const json_t *root, const char *field, struct jobspec_limits *l,
                          struct json_error *err)
{
        const json_t *limits = json_object_get(root, field);
        char path[64];
        int r;

        if (!limits)
                return 0;
        r = json_check_fields(limits, field, limit_fields, ELEMENTSOF(limit_fields), err);
        if (r < 0)
                return r;

        r = json_get_size(root, limit_path(path, sizeof(path), field, "memory"), 1,
                          JOBSPEC_SIZE_MAX, 0, &l->memory, err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_MEMORY : 0;
        r = get_count(root, limit_path(path, sizeof(path), field, "pids"), 1, JOBSPEC_PIDS_MAX,
                      &l->pids, err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_PIDS : 0;
        r = json_get_number(root, limit_path(path, sizeof(path), field, "cpus"), JOBSPEC_CPUS_MIN,
                            JOBSPEC_CPUS_MAX, 0, &l->cpus, err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_CPUS : 0;
        r = get_seconds(root, limit_path(path, sizeof(path), field, "cpu_time"), &l->cpu_time_ns,
                        err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_CPU_TIME : 0;
        r = get_seconds(root, limit_path(path, sizeof(path), field, "wall_time"), &l->wall_time_ns,
                        err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_WALL_TIME : 0;
        r = json_get_size(root, limit_path(path, sizeof(path), field, "output_limit"), 1,
                          JOBSPEC_SIZE_MAX, 0, &l->output_limit, err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_OUTPUT : 0;
        r = json_get_size(root, limit_path(path, sizeof(path), field, "file_size"), 1,
                          JOBSPEC_SIZE_MAX, 0, &l->file_size, err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_FILE_SIZE : 0;
        r = get_count(root, limit_path(path, sizeof(path), field, "open_files"),
                      JOBSPEC_OPEN_FILES_MIN, JOBSPEC_OPEN_FILES_MAX, &l->open_files, err);
        if (r < 0)
                return r;
        l->set |= r > 0 ? JOBSPEC_LIMIT_OPEN_FILES : 0;
        return 0;
}

static int above_max(struct json_error *err, const char *name, const char *value, const char *max)
{
        return json_error_set(err, -ERANGE, JSON_ERR_LIMIT_EXCEEDED,
                              "'limits.%s' is %s, above the app's maximum of %s", name, value, max);
}

int jobspec_check_limits(const struct jobspec *spec, const struct jobspec_limits *app_max,
                         struct json_error *err)
{
        const struct jobspec_limits *l = &spec->limits;

        const struct {
                const char *name;
                unsigned bit;
                uint64_t value, max;
                const char *unit; /* NULL: nanoseconds, shown as seconds */
        } counts[] = {
                {"memory", JOBSPEC_LIMIT_MEMORY, l->memory, app_max->memory, " bytes"},
                {"pids", JOBSPEC_LIMIT_PIDS, l->pids, app_max->pids, ""},
                {"cpu_time", JOBSPEC_LIMIT_CPU_TIME, l->cpu_time_ns, app_max->cpu_time_ns, NULL},
                {"wall_time", JOBSPEC_LIMIT_WALL_TIME, l->wall_time_ns, app_max->wall_time_ns,
                 NULL},
                {"output_limit", JOBSPEC_LIMIT_OUTPUT, l->output_limit, app_max->output_limit,
                 " bytes"},
                {"file_size", JOBSPEC_LIMIT_FILE_SIZE, l->file_size, app_max->file_size, " bytes"},
                {"open_files", JOBSPEC_LIMIT_OPEN_FILES, l->open_files, app_max->open_files, ""},
        };

        char value[48], max[48];

        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                if (!(l->set & counts[i].bit) || counts[i].value <= counts[i].max)
                        continue;
                if (counts[i].unit) {
                        (void) snprintf(value, sizeof(value), "%" PRIu64 "%s", counts[i].value,
                                        counts[i].unit);
                        (void) snprintf(max, sizeof(max), "%" PRIu64 "%s", counts[i].max,
                                        counts[i].unit);
                } else {
                        (void) snprintf(value, sizeof(value), "%g seconds",
                                        (double) counts[i].value / 1e9);
                        (void) snprintf(max, sizeof(max), "%g seconds",
                                        (double) counts[i].max / 1e9);
                }
                return above_max(err, counts[i].name, value, max);
        }
        if ((l->set & JOBSPEC_LIMIT_CPUS) && !(l->cpus <= app_max->cpus)) {
                (void) snprintf(value, sizeof(value), "%g cpus", l->cpus);
                (void) snprintf(max, sizeof(max), "%g cpus", app_max->cpus);
                return above_max(err, "cpus", value, max);
        }
        return 0;
}

static int decode_outputs(const json_t *outputs, struct jobspec *s, struct json_error *err)
{
        size_t n = json_array_size(outputs);

        if (!outputs)
                return 0;
        if (n > JOBSPEC_MAX_OUTPUTS)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_MANY,
                                      "'outputs' has more than %d entries", JOBSPEC_MAX_OUTPUTS);
        s->outputs = calloc(n + 1, sizeof(char *));
        if (!s->outputs)
                return no_memory(err);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(outputs, i);
                const char *problem;
                char text[JSON_EXCERPT_SIZE];

                if (!json_is_string(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'outputs[%zu]' must be a string", i);
                problem = jobspec_file_name_problem(json_string_value(v), json_string_length(v));
                if (problem) {
                        (void) json_excerpt(text, sizeof(text), json_string_value(v),
                                            json_string_length(v), JSON_EXCERPT_MAX);
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "output name '%s' %s", text, problem);
                }
                for (size_t k = 0; k < i; k++)
                        if (strcmp(s->outputs[k], json_string_value(v)) == 0)
                                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                                      "'outputs[%zu]' repeats an earlier name", i);
                s->outputs[i] = memdup_nul(json_string_value(v), json_string_length(v));
                if (!s->outputs[i])
                        return no_memory(err);
                s->n_outputs++;
        }
        return 0;
}

static bool data_id_valid(const char *s, size_t len)
{
        if (len != JOBSPEC_DATA_ID_LEN)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static int decode_inputs(const json_t *inputs, struct jobspec *s, struct json_error *err)
{
        size_t n = json_array_size(inputs);

        if (!inputs)
                return 0;
        if (n > JOBSPEC_MAX_INPUTS)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_MANY,
                                      "'inputs' has more than %d entries", JOBSPEC_MAX_INPUTS);
        s->inputs = calloc(n ? n : 1, sizeof(*s->inputs));
        if (!s->inputs)
                return no_memory(err);
        for (size_t i = 0; i < n; i++) {
                const json_t *v = json_array_get(inputs, i), *data, *path;
                struct jobspec_input *in = &s->inputs[s->n_inputs];
                char where[32], text[JSON_EXCERPT_SIZE];
                const char *problem;
                int r;

                (void) snprintf(where, sizeof(where), "inputs[%zu]", i);
                if (!json_is_object(v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'%s' must be an object", where);
                r = json_check_fields(v, where, input_fields, ELEMENTSOF(input_fields), err);
                if (r < 0)
                        return r;
                data = json_object_get(v, "data");
                path = json_object_get(v, "path");
                if (!data_id_valid(json_string_value(data), json_string_length(data)))
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "'%s.data' is not a data id (32 lowercase hex "
                                              "digits)",
                                              where);
                problem = jobspec_file_name_problem(json_string_value(path),
                                                    json_string_length(path));
                if (problem) {
                        (void) json_excerpt(text, sizeof(text), json_string_value(path),
                                            json_string_length(path), JSON_EXCERPT_MAX);
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "input path '%s' %s", text, problem);
                }
                for (size_t k = 0; k < s->n_inputs; k++)
                        if (strcmp(s->inputs[k].path, json_string_value(path)) == 0)
                                return json_error_set(err, -EINVAL, JSON_ERR_CONFLICTING,
                                                      "'%s.path' repeats an earlier input's",
                                                      where);
                for (size_t k = 0; k < s->n_files; k++)
                        if (strcmp(s->files[k].name, json_string_value(path)) == 0)
                                return json_error_set(err, -EINVAL, JSON_ERR_CONFLICTING,
                                                      "'%s.path' is also a name in 'files'", where);
                in->data = memdup_nul(json_string_value(data), json_string_length(data));
                in->path = memdup_nul(json_string_value(path), json_string_length(path));
                s->n_inputs++;
                if (!in->data || !in->path)
                        return no_memory(err);
        }
        return 0;
}

/*
 * A valid body has at most ~20 + 2 * files + args values (base64 objects count twice); beyond
 * some slack for small mistakes, a body can only be invalid, and jansson need not build it.
 */
static size_t max_values(const struct jobspec_bounds *bounds)
{
        size_t files = bounds->max_files, args = bounds->max_args;
        size_t cap = SIZE_MAX / 8;

        if (files > cap || args > cap)
                return cap;
        return 4096 + 2 * (files + args) + 3 * JOBSPEC_MAX_INPUTS;
}

int jobspec_decode(const char *body, size_t len, const struct jobspec_bounds *bounds,
                   struct jobspec *ret, struct json_error *err)
{
        _cleanup_(jobspec_done) struct jobspec s = {};
        _cleanup_json_ json_t *root = NULL;
        const struct json_limits limits = {
                .max_bytes = bounds->max_body,
                .max_depth = JSON_DEFAULT_MAX_DEPTH,
                .max_values = max_values(bounds),
        };
        const json_t *source, *files, *v;
        const char *app;
        size_t app_len;
        uint64_t used;
        int64_t priority, replicas, quorum;
        int r;

        r = json_parse_strict_limits(body, len, &limits, &root, err);
        if (r < 0)
                return r;
        r = json_check_fields(root, NULL, top_fields, ELEMENTSOF(top_fields), err);
        if (r < 0)
                return r;

        r = json_get_string(root, "app", JOBSPEC_APP_NAME_MAX, &app, &app_len, err);
        if (r < 0)
                return r;
        if (!app_name_valid(app, app_len)) {
                char text[JSON_EXCERPT_SIZE];

                (void) json_excerpt(text, sizeof(text), app, app_len, JSON_EXCERPT_MAX);
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                      "'app' must match [a-z0-9][a-z0-9_.-]{0,63}, not '%s'", text);
        }
        s.app = memdup_nul(app, app_len);
        if (!s.app)
                return no_memory(err);

        source = json_object_get(root, "source");
        files = json_object_get(root, "files");
        if (source && files)
                return json_error_set(err, -EINVAL, JSON_ERR_CONFLICTING,
                                      "give either 'source' or 'files', not both");
        if (!source && !files)
                return json_error_set(err, -EINVAL, JSON_ERR_MISSING_FIELD,
                                      "missing field 'source' or 'files'");
        if (source) {
                used = 0;
                r = decode_content(source, "source", bounds->max_content, &used, false, &s.source,
                                   &s.source_size, err);
        } else {
                r = decode_files(files, bounds, &s, err);
        }
        if (r < 0)
                return r;

        r = decode_args(json_object_get(root, "args"), bounds, &s, err);
        if (r < 0)
                return r;

        v = json_object_get(root, "stdin");
        if (v) {
                used = 0;
                r = decode_content(v, "stdin", bounds->max_stdin, &used, false, &s.stdin_data,
                                   &s.stdin_size, err);
                if (r < 0)
                        return r;
        }

        r = jobspec_decode_limits(root, "limits", &s.limits, err);
        if (r < 0)
                return r;
        if (bounds->app_max) {
                r = jobspec_check_limits(&s, bounds->app_max, err);
                if (r < 0)
                        return r;
        }

        r = json_get_int(root, "priority", JOBSPEC_PRIORITY_MIN, JOBSPEC_PRIORITY_MAX, 0, &priority,
                         err);
        if (r < 0)
                return r;
        s.priority = (int) priority;

        /* Replication: a majority of the replicas must agree, so that two disjoint sets of
         * workers can never both win. */
        r = json_get_int(root, "replicas", 1, JOBSPEC_REPLICAS_MAX, 1, &replicas, err);
        if (r < 0)
                return r;
        r = json_get_int(root, "quorum", 1, JOBSPEC_REPLICAS_MAX, replicas / 2 + 1, &quorum, err);
        if (r < 0)
                return r;
        if (quorum > replicas || quorum <= replicas / 2)
                return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                      "'quorum' must be a majority of the %d replicas: %d..%d, "
                                      "not %d",
                                      (int) replicas, (int) (replicas / 2 + 1), (int) replicas,
                                      (int) quorum);
        s.replicas = (int) replicas;
        s.quorum = (int) quorum;

        r = decode_outputs(json_object_get(root, "outputs"), &s, err);
        if (r < 0)
                return r;

        r = decode_inputs(json_object_get(root, "inputs"), &s, err);
        if (r < 0)
                return r;

        *ret = s;
        s = (struct jobspec){};
        return 0;
}
