/* SPDX-License-Identifier: MIT */
#include "api/metrics.h"

/*
 * Counters live behind one mutex and are rendered under it into a heap string. The request
 * counter is a fixed table of (route, status) series filled in arrival order; once it is full,
 * requests of a pair it does not hold are counted under route "other", by status, in a second
 * fixed table, so that the exposition stays bounded whatever the clients do. Histograms keep one
 * count per bucket (not cumulative) and make them cumulative when rendered.
 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_NAME_MAX 64 /* route names come from the route table; longer ones are cut */
#define STATUS_MAX     999

static const double spawn_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25,  0.5,    1,     2.5,  5,     10};
static const double job_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                    2.5,   5,    10,    30,   60,  120,  300, 600};

#define BUCKETS_MAX 16

struct histogram {
        const double *bounds;
        size_t n_bounds;
        uint64_t counts[BUCKETS_MAX + 1]; /* the last one: above every bound */
        uint64_t count;
        double sum;
};

struct series {
        char route[ROUTE_NAME_MAX + 1];
        int status;
        uint64_t count;
};

struct metrics {
        pthread_mutex_t lock;
        struct series series[METRICS_MAX_SERIES];
        size_t n_series;
        uint64_t other[STATUS_MAX + 1]; /* route "other", by status */
        struct histogram spawn, job;
};

static const char *const job_states[] = {"queued", "running", "finished", "cancelled", "failed"};

int metrics_new(struct metrics **ret)
{
        struct metrics *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        r = pthread_mutex_init(&m->lock, NULL);
        if (r != 0) {
                free(m);
                return -r;
        }
        m->spawn = (struct histogram){.bounds = spawn_bounds, .n_bounds = ELEMENTSOF(spawn_bounds)};
        m->job = (struct histogram){.bounds = job_bounds, .n_bounds = ELEMENTSOF(job_bounds)};
        *ret = m;
        return 0;
}

struct metrics *metrics_free(struct metrics *m)
{
        if (!m)
                return NULL;
        (void) pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
}

static void lock(struct metrics *m)
{
        int r = pthread_mutex_lock(&m->lock);

        /* Only a corrupted or uninitialised mutex fails here: a programmer error. */
        if (r != 0)
                abort();
}

static void unlock(struct metrics *m)
{
        if (pthread_mutex_unlock(&m->lock) != 0)
                abort();
}

void metrics_http_request(struct metrics *m, const char *route, int status)
{
        char name[ROUTE_NAME_MAX + 1];

        if (!m)
                return;
        (void) snprintf(name, sizeof(name), "%s", route ? route : "no_route");
        if (status < 0 || status > STATUS_MAX)
                status = 0;

        lock(m);
        for (size_t i = 0; i < m->n_series; i++)
                if (m->series[i].status == status && strcmp(m->series[i].route, name) == 0) {
                        m->series[i].count++;
                        unlock(m);
                        return;
                }
        if (m->n_series < METRICS_MAX_SERIES) {
                struct series *s = &m->series[m->n_series++];

                memcpy(s->route, name, sizeof(s->route));
                s->status = status;
                s->count = 1;
        } else
                m->other[status]++;
        unlock(m);
}

static void observe(struct metrics *m, struct histogram *h, double seconds)
{
        size_t i;

        if (!isfinite(seconds))
                return;
        if (seconds < 0)
                seconds = 0;
        for (i = 0; i < h->n_bounds; i++)
                if (seconds <= h->bounds[i])
                        break;
        lock(m);
        h->counts[i]++;
        h->count++;
        h->sum += seconds;
        unlock(m);
}

void metrics_observe_spawn(struct metrics *m, double seconds)
{
        if (m)
                observe(m, &m->spawn, seconds);
}

void metrics_observe_job(struct metrics *m, double seconds)
{
        if (m)
                observe(m, &m->job, seconds);
}

/* ---- rendering ---- */

struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};

_printf_(2, 3) static void buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                size_t avail = b->cap - b->len, cap;
                char *p;

                va_start(ap, fmt);
                n = vsnprintf(b->p ? b->p + b->len : NULL, avail, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if ((size_t) n < avail) {
                        b->len += (size_t) n;
                        return;
                }
                cap = b->cap ? b->cap : 4096;
                while (cap - b->len <= (size_t) n)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
}

/* s as a label value: backslash, double quote and line feed escaped (text format 0.0.4). */
static void buf_label_value(struct buf *b, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\')
                        buf_printf(b, "\\\\");
                else if (*s == '"')
                        buf_printf(b, "\\\"");
                else if (*s == '\n')
                        buf_printf(b, "\\n");
                else
                        buf_printf(b, "%c", *s);
        }
}

static void buf_header(struct buf *b, const char *name, const char *type, const char *help)
{
        buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The shortest of %.15g..%.17g that reads back as v. */
static void format_double(double v, char *buf, size_t size)
{
        for (int precision = 15; precision <= 17; precision++) {
                (void) snprintf(buf, size, "%.*g", precision, v);
                if (strtod(buf, NULL) == v)
                        return;
        }
}

static void render_histogram(struct buf *b, const char *name, const char *help,
                             const struct histogram *h)
{
        uint64_t cumulative = 0;
        char sum[32];

        buf_header(b, name, "histogram", help);
        for (size_t i = 0; i < h->n_bounds; i++) {
                cumulative += h->counts[i];
                buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], cumulative);
        }
        buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
        format_double(h->sum, sum, sizeof(sum));
        buf_printf(b, "%s_sum %s\n", name, sum);
        buf_printf(b, "%s_count %" PRIu64 "\n", name, h->count);
}

char *metrics_render(struct metrics *m, const struct metrics_gauges *g)
{
        static const struct metrics_gauges zero = {};
        struct buf b = {};

        if (!m)
                return NULL;
        if (!g)
                g = &zero;

        buf_header(&b, "warren_jobs", "gauge", "Jobs by state.");
        for (size_t i = 0; i < ELEMENTSOF(job_states); i++)
                buf_printf(&b, "warren_jobs{state=\"%s\"} %" PRIu64 "\n", job_states[i],
                           g->jobs[i]);
        buf_header(&b, "warren_queue_length", "gauge", "Jobs waiting for a runner.");
        buf_printf(&b, "warren_queue_length %" PRIu64 "\n", g->queue_length);
        buf_header(&b, "warren_workers_busy", "gauge", "Runners running a job.");
        buf_printf(&b, "warren_workers_busy %" PRIu64 "\n", g->workers_busy);
        buf_header(&b, "warren_workers_total", "gauge", "Runners.");
        buf_printf(&b, "warren_workers_total %" PRIu64 "\n", g->workers_total);

        lock(m);
        render_histogram(&b, "warren_spawn_seconds",
                         "Time from a runner's claim of a job to its sandbox running.", &m->spawn);
        render_histogram(&b, "warren_job_duration_seconds", "Time from a job's start to its end.",
                         &m->job);
        buf_header(&b, "warren_http_requests_total", "counter",
                   "HTTP requests by route and status.");
        for (size_t i = 0; i < m->n_series; i++) {
                buf_printf(&b, "warren_http_requests_total{route=\"");
                buf_label_value(&b, m->series[i].route);
                buf_printf(&b, "\",status=\"%d\"} %" PRIu64 "\n", m->series[i].status,
                           m->series[i].count);
        }
        for (int status = 0; status <= STATUS_MAX; status++)
                if (m->other[status] > 0)
                        buf_printf(&b,
                                   "warren_http_requests_total{route=\"other\",status=\"%d\"} "
                                   "%" PRIu64 "\n",
                                   status, m->other[status]);
        unlock(m);

        buf_header(&b, "warren_build_info", "gauge", "Warren's version.");
        buf_printf(&b, "warren_build_info{version=\"");
        buf_label_value(&b, WARREN_VERSION);
        buf_printf(&b, "\"} 1\n");

        if (b.oom) {
                free(b.p);
                return NULL;
        }
        return b.p;
}
