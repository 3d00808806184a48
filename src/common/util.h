/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers with no policy: checked number parsing, whole-buffer I/O, clocks. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

/* "123", "64K", "10M", "2G" (binary units). Rejects signs, overflow, junk, and values > max. */
int parse_size(const char *s, uint64_t max, uint64_t *ret);

/* Non-negative decimal integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Seconds as a decimal number ("2", "0.25"); finite, > 0 and <= max_s. Result in nanoseconds. */
int parse_seconds(const char *s, double max_s, uint64_t *ret_ns);

/* Writes/reads the whole buffer, retrying on EINTR and short transfers. */
int write_full(int fd, const void *buf, size_t len);
/* Returns the number of bytes read (< len only at end of file). */
ssize_t read_full(int fd, void *buf, size_t len);

/* Reads a small file (at most max bytes) into a NUL-terminated heap string. */
int read_file_at(int dirfd, const char *path, size_t max, char **ret);
/* Writes s to an existing file (no O_CREAT), as one write. */
int write_file_at(int dirfd, const char *path, const char *s);

uint64_t now_ns(int clock_id);

static inline double ns_to_s(uint64_t ns)
{
        return (double) ns / 1e9;
}

bool streq_ptr(const char *a, const char *b);

/* The 6-bit value of a base64 character (RFC 4648 §4, or §5 "URL-safe" alphabet), or -1. */
int base64_digit(char c, bool url_safe);

/* data[0..len) in standard, padded base64 (RFC 4648 §4), NUL-terminated; NULL without memory. */
char *base64_encode(const void *data, size_t len);

/* True if s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF) without a NUL byte. */
bool utf8_valid(const char *s, size_t len);

/* True if s[0..len) is a CURVE key in Z85: exactly 40 characters of the Z85 alphabet. */
#define Z85_KEY_LEN 40
bool z85_key_valid(const char *s, size_t len);
