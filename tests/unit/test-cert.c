/* SPDX-License-Identifier: MIT */
/*
 * The cert module: what cert_generate() makes is parsed back with GnuTLS and checked field by
 * field, and the server certificate's chain is verified against the CA (and refused against
 * another one); the files cert_write_dir() writes, their modes and the refusal to overwrite; the
 * checks the node runs on its files. Client certificates: what cert_generate_client() makes, and
 * cert_trust_verify() accepting it and refusing, each for its reason, a certificate of another CA,
 * an expired one, a revoked one (a CRL made here with GnuTLS), a server's, garbage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "auth/cert.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "unit.h"

static gnutls_x509_crt_t parse_crt(const char *pem)
{
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t d = {(unsigned char *) pem, (unsigned) strlen(pem)};

        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
        return crt;
}

static gnutls_x509_privkey_t parse_key(const char *pem)
{
        gnutls_x509_privkey_t key = NULL;
        gnutls_datum_t d = {(unsigned char *) pem, (unsigned) strlen(pem)};

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(gnutls_x509_privkey_import(key, &d, GNUTLS_X509_FMT_PEM), 0);
        return key;
}

/* 0 if crt verifies against ca alone, else the GnuTLS verification status. */
static unsigned verify(gnutls_x509_crt_t crt, gnutls_x509_crt_t ca)
{
        gnutls_x509_trust_list_t tl = NULL;
        gnutls_x509_crt_t cas[1];
        gnutls_datum_t d = {0};
        unsigned status = 0;

        /* The list takes the CA it is given: hand it a copy. */
        assert_int_equal(gnutls_x509_crt_export2(ca, GNUTLS_X509_FMT_DER, &d), 0);
        assert_int_equal(gnutls_x509_crt_init(&cas[0]), 0);
        assert_int_equal(gnutls_x509_crt_import(cas[0], &d, GNUTLS_X509_FMT_DER), 0);
        gnutls_free(d.data);
        assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
        assert_int_equal(gnutls_x509_trust_list_add_cas(tl, cas, 1, 0), 1);
        assert_int_equal(gnutls_x509_trust_list_verify_crt(tl, &crt, 1, 0, &status, NULL), 0);
        gnutls_x509_trust_list_deinit(tl, 1);
        return status;
}

static void test_generate_and_verify(void **state)
{
        _cleanup_(cert_set_done) struct cert_set cs = {0}, other = {0};
        const char *sans[] = {"node.example.org", "10.1.2.3", "fd00::7", "localhost"};
        gnutls_x509_crt_t ca, server, other_ca;
        gnutls_x509_privkey_t ca_key, server_key;
        unsigned critical = 0, ca_flag = 0, usage = 0, status = 0;
        char buf[256];
        size_t size;
        time_t now = time(NULL);
        int found_dns = 0, found_ip = 0;

        assert_int_equal(cert_generate(sans, ELEMENTSOF(sans), &cs), 0);
        assert_non_null(strstr(cs.ca_cert, "-----BEGIN CERTIFICATE-----"));
        assert_non_null(strstr(cs.server_key, "-----BEGIN PRIVATE KEY-----"));
        ca = parse_crt(cs.ca_cert);
        server = parse_crt(cs.server_cert);
        ca_key = parse_key(cs.ca_key);
        server_key = parse_key(cs.server_key);

        /* The CA: self-signed, a CA, ECDSA P-256, ten years. */
        assert_int_equal(gnutls_x509_crt_get_version(ca), 3);
        assert_int_equal(gnutls_x509_crt_check_issuer(ca, ca), 1);
        assert_int_equal(gnutls_x509_crt_get_basic_constraints(ca, &critical, &ca_flag, NULL), 1);
        assert_int_equal(ca_flag, 1);
        assert_int_equal(gnutls_x509_crt_get_key_usage(ca, &usage, &critical), 0);
        assert_true(usage & GNUTLS_KEY_KEY_CERT_SIGN);
        assert_int_equal(gnutls_x509_crt_get_pk_algorithm(ca, NULL), GNUTLS_PK_ECDSA);
        assert_int_equal(gnutls_x509_privkey_get_pk_algorithm(ca_key), GNUTLS_PK_ECDSA);
        assert_true(gnutls_x509_crt_get_expiration_time(ca) > now + 3649 * 24 * 3600);
        assert_true(gnutls_x509_crt_get_activation_time(ca) <= now);
        assert_int_equal(verify(ca, ca), 0);

        /* The server: signed by the CA, not a CA, serverAuth, a year, the names asked for. */
        assert_int_equal(gnutls_x509_crt_check_issuer(server, ca), 1);
        assert_int_equal(gnutls_x509_crt_get_basic_constraints(server, &critical, &ca_flag, NULL),
                         0);
        assert_int_equal(ca_flag, 0);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(server, 0, buf, &size, &critical), 0);
        assert_string_equal(buf, GNUTLS_KP_TLS_WWW_SERVER);
        assert_true(gnutls_x509_crt_get_expiration_time(server) > now + 364 * 24 * 3600);
        assert_true(gnutls_x509_crt_get_expiration_time(server) < now + 366 * 24 * 3600);
        assert_true(gnutls_x509_crt_check_hostname(server, "localhost"));
        assert_true(gnutls_x509_crt_check_hostname(server, "node.example.org"));
        assert_false(gnutls_x509_crt_check_hostname(server, "other.example.org"));
        {
                unsigned char ip[16];

                assert_int_equal(inet_pton(AF_INET, "127.0.0.1", ip), 1);
                assert_true(gnutls_x509_crt_check_ip(server, ip, 4, 0));
                assert_int_equal(inet_pton(AF_INET, "10.1.2.3", ip), 1);
                assert_true(gnutls_x509_crt_check_ip(server, ip, 4, 0));
                assert_int_equal(inet_pton(AF_INET6, "::1", ip), 1);
                assert_true(gnutls_x509_crt_check_ip(server, ip, 16, 0));
                assert_int_equal(inet_pton(AF_INET6, "fd00::7", ip), 1);
                assert_true(gnutls_x509_crt_check_ip(server, ip, 16, 0));
                assert_int_equal(inet_pton(AF_INET, "127.0.0.2", ip), 1);
                assert_false(gnutls_x509_crt_check_ip(server, ip, 4, 0));
        }
        /* localhost, given again, is not repeated: 3 defaults + 3 new names. */
        for (unsigned i = 0;; i++) {
                size = sizeof(buf);
                int t = gnutls_x509_crt_get_subject_alt_name(server, i, buf, &size, NULL);

                if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                        break;
                assert_true(t >= 0);
                found_dns += t == GNUTLS_SAN_DNSNAME;
                found_ip += t == GNUTLS_SAN_IPADDRESS;
        }
        assert_int_equal(found_dns, 2);
        assert_int_equal(found_ip, 4);
        assert_int_equal(verify(server, ca), 0);

        /* Another CA does not vouch for this server. */
        assert_int_equal(cert_generate(NULL, 0, &other), 0);
        other_ca = parse_crt(other.ca_cert);
        status = verify(server, other_ca);
        assert_true(status & GNUTLS_CERT_INVALID);

        /* Each key goes with its certificate, and only with it. */
        assert_int_equal(cert_check_pair(cs.server_cert, cs.server_key), 0);
        assert_int_equal(cert_check_pair(cs.ca_cert, cs.ca_key), 0);
        assert_int_equal(cert_check_pair(cs.server_cert, cs.ca_key), -EKEYREJECTED);
        assert_int_equal(cert_check_pair(other.server_cert, cs.server_key), -EKEYREJECTED);
        assert_int_equal(cert_check_pair("not a certificate", cs.server_key), -EBADMSG);
        assert_int_equal(cert_check_pair(cs.server_cert, "not a key"), -ENOKEY);

        gnutls_x509_crt_deinit(ca);
        gnutls_x509_crt_deinit(server);
        gnutls_x509_crt_deinit(other_ca);
        gnutls_x509_privkey_deinit(ca_key);
        gnutls_x509_privkey_deinit(server_key);
}

static void test_san_validation(void **state)
{
        struct cert_set cs = {0};
        const char *bad[] = {"",    "-a.example", "a-.example", "a..b",  "a b",
                             "a/b", "é.example",  "*",          "a.*.b", "x:y"};
        const char *good[] = {"a",  "node-1.example.org", "*.example.org", "192.168.0.1",
                              "::", "2001:db8::1"};
        char long_label[80];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(cert_san_valid(bad[i]));
                assert_int_equal(cert_generate(&bad[i], 1, &cs), -EINVAL);
        }
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_true(cert_san_valid(good[i]));
        memset(long_label, 'a', 64);
        long_label[64] = '\0';
        assert_false(cert_san_valid(long_label));
        long_label[63] = '\0';
        assert_true(cert_san_valid(long_label));
        assert_int_equal(cert_generate(good, CERT_SANS_MAX + 1, &cs), -EINVAL);
}

/* A certificate whose validity has ended is refused, even with its own key. */
static void test_check_pair_expired(void **state)
{
        gnutls_x509_privkey_t key = NULL;
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t crt_pem = {0}, key_pem = {0};
        _cleanup_free_ char *crt_text = NULL, *key_text = NULL;
        time_t now = time(NULL);

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(
                gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                             GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                0);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(crt, "\x01", 1), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 10 * 24 * 3600), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now - 24 * 3600), 0);
        assert_int_equal(
                gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "old", 3), 0);
        assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
        assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem), 0);
        assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem), 0);
        crt_text = strndup((const char *) crt_pem.data, crt_pem.size);
        key_text = strndup((const char *) key_pem.data, key_pem.size);
        assert_non_null(crt_text);
        assert_non_null(key_text);
        /* A SEC1 "EC PRIVATE KEY" is read as well as PKCS#8. */
        assert_int_equal(cert_check_pair(crt_text, key_text), -EKEYEXPIRED);
        gnutls_free(crt_pem.data);
        gnutls_free(key_pem.data);
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
}

static char *temp_dir(void)
{
        char tmpl[] = "/tmp/warren-test-cert-XXXXXX";
        char *d = mkdtemp(tmpl);

        assert_non_null(d);
        return strdup(d);
}

static void remove_dir(const char *dir)
{
        char path[512];

        for (size_t i = 0; i < ELEMENTSOF(cert_file_names); i++) {
                (void) snprintf(path, sizeof(path), "%s/%s", dir, cert_file_names[i]);
                (void) unlink(path);
        }
        (void) snprintf(path, sizeof(path), "%s/sub", dir);
        (void) rmdir(path);
        (void) rmdir(dir);
}

static void test_write_dir(void **state)
{
        _cleanup_(cert_set_done) struct cert_set cs = {0}, cs2 = {0};
        _cleanup_free_ char *dir = temp_dir(), *text = NULL, *key = NULL;
        char path[512], sub[256];
        struct stat st;
        size_t len = 0;
        mode_t old = umask(0);

        assert_int_equal(cert_generate(NULL, 0, &cs), 0);
        assert_int_equal(cert_generate(NULL, 0, &cs2), 0);
        (void) snprintf(sub, sizeof(sub), "%s/sub", dir);
        assert_int_equal(cert_write_dir(sub, &cs, false), 0);
        (void) umask(old);
        for (size_t i = 0; i < ELEMENTSOF(cert_file_names); i++) {
                (void) snprintf(path, sizeof(path), "%s/%s", sub, cert_file_names[i]);
                assert_int_equal(lstat(path, &st), 0);
                assert_true(S_ISREG(st.st_mode));
                assert_int_equal(st.st_mode & 07777, strstr(path, ".key") ? 0600 : 0644);
        }

        /* Read back, as the node would. */
        (void) snprintf(path, sizeof(path), "%s/%s", sub, CERT_SERVER_CERT);
        assert_int_equal(cert_read_file(path, false, &text, &len), 0);
        assert_string_equal(text, cs.server_cert);
        assert_int_equal(len, strlen(cs.server_cert));
        (void) snprintf(path, sizeof(path), "%s/%s", sub, CERT_SERVER_KEY);
        assert_int_equal(cert_read_file(path, true, &key, NULL), 0);
        assert_int_equal(cert_check_pair(text, key), 0);
        cert_key_free(TAKE_PTR(key));

        /* A key others may read is refused; a certificate is not. */
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(cert_read_file(path, true, &key, NULL), -EPERM);
        assert_null(key);
        assert_int_equal(chmod(path, 0604), 0);
        assert_int_equal(cert_read_file(path, true, &key, NULL), -EPERM);
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(cert_read_file(sub, false, &key, NULL), -EISDIR);
        assert_int_equal(cert_read_file("/nonexistent/x.pem", false, &key, NULL), -ENOENT);

        /* Nothing is overwritten without force, and nothing is half-written: the files stay. */
        assert_int_equal(cert_write_dir(sub, &cs2, false), -EEXIST);
        free(text);
        text = NULL;
        (void) snprintf(path, sizeof(path), "%s/%s", sub, CERT_CA_CERT);
        assert_int_equal(cert_read_file(path, false, &text, NULL), 0);
        assert_string_equal(text, cs.ca_cert);
        /* One file of the four is enough to refuse. */
        for (size_t i = 0; i < ELEMENTSOF(cert_file_names); i++) {
                (void) snprintf(path, sizeof(path), "%s/%s", sub, cert_file_names[i]);
                if (i != 3)
                        assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(cert_write_dir(sub, &cs2, false), -EEXIST);
        /* With force, they are replaced. */
        assert_int_equal(cert_write_dir(sub, &cs2, true), 0);
        free(text);
        text = NULL;
        (void) snprintf(path, sizeof(path), "%s/%s", sub, CERT_CA_CERT);
        assert_int_equal(cert_read_file(path, false, &text, NULL), 0);
        assert_string_equal(text, cs2.ca_cert);

        remove_dir(sub);
        remove_dir(dir);
}

/* ---- client certificates ---- */

/* The DER of a PEM certificate, for cert_trust_verify(); free with gnutls_free(). */
static gnutls_datum_t der_of(const char *pem)
{
        gnutls_x509_crt_t crt = parse_crt(pem);
        gnutls_datum_t d = {0};

        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &d), 0);
        gnutls_x509_crt_deinit(crt);
        return d;
}

static int verify_at(const struct cert_trust *t, const char *pem, time_t now,
                     struct cert_peer *peer)
{
        gnutls_datum_t d = der_of(pem);
        const void *ders[1] = {d.data};
        size_t lens[1] = {d.size};
        int r = cert_trust_verify(t, ders, lens, 1, now, peer);

        gnutls_free(d.data);
        return r;
}

/* A CRL of the CA (cs) that revokes the certificate revoked_pem, PEM. */
static char *make_crl(const struct cert_set *cs, const char *revoked_pem)
{
        gnutls_x509_crt_t ca = parse_crt(cs->ca_cert), revoked = parse_crt(revoked_pem);
        gnutls_x509_privkey_t key = parse_key(cs->ca_key);
        gnutls_x509_crl_t crl = NULL;
        gnutls_datum_t d = {0};
        time_t now = time(NULL);
        char *text;

        assert_int_equal(gnutls_x509_crl_init(&crl), 0);
        assert_int_equal(gnutls_x509_crl_set_version(crl, 2), 0);
        assert_int_equal(gnutls_x509_crl_set_this_update(crl, now - 60), 0);
        assert_int_equal(gnutls_x509_crl_set_next_update(crl, now + 86400), 0);
        assert_int_equal(gnutls_x509_crl_set_crt(crl, revoked, now - 60), 0);
        assert_int_equal(gnutls_x509_crl_sign2(crl, ca, key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &d), 0);
        text = strndup((const char *) d.data, d.size);
        assert_non_null(text);
        gnutls_free(d.data);
        gnutls_x509_crl_deinit(crl);
        gnutls_x509_crt_deinit(ca);
        gnutls_x509_crt_deinit(revoked);
        gnutls_x509_privkey_deinit(key);
        return text;
}

static void test_client_generate(void **state)
{
        _cleanup_(cert_set_done) struct cert_set cs = {0}, other = {0};
        _cleanup_free_ char *cert = NULL;
        char *key = NULL, buf[256];
        gnutls_x509_crt_t crt, ca;
        gnutls_x509_privkey_t k;
        unsigned critical = 0, ca_flag = 1, usage = 0;
        size_t size;
        time_t now = time(NULL);

        assert_int_equal(cert_generate(NULL, 0, &cs), 0);
        assert_int_equal(cert_generate(NULL, 0, &other), 0);
        assert_int_equal(cert_generate_client(cs.ca_cert, cs.ca_key, "alice", 30, &cert, &key), 0);
        assert_int_equal(cert_check_pair(cert, key), 0);
        crt = parse_crt(cert);
        ca = parse_crt(cs.ca_cert);
        k = parse_key(key);
        assert_int_equal(gnutls_x509_privkey_get_pk_algorithm(k), GNUTLS_PK_ECDSA);
        assert_int_equal(gnutls_x509_crt_check_issuer(crt, ca), 1);
        assert_int_equal(verify(crt, ca), 0);
        size = sizeof(buf);
        assert_int_equal(
                gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size),
                0);
        assert_string_equal(buf, "alice");
        assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca_flag, NULL), 0);
        assert_int_equal(ca_flag, 0);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 0, buf, &size, &critical), 0);
        assert_string_equal(buf, GNUTLS_KP_TLS_WWW_CLIENT);
        size = sizeof(buf);
        assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 1, buf, &size, &critical),
                         GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
        assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), 0);
        assert_int_equal(usage, GNUTLS_KEY_DIGITAL_SIGNATURE);
        assert_true(gnutls_x509_crt_get_expiration_time(crt) > now + 29 * 24 * 3600);
        assert_true(gnutls_x509_crt_get_expiration_time(crt) <= now + 30 * 24 * 3600 + 5);
        assert_true(gnutls_x509_crt_get_activation_time(crt) <= now);
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_crt_deinit(ca);
        gnutls_x509_privkey_deinit(k);
        cert_key_free(key);
        key = NULL;

        /* Refused: names that are not user names, days out of range, a CA that is none. */
        const char *bad_names[] = {
                "",
                "Alice",
                "1alice",
                "al ice",
                "a/b",
                "ali\xc3\xa9",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                assert_false(cert_name_valid(bad_names[i]));
                assert_int_equal(
                        cert_generate_client(cs.ca_cert, cs.ca_key, bad_names[i], 1, &cert, &key),
                        -EINVAL);
        }
        assert_true(cert_name_valid("a.b-c_9"));
        assert_int_equal(cert_generate_client(cs.ca_cert, cs.ca_key, "bob", 0, &cert, &key),
                         -EINVAL);
        assert_int_equal(
                cert_generate_client(cs.ca_cert, cs.ca_key, "bob", CERT_CA_DAYS + 1, &cert, &key),
                -EINVAL);
        assert_int_equal(cert_generate_client(cs.ca_cert, other.ca_key, "bob", 1, &cert, &key),
                         -EKEYREJECTED);
        assert_int_equal(cert_generate_client(cs.server_cert, cs.server_key, "bob", 1, &cert, &key),
                         -EKEYREJECTED);
        assert_int_equal(cert_generate_client("garbage", cs.ca_key, "bob", 1, &cert, &key),
                         -EBADMSG);
        assert_int_equal(cert_generate_client(cs.ca_cert, "garbage", "bob", 1, &cert, &key),
                         -ENOKEY);
        assert_null(key);
}

static void test_client_verify(void **state)
{
        _cleanup_(cert_set_done) struct cert_set cs = {0}, other = {0};
        _cleanup_free_ char *alice = NULL, *stranger = NULL, *crl = NULL, *other_crl = NULL;
        _cleanup_free_ char *bob = NULL, *both = NULL;
        char *key = NULL;
        struct cert_trust *t = NULL, *revoking = NULL;
        struct cert_peer peer = {};
        gnutls_x509_crt_t crt;
        unsigned char serial[32];
        size_t serial_len = sizeof(serial);
        char hex[2 * sizeof(serial) + 1];
        time_t now = time(NULL);

        assert_int_equal(cert_generate(NULL, 0, &cs), 0);
        assert_int_equal(cert_generate(NULL, 0, &other), 0);
        assert_int_equal(cert_generate_client(cs.ca_cert, cs.ca_key, "alice", 365, &alice, &key),
                         0);
        cert_key_free(key);
        assert_int_equal(cert_generate_client(cs.ca_cert, cs.ca_key, "bob", 365, &bob, &key), 0);
        cert_key_free(key);
        assert_int_equal(
                cert_generate_client(other.ca_cert, other.ca_key, "alice", 365, &stranger, &key),
                0);
        cert_key_free(key);

        assert_int_equal(cert_trust_new(cs.ca_cert, NULL, &t), 0);
        assert_int_equal(verify_at(t, alice, now, &peer), 0);
        assert_string_equal(peer.cn, "alice");
        crt = parse_crt(alice);
        assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &serial_len), 0);
        gnutls_x509_crt_deinit(crt);
        for (size_t i = 0; i < serial_len; i++)
                (void) snprintf(hex + 2 * i, 3, "%02x", serial[i]);
        assert_string_equal(peer.serial, hex);

        /* Each refusal for its reason, and *ret untouched. */
        peer = (struct cert_peer){.cn = "untouched"};
        assert_int_equal(verify_at(t, alice, now + 2 * 365 * 24 * 3600, &peer), -EKEYEXPIRED);
        assert_int_equal(verify_at(t, alice, now - 2 * 3600, &peer), -EKEYEXPIRED);
        assert_int_equal(verify_at(t, stranger, now, &peer), -EKEYREJECTED);
        assert_int_equal(verify_at(t, cs.server_cert, now, &peer), -EPERM);
        assert_int_equal(verify_at(t, cs.ca_cert, now, &peer), -EPERM);
        assert_string_equal(peer.cn, "untouched");
        {
                const void *ders[CERT_CHAIN_MAX + 1] = {"junk"};
                size_t lens[CERT_CHAIN_MAX + 1] = {4};

                assert_int_equal(cert_trust_verify(t, ders, lens, 1, now, &peer), -EBADMSG);
                assert_int_equal(cert_trust_verify(t, ders, lens, 0, now, &peer), -EBADMSG);
                assert_int_equal(cert_trust_verify(t, ders, lens, CERT_CHAIN_MAX + 1, now, &peer),
                                 -E2BIG);
        }
        assert_string_equal(cert_verify_strerror(-EKEYREVOKED), "has been revoked");

        /* Two CAs in one file: both are trusted. */
        assert_true(asprintf(&both, "%s%s", other.ca_cert, cs.ca_cert) > 0);
        t = cert_trust_free(t);
        assert_int_equal(cert_trust_new(both, NULL, &t), 0);
        assert_int_equal(verify_at(t, stranger, now, &peer), 0);
        assert_int_equal(verify_at(t, alice, now, &peer), 0);
        t = cert_trust_free(t);

        /* A CRL: alice is revoked, bob is not; the CRL must be the CA's. */
        crl = make_crl(&cs, alice);
        other_crl = make_crl(&other, stranger);
        assert_int_equal(cert_trust_new(cs.ca_cert, crl, &revoking), 0);
        assert_int_equal(verify_at(revoking, alice, now, &peer), -EKEYREVOKED);
        assert_int_equal(verify_at(revoking, bob, now, &peer), 0);
        assert_string_equal(peer.cn, "bob");
        revoking = cert_trust_free(revoking);
        assert_int_equal(cert_trust_new(cs.ca_cert, other_crl, &revoking), -EKEYREJECTED);
        assert_int_equal(cert_trust_new(cs.ca_cert, "not a crl", &revoking), -EBADMSG);
        assert_int_equal(cert_trust_new("no certificate here", NULL, &revoking), -ENOENT);
        assert_int_equal(cert_trust_new("-----BEGIN CERTIFICATE-----\nAAAA\n"
                                        "-----END CERTIFICATE-----\n",
                                        NULL, &revoking),
                         -EBADMSG);
        assert_null(revoking);
        assert_null(cert_trust_free(NULL));
}

/* A client certificate signed by the CA of cs, with this CN and these email SANs; PEM. */
static char *client_with_emails(const struct cert_set *cs, const char *cn,
                                const char *const *emails, size_t n)
{
        gnutls_x509_crt_t ca = parse_crt(cs->ca_cert), crt = NULL;
        gnutls_x509_privkey_t ca_key = parse_key(cs->ca_key), key = NULL;
        gnutls_datum_t d = {0};
        time_t now = time(NULL);
        char *text;

        assert_int_equal(gnutls_x509_privkey_init(&key), 0);
        assert_int_equal(
                gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                             GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                0);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(crt, "\x05", 1), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 86400), 0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                       (unsigned) strlen(cn)),
                         0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
                                         crt, GNUTLS_SAN_RFC822NAME, emails[i],
                                         (unsigned) strlen(emails[i]), GNUTLS_FSAN_APPEND),
                                 0);
        assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0), 0);
        assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
        assert_int_equal(gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0), 0);
        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d), 0);
        text = strndup((const char *) d.data, d.size);
        assert_non_null(text);
        gnutls_free(d.data);
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_crt_deinit(ca);
        gnutls_x509_privkey_deinit(key);
        gnutls_x509_privkey_deinit(ca_key);
        return text;
}

/* --tls-client-email-domain: the user is the local part of the one email SAN in the domain. */
static void test_client_verify_email(void **state)
{
        _cleanup_(cert_set_done) struct cert_set cs = {0};
        struct cert_trust *by_cn = NULL, *by_email = NULL;
        struct cert_peer peer = {};
        time_t now = time(NULL);
        static const char *const one[] = {"carol@elsewhere.test", "Alice@Example.ORG"};
        static const char *const lower[] = {"alice@EXAMPLE.org"};
        static const char *const two[] = {"alice@example.org", "bob@example.org"};
        static const char *const none[] = {"alice@example.org.evil.test", "alice@sub.example.org"};
        static const char *const bad[] = {"Not A Name@example.org"};

        struct {
                const char *cn;
                const char *const *emails;
                size_t n;
                int by_cn, by_email;
                const char *user;
        } cases[] = {
                /* the CN of a person: no user by CN; by email, its local part is not lower case */
                {"Alice Smith", one, 2, -ENODATA, -ENODATA, NULL},
                {"Alice Smith", lower, 1, -ENODATA, 0, "alice"},
                {"alice", two, 2, 0, -ENODATA, NULL},
                {"alice", none, 2, 0, -ENODATA, NULL},
                {"alice", bad, 1, 0, -ENODATA, NULL},
                {"alice", NULL, 0, 0, -ENODATA, NULL},
        };

        (void) state;
        assert_false(cert_domain_valid(""));
        assert_false(cert_domain_valid("Example.org"));
        assert_false(cert_domain_valid(".example.org"));
        assert_false(cert_domain_valid("example..org"));
        assert_false(cert_domain_valid("example.org."));
        assert_true(cert_domain_valid("example.org"));
        assert_int_equal(cert_generate(NULL, 0, &cs), 0);
        assert_int_equal(cert_trust_new(cs.ca_cert, NULL, &by_cn), 0);
        assert_int_equal(cert_trust_new(cs.ca_cert, NULL, &by_email), 0);
        assert_int_equal(cert_trust_map_email(by_email, "Example.org"), -EINVAL);
        assert_int_equal(cert_trust_map_email(by_email, "example.org"), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *pem =
                        client_with_emails(&cs, cases[i].cn, cases[i].emails, cases[i].n);

                assert_int_equal(verify_at(by_cn, pem, now, &peer), cases[i].by_cn);
                memset(&peer, 0, sizeof(peer));
                assert_int_equal(verify_at(by_email, pem, now, &peer), cases[i].by_email);
                if (cases[i].user)
                        assert_string_equal(peer.cn, cases[i].user);
        }
        assert_non_null(strstr(cert_verify_strerror(-ENODATA), "email"));
        (void) cert_trust_free(by_cn);
        (void) cert_trust_free(by_email);
}

static void test_client_write(void **state)
{
        _cleanup_free_ char *dir = temp_dir(), *text = NULL;
        char path[512];
        struct stat st;

        assert_int_equal(cert_write_client(dir, "alice", "CERT\n", "KEY\n", false), 0);
        (void) snprintf(path, sizeof(path), "%s/alice.key", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        (void) snprintf(path, sizeof(path), "%s/alice.pem", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(cert_write_client(dir, "alice", "CERT2\n", "KEY2\n", false), -EEXIST);
        assert_int_equal(cert_read_file(path, false, &text, NULL), 0);
        assert_string_equal(text, "CERT\n");
        assert_int_equal(cert_write_client(dir, "alice", "CERT2\n", "KEY2\n", true), 0);
        free(text);
        text = NULL;
        assert_int_equal(cert_read_file(path, false, &text, NULL), 0);
        assert_string_equal(text, "CERT2\n");
        assert_int_equal(cert_write_client(dir, "ca", "C\n", "K\n", true), -EINVAL);
        assert_int_equal(cert_write_client(dir, "server", "C\n", "K\n", true), -EINVAL);
        assert_int_equal(cert_write_client(dir, "../x", "C\n", "K\n", true), -EINVAL);
        /* A symbolic link in place of the key is not followed. */
        (void) snprintf(path, sizeof(path), "%s/bob.key", dir);
        assert_int_equal(symlink("/tmp/warren-test-cert-target", path), 0);
        assert_int_equal(cert_write_client(dir, "bob", "C\n", "K\n", false), -EEXIST);
        assert_int_equal(access("/tmp/warren-test-cert-target", F_OK), -1);
        assert_int_equal(unlink(path), 0);
        const char *names[] = {"alice.pem", "alice.key"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                (void) snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                assert_int_equal(unlink(path), 0);
        }
        remove_dir(dir);
}

/* ---- confidential content ---- */

/* Feeds text in pieces of `piece` bytes. */
static bool scan_pieces(const char *text, size_t len, size_t piece)
{
        _cleanup_(cert_scan_freep) struct cert_scan *s = NULL;

        assert_int_equal(cert_scan_new(&s), 0);
        for (size_t off = 0; off < len; off += piece)
                assert_int_equal(
                        cert_scan_feed(s, text + off, len - off < piece ? len - off : piece), 0);
        return cert_scan_confidential(s);
}

static void test_confidential(void **state)
{
        _cleanup_(cert_set_done) struct cert_set cs = {};
        static const char *const pem_secret[] = {
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "-----BEGIN PRIVATE KEY-----\nMIIB\n",
                "-----BEGIN RSA PRIVATE KEY-----\n",
                "-----BEGIN EC PRIVATE KEY-----\n",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
                "-----BEGIN OPENSSH PRIVATE KEY-----\n",
                "-----BEGIN CERTIFICATE REQUEST-----\n",
                "-----BEGIN PKCS12-----\n",
        };
        static const char *const not_secret[] = {
                "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
                "-----BEGIN X509 CRL-----\n",
                "-----BEGIN CERTIFICATE",   /* no closing dashes */
                "BEGIN CERTIFICATE-----\n", /* no opening ones */
                "just text, certificate and private key in prose\n",
                "",
        };
        char big[200000];
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t pem = {}, der = {};

        for (size_t i = 0; i < ELEMENTSOF(pem_secret); i++) {
                size_t len = strlen(pem_secret[i]);

                assert_true(cert_content_confidential(pem_secret[i], len));
                /* cut at every place */
                for (size_t piece = 1; piece <= len; piece++)
                        assert_true(scan_pieces(pem_secret[i], len, piece));
        }
        for (size_t i = 0; i < ELEMENTSOF(not_secret); i++)
                assert_false(cert_content_confidential(not_secret[i], strlen(not_secret[i])));

        /* armour far into a large file, across a piece boundary */
        memset(big, 'x', sizeof(big));
        memcpy(big + 150000 - 7, "-----BEGIN RSA PRIVATE KEY-----", 31);
        assert_true(scan_pieces(big, sizeof(big), 65536));
        assert_true(scan_pieces(big, sizeof(big), 150000 - 3));
        memset(big, 0, sizeof(big));
        assert_false(scan_pieces(big, sizeof(big), 4096));

        /* real ones, PEM and DER */
        assert_int_equal(cert_generate(NULL, 0, &cs), 0);
        assert_true(cert_content_confidential(cs.server_cert, strlen(cs.server_cert)));
        assert_true(cert_content_confidential(cs.server_key, strlen(cs.server_key)));
        pem.data = (unsigned char *) cs.server_cert;
        pem.size = (unsigned) strlen(cs.server_cert);
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
        assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
        assert_true(cert_content_confidential(der.data, der.size));
        assert_true(scan_pieces((const char *) der.data, der.size, 100));
        /* a DER certificate with a byte more is not one */
        {
                _cleanup_free_ char *junk = malloc(der.size + 1);

                assert_non_null(junk);
                memcpy(junk, der.data, der.size);
                junk[der.size] = 'x';
                junk[0] = 0x31;
                assert_false(cert_content_confidential(junk, der.size + 1));
        }
        gnutls_free(der.data);
        gnutls_x509_crt_deinit(crt);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_generate_and_verify),
                cmocka_unit_test(test_san_validation),
                cmocka_unit_test(test_confidential),
                cmocka_unit_test(test_check_pair_expired),
                cmocka_unit_test(test_write_dir),
                cmocka_unit_test(test_client_generate),
                cmocka_unit_test(test_client_verify),
                cmocka_unit_test(test_client_verify_email),
                cmocka_unit_test(test_client_write),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
