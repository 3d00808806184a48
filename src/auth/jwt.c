/* SPDX-License-Identifier: MIT */
/*
 * JWS compact tokens verified against a JWKS, with GnuTLS (see jwt.h).
 *
 * Theory of operation. A keyset is an array of keys, each pinned to one algorithm of algs[]:
 * the asymmetric ones are GnuTLS public keys (checked with gnutls_pubkey_verify_params(), which
 * puts an EC point on its curve), the HMAC ones their secret bytes, wiped when the keyset is
 * freed. jwt_verify() goes in this order, and reports the first refusal:
 *   1. split and decode the three segments (strict base64url), parse the header;
 *   2. the header's alg, typ, crit; the key or keys to try (by kid, else by alg);
 *   3. the signature over the first two segments as they were sent;
 *   4. only then the payload: parsed, and its claims checked against struct jwt_expect.
 * The alg the key is pinned to decides how the signature is checked; the header's alg only
 * selects among keys, so a token can never make a public key serve as an HMAC secret.
 *
 * GnuTLS reports with its own negative codes; a failure to verify is a bad signature, whatever
 * the code, but for a lack of memory.
 */
#include "auth/jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define RSA_BITS_MIN    2048
#define RSA_BITS_MAX    16384
#define RSA_E_MAX       8  /* bytes of a public exponent */
#define OCT_MIN         32 /* bytes of an HMAC key */
#define OCT_MAX         1024
#define KEY_OPS_MAX     16
#define SEG_DECODED_MAX JWT_TOKEN_MAX

enum kty { KTY_RSA, KTY_EC, KTY_OKP, KTY_OCT };

struct alg {
        const char *name;
        enum kty kty;
        gnutls_sign_algorithm_t sign; /* asymmetric */
        gnutls_mac_algorithm_t mac;   /* HMAC */
        size_t hash_len;
        const char *crv; /* EC, OKP */
        gnutls_ecc_curve_t curve;
        size_t coord_len; /* bytes of an EC coordinate (R and S too), of an Ed25519 key */
};

static const struct alg algs[] = {
        {"RS256", KTY_RSA, GNUTLS_SIGN_RSA_SHA256, 0, 32, NULL, 0, 0},
        {"RS384", KTY_RSA, GNUTLS_SIGN_RSA_SHA384, 0, 48, NULL, 0, 0},
        {"RS512", KTY_RSA, GNUTLS_SIGN_RSA_SHA512, 0, 64, NULL, 0, 0},
        {"PS256", KTY_RSA, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, 0, 32, NULL, 0, 0},
        {"PS384", KTY_RSA, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, 0, 48, NULL, 0, 0},
        {"PS512", KTY_RSA, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512, 0, 64, NULL, 0, 0},
        {"ES256", KTY_EC, GNUTLS_SIGN_ECDSA_SHA256, 0, 32, "P-256", GNUTLS_ECC_CURVE_SECP256R1, 32},
        {"ES384", KTY_EC, GNUTLS_SIGN_ECDSA_SHA384, 0, 48, "P-384", GNUTLS_ECC_CURVE_SECP384R1, 48},
        {"ES512", KTY_EC, GNUTLS_SIGN_ECDSA_SHA512, 0, 64, "P-521", GNUTLS_ECC_CURVE_SECP521R1, 66},
        {"EdDSA", KTY_OKP, GNUTLS_SIGN_EDDSA_ED25519, 0, 0, "Ed25519", GNUTLS_ECC_CURVE_ED25519,
         32},
        {"HS256", KTY_OCT, 0, GNUTLS_MAC_SHA256, 32, NULL, 0, 0},
        {"HS384", KTY_OCT, 0, GNUTLS_MAC_SHA384, 48, NULL, 0, 0},
        {"HS512", KTY_OCT, 0, GNUTLS_MAC_SHA512, 64, NULL, 0, 0},
};

static const char *const kty_names[] = {
        [KTY_RSA] = "RSA",
        [KTY_EC] = "EC",
        [KTY_OKP] = "OKP",
        [KTY_OCT] = "oct",
};

struct jwt_key {
        char *kid;             /* NULL when absent */
        const struct alg *alg; /* the pin */
        gnutls_pubkey_t pub;   /* RSA, EC, OKP */
        unsigned char *secret; /* oct */
        size_t secret_len;
        size_t sig_len; /* bytes of a signature made with this key */
};

struct jwt_keyset {
        size_t n;
        struct jwt_key keys[JWT_KEYS_MAX];
};

static const struct alg *alg_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (strcmp(algs[i].name, name) == 0)
                        return &algs[i];
        return NULL;
}

static void wipe_free(void *p, size_t len)
{
        if (p) {
                explicit_bzero(p, len);
                free(p);
        }
}

/*
 * Strict base64url (RFC 4648 §5, RFC 7515 §2): no padding, no whitespace, and the unused bits of
 * the last character zero, so that every byte string has exactly one encoding. -EBADMSG, -E2BIG
 * (decoded size over max), -ENOMEM. The result is NUL-terminated (not counted), so that JSON
 * can be handed on as is.
 */
static int b64url_decode(const char *s, size_t len, size_t max, unsigned char **ret,
                         size_t *ret_len)
{
        unsigned char *out;
        size_t n = 0, out_len;
        uint32_t acc = 0;
        unsigned bits = 0;

        if (len % 4 == 1)
                return -EBADMSG;
        out_len = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
        if (out_len > max)
                return -E2BIG;
        out = malloc(out_len + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                int d = base64_digit(s[i], true);

                if (d < 0) {
                        wipe_free(out, out_len + 1);
                        return -EBADMSG;
                }
                acc = (acc << 6) | (uint32_t) d;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (unsigned char) (acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (acc != 0) { /* what is left over is the unused bits: 2 or 4 of them, or none */
                wipe_free(out, out_len + 1);
                return -EBADMSG;
        }
        out[n] = '\0';
        *ret = out;
        *ret_len = n;
        return 0;
}

static void datum_freep(gnutls_datum_t *d)
{
        if (d->data) {
                explicit_bzero(d->data, d->size);
                gnutls_free(d->data);
        }
        d->data = NULL;
        d->size = 0;
}

/* ---- keysets ---- */

static void key_done(struct jwt_key *k)
{
        free(k->kid);
        if (k->pub)
                gnutls_pubkey_deinit(k->pub);
        wipe_free(k->secret, k->secret_len);
        *k = (struct jwt_key){0};
}

struct jwt_keyset *jwt_keyset_free(struct jwt_keyset *ks)
{
        if (!ks)
                return NULL;
        for (size_t i = 0; i < ks->n; i++)
                key_done(&ks->keys[i]);
        explicit_bzero(ks, sizeof(*ks));
        free(ks);
        return NULL;
}

DEFINE_FREE_FUNC(struct jwt_keyset *, jwt_keyset_free);

size_t jwt_keyset_size(const struct jwt_keyset *ks)
{
        return ks ? ks->n : 0;
}

bool jwt_keyset_has_secret(const struct jwt_keyset *ks)
{
        for (size_t i = 0; ks && i < ks->n; i++)
                if (ks->keys[i].secret)
                        return true;
        return false;
}

static int set_error(char **ret_error, int r, size_t index, const char *fmt, ...) _printf_(4, 5);

/* Fills *ret_error with "key INDEX: ..." (or the message alone for SIZE_MAX) and returns r. */
static int set_error(char **ret_error, int r, size_t index, const char *fmt, ...)
{
        char *msg = NULL, *full = NULL;
        va_list ap;

        if (!ret_error)
                return r;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (msg && index != SIZE_MAX) {
                if (asprintf(&full, "key %zu: %s", index, msg) < 0)
                        full = NULL;
                free(msg);
                msg = full;
        }
        free(*ret_error);
        *ret_error = msg;
        return r;
}

/*
 * A member that must be a strict base64url string; *ret (NUL-terminated, wiped by the caller
 * when secret). -ENOENT if absent; -EBADMSG otherwise bad; -E2BIG over max.
 */
static int member_b64(const json_t *jwk, const char *name, size_t max, unsigned char **ret,
                      size_t *ret_len)
{
        const json_t *v = json_object_get(jwk, name);

        if (!v)
                return -ENOENT;
        if (!json_is_string(v))
                return -EBADMSG;
        return b64url_decode(json_string_value(v), json_string_length(v), max, ret, ret_len);
}

static int b64_error(char **ret_error, int r, size_t index, const char *name)
{
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                return set_error(ret_error, -EBADMSG, index, "'%s' is missing", name);
        if (r == -E2BIG)
                return set_error(ret_error, -EKEYREJECTED, index, "'%s' is too long", name);
        return set_error(ret_error, -EBADMSG, index, "'%s' is not a strict base64url string", name);
}

static int gnutls_error(char **ret_error, int g, size_t index, const char *what)
{
        if (g == GNUTLS_E_MEMORY_ERROR)
                return -ENOMEM;
        log_debug("jwt: GnuTLS: %s", gnutls_strerror(g));
        return set_error(ret_error, -EIO, index, "%s", what);
}

static int parse_rsa(const json_t *jwk, struct jwt_key *k, size_t index, char **ret_error)
{
        _cleanup_free_ unsigned char *n = NULL, *e = NULL;
        size_t n_len = 0, e_len = 0, bits;
        gnutls_datum_t dn, de;
        int r, g;

        r = member_b64(jwk, "n", RSA_BITS_MAX / 8 + 1, &n, &n_len);
        if (r < 0)
                return b64_error(ret_error, r, index, "n");
        r = member_b64(jwk, "e", RSA_E_MAX, &e, &e_len);
        if (r < 0)
                return b64_error(ret_error, r, index, "e");
        if (n_len == 0 || n[0] == 0 || e_len == 0 || e[0] == 0)
                return set_error(ret_error, -EBADMSG, index,
                                 "'n' and 'e' must be unsigned integers without leading zeros");
        bits = n_len * 8;
        for (unsigned char top = n[0]; !(top & 0x80); top <<= 1)
                bits--;
        if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX)
                return set_error(ret_error, -EKEYREJECTED, index,
                                 "an RSA modulus of %zu bits (%u..%u accepted)", bits, RSA_BITS_MIN,
                                 RSA_BITS_MAX);
        if (!(n[n_len - 1] & 1) || !(e[e_len - 1] & 1) || (e_len == 1 && e[0] < 3))
                return set_error(ret_error, -EKEYREJECTED, index, "not an RSA public key");

        dn = (gnutls_datum_t){n, (unsigned) n_len};
        de = (gnutls_datum_t){e, (unsigned) e_len};
        g = gnutls_pubkey_init(&k->pub);
        if (g < 0)
                return gnutls_error(ret_error, g, index, "cannot make a key");
        g = gnutls_pubkey_import_rsa_raw(k->pub, &dn, &de);
        if (g < 0)
                return set_error(ret_error, g == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG, index,
                                 "not a valid RSA key");
        g = gnutls_pubkey_verify_params(k->pub);
        if (g < 0)
                return set_error(ret_error, -EKEYREJECTED, index, "not a valid RSA key");
        k->sig_len = n_len;
        return 0;
}

static int parse_ec(const json_t *jwk, struct jwt_key *k, size_t index, char **ret_error)
{
        _cleanup_free_ unsigned char *x = NULL, *y = NULL;
        size_t x_len = 0, y_len = 0, coord = k->alg->coord_len;
        const json_t *crv = json_object_get(jwk, "crv");
        gnutls_datum_t dx, dy;
        bool okp = k->alg->kty == KTY_OKP;
        int r, g;

        if (!json_is_string(crv) || strcmp(json_string_value(crv), k->alg->crv) != 0)
                return set_error(ret_error, -EKEYREJECTED, index, "%s needs 'crv' %s", k->alg->name,
                                 k->alg->crv);
        r = member_b64(jwk, "x", coord, &x, &x_len);
        if (r < 0)
                return b64_error(ret_error, r, index, "x");
        if (!okp) {
                r = member_b64(jwk, "y", coord, &y, &y_len);
                if (r < 0)
                        return b64_error(ret_error, r, index, "y");
        } else if (json_object_get(jwk, "y"))
                return set_error(ret_error, -EBADMSG, index, "an OKP key has no 'y'");
        /* RFC 7518 §6.2.1.2: coordinates are always of the curve's full length. */
        if (x_len != coord || (!okp && y_len != coord))
                return set_error(ret_error, -EBADMSG, index, "'x' and 'y' must be %zu bytes",
                                 coord);

        dx = (gnutls_datum_t){x, (unsigned) x_len};
        dy = (gnutls_datum_t){y, (unsigned) y_len};
        g = gnutls_pubkey_init(&k->pub);
        if (g < 0)
                return gnutls_error(ret_error, g, index, "cannot make a key");
        g = gnutls_pubkey_import_ecc_raw(k->pub, k->alg->curve, &dx, okp ? NULL : &dy);
        if (g < 0)
                return set_error(ret_error, g == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG, index,
                                 "not a valid %s key", k->alg->crv);
        g = gnutls_pubkey_verify_params(k->pub);
        if (g < 0)
                return set_error(ret_error, -EKEYREJECTED, index, "not a point on %s", k->alg->crv);
        k->sig_len = 2 * coord;
        if (okp)
                k->sig_len = 64;
        return 0;
}

static int parse_oct(const json_t *jwk, struct jwt_key *k, size_t index, char **ret_error)
{
        size_t min = k->alg->hash_len > OCT_MIN ? k->alg->hash_len : OCT_MIN;
        int r;

        r = member_b64(jwk, "k", OCT_MAX, &k->secret, &k->secret_len);
        if (r < 0)
                return b64_error(ret_error, r, index, "k");
        if (k->secret_len < min)
                return set_error(ret_error, -EKEYREJECTED, index,
                                 "an %s key of %zu bytes (at least %zu needed)", k->alg->name,
                                 k->secret_len, min);
        k->sig_len = k->alg->hash_len;
        return 0;
}

/* Short printable ASCII without quotes: safe to put in a message as it is. */
static bool printable(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 16)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '\'' || s[i] == '\\')
                        return false;
        return true;
}

static int parse_key(const json_t *jwk, size_t index, struct jwt_key *k, char **ret_error)
{
        static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
        const json_t *kty, *alg, *use, *ops, *kid;
        const char *kty_s, *alg_s;
        bool verify = false;

        if (!json_is_object(jwk))
                return set_error(ret_error, -EBADMSG, index, "not a JSON object");
        alg = json_object_get(jwk, "alg");
        kty = json_object_get(jwk, "kty");
        if (!json_is_string(alg))
                return set_error(ret_error, -EKEYREJECTED, index,
                                 "no 'alg': every key must be pinned to its algorithm");
        if (!json_is_string(kty))
                return set_error(ret_error, -EBADMSG, index, "no 'kty'");
        alg_s = json_string_value(alg);
        kty_s = json_string_value(kty);
        k->alg = alg_find(alg_s);
        if (!k->alg)
                return set_error(ret_error, -EKEYREJECTED, index, "unsupported alg '%s'",
                                 printable(alg_s) ? alg_s : "?");
        if (strcmp(kty_s, kty_names[k->alg->kty]) != 0)
                return set_error(ret_error, -EKEYREJECTED, index, "%s needs 'kty' %s", k->alg->name,
                                 kty_names[k->alg->kty]);

        use = json_object_get(jwk, "use");
        if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
                return set_error(ret_error, -EKEYREJECTED, index, "'use' is not \"sig\"");
        ops = json_object_get(jwk, "key_ops");
        if (ops) {
                size_t i;
                const json_t *op;

                if (!json_is_array(ops) || json_array_size(ops) > KEY_OPS_MAX)
                        return set_error(ret_error, -EBADMSG, index,
                                         "'key_ops' is not an array of strings");
                json_array_foreach(ops, i, op)
                {
                        if (!json_is_string(op))
                                return set_error(ret_error, -EBADMSG, index,
                                                 "'key_ops' is not an array of strings");
                        verify = verify || strcmp(json_string_value(op), "verify") == 0;
                }
                if (!verify)
                        return set_error(ret_error, -EKEYREJECTED, index,
                                         "'key_ops' does not include \"verify\"");
        }
        kid = json_object_get(jwk, "kid");
        if (kid) {
                if (!json_is_string(kid) || json_string_length(kid) == 0 ||
                    json_string_length(kid) > JWT_CLAIM_MAX)
                        return set_error(ret_error, -EBADMSG, index,
                                         "'kid' is not a string of 1..%u bytes", JWT_CLAIM_MAX);
                k->kid = strdup(json_string_value(kid));
                if (!k->kid)
                        return -ENOMEM;
        }
        if (k->alg->kty != KTY_OCT)
                for (size_t i = 0; i < ELEMENTSOF(private_members); i++)
                        if (json_object_get(jwk, private_members[i]))
                                return set_error(ret_error, -EKEYREJECTED, index,
                                                 "has the private member '%s': publish public "
                                                 "keys only",
                                                 private_members[i]);

        switch (k->alg->kty) {
        case KTY_RSA:
                return parse_rsa(jwk, k, index, ret_error);
        case KTY_EC:
        case KTY_OKP:
                return parse_ec(jwk, k, index, ret_error);
        case KTY_OCT:
                return parse_oct(jwk, k, index, ret_error);
        }
        return -EINVAL;
}

int jwt_keyset_parse(const char *json, size_t len, struct jwt_keyset **ret, char **ret_error)
{
        static const struct json_limits limits = {
                .max_bytes = JWT_JWKS_MAX,
                .max_depth = 8,
                .max_values = 16384,
        };
        _cleanup_(jwt_keyset_freep) struct jwt_keyset *ks = NULL;
        _cleanup_json_ json_t *root = NULL;
        struct json_error jerr;
        const json_t *keys;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if ((!json && len > 0) || !ret)
                return -EINVAL;
        r = json_parse_strict_limits(json, len, &limits, &root, &jerr);
        if (r == -ENOMEM)
                return r;
        if (r == -E2BIG)
                return set_error(ret_error, r, SIZE_MAX, "the JWKS is over %u bytes", JWT_JWKS_MAX);
        if (r < 0)
                return set_error(ret_error, -EBADMSG, SIZE_MAX, "the JWKS is not JSON: %s",
                                 jerr.message);
        keys = json_object_get(root, "keys");
        if (!json_is_array(keys))
                return set_error(ret_error, -EBADMSG, SIZE_MAX, "the JWKS has no \"keys\" array");
        if (json_array_size(keys) == 0)
                return set_error(ret_error, -ENOENT, SIZE_MAX, "the JWKS has no keys");
        if (json_array_size(keys) > JWT_KEYS_MAX)
                return set_error(ret_error, -E2BIG, SIZE_MAX,
                                 "the JWKS has %zu keys, over the maximum of %u",
                                 json_array_size(keys), JWT_KEYS_MAX);

        ks = calloc(1, sizeof(*ks));
        if (!ks)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(keys); i++) {
                struct jwt_key *k = &ks->keys[ks->n++]; /* counted now: freed with ks */

                r = parse_key(json_array_get(keys, i), i, k, ret_error);
                if (r < 0)
                        return r;
                for (size_t j = 0; k->kid && j < i; j++)
                        if (ks->keys[j].kid && strcmp(ks->keys[j].kid, k->kid) == 0)
                                return set_error(ret_error, -EBADMSG, i,
                                                 "its kid is also key %zu's", j);
        }
        *ret = TAKE_PTR(ks);
        return 0;
}

int jwt_keyset_load(const char *path, struct jwt_keyset **ret, char **ret_error)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        char *buf;
        ssize_t n;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!path || !ret)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return set_error(ret_error, -EINVAL, SIZE_MAX, "not a regular file");
        if ((uint64_t) st.st_size > JWT_JWKS_MAX)
                return set_error(ret_error, -E2BIG, SIZE_MAX, "the JWKS is over %u bytes",
                                 JWT_JWKS_MAX);
        buf = malloc(JWT_JWKS_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = read_full(fd, buf, JWT_JWKS_MAX + 1);
        if (n < 0)
                r = (int) n;
        else if ((size_t) n > JWT_JWKS_MAX)
                r = set_error(ret_error, -E2BIG, SIZE_MAX, "the JWKS is over %u bytes",
                              JWT_JWKS_MAX);
        else
                r = jwt_keyset_parse(buf, (size_t) n, ret, ret_error);
        wipe_free(buf, JWT_JWKS_MAX + 1);
        return r;
}

/* ---- tokens ---- */

static const char *const error_strings[_JWT_ERROR_MAX] = {
        [JWT_OK] = "ok",
        [JWT_TOO_LARGE] = "token too large",
        [JWT_MALFORMED] = "malformed token",
        [JWT_UNSUPPORTED_ALG] = "unsupported algorithm",
        [JWT_UNSUPPORTED_TYPE] = "unsupported token type",
        [JWT_CRITICAL_EXTENSION] = "critical header extension not understood",
        [JWT_NO_KEY] = "no key for the token",
        [JWT_ALG_MISMATCH] = "algorithm does not match the key",
        [JWT_BAD_SIGNATURE] = "signature does not verify",
        [JWT_EXPIRED] = "token has expired",
        [JWT_NOT_YET_VALID] = "token is not valid yet",
        [JWT_ISSUED_IN_FUTURE] = "token issued in the future",
        [JWT_WRONG_ISSUER] = "wrong issuer",
        [JWT_WRONG_AUDIENCE] = "wrong audience",
        [JWT_MISSING_CLAIM] = "required claim missing",
        [JWT_INVALID_CLAIM] = "invalid claim",
        [JWT_INTERNAL] = "internal error",
};

const char *jwt_error_to_string(enum jwt_error e)
{
        if ((unsigned) e >= _JWT_ERROR_MAX)
                return "unknown error";
        return error_strings[e];
}

void jwt_claims_clear(struct jwt_claims *c)
{
        if (!c)
                return;
        free(c->iss);
        free(c->sub);
        free(c->username);
        free(c->kid);
        free(c->alg);
        *c = (struct jwt_claims){0};
}

/* The three segments of a compact token, as offsets into it. */
struct segments {
        const char *header, *payload, *sig;
        size_t header_len, payload_len, sig_len;
};

static bool split(const char *token, size_t len, struct segments *ret)
{
        const char *dot1, *dot2;

        dot1 = memchr(token, '.', len);
        if (!dot1)
                return false;
        dot2 = memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - token));
        if (!dot2 || memchr(dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)))
                return false;
        *ret = (struct segments){
                .header = token,
                .header_len = (size_t) (dot1 - token),
                .payload = dot1 + 1,
                .payload_len = (size_t) (dot2 - dot1 - 1),
                .sig = dot2 + 1,
                .sig_len = len - (size_t) (dot2 + 1 - token),
        };
        return ret->header_len > 0 && ret->payload_len > 0;
}

/* A base64url segment that must decode to a JSON object. -EBADMSG, -ENOMEM. */
static int decode_object(const char *s, size_t len, unsigned max_depth, json_t **ret)
{
        const struct json_limits limits = {
                .max_bytes = SEG_DECODED_MAX,
                .max_depth = max_depth,
                .max_values = 1024,
        };
        _cleanup_free_ unsigned char *text = NULL;
        size_t text_len = 0;
        int r;

        r = b64url_decode(s, len, SEG_DECODED_MAX, &text, &text_len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        r = json_parse_strict_limits((const char *) text, text_len, &limits, ret, NULL);
        if (r == -ENOMEM)
                return r;
        return r < 0 ? -EBADMSG : 0;
}

bool jwt_looks_like(const char *token, size_t len)
{
        _cleanup_json_ json_t *header = NULL;
        struct segments seg;

        if (!token || len == 0 || len > JWT_TOKEN_MAX || !split(token, len, &seg))
                return false;
        for (size_t i = 0; i < len; i++)
                if (token[i] != '.' && base64_digit(token[i], true) < 0)
                        return false;
        return decode_object(seg.header, seg.header_len, 4, &header) == 0;
}

static bool typ_ok(const char *typ)
{
        return strcasecmp(typ, "JWT") == 0 || strcasecmp(typ, "at+jwt") == 0 ||
               strcasecmp(typ, "application/at+jwt") == 0;
}

/* 0: verifies; -EKEYREJECTED: does not; -ENOMEM. */
static int verify_with(const struct jwt_key *k, const gnutls_datum_t *input,
                       const unsigned char *sig, size_t sig_len)
{
        if (sig_len != k->sig_len)
                return -EKEYREJECTED;

        if (k->alg->kty == KTY_OCT) {
                unsigned char mac[64];
                int g;

                g = gnutls_hmac_fast(k->alg->mac, k->secret, k->secret_len, input->data,
                                     input->size, mac);
                if (g < 0)
                        return g == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EKEYREJECTED;
                g = gnutls_memcmp(mac, sig, k->alg->hash_len);
                explicit_bzero(mac, sizeof(mac));
                return g == 0 ? 0 : -EKEYREJECTED;
        }

        if (k->alg->kty == KTY_EC) {
                /* JWS carries R||S, GnuTLS verifies DER. */
                _cleanup_(datum_freep) gnutls_datum_t der = {0};
                gnutls_datum_t r = {(unsigned char *) sig, (unsigned) (sig_len / 2)};
                gnutls_datum_t s = {(unsigned char *) sig + sig_len / 2, (unsigned) (sig_len / 2)};
                int g;

                g = gnutls_encode_rs_value(&der, &r, &s);
                if (g < 0)
                        return g == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EKEYREJECTED;
                g = gnutls_pubkey_verify_data2(k->pub, k->alg->sign, 0, input, &der);
                if (g == GNUTLS_E_MEMORY_ERROR)
                        return -ENOMEM;
                return g >= 0 ? 0 : -EKEYREJECTED;
        }

        gnutls_datum_t d = {(unsigned char *) sig, (unsigned) sig_len};
        int g = gnutls_pubkey_verify_data2(
                k->pub, k->alg->sign,
                k->alg->kty == KTY_RSA ? GNUTLS_VERIFY_RSA_PSS_FIXED_SALT_LENGTH : 0, input, &d);
        if (g == GNUTLS_E_MEMORY_ERROR)
                return -ENOMEM;
        return g >= 0 ? 0 : -EKEYREJECTED;
}

/*
 * A NumericDate claim: 0 and *ret; -ENOENT absent; -EINVAL not a number in 0..JWT_TIME_MAX.
 * Reals are rounded towards refusal: down for exp, up for nbf and iat.
 */
static int claim_time(const json_t *payload, const char *name, bool round_up, int64_t *ret)
{
        const json_t *v = json_object_get(payload, name);
        double d;

        if (!v)
                return -ENOENT;
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);

                if (i < 0 || i > JWT_TIME_MAX)
                        return -EINVAL;
                *ret = (int64_t) i;
                return 0;
        }
        if (!json_is_real(v))
                return -EINVAL;
        d = json_real_value(v);
        if (!isfinite(d) || d < 0 || d > (double) JWT_TIME_MAX)
                return -EINVAL;
        *ret = (int64_t) (round_up ? ceil(d) : floor(d));
        return 0;
}

/* A string claim of 1..JWT_CLAIM_MAX bytes: 0 and *ret (borrowed); -ENOENT; -EINVAL. */
static int claim_string(const json_t *payload, const char *name, const char **ret)
{
        const json_t *v = json_object_get(payload, name);

        if (!v)
                return -ENOENT;
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > JWT_CLAIM_MAX)
                return -EINVAL;
        *ret = json_string_value(v);
        return 0;
}

static enum jwt_error claim_error(int r)
{
        return r == -ENOENT ? JWT_MISSING_CLAIM : JWT_INVALID_CLAIM;
}

static enum jwt_error check_audience(const json_t *payload, const char *audience)
{
        const json_t *aud = json_object_get(payload, "aud"), *v;
        bool found = false;
        size_t i;

        if (!aud)
                return JWT_MISSING_CLAIM;
        if (json_is_string(aud)) {
                if (json_string_length(aud) == 0 || json_string_length(aud) > JWT_CLAIM_MAX)
                        return JWT_INVALID_CLAIM;
                return strcmp(json_string_value(aud), audience) == 0 ? JWT_OK : JWT_WRONG_AUDIENCE;
        }
        if (!json_is_array(aud) || json_array_size(aud) == 0 || json_array_size(aud) > JWT_AUD_MAX)
                return JWT_INVALID_CLAIM;
        json_array_foreach(aud, i, v)
        {
                if (!json_is_string(v) || json_string_length(v) == 0 ||
                    json_string_length(v) > JWT_CLAIM_MAX)
                        return JWT_INVALID_CLAIM;
                found = found || strcmp(json_string_value(v), audience) == 0;
        }
        return found ? JWT_OK : JWT_WRONG_AUDIENCE;
}

/* The claims of a payload whose signature verified. *ret's strings are borrowed from payload. */
static enum jwt_error check_claims(const json_t *payload, const struct jwt_expect *expect,
                                   struct jwt_claims *ret)
{
        const char *iss = NULL, *sub = NULL, *username = NULL;
        int64_t exp = 0, nbf = 0, iat = 0;
        enum jwt_error e;
        int r;

        r = claim_string(payload, "iss", &iss);
        if (r < 0)
                return claim_error(r);
        if (strcmp(iss, expect->issuer) != 0)
                return JWT_WRONG_ISSUER;
        e = check_audience(payload, expect->audience);
        if (e != JWT_OK)
                return e;

        r = claim_time(payload, "exp", false, &exp);
        if (r < 0)
                return claim_error(r);
        r = claim_time(payload, "nbf", true, &nbf);
        if (r < 0 && r != -ENOENT)
                return JWT_INVALID_CLAIM;
        r = claim_time(payload, "iat", true, &iat);
        if (r < 0 && r != -ENOENT)
                return JWT_INVALID_CLAIM;
        /* All of these are at most 2^53 (the expectation's too): no sum overflows. */
        if (expect->now >= exp + expect->leeway)
                return JWT_EXPIRED;
        if (expect->now + expect->leeway < nbf)
                return JWT_NOT_YET_VALID;
        if (iat > expect->now + expect->leeway)
                return JWT_ISSUED_IN_FUTURE;

        r = claim_string(payload, "sub", &sub);
        if (r < 0)
                return claim_error(r);
        if (expect->username_claim) {
                r = claim_string(payload, expect->username_claim, &username);
                if (r < 0 && r != -ENOENT)
                        return JWT_INVALID_CLAIM;
        }
        *ret = (struct jwt_claims){
                .iss = (char *) iss,
                .sub = (char *) sub,
                .username = (char *) username,
                .exp = exp,
                .nbf = nbf,
                .iat = iat,
        };
        return JWT_OK;
}

static int refuse(enum jwt_error e, enum jwt_error *ret_reason)
{
        *ret_reason = e;
        return e == JWT_INTERNAL ? -ENOMEM : -EKEYREJECTED;
}

int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
               const struct jwt_expect *expect, struct jwt_claims *ret, enum jwt_error *ret_reason)
{
        _cleanup_json_ json_t *header = NULL, *payload = NULL;
        _cleanup_free_ unsigned char *sig = NULL;
        _cleanup_(jwt_claims_clear) struct jwt_claims c = {0};
        const struct jwt_key *found = NULL;
        const struct alg *alg;
        const json_t *v;
        const char *kid = NULL;
        struct segments seg;
        gnutls_datum_t input;
        struct jwt_claims borrowed;
        size_t sig_len = 0;
        bool tried = false;
        enum jwt_error e;
        int r;

        if (!ret_reason)
                return -EINVAL;
        *ret_reason = JWT_INTERNAL;
        if (!ks || (!token && len > 0) || !expect || !ret || !expect->issuer || !expect->audience ||
            expect->now < 0 || expect->now > JWT_TIME_MAX || expect->leeway < 0 ||
            expect->leeway > JWT_LEEWAY_MAX)
                return -EINVAL;

        /* 1. The form. */
        if (len > JWT_TOKEN_MAX)
                return refuse(JWT_TOO_LARGE, ret_reason);
        if (len == 0 || !split(token, len, &seg))
                return refuse(JWT_MALFORMED, ret_reason);
        r = decode_object(seg.header, seg.header_len, 4, &header);
        if (r == -ENOMEM)
                return refuse(JWT_INTERNAL, ret_reason);
        if (r < 0)
                return refuse(JWT_MALFORMED, ret_reason);
        r = b64url_decode(seg.sig, seg.sig_len, JWT_TOKEN_MAX, &sig, &sig_len);
        if (r == -ENOMEM)
                return refuse(JWT_INTERNAL, ret_reason);
        if (r < 0)
                return refuse(JWT_MALFORMED, ret_reason);
        /* The payload's form is checked before the signature too, its meaning only after. */
        for (size_t i = 0; i < seg.payload_len; i++)
                if (base64_digit(seg.payload[i], true) < 0)
                        return refuse(JWT_MALFORMED, ret_reason);

        /* 2. The header. */
        v = json_object_get(header, "alg");
        if (!json_is_string(v))
                return refuse(JWT_UNSUPPORTED_ALG, ret_reason);
        alg = alg_find(json_string_value(v));
        if (!alg)
                return refuse(JWT_UNSUPPORTED_ALG, ret_reason);
        if (json_object_get(header, "crit"))
                return refuse(JWT_CRITICAL_EXTENSION, ret_reason);
        v = json_object_get(header, "typ");
        if (v && (!json_is_string(v) || !typ_ok(json_string_value(v))))
                return refuse(JWT_UNSUPPORTED_TYPE, ret_reason);
        v = json_object_get(header, "kid");
        if (v) {
                if (!json_is_string(v) || json_string_length(v) == 0 ||
                    json_string_length(v) > JWT_CLAIM_MAX)
                        return refuse(JWT_MALFORMED, ret_reason);
                kid = json_string_value(v);
        }

        /* 3. The signature, over the first two segments as sent. */
        input = (gnutls_datum_t){(unsigned char *) token,
                                 (unsigned) (seg.header_len + 1 + seg.payload_len)};
        if (kid) {
                const struct jwt_key *k = NULL;

                for (size_t i = 0; i < ks->n && !k; i++)
                        if (ks->keys[i].kid && strcmp(ks->keys[i].kid, kid) == 0)
                                k = &ks->keys[i];
                if (!k)
                        return refuse(JWT_NO_KEY, ret_reason);
                if (k->alg != alg)
                        return refuse(JWT_ALG_MISMATCH, ret_reason);
                r = verify_with(k, &input, sig, sig_len);
                if (r == -ENOMEM)
                        return refuse(JWT_INTERNAL, ret_reason);
                if (r < 0)
                        return refuse(JWT_BAD_SIGNATURE, ret_reason);
                found = k;
        } else {
                for (size_t i = 0; i < ks->n && !found; i++) {
                        if (ks->keys[i].alg != alg)
                                continue;
                        tried = true;
                        r = verify_with(&ks->keys[i], &input, sig, sig_len);
                        if (r == -ENOMEM)
                                return refuse(JWT_INTERNAL, ret_reason);
                        if (r >= 0)
                                found = &ks->keys[i];
                }
                if (!tried)
                        return refuse(JWT_NO_KEY, ret_reason);
                if (!found)
                        return refuse(JWT_BAD_SIGNATURE, ret_reason);
        }

        /* 4. The claims, now that they are the issuer's. */
        r = decode_object(seg.payload, seg.payload_len, 16, &payload);
        if (r == -ENOMEM)
                return refuse(JWT_INTERNAL, ret_reason);
        if (r < 0)
                return refuse(JWT_MALFORMED, ret_reason);
        e = check_claims(payload, expect, &borrowed);
        if (e != JWT_OK)
                return refuse(e, ret_reason);

        c.exp = borrowed.exp;
        c.nbf = borrowed.nbf;
        c.iat = borrowed.iat;
        c.iss = strdup(borrowed.iss);
        c.sub = strdup(borrowed.sub);
        c.alg = strdup(found->alg->name);
        if (!c.iss || !c.sub || !c.alg)
                return refuse(JWT_INTERNAL, ret_reason);
        if (borrowed.username) {
                c.username = strdup(borrowed.username);
                if (!c.username)
                        return refuse(JWT_INTERNAL, ret_reason);
        }
        if (found->kid) {
                c.kid = strdup(found->kid);
                if (!c.kid)
                        return refuse(JWT_INTERNAL, ret_reason);
        }
        *ret = c;
        c = (struct jwt_claims){0};
        *ret_reason = JWT_OK;
        return 0;
}
