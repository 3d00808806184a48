/* SPDX-License-Identifier: MIT */

/*
 * Fuzzes the small parsers every limit and mount of a sandbox goes through: parse_size(),
 * parse_uint(), parse_seconds() and mount_normalize_path(). Beyond crashes it checks what they
 * promise: a result is within its bound and written only on success; a normalised path is
 * absolute, has no empty, "." or ".." component, no trailing slash, and is a fixed point.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fuzz.h"
#include "sandbox/mount.h"

static void check_path(const char *s)
{
        char *out = NULL, *again = NULL;
        int r = mount_normalize_path(s, &out);

        if (r < 0) {
                check(out == NULL);
                check(r == -EINVAL || r == -ENAMETOOLONG || r == -ENOMEM);
                return;
        }
        check(out[0] == '/');
        check(strlen(out) > 1 && out[strlen(out) - 1] != '/');
        check(!strstr(out, "//") && !strstr(out, "/./") && !strstr(out, "/../"));
        check(strcmp(out + strlen(out) - (strlen(out) >= 2 ? 2 : 0), "/.") != 0);
        check(strlen(out) < 3 || strcmp(out + strlen(out) - 3, "/..") != 0);
        check(mount_normalize_path(out, &again) == 0 && strcmp(out, again) == 0);
        free(again);
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint64_t v, limit;
        char *s;
        int r;

        if (size > 8192)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        limit = size > 0 ? (UINT64_C(1) << (data[0] % 64)) : UINT64_MAX;
        v = 7;
        r = parse_size(s, limit, &v);
        check(r == 0 ? v <= limit : (v == 7 && (r == -EINVAL || r == -ERANGE)));
        v = 7;
        r = parse_uint(s, 1, limit, &v);
        check(r == 0 ? (v >= 1 && v <= limit) : (v == 7 && (r == -EINVAL || r == -ERANGE)));
        v = 7;
        r = parse_seconds(s, 1e6, &v);
        check(r == 0 ? (v > 0 && v <= UINT64_C(1000000000000000)) : v == 7);

        check_path(s);
        free(s);
        return 0;
}
