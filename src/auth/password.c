/* SPDX-License-Identifier: MIT */
#include "password.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "token.h"

_Static_assert(AUTH_PASSWORD_HASH_MAX == crypto_pwhash_STRBYTES, "hash string size");
_Static_assert(AUTH_PASSWORD_OPSLIMIT >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
                       AUTH_PASSWORD_OPSLIMIT <= AUTH_PASSWORD_OPSLIMIT_MAX,
               "opslimit out of range");
_Static_assert(AUTH_PASSWORD_MEMLIMIT >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
                       AUTH_PASSWORD_MEMLIMIT <= AUTH_PASSWORD_MEMLIMIT_MAX &&
                       AUTH_PASSWORD_MEMLIMIT % 1024 == 0,
               "memlimit out of range");
_Static_assert(crypto_pwhash_SALTBYTES == 16, "salt size");
_Static_assert(sizeof(AUTH_PASSWORD_ALPHABET) - 1 == 55, "alphabet size");

static int password_check(const char *password, size_t len)
{
        if (!password)
                return -EINVAL;
        if (len > AUTH_PASSWORD_MAX)
                return -E2BIG;
        if (len < AUTH_PASSWORD_MIN || memchr(password, 0, len))
                return -EINVAL;
        return 0;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
        size_t n = strlen(prefix);

        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* A decimal uint32 without sign or leading zero; advances *s past it. */
static int parse_u32(const char **s, uint32_t *ret)
{
        const char *p = *s;
        uint64_t v = 0;

        if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > UINT32_MAX)
                        return -EINVAL;
        }
        *s = p;
        *ret = (uint32_t) v;
        return 0;
}

/* libsodium's salt (crypto_pwhash_SALTBYTES) and output (32 bytes) in unpadded base64 */
#define HASH_SALT_B64 22
#define HASH_OUT_B64  43

static bool is_b64(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/* "$" and exactly n base64 characters; returns what follows them, or NULL. */
static const char *skip_b64(const char *s, size_t n)
{
        if (*s != '$')
                return NULL;
        s++;
        for (size_t i = 0; i < n; i++)
                if (!is_b64(s[i]))
                        return NULL;
        return s + n;
}

/*
 * Validates a stored hash: "$argon2id$v=19$m=<KiB>,t=<passes>,p=1$<22>$<43>" with costs
 * within the bounds, then libsodium's own decoder (base64 padding bits, argon2's limits).
 * Returns 1 if its costs are not today's, 0 if they are, -EINVAL if malformed, -ENOMEM.
 */
static int hash_parse(const char *hash)
{
        uint32_t m_kib, t, p;
        const char *s;
        int r;

        if (!hash || strnlen(hash, AUTH_PASSWORD_HASH_MAX) >= AUTH_PASSWORD_HASH_MAX)
                return -EINVAL;
        s = skip_prefix(hash, "$argon2id$v=19$m=");
        if (!s || parse_u32(&s, &m_kib) < 0)
                return -EINVAL;
        s = skip_prefix(s, ",t=");
        if (!s || parse_u32(&s, &t) < 0)
                return -EINVAL;
        s = skip_prefix(s, ",p=");
        if (!s || parse_u32(&s, &p) < 0)
                return -EINVAL;
        if (p != 1 || t < 1 || t > AUTH_PASSWORD_OPSLIMIT_MAX ||
            m_kib > AUTH_PASSWORD_MEMLIMIT_MAX / 1024)
                return -EINVAL;
        /* exactly the 16-byte salt and 32-byte hash we write: a truncated hash would still
         * decode, as a weaker one */
        s = skip_b64(s, HASH_SALT_B64);
        if (!s)
                return -EINVAL;
        s = skip_b64(s, HASH_OUT_B64);
        if (!s || *s != '\0')
                return -EINVAL;

        r = auth_init();
        if (r < 0)
                return r;
        errno = 0;
        r = crypto_pwhash_argon2id_str_needs_rehash(hash, AUTH_PASSWORD_OPSLIMIT,
                                                    AUTH_PASSWORD_MEMLIMIT);
        if (r < 0)
                return errno == ENOMEM ? -ENOMEM : -EINVAL;
        return r > 0;
}

int auth_password_hash(const char *password, size_t len,
                       char ret_hash[static AUTH_PASSWORD_HASH_MAX])
{
        char hash[AUTH_PASSWORD_HASH_MAX] = {};
        int r;

        r = password_check(password, len);
        if (r < 0)
                return r;
        r = auth_init();
        if (r < 0)
                return r;

        errno = 0;
        if (crypto_pwhash_str_alg(hash, password, len, AUTH_PASSWORD_OPSLIMIT,
                                  AUTH_PASSWORD_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13) != 0)
                return errno == ENOMEM ? -ENOMEM : -EIO;
        memcpy(ret_hash, hash, sizeof(hash));
        return 0;
}

int auth_password_verify(const char *hash, const char *password, size_t len)
{
        int r;

        r = hash_parse(hash);
        if (r < 0)
                return r;
        if (!password)
                return -EINVAL;
        if (len > AUTH_PASSWORD_MAX || memchr(password, 0, len))
                return -EACCES;

        /* argon2 allocates its memory per call: ENOMEM is not a wrong password (a refusal would
         * count towards the account's rate limit). libsodium sets EINVAL on a mismatch. */
        errno = 0;
        if (crypto_pwhash_argon2id_str_verify(hash, password, len) == 0)
                return 0;
        return errno == ENOMEM ? -ENOMEM : -EACCES;
}

int auth_password_needs_rehash(const char *hash)
{
        return hash_parse(hash);
}

int auth_password_generate(char ret_password[static AUTH_PASSWORD_GENERATED_LEN + 1])
{
        static const char alphabet[] = AUTH_PASSWORD_ALPHABET;
        char password[AUTH_PASSWORD_GENERATED_LEN + 1];
        int r;

        r = auth_init();
        if (r < 0)
                return r;

        for (size_t i = 0; i < AUTH_PASSWORD_GENERATED_LEN; i++)
                password[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
        password[AUTH_PASSWORD_GENERATED_LEN] = '\0';
        memcpy(ret_password, password, sizeof(password));
        sodium_memzero(password, sizeof(password));
        return 0;
}
