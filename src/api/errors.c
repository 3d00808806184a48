/* SPDX-License-Identifier: MIT */
#include "errors.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#define MESSAGE_MAX 512

static const struct {
        int error;
        struct api_error_info info;
} table[] = {
        {EINVAL, {400, "bad_request"}},
        {EBADMSG, {400, "bad_request"}},
        {EPROTO, {400, "bad_request"}},
        {ERANGE, {400, "out_of_range"}},
        {ENAMETOOLONG, {400, "bad_request"}},
        {ENOTDIR, {400, "bad_request"}},
        {EPERM, {403, "forbidden"}},
        {EACCES, {403, "forbidden"}},
        {ENOENT, {404, "not_found"}},
        {ESRCH, {404, "not_found"}},
        {EEXIST, {409, "conflict"}},
        {ESTALE, {409, "conflict"}},
        {ENOTEMPTY, {409, "conflict"}},
        {E2BIG, {413, "too_large"}},
        {EFBIG, {413, "too_large"}},
        {EMSGSIZE, {413, "too_large"}},
        {EDQUOT, {422, "limit_exceeded"}},
        {EUSERS, {429, "too_many_requests"}},
        {EOPNOTSUPP, {501, "not_implemented"}},
        {EBUSY, {503, "unavailable"}},
        {EAGAIN, {503, "unavailable"}},
        {ENOSPC, {507, "insufficient_storage"}},
        {ETIMEDOUT, {504, "timeout"}},
};

struct api_error_info api_error_from_errno(int r)
{
        int e = r < 0 ? -r : r;

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (table[i].error == e)
                        return table[i].info;
        return (struct api_error_info){500, "internal_error"};
}

char *api_error_body(const char *code, const char *message)
{
        char line[MESSAGE_MAX + 1];
        json_t *o;
        char *s;
        size_t n = 0;

        const char *p = message ? message : "";

        for (; *p && n < MESSAGE_MAX; p++)
                line[n++] = (unsigned char) *p < 0x20 || *p == 0x7f ? ' ' : *p;
        if (*p) {
                /* Cut: drop a UTF-8 sequence the cut split, so that the JSON stays valid. */
                size_t k = n;
                while (k > 0 && n - k < 3 && ((unsigned char) line[k - 1] & 0xc0) == 0x80)
                        k--;
                if (k > 0 && (unsigned char) line[k - 1] >= 0xc0) {
                        unsigned char lead = (unsigned char) line[k - 1];
                        size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
                        if (n - (k - 1) < want)
                                n = k - 1;
                }
        }
        line[n] = '\0';

        o = json_pack("{s:{s:s, s:s?}}", "error", "code", code ? code : "internal_error", "message",
                      line);
        if (!o) /* invalid UTF-8 that was not cut: say so instead of echoing it */
                o = json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : "internal_error",
                              "message", "(message not valid UTF-8)");
        if (!o)
                return NULL;
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}
