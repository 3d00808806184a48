/* SPDX-License-Identifier: MIT */
#include "node/app.h"
