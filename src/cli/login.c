/* SPDX-License-Identifier: MIT */
#include "commands.h"
int cmd_login(int argc, char *argv[]) { return 1; }
int cmd_logout(int argc, char *argv[]) { return 1; }
