/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The node: one process that holds both roles on one machine.
 *
 *   main thread ── signals (signalfd), housekeeping, shutdown
 *   HTTP threads ─ one per connection (api/http.h); each request borrows a store connection
 *                  from the pool, authenticates, authorizes (auth/access.h) and answers
 *   runners ────── one thread per local worker slot: claims the next queued job from the store,
 *                  prepares its work directory, has the slot's spawner run the build and run
 *                  steps, streams output to the hub, stores the result
 *   spawners ───── single-threaded processes forked before any thread (worker/spawner.h)
 *
 * The store is the truth; the hub (node/hub.h) only wakes whoever waits. A job is queued on disk
 * before its 201; a runner moves it to running with a compare-and-set, so no job runs twice at
 * once; at start-up, jobs left running by a dead predecessor are queued again.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/http.h"
#include "api/jobspec.h"
#include "api/metrics.h"
#include "auth/access.h"
#include "blob/blob.h"
#include "common/json.h"
#include "node/hub.h"
#include "store/store.h"
#include "worker/spawner.h"

#define NODE_DEFAULT_PORT        7780
#define NODE_INLINE_MAX          (64u << 10) /* bytes of output or file inlined in a result */
#define NODE_OUTPUT_FILE_MAX     (UINT64_C(64) << 20)
#define NODE_WAIT_DEFAULT_S      60
#define NODE_WAIT_MAX_S          600
#define NODE_TOKEN_TTL_DEFAULT_S (24 * 3600)
#define NODE_LOGIN_USER_MAX      5  /* failed logins per account per window */
#define NODE_LOGIN_ADDR_MAX      20 /* failed logins per address per window */
#define NODE_LOGIN_WINDOW_S      300
#define NODE_WORK_SIZE_DEFAULT   (UINT64_C(256) << 20) /* a job's /work tmpfs */
#define NODE_STORE_POOL_MAX      32
#define NODE_DATA_MAX_DEFAULT    (UINT64_C(64) << 20) /* bytes of a data object */
#define NODE_DATA_MAX_LIMIT      (UINT64_C(1) << 40)
#define NODE_DATA_PAGE_DEFAULT   100

struct node_options {
        char *state_dir;
        char *listen_address; /* numeric */
        uint16_t port;
        unsigned workers; /* concurrent sandboxes */
        uint64_t token_ttl_s;
        uint64_t work_size; /* bytes of a job's /work */
        size_t max_body;    /* bytes of a request body */
        uint64_t data_max;  /* bytes of a data object (an upload) */
        unsigned max_connections;
        unsigned max_connections_per_ip;
        unsigned timeout_s;
        unsigned login_user_max;
        unsigned login_addr_max;
        unsigned login_window_s;
        char *cgroup_mount;                 /* tests: NULL: /sys/fs/cgroup */
        char *tls_cert_file, *tls_key_file; /* both or neither: HTTPS */
        char *tls_cert_pem, *tls_key_pem;   /* their contents, read and checked by the caller */
        /* Mutual TLS (with HTTPS only): the CAs that sign client certificates and optional CRLs;
         * the CAs' PEM text for the handshake, and the trust list made of both (auth/cert.h),
         * owned by whoever fills the options. */
        char *tls_client_ca_file, *tls_client_crl_file;
        char *tls_client_email_domain; /* NULL: the CN names the user */
        char *tls_client_ca_pem;
        struct cert_trust *client_trust;
        /* OpenID Connect: bearer JWTs from one issuer, checked against the keys of a JWKS file
         * (all four set, or none); the keys loaded by whoever fills the options. */
        char *oidc_issuer, *oidc_audience, *oidc_jwks_file, *oidc_username_claim;
        struct node_oidc *oidc;

        /* The network (issue 5): a master schedules jobs on remote workers; a worker runs what
         * a master assigns; "both" (the default) runs jobs itself and talks to no one. */
        enum node_role {
                NODE_ROLE_BOTH,
                NODE_ROLE_MASTER,
                NODE_ROLE_WORKER,
        } role;

        char *worker_listen;   /* master: "tcp://0.0.0.0:7781" */
        char *key_file;        /* master and worker: this node's CURVE secret key file */
        char *master_endpoint; /* worker: "tcp://HOST:PORT" */
        char *master_key;      /* worker: the master's public key (Z85) */
        char *join_token;      /* worker: a one-time join token (first start) */
        char *worker_name;     /* worker: its name when it joins */
        unsigned heartbeat_ms;
        unsigned lease_ms;
        unsigned max_attempts;

        /* What a token from an identity the node has not seen yet makes: a standard_user at
         * once, or an account held until an administrator approves it. */
        enum node_admission {
                NODE_ADMISSION_APPROVAL, /* the default */
                NODE_ADMISSION_AUTO,
        } admission;
};

struct node_runner;
struct sched;
struct cert_trust;
struct worker_agent;
struct node_oidc;

/* One failed-login counter: an account name or an address. */
struct node_throttle_entry {
        char key[80];
        unsigned failures;
        int64_t window_start; /* monotonic ns */
};

#define NODE_THROTTLE_ENTRIES 1024

struct node {
        struct node_options opts;
        char *db_path;
        char *work_root; /* where each job's /work is made */
        bool work_tmpfs; /* each job's /work is a tmpfs of its own */

        struct blob_store *blobs;
        struct hub *hub;
        struct metrics *metrics;
        struct http_server *http;
        struct spawner *spawner;

        pthread_mutex_t pool_lock;
        struct store *pool[NODE_STORE_POOL_MAX];
        unsigned n_pool;

        /* Held while a data object's blob and row are made or removed together, so that a
         * deletion never removes a blob that an upload is about to name. */
        pthread_mutex_t data_lock;

        pthread_mutex_t throttle_lock;
        struct node_throttle_entry throttle[NODE_THROTTLE_ENTRIES];

        struct sched *sched;        /* a master's scheduler; NULL otherwise */
        struct worker_agent *agent; /* a worker's link to its master; NULL otherwise */

        struct node_runner *runners;
        unsigned n_runners;
        atomic_uint busy;
        atomic_bool stopping;
};

/* The caller of a request, once authenticated. */
struct node_caller {
        int64_t user_id;
        int64_t session_id; /* 0 unless authenticated by a session token */

        enum node_auth_method {
                NODE_AUTH_TOKEN,       /* a session token from POST /login */
                NODE_AUTH_CERTIFICATE, /* a client certificate (mutual TLS) */
                NODE_AUTH_OIDC,        /* an OpenID Connect bearer JWT */
        } method;

        char name[STORE_NAME_MAX + 1];
        enum auth_rights rights;
        int64_t *groups; /* owned */
        size_t n_groups;
        struct auth_subject subject; /* points into this struct */
};

void node_caller_clear(struct node_caller *c);

/* ---- node.c ---- */

/* Runs the node until SIGTERM/SIGINT; returns the process exit code. */
int node_run(struct node_options *opts);

/* A store connection for this thread's request (from the pool, or a new one). */
int node_store_get(struct node *n, struct store **ret);
void node_store_put(struct node *n, struct store *s);

/*
 * This node's CURVE key pair (masters and workers): key_file (a "<path>.secret" file of
 * `warren keygen`), or, if NULL, "<state_dir>/node.key.secret", made at the first start.
 */
struct net_keypair;
int node_key_load(const char *state_dir, const char *key_file, struct net_keypair *ret);
/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (every thread started after inherits
 * it), ignores SIGPIPE, and returns a signalfd for the three; logged errors otherwise. */
int node_signalfd(void);

/* Unix ns → RFC 3339 UTC with milliseconds (a JSON string), or JSON null for 0. */
json_t *node_time_json(int64_t ns);

/* ---- routes-auth.c ---- */

/*
 * Authenticates the request's bearer token. 0 and *ret; otherwise the request has been answered
 * (401) and a negative errno is returned.
 */
int node_authenticate(struct node *n, struct store *st, struct http_request *req,
                      struct node_caller *ret);
/* Takes a store from the pool and authenticates; 0, or the request has been answered (and the
 * store given back). */
int node_begin(struct node *n, struct http_request *req, struct store **st,
               struct node_caller *caller);
/* The request's body as a strict JSON object with these fields; 0, or the request has been
 * answered (400/413/...). */
/*
 * The ?limit= (1..STORE_LIST_MAX; unchanged if absent) and ?cursor= ("<created_at>.<id>", id by
 * id_valid; after_id stays "" if absent) of a paginated list; 0, or the request has been answered
 * (400).
 */
int node_parse_page(struct http_request *req, bool (*id_valid)(const char *id), size_t *limit,
                    int64_t *after_created_at, char after_id[static STORE_JOB_ID_SIZE]);
int node_parse_body(struct http_request *req, const struct json_field *fields, size_t n,
                    json_t **ret);

/* The store's owner/group/mode of an object, as auth/ takes it. */
static inline struct auth_object node_acl_object(const struct store_acl *acl)
{
        return (struct auth_object){.owner = acl->owner, .group = acl->group, .mode = acl->mode};
}

/* auth_check() of action (perm) on an object with this acl (NULL: on no object); on refusal the
 * request is answered (node_reply_denied()) and the negative errno returned. */
int node_authorize(struct http_request *req, const struct node_caller *c, enum auth_action action,
                   enum auth_perm perm, const struct store_acl *acl, const char *what);
/* Answers the request from auth_check()'s negative answer (403 or 404 as it says). */
int node_reply_denied(struct http_request *req, int r, const char *what);
/* A user's public JSON (never its hash). */
json_t *node_user_json(struct store *st, const struct store_user *u);
/* The name of a user id (for owners), or NULL if the user is gone; caller frees. */
char *node_user_name(struct store *st, int64_t id);

void node_route_login(struct http_request *req, void *userdata);
void node_route_logout(struct http_request *req, void *userdata);
void node_route_whoami(struct http_request *req, void *userdata);
void node_route_users_create(struct http_request *req, void *userdata);
void node_route_users_list(struct http_request *req, void *userdata);
void node_route_users_get(struct http_request *req, void *userdata);
void node_route_users_update(struct http_request *req, void *userdata);
void node_route_users_delete(struct http_request *req, void *userdata);
void node_route_users_approve(struct http_request *req, void *userdata);

/* ---- routes-apps.c ---- */

void node_route_apps_list(struct http_request *req, void *userdata);
void node_route_apps_get(struct http_request *req, void *userdata);
void node_route_apps_create(struct http_request *req, void *userdata);
void node_route_apps_replace(struct http_request *req, void *userdata);
void node_route_apps_delete(struct http_request *req, void *userdata);
/* Creates the ready-made apps that do not exist yet, owned by owner, mode 0755. */
int node_apps_seed(struct store *st, int64_t owner);

/* ---- routes-jobs.c ---- */

void node_route_jobs_create(struct http_request *req, void *userdata);
void node_route_jobs_list(struct http_request *req, void *userdata);
void node_route_jobs_get(struct http_request *req, void *userdata);
void node_route_jobs_cancel(struct http_request *req, void *userdata);
void node_route_jobs_events(struct http_request *req, void *userdata);
void node_route_jobs_blob(struct http_request *req, void *userdata);
/* The public JSON of a job (with its result if with_result). */
json_t *node_job_json(struct store *st, const struct store_job *j, bool with_result);

/* ---- routes-data.c ---- */

/* POST /api/v1/data?name=&mode=&group=: a raw body (application/octet-stream). */
extern const struct http_raw_body node_data_upload_body;
void node_route_data_create(struct http_request *req, void *userdata);
void node_route_data_list(struct http_request *req, void *userdata);
void node_route_data_get(struct http_request *req, void *userdata);
void node_route_data_content(struct http_request *req, void *userdata);
void node_route_data_delete(struct http_request *req, void *userdata);
/*
 * The inputs of a job about to be submitted by c: each must exist and be visible (else 404,
 * naming it), executable by c (403), not confidential (422 confidential_data), and all of them
 * together fit in a job's work directory (413). 0, or the request has been answered.
 */
int node_check_inputs(struct node *n, struct store *st, struct http_request *req,
                      const struct node_caller *c, const struct jobspec *js);

/* ---- routes-workers.c ---- */

/* The workers of the network (node --role master) and their join tokens; administrators only. */
void node_route_workers_list(struct http_request *req, void *userdata);
void node_route_workers_get(struct http_request *req, void *userdata);
void node_route_workers_create(struct http_request *req, void *userdata);
void node_route_workers_delete(struct http_request *req, void *userdata);
void node_route_workers_token(struct http_request *req, void *userdata);

/* ---- runner.c ---- */

/* One input of a job to execute: its content is in the node's blob store. */
struct node_exec_input {
        char sha256[STORE_SHA256_SIZE];
        uint64_t size;
        char *data_id; /* for messages; NULL on a worker */
};

/* A job to execute, whether from the local store or assigned by a master. */
struct node_exec {
        char job_id[STORE_JOB_ID_SIZE];
        char lease[STORE_LEASE_ID_SIZE]; /* a worker's: the lease; else "" */
        char *spec;                      /* the job's spec (JSON text) */
        char *app_name;
        char *app_spec;                 /* its app's spec (JSON text) */
        struct node_exec_input *inputs; /* as many as the spec's inputs, in order */
        size_t n_inputs;
};

void node_exec_done(struct node_exec *ex);

/* Publishes event (its data stolen; NULL: nothing) of the job to the hub. */
void node_publish_json(struct node *n, const char *id, const char *event, json_t *data);
/* Adds {"text": ...} (UTF-8) or {"base64": ...} (other bytes) for data[0..len) to obj. */
int node_set_content(json_t *obj, const char *data, size_t len);

int node_runners_start(struct node *n);
/* Waits for the runners to finish their jobs (or kills them if kill) and joins them. */
void node_runners_stop(struct node *n, bool kill);
/* Publishes the job's end (its JSON with the result, as stored) to the hub. */
void node_publish_end(struct node *n, struct store *st, const char *job_id);
/* Kills the job if a runner runs it: 1 if it did, 0 if no runner runs it. */
int node_runner_cancel(struct node *n, const char *job_id);
