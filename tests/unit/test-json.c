/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "unit.h"

/* A message is one line of printable ASCII: never raw input. */
static void check_message(const char *m, const char *file, int line)
{
        _assert_true(m[0] != '\0', "message not empty", file, line);
        for (const char *p = m; *p; p++)
                _assert_true((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f,
                             "message is printable ASCII", file, line);
}

static void parse_fails_at(const char *buf, size_t len, const struct json_limits *limits, int r,
                           const char *code, int status, const char *file, int line)
{
        struct json_error err = {};
        json_t *j = (json_t *) 0x1;
        int rr;

        rr = limits ? json_parse_strict_limits(buf, len, limits, &j, &err)
                    : json_parse_strict(buf, len, &j, &err);
        _assert_int_equal(rr, r, file, line);
        _assert_string_equal(err.code, code, file, line);
        _assert_int_equal(err.status, status, file, line);
        _assert_true(j == (json_t *) 0x1, "ret untouched", file, line);
        check_message(err.message, file, line);
}

/* A literal, with its embedded NULs and without its terminating one. */
#define parse_fails(lit, r, code, status) \
        parse_fails_at(lit, sizeof(lit) - 1, NULL, r, code, status, __FILE__, __LINE__)
#define invalid_json(lit)  parse_fails(lit, -EBADMSG, "invalid_json", 400)
#define invalid_utf8(lit)  parse_fails(lit, -EBADMSG, "invalid_utf8", 400)
#define not_an_object(lit) parse_fails(lit, -EBADMSG, "not_an_object", 400)

static json_t *parse_ok_at(const char *buf, size_t len, const char *file, int line)
{
        struct json_error err = {};
        json_t *j = NULL;

        _assert_int_equal(json_parse_strict(buf, len, &j, &err), 0, file, line);
        _assert_true(json_is_object(j), "an object", file, line);
        return j;
}

#define parse_ok(s) parse_ok_at(s, strlen(s), __FILE__, __LINE__)

/* n nested arrays around 1, inside {"a": ...} when in_object (which is one more level). */
static char *nested(size_t n, bool in_object)
{
        size_t len = 2 * n + 1 + (in_object ? 6 : 0) + 1;
        char *s = malloc(len), *p = s;

        assert_non_null(s);
        if (in_object)
                p = stpcpy(p, "{\"a\":");
        memset(p, '[', n);
        p += n;
        *p++ = '1';
        memset(p, ']', n);
        p += n;
        if (in_object)
                *p++ = '}';
        *p = '\0';
        return s;
}

static void test_parse_ok(void **state)
{
        _cleanup_json_ json_t *a = NULL, *b = NULL, *c = NULL;
        /* The length is what counts: what follows it is not read. */
        static const char buf[] = "{\"a\": [1, 2.5, \"\\ud83d\\ude00\", true, null, {}]}GARBAGE";
        struct json_error err = {};

        assert_int_equal(json_parse_strict(buf, strlen(buf) - strlen("GARBAGE"), &a, &err), 0);
        assert_int_equal(json_array_size(json_object_get(a, "a")), 6);
        assert_string_equal(json_string_value(json_array_get(json_object_get(a, "a"), 2)),
                            "\xf0\x9f\x98\x80");

        b = parse_ok(" \t\r\n{ } \n");
        c = parse_ok(
                "{\"big\": 9223372036854775807, \"small\": -9223372036854775808, "
                "\"tiny\": 1e-400, \"exp\": 1E+2, \"\\u00e9t\\u00e9\": \"\xc3\xa9t\xc3\xa9\"}");
        assert_true(json_integer_value(json_object_get(c, "big")) == INT64_MAX);
        assert_true(json_integer_value(json_object_get(c, "small")) == INT64_MIN);
        assert_true(json_real_value(json_object_get(c, "tiny")) == 0.0);
        assert_non_null(json_object_get(c, "\xc3\xa9t\xc3\xa9"));
}

static void test_parse_malformed(void **state)
{
        invalid_json("");
        invalid_json("   ");
        invalid_json("{");
        invalid_json("{\"a\":");
        invalid_json("{\"a\":1");
        invalid_json("{\"a\":\"unterminated");
        invalid_json("{\"a\" 1}");
        invalid_json("{,}");
        invalid_json("{\"a\":1,}");
        invalid_json("{\"a\":[1,]}");
        invalid_json("{'a':1}");
        invalid_json("{a:1}");
        invalid_json("{\"a\":01}");
        invalid_json("{\"a\":1.}");
        invalid_json("{\"a\":.5}");
        invalid_json("{\"a\":-}");
        invalid_json("{\"a\":NaN}");
        invalid_json("{\"a\":Infinity}");
        invalid_json("{\"a\":-Infinity}");
        invalid_json("{\"a\":tru}");
        invalid_json("{\"a\":\"\\x\"}");
        invalid_json("{\"a\":\"\\u12\"}");
        invalid_json("{\"a\":\"tab\there\"}"); /* raw control character in a string */
        invalid_json("{\"a\":\"x\0y\"}");      /* raw NUL byte */
        invalid_json("{\"a\":1}\0");           /* trailing NUL */
        invalid_json("{} x");                  /* trailing data */
        invalid_json("{}{}");
        invalid_json("\xef\xbb\xbf{}"); /* a byte order mark */
        invalid_json("{\"a\":1} // comment");
        invalid_json("/* c */ {}");
}

static void test_parse_not_an_object(void **state)
{
        not_an_object("[]");
        not_an_object("[{}]");
        not_an_object("1");
        not_an_object("-1.5");
        not_an_object("\"x\"");
        not_an_object("null");
        not_an_object("true");
        not_an_object("false");
}

static void test_parse_invalid_utf8(void **state)
{
        invalid_utf8("{\"a\":\"\xff\"}"); /* never valid */
        invalid_utf8("{\"a\":\"\xfe\"}");
        invalid_utf8("{\"a\":\"\x80\"}"); /* lone continuation byte */
        invalid_utf8("{\"a\":\"\xc3\"}"); /* truncated sequence */
        invalid_utf8("{\"a\":\"\xe2\x82\"}");
        invalid_utf8("{\"a\":\"\xc0\xaf\"}"); /* overlong '/' */
        invalid_utf8("{\"a\":\"\xc1\xbf\"}");
        invalid_utf8("{\"a\":\"\xe0\x80\xaf\"}");         /* overlong, 3 bytes */
        invalid_utf8("{\"a\":\"\xf0\x80\x80\xaf\"}");     /* overlong, 4 bytes */
        invalid_utf8("{\"a\":\"\xed\xa0\x80\"}");         /* encoded surrogate U+D800 */
        invalid_utf8("{\"a\":\"\xf4\x90\x80\x80\"}");     /* above U+10FFFF */
        invalid_utf8("{\"a\":\"\xf8\x88\x80\x80\x80\"}"); /* 5-byte form */
        invalid_utf8("{\"\xff\":1}");                     /* in a key */
        invalid_utf8("{\"a\":1,\xff}");                   /* outside strings */
        invalid_utf8("{\"a\":\"\\ud800\"}");              /* lone high surrogate */
        invalid_utf8("{\"a\":\"\\udc00\"}");              /* lone low surrogate */
        invalid_utf8("{\"a\":\"\\ud800\\u0041\"}");       /* high, then not a low one */
        invalid_utf8("{\"\\udfff\":1}");
}

static void test_parse_nul(void **state)
{
        parse_fails("{\"a\":\"\\u0000\"}", -EBADMSG, "nul_character", 400);
        parse_fails("{\"a\":\"x\\u0000y\"}", -EBADMSG, "nul_character", 400);
        parse_fails("{\"\\u0000\":1}", -EBADMSG, "nul_character", 400);
        parse_fails("{\"a\\u0000b\":1}", -EBADMSG, "nul_character", 400);
        parse_fails("{\"a\":[\"\\u0000\"]}", -EBADMSG, "nul_character", 400);
}

static void test_parse_duplicate_keys(void **state)
{
        parse_fails("{\"a\":1,\"a\":2}", -EBADMSG, "duplicate_key", 400);
        parse_fails("{\"a\":1,\"b\":2,\"a\":1}", -EBADMSG, "duplicate_key", 400);
        parse_fails("{\"x\":{\"a\":1,\"a\":2}}", -EBADMSG, "duplicate_key", 400);
        parse_fails("{\"x\":[{\"a\":1,\"a\":{}}]}", -EBADMSG, "duplicate_key", 400);
        parse_fails("{\"a\":1,\"\\u0061\":2}", -EBADMSG, "duplicate_key", 400); /* same key */
        json_decref(parse_ok("{\"a\":1,\"A\":2,\"x\":{\"a\":1}}"));             /* case matters */
}

static void test_parse_depth(void **state)
{
        struct json_error err = {};
        json_t *j = NULL;

        for (size_t n = 1; n <= 33; n++) {
                _cleanup_free_ char *arrays = nested(n, false);
                _cleanup_free_ char *in_object = nested(n - 1, true);
                int want = n <= 32 ? 0 : -ELOOP;

                /* n levels either way: n arrays, or an object and n - 1 arrays. */
                assert_int_equal(json_parse_strict(arrays, strlen(arrays), &j, &err),
                                 n <= 32 ? -EBADMSG : -ELOOP); /* an array is not an object */
                assert_string_equal(err.code, n <= 32 ? "not_an_object" : "too_deep");
                assert_int_equal(json_parse_strict(in_object, strlen(in_object), &j, &err), want);
                if (want == 0) {
                        json_decref(j);
                        j = NULL;
                } else {
                        assert_string_equal(err.code, "too_deep");
                        assert_int_equal(err.status, 400);
                        check_message(err.message, __FILE__, __LINE__);
                }
        }

        /* Far past jansson's own 2048: refused in the pre-scan, before any recursion. */
        _cleanup_free_ char *deep = nested(1000000, true);
        assert_int_equal(json_parse_strict(deep, strlen(deep), &j, &err), -ELOOP);
        assert_string_equal(err.code, "too_deep");

        /* Brackets inside strings, escaped quotes included, are not nesting. */
        json_decref(parse_ok("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\","
                             "\"b\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\":1}"));
        /* Closing brackets do not make depth negative. */
        invalid_json("]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]{}");
}

static void test_parse_huge_numbers(void **state)
{
        parse_fails("{\"a\":99999999999999999999}", -EBADMSG, "number_too_large", 400);
        parse_fails("{\"a\":-99999999999999999999}", -EBADMSG, "number_too_large", 400);
        parse_fails("{\"a\":9223372036854775808}", -EBADMSG, "number_too_large", 400);
        parse_fails("{\"a\":1e400}", -EBADMSG, "number_too_large", 400);
        parse_fails("{\"a\":-1e400}", -EBADMSG, "number_too_large", 400);
        parse_fails("{\"a\":[1.8e308]}", -EBADMSG, "number_too_large", 400);
}

static void test_parse_too_large(void **state)
{
        const struct json_limits small = {.max_bytes = 8, .max_depth = 32, .max_values = 100};
        size_t len = JSON_DEFAULT_MAX_BYTES + 1;
        _cleanup_free_ char *big = malloc(len);
        _cleanup_json_ json_t *j = NULL;
        struct json_error err = {};

        parse_fails_at("{\"a\":123}", 9, &small, -E2BIG, "too_large", 413, __FILE__, __LINE__);
        assert_int_equal(json_parse_strict_limits("{\"a\":12}", 8, &small, &j, &err), 0);

        /* One byte over the default: refused before being read. */
        assert_non_null(big);
        memset(big, ' ', len);
        big[0] = '{';
        big[len - 1] = '}';
        parse_fails_at(big, len, NULL, -E2BIG, "too_large", 413, __FILE__, __LINE__);
        big[len - 2] = '}';
        json_decref(j);
        j = parse_ok_at(big, len - 1, __FILE__, __LINE__);
}

static void test_parse_too_complex(void **state)
{
        const struct json_limits few = {.max_bytes = 1 << 20, .max_depth = 32, .max_values = 8};
        _cleanup_json_ json_t *j = NULL;
        struct json_error err = {};

        /* Two containers and 6 separators: 8 values. */
        assert_int_equal(json_parse_strict_limits("{\"a\":[1,2,3,4,5,6,7]}", 21, &few, &j, &err),
                         0);
        parse_fails_at("{\"a\":[1,2,3,4,5,6,7,8]}", 23, &few, -EBADMSG, "too_complex", 400,
                       __FILE__, __LINE__);
        parse_fails_at("{\"a\":[{},{},{},{},{}]}", 22, &few, -EBADMSG, "too_complex", 400, __FILE__,
                       __LINE__);
        /* Separators inside strings do not count. */
        json_decref(j);
        j = NULL;
        assert_int_equal(json_parse_strict_limits("{\"a\":\",,,,,,,,,,,,[{\"}", 22, &few, &j, &err),
                         0);
}

static void test_parse_message_is_safe(void **state)
{
        static const char evil[] = "{\"a\":tru\x1b[31m\x01\x7f\"}";
        struct json_error err = {};
        json_t *j = NULL;

        /* jansson's " near '...'" quotes input: it is cut. */
        assert_int_equal(json_parse_strict(evil, sizeof(evil) - 1, &j, &err), -EBADMSG);
        assert_string_equal(err.message, "invalid JSON at line 1, column 8: invalid token");
        assert_int_equal(json_parse_strict("{\"a\":\"\\ud800\"}", 14, &j, &err), -EBADMSG);
        assert_string_equal(err.message,
                            "invalid JSON at line 1, column 13: invalid Unicode '\\uD800'");
        assert_int_equal(json_parse_strict("[1]", 3, &j, &err), -EBADMSG);
        assert_string_equal(err.message, "the body must be a JSON object, not an array");
        assert_int_equal(json_parse_strict("{\"a\":1,\"a\":2}", 13, &j, &err), -EBADMSG);
        assert_string_equal(err.message, "invalid JSON at line 1, column 10: duplicate object key");
        assert_int_equal(json_parse_strict(NULL, 0, &j, &err), -EBADMSG);
        assert_string_equal(err.code, "invalid_json");
        assert_string_equal(err.message, "the body is empty");
        assert_int_equal(json_parse_strict(NULL, 3, &j, &err), -EINVAL);
        assert_string_equal(err.code, "invalid_json");
        /* err may be NULL. */
        assert_int_equal(json_parse_strict("[]", 2, &j, NULL), -EBADMSG);
}

#define check_fails(obj_, path_, fields_, r_, code_, msg_)                                      \
        do {                                                                                    \
                struct json_error _e = {};                                                      \
                const char *_m = (msg_);                                                        \
                assert_int_equal(                                                               \
                        json_check_fields(obj_, path_, fields_, ELEMENTSOF(fields_), &_e), r_); \
                assert_string_equal(_e.code, code_);                                            \
                assert_int_equal(_e.status, 400);                                               \
                if (_m)                                                                         \
                        assert_string_equal(_e.message, _m);                                    \
                check_message(_e.message, __FILE__, __LINE__);                                  \
        } while (0)

static const struct json_field test_fields[] = {
        {"i", JSON_FIELD_INTEGER, true},
        {"n", JSON_FIELD_NUMBER, false},
        {"s", JSON_FIELD_STRING, false},
        {"o", JSON_FIELD_OBJECT, false},
        {"a", JSON_FIELD_ARRAY, false},
        {"b", JSON_FIELD_BOOL, false},
        {"so", JSON_FIELD_STRING_OR_OBJECT, false},
        {"is", JSON_FIELD_INTEGER_OR_STRING, false},
        {"sn", JSON_FIELD_STRING_OR_NULL, false},
};

static json_t *obj(const char *s)
{
        json_t *j = NULL;

        assert_int_equal(json_parse_strict(s, strlen(s), &j, NULL), 0);
        return j;
}

static void test_check_fields(void **state)
{
        struct {
                const char *body;
                const char *msg; /* NULL: only the code is checked */
        } wrong[] = {
                {"{\"i\":1.0}", "'i' must be an integer, not a real number"},
                {"{\"i\":\"1\"}", "'i' must be an integer, not a string"},
                {"{\"i\":null}", "'i' must be an integer, not null"},
                {"{\"i\":1,\"n\":\"1\"}", "'n' must be a number, not a string"},
                {"{\"i\":1,\"n\":true}", "'n' must be a number, not a boolean"},
                {"{\"i\":1,\"s\":1}", "'s' must be a string, not an integer"},
                {"{\"i\":1,\"s\":[]}", "'s' must be a string, not an array"},
                {"{\"i\":1,\"o\":[]}", "'o' must be an object, not an array"},
                {"{\"i\":1,\"a\":{}}", "'a' must be an array, not an object"},
                {"{\"i\":1,\"b\":0}", "'b' must be true or false, not an integer"},
                {"{\"i\":1,\"b\":\"true\"}", NULL},
                {"{\"i\":1,\"so\":[]}", "'so' must be a string or an object, not an array"},
                {"{\"i\":1,\"so\":null}", NULL},
                {"{\"i\":1,\"is\":1.5}", "'is' must be an integer or a string, not a real number"},
                {"{\"i\":1,\"is\":{}}", NULL},
                {"{\"i\":1,\"sn\":1}", "'sn' must be a string or null, not an integer"},
                {"{\"i\":1,\"sn\":false}", NULL},
        };

        for (size_t k = 0; k < ELEMENTSOF(wrong); k++) {
                _cleanup_json_ json_t *j = obj(wrong[k].body);

                check_fails(j, NULL, test_fields, -EINVAL, "wrong_type", wrong[k].msg);
        }

        _cleanup_json_ json_t *good = obj("{\"i\":-1,\"n\":1,\"s\":\"\",\"o\":{},\"a\":[],"
                                          "\"b\":false,\"so\":{},\"is\":\"1K\",\"sn\":null}");
        assert_int_equal(json_check_fields(good, NULL, test_fields, ELEMENTSOF(test_fields), NULL),
                         0);
        _cleanup_json_ json_t *good2 =
                obj("{\"i\":1,\"n\":1.5,\"so\":\"x\",\"is\":2,\"sn\":\"g\"}");
        assert_int_equal(json_check_fields(good2, "", test_fields, ELEMENTSOF(test_fields), NULL),
                         0);

        _cleanup_json_ json_t *missing = obj("{\"n\":1}");
        check_fails(missing, NULL, test_fields, -EINVAL, "missing_field", "missing field 'i'");
        check_fails(missing, "limits", test_fields, -EINVAL, "missing_field",
                    "missing field 'limits.i'");

        _cleanup_json_ json_t *unknown = obj("{\"i\":1,\"zz\":1}");
        check_fails(unknown, NULL, test_fields, -EINVAL, "unknown_field", "unknown field 'zz'");
        check_fails(unknown, "limits", test_fields, -EINVAL, "unknown_field",
                    "unknown field 'limits.zz'");
        /* The first offending member is named, in the order of the body. */
        _cleanup_json_ json_t *order = obj("{\"zz\":1,\"i\":\"x\"}");
        check_fails(order, NULL, test_fields, -EINVAL, "unknown_field", "unknown field 'zz'");

        /* Unknown names are escaped and cut: never raw bytes, never all of them. */
        _cleanup_json_ json_t *evil =
                obj("{\"\\u001b[31m'\\\\\xc3\xa9\\u007f0123456789012345678901234567890123\":1}");
        check_fails(evil, NULL, test_fields, -EINVAL, "unknown_field",
                    "unknown field '\\x1b[31m\\x27\\x5c\\xc3\\xa9\\x7f0123456789012345678901...'");

        /* Not an object at all. */
        _cleanup_json_ json_t *arr = json_array();
        check_fails(arr, "limits", test_fields, -EINVAL, "wrong_type",
                    "'limits' must be an object, not an array");
        check_fails(NULL, NULL, test_fields, -EINVAL, "wrong_type",
                    "the body must be an object, not nothing");
}

static void test_get_int(void **state)
{
        _cleanup_json_ json_t *j = obj("{\"a\":5,\"r\":5.0,\"s\":\"5\",\"big\":9223372036854775807,"
                                       "\"o\":{\"x\":-7,\"o\":{\"y\":1}},\"arr\":[]}");
        struct json_error err = {};
        int64_t v = 42;

        assert_int_equal(json_get_int(j, "a", 0, 10, 1, &v, &err), 1);
        assert_int_equal(v, 5);
        assert_int_equal(json_get_int(j, "none", 0, 10, 3, &v, &err), 0);
        assert_int_equal(v, 3);
        assert_int_equal(json_get_int(j, "o.x", -10, 10, 0, &v, &err), 1);
        assert_int_equal(v, -7);
        assert_int_equal(json_get_int(j, "o.o.y", 0, 1, 0, &v, &err), 1);
        assert_int_equal(v, 1);
        assert_int_equal(json_get_int(j, "o.none.y", 0, 1, 9, &v, &err), 0);
        assert_int_equal(v, 9);
        assert_int_equal(json_get_int(j, "big", INT64_MIN, INT64_MAX, 0, &v, &err), 1);
        assert_true(v == INT64_MAX);

        v = 42;
        assert_int_equal(json_get_int(j, "a", 6, 10, 0, &v, &err), -ERANGE);
        assert_string_equal(err.code, "out_of_range");
        assert_string_equal(err.message, "'a' must be between 6 and 10");
        assert_int_equal(json_get_int(j, "a", -10, 4, 0, &v, &err), -ERANGE);
        assert_int_equal(json_get_int(j, "r", 0, 10, 0, &v, &err), -EINVAL);
        assert_string_equal(err.code, "wrong_type");
        assert_string_equal(err.message, "'r' must be an integer, not a real number");
        assert_int_equal(json_get_int(j, "s", 0, 10, 0, &v, &err), -EINVAL);
        assert_int_equal(json_get_int(j, "arr.x", 0, 10, 0, &v, &err), -EINVAL);
        assert_string_equal(err.message, "'arr' must be an object, not an array");
        assert_int_equal(json_get_int(j, "o.x.z", 0, 10, 0, &v, &err), -EINVAL);
        assert_string_equal(err.message, "'o.x' must be an object, not an integer");
        assert_int_equal(v, 42);

        assert_ptr_equal(json_get_path(j, "o.o.y"),
                         json_object_get(json_object_get(json_object_get(j, "o"), "o"), "y"));
        assert_null(json_get_path(j, "arr.x"));
        assert_null(json_get_path(j, "nope"));
}

static void test_get_number(void **state)
{
        _cleanup_json_ json_t *j =
                obj("{\"i\":2,\"r\":0.5,\"neg\":-0.0,\"s\":\"1\",\"tiny\":1e-300}");
        struct json_error err = {};
        double v = 42;

        assert_int_equal(json_get_number(j, "i", 0, 10, 1, &v, &err), 1);
        assert_true(v == 2.0);
        assert_int_equal(json_get_number(j, "r", 0, 10, 1, &v, &err), 1);
        assert_true(v == 0.5);
        assert_int_equal(json_get_number(j, "neg", 0, 10, 1, &v, &err), 1);
        assert_true(v == 0.0);
        assert_int_equal(json_get_number(j, "none", 0, 10, 1.5, &v, &err), 0);
        assert_true(v == 1.5);
        assert_int_equal(json_get_number(j, "tiny", 0.01, 10, 1, &v, &err), -ERANGE);
        assert_string_equal(err.code, "out_of_range");
        assert_string_equal(err.message, "'tiny' must be between 0.01 and 10");
        assert_int_equal(json_get_number(j, "i", 0, 1.5, 1, &v, &err), -ERANGE);
        assert_int_equal(json_get_number(j, "s", 0, 10, 1, &v, &err), -EINVAL);
        assert_string_equal(err.code, "wrong_type");
        assert_true(v == 1.5);

        /* Not from a parse, but the getter refuses what is not finite all the same. */
        _cleanup_json_ json_t *k = json_object();
        assert_int_equal(json_object_set_new(k, "big", json_real(1.7e308)), 0);
        assert_int_equal(json_get_number(k, "big", 0, 1e308, 0, &v, &err), -ERANGE);
        assert_int_equal(json_get_number(k, "big", 0, INFINITY, 0, &v, &err), 1);
}

static void test_get_string_and_bool(void **state)
{
        _cleanup_json_ json_t *j = obj("{\"s\":\"h\xc3\xa9\",\"e\":\"\",\"b\":true,\"n\":1}");
        struct json_error err = {};
        const char *s = "sentinel";
        size_t len = 99;
        bool b = false;

        assert_int_equal(json_get_string(j, "s", 3, &s, &len, &err), 1);
        assert_string_equal(s, "h\xc3\xa9");
        assert_int_equal(len, 3);
        assert_ptr_equal(s, json_string_value(json_object_get(j, "s"))); /* borrowed */
        assert_int_equal(json_get_string(j, "e", 0, &s, NULL, &err), 1);
        assert_string_equal(s, "");
        assert_int_equal(json_get_string(j, "none", 3, &s, &len, &err), 0);
        assert_null(s);
        assert_int_equal(len, 0);

        s = "sentinel";
        assert_int_equal(json_get_string(j, "s", 2, &s, &len, &err), -ERANGE);
        assert_string_equal(err.code, "out_of_range");
        assert_string_equal(err.message, "'s' is longer than 2 bytes");
        assert_int_equal(json_get_string(j, "n", 2, &s, &len, &err), -EINVAL);
        assert_string_equal(err.message, "'n' must be a string, not an integer");
        assert_string_equal(s, "sentinel");

        assert_int_equal(json_get_bool(j, "b", false, &b, &err), 1);
        assert_true(b);
        assert_int_equal(json_get_bool(j, "none", false, &b, &err), 0);
        assert_false(b);
        assert_int_equal(json_get_bool(j, "n", false, &b, &err), -EINVAL);
        assert_string_equal(err.code, "wrong_type");
}

static void test_get_size(void **state)
{
        _cleanup_json_ json_t *j = obj("{\"i\":1024,\"m\":\"64M\",\"kb\":\"1KB\",\"neg\":-1,"
                                       "\"sneg\":\"-1\",\"junk\":\"64X\",\"zero\":0,\"r\":1.5,"
                                       "\"huge\":\"99999999999999999999\",\"g\":\"3G\","
                                       "\"evil\":\"\\u001b]0;x\\u0007\",\"empty\":\"\"}");
        struct json_error err = {};
        uint64_t v = 42;

        assert_int_equal(json_get_size(j, "i", 1, UINT64_MAX, 0, &v, &err), 1);
        assert_int_equal(v, 1024);
        assert_int_equal(json_get_size(j, "m", 1, UINT64_MAX, 0, &v, &err), 1);
        assert_int_equal(v, 64 << 20);
        assert_int_equal(json_get_size(j, "kb", 1, UINT64_MAX, 0, &v, &err), 1);
        assert_int_equal(v, 1024);
        assert_int_equal(json_get_size(j, "none", 1, UINT64_MAX, 7, &v, &err), 0);
        assert_int_equal(v, 7);

        v = 42;
        assert_int_equal(json_get_size(j, "neg", 0, UINT64_MAX, 0, &v, &err), -ERANGE);
        assert_string_equal(err.code, "out_of_range");
        assert_int_equal(json_get_size(j, "zero", 1, UINT64_MAX, 0, &v, &err), -ERANGE);
        assert_string_equal(err.message, "'zero' must be between 1 and 18446744073709551615 bytes");
        assert_int_equal(json_get_size(j, "g", 1, UINT64_C(2) << 30, 0, &v, &err), -ERANGE);
        assert_int_equal(json_get_size(j, "i", 1, 1023, 0, &v, &err), -ERANGE);
        assert_int_equal(json_get_size(j, "huge", 1, UINT64_MAX, 0, &v, &err), -ERANGE);
        assert_int_equal(json_get_size(j, "sneg", 0, UINT64_MAX, 0, &v, &err), -EINVAL);
        assert_string_equal(err.code, "invalid_value");
        assert_int_equal(json_get_size(j, "junk", 0, UINT64_MAX, 0, &v, &err), -EINVAL);
        assert_string_equal(err.message,
                            "'junk' must be a byte count like 67108864 or a size like '64M', not "
                            "'64X'");
        assert_int_equal(json_get_size(j, "evil", 0, UINT64_MAX, 0, &v, &err), -EINVAL);
        assert_string_equal(err.message, "'evil' must be a byte count like 67108864 or a size "
                                         "like '64M', not '\\x1b]0;x\\x07'");
        assert_int_equal(json_get_size(j, "empty", 0, UINT64_MAX, 0, &v, &err), -EINVAL);
        assert_int_equal(json_get_size(j, "r", 0, UINT64_MAX, 0, &v, &err), -EINVAL);
        assert_string_equal(err.code, "wrong_type");
        assert_int_equal(v, 42);
}

static void test_excerpt(void **state)
{
        char buf[JSON_EXCERPT_SIZE], tiny[8];

        assert_string_equal(json_excerpt(buf, sizeof(buf), "abc", 3, JSON_EXCERPT_MAX), "abc");
        assert_string_equal(json_excerpt(buf, sizeof(buf), "a\0b", 3, JSON_EXCERPT_MAX), "a\\x00b");
        assert_string_equal(json_excerpt(buf, sizeof(buf), "'\\\n\x7f\xff", 5, JSON_EXCERPT_MAX),
                            "\\x27\\x5c\\x0a\\x7f\\xff");
        assert_string_equal(json_excerpt(buf, sizeof(buf), "abcdef", 6, 3), "abc...");
        assert_string_equal(json_excerpt(buf, sizeof(buf), "", 0, 3), "");
        /* The buffer bounds it too, and an escape is never cut in half. */
        assert_string_equal(json_excerpt(tiny, sizeof(tiny), "abcdefghij", 10, 100), "abcd...");
        assert_string_equal(json_excerpt(tiny, sizeof(tiny), "\x01\x02", 2, 100), "\\x01...");
        assert_string_equal(json_excerpt(tiny, 1, "abc", 3, 100), "");

        /* Worst case: every byte escaped, fits JSON_EXCERPT_SIZE. */
        char all[JSON_EXCERPT_MAX + 10];
        memset(all, 0x01, sizeof(all));
        json_excerpt(buf, sizeof(buf), all, sizeof(all), JSON_EXCERPT_MAX);
        assert_int_equal(strlen(buf), JSON_EXCERPT_MAX * 4 + 3);
}

static void test_error_codes(void **state)
{
        struct json_error err = {};

        for (int id = 0; id < _JSON_ERR_MAX; id++) {
                const char *code = json_error_code_string(id);
                int status = json_error_code_status(id);

                assert_non_null(code);
                assert_true(strlen(code) > 0 && strlen(code) < sizeof(err.code));
                assert_true(status == 400 || status == 413 || status == 422 || status == 500);
                for (int other = 0; other < id; other++)
                        assert_string_not_equal(code, json_error_code_string(other));
        }
        assert_string_equal(json_error_code_string(_JSON_ERR_MAX), "internal_error");
        assert_int_equal(json_error_code_status(-1), 500);
        assert_int_equal(json_error_code_status(JSON_ERR_LIMIT_EXCEEDED), 422);
        assert_int_equal(json_error_code_status(JSON_ERR_TOO_LARGE), 413);

        assert_int_equal(json_error_set(NULL, -EIO, JSON_ERR_INVALID_JSON, "x"), -EIO);
        assert_int_equal(json_error_set(&err, -EIO, JSON_ERR_INVALID_JSON, "a\nb\x01%s", "\xff"),
                         -EIO);
        assert_string_equal(err.message, "a?b??"); /* whatever the caller passed */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_ok),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_parse_not_an_object),
                cmocka_unit_test(test_parse_invalid_utf8),
                cmocka_unit_test(test_parse_nul),
                cmocka_unit_test(test_parse_duplicate_keys),
                cmocka_unit_test(test_parse_depth),
                cmocka_unit_test(test_parse_huge_numbers),
                cmocka_unit_test(test_parse_too_large),
                cmocka_unit_test(test_parse_too_complex),
                cmocka_unit_test(test_parse_message_is_safe),
                cmocka_unit_test(test_check_fields),
                cmocka_unit_test(test_get_int),
                cmocka_unit_test(test_get_number),
                cmocka_unit_test(test_get_string_and_bool),
                cmocka_unit_test(test_get_size),
                cmocka_unit_test(test_excerpt),
                cmocka_unit_test(test_error_codes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
