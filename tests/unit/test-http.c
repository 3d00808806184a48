/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/time.h>

#include "api/http.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "unit.h"

/*
 * The real server on 127.0.0.1, an ephemeral port, and a client written here on plain blocking
 * sockets with a receive timeout, so that what is tested is what goes over the wire. Handlers
 * run on the server's threads and never call cmocka's asserts (they would longjmp on the wrong
 * stack): they record what they saw under ctx.lock, and the test reads it. Whatever the test has
 * to wait for (a completion, a stream's end, a handler blocked) it waits on a condition
 * variable, bounded, or on its socket, never for a while. TEST_DEBUG=1 in the environment shows
 * the module's and MHD's debug lines.
 */

#define WAIT_S    30 /* a wait that should never run out */
#define MAX_BODY  ((size_t) 64 << 10)
#define MAX_ITEMS 64

struct done_record {
        char route[64]; /* "" for NULL */
        int status;
};

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct http_server *server;
        uint16_t port;

        unsigned items_calls;
        unsigned upload_calls, raw_opens, raw_writes, raw_closes;
        unsigned stream_frees;
        unsigned forever_frees;
        int second_reply; /* what the second http_reply_*() of /twice returned */
        bool slow_entered, slow_release;
        struct done_record done[MAX_ITEMS];
        size_t n_done;
} ctx = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* Also called by the server's threads: no assert. */
static void ctx_signal(void)
{
        (void) pthread_cond_broadcast(&ctx.cond);
}

/* Called with ctx.lock held: waits for the condition variable, bounded; false if the time ran
 * out. */
static bool ctx_wait(const struct timespec *deadline)
{
        int r = pthread_cond_timedwait(&ctx.cond, &ctx.lock, deadline);

        return r == 0;
}

static struct timespec deadline_in(int seconds)
{
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        ts.tv_sec += seconds;
        return ts;
}

/* ---- handlers (server threads: no asserts) ---- */

static void lock(void)
{
        (void) pthread_mutex_lock(&ctx.lock);
}

static void unlock(void)
{
        (void) pthread_mutex_unlock(&ctx.lock);
}

static void handle_echo(struct http_request *req, void *userdata)
{
        (void) http_reply_json(req, 200,
                               json_pack("{s:s, s:s, s:s, s:s?}", "a", http_request_param(req, "a"),
                                         "b", http_request_param(req, "b"), "path",
                                         http_request_path(req), "c",
                                         http_request_param(req, "c")));
}

static void handle_items_post(struct http_request *req, void *userdata)
{
        size_t len;
        const char *body = http_request_body(req, &len);

        lock();
        ctx.items_calls++;
        unlock();
        (void) http_reply_json(
                req, 201, json_pack("{s:I, s:s%}", "len", (json_int_t) len, "body", body, len));
}

static void handle_items_list(struct http_request *req, void *userdata)
{
        (void) http_reply_json(req, 200, json_pack("{s:[]}", "items"));
}

static void handle_items_delete(struct http_request *req, void *userdata)
{
        (void) http_reply_json(req, 204, json_pack("{}"));
}

static void handle_query(struct http_request *req, void *userdata)
{
        (void) http_reply_json(req, 200,
                               json_pack("{s:s?, s:s?, s:s?, s:s?}", "a",
                                         http_request_query(req, "a"), "flag",
                                         http_request_query(req, "flag"), "missing",
                                         http_request_query(req, "missing"), "key with space",
                                         http_request_query(req, "key with space")));
}

static void handle_header(struct http_request *req, void *userdata)
{
        int r1 = http_request_add_header(req, "X-Reply", "yes");
        int r2 = http_request_add_header(req, "X-Bad", "a\r\nInjected: 1");
        int r3 = http_request_add_header(req, "Bad Name", "x");

        (void) http_reply_json(req, 200,
                               json_pack("{s:s?, s:s?, s:s, s:s, s:i, s:i, s:i}", "x-test",
                                         http_request_header(req, "x-test"), "absent",
                                         http_request_header(req, "X-Absent"), "peer",
                                         http_request_peer(req), "method", http_request_method(req),
                                         "r1", r1, "r2", r2, "r3", r3));
}

static const char data_bytes[] = "hello\0world";

static void handle_data(struct http_request *req, void *userdata)
{
        (void) http_reply_data(req, 200, "text/plain", data_bytes, sizeof(data_bytes) - 1);
}

static void handle_fd(struct http_request *req, void *userdata)
{
        char path[] = "/tmp/test-http-XXXXXX";
        static const char text[] = "file contents\n";
        int fd = mkostemp(path, O_CLOEXEC);

        if (fd < 0)
                return; /* the test sees a 500 */
        (void) unlink(path);
        if (write_full(fd, text, sizeof(text) - 1) < 0) {
                (void) close(fd);
                return;
        }
        (void) http_reply_fd(req, 200, "text/plain", fd, sizeof(text) - 1);
}

static void handle_error(struct http_request *req, void *userdata)
{
        (void) http_reply_error(req, 409, "conflict", "name '%s' taken", "x");
}

static void handle_errno(struct http_request *req, void *userdata)
{
        (void) http_reply_errno(req, -ENOENT, "no job '%s'", "abc");
}

static void handle_noreply(struct http_request *req, void *userdata)
{
}

static void handle_twice(struct http_request *req, void *userdata)
{
        int r;

        (void) http_reply_json(req, 200, json_pack("{s:i}", "reply", 1));
        r = http_reply_error(req, 500, "internal_error", "second");
        lock();
        ctx.second_reply = r;
        unlock();
}

struct stream_state {
        unsigned next, n, idle;
        unsigned *frees;
};

static long stream_fn(void *cookie, char *buf, size_t max)
{
        struct stream_state *st = cookie;
        int n;

        if (st->next == st->n)
                return HTTP_STREAM_END;
        n = snprintf(buf, max, "chunk %u\n", st->next);
        if (n < 0 || (size_t) n >= max)
                return HTTP_STREAM_ERROR;
        st->next++;
        return n;
}

/* Nothing to send for the first calls (a real stream waits, bounded, before saying so), then
 * the chunks. */
static long idle_fn(void *cookie, char *buf, size_t max)
{
        struct stream_state *st = cookie;

        if (st->idle > 0) {
                st->idle--;
                return 0;
        }
        return stream_fn(cookie, buf, max);
}

/* Always more: the server writes until the socket is full and notices when the client left. */
static long forever_fn(void *cookie, char *buf, size_t max)
{
        memset(buf, 'x', max);
        return (long) max;
}

static void stream_free(void *cookie)
{
        struct stream_state *st = cookie;

        lock();
        (*st->frees)++;
        ctx_signal();
        unlock();
        free(st);
}

static void handle_stream(struct http_request *req, void *userdata)
{
        struct stream_state *st = calloc(1, sizeof(*st));

        if (!st)
                return;
        *st = (struct stream_state){.n = 5, .frees = &ctx.stream_frees};
        (void) http_reply_stream(req, 200, "text/event-stream", stream_fn, st, stream_free);
}

static void handle_idle(struct http_request *req, void *userdata)
{
        struct stream_state *st = calloc(1, sizeof(*st));

        if (!st)
                return;
        *st = (struct stream_state){.n = 2, .idle = 3, .frees = &ctx.stream_frees};
        (void) http_reply_stream(req, 200, "text/event-stream", idle_fn, st, stream_free);
}

static void handle_forever(struct http_request *req, void *userdata)
{
        struct stream_state *st = calloc(1, sizeof(*st));

        if (!st)
                return;
        *st = (struct stream_state){.frees = &ctx.forever_frees};
        (void) http_reply_stream(req, 200, "text/event-stream", forever_fn, st, stream_free);
}

/* Blocks until the test releases it (bounded), then answers. */
static void handle_slow(struct http_request *req, void *userdata)
{
        struct timespec deadline;
        bool released;

        (void) clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += WAIT_S;
        lock();
        ctx.slow_entered = true;
        ctx_signal();
        while (!ctx.slow_release && ctx_wait(&deadline))
                ;
        released = ctx.slow_release;
        unlock();
        (void) http_reply_json(req, 200, json_pack("{s:b}", "released", released));
}

/* ---- a raw route: the body goes to a sink that sums its bytes ---- */

#define MAX_RAW ((uint64_t) 256 << 10)

struct sink {
        uint64_t size, sum, cap;
};

static int raw_open(struct http_request *req, void *userdata, void **ret_sink)
{
        const char *cap = http_request_query(req, "cap");
        struct sink *s;

        lock();
        ctx.raw_opens++;
        unlock();
        if (http_request_query(req, "refuse"))
                return http_reply_error(req, 401, "unauthorized", "no"), -EACCES;
        if (http_request_query(req, "fail"))
                return -EIO;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cap = cap ? (uint64_t) strtoull(cap, NULL, 10) : UINT64_MAX;
        *ret_sink = s;
        return 0;
}

static int raw_write(void *sink, const void *data, size_t len)
{
        struct sink *s = sink;
        const unsigned char *p = data;

        if (len > s->cap - s->size)
                return -EFBIG;
        for (size_t i = 0; i < len; i++)
                s->sum = s->sum * 31 + p[i];
        s->size += len;
        lock();
        ctx.raw_writes++;
        unlock();
        return 0;
}

static void raw_close(void *sink)
{
        free(sink);
        lock();
        ctx.raw_closes++;
        ctx_signal();
        unlock();
}

static const struct http_raw_body raw_body = {
        .media_type = "application/octet-stream",
        .open = raw_open,
        .write = raw_write,
        .close = raw_close,
};

static void handle_upload(struct http_request *req, void *userdata)
{
        struct sink *s = http_request_sink(req);

        lock();
        ctx.upload_calls++;
        unlock();
        (void) http_reply_json(req, 201,
                               json_pack("{s:I, s:I, s:I}", "size", (json_int_t) s->size, "sum",
                                         (json_int_t) (s->sum & 0xffffffffffff), "raw_size",
                                         (json_int_t) http_request_raw_size(req)));
}

static void on_done(const char *route, int status, uint64_t duration_ns, void *userdata)
{
        lock();
        if (ctx.n_done < MAX_ITEMS) {
                struct done_record *d = &ctx.done[ctx.n_done++];

                (void) snprintf(d->route, sizeof(d->route), "%s", route ? route : "");
                d->status = status;
        }
        ctx_signal();
        unlock();
}

static const struct http_route routes[] = {
        {"GET", "/echo/{a}/x/{b}", "echo", handle_echo},
        {"GET", "/echo/{a}/y/{b}/{c}", "echo3", handle_echo},
        {"GET", "/items", "items_list", handle_items_list},
        {"POST", "/items", "items_post", handle_items_post},
        {"DELETE", "/items/{id}", "items_delete", handle_items_delete},
        {"GET", "/query", "query", handle_query},
        {"GET", "/header", "header", handle_header},
        {"GET", "/data", "data", handle_data},
        {"GET", "/fd", "fd", handle_fd},
        {"GET", "/error", "error", handle_error},
        {"GET", "/errno", "errno", handle_errno},
        {"GET", "/noreply", "noreply", handle_noreply},
        {"GET", "/twice", "twice", handle_twice},
        {"GET", "/stream", "stream", handle_stream},
        {"GET", "/idle", "idle", handle_idle},
        {"GET", "/forever", "forever", handle_forever},
        {"GET", "/slow", "slow", handle_slow},
        {"POST", "/upload", "upload", handle_upload, &raw_body},
};

/* ---- the server under test ---- */

static void start_server(const struct http_server_options *extra)
{
        struct http_server_options opts = {
                .address = "127.0.0.1",
                .max_body = MAX_BODY,
                .max_raw_body = MAX_RAW,
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
                .on_done = on_done,
        };

        if (extra) {
                opts.max_connections = extra->max_connections;
                opts.max_connections_per_ip = extra->max_connections_per_ip;
                opts.max_header = extra->max_header;
        }
        assert_int_equal(http_server_start(&opts, &ctx.server), 0);
        ctx.port = http_server_port(ctx.server);
        assert_int_not_equal(ctx.port, 0);
}

static int setup(void **state)
{
        lock();
        ctx.items_calls = ctx.stream_frees = ctx.forever_frees = 0;
        ctx.upload_calls = ctx.raw_opens = ctx.raw_writes = ctx.raw_closes = 0;
        ctx.second_reply = 0;
        ctx.slow_entered = ctx.slow_release = false;
        ctx.n_done = 0;
        unlock();
        start_server(NULL);
        return 0;
}

static int teardown(void **state)
{
        ctx.server = http_server_free(ctx.server);
        return 0;
}

/* ---- the client ---- */

struct conn {
        int fd;
        char *buf;
        size_t len, cap;
};

struct response {
        int status;
        char *head; /* status line and headers */
        char *body; /* NUL-terminated for convenience */
        size_t body_len;
};

static void response_clear(struct response *r)
{
        free(r->head);
        free(r->body);
        *r = (struct response){};
}

static int connect_family(int family, uint16_t port, int *ret_fd)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } addr = {};
        struct timeval tv = {.tv_sec = WAIT_S};
        _cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        socklen_t len;

        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        if (family == AF_INET6) {
                addr.in6.sin6_family = AF_INET6;
                addr.in6.sin6_port = htons(port);
                addr.in6.sin6_addr = in6addr_loopback;
                len = sizeof(addr.in6);
        } else {
                addr.in.sin_family = AF_INET;
                addr.in.sin_port = htons(port);
                addr.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                len = sizeof(addr.in);
        }
        if (connect(fd, &addr.sa, len) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int connect_to(uint16_t port, int *ret_fd)
{
        return connect_family(AF_INET, port, ret_fd);
}

static void conn_open(struct conn *c)
{
        *c = (struct conn){.fd = -EBADF};
        assert_int_equal(connect_to(ctx.port, &c->fd), 0);
}

static void conn_close(struct conn *c)
{
        c->fd = safe_close(c->fd);
        free(c->buf);
        c->buf = NULL;
        c->len = c->cap = 0;
}

static int conn_send(struct conn *c, const void *data, size_t len)
{
        const char *p = data;

        while (len > 0) {
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int conn_send_str(struct conn *c, const char *s)
{
        return conn_send(c, s, strlen(s));
}

/* Reads what the socket has (waiting for it, bounded by SO_RCVTIMEO): > 0, 0 at EOF, -errno. */
static ssize_t conn_fill(struct conn *c)
{
        ssize_t n;

        if (c->cap - c->len < 4096) {
                size_t cap = c->cap ? c->cap * 2 : 16384;
                char *p = realloc(c->buf, cap);

                assert_non_null(p);
                c->buf = p;
                c->cap = cap;
        }
        do
                n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        c->len += (size_t) n;
        c->buf[c->len] = '\0';
        return n;
}

static void conn_consume(struct conn *c, size_t n)
{
        memmove(c->buf, c->buf + n, c->len - n + 1); /* with the NUL after it */
        c->len -= n;
}

/* The value of header name in head (trimmed) into buf; false if absent. */
static bool head_value(const char *head, const char *name, char *buf, size_t size)
{
        size_t nlen = strlen(name);

        for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
                const char *line = p + 2, *end = strstr(line, "\r\n");
                size_t vlen;

                if (!end)
                        end = line + strlen(line);
                if ((size_t) (end - line) <= nlen || strncasecmp(line, name, nlen) != 0 ||
                    line[nlen] != ':')
                        continue;
                line += nlen + 1;
                line += strspn(line, " \t");
                vlen = (size_t) (end - line);
                while (vlen > 0 && (line[vlen - 1] == ' ' || line[vlen - 1] == '\t'))
                        vlen--;
                if (vlen >= size)
                        return false;
                memcpy(buf, line, vlen);
                buf[vlen] = '\0';
                return true;
        }
        return false;
}

static int body_append(struct response *r, const char *data, size_t len)
{
        char *p = realloc(r->body, r->body_len + len + 1);

        if (!p)
                return -ENOMEM;
        memcpy(p + r->body_len, data, len);
        r->body = p;
        r->body_len += len;
        r->body[r->body_len] = '\0';
        return 0;
}

/* Makes sure c holds at least n bytes; -ECONNRESET at EOF before that. */
static int conn_need(struct conn *c, size_t n)
{
        while (c->len < n) {
                ssize_t k = conn_fill(c);

                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -ECONNRESET;
        }
        return 0;
}

/* One response: status line, headers, and a body by Content-Length, chunks or EOF. */
static int read_response(struct conn *c, struct response *r)
{
        char value[64];
        char *end;
        size_t head_len;
        int k;

        *r = (struct response){};
        while (!(end = c->buf ? strstr(c->buf, "\r\n\r\n") : NULL)) {
                ssize_t n = conn_fill(c);

                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -ECONNRESET;
        }
        head_len = (size_t) (end - c->buf) + 4;
        r->head = strndup(c->buf, head_len - 2);
        assert_non_null(r->head);
        conn_consume(c, head_len);
        if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
                return -EBADMSG;
        k = body_append(r, "", 0);
        if (k < 0)
                return k;
        if (r->status == 204 || r->status == 304)
                return 0;

        if (head_value(r->head, "Content-Length", value, sizeof(value))) {
                size_t len = strtoul(value, NULL, 10);

                k = conn_need(c, len);
                if (k < 0)
                        return k;
                k = body_append(r, c->buf, len);
                conn_consume(c, len);
                return k;
        }
        if (head_value(r->head, "Transfer-Encoding", value, sizeof(value)) &&
            strcasecmp(value, "chunked") == 0) {
                for (;;) {
                        size_t len;

                        while (!(end = c->len ? strstr(c->buf, "\r\n") : NULL)) {
                                k = conn_need(c, c->len + 1);
                                if (k < 0)
                                        return k;
                        }
                        len = strtoul(c->buf, NULL, 16);
                        conn_consume(c, (size_t) (end - c->buf) + 2);
                        k = conn_need(c, len + 2);
                        if (k < 0)
                                return k;
                        if (len == 0) {
                                conn_consume(c, 2);
                                return 0;
                        }
                        k = body_append(r, c->buf, len);
                        if (k < 0)
                                return k;
                        conn_consume(c, len + 2);
                }
        }
        for (;;) {
                ssize_t n = conn_fill(c);

                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
        }
        k = body_append(r, c->buf, c->len);
        conn_consume(c, c->len);
        return k;
}

/* Sends raw on a new connection and reads one response. */
static void request(const char *raw, struct response *r)
{
        struct conn c;

        conn_open(&c);
        assert_int_equal(conn_send_str(&c, raw), 0);
        assert_int_equal(read_response(&c, r), 0);
        conn_close(&c);
}

static json_t *body_json(const struct response *r)
{
        json_error_t err;
        json_t *o = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);

        if (!o)
                fail_msg("not JSON: '%s'", r->body);
        return o;
}

static void assert_member(json_t *o, const char *name, const char *value)
{
        json_t *v = json_object_get(o, name);

        if (!value) {
                assert_true(!v || json_is_null(v));
                return;
        }
        assert_non_null(v);
        assert_string_equal(json_string_value(v), value);
}

static void assert_header(const struct response *r, const char *name, const char *value)
{
        char buf[256];

        if (!head_value(r->head, name, buf, sizeof(buf)))
                fail_msg("no header %s in:\n%s", name, r->head);
        assert_string_equal(buf, value);
}

/* The error body is exactly {"error": {"code": code, "message": message}}. */
static void assert_error(const struct response *r, int status, const char *code,
                         const char *message)
{
        json_t *o = body_json(r), *e;

        assert_int_equal(r->status, status);
        assert_header(r, "Content-Type", "application/json");
        assert_header(r, "Cache-Control", "no-store");
        assert_header(r, "X-Content-Type-Options", "nosniff");
        assert_int_equal(json_object_size(o), 1);
        e = json_object_get(o, "error");
        assert_true(json_is_object(e));
        assert_int_equal(json_object_size(e), 2);
        assert_member(e, "code", code);
        assert_true(json_is_string(json_object_get(e, "message")));
        if (message)
                assert_member(e, "message", message);
        json_decref(o);
}

/* Waits (bounded) for the nth on_done call and returns it. */
static struct done_record wait_done(size_t n)
{
        struct timespec deadline = deadline_in(WAIT_S);
        struct done_record d;

        lock();
        while (ctx.n_done < n && ctx_wait(&deadline))
                ;
        assert_true(ctx.n_done >= n);
        d = ctx.done[n - 1];
        unlock();
        return d;
}

/* Waits (bounded) for the on_done call of route and returns it. */
static struct done_record wait_done_for(const char *route)
{
        struct timespec deadline = deadline_in(WAIT_S);

        lock();
        for (;;) {
                for (size_t i = 0; i < ctx.n_done; i++)
                        if (streq_ptr(ctx.done[i].route, route)) {
                                struct done_record d = ctx.done[i];

                                unlock();
                                return d;
                        }
                if (!ctx_wait(&deadline))
                        break;
        }
        unlock();
        fail_msg("no on_done call for route '%s'", route);
        return (struct done_record){};
}

static unsigned wait_count(unsigned *counter, unsigned want)
{
        struct timespec deadline = deadline_in(WAIT_S);
        unsigned v;

        lock();
        while (*counter < want && ctx_wait(&deadline))
                ;
        v = *counter;
        unlock();
        return v;
}

static unsigned count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        assert_int_equal(closedir(d), 0);
        return n;
}

/* ---- tests ---- */

static void test_routing_params(void **state)
{
        struct response r;
        json_t *o;

        request("GET /echo/hello/x/w%C3%B6rld%20and%2bmore HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "application/json");
        assert_header(&r, "Cache-Control", "no-store");
        assert_header(&r, "X-Content-Type-Options", "nosniff");
        o = body_json(&r);
        assert_member(o, "a", "hello");
        assert_member(o, "b", "w\xc3\xb6rld and+more");
        assert_member(o, "c", NULL);
        assert_member(o, "path", "/echo/hello/x/w%C3%B6rld%20and%2bmore");
        json_decref(o);
        response_clear(&r);

        /* three parameters, and the route is chosen by its literal segment */
        request("GET /echo/1/y/2/3 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_member(o, "a", "1");
        assert_member(o, "b", "2");
        assert_member(o, "c", "3");
        json_decref(o);
        response_clear(&r);
}

static void test_params_refused(void **state)
{
        static const char *const paths[] = {
                "/echo/a%2Fb/x/c",   /* an encoded '/' */
                "/echo/a%2fb/x/c",   /* in lower case */
                "/echo/a%00b/x/c",   /* NUL */
                "/echo/a%zz/x/c",    /* a malformed escape */
                "/echo/a%2/x/c",     /* a cut one */
                "/echo//x/c",        /* an empty segment */
                "/echo/a/x/c/",      /* a trailing slash */
                "/echo/a/x",         /* too few segments */
                "/echo/a/x/b/extra", /* too many */
                "/ECHO/a/x/b",       /* literal segments match exactly */
                "/nope",             /* no such route */
                "/",
        };
        char raw[1024];
        struct response r;

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                (void) snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
                request(raw, &r);
                assert_error(&r, 404, "no_route", NULL);
                response_clear(&r);
        }
}

static void test_param_length(void **state)
{
        char raw[4096], seg[3 * 300];
        struct response r;
        json_t *o;

        /* HTTP_PARAM_MAX decoded bytes, sent escaped (three bytes each): accepted */
        for (size_t i = 0; i < HTTP_PARAM_MAX; i++)
                memcpy(seg + 3 * i, "%41", 3);
        seg[3 * HTTP_PARAM_MAX] = '\0';
        (void) snprintf(raw, sizeof(raw), "GET /echo/%s/x/b HTTP/1.1\r\nHost: t\r\n\r\n", seg);
        request(raw, &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_int_equal(strlen(json_string_value(json_object_get(o, "a"))), HTTP_PARAM_MAX);
        json_decref(o);
        response_clear(&r);

        /* one more: refused */
        memset(seg, 'A', HTTP_PARAM_MAX + 1);
        seg[HTTP_PARAM_MAX + 1] = '\0';
        (void) snprintf(raw, sizeof(raw), "GET /echo/%s/x/b HTTP/1.1\r\nHost: t\r\n\r\n", seg);
        request(raw, &r);
        assert_error(&r, 404, "no_route", NULL);
        response_clear(&r);
}

static void test_method_not_allowed(void **state)
{
        struct response r;

        request("PUT /items HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
        assert_error(&r, 405, "method_not_allowed", NULL);
        assert_header(&r, "Allow", "GET, POST");
        response_clear(&r);

        request("GET /items/7 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_error(&r, 405, "method_not_allowed", NULL);
        assert_header(&r, "Allow", "DELETE");
        response_clear(&r);

        request("DELETE /items/7 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 204);
        assert_int_equal(r.body_len, 0);
        assert_header(&r, "Cache-Control", "no-store");
        response_clear(&r);
}

static void test_body(void **state)
{
        _cleanup_free_ char *big = malloc(MAX_BODY + 256);
        struct response r;
        json_t *o;
        int n;

        request("POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                "Content-Length: 11\r\n\r\n{\"a\": \"b\"}\n",
                &r);
        assert_int_equal(r.status, 201);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "len")), 11);
        assert_member(o, "body", "{\"a\": \"b\"}\n");
        json_decref(o);
        response_clear(&r);

        /* exactly max_body: accepted */
        assert_non_null(big);
        n = snprintf(big, 256,
                     "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     MAX_BODY);
        memset(big + n, 'a', MAX_BODY);
        big[n + MAX_BODY] = '\0';
        request(big, &r);
        assert_int_equal(r.status, 201);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "len")), MAX_BODY);
        json_decref(o);
        response_clear(&r);

        /* no body at all: the handler gets "" and decides */
        request("POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
        assert_int_equal(r.status, 201);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "len")), 0);
        json_decref(o);
        response_clear(&r);

        lock();
        assert_int_equal(ctx.items_calls, 3);
        unlock();
}

static void test_too_large_by_length(void **state)
{
        char raw[256];
        struct response r;

        (void) snprintf(raw, sizeof(raw),
                        "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        MAX_BODY + 1);
        /* Nothing of the body is sent: the answer comes before it is read. */
        request(raw, &r);
        assert_error(&r, 413, "too_large", NULL);
        response_clear(&r);

        request("POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                "Content-Length: 99999999999999999999999\r\n\r\n",
                &r);
        assert_true(r.status == 400 || r.status == 413);
        response_clear(&r);

        lock();
        assert_int_equal(ctx.items_calls, 0);
        unlock();
}

/* Sends n bytes of body in chunks of 4 KiB; the first error, if any. */
static int send_chunks(struct conn *c, size_t n)
{
        char chunk[4096 + 16];

        for (size_t sent = 0; sent < n;) {
                size_t len = n - sent < 4096 ? n - sent : 4096;
                int h = snprintf(chunk, sizeof(chunk), "%zx\r\n", len);
                int k;

                memset(chunk + h, 'a', len);
                memcpy(chunk + h + len, "\r\n", 2);
                k = conn_send(c, chunk, (size_t) h + len + 2);
                if (k < 0)
                        return k;
                sent += len;
        }
        return 0;
}

static void test_too_large_chunked(void **state)
{
        static const char head[] = "POST /items HTTP/1.1\r\nHost: t\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n";
        struct conn c;
        struct response r;
        int k;

        /* No length told: the body outgrows max_body while it arrives. MHD takes no reply
         * before the body has ended; the server drops the rest and answers then. */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, head), 0);
        assert_int_equal(send_chunks(&c, MAX_BODY + 1), 0);
        assert_int_equal(conn_send_str(&c, "0\r\n\r\n"), 0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_error(&r, 413, "too_large", NULL);
        response_clear(&r);
        conn_close(&c);

        /* A body that goes on and on: the connection is closed, a while past max_body (the
         * server has read at most 1 MiB more). */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, head), 0);
        k = send_chunks(&c, (size_t) 64 << 20);
        assert_true(k == -ECONNRESET || k == -EPIPE);
        k = read_response(&c, &r);
        assert_true(k == -ECONNRESET);
        response_clear(&r);
        conn_close(&c);

        /* within the limit, chunked works */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, head), 0);
        assert_int_equal(send_chunks(&c, MAX_BODY), 0);
        assert_int_equal(conn_send_str(&c, "0\r\n\r\n"), 0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 201);
        response_clear(&r);
        conn_close(&c);

        lock();
        assert_int_equal(ctx.items_calls, 1);
        unlock();
}

static void test_unsupported_media_type(void **state)
{
        static const struct {
                const char *content_type; /* NULL: none */
                int status;
        } cases[] = {
                {"application/json", 201},
                {"application/json; charset=utf-8", 201},
                {"Application/JSON;charset=UTF-8", 201},
                {"text/plain", 415},
                {"application/jsonx", 415},
                {"application/x-www-form-urlencoded", 415},
                {"", 415},
                {NULL, 415},
        };

        char raw[512];
        struct response r;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char ct[128] = "";

                if (cases[i].content_type)
                        (void) snprintf(ct, sizeof(ct), "Content-Type: %s\r\n",
                                        cases[i].content_type);
                (void) snprintf(raw, sizeof(raw),
                                "POST /items HTTP/1.1\r\nHost: t\r\n%sContent-Length: 2\r\n\r\n{}",
                                ct);
                request(raw, &r);
                if (cases[i].status == 415)
                        assert_error(&r, 415, "unsupported_media_type", NULL);
                else
                        assert_int_equal(r.status, cases[i].status);
                response_clear(&r);
        }
        lock();
        assert_int_equal(ctx.items_calls, 3);
        unlock();
}

static void test_query(void **state)
{
        struct response r;
        json_t *o;

        request("GET /query?a=x%20y+z&flag&key+with%20space=1&b=%zz HTTP/1.1\r\nHost: t\r\n\r\n",
                &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_member(o, "a", "x y z");
        assert_member(o, "flag", "");
        assert_member(o, "missing", NULL);
        assert_member(o, "key with space", "1");
        json_decref(o);
        response_clear(&r);

        /* a query string does not change the route */
        request("GET /items?a=1 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        response_clear(&r);
}

static void test_headers(void **state)
{
        struct response r;
        json_t *o;

        request("GET /header HTTP/1.1\r\nHost: t\r\nX-Test: some value\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_header(&r, "X-Reply", "yes");
        assert_null(strstr(r.head, "Injected"));
        o = body_json(&r);
        assert_member(o, "x-test", "some value");
        assert_member(o, "absent", NULL);
        assert_member(o, "peer", "127.0.0.1");
        assert_member(o, "method", "GET");
        assert_int_equal(json_integer_value(json_object_get(o, "r1")), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "r2")), -EINVAL);
        assert_int_equal(json_integer_value(json_object_get(o, "r3")), -EINVAL);
        json_decref(o);
        response_clear(&r);
}

static void test_data_reply(void **state)
{
        struct response r;

        request("GET /data HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/plain");
        assert_header(&r, "Cache-Control", "no-store");
        assert_header(&r, "X-Content-Type-Options", "nosniff");
        assert_int_equal(r.body_len, sizeof(data_bytes) - 1);
        assert_memory_equal(r.body, data_bytes, sizeof(data_bytes) - 1);
        response_clear(&r);
}

static void test_fd_reply(void **state)
{
        struct response r;

        request("GET /fd HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/plain");
        assert_header(&r, "Content-Length", "14");
        assert_string_equal(r.body, "file contents\n");
        response_clear(&r);
}

static void test_errors(void **state)
{
        struct response r;

        request("GET /error HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_error(&r, 409, "conflict", "name 'x' taken");
        assert_string_equal(r.body, "{\"error\":{\"code\":\"conflict\",\"message\":\"name 'x' "
                                    "taken\"}}");
        response_clear(&r);

        request("GET /errno HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_error(&r, 404, "not_found", "no job 'abc'");
        response_clear(&r);
}

static void test_no_reply(void **state)
{
        struct response r;

        request("GET /noreply HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_error(&r, 500, "internal_error", NULL);
        response_clear(&r);
}

static void test_reply_twice(void **state)
{
        struct response r;
        json_t *o;

        request("GET /twice HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "reply")), 1);
        json_decref(o);
        response_clear(&r);
        lock();
        assert_int_equal(ctx.second_reply, -EALREADY);
        unlock();
}

static void test_keep_alive(void **state)
{
        struct conn c;
        struct response r;

        /* several requests on one connection, the second one pipelined behind the first */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, "GET /echo/1/x/2 HTTP/1.1\r\nHost: t\r\n\r\n"
                                           "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
                         0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        response_clear(&r);
        assert_int_equal(read_response(&c, &r), 0);
        assert_error(&r, 404, "no_route", NULL);
        response_clear(&r);
        assert_int_equal(conn_send_str(&c, "GET /data HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        response_clear(&r);
        conn_close(&c);
}

static void test_stream(void **state)
{
        struct response r;

        request("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/event-stream");
        assert_header(&r, "Transfer-Encoding", "chunked");
        assert_header(&r, "Cache-Control", "no-store");
        assert_string_equal(r.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
        response_clear(&r);
        assert_int_equal(wait_count(&ctx.stream_frees, 1), 1);
        assert_int_equal(wait_done_for("stream").status, 200);
}

static void test_stream_idle(void **state)
{
        struct response r;

        request("GET /idle HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "chunk 0\nchunk 1\n");
        response_clear(&r);
        assert_int_equal(wait_count(&ctx.stream_frees, 1), 1);
}

static void test_stream_client_gone(void **state)
{
        struct conn c;
        struct done_record d;

        conn_open(&c);
        assert_int_equal(conn_send_str(&c, "GET /forever HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        /* the headers and some of the stream, then away */
        while (!strstr(c.buf ? c.buf : "", "\r\n\r\n") || c.len < 65536)
                assert_true(conn_fill(&c) > 0);
        assert_true(strncmp(c.buf, "HTTP/1.1 200", 12) == 0);
        conn_close(&c);

        assert_int_equal(wait_count(&ctx.forever_frees, 1), 1);
        d = wait_done_for("forever");
        assert_int_equal(d.status, 0);

        /* still exactly once, after the request is over */
        lock();
        assert_int_equal(ctx.forever_frees, 1);
        unlock();
}

static void test_on_done(void **state)
{
        struct response r;
        struct done_record d;

        request("GET /echo/1/x/2 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        response_clear(&r);
        d = wait_done(1);
        assert_string_equal(d.route, "echo");
        assert_int_equal(d.status, 200);

        request("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        response_clear(&r);
        d = wait_done(2);
        assert_string_equal(d.route, "");
        assert_int_equal(d.status, 404);

        request("PUT /items HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r);
        response_clear(&r);
        d = wait_done(3);
        assert_string_equal(d.route, "");
        assert_int_equal(d.status, 405);

        request("GET /noreply HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        response_clear(&r);
        d = wait_done(4);
        assert_string_equal(d.route, "noreply");
        assert_int_equal(d.status, 500);
}

/* Opens n connections that each had a request answered: the server holds them all. */
static void open_held(struct conn *conns, size_t n)
{
        struct response r;

        for (size_t i = 0; i < n; i++) {
                conn_open(&conns[i]);
                assert_int_equal(conn_send_str(&conns[i], "GET /items HTTP/1.1\r\nHost: t\r\n\r\n"),
                                 0);
                assert_int_equal(read_response(&conns[i], &r), 0);
                assert_int_equal(r.status, 200);
                response_clear(&r);
        }
}

/* The connection is closed without an answer. */
static void assert_refused(void)
{
        struct conn c;
        struct response r;
        int k;

        conn_open(&c); /* the kernel completes the handshake; MHD then closes it */
        (void) conn_send_str(&c, "GET /items HTTP/1.1\r\nHost: t\r\n\r\n");
        k = read_response(&c, &r);
        assert_true(k == -ECONNRESET || k == -EPIPE);
        response_clear(&r);
        conn_close(&c);
}

static void test_per_ip_limit(void **state)
{
        struct http_server_options opts = {.max_connections_per_ip = 3};
        struct conn conns[3];

        ctx.server = http_server_free(ctx.server);
        start_server(&opts);
        open_held(conns, ELEMENTSOF(conns));
        assert_refused();
        for (size_t i = 0; i < ELEMENTSOF(conns); i++)
                conn_close(&conns[i]);
}

static void test_connection_limit(void **state)
{
        struct http_server_options opts = {.max_connections = 2};
        struct conn conns[2];

        ctx.server = http_server_free(ctx.server);
        start_server(&opts);
        open_held(conns, ELEMENTSOF(conns));
        assert_refused();
        for (size_t i = 0; i < ELEMENTSOF(conns); i++)
                conn_close(&conns[i]);
}

/* A request whose head is about size bytes, in lines header lines. */
static char *big_head(const char *target, size_t size, int lines)
{
        size_t cap = size + strlen(target) + 256, k, per;
        char *raw = malloc(cap);

        assert_non_null(raw);
        k = (size_t) snprintf(raw, cap, "GET %s HTTP/1.1\r\nHost: t\r\n", target);
        assert_true(k + 64 * (size_t) lines < size);
        per = (size - k) / (size_t) lines;
        for (int i = 0; i < lines; i++) {
                int n = snprintf(raw + k, 32, "X-Filler-%d: ", i);

                k += (size_t) n;
                memset(raw + k, 'a', per - (size_t) n - 2);
                k += per - (size_t) n - 2;
                memcpy(raw + k, "\r\n", 2);
                k += 2;
        }
        memcpy(raw + k, "\r\n", 3);
        return raw;
}

static void test_header_too_large(void **state)
{
        struct http_server_options opts = {.max_header = 4096};
        _cleanup_free_ char *small = NULL, *large = NULL, *uri = NULL;
        struct response r;

        ctx.server = http_server_free(ctx.server);
        start_server(&opts);

        /* just under the limit, in many lines: served */
        small = big_head("/items", 4096 - 128, 32);
        request(small, &r);
        assert_int_equal(r.status, 200);
        response_clear(&r);

        /* four times over it: MHD answers 431 itself, with its own HTML body (not our error
         * shape, and no route or on_done sees it), and closes the connection */
        large = big_head("/items", 4 * 4096, 16);
        request(large, &r);
        assert_int_equal(r.status, 431);
        assert_header(&r, "Connection", "close");
        assert_null(strstr(r.body, "\"error\""));
        response_clear(&r);

        /* a request line over it: 414 */
        uri = malloc(4 * 4096);
        assert_non_null(uri);
        memcpy(uri, "/items?", 7);
        memset(uri + 7, 'a', 3 * 4096);
        uri[7 + 3 * 4096] = '\0';
        free(large);
        large = big_head(uri, 3 * 4096 + 512, 1);
        request(large, &r);
        assert_int_equal(r.status, 414);
        response_clear(&r);
}

static void test_quiesce(void **state)
{
        struct timespec deadline = deadline_in(WAIT_S);
        struct conn c;
        struct response r;
        json_t *o;
        int fd = -EBADF;

        conn_open(&c);
        assert_int_equal(conn_send_str(&c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        lock();
        while (!ctx.slow_entered && ctx_wait(&deadline))
                ;
        assert_true(ctx.slow_entered);
        unlock();

        http_server_quiesce(ctx.server);
        http_server_quiesce(ctx.server); /* twice is harmless */
        assert_int_equal(connect_to(ctx.port, &fd), -ECONNREFUSED);

        lock();
        ctx.slow_release = true;
        ctx_signal();
        unlock();
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_true(json_is_true(json_object_get(o, "released")));
        json_decref(o);
        response_clear(&r);
        conn_close(&c);
}

static void test_no_secrets_logged(void **state)
{
        char path[] = "/tmp/test-http-log-XXXXXX";
        _cleanup_close_ int log_fd = mkostemp(path, O_CLOEXEC);
        _cleanup_close_ int saved = -EBADF;
        _cleanup_free_ char *logged = NULL;
        enum log_level level = log_get_level();
        struct response r;

        /* every debug line of the module and of MHD goes to a file for the while */
        assert_true(log_fd >= 0);
        assert_int_equal(unlink(path), 0);
        saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        assert_true(saved >= 0);
        assert_int_equal(dup2(log_fd, STDERR_FILENO), STDERR_FILENO);
        log_set_level(LOG_LEVEL_DEBUG);

        request("GET /noreply HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrn_SECRET1\r\n\r\n",
                &r);
        assert_int_equal(r.status, 500);
        response_clear(&r);
        request("POST /items HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrn_SECRET2\r\n"
                "Content-Type: text/plain\r\nContent-Length: 7\r\n\r\nSECRET3",
                &r);
        assert_int_equal(r.status, 415);
        response_clear(&r);
        request("POST /items HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrn_SECRET4\r\n"
                "Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n",
                &r);
        response_clear(&r);
        /* each request's log lines were written before its reply was sent */

        log_set_level(level);
        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        assert_true(lseek(log_fd, 0, SEEK_SET) == 0);
        logged = calloc(1, 65536);
        assert_non_null(logged);
        assert_true(read_full(log_fd, logged, 65535) >= 0);
        assert_non_null(strstr(logged, "noreply")); /* something was logged */
        assert_null(strstr(logged, "SECRET"));
}

static void test_dual_stack(void **state)
{
        struct http_server_options opts = {
                .address = "::",
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
        };
        struct response r;
        struct conn c;
        json_t *o;
        int k;

        ctx.server = http_server_free(ctx.server);
        k = http_server_start(&opts, &ctx.server);
        if (k == -EAFNOSUPPORT || k == -EADDRNOTAVAIL) {
                skip(); /* no IPv6 here */
                return;
        }
        assert_int_equal(k, 0);
        ctx.port = http_server_port(ctx.server);

        /* an IPv4 client of the IPv6 socket is told by its IPv4 address */
        request("GET /header HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_member(o, "peer", "127.0.0.1");
        json_decref(o);
        response_clear(&r);

        /* and an IPv6 one by its IPv6 address */
        c = (struct conn){.fd = -EBADF};
        assert_int_equal(connect_family(AF_INET6, ctx.port, &c.fd), 0);
        assert_int_equal(conn_send_str(&c, "GET /header HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        o = body_json(&r);
        assert_member(o, "peer", "::1");
        json_decref(o);
        response_clear(&r);
        conn_close(&c);
}

static void test_start_stop(void **state)
{
        struct http_server_options opts = {
                .address = "127.0.0.1",
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
        };
        struct http_route bad[] = {{"GET", "/a/{x}", "a", handle_echo}};
        struct http_server *s = NULL;
        unsigned fds;

        ctx.server = http_server_free(ctx.server);
        fds = count_fds();

        opts.address = "localhost"; /* numeric only */
        assert_int_equal(http_server_start(&opts, &s), -EINVAL);
        opts.address = "127.0.0.256";
        assert_int_equal(http_server_start(&opts, &s), -EINVAL);
        opts.address = NULL;
        assert_int_equal(http_server_start(&opts, &s), -EINVAL);
        opts.address = "127.0.0.1";

        /* a port in use */
        start_server(NULL);
        opts.port = ctx.port;
        assert_int_equal(http_server_start(&opts, &s), -EADDRINUSE);
        opts.port = 0;

        /* malformed route tables */
        opts.routes = bad;
        opts.n_routes = 1;
        bad[0].pattern = "a/{x}";
        assert_int_equal(http_server_start(&opts, &s), -EINVAL);
        bad[0].pattern = "/a/{x";
        assert_int_equal(http_server_start(&opts, &s), -EINVAL);
        bad[0].pattern = "/a/{a}/{b}/{c}/{d}/{e}";
        assert_int_equal(http_server_start(&opts, &s), -EINVAL);
        bad[0].pattern = "/a/{a}/{b}/{c}/{d}";
        assert_int_equal(http_server_start(&opts, &s), 0);
        s = http_server_free(s);

        /* IPv6, where the machine has it */
        opts.address = "::1";
        if (http_server_start(&opts, &s) == 0) {
                assert_int_not_equal(http_server_port(s), 0);
                s = http_server_free(s);
        }

        /* quiesced and stopped: every descriptor is closed */
        http_server_quiesce(ctx.server);
        ctx.server = http_server_free(ctx.server);
        assert_null(http_server_free(NULL));
        assert_int_equal(count_fds(), fds);
}

/* ---- raw bodies ---- */

static uint64_t sum_of(const unsigned char *p, size_t len)
{
        uint64_t sum = 0;

        for (size_t i = 0; i < len; i++)
                sum = sum * 31 + p[i];
        return sum & 0xffffffffffff;
}

/* POSTs body (len bytes, NULs included) to /upload<query> with this Content-Type. */
static void upload(const char *query, const char *content_type, const void *body, size_t len,
                   struct response *r)
{
        char head[512];
        struct conn c;

        (void) snprintf(head, sizeof(head),
                        "POST /upload%s HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        query, content_type, len);
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, head), 0);
        if (len > 0)
                assert_int_equal(conn_send(&c, body, len), 0);
        assert_int_equal(read_response(&c, r), 0);
        conn_close(&c);
}

static void test_raw_body(void **state)
{
        const size_t len = (size_t) MAX_RAW;
        _cleanup_free_ unsigned char *data = malloc(len);
        struct response r;
        json_t *o;

        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (unsigned char) (i * 7 % 251); /* NULs included */

        /* the whole limit, in one request: streamed to the sink, not buffered */
        upload("", "application/octet-stream", data, len, &r);
        assert_int_equal(r.status, 201);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "size")), len);
        assert_int_equal(json_integer_value(json_object_get(o, "raw_size")), len);
        assert_int_equal(json_integer_value(json_object_get(o, "sum")), sum_of(data, len));
        json_decref(o);
        response_clear(&r);

        /* empty, and a media type with parameters */
        upload("", "application/octet-stream; x=y", data, 0, &r);
        assert_int_equal(r.status, 201);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "size")), 0);
        json_decref(o);
        response_clear(&r);

        /* a raw route takes only its own type; JSON routes still only JSON */
        upload("", "application/json", "{}", 2, &r);
        assert_error(&r, 415, "unsupported_media_type", NULL);
        response_clear(&r);
        upload("", "text/plain", "ab", 2, &r);
        assert_error(&r, 415, "unsupported_media_type", NULL);
        response_clear(&r);
        request("POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: 2\r\n\r\n{}",
                &r);
        assert_error(&r, 415, "unsupported_media_type", NULL);
        response_clear(&r);

        /* open() may refuse before the body is read, or fail */
        upload("?refuse=1", "application/octet-stream", data, 1000, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        response_clear(&r);
        upload("?fail=1", "application/octet-stream", data, 1000, &r);
        assert_int_equal(r.status, 500);
        response_clear(&r);
        /* the sink's own bound: 413 */
        upload("?cap=10", "application/octet-stream", data, 11, &r);
        assert_error(&r, 413, "too_large", NULL);
        response_clear(&r);

        lock();
        assert_int_equal(ctx.upload_calls, 2);
        assert_int_equal(ctx.raw_opens, 5); /* not for a 415 */
        unlock();
        /* every sink that was opened is closed, once */
        assert_int_equal(wait_count(&ctx.raw_closes, 3), 3);
}

static void test_raw_too_large(void **state)
{
        static const char chunked[] = "POST /upload HTTP/1.1\r\nHost: t\r\n"
                                      "Content-Type: application/octet-stream\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n";
        char raw[256];
        struct response r;
        struct conn c;
        json_t *o;

        /* told by Content-Length: refused before open() and before the body */
        (void) snprintf(raw, sizeof(raw),
                        "POST /upload HTTP/1.1\r\nHost: t\r\n"
                        "Content-Type: application/octet-stream\r\n"
                        "Content-Length: %" PRIu64 "\r\n\r\n",
                        MAX_RAW + 1);
        request(raw, &r);
        assert_error(&r, 413, "too_large", NULL);
        response_clear(&r);
        lock();
        assert_int_equal(ctx.raw_opens, 0);
        unlock();

        /* a raw route's bound is its own, above the JSON bound */
        assert_true(MAX_RAW > MAX_BODY);

        /* chunked, one byte too many: dropped and answered 413 when it ends */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, chunked), 0);
        assert_int_equal(send_chunks(&c, (size_t) MAX_RAW + 1), 0);
        assert_int_equal(conn_send_str(&c, "0\r\n\r\n"), 0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_error(&r, 413, "too_large", NULL);
        response_clear(&r);
        conn_close(&c);

        /* chunked, exactly the limit: taken */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, chunked), 0);
        assert_int_equal(send_chunks(&c, (size_t) MAX_RAW), 0);
        assert_int_equal(conn_send_str(&c, "0\r\n\r\n"), 0);
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 201);
        o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "size")), MAX_RAW);
        json_decref(o);
        response_clear(&r);
        conn_close(&c);

        /* chunked, on and on: the connection is closed */
        conn_open(&c);
        assert_int_equal(conn_send_str(&c, chunked), 0);
        {
                int k = send_chunks(&c, (size_t) 64 << 20);

                assert_true(k == -ECONNRESET || k == -EPIPE);
                k = read_response(&c, &r);
                assert_true(k == -ECONNRESET);
        }
        response_clear(&r);
        conn_close(&c);

        lock();
        assert_int_equal(ctx.upload_calls, 1);
        unlock();
        assert_int_equal(wait_count(&ctx.raw_closes, 3), 3);
}

int main(void)
{
        pthread_condattr_t attr;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_routing_params, setup, teardown),
                cmocka_unit_test_setup_teardown(test_raw_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_raw_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_params_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_param_length, setup, teardown),
                cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_large_by_length, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_large_chunked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsupported_media_type, setup, teardown),
                cmocka_unit_test_setup_teardown(test_query, setup, teardown),
                cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fd_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reply_twice, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream_idle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream_client_gone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_on_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_per_ip_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_header_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_quiesce, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_secrets_logged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
                cmocka_unit_test_setup_teardown(test_start_stop, setup, teardown),
        };

        if (getenv("TEST_DEBUG"))
                log_set_level(LOG_LEVEL_DEBUG);
        /* the client writes to sockets the server may have closed */
        (void) signal(SIGPIPE, SIG_IGN);
        if (pthread_condattr_init(&attr) != 0 ||
            pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&ctx.cond, &attr) != 0)
                return 1;
        (void) pthread_condattr_destroy(&attr);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
