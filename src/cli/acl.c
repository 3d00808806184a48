/* SPDX-License-Identifier: MIT */
/*
 * warren chmod | chgrp | chown: the owner, group and mode of an object, through
 * `PATCH /api/v1/{kind}/{name}/acl` (docs/api.md, "Groups, owners and modes"). Each command sends
 * only the member it changes; the node decides (an owner may only lower a mode, only an
 * administrator changes an owner) and says why it refuses.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "commands.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"

#define KINDS "job, app, user, group or data"

static const char chmod_help[] =
        "Usage: warren chmod MODE KIND NAME [--json]\n"
        "\n"
        "Sets the mode of an object: MODE is octal, 3 or 4 digits, at most 777 (750, 0750):\n"
        "owner, group, others, each read 4 + write 2 + execute 1. KIND is job, app, user,\n"
        "group or data; NAME is the job's id or the object's name. An owner may lower a mode,\n"
        "never raise it; administrators may do anything. Prints the new owner, group and mode.\n"
        "\n"
        "Options:\n"
        "  --json     print the node's reply as JSON\n"
        "  --url URL  the node's URL\n"
        "  --help     show this help\n";

static const char chgrp_help[] =
        "Usage: warren chgrp GROUP KIND NAME [--json]\n"
        "\n"
        "Moves an object to GROUP ('-' or 'none': to no group). KIND is job, app, user, group\n"
        "or data; NAME is the job's id or the object's name. An owner may move it to a group\n"
        "of its own when no one gains access by it; administrators may do anything. Prints the\n"
        "new owner, group and mode.\n"
        "\n"
        "Options:\n"
        "  --json     print the node's reply as JSON\n"
        "  --url URL  the node's URL\n"
        "  --help     show this help\n";

static const char chown_help[] =
        "Usage: warren chown USER KIND NAME [--json]\n"
        "\n"
        "Gives an object to USER (administrators). KIND is job, app, user, group or data;\n"
        "NAME is the job's id or the object's name. Prints the new owner, group and mode.\n"
        "\n"
        "Options:\n"
        "  --json     print the node's reply as JSON\n"
        "  --url URL  the node's URL\n"
        "  --help     show this help\n";

/* What a command's first argument is. */
enum acl_member {
        ACL_MODE,
        ACL_GROUP,
        ACL_OWNER,
};

/* KIND on the command line, and its collection in the API's paths. */
static const struct {
        const char *kind, *collection;
} kinds[] = {
        {"job", "jobs"}, {"app", "apps"}, {"user", "users"}, {"group", "groups"}, {"data", "data"},
};

/* "750", "0750": 3 or 4 octal digits, at most 0777. */
static int parse_mode(const char *s, unsigned *ret)
{
        size_t n = strlen(s);
        unsigned v = 0;

        if (n < 3 || n > 4)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '7')
                        return -EINVAL;
                v = v * 8 + (unsigned) (s[i] - '0');
        }
        if (v > 0777)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void print_field(const char *label, const char *value)
{
        client_print_cell(label, 6, false);
        client_print_cell(value, 0, true);
}

static int acl_command(enum acl_member member, const char *cmd, const char *help, int argc,
                       char *argv[])
{
        static const char *const names[][3] = {
                [ACL_MODE] = {"mode", "kind", "name"},
                [ACL_GROUP] = {"group", "kind", "name"},
                [ACL_OWNER] = {"user", "kind", "name"},
        };
        _cleanup_(client_freep) struct client *c = NULL;
        _cleanup_json_ json_t *body = NULL, *reply = NULL;
        _cleanup_free_ char *escaped = NULL, *path = NULL;
        struct client_positional p = {.max = 3};
        const char *url = NULL, *collection = NULL, *value;
        char mode_text[8];
        bool json = false;
        const struct client_option options[] = {
                {.name = "json", .flag = &json},
                {.name = "url", .value = &url},
                {},
        };
        unsigned mode;
        int r;

        r = client_parse_args(
                &(const struct client_args){
                        .cmd = cmd,
                        .help = help,
                        .options = options,
                        .take_arg = client_take_positional,
                        .userdata = &p,
                },
                argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = client_positional_check(cmd, NULL, &p, names[member], 3);
        if (r != 0)
                return r;
        value = p.v[0];

        switch (member) {
        case ACL_MODE:
                if (parse_mode(value, &mode) < 0) {
                        log_error("%s: invalid mode '%s': it is 3 or 4 octal digits, at most 777 "
                                  "(e.g. 750)",
                                  cmd, value);
                        return 2;
                }
                (void) snprintf(mode_text, sizeof(mode_text), "%04o", mode);
                body = json_pack("{s:s}", "mode", mode_text);
                break;
        case ACL_GROUP:
                if (strcmp(value, "-") == 0 || strcmp(value, "none") == 0)
                        body = json_pack("{s:n}", "group");
                else
                        body = json_pack("{s:s}", "group", value);
                break;
        case ACL_OWNER:
                body = json_pack("{s:s}", "owner", value);
                break;
        }
        if (!body) {
                /* json_pack() refuses a string that is not UTF-8. */
                log_error("%s: the %s is not valid UTF-8", cmd, names[member][0]);
                return 2;
        }

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (strcmp(p.v[1], kinds[i].kind) == 0)
                        collection = kinds[i].collection;
        if (!collection) {
                log_error("%s: unknown kind '%s': it is " KINDS, cmd, p.v[1]);
                return 2;
        }
        escaped = client_escape(p.v[2]);
        if (!escaped || asprintf(&path, "/api/v1/%s/%s/acl", collection, escaped) < 0) {
                path = NULL;
                log_error_errno(ENOMEM, "%m");
                return 1;
        }
        if (client_new(url, CLIENT_NEED_TOKEN, &c) < 0)
                return 1;
        if (client_call(c, "PATCH", path, body, &reply, NULL) < 0)
                return 1;
        if (json)
                return client_print_json(reply) < 0 ? 1 : 0;
        print_field("owner", client_json_str(reply, "owner"));
        print_field("group", client_json_str(reply, "group"));
        print_field("mode", client_json_str(reply, "mode"));
        return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_chmod(int argc, char *argv[])
{
        return acl_command(ACL_MODE, "chmod", chmod_help, argc, argv);
}

int cmd_chgrp(int argc, char *argv[])
{
        return acl_command(ACL_GROUP, "chgrp", chgrp_help, argc, argv);
}

int cmd_chown(int argc, char *argv[])
{
        return acl_command(ACL_OWNER, "chown", chown_help, argc, argv);
}
