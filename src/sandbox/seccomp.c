/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "seccomp.h"
