/* SPDX-License-Identifier: MIT */
#include "blob/blob.h"
