/* SPDX-License-Identifier: MIT */
#include "cli/client.h"
