/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Passwords: argon2id (RFC 9106) through libsodium's crypto_pwhash, stored as one self-describing
 * string, "$argon2id$v=19$m=65536,t=2,p=1$<salt>$<hash>", that carries its own salt and costs, so
 * that the costs can change later without a migration (auth_password_needs_rehash()).
 *
 * Costs: t=2 passes over m=64 MiB, one lane (libsodium's OPSLIMIT/MEMLIMIT_INTERACTIVE). On the
 * 2-core AMD EPYC VM this was written on, a hash or a verification takes ~87 ms; MODERATE (t=3,
 * 256 MiB) takes ~500 ms, which a login endpoint under load cannot afford. Each hash in flight
 * holds 64 MiB for its duration: the caller bounds how many run at once (at most the number of
 * cores; more only queue for the CPU while holding memory) and rate-limits logins.
 *
 * Passwords are byte strings of AUTH_PASSWORD_MIN..AUTH_PASSWORD_MAX bytes with no NUL byte and no
 * other composition rule (NIST SP 800-63B). They are taken as (buffer, length), so that a JSON
 * string with an embedded "\u0000" is refused instead of silently truncated.
 *
 * libsodium is initialised on first use (auth_init(), see token.h); these functions are safe to
 * call from any thread at any time. Nothing here logs: a password never reaches a log line.
 */

#include <stddef.h>

/* Size of a stored hash string, with its NUL (crypto_pwhash_STRBYTES). */
#define AUTH_PASSWORD_HASH_MAX 128

#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024

/* The costs of new hashes (libsodium's INTERACTIVE). */
#define AUTH_PASSWORD_OPSLIMIT 2U
#define AUTH_PASSWORD_MEMLIMIT (64U << 20)

/*
 * The highest costs a stored hash may carry. A hash above them is malformed (-EINVAL) rather than
 * verified: a corrupted or planted row must not turn one login into a 4 TiB allocation.
 */
#define AUTH_PASSWORD_OPSLIMIT_MAX 8U
#define AUTH_PASSWORD_MEMLIMIT_MAX (256U << 20)

/* Generated passwords: 24 characters from 55 unambiguous ones (no 0 O o 1 l I i), ~138 bits. */
#define AUTH_PASSWORD_GENERATED_LEN 24
#define AUTH_PASSWORD_ALPHABET      "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"

/*
 * Hashes password[0..len) with a fresh random salt. -EINVAL: NULL, shorter than
 * AUTH_PASSWORD_MIN or containing a NUL byte; -E2BIG: longer than AUTH_PASSWORD_MAX; -ENOMEM.
 */
int auth_password_hash(const char *password, size_t len,
                       char ret_hash[static AUTH_PASSWORD_HASH_MAX]);

/*
 * Checks password[0..len) against a stored hash (a NUL-terminated string), in constant time with
 * respect to the password. 0: it matches; -EACCES: it does not, including passwords that could
 * never have been set (longer than AUTH_PASSWORD_MAX, or containing a NUL byte); -EINVAL: the hash
 * is not an argon2id v19 string within the bounds above, or password is NULL; -ENOMEM.
 *
 * The minimum length is not applied here, so that raising it later locks no one out. A caller
 * that finds no such user verifies against a hash of its own anyway, so that the time of a
 * refusal does not tell which user names exist.
 */
int auth_password_verify(const char *hash, const char *password, size_t len);

/* 1: the hash was made with other costs than today's (rehash it at the next login); 0: it was
 * not; -EINVAL: malformed, as for auth_password_verify(). */
int auth_password_needs_rehash(const char *hash);

/*
 * A random password of AUTH_PASSWORD_GENERATED_LEN characters drawn uniformly
 * (randombytes_uniform) from AUTH_PASSWORD_ALPHABET, NUL-terminated: the administrator's password
 * at the node's first start. The caller wipes it (sodium_memzero) when done.
 */
int auth_password_generate(char ret_password[static AUTH_PASSWORD_GENERATED_LEN + 1]);
