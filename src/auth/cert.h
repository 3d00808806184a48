/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Certificates for the node's HTTPS: what `warren cert init` makes (a private CA and a server
 * certificate it signs) and the checks the node runs on the files it is given. GnuTLS stays
 * inside cert.c.
 *
 * Keys are ECDSA P-256; certificates are X.509 v3 signed with SHA-256. The CA is valid for ten
 * years, may sign end-entity certificates only (path length 0); the server certificate for one
 * year, for serverAuth, with SANs DNS:localhost, IP:127.0.0.1, IP:::1 and the extra ones asked
 * for. Validity starts an hour back, so that a client whose clock is a little behind accepts it.
 *
 * Private keys are PKCS#8 PEM without a password, files 0600; certificates 0644.
 */

#include <stdbool.h>
#include <stddef.h>

#define CERT_PEM_MAX     ((size_t) 1 << 20) /* bytes of a certificate or key file read */
#define CERT_SANS_MAX    32                 /* extra SANs */
#define CERT_CA_DAYS     3650
#define CERT_SERVER_DAYS 365

/* The files of a directory made by cert_write_dir(), in the order they are written. */
#define CERT_CA_CERT     "ca.pem"
#define CERT_CA_KEY      "ca.key"
#define CERT_SERVER_CERT "server.pem"
#define CERT_SERVER_KEY  "server.key"
extern const char *const cert_file_names[4];

/* PEM texts, NUL-terminated. */
struct cert_set {
        char *ca_cert, *ca_key;
        char *server_cert, *server_key;
};

/* Wipes the keys and frees everything; cs is zeroed. */
void cert_set_done(struct cert_set *cs);

/* Whether s is a SAN cert_generate() takes: a numeric IPv4/IPv6 address or a DNS name
 * (letters, digits, '-', '.', a leading "*." allowed; at most 253 bytes). */
bool cert_san_valid(const char *s);

/* A new CA and a server certificate signed by it. -EINVAL: a SAN that is not valid; -EIO:
 * GnuTLS failed; -ENOMEM. */
int cert_generate(const char *const *extra_sans, size_t n_sans, struct cert_set *ret);

/*
 * Writes the four files into dir (created 0755 if missing, its parent must exist). Without
 * force, -EEXIST if any of them exists, and nothing is written; with force, existing files are
 * replaced. A symbolic link in place of a file is never followed.
 */
int cert_write_dir(const char *dir, const struct cert_set *cs, bool force);

/*
 * Reads a PEM file, at most CERT_PEM_MAX bytes, NUL-terminated. With secret (a private key),
 * -EPERM if it is not the caller's (effective uid) or if group or others have any permission on
 * it: only the user who reads it may. A key's bytes are wiped on every failure path. -EISDIR /
 * -EINVAL: not a regular file; -EFBIG: too large; -EBADMSG: it holds a NUL byte.
 */
int cert_read_file(const char *path, bool secret, char **ret, size_t *ret_len);
/* Frees what cert_read_file() returned for a key, wiping it first. Accepts NULL. */
void cert_key_free(char *key);

/*
 * Checks a server certificate (the first of cert_pem) against its key: -EBADMSG if the
 * certificate cannot be parsed, -ENOKEY if the key cannot (an encrypted key included),
 * -EKEYREJECTED if they do not belong together, -EKEYEXPIRED if the certificate's validity has
 * ended (or not begun).
 */
int cert_check_pair(const char *cert_pem, const char *key_pem);
