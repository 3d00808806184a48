/* SPDX-License-Identifier: MIT */
/*
 * The cert module: what cert_generate() makes is parsed back with GnuTLS and checked field by
 * field, and the server certificate's chain is verified against the CA (and refused against
 * another one); the files cert_write_dir() writes, their modes and the refusal to overwrite; the
 * checks the node runs on its files.
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_generate_and_verify),
                cmocka_unit_test(test_san_validation),
                cmocka_unit_test(test_check_pair_expired),
                cmocka_unit_test(test_write_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
