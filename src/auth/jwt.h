/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Bearer tokens from an OpenID Connect / OAuth identity provider: JWTs in JWS compact form
 * (RFC 7515, 7519), verified against the keys of a JWKS document (RFC 7517, 7518). GnuTLS stays
 * inside jwt.c.
 *
 * The algorithm is pinned per key: every key of the JWKS must name its "alg", and a token is
 * verified only by a key whose alg is exactly the token's. An HS256 token MACed with an RSA
 * key's public bytes therefore finds no key (no kid) or the wrong one (a kid: alg mismatch);
 * "none" is never accepted. Unencoded payloads, "crit" extensions, keys carried in the token
 * (jwk, jku, x5u, x5c) are not supported: the first two are refused, the others ignored.
 *
 * The signature is verified before anything of the payload is looked at: a claim is reported
 * as wrong only for a token whose signature verifies.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_TOKEN_MAX  8192       /* bytes of a compact token */
#define JWT_JWKS_MAX   (1u << 20) /* bytes of a JWKS document */
#define JWT_KEYS_MAX   64         /* keys of a JWKS */
#define JWT_CLAIM_MAX  256        /* bytes of iss, sub, an aud entry, a kid, the username claim */
#define JWT_AUD_MAX    32         /* entries of an "aud" array */
#define JWT_TIME_MAX   (INT64_C(1) << 53) /* the largest exp, nbf, iat, now accepted (seconds) */
#define JWT_LEEWAY_MAX 3600               /* seconds */

/* Immutable once made: jwt_verify() may run on one keyset in many threads at once. */
struct jwt_keyset;

/*
 * Parses a JWKS text ({"keys": [...]}, at most JWT_JWKS_MAX bytes, need not be NUL-terminated).
 * Every key must carry "alg" (its pin) and the "kty" that goes with it; "use", if present, must
 * be "sig"; "key_ops", if present, must include "verify"; "kid" is optional (1..JWT_CLAIM_MAX
 * bytes) but unique when present. Supported:
 *   RS256 RS384 RS512 PS256 PS384 PS512  kty RSA, n and e; a modulus of 2048..16384 bits
 *   ES256 ES384 ES512                    kty EC, crv P-256 / P-384 / P-521 to match, x and y of
 *                                        the curve's full length, a point on the curve
 *   EdDSA                                kty OKP, crv Ed25519, x
 *   HS256 HS384 HS512                    kty oct, k of at least 32 bytes and at least the hash's
 *                                        length (RFC 7518 §3.2), at most 1024
 * All base64url members are strict (see jwt_verify()); n and e have no leading zero byte.
 * Members not named here (x5c, x5t, ...) are ignored.
 *
 * One bad key refuses the whole document: an unsupported or missing alg ("none" included), a
 * kty that does not match it, a private member (d, p, q, dp, dq, qi, oth) in an asymmetric key,
 * a weak or malformed key. Returns 0 and *ret, or:
 *   -EBADMSG       not JSON, not {"keys": [...]}, a malformed key, a duplicate kid
 *   -EKEYREJECTED  a key refused by policy (unsupported alg, private member, too weak)
 *   -E2BIG         more than JWT_JWKS_MAX bytes or JWT_KEYS_MAX keys; -ENOENT: no key at all
 *   -ENOMEM, -EIO (GnuTLS), -EINVAL (bad arguments)
 * and, if ret_error is not NULL, *ret_error: a one-line message for a person, naming the key by
 * its index ("key 2: ..."), to free(); it may be NULL without memory. Nothing secret is in it.
 */
int jwt_keyset_parse(const char *json, size_t len, struct jwt_keyset **ret, char **ret_error);

/*
 * Reads and parses a JWKS file: a regular file (a symbolic link to one is followed) of at most
 * JWT_JWKS_MAX bytes, whose bytes are wiped after parsing (they may hold HMAC secrets). Returns
 * what jwt_keyset_parse() does, or -errno of open()/read(), -EINVAL: not a regular file, -E2BIG:
 * too large.
 */
int jwt_keyset_load(const char *path, struct jwt_keyset **ret, char **ret_error);

/* Wipes the secrets and frees everything. Accepts NULL; returns NULL. */
struct jwt_keyset *jwt_keyset_free(struct jwt_keyset *ks);
size_t jwt_keyset_size(const struct jwt_keyset *ks);
/* Whether a key of the set is a shared secret (HS*): whoever reads the file can forge tokens. */
bool jwt_keyset_has_secret(const struct jwt_keyset *ks);

struct jwt_expect {
        const char *issuer;   /* required: exact match of "iss" */
        const char *audience; /* required: "aud" (a string or an array) must contain it exactly */
        int64_t now;          /* seconds, Unix time; 0..JWT_TIME_MAX */
        int64_t leeway;       /* seconds of clock skew for exp, nbf, iat; 0..JWT_LEEWAY_MAX */
        const char *username_claim; /* e.g. "preferred_username"; NULL: none extracted */
};

/* What a verified token says. Strings are NUL-terminated, valid UTF-8 without NUL, owned. */
struct jwt_claims {
        char *iss, *sub;       /* sub: 1..JWT_CLAIM_MAX bytes */
        char *username;        /* the username_claim's value (1..JWT_CLAIM_MAX), NULL if absent */
        int64_t exp, nbf, iat; /* nbf, iat: 0 when absent */
        char *kid, *alg;       /* of the key that verified; kid NULL if that key has none */
};

/* Frees the strings; c is zeroed. */
void jwt_claims_clear(struct jwt_claims *c);

enum jwt_error {
        JWT_OK,
        JWT_TOO_LARGE,          /* over JWT_TOKEN_MAX bytes */
        JWT_MALFORMED,          /* not three strict base64url segments of JSON objects */
        JWT_UNSUPPORTED_ALG,    /* "none", an alg not listed, no alg */
        JWT_UNSUPPORTED_TYPE,   /* "typ" other than JWT, at+jwt, application/at+jwt */
        JWT_CRITICAL_EXTENSION, /* "crit": an extension we do not understand */
        JWT_NO_KEY,             /* no key with the kid, or none of the alg */
        JWT_ALG_MISMATCH,       /* the kid's key is pinned to another alg */
        JWT_BAD_SIGNATURE,      /* does not verify (or not of the alg's form, e.g. DER ECDSA) */
        JWT_EXPIRED,            /* now >= exp + leeway */
        JWT_NOT_YET_VALID,      /* now + leeway < nbf */
        JWT_ISSUED_IN_FUTURE,   /* iat > now + leeway */
        JWT_WRONG_ISSUER,
        JWT_WRONG_AUDIENCE,
        JWT_MISSING_CLAIM, /* iss, aud, exp or sub absent */
        JWT_INVALID_CLAIM, /* a claim of the wrong type, too long, empty, out of range */
        JWT_INTERNAL,      /* out of memory, a GnuTLS failure */
        _JWT_ERROR_MAX,
};

/* Short, lower-case, stable, for audit logs: "signature does not verify". Never NULL. */
const char *jwt_error_to_string(enum jwt_error e);

/*
 * Verifies token[0..len) (need not be NUL-terminated) with the keys of ks, then its claims
 * against *expect:
 *   - three segments of strict base64url (RFC 4648 §5 alphabet, no padding, no whitespace, zero
 *     unused bits), header and payload JSON objects without duplicate keys or trailing bytes;
 *   - header: "alg" one of the supported, "typ" if present JWT / at+jwt / application/at+jwt
 *     (any case), no "crit"; the key: by "kid" if present, whose alg must equal the header's;
 *     without a kid every key of the header's alg is tried;
 *   - ECDSA signatures are raw R||S of the curve's length, RSA ones the modulus's length,
 *     RSA-PSS with a salt as long as the hash;
 *   - claims: iss, sub, exp, aud required; iat and nbf optional; times are NumericDates
 *     (integers or finite numbers, 0..JWT_TIME_MAX; exp rounded down, nbf and iat up).
 * Returns 0 and fills *ret (then *ret_reason is JWT_OK), or -EKEYREJECTED for any refusal,
 * -ENOMEM (JWT_INTERNAL), -EINVAL for bad arguments (JWT_INTERNAL), with *ret_reason saying
 * why. *ret is written only on success.
 */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
               const struct jwt_expect *expect, struct jwt_claims *ret, enum jwt_error *ret_reason);

/*
 * True if token[0..len) looks like a compact JWS: at most JWT_TOKEN_MAX bytes, three
 * base64url segments, the first of which decodes to a JSON object. How the node tells a JWT
 * from its own "wrn_" tokens; nothing is verified.
 */
bool jwt_looks_like(const char *token, size_t len);
