/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The hub: what is happening to jobs right now, for the threads that wait on it.
 *
 * The runner publishes a job's events (state changes, output chunks) and its end; HTTP handlers
 * wait for a job's end (?wait=true) or follow its events (the SSE stream), and runners wait for
 * work. Everything is in memory and bounded: the store stays the truth, the hub only tells who
 * waits that something changed, and replays a job's recent events to a late follower.
 *
 * An entry per job exists while anyone publishes or watches it; an ended job's entry is kept
 * (for late followers) until HUB_RETAIN_ENDED other jobs have ended after it. A job's replay
 * buffer holds at most max_replay_bytes of event data; beyond it, the oldest output events are
 * dropped (state and end events are always kept) and the follower learns that with a gap.
 * Thread-safe: one mutex, one condition variable per entry.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define HUB_RETAIN_ENDED   256
#define HUB_EVENT_NAME_MAX 15
#define HUB_DEFAULT_REPLAY (UINT64_C(1) << 20)
/* A job id is 1..HUB_ID_MAX bytes of [0-9A-Za-z._-] (-EINVAL otherwise). */
#define HUB_ID_MAX 64
/* At most this many entries (ended ones retained included); beyond it, a publish, end or watch
 * that needs a new entry gets -ENOSPC. */
#define HUB_MAX_ENTRIES 65536
/* Counted per event, beside its data, against max_replay_bytes: keeps the number of events
 * bounded too, even when they are small. */
#define HUB_EVENT_OVERHEAD 64
/* A timeout that never expires. */
#define HUB_FOREVER UINT64_MAX

struct hub;

struct hub_event {
        uint64_t seq;                      /* 1, 2, 3, ... per job */
        char name[HUB_EVENT_NAME_MAX + 1]; /* "state", "output", "end" */
        char *data;                        /* JSON text, owned */
        size_t len;
};

void hub_event_clear(struct hub_event *ev);

int hub_new(size_t max_replay_bytes, struct hub **ret);
/* Wakes every waiter (they get -ESHUTDOWN) and frees; accepts NULL; returns NULL. Callers must
 * have stopped using the hub (joined their threads) before the free itself. */
struct hub *hub_free(struct hub *h);
DEFINE_FREE_FUNC(struct hub *, hub_free)
/* Makes every current and future wait return -ESHUTDOWN at once. */
void hub_shutdown(struct hub *h);

/* ---- producers ---- */

/* Appends an event (data: JSON text, copied) to the job's entry, creating it if needed, and wakes
 * its followers. name must not be "end". name is 1..HUB_EVENT_NAME_MAX of [a-z0-9_-]; an event
 * named "state" is always kept, any other name is an output event for the replay bound. */
int hub_publish(struct hub *h, const char *job_id, const char *name, const char *data, size_t len);
/* Appends the final "end" event; the entry is then ended (later publishes: -ESTALE). */
int hub_end(struct hub *h, const char *job_id, const char *data, size_t len);

/* ---- consumers ---- */

/*
 * A watch keeps the job's entry alive and lets its holder wait. Take the watch BEFORE reading the
 * job's state from the store: then an end published after that read cannot be missed.
 */
struct hub_watch;
int hub_watch(struct hub *h, const char *job_id, struct hub_watch **ret);
struct hub_watch *hub_unwatch(struct hub_watch *w);
DEFINE_FREE_FUNC(struct hub_watch *, hub_unwatch)

/*
 * The next event after *cursor (0 before the first), waiting up to timeout_ns for one. Returns 0
 * and *ret (the caller clears it; *cursor advances to its seq), -ETIMEDOUT, or -ESHUTDOWN. If
 * events after *cursor were dropped from the replay buffer, returns the oldest one kept and sets
 * *ret_gap to true (may be NULL).
 * Also -ENODATA, at once, when the job has ended and *cursor is at or after its end event (nothing
 * can follow), and -ENOMEM.
 */
int hub_next(struct hub_watch *w, uint64_t *cursor, uint64_t timeout_ns, struct hub_event *ret,
             bool *ret_gap);
/* Waits up to timeout_ns for the job's end: 0 (ended), -ETIMEDOUT, -ESHUTDOWN. */
int hub_wait_end(struct hub_watch *w, uint64_t timeout_ns);
bool hub_ended(struct hub_watch *w);

/* ---- work for the runners ---- */

/* Tells one waiting runner (or the next to wait) that a job may be waiting. Counted: n notifies
 * wake n waits (or satisfy n future waits at once). */
void hub_notify_work(struct hub *h);
/* Waits up to timeout_ns for a notify: 0, -ETIMEDOUT, -ESHUTDOWN. */
int hub_wait_work(struct hub *h, uint64_t timeout_ns);

/* ---- observation (metrics, tests) ---- */

struct hub_stats {
        size_t entries;  /* live entries, ended ones included */
        size_t retained; /* ended entries kept for late followers */
        size_t watches;
        size_t waiters; /* threads blocked in hub_next, hub_wait_end or hub_wait_work */
        uint64_t work;  /* notifies not yet consumed */
};

void hub_get_stats(struct hub *h, struct hub_stats *ret);
