/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The client side of the CLI: talking to a node's HTTP API (docs/api.md) over libcurl, which
 * stays inside client.c, plus what the client commands share (the saved configuration, reading
 * passwords, file contents as JSON, following a job's events).
 *
 * These functions belong to the command-line entry points: each failure is reported here, once,
 * as one line on stderr ("warren: ..."), and returned as a negative errno; the command then
 * exits 1. The exceptions say so (client_call() with a struct client_error).
 *
 * Configuration. The node's URL is, in order: the command line (--url, or login's URL), the
 * WARREN_URL environment variable, the saved configuration, http://127.0.0.1:7780. The token is
 * WARREN_TOKEN, else the saved one, which is only ever sent to the URL it was saved with. The
 * saved configuration is $XDG_CONFIG_HOME/warren/config.json (~/.config/warren/config.json),
 * {"url": ..., "token": ..., "ca": ..., "pin": ...}, mode 0600 in a 0700 directory, replaced
 * atomically; a file that others may read or that is not the caller's is refused. The token is
 * never printed.
 *
 * HTTPS. The server is always verified; nothing turns that off. Its certificate must chain to
 * the CA in use: the file WARREN_CA names, else the CA saved by `warren login --ca` (its PEM
 * text, kept in the configuration, used only with the URL it was saved with), else the system's
 * CAs; and its name must match the URL's host. A pin ("sha256//BASE64", the SHA-256 of the
 * server's public key, as curl spells it), saved by `warren login --pin`, is checked too; with
 * a pin and no CA of our own, the pin alone identifies the server (the chain and the name are
 * not checked). TLS 1.2 at least. A client certificate and its key saved by `warren login
 * --cert --key` (their PEM texts, for that URL only) are presented on every connection; they
 * identify the user when no token is sent.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define CLIENT_DEFAULT_URL  "http://127.0.0.1:7780"
#define CLIENT_MAX_REPLY    ((size_t) 64 << 20) /* bytes of a JSON reply */
#define CLIENT_MAX_TOKEN    8192 /* bytes of a token: a node's, or an OpenID Connect JWT */
#define CLIENT_MAX_PASSWORD 1024 /* docs/api.md: a password is 8..1024 bytes */
#define CLIENT_MAX_CA       ((size_t) 512 << 10) /* bytes of a CA file (PEM) */
#define CLIENT_MAX_PIN      1024

/* ---- the saved configuration ---- */

struct client_config {
        char *url;   /* NULL: none saved */
        char *token; /* NULL: none saved */
        char *ca;    /* PEM text of the CA that signs the node's certificate; NULL: none */
        char *pin;   /* "sha256//BASE64"; NULL: none */
        char *cert;  /* PEM text of a client certificate (mutual TLS); NULL: none */
        char *key;   /* and of its private key; both or neither */
};

/* The configuration file's path (newly allocated). */
int client_config_path(char **ret);
/* Loads the saved configuration; a missing file is an empty one. Refuses (and says why) a file
 * that is not a regular file of the caller's with no permission for group or others. */
int client_config_load(struct client_config *ret);
/* Replaces the saved configuration (a NULL member is left out). */
int client_config_save(const struct client_config *cfg);
/* Frees the members (the token's and the key's bytes are wiped first) and zeroes cfg. */
void client_config_done(struct client_config *cfg);

/* ---- a connection to a node ---- */

struct client;

enum {
        /* no token to be found, nor a client certificate, is an error ("not logged in") */
        CLIENT_NEED_TOKEN = 1 << 0,
};

/* url: from the command line, or NULL (see above for the order). */
int client_new(const char *url, unsigned flags, struct client **ret);
struct client *client_free(struct client *c);
DEFINE_FREE_FUNC(struct client *, client_free)

/* The node's base URL, without a trailing '/'. */
const char *client_url(const struct client *c);
/* Replaces the token the client sends (copied; NULL: none). */
int client_set_token(struct client *c, const char *token);
/* Whether a token is in use (from the environment or the saved configuration). */
bool client_has_token(const struct client *c);
/* The token in use, or NULL. */
const char *client_token(const struct client *c);
/* Whether the token in use came from the saved configuration (not from WARREN_TOKEN). */
bool client_token_is_saved(const struct client *c);
/* Replaces the CA the client trusts with the content of the PEM file at path (NULL: none, the
 * system's CAs). Says why on failure. */
int client_set_ca_file(struct client *c, const char *path);
/* Replaces the pinned public key ("sha256//" and the base64 of 32 bytes; NULL: none). Says why
 * on failure. */
int client_set_pin(struct client *c, const char *pin);
/* Replaces the client certificate (mutual TLS) with the contents of these PEM files (both NULL:
 * none). The key must be the caller's, mode 0600, unencrypted, and belong to the certificate.
 * Says why on failure. */
int client_set_cert_files(struct client *c, const char *cert_path, const char *key_path);
/* The client certificate's and key's PEM texts in use, NULL if none. */
const char *client_cert(const struct client *c);
const char *client_key(const struct client *c);
/* The CA's PEM text and the pin in use, NULL if none. */
const char *client_ca(const struct client *c);
const char *client_pin(const struct client *c);

/* What an HTTP error reply said. */
struct client_error {
        long status;       /* HTTP status */
        char code[64];     /* "conflict"; "" if the body was not an API error */
        char message[512]; /* one line, control characters replaced */
};

/* Prints e as the API's one line: "warren: <message> (<code>)". */
void client_error_log(const struct client *c, const struct client_error *e);

/*
 * One request: method, path (from "/api/v1/..."), and body (JSON text, or NULL for none).
 * Returns the HTTP status (2xx) and *ret_reply (a new reference; NULL for an empty body) when
 * the node said yes. An HTTP error is -EREMOTEIO: with ret_err, filled in and not printed;
 * without, printed. Failing to reach the node or a malformed reply is printed and < 0.
 */
int client_call_raw(struct client *c, const char *method, const char *path, const char *body,
                    size_t body_len, json_t **ret_reply, struct client_error *ret_err);
/* The same with a JSON body (NULL: none); the serialised text is wiped after use. */
int client_call(struct client *c, const char *method, const char *path, const json_t *body,
                json_t **ret_reply, struct client_error *ret_err);

/* POSTs the content of fd (from its offset to its end) as application/octet-stream, streamed;
 * the reply as client_call_raw(). */
int client_upload(struct client *c, const char *path, int fd, json_t **ret_reply,
                  struct client_error *ret_err);

/* GETs path and writes the bytes of a 2xx reply to fd, at most max of them. -EPIPE (not
 * printed): fd's reader went away. */
int client_download(struct client *c, const char *path, int fd, uint64_t max, uint64_t *ret_size);

/* One Server-Sent Event. */
struct client_event {
        const char *name; /* "message" unless the event says otherwise */
        const char *data; /* its data lines joined by '\n', NUL-terminated */
        size_t len;
        const char *id; /* the last "id:" seen on the stream, "" if none */
};

/* Returns 0 to go on, > 0 to stop following (the stream is done), < 0 to fail (the callback
 * has said why). */
typedef int (*client_event_fn)(const struct client_event *ev, void *userdata);
/* Called about once a second while the stream is open, to show progress; may be NULL. */
typedef void (*client_tick_fn)(void *userdata);

#define CLIENT_MAX_SSE_LINE  ((size_t) 8 << 20)
#define CLIENT_MAX_SSE_EVENT ((size_t) 16 << 20)

/*
 * Follows an event stream at path (sending Last-Event-ID if last_id is not NULL or ""). Returns
 * 1 when on_event stopped it, 0 when the node closed the stream first, < 0 on failure.
 */
int client_events(struct client *c, const char *path, const char *last_id, client_event_fn on_event,
                  client_tick_fn on_tick, void *userdata);

/* ---- what the commands share ---- */

/* A path segment, percent-encoded (newly allocated; NULL: no memory). */
char *client_escape(const char *segment);

/* Decodes padded or unpadded base64 into a new buffer (NUL-terminated for convenience). */
int client_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);

/* File content as the API wants it: a string if utf8_valid() (common/util.h), else
 * {"base64": ...}. */
json_t *client_content_json(const char *data, size_t len);

/* Reads a whole file ("-": stdin), at most max bytes; errors name the file. */
int client_read_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Reads a line from the terminal (/dev/tty) after prompt, echoing it or not. -ENXIO: no
 * terminal (not printed: the caller knows which option replaces it). */
int client_prompt(const char *prompt, bool echo, char **ret);
/*
 * A password: from stdin (one line) if from_stdin, else from the terminal without echo (asked
 * twice if confirm). 1..CLIENT_MAX_PASSWORD bytes. The caller wipes and frees it
 * (client_password_free()).
 */
int client_read_password(const char *prompt, bool from_stdin, bool confirm, char **ret);
void client_password_free(char *p);

/* A string member of obj, or NULL if absent or not a string. */
const char *client_json_str(const json_t *obj, const char *key);
/* Prints j to stdout, indented, and a newline. */
int client_print_json(const json_t *j);
/* Prints s in a table cell of width (padded; control characters replaced; "-" for NULL). */
void client_print_cell(const char *s, int width, bool last);

/* What `warren app ls` and the like print: a list the node gives, as a table. */
struct client_list {
        const char *path; /* "/api/v1/apps" */
        const char *key;  /* "apps": the reply's array */
        const char *what; /* "app": "the reply ... has no app list" */

        struct {
                const char *title, *key; /* a string member of each element */
                int width;
        } columns[8]; /* at most 7, then {} */
};

/* GETs list->path and prints the reply as JSON (json) or its array as a table; cmd names the
 * command in messages. Returns the exit code. */
int client_print_list(struct client *c, const char *cmd, const struct client_list *list, bool json);

/* The exit code a finished job stands for (docs/api.md: that of the last step that ran); 125 if
 * it failed or was cancelled. With explain, prints one line when the job did not simply exit
 * (a limit, a signal, a failed build, a cancellation, a failure). */
int client_job_exit_code(const json_t *job, bool explain);

enum {
        CLIENT_FOLLOW_QUIET = 1 << 0,    /* do not write the job's output */
        CLIENT_FOLLOW_PROGRESS = 1 << 1, /* a progress line on stderr (only on a terminal) */
};

/*
 * Follows job id's events to its end, writing its output live (the run step's stdout to stdout,
 * its stderr and the build step's output to stderr). known: the job as last seen, or NULL (its
 * state starts the progress line). Returns 0 and *ret_job (the ended job, a new reference), or
 * < 0.
 */
int client_follow_job(struct client *c, const char *id, const json_t *known, unsigned flags,
                      json_t **ret_job);

/* ---- the command line ---- */

/*
 * The client commands read their command lines alike, through client_parse_args(): GNU
 * getopt_long() over a table of options plus --help/-h (the command's help on stdout), and each
 * usage error said in one line ("warren: <cmd>: ...") with exit code 2.
 *
 * A command with sub-commands (app, user) keeps one table for them all: an option whose need
 * bit is not in the sub-command's accept mask is refused as unknown, as is its short name.
 */

#define CLIENT_MAX_OPTIONS 32

/* The key a positional argument is taken with (client_args.take_arg). */
enum {
        CLIENT_ARG = -1,      /* among the options */
        CLIENT_ARG_REST = -2, /* after "--" (with CLIENT_ARGS_OPTIONS_FIRST: every one) */
};

/* Takes an option's value (key: the option's) or a positional argument (key: CLIENT_ARG or
 * CLIENT_ARG_REST). Returns 0 to go on, or the exit code after saying why. */
typedef int (*client_take_fn)(const char *cmd, int key, const char *value, void *userdata);

struct client_option {
        const char *name; /* the long option, without "--" */
        char short_name;  /* also -<short_name> where it is accepted; 0: none */
        unsigned need;    /* the bit of client_args.accept it needs; 0: always accepted */
        /* What it does: sets *flag (it takes no value), else *value, else hands its value to
         * client_args.take with key. */
        bool *flag;
        const char **value;
        int key;
};

enum {
        CLIENT_ARG_OPTIONAL = 1 << 0,       /* the positional argument may be left out */
        CLIENT_ARG_EMPTY_OK = 1 << 1,       /* an empty one is not a missing one */
        CLIENT_ARGS_OPTIONS_FIRST = 1 << 2, /* every option is read before any argument */
};

struct client_args {
        const char *cmd;                     /* "app ls": names the command in messages */
        const char *help;                    /* printed by --help */
        const struct client_option *options; /* ends with {}; at most CLIENT_MAX_OPTIONS */
        unsigned accept;                     /* the need bits this command has */
        unsigned flags;                      /* CLIENT_ARG_*, CLIENT_ARGS_* */
        /* The positional argument: at most one, kept in *arg (NULL: none is taken); missing,
         * it is "no <arg_name> given; see 'warren <see> --help'" (see NULL: cmd). */
        const char **arg;
        const char *arg_name, *see;
        /* Or every positional argument goes to take_arg (the command checks them). */
        client_take_fn take, take_arg;
        void *userdata; /* for take and take_arg */
};

/* Parses argv (argv[0] is the command). Returns 0 to go on, -1 when the help was shown (exit
 * 0), or the exit code after saying why: 2 for a usage error, or what a take function said. */
int client_parse_args(const struct client_args *args, int argc, char *argv[]);

/*
 * For a command with sub-commands (app, user): finds the one argv[1] names in subs, an array of
 * n elements of size bytes that each start with the sub-command's name (a const char *), as
 * lfind() would; "help", "--help" and "-h" show help. Returns 0 and *ret_index, -1 when the help
 * was shown, or 2 after saying why (no command, an unknown one).
 */
int client_sub_command(const char *cmd, const char *help, const void *subs, size_t n, size_t size,
                       int argc, char *argv[], size_t *ret_index);

/*
 * Several positional arguments, in order: set client_args.take_arg to client_take_positional()
 * and userdata to a struct client_positional. One more than max is "unexpected argument".
 */
#define CLIENT_MAX_POSITIONAL 4

struct client_positional {
        const char *v[CLIENT_MAX_POSITIONAL];
        size_t n;
        size_t max; /* at most CLIENT_MAX_POSITIONAL */
};

int client_take_positional(const char *cmd, int key, const char *value, void *userdata);

/* After client_parse_args(): the first n arguments (named by names[0..n), e.g. "mode") are all
 * given and none is empty, else says which is missing ("warren: <cmd>: no mode given; see
 * 'warren <see> --help'") and returns 2. Returns 0. */
int client_positional_check(const char *cmd, const char *see, const struct client_positional *p,
                            const char *const *names, size_t n);
