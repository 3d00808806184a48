/* SPDX-License-Identifier: MIT */
/*
 * warren group | session | audit: groups and their members, one's own sessions, and the audit
 * log (docs/api.md).
 *
 * The audit log keeps what it was given, raw: a failed login records the user name the client
 * sent, whatever bytes it holds. So every text a node sends is printed escaped (print_text()):
 * control characters, C1 controls and the Unicode controls of text direction become \xHH or
 * \uHHHH, and a backslash is doubled so that an escape cannot be forged either. Each text is cut
 * at MAX_TEXT_SHOWN bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_TEXT_SHOWN  1024 /* bytes of one text from the node that are shown */
#define AUDIT_PAGE_MAX  1000 /* docs/api.md: limit is 1..1000 */
#define AUDIT_LIMIT_MAX 100000000

/* ---- printing what a node sends ---- */

/* The code point of the UTF-8 sequence at s[0..len), and its length; 0 if malformed. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *ret)
{
        size_t n;
        uint32_t cp;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                n = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                n = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                n = 4;
                cp = s[0] & 0x07;
        } else
                return 0;
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret = cp;
        return n;
}

/* Code points a terminal acts on, or that reorder what is shown: C1 controls, the marks and
 * overrides of text direction, line and paragraph separators. */
static bool unsafe_code_point(uint32_t cp)
{
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
               (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

/*
 * Writes s escaped (see the top of this file), at most MAX_TEXT_SHOWN bytes of it ("..." after a
 * cut); NULL is "-". Returns the number of characters written, for padding.
 */
static int print_text(const char *s)
{
        const unsigned char *p = (const unsigned char *) (s ? s : "-");
        size_t len = strlen((const char *) p), i = 0;
        int shown = 0;

        while (i < len) {
                uint32_t cp;
                size_t n;

                if (i >= MAX_TEXT_SHOWN) {
                        (void) fputs("...", stdout);
                        return shown + 3;
                }
                n = utf8_decode(p + i, len - i, &cp);
                if (n == 0) {
                        (void) printf("\\x%02x", p[i]);
                        shown += 4;
                        i++;
                        continue;
                }
                if (cp == '\\') {
                        (void) fputs("\\\\", stdout);
                        shown += 2;
                } else if (cp < 0x20 || cp == 0x7f) {
                        (void) printf("\\x%02x", (unsigned) cp);
                        shown += 4;
                } else if (unsafe_code_point(cp)) {
                        (void) printf("\\u%04x", (unsigned) cp);
                        shown += 6;
                } else {
                        (void) fwrite(p + i, 1, n, stdout);
                        shown++;
                }
                i += n;
        }
        return shown;
}

/* s escaped in a column of width characters, then two spaces; or the line's end. */
static void print_cell(const char *s, int width, bool last)
{
        int shown = print_text(s);

        if (last) {
                (void) fputc('\n', stdout);
                return;
        }
        for (; shown < width; shown++)
                (void) fputc(' ', stdout);
        (void) fputs("  ", stdout);
}

static void print_field(const char *label, const char *value)
{
        print_cell(label, 8, false);
        print_cell(value, 0, true);
}

/* The decimal text of an integer member ("-" if it is not one). */
static const char *int_text(const json_t *o, const char *key, char *buf, size_t size)
{
        const json_t *v = json_object_get(o, key);

        if (!json_is_integer(v))
                return "-";
        (void) snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
}

static int oom(void)
{
        log_error_errno(ENOMEM, "%m");
        return 1;
}

static int finish_output(void)
{
        if (fflush(stdout) != 0) {
                log_error_errno(errno, "cannot write to stdout: %m");
                return 1;
        }
        return 0;
}

/* ---- groups ---- */

static const char group_help[] =
        "Usage: warren group COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  add NAME                 create a group (administrators)\n"
        "  ls [--json]              list the groups you may read: NAME, OWNER, MODE, MEMBERS\n"
        "  show NAME [--json]       a group and its members\n"
        "  rm NAME                  remove a group (administrators)\n"
        "  member add GROUP USER    add a user to a group (administrators)\n"
        "  member rm GROUP USER     remove a user from a group (administrators)\n"
        "\n"
        "A group's members may read it. 'warren chgrp' moves an object to a group.\n"
        "\n"
        "Options:\n"
        "  --json                   print the node's reply as JSON\n"
        "  --url URL                the node's URL\n"
        "  --help                   show this help\n";

struct group_args {
        const char *url;
        struct client_positional p;
        bool json;
};

static char *group_path(const char *name, const char *member)
{
        _cleanup_free_ char *g = client_escape(name), *m = member ? client_escape(member) : NULL;
        char *path;

        if (!g || (member && !m))
                return NULL;
        if (m ? asprintf(&path, "/api/v1/groups/%s/members/%s", g, m) < 0
              : asprintf(&path, "/api/v1/groups/%s", g) < 0)
                return NULL;
        return path;
}

/* The members of a group, escaped, separated by ", " ("-" if none). */
static void print_members(const json_t *group)
{
        const json_t *members = json_object_get(group, "members"), *m;
        size_t i;

        if (!json_is_array(members) || json_array_size(members) == 0) {
                (void) fputs("-", stdout);
                return;
        }
        json_array_foreach(members, i, m)
        {
                if (i > 0)
                        (void) fputs(", ", stdout);
                (void) print_text(json_is_string(m) ? json_string_value(m) : NULL);
        }
}

static int group_add(struct client *c, const struct group_args *a)
{
        _cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->p.v[0]), *reply = NULL;

        if (!body) {
                log_error("group add: the group name is not valid UTF-8");
                return 1;
        }
        if (client_call(c, "POST", "/api/v1/groups", body, &reply, NULL) < 0)
                return 1;
        return a->json ? (client_print_json(reply) < 0 ? 1 : 0) : 0;
}

static int group_ls(struct client *c, const struct group_args *a)
{
        _cleanup_json_ json_t *reply = NULL;
        const json_t *groups, *g;
        size_t i;

        if (client_call(c, "GET", "/api/v1/groups", NULL, &reply, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        groups = json_object_get(reply, "groups");
        if (!json_is_array(groups)) {
                log_error("group ls: the reply from %s has no group list", client_url(c));
                return 1;
        }
        print_cell("NAME", 16, false);
        print_cell("OWNER", 12, false);
        print_cell("MODE", 4, false);
        print_cell("MEMBERS", 0, true);
        json_array_foreach(groups, i, g)
        {
                print_cell(client_json_str(g, "name"), 16, false);
                print_cell(client_json_str(g, "owner"), 12, false);
                print_cell(client_json_str(g, "mode"), 4, false);
                print_members(g);
                (void) fputc('\n', stdout);
        }
        return finish_output();
}

static int group_show(struct client *c, const struct group_args *a)
{
        _cleanup_free_ char *path = group_path(a->p.v[0], NULL);
        _cleanup_json_ json_t *g = NULL;

        if (!path)
                return oom();
        if (client_call(c, "GET", path, NULL, &g, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(g) < 0 ? 1 : 0;
        print_field("name", client_json_str(g, "name"));
        print_field("owner", client_json_str(g, "owner"));
        print_field("group", client_json_str(g, "group"));
        print_field("mode", client_json_str(g, "mode"));
        print_field("created", client_json_str(g, "created_at"));
        print_cell("members", 8, false);
        print_members(g);
        (void) fputc('\n', stdout);
        return finish_output();
}

static int group_rm(struct client *c, const struct group_args *a)
{
        _cleanup_free_ char *path = group_path(a->p.v[0], NULL);

        if (!path)
                return oom();
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

static int group_member_add(struct client *c, const struct group_args *a)
{
        _cleanup_free_ char *path = group_path(a->p.v[0], a->p.v[1]);

        if (!path)
                return oom();
        return client_call(c, "PUT", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

static int group_member_rm(struct client *c, const struct group_args *a)
{
        _cleanup_free_ char *path = group_path(a->p.v[0], a->p.v[1]);

        if (!path)
                return oom();
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

enum {
        ACCEPT_JSON = 1 << 0,
};

struct group_sub {
        const char *name; /* first, for client_sub_command() */
        const char *cmd;
        unsigned accept;
        size_t n_args;
        const char *const *arg_names;
        int (*run)(struct client *c, const struct group_args *a);
};

static const char *const group_name_arg[] = {"group name"};
static const char *const member_args[] = {"group name", "user name"};

static const struct group_sub member_subs[] = {
        {"add", "group member add", 0, 2, member_args, group_member_add},
        {"rm", "group member rm", 0, 2, member_args, group_member_rm},
};

static const struct group_sub group_subs[] = {
        {"add", "group add", ACCEPT_JSON, 1, group_name_arg, group_add},
        {"ls", "group ls", ACCEPT_JSON, 0, NULL, group_ls},
        {"show", "group show", ACCEPT_JSON, 1, group_name_arg, group_show},
        {"rm", "group rm", 0, 1, group_name_arg, group_rm},
        {"member", NULL, 0, 0, NULL, NULL}, /* see member_subs */
};

int cmd_group(int argc, char *argv[])
{
        _cleanup_(client_freep) struct client *c = NULL;
        struct group_args a = {0};
        const struct client_option options[] = {
                {.name = "json", .need = ACCEPT_JSON, .flag = &a.json},
                {.name = "url", .value = &a.url},
                {},
        };
        const struct group_sub *sub;
        size_t i;
        int r;

        r = client_sub_command("group", group_help, group_subs, ELEMENTSOF(group_subs),
                               sizeof(group_subs[0]), argc, argv, &i);
        if (r != 0)
                return r < 0 ? 0 : r;
        sub = &group_subs[i];
        argc--;
        argv++;
        if (!sub->run) {
                r = client_sub_command("group member", group_help, member_subs,
                                       ELEMENTSOF(member_subs), sizeof(member_subs[0]), argc, argv,
                                       &i);
                if (r != 0)
                        return r < 0 ? 0 : r;
                sub = &member_subs[i];
                argc--;
                argv++;
        }
        a.p.max = sub->n_args;
        r = client_parse_args(
                &(const struct client_args){
                        .cmd = sub->cmd,
                        .help = group_help,
                        .options = options,
                        .accept = sub->accept,
                        .take_arg = client_take_positional,
                        .userdata = &a.p,
                },
                argc, argv);
        if (r == 0)
                r = client_positional_check(sub->cmd, "group", &a.p, sub->arg_names, sub->n_args);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        return sub->run(c, &a);
}

/* ---- sessions ---- */

static const char session_help[] =
        "Usage: warren session COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  ls [--json]   list your live sessions: ID, CREATED, EXPIRES, and '*' beside the\n"
        "                one in use\n"
        "  revoke ID     end one of your sessions (its token stops working at once)\n"
        "\n"
        "Options:\n"
        "  --json        print the node's reply as JSON\n"
        "  --url URL     the node's URL\n"
        "  --help        show this help\n";

struct session_args {
        const char *url, *id;
        bool json;
};

static int session_ls(struct client *c, const struct session_args *a)
{
        _cleanup_json_ json_t *reply = NULL;
        const json_t *sessions, *s;
        char id[32];
        size_t i;

        if (client_call(c, "GET", "/api/v1/sessions", NULL, &reply, NULL) < 0)
                return 1;
        if (a->json)
                return client_print_json(reply) < 0 ? 1 : 0;
        sessions = json_object_get(reply, "sessions");
        if (!json_is_array(sessions)) {
                log_error("session ls: the reply from %s has no session list", client_url(c));
                return 1;
        }
        print_cell("ID", 10, false);
        print_cell("CREATED", 24, false);
        print_cell("EXPIRES", 24, false);
        print_cell("CURRENT", 0, true);
        json_array_foreach(sessions, i, s)
        {
                print_cell(int_text(s, "id", id, sizeof(id)), 10, false);
                print_cell(client_json_str(s, "created_at"), 24, false);
                print_cell(client_json_str(s, "expires_at"), 24, false);
                print_cell(json_is_true(json_object_get(s, "current")) ? "*" : "", 0, true);
        }
        return finish_output();
}

static int session_revoke(struct client *c, const struct session_args *a)
{
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "/api/v1/sessions/%s", a->id) < 0) {
                path = NULL;
                return oom();
        }
        return client_call(c, "DELETE", path, NULL, NULL, NULL) < 0 ? 1 : 0;
}

int cmd_session(int argc, char *argv[])
{
        static const struct {
                const char *name; /* first, for client_sub_command() */
                const char *cmd;
                unsigned accept;
                bool takes_id;
                int (*run)(struct client *c, const struct session_args *a);
        } subs[] = {
                {"ls", "session ls", ACCEPT_JSON, false, session_ls},
                {"revoke", "session revoke", 0, true, session_revoke},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        struct session_args a = {0};
        const struct client_option options[] = {
                {.name = "json", .need = ACCEPT_JSON, .flag = &a.json},
                {.name = "url", .value = &a.url},
                {},
        };
        uint64_t id;
        size_t i;
        int r;

        r = client_sub_command("session", session_help, subs, ELEMENTSOF(subs), sizeof(subs[0]),
                               argc, argv, &i);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = client_parse_args(
                &(const struct client_args){
                        .cmd = subs[i].cmd,
                        .help = session_help,
                        .options = options,
                        .accept = subs[i].accept,
                        .arg = subs[i].takes_id ? &a.id : NULL,
                        .arg_name = "session id",
                        .see = "session",
                },
                argc - 1, argv + 1);
        if (r != 0)
                return r < 0 ? 0 : r;
        /* Checked here: the node would only say "no such session" of a typo. */
        if (a.id && parse_uint(a.id, 1, INT64_MAX, &id) < 0) {
                log_error("%s: invalid session id '%s': it is a number from 'warren session ls'",
                          subs[i].cmd, a.id);
                return 2;
        }
        if (client_new(a.url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        return subs[i].run(c, &a);
}

/* ---- the audit log ---- */

static const char audit_help[] =
        "Usage: warren audit [--after ID] [--limit N] [--json]\n"
        "\n"
        "Prints the audit log (administrators), oldest first, one record a line: ID, TIME,\n"
        "ACTOR, EVENT, OBJECT, PEER, DETAIL. Texts are shown escaped: control characters as\n"
        "\\xHH, Unicode controls as \\uHHHH, a backslash as \\\\.\n"
        "\n"
        "Options:\n"
        "  --after ID   only the records after record ID\n"
        "  --limit N    at most N records (default: all)\n"
        "  --json       print {\"records\": [...], \"next_after\": ID | null} as JSON\n"
        "  --url URL    the node's URL\n"
        "  --help       show this help\n";

static void print_record(const json_t *rec)
{
        char id[32];

        print_cell(int_text(rec, "id", id, sizeof(id)), 6, false);
        print_cell(client_json_str(rec, "at"), 24, false);
        print_cell(client_json_str(rec, "actor"), 12, false);
        print_cell(client_json_str(rec, "event"), 18, false);
        print_cell(client_json_str(rec, "object"), 16, false);
        print_cell(client_json_str(rec, "peer"), 15, false);
        print_cell(client_json_str(rec, "detail"), 0, true);
}

int cmd_audit(int argc, char *argv[])
{
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *all = NULL;
        const char *url = NULL, *after_text = NULL, *limit_text = NULL;
        bool json = false, limited;
        const struct client_option options[] = {
                {.name = "after", .value = &after_text},
                {.name = "limit", .value = &limit_text},
                {.name = "json", .flag = &json},
                {.name = "url", .value = &url},
                {},
        };
        uint64_t after = 0, left = 0;
        json_t *next = NULL;
        int r;

        r = client_parse_args(
                &(const struct client_args){
                        .cmd = "audit",
                        .help = audit_help,
                        .options = options,
                },
                argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (after_text && parse_uint(after_text, 0, INT64_MAX, &after) < 0) {
                log_error("audit: invalid --after '%s': it is a record id", after_text);
                return 2;
        }
        limited = limit_text != NULL;
        if (limited && parse_uint(limit_text, 1, AUDIT_LIMIT_MAX, &left) < 0) {
                log_error("audit: invalid --limit '%s': it is 1 to %d", limit_text,
                          AUDIT_LIMIT_MAX);
                return 2;
        }
        if (client_new(url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        if (json && !(all = json_array()))
                return oom();

        /* Page by page: the node gives at most AUDIT_PAGE_MAX records a request. */
        for (;;) {
                _cleanup_json_ json_t *reply = NULL;
                _cleanup_free_ char *path = NULL;
                uint64_t page = limited && left < AUDIT_PAGE_MAX ? left : AUDIT_PAGE_MAX;
                const json_t *records, *rec;
                size_t i;

                if (asprintf(&path, "/api/v1/audit?after=%" PRIu64 "&limit=%" PRIu64, after, page) <
                    0) {
                        path = NULL;
                        return oom();
                }
                if (client_call(c, "GET", path, NULL, &reply, NULL) < 0)
                        return 1;
                records = json_object_get(reply, "records");
                next = json_object_get(reply, "next_after");
                if (!json_is_array(records) || json_array_size(records) > page ||
                    !(json_is_null(next) || json_is_integer(next))) {
                        log_error("audit: the reply from %s is not an audit log page",
                                  client_url(c));
                        return 1;
                }
                json_array_foreach(records, i, rec)
                {
                        if (!json)
                                print_record(rec);
                        else if (json_array_append(all, (json_t *) rec) < 0)
                                return oom();
                }
                if (limited)
                        left -= json_array_size(records);
                if (json_is_null(next) || (limited && left == 0) ||
                    json_integer_value(next) <= (json_int_t) after ||
                    json_array_size(records) == 0) {
                        /* Kept past the reply: it is what --json says comes next. */
                        next = json_is_integer(next) ? json_integer(json_integer_value(next))
                                                     : json_null();
                        break;
                }
                after = (uint64_t) json_integer_value(next);
        }
        if (json) {
                _cleanup_json_ json_t *out =
                        json_pack("{s:O, s:o}", "records", all, "next_after", next);
                _cleanup_free_ char *text = NULL;

                /* ASCII: C1 controls and direction overrides become \uHHHH like the rest, and so
                 * does DEL, which jansson leaves as it is (it can only be inside a string). */
                if (!out || !(text = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII)))
                        return oom();
                for (const char *t = text; *t; t++)
                        if (*t == 0x7f)
                                (void) fputs("\\u007f", stdout);
                        else
                                (void) fputc(*t, stdout);
                (void) fputc('\n', stdout);
                return finish_output();
        }
        json_decref(next);
        return finish_output();
}
