/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobspec.h"
#include "common/cleanup.h"
#include "unit.h"

static const struct jobspec_limits app_max = {
        .memory = UINT64_C(256) << 20,
        .pids = 64,
        .cpus = 2,
        .cpu_time_ns = UINT64_C(10) * 1000000000,
        .wall_time_ns = UINT64_C(30) * 1000000000,
        .output_limit = UINT64_C(4) << 20,
        .file_size = UINT64_C(16) << 20,
        .open_files = 256,
};

static void check_message(const char *m, const char *file, int line)
{
        _assert_true(m[0] != '\0', "message not empty", file, line);
        for (const char *p = m; *p; p++)
                _assert_true((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f,
                             "message is printable ASCII", file, line);
}

/* Decodes body[0..len), expecting code and status; *ret must be left untouched. */
static void fails_at(const char *body, size_t len, const struct jobspec_bounds *bounds,
                     const char *code, int status, const char *msg, const char *file, int line)
{
        struct jobspec spec;
        struct json_error err = {};
        unsigned char before[sizeof(spec)];
        int r;

        memset(&spec, 0xa5, sizeof(spec));
        memcpy(before, &spec, sizeof(spec));
        r = jobspec_decode(body, len, bounds, &spec, &err);
        _assert_true(r < 0, "decode fails", file, line);
        _assert_string_equal(err.code, code, file, line);
        _assert_int_equal(err.status, status, file, line);
        if (msg)
                _assert_string_equal(err.message, msg, file, line);
        _assert_true(memcmp(before, &spec, sizeof(spec)) == 0, "ret untouched", file, line);
        check_message(err.message, file, line);
}

static struct jobspec_bounds bounds_with_max(void)
{
        struct jobspec_bounds b = JOBSPEC_BOUNDS_DEFAULT;

        b.app_max = &app_max;
        return b;
}

/* A literal (embedded NULs included), default bounds and app_max. */
#define fails(lit, code, status)                                                             \
        do {                                                                                 \
                struct jobspec_bounds _b = bounds_with_max();                                \
                fails_at(lit, sizeof(lit) - 1, &_b, code, status, NULL, __FILE__, __LINE__); \
        } while (0)

#define fails_msg(lit, code, status, msg)                                                   \
        do {                                                                                \
                struct jobspec_bounds _b = bounds_with_max();                               \
                fails_at(lit, sizeof(lit) - 1, &_b, code, status, msg, __FILE__, __LINE__); \
        } while (0)

/* A body from a format, on the heap. */
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

#define fails_s(s, bounds, code, status, msg) \
        fails_at(s, strlen(s), bounds, code, status, msg, __FILE__, __LINE__)

static void decode_ok_at(const char *s, size_t len, struct jobspec *spec, const char *file,
                         int line)
{
        struct jobspec_bounds b = bounds_with_max();
        struct json_error err = {};
        int r;

        r = jobspec_decode(s, len, &b, spec, &err);
        if (r < 0)
                print_error("unexpected failure: %s: %s\n", err.code, err.message);
        _assert_int_equal(r, 0, file, line);
}

#define decode_ok(s, spec) decode_ok_at(s, strlen(s), spec, __FILE__, __LINE__)

static char *repeat(char c, size_t n)
{
        char *s = malloc(n + 1);

        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void test_source(void **state)
{
        _cleanup_(jobspec_done) struct jobspec s = {};

        decode_ok("{\"app\":\"python3\",\"source\":\"print(1)\\n\"}", &s);
        assert_string_equal(s.app, "python3");
        assert_string_equal(s.source, "print(1)\n");
        assert_int_equal(s.source_size, 9);
        assert_null(s.files);
        assert_int_equal(s.n_files, 0);
        assert_non_null(s.args);
        assert_int_equal(s.n_args, 0);
        assert_null(s.args[0]);
        assert_null(s.stdin_data);
        assert_int_equal(s.limits.set, 0);
        assert_int_equal(s.limits.memory, 0);
        assert_int_equal(s.priority, 0);
        jobspec_done(&s);
        jobspec_done(&s); /* done twice is harmless */
        jobspec_done(NULL);

        /* Empty source; source as base64; what follows len is not read. */
        static const char b[] = "{\"app\":\"sh\",\"source\":\"\"}{garbage";
        decode_ok_at(b, sizeof(b) - 1 - strlen("{garbage"), &s, __FILE__, __LINE__);
        assert_string_equal(s.source, "");
        assert_int_equal(s.source_size, 0);
        jobspec_done(&s);
        decode_ok("{\"app\":\"c\",\"source\":{\"base64\":\"aW50IG1haW47AA==\"}}", &s);
        assert_int_equal(s.source_size, 10);
        assert_memory_equal(s.source, "int main;\0", 11);
}

static void test_files(void **state)
{
        _cleanup_(jobspec_done) struct jobspec s = {};

        decode_ok(
                "{\"app\":\"python3\",\"files\":{\"main.py\":\"import data\\n\","
                "\"data.bin\":{\"base64\":\"AAEC/w==\"},\"empty\":\"\",\"e\":{\"base64\":\"\"},"
                "\"d\\u00e9j\\u00e0 vu.txt\":\"\xe2\x82\xac\",\"...\":\"dots\",\".hidden\":\"h\"},"
                "\"args\":[\"a\",\"\",\"b c\"],\"stdin\":\"in\\u0001put\",\"priority\":-100}",
                &s);
        assert_null(s.source);
        assert_int_equal(s.n_files, 7);
        assert_string_equal(s.files[0].name, "main.py");
        assert_string_equal(s.files[0].data, "import data\n");
        assert_int_equal(s.files[0].size, 12);
        assert_string_equal(s.files[1].name, "data.bin");
        assert_int_equal(s.files[1].size, 4);
        assert_memory_equal(s.files[1].data, "\x00\x01\x02\xff", 5);
        assert_int_equal(s.files[2].size, 0);
        assert_string_equal(s.files[2].data, "");
        assert_int_equal(s.files[3].size, 0);
        assert_string_equal(s.files[4].name, "d\xc3\xa9j\xc3\xa0 vu.txt");
        assert_string_equal(s.files[4].data, "\xe2\x82\xac");
        assert_string_equal(s.files[5].name, "...");
        assert_string_equal(s.files[6].name, ".hidden");
        assert_int_equal(s.n_args, 3);
        assert_string_equal(s.args[0], "a");
        assert_string_equal(s.args[1], "");
        assert_string_equal(s.args[2], "b c");
        assert_null(s.args[3]);
        assert_int_equal(s.stdin_size, 6);
        assert_string_equal(s.stdin_data, "in\x01put");
        assert_int_equal(s.priority, -100);
        jobspec_done(&s);

        decode_ok("{\"priority\":100,\"stdin\":{\"base64\":\"TWFu\"},\"files\":{\"a\":\"\"},"
                  "\"app\":\"a\"}",
                  &s);
        assert_int_equal(s.priority, 100);
        assert_int_equal(s.stdin_size, 3);
        assert_string_equal(s.stdin_data, "Man");
        assert_string_equal(s.app, "a");
}

static void test_limits_numbers(void **state)
{
        _cleanup_(jobspec_done) struct jobspec s = {};

        decode_ok("{\"app\":\"python3\",\"source\":\"x\",\"limits\":{\"memory\":67108864,"
                  "\"pids\":32,\"cpus\":0.5,\"cpu_time\":2.5,\"wall_time\":10,"
                  "\"output_limit\":1048576,\"file_size\":4096,\"open_files\":64}}",
                  &s);
        assert_int_equal(s.limits.set, 0xff);
        assert_int_equal(s.limits.memory, 64 << 20);
        assert_int_equal(s.limits.pids, 32);
        assert_true(s.limits.cpus == 0.5);
        assert_int_equal(s.limits.cpu_time_ns, UINT64_C(2500000000));
        assert_int_equal(s.limits.wall_time_ns, UINT64_C(10000000000));
        assert_int_equal(s.limits.output_limit, 1 << 20);
        assert_int_equal(s.limits.file_size, 4096);
        assert_int_equal(s.limits.open_files, 64);
        jobspec_done(&s);

        /* Some only; exactly the app's maximum; the smallest values. */
        decode_ok("{\"app\":\"python3\",\"source\":\"x\",\"limits\":{\"pids\":64,\"cpus\":2,"
                  "\"wall_time\":30}}",
                  &s);
        assert_int_equal(s.limits.set,
                         JOBSPEC_LIMIT_PIDS | JOBSPEC_LIMIT_CPUS | JOBSPEC_LIMIT_WALL_TIME);
        assert_int_equal(s.limits.memory, 0);
        assert_true(s.limits.cpus == 2.0);
        jobspec_done(&s);
        decode_ok("{\"app\":\"python3\",\"source\":\"x\",\"limits\":{\"memory\":1,\"pids\":1,"
                  "\"cpus\":0.01,\"cpu_time\":0.000000001,\"wall_time\":1e-9,"
                  "\"output_limit\":1,\"file_size\":1,\"open_files\":4}}",
                  &s);
        assert_int_equal(s.limits.cpu_time_ns, 1);
        assert_int_equal(s.limits.wall_time_ns, 1);
        jobspec_done(&s);
        decode_ok("{\"app\":\"python3\",\"source\":\"x\",\"limits\":{}}", &s);
        assert_int_equal(s.limits.set, 0);
}

static void test_limits_strings(void **state)
{
        _cleanup_(jobspec_done) struct jobspec s = {};

        decode_ok("{\"app\":\"python3\",\"source\":\"x\",\"limits\":{\"memory\":\"64M\","
                  "\"output_limit\":\"1M\",\"file_size\":\"512K\"}}",
                  &s);
        assert_int_equal(s.limits.memory, 64 << 20);
        assert_int_equal(s.limits.output_limit, 1 << 20);
        assert_int_equal(s.limits.file_size, 512 << 10);
        assert_int_equal(s.limits.set,
                         JOBSPEC_LIMIT_MEMORY | JOBSPEC_LIMIT_OUTPUT | JOBSPEC_LIMIT_FILE_SIZE);
        jobspec_done(&s);
        decode_ok("{\"app\":\"python3\",\"source\":\"x\",\"limits\":{\"memory\":\"256MB\","
                  "\"output_limit\":\"4194304\",\"file_size\":\"16m\"}}",
                  &s);
        assert_int_equal(s.limits.memory, 256 << 20);
        assert_int_equal(s.limits.output_limit, 4 << 20);
        assert_int_equal(s.limits.file_size, 16 << 20);
}

static void test_bad_json(void **state)
{
        fails("", "invalid_json", 400);
        fails("{", "invalid_json", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\"", "invalid_json", 400); /* truncated */
        fails("{\"app\":\"sh\",\"source\":\"x", "invalid_json", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",}", "invalid_json", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\"} {}", "invalid_json", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\"}\0", "invalid_json", 400);
        fails("[]", "not_an_object", 400);
        fails("1", "not_an_object", 400);
        fails("\"x\"", "not_an_object", 400);
        fails("null", "not_an_object", 400);
        fails("[{\"app\":\"sh\",\"source\":\"x\"}]", "not_an_object", 400);

        fails("{\"app\":\"sh\",\"source\":\"\xff\"}", "invalid_utf8", 400);
        fails("{\"app\":\"sh\",\"source\":\"\xc0\xaf\"}", "invalid_utf8", 400);
        fails("{\"app\":\"sh\",\"source\":\"\xe0\x80\xaf\"}", "invalid_utf8", 400);
        fails("{\"app\":\"sh\",\"source\":\"\xed\xa0\x80\"}", "invalid_utf8", 400);
        fails("{\"app\":\"sh\",\"source\":\"\\ud800\"}", "invalid_utf8", 400);
        fails("{\"app\":\"sh\",\"files\":{\"\xc0\xae\xc0\xae\":\"x\"}}", "invalid_utf8", 400);
        fails("{\"app\":\"sh\",\"files\":{\"\\udc00\":\"x\"}}", "invalid_utf8", 400);

        fails("{\"app\":\"sh\",\"app\":\"sh\",\"source\":\"x\"}", "duplicate_key", 400);
        fails("{\"app\":\"sh\",\"files\":{\"a\":\"1\",\"a\":\"2\"}}", "duplicate_key", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"pids\":1,\"pids\":2}}",
              "duplicate_key", 400);
        fails("{\"app\":\"sh\",\"files\":{\"a\":{\"base64\":\"\",\"base64\":\"\"}}}",
              "duplicate_key", 400);

        fails("{\"app\":\"sh\",\"source\":\"x\",\"priority\":99999999999999999999}",
              "number_too_large", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"memory\":99999999999999999999}}",
              "number_too_large", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"cpu_time\":1e400}}",
              "number_too_large", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"memory\":1e400}}", "number_too_large",
              400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"memory\":-99999999999999999999}}",
              "number_too_large", 400);
}

static void test_depth(void **state)
{
        struct jobspec_bounds b = bounds_with_max();
        struct jobspec s = {};

        /* 32 levels (the body and 31 arrays) parse, and are an unknown field; 33 do not. */
        for (size_t n = 31; n <= 32; n++) {
                _cleanup_free_ char *open = repeat('[', n), *close = repeat(']', n);
                _cleanup_free_ char *s_ =
                        body("{\"app\":\"sh\",\"source\":\"x\",\"x\":%s1%s}", open, close);

                fails_s(s_, &b, n == 31 ? "unknown_field" : "too_deep", 400, NULL);
        }
        _cleanup_free_ char *deep = repeat('[', 100000);
        fails_s(deep, &b, "too_deep", 400, NULL);
        jobspec_done(&s);
}

static void test_unknown_fields(void **state)
{
        fails_msg("{\"app\":\"sh\",\"source\":\"x\",\"sources\":\"y\"}", "unknown_field", 400,
                  "unknown field 'sources'");
        fails_msg("{\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"memroy\":1}}", "unknown_field",
                  400, "unknown field 'limits.memroy'");
        fails_msg("{\"app\":\"sh\",\"files\":{\"a\":{\"b64\":\"\"}}}", "unknown_field", 400,
                  "unknown field 'files['a'].b64'");
        fails_msg("{\"app\":\"sh\",\"files\":{\"a\":{\"base64\":\"\",\"mode\":493}}}",
                  "unknown_field", 400, "unknown field 'files['a'].mode'");
        fails_msg("{\"app\":\"sh\",\"source\":{\"base64\":\"\",\"x\":1}}", "unknown_field", 400,
                  "unknown field 'source.x'");
        fails_msg("{\"app\":\"sh\",\"source\":\"x\",\"\\u001b[2J\\u0007\":1}", "unknown_field", 400,
                  "unknown field '\\x1b[2J\\x07'");
}

static void test_wrong_types(void **state)
{
        static const char *const cases[][2] = {
                {"\"app\":1,\"source\":\"x\"", "'app' must be a string, not an integer"},
                {"\"app\":null,\"source\":\"x\"", "'app' must be a string, not null"},
                {"\"app\":[\"sh\"],\"source\":\"x\"", NULL},
                {"\"app\":\"sh\",\"source\":1", "'source' must be a string or an object, not an "
                                                "integer"},
                {"\"app\":\"sh\",\"source\":[\"x\"]", NULL},
                {"\"app\":\"sh\",\"source\":null", NULL},
                {"\"app\":\"sh\",\"source\":{\"base64\":1}", "'source.base64' must be a string, "
                                                             "not an integer"},
                {"\"app\":\"sh\",\"files\":[]", "'files' must be an object, not an array"},
                {"\"app\":\"sh\",\"files\":\"main.py\"", NULL},
                {"\"app\":\"sh\",\"files\":{\"a\":1}",
                 "'files['a']' must be a string or an object"},
                {"\"app\":\"sh\",\"files\":{\"a\":null}", NULL},
                {"\"app\":\"sh\",\"files\":{\"a\":[]}", NULL},
                {"\"app\":\"sh\",\"files\":{\"a\":{\"base64\":null}}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"args\":\"a b\"", "'args' must be an array, not "
                                                                     "a string"},
                {"\"app\":\"sh\",\"source\":\"x\",\"args\":{}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"args\":[\"a\",1]",
                 "'args[1]' must be a string"},
                {"\"app\":\"sh\",\"source\":\"x\",\"args\":[null]", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"args\":[[\"a\"]]", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"stdin\":1", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"stdin\":[]", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"stdin\":{\"base64\":false}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":[]", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":\"64M\"", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"memory\":1.5}",
                 "'limits.memory' must be an integer or a string, not a real number"},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"memory\":true}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"pids\":\"32\"}",
                 "'limits.pids' must be an integer, not a string"},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"pids\":32.0}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"cpus\":\"1\"}",
                 "'limits.cpus' must be a number, not a string"},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"cpu_time\":\"2\"}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"wall_time\":null}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"output_limit\":[]}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"file_size\":{}}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"limits\":{\"open_files\":1.0}", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"priority\":\"1\"",
                 "'priority' must be an integer, not a string"},
                {"\"app\":\"sh\",\"source\":\"x\",\"priority\":1.5", NULL},
                {"\"app\":\"sh\",\"source\":\"x\",\"priority\":true", NULL},
        };
        struct jobspec_bounds b = bounds_with_max();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = body("{%s}", cases[i][0]);

                fails_s(s, &b, "wrong_type", 400, cases[i][1]);
        }
}

static void test_missing_and_conflicting(void **state)
{
        fails_msg("{\"source\":\"x\"}", "missing_field", 400, "missing field 'app'");
        fails_msg("{\"app\":\"sh\"}", "missing_field", 400, "missing field 'source' or 'files'");
        fails_msg("{\"app\":\"sh\",\"args\":[]}", "missing_field", 400,
                  "missing field 'source' or 'files'");
        fails_msg("{}", "missing_field", 400, NULL);
        fails_msg("{\"app\":\"sh\",\"files\":{\"a\":{}}}", "missing_field", 400,
                  "missing field 'files['a'].base64'");
        fails_msg("{\"app\":\"sh\",\"source\":\"x\",\"files\":{\"a\":\"y\"}}", "conflicting_fields",
                  400, "give either 'source' or 'files', not both");
}

static void test_app_names(void **state)
{
        static const char *const bad[] = {
                "",        "Python", "-x",      "_x",   ".x", "a b",
                "py/../x", "a/b",    "\\u00e9", "x\\n", "x!", "a\\u0001",
        };
        struct jobspec_bounds b = bounds_with_max();
        _cleanup_free_ char *a64 = repeat('a', 64), *a65 = repeat('a', 65);
        _cleanup_free_ char *ok = body("{\"app\":\"%s\",\"source\":\"\"}", a64);
        _cleanup_free_ char *long_ = body("{\"app\":\"%s\",\"source\":\"\"}", a65);
        _cleanup_(jobspec_done) struct jobspec s = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t = body("{\"app\":\"%s\",\"source\":\"\"}", bad[i]);

                fails_s(t, &b, "invalid_value", 400, NULL);
        }
        fails_msg("{\"app\":\"Py\\u001b[0m\",\"source\":\"\"}", "invalid_value", 400,
                  "'app' must match [a-z0-9][a-z0-9_.-]{0,63}, not 'Py\\x1b[0m'");
        fails_s(long_, &b, "out_of_range", 400, "'app' is longer than 64 bytes");
        decode_ok(ok, &s);
        jobspec_done(&s);
        decode_ok("{\"app\":\"ok.name-1_2\",\"source\":\"\"}", &s);
        jobspec_done(&s);
        decode_ok("{\"app\":\"9\",\"source\":\"\"}", &s);
}

static void test_file_names(void **state)
{
        static const char *const bad[][2] = {
                {"a/b", "file name 'a/b' must not contain '/'"},
                {"/etc/passwd", NULL},
                {"../x", NULL},
                {"x/", NULL},
                {"..", "file name '..' must not be '.' or '..'"},
                {".", "file name '.' must not be '.' or '..'"},
                {"", "file name '' must not be empty"},
                {"a\\u0001", "file name 'a\\x01' must not contain control characters"},
                {"a\\nb", NULL},
                {"\\t", NULL},
                {"\\u001f", NULL},
                {"del\\u007f", NULL},
                {"c1\\u0085", "file name 'c1\\xc2\\x85' must not contain control characters"},
                {"\\u009b31m", NULL},
        };
        struct jobspec_bounds b = bounds_with_max();
        _cleanup_free_ char *n255 = repeat('n', 255), *n256 = repeat('n', 256);
        _cleanup_free_ char *ok = body("{\"app\":\"sh\",\"files\":{\"%s\":\"\"}}", n255);
        _cleanup_free_ char *long_ = body("{\"app\":\"sh\",\"files\":{\"%s\":\"\"}}", n256);
        _cleanup_(jobspec_done) struct jobspec s = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t =
                        body("{\"app\":\"sh\",\"files\":{\"ok\":\"\",\"%s\":\"\"}}", bad[i][0]);

                fails_s(t, &b, "invalid_value", 400, bad[i][1]);
        }
        fails_s(long_, &b, "invalid_value", 400,
                "file name 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...' is longer than 255 bytes");
        /* 255 bytes of a 2-byte character is 510 bytes: the count is in bytes. */
        _cleanup_free_ char *wide = malloc(2 * 128 + 1);
        assert_non_null(wide);
        for (size_t i = 0; i < 128; i++)
                memcpy(wide + 2 * i, "\xc3\xa9", 2);
        wide[256] = '\0';
        _cleanup_free_ char *wide_body = body("{\"app\":\"sh\",\"files\":{\"%s\":\"\"}}", wide);
        fails_s(wide_body, &b, "invalid_value", 400, NULL);

        /* NUL: jansson refuses it in keys, with or without JSON_ALLOW_NUL. */
        fails("{\"app\":\"sh\",\"files\":{\"\\u0000\":\"x\"}}", "nul_character", 400);
        fails("{\"app\":\"sh\",\"files\":{\"a\\u0000.py\":\"x\"}}", "nul_character", 400);

        decode_ok(ok, &s);
        assert_int_equal(strlen(s.files[0].name), 255);
}

static void test_counts(void **state)
{
        struct jobspec_bounds b = bounds_with_max();
        _cleanup_(jobspec_done) struct jobspec s = {};
        char *p;

        /* 64 files pass, 65 do not. */
        for (size_t n = 64; n <= 65; n++) {
                _cleanup_free_ char *t = malloc(64 + n * 16);

                assert_non_null(t);
                p = stpcpy(t, "{\"app\":\"sh\",\"files\":{");
                for (size_t i = 0; i < n; i++)
                        p += sprintf(p, "%s\"f%zu\":\"%zu\"", i ? "," : "", i, i);
                strcpy(p, "}}");
                if (n == 64) {
                        decode_ok(t, &s);
                        assert_int_equal(s.n_files, 64);
                        assert_string_equal(s.files[63].name, "f63");
                        jobspec_done(&s);
                } else {
                        fails_s(t, &b, "too_many", 413,
                                "'files' has 65 entries, over the maximum of 64");
                }
        }
        fails_msg("{\"app\":\"sh\",\"files\":{}}", "out_of_range", 400,
                  "'files' must have at least one entry");

        /* 256 arguments pass, 257 do not. */
        for (size_t n = 256; n <= 257; n++) {
                _cleanup_free_ char *t = malloc(64 + n * 4);

                assert_non_null(t);
                p = stpcpy(t, "{\"app\":\"sh\",\"source\":\"\",\"args\":[");
                for (size_t i = 0; i < n; i++)
                        p = stpcpy(p, i ? ",\"a\"" : "\"a\"");
                strcpy(p, "]}");
                if (n == 256) {
                        decode_ok(t, &s);
                        assert_int_equal(s.n_args, 256);
                        assert_null(s.args[256]);
                        jobspec_done(&s);
                } else {
                        fails_s(t, &b, "too_many", 413,
                                "'args' has 257 entries, over the maximum of 256");
                }
        }

        /* An argument of 4096 bytes passes, 4097 does not; NUL never. */
        _cleanup_free_ char *a4096 = repeat('x', 4096), *a4097 = repeat('x', 4097);
        _cleanup_free_ char *ok = body("{\"app\":\"sh\",\"source\":\"\",\"args\":[\"%s\"]}", a4096);
        _cleanup_free_ char *bad =
                body("{\"app\":\"sh\",\"source\":\"\",\"args\":[\"\",\"%s\"]}", a4097);
        decode_ok(ok, &s);
        assert_int_equal(strlen(s.args[0]), 4096);
        fails_s(bad, &b, "out_of_range", 400, "'args[1]' is longer than 4096 bytes");
        fails("{\"app\":\"sh\",\"source\":\"\",\"args\":[\"a\\u0000b\"]}", "nul_character", 400);

        /* Thousands of values: refused before jansson builds them. */
        _cleanup_free_ char *swarm = malloc(3 * 10000 + 64);
        assert_non_null(swarm);
        p = stpcpy(swarm, "{\"app\":\"sh\",\"source\":\"\",\"args\":[");
        for (size_t i = 0; i < 10000; i++)
                p = stpcpy(p, i ? ",{}" : "{}");
        strcpy(p, "]}");
        fails_s(swarm, &b, "too_complex", 400, NULL);
}

static void test_sizes(void **state)
{
        struct jobspec_bounds b = bounds_with_max();
        _cleanup_(jobspec_done) struct jobspec s = {};

        b.max_content = 8;
        b.max_stdin = 4;
        b.max_body = 200;
        fails_s("{\"app\":\"sh\",\"source\":\"123456789\"}", &b, "too_large", 413,
                "'source' is 9 bytes, over the maximum of 8");
        fails_s("{\"app\":\"sh\",\"source\":{\"base64\":\"MTIzNDU2Nzg5\"}}", &b, "too_large", 413,
                NULL);
        fails_s("{\"app\":\"sh\",\"files\":{\"a\":\"12345\",\"b\":\"6789\"}}", &b, "too_large", 413,
                "'files['b']' takes the files over their maximum of 8 bytes together");
        fails_s("{\"app\":\"sh\",\"files\":{\"a\":\"1234\",\"b\":{\"base64\":\"MTIzNDU=\"}}}", &b,
                "too_large", 413, NULL);
        fails_s("{\"app\":\"sh\",\"source\":\"\",\"stdin\":\"12345\"}", &b, "too_large", 413,
                "'stdin' is 5 bytes, over the maximum of 4");
        fails_s("{\"app\":\"sh\",\"source\":\"\",\"stdin\":{\"base64\":\"MTIzNDU=\"}}", &b,
                "too_large", 413, NULL);
        /* At the caps exactly. */
        struct json_error err = {};
        const char *at =
                "{\"app\":\"sh\",\"files\":{\"a\":\"1234\",\"b\":{\"base64\":\"MTIzNA==\"}},"
                "\"stdin\":\"1234\"}";
        assert_int_equal(jobspec_decode(at, strlen(at), &b, &s, &err), 0);
        assert_int_equal(s.files[1].size, 4);
        jobspec_done(&s);

        /* The body itself. */
        _cleanup_free_ char *pad = repeat(' ', 200);
        _cleanup_free_ char *big = body("{\"app\":\"sh\",\"source\":\"\"%s}", pad);
        fails_s(big, &b, "too_large", 413, NULL);
        assert_int_equal(jobspec_decode(big, strlen(big), &b, &s, &err), -E2BIG);

        /* The default cap, 16 MiB: one byte over. */
        struct jobspec_bounds d = bounds_with_max();
        size_t n = JOBSPEC_DEFAULT_MAX_CONTENT + 1;
        static const char head[] = "{\"app\":\"sh\",\"source\":\"";
        _cleanup_free_ char *huge = malloc(sizeof(head) + n + 4);
        assert_non_null(huge);
        memcpy(huge, head, sizeof(head) - 1);
        char *p = huge + sizeof(head) - 1;
        memset(p, 'x', n);
        strcpy(p + n, "\"}");
        fails_s(huge, &d, "too_large", 413,
                "'source' is 16777217 bytes, over the maximum of 16777216");
        strcpy(p + n - 1, "\"}");
        assert_int_equal(jobspec_decode(huge, strlen(huge), &d, &s, &err), 0);
        assert_int_equal(s.source_size, JOBSPEC_DEFAULT_MAX_CONTENT);
}

static void test_base64(void **state)
{
        static const char *const bad[][2] = {
                {"A", "'files['f'].base64' is not strict base64 (at offset 1)"},
                {"AB", NULL},
                {"ABC", NULL},
                {"ABCDE", NULL},
                {"A===", NULL},
                {"====", "'files['f'].base64' is not strict base64 (at offset 0)"},
                {"AB=C", NULL},
                {"AB==AB==", NULL},
                {"QQ=", NULL},
                {"QR==", "'files['f'].base64' is not strict base64 (at offset 1)"}, /* bits left */
                {"QUJ=", NULL},
                {"-_8=", NULL}, /* the URL alphabet */
                {"QQ==\\n", NULL},
                {"QUJD\\nREVG", NULL},
                {" QUJD", NULL},
                {"QUJD ", NULL},
                {"QU\\u0000J", NULL},
                {"QUJD\xc3\xa9", NULL},
        };
        struct jobspec_bounds b = bounds_with_max();
        _cleanup_(jobspec_done) struct jobspec s = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t =
                        body("{\"app\":\"sh\",\"files\":{\"f\":{\"base64\":\"%s\"}}}", bad[i][0]);

                /* \u0000 is refused by the parser, the rest by the decoder. */
                fails_s(t, &b, strstr(bad[i][0], "u0000") ? "nul_character" : "invalid_value", 400,
                        bad[i][1]);
        }

        decode_ok("{\"app\":\"sh\",\"files\":{\"a\":{\"base64\":\"QQ==\"},\"b\":{\"base64\":\"QUI="
                  "\"},"
                  "\"c\":{\"base64\":\"QUJD\"},\"d\":{\"base64\":\"+/+/\"},"
                  "\"e\":{\"base64\":\"AAAAAA==\"}}}",
                  &s);
        assert_memory_equal(s.files[0].data, "A", 2);
        assert_memory_equal(s.files[1].data, "AB", 3);
        assert_memory_equal(s.files[2].data, "ABC", 4);
        assert_int_equal(s.files[3].size, 3);
        assert_memory_equal(s.files[3].data, "\xfb\xff\xbf", 3);
        assert_int_equal(s.files[4].size, 4);
        assert_memory_equal(s.files[4].data, "\0\0\0\0", 5);
}

static void test_limit_values(void **state)
{
        static const char *const bad[][3] = {
                /* zero */
                {"\"memory\":0", "out_of_range",
                 "'limits.memory' must be between 1 and "
                 "1125899906842624 bytes"},
                {"\"memory\":\"0\"", "out_of_range", NULL},
                {"\"memory\":\"0K\"", "out_of_range", NULL},
                {"\"pids\":0", "out_of_range", "'limits.pids' must be between 1 and 4194304"},
                {"\"cpus\":0", "out_of_range", "'limits.cpus' must be between 0.01 and 4096"},
                {"\"cpu_time\":0", "out_of_range",
                 "'limits.cpu_time' must be more than 0 and at "
                 "most 1e+06 seconds"},
                {"\"wall_time\":0.0", "out_of_range", NULL},
                {"\"output_limit\":0", "out_of_range", NULL},
                {"\"file_size\":\"0\"", "out_of_range", NULL},
                {"\"open_files\":0", "out_of_range",
                 "'limits.open_files' must be between 4 and "
                 "1048576"},
                {"\"open_files\":3", "out_of_range", NULL},
                /* negative */
                {"\"memory\":-1", "out_of_range", NULL},
                {"\"memory\":\"-1\"", "invalid_value", NULL},
                {"\"pids\":-5", "out_of_range", NULL},
                {"\"cpus\":-0.5", "out_of_range", NULL},
                {"\"cpu_time\":-1", "out_of_range", NULL},
                {"\"wall_time\":-0.001", "out_of_range", NULL},
                {"\"output_limit\":-1", "out_of_range", NULL},
                {"\"file_size\":-9223372036854775808", "out_of_range", NULL},
                {"\"open_files\":-1", "out_of_range", NULL},
                /* too small to mean anything, too large for anyone */
                {"\"cpu_time\":1e-10", "out_of_range", NULL},
                {"\"cpus\":0.001", "out_of_range", NULL},
                {"\"memory\":\"2000000G\"", "out_of_range", NULL},
                {"\"memory\":1125899906842625", "out_of_range", NULL},
                {"\"memory\":\"99999999999999999999\"", "out_of_range", NULL},
                {"\"pids\":4194305", "out_of_range", NULL},
                {"\"cpus\":4097", "out_of_range", NULL},
                {"\"wall_time\":1000001", "out_of_range", NULL},
                {"\"cpu_time\":1e300", "out_of_range", NULL},
                {"\"open_files\":1048577", "out_of_range", NULL},
                /* malformed sizes */
                {"\"memory\":\"64X\"", "invalid_value",
                 "'limits.memory' must be a byte count like "
                 "67108864 or a size like '64M', not '64X'"},
                {"\"memory\":\"unlimited\"", "invalid_value", NULL},
                {"\"memory\":\"\"", "invalid_value", NULL},
                {"\"memory\":\" 64M\"", "invalid_value", NULL},
                {"\"memory\":\"64M \"", "invalid_value", NULL},
                {"\"memory\":\"0x40\"", "invalid_value", NULL},
                {"\"memory\":\"1.5G\"", "invalid_value", NULL},
                {"\"output_limit\":\"1MM\"", "invalid_value", NULL},
                {"\"file_size\":\"+1\"", "invalid_value", NULL},
        };
        struct jobspec_bounds b = JOBSPEC_BOUNDS_DEFAULT; /* no app maximum: only these */

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t =
                        body("{\"app\":\"sh\",\"source\":\"\",\"limits\":{%s}}", bad[i][0]);

                fails_s(t, &b, bad[i][1], 400, bad[i][2]);
        }

        fails_msg("{\"app\":\"sh\",\"source\":\"\",\"priority\":101}", "out_of_range", 400,
                  "'priority' must be between -100 and 100");
        fails_msg("{\"app\":\"sh\",\"source\":\"\",\"priority\":-101}", "out_of_range", 400, NULL);
        fails_msg("{\"app\":\"sh\",\"source\":\"\",\"priority\":-9223372036854775808}",
                  "out_of_range", 400, NULL);
}

static void test_limit_above_max(void **state)
{
        static const char *const over[][2] = {
                {"\"memory\":268435457", "'limits.memory' is 268435457 bytes, above the app's "
                                         "maximum of 268435456 bytes"},
                {"\"memory\":\"1G\"", NULL},
                {"\"pids\":65", "'limits.pids' is 65, above the app's maximum of 64"},
                {"\"cpus\":2.5", "'limits.cpus' is 2.5 cpus, above the app's maximum of 2 cpus"},
                {"\"cpu_time\":10.001", "'limits.cpu_time' is 10.001 seconds, above the app's "
                                        "maximum of 10 seconds"},
                {"\"wall_time\":31", NULL},
                {"\"output_limit\":\"5M\"", NULL},
                {"\"file_size\":16777217", NULL},
                {"\"open_files\":257", "'limits.open_files' is 257, above the app's maximum of "
                                       "256"},
        };
        struct jobspec_bounds b = bounds_with_max();
        struct jobspec_limits none = {};
        struct jobspec_bounds zero = JOBSPEC_BOUNDS_DEFAULT;
        _cleanup_(jobspec_done) struct jobspec s = {};
        struct json_error err = {};

        for (size_t i = 0; i < ELEMENTSOF(over); i++) {
                _cleanup_free_ char *t =
                        body("{\"app\":\"sh\",\"source\":\"\",\"limits\":{%s}}", over[i][0]);

                fails_s(t, &b, "limit_exceeded", 422, over[i][1]);
                /* Without an app maximum, the same body decodes; the check comes later. */
                zero.app_max = NULL;
                assert_int_equal(jobspec_decode(t, strlen(t), &zero, &s, &err), 0);
                assert_int_equal(jobspec_check_limits(&s, &app_max, &err), -ERANGE);
                assert_string_equal(err.code, "limit_exceeded");
                assert_int_equal(err.status, 422);
                /* An app maximum of 0: the job may not ask for that limit at all. */
                assert_int_equal(jobspec_check_limits(&s, &none, &err), -ERANGE);
                jobspec_done(&s);
        }

        /* Limits the job does not give are not checked. */
        const char *t = "{\"app\":\"sh\",\"source\":\"\",\"limits\":{\"pids\":1}}";
        assert_int_equal(jobspec_decode(t, strlen(t), &zero, &s, &err), 0);
        none.pids = 1;
        assert_int_equal(jobspec_check_limits(&s, &none, &err), 0);
}

static void test_messages_are_safe(void **state)
{
        struct jobspec_bounds b = bounds_with_max();
        _cleanup_free_ char *t = NULL;
        char *p;

        /* A long name of control characters: escaped, cut, one line. */
        t = malloc(300 * 6 + 64);
        assert_non_null(t);
        p = stpcpy(t, "{\"app\":\"sh\",\"files\":{\"");
        for (size_t i = 0; i < 300; i++)
                p = stpcpy(p, "\\u0001");
        strcpy(p, "\":\"\"}}");
        fails_s(t, &b, "invalid_value", 400, NULL);

        fails_msg("{\"app\":\"sh\",\"files\":{\"\\u001b]0;pwn\\u0007\\n\":{\"base64\":\"!\"}}}",
                  "invalid_value", 400,
                  "file name '\\x1b]0;pwn\\x07\\x0a' must not contain control characters");
        fails_msg("{\"app\":\"sh\",\"files\":{\"it's\":{\"base64\":\"!!!!\"}}}", "invalid_value",
                  400, "'files['it\\x27s'].base64' is not strict base64 (at offset 0)");
}

#define DID  "0123456789abcdef0123456789abcdef"
#define DID2 "fedcba9876543210fedcba9876543210"

static void test_inputs(void **state)
{
        _cleanup_(jobspec_done) struct jobspec spec = {};
        _cleanup_free_ char *many = NULL;
        char *p;

        decode_ok("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID
                  "\",\"path\":\"in.csv\"},{\"path\":\"b\",\"data\":\"" DID "\"}]}",
                  &spec);
        assert_int_equal(spec.n_inputs, 2);
        assert_string_equal(spec.inputs[0].data, DID);
        assert_string_equal(spec.inputs[0].path, "in.csv");
        assert_string_equal(spec.inputs[1].path, "b");
        jobspec_done(&spec);
        decode_ok("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[]}", &spec);
        assert_int_equal(spec.n_inputs, 0);
        jobspec_done(&spec);
        decode_ok("{\"app\":\"sh\",\"files\":{\"a\":\"1\"},\"inputs\":[{\"data\":\"" DID2
                  "\",\"path\":\"c\"}]}",
                  &spec);
        assert_int_equal(spec.n_inputs, 1);

        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":{}}", "wrong_type", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[\"" DID "\"]}", "wrong_type", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID "\"}]}",
              "missing_field", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"path\":\"a\"}]}", "missing_field",
              400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID
              "\",\"path\":\"a\",\"mode\":1}]}",
              "unknown_field", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"0123\",\"path\":\"a\"}]}",
              "invalid_value", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":"
              "\"0123456789ABCDEF0123456789ABCDEF\",\"path\":\"a\"}]}",
              "invalid_value", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID
              "\",\"path\":\"a/b\"}]}",
              "invalid_value", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID
              "\",\"path\":\"..\"}]}",
              "invalid_value", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID "\",\"path\":\"\"}]}",
              "invalid_value", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID
              "\",\"path\":\"a\\n\"}]}",
              "invalid_value", 400);
        /* no two inputs, nor an input and a file, at one path */
        fails("{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[{\"data\":\"" DID
              "\",\"path\":\"a\"},{\"data\":\"" DID2 "\",\"path\":\"a\"}]}",
              "conflicting_fields", 400);
        fails("{\"app\":\"sh\",\"files\":{\"a\":\"1\"},\"inputs\":[{\"data\":\"" DID
              "\",\"path\":\"a\"}]}",
              "conflicting_fields", 400);

        /* at most JOBSPEC_MAX_INPUTS */
        many = malloc((JOBSPEC_MAX_INPUTS + 1) * 64 + 64);
        assert_non_null(many);
        p = many + sprintf(many, "{\"app\":\"sh\",\"source\":\"x\",\"inputs\":[");
        for (int i = 0; i <= JOBSPEC_MAX_INPUTS; i++)
                p += sprintf(p, "%s{\"data\":\"" DID "\",\"path\":\"f%d\"}", i ? "," : "", i);
        strcpy(p, "]}");
        fails_s(many, &(struct jobspec_bounds) JOBSPEC_BOUNDS_DEFAULT, "too_many", 413, NULL);
        /* one fewer is fine */
        p = strrchr(many, '{');
        strcpy(p - 1, "]}");
        jobspec_done(&spec);
        decode_ok(many, &spec);
        assert_int_equal(spec.n_inputs, JOBSPEC_MAX_INPUTS);
}

static void test_replicas(void **state)
{
        _cleanup_(jobspec_done) struct jobspec a = {};
        _cleanup_(jobspec_done) struct jobspec b = {};
        _cleanup_(jobspec_done) struct jobspec c = {};

        /* default: one replica, a quorum of one */
        decode_ok("{\"app\":\"sh\",\"source\":\"x\"}", &a);
        assert_int_equal(a.replicas, 1);
        assert_int_equal(a.quorum, 1);
        /* the default quorum is the smallest majority */
        decode_ok("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":4}", &b);
        assert_int_equal(b.replicas, 4);
        assert_int_equal(b.quorum, 3);
        decode_ok("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":16,\"quorum\":16}", &c);
        assert_int_equal(c.replicas, 16);
        assert_int_equal(c.quorum, 16);

        fails("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":0}", "out_of_range", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":17}", "out_of_range", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":\"3\"}", "wrong_type", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":1.5}", "wrong_type", 400);
        /* not a majority: two disjoint sets of workers could both win */
        fails_msg("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":4,\"quorum\":2}", "out_of_range",
                  400, "'quorum' must be a majority of the 4 replicas: 3..4, not 2");
        fails("{\"app\":\"sh\",\"source\":\"x\",\"replicas\":3,\"quorum\":4}", "out_of_range", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"quorum\":2}", "out_of_range", 400);
        fails("{\"app\":\"sh\",\"source\":\"x\",\"quorum\":0}", "out_of_range", 400);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_source),
                cmocka_unit_test(test_files),
                cmocka_unit_test(test_limits_numbers),
                cmocka_unit_test(test_limits_strings),
                cmocka_unit_test(test_bad_json),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_unknown_fields),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_missing_and_conflicting),
                cmocka_unit_test(test_app_names),
                cmocka_unit_test(test_file_names),
                cmocka_unit_test(test_counts),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_limit_values),
                cmocka_unit_test(test_limit_above_max),
                cmocka_unit_test(test_messages_are_safe),
                cmocka_unit_test(test_inputs),
                cmocka_unit_test(test_replicas),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
