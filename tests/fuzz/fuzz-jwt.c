/* SPDX-License-Identifier: MIT */

/*
 * Fuzzes the JWT bearer-token verifier (jwt_verify(), jwt_looks_like()) and the JWKS parser
 * (jwt_keyset_parse()): a token comes from any client before anything about it is known, a JWKS
 * from an identity provider's document. The first byte of the input picks how the rest is used:
 *   0  a token, verified against a fixed JWKS (HS256, ES256, EdDSA and RS256 keys);
 *   1  "header.payload": the harness MACs it with the fixed HS256 key and appends the
 *      signature, so that what lies behind a valid signature (the payload's parsing, the claims)
 *      is fuzzed too;
 *   2  a JWKS text, a NUL byte, a token verified against that JWKS if it parses.
 * Beyond crashes it checks what the API promises: one of the documented results, *ret written
 * only on success, and on success claims that satisfy the expectation.
 */

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "common/util.h"
#include "fuzz.h"

#define NOW    INT64_C(1700000000)
#define ISSUER "https://idp.example.org"

static const char hmac_secret[] = "warren-fuzz-jwt-hmac-secret-0123456789abcdef";

static const char fixed_jwks[] =
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"d2FycmVuLWZ1enotand0LWhtYWMtc2VjcmV0LTAxMjM0"
        "NTY3ODlhYmNkZWY\",\"alg\":\"HS256\",\"kid\":\"h\"},{\"kty\":\"EC\",\"crv\":\"P-2"
        "56\",\"x\":\"Flk-X-9AD6PtL_SiSiViFss5G1fcmXNOBq7i0R_Lr20\",\"y\":\"I5vt9KcDedVBi"
        "izri5L6fe5fjamHgPQa8Yy5xK9yMdM\",\"alg\":\"ES256\",\"kid\":\"e\"},{\"kty\":\"OKP"
        "\",\"crv\":\"Ed25519\",\"x\":\"8bd1aMK7_qjJbPA3gJavt2BSlQ9PErWdcyjEjBao-EA\",\"a"
        "lg\":\"EdDSA\",\"kid\":\"d\"},{\"kty\":\"RSA\",\"n\":\"rwDQcgF_U2H6Os8QUxWtT-z7g"
        "IjL4vJDvmOkd52tTfGV4Ne9fXE0l___w_pRwWVWNHLjtg8e9Kzi7etjx5qbgcStVKdTDkjtPVfLzJwIP"
        "rxT9XVds66rbiJvoqPs9ybIIe73zJtVZmtk-As-SE95-I0IhXS3ZU7sKYB1Rn3NuwkgiJf3G8suFaUOk"
        "dtBghfIXd6pXMCSQ_0rJI83xw0ASkoSc0A_aGQg1-aD7BCsLEEBpiCleibLep0SCrHKflJyKoribiXgG"
        "yAZGTuVugvK9XFmxMmjhqlgceMADNse94MPGXs_MsTBrMfxLJgkt2feiRZZR4wTTy8gMPnomKAxcw\","
        "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"r\"}]}";

static struct jwt_keyset *fixed;

static const struct jwt_expect expect = {
        .issuer = ISSUER,
        .audience = "warren",
        .now = NOW,
        .leeway = 60,
        .username_claim = "preferred_username",
};

static void verify_one(const struct jwt_keyset *ks, const char *tok, size_t len)
{
        struct jwt_claims c = {.sub = (char *) "untouched"};
        enum jwt_error e = _JWT_ERROR_MAX;
        int r = jwt_verify(ks, tok, len, &expect, &c, &e);

        check(jwt_error_to_string(e) != NULL);
        if (r < 0) {
                check(r == -EKEYREJECTED || r == -ENOMEM);
                check(e != JWT_OK && e < _JWT_ERROR_MAX);
                check(strcmp(c.sub, "untouched") == 0);
                return;
        }
        check(r == 0 && e == JWT_OK);
        check(jwt_looks_like(tok, len));
        check(c.iss && strcmp(c.iss, ISSUER) == 0);
        check(c.sub && strlen(c.sub) >= 1 && strlen(c.sub) <= JWT_CLAIM_MAX);
        check(utf8_valid(c.sub, strlen(c.sub)));
        check(!c.username || (strlen(c.username) >= 1 && strlen(c.username) <= JWT_CLAIM_MAX));
        check(c.alg != NULL);
        check(NOW < c.exp + expect.leeway);
        check(c.nbf <= NOW + expect.leeway && c.iat <= NOW + expect.leeway);
        jwt_claims_clear(&c);
}

static void mac_and_verify(const uint8_t *data, size_t size)
{
        unsigned char mac[32];
        char *sig, *tok, *w;
        size_t n;

        if (size > JWT_TOKEN_MAX)
                return;
        check(gnutls_hmac_fast(GNUTLS_MAC_SHA256, hmac_secret, strlen(hmac_secret), data, size,
                               mac) == 0);
        sig = base64_encode(mac, sizeof(mac));
        check(sig != NULL);
        n = strlen(sig);
        tok = malloc(size + 1 + n + 1);
        check(tok != NULL);
        memcpy(tok, data, size);
        w = tok + size;
        *w++ = '.';
        for (const char *p = sig; *p && *p != '='; p++)
                *w++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        verify_one(fixed, tok, (size_t) (w - tok));
        free(tok);
        free(sig);
}

static void jwks_and_verify(const uint8_t *data, size_t size)
{
        const uint8_t *nul = memchr(data, '\0', size);
        size_t jwks_len = nul ? (size_t) (nul - data) : size;
        struct jwt_keyset *ks = NULL;
        char *error = NULL;
        int r;

        r = jwt_keyset_parse((const char *) data, jwks_len, &ks, &error);
        if (r < 0) {
                check(r == -EBADMSG || r == -EKEYREJECTED || r == -E2BIG || r == -ENOENT ||
                      r == -ENOMEM || r == -EIO);
                check(ks == NULL);
                check(r == -ENOMEM || error != NULL);
                free(error);
                return;
        }
        check(error == NULL);
        check(jwt_keyset_size(ks) >= 1 && jwt_keyset_size(ks) <= JWT_KEYS_MAX);
        if (nul)
                verify_one(ks, (const char *) nul + 1, size - jwks_len - 1);
        jwt_keyset_free(ks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!fixed) {
                char *error = NULL;

                check(jwt_keyset_parse(fixed_jwks, strlen(fixed_jwks), &fixed, &error) == 0);
                check(jwt_keyset_size(fixed) == 4);
        }
        if (size == 0)
                return 0;
        switch (data[0] % 3) {
        case 0:
                (void) jwt_looks_like((const char *) data + 1, size - 1);
                verify_one(fixed, (const char *) data + 1, size - 1);
                break;
        case 1:
                mac_and_verify(data + 1, size - 1);
                break;
        case 2:
                jwks_and_verify(data + 1, size - 1);
                break;
        }
        return 0;
}
