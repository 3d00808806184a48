/* SPDX-License-Identifier: MIT */
#pragma once

/* cmocka needs these before it; a header of our own keeps the order under clang-format. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
