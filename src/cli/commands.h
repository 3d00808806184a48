/* SPDX-License-Identifier: MIT */
#pragma once

/* One function per sub-command; each returns the process exit code. */

int cmd_run(int argc, char *argv[]);
