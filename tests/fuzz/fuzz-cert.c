/* SPDX-License-Identifier: MIT */

/*
 * Fuzzes cert_trust_verify(), which reads the certificates a TLS client presents (DER, parsed by
 * GnuTLS) before anything else about the client is known. The input is a chain: each
 * certificate is a 2-byte big-endian length and that many bytes, at most CERT_CHAIN_MAX + 1 of
 * them. The trust list is a CA made once per process, and its client certificate for "alice" is
 * also tried with the input appended as the rest of the chain. Beyond crashes it checks what
 * verification promises: one of the documented results, *ret written only on success, and on
 * success a CN that is a valid user name and a serial in lower-case hex.
 */

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <time.h>

#include "auth/cert.h"
#include "fuzz.h"

static struct cert_trust *trust;
static gnutls_datum_t alice;

static void setup(void)
{
        struct cert_set cs = {0};
        gnutls_x509_crt_t crt = NULL;
        char *cert = NULL, *key = NULL;
        gnutls_datum_t d;

        check(cert_generate(NULL, 0, &cs) == 0);
        check(cert_trust_new(cs.ca_cert, NULL, &trust) == 0);
        check(cert_generate_client(cs.ca_cert, cs.ca_key, "alice", 30, &cert, &key) == 0);
        d = (gnutls_datum_t){(unsigned char *) cert, (unsigned) strlen(cert)};
        check(gnutls_x509_crt_init(&crt) == 0);
        check(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) == 0);
        check(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &alice) == 0);
        gnutls_x509_crt_deinit(crt);
        free(cert);
        cert_key_free(key);
        cert_set_done(&cs);
}

static void check_one(const void *const *ders, const size_t *lens, size_t n)
{
        struct cert_peer peer = {.cn = "untouched"};
        int r = cert_trust_verify(trust, ders, lens, n, time(NULL), &peer);

        if (r < 0) {
                check(r == -EBADMSG || r == -E2BIG || r == -EKEYEXPIRED || r == -EKEYREVOKED ||
                      r == -EKEYREJECTED || r == -EPERM || r == -ENODATA || r == -ENOMEM ||
                      r == -EIO);
                check(strcmp(peer.cn, "untouched") == 0);
                check(cert_verify_strerror(r) != NULL);
                return;
        }
        check(cert_name_valid(peer.cn));
        check(peer.serial[0] != '\0' &&
              strspn(peer.serial, "0123456789abcdef") == strlen(peer.serial));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const void *ders[CERT_CHAIN_MAX + 2];
        size_t lens[CERT_CHAIN_MAX + 2], n = 0;

        if (!trust)
                setup();
        while (size >= 2 && n < CERT_CHAIN_MAX + 1) {
                size_t len = (size_t) data[0] << 8 | data[1];

                data += 2;
                size -= 2;
                if (len > size)
                        len = size;
                ders[n] = data;
                lens[n++] = len;
                data += len;
                size -= len;
        }
        check_one(ders, lens, n);
        /* The same certificates behind a good one: they are then its intermediates. */
        memmove(ders + 1, ders, n * sizeof(ders[0]));
        memmove(lens + 1, lens, n * sizeof(lens[0]));
        ders[0] = alice.data;
        lens[0] = alice.size;
        check_one(ders, lens, n + 1);
        return 0;
}
