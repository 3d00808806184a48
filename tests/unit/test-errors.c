/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/errors.h"
#include "common/cleanup.h"
#include "unit.h"

static void test_table(void **state)
{
        static const struct {
                int r, status;
                const char *code;
        } cases[] = {
                {-EINVAL, 400, "bad_request"},
                {-ENOENT, 404, "not_found"},
                {-EACCES, 403, "forbidden"},
                {-EPERM, 403, "forbidden"},
                {-EEXIST, 409, "conflict"},
                {-ESTALE, 409, "conflict"},
                {-E2BIG, 413, "too_large"},
                {-EBUSY, 503, "unavailable"},
                {-EOPNOTSUPP, 501, "not_implemented"},
                {-EIO, 500, "internal_error"},
                {-ENOMEM, 500, "internal_error"},
                {-9999, 500, "internal_error"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct api_error_info e = api_error_from_errno(cases[i].r);
                assert_int_equal(e.status, cases[i].status);
                assert_string_equal(e.code, cases[i].code);
        }
}

static json_t *parse(const char *s)
{
        json_error_t err;
        json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, &err);

        assert_non_null(o);
        return o;
}

static const char *message_of(json_t *o)
{
        return json_string_value(json_object_get(json_object_get(o, "error"), "message"));
}

static void test_body(void **state)
{
        _cleanup_free_ char *s = api_error_body("not_found", "no job 'x'\nInjected: yes\r\x1b[31m");
        _cleanup_free_ char *long_msg = malloc(2000);
        json_t *o;

        assert_non_null(s);
        assert_null(strchr(s, '\n'));
        o = parse(s);
        assert_int_equal(json_object_size(o), 1);
        assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
                            "not_found");
        assert_string_equal(message_of(o), "no job 'x' Injected: yes  [31m");
        json_decref(o);

        /* bounded, and a cut through a multi-byte character leaves valid UTF-8 */
        memset(long_msg, 'a', 2000);
        memcpy(long_msg + 510, "\xc3\xa9\xc3\xa9", 4);
        long_msg[1999] = '\0';
        free(s);
        s = api_error_body("bad_request", long_msg);
        assert_non_null(s);
        o = parse(s);
        assert_int_equal(strlen(message_of(o)), 510 + 2);
        json_decref(o);

        /* a complete character at the very end is kept */
        free(s);
        s = api_error_body("bad_request", "caf\xc3\xa9");
        o = parse(s);
        assert_string_equal(message_of(o), "caf\xc3\xa9");
        json_decref(o);

        /* invalid UTF-8 in a message is not echoed */
        free(s);
        s = api_error_body("bad_request", "bad \xff byte");
        assert_non_null(s);
        o = parse(s);
        assert_null(strstr(message_of(o), "\xff"));
        json_decref(o);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_body),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
