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
#include <stdint.h>
#include <time.h>

#include "common/cleanup.h"

#define CERT_PEM_MAX     ((size_t) 1 << 20) /* bytes of a certificate or key file read */
#define CERT_SANS_MAX    32                 /* extra SANs */
#define CERT_CA_DAYS     3650
#define CERT_SERVER_DAYS 365
#define CERT_CLIENT_DAYS 365
#define CERT_CN_MAX      64 /* bytes of a client certificate's common name (a user name) */
#define CERT_SERIAL_MAX  40 /* hex digits of a serial number (20 bytes, RFC 5280) */
#define CERT_CHAIN_MAX   8  /* certificates a client may present */

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

/* ---- client certificates (mutual TLS) ---- */

/* A user name as the store has them: 1..CERT_CN_MAX bytes of [a-z0-9_.-], starting with a
 * letter (store_name_valid()'s rule). */
bool cert_name_valid(const char *name);

/*
 * A client certificate for the user name (the subject's CN, cert_name_valid()) signed by the CA
 * given as PEM: ECDSA P-256, keyUsage digitalSignature, extendedKeyUsage clientAuth, valid for
 * days (1..CERT_CA_DAYS) from an hour ago. *ret_cert and *ret_key are PEM (free the key with
 * cert_key_free()). -EINVAL: a bad name or days; -EBADMSG: the CA certificate cannot be parsed;
 * -ENOKEY: nor its key; -EKEYREJECTED: the key is not the certificate's, or the certificate is
 * not a CA; -EIO, -ENOMEM.
 */
int cert_generate_client(const char *ca_cert_pem, const char *ca_key_pem, const char *name,
                         unsigned days, char **ret_cert, char **ret_key);

/*
 * Writes DIR/NAME.pem (0644) and DIR/NAME.key (0600), dir must exist. Without force, -EEXIST if
 * either exists and nothing is written; a symbolic link is never followed. -EINVAL: a name that
 * is not cert_name_valid(), or "ca" or "server" (the files of cert_write_dir()).
 */
int cert_write_client(const char *dir, const char *name, const char *cert_pem, const char *key_pem,
                      bool force);

/*
 * The CAs a node trusts to sign client certificates, and the CRLs that revoke some of them.
 * Immutable once made: cert_trust_verify() may run in many threads at once.
 */
struct cert_trust;

/*
 * ca_pem: one or more PEM certificates; crl_pem (may be NULL): one or more PEM CRLs, each of
 * which must be signed by one of those CAs. -ENOENT: no certificate in ca_pem; -EBADMSG: a
 * certificate or a CRL that cannot be parsed; -EKEYREJECTED: a CRL that no CA of the list
 * signed; -ENOMEM, -EIO.
 */
int cert_trust_new(const char *ca_pem, const char *crl_pem, struct cert_trust **ret);
struct cert_trust *cert_trust_free(struct cert_trust *t);

/* A DNS domain as --tls-client-email-domain takes it: lower case letters, digits, '-', '.'. */
bool cert_domain_valid(const char *domain);

/*
 * Before the trust list is shared: the user a certificate names is no longer its CN but the
 * local part of its one rfc822Name SAN in domain ("alice@example.org" names alice), for CAs that
 * put a person's full name in the CN. -EINVAL: not cert_domain_valid().
 */
int cert_trust_map_email(struct cert_trust *t, const char *domain);

/* Who a verified client certificate names. */
struct cert_peer {
        char cn[CERT_CN_MAX + 1];         /* the user name: the CN, or the email SAN's local part */
        char serial[CERT_SERIAL_MAX + 1]; /* lower-case hex */
};

/*
 * Verifies the chain a client presented (DER, its own certificate first, then any intermediate
 * CAs) at time now against the trust list: the signatures up to a trusted CA, the validity of
 * every certificate of the chain, revocation by the CRLs, and the client's own certificate's
 * purpose (an extendedKeyUsage with clientAuth is required; a keyUsage, if present, must allow
 * digitalSignature). Returns 0 and fills *ret, or:
 *   -EBADMSG       a certificate cannot be parsed (or n is 0)
 *   -E2BIG         more than CERT_CHAIN_MAX certificates
 *   -EKEYEXPIRED   a certificate of the chain has expired or is not valid yet
 *   -EKEYREVOKED   revoked by a CRL
 *   -EKEYREJECTED  not signed by a trusted CA (or a broken signature, a forbidden chain)
 *   -EPERM         not a certificate for client authentication (EKU or key usage)
 *   -ENODATA       no common name, or more than one, or one that is not a valid name; with
 *                  cert_trust_map_email(), no email SAN in the domain, or two, or one whose
 *                  local part is not a valid name
 */
int cert_trust_verify(const struct cert_trust *t, const void *const *ders, const size_t *lens,
                      size_t n, time_t now, struct cert_peer *ret);
/* Why cert_trust_verify() refused, for a person: "has expired or is not valid yet", ... */
const char *cert_verify_strerror(int r);

/* ---- confidential content (data objects) ---- */

/*
 * Whether a byte string is, or carries, an X.509 certificate, a private key, a certificate
 * request or a PKCS#12/PKCS#7 bundle: content the node keeps private for good. Fed piece by
 * piece (an upload), it looks for
 *   - PEM armour anywhere in the content: "-----BEGIN " and a label containing "CERTIFICATE"
 *     or "PRIVATE KEY" (RSA, EC, DSA, ENCRYPTED, OPENSSH, ...), or "PKCS12", "PKCS7", then
 *     "-----" (PUBLIC KEY and X509 CRL are not secret, and not matched);
 *   - DER: content of at most CERT_SCAN_DER_MAX bytes that starts a SEQUENCE and that GnuTLS
 *     imports as a certificate, a certificate request, a private key (PKCS#1, SEC1, PKCS#8,
 *     encrypted PKCS#8), a PKCS#12 or a PKCS#7 structure.
 * Compressed or encrypted containers (a .tar.gz holding a key) are not looked into.
 */
#define CERT_SCAN_DER_MAX ((size_t) 256 << 10)

struct cert_scan;

int cert_scan_new(struct cert_scan **ret);
/* -ENOMEM only. */
int cert_scan_feed(struct cert_scan *s, const void *data, size_t len);
/* After the last piece: true if the content is confidential. */
bool cert_scan_confidential(struct cert_scan *s);
struct cert_scan *cert_scan_free(struct cert_scan *s);
DEFINE_FREE_FUNC(struct cert_scan *, cert_scan_free)
/* The whole content at once. */
bool cert_content_confidential(const void *data, size_t len);
