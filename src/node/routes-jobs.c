/* SPDX-License-Identifier: MIT */
#include "node/node.h"
