/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Capabilities. All three are async-signal-safe (no allocation): they run in the sandbox child.
 */

/* The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap). */
int caps_last_cap(void);

/* Empties the bounding set (needs CAP_SETPCAP in the current user namespace). */
int caps_drop_bounding(int last_cap);

/* Empties the ambient, inheritable, permitted and effective sets. */
int caps_drop_all(void);

/* Like caps_drop_all(), but keeps one capability in the permitted and effective sets. */
int caps_keep_only(int cap);
