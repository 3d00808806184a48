/* SPDX-License-Identifier: MIT */

/*
 * Fuzzes jobspec_decode() (and through it json_parse_strict_limits() and the getters) with two
 * sets of bounds: the defaults, and tight ones that put the size and count checks within reach
 * of small inputs. Beyond crashes and leaks it checks what the decoder promises:
 *  - a failure has a known code, the status that goes with it, a one-line printable message;
 *  - a success respects every bound and rule in jobspec.h, and its content is the body's:
 *    text content byte for byte, base64 content re-encoding to exactly the body's string
 *    (the decoder is strict, so the encoding is unique).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobspec.h"
#include "common/json.h"
#include "fuzz.h"

static const struct jobspec_limits app_max = {
        .memory = UINT64_C(512) << 20,
        .pids = 64,
        .cpus = 2,
        .cpu_time_ns = UINT64_C(10) * 1000000000,
        .wall_time_ns = UINT64_C(20) * 1000000000,
        .output_limit = UINT64_C(1) << 20,
        .file_size = UINT64_C(1) << 20,
        .open_files = 128,
};

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

static void base64_encode(const char *in, size_t len, char *out)
{
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = (const unsigned char *) in;
        size_t o = 0;

        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) s[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t) s[i + 1] << 8;
                if (i + 2 < len)
                        v |= s[i + 2];
                out[o++] = alphabet[v >> 18 & 63];
                out[o++] = alphabet[v >> 12 & 63];
                out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
                out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
        }
        out[o] = '\0';
}

/* The decoded content is what the body says. */
static void check_content(const json_t *v, const char *data, size_t size)
{
        check(data != NULL);
        check(data[size] == '\0');
        if (json_is_string(v)) {
                check(json_string_length(v) == size);
                check(memcmp(json_string_value(v), data, size) == 0);
        } else {
                const json_t *b = json_object_get(v, "base64");
                char *enc = malloc((size + 2) / 3 * 4 + 1);

                check(enc != NULL);
                base64_encode(data, size, enc);
                check(json_is_string(b));
                check(strlen(enc) == json_string_length(b));
                check(strcmp(enc, json_string_value(b)) == 0);
                free(enc);
        }
}

static void check_name(const char *name)
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

static void check_spec(const struct jobspec *s, const struct jobspec_bounds *b, const uint8_t *data,
                       size_t size)
{
        const struct jobspec_limits *l = &s->limits;
        json_t *root, *files, *v;
        json_error_t e;
        uint64_t total = 0;
        size_t i, app_len;

        app_len = strlen(s->app);
        check(app_len >= 1 && app_len <= JOBSPEC_APP_NAME_MAX);
        check(strspn(s->app, "abcdefghijklmnopqrstuvwxyz0123456789") >= 1);
        check(strspn(s->app, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == app_len);

        check((s->source != NULL) != (s->files != NULL));
        check(s->source ? s->n_files == 0 : s->n_files >= 1 && s->n_files <= b->max_files);
        check(s->args != NULL && s->n_args <= b->max_args && s->args[s->n_args] == NULL);
        for (i = 0; i < s->n_args; i++)
                check(strlen(s->args[i]) <= b->max_arg_len);
        check(!s->stdin_data || s->stdin_size <= b->max_stdin);
        check(s->priority >= JOBSPEC_PRIORITY_MIN && s->priority <= JOBSPEC_PRIORITY_MAX);

        check(!!(l->set & JOBSPEC_LIMIT_MEMORY) == (l->memory != 0));
        check(!!(l->set & JOBSPEC_LIMIT_PIDS) == (l->pids != 0));
        check(!!(l->set & JOBSPEC_LIMIT_CPUS) == (l->cpus != 0));
        check(!!(l->set & JOBSPEC_LIMIT_CPU_TIME) == (l->cpu_time_ns != 0));
        check(!!(l->set & JOBSPEC_LIMIT_WALL_TIME) == (l->wall_time_ns != 0));
        check(!!(l->set & JOBSPEC_LIMIT_OUTPUT) == (l->output_limit != 0));
        check(!!(l->set & JOBSPEC_LIMIT_FILE_SIZE) == (l->file_size != 0));
        check(!!(l->set & JOBSPEC_LIMIT_OPEN_FILES) == (l->open_files != 0));
        check(l->memory <= app_max.memory && l->pids <= app_max.pids);
        check(l->cpus <= app_max.cpus && l->cpu_time_ns <= app_max.cpu_time_ns);
        check(l->wall_time_ns <= app_max.wall_time_ns && l->output_limit <= app_max.output_limit);
        check(l->file_size <= app_max.file_size && l->open_files <= app_max.open_files);
        check(!l->open_files || l->open_files >= JOBSPEC_OPEN_FILES_MIN);
        check(!l->cpus || l->cpus >= JOBSPEC_CPUS_MIN);

        /* Against the body, parsed again the same way. */
        root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &e);
        check(root != NULL);
        check(strcmp(json_string_value(json_object_get(root, "app")), s->app) == 0);
        if (s->source) {
                check(s->source_size <= b->max_content);
                check_content(json_object_get(root, "source"), s->source, s->source_size);
        } else {
                files = json_object_get(root, "files");
                check(json_object_size(files) == s->n_files);
                i = 0;
                for (void *it = json_object_iter(files); it;
                     it = json_object_iter_next(files, it), i++) {
                        check(strcmp(json_object_iter_key(it), s->files[i].name) == 0);
                        check_name(s->files[i].name);
                        check_content(json_object_iter_value(it), s->files[i].data,
                                      s->files[i].size);
                        total += s->files[i].size;
                }
                check(total <= b->max_content);
        }
        v = json_object_get(root, "stdin");
        check(!v == !s->stdin_data);
        if (v)
                check_content(v, s->stdin_data, s->stdin_size);
        v = json_object_get(root, "args");
        check(json_array_size(v) == s->n_args);
        for (i = 0; i < s->n_args; i++)
                check(strcmp(json_string_value(json_array_get(v, i)), s->args[i]) == 0);
        json_decref(root);
}

static void run(const uint8_t *data, size_t size, const struct jobspec_bounds *b)
{
        struct jobspec s = {};
        struct json_error err = {};
        int r;

        r = jobspec_decode((const char *) data, size, b, &s, &err);
        if (r < 0) {
                check_error(r, &err);
                /* Untouched on failure. */
                check(!s.app && !s.source && !s.files && !s.args && !s.stdin_data);
                return;
        }
        check(r == 0);
        check_spec(&s, b, data, size);
        jobspec_done(&s);
        check(!s.app && !s.files && !s.args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct jobspec_bounds def = JOBSPEC_BOUNDS_DEFAULT;
        const struct jobspec_bounds tight = {
                .max_body = 4096,
                .max_files = 3,
                .max_content = 48,
                .max_args = 4,
                .max_arg_len = 16,
                .max_stdin = 16,
                .app_max = &app_max,
        };

        def.app_max = &app_max;
        run(data, size, &def);
        run(data, size, &tight);
        return 0;
}
