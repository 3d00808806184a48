/* SPDX-License-Identifier: MIT */
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "api/errors.h"
#include "auth/password.h"
#include "auth/token.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "net/proto.h"
#include "node/admin.h"
#include "node/app.h"
#include "node/sched.h"
#include "node/worker.h"

void node_caller_clear(struct node_caller *c)
{
        if (!c)
                return;
        free(c->groups);
        *c = (struct node_caller){};
}

json_t *node_time_json(int64_t ns)
{
        char buf[40];
        struct tm tm;
        time_t t;

        if (ns <= 0)
                return json_null();
        t = (time_t) (ns / 1000000000);
        if (!gmtime_r(&t, &tm))
                return json_null();
        if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return json_null();
        return json_sprintf("%s.%03dZ", buf, (int) (ns / 1000000 % 1000));
}

int node_store_get(struct node *n, struct store **ret)
{
        struct store *s = NULL;
        int r;

        (void) pthread_mutex_lock(&n->pool_lock);
        if (n->n_pool > 0)
                s = n->pool[--n->n_pool];
        (void) pthread_mutex_unlock(&n->pool_lock);
        if (s) {
                *ret = s;
                return 0;
        }
        r = store_open(n->db_path, &s);
        if (r < 0)
                return log_error_errno(r, "Failed to open the store '%s': %m", n->db_path);
        *ret = s;
        return 0;
}

void node_store_put(struct node *n, struct store *s)
{
        if (!s)
                return;
        (void) pthread_mutex_lock(&n->pool_lock);
        if (n->n_pool < NODE_STORE_POOL_MAX) {
                n->pool[n->n_pool++] = s;
                s = NULL;
        }
        (void) pthread_mutex_unlock(&n->pool_lock);
        (void) store_close(s);
}

int node_signalfd(void)
{
        sigset_t mask;
        int fd;

        /* Every thread inherits this mask: signals arrive through the signalfd only. */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "sigprocmask() failed: %m");
        (void) signal(SIGPIPE, SIG_IGN);
        fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "signalfd() failed: %m");
        return fd;
}

int node_key_load(const char *state_dir, const char *key_file, struct net_keypair *ret)
{
        _cleanup_free_ char *path = NULL, *secret = NULL;
        int r;

        if (key_file) {
                r = net_key_read_secret(key_file, ret);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the key pair '%s'%s: %m",
                                               key_file,
                                               r == -EPERM    ? " (readable by others: chmod 600)"
                                               : r == -EINVAL ? " (not a .secret file of "
                                                                "`warren keygen`)"
                                                              : "");
                return 0;
        }
        if (asprintf(&path, "%s/node.key", state_dir) < 0 ||
            asprintf(&secret, "%s/node.key.secret", state_dir) < 0)
                return -ENOMEM;
        r = net_key_read_secret(secret, ret);
        if (r == -ENOENT) {
                r = net_keygen(ret);
                if (r >= 0)
                        r = net_key_write(path, ret);
                if (r >= 0)
                        log_info("event=keygen path=%s public=%s", path, ret->public_key);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read or make the key pair '%s': %m", secret);
        return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/*
 * Each job's /work is a tmpfs of its own, bounded in size, so that a job cannot fill the node's
 * disk. The node mounts them in a mount namespace of its own, made private first: the host never
 * sees them, and they disappear with the node and its spawners, however they die.
 */
static int setup_mount_namespace(struct node *n)
{
        if (geteuid() != 0)
                return 0;
        if (unshare(CLONE_NEWNS) < 0)
                return log_warning_errno(-errno, "Failed to make a mount namespace, each job's "
                                                 "/work is a plain directory: %m");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return log_error_errno(-errno, "Failed to make the node's mounts private: %m");
        n->work_tmpfs = true;
        return 0;
}

/* What a killed predecessor left in the work root (plain directories: its tmpfs died with it). */
static void sweep_work_root(struct node *n)
{
        _cleanup_close_ int dfd =
                open(n->work_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd;

        if (dfd < 0)
                return;
        fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return;
        }
        while ((de = readdir(d))) {
                _cleanup_close_ int sub = -EBADF;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (sub >= 0)
                        (void) app_workdir_clear(sub);
                if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0)
                        (void) unlinkat(dfd, de->d_name, 0);
        }
}

static int write_admin_password(struct node *n, const char *password)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&path, "%s/admin.password", n->opts.state_dir) < 0 ||
            asprintf(&tmp, "%s/.admin.password.tmp", n->opts.state_dir) < 0)
                return -ENOMEM;
        (void) unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        r = write_full(fd, password, strlen(password));
        if (r >= 0)
                r = write_full(fd, "\n", 1);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

/* First start: the administrator, with a random password shown once and kept 0600. 1 if it was
 * created now, 0 if it existed. */
static int bootstrap_admin(struct node *n, struct store *st, int64_t *ret_id)
{
        _cleanup_(store_user_clear) struct store_user admin = {};
        char password[AUTH_PASSWORD_GENERATED_LEN + 1];
        char hash[AUTH_PASSWORD_HASH_MAX];
        const struct store_acl acl = {.owner = 0, .group = 0, .mode = 0700};
        int64_t id;
        int r;

        r = store_user_get_by_name(st, "admin", &admin);
        if (r >= 0) {
                *ret_id = admin.id;
                return 0;
        }
        if (r != -ENOENT)
                return log_error_errno(r, "Failed to look up the administrator: %m");

        r = auth_password_generate(password);
        if (r < 0)
                return log_error_errno(r, "Failed to generate a password: %m");
        r = auth_password_hash(password, strlen(password), hash);
        if (r >= 0)
                r = store_user_create(st, "admin", hash, AUTH_RIGHTS_ADMIN, STORE_USER_ACTIVE, &acl,
                                      &id);
        if (r >= 0)
                r = write_admin_password(n, password);
        if (r < 0) {
                sodium_memzero(password, sizeof(password));
                return log_error_errno(r, "Failed to create the administrator: %m");
        }
        (void) fprintf(stderr,
                       "warren: created user 'admin' with password %s\n"
                       "warren: (kept in %s/admin.password, mode 0600; it is not shown again)\n",
                       password, n->opts.state_dir);
        sodium_memzero(password, sizeof(password));
        *ret_id = id;
        return 1;
}

/* Apps ask for memory, pids and cpu time limits: say at once if this node cannot enforce them. */
static void warn_unenforceable_limits(const struct sandbox_context_options *sopts)
{
        struct sandbox_context *ctx = NULL;
        int r = sandbox_context_new(sopts, &ctx);

        if (r < 0) {
                log_warning_errno(r, "event=sandbox_unavailable error='%m'");
                return;
        }
        if (!sandbox_context_can_limit(ctx, SANDBOX_LIMIT_MEMORY) ||
            !sandbox_context_can_limit(ctx, SANDBOX_LIMIT_PIDS) ||
            !sandbox_context_can_limit(ctx, SANDBOX_LIMIT_CPU_TIME))
                log_warning("event=limits_unenforceable memory=%s pids=%s cpu_time=%s "
                            "hint='jobs whose app sets these limits will fail: run the node as "
                            "root, or give it a delegated cgroup'",
                            sandbox_context_can_limit(ctx, SANDBOX_LIMIT_MEMORY) ? "yes" : "no",
                            sandbox_context_can_limit(ctx, SANDBOX_LIMIT_PIDS) ? "yes" : "no",
                            sandbox_context_can_limit(ctx, SANDBOX_LIMIT_CPU_TIME) ? "yes" : "no");
        (void) sandbox_context_free(ctx);
}

static const struct http_route routes[] = {
        {"POST", "/api/v1/login", "login", node_route_login},
        {"POST", "/api/v1/logout", "logout", node_route_logout},
        {"GET", "/api/v1/whoami", "whoami", node_route_whoami},
        {"POST", "/api/v1/users", "users_create", node_route_users_create},
        {"GET", "/api/v1/users", "users_list", node_route_users_list},
        {"GET", "/api/v1/users/{name}", "users_get", node_route_users_get},
        {"PATCH", "/api/v1/users/{name}", "users_update", node_route_users_update},
        {"DELETE", "/api/v1/users/{name}", "users_delete", node_route_users_delete},
        {"POST", "/api/v1/users/{name}/approve", "users_approve", node_route_users_approve},
        {"GET", "/api/v1/apps", "apps_list", node_route_apps_list},
        {"POST", "/api/v1/apps", "apps_create", node_route_apps_create},
        {"GET", "/api/v1/apps/{name}", "apps_get", node_route_apps_get},
        {"PUT", "/api/v1/apps/{name}", "apps_replace", node_route_apps_replace},
        {"DELETE", "/api/v1/apps/{name}", "apps_delete", node_route_apps_delete},
        {"POST", "/api/v1/data", "data_create", node_route_data_create, &node_data_upload_body},
        {"GET", "/api/v1/data", "data_list", node_route_data_list},
        {"GET", "/api/v1/data/{id}", "data_get", node_route_data_get},
        {"GET", "/api/v1/data/{id}/content", "data_content", node_route_data_content},
        {"DELETE", "/api/v1/data/{id}", "data_delete", node_route_data_delete},
        {"PATCH", "/api/v1/data/{id}/acl", "data_acl", node_route_data_acl},
        {"POST", "/api/v1/jobs", "jobs_create", node_route_jobs_create},
        {"GET", "/api/v1/jobs", "jobs_list", node_route_jobs_list},
        {"GET", "/api/v1/jobs/{id}", "jobs_get", node_route_jobs_get},
        {"DELETE", "/api/v1/jobs/{id}", "jobs_cancel", node_route_jobs_cancel},
        {"GET", "/api/v1/jobs/{id}/events", "jobs_events", node_route_jobs_events},
        {"GET", "/api/v1/jobs/{id}/blobs/{sha256}", "jobs_blob", node_route_jobs_blob},
        {"POST", "/api/v1/groups", "groups_create", node_route_groups_create},
        {"GET", "/api/v1/groups", "groups_list", node_route_groups_list},
        {"GET", "/api/v1/groups/{name}", "groups_get", node_route_groups_get},
        {"DELETE", "/api/v1/groups/{name}", "groups_delete", node_route_groups_delete},
        {"PUT", "/api/v1/groups/{name}/members/{user}", "groups_member_add",
         node_route_groups_member_add},
        {"DELETE", "/api/v1/groups/{name}/members/{user}", "groups_member_remove",
         node_route_groups_member_remove},
        {"PATCH", "/api/v1/jobs/{id}/acl", "jobs_acl", node_route_jobs_acl},
        {"PATCH", "/api/v1/apps/{name}/acl", "apps_acl", node_route_apps_acl},
        {"PATCH", "/api/v1/users/{name}/acl", "users_acl", node_route_users_acl},
        {"PATCH", "/api/v1/groups/{name}/acl", "groups_acl", node_route_groups_acl},
        {"GET", "/api/v1/sessions", "sessions_list", node_route_sessions_list},
        {"DELETE", "/api/v1/sessions/{id}", "sessions_revoke", node_route_sessions_revoke},
        {"GET", "/api/v1/audit", "audit_list", node_route_audit_list},
        {"GET", "/api/v1/workers", "workers_list", node_route_workers_list},
        {"POST", "/api/v1/workers", "workers_create", node_route_workers_create},
        {"POST", "/api/v1/workers/tokens", "workers_token", node_route_workers_token},
        {"GET", "/api/v1/workers/{name}", "workers_get", node_route_workers_get},
        {"DELETE", "/api/v1/workers/{name}", "workers_delete", node_route_workers_delete},
        {"GET", "/healthz", "healthz", NULL},
        {"GET", "/metrics", "metrics", NULL},
};

static void route_healthz(struct http_request *req, void *userdata)
{
        struct node *n = userdata;

        if (atomic_load(&n->stopping)) {
                (void) http_reply_json(
                        req, 503,
                        json_pack("{s:s, s:s}", "status", "stopping", "version", WARREN_VERSION));
                return;
        }
        (void) http_reply_json(req, 200,
                               json_pack("{s:s, s:s}", "status", "ok", "version", WARREN_VERSION));
}

static void route_metrics(struct http_request *req, void *userdata)
{
        struct node *n = userdata;
        struct metrics_gauges g = {.workers_total = n->n_runners};
        _cleanup_free_ char *text = NULL;
        struct store *st = NULL;
        int r;

        r = node_store_get(n, &st);
        if (r >= 0) {
                r = store_job_count_by_state(st, g.jobs);
                node_store_put(n, st);
        }
        if (r < 0) {
                (void) http_reply_errno(req, r, "cannot read the job counts");
                return;
        }
        g.queue_length = g.jobs[STORE_JOB_QUEUED];
        g.workers_busy = atomic_load(&n->busy);
        text = metrics_render(n->metrics, &g);
        if (!text) {
                (void) http_reply_errno(req, -ENOMEM, "out of memory");
                return;
        }
        (void) http_reply_data(req, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                               strlen(text));
}

static void on_request_done(const char *route, int status, uint64_t duration_ns, void *userdata)
{
        struct node *n = userdata;

        metrics_http_request(n->metrics, route, status);
}

static int start_http(struct node *n, struct http_route *table, size_t n_routes)
{
        const struct http_server_options o = {
                .address = n->opts.listen_address,
                .port = n->opts.port,
                .max_connections = n->opts.max_connections,
                .max_connections_per_ip = n->opts.max_connections_per_ip,
                .timeout_s = n->opts.timeout_s,
                .max_body = n->opts.max_body,
                .max_raw_body = n->opts.data_max,
                .routes = table,
                .n_routes = n_routes,
                .userdata = n,
                .on_done = on_request_done,
                .tls_cert_pem = n->opts.tls_cert_pem,
                .tls_key_pem = n->opts.tls_key_pem,
                .tls_client_ca_pem = n->opts.tls_client_ca_pem,
        };
        int r;

        for (size_t i = 0; i < n_routes; i++) {
                table[i] = routes[i];
                if (strcmp(table[i].name, "healthz") == 0)
                        table[i].handler = route_healthz;
                else if (strcmp(table[i].name, "metrics") == 0)
                        table[i].handler = route_metrics;
        }
        r = http_server_start(&o, &n->http);
        if (r < 0 && o.tls_cert_pem && (r == -EIO || r == -EOPNOTSUPP))
                return log_error_errno(r, "Failed to serve HTTPS with '%s' and '%s'%s",
                                       n->opts.tls_cert_file, n->opts.tls_key_file,
                                       r == -EOPNOTSUPP ? ": libmicrohttpd has no TLS" : "");
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s port %u: %m",
                                       n->opts.listen_address, n->opts.port);
        (void) fprintf(stderr, "warren: listening on %s://%s%s%s:%u\n",
                       n->opts.tls_cert_pem ? "https" : "http",
                       strchr(n->opts.listen_address, ':') ? "[" : "", n->opts.listen_address,
                       strchr(n->opts.listen_address, ':') ? "]" : "", http_server_port(n->http));
        return 0;
}

static int wait_for_signal(struct node *n, int sfd)
{
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        struct signalfd_siginfo si;
        struct store *st = NULL;
        uint64_t purged;

        for (;;) {
                int k = poll(&p, 1, 60 * 1000);

                if (k < 0 && errno != EINTR)
                        return log_error_errno(-errno, "poll() failed: %m");
                if (k > 0) {
                        if (read(sfd, &si, sizeof(si)) != (ssize_t) sizeof(si))
                                continue;
                        log_info("event=signal signal=%s", strsignal((int) si.ssi_signo));
                        return (int) si.ssi_signo;
                }
                /* Housekeeping: sessions that can no longer be used. */
                if (node_store_get(n, &st) >= 0) {
                        (void) store_session_purge(st, (int64_t) now_ns(CLOCK_REALTIME), &purged);
                        node_store_put(n, st);
                }
        }
}

int node_run(struct node_options *opts)
{
        struct http_route table[ELEMENTSOF(routes)];
        struct node *n = NULL;
        _cleanup_(store_closep) struct store *st = NULL;
        _cleanup_close_ int sfd = -EBADF;
        struct sandbox_context_options sopts = {};
        uint64_t requeued = 0;
        int64_t admin_id = 0;
        int r, ret = 1;

        n = calloc(1, sizeof(*n));
        if (!n)
                return log_error_errno(-ENOMEM, "Out of memory"), 1;
        n->opts = *opts;
        log_set_format(LOG_FORMAT_KV);
        if (log_get_level() < LOG_LEVEL_INFO)
                log_set_level(LOG_LEVEL_INFO);
        (void) pthread_mutex_init(&n->pool_lock, NULL);
        (void) pthread_mutex_init(&n->throttle_lock, NULL);
        (void) pthread_mutex_init(&n->data_lock, NULL);

        r = auth_init();
        if (r < 0) {
                log_error_errno(r, "Failed to initialise libsodium: %m");
                goto finish;
        }
        r = mkdir_p(opts->state_dir, 0700);
        if (r < 0) {
                log_error_errno(r, "Failed to create the state directory '%s': %m",
                                opts->state_dir);
                goto finish;
        }
        if (asprintf(&n->db_path, "%s/warren.db", opts->state_dir) < 0 ||
            asprintf(&n->work_root, "%s/work", opts->state_dir) < 0) {
                n->db_path = n->work_root = NULL;
                log_error("Out of memory");
                goto finish;
        }
        /*
         * A sandbox resolves its /work's host path with its own (unprivileged) credentials: the
         * state directory and the work root must be searchable (not readable) by others. Nothing
         * in them is readable by anyone but root, and each job's /work, a tmpfs in the node's
         * private mount namespace, is an empty 0700 directory to everyone outside it.
         */
        r = mkdir_p(n->work_root, 0711);
        if (r >= 0 && chmod(opts->state_dir, 0711) < 0)
                r = -errno;
        if (r >= 0 && chmod(n->work_root, 0711) < 0)
                r = -errno;
        if (r < 0) {
                log_error_errno(r, "Failed to create '%s': %m", n->work_root);
                goto finish;
        }
        sweep_work_root(n);

        /* Before any thread: the mount namespace, and the spawners (forked). */
        if (setup_mount_namespace(n) < 0)
                goto finish;
        sopts.cgroup_mount = opts->cgroup_mount;
        warn_unenforceable_limits(&sopts);
        if (opts->role != NODE_ROLE_MASTER) {
                r = spawner_new(&sopts, opts->workers, &n->spawner);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the spawners: %m");
                        goto finish;
                }
        }
        if (opts->role == NODE_ROLE_WORKER) {
                /* No store, no API: a blob cache, and the master's assignments. */
                _cleanup_free_ char *dir = NULL;

                r = asprintf(&dir, "%s/blobs", opts->state_dir) < 0 ? -ENOMEM : 0;
                if (r >= 0)
                        r = blob_store_open(dir, &n->blobs);
                if (r < 0) {
                        log_error_errno(r, "Failed to open the blob cache: %m");
                        goto finish;
                }
                ret = worker_run(n);
                goto finish;
        }

        r = store_open(n->db_path, &st);
        if (r < 0) {
                log_error_errno(r, "Failed to open the store '%s': %m", n->db_path);
                goto finish;
        }
        r = bootstrap_admin(n, st, &admin_id);
        if (r < 0)
                goto finish;
        /* The ready-made apps, once: an administrator may change or remove them later. */
        if (r > 0)
                r = node_apps_seed(st, admin_id);
        if (r < 0) {
                log_error_errno(r, "Failed to create the ready-made apps: %m");
                goto finish;
        }
        /* A master's running jobs are its workers': the scheduler recovers them. */
        r = opts->role == NODE_ROLE_MASTER ? 0 : store_jobs_requeue_running(st, &requeued);
        if (r < 0) {
                log_error_errno(r, "Failed to re-queue the jobs that were running: %m");
                goto finish;
        }
        if (requeued > 0)
                log_info("event=requeue jobs=%llu", (unsigned long long) requeued);

        {
                _cleanup_free_ char *dir = NULL;

                r = asprintf(&dir, "%s/blobs", opts->state_dir) < 0 ? -ENOMEM : 0;
                if (r >= 0)
                        r = blob_store_open(dir, &n->blobs);
        }
        if (r < 0) {
                log_error_errno(r, "Failed to open the blob store: %m");
                goto finish;
        }
        r = hub_new(HUB_DEFAULT_REPLAY, &n->hub);
        if (r >= 0)
                r = metrics_new(&n->metrics);
        if (r < 0) {
                log_error_errno(r, "Out of memory");
                goto finish;
        }

        sfd = node_signalfd();
        if (sfd < 0)
                goto finish;

        if (opts->role == NODE_ROLE_MASTER) {
                const struct sched_options so = {
                        .listen = opts->worker_listen,
                        .key_file = opts->key_file,
                        .heartbeat_ms = opts->heartbeat_ms,
                        .lease_ms = opts->lease_ms,
                        .max_attempts = opts->max_attempts,
                };

                r = sched_start(n, &so, &n->sched);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the scheduler: %m");
                        goto finish;
                }
        } else {
                r = node_runners_start(n);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the runners: %m");
                        goto finish;
                }
        }
        /* Jobs re-queued or left queued by a predecessor. */
        for (unsigned i = 0; i < n->n_runners; i++)
                hub_notify_work(n->hub);

        if (start_http(n, table, ELEMENTSOF(table)) < 0)
                goto stop;
        log_info("event=start node=%s workers=%u state='%s' work=%s", WARREN_VERSION, n->n_runners,
                 opts->state_dir, n->work_tmpfs ? "tmpfs" : "directory");

        r = wait_for_signal(n, sfd);
        ret = r < 0 ? 1 : 0;

stop:
        /* Graceful: no new connections, no new jobs; running jobs finish (or are re-queued). */
        atomic_store(&n->stopping, true);
        if (n->http)
                http_server_quiesce(n->http);
        node_runners_stop(n, false);
        sched_stop(n->sched);
        n->sched = NULL;
        hub_shutdown(n->hub);
        n->http = http_server_free(n->http);
        log_info("event=stop");

finish:
        sched_stop(n->sched);
        n->sched = NULL;
        n->spawner = spawner_free(n->spawner);
        n->http = http_server_free(n->http);
        n->hub = hub_free(n->hub);
        n->metrics = metrics_free(n->metrics);
        n->blobs = blob_store_free(n->blobs);
        for (unsigned i = 0; i < n->n_pool; i++)
                (void) store_close(n->pool[i]);
        free(n->db_path);
        free(n->work_root);
        (void) pthread_mutex_destroy(&n->pool_lock);
        (void) pthread_mutex_destroy(&n->throttle_lock);
        (void) pthread_mutex_destroy(&n->data_lock);
        free(n);
        return ret;
}
