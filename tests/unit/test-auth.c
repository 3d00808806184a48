/* SPDX-License-Identifier: MIT */
/*
 * The auth module: passwords, tokens, and the authorization function, the latter checked as a
 * matrix against an independent statement of the rule written here (never by calling the
 * function under test to compute what it should say).
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/access.h"
#include "auth/password.h"
#include "auth/token.h"
#include "common/cleanup.h"
#include "unit.h"

/*
 * SHA-256 calls, counted when the test is linked with -Wl,--wrap=crypto_hash_sha256: then every
 * call, the library's included, comes through here. Without the flag this is never called, the
 * weak __real_ stays unresolved, and the count stays 0 (sha256_wrapped() tells which).
 */
int __real_crypto_hash_sha256(unsigned char *out, const unsigned char *in, unsigned long long inlen)
        __attribute__((weak));
int __wrap_crypto_hash_sha256(unsigned char *out, const unsigned char *in,
                              unsigned long long inlen);

static unsigned long sha256_calls;

int __wrap_crypto_hash_sha256(unsigned char *out, const unsigned char *in, unsigned long long inlen)
{
        sha256_calls++;
        return __real_crypto_hash_sha256(out, in, inlen);
}

/* Password verifications, counted the same way (-Wl,--wrap=crypto_pwhash_argon2id_str_verify). */
int __real_crypto_pwhash_argon2id_str_verify(const char *str, const char *passwd,
                                             unsigned long long passwdlen) __attribute__((weak));
int __wrap_crypto_pwhash_argon2id_str_verify(const char *str, const char *passwd,
                                             unsigned long long passwdlen);

static unsigned long pwhash_verify_calls;

int __wrap_crypto_pwhash_argon2id_str_verify(const char *str, const char *passwd,
                                             unsigned long long passwdlen)
{
        pwhash_verify_calls++;
        return __real_crypto_pwhash_argon2id_str_verify(str, passwd, passwdlen);
}

static bool sha256_wrapped(void)
{
        char token[AUTH_TOKEN_LEN + 1];
        uint8_t hash[AUTH_TOKEN_HASH_LEN];
        unsigned long before = sha256_calls;

        assert_int_equal(auth_token_new(token, hash), 0);
        return sha256_calls != before;
}

static double now_s(void)
{
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- initialisation ---------------------------------------------------------------------- */

static void *new_token_thread(void *arg)
{
        char *token = arg;
        uint8_t hash[AUTH_TOKEN_HASH_LEN];

        return (void *) (intptr_t) auth_token_new(token, hash);
}

/* Runs first: the module initialises libsodium itself, once, whichever thread gets there first. */
static void test_init_from_threads(void **state)
{
        pthread_t threads[8];
        char tokens[8][AUTH_TOKEN_LEN + 1];
        void *ret;

        for (size_t i = 0; i < ELEMENTSOF(threads); i++)
                assert_int_equal(pthread_create(&threads[i], NULL, new_token_thread, tokens[i]), 0);
        for (size_t i = 0; i < ELEMENTSOF(threads); i++) {
                assert_int_equal(pthread_join(threads[i], &ret), 0);
                assert_int_equal((intptr_t) ret, 0);
                assert_true(auth_token_is_valid(tokens[i], strlen(tokens[i])));
        }
        assert_int_equal(auth_init(), 0);
        assert_int_equal(auth_init(), 0);
}

/* ---- passwords --------------------------------------------------------------------------- */

#define PW      "correct horse battery staple"
#define PW_LEN  (sizeof(PW) - 1)
#define HASH_RE "$argon2id$v=19$m=65536,t=2,p=1$"

static void test_password_roundtrip(void **state)
{
        char h1[AUTH_PASSWORD_HASH_MAX], h2[AUTH_PASSWORD_HASH_MAX];
        double t0, t_hash, t_ok, t_bad;

        t0 = now_s();
        assert_int_equal(auth_password_hash(PW, PW_LEN, h1), 0);
        t_hash = now_s() - t0;
        assert_true(strncmp(h1, HASH_RE, strlen(HASH_RE)) == 0);
        assert_true(strlen(h1) < AUTH_PASSWORD_HASH_MAX);

        t0 = now_s();
        assert_int_equal(auth_password_verify(h1, PW, PW_LEN), 0);
        t_ok = now_s() - t0;
        t0 = now_s();
        assert_int_equal(auth_password_verify(h1, "correct horse battery stapl3", PW_LEN), -EACCES);
        t_bad = now_s() - t0;
        assert_int_equal(auth_password_verify(h1, PW, PW_LEN - 1), -EACCES);
        assert_int_equal(auth_password_needs_rehash(h1), 0);

        /* a fresh salt each time */
        assert_int_equal(auth_password_hash(PW, PW_LEN, h2), 0);
        assert_string_not_equal(h1, h2);
        assert_int_equal(auth_password_verify(h2, PW, PW_LEN), 0);

        printf("# argon2id t=%u m=%u MiB: hash %.1f ms, verify %.1f ms (match), %.1f ms "
               "(mismatch)\n",
               AUTH_PASSWORD_OPSLIMIT, AUTH_PASSWORD_MEMLIMIT >> 20, t_hash * 1e3, t_ok * 1e3,
               t_bad * 1e3);
}

static void test_password_bounds(void **state)
{
        _cleanup_free_ char *big = NULL;
        char h[AUTH_PASSWORD_HASH_MAX], untouched[AUTH_PASSWORD_HASH_MAX];
        unsigned long calls;

        big = malloc(AUTH_PASSWORD_MAX + 2);
        assert_non_null(big);
        memset(big, 'p', AUTH_PASSWORD_MAX + 2);
        memset(h, 0x5a, sizeof(h));
        memcpy(untouched, h, sizeof(h));

        assert_int_equal(auth_password_hash(NULL, 10, h), -EINVAL);
        assert_int_equal(auth_password_hash("", 0, h), -EINVAL);
        assert_int_equal(auth_password_hash("1234567", 7, h), -EINVAL);
        assert_int_equal(auth_password_hash(big, AUTH_PASSWORD_MAX + 1, h), -E2BIG);
        assert_int_equal(auth_password_hash(big, AUTH_PASSWORD_MAX + 2, h), -E2BIG);
        assert_int_equal(auth_password_hash("abcd\0efgh", 9, h), -EINVAL);
        assert_int_equal(auth_password_hash("abcdefgh\0", 9, h), -EINVAL);
        assert_memory_equal(h, untouched, sizeof(h)); /* written only on success */

        /* the bounds themselves are accepted; a password is bytes, not characters */
        assert_int_equal(auth_password_hash("\xff\xfe\x01 \t\n~~", 8, h), 0);
        assert_int_equal(auth_password_verify(h, "\xff\xfe\x01 \t\n~~", 8), 0);
        assert_int_equal(auth_password_hash(big, AUTH_PASSWORD_MAX, h), 0);
        /* a password that could never have been set does not match, and costs no hash: the
         * verifications that reach libsodium are counted */
        calls = pwhash_verify_calls;
        assert_int_equal(auth_password_verify(h, big, AUTH_PASSWORD_MAX), 0);
        assert_int_equal(pwhash_verify_calls, calls + 1);
        assert_int_equal(auth_password_verify(h, big, AUTH_PASSWORD_MAX + 1), -EACCES);
        big[100] = '\0';
        assert_int_equal(auth_password_verify(h, big, AUTH_PASSWORD_MAX), -EACCES);
        assert_int_equal(pwhash_verify_calls, calls + 1);
        assert_int_equal(auth_password_verify(h, NULL, 8), -EINVAL);
}

/* A cheap valid hash to mutate: t=1, m=8 KiB (the minimum costs). */
static void cheap_hash(const char *pw, char ret[AUTH_PASSWORD_HASH_MAX], int alg,
                       unsigned long long ops)
{
        assert_int_equal(crypto_pwhash_str_alg(ret, pw, strlen(pw), ops, 8192, alg), 0);
}

static void expect_malformed(const char *hash)
{
        assert_int_equal(auth_password_verify(hash, PW, PW_LEN), -EINVAL);
        assert_int_equal(auth_password_needs_rehash(hash), -EINVAL);
}

static void test_password_malformed(void **state)
{
        char base[AUTH_PASSWORD_HASH_MAX], h[AUTH_PASSWORD_HASH_MAX + 8], *p;
        char unterminated[AUTH_PASSWORD_HASH_MAX];
        size_t len;

        static const struct {
                const char *from, *to;
        } edits[] = {
                {"$argon2id$", "$argon2i$"},
                {"$argon2id$", "$argon2d$"},
                {"$argon2id$", "$argon2ID$"},
                {"v=19$", "v=16$"},
                {"v=19$", ""}, /* the legacy form without a version */
                {"m=8,", "m=08,"},
                {"m=8,", "m=,"},
                {"m=8,", "m=-8,"},
                {"m=8,", "m=+8,"},
                {"m=8,", "m=262145,"},     /* above AUTH_PASSWORD_MEMLIMIT_MAX */
                {"m=8,", "m=4294967296,"}, /* above UINT32_MAX */
                {"m=8,", "m=4,"},          /* below argon2's minimum */
                {"t=1,", "t=0,"},
                {"t=1,", "t=9,"}, /* above AUTH_PASSWORD_OPSLIMIT_MAX */
                {"p=1$", "p=2$"},
                {"p=1$", "p=0$"},
                {"m=8,t=1,p=1", "t=1,m=8,p=1"},
                {"m=8,t=1,p=1", "m=8,t=1,p=1,keyid=AAAA"},
        };

        cheap_hash(PW, base, crypto_pwhash_ALG_ARGON2ID13, 1);
        assert_true(strncmp(base, "$argon2id$v=19$m=8,t=1,p=1$", 27) == 0);
        assert_int_equal(auth_password_verify(base, PW, PW_LEN), 0);
        assert_int_equal(auth_password_needs_rehash(base), 1);

        expect_malformed(NULL);
        expect_malformed("");
        expect_malformed("$");
        expect_malformed("password");

        for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
                p = strstr(base, edits[i].from);
                assert_non_null(p);
                (void) snprintf(h, sizeof(h), "%.*s%s%s", (int) (p - base), base, edits[i].to,
                                p + strlen(edits[i].from));
                expect_malformed(h);
        }

        /* every proper prefix, and trailing junk */
        len = strlen(base);
        for (size_t n = 0; n < len; n++) {
                (void) snprintf(h, sizeof(h), "%.*s", (int) n, base);
                expect_malformed(h);
        }
        for (const char *junk = "$A =\n"; *junk; junk++) {
                (void) snprintf(h, sizeof(h), "%s%c", base, *junk);
                expect_malformed(h);
        }

        /* a character outside base64 in the salt, then in the hash */
        p = strrchr(base, '$');
        strcpy(h, base);
        h[p - base - 3] = '-';
        expect_malformed(h);
        strcpy(h, base);
        h[len - 3] = '_';
        expect_malformed(h);
        /* non-zero padding bits in the last character of the hash (43 chars carry 258 bits) */
        strcpy(h, base);
        h[len - 1] = h[len - 1] == 'A' ? 'B' : (h[len - 1] == 'B' ? 'C' : 'B');
        if (strcmp(h, base) != 0)
                expect_malformed(h);

        /* not terminated within AUTH_PASSWORD_HASH_MAX bytes: no read beyond (ASan) */
        memset(unterminated, 'A', sizeof(unterminated));
        memcpy(unterminated, base, len);
        expect_malformed(unterminated);

        /* argon2i is a valid libsodium hash, but not ours */
        cheap_hash(PW, h, crypto_pwhash_ALG_ARGON2I13, 3);
        assert_int_equal(crypto_pwhash_str_verify(h, PW, PW_LEN), 0);
        expect_malformed(h);
}

static void test_password_rehash(void **state)
{
        char h[AUTH_PASSWORD_HASH_MAX];

        /* older costs still verify, and ask to be rehashed */
        cheap_hash(PW, h, crypto_pwhash_ALG_ARGON2ID13, 3);
        assert_int_equal(auth_password_verify(h, PW, PW_LEN), 0);
        assert_int_equal(auth_password_verify(h, "correct horse battery", 21), -EACCES);
        assert_int_equal(auth_password_needs_rehash(h), 1);
        cheap_hash(PW, h, crypto_pwhash_ALG_ARGON2ID13, AUTH_PASSWORD_OPSLIMIT);
        assert_int_equal(auth_password_needs_rehash(h), 1); /* same passes, less memory */
        /* today's costs: test_password_roundtrip */
}

static int cmp_string(const void *a, const void *b)
{
        return strcmp(a, b);
}

static void test_password_generate(void **state)
{
        enum { N = 2000 };

        static char pws[N][AUTH_PASSWORD_GENERATED_LEN + 1];
        unsigned seen[256] = {};
        size_t distinct_chars = 0;
        double chi2 = 0;

        for (size_t i = 0; i < N; i++) {
                assert_int_equal(auth_password_generate(pws[i]), 0);
                assert_int_equal(strlen(pws[i]), 24);
                for (size_t k = 0; k < 24; k++) {
                        unsigned char c = (unsigned char) pws[i][k];

                        /* letters and digits, none of the ambiguous ones */
                        assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '2' && c <= '9'));
                        assert_null(strchr("0O1lIio", c));
                        seen[c]++;
                }
        }
        qsort(pws, N, sizeof(pws[0]), cmp_string);
        for (size_t i = 1; i < N; i++)
                assert_string_not_equal(pws[i - 1], pws[i]);

        /* 48000 draws from 55 characters, ~873 each. Pearson's chi-square (54 degrees of freedom:
         * mean 54, sd 10.4) stays below 120 but for a 1e-7 chance; a modulo bias (256 % 55 = 36
         * characters drawn 5/4 as often) would score ~500, an alphabet off by one, infinity. */
        for (size_t c = 0; c < 256; c++) {
                double d = (double) seen[c] - N * 24.0 / 55;

                if (!seen[c])
                        continue;
                distinct_chars++;
                chi2 += d * d / (N * 24.0 / 55);
        }
        assert_int_equal(distinct_chars, 55);
        assert_int_equal(strlen(AUTH_PASSWORD_ALPHABET), 55);
        printf("# generated passwords: chi-square %.1f (54 degrees of freedom)\n", chi2);
        assert_true(chi2 < 120);
}

/* ---- tokens ------------------------------------------------------------------------------ */

static int b64url_index(char c)
{
        static const char set[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = c ? strchr(set, c) : NULL;

        return p ? (int) (p - set) : -1;
}

static void test_token_format(void **state)
{
        char token[AUTH_TOKEN_LEN + 1];
        uint8_t hash[AUTH_TOKEN_HASH_LEN], again[AUTH_TOKEN_HASH_LEN], oracle[32], bin[64];
        size_t bin_len = 0;

        for (int i = 0; i < 100; i++) {
                assert_int_equal(auth_token_new(token, hash), 0);
                assert_int_equal(strlen(token), 47);
                assert_memory_equal(token, "wrn_", 4);
                for (size_t k = 4; k < 47; k++)
                        assert_true(b64url_index(token[k]) >= 0);
                assert_true(auth_token_is_valid(token, 47));

                /* 32 bytes behind the prefix */
                assert_int_equal(sodium_base642bin(bin, sizeof(bin), token + 4, 43, NULL, &bin_len,
                                                   NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                                 0);
                assert_int_equal(bin_len, 32);

                /* the stored value is SHA-256 of the whole string, the same every time */
                assert_int_equal(auth_token_hash(token, 47, again), 0);
                assert_memory_equal(hash, again, sizeof(hash));
                assert_int_equal(crypto_hash_sha256(oracle, (const unsigned char *) token, 47), 0);
                assert_memory_equal(hash, oracle, sizeof(hash));
        }
}

/* Worker join tokens: the same shape under "wjt_"; neither kind passes for the other. */
static void test_worker_token_format(void **state)
{
        char token[AUTH_WORKER_TOKEN_LEN + 1], session[AUTH_TOKEN_LEN + 1];
        uint8_t hash[AUTH_TOKEN_HASH_LEN], again[AUTH_TOKEN_HASH_LEN], oracle[32], bin[64];
        size_t bin_len = 0;

        for (int i = 0; i < 100; i++) {
                assert_int_equal(auth_worker_token_new(token, hash), 0);
                assert_int_equal(strlen(token), 47);
                assert_memory_equal(token, "wjt_", 4);
                for (size_t k = 4; k < 47; k++)
                        assert_true(b64url_index(token[k]) >= 0);
                assert_true(auth_worker_token_is_valid(token, 47));
                assert_false(auth_token_is_valid(token, 47));
                assert_int_equal(auth_token_hash(token, 47, again), -EINVAL);
                assert_int_equal(sodium_base642bin(bin, sizeof(bin), token + 4, 43, NULL, &bin_len,
                                                   NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                                 0);
                assert_int_equal(bin_len, 32);
                assert_int_equal(auth_worker_token_hash(token, 47, again), 0);
                assert_memory_equal(hash, again, sizeof(hash));
                assert_int_equal(crypto_hash_sha256(oracle, (const unsigned char *) token, 47), 0);
                assert_memory_equal(hash, oracle, sizeof(hash));
        }
        assert_int_equal(auth_token_new(session, hash), 0);
        assert_false(auth_worker_token_is_valid(session, 47));
        assert_int_equal(auth_worker_token_hash(session, 47, again), -EINVAL);
        assert_false(auth_worker_token_is_valid(token, 46));
        assert_false(auth_worker_token_is_valid(NULL, 47));
}

static int cmp_token(const void *a, const void *b)
{
        return memcmp(a, b, AUTH_TOKEN_LEN + 1);
}

static int cmp_hash(const void *a, const void *b)
{
        return memcmp(a, b, AUTH_TOKEN_HASH_LEN);
}

static void test_token_unique(void **state)
{
        enum { N = 10000 };

        _cleanup_free_ char(*tokens)[AUTH_TOKEN_LEN + 1] = NULL;
        _cleanup_free_ uint8_t(*hashes)[AUTH_TOKEN_HASH_LEN] = NULL;

        tokens = calloc(N, sizeof(*tokens));
        hashes = calloc(N, sizeof(*hashes));
        assert_non_null(tokens);
        assert_non_null(hashes);
        for (size_t i = 0; i < N; i++)
                assert_int_equal(auth_token_new(tokens[i], hashes[i]), 0);
        qsort(tokens, N, sizeof(*tokens), cmp_token);
        qsort(hashes, N, sizeof(*hashes), cmp_hash);
        for (size_t i = 1; i < N; i++) {
                assert_true(cmp_token(tokens[i - 1], tokens[i]) != 0);
                assert_true(cmp_hash(hashes[i - 1], hashes[i]) != 0);
        }
}

static size_t n_rejected;

static void expect_rejected(const char *token, size_t len)
{
        uint8_t out[AUTH_TOKEN_HASH_LEN], untouched[AUTH_TOKEN_HASH_LEN];
        unsigned long calls = sha256_calls;

        memset(out, 0xa5, sizeof(out));
        memcpy(untouched, out, sizeof(out));
        assert_false(auth_token_is_valid(token, len));
        assert_int_equal(auth_token_hash(token, len, out), -EINVAL);
        assert_memory_equal(out, untouched, sizeof(out));
        assert_int_equal(sha256_calls, calls); /* nothing hashed (counted when wrapped) */
        n_rejected++;
}

static void test_token_malformed(void **state)
{
        char token[AUTH_TOKEN_LEN + 1], bad[AUTH_TOKEN_LEN + 2];
        uint8_t hash[AUTH_TOKEN_HASH_LEN], bin[64];
        size_t n_accepted = 0, bin_len;
        bool wrapped = sha256_wrapped();

        n_rejected = 0;
        assert_int_equal(auth_token_new(token, hash), 0);

        expect_rejected(NULL, AUTH_TOKEN_LEN);
        expect_rejected("", 0);
        expect_rejected(token, 0);
        expect_rejected(token, 4);
        /* length - 1, length + 1 (with each character of the alphabet) */
        expect_rejected(token, AUTH_TOKEN_LEN - 1);
        for (int c = 0; c < 256; c++) {
                memcpy(bad, token, AUTH_TOKEN_LEN);
                bad[AUTH_TOKEN_LEN] = (char) c;
                bad[AUTH_TOKEN_LEN + 1] = '\0';
                expect_rejected(bad, AUTH_TOKEN_LEN + 1);
        }
        /* the prefix, one byte changed to any other value (NUL included) */
        for (size_t k = 0; k < 4; k++)
                for (int c = 0; c < 256; c++) {
                        if (c == token[k])
                                continue;
                        memcpy(bad, token, sizeof(token));
                        bad[k] = (char) c;
                        expect_rejected(bad, AUTH_TOKEN_LEN);
                }
        memcpy(bad, token, sizeof(token));
        memcpy(bad, "WRN_", 4);
        expect_rejected(bad, AUTH_TOKEN_LEN);
        memcpy(bad, "ghp_", 4);
        expect_rejected(bad, AUTH_TOKEN_LEN);
        /* every body position, every byte outside the alphabet (embedded NUL included) */
        for (size_t k = 4; k < AUTH_TOKEN_LEN; k++)
                for (int c = 0; c < 256; c++) {
                        if (b64url_index((char) c) >= 0)
                                continue;
                        memcpy(bad, token, sizeof(token));
                        bad[k] = (char) c;
                        expect_rejected(bad, AUTH_TOKEN_LEN);
                }
        /* the last character: only the 16 that leave the 2 padding bits zero are canonical, and
         * they are exactly those libsodium's strict decoder accepts */
        for (int v = 0; v < 64; v++) {
                memcpy(bad, token, sizeof(token));
                bad[AUTH_TOKEN_LEN - 1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789-_"[v];
                bool decodes =
                        sodium_base642bin(bin, sizeof(bin), bad + 4, 43, NULL, &bin_len, NULL,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0;
                assert_int_equal(decodes, v % 4 == 0);
                if (decodes) {
                        assert_true(auth_token_is_valid(bad, AUTH_TOKEN_LEN));
                        n_accepted++;
                } else
                        expect_rejected(bad, AUTH_TOKEN_LEN);
        }
        assert_int_equal(n_accepted, 16);
        printf("# %zu malformed tokens rejected%s\n", n_rejected,
               wrapped ? ", SHA-256 never called" : " (SHA-256 calls not counted: no --wrap)");
}

static void test_random_hex(void **state)
{
        char a[33], b[33], big[AUTH_RANDOM_HEX_MAX_SIZE], small[3];
        char untouched[4] = "xyz";

        assert_int_equal(auth_random_hex(a, sizeof(a)), 0);
        assert_int_equal(auth_random_hex(b, sizeof(b)), 0);
        assert_int_equal(strlen(a), 32);
        assert_int_equal(strspn(a, "0123456789abcdef"), 32);
        assert_string_not_equal(a, b);
        assert_int_equal(auth_random_hex(big, sizeof(big)), 0);
        assert_int_equal(strspn(big, "0123456789abcdef"), sizeof(big) - 1);
        assert_int_equal(auth_random_hex(small, sizeof(small)), 0);
        assert_int_equal(strlen(small), 2);

        assert_int_equal(auth_random_hex(untouched, 4), -EINVAL); /* even */
        assert_int_equal(auth_random_hex(untouched, 2), -EINVAL);
        assert_int_equal(auth_random_hex(untouched, 1), -EINVAL);
        assert_int_equal(auth_random_hex(untouched, 0), -EINVAL);
        assert_int_equal(auth_random_hex(untouched, AUTH_RANDOM_HEX_MAX_SIZE + 2), -EINVAL);
        assert_int_equal(auth_random_hex(NULL, 33), -EINVAL);
        assert_string_equal(untouched, "xyz");
}

/* ---- authorization: the rule, stated independently ---------------------------------------- */

/* The action table as the security model states it, written out again by hand. */
struct expected_action {
        enum auth_action action;
        const char *name;
        enum auth_rights level;
        bool worker_only;
};

static const struct expected_action actions[] = {
        {AUTH_ACTION_WORK_REQUEST, "work_request", AUTH_RIGHTS_WORKER, true},
        {AUTH_ACTION_WORK_HEARTBEAT, "work_heartbeat", AUTH_RIGHTS_WORKER, true},
        {AUTH_ACTION_WORK_APP_DOWNLOAD, "work_app_download", AUTH_RIGHTS_WORKER, true},
        {AUTH_ACTION_WORK_DATA_DOWNLOAD, "work_data_download", AUTH_RIGHTS_WORKER, true},
        {AUTH_ACTION_WORK_RESULT_UPLOAD, "work_result_upload", AUTH_RIGHTS_WORKER, true},
        {AUTH_ACTION_SESSION_LIST, "session_list", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_SESSION_REVOKE, "session_revoke", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_USER_GET, "user_get", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_USER_UPDATE, "user_update", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_GROUP_LIST, "group_list", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_GROUP_GET, "group_get", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_JOB_INSERT, "job_insert", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_JOB_LIST, "job_list", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_JOB_GET, "job_get", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_JOB_CANCEL, "job_cancel", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_DATA_INSERT, "data_insert", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_DATA_LIST, "data_list", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_DATA_GET, "data_get", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_DATA_USE, "data_use", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_DATA_DELETE, "data_delete", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_APP_INSERT, "app_insert", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_APP_LIST, "app_list", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_APP_GET, "app_get", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_APP_EXEC, "app_exec", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_APP_UPDATE, "app_update", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_APP_DELETE, "app_delete", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_CHMOD, "chmod", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_CHGRP, "chgrp", AUTH_RIGHTS_STANDARD, false},
        {AUTH_ACTION_USER_INSERT, "user_insert", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_USER_LIST, "user_list", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_USER_DELETE, "user_delete", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_USER_SET_RIGHTS, "user_set_rights", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_USER_APPROVE, "user_approve", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_GROUP_INSERT, "group_insert", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_GROUP_DELETE, "group_delete", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_GROUP_SET_MEMBERS, "group_set_members", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_CHOWN, "chown", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_AUDIT_READ, "audit_read", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_WORKER_INSERT, "worker_insert", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_WORKER_LIST, "worker_list", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_WORKER_GET, "worker_get", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_WORKER_DELETE, "worker_delete", AUTH_RIGHTS_ADMIN, false},
        {AUTH_ACTION_WORKER_TOKEN, "worker_token", AUTH_RIGHTS_ADMIN, false},
};

#define OWNER       1
#define GROUP       100 /* the object's group */
#define OWNER_GROUP 101 /* a group the owner is in */
#define FOREIGN     102 /* a group the owner is not in */

struct subject {
        const char *name;
        int64_t user;
        enum auth_rights rights;
        int64_t groups[2];
        size_t n_groups;
};

static const struct subject subjects[] = {
        {"owner", OWNER, AUTH_RIGHTS_STANDARD, {OWNER_GROUP}, 1},
        {"owner in the group", OWNER, AUTH_RIGHTS_STANDARD, {GROUP, OWNER_GROUP}, 2},
        {"group member", 2, AUTH_RIGHTS_STANDARD, {FOREIGN, GROUP}, 2},
        {"other user", 3, AUTH_RIGHTS_STANDARD, {FOREIGN}, 1},
        {"administrator", 4, AUTH_RIGHTS_ADMIN, {}, 0},
        {"worker", 5, AUTH_RIGHTS_WORKER, {}, 0},
        {"worker in the group", 6, AUTH_RIGHTS_WORKER, {GROUP}, 1},
        {"worker as the owner", OWNER, AUTH_RIGHTS_WORKER, {OWNER_GROUP}, 1},
        {"anonymous", 0, AUTH_RIGHTS_NONE, {}, 0},
        {"owner awaiting approval", OWNER, AUTH_RIGHTS_NONE, {OWNER_GROUP}, 1},
        /* ids 0 from a bug upstream: neither the nobody owner nor "no group" may match */
        {"user 0 with rights", 0, AUTH_RIGHTS_STANDARD, {0}, 1},
};

static const struct auth_object objects[] = {
        {OWNER, GROUP, 0},
        {OWNER, 0, 0}, /* no group: the group bits apply to no one */
        {0, GROUP, 0}, /* owned by nobody: the owner bits apply to no one */
};

static struct auth_subject as_subject(const struct subject *s)
{
        return (struct auth_subject){
                .user = s->user,
                .rights = s->rights,
                .groups = s->groups,
                .n_groups = s->n_groups,
        };
}

static bool member(const struct subject *s, int64_t group)
{
        for (size_t i = 0; i < s->n_groups; i++)
                if (group != 0 && s->groups[i] == group)
                        return true;
        return false;
}

/* The rights rule in words: nobody without rights; workers do worker things only; only workers
 * and administrators do worker things; otherwise the level decides. */
static bool expected_rights(const struct subject *s, const struct expected_action *a)
{
        switch (s->rights) {
        case AUTH_RIGHTS_NONE:
                return false;
        case AUTH_RIGHTS_WORKER:
                return a->worker_only;
        case AUTH_RIGHTS_STANDARD:
                return !a->worker_only && a->level == AUTH_RIGHTS_STANDARD;
        case AUTH_RIGHTS_ADMIN:
                return true;
        case _AUTH_RIGHTS_MAX:
                break;
        }
        fail();
        return false;
}

/* "rwxr-x---", as ls prints it. */
static void mode_string(uint32_t mode, char ret[10])
{
        for (int i = 0; i < 9; i++)
                ret[i] = mode & (0400u >> i) ? "rwx"[i % 3] : '-';
        ret[9] = '\0';
}

/* Which three characters of the mode string apply to s: the owner's, the group's or others'. */
static int class_offset(const struct subject *s, const struct auth_object *o)
{
        if (o->owner != 0 && s->user == o->owner)
                return 0;
        if (member(s, o->group))
                return 3;
        return 6;
}

static int expected_check(const struct subject *s, const struct expected_action *a,
                          const struct auth_object *o, enum auth_perm perm)
{
        char rwx[10];
        int off, k;

        if (!expected_rights(s, a))
                return -EPERM;
        if (s->rights == AUTH_RIGHTS_ADMIN || !o)
                return 0;
        mode_string(o->mode, rwx);
        off = class_offset(s, o);
        k = perm == AUTH_PERM_READ ? 0 : perm == AUTH_PERM_WRITE ? 1 : 2;
        if (rwx[off + k] != '-')
                return 0;
        return rwx[off] == 'r' ? -EACCES : -ENOENT;
}

static void test_rights_strings(void **state)
{
        static const struct {
                const char *s;
                enum auth_rights r;
        } names[] = {
                {"none", AUTH_RIGHTS_NONE},
                {"worker_user", AUTH_RIGHTS_WORKER},
                {"standard_user", AUTH_RIGHTS_STANDARD},
                {"administrator", AUTH_RIGHTS_ADMIN},
        };
        enum auth_rights r = AUTH_RIGHTS_ADMIN;
        int minus_one = -1;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                assert_int_equal(auth_rights_from_string(names[i].s, &r), 0);
                assert_int_equal(r, names[i].r);
                assert_string_equal(auth_rights_to_string(names[i].r), names[i].s);
        }
        /* ordered from least to most privileged */
        assert_true(AUTH_RIGHTS_NONE == 0 && AUTH_RIGHTS_NONE < AUTH_RIGHTS_WORKER &&
                    AUTH_RIGHTS_WORKER < AUTH_RIGHTS_STANDARD &&
                    AUTH_RIGHTS_STANDARD < AUTH_RIGHTS_ADMIN);

        r = AUTH_RIGHTS_WORKER;
        assert_int_equal(auth_rights_from_string("Administrator", &r), -EINVAL);
        assert_int_equal(auth_rights_from_string("admin", &r), -EINVAL);
        assert_int_equal(auth_rights_from_string("administrator ", &r), -EINVAL);
        assert_int_equal(auth_rights_from_string("", &r), -EINVAL);
        assert_int_equal(auth_rights_from_string(NULL, &r), -EINVAL);
        assert_int_equal(r, AUTH_RIGHTS_WORKER);
        assert_null(auth_rights_to_string(_AUTH_RIGHTS_MAX));
        assert_null(auth_rights_to_string((enum auth_rights) minus_one));
}

static void test_action_table(void **state)
{
        int minus_one = -1;

        assert_int_equal(ELEMENTSOF(actions), _AUTH_ACTION_MAX);
        for (size_t i = 0; i < ELEMENTSOF(actions); i++) {
                const struct auth_action_info *info = auth_action_info(actions[i].action);

                assert_non_null(info);
                assert_string_equal(info->name, actions[i].name);
                assert_string_equal(auth_action_to_string(actions[i].action), actions[i].name);
                assert_int_equal(info->level, actions[i].level);
                assert_int_equal(info->worker_only, actions[i].worker_only);
                /* worker actions are exactly the worker level */
                assert_int_equal(info->worker_only, info->level == AUTH_RIGHTS_WORKER);
                for (size_t j = 0; j < i; j++)
                        assert_true(actions[j].action != actions[i].action);
        }
        assert_null(auth_action_info(_AUTH_ACTION_MAX));
        assert_null(auth_action_info((enum auth_action) minus_one));
        assert_null(auth_action_to_string(_AUTH_ACTION_MAX));
}

static const enum auth_perm perms[] = {AUTH_PERM_READ, AUTH_PERM_WRITE, AUTH_PERM_EXEC};

/* The modes the security model names; the matrix runs all 512 and so covers them. */
static const uint32_t named_modes[] = {
        0700, 0750, 0755, 0770, 0775, 0777, 0600, 0640, 0644, 0711, 0000,
};

static void test_check_matrix(void **state)
{
        size_t n = 0, outcomes[5] = {}; /* 0, EPERM, EACCES, ENOENT, no object */

        for (size_t ai = 0; ai < ELEMENTSOF(actions); ai++)
                for (size_t si = 0; si < ELEMENTSOF(subjects); si++) {
                        const struct expected_action *a = &actions[ai];
                        const struct subject *s = &subjects[si];
                        struct auth_subject who = as_subject(s);

                        /* no object: the rights alone */
                        for (size_t pi = 0; pi < ELEMENTSOF(perms) + 1; pi++) {
                                enum auth_perm p =
                                        pi < ELEMENTSOF(perms) ? perms[pi] : AUTH_PERM_NONE;
                                int want = expected_rights(s, a) ? 0 : -EPERM;
                                int got = auth_check(&who, a->action, NULL, p);

                                if (got != want)
                                        fail_msg("%s by %s on no object: %d, expected %d", a->name,
                                                 s->name, got, want);
                                outcomes[4]++;
                                n++;
                        }

                        for (size_t oi = 0; oi < ELEMENTSOF(objects); oi++)
                                for (uint32_t mode = 0; mode <= 0777; mode++)
                                        for (size_t pi = 0; pi < ELEMENTSOF(perms); pi++) {
                                                struct auth_object o = objects[oi];
                                                int want, got;

                                                o.mode = mode;
                                                want = expected_check(s, a, &o, perms[pi]);
                                                got = auth_check(&who, a->action, &o, perms[pi]);
                                                if (got != want)
                                                        fail_msg("%s by %s, perm %d on "
                                                                 "{owner %lld group %lld mode "
                                                                 "%04o}: %d, expected %d",
                                                                 a->name, s->name, perms[pi],
                                                                 (long long) o.owner,
                                                                 (long long) o.group, mode, got,
                                                                 want);
                                                outcomes[want == 0         ? 0
                                                         : want == -EPERM  ? 1
                                                         : want == -EACCES ? 2
                                                                           : 3]++;
                                                n++;
                                        }
                }

        for (size_t i = 0; i < ELEMENTSOF(named_modes); i++)
                assert_true(named_modes[i] <= 0777);
        /* the matrix is not degenerate: every answer occurs */
        for (size_t i = 0; i < ELEMENTSOF(outcomes); i++)
                assert_true(outcomes[i] > 0);
        printf("# auth_check: %zu combinations (%zu actions x %zu subjects x (3 objects x 512 "
               "modes x 3 perms + 4 without object)): %zu allowed, %zu EPERM, %zu EACCES, %zu "
               "ENOENT, %zu without object\n",
               n, ELEMENTSOF(actions), ELEMENTSOF(subjects), outcomes[0], outcomes[1], outcomes[2],
               outcomes[3], outcomes[4]);
}

/* A few answers spelled out, as the issues state them. */
static void test_check_examples(void **state)
{
        const int64_t g[] = {GROUP};
        struct auth_subject alice = {.user = 1, .rights = AUTH_RIGHTS_STANDARD};
        struct auth_subject bob = {.user = 2, .rights = AUTH_RIGHTS_STANDARD};
        struct auth_subject carol = {3, AUTH_RIGHTS_STANDARD, g, 1};
        struct auth_subject root = {.user = 9, .rights = AUTH_RIGHTS_ADMIN};
        struct auth_subject worker = {.user = 7, .rights = AUTH_RIGHTS_WORKER};
        struct auth_subject anon = {.user = 0, .rights = AUTH_RIGHTS_NONE};
        struct auth_object job = {.owner = 1, .group = GROUP, .mode = 0700};
        struct auth_object app = {.owner = 9, .group = 0, .mode = 0755};
        struct auth_object exec_only = {.owner = 9, .group = 0, .mode = 0711};

        /* another user's job is invisible, not forbidden */
        assert_int_equal(auth_check(&alice, AUTH_ACTION_JOB_GET, &job, AUTH_PERM_READ), 0);
        assert_int_equal(auth_check(&bob, AUTH_ACTION_JOB_GET, &job, AUTH_PERM_READ), -ENOENT);
        assert_int_equal(auth_check(&bob, AUTH_ACTION_JOB_CANCEL, &job, AUTH_PERM_WRITE), -ENOENT);
        assert_int_equal(auth_check(&carol, AUTH_ACTION_JOB_GET, &job, AUTH_PERM_READ), -ENOENT);
        assert_int_equal(auth_check(&root, AUTH_ACTION_JOB_CANCEL, &job, AUTH_PERM_WRITE), 0);
        /* a group job: its group sees it, cannot cancel it */
        job.mode = 0750;
        assert_int_equal(auth_check(&carol, AUTH_ACTION_JOB_GET, &job, AUTH_PERM_READ), 0);
        assert_int_equal(auth_check(&carol, AUTH_ACTION_JOB_CANCEL, &job, AUTH_PERM_WRITE),
                         -EACCES);
        /* the owner's class is the only one that counts for the owner */
        job.mode = 0070;
        assert_int_equal(auth_check(&alice, AUTH_ACTION_JOB_GET, &job, AUTH_PERM_READ), -ENOENT);
        /* a public app: everyone runs it, only its owner changes it */
        assert_int_equal(auth_check(&bob, AUTH_ACTION_APP_EXEC, &app, AUTH_PERM_EXEC), 0);
        assert_int_equal(auth_check(&bob, AUTH_ACTION_APP_UPDATE, &app, AUTH_PERM_WRITE), -EACCES);
        /* an execute-only app: runnable, yet invisible */
        assert_int_equal(auth_check(&bob, AUTH_ACTION_APP_EXEC, &exec_only, AUTH_PERM_EXEC), 0);
        assert_int_equal(auth_check(&bob, AUTH_ACTION_APP_GET, &exec_only, AUTH_PERM_READ),
                         -ENOENT);
        /* rights come first, and do not depend on the object */
        assert_int_equal(auth_check(&worker, AUTH_ACTION_JOB_LIST, NULL, AUTH_PERM_NONE), -EPERM);
        assert_int_equal(auth_check(&worker, AUTH_ACTION_APP_GET, &app, AUTH_PERM_READ), -EPERM);
        assert_int_equal(auth_check(&worker, AUTH_ACTION_WORK_REQUEST, NULL, AUTH_PERM_NONE), 0);
        assert_int_equal(auth_check(&alice, AUTH_ACTION_WORK_REQUEST, NULL, AUTH_PERM_NONE),
                         -EPERM);
        assert_int_equal(auth_check(&root, AUTH_ACTION_WORK_REQUEST, NULL, AUTH_PERM_NONE), 0);
        assert_int_equal(auth_check(&alice, AUTH_ACTION_USER_INSERT, NULL, AUTH_PERM_NONE), -EPERM);
        assert_int_equal(auth_check(&anon, AUTH_ACTION_JOB_LIST, NULL, AUTH_PERM_NONE), -EPERM);
}

static void test_check_invalid(void **state)
{
        const int64_t g[] = {GROUP};
        struct auth_subject who = {1, AUTH_RIGHTS_ADMIN, g, 1};
        struct auth_object obj = {1, GROUP, 0700};
        int minus_one = -1;

        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), 0);
        assert_int_equal(auth_check(NULL, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        assert_int_equal(auth_check(&who, _AUTH_ACTION_MAX, &obj, AUTH_PERM_READ), -EINVAL);
        assert_int_equal(auth_check(&who, (enum auth_action) minus_one, NULL, AUTH_PERM_NONE),
                         -EINVAL);
        /* a perm is one bit, and there must be one when there is an object */
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_NONE), -EINVAL);
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, (enum auth_perm) 3), -EINVAL);
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, NULL, (enum auth_perm) 8), -EINVAL);
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, (enum auth_perm) 7), -EINVAL);
        /* corrupted objects and subjects fail closed, even for an administrator */
        obj.mode = 01700;
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        obj.mode = UINT32_MAX;
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        obj = (struct auth_object){-1, GROUP, 0700};
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        obj = (struct auth_object){1, -5, 0700};
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        obj = (struct auth_object){1, GROUP, 0700};
        who.rights = _AUTH_RIGHTS_MAX;
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        who.rights = (enum auth_rights) minus_one;
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        who = (struct auth_subject){1, AUTH_RIGHTS_ADMIN, NULL, 1};
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
        who = (struct auth_subject){-1, AUTH_RIGHTS_ADMIN, NULL, 0};
        assert_int_equal(auth_check(&who, AUTH_ACTION_JOB_GET, &obj, AUTH_PERM_READ), -EINVAL);
}

static void test_insert_matrix(void **state)
{
        static const enum auth_action inserts[] = {
                AUTH_ACTION_JOB_INSERT,  AUTH_ACTION_DATA_INSERT,  AUTH_ACTION_APP_INSERT,
                AUTH_ACTION_USER_INSERT, AUTH_ACTION_GROUP_INSERT,
        };

        size_t n = 0;

        for (size_t ii = 0; ii < ELEMENTSOF(inserts); ii++)
                for (size_t si = 0; si < ELEMENTSOF(subjects); si++) {
                        const struct expected_action *a = NULL;
                        const struct subject *s = &subjects[si];
                        struct auth_subject who = as_subject(s);

                        for (size_t k = 0; k < ELEMENTSOF(actions); k++)
                                if (actions[k].action == inserts[ii])
                                        a = &actions[k];
                        assert_non_null(a);

                        for (uint32_t mode = 0; mode <= 0777; mode++) {
                                char rwx[10];
                                int want, got;

                                /* a non-administrator creates only private objects: nothing
                                 * for the group, nothing for others */
                                mode_string(mode, rwx);
                                if (!expected_rights(s, a))
                                        want = -EPERM;
                                else if (s->rights == AUTH_RIGHTS_ADMIN)
                                        want = 0;
                                else
                                        want = strcmp(rwx + 3, "------") == 0 ? 0 : -EPERM;
                                got = auth_check_insert(&who, a->action, mode);
                                if (got != want)
                                        fail_msg("%s by %s with mode %04o: %d, expected %d",
                                                 a->name, s->name, mode, got, want);
                                n++;
                        }
                        assert_int_equal(auth_check_insert(&who, a->action, 01000), -EINVAL);
                }
        printf("# auth_check_insert: %zu combinations\n", n);
}

static bool subset(uint32_t a, uint32_t b)
{
        for (int bit = 0; bit < 9; bit++)
                if ((a & (1u << bit)) && !(b & (1u << bit)))
                        return false;
        return true;
}

static int expected_not_owner(const struct subject *s, const struct auth_object *o)
{
        char rwx[10];

        mode_string(o->mode, rwx);
        return rwx[class_offset(s, o)] == 'r' ? -EACCES : -ENOENT;
}

static bool may_change_mode(const struct subject *s)
{
        return s->rights == AUTH_RIGHTS_STANDARD || s->rights == AUTH_RIGHTS_ADMIN;
}

static void test_chmod_matrix(void **state)
{
        /* [lower, same, raise] x [allowed, refused] */
        size_t counts[3][2] = {}, n = 0;

        for (size_t si = 0; si < ELEMENTSOF(subjects); si++)
                for (size_t oi = 0; oi < ELEMENTSOF(objects); oi++)
                        for (uint32_t old = 0; old <= 0777; old++)
                                for (uint32_t to = 0; to <= 0777; to++) {
                                        const struct subject *s = &subjects[si];
                                        struct auth_subject who = as_subject(s);
                                        struct auth_object o = objects[oi];
                                        int kind = to == old ? 1 : subset(to, old) ? 0 : 2;
                                        int want, got;

                                        o.mode = old;
                                        if (!may_change_mode(s))
                                                want = -EPERM;
                                        else if (s->rights == AUTH_RIGHTS_ADMIN)
                                                want = 0;
                                        else if (o.owner != 0 && s->user == o.owner)
                                                want = kind == 2 ? -EPERM : 0;
                                        else
                                                want = expected_not_owner(s, &o);
                                        got = auth_check_chmod(&who, &o, to);
                                        if (got != want)
                                                fail_msg("chmod %04o -> %04o by %s (owner %lld "
                                                         "group %lld): %d, expected %d",
                                                         old, to, s->name, (long long) o.owner,
                                                         (long long) o.group, got, want);
                                        counts[kind][got != 0]++;
                                        n++;
                                }

        /* the rule's corners, spelled out */
        {
                struct auth_subject owner = {.user = OWNER, .rights = AUTH_RIGHTS_STANDARD};
                struct auth_subject admin = {.user = 4, .rights = AUTH_RIGHTS_ADMIN};
                struct auth_subject other = {.user = 3, .rights = AUTH_RIGHTS_STANDARD};
                struct auth_object o = {OWNER, GROUP, 0750};

                assert_int_equal(auth_check_chmod(&owner, &o, 0700), 0);      /* lower */
                assert_int_equal(auth_check_chmod(&owner, &o, 0750), 0);      /* same */
                assert_int_equal(auth_check_chmod(&owner, &o, 0755), -EPERM); /* raise */
                assert_int_equal(auth_check_chmod(&owner, &o, 0705), -EPERM); /* lower and raise */
                assert_int_equal(auth_check_chmod(&admin, &o, 0777), 0);
                assert_int_equal(auth_check_chmod(&admin, &o, 0000), 0);
                assert_int_equal(auth_check_chmod(&other, &o, 0700), -ENOENT);
                o.mode = 0755;
                assert_int_equal(auth_check_chmod(&other, &o, 0700), -EACCES);
                assert_int_equal(auth_check_chmod(&owner, &o, 01755), -EINVAL);
                assert_int_equal(auth_check_chmod(&admin, &o, 04755), -EINVAL);
                assert_int_equal(auth_check_chmod(&admin, NULL, 0755), -EINVAL);
                assert_int_equal(auth_check_chmod(NULL, &o, 0755), -EINVAL);
        }

        assert_true(counts[0][0] > 0 && counts[0][1] > 0 && counts[1][0] > 0 && counts[1][1] > 0 &&
                    counts[2][0] > 0 && counts[2][1] > 0);
        printf("# auth_check_chmod: %zu combinations; lower %zu allowed / %zu refused, same %zu / "
               "%zu, raise %zu / %zu\n",
               n, counts[0][0], counts[0][1], counts[1][0], counts[1][1], counts[2][0],
               counts[2][1]);
}

/* The bits a user with these memberships has on an object of group `group`. */
static uint32_t bits_of(uint32_t mode, int64_t group, bool in_a, bool in_b, int64_t a, int64_t b)
{
        bool member_of_group = group != 0 && ((group == a && in_a) || (group == b && in_b));

        return member_of_group ? (mode >> 3) & 7 : mode & 7;
}

/* Would anyone but the owner gain a bit if the object moved from group `from` to `to`? Tried on
 * every kind of user: in neither group, in one, in both (a group may get any member later). */
static bool chgrp_widens(uint32_t mode, int64_t from, int64_t to)
{
        for (int in_from = 0; in_from <= 1; in_from++)
                for (int in_to = 0; in_to <= 1; in_to++) {
                        uint32_t before = bits_of(mode, from, in_from, in_to, from, to);
                        uint32_t after = bits_of(mode, to, in_from, in_to, from, to);

                        if (!subset(after, before))
                                return true;
                }
        return false;
}

static void test_chgrp_matrix(void **state)
{
        static const int64_t groups[] = {0, GROUP, OWNER_GROUP, FOREIGN};
        size_t n = 0, allowed_owner = 0, refused_owner = 0;

        for (size_t si = 0; si < ELEMENTSOF(subjects); si++)
                for (size_t fi = 0; fi < ELEMENTSOF(groups); fi++)
                        for (size_t ti = 0; ti < ELEMENTSOF(groups); ti++)
                                for (uint32_t mode = 0; mode <= 0777; mode++) {
                                        const struct subject *s = &subjects[si];
                                        struct auth_subject who = as_subject(s);
                                        struct auth_object o = {OWNER, groups[fi], mode};
                                        int64_t to = groups[ti];
                                        bool owner = s->user == OWNER;
                                        int want, got;

                                        if (!may_change_mode(s))
                                                want = -EPERM;
                                        else if (s->rights == AUTH_RIGHTS_ADMIN)
                                                want = 0;
                                        else if (!owner)
                                                want = expected_not_owner(s, &o);
                                        else if (to == o.group)
                                                want = 0;
                                        else if (to != 0 && !member(s, to))
                                                want = -EPERM;
                                        else
                                                want = chgrp_widens(mode, o.group, to) ? -EPERM : 0;
                                        got = auth_check_chgrp(&who, &o, to);
                                        if (got != want)
                                                fail_msg("chgrp %lld -> %lld (mode %04o) by %s: "
                                                         "%d, expected %d",
                                                         (long long) o.group, (long long) to, mode,
                                                         s->name, got, want);
                                        if (owner && may_change_mode(s) &&
                                            s->rights != AUTH_RIGHTS_ADMIN)
                                                *(got == 0 ? &allowed_owner : &refused_owner) += 1;
                                        n++;
                                }

        {
                const int64_t mine[] = {OWNER_GROUP};
                struct auth_subject owner = {OWNER, AUTH_RIGHTS_STANDARD, mine, 1};
                struct auth_object o = {OWNER, GROUP, 0750};

                assert_int_equal(auth_check_chgrp(&owner, &o, 0), 0); /* leave: group loses */
                assert_int_equal(auth_check_chgrp(&owner, &o, OWNER_GROUP), -EPERM); /* gives */
                assert_int_equal(auth_check_chgrp(&owner, &o, FOREIGN), -EPERM);
                o.mode = 0704; /* leaving would give the old group the others' read */
                assert_int_equal(auth_check_chgrp(&owner, &o, 0), -EPERM);
                o = (struct auth_object){OWNER, 0, 0700};
                assert_int_equal(auth_check_chgrp(&owner, &o, OWNER_GROUP), 0);
                assert_int_equal(auth_check_chgrp(&owner, &o, -1), -EINVAL);
        }

        assert_true(allowed_owner > 0 && refused_owner > 0);
        printf("# auth_check_chgrp: %zu combinations (owner: %zu allowed, %zu refused)\n", n,
               allowed_owner, refused_owner);
}

static void test_chown(void **state)
{
        size_t n = 0;

        for (size_t si = 0; si < ELEMENTSOF(subjects); si++)
                for (uint32_t mode = 0; mode <= 0777; mode++) {
                        struct auth_subject who = as_subject(&subjects[si]);
                        struct auth_object o = {OWNER, GROUP, mode};
                        int want = subjects[si].rights == AUTH_RIGHTS_ADMIN ? 0 : -EPERM;

                        assert_int_equal(auth_check_chown(&who, &o, 3), want);
                        assert_int_equal(auth_check_chown(&who, &o, OWNER), want);
                        assert_int_equal(auth_check_chown(&who, &o, -1), -EINVAL);
                        n += 3;
                }
        {
                struct auth_subject admin = {.user = 4, .rights = AUTH_RIGHTS_ADMIN};
                struct auth_object bad = {OWNER, GROUP, 01000};

                assert_int_equal(auth_check_chown(&admin, &bad, 3), -EINVAL);
                assert_int_equal(auth_check_chown(&admin, NULL, 3), -EINVAL);
                assert_int_equal(auth_check_chown(NULL, &bad, 3), -EINVAL);
        }
        printf("# auth_check_chown: %zu combinations\n", n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_from_threads),
                cmocka_unit_test(test_password_roundtrip),
                cmocka_unit_test(test_password_bounds),
                cmocka_unit_test(test_password_malformed),
                cmocka_unit_test(test_password_rehash),
                cmocka_unit_test(test_password_generate),
                cmocka_unit_test(test_token_format),
                cmocka_unit_test(test_token_unique),
                cmocka_unit_test(test_token_malformed),
                cmocka_unit_test(test_worker_token_format),
                cmocka_unit_test(test_random_hex),
                cmocka_unit_test(test_rights_strings),
                cmocka_unit_test(test_action_table),
                cmocka_unit_test(test_check_matrix),
                cmocka_unit_test(test_check_examples),
                cmocka_unit_test(test_check_invalid),
                cmocka_unit_test(test_insert_matrix),
                cmocka_unit_test(test_chmod_matrix),
                cmocka_unit_test(test_chgrp_matrix),
                cmocka_unit_test(test_chown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
