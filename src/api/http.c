/* SPDX-License-Identifier: MIT */
#include "api/http.h"
