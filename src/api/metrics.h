/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The node's metrics, rendered in Prometheus' text exposition format (version 0.0.4) for
 * GET /metrics. Thread-safe (one mutex). Counters are bounded: HTTP requests are counted by route
 * name (from the route table, never from the client's path) and status; at most
 * METRICS_MAX_SERIES distinct (route, status) pairs, beyond which requests are counted under
 * route "other".
 */

#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define METRICS_MAX_SERIES 512

struct metrics;

int metrics_new(struct metrics **ret);
struct metrics *metrics_free(struct metrics *m);
DEFINE_FREE_FUNC(struct metrics *, metrics_free)

/* route: a route name ("jobs_get"; NULL: "no_route"); status: HTTP status (0: client gone). */
void metrics_http_request(struct metrics *m, const char *route, int status);
/* Time from a runner's claim of a job to its sandbox running (seconds). */
void metrics_observe_spawn(struct metrics *m, double seconds);
/* Time from a job's start to its end (seconds). */
void metrics_observe_job(struct metrics *m, double seconds);

/* The gauges the caller reads from the store when rendering. */
struct metrics_gauges {
        uint64_t jobs[5]; /* by state, indexed as enum store_job_state: queued, running,
                             finished, cancelled, failed */
        uint64_t queue_length;
        uint64_t workers_busy;
        uint64_t workers_total;
};

/* The whole exposition as a heap string (caller frees), or NULL without memory.
 * Series: warren_jobs{state="..."} (gauge), warren_queue_length (gauge),
 * warren_workers_busy, warren_workers_total (gauges), warren_spawn_seconds and
 * warren_job_duration_seconds (histograms: _bucket{le}, _sum, _count),
 * warren_http_requests_total{route,status} (counter), warren_build_info{version} (gauge 1). */
char *metrics_render(struct metrics *m, const struct metrics_gauges *g);
