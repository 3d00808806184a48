/* SPDX-License-Identifier: MIT */
#include "api/metrics.h"
