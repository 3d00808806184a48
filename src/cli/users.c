/* SPDX-License-Identifier: MIT */
#include "commands.h"
int cmd_user(int argc, char *argv[]) { return 1; }
