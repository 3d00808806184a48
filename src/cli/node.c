/* SPDX-License-Identifier: MIT */
/* `warren node`: options, the configuration file, then node_run(). */
#include "node/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "auth/cert.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "net/proto.h"
#include "node/oidc.h"

#define CONFIG_MAX (64u << 10)

static void help(void)
{
        (void) printf(
                "Usage: warren node [OPTIONS]\n"
                "\n"
                "Serves jobs: the HTTP API, the store (SQLite in the state directory) and local\n"
                "workers that run each job in a sandbox. At first start it creates the user\n"
                "'admin' with a random password, printed once and kept in STATE/admin.password.\n"
                "\n"
                "Options (each also a key of the configuration file, without the dashes):\n"
                "  --config FILE           JSON object of the settings below; options given on\n"
                "                          the command line win\n"
                "  --state DIR             state directory (default /var/lib/warren as root,\n"
                "                          $XDG_DATA_HOME/warren otherwise)\n"
                "  --listen ADDR:PORT      address to serve on (default 127.0.0.1:%d; [::1]:PORT\n"
                "                          for IPv6; port 0 picks a free one)\n"
                "  --workers N             sandboxes run at once (default: the number of cpus)\n"
                "  --token-ttl SECONDS     life of a login token (default %d)\n"
                "  --work-size SIZE        each job's /work tmpfs (default 256M)\n"
                "  --max-body SIZE         largest request body (default 16M)\n"
                "  --data-max SIZE         largest data object uploaded (default 64M)\n"
                "  --max-connections N     connections at once (default 256)\n"
                "  --max-connections-per-ip N  (default 64)\n"
                "  --timeout SECONDS       idle connection timeout (default 30)\n"
                "  --login-max-per-user N  failed logins per account per window (default %d)\n"
                "  --login-max-per-address N  failed logins per address per window (default %d)\n"
                "  --login-window SECONDS  (default %d)\n"
                "  --tls-cert FILE         serve HTTPS with this certificate (PEM; the server's\n"
                "                          first, then any intermediate CAs)\n"
                "  --tls-key FILE          and this private key (PEM, unencrypted, readable by\n"
                "                          the node's user only: mode 0600); both or neither.\n"
                "                          TLS 1.2 and 1.3 only. 'warren cert init DIR' makes a\n"
                "                          CA, a certificate and a key for a quick start\n"
                "  --tls-client-ca FILE    mutual TLS: ask clients for a certificate and take one\n"
                "                          signed by these CAs (PEM) as the identity of the user\n"
                "                          its subject's CN names, when a request carries no\n"
                "                          bearer token ('warren cert client DIR NAME' issues\n"
                "                          them); needs --tls-cert\n"
                "  --tls-client-crl FILE   and refuse the client certificates these CRLs (PEM,\n"
                "                          signed by those CAs) revoke; read at start\n"
                "  --tls-client-email-domain DOMAIN  the user a client certificate names is\n"
                "                          the local part of its one email SAN in DOMAIN\n"
                "                          (alice@DOMAIN: alice) instead of its CN\n"
                "  --oidc-issuer URL       accept OpenID Connect bearer tokens (JWTs) whose 'iss'\n"
                "                          is exactly URL; needs the three options below\n"
                "  --oidc-audience AUD     whose 'aud' names AUD (this node's client id)\n"
                "  --oidc-jwks FILE        and that verify with a key of this JWKS file; every\n"
                "                          key must carry its 'alg', the only algorithm it\n"
                "                          verifies. Re-read when the file changes\n"
                "  --oidc-username-claim CLAIM  the claim that names a new user (default\n"
                "                          preferred_username; when it is missing, not a valid\n"
                "                          user name or taken, the name is 'oidc-' and a hash)\n"
                "  --admission MODE        what a token of an unknown identity makes: 'approval'\n"
                "                          (default: an account held until an administrator\n"
                "                          approves it) or 'auto' (a standard_user at once)\n"
                "\n"
                "The network (a master schedules, workers run; see README):\n"
                "  --role ROLE             'both' (default: this node runs its jobs itself),\n"
                "                          'master' (it runs none: its workers do) or 'worker'\n"
                "                          (no API: it runs what its master assigns)\n"
                "  --worker-listen tcp://ADDR:PORT  master: where workers connect (default\n"
                "                          tcp://0.0.0.0:7781), CURVE-encrypted\n"
                "  --key FILE              this node's key pair (a .secret file of 'warren\n"
                "                          keygen'; default STATE/node.key.secret, made once)\n"
                "  --master tcp://HOST:PORT  worker: its master\n"
                "  --master-key KEY|FILE   worker: the master's public key; no other is accepted\n"
                "  --join-token TOKEN      worker: register with a one-time token of 'warren\n"
                "                          worker token' (instead of 'warren worker add')\n"
                "  --name NAME             worker: its name when it joins (default: host name)\n"
                "  --heartbeat-ms MS       heartbeat interval (default 1000)\n"
                "  --lease-ms MS           master: a worker silent this long loses its jobs,\n"
                "                          which are queued again (default 5 heartbeats)\n"
                "  --max-attempts N        master: tries of a job whose workers are lost\n"
                "                          (default 3); then it fails with the reason\n"
                "  -h, --help              this text\n"
                "\n"
                "SIGTERM or SIGINT stops the node gracefully: no new jobs are taken; running\n"
                "jobs get 10 seconds to finish, then are killed and queued again.\n",
                NODE_DEFAULT_PORT, NODE_TOKEN_TTL_DEFAULT_S, NODE_LOGIN_USER_MAX,
                NODE_LOGIN_ADDR_MAX, NODE_LOGIN_WINDOW_S);
}

enum {
        OPT_CONFIG = 0x100,
        OPT_STATE,
        OPT_LISTEN,
        OPT_WORKERS,
        OPT_TOKEN_TTL,
        OPT_WORK_SIZE,
        OPT_MAX_BODY,
        OPT_DATA_MAX,
        OPT_MAX_CONNECTIONS,
        OPT_MAX_CONNECTIONS_PER_IP,
        OPT_TIMEOUT,
        OPT_LOGIN_USER,
        OPT_LOGIN_ADDR,
        OPT_LOGIN_WINDOW,
        OPT_CGROUP_ROOT,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_TLS_CLIENT_CA,
        OPT_TLS_CLIENT_CRL,
        OPT_TLS_CLIENT_EMAIL_DOMAIN,
        OPT_OIDC_ISSUER,
        OPT_OIDC_AUDIENCE,
        OPT_OIDC_JWKS,
        OPT_OIDC_USERNAME_CLAIM,
        OPT_ADMISSION,
        OPT_ROLE,
        OPT_WORKER_LISTEN,
        OPT_KEY,
        OPT_MASTER,
        OPT_MASTER_KEY,
        OPT_JOIN_TOKEN,
        OPT_NAME,
        OPT_HEARTBEAT_MS,
        OPT_LEASE_MS,
        OPT_MAX_ATTEMPTS,
        _OPT_LAST,
};

static const struct option options[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"state", required_argument, NULL, OPT_STATE},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
        {"work-size", required_argument, NULL, OPT_WORK_SIZE},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"data-max", required_argument, NULL, OPT_DATA_MAX},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNECTIONS_PER_IP},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"login-max-per-user", required_argument, NULL, OPT_LOGIN_USER},
        {"login-max-per-address", required_argument, NULL, OPT_LOGIN_ADDR},
        {"login-window", required_argument, NULL, OPT_LOGIN_WINDOW},
        {"cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
        {"tls-client-crl", required_argument, NULL, OPT_TLS_CLIENT_CRL},
        {"tls-client-email-domain", required_argument, NULL, OPT_TLS_CLIENT_EMAIL_DOMAIN},
        {"oidc-issuer", required_argument, NULL, OPT_OIDC_ISSUER},
        {"oidc-audience", required_argument, NULL, OPT_OIDC_AUDIENCE},
        {"oidc-jwks", required_argument, NULL, OPT_OIDC_JWKS},
        {"oidc-username-claim", required_argument, NULL, OPT_OIDC_USERNAME_CLAIM},
        {"admission", required_argument, NULL, OPT_ADMISSION},
        {"role", required_argument, NULL, OPT_ROLE},
        {"worker-listen", required_argument, NULL, OPT_WORKER_LISTEN},
        {"key", required_argument, NULL, OPT_KEY},
        {"master", required_argument, NULL, OPT_MASTER},
        {"master-key", required_argument, NULL, OPT_MASTER_KEY},
        {"join-token", required_argument, NULL, OPT_JOIN_TOKEN},
        {"name", required_argument, NULL, OPT_NAME},
        {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT_MS},
        {"lease-ms", required_argument, NULL, OPT_LEASE_MS},
        {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
        {"help", no_argument, NULL, 'h'},
        {},
};

static int set_string(char **p, const char *v)
{
        char *s = strdup(v);

        if (!s)
                return -ENOMEM;
        free(*p);
        *p = s;
        return 0;
}

/* "127.0.0.1:7780", "[::1]:7780", "0.0.0.0:0". */
static int parse_listen(const char *v, struct node_options *o)
{
        _cleanup_free_ char *host = NULL;
        const char *colon, *end;
        unsigned char buf[sizeof(struct in6_addr)];
        uint64_t port;

        if (v[0] == '[') {
                end = strchr(v, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                host = strndup(v + 1, (size_t) (end - v - 1));
                colon = end + 1;
        } else {
                colon = strrchr(v, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(v, (size_t) (colon - v));
        }
        if (!host)
                return -ENOMEM;
        if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
                return -EINVAL;
        if (parse_uint(colon + 1, 0, 65535, &port) < 0)
                return -EINVAL;
        free(o->listen_address);
        o->listen_address = TAKE_PTR(host);
        o->port = (uint16_t) port;
        return 0;
}

static int set_count(const char *name, const char *v, uint64_t min, uint64_t max, unsigned *ret)
{
        uint64_t x;

        if (parse_uint(v, min, max, &x) < 0)
                return log_error_errno(-EINVAL,
                                       "--%s must be an integer from %llu to %llu, not '%s'", name,
                                       (unsigned long long) min, (unsigned long long) max, v);
        *ret = (unsigned) x;
        return 0;
}

/* One setting, by option id, from the command line or the configuration file. */
static int apply(int id, const char *name, const char *v, struct node_options *o)
{
        uint64_t x;
        unsigned u = 0;
        int r;

        switch (id) {
        case OPT_STATE:
                if (v[0] == '\0')
                        return log_error_errno(-EINVAL, "--state must not be empty");
                return set_string(&o->state_dir, v);
        case OPT_LISTEN:
                r = parse_listen(v, o);
                if (r < 0)
                        return log_error_errno(r,
                                               "--listen must be ADDR:PORT with a numeric "
                                               "address, not '%s'",
                                               v);
                return 0;
        case OPT_WORKERS:
                return set_count(name, v, 1, 256, &o->workers);
        case OPT_TOKEN_TTL:
                if (parse_uint(v, 60, 366 * 24 * 3600, &x) < 0)
                        return log_error_errno(-EINVAL,
                                               "--token-ttl must be 60 to 31622400 "
                                               "seconds, not '%s'",
                                               v);
                o->token_ttl_s = x;
                return 0;
        case OPT_WORK_SIZE:
                if (parse_size(v, UINT64_C(1) << 40, &x) < 0 || x < (UINT64_C(1) << 20))
                        return log_error_errno(-EINVAL,
                                               "--work-size must be a size from 1M, "
                                               "not '%s'",
                                               v);
                o->work_size = x;
                return 0;
        case OPT_MAX_BODY:
                if (parse_size(v, STORE_JSON_MAX, &x) < 0 || x < 1024)
                        return log_error_errno(-EINVAL,
                                               "--max-body must be a size from 1K to "
                                               "16M, not '%s'",
                                               v);
                o->max_body = (size_t) x;
                return 0;
        case OPT_DATA_MAX:
                if (parse_size(v, NODE_DATA_MAX_LIMIT, &x) < 0 || x < 1)
                        return log_error_errno(
                                -EINVAL, "--data-max must be a size from 1 to 1T, not '%s'", v);
                o->data_max = x;
                return 0;
        case OPT_MAX_CONNECTIONS:
                return set_count(name, v, 1, 65536, &o->max_connections);
        case OPT_MAX_CONNECTIONS_PER_IP:
                return set_count(name, v, 1, 65536, &o->max_connections_per_ip);
        case OPT_TIMEOUT:
                return set_count(name, v, 1, 3600, &o->timeout_s);
        case OPT_LOGIN_USER:
                return set_count(name, v, 1, 1000000, &o->login_user_max);
        case OPT_LOGIN_ADDR:
                return set_count(name, v, 1, 1000000, &o->login_addr_max);
        case OPT_LOGIN_WINDOW:
                r = set_count(name, v, 1, 86400, &u);
                if (r >= 0)
                        o->login_window_s = u;
                return r;
        case OPT_CGROUP_ROOT:
                return set_string(&o->cgroup_mount, v);
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
                if (v[0] == '\0')
                        return log_error_errno(-EINVAL, "--%s must not be empty", name);
                return set_string(id == OPT_TLS_CERT ? &o->tls_cert_file : &o->tls_key_file, v);
        case OPT_TLS_CLIENT_CA:
        case OPT_TLS_CLIENT_CRL:
                if (v[0] == '\0')
                        return log_error_errno(-EINVAL, "--%s must not be empty", name);
                return set_string(id == OPT_TLS_CLIENT_CA ? &o->tls_client_ca_file
                                                          : &o->tls_client_crl_file,
                                  v);
        case OPT_TLS_CLIENT_EMAIL_DOMAIN:
                if (!cert_domain_valid(v))
                        return log_error_errno(-EINVAL,
                                               "--%s must be a DNS domain in lower case, not "
                                               "'%s'",
                                               name, v);
                return set_string(&o->tls_client_email_domain, v);
        case OPT_OIDC_ISSUER:
        case OPT_OIDC_AUDIENCE:
        case OPT_OIDC_JWKS:
        case OPT_OIDC_USERNAME_CLAIM:
                if (v[0] == '\0' || strlen(v) > STORE_IDENTITY_TEXT_MAX)
                        return log_error_errno(-EINVAL, "--%s must be 1 to %d bytes", name,
                                               STORE_IDENTITY_TEXT_MAX);
                return set_string(id == OPT_OIDC_ISSUER     ? &o->oidc_issuer
                                  : id == OPT_OIDC_AUDIENCE ? &o->oidc_audience
                                  : id == OPT_OIDC_JWKS     ? &o->oidc_jwks_file
                                                            : &o->oidc_username_claim,
                                  v);
        case OPT_ADMISSION:
                if (strcmp(v, "approval") == 0)
                        o->admission = NODE_ADMISSION_APPROVAL;
                else if (strcmp(v, "auto") == 0)
                        o->admission = NODE_ADMISSION_AUTO;
                else
                        return log_error_errno(-EINVAL,
                                               "--admission is 'approval' or 'auto', not '%s'", v);
                return 0;
        case OPT_ROLE:
                if (strcmp(v, "both") == 0)
                        o->role = NODE_ROLE_BOTH;
                else if (strcmp(v, "master") == 0)
                        o->role = NODE_ROLE_MASTER;
                else if (strcmp(v, "worker") == 0)
                        o->role = NODE_ROLE_WORKER;
                else
                        return log_error_errno(
                                -EINVAL, "--role is 'both', 'master' or 'worker', not '%s'", v);
                return 0;
        case OPT_WORKER_LISTEN:
        case OPT_MASTER:
                if (strncmp(v, "tcp://", 6) != 0 || !strchr(v + 6, ':') || strlen(v) > 256)
                        return log_error_errno(-EINVAL, "--%s must be tcp://HOST:PORT, not '%s'",
                                               name, v);
                return set_string(id == OPT_MASTER ? &o->master_endpoint : &o->worker_listen, v);
        case OPT_KEY:
                if (v[0] == '\0')
                        return log_error_errno(-EINVAL, "--key must not be empty");
                return set_string(&o->key_file, v);
        case OPT_MASTER_KEY: {
                char key[41];

                /* The key itself, or a file that holds it. */
                if (strlen(v) == 40 && access(v, F_OK) < 0 && store_curve_key_valid(v))
                        return set_string(&o->master_key, v);
                r = net_key_read_public(v, key);
                if (r < 0)
                        return log_error_errno(r,
                                               "--master-key must be the master's public key (40 "
                                               "Z85 characters) or a file that holds it: '%s': %m",
                                               v);
                return set_string(&o->master_key, key);
        }
        case OPT_JOIN_TOKEN:
                if (v[0] == '\0' || strlen(v) > NET_TOKEN_MAX)
                        return log_error_errno(-EINVAL, "--join-token must be 1 to %d bytes",
                                               NET_TOKEN_MAX);
                return set_string(&o->join_token, v);
        case OPT_NAME:
                if (!store_name_valid(v))
                        return log_error_errno(-EINVAL, "--name '%s' is not a valid name", v);
                return set_string(&o->worker_name, v);
        case OPT_HEARTBEAT_MS:
                return set_count(name, v, 50, 60000, &o->heartbeat_ms);
        case OPT_LEASE_MS:
                return set_count(name, v, 200, 3600000, &o->lease_ms);
        case OPT_MAX_ATTEMPTS:
                return set_count(name, v, 1, 100, &o->max_attempts);
        default:
                return log_error_errno(-EINVAL, "unknown setting '%s'", name);
        }
}

static int load_config(const char *path, struct node_options *o, const bool *given)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *root = NULL;
        struct json_error err = {};
        const char *key;
        json_t *v;
        int r;

        r = read_file_at(AT_FDCWD, path, CONFIG_MAX, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to read the configuration file '%s': %m", path);
        r = json_parse_strict(text, strlen(text), &root, &err);
        if (r < 0)
                return log_error_errno(r, "%s: %s", path, err.message);
        json_object_foreach(root, key, v)
        {
                const struct option *opt = NULL;
                char buf[64];
                const char *value;

                for (const struct option *p = options; p->name; p++)
                        if (strcmp(p->name, key) == 0 && p->val >= OPT_STATE)
                                opt = p;
                if (!opt)
                        return log_error_errno(-EINVAL, "%s: unknown setting '%s'", path, key);
                if (given[opt->val - OPT_CONFIG])
                        continue; /* the command line wins */
                if (json_is_string(v))
                        value = json_string_value(v);
                else if (json_is_integer(v)) {
                        (void) snprintf(buf, sizeof(buf), "%lld",
                                        (long long) json_integer_value(v));
                        value = buf;
                } else
                        return log_error_errno(-EINVAL, "%s: '%s' must be a string or an integer",
                                               path, key);
                r = apply(opt->val, key, value, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void options_done(struct node_options *o)
{
        free(o->state_dir);
        free(o->listen_address);
        free(o->cgroup_mount);
        free(o->tls_cert_file);
        free(o->tls_key_file);
        free(o->tls_cert_pem);
        cert_key_free(o->tls_key_pem);
        free(o->tls_client_ca_file);
        free(o->tls_client_crl_file);
        free(o->tls_client_email_domain);
        free(o->tls_client_ca_pem);
        cert_trust_free(o->client_trust);
        free(o->oidc_issuer);
        free(o->oidc_audience);
        free(o->oidc_jwks_file);
        free(o->oidc_username_claim);
        (void) node_oidc_free(o->oidc);
        free(o->worker_listen);
        free(o->key_file);
        free(o->master_endpoint);
        free(o->master_key);
        if (o->join_token)
                explicit_bzero(o->join_token, strlen(o->join_token));
        free(o->join_token);
        free(o->worker_name);
        *o = (struct node_options){};
}

static int default_state_dir(struct node_options *o)
{
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");

        if (geteuid() == 0)
                return set_string(&o->state_dir, "/var/lib/warren");
        if (xdg && xdg[0] == '/') {
                if (asprintf(&o->state_dir, "%s/warren", xdg) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (!home || home[0] != '/')
                return log_error_errno(-EINVAL, "no state directory: set --state, "
                                                "XDG_DATA_HOME or HOME");
        if (asprintf(&o->state_dir, "%s/.local/share/warren", home) < 0)
                return -ENOMEM;
        return 0;
}

/* Reads the certificate and the key, and checks that they can serve: one line if not. */
static int load_tls(struct node_options *o)
{
        struct stat st;
        int r;

        r = cert_read_file(o->tls_cert_file, false, &o->tls_cert_pem, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read the TLS certificate '%s': %m",
                                       o->tls_cert_file);
        r = cert_read_file(o->tls_key_file, true, &o->tls_key_pem, NULL);
        if (r == -EPERM && stat(o->tls_key_file, &st) >= 0 && st.st_uid != geteuid())
                return log_error_errno(r,
                                       "refusing the TLS key '%s': it belongs to uid %u, not to "
                                       "the node's user (uid %u)",
                                       o->tls_key_file, (unsigned) st.st_uid, (unsigned) geteuid());
        if (r == -EPERM && stat(o->tls_key_file, &st) >= 0)
                return log_error_errno(r,
                                       "refusing the TLS key '%s': group or others may read it "
                                       "(mode %04o); run 'chmod 600 %s'",
                                       o->tls_key_file, (unsigned) (st.st_mode & 07777),
                                       o->tls_key_file);
        if (r < 0)
                return log_error_errno(r, "Failed to read the TLS key '%s': %m", o->tls_key_file);
        r = cert_check_pair(o->tls_cert_pem, o->tls_key_pem);
        switch (r) {
        case 0:
                return 0;
        case -EBADMSG:
                return log_error_errno(r, "'%s' is not a PEM certificate", o->tls_cert_file);
        case -ENOKEY:
                return log_error_errno(r, "'%s' is not an unencrypted PEM private key",
                                       o->tls_key_file);
        case -EKEYREJECTED:
                return log_error_errno(r,
                                       "the TLS key '%s' does not belong to the certificate '%s'",
                                       o->tls_key_file, o->tls_cert_file);
        case -EKEYEXPIRED:
                return log_error_errno(r,
                                       "the TLS certificate '%s' has expired or is not valid yet",
                                       o->tls_cert_file);
        default:
                return log_error_errno(r, "Failed to check the TLS certificate '%s': %m",
                                       o->tls_cert_file);
        }
}

/* Reads the client CAs and CRLs and makes the trust list of mutual TLS: one line if not. */
static int load_client_trust(struct node_options *o)
{
        _cleanup_free_ char *crl = NULL;
        int r;

        r = cert_read_file(o->tls_client_ca_file, false, &o->tls_client_ca_pem, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read the client CA file '%s': %m",
                                       o->tls_client_ca_file);
        if (o->tls_client_crl_file) {
                r = cert_read_file(o->tls_client_crl_file, false, &crl, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the client CRL file '%s': %m",
                                               o->tls_client_crl_file);
        }
        r = cert_trust_new(o->tls_client_ca_pem, crl, &o->client_trust);
        switch (r) {
        case 0:
                return 0;
        case -ENOENT:
                return log_error_errno(r, "'%s' holds no PEM certificate", o->tls_client_ca_file);
        case -EBADMSG:
                return log_error_errno(r,
                                       "'%s' or '%s' cannot be parsed (PEM certificates; PEM "
                                       "CRLs)",
                                       o->tls_client_ca_file,
                                       o->tls_client_crl_file ? o->tls_client_crl_file : "-");
        case -EKEYREJECTED:
                return log_error_errno(r, "a CRL of '%s' is not signed by a CA of '%s'",
                                       o->tls_client_crl_file, o->tls_client_ca_file);
        default:
                return log_error_errno(r, "Failed to load the client CAs '%s': %m",
                                       o->tls_client_ca_file);
        }
}

int cmd_node(int argc, char *argv[])
{
        _cleanup_(options_done) struct node_options o = {
                .port = NODE_DEFAULT_PORT,
                .token_ttl_s = NODE_TOKEN_TTL_DEFAULT_S,
                .work_size = NODE_WORK_SIZE_DEFAULT,
                .max_body = (size_t) 16 << 20,
                .data_max = NODE_DATA_MAX_DEFAULT,
                .login_user_max = NODE_LOGIN_USER_MAX,
                .login_addr_max = NODE_LOGIN_ADDR_MAX,
                .login_window_s = NODE_LOGIN_WINDOW_S,
        };
        bool given[_OPT_LAST - OPT_CONFIG] = {};
        const char *config = NULL;
        long cpus;
        int c, r;

        /* Command line first, remembering what it set; then the file fills in the rest. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case OPT_CONFIG:
                        config = optarg;
                        break;
                case '?':
                        if (optopt)
                                log_error("unknown option '-%c'; see 'warren node --help'", optopt);
                        else
                                log_error("unknown option '%s'; see 'warren node --help'",
                                          argv[optind - 1]);
                        return 2;
                case ':':
                        log_error("option '%s' needs a value", argv[optind - 1]);
                        return 2;
                default:
                        r = apply(c, options[c - OPT_CONFIG].name, optarg, &o);
                        if (r < 0)
                                return 2;
                        given[c - OPT_CONFIG] = true;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'; see 'warren node --help'", argv[optind]);
                return 2;
        }
        if (config && load_config(config, &o, given) < 0)
                return 2;
        if (!o.tls_cert_file != !o.tls_key_file) {
                log_error("--tls-cert and --tls-key go together: give both or neither");
                return 2;
        }
        if (o.tls_client_ca_file && !o.tls_cert_file) {
                log_error("--tls-client-ca needs HTTPS: give --tls-cert and --tls-key too");
                return 2;
        }
        if ((o.tls_client_crl_file || o.tls_client_email_domain) && !o.tls_client_ca_file) {
                log_error("--tls-client-crl and --tls-client-email-domain go with "
                          "--tls-client-ca");
                return 2;
        }
        if ((o.oidc_issuer || o.oidc_audience || o.oidc_jwks_file || o.oidc_username_claim) &&
            !(o.oidc_issuer && o.oidc_audience && o.oidc_jwks_file)) {
                log_error("--oidc-issuer, --oidc-audience and --oidc-jwks go together");
                return 2;
        }
        if (o.oidc_issuer && !o.oidc_username_claim &&
            set_string(&o.oidc_username_claim, "preferred_username") < 0)
                return 1;
        if (o.oidc_issuer && node_oidc_new(o.oidc_issuer, o.oidc_audience, o.oidc_jwks_file,
                                           o.oidc_username_claim, &o.oidc) < 0)
                return 1;
        if (o.tls_cert_file && load_tls(&o) < 0)
                return 1;
        if (o.tls_client_ca_file && load_client_trust(&o) < 0)
                return 1;
        if (o.tls_client_email_domain &&
            cert_trust_map_email(o.client_trust, o.tls_client_email_domain) < 0)
                return 1;
        if (!o.state_dir && default_state_dir(&o) < 0)
                return 2;
        if (!o.listen_address && set_string(&o.listen_address, "127.0.0.1") < 0)
                return 1;
        if (o.heartbeat_ms == 0)
                o.heartbeat_ms = 1000;
        if (o.lease_ms == 0)
                o.lease_ms = 5 * o.heartbeat_ms;
        if (o.lease_ms < 2 * o.heartbeat_ms) {
                log_error("--lease-ms must be at least twice --heartbeat-ms");
                return 2;
        }
        if (o.max_attempts == 0)
                o.max_attempts = 3;
        if (o.role == NODE_ROLE_WORKER && (!o.master_endpoint || !o.master_key)) {
                log_error("a worker needs --master tcp://HOST:PORT and --master-key");
                return 2;
        }
        if (o.role != NODE_ROLE_WORKER && (o.master_endpoint || o.master_key || o.join_token)) {
                log_error("--master, --master-key and --join-token are for --role worker");
                return 2;
        }
        if (o.role != NODE_ROLE_MASTER && o.worker_listen) {
                log_error("--worker-listen is for --role master");
                return 2;
        }
        if (o.role == NODE_ROLE_MASTER && !o.worker_listen &&
            set_string(&o.worker_listen, "tcp://0.0.0.0:7781") < 0)
                return 1;
        if (o.role == NODE_ROLE_WORKER && !o.worker_name) {
                char host[65] = "";

                if (gethostname(host, sizeof(host) - 1) < 0 || !store_name_valid(host))
                        (void) snprintf(host, sizeof(host), "worker-%d", (int) getpid());
                if (set_string(&o.worker_name, host) < 0)
                        return 1;
        }
        if (o.workers == 0) {
                cpus = sysconf(_SC_NPROCESSORS_ONLN);
                o.workers = cpus > 0 && cpus < 256 ? (unsigned) cpus : 1;
        }
        return node_run(&o);
}

/* `warren spawner-internal --fd N [...]`: a spawner started by the node to replace a dead one. */
int cmd_spawner(int argc, char *argv[])
{
        struct sandbox_context_options o = {};
        uint64_t fd = 0, v;
        bool have_fd = false;

        for (int i = 1; i + 1 < argc; i += 2) {
                const char *k = argv[i], *val = argv[i + 1];

                if (strcmp(k, "--fd") == 0 && parse_uint(val, 3, 1 << 20, &fd) >= 0)
                        have_fd = true;
                else if (strcmp(k, "--uid-base") == 0 && parse_uint(val, 0, UINT32_MAX, &v) >= 0)
                        o.uid_base = (uid_t) v;
                else if (strcmp(k, "--slots") == 0 && parse_uint(val, 0, 1 << 20, &v) >= 0)
                        o.n_slots = (unsigned) v;
                else if (strcmp(k, "--cgroup-root") == 0)
                        o.cgroup_mount = val;
                else if (strcmp(k, "--state-dir") == 0)
                        o.state_dir = val;
                else {
                        log_error("spawner-internal: bad argument '%s'", k);
                        return 2;
                }
        }
        if (!have_fd || argc % 2 != 1) {
                log_error("spawner-internal: is started by 'warren node', with --fd");
                return 2;
        }
        spawner_serve(&o, (int) fd);
}

/* `warren keygen PATH`: a CURVE key pair for a master or a worker. */
int cmd_keygen(int argc, char *argv[])
{
        struct net_keypair kp;
        int r;

        if (argc != 2 || argv[1][0] == '-') {
                (void) fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
                               "Usage: warren keygen PATH\n"
                               "\n"
                               "Makes a CURVE key pair for a master or a worker: PATH holds the "
                               "public key\n(give it to the other side), PATH.secret the pair "
                               "(mode 0600; keep it).\nPrints the public key.\n");
                return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
        }
        r = net_keygen(&kp);
        if (r >= 0)
                r = net_key_write(argv[1], &kp);
        explicit_bzero(kp.secret_key, sizeof(kp.secret_key));
        if (r == -EEXIST) {
                log_error("'%s' or '%s.secret' exists already: keys are never overwritten", argv[1],
                          argv[1]);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to write the key pair '%s': %m", argv[1]);
                return 1;
        }
        (void) printf("%s\n", kp.public_key);
        return 0;
}
