/* SPDX-License-Identifier: MIT */
/*
 * Making and checking certificates with GnuTLS's X.509 API (see cert.h).
 *
 * GnuTLS reports with its own negative codes; they become errno here (-EIO for anything that is
 * not a lack of memory or bad input). Every GnuTLS object lives in one function and is released
 * on every path through a cleanup attribute; exported keys pass through gnutls_datum_t buffers
 * that are wiped before they are freed.
 */
#include "auth/cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define SERIAL_BYTES 16
#define KEY_ID_MAX   64
#define DAY_S        ((time_t) 24 * 3600)
#define BACKDATE_S   ((time_t) 3600)

const char *const cert_file_names[4] = {CERT_CA_CERT, CERT_CA_KEY, CERT_SERVER_CERT,
                                        CERT_SERVER_KEY};

static void crt_freep(gnutls_x509_crt_t *p)
{
        if (*p)
                gnutls_x509_crt_deinit(*p);
}

static void privkey_freep(gnutls_x509_privkey_t *p)
{
        if (*p)
                gnutls_x509_privkey_deinit(*p);
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

static int errno_from_gnutls(int g)
{
        if (g >= 0)
                return 0;
        log_debug("cert: GnuTLS: %s", gnutls_strerror(g));
        return g == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EIO;
}

static void key_wipe_free(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

void cert_key_free(char *key)
{
        key_wipe_free(key);
}

void cert_set_done(struct cert_set *cs)
{
        free(cs->ca_cert);
        free(cs->server_cert);
        key_wipe_free(cs->ca_key);
        key_wipe_free(cs->server_key);
        *cs = (struct cert_set){0};
}

bool cert_san_valid(const char *s)
{
        unsigned char buf[sizeof(struct in6_addr)];
        size_t n = strlen(s), label = 0;

        if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
                return true;
        if (n == 0 || n > 253)
                return false;
        if (strncmp(s, "*.", 2) == 0)
                s += 2;
        for (const char *p = s;; p++) {
                char c = *p;

                if (c == '.' || c == '\0') {
                        /* Labels are 1..63 bytes and do not start or end with '-'. */
                        if (label == 0 || label > 63 || p[-1] == '-' || p[-label] == '-')
                                return false;
                        if (c == '\0')
                                return true;
                        label = 0;
                        continue;
                }
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-'))
                        return false;
                label++;
        }
}

static int new_key(gnutls_x509_privkey_t *ret)
{
        gnutls_x509_privkey_t key = NULL;
        int g;

        g = gnutls_x509_privkey_init(&key);
        if (g < 0)
                return errno_from_gnutls(g);
        g = gnutls_x509_privkey_generate2(
                key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0);
        if (g < 0) {
                gnutls_x509_privkey_deinit(key);
                return errno_from_gnutls(g);
        }
        *ret = key;
        return 0;
}

/* What both certificates share: version, a random positive serial, validity, subject, key. */
static int crt_common(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn, time_t days)
{
        unsigned char serial[SERIAL_BYTES], id[KEY_ID_MAX];
        size_t id_len = sizeof(id);
        time_t now = time(NULL);
        int g;

        g = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
        if (g < 0)
                return errno_from_gnutls(g);
        serial[0] &= 0x7f; /* a positive INTEGER */
        serial[0] |= 0x01; /* without a leading zero byte */

        g = gnutls_x509_crt_set_version(crt, 3);
        if (g >= 0)
                g = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
        if (g >= 0)
                g = gnutls_x509_crt_set_activation_time(crt, now - BACKDATE_S);
        if (g >= 0)
                g = gnutls_x509_crt_set_expiration_time(crt, now + days * DAY_S);
        if (g >= 0)
                g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0,
                                                  "Warren", (unsigned) strlen("Warren"));
        if (g >= 0)
                g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                  (unsigned) strlen(cn));
        if (g >= 0)
                g = gnutls_x509_crt_set_key(crt, key);
        if (g >= 0)
                g = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &id_len);
        if (g >= 0)
                g = gnutls_x509_crt_set_subject_key_id(crt, id, id_len);
        return errno_from_gnutls(g);
}

static int export_crt(gnutls_x509_crt_t crt, char **ret)
{
        _cleanup_(datum_freep) gnutls_datum_t d = {0};
        char *s;
        int g;

        g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d);
        if (g < 0)
                return errno_from_gnutls(g);
        s = strndup((const char *) d.data, d.size);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int export_key(gnutls_x509_privkey_t key, char **ret)
{
        _cleanup_(datum_freep) gnutls_datum_t d = {0};
        char *s;
        int g;

        g = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
                                              &d);
        if (g < 0)
                return errno_from_gnutls(g);
        s = strndup((const char *) d.data, d.size);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int add_san(gnutls_x509_crt_t crt, const char *s)
{
        unsigned char buf[sizeof(struct in6_addr)];
        int g;

        if (inet_pton(AF_INET, s, buf) == 1)
                g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, buf, 4,
                                                         GNUTLS_FSAN_APPEND);
        else if (inet_pton(AF_INET6, s, buf) == 1)
                g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, buf, 16,
                                                         GNUTLS_FSAN_APPEND);
        else if (cert_san_valid(s))
                g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, s,
                                                         (unsigned) strlen(s), GNUTLS_FSAN_APPEND);
        else
                return -EINVAL;
        return errno_from_gnutls(g);
}

int cert_generate(const char *const *extra_sans, size_t n_sans, struct cert_set *ret)
{
        static const char *const default_sans[] = {"localhost", "127.0.0.1", "::1"};
        _cleanup_(privkey_freep) gnutls_x509_privkey_t ca_key = NULL, server_key = NULL;
        _cleanup_(crt_freep) gnutls_x509_crt_t ca = NULL, server = NULL;
        _cleanup_(cert_set_done) struct cert_set cs = {0};
        unsigned char id[KEY_ID_MAX];
        size_t id_len = sizeof(id);
        int g, r;

        if (n_sans > CERT_SANS_MAX || (n_sans > 0 && !extra_sans))
                return -EINVAL;
        for (size_t i = 0; i < n_sans; i++)
                if (!extra_sans[i] || !cert_san_valid(extra_sans[i]))
                        return -EINVAL;

        /* The CA: signs end-entity certificates and CRLs, nothing else. */
        r = new_key(&ca_key);
        if (r < 0)
                return r;
        g = gnutls_x509_crt_init(&ca);
        if (g < 0)
                return errno_from_gnutls(g);
        r = crt_common(ca, ca_key, "Warren CA", CERT_CA_DAYS);
        if (r < 0)
                return r;
        g = gnutls_x509_crt_set_basic_constraints(ca, 1, 0);
        if (g >= 0)
                g = gnutls_x509_crt_set_key_usage(ca,
                                                  GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
        if (g >= 0)
                g = gnutls_x509_crt_sign2(ca, ca, ca_key, GNUTLS_DIG_SHA256, 0);
        if (g >= 0)
                g = gnutls_x509_crt_get_subject_key_id(ca, id, &id_len, NULL);
        if (g < 0)
                return errno_from_gnutls(g);

        /* The server: a TLS server's key, for the names it is reached by. */
        r = new_key(&server_key);
        if (r < 0)
                return r;
        g = gnutls_x509_crt_init(&server);
        if (g < 0)
                return errno_from_gnutls(g);
        r = crt_common(server, server_key, "localhost", CERT_SERVER_DAYS);
        if (r < 0)
                return r;
        g = gnutls_x509_crt_set_basic_constraints(server, 0, -1);
        if (g >= 0)
                g = gnutls_x509_crt_set_key_usage(server, GNUTLS_KEY_DIGITAL_SIGNATURE);
        if (g >= 0)
                g = gnutls_x509_crt_set_key_purpose_oid(server, GNUTLS_KP_TLS_WWW_SERVER, 0);
        if (g >= 0)
                g = gnutls_x509_crt_set_authority_key_id(server, id, id_len);
        if (g < 0)
                return errno_from_gnutls(g);
        for (size_t i = 0; i < ELEMENTSOF(default_sans); i++) {
                r = add_san(server, default_sans[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_sans; i++) {
                bool dup = false;

                for (size_t k = 0; k < ELEMENTSOF(default_sans); k++)
                        dup = dup || strcasecmp(extra_sans[i], default_sans[k]) == 0;
                for (size_t k = 0; k < i; k++)
                        dup = dup || strcasecmp(extra_sans[i], extra_sans[k]) == 0;
                if (dup)
                        continue;
                r = add_san(server, extra_sans[i]);
                if (r < 0)
                        return r;
        }
        g = gnutls_x509_crt_sign2(server, ca, ca_key, GNUTLS_DIG_SHA256, 0);
        if (g < 0)
                return errno_from_gnutls(g);

        r = export_crt(ca, &cs.ca_cert);
        if (r >= 0)
                r = export_key(ca_key, &cs.ca_key);
        if (r >= 0)
                r = export_crt(server, &cs.server_cert);
        if (r >= 0)
                r = export_key(server_key, &cs.server_key);
        if (r < 0)
                return r;
        *ret = cs;
        cs = (struct cert_set){0};
        return 0;
}

/* One file of the set, exactly mode (whatever the umask), never through a symbolic link. */
static int write_one(int dirfd, const char *name, const char *text, mode_t mode, bool force)
{
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (force && unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0)
                return -errno;
        r = write_full(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dirfd, name, 0);
                return r;
        }
        return 0;
}

int cert_write_dir(const char *dir, const struct cert_set *cs, bool force)
{
        const char *texts[4] = {cs->ca_cert, cs->ca_key, cs->server_cert, cs->server_key};
        const mode_t modes[4] = {0644, 0600, 0644, 0600};
        _cleanup_close_ int dirfd = -EBADF;
        struct stat st;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                if (!texts[i])
                        return -EINVAL;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        if (!force)
                for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                        if (fstatat(dirfd, cert_file_names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 ||
                            errno != ENOENT)
                                return -EEXIST;
        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                r = write_one(dirfd, cert_file_names[i], texts[i], modes[i], force);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cert_read_file(const char *path, bool secret, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        char *buf;
        ssize_t n;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (secret && (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO))))
                return -EPERM;
        if ((uint64_t) st.st_size > CERT_PEM_MAX)
                return -EFBIG;
        buf = malloc(CERT_PEM_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = read_full(fd, buf, CERT_PEM_MAX + 1);
        if (n < 0 || (size_t) n > CERT_PEM_MAX || memchr(buf, '\0', (size_t) n)) {
                explicit_bzero(buf, CERT_PEM_MAX + 1);
                free(buf);
                return n < 0 ? (int) n : (size_t) n > CERT_PEM_MAX ? -EFBIG : -EBADMSG;
        }
        buf[n] = '\0';
        *ret = buf;
        if (ret_len)
                *ret_len = (size_t) n;
        return 0;
}

int cert_check_pair(const char *cert_pem, const char *key_pem)
{
        _cleanup_(crt_freep) gnutls_x509_crt_t crt = NULL;
        _cleanup_(privkey_freep) gnutls_x509_privkey_t key = NULL;
        unsigned char crt_id[KEY_ID_MAX], key_id[KEY_ID_MAX];
        size_t crt_id_len = sizeof(crt_id), key_id_len = sizeof(key_id);
        gnutls_datum_t d;
        time_t now = time(NULL);
        int g;

        if (!cert_pem || !key_pem)
                return -EINVAL;
        g = gnutls_x509_crt_init(&crt);
        if (g < 0)
                return errno_from_gnutls(g);
        d = (gnutls_datum_t){(unsigned char *) cert_pem, (unsigned) strlen(cert_pem)};
        if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) < 0)
                return -EBADMSG;
        g = gnutls_x509_privkey_init(&key);
        if (g < 0)
                return errno_from_gnutls(g);
        d = (gnutls_datum_t){(unsigned char *) key_pem, (unsigned) strlen(key_pem)};
        /* No password: an encrypted key fails here, as the node has no way to ask for one. */
        if (gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN) < 0)
                return -ENOKEY;
        if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, crt_id, &crt_id_len) < 0 ||
            gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, key_id, &key_id_len) < 0)
                return -EKEYREJECTED;
        if (crt_id_len != key_id_len || memcmp(crt_id, key_id, crt_id_len) != 0)
                return -EKEYREJECTED;
        if (gnutls_x509_crt_get_activation_time(crt) > now ||
            gnutls_x509_crt_get_expiration_time(crt) < now)
                return -EKEYEXPIRED;
        return 0;
}
