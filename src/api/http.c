/* SPDX-License-Identifier: MIT */
#include "api/http.h"

/*
 * Theory of operation.
 *
 * MHD runs one thread per connection and calls access_handler() several times per request:
 * first with the request line and headers only (*con_cls is NULL), then once per piece of body
 * that arrived, then once more with *upload_data_size 0. The first call allocates our
 * struct http_request; if a body is announced, it matches the route and refuses whatever can be
 * refused before a byte of the body is read (404, 405, 413 by Content-Length, 415): MHD takes a
 * reply queued from that first call and closes the connection after it instead of reading the
 * body. The body calls append to a buffer bounded by max_body. MHD (0.9.75) takes no reply while
 * a body is arriving, so a body that outgrows max_body (chunked: no Content-Length told) is read
 * on and dropped, DRAIN_MAX at most, and answered 413 when it ends; past DRAIN_MAX the connection
 * is closed. The last call checks the route of a request without a body (answering it then keeps
 * the connection open) and runs the handler, which queues its reply through one of the
 * http_reply_*() functions; a handler that did not gets a 500 queued for it.
 *
 * MHD decodes the percent-escapes of the path before the access handler sees it, which would turn
 * "/jobs/a%2Fb" into a path of three segments. An unescape callback that changes nothing keeps
 * the path (and the query arguments) as received; route parameters and query arguments are
 * decoded here instead, after the path was split into segments.
 *
 * request_completed() (MHD_OPTION_NOTIFY_COMPLETED) runs once for every request that reached
 * access_handler(), after its reply was sent or the connection was lost; it reports to on_done
 * and frees the request. A streamed reply's cookie belongs to the MHD response, whose free
 * callback MHD runs once, when it lets go of the response (the client may have gone away).
 *
 * TLS. Given a certificate and a key, MHD runs GnuTLS on every connection (MHD_USE_TLS) with
 * HTTP_TLS_PRIORITIES; the handshake happens on the connection's thread, under the same idle
 * timeout as a request. MHD keeps the pointers to the PEM texts rather than copies, so the server
 * holds its own copies for its life (the key wiped when it is freed). With a client CA
 * (MHD_OPTION_HTTPS_MEM_TRUST) MHD asks every client for a certificate (GNUTLS_CERT_REQUEST) and
 * GnuTLS checks only that the client holds its key; whether it is any good is for the handler to
 * decide, from the DER chain http_request_client_certs() reads off the connection's session.
 *
 * The listen socket is created here, so that bind() errors come back as errno; MHD gets a
 * duplicate of it (a failed MHD_start_daemon() may or may not close what it was given, and a
 * leak is better than closing someone else's descriptor). MHD_quiesce_daemon() hands that
 * descriptor back; it is shut down at once (the kernel then refuses new connections instead of
 * queueing them for nobody) and closed only after MHD_stop_daemon(), as MHD's threads may still
 * hold the number.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sys/socket.h>

#include "api/errors.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define DEFAULT_MAX_CONNECTIONS        256u
#define DEFAULT_MAX_CONNECTIONS_PER_IP 64u
#define DEFAULT_TIMEOUT_S              30u
#define DEFAULT_MAX_HEADER             ((size_t) 16 << 10)
#define DEFAULT_MAX_BODY               ((size_t) 32 << 20)
#define DEFAULT_MAX_RAW_BODY           (UINT64_C(64) << 20)
/* MHD's per-connection memory pool holds the request line and headers, its read buffer and the
 * reply's header lines; the pool is max_header plus this much. */
#define POOL_SLACK             ((size_t) 4 << 10)
#define STREAM_BLOCK           ((size_t) 16 << 10)
#define ERROR_MESSAGE_MAX      512
#define REPLY_HEADERS_MAX      16
#define REPLY_HEADER_VALUE_MAX 4096
#define ALLOW_MAX              128
/* A body that outgrows max_body is read on and dropped for this much more, so that a client
 * that ends it soon after gets its 413; beyond that the connection is closed. */
#define DRAIN_MAX ((size_t) 1 << 20)

struct http_server {
        struct MHD_Daemon *daemon;
        struct http_server_options opts; /* with the defaults filled in */
        uint16_t port;
        int listen_fd; /* ours: before MHD started, and once quiesce took it back */
        bool quiesced;
        char *tls_cert, *tls_key; /* copies: MHD keeps the pointers it is given */
        char *tls_client_ca;
};

struct owned_str {
        struct owned_str *next;
        char s[];
};

struct http_request {
        struct http_server *server;
        struct MHD_Connection *conn;
        const char *method; /* MHD's, valid for the request's life */
        const char *path;   /* MHD's, as received */
        const struct http_route *route;

        struct {
                const char *name; /* into the route's pattern; not NUL-terminated */
                size_t name_len;
                char value[HTTP_PARAM_MAX + 1];
        } params[HTTP_MAX_PARAMS];

        size_t n_params;

        char *body;
        size_t body_len, body_cap;
        int body_error; /* the body could not be kept: -E2BIG, -ENOMEM */
        size_t dropped; /* bytes received since */
        bool checked;   /* route and limits checked */

        void *sink;        /* a raw route's, from its open() */
        bool sink_open;    /* open() ran and gave sink */
        uint64_t raw_size; /* bytes of a raw body received */

        struct {
                char *name, *value;
        } headers[REPLY_HEADERS_MAX];

        size_t n_headers;

        struct owned_str *strings; /* decoded query arguments handed out */

        bool replied; /* a http_reply_*() call went through its checks */
        bool queued;  /* MHD took a reply */
        int status;
        uint64_t start_ns;
        char peer[INET6_ADDRSTRLEN];
};

struct stream {
        http_stream_fn fn;
        void *cookie;
        void (*free_fn)(void *cookie);
};

/* ---- helpers ---- */

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * Decodes the %XX escapes of s[0..len) into buf (size bytes, NUL-terminated). Returns the decoded
 * length, -EINVAL for a malformed escape or one that decodes to NUL, -ENAMETOOLONG if the result
 * does not fit.
 */
static ssize_t percent_decode(const char *s, size_t len, char *buf, size_t size)
{
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (c == '%') {
                        int hi, lo;

                        if (len - i < 3)
                                return -EINVAL;
                        hi = hex_value(s[i + 1]);
                        lo = hex_value(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (char) (hi << 4 | lo);
                        i += 2;
                }
                if (c == '\0')
                        return -EINVAL;
                if (n + 1 >= size)
                        return -ENAMETOOLONG;
                buf[n++] = c;
        }
        if (size == 0)
                return -ENAMETOOLONG;
        buf[n] = '\0';
        return (ssize_t) n;
}

static bool is_token_char(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* "application/json", any case, optionally followed by parameters ("; charset=utf-8"). */
/* ct names the media type `type` (parameters such as "; charset=utf-8" aside). */
static bool is_media_type(const char *ct, const char *type)
{
        size_t n = strlen(type);

        if (!ct)
                return false;
        ct += strspn(ct, " \t");
        if (strncasecmp(ct, type, n) != 0)
                return false;
        ct += n;
        ct += strspn(ct, " \t");
        return *ct == '\0' || *ct == ';';
}

static bool is_json_media_type(const char *ct)
{
        return is_media_type(ct, "application/json");
}

static bool method_has_json_body(const char *method)
{
        return streq_ptr(method, "POST") || streq_ptr(method, "PUT") || streq_ptr(method, "PATCH");
}

/* ---- routes ---- */

/* The length of the path segment at s: up to the next '/' or the end. */
static size_t segment_len(const char *s)
{
        return strcspn(s, "/");
}

static bool segment_is_param(const char *seg, size_t len)
{
        return len >= 3 && seg[0] == '{' && seg[len - 1] == '}';
}

/* Checks a route's pattern once, at start: absolute, with well-formed and few enough {params}. */
static int route_check(const struct http_route *route)
{
        const char *p;
        size_t n_params = 0;

        if (!route->method || !route->pattern || !route->name || !route->handler)
                return -EINVAL;
        if (route->raw && (!route->raw->media_type || !route->raw->open || !route->raw->write))
                return -EINVAL;
        if (route->pattern[0] != '/')
                return -EINVAL;
        for (p = route->pattern + 1;;) {
                size_t len = segment_len(p);

                if (memchr(p, '{', len) || memchr(p, '}', len)) {
                        if (!segment_is_param(p, len) || memchr(p + 1, '{', len - 2) ||
                            memchr(p + 1, '}', len - 2))
                                return -EINVAL;
                        if (++n_params > HTTP_MAX_PARAMS)
                                return -EINVAL;
                }
                if (p[len] == '\0')
                        break;
                p += len + 1;
        }
        return 0;
}

/*
 * Matches path against route's pattern; on a match fills req's params and returns true. A {param}
 * takes one non-empty segment whose decoding is well-formed, fits HTTP_PARAM_MAX and holds no '/'
 * (an encoded one) and no NUL.
 */
static bool route_match(struct http_request *req, const struct http_route *route, const char *path)
{
        const char *p = route->pattern, *s = path;
        size_t n = 0;

        if (s[0] != '/')
                return false;
        p++;
        s++;
        for (;;) {
                size_t plen = segment_len(p), slen = segment_len(s);

                if (segment_is_param(p, plen)) {
                        ssize_t k;

                        if (slen == 0 || n >= HTTP_MAX_PARAMS)
                                return false;
                        k = percent_decode(s, slen, req->params[n].value,
                                           sizeof(req->params[n].value));
                        if (k < 0 || memchr(req->params[n].value, '/', (size_t) k))
                                return false;
                        req->params[n].name = p + 1;
                        req->params[n].name_len = plen - 2;
                        n++;
                } else if (plen != slen || memcmp(p, s, plen) != 0)
                        return false;

                if (p[plen] == '\0' || s[slen] == '\0') {
                        if (p[plen] != s[slen])
                                return false;
                        break;
                }
                p += plen + 1;
                s += slen + 1;
        }
        req->n_params = n;
        return true;
}

/* ---- the request ---- */

static struct http_request *request_free(struct http_request *req)
{
        if (!req)
                return NULL;
        if (req->sink_open && req->route && req->route->raw && req->route->raw->close)
                req->route->raw->close(req->sink);
        free(req->body);
        for (size_t i = 0; i < req->n_headers; i++) {
                free(req->headers[i].name);
                free(req->headers[i].value);
        }
        while (req->strings) {
                struct owned_str *next = req->strings->next;
                free(req->strings);
                req->strings = next;
        }
        free(req);
        return NULL;
}

DEFINE_FREE_FUNC(struct http_request *, request_free)

static void peer_to_text(const struct sockaddr *sa, char *buf, size_t size)
{
        const void *addr = NULL;
        int family = AF_UNSPEC;
        struct in_addr mapped;

        if (!sa) {
                (void) snprintf(buf, size, "unknown");
                return;
        }
        if (sa->sa_family == AF_INET) {
                family = AF_INET;
                addr = &((const struct sockaddr_in *) (const void *) sa)->sin_addr;
        } else if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a6 =
                        &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr;

                /* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; say a.b.c.d, so
                 * that one client has one address whichever socket it came through. */
                if (IN6_IS_ADDR_V4MAPPED(a6)) {
                        memcpy(&mapped, &a6->s6_addr[12], sizeof(mapped));
                        family = AF_INET;
                        addr = &mapped;
                } else {
                        family = AF_INET6;
                        addr = a6;
                }
        }
        if (!addr || !inet_ntop(family, addr, buf, (socklen_t) size))
                (void) snprintf(buf, size, "unknown");
}

static int request_new(struct http_server *s, struct MHD_Connection *conn, const char *url,
                       const char *method, struct http_request **ret)
{
        struct http_request *req = calloc(1, sizeof(*req));
        const union MHD_ConnectionInfo *info;

        if (!req)
                return -ENOMEM;
        req->server = s;
        req->conn = conn;
        req->method = method;
        req->path = url ? url : "";
        req->start_ns = now_ns(CLOCK_MONOTONIC);
        info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        peer_to_text(info ? info->client_addr : NULL, req->peer, sizeof(req->peer));
        *ret = req;
        return 0;
}

const char *http_request_method(const struct http_request *req)
{
        return req->method;
}

const char *http_request_path(const struct http_request *req)
{
        return req->path;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
        size_t len = strlen(name);

        for (size_t i = 0; i < req->n_params; i++)
                if (req->params[i].name_len == len && memcmp(req->params[i].name, name, len) == 0)
                        return req->params[i].value;
        return NULL;
}

struct query_lookup {
        struct http_request *req;
        const char *name;
        const char *found; /* NULL: absent (or no memory to decode it) */
};

/* A copy of s, percent-decoded if that is well-formed (else as received), owned by req. */
static const char *request_keep_decoded(struct http_request *req, const char *s)
{
        size_t len = strlen(s);
        struct owned_str *o = malloc(sizeof(*o) + len + 1);

        if (!o)
                return NULL;
        if (percent_decode(s, len, o->s, len + 1) < 0)
                memcpy(o->s, s, len + 1);
        o->next = req->strings;
        req->strings = o;
        return o->s;
}

static enum MHD_Result query_iterate(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
        struct query_lookup *q = cls;
        _cleanup_free_ char *decoded = NULL;
        size_t len;

        if (!key)
                return MHD_YES;
        len = strlen(key);
        decoded = malloc(len + 1);
        if (!decoded)
                return MHD_NO;
        if (percent_decode(key, len, decoded, len + 1) < 0)
                memcpy(decoded, key, len + 1);
        if (!streq_ptr(decoded, q->name))
                return MHD_YES;
        q->found = request_keep_decoded(q->req, value ? value : "");
        return MHD_NO;
}

const char *http_request_query(const struct http_request *req, const char *name)
{
        /* The decoded copies are owned by the request: the accessor is logically const. */
        struct query_lookup q = {.req = (struct http_request *) req, .name = name};

        (void) MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_iterate, &q);
        return q.found;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(const struct http_request *req, size_t *ret_len)
{
        if (ret_len)
                *ret_len = req->body_len;
        return req->body ? req->body : "";
}

size_t http_request_client_certs(const struct http_request *req, const void **ders, size_t *lens,
                                 size_t max)
{
        const union MHD_ConnectionInfo *info;
        const gnutls_datum_t *certs;
        unsigned n = 0;

        if (!req->server->tls_client_ca)
                return 0;
        info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (!info || !info->tls_session)
                return 0;
        certs = gnutls_certificate_get_peers((gnutls_session_t) info->tls_session, &n);
        if (!certs)
                return 0;
        for (size_t i = 0; i < n && i < max; i++) {
                ders[i] = certs[i].data;
                lens[i] = certs[i].size;
        }
        return n;
}

void *http_request_sink(const struct http_request *req)
{
        return req->sink;
}

uint64_t http_request_raw_size(const struct http_request *req)
{
        return req->raw_size;
}

const char *http_request_peer(const struct http_request *req)
{
        return req->peer;
}

int http_request_add_header(struct http_request *req, const char *name, const char *value)
{
        _cleanup_free_ char *n = NULL, *v = NULL;

        if (req->replied)
                return -EALREADY;
        if (!name || !*name || !value)
                return -EINVAL;
        for (const char *p = name; *p; p++)
                if (!is_token_char(*p))
                        return -EINVAL;
        for (const char *p = value; *p; p++)
                if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
                        return -EINVAL;
        if (strlen(value) > REPLY_HEADER_VALUE_MAX)
                return -E2BIG;
        if (req->n_headers >= REPLY_HEADERS_MAX)
                return -ENOBUFS;
        n = strdup(name);
        v = strdup(value);
        if (!n || !v)
                return -ENOMEM;
        req->headers[req->n_headers].name = TAKE_PTR(n);
        req->headers[req->n_headers].value = TAKE_PTR(v);
        req->n_headers++;
        return 0;
}

/* ---- replies ---- */

/* Takes resp. Adds the headers every reply carries and queues it. */
static int queue_reply(struct http_request *req, int status, const char *content_type,
                       struct MHD_Response *resp)
{
        enum MHD_Result ok;
        int r = 0;

        req->replied = true;
        if (!resp)
                return -ENOMEM;
        if (MHD_add_response_header(resp, "Cache-Control", "no-store") != MHD_YES ||
            MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
            (content_type &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < req->n_headers; i++)
                if (MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value) !=
                    MHD_YES)
                        r = -ENOMEM;
        if (r >= 0) {
                ok = MHD_queue_response(req->conn, (unsigned) status, resp);
                if (ok == MHD_YES) {
                        req->queued = true;
                        req->status = status;
                } else
                        r = -EIO;
        }
        MHD_destroy_response(resp);
        if (r < 0)
                (void) log_debug_errno(r, "http: failed to queue a %d reply to %s '%s': %m", status,
                                       req->method, req->path);
        return r;
}

static bool status_valid(int status)
{
        return status >= 200 && status <= 599;
}

int http_reply_json(struct http_request *req, int status, json_t *body)
{
        _cleanup_json_ json_t *b = body;
        char *s;

        if (req->replied)
                return -EALREADY;
        if (!status_valid(status))
                return -EINVAL;
        if (status == 204)
                return queue_reply(
                        req, status, NULL,
                        MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
        if (!b)
                return -ENOMEM; /* a json_pack() that failed: the dispatcher answers 500 */
        s = json_dumps(b, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        return queue_reply(req, status, "application/json",
                           MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE));
}

int http_reply_data(struct http_request *req, int status, const char *content_type,
                    const void *data, size_t len)
{
        if (req->replied)
                return -EALREADY;
        if (!status_valid(status) || (!data && len > 0))
                return -EINVAL;
        return queue_reply(
                req, status, content_type ? content_type : "application/octet-stream",
                MHD_create_response_from_buffer(len, (void *) data, MHD_RESPMEM_MUST_COPY));
}

int http_reply_fd(struct http_request *req, int status, const char *content_type, int fd,
                  uint64_t size)
{
        _cleanup_close_ int owned = fd;
        struct MHD_Response *resp;

        if (req->replied)
                return -EALREADY;
        if (!status_valid(status) || owned < 0 || size > INT64_MAX)
                return -EINVAL;
        resp = MHD_create_response_from_fd64(size, owned);
        if (!resp)
                return -ENOMEM;
        owned = -EBADF; /* the response closes it */
        return queue_reply(req, status, content_type ? content_type : "application/octet-stream",
                           resp);
}

_printf_(4, 0) static int reply_error_va(struct http_request *req, int status, const char *code,
                                         const char *fmt, va_list ap)
{
        char message[ERROR_MESSAGE_MAX];
        char *body;

        if (req->replied)
                return -EALREADY;
        if (!status_valid(status))
                return -EINVAL;
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        body = api_error_body(code, message);
        if (!body)
                return -ENOMEM;
        return queue_reply(
                req, status, "application/json",
                MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE));
}

int http_reply_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = reply_error_va(req, status, code, fmt, ap);
        va_end(ap);
        return r;
}

int http_reply_errno(struct http_request *req, int r, const char *fmt, ...)
{
        struct api_error_info e = api_error_from_errno(r < 0 ? r : -EIO);
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = reply_error_va(req, e.status, e.code, fmt, ap);
        va_end(ap);
        return k;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream *st = cls;
        long n = st->fn(st->cookie, buf, max);

        if (n == HTTP_STREAM_END)
                return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0 || (unsigned long) n > max)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        return (ssize_t) n;
}

static void stream_free(void *cls)
{
        struct stream *st = cls;

        if (st->free_fn)
                st->free_fn(st->cookie);
        free(st);
}

int http_reply_stream(struct http_request *req, int status, const char *content_type,
                      http_stream_fn fn, void *cookie, void (*free_fn)(void *cookie))
{
        struct MHD_Response *resp;
        struct stream *st;

        if (req->replied || !status_valid(status) || !fn) {
                if (free_fn)
                        free_fn(cookie);
                return req->replied ? -EALREADY : -EINVAL;
        }
        st = malloc(sizeof(*st));
        if (!st) {
                if (free_fn)
                        free_fn(cookie);
                return -ENOMEM;
        }
        *st = (struct stream){.fn = fn, .cookie = cookie, .free_fn = free_fn};
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st,
                                                 stream_free);
        if (!resp) {
                stream_free(st);
                return -ENOMEM;
        }
        /* From here on the response owns st: destroying it runs stream_free() once. */
        return queue_reply(req, status, content_type, resp);
}

/* ---- MHD's callbacks ---- */

/* Appends method to the comma-separated list in allow unless it is there already. */
static void allow_add(char *allow, size_t size, const char *method)
{
        size_t len = strlen(allow), mlen = strlen(method);

        for (const char *p = allow; *p;) {
                size_t n = strcspn(p, ",");

                if (n == mlen && memcmp(p, method, n) == 0)
                        return;
                p += n;
                p += strspn(p, ", ");
        }
        if (len + 2 + mlen + 1 > size)
                return;
        (void) snprintf(allow + len, size - len, "%s%s", len ? ", " : "", method);
}

/* A raw route's open(): true if the request was answered (refused before its body). */
static bool raw_open(struct http_request *req)
{
        void *sink = NULL;
        int r;

        r = req->route->raw->open(req, req->server->opts.userdata, &sink);
        if (req->replied)
                return true;
        if (r < 0) {
                (void) http_reply_errno(req, r, "Cannot take the body");
                return true;
        }
        req->sink = sink;
        req->sink_open = true;
        return false;
}

/*
 * Chooses the route and answers what needs no handler: 404, 405, a malformed or too large
 * Content-Length, a body that is not JSON (or not a raw route's type); opens a raw route's sink.
 * Returns true if it answered.
 */
static bool request_check(struct http_request *req)
{
        struct http_server *s = req->server;
        const struct http_route *path_match = NULL;
        const char *cl, *te;
        char allow[ALLOW_MAX] = "";
        uint64_t length = 0;

        for (size_t i = 0; i < s->opts.n_routes; i++) {
                const struct http_route *route = &s->opts.routes[i];

                if (!route_match(req, route, req->path))
                        continue;
                if (streq_ptr(route->method, req->method)) {
                        req->route = route;
                        break;
                }
                path_match = route;
                allow_add(allow, sizeof(allow), route->method);
        }
        if (!req->route) {
                req->n_params = 0;
                if (!path_match) {
                        (void) http_reply_error(req, 404, "no_route", "No route for this path");
                        return true;
                }
                (void) http_request_add_header(req, "Allow", allow);
                (void) http_reply_error(req, 405, "method_not_allowed",
                                        "Method '%s' is not allowed here (allowed: %s)",
                                        req->method, allow);
                return true;
        }

        cl = http_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        te = http_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (cl && parse_uint(cl, 0, UINT64_MAX, &length) < 0) {
                (void) http_reply_error(req, 400, "bad_request", "Malformed Content-Length");
                return true;
        }
        if (req->route->raw) {
                if (length > s->opts.max_raw_body) {
                        (void) http_reply_error(req, 413, "too_large",
                                                "The body is larger than %" PRIu64 " bytes",
                                                s->opts.max_raw_body);
                        return true;
                }
                if ((length > 0 || te) &&
                    !is_media_type(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE),
                                   req->route->raw->media_type)) {
                        (void) http_reply_error(req, 415, "unsupported_media_type",
                                                "The body must be %s", req->route->raw->media_type);
                        return true;
                }
                return raw_open(req);
        }
        if (length > s->opts.max_body) {
                (void) http_reply_error(req, 413, "too_large", "The body is larger than %zu bytes",
                                        s->opts.max_body);
                return true;
        }
        if (method_has_json_body(req->method) && (length > 0 || te) &&
            !is_json_media_type(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
                (void) http_reply_error(req, 415, "unsupported_media_type",
                                        "The body must be application/json");
                return true;
        }
        return false;
}

/* A piece of a raw route's body, to its sink, bounded by max_raw_body. */
static int raw_append(struct http_request *req, const char *data, size_t len)
{
        uint64_t max = req->server->opts.max_raw_body;

        if ((uint64_t) len > max - req->raw_size)
                return -E2BIG;
        req->raw_size += len;
        return req->route->raw->write(req->sink, data, len);
}

static int body_append(struct http_request *req, const char *data, size_t len)
{
        size_t max = req->server->opts.max_body;

        if (len > max - req->body_len)
                return -E2BIG;
        if (req->body_len + len + 1 > req->body_cap) {
                size_t cap = req->body_cap ? req->body_cap : 4096;
                char *p;

                while (cap < req->body_len + len + 1)
                        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
                if (cap > max + 1)
                        cap = max + 1;
                p = realloc(req->body, cap);
                if (!p)
                        return -ENOMEM;
                req->body = p;
                req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, data, len);
        req->body_len += len;
        req->body[req->body_len] = '\0';
        return 0;
}

/* MHD_YES if a reply is queued (or none is needed yet), MHD_NO to drop the connection. */
static enum MHD_Result reply_state(const struct http_request *req)
{
        return !req->replied || req->queued ? MHD_YES : MHD_NO;
}

static bool request_has_body(const struct http_request *req)
{
        const char *cl = http_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

        return (cl && !streq_ptr(cl, "0")) ||
               http_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
        struct http_server *s = cls;
        struct http_request *req = *con_cls;
        int r;

        if (!req) {
                r = request_new(s, conn, url, method, &req);
                if (r < 0)
                        return MHD_NO;
                *con_cls = req; /* request_completed() frees it */
                /* A reply queued now makes MHD close the connection after it (the body was not
                 * read): worth it only to avoid reading a body. Without one, the checks wait for
                 * the last call, which comes at once, and the connection stays usable. */
                if (request_has_body(req)) {
                        req->checked = true;
                        (void) request_check(req);
                }
                return reply_state(req);
        }

        if (*upload_data_size > 0) {
                size_t len = *upload_data_size;

                *upload_data_size = 0;
                if (req->replied)
                        return reply_state(req); /* refused already: the rest is dropped */
                if (req->body_error < 0) {
                        req->dropped += len;
                        return req->dropped > DRAIN_MAX ? MHD_NO : MHD_YES;
                }
                if (req->route && req->route->raw) {
                        r = raw_append(req, upload_data, len);
                        if (r < 0)
                                req->body_error = r; /* dropped from here on, answered at the end */
                        return MHD_YES;
                }
                r = body_append(req, upload_data, len);
                if (r < 0) {
                        /* MHD takes no reply while a body arrives: drop the rest of it (bounded)
                         * and answer when it ends. */
                        req->body_error = r;
                        free(req->body);
                        req->body = NULL;
                        req->body_len = req->body_cap = 0;
                }
                return MHD_YES;
        }

        if (req->replied)
                return reply_state(req);
        if (!req->checked) {
                req->checked = true;
                if (request_check(req))
                        return reply_state(req);
        }
        if (req->body_error == -E2BIG || req->body_error == -EFBIG) {
                if (req->route->raw)
                        (void) http_reply_error(req, 413, "too_large",
                                                "The body is larger than %" PRIu64 " bytes",
                                                s->opts.max_raw_body);
                else
                        (void) http_reply_error(req, 413, "too_large",
                                                "The body is larger than %zu bytes",
                                                s->opts.max_body);
                return reply_state(req);
        }
        if (req->body_error < 0) {
                (void) http_reply_errno(req, req->body_error, "Failed to receive the body");
                return reply_state(req);
        }

        req->route->handler(req, s->opts.userdata);

        if (!req->queued) {
                if (!req->replied)
                        log_debug("http: route %s returned without replying to %s '%s'",
                                  req->route->name, req->method, req->path);
                req->replied = false; /* this one is ours */
                (void) http_reply_error(req, 500, "internal_error", "Internal error");
        }
        return reply_state(req);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
        struct http_server *s = cls;
        _cleanup_(request_freep) struct http_request *req = *con_cls;

        *con_cls = NULL;
        if (!req || !s->opts.on_done)
                return;
        s->opts.on_done(req->route ? req->route->name : NULL,
                        req->queued && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? req->status : 0,
                        now_ns(CLOCK_MONOTONIC) - req->start_ns, s->opts.userdata);
}

/* The path as received: percent-decoding happens after routing, segment by segment. */
static size_t unescape_nothing(void *cls, struct MHD_Connection *conn, char *s)
{
        return strlen(s);
}

_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[512];
        size_t n;

        if (log_get_level() < LOG_LEVEL_DEBUG)
                return;
        (void) vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
        log_debug("http: %s", line);
}

/* ---- the server ---- */

static int listen_socket(const char *address, uint16_t port, int *ret_fd, uint16_t *ret_port,
                         bool *ret_ipv6, bool *ret_any6)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_storage storage;
        } addr = {};

        socklen_t len;
        _cleanup_close_ int fd = -EBADF;
        int one = 1;
        bool ipv6 = false, any6 = false;

        if (!address)
                return -EINVAL;
        if (inet_pton(AF_INET, address, &addr.in.sin_addr) == 1) {
                addr.in.sin_family = AF_INET;
                addr.in.sin_port = htons(port);
                len = sizeof(addr.in);
        } else if (inet_pton(AF_INET6, address, &addr.in6.sin6_addr) == 1) {
                addr.in6.sin6_family = AF_INET6;
                addr.in6.sin6_port = htons(port);
                len = sizeof(addr.in6);
                ipv6 = true;
                any6 = IN6_IS_ADDR_UNSPECIFIED(&addr.in6.sin6_addr);
        } else
                return -EINVAL;

        fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (ipv6) {
                /* "::" serves IPv4 too; a specific IPv6 address only itself. */
                int v6only = any6 ? 0 : 1;

                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
                        return -errno;
        }
        if (bind(fd, &addr.sa, len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        len = sizeof(addr);
        if (getsockname(fd, &addr.sa, &len) < 0)
                return -errno;
        *ret_port = ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in.sin_port);
        *ret_ipv6 = ipv6;
        *ret_any6 = any6;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int http_server_start(const struct http_server_options *opts, struct http_server **ret)
{
        _cleanup_(http_server_freep) struct http_server *s = NULL;
        _cleanup_close_ int mhd_fd = -EBADF;
        struct MHD_OptionItem tls[5] = {{MHD_OPTION_END, 0, NULL}};
        unsigned flags;
        bool ipv6 = false, any6 = false;
        int r;

        if (!opts || !ret || (opts->n_routes > 0 && !opts->routes))
                return -EINVAL;
        for (size_t i = 0; i < opts->n_routes; i++) {
                r = route_check(&opts->routes[i]);
                if (r < 0)
                        return r;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->listen_fd = -EBADF;
        s->opts = *opts;
        if (s->opts.max_connections == 0)
                s->opts.max_connections = DEFAULT_MAX_CONNECTIONS;
        if (s->opts.max_connections_per_ip == 0)
                s->opts.max_connections_per_ip = DEFAULT_MAX_CONNECTIONS_PER_IP;
        if (s->opts.timeout_s == 0)
                s->opts.timeout_s = DEFAULT_TIMEOUT_S;
        if (s->opts.max_header == 0)
                s->opts.max_header = DEFAULT_MAX_HEADER;
        if (s->opts.max_body == 0)
                s->opts.max_body = DEFAULT_MAX_BODY;
        if (s->opts.max_raw_body == 0)
                s->opts.max_raw_body = DEFAULT_MAX_RAW_BODY;
        if (s->opts.max_header > SIZE_MAX / 2 || s->opts.max_body > SIZE_MAX / 2)
                return -EINVAL;

        if (!opts->tls_cert_pem != !opts->tls_key_pem)
                return -EINVAL;
        if (opts->tls_cert_pem) {
                if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                        return -EOPNOTSUPP;
                s->tls_cert = strdup(opts->tls_cert_pem);
                s->tls_key = strdup(opts->tls_key_pem);
                if (!s->tls_cert || !s->tls_key)
                        return -ENOMEM;
                tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
                tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
                tls[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                                 (void *) HTTP_TLS_PRIORITIES};
                tls[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
                if (opts->tls_client_ca_pem) {
                        /* MHD then asks every client for a certificate (GNUTLS_CERT_REQUEST):
                         * one without is served too, and authenticates otherwise. */
                        s->tls_client_ca = strdup(opts->tls_client_ca_pem);
                        if (!s->tls_client_ca)
                                return -ENOMEM;
                        tls[3] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                                         s->tls_client_ca};
                        tls[4] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
                }
        } else if (opts->tls_client_ca_pem)
                return -EINVAL;
        s->opts.tls_cert_pem = s->tls_cert;
        s->opts.tls_key_pem = s->tls_key;
        s->opts.tls_client_ca_pem = s->tls_client_ca;

        r = listen_socket(opts->address, opts->port, &s->listen_fd, &s->port, &ipv6, &any6);
        if (r < 0)
                return r;
        mhd_fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 3);
        if (mhd_fd < 0)
                return -errno;

        flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                MHD_USE_ITC | MHD_USE_ERROR_LOG;
        if (s->tls_cert)
                flags |= MHD_USE_TLS;
        if (any6)
                flags |= MHD_USE_DUAL_STACK;
        else if (ipv6)
                flags |= MHD_USE_IPv6;

        s->daemon = MHD_start_daemon(
                flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) mhd_fd, MHD_OPTION_CONNECTION_LIMIT,
                s->opts.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                s->opts.max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, s->opts.timeout_s,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->opts.max_header + POOL_SLACK,
                MHD_OPTION_NOTIFY_COMPLETED, request_completed, s, MHD_OPTION_UNESCAPE_CALLBACK,
                unescape_nothing, s, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
        if (!s->daemon) {
                /* Whether MHD closed mhd_fd is not said: leave it rather than risk closing a
                 * number reused by another thread. */
                (void) TAKE_FD(mhd_fd);
                return log_debug_errno(-EIO, "http: failed to start the HTTP daemon");
        }
        (void) TAKE_FD(mhd_fd); /* MHD's now */
        s->listen_fd = safe_close(s->listen_fd);
        *ret = TAKE_PTR(s);
        return 0;
}

uint16_t http_server_port(const struct http_server *s)
{
        return s->port;
}

void http_server_quiesce(struct http_server *s)
{
        MHD_socket fd;

        if (!s || !s->daemon || s->quiesced)
                return;
        s->quiesced = true;
        fd = MHD_quiesce_daemon(s->daemon);
        if (fd == MHD_INVALID_SOCKET)
                return;
        s->listen_fd = fd;
        /* Stop listening now (pending and new connections are refused); the number stays ours
         * until MHD_stop_daemon() has joined the threads that might still use it. */
        if (shutdown(s->listen_fd, SHUT_RDWR) < 0)
                (void) log_debug_errno(errno, "http: failed to shut the listen socket down: %m");
}

struct http_server *http_server_free(struct http_server *s)
{
        if (!s)
                return NULL;
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        s->listen_fd = safe_close(s->listen_fd);
        free(s->tls_cert);
        free(s->tls_client_ca);
        if (s->tls_key) {
                explicit_bzero(s->tls_key, strlen(s->tls_key));
                free(s->tls_key);
        }
        free(s);
        return NULL;
}
