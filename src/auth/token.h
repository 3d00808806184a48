/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * API bearer tokens and the module's randomness.
 *
 * A token is "wrn_" followed by 32 random bytes in URL-safe base64 without padding (43
 * characters): 47 characters, 256 bits of entropy. The prefix lets secret scanners (GitHub's,
 * gitleaks, trufflehog) recognise a leaked token.
 *
 * The node stores only SHA-256(token) — of the whole 47-character string — and finds a token's
 * session by an equality lookup on that hash. Neither a salt, a slow hash nor a constant-time
 * comparison is needed, because the input is a uniformly random 256-bit secret, not a password:
 *   - no dictionary or precomputed table covers a 2^256 space, so the hash needs no salt or cost;
 *   - a stolen copy of the table yields hashes, and a hash is not a token (preimage resistance);
 *   - a timing side channel in the index lookup could at most tell an attacker how many leading
 *     bytes of SHA-256(guess) match some stored hash; a token whose hash matches is still a
 *     2^256 search, and knowing bytes of a hash does not help find its preimage.
 * The format is checked before anything is hashed, so a malformed header costs nothing and
 * never reaches the store.
 *
 * libsodium: auth_init() runs sodium_init() exactly once (pthread_once). The node calls it at
 * start-up so that a failure is reported there; every function of the module (password.h too)
 * also calls it, so that no order of calls can use libsodium uninitialised.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_PREFIX        "wrn_"
#define AUTH_TOKEN_PREFIX_LEN    4
#define AUTH_TOKEN_SECRET_BYTES  32
#define AUTH_TOKEN_LEN           47  /* prefix + 43 base64url characters, without the NUL */
#define AUTH_TOKEN_HASH_LEN      32  /* SHA-256 */
#define AUTH_RANDOM_HEX_MAX_SIZE 129 /* auth_random_hex(): 64 random bytes and the NUL */

/* Initialises libsodium once per process; 0 or -EIO. Safe to call from any thread, any number of
 * times. */
int auth_init(void);

/*
 * A new token (NUL-terminated) and its hash, the value to store. The token is shown to its owner
 * once and never logged or stored; the caller wipes it (sodium_memzero) when done.
 */
int auth_token_new(char ret_token[static AUTH_TOKEN_LEN + 1],
                   uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN]);

/*
 * True when token[0..len) has exactly the format auth_token_new() produces: the prefix, then 43
 * characters of [A-Za-z0-9_-] of which the last encodes 4 bits and 2 zero bits (so each 32-byte
 * secret has exactly one valid spelling). No NUL byte can pass.
 */
bool auth_token_is_valid(const char *token, size_t len);

/* The hash of a token presented by a client, for the store's lookup. -EINVAL, without hashing
 * anything, unless auth_token_is_valid(token, len). */
int auth_token_hash(const char *token, size_t len, uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN]);

/*
 * Worker join tokens (docs/api.md, Workers): the same shape with the prefix "wjt_" — 32 random
 * bytes in URL-safe base64 without padding, 47 characters — and the same reasoning: the master
 * stores SHA-256 of the whole 47-character string (STORE_WORKER_TOKEN_HASH_SIZE bytes), and a
 * joining worker's token is checked for this format before it is hashed and looked up.
 */
#define AUTH_WORKER_TOKEN_PREFIX     "wjt_"
#define AUTH_WORKER_TOKEN_PREFIX_LEN 4
#define AUTH_WORKER_TOKEN_LEN        47

int auth_worker_token_new(char ret_token[static AUTH_WORKER_TOKEN_LEN + 1],
                          uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN]);
bool auth_worker_token_is_valid(const char *token, size_t len);
/* -EINVAL, without hashing anything, unless auth_worker_token_is_valid(token, len). */
int auth_worker_token_hash(const char *token, size_t len,
                           uint8_t ret_hash[static AUTH_TOKEN_HASH_LEN]);

/*
 * Fills buf with size - 1 random lowercase hex digits and a NUL: (size - 1) / 2 random bytes, for
 * identifiers (char id[33] gives 128 bits). -EINVAL unless size is odd, at least 3 and at most
 * AUTH_RANDOM_HEX_MAX_SIZE; buf is untouched then.
 */
int auth_random_hex(char *buf, size_t size);
