/* SPDX-License-Identifier: MIT */
#include "node/hub.h"
