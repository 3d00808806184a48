/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "node/app.h"
#include "unit.h"

#define NS_PER_S UINT64_C(1000000000)

/* A spec with the required fields and `extra` (",\"field\":..." or "") after them. */
#define MINIMAL "\"name\":\"x\",\"source_file\":\"main.c\",\"run\":{\"argv\":[\"./main\"]}"

static void check_message(const char *m, const char *file, int line)
{
        _assert_true(m[0] != '\0', "message not empty", file, line);
        for (const char *p = m; *p; p++)
                _assert_true((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f,
                             "message is printable ASCII", file, line);
}

/* Decodes s[0..len), expecting code and status (and msg, if given); *ret must be untouched. */
static void fails_at(const char *s, size_t len, const char *code, int status, const char *msg,
                     const char *file, int line)
{
        struct app_spec app;
        struct json_error err = {};
        unsigned char before[sizeof(app)];
        int r;

        memset(&app, 0xa5, sizeof(app));
        memcpy(before, &app, sizeof(app));
        r = app_spec_decode(s, len, &app, &err);
        if (r >= 0)
                print_error("unexpected success: %.200s\n", s);
        _assert_true(r < 0, "decode fails", file, line);
        _assert_string_equal(err.code, code, file, line);
        _assert_int_equal(err.status, status, file, line);
        if (msg)
                _assert_string_equal(err.message, msg, file, line);
        _assert_true(memcmp(before, &app, sizeof(app)) == 0, "ret untouched", file, line);
        check_message(err.message, file, line);
}

#define fails(lit, code, status) \
        fails_at(lit, sizeof(lit) - 1, code, status, NULL, __FILE__, __LINE__)
#define fails_msg(lit, code, status, msg) \
        fails_at(lit, sizeof(lit) - 1, code, status, msg, __FILE__, __LINE__)
#define fails_s(s, code, status, msg) fails_at(s, strlen(s), code, status, msg, __FILE__, __LINE__)

_printf_(1, 2) static char *body(const char *fmt, ...)
{
        char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        return s;
}

static char *repeat(char c, size_t n)
{
        char *s = malloc(n + 1);

        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

/* `n` JSON strings "<prefix><i><suffix>" joined by commas. */
static char *string_list_suffix(const char *prefix, size_t n, const char *suffix)
{
        char *s = strdup("");

        assert_non_null(s);
        for (size_t i = 0; i < n; i++) {
                char *t = body("%s%s\"%s%zu%s\"", s, i ? "," : "", prefix, i, suffix);

                free(s);
                s = t;
        }
        return s;
}

static char *string_list(const char *prefix, size_t n)
{
        return string_list_suffix(prefix, n, "");
}

static void decode_ok_at(const char *s, size_t len, struct app_spec *app, const char *file,
                         int line)
{
        struct json_error err = {};
        int r;

        r = app_spec_decode(s, len, app, &err);
        if (r < 0)
                print_error("unexpected failure: %s: %s\n", err.code, err.message);
        _assert_int_equal(r, 0, file, line);
}

#define decode_ok(s, app) decode_ok_at(s, strlen(s), app, __FILE__, __LINE__)

/* Decodes "{MINIMAL<extra>}". */
#define decode_extra(extra, app)                                          \
        do {                                                              \
                _cleanup_free_ char *_s = body("{" MINIMAL "%s}", extra); \
                decode_ok_at(_s, strlen(_s), app, __FILE__, __LINE__);    \
        } while (0)
#define fails_extra(extra, code, status, msg)                                    \
        do {                                                                     \
                _cleanup_free_ char *_s = body("{" MINIMAL "%s}", extra);        \
                fails_at(_s, strlen(_s), code, status, msg, __FILE__, __LINE__); \
        } while (0)

static void job_decode(const char *s, struct jobspec *job)
{
        struct jobspec_bounds b = JOBSPEC_BOUNDS_DEFAULT;
        struct json_error err = {};
        int r;

        r = jobspec_decode(s, strlen(s), &b, job, &err);
        if (r < 0)
                print_error("job: %s: %s\n", err.code, err.message);
        assert_int_equal(r, 0);
}

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
        if (!a || !b)
                return !a && !b && na == 0 && nb == 0;
        if (na != nb || a[na] || b[nb])
                return false;
        for (size_t i = 0; i < na; i++)
                if (strcmp(a[i], b[i]) != 0)
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

static bool app_equal(const struct app_spec *a, const struct app_spec *b)
{
        return strcmp(a->name, b->name) == 0 && strcmp(a->description, b->description) == 0 &&
               (a->rootfs ? b->rootfs && strcmp(a->rootfs, b->rootfs) == 0 : !b->rootfs) &&
               strcmp(a->source_file, b->source_file) == 0 &&
               strv_equal(a->build.argv, a->build.argc, b->build.argv, b->build.argc) &&
               strv_equal(a->run.argv, a->run.argc, b->run.argv, b->run.argc) &&
               (!a->env == !b->env) && strv_equal(a->env, a->n_env, b->env, b->n_env) &&
               limits_equal(&a->limits, &b->limits) &&
               limits_equal(&a->max_limits, &b->max_limits) &&
               limits_equal(&a->build_limits, &b->build_limits);
}

/* decode(to_json(app)) == app, and to_json is stable. */
static void check_round_trip(const struct app_spec *app)
{
        _cleanup_(app_spec_done) struct app_spec again = {};
        _cleanup_json_ json_t *j = NULL, *j2 = NULL;
        _cleanup_free_ char *text = NULL;

        j = app_spec_to_json(app);
        assert_non_null(j);
        text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        decode_ok(text, &again);
        if (!app_equal(app, &again))
                fail_msg("round trip differs: %s", text);
        j2 = app_spec_to_json(&again);
        assert_non_null(j2);
        assert_true(json_equal(j, j2));
}

static void test_minimal(void **state)
{
        _cleanup_(app_spec_done) struct app_spec app = {};

        decode_ok("{" MINIMAL "}", &app);
        assert_string_equal(app.name, "x");
        assert_string_equal(app.description, "");
        assert_null(app.rootfs);
        assert_string_equal(app.source_file, "main.c");
        assert_null(app.build.argv);
        assert_int_equal(app.build.argc, 0);
        assert_int_equal(app.run.argc, 1);
        assert_string_equal(app.run.argv[0], "./main");
        assert_null(app.run.argv[1]);
        assert_null(app.env);
        assert_int_equal(app.n_env, 0);
        assert_int_equal(app.limits.set, 0);
        assert_int_equal(app.max_limits.set, 0);
        assert_int_equal(app.build_limits.set, 0);
        check_round_trip(&app);

        app_spec_done(&app);
        assert_null(app.name);
        app_spec_done(&app); /* twice is fine */
        app_spec_done(NULL);
}

static void test_full(void **state)
{
        _cleanup_(app_spec_done) struct app_spec app = {};
        const char *s =
                "{\"name\":\"c\",\"description\":\"C (gcc), built then run \\u00e9\","
                "\"rootfs\":\"/srv/roots/debian\",\"source_file\":\"main.c\","
                "\"build\":{\"argv\":[\"gcc\",\"-O2\",\"-o\",\"main\",\"{source}\",\"-lm\"]},"
                "\"run\":{\"argv\":[\"./main\",\"{args}\"]},"
                "\"env\":[\"PATH=/usr/bin:/bin\",\"LANG=C.UTF-8\",\"EMPTY=\",\"EQ=a=b\"],"
                "\"limits\":{\"memory\":\"256M\",\"pids\":64,\"cpus\":0.5,\"cpu_time\":2.5,"
                "\"wall_time\":10,\"output_limit\":\"1M\",\"file_size\":1024,"
                "\"open_files\":64},"
                "\"max_limits\":{\"memory\":\"1G\",\"pids\":256,\"cpus\":2,\"cpu_time\":30,"
                "\"wall_time\":60,\"output_limit\":\"64M\",\"file_size\":\"256M\","
                "\"open_files\":1024},"
                "\"build_limits\":{\"memory\":\"512M\",\"wall_time\":30.25},"
                "\"owner\":\"admin\",\"group\":null,\"mode\":\"0755\","
                "\"created_at\":\"2026-11-23T10:29:00.123Z\",\"updated_at\":null}";

        decode_ok(s, &app);
        assert_string_equal(app.name, "c");
        assert_string_equal(app.description, "C (gcc), built then run \xc3\xa9");
        assert_string_equal(app.rootfs, "/srv/roots/debian");
        assert_int_equal(app.build.argc, 6);
        assert_string_equal(app.build.argv[4], "{source}");
        assert_null(app.build.argv[6]);
        assert_int_equal(app.run.argc, 2);
        assert_string_equal(app.run.argv[1], "{args}");
        assert_int_equal(app.n_env, 4);
        assert_string_equal(app.env[2], "EMPTY=");
        assert_string_equal(app.env[3], "EQ=a=b");
        assert_null(app.env[4]);

        assert_int_equal(app.limits.set, 0xff);
        assert_int_equal(app.limits.memory, UINT64_C(256) << 20);
        assert_int_equal(app.limits.pids, 64);
        assert_true(app.limits.cpus == 0.5);
        assert_int_equal(app.limits.cpu_time_ns, 2500000000);
        assert_int_equal(app.limits.wall_time_ns, 10 * NS_PER_S);
        assert_int_equal(app.limits.output_limit, UINT64_C(1) << 20);
        assert_int_equal(app.limits.file_size, 1024);
        assert_int_equal(app.limits.open_files, 64);
        assert_int_equal(app.max_limits.set, 0xff);
        assert_int_equal(app.max_limits.memory, UINT64_C(1) << 30);
        assert_true(app.max_limits.cpus == 2);
        assert_int_equal(app.build_limits.set, JOBSPEC_LIMIT_MEMORY | JOBSPEC_LIMIT_WALL_TIME);
        assert_int_equal(app.build_limits.wall_time_ns, 30250000000);
        check_round_trip(&app);
}

static void test_strict(void **state)
{
        fails("", "invalid_json", 400);
        fails("{", "invalid_json", 400);
        fails("{" MINIMAL "} {}", "invalid_json", 400);
        fails("[]", "not_an_object", 400);
        fails("null", "not_an_object", 400);
        fails("{\"name\":\"\xff\",\"source_file\":\"a\",\"run\":{\"argv\":[\"a\"]}}",
              "invalid_utf8", 400);
        fails("{" MINIMAL ",\"name\":\"y\"}", "duplicate_key", 400);
        fails("{" MINIMAL ",\"limits\":{\"pids\":1,\"pids\":2}}", "duplicate_key", 400);
        fails("{\"name\":\"x\",\"source_file\":\"main.c\",\"run\":{\"argv\":[\"a\"],\"argv\":["
              "\"b\"]}}",
              "duplicate_key", 400);
        fails("{" MINIMAL ",\"description\":\"\\u0000\"}", "nul_character", 400);

        fails_msg("{" MINIMAL ",\"sources\":1}", "unknown_field", 400, "unknown field 'sources'");
        fails_msg("{" MINIMAL ",\"build\":{\"argv\":[\"a\"],\"env\":[]}}", "unknown_field", 400,
                  "unknown field 'build.env'");
        fails_msg("{\"name\":\"x\",\"source_file\":\"main.c\",\"run\":{\"argv\":[\"a\"],\"x\":1}}",
                  "unknown_field", 400, "unknown field 'run.x'");
        fails_msg("{" MINIMAL ",\"limits\":{\"memroy\":1}}", "unknown_field", 400,
                  "unknown field 'limits.memroy'");
        fails_msg("{" MINIMAL ",\"max_limits\":{\"x\":1}}", "unknown_field", 400,
                  "unknown field 'max_limits.x'");
        fails_msg("{" MINIMAL ",\"build_limits\":{\"x\":1}}", "unknown_field", 400,
                  "unknown field 'build_limits.x'");
        fails_msg("{" MINIMAL ",\"\\u001b[2J\":1}", "unknown_field", 400,
                  "unknown field '\\x1b[2J'");

        fails_msg("{\"source_file\":\"main.c\",\"run\":{\"argv\":[\"a\"]}}", "missing_field", 400,
                  "missing field 'name'");
        fails_msg("{\"name\":\"x\",\"run\":{\"argv\":[\"a\"]}}", "missing_field", 400,
                  "missing field 'source_file'");
        fails_msg("{\"name\":\"x\",\"source_file\":\"main.c\"}", "missing_field", 400,
                  "missing field 'run'");
        fails_msg("{\"name\":\"x\",\"source_file\":\"main.c\",\"run\":{}}", "missing_field", 400,
                  "missing field 'run.argv'");
        fails_msg("{" MINIMAL ",\"build\":{}}", "missing_field", 400, "missing field 'build.argv'");
        fails("{}", "missing_field", 400);

        /* Depth: 32 levels parse (and are then an unknown field), 33 do not. */
        for (size_t n = 31; n <= 32; n++) {
                _cleanup_free_ char *open = repeat('[', n), *close = repeat(']', n);
                _cleanup_free_ char *t = body("{" MINIMAL ",\"x\":%s1%s}", open, close);

                fails_s(t, n == 31 ? "unknown_field" : "too_deep", 400, NULL);
        }

        /* Size: over APP_SPEC_MAX_BYTES is refused before it is looked at. */
        _cleanup_free_ char *big = repeat(' ', APP_SPEC_MAX_BYTES + 1);
        big[0] = '{';
        fails_s(big, "too_large", 413, NULL);

        /* Too many values for any valid spec. */
        _cleanup_free_ char *many = repeat(',', 5000), *t = NULL;
        for (size_t i = 0; i < 5000; i++)
                many[i] = i % 2 ? ',' : '1';
        many[4999] = '1';
        t = body("{" MINIMAL ",\"x\":[%s]}", many);
        fails_s(t, "too_complex", 400, NULL);
}

static void test_wrong_types(void **state)
{
        static const char *const cases[][2] = {
                {"\"name\":1,\"source_file\":\"a\",\"run\":{\"argv\":[\"a\"]}",
                 "'name' must be a string, not an integer"},
                {"\"name\":null,\"source_file\":\"a\",\"run\":{\"argv\":[\"a\"]}", NULL},
                {"\"name\":\"x\",\"source_file\":[],\"run\":{\"argv\":[\"a\"]}", NULL},
                {"\"name\":\"x\",\"source_file\":null,\"run\":{\"argv\":[\"a\"]}", NULL},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":[\"a\"]",
                 "'run' must be an object, not an array"},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":null", NULL},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":{\"argv\":\"a b\"}",
                 "'run.argv' must be an array, not a string"},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":{\"argv\":null}", NULL},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":{\"argv\":[\"a\",1]}",
                 "'run.argv[1]' must be a string"},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":{\"argv\":[null]}", NULL},
                {"\"name\":\"x\",\"source_file\":\"a\",\"run\":{\"argv\":[[\"a\"]]}", NULL},
                {MINIMAL ",\"build\":null", "'build' must be an object, not null"},
                {MINIMAL ",\"build\":{\"argv\":[\"a\",{}]}", "'build.argv[1]' must be a string"},
                {MINIMAL ",\"description\":null", "'description' must be a string, not null"},
                {MINIMAL ",\"description\":1", NULL},
                {MINIMAL ",\"rootfs\":1", "'rootfs' must be a string, not an integer"},
                {MINIMAL ",\"rootfs\":[]", NULL},
                {MINIMAL ",\"env\":{}", "'env' must be an array, not an object"},
                {MINIMAL ",\"env\":\"A=b\"", NULL},
                {MINIMAL ",\"env\":null", NULL},
                {MINIMAL ",\"env\":[\"A=b\",2]", "'env[1]' must be a string"},
                {MINIMAL ",\"limits\":[]", NULL},
                {MINIMAL ",\"limits\":null", NULL},
                {MINIMAL ",\"limits\":{\"memory\":1.5}",
                 "'limits.memory' must be an integer or a string, not a real number"},
                {MINIMAL ",\"max_limits\":{\"pids\":\"32\"}",
                 "'max_limits.pids' must be an integer, not a string"},
                {MINIMAL ",\"build_limits\":{\"wall_time\":\"2\"}",
                 "'build_limits.wall_time' must be a number, not a string"},
                {MINIMAL ",\"owner\":1", "'owner' must be a string or null"},
                {MINIMAL ",\"group\":{}", "'group' must be a string or null"},
                {MINIMAL ",\"mode\":493", "'mode' must be a string or null"},
                {MINIMAL ",\"created_at\":[]", "'created_at' must be a string or null"},
                {MINIMAL ",\"updated_at\":true", "'updated_at' must be a string or null"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = body("{%s}", cases[i][0]);

                fails_s(s, "wrong_type", 400, cases[i][1]);
        }
}

static void test_output_only(void **state)
{
        _cleanup_(app_spec_done) struct app_spec app = {};
        _cleanup_json_ json_t *j = NULL;

        /* Accepted as strings or null, and dropped; to_json does not invent them. */
        decode_extra(",\"owner\":\"admin\",\"group\":\"staff\",\"mode\":\"0700\","
                     "\"created_at\":\"2026-11-23T10:29:00.123Z\","
                     "\"updated_at\":\"2026-11-23T10:29:00.123Z\"",
                     &app);
        j = app_spec_to_json(&app);
        assert_non_null(j);
        assert_null(json_object_get(j, "owner"));
        assert_null(json_object_get(j, "group"));
        assert_null(json_object_get(j, "mode"));
        assert_null(json_object_get(j, "created_at"));
        assert_null(json_object_get(j, "updated_at"));
        app_spec_done(&app);
        decode_extra(",\"owner\":null,\"group\":null,\"mode\":null,\"created_at\":null,"
                     "\"updated_at\":null",
                     &app);
}

static void test_name(void **state)
{
        static const char *const good[] = {"a", "sh", "python3", "a-b.c_9", "z0"};
        static const char *const bad[] = {
                "",    "A",  "Python",  "1abc", "-x",       "_x",      ".x",         "a b",
                "a/b", "x!", "\\u00e9", "a\\n", "a\\u0001", "\\u0000", "abc\\u00a0",
        };
        _cleanup_free_ char *a64 = repeat('a', 64), *a65 = repeat('a', 65);

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(app_spec_done) struct app_spec app = {};
                _cleanup_free_ char *s =
                        body("{\"name\":\"%s\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\"]}}",
                             good[i]);

                decode_ok(s, &app);
                assert_string_equal(app.name, good[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *s =
                        body("{\"name\":\"%s\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\"]}}",
                             bad[i]);

                /* \u0000 is the parser's refusal. */
                fails_s(s, strcmp(bad[i], "\\u0000") == 0 ? "nul_character" : "invalid_value", 400,
                        NULL);
        }
        fails_msg("{\"name\":\"Py\\u001b[0m\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\"]}}",
                  "invalid_value", 400,
                  "'name' must be 1..64 bytes of [a-z0-9_.-] starting with a letter, not "
                  "'Py\\x1b[0m'");

        _cleanup_free_ char *ok =
                body("{\"name\":\"%s\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\"]}}", a64);
        _cleanup_free_ char *long_ =
                body("{\"name\":\"%s\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\"]}}", a65);
        _cleanup_(app_spec_done) struct app_spec app = {};

        decode_ok(ok, &app);
        fails_s(long_, "out_of_range", 400, "'name' is longer than 64 bytes");
}

static void test_description(void **state)
{
        _cleanup_free_ char *d4096 = repeat('d', APP_DESCRIPTION_MAX);
        _cleanup_free_ char *d4097 = repeat('d', APP_DESCRIPTION_MAX + 1);
        _cleanup_free_ char *ok = body(",\"description\":\"%s\"", d4096);
        _cleanup_free_ char *over = body(",\"description\":\"%s\"", d4097);
        _cleanup_(app_spec_done) struct app_spec app = {};

        decode_extra(ok, &app);
        assert_int_equal(strlen(app.description), APP_DESCRIPTION_MAX);
        check_round_trip(&app);
        app_spec_done(&app);
        decode_extra(",\"description\":\"\"", &app);
        assert_string_equal(app.description, "");
        fails_extra(over, "out_of_range", 400, "'description' is longer than 4096 bytes");
}

static void test_rootfs(void **state)
{
        static const char *const good[][2] = {
                {"/srv/root", "/srv/root"},         {"/srv/root/", "/srv/root"},
                {"//srv///root//", "/srv/root"},    {"/a", "/a"},
                {"/a/..b/.c/...", "/a/..b/.c/..."}, {"/with space/\\u00e9", "/with space/\xc3\xa9"},
        };
        static const char *const bad[][2] = {
                {"", "'rootfs' must be an absolute path or null"},
                {"srv/root", "'rootfs' must be an absolute path or null"},
                {"./srv", NULL},
                {"/", "'rootfs' must not be '/' (null is the host profile)"},
                {"//", NULL},
                {"/a/./b", "'rootfs' must not contain '.' or '..' components"},
                {"/a/../b", NULL},
                {"/a/..", NULL},
                {"/..", NULL},
                {"/a/.", NULL},
                {"/.", NULL},
        };
        _cleanup_(app_spec_done) struct app_spec app = {};

        decode_extra(",\"rootfs\":null", &app);
        assert_null(app.rootfs);
        check_round_trip(&app);
        app_spec_done(&app);

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *e = body(",\"rootfs\":\"%s\"", good[i][0]);

                decode_extra(e, &app);
                assert_string_equal(app.rootfs, good[i][1]);
                check_round_trip(&app);
                app_spec_done(&app);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *e = body(",\"rootfs\":\"%s\"", bad[i][0]);

                fails_extra(e, "invalid_value", 400, bad[i][1]);
        }

        /* APP_PATH_MAX bytes of input at most. */
        _cleanup_free_ char *p4096 = repeat('p', APP_PATH_MAX),
                            *p4097 = repeat('p', APP_PATH_MAX + 1);
        _cleanup_free_ char *ok = NULL, *over = NULL;
        p4096[0] = p4097[0] = '/';
        ok = body(",\"rootfs\":\"%s\"", p4096);
        over = body(",\"rootfs\":\"%s\"", p4097);
        decode_extra(ok, &app);
        assert_string_equal(app.rootfs, p4096);
        fails_extra(over, "out_of_range", 400, "'rootfs' is longer than 4096 bytes");
}

static void test_source_file(void **state)
{
        static const char *const good[] = {"main.c", "a",       "Main.java",  "..x",
                                           "x..",    ".hidden", "\\u00e9.py", "with space"};
        static const char *const bad[] = {"",     ".",    "..",       "a/b",      "/main.c",
                                          "../x", "a\\n", "a\\u0001", "a\\u007f", "a\\u0085"};
        _cleanup_free_ char *n255 = repeat('n', 255), *n256 = repeat('n', 256);

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(app_spec_done) struct app_spec app = {};
                _cleanup_free_ char *s =
                        body("{\"name\":\"x\",\"source_file\":\"%s\",\"run\":{\"argv\":[\"a\"]}}",
                             good[i]);

                decode_ok(s, &app);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *s =
                        body("{\"name\":\"x\",\"source_file\":\"%s\",\"run\":{\"argv\":[\"a\"]}}",
                             bad[i]);

                fails_s(s, "invalid_value", 400, NULL);
        }
        fails_msg("{\"name\":\"x\",\"source_file\":\"../etc\",\"run\":{\"argv\":[\"a\"]}}",
                  "invalid_value", 400, "'source_file' '../etc' must not contain '/'");

        _cleanup_free_ char *ok =
                body("{\"name\":\"x\",\"source_file\":\"%s\",\"run\":{\"argv\":[\"a\"]}}", n255);
        _cleanup_free_ char *over =
                body("{\"name\":\"x\",\"source_file\":\"%s\",\"run\":{\"argv\":[\"a\"]}}", n256);
        _cleanup_(app_spec_done) struct app_spec app = {};

        decode_ok(ok, &app);
        fails_s(over, "invalid_value", 400, NULL);
}

static void test_argv(void **state)
{
        static const char *const good[] = {
                "[\"a\"]",
                "[\"a\",\"{args}\"]",
                "[\"a\",\"{source}\",\"{args}\",\"{source}\"]",
                "[\"/bin/sh\",\"-c\",\"echo {x}\",\"{ args }\",\"{ARGS}\",\"{source\"]",
                "[\"a\",\"\\u00e9\",\" \"]",
        };
        static const char *const bad[][3] = {
                {"[]", "out_of_range", ".argv' must have at least one element"},
                {"[\"\"]", "invalid_value", ".argv[0]' must not be empty"},
                {"[\"a\",\"\"]", "invalid_value", ".argv[1]' must not be empty"},
                {"[\"{args}\"]", "invalid_value",
                 ".argv[0]' must name the program, not be a template"},
                {"[\"{source}\",\"a\"]", "invalid_value", NULL},
                {"[\"a\",\"{args}\",\"{args}\"]", "invalid_value",
                 ".argv[2]': '{args}' may appear only once"},
                {"[\"a\",\"-I{args}\"]", "invalid_value",
                 ".argv[1]': '{args}' and '{source}' must be whole elements"},
                {"[\"a\",\"{args}x\"]", "invalid_value", NULL},
                {"[\"a\",\"{source}.o\"]", "invalid_value", NULL},
                {"[\"a\",\"x{source}\"]", "invalid_value", NULL},
                {"[\"{source}{args}\"]", "invalid_value", NULL},
                {"[\"./{source}\"]", "invalid_value", NULL},
        };
        static const char *const steps[] = {"run", "build"};

        for (size_t s = 0; s < ELEMENTSOF(steps); s++) {
                for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                        _cleanup_(app_spec_done) struct app_spec app = {};
                        _cleanup_free_ char *t =
                                body("{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":%s},"
                                     "\"build\":{\"argv\":%s}}",
                                     s == 0 ? good[i] : "[\"b\"]", s == 1 ? good[i] : "[\"b\"]");

                        decode_ok(t, &app);
                        check_round_trip(&app);
                }
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        _cleanup_free_ char *t = body(
                                "{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":%s},"
                                "\"build\":{\"argv\":%s}}",
                                s == 0 ? bad[i][0] : "[\"b\"]", s == 1 ? bad[i][0] : "[\"b\"]");
                        _cleanup_free_ char *msg =
                                bad[i][2] ? body("'%s%s", steps[s], bad[i][2]) : NULL;

                        fails_s(t, bad[i][1], 400, msg);
                }
        }

        /* Counts and lengths. */
        _cleanup_free_ char *l64 = string_list("a", APP_ARGV_MAX);
        _cleanup_free_ char *l65 = string_list("a", APP_ARGV_MAX + 1);
        _cleanup_free_ char *a4096 = repeat('a', APP_ARG_LEN_MAX);
        _cleanup_free_ char *a4097 = repeat('a', APP_ARG_LEN_MAX + 1);
        _cleanup_free_ char *t = NULL;
        _cleanup_(app_spec_done) struct app_spec app = {};

        t = body("{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":[%s]}}", l64);
        decode_ok(t, &app);
        assert_int_equal(app.run.argc, APP_ARGV_MAX);
        assert_null(app.run.argv[APP_ARGV_MAX]);
        app_spec_done(&app);
        free(t);
        t = body("{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":[%s]}}", l65);
        fails_s(t, "too_many", 413, "'run.argv' has 65 elements, over the maximum of 64");
        free(t);
        t = body("{" MINIMAL ",\"build\":{\"argv\":[%s]}}", l65);
        fails_s(t, "too_many", 413, NULL);
        free(t);
        t = body("{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\",\"%s\"]}}", a4096);
        decode_ok(t, &app);
        app_spec_done(&app);
        free(t);
        t = body("{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":[\"a\",\"%s\"]}}", a4097);
        fails_s(t, "out_of_range", 400, "'run.argv[1]' is longer than 4096 bytes");
}

static void test_env(void **state)
{
        static const char *const good[] = {
                "A=b", "_=1", "a=", "PATH=/usr/bin:/bin", "X1_y=a=b=c", "LANG=C.UTF-8", "U=\\u00e9",
        };
        static const char *const bad[] = {
                "A", "=x", "1A=x", "A-B=x", "A B=x", "\\u00e9=x", "", "A\\u0000=x", " A=x",
        };
        _cleanup_(app_spec_done) struct app_spec app = {};

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *e = body(",\"env\":[\"%s\"]", good[i]);

                decode_extra(e, &app);
                assert_int_equal(app.n_env, 1);
                assert_null(app.env[1]);
                check_round_trip(&app);
                app_spec_done(&app);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *e = body(",\"env\":[\"%s\"]", bad[i]);

                fails_extra(e, strstr(bad[i], "\\u0000") ? "nul_character" : "invalid_value", 400,
                            NULL);
        }
        fails_extra(",\"env\":[\"A=1\",\"B\"]", "invalid_value", 400,
                    "'env[1]' must be NAME=value, NAME of [A-Za-z_][A-Za-z0-9_]*");

        /* Names are compared whole, case-sensitively. */
        fails_extra(",\"env\":[\"A=1\",\"B=2\",\"A=3\"]", "invalid_value", 400,
                    "'env[2]' sets a variable that 'env[0]' sets already");
        fails_extra(",\"env\":[\"A=1\",\"A=1\"]", "invalid_value", 400, NULL);
        decode_extra(",\"env\":[\"A=1\",\"AB=2\",\"a=3\",\"B=A=1\"]", &app);
        assert_int_equal(app.n_env, 4);
        app_spec_done(&app);

        /* An empty list is an empty environment, not the default one. */
        decode_extra(",\"env\":[]", &app);
        assert_non_null(app.env);
        assert_null(app.env[0]);
        assert_int_equal(app.n_env, 0);
        check_round_trip(&app);
        app_spec_done(&app);

        _cleanup_free_ char *l64 = string_list_suffix("V", APP_ENV_MAX, "=x");
        _cleanup_free_ char *l65 = string_list_suffix("V", APP_ENV_MAX + 1, "=x"), *t = NULL;
        _cleanup_free_ char *v4096 = repeat('v', APP_ARG_LEN_MAX - 2);
        _cleanup_free_ char *v4097 = repeat('v', APP_ARG_LEN_MAX - 1);

        t = body(",\"env\":[%s]", l64);
        decode_extra(t, &app);
        assert_int_equal(app.n_env, APP_ENV_MAX);
        app_spec_done(&app);
        free(t);
        t = body(",\"env\":[%s]", l65);
        fails_extra(t, "too_many", 413, "'env' has 65 entries, over the maximum of 64");
        free(t);
        t = body(",\"env\":[\"A=%s\"]", v4096);
        decode_extra(t, &app);
        app_spec_done(&app);
        free(t);
        t = body(",\"env\":[\"A=%s\"]", v4097);
        fails_extra(t, "out_of_range", 400, "'env[0]' is longer than 4096 bytes");
}

static void test_limits(void **state)
{
        _cleanup_(app_spec_done) struct app_spec app = {};

        /* Each of the three decodes as a job's limits do. */
        decode_extra(",\"limits\":{\"memory\":\"64M\",\"cpu_time\":0.001},"
                     "\"max_limits\":{\"memory\":67108864,\"cpus\":0.01},"
                     "\"build_limits\":{\"pids\":1,\"open_files\":4}",
                     &app);
        assert_int_equal(app.limits.memory, UINT64_C(64) << 20);
        assert_int_equal(app.limits.cpu_time_ns, 1000000);
        assert_int_equal(app.max_limits.memory, UINT64_C(64) << 20);
        assert_true(app.max_limits.cpus == 0.01);
        assert_int_equal(app.build_limits.set, JOBSPEC_LIMIT_PIDS | JOBSPEC_LIMIT_OPEN_FILES);
        check_round_trip(&app);
        app_spec_done(&app);

        /* Odd times round-trip exactly. */
        decode_extra(",\"limits\":{\"wall_time\":1e-9,\"cpu_time\":0.333333333},"
                     "\"max_limits\":{\"wall_time\":999999.999999999,\"cpu_time\":1000000},"
                     "\"build_limits\":{\"wall_time\":123.456789012,\"cpus\":0.1}",
                     &app);
        assert_int_equal(app.limits.wall_time_ns, 1);
        assert_int_equal(app.limits.cpu_time_ns, 333333333);
        assert_int_equal(app.max_limits.wall_time_ns, UINT64_C(999999999999999));
        assert_int_equal(app.build_limits.wall_time_ns, UINT64_C(123456789012));
        check_round_trip(&app);
        app_spec_done(&app);

        fails_extra(",\"limits\":{\"memory\":0}", "out_of_range", 400, NULL);
        fails_extra(",\"max_limits\":{\"pids\":0}", "out_of_range", 400, NULL);
        fails_extra(",\"build_limits\":{\"wall_time\":0}", "out_of_range", 400, NULL);
        fails_extra(",\"limits\":{\"memory\":\"64Q\"}", "invalid_value", 400, NULL);
        fails_extra(",\"limits\":{\"open_files\":3}", "out_of_range", 400, NULL);
        fails_extra(",\"max_limits\":{\"cpus\":0.001}", "out_of_range", 400, NULL);

        /* A default above its maximum: 422, as a job's would be. */
        fails_extra(",\"limits\":{\"memory\":\"2G\"},\"max_limits\":{\"memory\":\"1G\"}",
                    "limit_exceeded", 422,
                    "'limits.memory' is 2147483648 bytes, above the app's maximum of 1073741824 "
                    "bytes");
        fails_extra(",\"limits\":{\"pids\":65},\"max_limits\":{\"pids\":64}", "limit_exceeded", 422,
                    NULL);
        fails_extra(",\"limits\":{\"cpus\":2.5},\"max_limits\":{\"cpus\":2}", "limit_exceeded", 422,
                    NULL);
        fails_extra(",\"limits\":{\"wall_time\":60.5},\"max_limits\":{\"wall_time\":60}",
                    "limit_exceeded", 422, NULL);
        fails_extra(",\"limits\":{\"cpu_time\":2},\"max_limits\":{\"cpu_time\":1}",
                    "limit_exceeded", 422, NULL);
        fails_extra(
                ",\"limits\":{\"output_limit\":\"2M\"},\"max_limits\":{\"output_limit\":\"1M\"}",
                "limit_exceeded", 422, NULL);
        fails_extra(",\"limits\":{\"file_size\":2},\"max_limits\":{\"file_size\":1}",
                    "limit_exceeded", 422, NULL);
        fails_extra(",\"limits\":{\"open_files\":65},\"max_limits\":{\"open_files\":64}",
                    "limit_exceeded", 422, NULL);

        /* Equal is fine; a default without a maximum is fine (the job just may not ask). */
        decode_extra(",\"limits\":{\"memory\":\"1G\",\"pids\":1000},\"max_limits\":{\"memory\":"
                     "\"1G\"}",
                     &app);
        app_spec_done(&app);
        /* Build limits are not held to max_limits. */
        decode_extra(",\"build_limits\":{\"memory\":\"4G\"},\"max_limits\":{\"memory\":\"1G\"}",
                     &app);
}

static const char *const builtin_names[] = {"sh", "python3", "c", "cpp", "node"};

static void builtin(const char *name, struct app_spec *app)
{
        for (size_t i = 0; i < app_builtin_count(); i++) {
                _cleanup_(app_spec_done) struct app_spec a = {};

                decode_ok(app_builtin_json(i), &a);
                if (strcmp(a.name, name) == 0) {
                        *app = a;
                        a = (struct app_spec){};
                        return;
                }
        }
        fail_msg("no builtin '%s'", name);
}

static void check_argv(char *const *v, size_t n, ...)
{
        va_list ap;
        size_t i = 0;
        const char *s;

        va_start(ap, n);
        while ((s = va_arg(ap, const char *))) {
                assert_true(i < n);
                assert_string_equal(v[i], s);
                i++;
        }
        va_end(ap);
        assert_int_equal(i, n);
        assert_null(v[n]);
}

static void test_builtins(void **state)
{
        assert_int_equal(app_builtin_count(), ELEMENTSOF(builtin_names));
        assert_null(app_builtin_json(app_builtin_count()));
        for (size_t i = 0; i < app_builtin_count(); i++) {
                _cleanup_(app_spec_done) struct app_spec app = {};

                decode_ok(app_builtin_json(i), &app);
                assert_string_equal(app.name, builtin_names[i]);
                assert_null(app.rootfs);
                assert_int_equal(app.n_env, 3);
                check_argv(app.env, app.n_env, "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                           "HOME=/tmp", NULL);
                assert_true(app.description[0] != '\0');
                /* Run defaults and maxima. */
                assert_int_equal(app.limits.pids, 64);
                assert_int_equal(app.limits.wall_time_ns, 10 * NS_PER_S);
                assert_int_equal(app.limits.cpu_time_ns, 5 * NS_PER_S);
                assert_int_equal(app.limits.output_limit, UINT64_C(1) << 20);
                assert_int_equal(app.limits.file_size, UINT64_C(16) << 20);
                assert_int_equal(app.max_limits.set, 0xff);
                assert_int_equal(app.max_limits.memory, UINT64_C(1) << 30);
                assert_int_equal(app.max_limits.pids, 256);
                assert_true(app.max_limits.cpus == 2);
                assert_int_equal(app.max_limits.cpu_time_ns, 30 * NS_PER_S);
                assert_int_equal(app.max_limits.wall_time_ns, 60 * NS_PER_S);
                assert_int_equal(app.max_limits.output_limit, UINT64_C(64) << 20);
                assert_int_equal(app.max_limits.file_size, UINT64_C(256) << 20);
                assert_int_equal(app.max_limits.open_files, 1024);
                check_round_trip(&app);
        }

        _cleanup_(app_spec_done) struct app_spec sh = {}, py = {}, c = {}, cpp = {}, node = {};

        builtin("sh", &sh);
        assert_string_equal(sh.source_file, "main.sh");
        assert_null(sh.build.argv);
        check_argv(sh.run.argv, sh.run.argc, "/bin/sh", "{source}", "{args}", NULL);
        assert_int_equal(sh.limits.memory, UINT64_C(256) << 20);
        assert_int_equal(sh.build_limits.set, 0);

        builtin("python3", &py);
        assert_string_equal(py.source_file, "main.py");
        assert_null(py.build.argv);
        check_argv(py.run.argv, py.run.argc, "python3", "{source}", "{args}", NULL);

        builtin("c", &c);
        assert_string_equal(c.source_file, "main.c");
        check_argv(c.build.argv, c.build.argc, "gcc", "-std=gnu17", "-O2", "-pipe", "-o", "main",
                   "{source}", "-lm", NULL);
        check_argv(c.run.argv, c.run.argc, "./main", "{args}", NULL);

        builtin("cpp", &cpp);
        assert_string_equal(cpp.source_file, "main.cpp");
        check_argv(cpp.build.argv, cpp.build.argc, "g++", "-std=gnu++17", "-O2", "-pipe", "-o",
                   "main", "{source}", NULL);
        check_argv(cpp.run.argv, cpp.run.argc, "./main", "{args}", NULL);
        for (const struct app_spec *a = &c; a; a = a == &c ? &cpp : NULL) {
                assert_int_equal(a->build_limits.memory, UINT64_C(512) << 20);
                assert_int_equal(a->build_limits.pids, 64);
                assert_int_equal(a->build_limits.wall_time_ns, 30 * NS_PER_S);
                assert_int_equal(a->build_limits.cpu_time_ns, 20 * NS_PER_S);
                assert_int_equal(a->build_limits.output_limit, UINT64_C(1) << 20);
                assert_int_equal(a->build_limits.file_size, UINT64_C(64) << 20);
        }

        builtin("node", &node);
        assert_string_equal(node.source_file, "main.js");
        check_argv(node.run.argv, node.run.argc, "node", "{source}", "{args}", NULL);
        assert_int_equal(node.limits.memory, UINT64_C(512) << 20);
        assert_int_equal(node.limits.pids, 64);
}

static void test_expand_argv(void **state)
{
        _cleanup_(app_spec_done) struct app_spec c = {}, sh = {};
        _cleanup_(jobspec_done) struct jobspec job = {}, none = {}, tricky = {};
        char **v = NULL;

        builtin("c", &c);
        builtin("sh", &sh);
        job_decode("{\"app\":\"c\",\"source\":\"x\",\"args\":[\"a\",\"b c\",\"\"]}", &job);
        job_decode("{\"app\":\"c\",\"source\":\"x\"}", &none);
        job_decode("{\"app\":\"c\",\"source\":\"x\",\"args\":[\"{source}\",\"{args}\"]}", &tricky);

        assert_int_equal(app_expand_argv(&c.run, &c, &job, &v), 0);
        check_argv(v, 4, "./main", "a", "b c", "", NULL);
        strv_free(v);
        assert_int_equal(app_expand_argv(&c.run, &c, &none, &v), 0);
        check_argv(v, 1, "./main", NULL);
        strv_free(v);
        assert_int_equal(app_expand_argv(&c.run, &c, NULL, &v), 0);
        check_argv(v, 1, "./main", NULL);
        strv_free(v);
        assert_int_equal(app_expand_argv(&c.build, &c, &job, &v), 0);
        check_argv(v, 8, "gcc", "-std=gnu17", "-O2", "-pipe", "-o", "main", "main.c", "-lm", NULL);
        strv_free(v);
        assert_int_equal(app_expand_argv(&sh.run, &sh, &job, &v), 0);
        check_argv(v, 5, "/bin/sh", "main.sh", "a", "b c", "", NULL);
        strv_free(v);
        /* The job's arguments are data: templates in them stay as they are. */
        assert_int_equal(app_expand_argv(&sh.run, &sh, &tricky, &v), 0);
        check_argv(v, 4, "/bin/sh", "main.sh", "{source}", "{args}", NULL);
        strv_free(v);

        /* No such step. */
        v = (char **) 0x1;
        assert_int_equal(app_expand_argv(&sh.build, &sh, &job, &v), -EINVAL);
        assert_ptr_equal(v, (char **) 0x1);
        v = NULL;

        /* The most a decoded app can give: 64 elements plus 256 arguments. */
        _cleanup_free_ char *l = string_list("a", APP_ARGV_MAX - 1), *args = string_list("x", 256);
        _cleanup_free_ char *s = body("{\"name\":\"x\",\"source_file\":\"m\",\"run\":{\"argv\":[%s,"
                                      "\"{args}\"]}}",
                                      l);
        _cleanup_free_ char *j = body("{\"app\":\"x\",\"source\":\"\",\"args\":[%s]}", args);
        _cleanup_(app_spec_done) struct app_spec big = {};
        _cleanup_(jobspec_done) struct jobspec many = {};

        decode_ok(s, &big);
        job_decode(j, &many);
        assert_int_equal(app_expand_argv(&big.run, &big, &many, &v), 0);
        for (size_t i = 0; i < APP_ARGV_MAX - 1 + 256; i++)
                assert_non_null(v[i]);
        assert_null(v[APP_ARGV_MAX - 1 + 256]);
        assert_string_equal(v[APP_ARGV_MAX - 1 + 255], "x255");
        strv_free(v);
        v = NULL;

        /* A hand-made template beyond what decoding allows is refused, not expanded. */
        char *twice[] = {"a", "{args}", "{args}", NULL};
        struct app_step hand = {.argv = twice, .argc = 3};

        assert_int_equal(app_expand_argv(&hand, &big, &many, &v), -E2BIG);
        assert_null(v);
        assert_int_equal(app_expand_argv(&hand, &big, &none, &v), 0);
        check_argv(v, 1, "a", NULL);
        strv_free(v);
        strv_free(NULL);
}

static void test_run_limits(void **state)
{
        _cleanup_(app_spec_done) struct app_spec c = {}, bare = {};
        _cleanup_(jobspec_done) struct jobspec none = {}, some = {}, over = {}, cpus = {};
        struct jobspec_limits l;
        struct json_error err = {};

        builtin("c", &c);
        job_decode("{\"app\":\"c\",\"source\":\"x\"}", &none);
        job_decode("{\"app\":\"c\",\"source\":\"x\",\"limits\":{\"memory\":\"1G\",\"cpus\":0.5,"
                   "\"wall_time\":1.5,\"open_files\":32}}",
                   &some);
        job_decode("{\"app\":\"c\",\"source\":\"x\",\"limits\":{\"pids\":257}}", &over);
        job_decode("{\"app\":\"c\",\"source\":\"x\",\"limits\":{\"cpus\":1}}", &cpus);

        assert_int_equal(app_run_limits(&c, &none, &l, &err), 0);
        assert_true(limits_equal(&l, &c.limits));
        assert_int_equal(app_run_limits(&c, NULL, &l, &err), 0);
        assert_true(limits_equal(&l, &c.limits));

        assert_int_equal(app_run_limits(&c, &some, &l, &err), 0);
        assert_int_equal(l.set, c.limits.set | JOBSPEC_LIMIT_CPUS | JOBSPEC_LIMIT_OPEN_FILES);
        assert_int_equal(l.memory, UINT64_C(1) << 30);
        assert_true(l.cpus == 0.5);
        assert_int_equal(l.wall_time_ns, 1500000000);
        assert_int_equal(l.open_files, 32);
        assert_int_equal(l.pids, 64);
        assert_int_equal(l.cpu_time_ns, 5 * NS_PER_S);

        memset(&l, 0xa5, sizeof(l));
        assert_int_equal(app_run_limits(&c, &over, &l, &err), -ERANGE);
        assert_string_equal(err.code, "limit_exceeded");
        assert_int_equal(err.status, 422);
        assert_string_equal(err.message, "'limits.pids' is 257, above the app's maximum of 256");
        assert_int_equal(l.pids, 0xa5a5a5a5a5a5a5a5);

        /* An app without maxima: a job may not ask for anything. */
        decode_ok("{" MINIMAL ",\"limits\":{\"memory\":\"64M\"}}", &bare);
        assert_int_equal(app_run_limits(&bare, &cpus, &l, &err), -ERANGE);
        assert_string_equal(err.code, "limit_exceeded");
        assert_int_equal(app_run_limits(&bare, &none, &l, &err), 0);
        assert_int_equal(l.set, JOBSPEC_LIMIT_MEMORY);
        assert_int_equal(l.memory, UINT64_C(64) << 20);
}

static void test_step_config(void **state)
{
        _cleanup_(app_spec_done) struct app_spec c = {}, bare = {};
        struct sandbox_mount mounts[1];
        struct sandbox_config cfg;
        struct jobspec_limits l = {
                .memory = 1,
                .pids = 2,
                .cpus = 0.25,
                .cpu_time_ns = 4,
                .wall_time_ns = 5,
                .output_limit = 6,
                .file_size = 7,
                .open_files = 8,
                .set = 0xff,
        };
        char *argv[] = {"./main", "a", NULL};

        builtin("c", &c);
        memset(&cfg, 0xa5, sizeof(cfg));
        app_step_config(&c, &l, argv, "/var/lib/warren/work/1", mounts, &cfg);
        assert_null(cfg.rootfs);
        assert_ptr_equal(cfg.mounts, mounts);
        assert_int_equal(cfg.n_mounts, 1);
        assert_int_equal(mounts[0].kind, SANDBOX_BIND_RW);
        assert_string_equal(mounts[0].src, "/var/lib/warren/work/1");
        assert_string_equal(mounts[0].dst, APP_WORKDIR);
        assert_string_equal(cfg.chdir, "/work");
        assert_ptr_equal(cfg.argv, argv);
        assert_ptr_equal(cfg.envp, c.env);
        assert_int_equal(cfg.memory, 1);
        assert_int_equal(cfg.pids, 2);
        assert_true(cfg.cpus == 0.25);
        assert_int_equal(cfg.cpu_time_ns, 4);
        assert_int_equal(cfg.wall_time_ns, 5);
        assert_int_equal(cfg.output_limit, 6);
        assert_int_equal(cfg.file_size, 7);
        assert_int_equal(cfg.open_files, 8);
        assert_int_equal(cfg.tmp_size, 0);
        assert_int_equal(cfg.stdin_fd, -1);
        assert_int_equal(cfg.stdout_fd, -1);
        assert_int_equal(cfg.stderr_fd, -1);

        decode_ok("{" MINIMAL ",\"rootfs\":\"/srv/root/\"}", &bare);
        l = (struct jobspec_limits){};
        app_step_config(&bare, &l, argv, "/w", mounts, &cfg);
        assert_string_equal(cfg.rootfs, "/srv/root");
        assert_null(cfg.envp);
        assert_int_equal(cfg.memory, 0);
        assert_int_equal(cfg.open_files, 0);
}

/* ---- the work directory ---- */

struct tmp {
        char path[64];
        int fd;
};

static void tmp_make(struct tmp *t)
{
        snprintf(t->path, sizeof(t->path), "/tmp/test-app.XXXXXX");
        assert_non_null(mkdtemp(t->path));
        t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(t->fd >= 0);
}

static void tmp_remove(struct tmp *t)
{
        if (t->fd >= 0) {
                assert_int_equal(app_workdir_clear(t->fd), 0);
                close(t->fd);
                t->fd = -1;
        }
        (void) rmdir(t->path);
}

static void write_at(int dfd, const char *name, const char *s)
{
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t) strlen(s));
}

static char *read_at(int dfd, const char *name)
{
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        char *buf = calloc(1, 4096);
        ssize_t n;

        assert_true(fd >= 0);
        assert_non_null(buf);
        n = read(fd, buf, 4095);
        assert_true(n >= 0);
        return buf;
}

static size_t count_entries(int dfd)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_true(fd >= 0);
        d = fdopendir(fd);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        return n;
}

static void test_populate(void **state)
{
        _cleanup_(app_spec_done) struct app_spec c = {};
        _cleanup_(jobspec_done) struct jobspec src = {}, files = {};
        struct tmp t;
        struct stat st;
        mode_t old_umask;
        char *s;

        builtin("c", &c);
        job_decode("{\"app\":\"c\",\"source\":\"int main(void) { return 0; }\\n\"}", &src);
        job_decode("{\"app\":\"c\",\"files\":{\"main.c\":\"int x;\",\"data.bin\":{\"base64\":"
                   "\"AAEC/w==\"},\"empty\":\"\"}}",
                   &files);

        tmp_make(&t);
        /* The sandbox's user must be able to read them, whatever our umask. */
        old_umask = umask(077);
        assert_int_equal(app_workdir_populate(t.fd, &c, &src), 0);
        umask(old_umask);
        s = read_at(t.fd, "main.c");
        assert_string_equal(s, "int main(void) { return 0; }\n");
        free(s);
        assert_int_equal(fstatat(t.fd, "main.c", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(count_entries(t.fd), 1);

        /* New files only. */
        assert_int_equal(app_workdir_populate(t.fd, &c, &src), -EEXIST);
        assert_int_equal(app_workdir_clear(t.fd), 0);

        assert_int_equal(app_workdir_populate(t.fd, &c, &files), 0);
        assert_int_equal(count_entries(t.fd), 3);
        assert_int_equal(fstatat(t.fd, "data.bin", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_size, 4);
        assert_int_equal(fstatat(t.fd, "empty", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_size, 0);
        {
                char *data = NULL;
                size_t len = 0;

                assert_int_equal(app_workdir_read(t.fd, "data.bin", 4, &data, &len), 0);
                assert_int_equal(len, 4);
                assert_memory_equal(data, "\x00\x01\x02\xff", 4);
                free(data);
        }
        assert_int_equal(app_workdir_clear(t.fd), 0);

        /* A link planted where a file goes is not followed (nor written through). */
        struct tmp outside;
        tmp_make(&outside);
        write_at(outside.fd, "target", "untouched");
        {
                _cleanup_free_ char *target = body("%s/target", outside.path);

                assert_int_equal(symlinkat(target, t.fd, "main.c"), 0);
        }
        assert_int_equal(app_workdir_populate(t.fd, &c, &src), -EEXIST);
        s = read_at(outside.fd, "target");
        assert_string_equal(s, "untouched");
        free(s);
        assert_int_equal(app_workdir_clear(t.fd), 0);

        /* A hand-made job with a hostile name is refused, not written. */
        struct jobspec_file bad = {.name = "../escape", .data = "x", .size = 1};
        struct jobspec hand = {.files = &bad, .n_files = 1};
        assert_int_equal(app_workdir_populate(t.fd, &c, &hand), -EINVAL);
        bad.name = "";
        assert_int_equal(app_workdir_populate(t.fd, &c, &hand), -EINVAL);
        struct jobspec empty = {};
        assert_int_equal(app_workdir_populate(t.fd, &c, &empty), -EINVAL);
        assert_int_equal(count_entries(t.fd), 0);
        assert_int_equal(faccessat(outside.fd, "escape", F_OK, 0), -1);

        tmp_remove(&outside);
        tmp_remove(&t);
}

static void on_alarm(int sig)
{
        (void) sig;
        /* A read that blocks is the failure this guards against: exit 99 says so. */
        _exit(99);
}

static void test_read(void **state)
{
        struct tmp t;
        char *data = (char *) 0x1;
        size_t len = 77;
        _cleanup_free_ char *big = repeat('b', 10000);

        tmp_make(&t);
        write_at(t.fd, "result.txt", "42\n");
        write_at(t.fd, "empty", "");
        write_at(t.fd, "big", big);
        assert_int_equal(symlinkat("/etc/passwd", t.fd, "passwd"), 0);
        assert_int_equal(symlinkat("result.txt", t.fd, "relative-link"), 0);
        assert_int_equal(symlinkat("/nonexistent", t.fd, "dangling"), 0);
        assert_int_equal(mkfifoat(t.fd, "fifo", 0666), 0);
        assert_int_equal(mkdirat(t.fd, "dir", 0755), 0);
        {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                _cleanup_close_ int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                assert_true(sock >= 0);
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", t.path);
                assert_int_equal(bind(sock, (struct sockaddr *) &sa, sizeof(sa)), 0);
        }

        assert_int_equal(app_workdir_read(t.fd, "result.txt", 1024, &data, &len), 0);
        assert_int_equal(len, 3);
        assert_string_equal(data, "42\n");
        free(data);
        assert_int_equal(app_workdir_read(t.fd, "empty", 1024, &data, &len), 0);
        assert_int_equal(len, 0);
        assert_string_equal(data, "");
        free(data);
        assert_int_equal(app_workdir_read(t.fd, "empty", 0, &data, NULL), 0);
        free(data);

        /* Bounded: exactly max is fine, one more is not. */
        assert_int_equal(app_workdir_read(t.fd, "big", 10000, &data, &len), 0);
        assert_int_equal(len, 10000);
        assert_int_equal(strlen(data), 10000);
        free(data);
        data = (char *) 0x1;
        len = 77;
        assert_int_equal(app_workdir_read(t.fd, "big", 9999, &data, &len), -EFBIG);
        assert_int_equal(app_workdir_read(t.fd, "result.txt", 2, &data, &len), -EFBIG);
        assert_int_equal(app_workdir_read(t.fd, "result.txt", 0, &data, &len), -EFBIG);

        /* Hostile entries: nothing followed, nothing blocks. */
        signal(SIGALRM, on_alarm);
        alarm(20);
        assert_int_equal(app_workdir_read(t.fd, "passwd", 1 << 20, &data, &len), -ELOOP);
        assert_int_equal(app_workdir_read(t.fd, "relative-link", 1 << 20, &data, &len), -ELOOP);
        assert_int_equal(app_workdir_read(t.fd, "dangling", 1 << 20, &data, &len), -ELOOP);
        assert_int_equal(app_workdir_read(t.fd, "fifo", 1 << 20, &data, &len), -EINVAL);
        assert_int_equal(app_workdir_read(t.fd, "dir", 1 << 20, &data, &len), -EISDIR);
        assert_int_equal(app_workdir_read(t.fd, "socket", 1 << 20, &data, &len), -EINVAL);
        assert_int_equal(app_workdir_read(t.fd, "missing", 1 << 20, &data, &len), -ENOENT);
        assert_int_equal(app_workdir_read(t.fd, "../etc/passwd", 1 << 20, &data, &len), -EINVAL);
        assert_int_equal(app_workdir_read(t.fd, "dir/x", 1 << 20, &data, &len), -EINVAL);
        assert_int_equal(app_workdir_read(t.fd, "..", 1 << 20, &data, &len), -EINVAL);
        assert_int_equal(app_workdir_read(t.fd, ".", 1 << 20, &data, &len), -EINVAL);
        assert_int_equal(app_workdir_read(t.fd, "", 1 << 20, &data, &len), -EINVAL);
        alarm(0);
        signal(SIGALRM, SIG_DFL);
        /* Outputs untouched on failure. */
        assert_ptr_equal(data, (char *) 0x1);
        assert_int_equal(len, 77);

        tmp_remove(&t);
}

/*
 * A tree the way a hostile job leaves it: nested directories, one of them mode 0000 with content
 * beneath it, another read-only, links to the outside (absolute, relative, to directories), a
 * fifo, a file without permissions.
 */
static void make_hostile_tree(int top, const char *outside)
{
        _cleanup_free_ char *out_dir = body("%s/keep", outside);
        _cleanup_free_ char *out_file = body("%s/keep/sentinel", outside);
        int fd = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int locked = -1, readonly = -1;

        assert_true(fd >= 0);
        for (int depth = 0; depth < 10; depth++) {
                char name[16];
                int next;

                snprintf(name, sizeof(name), "d%d", depth);
                assert_int_equal(mkdirat(fd, name, 0755), 0);
                write_at(fd, "file", "x");
                assert_int_equal(symlinkat(out_dir, fd, "link-dir"), 0);
                assert_int_equal(symlinkat(out_file, fd, "link-file"), 0);
                assert_int_equal(symlinkat("../../../../../../../../../../../../..", fd, "link-up"),
                                 0);
                assert_int_equal(symlinkat("/etc/passwd", fd, "passwd"), 0);
                next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(next >= 0);
                if (depth == 4)
                        locked = dup(fd);
                if (depth == 7)
                        readonly = dup(fd);
                close(fd);
                fd = next;
        }
        assert_int_equal(mkfifoat(fd, "fifo", 0600), 0);
        write_at(fd, "noperm", "x");
        assert_int_equal(fchmodat(fd, "noperm", 0, 0), 0);
        close(fd);
        /* Locked last, so that the tree could be built through them. */
        assert_int_equal(fchmod(readonly, 0555), 0);
        assert_int_equal(fchmod(locked, 0), 0);
        close(readonly);
        close(locked);
}

static void check_outside_intact(int out)
{
        struct stat st;
        char *s;

        assert_int_equal(fstatat(out, "keep", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0755);
        s = read_at(out, "keep/sentinel");
        assert_string_equal(s, "still here");
        free(s);
        assert_int_equal(count_entries(out), 1);
}

static void make_outside(struct tmp *out)
{
        tmp_make(out);
        assert_int_equal(mkdirat(out->fd, "keep", 0755), 0);
        write_at(out->fd, "keep/sentinel", "still here");
}

static void test_clear(void **state)
{
        struct tmp t, out;
        struct stat before, after;

        tmp_make(&t);
        make_outside(&out);
        assert_int_equal(fstat(t.fd, &before), 0);

        /* Empty is fine. */
        assert_int_equal(app_workdir_clear(t.fd), 0);

        make_hostile_tree(t.fd, out.path);
        assert_int_equal(app_workdir_clear(t.fd), 0);
        assert_int_equal(count_entries(t.fd), 0);
        check_outside_intact(out.fd);
        /* The directory itself stays, as it was. */
        assert_int_equal(fstat(t.fd, &after), 0);
        assert_int_equal(after.st_ino, before.st_ino);
        assert_int_equal(after.st_mode, before.st_mode);

        /* Through an O_PATH fd, and through one whose offset is at the end of the directory. */
        make_hostile_tree(t.fd, out.path);
        {
                _cleanup_close_ int path_fd = open(t.path, O_PATH | O_DIRECTORY | O_CLOEXEC);

                assert_true(path_fd >= 0);
                assert_int_equal(app_workdir_clear(path_fd), 0);
                assert_int_equal(count_entries(t.fd), 0);
        }
        make_hostile_tree(t.fd, out.path);
        {
                _cleanup_close_ int fd = open(t.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                char buf[65536];

                assert_true(fd >= 0);
                while (getdents64(fd, buf, sizeof(buf)) > 0)
                        ;
                assert_int_equal(app_workdir_clear(fd), 0);
                assert_int_equal(count_entries(t.fd), 0);
        }
        check_outside_intact(out.fd);

        /* A link to a directory is removed, not followed. */
        assert_int_equal(symlinkat(out.path, t.fd, "out"), 0);
        assert_int_equal(app_workdir_clear(t.fd), 0);
        check_outside_intact(out.fd);

        tmp_remove(&out);
        tmp_remove(&t);
}

/* Deeper than the recursion goes (and than PATH_MAX): moved up and removed all the same. */
static void test_clear_deep(void **state)
{
        struct tmp t, out;
        pid_t pid;
        int fd, status;

        tmp_make(&t);
        make_outside(&out);
        fd = openat(t.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        for (int depth = 0; depth < 300; depth++) {
                char name[] = "a-long-directory-name-to-pass-path-max";
                int next;

                assert_int_equal(mkdirat(fd, name, 0700), 0);
                if (depth % 50 == 0) {
                        write_at(fd, "f", "x");
                        assert_int_equal(symlinkat(out.path, fd, "l"), 0);
                }
                next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(next >= 0);
                close(fd);
                fd = next;
        }
        /* A name the move would like to take, already there. */
        assert_int_equal(mkdirat(t.fd, ".warren-deep-0", 0), 0);
        close(fd);

        /* With fewer fds than levels: the recursion's depth is bounded, not the tree's. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit rl;
                int r;

                /* The soft limit only: valgrind refuses to change the hard one. */
                if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(2);
                rl.rlim_cur = 100;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(2);
                r = app_workdir_clear(t.fd);
                _exit(r == 0 ? 0 : r == -EMFILE ? 3 : 4);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(count_entries(t.fd), 0);
        check_outside_intact(out.fd);
        tmp_remove(&out);
        tmp_remove(&t);
}

/*
 * As an unprivileged user (the rule when the node does not run as root, and the only way to see
 * mode 0000 refuse an open): directories the job locked are unlocked, then removed.
 */
static void test_clear_unprivileged(void **state)
{
        struct tmp t, out;
        pid_t pid;
        int status;

        if (geteuid() != 0)
                skip();
        tmp_make(&t);
        make_outside(&out);
        assert_int_equal(fchown(t.fd, 65534, 65534), 0);
        assert_int_equal(fchmod(out.fd, 0755), 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int r;

                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(2);
                make_hostile_tree(t.fd, out.path);
                /* It really is locked to us. */
                if (openat(t.fd, "d0/d1/d2/d3/d4/d5", O_RDONLY | O_DIRECTORY) >= 0 ||
                    errno != EACCES)
                        _exit(3);
                r = app_workdir_clear(t.fd);
                if (r < 0) {
                        fprintf(stderr, "app_workdir_clear: %s\n", strerror(-r));
                        _exit(4);
                }
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(count_entries(t.fd), 0);
        check_outside_intact(out.fd);
        tmp_remove(&out);
        tmp_remove(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_strict),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_output_only),
                cmocka_unit_test(test_name),
                cmocka_unit_test(test_description),
                cmocka_unit_test(test_rootfs),
                cmocka_unit_test(test_source_file),
                cmocka_unit_test(test_argv),
                cmocka_unit_test(test_env),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_builtins),
                cmocka_unit_test(test_expand_argv),
                cmocka_unit_test(test_run_limits),
                cmocka_unit_test(test_step_config),
                cmocka_unit_test(test_populate),
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_clear),
                cmocka_unit_test(test_clear_deep),
                cmocka_unit_test(test_clear_unprivileged),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
