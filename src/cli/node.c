/* SPDX-License-Identifier: MIT */
#include "commands.h"
int cmd_node(int argc, char *argv[]) { return 1; }
