/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "cgroup.h"
