/* SPDX-License-Identifier: MIT */
/*
 * The client side of the CLI (see client.h). One easy handle per client, reset before each
 * request, so that no option of one request leaks into the next.
 *
 * What a node sends is not trusted: a JSON reply is bounded (CLIENT_MAX_REPLY) and parsed
 * strictly, an error reply's code and message are cut to one line of printable text before they
 * reach the terminal, an event stream's lines and events are bounded, and a download stops at
 * the size the caller expects. Nothing is followed: no redirects (the token stays with the URL it
 * was given for), http and https only.
 */
#include "cli/client.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include "auth/cert.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define CONNECT_TIMEOUT_S 10L
/* A node pings idle event streams every 15 s: a minute without a byte is a dead connection. */
#define IDLE_TIMEOUT_S   60L
#define MAX_URL          2048
#define MAX_CONFIG       ((size_t) 1 << 20)
#define MAX_ERROR_BODY   ((size_t) 64 << 10)
#define MAX_FOLLOW_RETRY 5

/* ---- small helpers ---- */

/* The length of the UTF-8 sequence a lead byte starts (1 for anything else). */
static size_t utf8_seq_len(unsigned char lead)
{
        if (lead >= 0xf0)
                return 4;
        if (lead >= 0xe0)
                return 3;
        if (lead >= 0xc0)
                return 2;
        return 1;
}

/*
 * Copies src[0..len) into dst as one line of text for a terminal: C0 and C1 control characters
 * (a node's strings could carry escape sequences) become spaces, and a cut never leaves half a
 * UTF-8 sequence.
 */
static void copy_line(char *dst, size_t size, const char *src, size_t len)
{
        size_t o = 0, i;

        if (size == 0)
                return;
        for (i = 0; i < len && o + 1 < size; i++) {
                unsigned char ch = (unsigned char) src[i];

                if (ch == 0xc2 && i + 1 < len && (unsigned char) src[i + 1] >= 0x80 &&
                    (unsigned char) src[i + 1] <= 0x9f) {
                        dst[o++] = ' ';
                        i++;
                } else
                        dst[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char) ch;
        }
        if (i < len) {
                size_t k = o;

                while (k > 0 && ((unsigned char) dst[k - 1] & 0xc0) == 0x80)
                        k--;
                if (k > 0 && ((unsigned char) dst[k - 1] & 0x80) &&
                    o - (k - 1) < utf8_seq_len((unsigned char) dst[k - 1]))
                        o = k - 1;
        }
        dst[o] = '\0';
}

static void wipe_free(char *s, size_t len)
{
        if (s) {
                explicit_bzero(s, len);
                free(s);
        }
}

static bool token_valid(const char *t)
{
        size_t n = strlen(t);

        if (n == 0 || n > CLIENT_MAX_TOKEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (t[i] <= 0x20 || t[i] >= 0x7f)
                        return false;
        return true;
}

/* http(s)://authority[/path], without credentials, query or fragment; trailing '/' dropped. */
static int url_normalize(const char *in, char **ret)
{
        const char *rest, *slash;
        size_t n = strlen(in);
        char *out;

        if (strncmp(in, "http://", 7) == 0)
                rest = in + 7;
        else if (strncmp(in, "https://", 8) == 0)
                rest = in + 8;
        else {
                log_error("invalid URL '%s': it must start with http:// or https://", in);
                return -EINVAL;
        }
        if (n > MAX_URL) {
                log_error("invalid URL: longer than %d bytes", MAX_URL);
                return -EINVAL;
        }
        slash = strchr(rest, '/');
        if (memchr(rest, '@', slash ? (size_t) (slash - rest) : strlen(rest))) {
                /* Not echoed: it holds a password. */
                log_error("invalid URL: it must not contain a user name or password");
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) in[i];
                if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '?' || ch == '#') {
                        log_error("invalid URL '%s': it must be printable ASCII without spaces, "
                                  "query or fragment",
                                  in);
                        return -EINVAL;
                }
        }
        if (rest[0] == '\0' || rest[0] == '/') {
                log_error("invalid URL '%s': it has no host", in);
                return -EINVAL;
        }
        out = strdup(in);
        if (!out)
                return log_error_errno(ENOMEM, "%m");
        n = strlen(out);
        while (n > 0 && out[n - 1] == '/')
                out[--n] = '\0';
        *ret = out;
        return 0;
}

/* ---- the saved configuration ---- */

int client_config_path(char **ret)
{
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home;
        char *p = NULL;
        int r;

        if (xdg && xdg[0] == '/')
                r = asprintf(&p, "%s/warren/config.json", xdg);
        else {
                home = getenv("HOME");
                if (!home || home[0] != '/') {
                        struct passwd *pw = getpwuid(geteuid());
                        home = pw ? pw->pw_dir : NULL;
                }
                if (!home || home[0] != '/') {
                        log_error("cannot find a home directory to keep the configuration in "
                                  "(set HOME or XDG_CONFIG_HOME)");
                        return -ENOENT;
                }
                r = asprintf(&p, "%s/.config/warren/config.json", home);
        }
        if (r < 0)
                return log_error_errno(ENOMEM, "%m");
        *ret = p;
        return 0;
}

void client_config_done(struct client_config *cfg)
{
        free(cfg->url);
        free(cfg->ca);
        free(cfg->pin);
        free(cfg->cert);
        if (cfg->token)
                wipe_free(cfg->token, strlen(cfg->token));
        if (cfg->key)
                wipe_free(cfg->key, strlen(cfg->key));
        *cfg = (struct client_config){0};
}

int client_config_load(struct client_config *ret)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_json_ json_t *root = NULL;
        struct client_config cfg = {0};
        struct json_error err;
        const char *url = NULL, *token = NULL, *ca = NULL, *pin = NULL, *cert = NULL, *key = NULL;
        struct stat st;
        char *buf;
        ssize_t n;
        int r;

        r = client_config_path(&path);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR) {
                        *ret = cfg;
                        return 0;
                }
                if (errno == ELOOP) {
                        log_error("refusing to read '%s': it is a symbolic link", path);
                        return -ELOOP;
                }
                return log_error_errno(errno, "cannot open '%s': %m", path);
        }
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "cannot stat '%s': %m", path);
        if (!S_ISREG(st.st_mode)) {
                log_error("refusing to read '%s': it is not a regular file", path);
                return -EPERM;
        }
        if (st.st_uid != geteuid()) {
                log_error("refusing to read '%s': it belongs to uid %u, not to you", path,
                          (unsigned) st.st_uid);
                return -EPERM;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                log_error("refusing to read '%s': others may read or change it (mode %04o); "
                          "run 'chmod 600 %s'",
                          path, (unsigned) (st.st_mode & 07777), path);
                return -EPERM;
        }
        buf = malloc(MAX_CONFIG + 1);
        if (!buf)
                return log_error_errno(ENOMEM, "%m");
        n = read_full(fd, buf, MAX_CONFIG + 1);
        if (n < 0 || (size_t) n > MAX_CONFIG) {
                wipe_free(buf, MAX_CONFIG + 1);
                if (n < 0)
                        return log_error_errno((int) n, "cannot read '%s': %m", path);
                log_error("'%s' is too large", path);
                return -EFBIG;
        }
        r = json_parse_strict(buf, (size_t) n, &root, &err);
        wipe_free(buf, MAX_CONFIG + 1);
        if (r >= 0)
                r = json_get_string(root, "url", MAX_URL, &url, NULL, &err);
        if (r >= 0)
                r = json_get_string(root, "token", CLIENT_MAX_TOKEN, &token, NULL, &err);
        if (r >= 0)
                r = json_get_string(root, "ca", CLIENT_MAX_CA, &ca, NULL, &err);
        if (r >= 0)
                r = json_get_string(root, "pin", CLIENT_MAX_PIN, &pin, NULL, &err);
        if (r >= 0)
                r = json_get_string(root, "cert", CLIENT_MAX_CA, &cert, NULL, &err);
        if (r >= 0)
                r = json_get_string(root, "key", CLIENT_MAX_CA, &key, NULL, &err);
        if (r < 0) {
                log_error("'%s' is not a valid configuration: %s", path, err.message);
                return -EINVAL;
        }
        if (url && !(cfg.url = strdup(url)))
                return log_error_errno(ENOMEM, "%m");
        if ((token && !(cfg.token = strdup(token))) || (ca && !(cfg.ca = strdup(ca))) ||
            (pin && !(cfg.pin = strdup(pin))) || (cert && !(cfg.cert = strdup(cert))) ||
            (key && !(cfg.key = strdup(key)))) {
                client_config_done(&cfg);
                return log_error_errno(ENOMEM, "%m");
        }
        *ret = cfg;
        return 0;
}

/* Creates the missing directories of path's parent, 0700. */
static int mkdir_parents(const char *path)
{
        _cleanup_free_ char *p = strdup(path);
        char *s;

        if (!p)
                return -ENOMEM;
        for (s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

int client_config_save(const struct client_config *cfg)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_json_ json_t *o = NULL;
        _cleanup_close_ int fd = -EBADF;
        char *text = NULL;
        size_t len = 0;
        int r;

        r = client_config_path(&path);
        if (r < 0)
                return r;
        o = json_object();
        if (!o || (cfg->url && json_object_set_new(o, "url", json_string(cfg->url)) < 0) ||
            (cfg->token && json_object_set_new(o, "token", json_string(cfg->token)) < 0) ||
            (cfg->ca && json_object_set_new(o, "ca", json_string(cfg->ca)) < 0) ||
            (cfg->pin && json_object_set_new(o, "pin", json_string(cfg->pin)) < 0) ||
            (cfg->cert && json_object_set_new(o, "cert", json_string(cfg->cert)) < 0) ||
            (cfg->key && json_object_set_new(o, "key", json_string(cfg->key)) < 0))
                return log_error_errno(ENOMEM, "%m");
        r = mkdir_parents(path);
        if (r < 0)
                return log_error_errno(r, "cannot create the directory of '%s': %m", path);
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
                tmp = NULL;
                return log_error_errno(ENOMEM, "%m");
        }
        /* mkostemp() creates the file 0600; the fchmod() says it for whoever reads this. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "cannot create '%s': %m", tmp);
        text = json_dumps(o, JSON_INDENT(2));
        if (!text)
                r = -ENOMEM;
        else {
                len = strlen(text);
                r = fchmod(fd, 0600) < 0 ? -errno : 0;
        }
        if (r >= 0)
                r = write_full(fd, text, len);
        if (r >= 0)
                r = write_full(fd, "\n", 1);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (text)
                wipe_free(text, len);
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return log_error_errno(r, "cannot write '%s': %m", path);
        }
        return 0;
}

/* ---- a connection to a node ---- */

struct client {
        CURL *curl;
        char *url;   /* base, without a trailing '/' */
        char *token; /* NULL: none */
        bool token_saved;
        char *ca;  /* PEM text; NULL: the system's CAs */
        char *pin; /* NULL: none */
        /* The CA as a file for curl (its GnuTLS backend takes no CA in memory): a memfd, named
         * through /proc/self/fd. -EBADF: not made yet. */
        int ca_fd;
        char ca_path[64];
        /* A client certificate and its key (PEM texts; NULL: none), as memfds for curl too. */
        char *cert, *key;
        int cert_fd, key_fd;
        char cert_path[64], key_path[64];
        char errbuf[CURL_ERROR_SIZE];
};

struct client *client_free(struct client *c)
{
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->url);
        if (c->token)
                wipe_free(c->token, strlen(c->token));
        free(c->ca);
        free(c->pin);
        (void) safe_close(c->ca_fd);
        free(c->cert);
        if (c->key)
                wipe_free(c->key, strlen(c->key));
        (void) safe_close(c->cert_fd);
        (void) safe_close(c->key_fd);
        free(c);
        return NULL;
}

const char *client_url(const struct client *c)
{
        return c->url;
}

bool client_has_token(const struct client *c)
{
        return c->token != NULL;
}

bool client_token_is_saved(const struct client *c)
{
        return c->token && c->token_saved;
}

const char *client_ca(const struct client *c)
{
        return c->ca;
}

const char *client_pin(const struct client *c)
{
        return c->pin;
}

const char *client_cert(const struct client *c)
{
        return c->cert;
}

const char *client_key(const struct client *c)
{
        return c->key;
}

static bool looks_like_pem_key(const char *s)
{
        return strstr(s, "-----BEGIN ") && strstr(s, "PRIVATE KEY-----");
}

/* Takes cert and key (both NULL: none). */
static void set_cert(struct client *c, char *cert, char *key)
{
        free(c->cert);
        if (c->key)
                wipe_free(c->key, strlen(c->key));
        c->cert = cert;
        c->key = key;
        c->cert_fd = safe_close(c->cert_fd);
        c->key_fd = safe_close(c->key_fd);
}

int client_set_cert_files(struct client *c, const char *cert_path, const char *key_path)
{
        _cleanup_free_ char *cert = NULL;
        char *key = NULL;
        int r;

        if (!cert_path || !key_path) {
                set_cert(c, NULL, NULL);
                return 0;
        }
        r = cert_read_file(cert_path, false, &cert, NULL);
        if (r < 0)
                return log_error_errno(r, "cannot read the certificate '%s': %m", cert_path);
        r = cert_read_file(key_path, true, &key, NULL);
        if (r == -EPERM) {
                log_error("refusing the key '%s': it must be yours and readable by you only "
                          "(chmod 600 %s)",
                          key_path, key_path);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "cannot read the key '%s': %m", key_path);
        /* Both go into the saved configuration, whose fields are bounded. */
        if (strlen(cert) > CLIENT_MAX_CA || strlen(key) > CLIENT_MAX_CA) {
                cert_key_free(key);
                log_error("'%s' or '%s' is larger than %zu bytes", cert_path, key_path,
                          CLIENT_MAX_CA);
                return -EFBIG;
        }
        r = cert_check_pair(cert, key);
        if (r < 0) {
                cert_key_free(key);
                if (r == -EBADMSG)
                        log_error("'%s' is not a PEM certificate", cert_path);
                else if (r == -ENOKEY)
                        log_error("'%s' is not an unencrypted PEM private key", key_path);
                else if (r == -EKEYREJECTED)
                        log_error("the key '%s' does not belong to the certificate '%s'", key_path,
                                  cert_path);
                else if (r == -EKEYEXPIRED)
                        log_error("the certificate '%s' has expired or is not valid yet",
                                  cert_path);
                else
                        log_error_errno(r, "cannot check the certificate '%s': %m", cert_path);
                return r;
        }
        set_cert(c, TAKE_PTR(cert), key);
        return 0;
}

/* Takes pem (NULL: none). */
static void set_ca(struct client *c, char *pem)
{
        free(c->ca);
        c->ca = pem;
        c->ca_fd = safe_close(c->ca_fd);
        c->ca_path[0] = '\0';
}

static bool looks_like_pem_certificate(const char *s)
{
        return strstr(s, "-----BEGIN CERTIFICATE-----") != NULL;
}

/* A CA file named by a user: PEM certificates, bounded; what = "--ca", "WARREN_CA". */
static int read_ca_file(const char *what, const char *path, char **ret)
{
        _cleanup_free_ char *pem = NULL;
        size_t len = 0;
        int r;

        if (path[0] == '\0') {
                log_error("%s is empty: it must name a CA file (PEM)", what);
                return -EINVAL;
        }
        r = client_read_file(path, CLIENT_MAX_CA, &pem, &len);
        if (r < 0)
                return r;
        if (memchr(pem, '\0', len) || !looks_like_pem_certificate(pem)) {
                log_error("%s '%s' is not a PEM certificate file", what, path);
                return -EINVAL;
        }
        *ret = TAKE_PTR(pem);
        return 0;
}

int client_set_ca_file(struct client *c, const char *path)
{
        char *pem = NULL;
        int r;

        if (path) {
                r = read_ca_file("--ca", path, &pem);
                if (r < 0)
                        return r;
        }
        set_ca(c, pem);
        return 0;
}

/* "sha256//" and the standard base64 of 32 bytes. */
static bool pin_valid(const char *pin)
{
        static const char prefix[] = "sha256//";
        _cleanup_free_ char *raw = NULL;
        size_t n = strlen(pin), len = 0;

        if (n != sizeof(prefix) - 1 + 44 || strncmp(pin, prefix, sizeof(prefix) - 1) != 0)
                return false;
        for (const char *p = pin + sizeof(prefix) - 1; *p; p++)
                if (base64_digit(*p, false) < 0 && *p != '=')
                        return false;
        if (client_base64_decode(pin + sizeof(prefix) - 1, 44, &raw, &len) < 0)
                return false;
        return len == 32;
}

int client_set_pin(struct client *c, const char *pin)
{
        char *p = NULL;

        if (pin) {
                if (!pin_valid(pin)) {
                        log_error("invalid pin '%s': it must be sha256// and the base64 of the "
                                  "SHA-256 of the server's public key (44 characters)",
                                  pin);
                        return -EINVAL;
                }
                p = strdup(pin);
                if (!p)
                        return log_error_errno(ENOMEM, "%m");
        }
        free(c->pin);
        c->pin = p;
        return 0;
}

/* The CA as a file curl can open, made once. */
static int ca_file(struct client *c, const char **ret)
{
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (c->ca_fd < 0) {
                fd = memfd_create("warren-ca", MFD_CLOEXEC);
                if (fd < 0)
                        return log_error_errno(errno, "cannot hold the CA certificate: %m");
                r = write_full(fd, c->ca, strlen(c->ca));
                if (r < 0)
                        return log_error_errno(r, "cannot hold the CA certificate: %m");
                (void) snprintf(c->ca_path, sizeof(c->ca_path), "/proc/self/fd/%d", fd);
                c->ca_fd = TAKE_FD(fd);
        }
        *ret = c->ca_path;
        return 0;
}

/* text as a file curl can open, once: *fd and path are filled the first time. */
static int memfd_file(const char *what, const char *text, int *fd, char *path, size_t size)
{
        _cleanup_close_ int f = -EBADF;
        int r;

        if (*fd >= 0)
                return 0;
        f = memfd_create(what, MFD_CLOEXEC);
        if (f < 0)
                return log_error_errno(errno, "cannot hold the %s: %m", what);
        r = write_full(f, text, strlen(text));
        if (r < 0)
                return log_error_errno(r, "cannot hold the %s: %m", what);
        (void) snprintf(path, size, "/proc/self/fd/%d", f);
        *fd = TAKE_FD(f);
        return 0;
}

int client_set_token(struct client *c, const char *token)
{
        char *t = NULL;

        if (token) {
                if (!token_valid(token)) {
                        log_error("the node sent a malformed token");
                        return -EBADMSG;
                }
                t = strdup(token);
                if (!t)
                        return log_error_errno(ENOMEM, "%m");
        }
        if (c->token)
                wipe_free(c->token, strlen(c->token));
        c->token = t;
        c->token_saved = false;
        return 0;
}

const char *client_token(const struct client *c)
{
        return c->token;
}

/* Whether a saved URL is the URL in use (normalised: no trailing '/'). */
static bool same_url(const char *saved, const char *url)
{
        size_t n = strlen(saved);

        while (n > 0 && saved[n - 1] == '/')
                n--;
        return n == strlen(url) && strncmp(saved, url, n) == 0;
}

int client_new(const char *url, unsigned flags, struct client **ret)
{
        _cleanup_(client_config_done) struct client_config cfg = {0};
        _cleanup_(client_freep) struct client *c = NULL;
        const char *env_url = getenv("WARREN_URL"), *env_token = getenv("WARREN_TOKEN");
        const char *env_ca = getenv("WARREN_CA");
        bool have_env_token = env_token && env_token[0];
        int r;

        if (!url && env_url && env_url[0])
                url = env_url;
        /* The saved file is read only when it is needed: WARREN_URL + WARREN_TOKEN work
         * without it (e.g. in a CI job whose HOME is not the user's). */
        if (!url || !have_env_token) {
                r = client_config_load(&cfg);
                if (r < 0)
                        return r;
        }
        if (!url)
                url = cfg.url ? cfg.url : CLIENT_DEFAULT_URL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return log_error_errno(ENOMEM, "%m");
        c->ca_fd = c->cert_fd = c->key_fd = -EBADF;
        r = url_normalize(url, &c->url);
        if (r < 0)
                return r;
        if (env_ca && env_ca[0]) {
                r = read_ca_file("WARREN_CA", env_ca, &c->ca);
                if (r < 0)
                        return r;
        }
        if (have_env_token) {
                if (!token_valid(env_token)) {
                        log_error("WARREN_TOKEN is malformed: it must be 1..%d printable "
                                  "characters without spaces",
                                  CLIENT_MAX_TOKEN);
                        return -EINVAL;
                }
                c->token = strdup(env_token);
                if (!c->token)
                        return log_error_errno(ENOMEM, "%m");
        } else if (cfg.token && cfg.url && token_valid(cfg.token) && same_url(cfg.url, c->url)) {
                /* A saved token goes only to the node it came from. */
                c->token = TAKE_PTR(cfg.token);
                c->token_saved = true;
        }
        /* So do a saved CA and pin: they are that node's. */
        if (cfg.url && same_url(cfg.url, c->url)) {
                if (!c->ca && cfg.ca && looks_like_pem_certificate(cfg.ca))
                        c->ca = TAKE_PTR(cfg.ca);
                if (cfg.pin && pin_valid(cfg.pin))
                        c->pin = TAKE_PTR(cfg.pin);
                if (cfg.cert && cfg.key && looks_like_pem_certificate(cfg.cert) &&
                    looks_like_pem_key(cfg.key)) {
                        c->cert = TAKE_PTR(cfg.cert);
                        c->key = TAKE_PTR(cfg.key);
                }
        }
        if ((flags & CLIENT_NEED_TOKEN) && !c->token && !c->cert) {
                log_error("not logged in to %s; run 'warren login' or set WARREN_TOKEN", c->url);
                return -ENOKEY;
        }

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                log_error("cannot initialise libcurl");
                return -EIO;
        }
        c->curl = curl_easy_init();
        if (!c->curl) {
                log_error("cannot initialise libcurl");
                return -ENOMEM;
        }
        /* Writes to a closed pipe (`warren jobs | head`) fail with EPIPE instead of killing. */
        (void) signal(SIGPIPE, SIG_IGN);
        *ret = TAKE_PTR(c);
        return 0;
}

void client_error_log(const struct client *c, const struct client_error *e)
{
        if (e->code[0])
                log_error("%s (%s)", e->message[0] ? e->message : "error", e->code);
        else
                log_error("%s: HTTP %ld", c->url, e->status);
}

struct buffer {
        char *data;
        size_t len, cap, max;
        bool too_big;
};

static void buffer_done(struct buffer *b)
{
        free(b->data);
        *b = (struct buffer){0};
}

static int buffer_append(struct buffer *b, const char *p, size_t n)
{
        if (n > b->max - b->len) {
                b->too_big = true;
                return -E2BIG;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *d;

                while (cap < b->len + n + 1)
                        cap *= 2;
                if (cap > b->max + 1)
                        cap = b->max + 1;
                d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

static size_t buffer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        size_t n = size * nmemb;

        return buffer_append(userdata, ptr, n) < 0 ? 0 : n;
}

static void parse_error(const char *data, size_t len, long status, struct client_error *e)
{
        _cleanup_json_ json_t *root = NULL;
        const struct json_limits limits = {MAX_ERROR_BODY, 8, 256};
        const char *code = NULL, *message = NULL;
        struct json_error err;

        *e = (struct client_error){.status = status};
        if (!data || json_parse_strict_limits(data, len, &limits, &root, &err) < 0)
                return;
        if (json_get_string(root, "error.code", sizeof(e->code) - 1, &code, NULL, &err) <= 0 ||
            json_get_string(root, "error.message", 4096, &message, NULL, &err) < 0)
                return;
        for (const char *p = code; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return;
        (void) snprintf(e->code, sizeof(e->code), "%s", code);
        if (message)
                copy_line(e->message, sizeof(e->message), message, strlen(message));
}

static int slist_add(struct curl_slist **l, const char *s)
{
        struct curl_slist *n = curl_slist_append(*l, s);

        if (!n)
                return -ENOMEM;
        *l = n;
        return 0;
}

/*
 * The server is verified on every request (curl_easy_reset() brings back curl's defaults, which
 * verify too, but saying it here keeps it true whatever they become). A CA of our own replaces
 * the system's: CAPATH is cleared, as curl's default directory would add them back.
 */
static int tls_setup(struct client *c)
{
        const char *path = NULL;
        int r;

        if (curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2) !=
            CURLE_OK) {
                log_error("this libcurl cannot insist on TLS 1.2 or later");
                return -EOPNOTSUPP;
        }
        (void) curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
        (void) curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->ca) {
                r = ca_file(c, &path);
                if (r < 0)
                        return r;
                (void) curl_easy_setopt(c->curl, CURLOPT_CAINFO, path);
                (void) curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
        }
        if (c->cert) {
                r = memfd_file("warren-client-cert", c->cert, &c->cert_fd, c->cert_path,
                               sizeof(c->cert_path));
                if (r >= 0)
                        r = memfd_file("warren-client-key", c->key, &c->key_fd, c->key_path,
                                       sizeof(c->key_path));
                if (r < 0)
                        return r;
                (void) curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->cert_path);
                (void) curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
                (void) curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->key_path);
                (void) curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (c->pin) {
                if (curl_easy_setopt(c->curl, CURLOPT_PINNEDPUBLICKEY, c->pin) != CURLE_OK) {
                        log_error("this libcurl cannot check a pinned public key");
                        return -EOPNOTSUPP;
                }
                /* A pin without a CA of our own: the key is the server's identity. */
                if (!c->ca) {
                        (void) curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
                        (void) curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
                }
        }
        return 0;
}

/* Everything a request shares; headers are built here and freed by the caller. */
static int request_setup(struct client *c, const char *method, const char *path, const char *accept,
                         const char *content_type, struct curl_slist **ret_headers)
{
        _cleanup_free_ char *full = NULL;
        struct curl_slist *h = NULL;
        char auth[sizeof("Authorization: Bearer ") + CLIENT_MAX_TOKEN];
        int r;

        curl_easy_reset(c->curl);
        if (asprintf(&full, "%s%s", c->url, path) < 0) {
                full = NULL;
                return log_error_errno(ENOMEM, "%m");
        }
        c->errbuf[0] = '\0';
        if (curl_easy_setopt(c->curl, CURLOPT_URL, full) != CURLE_OK) {
                log_error("invalid URL '%s'", full);
                return -EINVAL;
        }
        (void) curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
        (void) curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "warren/" WARREN_VERSION);
        (void) curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
        (void) curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        (void) curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, IDLE_TIMEOUT_S);
        (void) curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
        (void) curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        (void) curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif

        if (strncmp(c->url, "https://", 8) == 0) {
                r = tls_setup(c);
                if (r < 0)
                        return r;
        }

        if (strcmp(method, "GET") == 0)
                (void) curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        else if (strcmp(method, "POST") == 0)
                (void) curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        else
                (void) curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);

        r = slist_add(&h, accept);
        if (r >= 0)
                r = slist_add(&h, "Expect:"); /* no 100-continue round trip */
        if (r >= 0)
                /* Without a body, no Content-Type (curl would say form-urlencoded). */
                r = slist_add(&h, content_type ? content_type : "Content-Type:");
        if (r >= 0 && c->token) {
                (void) snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
                r = slist_add(&h, auth);
                explicit_bzero(auth, sizeof(auth));
        }
        if (r < 0) {
                curl_slist_free_all(h);
                return log_error_errno(r, "%m");
        }
        (void) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
        *ret_headers = h;
        return 0;
}

/* Says why a transfer failed, once; a negative errno. */
static int transfer_error(struct client *c, CURLcode cc)
{
        size_t n = strlen(c->errbuf);
        char why[CURL_ERROR_SIZE];

        while (n > 0 && (c->errbuf[n - 1] == '\n' || c->errbuf[n - 1] == '.'))
                n--;
        if (n == 0) {
                const char *s = curl_easy_strerror(cc);
                copy_line(why, sizeof(why), s, strlen(s));
        } else
                copy_line(why, sizeof(why), c->errbuf, n);

        switch ((int) cc) { /* curl's codes: only these few get their own words */
        case CURLE_COULDNT_CONNECT:
                log_error("cannot reach %s: %s", c->url, why);
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                log_error("cannot reach %s: %s", c->url, why);
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                log_error("%s did not answer in time: %s", c->url, why);
                return -ETIMEDOUT;
        case CURLE_PEER_FAILED_VERIFICATION:
                log_error("cannot reach %s: the server's certificate is not trusted (%s)", c->url,
                          why);
                return -EPROTO;
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                log_error("cannot reach %s: the server's public key does not match the pin (%s)",
                          c->url, why);
                return -EPROTO;
        case CURLE_SSL_CACERT_BADFILE:
                log_error("cannot reach %s: the CA certificate cannot be used (%s)", c->url, why);
                return -EPROTO;
        case CURLE_SSL_CONNECT_ERROR:
                log_error("cannot reach %s securely: %s", c->url, why);
                return -EPROTO;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
                log_error("lost the connection to %s: %s", c->url, why);
                return -ECONNRESET;
        default:
                log_error("%s: %s", c->url, why);
                return -EIO;
        }
}

static long response_code(struct client *c)
{
        long status = 0;

        (void) curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        return status;
}

static int call_perform(struct client *c, struct curl_slist *headers, json_t **ret_reply,
                        struct client_error *ret_err);

int client_call_raw(struct client *c, const char *method, const char *path, const char *body,
                    size_t body_len, json_t **ret_reply, struct client_error *ret_err)
{
        struct curl_slist *headers = NULL;
        int r;

        r = request_setup(c, method, path, "Accept: application/json",
                          body ? "Content-Type: application/json" : NULL, &headers);
        if (r < 0)
                return r;
        if (body || strcmp(method, "POST") == 0) {
                (void) curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                                        (curl_off_t) (body ? body_len : 0));
                (void) curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
        }
        return call_perform(c, headers, ret_reply, ret_err);
}

/* Runs a prepared request whose reply is JSON (or an API error), and frees its headers. */
static int call_perform(struct client *c, struct curl_slist *headers, json_t **ret_reply,
                        struct client_error *ret_err)
{
        _cleanup_(buffer_done) struct buffer b = {.max = CLIENT_MAX_REPLY};
        _cleanup_json_ json_t *reply = NULL;
        const struct json_limits limits = {CLIENT_MAX_REPLY, 64, (size_t) 1 << 24};
        struct json_error err;
        CURLcode cc;
        long status;
        int r;

        (void) curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, buffer_write);
        (void) curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
        cc = curl_easy_perform(c->curl);
        curl_slist_free_all(headers);
        if (cc == CURLE_WRITE_ERROR && b.too_big) {
                log_error("the reply from %s is larger than %zu MiB", c->url,
                          CLIENT_MAX_REPLY >> 20);
                return -E2BIG;
        }
        if (cc != CURLE_OK)
                return transfer_error(c, cc);

        status = response_code(c);
        if (status < 200 || status > 299) {
                struct client_error e;

                parse_error(b.data, b.len, status, &e);
                if (ret_err)
                        *ret_err = e;
                else
                        client_error_log(c, &e);
                return -EREMOTEIO;
        }
        if (b.len > 0) {
                r = json_parse_strict_limits(b.data, b.len, &limits, &reply, &err);
                if (r < 0) {
                        log_error("malformed reply from %s: %s", c->url, err.message);
                        return -EBADMSG;
                }
        }
        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return (int) status;
}

struct upload_src {
        int fd;
        int error;
};

static size_t upload_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
        struct upload_src *u = userdata;
        ssize_t n;

        do
                n = read(u->fd, buf, size * nmemb);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                u->error = -errno;
                return CURL_READFUNC_ABORT;
        }
        return (size_t) n;
}

int client_upload(struct client *c, const char *path, int fd, json_t **ret_reply,
                  struct client_error *ret_err)
{
        struct upload_src u = {.fd = fd};
        struct curl_slist *headers = NULL;
        struct stat st;
        int r;

        r = request_setup(c, "POST", path, "Accept: application/json",
                          "Content-Type: application/octet-stream", &headers);
        if (r < 0)
                return r;
        (void) curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, upload_read);
        (void) curl_easy_setopt(c->curl, CURLOPT_READDATA, &u);
        /* A file's size is told (the node refuses too large at once); a pipe goes chunked. */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                (void) curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                                        (curl_off_t) st.st_size);
        else {
                r = slist_add(&headers, "Transfer-Encoding: chunked");
                if (r < 0) {
                        curl_slist_free_all(headers);
                        return log_error_errno(r, "%m");
                }
                (void) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        }
        r = call_perform(c, headers, ret_reply, ret_err);
        if (u.error < 0)
                return log_error_errno(u.error, "cannot read the file to upload: %m");
        return r;
}

int client_call(struct client *c, const char *method, const char *path, const json_t *body,
                json_t **ret_reply, struct client_error *ret_err)
{
        char *text = NULL;
        size_t len = 0;
        int r;

        if (body) {
                text = json_dumps(body, JSON_COMPACT);
                if (!text)
                        return log_error_errno(ENOMEM, "%m");
                len = strlen(text);
        }
        r = client_call_raw(c, method, path, text, len, ret_reply, ret_err);
        /* The body may carry a password. */
        if (text)
                wipe_free(text, len);
        return r;
}

/*
 * A reply read as it comes (a download, an event stream): its status is known at its first byte;
 * a 2xx body goes to on_body, an error reply's is kept for its message.
 */
struct stream {
        struct client *c;
        long status;       /* 0: not known yet */
        struct buffer err; /* an error reply's body, up to MAX_ERROR_BODY */
        int (*on_body)(void *userdata, const char *p, size_t n); /* != 0: stop the transfer */
        void *userdata;
};

/* A GET whose reply is read as it comes; the headers are the caller's to free (or to send). */
static int stream_setup(struct stream *st, struct client *c, const char *path, const char *accept,
                        struct curl_slist **ret_headers)
{
        st->c = c;
        st->err = (struct buffer){.max = MAX_ERROR_BODY};
        return request_setup(c, "GET", path, accept, NULL, ret_headers);
}

static void stream_done(struct stream *st)
{
        buffer_done(&st->err);
}

static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct stream *st = userdata;
        size_t n = size * nmemb;

        if (st->status == 0)
                st->status = response_code(st->c);
        if (st->status >= 200 && st->status <= 299)
                return st->on_body(st->userdata, ptr, n) == 0 ? n : 0;
        /* Beyond MAX_ERROR_BODY, an error body is dropped without failing the transfer. */
        if (st->err.len < MAX_ERROR_BODY)
                (void) buffer_append(
                        &st->err, ptr,
                        n < MAX_ERROR_BODY - st->err.len ? n : MAX_ERROR_BODY - st->err.len);
        return n;
}

/* Runs the request request_setup() prepared, and frees its headers. */
static CURLcode stream_perform(struct stream *st, struct curl_slist *headers)
{
        CURLcode cc;

        (void) curl_easy_setopt(st->c->curl, CURLOPT_WRITEFUNCTION, stream_write);
        (void) curl_easy_setopt(st->c->curl, CURLOPT_WRITEDATA, st);
        cc = curl_easy_perform(st->c->curl);
        curl_slist_free_all(headers);
        if (st->status == 0)
                st->status = response_code(st->c);
        return cc;
}

/* Says why a streamed request failed: the transfer, else the node's error reply. */
static int stream_error(struct stream *st, CURLcode cc)
{
        struct client_error e;

        if (cc != CURLE_OK)
                return transfer_error(st->c, cc);
        parse_error(st->err.data, st->err.len, st->status, &e);
        client_error_log(st->c, &e);
        return -EREMOTEIO;
}

struct download {
        int fd;
        uint64_t max, size;
        bool too_big;
        int write_error;
};

static int download_body(void *userdata, const char *p, size_t n)
{
        struct download *d = userdata;
        int r;

        if (n > d->max - d->size) {
                d->too_big = true;
                return -E2BIG;
        }
        r = write_full(d->fd, p, n);
        if (r < 0) {
                d->write_error = r;
                return r;
        }
        d->size += n;
        return 0;
}

int client_download(struct client *c, const char *path, int fd, uint64_t max, uint64_t *ret_size)
{
        struct download d = {.fd = fd, .max = max};
        _cleanup_(stream_done) struct stream st = {.on_body = download_body, .userdata = &d};
        struct curl_slist *headers = NULL;
        CURLcode cc;
        int r;

        r = stream_setup(&st, c, path, "Accept: application/octet-stream", &headers);
        if (r < 0)
                return r;
        cc = stream_perform(&st, headers);
        if (cc == CURLE_WRITE_ERROR && d.too_big) {
                log_error("%s%s is larger than announced", c->url, path);
                return -E2BIG;
        }
        if (cc == CURLE_WRITE_ERROR && d.write_error < 0) {
                /* A reader that went away (`warren logs ID | head`) is not an error to tell. */
                if (d.write_error == -EPIPE)
                        return -EPIPE;
                return log_error_errno(d.write_error, "cannot write the output: %m");
        }
        if (cc != CURLE_OK || st.status < 200 || st.status > 299)
                return stream_error(&st, cc);
        if (ret_size)
                *ret_size = d.size;
        return 0;
}

/* ---- Server-Sent Events (the WHATWG HTML "event stream" format) ---- */

struct sse {
        struct buffer line; /* the line being read */
        struct buffer data; /* the event's data lines */
        bool after_cr;      /* the last line ended with '\r': a '\n' next belongs to it */
        bool started;       /* past a leading byte order mark */
        bool has_data;
        char name[64];
        char id[128];
        client_event_fn on_event;
        client_tick_fn on_tick;
        void *userdata;
        int result; /* from on_event: > 0 stop, < 0 failed; -E2BIG: a line too long */
};

static int sse_dispatch(struct sse *s)
{
        struct client_event ev;
        int r = 0;

        if (s->has_data) {
                /* The data lines were joined with '\n' after each; the last one goes. */
                if (s->data.len > 0 && s->data.data[s->data.len - 1] == '\n')
                        s->data.data[--s->data.len] = '\0';
                ev = (struct client_event){
                        .name = s->name[0] ? s->name : "message",
                        .data = s->data.data ? s->data.data : "",
                        .len = s->data.len,
                        .id = s->id,
                };
                r = s->on_event(&ev, s->userdata);
        }
        s->has_data = false;
        s->data.len = 0;
        s->name[0] = '\0';
        return r;
}

static int sse_line(struct sse *s)
{
        const char *line = s->line.data ? s->line.data : "", *value, *colon;
        size_t len = s->line.len, name_len, value_len;

        if (len == 0)
                return sse_dispatch(s);
        if (line[0] == ':')
                return 0; /* a comment: a keep-alive */
        colon = memchr(line, ':', len);
        name_len = colon ? (size_t) (colon - line) : len;
        value = colon ? colon + 1 : line + len;
        value_len = len - (size_t) (value - line);
        if (value_len > 0 && value[0] == ' ') {
                value++;
                value_len--;
        }
        if (name_len == 4 && memcmp(line, "data", 4) == 0) {
                if (buffer_append(&s->data, value, value_len) < 0 ||
                    buffer_append(&s->data, "\n", 1) < 0)
                        return -E2BIG;
                s->has_data = true;
        } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
                copy_line(s->name, sizeof(s->name), value, value_len);
        } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
                if (value_len < sizeof(s->id) && !memchr(value, '\0', value_len)) {
                        memcpy(s->id, value, value_len);
                        s->id[value_len] = '\0';
                }
        }
        /* "retry" and unknown fields are ignored, as the format says. */
        return 0;
}

static int sse_feed(struct sse *s, const char *p, size_t n)
{
        int r;

        if (!s->started) {
                /* A byte order mark may open the stream. */
                if (s->line.len == 0 && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
                        p += 3;
                        n -= 3;
                }
                s->started = true;
        }
        while (n > 0) {
                size_t i = 0;

                if (s->after_cr) {
                        s->after_cr = false;
                        if (p[0] == '\n') {
                                p++;
                                n--;
                                continue;
                        }
                }
                while (i < n && p[i] != '\n' && p[i] != '\r')
                        i++;
                if (buffer_append(&s->line, p, i) < 0)
                        return -E2BIG;
                if (i == n)
                        return 0;
                s->after_cr = p[i] == '\r';
                r = sse_line(s);
                s->line.len = 0;
                if (r != 0)
                        return r;
                p += i + 1;
                n -= i + 1;
        }
        return 0;
}

static int sse_body(void *userdata, const char *p, size_t n)
{
        struct sse *s = userdata;

        s->result = sse_feed(s, p, n);
        return s->result;
}

static int sse_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
        struct sse *s = userdata;

        if (s->on_tick)
                s->on_tick(s->userdata);
        return 0;
}

int client_events(struct client *c, const char *path, const char *last_id, client_event_fn on_event,
                  client_tick_fn on_tick, void *userdata)
{
        struct sse s = {
                .line = {.max = CLIENT_MAX_SSE_LINE},
                .data = {.max = CLIENT_MAX_SSE_EVENT},
                .on_event = on_event,
                .on_tick = on_tick,
                .userdata = userdata,
        };
        _cleanup_(stream_done) struct stream st = {.on_body = sse_body, .userdata = &s};
        struct curl_slist *headers = NULL;
        _cleanup_free_ char *last = NULL;
        CURLcode cc;
        int r;

        r = stream_setup(&st, c, path, "Accept: text/event-stream", &headers);
        if (r < 0)
                return r;
        if (last_id && last_id[0]) {
                if (asprintf(&last, "Last-Event-ID: %s", last_id) < 0) {
                        last = NULL;
                        curl_slist_free_all(headers);
                        return log_error_errno(ENOMEM, "%m");
                }
                r = slist_add(&headers, last);
                if (r < 0) {
                        curl_slist_free_all(headers);
                        return log_error_errno(r, "%m");
                }
                (void) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        }
        (void) curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, sse_progress);
        (void) curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &s);
        (void) curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
        cc = stream_perform(&st, headers);
        buffer_done(&s.line);
        buffer_done(&s.data);

        if (cc == CURLE_WRITE_ERROR && s.result != 0) {
                if (s.result == -E2BIG) {
                        log_error("the event stream from %s has a line or event over %zu MiB",
                                  c->url, CLIENT_MAX_SSE_EVENT >> 20);
                        return -E2BIG;
                }
                return s.result > 0 ? 1 : s.result;
        }
        if (st.status >= 200 && st.status <= 299) {
                /* A stream cut in the middle is the caller's to resume, not an error yet. */
                if (cc != CURLE_OK)
                        log_debug("the event stream from %s broke: %s", c->url,
                                  curl_easy_strerror(cc));
                return 0;
        }
        return stream_error(&st, cc);
}

/* ---- what the commands share ---- */

char *client_escape(const char *segment)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(segment), o = 0;
        bool all_dots = strspn(segment, ".") == n;
        char *out = malloc(3 * n + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) segment[i];
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '~' ||
                    (ch == '.' && !all_dots))
                        out[o++] = (char) ch;
                else {
                        out[o++] = '%';
                        out[o++] = hex[ch >> 4];
                        out[o++] = hex[ch & 15];
                }
        }
        out[o] = '\0';
        return out;
}

int client_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *out = malloc(len / 4 * 3 + 3 + 1);
        uint32_t acc = 0;
        unsigned bits = 0;
        size_t o = 0, i;

        if (!out)
                return -ENOMEM;
        for (i = 0; i < len && s[i] != '='; i++) {
                int d = base64_digit(s[i], false);
                if (d < 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t) d;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char) ((acc >> bits) & 0xff);
                }
        }
        for (; i < len; i++)
                if (s[i] != '=')
                        return -EINVAL;
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

json_t *client_content_json(const char *data, size_t len)
{
        _cleanup_free_ char *b64 = NULL;

        if (utf8_valid(data, len))
                return json_stringn(data, len);
        b64 = base64_encode(data, len);
        if (!b64)
                return NULL;
        return json_pack("{s:s}", "base64", b64);
}

int client_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        bool is_stdin = strcmp(path, "-") == 0;
        const char *name = is_stdin ? "stdin" : path;
        size_t len = 0, cap = 0;

        if (!is_stdin) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(errno, "cannot open '%s': %m", path);
        }
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        size_t ncap = cap ? cap * 2 : 65536;
                        char *b;

                        if (ncap > max + 1)
                                ncap = max + 1;
                        if (ncap <= cap) {
                                log_error("'%s' is larger than %zu bytes", name, max);
                                return -EFBIG;
                        }
                        b = realloc(buf, ncap + 1);
                        if (!b)
                                return log_error_errno(ENOMEM, "%m");
                        buf = b;
                        cap = ncap;
                }
                n = read(is_stdin ? STDIN_FILENO : fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "cannot read '%s': %m", name);
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max) {
                        log_error("'%s' is larger than %zu bytes", name, max);
                        return -EFBIG;
                }
        }
        if (!buf && !(buf = malloc(1)))
                return log_error_errno(ENOMEM, "%m");
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The signal that interrupted a prompt: the terminal's echo is restored before it acts. A
 * global, because a signal handler has nowhere else to write. */
static volatile sig_atomic_t prompt_signal;

static void prompt_on_signal(int sig)
{
        prompt_signal = sig;
}

/* Reads one line from fd (without its '\n', '\r\n'), at most max bytes. */
static int read_line(int fd, size_t max, char **ret, size_t *ret_len)
{
        char *buf = malloc(max + 2);
        size_t len = 0;
        bool too_long = false;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                char ch;
                ssize_t n = read(fd, &ch, 1);

                if (n < 0) {
                        if (errno == EINTR && !prompt_signal)
                                continue;
                        int r = -errno;
                        wipe_free(buf, max + 2);
                        return r;
                }
                if (n == 0 || ch == '\n')
                        break;
                if (len <= max)
                        buf[len++] = ch;
                else
                        too_long = true;
        }
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        if (too_long || len > max) {
                wipe_free(buf, max + 2);
                return -E2BIG;
        }
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

int client_prompt(const char *prompt, bool echo, char **ret)
{
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        struct sigaction sa = {.sa_handler = prompt_on_signal}, old[ELEMENTSOF(sigs)];
        _cleanup_close_ int fd = -EBADF;
        struct termios saved, t;
        bool restore = false;
        size_t len;
        char *line = NULL;
        int r;

        fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -ENXIO;
        /* No SA_RESTART: the read must return so that the echo comes back before we die. */
        sigemptyset(&sa.sa_mask);
        prompt_signal = 0;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                (void) sigaction(sigs[i], &sa, &old[i]);
        if (!echo && tcgetattr(fd, &saved) == 0) {
                t = saved;
                t.c_lflag &= ~(tcflag_t) ECHO;
                t.c_lflag |= ECHONL;
                restore = tcsetattr(fd, TCSAFLUSH, &t) == 0;
        }
        r = write_full(fd, prompt, strlen(prompt));
        if (r >= 0)
                r = read_line(fd, CLIENT_MAX_PASSWORD, &line, &len);
        if (restore)
                (void) tcsetattr(fd, TCSAFLUSH, &saved);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                (void) sigaction(sigs[i], &old[i], NULL);
        if (prompt_signal) {
                if (restore)
                        (void) write_full(fd, "\n", 1);
                client_password_free(line);
                (void) raise(prompt_signal);
                return -EINTR;
        }
        if (r < 0)
                return r;
        *ret = line;
        return 0;
}

void client_password_free(char *p)
{
        if (p)
                wipe_free(p, strlen(p));
}

int client_read_password(const char *prompt, bool from_stdin, bool confirm, char **ret)
{
        char *p = NULL, *again = NULL;
        size_t len;
        int r;

        if (from_stdin) {
                r = read_line(STDIN_FILENO, CLIENT_MAX_PASSWORD, &p, &len);
                if (r == -E2BIG) {
                        log_error("the password is longer than %d bytes", CLIENT_MAX_PASSWORD);
                        return r;
                }
                if (r < 0)
                        return log_error_errno(r, "cannot read the password from stdin: %m");
        } else {
                r = client_prompt(prompt, false, &p);
                if (r == -ENXIO) {
                        log_error("no terminal to ask for the password on; use "
                                  "--password-stdin");
                        return r;
                }
                if (r == -E2BIG) {
                        log_error("the password is longer than %d bytes", CLIENT_MAX_PASSWORD);
                        return r;
                }
                if (r < 0)
                        return log_error_errno(r, "cannot read the password: %m");
                if (p[0] && confirm) {
                        r = client_prompt("Again: ", false, &again);
                        if (r < 0) {
                                client_password_free(p);
                                return log_error_errno(r, "cannot read the password: %m");
                        }
                        r = strcmp(p, again) == 0 ? 0 : -EINVAL;
                        client_password_free(again);
                        if (r < 0) {
                                client_password_free(p);
                                log_error("the passwords do not match");
                                return r;
                        }
                }
        }
        if (p[0] == '\0') {
                client_password_free(p);
                log_error("empty password");
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

const char *client_json_str(const json_t *obj, const char *key)
{
        json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

        return json_is_string(v) ? json_string_value(v) : NULL;
}

int client_print_json(const json_t *j)
{
        _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

        if (!text)
                return log_error_errno(ENOMEM, "%m");
        if (puts(text) < 0 || fflush(stdout) != 0)
                return log_error_errno(errno, "cannot write to stdout: %m");
        return 0;
}

void client_print_cell(const char *s, int width, bool last)
{
        char cell[512];
        int shown = 0;

        copy_line(cell, sizeof(cell), s ? s : "-", s ? strlen(s) : 1);
        (void) fputs(cell, stdout);
        if (last) {
                (void) fputc('\n', stdout);
                return;
        }
        /* Width in characters, not bytes. */
        for (const char *p = cell; *p; p++)
                if (((unsigned char) *p & 0xc0) != 0x80)
                        shown++;
        for (; shown < width; shown++)
                (void) fputc(' ', stdout);
        (void) fputs("  ", stdout);
}

int client_print_list(struct client *c, const char *cmd, const struct client_list *list, bool json)
{
        _cleanup_json_ json_t *reply = NULL;
        const json_t *array, *element;
        size_t i;

        if (client_call(c, "GET", list->path, NULL, &reply, NULL) < 0)
                return 1;
        if (json)
                return client_print_json(reply) < 0 ? 1 : 0;
        array = json_object_get(reply, list->key);
        if (!json_is_array(array)) {
                log_error("%s: the reply from %s has no %s list", cmd, client_url(c), list->what);
                return 1;
        }
        for (size_t k = 0; list->columns[k].title; k++)
                client_print_cell(list->columns[k].title, list->columns[k].width,
                                  !list->columns[k + 1].title);
        json_array_foreach(array, i, element)
        {
                for (size_t k = 0; list->columns[k].title; k++)
                        client_print_cell(client_json_str(element, list->columns[k].key),
                                          list->columns[k].width, !list->columns[k + 1].title);
        }
        return fflush(stdout) == 0 ? 0 : 1;
}

/* Prints why a step did not simply exit; returns whether it did. */
static bool explain_step(const char *which, const json_t *step)
{
        const json_t *report = json_object_get(step, "report");
        const char *status = client_json_str(report, "status");
        const char *error = client_json_str(report, "error");
        json_t *sig = json_object_get(report, "signal");
        char err[256];

        if (!status || strcmp(status, "exited") == 0)
                return true;
        copy_line(err, sizeof(err), error ? error : "", error ? strlen(error) : 0);
        if (strcmp(status, "signaled") == 0 && json_is_integer(sig))
                log_error("%s stopped: killed by signal %d", which, (int) json_integer_value(sig));
        else if (err[0])
                log_error("%s stopped: %s: %s", which, status, err);
        else {
                char s[64];
                copy_line(s, sizeof(s), status, strlen(status));
                log_error("%s stopped: %s", which, s);
        }
        return false;
}

int client_job_exit_code(const json_t *job, bool explain)
{
        const char *state = client_json_str(job, "state");
        const json_t *result = json_object_get(job, "result");
        const json_t *code = json_object_get(result, "exit_code");
        const json_t *build = json_object_get(result, "build");
        const json_t *run = json_object_get(result, "run");
        const char *error = client_json_str(job, "error");
        char line[512];

        if (state && strcmp(state, "finished") == 0 && json_is_integer(code)) {
                json_int_t v = json_integer_value(code);

                if (explain) {
                        if (run)
                                (void) explain_step("job", run);
                        else if (build && explain_step("the build", build) && v != 0)
                                log_error("the build failed with exit code %d", (int) v);
                }
                return v >= 0 && v <= 255 ? (int) v : 125;
        }
        if (explain) {
                copy_line(line, sizeof(line), error ? error : "", error ? strlen(error) : 0);
                if (state && strcmp(state, "cancelled") == 0)
                        log_error("job cancelled");
                else if (state && strcmp(state, "failed") == 0)
                        log_error("job failed: %s", line[0] ? line : "no reason given");
                else if (state && strcmp(state, "finished") == 0)
                        log_error("job finished without an exit code");
                else {
                        copy_line(line, sizeof(line), state ? state : "?",
                                  state ? strlen(state) : 1);
                        log_error("job has not ended (%s)", line);
                }
        }
        return 125;
}

static bool state_ended(const char *state)
{
        return state && (strcmp(state, "finished") == 0 || strcmp(state, "cancelled") == 0 ||
                         strcmp(state, "failed") == 0);
}

struct follow {
        unsigned flags;
        char state[16];
        uint64_t start_ns;
        long shown_s; /* seconds shown on the progress line; -1: none shown */
        bool output_started;
        bool stdout_broken;
        bool got_output;
        bool got_new; /* an event this connection had not seen before */
        uint64_t last_seq;
        bool have_seq;
        char last_id[128];
        json_t *job; /* the end event's */
};

static void follow_clear_progress(struct follow *f)
{
        if (f->shown_s >= 0) {
                (void) fputs("\r\033[K", stderr);
                (void) fflush(stderr);
                f->shown_s = -1;
        }
}

static void follow_tick(void *userdata)
{
        struct follow *f = userdata;
        long s;

        if (!(f->flags & CLIENT_FOLLOW_PROGRESS) || f->output_started)
                return;
        s = (long) ((now_ns(CLOCK_MONOTONIC) - f->start_ns) / UINT64_C(1000000000));
        if (s == f->shown_s)
                return;
        f->shown_s = s;
        (void) fprintf(stderr, "\r%s\xe2\x80\xa6 %ld s\033[K", f->state, s);
        (void) fflush(stderr);
}

static int follow_output(struct follow *f, const json_t *o)
{
        const char *step = client_json_str(o, "step"), *stream = client_json_str(o, "stream");
        const json_t *text = json_object_get(o, "text"), *b64 = json_object_get(o, "base64");
        _cleanup_free_ char *bytes = NULL;
        const char *data;
        size_t len;
        int fd, r;

        if (!step || !stream)
                return 0;
        if (json_is_string(text)) {
                data = json_string_value(text);
                len = json_string_length(text);
        } else if (json_is_string(b64)) {
                r = client_base64_decode(json_string_value(b64), json_string_length(b64), &bytes,
                                         &len);
                if (r < 0)
                        return 0;
                data = bytes;
        } else
                return 0;
        f->got_output = true;
        if (f->flags & CLIENT_FOLLOW_QUIET)
                return 0;
        if (!f->output_started) {
                follow_clear_progress(f);
                f->output_started = true;
        }
        fd = strcmp(step, "run") == 0 && strcmp(stream, "stdout") == 0 ? STDOUT_FILENO
                                                                       : STDERR_FILENO;
        if (fd == STDOUT_FILENO && f->stdout_broken)
                return 0;
        r = write_full(fd, data, len);
        if (r < 0 && fd == STDOUT_FILENO)
                f->stdout_broken = true; /* a closed pipe: the job still runs to its end */
        return 0;
}

static int follow_event(const struct client_event *ev, void *userdata)
{
        struct follow *f = userdata;
        _cleanup_json_ json_t *o = NULL;
        struct json_error err;
        uint64_t seq;

        /*
         * Ids are a job's event numbers: after a reconnection, skip what was already seen. Never
         * the end, though: a node that has forgotten a job's events numbers its end afresh.
         */
        if (parse_uint(ev->id, 0, UINT64_MAX, &seq) >= 0 && strcmp(ev->name, "end") != 0) {
                if (f->have_seq && seq <= f->last_seq)
                        return 0;
                f->have_seq = true;
                f->last_seq = seq;
        }
        (void) snprintf(f->last_id, sizeof(f->last_id), "%s", ev->id);
        f->got_new = true;

        if (json_parse_strict_limits(
                    ev->data, ev->len,
                    &(const struct json_limits){CLIENT_MAX_SSE_EVENT, 64, (size_t) 1 << 20}, &o,
                    &err) < 0) {
                log_debug("ignoring a malformed '%s' event: %s", ev->name, err.message);
                return 0;
        }
        if (strcmp(ev->name, "output") == 0)
                return follow_output(f, o);
        if (strcmp(ev->name, "state") == 0) {
                const char *s = client_json_str(o, "state");
                if (s)
                        copy_line(f->state, sizeof(f->state), s, strlen(s));
                return 0;
        }
        if (strcmp(ev->name, "end") == 0) {
                json_decref(f->job);
                f->job = TAKE_PTR(o);
                return 1;
        }
        return 0;
}

/* Without event ids to resume from, the job's end is waited for through its resource. */
static int follow_wait_end(struct client *c, const char *escaped, json_t **ret_job)
{
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "/api/v1/jobs/%s?wait=true&timeout=600", escaped) < 0)
                return log_error_errno(ENOMEM, "%m");
        for (;;) {
                _cleanup_json_ json_t *job = NULL;
                int r = client_call(c, "GET", path, NULL, &job, NULL);

                if (r < 0)
                        return r;
                if (state_ended(client_json_str(job, "state"))) {
                        *ret_job = TAKE_PTR(job);
                        return 0;
                }
        }
}

int client_follow_job(struct client *c, const char *id, const json_t *known, unsigned flags,
                      json_t **ret_job)
{
        _cleanup_free_ char *escaped = client_escape(id), *path = NULL;
        const char *state = client_json_str(known, "state");
        struct follow f = {
                .flags = flags,
                .start_ns = now_ns(CLOCK_MONOTONIC),
                .shown_s = -1,
        };
        unsigned retries = 0;
        int r;

        if (!escaped || asprintf(&path, "/api/v1/jobs/%s/events", escaped) < 0)
                return log_error_errno(ENOMEM, "%m");
        if (!isatty(STDERR_FILENO))
                f.flags &= ~(unsigned) CLIENT_FOLLOW_PROGRESS;
        copy_line(f.state, sizeof(f.state), state ? state : "waiting",
                  strlen(state ? state : "waiting"));

        for (;;) {
                f.got_new = false;
                r = client_events(c, path, f.last_id, follow_event, follow_tick, &f);
                if (r != 0)
                        break;
                /* The stream closed before the job's end. */
                if (f.got_output && !f.have_seq) {
                        follow_clear_progress(&f);
                        log_warning("the event stream of job %s broke; its output may be "
                                    "incomplete",
                                    id);
                        r = follow_wait_end(c, escaped, &f.job);
                        break;
                }
                retries = f.got_new ? 0 : retries + 1;
                if (retries >= MAX_FOLLOW_RETRY) {
                        follow_clear_progress(&f);
                        log_error("the event stream of job %s keeps closing before the job's "
                                  "end",
                                  id);
                        r = -ECONNRESET;
                        break;
                }
        }
        follow_clear_progress(&f);
        if (r < 0) {
                json_decref(f.job);
                return r;
        }
        if (!f.job) {
                log_error("the event stream of job %s ended without the job", id);
                return -EBADMSG;
        }
        *ret_job = f.job;
        return 0;
}

/* ---- the command line ---- */

/* After getopt_long() returned '?' or ':': one line naming the option; returns 2. */
static int option_error(const char *cmd, int c, char *argv[])
{
        const char *arg = optind > 0 ? argv[optind - 1] : "?";

        if (optopt > 0 && optopt < 0x80 && !(arg[0] == '-' && arg[1] == '-')) {
                if (c == ':')
                        log_error("%s: option '-%c' needs a value; see 'warren %s --help'", cmd,
                                  optopt, cmd);
                else
                        log_error("%s: unknown option '-%c'; see 'warren %s --help'", cmd, optopt,
                                  cmd);
        } else if (c == ':')
                log_error("%s: option '%s' needs a value; see 'warren %s --help'", cmd, arg, cmd);
        else
                log_error("%s: unknown option '%s'; see 'warren %s --help'", cmd, arg, cmd);
        return 2;
}

static bool option_accepted(const struct client_args *args, const struct client_option *o)
{
        return o->need == 0 || (args->accept & o->need);
}

/* A positional argument: to take_arg, or into the one slot there is. */
static int take_arg(const struct client_args *args, int key, const char *arg)
{
        if (args->take_arg)
                return args->take_arg(args->cmd, key, arg, args->userdata);
        if (!args->arg || *args->arg) {
                log_error("%s: unexpected argument '%s'", args->cmd, arg);
                return 2;
        }
        *args->arg = arg;
        return 0;
}

/*
 * The getopt_long() tables: each option's val is its short name, or 0x100 + its index (which
 * option_error() tells from a short option). A short name is only offered where the option is
 * accepted; "-" (unless CLIENT_ARGS_OPTIONS_FIRST) returns the positional arguments in order;
 * ':' tells a missing value from an unknown option.
 */
static void option_tables(const struct client_args *args, struct option *longopts, char *shortopts)
{
        size_t n = 0, s = 0;

        if (!(args->flags & CLIENT_ARGS_OPTIONS_FIRST))
                shortopts[s++] = '-';
        shortopts[s++] = ':';
        shortopts[s++] = 'h';
        for (const struct client_option *o = args->options; o && o->name; o++, n++) {
                assert(n < CLIENT_MAX_OPTIONS);
                longopts[n] = (struct option){
                        .name = o->name,
                        .has_arg = o->flag ? no_argument : required_argument,
                        .val = o->short_name ? o->short_name : 0x100 + (int) n,
                };
                if (o->short_name && option_accepted(args, o)) {
                        shortopts[s++] = o->short_name;
                        if (!o->flag)
                                shortopts[s++] = ':';
                }
        }
        longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
        longopts[n] = (struct option){0};
        shortopts[s] = '\0';
}

static const struct client_option *option_find(const struct client_args *args, int ch)
{
        size_t n = 0;

        for (const struct client_option *o = args->options; o && o->name; o++, n++)
                if (ch == (o->short_name ? o->short_name : 0x100 + (int) n))
                        return o;
        return NULL;
}

int client_parse_args(const struct client_args *args, int argc, char *argv[])
{
        struct option longopts[CLIENT_MAX_OPTIONS + 2];
        char shortopts[3 + 2 * CLIENT_MAX_OPTIONS + 1];
        const struct client_option *o;
        int ch, r;

        option_tables(args, longopts, shortopts);
        opterr = 0;
        optind = 1;
        while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                if (ch == 1) {
                        r = take_arg(args, CLIENT_ARG, optarg);
                        if (r != 0)
                                return r;
                        continue;
                }
                if (ch == 'h') {
                        (void) fputs(args->help, stdout);
                        return -1;
                }
                o = option_find(args, ch);
                if (!o)
                        return option_error(args->cmd, ch, argv);
                if (!option_accepted(args, o)) {
                        optopt = 0;
                        return option_error(args->cmd, '?', argv);
                }
                if (o->flag)
                        *o->flag = true;
                else if (o->value)
                        *o->value = optarg;
                else {
                        r = args->take(args->cmd, o->key, optarg, args->userdata);
                        if (r != 0)
                                return r;
                }
        }
        for (int i = optind; i < argc; i++) {
                r = take_arg(args, CLIENT_ARG_REST, argv[i]);
                if (r != 0)
                        return r;
        }
        if (args->arg && !(args->flags & CLIENT_ARG_OPTIONAL) &&
            (!*args->arg || (!(args->flags & CLIENT_ARG_EMPTY_OK) && (*args->arg)[0] == '\0'))) {
                log_error("%s: no %s given; see 'warren %s --help'", args->cmd, args->arg_name,
                          args->see ? args->see : args->cmd);
                return 2;
        }
        return 0;
}

int client_sub_command(const char *cmd, const char *help, const void *subs, size_t n, size_t size,
                       int argc, char *argv[], size_t *ret_index)
{
        if (argc < 2) {
                log_error("%s: no command given; see 'warren %s --help'", cmd, cmd);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                (void) fputs(help, stdout);
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
                const char *name = *(const char *const *) ((const char *) subs + i * size);

                if (strcmp(argv[1], name) == 0) {
                        *ret_index = i;
                        return 0;
                }
        }
        log_error("%s: unknown command '%s'; see 'warren %s --help'", cmd, argv[1], cmd);
        return 2;
}

int client_take_positional(const char *cmd, int key, const char *value, void *userdata)
{
        struct client_positional *p = userdata;

        assert(p->max <= CLIENT_MAX_POSITIONAL);
        if (p->n >= p->max) {
                log_error("%s: unexpected argument '%s'", cmd, value);
                return 2;
        }
        p->v[p->n++] = value;
        return 0;
}

int client_positional_check(const char *cmd, const char *see, const struct client_positional *p,
                            const char *const *names, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (i >= p->n) {
                        log_error("%s: no %s given; see 'warren %s --help'", cmd, names[i],
                                  see ? see : cmd);
                        return 2;
                }
                if (p->v[i][0] == '\0') {
                        log_error("%s: the %s is empty", cmd, names[i]);
                        return 2;
                }
        }
        return 0;
}
