/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common/cleanup.h"
#include "common/log.h"

static const struct {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
} commands[] = {
        {"run", cmd_run, "run a program in a fresh sandbox"},
};

static void usage(FILE *f)
{
        (void) fprintf(f, "Usage: warren COMMAND [OPTIONS]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                (void) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        (void) fprintf(f, "\n'warren COMMAND --help' describes a command.\n");
}

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
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        log_error("unknown command '%s'; see 'warren --help'", argv[1]);
        return 2;
}
