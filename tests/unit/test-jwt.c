/* SPDX-License-Identifier: MIT */
/*
 * The jwt module: keys made here with GnuTLS (RSA 2048, EC P-256/P-384/P-521, Ed25519, HMAC
 * secrets), their JWKs built here, tokens signed here by a small signer. Every algorithm
 * accepted, with and without a kid; every refusal for its reason: the alg-confusion forgery (an
 * HS256 MAC keyed with the RSA key's PEM, DER or modulus), "none", a kid whose key is pinned to
 * another alg, a DER ECDSA signature, one flipped bit anywhere, the time boundaries on both
 * sides with and without leeway, the claims, the strict form of the token; and the JWKS
 * documents that must be refused whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "auth/jwt.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "unit.h"

#define NOW    INT64_C(1700000000)
#define ISSUER "https://idp.example.org"
#define AUD    "warren"

/* ---- keys and the signer ---- */

static gnutls_privkey_t rsa_key, p256_key, p384_key, p521_key, ed_key;
static unsigned char hmac_secret[64];

static gnutls_privkey_t generate(gnutls_pk_algorithm_t pk, unsigned bits)
{
        gnutls_privkey_t k = NULL;

        assert_int_equal(gnutls_privkey_init(&k), 0);
        assert_int_equal(gnutls_privkey_generate2(k, pk, bits, 0, NULL, 0), 0);
        return k;
}

static int setup(void **state)
{
        (void) state;
        rsa_key = generate(GNUTLS_PK_RSA, 2048);
        p256_key = generate(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
        p384_key = generate(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1));
        p521_key = generate(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP521R1));
        ed_key = generate(GNUTLS_PK_EDDSA_ED25519, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519));
        assert_int_equal(gnutls_rnd(GNUTLS_RND_RANDOM, hmac_secret, sizeof(hmac_secret)), 0);
        return 0;
}

static int teardown(void **state)
{
        (void) state;
        gnutls_privkey_deinit(rsa_key);
        gnutls_privkey_deinit(p256_key);
        gnutls_privkey_deinit(p384_key);
        gnutls_privkey_deinit(p521_key);
        gnutls_privkey_deinit(ed_key);
        return 0;
}

/* base64url without padding (RFC 7515 §2). */
static char *b64url(const void *data, size_t len)
{
        char *s = base64_encode(data, len), *w = s;

        assert_non_null(s);
        for (char *p = s; *p; p++) {
                if (*p == '=')
                        continue;
                *w++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        }
        *w = '\0';
        return s;
}

/* Left-pads a big-endian integer (GnuTLS's export without leading zeros) to len bytes. */
static char *b64url_padded(const gnutls_datum_t *d, size_t len)
{
        unsigned char buf[256] = {0};

        assert_true(d->size <= len && len <= sizeof(buf));
        memcpy(buf + len - d->size, d->data, d->size);
        return b64url(buf, len);
}

static json_t *jwk_rsa(gnutls_privkey_t k, const char *alg, const char *kid)
{
        gnutls_datum_t n = {0}, e = {0};
        _cleanup_free_ char *sn = NULL, *se = NULL;
        json_t *j;

        assert_int_equal(gnutls_privkey_export_rsa_raw2(k, &n, &e, NULL, NULL, NULL, NULL, NULL,
                                                        NULL, GNUTLS_EXPORT_FLAG_NO_LZ),
                         0);
        sn = b64url(n.data, n.size);
        se = b64url(e.data, e.size);
        gnutls_free(n.data);
        gnutls_free(e.data);
        j = json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "alg", alg, "n", sn, "e", se);
        assert_non_null(j);
        if (kid)
                json_object_set_new(j, "kid", json_string(kid));
        return j;
}

static json_t *jwk_ec(gnutls_privkey_t k, const char *alg, const char *kid)
{
        gnutls_ecc_curve_t curve;
        gnutls_datum_t x = {0}, y = {0};
        _cleanup_free_ char *sx = NULL, *sy = NULL;
        const char *crv;
        size_t coord;
        json_t *j;

        /* Ed25519's x is a byte string, not an integer: no leading zero to strip. */
        bool ed = gnutls_privkey_get_pk_algorithm(k, NULL) == GNUTLS_PK_EDDSA_ED25519;

        assert_int_equal(gnutls_privkey_export_ecc_raw2(k, &curve, &x, &y, NULL,
                                                        ed ? 0 : GNUTLS_EXPORT_FLAG_NO_LZ),
                         0);
        if (curve == GNUTLS_ECC_CURVE_ED25519) {
                sx = b64url(x.data, x.size);
                gnutls_free(x.data);
                j = json_pack("{s:s, s:s, s:s, s:s}", "kty", "OKP", "alg", alg, "crv", "Ed25519",
                              "x", sx);
        } else {
                crv = curve == GNUTLS_ECC_CURVE_SECP256R1   ? "P-256"
                      : curve == GNUTLS_ECC_CURVE_SECP384R1 ? "P-384"
                                                            : "P-521";
                coord = curve == GNUTLS_ECC_CURVE_SECP256R1   ? 32
                        : curve == GNUTLS_ECC_CURVE_SECP384R1 ? 48
                                                              : 66;
                sx = b64url_padded(&x, coord);
                sy = b64url_padded(&y, coord);
                gnutls_free(x.data);
                gnutls_free(y.data);
                j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "alg", alg, "crv", crv, "x",
                              sx, "y", sy);
        }
        assert_non_null(j);
        if (kid)
                json_object_set_new(j, "kid", json_string(kid));
        return j;
}

static json_t *jwk_oct(const void *secret, size_t len, const char *alg, const char *kid)
{
        _cleanup_free_ char *sk = b64url(secret, len);
        json_t *j = json_pack("{s:s, s:s, s:s}", "kty", "oct", "alg", alg, "k", sk);

        assert_non_null(j);
        if (kid)
                json_object_set_new(j, "kid", json_string(kid));
        return j;
}

/* A JWKS of the keys given (references stolen), parsed; NULL (and *r) if refused. */
static struct jwt_keyset *keyset_of(int *ret_r, char **ret_error, size_t n, ...)
{
        json_t *keys = json_array();
        struct jwt_keyset *ks = NULL;
        char *text, *error = NULL;
        va_list ap;
        int r;

        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                json_array_append_new(keys, va_arg(ap, json_t *));
        va_end(ap);
        json_t *root = json_pack("{s:o}", "keys", keys);
        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        assert_non_null(text);
        r = jwt_keyset_parse(text, strlen(text), &ks, &error);
        free(text);
        if (r < 0) {
                assert_null(ks);
                assert_non_null(error);
        } else
                assert_null(error);
        if (ret_r)
                *ret_r = r;
        if (ret_error)
                *ret_error = error;
        else
                free(error);
        return ks;
}

/* The signing key of an alg: secret for HS*, else the private key. */
static gnutls_privkey_t priv_for(const char *alg)
{
        if (alg[0] == 'R' || alg[0] == 'P')
                return rsa_key;
        if (strcmp(alg, "ES256") == 0)
                return p256_key;
        if (strcmp(alg, "ES384") == 0)
                return p384_key;
        if (strcmp(alg, "ES512") == 0)
                return p521_key;
        if (strcmp(alg, "EdDSA") == 0)
                return ed_key;
        return NULL;
}

static gnutls_sign_algorithm_t sign_alg(const char *alg)
{
        static const struct {
                const char *name;
                gnutls_sign_algorithm_t sign;
        } t[] = {
                {"RS256", GNUTLS_SIGN_RSA_SHA256},
                {"RS384", GNUTLS_SIGN_RSA_SHA384},
                {"RS512", GNUTLS_SIGN_RSA_SHA512},
                {"PS256", GNUTLS_SIGN_RSA_PSS_RSAE_SHA256},
                {"PS384", GNUTLS_SIGN_RSA_PSS_RSAE_SHA384},
                {"PS512", GNUTLS_SIGN_RSA_PSS_RSAE_SHA512},
                {"ES256", GNUTLS_SIGN_ECDSA_SHA256},
                {"ES384", GNUTLS_SIGN_ECDSA_SHA384},
                {"ES512", GNUTLS_SIGN_ECDSA_SHA512},
                {"EdDSA", GNUTLS_SIGN_EDDSA_ED25519},
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (strcmp(t[i].name, alg) == 0)
                        return t[i].sign;
        fail_msg("no such alg %s", alg);
        return 0;
}

/*
 * The signature of input with the key of alg (HS*: with secret[0..secret_len)). der: an ECDSA
 * signature left in DER rather than made raw R||S.
 */
static char *signature(const char *alg, const void *secret, size_t secret_len, const char *input,
                       bool der)
{
        gnutls_datum_t data = {(unsigned char *) input, (unsigned) strlen(input)};
        gnutls_datum_t sig = {0}, r = {0}, s = {0};
        unsigned char buf[200];
        size_t coord;
        char *out;

        if (alg[0] == 'H') {
                gnutls_mac_algorithm_t mac = strcmp(alg, "HS256") == 0   ? GNUTLS_MAC_SHA256
                                             : strcmp(alg, "HS384") == 0 ? GNUTLS_MAC_SHA384
                                                                         : GNUTLS_MAC_SHA512;

                assert_int_equal(
                        gnutls_hmac_fast(mac, secret, secret_len, data.data, data.size, buf), 0);
                return b64url(buf, gnutls_hmac_get_len(mac));
        }
        assert_int_equal(gnutls_privkey_sign_data2(priv_for(alg), sign_alg(alg), 0, &data, &sig),
                         0);
        if (alg[0] != 'E' || alg[1] != 'S' || der) {
                out = b64url(sig.data, sig.size);
                gnutls_free(sig.data);
                return out;
        }
        coord = strcmp(alg, "ES256") == 0 ? 32 : strcmp(alg, "ES384") == 0 ? 48 : 66;
        assert_int_equal(gnutls_decode_rs_value(&sig, &r, &s), 0);
        gnutls_free(sig.data);
        /* r and s may come with a leading zero byte: strip it, then pad to the coordinate. */
        while (r.size > coord && r.data[0] == 0) {
                memmove(r.data, r.data + 1, --r.size);
        }
        while (s.size > coord && s.data[0] == 0) {
                memmove(s.data, s.data + 1, --s.size);
        }
        assert_true(r.size <= coord && s.size <= coord);
        memset(buf, 0, sizeof(buf));
        memcpy(buf + coord - r.size, r.data, r.size);
        memcpy(buf + 2 * coord - s.size, s.data, s.size);
        gnutls_free(r.data);
        gnutls_free(s.data);
        return b64url(buf, 2 * coord);
}

/* header.payload.signature from JSON texts, signed with the key of alg (or secret). */
static char *token_raw(const char *alg, const void *secret, size_t secret_len, const char *header,
                       const char *payload, bool der)
{
        _cleanup_free_ char *h = b64url(header, strlen(header));
        _cleanup_free_ char *p = b64url(payload, strlen(payload));
        _cleanup_free_ char *input = NULL, *sig = NULL;
        char *tok = NULL;

        assert_true(asprintf(&input, "%s.%s", h, p) > 0);
        sig = signature(alg, secret, secret_len, input, der);
        assert_true(asprintf(&tok, "%s.%s", input, sig) > 0);
        return tok;
}

static char *standard_payload(int64_t exp)
{
        char *p = NULL;

        assert_true(asprintf(&p,
                             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\",\"sub\":\"u-1234\","
                             "\"exp\":%lld,\"iat\":%lld,\"preferred_username\":\"alice\"}",
                             (long long) exp, (long long) NOW - 10) > 0);
        return p;
}

/* A token with the standard claims and a header {"alg", "typ":"JWT", "kid"?}. */
static char *token(const char *alg, const char *kid)
{
        _cleanup_free_ char *header = NULL, *payload = standard_payload(NOW + 600);

        if (kid)
                assert_true(asprintf(&header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                                     alg, kid) > 0);
        else
                assert_true(asprintf(&header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg) > 0);
        return token_raw(alg, hmac_secret, sizeof(hmac_secret), header, payload, false);
}

static char *token_with(const char *alg, const char *kid, const char *payload)
{
        _cleanup_free_ char *header = NULL;

        assert_true(asprintf(&header, "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid) > 0);
        return token_raw(alg, hmac_secret, sizeof(hmac_secret), header, payload, false);
}

static const struct jwt_expect expect_default = {
        .issuer = ISSUER,
        .audience = AUD,
        .now = NOW,
        .leeway = 60,
        .username_claim = "preferred_username",
};

/* jwt_verify()'s reason for tok (JWT_OK: accepted, and the claims checked). */
static enum jwt_error verify_e(const struct jwt_keyset *ks, const char *tok,
                               const struct jwt_expect *expect)
{
        struct jwt_claims c = {.sub = (char *) "untouched"};
        enum jwt_error e = _JWT_ERROR_MAX;
        int r = jwt_verify(ks, tok, strlen(tok), expect, &c, &e);

        if (r < 0) {
                assert_int_equal(r, -EKEYREJECTED);
                assert_int_not_equal(e, JWT_OK);
                assert_string_equal(c.sub, "untouched");
                return e;
        }
        assert_int_equal(e, JWT_OK);
        assert_non_null(c.iss);
        assert_non_null(c.sub);
        assert_non_null(c.alg);
        jwt_claims_clear(&c);
        assert_null(c.sub);
        return e;
}

static enum jwt_error verify(const struct jwt_keyset *ks, const char *tok)
{
        return verify_e(ks, tok, &expect_default);
}

static const char *const all_algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                       "PS512", "ES256", "ES384", "ES512", "EdDSA",
                                       "HS256", "HS384", "HS512"};

static json_t *jwk_for(const char *alg, const char *kid)
{
        if (alg[0] == 'R' || alg[0] == 'P')
                return jwk_rsa(rsa_key, alg, kid);
        if (alg[0] == 'H')
                return jwk_oct(hmac_secret, sizeof(hmac_secret), alg, kid);
        return jwk_ec(priv_for(alg), alg, kid);
}

static struct jwt_keyset *full_keyset(void)
{
        json_t *keys = json_array();
        struct jwt_keyset *ks = NULL;
        char *text, *error = NULL;

        for (size_t i = 0; i < ELEMENTSOF(all_algs); i++)
                json_array_append_new(keys, jwk_for(all_algs[i], all_algs[i]));
        json_t *root = json_pack("{s:o}", "keys", keys);
        text = json_dumps(root, 0);
        json_decref(root);
        assert_int_equal(jwt_keyset_parse(text, strlen(text), &ks, &error), 0);
        assert_null(error);
        free(text);
        assert_int_equal(jwt_keyset_size(ks), ELEMENTSOF(all_algs));
        return ks;
}

/* ---- tests ---- */

static void test_each_alg(void **state)
{
        struct jwt_keyset *ks = full_keyset();

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(all_algs); i++) {
                const char *alg = all_algs[i];
                struct jwt_claims c = {0};
                enum jwt_error e;

                /* Several times each: ECDSA's R and S vary in length when DER-encoded. */
                for (int n = 0; n < 4; n++) {
                        _cleanup_free_ char *tok = token(alg, alg), *anon = token(alg, NULL);

                        assert_int_equal(jwt_verify(ks, tok, strlen(tok), &expect_default, &c, &e),
                                         0);
                        assert_int_equal(e, JWT_OK);
                        assert_string_equal(c.iss, ISSUER);
                        assert_string_equal(c.sub, "u-1234");
                        assert_string_equal(c.username, "alice");
                        assert_string_equal(c.kid, alg);
                        assert_string_equal(c.alg, alg);
                        assert_int_equal(c.exp, NOW + 600);
                        assert_int_equal(c.iat, NOW - 10);
                        assert_int_equal(c.nbf, 0);
                        jwt_claims_clear(&c);

                        /* Without a kid: the key of that alg is found. */
                        assert_int_equal(
                                jwt_verify(ks, anon, strlen(anon), &expect_default, &c, &e), 0);
                        assert_string_equal(c.alg, alg);
                        assert_string_equal(c.kid, alg);
                        jwt_claims_clear(&c);
                }
        }
        jwt_keyset_free(ks);
}

static void test_alg_none_and_unknown(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        _cleanup_free_ char *p = b64url("{\"sub\":\"x\"}", 11);
        const char *headers[] = {
                "{\"alg\":\"none\"}",  "{\"alg\":\"None\"}", "{\"alg\":\"HS257\"}",
                "{\"alg\":\"rs256\"}", "{\"alg\":null}",     "{\"alg\":256}",
                "{\"typ\":\"JWT\"}",   "{\"alg\":\"\"}",
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(headers); i++) {
                _cleanup_free_ char *h = b64url(headers[i], strlen(headers[i]));
                _cleanup_free_ char *t1 = NULL, *t2 = NULL;

                assert_true(asprintf(&t1, "%s.%s.", h, p) > 0);
                assert_true(asprintf(&t2, "%s.%s.c2ln", h, p) > 0);
                assert_int_equal(verify(ks, t1), JWT_UNSUPPORTED_ALG);
                assert_int_equal(verify(ks, t2), JWT_UNSUPPORTED_ALG);
        }
        jwt_keyset_free(ks);
}

/*
 * The forgery: an HS256 token MACed with the RSA key's public bytes, for a verifier that would
 * take the header's alg and the key's bytes as an HMAC secret.
 */
static void test_alg_confusion(void **state)
{
        int r;
        struct jwt_keyset *ks = keyset_of(&r, NULL, 1, jwk_rsa(rsa_key, "RS256", "rsa"));
        struct jwt_keyset *mixed =
                keyset_of(&r, NULL, 2, jwk_rsa(rsa_key, "RS256", "rsa"),
                          jwk_oct(hmac_secret, sizeof(hmac_secret), "HS256", "hmac"));
        gnutls_pubkey_t pub = NULL;
        gnutls_datum_t pem = {0}, der = {0}, n = {0}, e = {0};
        _cleanup_free_ char *payload = standard_payload(NOW + 600);

        (void) state;
        assert_non_null(ks);
        assert_non_null(mixed);
        assert_int_equal(gnutls_pubkey_init(&pub), 0);
        assert_int_equal(gnutls_pubkey_import_privkey(pub, rsa_key, 0, 0), 0);
        assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &pem), 0);
        assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der), 0);
        assert_int_equal(gnutls_pubkey_export_rsa_raw2(pub, &n, &e, GNUTLS_EXPORT_FLAG_NO_LZ), 0);

        const gnutls_datum_t *secrets[] = {&pem, &der, &n};
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++) {
                _cleanup_free_ char *with_kid = token_raw(
                        "HS256", secrets[i]->data, secrets[i]->size,
                        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa\"}", payload, false);
                _cleanup_free_ char *without =
                        token_raw("HS256", secrets[i]->data, secrets[i]->size,
                                  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, false);

                assert_int_equal(verify(ks, with_kid), JWT_ALG_MISMATCH);
                assert_int_equal(verify(ks, without), JWT_NO_KEY);
                assert_int_equal(verify(mixed, with_kid), JWT_ALG_MISMATCH);
                /* Only the HS256 key is tried, and the forgery is not its MAC. */
                assert_int_equal(verify(mixed, without), JWT_BAD_SIGNATURE);
        }
        /* A genuine RS256 token with its header's alg rewritten to HS256 (or PS256). */
        {
                _cleanup_free_ char *good = token("RS256", "rsa");
                _cleanup_free_ char *h =
                        b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa\"}",
                               strlen("{\"alg\":\"HS256\",\"typ\":\"JWT\","
                                      "\"kid\":\"rsa\"}"));
                _cleanup_free_ char *h2 = b64url("{\"alg\":\"PS256\",\"kid\":\"rsa\"}",
                                                 strlen("{\"alg\":\"PS256\",\"kid\":\"rsa\"}"));
                _cleanup_free_ char *t1 = NULL, *t2 = NULL;

                assert_int_equal(verify(ks, good), JWT_OK);
                assert_true(asprintf(&t1, "%s%s", h, strchr(good, '.')) > 0);
                assert_true(asprintf(&t2, "%s%s", h2, strchr(good, '.')) > 0);
                assert_int_equal(verify(ks, t1), JWT_ALG_MISMATCH);
                assert_int_equal(verify(ks, t2), JWT_ALG_MISMATCH);
        }
        gnutls_free(pem.data);
        gnutls_free(der.data);
        gnutls_free(n.data);
        gnutls_free(e.data);
        gnutls_pubkey_deinit(pub);
        jwt_keyset_free(ks);
        jwt_keyset_free(mixed);
}

static void test_kid(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        _cleanup_free_ char *unknown = token("ES256", "nope");
        _cleanup_free_ char *other = token("ES256", "ES384"); /* a kid of another key's alg */
        _cleanup_free_ char *payload = standard_payload(NOW + 600);
        _cleanup_free_ char *num = token_raw("HS256", hmac_secret, sizeof(hmac_secret),
                                             "{\"alg\":\"HS256\",\"kid\":7}", payload, false);
        _cleanup_free_ char *empty = token_raw("HS256", hmac_secret, sizeof(hmac_secret),
                                               "{\"alg\":\"HS256\",\"kid\":\"\"}", payload, false);

        (void) state;
        assert_int_equal(verify(ks, unknown), JWT_NO_KEY);
        assert_int_equal(verify(ks, other), JWT_ALG_MISMATCH);
        assert_int_equal(verify(ks, num), JWT_MALFORMED);
        assert_int_equal(verify(ks, empty), JWT_MALFORMED);
        /* A kid that points at an RSA key, with HS256 MACed with our own HMAC secret. */
        {
                _cleanup_free_ char *t = token("HS256", "RS256");

                assert_int_equal(verify(ks, t), JWT_ALG_MISMATCH);
        }
        /* A keyset without kids: a token with a kid finds nothing. */
        {
                int r;
                struct jwt_keyset *anon = keyset_of(&r, NULL, 1, jwk_for("ES256", NULL));
                _cleanup_free_ char *t = token("ES256", "ES256"), *t2 = token("ES256", NULL);
                struct jwt_claims c = {0};
                enum jwt_error e;

                assert_int_equal(verify(anon, t), JWT_NO_KEY);
                assert_int_equal(jwt_verify(anon, t2, strlen(t2), &expect_default, &c, &e), 0);
                assert_null(c.kid);
                assert_string_equal(c.alg, "ES256");
                jwt_claims_clear(&c);
                jwt_keyset_free(anon);
        }
        jwt_keyset_free(ks);
}

static void test_ecdsa_der_signature(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        _cleanup_free_ char *payload = standard_payload(NOW + 600);
        const char *algs[] = {"ES256", "ES384", "ES512"};

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
                _cleanup_free_ char *header = NULL;

                assert_true(asprintf(&header, "{\"alg\":\"%s\",\"kid\":\"%s\"}", algs[i], algs[i]) >
                            0);
                for (int n = 0; n < 4; n++) {
                        _cleanup_free_ char *der =
                                token_raw(algs[i], NULL, 0, header, payload, true);

                        assert_int_equal(verify(ks, der), JWT_BAD_SIGNATURE);
                }
        }
        /* A raw signature one byte short, one byte long. */
        {
                _cleanup_free_ char *t = token("ES256", "ES256");
                _cleanup_free_ char *shorter = strdup(t), *longer = NULL;

                assert_int_equal(verify(ks, t), JWT_OK);
                /* 64 bytes are 86 characters; 63 bytes are 84. */
                shorter[strlen(shorter) - 2] = '\0';
                shorter[strlen(shorter) - 1] = 'A';
                assert_true(asprintf(&longer, "%sAA", t) > 0);
                assert_int_equal(verify(ks, shorter), JWT_BAD_SIGNATURE);
                assert_int_equal(verify(ks, longer), JWT_BAD_SIGNATURE);
        }
        jwt_keyset_free(ks);
}

/* Re-encodes segment seg (0..2) of tok with bit `bit` of its decoded bytes flipped. */
static char *flip(const char *tok, int seg, size_t bit)
{
        const char *start = tok, *end;
        unsigned char buf[JWT_TOKEN_MAX];
        size_t n = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        char *enc, *out = NULL;

        for (int i = 0; i < seg; i++)
                start = strchr(start, '.') + 1;
        end = strchr(start, '.');
        if (!end)
                end = start + strlen(start);
        for (const char *p = start; p < end; p++) {
                acc = (acc << 6) | (uint32_t) base64_digit(*p, true);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        buf[n++] = (unsigned char) (acc >> bits);
                }
        }
        if (bit / 8 >= n)
                return NULL;
        buf[bit / 8] ^= (unsigned char) (1u << (bit % 8));
        enc = b64url(buf, n);
        assert_true(asprintf(&out, "%.*s%s%s", (int) (start - tok), tok, enc, end) > 0);
        free(enc);
        return out;
}

static void test_tampered(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        const char *algs[] = {"RS256", "PS256", "ES256", "EdDSA", "HS256"};

        (void) state;
        for (size_t a = 0; a < ELEMENTSOF(algs); a++) {
                _cleanup_free_ char *header = NULL, *payload = standard_payload(NOW + 600);
                _cleanup_free_ char *tok = NULL;

                /* A header member with no meaning, so that its bits can flip into valid JSON. */
                assert_true(asprintf(&header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"x\":\"abcd\"}",
                                     algs[a], algs[a]) > 0);
                tok = token_raw(algs[a], hmac_secret, sizeof(hmac_secret), header, payload, false);
                assert_int_equal(verify(ks, tok), JWT_OK);

                for (int seg = 0; seg < 3; seg++)
                        for (size_t bit = 0;; bit++) {
                                _cleanup_free_ char *t = flip(tok, seg, bit);
                                enum jwt_error e;

                                if (!t)
                                        break;
                                e = verify(ks, t);
                                assert_int_not_equal(e, JWT_OK);
                                /* In the payload or the signature, nothing else can be wrong. */
                                if (seg > 0)
                                        assert_int_equal(e, JWT_BAD_SIGNATURE);
                        }
                /* The bits of the header's unused member: valid JSON, a bad signature. */
                {
                        const char *x = strstr(header, "abcd");
                        size_t at = (size_t) (x - header) * 8;
                        _cleanup_free_ char *t = flip(tok, 0, at);

                        assert_int_equal(verify(ks, t), JWT_BAD_SIGNATURE);
                }
        }
        jwt_keyset_free(ks);
}

static void test_times(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        struct jwt_expect ex = expect_default;

        (void) state;
        for (int64_t leeway = 0; leeway <= 60; leeway += 60) {
                ex.leeway = leeway;
                /* exp: valid while now < exp + leeway. */
                {
                        _cleanup_free_ char *p = standard_payload(NOW - leeway + 1);
                        _cleanup_free_ char *p2 = standard_payload(NOW - leeway);
                        _cleanup_free_ char *t = token_with("HS256", "HS256", p);
                        _cleanup_free_ char *t2 = token_with("HS256", "HS256", p2);

                        assert_int_equal(verify_e(ks, t, &ex), JWT_OK);
                        assert_int_equal(verify_e(ks, t2, &ex), JWT_EXPIRED);
                }
                /* nbf: valid once now + leeway >= nbf. */
                for (int d = 0; d <= 1; d++) {
                        _cleanup_free_ char *p = NULL, *t = NULL;

                        assert_true(asprintf(&p,
                                             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                             "\",\"sub\":\"s\",\"exp\":%lld,\"nbf\":%lld}",
                                             (long long) NOW + 600,
                                             (long long) (NOW + leeway + d)) > 0);
                        t = token_with("ES256", "ES256", p);
                        assert_int_equal(verify_e(ks, t, &ex), d ? JWT_NOT_YET_VALID : JWT_OK);
                }
                /* iat: refused once iat > now + leeway. */
                for (int d = 0; d <= 1; d++) {
                        _cleanup_free_ char *p = NULL, *t = NULL;

                        assert_true(asprintf(&p,
                                             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                             "\",\"sub\":\"s\",\"exp\":%lld,\"iat\":%lld}",
                                             (long long) NOW + 600,
                                             (long long) (NOW + leeway + d)) > 0);
                        t = token_with("EdDSA", "EdDSA", p);
                        assert_int_equal(verify_e(ks, t, &ex), d ? JWT_ISSUED_IN_FUTURE : JWT_OK);
                }
        }

        /* The forms of exp: reals are rounded towards refusal; strings, huge, negative refused. */
        struct {
                const char *exp;
                enum jwt_error e;
        } cases[] = {
                {"1700000060.5", JWT_OK},
                {"1700000000.5", JWT_EXPIRED}, /* rounded down: now >= exp */
                {"1.7000006e9", JWT_OK},
                {"\"1700000600\"", JWT_INVALID_CLAIM},
                {"9007199254740992", JWT_OK}, /* 2^53 */
                {"9007199254740993", JWT_INVALID_CLAIM},
                {"1e300", JWT_INVALID_CLAIM},
                {"-1", JWT_INVALID_CLAIM},
                {"null", JWT_INVALID_CLAIM},
                {"true", JWT_INVALID_CLAIM},
                {"[1700000600]", JWT_INVALID_CLAIM},
        };

        ex.leeway = 0;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *p = NULL, *t = NULL;

                assert_true(asprintf(&p,
                                     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                     "\",\"sub\":\"s\",\"exp\":%s}",
                                     cases[i].exp) > 0);
                t = token_with("HS256", "HS256", p);
                if (verify_e(ks, t, &ex) != cases[i].e)
                        fail_msg("exp %s: %s", cases[i].exp,
                                 jwt_error_to_string(verify_e(ks, t, &ex)));
        }
        {
                _cleanup_free_ char *t =
                        token_with("HS256", "HS256",
                                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\",\"sub\":\"s\"}");
                _cleanup_free_ char *t2 =
                        token_with("HS256", "HS256",
                                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                   "\",\"sub\":\"s\",\"exp\":1800000000,\"nbf\":\"0\"}");
                _cleanup_free_ char *t3 =
                        token_with("HS256", "HS256",
                                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                   "\",\"sub\":\"s\",\"exp\":1800000000,\"iat\":1699999999.2}");
                _cleanup_free_ char *t4 =
                        token_with("HS256", "HS256",
                                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                   "\",\"sub\":\"s\",\"exp\":1800000000,\"iat\":1700000000.2}");

                assert_int_equal(verify_e(ks, t, &ex), JWT_MISSING_CLAIM);
                assert_int_equal(verify_e(ks, t2, &ex), JWT_INVALID_CLAIM);
                assert_int_equal(verify_e(ks, t3, &ex), JWT_OK);
                assert_int_equal(verify_e(ks, t4, &ex), JWT_ISSUED_IN_FUTURE); /* rounded up */
        }
        jwt_keyset_free(ks);
}

static void test_claims(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        char long_sub[JWT_CLAIM_MAX + 2], many_aud[2048];
        struct jwt_expect ex = expect_default;
        size_t w = 0;

        (void) state;
        memset(long_sub, 'a', sizeof(long_sub) - 1);
        long_sub[sizeof(long_sub) - 1] = '\0';
        w += (size_t) snprintf(many_aud + w, sizeof(many_aud) - w, "[");
        for (int i = 0; i < JWT_AUD_MAX; i++)
                w += (size_t) snprintf(many_aud + w, sizeof(many_aud) - w, "\"a%d\",", i);
        snprintf(many_aud + w, sizeof(many_aud) - w, "\"" AUD "\"]");

#define P(iss, aud, sub, extra) \
        "{\"iss\":" iss ",\"aud\":" aud ",\"sub\":" sub ",\"exp\":1700000600" extra "}"

        struct {
                const char *payload;
                enum jwt_error e;
        } cases[] = {
                {P("\"" ISSUER "\"", "\"" AUD "\"", "\"s\"", ""), JWT_OK},
                {P("\"" ISSUER "/\"", "\"" AUD "\"", "\"s\"", ""), JWT_WRONG_ISSUER},
                {P("\"HTTPS://idp.example.org\"", "\"" AUD "\"", "\"s\"", ""), JWT_WRONG_ISSUER},
                {P("[\"" ISSUER "\"]", "\"" AUD "\"", "\"s\"", ""), JWT_INVALID_CLAIM},
                {"{\"aud\":\"" AUD "\",\"sub\":\"s\",\"exp\":1700000600}", JWT_MISSING_CLAIM},
                {P("\"" ISSUER "\"", "[\"other\",\"" AUD "\"]", "\"s\"", ""), JWT_OK},
                {P("\"" ISSUER "\"", "[\"other\"]", "\"s\"", ""), JWT_WRONG_AUDIENCE},
                {P("\"" ISSUER "\"", "\"warren2\"", "\"s\"", ""), JWT_WRONG_AUDIENCE},
                {P("\"" ISSUER "\"", "\"Warren\"", "\"s\"", ""), JWT_WRONG_AUDIENCE},
                {P("\"" ISSUER "\"", "[]", "\"s\"", ""), JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "[\"" AUD "\",1]", "\"s\"", ""), JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "1", "\"s\"", ""), JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "{\"a\":\"" AUD "\"}", "\"s\"", ""), JWT_INVALID_CLAIM},
                {"{\"iss\":\"" ISSUER "\",\"sub\":\"s\",\"exp\":1700000600}", JWT_MISSING_CLAIM},
                {"{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\",\"exp\":1700000600}",
                 JWT_MISSING_CLAIM},
                {P("\"" ISSUER "\"", "\"" AUD "\"", "\"\"", ""), JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "\"" AUD "\"", "42", ""), JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "\"" AUD "\"", "\"s\"", ",\"preferred_username\":1"),
                 JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "\"" AUD "\"", "\"s\"", ",\"preferred_username\":\"\""),
                 JWT_INVALID_CLAIM},
                {P("\"" ISSUER "\"", "\"" AUD "\"", "\"s\\u0000\"", ""), JWT_MALFORMED},
                {P("\"" ISSUER "\"", "\"" AUD "\"", "\"s\"", ",\"sub\":\"t\""), JWT_MALFORMED},
                {"[1]", JWT_MALFORMED},
                {" {\"iss\":\"" ISSUER "\"}\n", JWT_MISSING_CLAIM}, /* JSON's own whitespace */
        };

#undef P
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *t = token_with("ES384", "ES384", cases[i].payload);
                enum jwt_error e = verify(ks, t);

                if (e != cases[i].e)
                        fail_msg("case %zu: %s, expected %s", i, jwt_error_to_string(e),
                                 jwt_error_to_string(cases[i].e));
        }

        /* Bounds: sub of JWT_CLAIM_MAX bytes accepted, one more refused; aud array bounded. */
        {
                _cleanup_free_ char *p = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
                _cleanup_free_ char *t = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;

                assert_true(asprintf(&p,
                                     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                     "\",\"sub\":\"%.*s\",\"exp\":1700000600}",
                                     JWT_CLAIM_MAX, long_sub) > 0);
                assert_true(asprintf(&p2,
                                     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                                     "\",\"sub\":\"%s\",\"exp\":1700000600}",
                                     long_sub) > 0);
                assert_true(asprintf(&p3,
                                     "{\"iss\":\"" ISSUER "\",\"aud\":%s,\"sub\":\"s\","
                                     "\"exp\":1700000600}",
                                     many_aud) > 0);
                assert_true(asprintf(&p4,
                                     "{\"iss\":\"" ISSUER "\",\"aud\":%s,\"sub\":\"s\","
                                     "\"exp\":1700000600}",
                                     strchr(many_aud, ',') + 1 - 1) > 0);
                p4[strlen("{\"iss\":\"" ISSUER "\",\"aud\":")] = '[';
                t = token_with("HS384", "HS384", p);
                t2 = token_with("HS384", "HS384", p2);
                t3 = token_with("HS384", "HS384", p3);
                t4 = token_with("HS384", "HS384", p4);
                assert_int_equal(verify(ks, t), JWT_OK);
                assert_int_equal(verify(ks, t2), JWT_INVALID_CLAIM);
                assert_int_equal(verify(ks, t3), JWT_INVALID_CLAIM); /* 33 entries */
                assert_int_equal(verify(ks, t4), JWT_OK);            /* 32 entries */
        }

        /* No username claim asked for, or absent: NULL. */
        {
                _cleanup_free_ char *t = token("RS256", "RS256");
                struct jwt_claims c = {0};
                enum jwt_error e;

                ex.username_claim = NULL;
                assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, &c, &e), 0);
                assert_null(c.username);
                jwt_claims_clear(&c);
                ex.username_claim = "email";
                assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, &c, &e), 0);
                assert_null(c.username);
                jwt_claims_clear(&c);
        }

        /* Claims are judged only after the signature: a bad one hides them. */
        {
                _cleanup_free_ char *t =
                        token_with("HS256", "HS256",
                                   "{\"iss\":\"evil\",\"aud\":\"x\",\"sub\":\"s\",\"exp\":1}");
                _cleanup_free_ char *bad = flip(t, 2, 0);
                _cleanup_free_ char *garbage_payload = NULL;

                assert_int_equal(verify(ks, t), JWT_WRONG_ISSUER);
                assert_int_equal(verify(ks, bad), JWT_BAD_SIGNATURE);
                /* A payload that is not JSON, under a bad signature: the signature is reported. */
                garbage_payload = token_with("HS256", "HS256", "not json");
                assert_int_equal(verify(ks, garbage_payload), JWT_MALFORMED);
                {
                        _cleanup_free_ char *bad2 = flip(garbage_payload, 2, 3);

                        assert_int_equal(verify(ks, bad2), JWT_BAD_SIGNATURE);
                }
        }
        jwt_keyset_free(ks);
}

static void test_form(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        _cleanup_free_ char *good = token("HS256", "HS256");
        _cleanup_free_ char *payload = standard_payload(NOW + 600);
        char *big;
        size_t n = strlen(good);

        (void) state;
        assert_int_equal(verify(ks, good), JWT_OK);

        /* Oversize: a valid token padded inside a header member beyond JWT_TOKEN_MAX. */
        big = malloc(JWT_TOKEN_MAX + 2);
        memset(big, 'A', JWT_TOKEN_MAX + 1);
        big[JWT_TOKEN_MAX + 1] = '\0';
        memcpy(big, good, n);
        assert_int_equal(verify(ks, big), JWT_TOO_LARGE);
        {
                enum jwt_error e;
                struct jwt_claims c;

                assert_int_equal(jwt_verify(ks, big, JWT_TOKEN_MAX + 1, &expect_default, &c, &e),
                                 -EKEYREJECTED);
                assert_int_equal(e, JWT_TOO_LARGE);
        }
        free(big);

        /* Variants of the good token that must all be malformed. */
        {
                _cleanup_free_ char *ws_end = NULL, *ws_mid = NULL, *nl = NULL, *pad = NULL;
                _cleanup_free_ char *four = NULL, *two = NULL, *plus = NULL, *lead = NULL;
                _cleanup_free_ char *noncanon = strdup(good), *dots = NULL;
                char *last = noncanon + strlen(noncanon) - 1;
                const char *d1 = strchr(good, '.');

                assert_true(asprintf(&ws_end, "%s ", good) > 0);
                assert_true(asprintf(&nl, "%s\n", good) > 0);
                assert_true(asprintf(&ws_mid, "%.*s %s", (int) (d1 - good), good, d1) > 0);
                assert_true(asprintf(&lead, " %s", good) > 0);
                assert_true(asprintf(&pad, "%s=", good) > 0);
                assert_true(asprintf(&four, "%s.e30", good) > 0);
                assert_true(asprintf(&two, "%.*s", (int) (strrchr(good, '.') - good), good) > 0);
                assert_true(asprintf(&dots, "..%s", good) > 0);
                plus = strdup(good);
                plus[2] = '+';
                /* A MAC of 32 bytes is 43 characters with 2 unused bits: set one. */
                *last = base64_digit(*last, true) & 3 ? *last : (char) (*last + 1);
                const char *bad[] = {
                        ws_end,   nl,   ws_mid, lead, pad,  four,  two,       plus,
                        noncanon, dots, "",     ".",  "..", "a.b", "a.b.c.d", "wrn_0123456789"};
                for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                        if (verify(ks, bad[i]) != JWT_MALFORMED)
                                fail_msg("case %zu '%s': %s", i, bad[i],
                                         jwt_error_to_string(verify(ks, bad[i])));
        }

        /* Headers that are not strict JSON objects, or carry what we do not understand. */
        struct {
                const char *header;
                enum jwt_error e;
        } headers[] = {
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\"} x", JWT_MALFORMED},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\"}{}", JWT_MALFORMED},
                {"{\"alg\":\"HS256\",\"alg\":\"HS256\",\"kid\":\"HS256\"}", JWT_MALFORMED},
                {"{\"alg\":\"RS256\",\"alg\":\"HS256\",\"kid\":\"HS256\"}", JWT_MALFORMED},
                {"[\"HS256\"]", JWT_MALFORMED},
                {"\"HS256\"", JWT_MALFORMED},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\"", JWT_MALFORMED},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"crit\":[\"exp\"]}",
                 JWT_CRITICAL_EXTENSION},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"crit\":[]}", JWT_CRITICAL_EXTENSION},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
                 JWT_CRITICAL_EXTENSION},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"typ\":\"jose\"}", JWT_UNSUPPORTED_TYPE},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"typ\":1}", JWT_UNSUPPORTED_TYPE},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"typ\":\"jwt\"}", JWT_OK},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"typ\":\"AT+JWT\"}", JWT_OK},
                {"{\"alg\":\"HS256\",\"kid\":\"HS256\",\"typ\":\"application/at+jwt\"}", JWT_OK},
                {" {\"alg\":\"HS256\",\"kid\":\"HS256\"}\n", JWT_OK},
        };

        for (size_t i = 0; i < ELEMENTSOF(headers); i++) {
                _cleanup_free_ char *t = token_raw("HS256", hmac_secret, sizeof(hmac_secret),
                                                   headers[i].header, payload, false);
                enum jwt_error e = verify(ks, t);

                if (e != headers[i].e)
                        fail_msg("header %zu: %s, expected %s", i, jwt_error_to_string(e),
                                 jwt_error_to_string(headers[i].e));
        }

        /* A NUL inside the given length. */
        {
                _cleanup_free_ char *t = strdup(good);
                enum jwt_error e;
                struct jwt_claims c;

                t[5] = '\0';
                assert_int_equal(jwt_verify(ks, t, n, &expect_default, &c, &e), -EKEYREJECTED);
                assert_int_equal(e, JWT_MALFORMED);
                /* The length given is what counts, not the NUL: a prefix is not the token. */
                assert_int_equal(jwt_verify(ks, good, n - 1, &expect_default, &c, &e),
                                 -EKEYREJECTED);
        }
        jwt_keyset_free(ks);
}

static void test_looks_like(void **state)
{
        _cleanup_free_ char *t = token("HS256", "x"), *t2 = token("ES256", NULL);
        _cleanup_free_ char *arr = b64url("[1]", 3), *s = NULL;

        (void) state;
        assert_true(jwt_looks_like(t, strlen(t)));
        assert_true(jwt_looks_like(t2, strlen(t2)));
        assert_true(jwt_looks_like("e30.e30.", 8)); /* {} . {} . unsigned: looks like one */
        assert_false(jwt_looks_like(t, strlen(t) - strlen(strrchr(t, '.'))));
        assert_false(jwt_looks_like("wrn_0123456789abcdef", 20));
        assert_false(jwt_looks_like("", 0));
        assert_false(jwt_looks_like("a.b.c", 5));
        assert_false(jwt_looks_like("e30.e30.e30.e30", 15));
        assert_false(jwt_looks_like("e30=.e30.", 9));
        assert_false(jwt_looks_like("e30.e3 0.", 9));
        assert_true(asprintf(&s, "%s.e30.", arr) > 0);
        assert_false(jwt_looks_like(s, strlen(s)));
}

static void test_jwks_refusals(void **state)
{
        unsigned char small_n[128], short_k[31], k48[48];
        _cleanup_free_ char *n1024 = NULL, *k31 = NULL, *k48s = NULL, *error = NULL;
        struct jwt_keyset *ks;
        json_t *j;
        int r;

        (void) state;
        memset(small_n, 0xc5, sizeof(small_n));
        memset(short_k, 7, sizeof(short_k));
        memset(k48, 7, sizeof(k48));
        n1024 = b64url(small_n, sizeof(small_n));
        k31 = b64url(short_k, sizeof(short_k));
        k48s = b64url(k48, sizeof(k48));

        /* Accepted, for contrast: use "sig", key_ops with verify, HS384 of 48 bytes. */
        j = jwk_for("ES256", "a");
        json_object_set_new(j, "use", json_string("sig"));
        json_object_set_new(j, "key_ops", json_pack("[s]", "verify"));
        ks = keyset_of(&r, NULL, 2, j, jwk_oct(k48, sizeof(k48), "HS384", "b"));
        assert_int_equal(r, 0);
        assert_int_equal(jwt_keyset_size(ks), 2);
        jwt_keyset_free(ks);

#define REFUSED(want, needle, ...)                                                     \
        do {                                                                           \
                ks = keyset_of(&r, &error, __VA_ARGS__);                               \
                assert_null(ks);                                                       \
                if (r != (want) || !strstr(error, needle))                             \
                        fail_msg("%d '%s', expected %d '%s'", r, error, want, needle); \
                free(error);                                                           \
                error = NULL;                                                          \
        } while (0)

        /* Duplicate kid. */
        REFUSED(-EBADMSG, "key 1: its kid is also key 0's", 2, jwk_for("ES256", "same"),
                jwk_for("RS256", "same"));
        /* Private members. */
        j = jwk_for("ES256", "a");
        json_object_set_new(j, "d", json_string("AAAA"));
        REFUSED(-EKEYREJECTED, "key 1: has the private member 'd'", 2, jwk_for("RS256", NULL), j);
        j = jwk_for("RS256", "a");
        json_object_set_new(j, "p", json_string("AAAA"));
        REFUSED(-EKEYREJECTED, "private member 'p'", 1, j);
        j = jwk_for("EdDSA", "a");
        json_object_set_new(j, "d", json_string("AAAA"));
        REFUSED(-EKEYREJECTED, "private member 'd'", 1, j);
        /* Weak keys. */
        REFUSED(-EKEYREJECTED, "key 0: an RSA modulus of 1024 bits", 1,
                json_pack("{s:s,s:s,s:s,s:s}", "kty", "RSA", "alg", "RS256", "n", n1024, "e",
                          "AQAB"));
        REFUSED(-EKEYREJECTED, "key 0: an HS256 key of 31 bytes", 1,
                json_pack("{s:s,s:s,s:s}", "kty", "oct", "alg", "HS256", "k", k31));
        REFUSED(-EKEYREJECTED, "an HS512 key of 48 bytes", 1,
                json_pack("{s:s,s:s,s:s}", "kty", "oct", "alg", "HS512", "k", k48s));
        /* alg: missing, none, unknown, not matching the kty or the curve. */
        REFUSED(-EKEYREJECTED, "key 0: no 'alg'", 1,
                json_pack("{s:s,s:s}", "kty", "oct", "k", k48s));
        REFUSED(-EKEYREJECTED, "unsupported alg 'none'", 1,
                json_pack("{s:s,s:s,s:s}", "kty", "oct", "alg", "none", "k", k48s));
        REFUSED(-EKEYREJECTED, "unsupported alg 'RSA-OAEP'", 1,
                json_pack("{s:s,s:s,s:s,s:s}", "kty", "RSA", "alg", "RSA-OAEP", "n", n1024, "e",
                          "AQAB"));
        j = jwk_for("ES256", NULL);
        json_object_set_new(j, "alg", json_string("RS256"));
        REFUSED(-EKEYREJECTED, "RS256 needs 'kty' RSA", 1, j);
        j = jwk_for("ES256", NULL);
        json_object_set_new(j, "alg", json_string("ES384"));
        REFUSED(-EKEYREJECTED, "ES384 needs 'crv' P-384", 1, j);
        j = jwk_for("HS256", NULL);
        json_object_set_new(j, "alg", json_string("RS256"));
        REFUSED(-EKEYREJECTED, "needs 'kty' RSA", 1, j);
        /* use, key_ops. */
        j = jwk_for("ES256", NULL);
        json_object_set_new(j, "use", json_string("enc"));
        REFUSED(-EKEYREJECTED, "'use'", 1, j);
        j = jwk_for("ES256", NULL);
        json_object_set_new(j, "key_ops", json_pack("[s]", "sign"));
        REFUSED(-EKEYREJECTED, "'key_ops'", 1, j);
        /* A point off the curve: y + 1. */
        {
                const char *y;
                char *y2;

                j = jwk_for("ES256", NULL);
                y = json_string_value(json_object_get(j, "y"));
                y2 = strdup(y);
                y2[0] = y2[0] == 'A' ? 'B' : 'A';
                json_object_set_new(j, "y", json_string(y2));
                free(y2);
                REFUSED(-EKEYREJECTED, "not a point on P-256", 1, j);
        }
        /* Coordinates not of the curve's length; a modulus with a leading zero. */
        j = jwk_for("ES256", NULL);
        json_object_set_new(j, "x", json_string("AAAA"));
        REFUSED(-EBADMSG, "'x' and 'y' must be 32 bytes", 1, j);
        j = jwk_for("RS256", NULL);
        json_object_set_new(j, "n", json_string("AAAA")); /* three zero bytes */
        REFUSED(-EBADMSG, "leading zeros", 1, j);
        /* Non-strict base64url in a key. */
        j = jwk_for("HS256", NULL);
        json_object_set_new(j, "k", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
        REFUSED(-EBADMSG, "'k' is not a strict base64url", 1, j);
        /* Not a key. */
        REFUSED(-EBADMSG, "key 0: not a JSON object", 1, json_string("x"));

        /* Documents. */
        {
                const char *docs[] = {"",
                                      "{",
                                      "[]",
                                      "{\"keys\":{}}",
                                      "{\"nokeys\":[]}",
                                      "{\"keys\":[],\"keys\":[]}"};

                for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                        ks = NULL;
                        r = jwt_keyset_parse(docs[i], strlen(docs[i]), &ks, &error);
                        assert_int_equal(r, -EBADMSG);
                        assert_null(ks);
                        assert_non_null(error);
                        free(error);
                        error = NULL;
                }
                r = jwt_keyset_parse("{\"keys\":[]}", 11, &ks, &error);
                assert_int_equal(r, -ENOENT);
                free(error);
                error = NULL;
        }
        /* Too many keys. */
        {
                json_t *keys = json_array(), *one = jwk_for("ES256", NULL);
                char *text;

                for (int i = 0; i <= JWT_KEYS_MAX; i++)
                        json_array_append(keys, one);
                json_decref(one);
                json_t *root = json_pack("{s:o}", "keys", keys);
                text = json_dumps(root, 0);
                json_decref(root);
                assert_int_equal(jwt_keyset_parse(text, strlen(text), &ks, NULL), -E2BIG);
                free(text);
        }
#undef REFUSED
}

static void test_keyset_load(void **state)
{
        char dir[] = "/tmp/test-jwt-XXXXXX", path[64], link[64];
        struct jwt_keyset *ks = NULL;
        char *error = NULL, *text;
        json_t *root;
        int fd;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/jwks.json", dir);
        snprintf(link, sizeof(link), "%s/link.json", dir);
        root = json_pack("{s:[o,o]}", "keys", jwk_for("RS256", "r"), jwk_for("HS256", "h"));
        text = json_dumps(root, JSON_INDENT(2));
        json_decref(root);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write_full(fd, text, strlen(text)), 0);
        close(fd);
        free(text);
        assert_int_equal(symlink(path, link), 0);

        assert_int_equal(jwt_keyset_load(path, &ks, &error), 0);
        assert_int_equal(jwt_keyset_size(ks), 2);
        ks = jwt_keyset_free(ks);
        assert_int_equal(jwt_keyset_load(link, &ks, &error), 0);
        ks = jwt_keyset_free(ks);
        assert_int_equal(jwt_keyset_load(dir, &ks, &error), -EINVAL);
        free(error);
        assert_int_equal(jwt_keyset_load("/nonexistent/jwks", &ks, &error), -ENOENT);

        /* Over JWT_JWKS_MAX. */
        assert_int_equal(truncate(path, JWT_JWKS_MAX + 1), 0);
        assert_int_equal(jwt_keyset_load(path, &ks, &error), -E2BIG);
        free(error);
        assert_null(ks);

        (void) unlink(link);
        (void) unlink(path);
        (void) rmdir(dir);
}

static void test_errors_and_arguments(void **state)
{
        struct jwt_keyset *ks = full_keyset();
        _cleanup_free_ char *t = token("HS256", "HS256");
        struct jwt_expect ex = expect_default;
        struct jwt_claims c;
        enum jwt_error e;

        (void) state;
        for (int i = 0; i < _JWT_ERROR_MAX; i++) {
                assert_non_null(jwt_error_to_string((enum jwt_error) i));
                for (int k = 0; k < i; k++)
                        assert_string_not_equal(jwt_error_to_string((enum jwt_error) i),
                                                jwt_error_to_string((enum jwt_error) k));
        }
        assert_string_equal(jwt_error_to_string(JWT_BAD_SIGNATURE), "signature does not verify");
        assert_non_null(jwt_error_to_string(_JWT_ERROR_MAX));

        assert_int_equal(jwt_verify(NULL, t, strlen(t), &ex, &c, &e), -EINVAL);
        assert_int_equal(jwt_verify(ks, t, strlen(t), NULL, &c, &e), -EINVAL);
        assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, NULL, &e), -EINVAL);
        assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, &c, NULL), -EINVAL);
        ex.issuer = NULL;
        assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, &c, &e), -EINVAL);
        ex = expect_default;
        ex.leeway = -1;
        assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, &c, &e), -EINVAL);
        ex = expect_default;
        ex.now = -5;
        assert_int_equal(jwt_verify(ks, t, strlen(t), &ex, &c, &e), -EINVAL);
        assert_int_equal(jwt_keyset_parse("{}", 2, NULL, NULL), -EINVAL);
        assert_null(jwt_keyset_free(NULL));
        assert_int_equal(jwt_keyset_size(NULL), 0);
        jwt_claims_clear(NULL);
        jwt_keyset_free(ks);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_each_alg),
                cmocka_unit_test(test_alg_none_and_unknown),
                cmocka_unit_test(test_alg_confusion),
                cmocka_unit_test(test_kid),
                cmocka_unit_test(test_ecdsa_der_signature),
                cmocka_unit_test(test_tampered),
                cmocka_unit_test(test_times),
                cmocka_unit_test(test_claims),
                cmocka_unit_test(test_form),
                cmocka_unit_test(test_looks_like),
                cmocka_unit_test(test_jwks_refusals),
                cmocka_unit_test(test_keyset_load),
                cmocka_unit_test(test_errors_and_arguments),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
