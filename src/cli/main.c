/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "common/cleanup.h"
#include "common/log.h"

/*
 * One program in two files (see meson.build): `warren` runs sandboxes itself and hands every
 * other command to `warren-node`, found beside it (a build tree) or in WARREN_LIBEXECDIR (an
 * installation). `warren-node` is built with WARREN_FULL and runs them all.
 */
#if WARREN_FULL
#define FULL(f) f
#else
#define FULL(f) NULL
#endif

static const struct {
        const char *name;
        int (*run)(int argc, char *argv[]); /* NULL: in warren-node */
        const char *summary;
} commands[] = {
        {"run", cmd_run, "run a program in a fresh sandbox"},
        {"node", FULL(cmd_node), "serve jobs: the HTTP API, the store and local workers"},
        {"login", FULL(cmd_login), "log in to a node and keep the token"},
        {"logout", FULL(cmd_logout), "revoke the kept token and forget it"},
        {"submit", FULL(cmd_submit), "submit a job; with --wait, follow it to its end"},
        {"jobs", FULL(cmd_jobs), "list your jobs"},
        {"status", FULL(cmd_status), "show a job's state"},
        {"logs", FULL(cmd_logs), "show (or follow, -f) a job's output"},
        {"result", FULL(cmd_result), "show a job's result"},
        {"cancel", FULL(cmd_cancel), "cancel a job"},
        {"app", FULL(cmd_app), "list, show, add and remove apps"},
        {"data", FULL(cmd_data), "upload, list, show, download and remove data"},
        {"user", FULL(cmd_user), "add, list, change and remove users"},
        {"group", FULL(cmd_group), "add, list, show and remove groups and their members"},
        {"chmod", FULL(cmd_chmod), "set the mode of a job, app, user, group or data"},
        {"chgrp", FULL(cmd_chgrp), "set the group of a job, app, user, group or data"},
        {"chown", FULL(cmd_chown), "set the owner of a job, app, user, group or data"},
        {"session", FULL(cmd_session), "list and revoke your sessions"},
        {"audit", FULL(cmd_audit), "show the audit log (administrators)"},
        {"worker", FULL(cmd_worker), "add, list, show and remove workers; make join tokens"},
        {"workers", FULL(cmd_workers), "list the workers (worker ls)"},
        {"cert", FULL(cmd_cert), "make a CA and a server certificate for HTTPS"},
        {"keygen", FULL(cmd_keygen), "make a CURVE key pair for a master or a worker"},
        /* Internal: a spawner the node (re)starts; not listed. */
        {"spawner-internal", FULL(cmd_spawner), NULL},
};

static void usage(FILE *f)
{
        (void) fprintf(f, "Usage: warren COMMAND [OPTIONS]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].summary)
                        (void) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        (void) fprintf(f, "\n'warren COMMAND --help' describes a command.\n");
}

#if !WARREN_FULL
static int exec_full(char *argv[])
{
        char self[PATH_MAX], path[PATH_MAX + 32];
        ssize_t n;
        char *slash;

        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        (void) snprintf(path, sizeof(path), "%s/warren-node", self);
                        if (access(path, X_OK) == 0) {
                                (void) execv(path, argv);
                                return log_error_errno(-errno, "Failed to execute '%s': %m", path);
                        }
                }
        }
        (void) snprintf(path, sizeof(path), "%s/warren-node", WARREN_LIBEXECDIR);
        (void) execv(path, argv);
        return log_error_errno(-errno, "Failed to execute '%s': %m", path);
}
#endif

int main(int argc, char *argv[])
{
        const char *level = getenv("WARREN_LOG_LEVEL");

        if (level && strcmp(level, "debug") == 0)
                log_set_level(LOG_LEVEL_DEBUG);

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                (void) printf("warren %s\n", WARREN_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (strcmp(argv[1], commands[i].name) != 0)
                        continue;
                if (commands[i].run)
                        return commands[i].run(argc - 1, argv + 1);
#if !WARREN_FULL
                (void) exec_full(argv);
#endif
                return 1;
        }
        log_error("unknown command '%s'; see 'warren --help'", argv[1]);
        return 2;
}
