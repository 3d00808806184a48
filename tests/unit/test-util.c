/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "unit.h"

static void test_parse_size(void **state)
{
        uint64_t v = 0;

        assert_int_equal(parse_size("0", UINT64_MAX, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_size("123", UINT64_MAX, &v), 0);
        assert_int_equal(v, 123);
        assert_int_equal(parse_size("64K", UINT64_MAX, &v), 0);
        assert_int_equal(v, 64 << 10);
        assert_int_equal(parse_size("10M", UINT64_MAX, &v), 0);
        assert_int_equal(v, 10 << 20);
        assert_int_equal(parse_size("2g", UINT64_MAX, &v), 0);
        assert_int_equal(v, UINT64_C(2) << 30);
        assert_int_equal(parse_size("5MB", UINT64_MAX, &v), 0);
        assert_int_equal(v, 5 << 20);

        v = 77;
        assert_int_equal(parse_size("", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("-1", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("+1", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size(" 1", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("1 ", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("1X", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("1KK", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("0x10", UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size(NULL, UINT64_MAX, &v), -EINVAL);
        assert_int_equal(parse_size("18446744073709551616", UINT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_size("17179869184G", UINT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_size("2K", 1024, &v), -ERANGE);
        assert_int_equal(v, 77); /* untouched on failure */
}

static void test_parse_uint(void **state)
{
        uint64_t v = 5;

        assert_int_equal(parse_uint("42", 1, 100, &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(parse_uint("0", 1, 100, &v), -ERANGE);
        assert_int_equal(parse_uint("101", 1, 100, &v), -ERANGE);
        assert_int_equal(parse_uint("4x", 1, 100, &v), -EINVAL);
        assert_int_equal(parse_uint("", 1, 100, &v), -EINVAL);
        assert_int_equal(parse_uint("-3", 0, 100, &v), -EINVAL);
        assert_int_equal(v, 42);
}

static void test_parse_seconds(void **state)
{
        uint64_t ns = 0;

        assert_int_equal(parse_seconds("2", 10, &ns), 0);
        assert_int_equal(ns, UINT64_C(2000000000));
        assert_int_equal(parse_seconds("0.25", 10, &ns), 0);
        assert_int_equal(ns, UINT64_C(250000000));
        assert_int_equal(parse_seconds(".5", 10, &ns), 0);
        assert_int_equal(ns, UINT64_C(500000000));
        assert_int_equal(parse_seconds("0", 10, &ns), -ERANGE);
        assert_int_equal(parse_seconds("11", 10, &ns), -ERANGE);
        assert_int_equal(parse_seconds("1e-12", 10, &ns), -ERANGE);
        assert_int_equal(parse_seconds("-1", 10, &ns), -EINVAL);
        assert_int_equal(parse_seconds("nan", 10, &ns), -EINVAL);
        assert_int_equal(parse_seconds("inf", 10, &ns), -EINVAL);
        assert_int_equal(parse_seconds("1s", 10, &ns), -EINVAL);
        assert_int_equal(parse_seconds("", 10, &ns), -EINVAL);
        /* written only on success (a too-small value once left 0 behind) */
        ns = 42;
        assert_int_equal(parse_seconds("1e-12", 10, &ns), -ERANGE);
        assert_int_equal(ns, 42);
}

static void test_file_helpers(void **state)
{
        char path[] = "/tmp/warren-test-util-XXXXXX";
        _cleanup_free_ char *s = NULL;
        _cleanup_close_ int fd = -EBADF;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write_full(fd, "hello\n", 6), 0);

        assert_int_equal(read_file_at(AT_FDCWD, path, 100, &s), 0);
        assert_string_equal(s, "hello\n");
        free(TAKE_PTR(s));
        assert_int_equal(read_file_at(AT_FDCWD, path, 5, &s), -EFBIG);
        assert_null(s);
        assert_int_equal(write_file_at(AT_FDCWD, path, "bye"), 0);
        assert_int_equal(read_file_at(AT_FDCWD, path, 100, &s), 0);
        assert_string_equal(s, "bye");
        assert_int_equal(write_file_at(AT_FDCWD, "/nonexistent/x", "bye"), -ENOENT);
        assert_int_equal(unlink(path), 0);
}

static void test_base64_encode(void **state)
{
        static const struct {
                const char *in, *out;
        } vectors[] = {
                /* RFC 4648 §10 */
                {"", ""},
                {"f", "Zg=="},
                {"fo", "Zm8="},
                {"foo", "Zm9v"},
                {"foob", "Zm9vYg=="},
                {"fooba", "Zm9vYmE="},
                {"foobar", "Zm9vYmFy"},
        };

        const unsigned char bin[] = {0x00, 0xff, 0xfe, 0x3e, 0x3f};

        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_free_ char *b = base64_encode(vectors[i].in, strlen(vectors[i].in));
                assert_non_null(b);
                assert_string_equal(b, vectors[i].out);
        }
        _cleanup_free_ char *b = base64_encode(bin, sizeof(bin));
        assert_string_equal(b, "AP/+Pj8=");
}

static void test_utf8_valid(void **state)
{
        static const struct {
                const char *s;
                size_t len;
                bool valid;
        } cases[] = {
                {"", 0, true},
                {"plain", 5, true},
                {"caf\xc3\xa9", 5, true},
                {"\xe2\x82\xac", 3, true},
                {"\xf0\x9f\x98\x80", 4, true},
                {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
                {"a\0b", 3, false},             /* NUL */
                {"\xc3", 1, false},             /* cut */
                {"\xc0\xaf", 2, false},         /* overlong */
                {"\xe0\x80\xaf", 3, false},     /* overlong */
                {"\xed\xa0\x80", 3, false},     /* surrogate */
                {"\xf4\x90\x80\x80", 4, false}, /* above U+10FFFF */
                {"\xff", 1, false},
                {"\x80", 1, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(utf8_valid(cases[i].s, cases[i].len), cases[i].valid);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_size),    cmocka_unit_test(test_parse_uint),
                cmocka_unit_test(test_parse_seconds), cmocka_unit_test(test_file_helpers),
                cmocka_unit_test(test_base64_encode), cmocka_unit_test(test_utf8_valid),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
