/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The HTTP server: libmicrohttpd behind a small face, so that no MHD type leaves api/.
 *
 * Threads. One thread per connection (MHD_USE_THREAD_PER_CONNECTION): a handler may block (a
 * job's ?wait=true, an event stream) without holding up anyone else. Connections are bounded in
 * total and per client address, every connection has an idle timeout (slowloris), the request
 * line and headers share a bounded buffer (431 / 413 beyond it), and a body is bounded (413,
 * checked on Content-Length before it is read and again while it arrives).
 *
 * A request reaches its handler once, with its whole body. The handler answers exactly once with
 * one of the http_reply_*() functions (a handler that returns without replying gets a 500). A
 * request that matches no route gets 404 no_route; a path that matches but not its method, 405
 * method_not_allowed with an Allow header. A body on POST/PUT/PATCH must be application/json
 * (415 otherwise), except on a route with a raw body (struct http_raw_body), which streams its
 * body, of its own media type, to a sink. Every error body is {"error": {"code", "message"}}
 * (api/errors.h).
 *
 * What libmicrohttpd (0.9.75) answers by itself, before a request reaches this module: a request
 * line too long for the header buffer gets 414, headers too long 431 (just past the limit MHD may
 * close the connection without a word: it had no room left to answer), a Content-Length beyond
 * 64 bits 413, a malformed request 400; all with MHD's own short HTML body and
 * "Connection: close", and no on_done call. max_header is the header buffer less a few KiB of
 * MHD's bookkeeping: heads somewhat larger than max_header can still pass. A reply queued before
 * a body was read (404, 405, 413, 415 to a request that announced a body) closes the connection
 * after it. MHD takes no reply while a body arrives: a chunked body that outgrows max_body is
 * dropped from there on and answered 413 when it ends, or the connection is closed if it goes on
 * for more than 1 MiB past the limit.
 */

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "common/cleanup.h"

struct http_server;
struct http_request;

typedef void (*http_handler_fn)(struct http_request *req, void *userdata);

/*
 * A route that takes a raw body (an upload) instead of a JSON one: the body, of media_type (415
 * otherwise), is never buffered here; it goes to a sink piece by piece as it arrives, bounded by
 * max_raw_body (413 from Content-Length before a byte is read, or, chunked, once it ends).
 */
struct http_raw_body {
        const char *media_type; /* e.g. "application/octet-stream" */
        /* Once, after the route matched and before any of the body is read (a request without a
         * body too). It may answer (the body is then not read and the handler not called): to
         * refuse early (401, 400, 404). Otherwise 0 and *ret_sink, or < 0 (answered as
         * http_reply_errno()). */
        int (*open)(struct http_request *req, void *userdata, void **ret_sink);
        /* Each piece of the body, in order. < 0: the rest is dropped (bounded) and, when it
         * ends, the request is answered from this errno (-E2BIG, -EFBIG: 413). */
        int (*write)(void *sink, const void *data, size_t len);
        /* Once, when the request is done, whatever happened; may be NULL. */
        void (*close)(void *sink);
};

struct http_route {
        const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
        /* "/api/v1/jobs/{id}/events": a {name} matches one non-empty path segment (no '/'),
         * percent-decoded, at most HTTP_PARAM_MAX bytes; anything else matches literally. */
        const char *pattern;
        const char *name; /* stable route name for metrics, e.g. "jobs_get" */
        http_handler_fn handler;
        const struct http_raw_body *raw; /* NULL: a JSON body, buffered (max_body) */
};

#define HTTP_PARAM_MAX  255
#define HTTP_MAX_PARAMS 4

/* Called once per request after its reply was queued (status 0: the client went away). */
typedef void (*http_done_fn)(const char *route_name, int status, uint64_t duration_ns,
                             void *userdata);

struct http_server_options {
        const char *address;             /* numeric IPv4 or IPv6 address */
        uint16_t port;                   /* 0: any free port (see http_server_port()) */
        unsigned max_connections;        /* 0: 256 */
        unsigned max_connections_per_ip; /* 0: 64 */
        unsigned timeout_s;              /* idle connection timeout; 0: 30 */
        size_t max_header;               /* request line + headers; 0: 16 KiB */
        size_t max_body;                 /* 0: 32 MiB */
        uint64_t max_raw_body;           /* a raw route's body; 0: 64 MiB */
        const struct http_route *routes; /* borrowed for the server's life */
        size_t n_routes;
        void *userdata;       /* passed to every handler and to on_done */
        http_done_fn on_done; /* may be NULL */
        /* HTTPS: the server's certificate (chain) and its private key, PEM text, NUL-terminated,
         * read and bounded by the caller and copied here (the key is wiped when the server is
         * freed). Both NULL: plain HTTP. TLS 1.2 and 1.3 only, AEAD ciphers with forward
         * secrecy, the server's preference first (HTTP_TLS_PRIORITIES). */
        const char *tls_cert_pem;
        const char *tls_key_pem;
        /* Mutual TLS (HTTPS only; may be NULL): the CAs, PEM, named to clients in the handshake
         * as those whose certificates the server takes. A client certificate is then requested,
         * not required; the handshake does not verify it: the handler does, from
         * http_request_client_certs(). Copied. */
        const char *tls_client_ca_pem;
};

/* The GnuTLS priority string of an HTTPS server. */
#define HTTP_TLS_PRIORITIES                                                           \
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-VERS-DTLS-ALL:-CIPHER-ALL:" \
        "+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE"

/* Binds, listens and starts serving. -EADDRINUSE, -EACCES, -EINVAL (bad address, one of the TLS
 * texts without the other, a client CA without them), -EOPNOTSUPP (libmicrohttpd without TLS), -EIO
 * (MHD refused to start: with TLS, a certificate or key it could not use), ... */
int http_server_start(const struct http_server_options *opts, struct http_server **ret);
/* The port actually bound. */
uint16_t http_server_port(const struct http_server *s);
/* Stops accepting new connections; requests in flight go on. */
void http_server_quiesce(struct http_server *s);
/* Stops the server: waits for the handlers in flight to return. Accepts NULL; returns NULL. */
struct http_server *http_server_free(struct http_server *s);
DEFINE_FREE_FUNC(struct http_server *, http_server_free)

/* ---- the request (valid until the handler has replied and returned) ---- */

const char *http_request_method(const struct http_request *req);
/* The path as received, without the query string. */
const char *http_request_path(const struct http_request *req);
/* A {name} of the route's pattern; NULL if the pattern has none by that name. */
const char *http_request_param(const struct http_request *req, const char *name);
/* A query argument (percent-decoded); NULL if absent; "" for "?flag". */
const char *http_request_query(const struct http_request *req, const char *name);
/* A request header (case-insensitive name); NULL if absent. */
const char *http_request_header(const struct http_request *req, const char *name);
/* The body (NUL-terminated for convenience; may contain NULs); *ret_len 0 and "" if none. */
const char *http_request_body(const struct http_request *req, size_t *ret_len);
/* A raw route's sink, as its open() made it (NULL for other routes). */
void *http_request_sink(const struct http_request *req);
/* The bytes of a raw route's body received so far (all of it, in the handler). */
uint64_t http_request_raw_size(const struct http_request *req);
/* The client's address, as text ("127.0.0.1", "::1"). */
const char *http_request_peer(const struct http_request *req);
/*
 * The certificates the client presented in the TLS handshake, DER, its own first: at most max of
 * them into ders[] and lens[] (borrowed: valid while the request is). Returns how many it
 * presented (0: none, or plain HTTP, or no tls_client_ca_pem); nothing here says they are valid.
 */
size_t http_request_client_certs(const struct http_request *req, const void **ders, size_t *lens,
                                 size_t max);
/* Adds a header to the reply about to be sent (e.g. "Retry-After", "Location"). */
int http_request_add_header(struct http_request *req, const char *name, const char *value);

/* ---- replies: exactly one per request ---- */

/* Takes body (json_decref'd whatever happens). status 204: no body is sent. */
int http_reply_json(struct http_request *req, int status, json_t *body);
int http_reply_data(struct http_request *req, int status, const char *content_type,
                    const void *data, size_t len);
/* Takes fd (closed whatever happens): size bytes from offset 0. */
int http_reply_fd(struct http_request *req, int status, const char *content_type, int fd,
                  uint64_t size);
/* {"error": {"code": code, "message": printf(fmt, ...)}} */
int http_reply_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
        _printf_(4, 5);
/* The status and code of api_error_from_errno(r) (r < 0), with message printf(fmt, ...). */
int http_reply_errno(struct http_request *req, int r, const char *fmt, ...) _printf_(3, 4);

/*
 * A streamed reply (an event stream). fn is called from the connection's thread whenever the
 * client can take more: it writes at most max bytes to buf and returns how many (> 0), or 0 to be
 * called again (it should then have waited, bounded, for something to send), or
 * HTTP_STREAM_END to finish the reply, or HTTP_STREAM_ERROR to abort the connection.
 * free_fn(cookie) is called exactly once when the stream ends for any reason (client gone too).
 */
#define HTTP_STREAM_END   (-1)
#define HTTP_STREAM_ERROR (-2)
typedef long (*http_stream_fn)(void *cookie, char *buf, size_t max);
int http_reply_stream(struct http_request *req, int status, const char *content_type,
                      http_stream_fn fn, void *cookie, void (*free_fn)(void *cookie));
