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
#include <gnutls/pkcs12.h>
#include <gnutls/pkcs7.h>
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

/* ---- client certificates ---- */

struct cert_trust {
        gnutls_x509_trust_list_t list;
        char *email_domain; /* NULL: the CN names the user */
};

static void trust_list_freep(gnutls_x509_trust_list_t *p)
{
        if (*p)
                gnutls_x509_trust_list_deinit(*p, 1);
}

bool cert_name_valid(const char *name)
{
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > CERT_CN_MAX || !(name[0] >= 'a' && name[0] <= 'z'))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                      *p == '.' || *p == '-'))
                        return false;
        return true;
}

int cert_generate_client(const char *ca_cert_pem, const char *ca_key_pem, const char *name,
                         unsigned days, char **ret_cert, char **ret_key)
{
        _cleanup_(privkey_freep) gnutls_x509_privkey_t ca_key = NULL, key = NULL;
        _cleanup_(crt_freep) gnutls_x509_crt_t ca = NULL, crt = NULL;
        _cleanup_free_ char *cert_pem = NULL;
        char *key_pem = NULL;
        unsigned char id[KEY_ID_MAX];
        size_t id_len = sizeof(id);
        unsigned is_ca = 0;
        gnutls_datum_t d;
        int g, r;

        if (!ca_cert_pem || !ca_key_pem || !cert_name_valid(name) || days < 1 ||
            days > CERT_CA_DAYS)
                return -EINVAL;
        r = cert_check_pair(ca_cert_pem, ca_key_pem);
        if (r < 0 && r != -EKEYEXPIRED)
                return r;
        if (r == -EKEYEXPIRED)
                return -EKEYREJECTED;
        g = gnutls_x509_crt_init(&ca);
        if (g < 0)
                return errno_from_gnutls(g);
        d = (gnutls_datum_t){(unsigned char *) ca_cert_pem, (unsigned) strlen(ca_cert_pem)};
        if (gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_PEM) < 0)
                return -EBADMSG;
        if (gnutls_x509_crt_get_basic_constraints(ca, NULL, &is_ca, NULL) < 0 || !is_ca)
                return -EKEYREJECTED;
        g = gnutls_x509_privkey_init(&ca_key);
        if (g < 0)
                return errno_from_gnutls(g);
        d = (gnutls_datum_t){(unsigned char *) ca_key_pem, (unsigned) strlen(ca_key_pem)};
        if (gnutls_x509_privkey_import2(ca_key, &d, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN) <
            0)
                return -ENOKEY;

        r = new_key(&key);
        if (r < 0)
                return r;
        g = gnutls_x509_crt_init(&crt);
        if (g < 0)
                return errno_from_gnutls(g);
        r = crt_common(crt, key, name, (time_t) days);
        if (r < 0)
                return r;
        g = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
        if (g >= 0)
                g = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
        if (g >= 0)
                g = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
        if (g >= 0 && gnutls_x509_crt_get_subject_key_id(ca, id, &id_len, NULL) >= 0)
                g = gnutls_x509_crt_set_authority_key_id(crt, id, id_len);
        if (g >= 0)
                g = gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0);
        if (g < 0)
                return errno_from_gnutls(g);
        r = export_crt(crt, &cert_pem);
        if (r >= 0)
                r = export_key(key, &key_pem);
        if (r < 0)
                return r;
        *ret_cert = TAKE_PTR(cert_pem);
        *ret_key = key_pem;
        return 0;
}

int cert_write_client(const char *dir, const char *name, const char *cert_pem, const char *key_pem,
                      bool force)
{
        char pem[CERT_CN_MAX + 8], key[CERT_CN_MAX + 8];
        _cleanup_close_ int dirfd = -EBADF;
        struct stat st;
        int r;

        /* "ca" and "server" would be cert_write_dir()'s files. */
        if (!cert_name_valid(name) || strcmp(name, "ca") == 0 || strcmp(name, "server") == 0 ||
            !cert_pem || !key_pem)
                return -EINVAL;
        (void) snprintf(pem, sizeof(pem), "%s.pem", name);
        (void) snprintf(key, sizeof(key), "%s.key", name);
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        if (!force && (fstatat(dirfd, pem, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT ||
                       fstatat(dirfd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT))
                return -EEXIST;
        /* The key first: a certificate without its key is of no use to anyone. */
        r = write_one(dirfd, key, key_pem, 0600, force);
        if (r >= 0)
                r = write_one(dirfd, pem, cert_pem, 0644, force);
        if (r < 0)
                (void) unlinkat(dirfd, key, 0);
        return r;
}

/* The certificates of a PEM text, owned by the caller (each deinit'ed, the array gnutls_free'd). */
static int import_crts(const char *pem, gnutls_x509_crt_t **ret, unsigned *ret_n)
{
        gnutls_datum_t d = {(unsigned char *) pem, (unsigned) strlen(pem)};
        int g;

        if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
                return -ENOENT;
        g = gnutls_x509_crt_list_import2(ret, ret_n, &d, GNUTLS_X509_FMT_PEM, 0);
        if (g == GNUTLS_E_MEMORY_ERROR)
                return -ENOMEM;
        if (g < 0)
                return -EBADMSG;
        if (*ret_n == 0) {
                gnutls_free(*ret);
                return -ENOENT;
        }
        return 0;
}

int cert_trust_new(const char *ca_pem, const char *crl_pem, struct cert_trust **ret)
{
        _cleanup_(trust_list_freep) gnutls_x509_trust_list_t list = NULL;
        gnutls_x509_crt_t *cas = NULL;
        gnutls_x509_crl_t *crls = NULL;
        unsigned n_cas = 0, n_crls = 0, added = 0;
        struct cert_trust *t;
        int g, r = 0;

        if (!ca_pem || !ret)
                return -EINVAL;
        r = import_crts(ca_pem, &cas, &n_cas);
        if (r < 0)
                return r;
        if (crl_pem) {
                gnutls_datum_t d = {(unsigned char *) crl_pem, (unsigned) strlen(crl_pem)};

                if (!strstr(crl_pem, "-----BEGIN X509 CRL-----"))
                        r = -EBADMSG;
                else {
                        g = gnutls_x509_crl_list_import2(&crls, &n_crls, &d, GNUTLS_X509_FMT_PEM,
                                                         0);
                        r = g == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : g < 0 ? -EBADMSG : 0;
                }
        }
        /* Every CRL must come from one of the CAs: a CRL nobody can check protects nothing. */
        for (unsigned i = 0; r >= 0 && i < n_crls; i++) {
                unsigned status = 0;

                g = gnutls_x509_crl_verify(crls[i], cas, n_cas, 0, &status);
                if (g < 0 || status != 0)
                        r = -EKEYREJECTED;
        }
        if (r >= 0) {
                g = gnutls_x509_trust_list_init(&list, 0);
                r = errno_from_gnutls(g);
        }
        if (r >= 0) {
                /* The list takes the certificates and the CRLs themselves, not the arrays. */
                g = gnutls_x509_trust_list_add_cas(list, cas, n_cas, 0);
                if (g < 0)
                        r = errno_from_gnutls(g);
                else
                        added = n_cas;
        }
        if (r >= 0 && n_crls > 0) {
                g = gnutls_x509_trust_list_add_crls(list, crls, n_crls, 0, 0);
                r = g < 0 ? errno_from_gnutls(g) : 0;
                n_crls = 0;
        }
        for (unsigned i = added; i < n_cas; i++)
                gnutls_x509_crt_deinit(cas[i]);
        for (unsigned i = 0; i < n_crls; i++)
                gnutls_x509_crl_deinit(crls[i]);
        gnutls_free(cas);
        gnutls_free(crls);
        if (r < 0)
                return r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->list = TAKE_PTR(list);
        *ret = t;
        return 0;
}

struct cert_trust *cert_trust_free(struct cert_trust *t)
{
        if (!t)
                return NULL;
        gnutls_x509_trust_list_deinit(t->list, 1);
        free(t->email_domain);
        free(t);
        return NULL;
}

bool cert_domain_valid(const char *domain)
{
        size_t n = domain ? strlen(domain) : 0;

        if (n == 0 || n > 253 || domain[0] == '.' || domain[0] == '-' || domain[n - 1] == '.')
                return false;
        for (const char *p = domain; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      (*p == '.' && p[1] != '.')))
                        return false;
        return true;
}

int cert_trust_map_email(struct cert_trust *t, const char *domain)
{
        char *d;

        if (!t || !cert_domain_valid(domain))
                return -EINVAL;
        d = strdup(domain);
        if (!d)
                return -ENOMEM;
        free(t->email_domain);
        t->email_domain = d;
        return 0;
}

static bool has_client_purpose(gnutls_x509_crt_t crt)
{
        unsigned usage = 0;
        int g;

        g = gnutls_x509_crt_get_key_usage(crt, &usage, NULL);
        if (g >= 0 && !(usage & GNUTLS_KEY_DIGITAL_SIGNATURE))
                return false;
        if (g < 0 && g != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                return false;
        for (unsigned i = 0;; i++) {
                char oid[128];
                size_t len = sizeof(oid);

                g = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len, NULL);
                if (g < 0)
                        return false; /* the end of the list, or no EKU at all */
                if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
                        return true;
        }
}

/*
 * The user an email SAN names: the local part of the one rfc822Name in domain (compared without
 * regard to ASCII case), which must be a user name as it is (lower case). None, or two: -ENODATA.
 */
static int email_name(gnutls_x509_crt_t crt, const char *domain, char name[static CERT_CN_MAX + 1])
{
        bool found = false;
        int g;

        for (unsigned i = 0; i < 64; i++) {
                char san[320];
                size_t len = sizeof(san) - 1;
                const char *at;

                g = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &len, NULL);
                if (g == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                if (g == GNUTLS_E_SHORT_MEMORY_BUFFER)
                        continue; /* longer than any address we would take */
                if (g < 0)
                        return -EBADMSG;
                if (g != GNUTLS_SAN_RFC822NAME || len != strlen(san))
                        continue;
                at = strrchr(san, '@');
                if (!at || strcasecmp(at + 1, domain) != 0)
                        continue;
                if (found) /* two addresses in the domain: which one is not for us to guess */
                        return -ENODATA;
                if ((size_t) (at - san) > CERT_CN_MAX)
                        return -ENODATA;
                (void) snprintf(name, CERT_CN_MAX + 1, "%.*s", (int) (at - san), san);
                if (!cert_name_valid(name))
                        return -ENODATA;
                found = true;
        }
        return found ? 0 : -ENODATA;
}

static int peer_names(gnutls_x509_crt_t crt, const char *email_domain, struct cert_peer *p)
{
        unsigned char serial[CERT_SERIAL_MAX / 2];
        size_t len = sizeof(p->cn), serial_len = sizeof(serial);
        char extra[8];
        size_t extra_len = sizeof(extra);
        int g;

        if (email_domain) {
                g = email_name(crt, email_domain, p->cn);
                if (g < 0)
                        return g;
        } else {
                g = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, p->cn,
                                                  &len);
                if (g < 0 || len != strlen(p->cn) || !cert_name_valid(p->cn))
                        return -ENODATA;
                /* Two CNs: which one is the user is not for us to guess. */
                g = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, extra,
                                                  &extra_len);
                if (g != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        return -ENODATA;
        }
        g = gnutls_x509_crt_get_serial(crt, serial, &serial_len);
        if (g < 0)
                return -EBADMSG;
        for (size_t i = 0; i < serial_len; i++)
                (void) snprintf(p->serial + 2 * i, 3, "%02x", serial[i]);
        p->serial[2 * serial_len] = '\0';
        return 0;
}

int cert_trust_verify(const struct cert_trust *t, const void *const *ders, const size_t *lens,
                      size_t n, time_t now, struct cert_peer *ret)
{
        gnutls_x509_crt_t crts[CERT_CHAIN_MAX] = {};
        struct cert_peer peer = {};
        unsigned status = 0;
        size_t n_crts = 0;
        int g, r = 0;

        if (!t || n == 0)
                return -EBADMSG;
        if (n > CERT_CHAIN_MAX)
                return -E2BIG;
        for (; n_crts < n; n_crts++) {
                gnutls_datum_t d = {(unsigned char *) ders[n_crts], (unsigned) lens[n_crts]};

                g = gnutls_x509_crt_init(&crts[n_crts]);
                if (g < 0) {
                        r = errno_from_gnutls(g);
                        break;
                }
                if (lens[n_crts] > CERT_PEM_MAX ||
                    gnutls_x509_crt_import(crts[n_crts], &d, GNUTLS_X509_FMT_DER) < 0) {
                        n_crts++;
                        r = -EBADMSG;
                        break;
                }
        }
        /* The times are checked here, against now, rather than by GnuTLS against its clock. */
        for (size_t i = 0; r >= 0 && i < n_crts; i++)
                if (gnutls_x509_crt_get_activation_time(crts[i]) > now ||
                    gnutls_x509_crt_get_expiration_time(crts[i]) < now)
                        r = -EKEYEXPIRED;
        if (r >= 0) {
                g = gnutls_x509_trust_list_verify_crt2(
                        t->list, crts, (unsigned) n_crts, NULL, 0,
                        GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
                                GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                        &status, NULL);
                if (g < 0)
                        r = errno_from_gnutls(g);
                else if (status & GNUTLS_CERT_REVOKED)
                        r = -EKEYREVOKED;
                else if (status != 0)
                        r = -EKEYREJECTED;
        }
        if (r >= 0 && !has_client_purpose(crts[0]))
                r = -EPERM;
        if (r >= 0)
                r = peer_names(crts[0], t->email_domain, &peer);
        for (size_t i = 0; i < n_crts; i++)
                gnutls_x509_crt_deinit(crts[i]);
        if (r < 0)
                return r;
        *ret = peer;
        return 0;
}

const char *cert_verify_strerror(int r)
{
        switch (r) {
        case 0:
                return "is valid";
        case -EBADMSG:
                return "cannot be parsed";
        case -E2BIG:
                return "comes with too long a chain";
        case -EKEYEXPIRED:
                return "has expired or is not valid yet";
        case -EKEYREVOKED:
                return "has been revoked";
        case -EKEYREJECTED:
                return "is not signed by a trusted CA";
        case -EPERM:
                return "is not for client authentication (extended key usage clientAuth)";
        case -ENODATA:
                return "names no user (by its common name, or its email address in the "
                       "node's domain)";
        default:
                return "cannot be verified";
        }
}

/* ---- confidential content ---- */

#define PEM_BEGIN     "-----BEGIN "
#define PEM_BEGIN_LEN (sizeof(PEM_BEGIN) - 1)
#define PEM_LABEL_MAX 48
/* A marker and its label fit in this many bytes; the scan keeps that many minus one between
 * pieces, so a marker cut by a piece boundary is seen whole. */
#define PEM_WINDOW (PEM_BEGIN_LEN + PEM_LABEL_MAX + 5)

struct cert_scan {
        char carry[PEM_WINDOW];
        size_t n_carry;
        bool found;
        char *head; /* the content while it may be DER of at most CERT_SCAN_DER_MAX bytes */
        size_t head_len;
        bool not_der;
        uint64_t total;
};

static bool pem_label_confidential(const char *label, size_t len)
{
        static const char *const inside[] = {"CERTIFICATE", "PRIVATE KEY"};
        static const char *const exact[] = {"PKCS12", "PKCS7"};

        for (size_t i = 0; i < ELEMENTSOF(inside); i++)
                if (memmem(label, len, inside[i], strlen(inside[i])))
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(exact); i++)
                if (len == strlen(exact[i]) && memcmp(label, exact[i], len) == 0)
                        return true;
        return false;
}

/* Looks for confidential PEM armour in buf[0..len). */
static bool pem_scan(const char *buf, size_t len)
{
        const char *p = buf, *end = buf + len;

        while ((p = memmem(p, (size_t) (end - p), PEM_BEGIN, PEM_BEGIN_LEN))) {
                const char *label = p + PEM_BEGIN_LEN;
                size_t room = (size_t) (end - label);
                const char *dash;

                if (room > PEM_LABEL_MAX + 5)
                        room = PEM_LABEL_MAX + 5;
                dash = memmem(label, room, "-----", 5);
                if (dash && pem_label_confidential(label, (size_t) (dash - label)))
                        return true;
                p = label;
        }
        return false;
}

int cert_scan_new(struct cert_scan **ret)
{
        struct cert_scan *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

struct cert_scan *cert_scan_free(struct cert_scan *s)
{
        if (!s)
                return NULL;
        if (s->head) {
                explicit_bzero(s->head, s->head_len);
                free(s->head);
        }
        free(s);
        return NULL;
}

int cert_scan_feed(struct cert_scan *s, const void *data, size_t len)
{
        const char *d = data;
        char edge[2 * PEM_WINDOW];
        size_t k;

        if (len == 0)
                return 0;
        /* DER: only short content that starts a SEQUENCE is kept, to be parsed at the end */
        if (!s->not_der) {
                if ((s->total == 0 && (unsigned char) d[0] != 0x30) ||
                    len > CERT_SCAN_DER_MAX - s->head_len) {
                        s->not_der = true;
                        if (s->head) {
                                explicit_bzero(s->head, s->head_len);
                                free(s->head);
                        }
                        s->head = NULL;
                        s->head_len = 0;
                } else {
                        char *h = realloc(s->head, s->head_len + len);

                        if (!h)
                                return -ENOMEM;
                        memcpy(h + s->head_len, d, len);
                        s->head = h;
                        s->head_len += len;
                }
        }
        s->total += len;
        if (s->found)
                return 0;

        /* the boundary: what was kept of the previous piece and the start of this one */
        k = len < PEM_WINDOW ? len : PEM_WINDOW;
        memcpy(edge, s->carry, s->n_carry);
        memcpy(edge + s->n_carry, d, k);
        if (pem_scan(edge, s->n_carry + k) || pem_scan(d, len)) {
                s->found = true;
                return 0;
        }
        /* keep the last PEM_WINDOW - 1 bytes of everything so far */
        if (len >= PEM_WINDOW - 1) {
                memcpy(s->carry, d + len - (PEM_WINDOW - 1), PEM_WINDOW - 1);
                s->n_carry = PEM_WINDOW - 1;
        } else {
                size_t keep = s->n_carry + len > PEM_WINDOW - 1 ? PEM_WINDOW - 1 - len : s->n_carry;

                memmove(s->carry, s->carry + s->n_carry - keep, keep);
                memcpy(s->carry + keep, d, len);
                s->n_carry = keep + len;
        }
        return 0;
}

static bool der_confidential(const void *data, size_t len)
{
        const gnutls_datum_t d = {.data = (unsigned char *) data, .size = (unsigned) len};
        bool found = false;

        {
                gnutls_x509_crt_t crt = NULL;

                if (gnutls_x509_crt_init(&crt) >= 0) {
                        found = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) >= 0;
                        gnutls_x509_crt_deinit(crt);
                }
        }
        if (!found) {
                gnutls_x509_crq_t crq = NULL;

                if (gnutls_x509_crq_init(&crq) >= 0) {
                        found = gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_DER) >= 0;
                        gnutls_x509_crq_deinit(crq);
                }
        }
        if (!found) {
                gnutls_x509_privkey_t key = NULL;

                if (gnutls_x509_privkey_init(&key) >= 0) {
                        found = gnutls_x509_privkey_import(key, &d, GNUTLS_X509_FMT_DER) >= 0 ||
                                gnutls_x509_privkey_import_pkcs8(key, &d, GNUTLS_X509_FMT_DER, NULL,
                                                                 GNUTLS_PKCS_PLAIN) >= 0;
                        gnutls_x509_privkey_deinit(key);
                }
        }
        if (!found) {
                unsigned schema = 0, cipher = 0, iter = 0, salt_size = 0;
                char *oid = NULL;

                /* an encrypted PKCS#8 key: its structure says so without the password */
                found = gnutls_pkcs8_info(&d, GNUTLS_X509_FMT_DER, &schema, &cipher, NULL,
                                          &salt_size, &iter, &oid) >= 0 ||
                        oid;
                gnutls_free(oid);
        }
        if (!found) {
                gnutls_pkcs12_t p12 = NULL;

                if (gnutls_pkcs12_init(&p12) >= 0) {
                        found = gnutls_pkcs12_import(p12, &d, GNUTLS_X509_FMT_DER, 0) >= 0;
                        gnutls_pkcs12_deinit(p12);
                }
        }
        if (!found) {
                gnutls_pkcs7_t p7 = NULL;

                if (gnutls_pkcs7_init(&p7) >= 0) {
                        found = gnutls_pkcs7_import(p7, &d, GNUTLS_X509_FMT_DER) >= 0;
                        gnutls_pkcs7_deinit(p7);
                }
        }
        return found;
}

bool cert_scan_confidential(struct cert_scan *s)
{
        if (s->found)
                return true;
        if (!s->not_der && s->head_len > 0 && der_confidential(s->head, s->head_len))
                s->found = true;
        return s->found;
}

bool cert_content_confidential(const void *data, size_t len)
{
        _cleanup_(cert_scan_freep) struct cert_scan *s = NULL;

        /* out of memory: the safe answer */
        if (cert_scan_new(&s) < 0 || cert_scan_feed(s, data, len) < 0)
                return true;
        return cert_scan_confidential(s);
}
