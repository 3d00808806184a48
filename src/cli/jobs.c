/* SPDX-License-Identifier: MIT */
#include "commands.h"
int cmd_jobs(int argc, char *argv[]) { return 1; }
int cmd_status(int argc, char *argv[]) { return 1; }
int cmd_logs(int argc, char *argv[]) { return 1; }
int cmd_result(int argc, char *argv[]) { return 1; }
int cmd_cancel(int argc, char *argv[]) { return 1; }
