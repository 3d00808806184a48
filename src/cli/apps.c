/* SPDX-License-Identifier: MIT */
#include "commands.h"
int cmd_app(int argc, char *argv[]) { return 1; }
