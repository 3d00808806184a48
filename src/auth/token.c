/* SPDX-License-Identifier: MIT */
#include "token.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "common/util.h"

_Static_assert(AUTH_TOKEN_PREFIX_LEN == sizeof(AUTH_TOKEN_PREFIX) - 1, "prefix length");
_Static_assert(AUTH_TOKEN_LEN + 1 ==
                       AUTH_TOKEN_PREFIX_LEN +
                               sodium_base64_ENCODED_LEN(AUTH_TOKEN_SECRET_BYTES,
                                                         sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "token length");
_Static_assert(AUTH_TOKEN_HASH_LEN == crypto_hash_sha256_BYTES, "token hash length");

/* The one piece of process-wide state: whether sodium_init() succeeded, set once. */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_result = -EIO;

static void sodium_init_once(void)
{
        sodium_result = sodium_init() < 0 ? -EIO : 0;
}

int auth_init(void)
{
        int r;

        r = pthread_once(&sodium_once, sodium_init_once);
        if (r != 0)
                return -r;
        return sodium_result;
}

_Static_assert(AUTH_WORKER_TOKEN_PREFIX_LEN == sizeof(AUTH_WORKER_TOKEN_PREFIX) - 1,
               "worker token prefix length");
_Static_assert(AUTH_WORKER_TOKEN_LEN == AUTH_TOKEN_LEN, "worker token length");

/* Session tokens and worker join tokens differ only by their prefix. */
static bool token_is_valid(const char *prefix, const char *token, size_t len)
{
        int v = -1;

        if (!token || len != AUTH_TOKEN_LEN)
                return false;
        if (memcmp(token, prefix, AUTH_TOKEN_PREFIX_LEN) != 0)
                return false;
        for (size_t i = AUTH_TOKEN_PREFIX_LEN; i < len; i++) {
                v = base64_digit(token[i], true);
                if (v < 0)
                        return false;
        }
        /* 32 bytes are 256 bits; 43 characters carry 258: the last one's low 2 bits are zero. */
        return (v & 3) == 0;
}

static int token_hash(const char *prefix, const char *token, size_t len,
                      uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN])
{
        uint8_t hash[AUTH_TOKEN_HASH_LEN];
        int r;

        if (!token_is_valid(prefix, token, len))
                return -EINVAL;
        r = auth_init();
        if (r < 0)
                return r;
        if (crypto_hash_sha256(hash, (const unsigned char *) token, len) != 0)
                return -EIO;
        memcpy(ret_hash, hash, sizeof(hash));
        return 0;
}

static int token_new(const char *prefix, char ret_token[static AUTH_TOKEN_LEN + 1],
                     uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN])
{
        uint8_t secret[AUTH_TOKEN_SECRET_BYTES];
        char token[AUTH_TOKEN_LEN + 1];
        uint8_t hash[AUTH_TOKEN_HASH_LEN];
        int r;

        r = auth_init();
        if (r < 0)
                return r;

        randombytes_buf(secret, sizeof(secret));
        memcpy(token, prefix, AUTH_TOKEN_PREFIX_LEN);
        (void) sodium_bin2base64(token + AUTH_TOKEN_PREFIX_LEN,
                                 sizeof(token) - AUTH_TOKEN_PREFIX_LEN, secret, sizeof(secret),
                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(secret, sizeof(secret));

        r = token_hash(prefix, token, strlen(token), hash);
        if (r < 0) {
                sodium_memzero(token, sizeof(token));
                return r;
        }
        memcpy(ret_token, token, sizeof(token));
        memcpy(ret_hash, hash, sizeof(hash));
        sodium_memzero(token, sizeof(token));
        return 0;
}

bool auth_token_is_valid(const char *token, size_t len)
{
        return token_is_valid(AUTH_TOKEN_PREFIX, token, len);
}

int auth_token_hash(const char *token, size_t len, uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN])
{
        return token_hash(AUTH_TOKEN_PREFIX, token, len, ret_hash);
}

int auth_token_new(char ret_token[static AUTH_TOKEN_LEN + 1],
                   uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN])
{
        return token_new(AUTH_TOKEN_PREFIX, ret_token, ret_hash);
}

bool auth_worker_token_is_valid(const char *token, size_t len)
{
        return token_is_valid(AUTH_WORKER_TOKEN_PREFIX, token, len);
}

int auth_worker_token_hash(const char *token, size_t len,
                           uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN])
{
        return token_hash(AUTH_WORKER_TOKEN_PREFIX, token, len, ret_hash);
}

int auth_worker_token_new(char ret_token[static AUTH_WORKER_TOKEN_LEN + 1],
                          uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN])
{
        return token_new(AUTH_WORKER_TOKEN_PREFIX, ret_token, ret_hash);
}

int auth_random_hex(char *buf, size_t size)
{
        uint8_t bytes[(AUTH_RANDOM_HEX_MAX_SIZE - 1) / 2];
        char hex[AUTH_RANDOM_HEX_MAX_SIZE];
        size_t n;
        int r;

        if (!buf || size < 3 || size > AUTH_RANDOM_HEX_MAX_SIZE || size % 2 == 0)
                return -EINVAL;
        r = auth_init();
        if (r < 0)
                return r;

        n = (size - 1) / 2;
        randombytes_buf(bytes, n);
        (void) sodium_bin2hex(hex, size, bytes, n);
        memcpy(buf, hex, size);
        sodium_memzero(bytes, sizeof(bytes));
        sodium_memzero(hex, sizeof(hex));
        return 0;
}
