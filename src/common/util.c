/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

static int parse_digits(const char *s, const char **ret_end, uint64_t *ret)
{
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        *ret_end = p;
        *ret = v;
        return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        const char *end;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_digits(s, &end, &v);
        if (r < 0)
                return r;
        if (*end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_size(const char *s, uint64_t max, uint64_t *ret)
{
        const char *end;
        uint64_t v, mul = 1;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_digits(s, &end, &v);
        if (r < 0)
                return r;
        switch (*end) {
        case '\0':
                break;
        case 'k':
        case 'K':
                mul = UINT64_C(1) << 10;
                end++;
                break;
        case 'm':
        case 'M':
                mul = UINT64_C(1) << 20;
                end++;
                break;
        case 'g':
        case 'G':
                mul = UINT64_C(1) << 30;
                end++;
                break;
        default:
                return -EINVAL;
        }
        if (*end == 'B' || *end == 'b')
                end++;
        if (*end != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / mul)
                return -ERANGE;
        v *= mul;
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_seconds(const char *s, double max_s, uint64_t *ret_ns)
{
        char *end = NULL;
        uint64_t ns;
        double v;

        if (!s || *s == '\0' || !((*s >= '0' && *s <= '9') || *s == '.'))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || !end || *end != '\0' || !isfinite(v))
                return -EINVAL;
        if (v <= 0 || v > max_s)
                return -ERANGE;
        ns = (uint64_t) llround(v * 1e9);
        if (ns == 0)
                return -ERANGE;
        *ret_ns = ns;
        return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
        char *p = buf;
        size_t done = 0;

        while (done < len) {
                ssize_t n = read(fd, p + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

int read_file_at(int dirfd, const char *path, size_t max, char **ret)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        ssize_t n;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        n = read_full(fd, buf, max + 1);
        if (n < 0)
                return (int) n;
        if ((size_t) n > max)
                return -EFBIG;
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_file_at(int dirfd, const char *path, const char *s)
{
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(s);
        ssize_t n;

        fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_TRUNC);
        if (fd < 0)
                return -errno;
        /* Kernel interface files want one write() per value. */
        n = write(fd, s, len);
        if (n < 0)
                return -errno;
        if ((size_t) n != len)
                return -EIO;
        return 0;
}

uint64_t now_ns(int clock_id)
{
        struct timespec ts;

        (void) clock_gettime(clock_id, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

int base64_digit(char c, bool url_safe)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == (url_safe ? '-' : '+'))
                return 62;
        if (c == (url_safe ? '_' : '/'))
                return 63;
        return -1;
}

char *base64_encode(const void *data, size_t len)
{
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *p = data;
        size_t o = 0, i;
        char *out;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
                out[o++] = alphabet[v >> 18];
                out[o++] = alphabet[(v >> 12) & 63];
                out[o++] = alphabet[(v >> 6) & 63];
                out[o++] = alphabet[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < len ? (uint32_t) p[i + 1] << 8 : 0);
                out[o++] = alphabet[v >> 18];
                out[o++] = alphabet[(v >> 12) & 63];
                out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
        return out;
}

bool utf8_valid(const char *data, size_t len)
{
        const unsigned char *s = (const unsigned char *) data;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                unsigned char lo = 0x80, hi = 0xbf;
                size_t more;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        more = 1;
                else if (c >= 0xe0 && c <= 0xef) {
                        more = 2;
                        if (c == 0xe0)
                                lo = 0xa0; /* overlong */
                        else if (c == 0xed)
                                hi = 0x9f; /* surrogates */
                } else if (c >= 0xf0 && c <= 0xf4) {
                        more = 3;
                        if (c == 0xf0)
                                lo = 0x90; /* overlong */
                        else if (c == 0xf4)
                                hi = 0x8f; /* above U+10FFFF */
                } else
                        return false;
                if (len - i - 1 < more)
                        return false;
                if (s[i + 1] < lo || s[i + 1] > hi)
                        return false;
                for (size_t k = 2; k <= more; k++)
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                i += more + 1;
        }
        return true;
}

bool z85_key_valid(const char *s, size_t len)
{
        static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

        if (!s || len != Z85_KEY_LEN)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] == '\0' || !strchr(alphabet, s[i]))
                        return false;
        return true;
}
