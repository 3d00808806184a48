/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"
#include "common/cleanup.h"
#include "unit.h"

/*
 * Every rendering is parsed back with a strict reader of the text format (version 0.0.4): each
 * line is "# HELP", "# TYPE" or a sample whose labels are unescaped, and each sample's metric
 * family was declared by a TYPE line before it. The tests then look samples up by name and
 * unescaped labels.
 */

#define SAMPLES_MAX (METRICS_MAX_SERIES + 256)

struct sample {
        char name[64];
        char labels[4][2][128]; /* name, unescaped value */
        size_t n_labels;
        char value[64];
};

struct exposition {
        struct sample samples[SAMPLES_MAX];
        size_t n;
};

static bool is_name_char(char c, bool first)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
               (!first && c >= '0' && c <= '9');
}

/* The metric name at *p (advanced past it) into buf. */
static void parse_name(const char **p, char *buf, size_t size)
{
        size_t n = 0;

        assert_true(is_name_char(**p, true));
        while (is_name_char(**p, n == 0)) {
                assert_true(n + 1 < size);
                buf[n++] = *(*p)++;
        }
        buf[n] = '\0';
}

/* A label value at *p, just after its opening quote, unescaped into buf; *p ends after the
 * closing quote. */
static void parse_label_value(const char **p, char *buf, size_t size)
{
        size_t n = 0;

        for (;;) {
                char c = *(*p)++;

                assert_true(c != '\0' && c != '\n');
                if (c == '"')
                        break;
                if (c == '\\') {
                        c = *(*p)++;
                        if (c == 'n')
                                c = '\n';
                        else
                                assert_true(c == '\\' || c == '"');
                }
                assert_true(n + 1 < size);
                buf[n++] = c;
        }
        buf[n] = '\0';
}

/* The families declared by TYPE lines so far, and their types. */
static bool family_declared(const char *declared, const char *name)
{
        char needle[80];
        const char *suffixes[] = {"", "_bucket", "_sum", "_count"};

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t nlen = strlen(name), slen = strlen(suffixes[i]);

                if (nlen <= slen || strcmp(name + nlen - slen, suffixes[i]) != 0)
                        continue;
                (void) snprintf(needle, sizeof(needle), "|%.*s|", (int) (nlen - slen), name);
                if (strstr(declared, needle))
                        return true;
        }
        return false;
}

static void parse_exposition(const char *text, struct exposition *e)
{
        char declared[4096] = "|";
        const char *p = text;

        e->n = 0;
        assert_non_null(text);
        assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
        while (*p) {
                const char *eol = strchr(p, '\n');
                struct sample *s;
                char *end;

                assert_non_null(eol);
                if (strncmp(p, "# HELP ", 7) == 0) {
                        p = eol + 1;
                        continue;
                }
                if (strncmp(p, "# TYPE ", 7) == 0) {
                        char name[64], type[32];
                        size_t len;

                        p += 7;
                        parse_name(&p, name, sizeof(name));
                        assert_int_equal(*p++, ' ');
                        assert_true((size_t) (eol - p) < sizeof(type));
                        memcpy(type, p, (size_t) (eol - p));
                        type[eol - p] = '\0';
                        assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0 ||
                                    strcmp(type, "histogram") == 0);
                        len = strlen(declared);
                        assert_true(len + strlen(name) + 2 < sizeof(declared));
                        (void) snprintf(declared + len, sizeof(declared) - len, "%s|", name);
                        p = eol + 1;
                        continue;
                }
                assert_true(e->n < SAMPLES_MAX);
                s = &e->samples[e->n++];
                *s = (struct sample){};
                parse_name(&p, s->name, sizeof(s->name));
                assert_true(family_declared(declared, s->name));
                if (*p == '{') {
                        p++;
                        while (*p != '}') {
                                assert_true(s->n_labels < ELEMENTSOF(s->labels));
                                parse_name(&p, s->labels[s->n_labels][0], sizeof(s->labels[0][0]));
                                assert_int_equal(*p++, '=');
                                assert_int_equal(*p++, '"');
                                parse_label_value(&p, s->labels[s->n_labels][1],
                                                  sizeof(s->labels[0][1]));
                                s->n_labels++;
                                if (*p == ',')
                                        p++;
                                else
                                        assert_int_equal(*p, '}');
                        }
                        p++;
                }
                assert_int_equal(*p++, ' ');
                assert_true((size_t) (eol - p) < sizeof(s->value) && eol > p);
                memcpy(s->value, p, (size_t) (eol - p));
                s->value[eol - p] = '\0';
                (void) strtod(s->value, &end);
                assert_true(*end == '\0');
                p = eol + 1;
        }
}

/* The value of the sample name{label=value} (label NULL: none); fails if absent or twice. */
static const char *lookup(const struct exposition *e, const char *name, const char *label,
                          const char *value, const char *label2, const char *value2)
{
        const char *found = NULL;

        for (size_t i = 0; i < e->n; i++) {
                const struct sample *s = &e->samples[i];
                size_t want = (label ? 1 : 0) + (label2 ? 1 : 0);
                size_t match = 0;

                if (strcmp(s->name, name) != 0 || s->n_labels != want)
                        continue;
                for (size_t j = 0; j < s->n_labels; j++)
                        if ((label && strcmp(s->labels[j][0], label) == 0 &&
                             strcmp(s->labels[j][1], value) == 0) ||
                            (label2 && strcmp(s->labels[j][0], label2) == 0 &&
                             strcmp(s->labels[j][1], value2) == 0))
                                match++;
                if (match != want)
                        continue;
                assert_null(found);
                found = s->value;
        }
        if (!found)
                fail_msg("no sample %s{%s=\"%s\"}", name, label ? label : "", value ? value : "");
        return found;
}

static uint64_t lookup_u64(const struct exposition *e, const char *name, const char *label,
                           const char *value, const char *label2, const char *value2)
{
        const char *v = lookup(e, name, label, value, label2, value2);
        char *end;
        unsigned long long n = strtoull(v, &end, 10);

        assert_true(*end == '\0');
        return n;
}

static size_t count_samples(const struct exposition *e, const char *name)
{
        size_t n = 0;

        for (size_t i = 0; i < e->n; i++)
                if (strcmp(e->samples[i].name, name) == 0)
                        n++;
        return n;
}

static bool has_line(const char *text, const char *line)
{
        size_t len = strlen(line);

        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[len] == '\n')
                        return true;
        return false;
}

static struct exposition *render(struct metrics *m, const struct metrics_gauges *g, char **ret)
{
        struct exposition *e = malloc(sizeof(*e));
        char *text = metrics_render(m, g);

        assert_non_null(e);
        assert_non_null(text);
        parse_exposition(text, e);
        *ret = text;
        return e;
}

static void test_render(void **state)
{
        _cleanup_(metrics_freep) struct metrics *m = NULL;
        struct metrics_gauges g = {
                .jobs = {3, 1, 40, 2, 5}, .queue_length = 3, .workers_busy = 1, .workers_total = 4};
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct exposition *e = NULL;

        assert_int_equal(metrics_new(&m), 0);
        metrics_http_request(m, "jobs_get", 200);
        metrics_http_request(m, "jobs_get", 200);
        metrics_http_request(m, "jobs_get", 404);
        metrics_http_request(m, NULL, 404);
        metrics_http_request(m, "jobs_events", 0);
        e = render(m, &g, &text);

        /* the exact lines */
        static const char *const lines[] = {
                "# TYPE warren_jobs gauge",
                "warren_jobs{state=\"queued\"} 3",
                "warren_jobs{state=\"running\"} 1",
                "warren_jobs{state=\"finished\"} 40",
                "warren_jobs{state=\"cancelled\"} 2",
                "warren_jobs{state=\"failed\"} 5",
                "# TYPE warren_queue_length gauge",
                "warren_queue_length 3",
                "# TYPE warren_workers_busy gauge",
                "warren_workers_busy 1",
                "# TYPE warren_workers_total gauge",
                "warren_workers_total 4",
                "# TYPE warren_spawn_seconds histogram",
                "warren_spawn_seconds_bucket{le=\"0.001\"} 0",
                "warren_spawn_seconds_bucket{le=\"10\"} 0",
                "warren_spawn_seconds_bucket{le=\"+Inf\"} 0",
                "warren_spawn_seconds_sum 0",
                "warren_spawn_seconds_count 0",
                "# TYPE warren_job_duration_seconds histogram",
                "warren_job_duration_seconds_bucket{le=\"0.005\"} 0",
                "warren_job_duration_seconds_bucket{le=\"600\"} 0",
                "warren_job_duration_seconds_bucket{le=\"+Inf\"} 0",
                "# TYPE warren_http_requests_total counter",
                "warren_http_requests_total{route=\"jobs_get\",status=\"200\"} 2",
                "warren_http_requests_total{route=\"jobs_get\",status=\"404\"} 1",
                "warren_http_requests_total{route=\"no_route\",status=\"404\"} 1",
                "warren_http_requests_total{route=\"jobs_events\",status=\"0\"} 1",
                "# TYPE warren_build_info gauge",
                "warren_build_info{version=\"" WARREN_VERSION "\"} 1",
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                if (!has_line(text, lines[i]))
                        fail_msg("no line '%s' in:\n%s", lines[i], text);

        /* and the same through the parser */
        assert_int_equal(lookup_u64(e, "warren_jobs", "state", "finished", NULL, NULL), 40);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "jobs_get", "status", "200"),
                2);
        assert_int_equal(count_samples(e, "warren_http_requests_total"), 4);
        assert_int_equal(count_samples(e, "warren_jobs"), 5);
        assert_int_equal(count_samples(e, "warren_spawn_seconds_bucket"), 13 + 1);
        assert_int_equal(count_samples(e, "warren_job_duration_seconds_bucket"), 16 + 1);

        /* without gauges: zeros */
        free(text);
        free(e);
        e = render(m, NULL, &text);
        assert_int_equal(lookup_u64(e, "warren_queue_length", NULL, NULL, NULL, NULL), 0);
}

static void test_escaping(void **state)
{
        _cleanup_(metrics_freep) struct metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct exposition *e = NULL;
        const char *odd = "a\"b\\c\nd}e,f=g";

        assert_int_equal(metrics_new(&m), 0);
        metrics_http_request(m, odd, 500);
        e = render(m, NULL, &text);
        assert_true(has_line(text, "warren_http_requests_total{route=\"a\\\"b\\\\c\\nd}e,f=g\","
                                   "status=\"500\"} 1"));
        assert_int_equal(lookup_u64(e, "warren_http_requests_total", "route", odd, "status", "500"),
                         1);
}

static void test_series_bound(void **state)
{
        _cleanup_(metrics_freep) struct metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct exposition *e = NULL;
        char name[32];

        assert_int_equal(metrics_new(&m), 0);
        for (unsigned i = 0; i < METRICS_MAX_SERIES; i++) {
                (void) snprintf(name, sizeof(name), "route_%u", i);
                metrics_http_request(m, name, 200);
        }
        /* full: new pairs go to "other", by status; known ones still count as themselves */
        for (unsigned i = 0; i < 10; i++) {
                (void) snprintf(name, sizeof(name), "late_%u", i);
                metrics_http_request(m, name, 200);
        }
        for (unsigned i = 0; i < 5; i++)
                metrics_http_request(m, "route_0", 404);
        metrics_http_request(m, "route_7", 200);
        metrics_http_request(m, "route_7", 200);
        /* any new pair, whatever its route */
        metrics_http_request(m,
                             "a_route_name_that_is_far_longer_than_any_route_table_would_ever_"
                             "have_in_it",
                             201);

        e = render(m, NULL, &text);
        assert_int_equal(count_samples(e, "warren_http_requests_total"), METRICS_MAX_SERIES + 3);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "other", "status", "200"), 10);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "other", "status", "404"), 5);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "other", "status", "201"), 1);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "route_7", "status", "200"),
                3);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "route_511", "status", "200"),
                1);
}

static void test_series_name_cut(void **state)
{
        _cleanup_(metrics_freep) struct metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct exposition *e = NULL;
        char long_name[200], cut[65];

        assert_int_equal(metrics_new(&m), 0);
        memset(long_name, 'r', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        memset(cut, 'r', sizeof(cut) - 1);
        cut[sizeof(cut) - 1] = '\0';
        metrics_http_request(m, long_name, 200);
        metrics_http_request(m, long_name, 200);
        metrics_http_request(m, "x", -5);
        e = render(m, NULL, &text);
        assert_int_equal(lookup_u64(e, "warren_http_requests_total", "route", cut, "status", "200"),
                         2);
        assert_int_equal(lookup_u64(e, "warren_http_requests_total", "route", "x", "status", "0"),
                         1);
}

static void assert_buckets(const struct exposition *e, const char *name, const char *const *les,
                           const uint64_t *want, size_t n)
{
        char bucket[80];

        (void) snprintf(bucket, sizeof(bucket), "%s_bucket", name);
        assert_int_equal(count_samples(e, bucket), n);
        for (size_t i = 0; i < n; i++) {
                uint64_t v = lookup_u64(e, bucket, "le", les[i], NULL, NULL);

                if (v != want[i])
                        fail_msg("%s{le=\"%s\"} is %" PRIu64 ", not %" PRIu64, bucket, les[i], v,
                                 want[i]);
        }
}

static void test_histograms(void **state)
{
        static const char *const spawn_les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                                "2.5",   "5",      "10",    "+Inf"};
        static const uint64_t spawn_want[] = {2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5};
        static const char *const job_les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                              "0.5",   "1",    "2.5",   "5",    "10",  "30",
                                              "60",    "120",  "300",   "600",  "+Inf"};
        static const uint64_t job_want[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 5};
        _cleanup_(metrics_freep) struct metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct exposition *e = NULL;

        assert_int_equal(metrics_new(&m), 0);
        /* a bound is inclusive ("le") */
        metrics_observe_spawn(m, 0.0005);
        metrics_observe_spawn(m, 0.001);
        metrics_observe_spawn(m, 0.003);
        metrics_observe_spawn(m, 0.5);
        metrics_observe_spawn(m, 20);
        metrics_observe_spawn(m, NAN); /* not an observation */
        metrics_observe_spawn(m, INFINITY);

        metrics_observe_job(m, -1); /* a clock step: counted as 0 */
        metrics_observe_job(m, 10);
        metrics_observe_job(m, 45);
        metrics_observe_job(m, 600);
        metrics_observe_job(m, 601);

        e = render(m, NULL, &text);
        assert_buckets(e, "warren_spawn_seconds", spawn_les, spawn_want, ELEMENTSOF(spawn_les));
        assert_int_equal(lookup_u64(e, "warren_spawn_seconds_count", NULL, NULL, NULL, NULL), 5);
        assert_true(
                fabs(strtod(lookup(e, "warren_spawn_seconds_sum", NULL, NULL, NULL, NULL), NULL) -
                     (0.0005 + 0.001 + 0.003 + 0.5 + 20)) < 1e-12);

        assert_buckets(e, "warren_job_duration_seconds", job_les, job_want, ELEMENTSOF(job_les));
        assert_int_equal(lookup_u64(e, "warren_job_duration_seconds_count", NULL, NULL, NULL, NULL),
                         5);
        assert_string_equal(lookup(e, "warren_job_duration_seconds_sum", NULL, NULL, NULL, NULL),
                            "1256");
}

#define THREADS    4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
        struct metrics *m = arg;

        for (unsigned i = 0; i < PER_THREAD; i++) {
                metrics_http_request(m, "jobs_get", i % 2 ? 200 : 404);
                metrics_observe_job(m, 1.0);
                metrics_observe_spawn(m, 0.002);
                if (i % 10000 == 0)
                        free(metrics_render(m, NULL));
        }
        return NULL;
}

static void test_concurrent(void **state)
{
        _cleanup_(metrics_freep) struct metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct exposition *e = NULL;
        pthread_t threads[THREADS];

        assert_int_equal(metrics_new(&m), 0);
        for (size_t i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&threads[i], NULL, hammer, m), 0);
        for (size_t i = 0; i < THREADS; i++)
                assert_int_equal(pthread_join(threads[i], NULL), 0);

        e = render(m, NULL, &text);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "jobs_get", "status", "200"),
                THREADS * PER_THREAD / 2);
        assert_int_equal(
                lookup_u64(e, "warren_http_requests_total", "route", "jobs_get", "status", "404"),
                THREADS * PER_THREAD / 2);
        assert_int_equal(lookup_u64(e, "warren_job_duration_seconds_count", NULL, NULL, NULL, NULL),
                         THREADS * PER_THREAD);
        assert_int_equal(lookup_u64(e, "warren_job_duration_seconds_bucket", "le", "1", NULL, NULL),
                         THREADS * PER_THREAD);
        assert_int_equal(
                lookup_u64(e, "warren_job_duration_seconds_bucket", "le", "0.5", NULL, NULL), 0);
        assert_string_equal(lookup(e, "warren_job_duration_seconds_sum", NULL, NULL, NULL, NULL),
                            "400000");
        assert_int_equal(lookup_u64(e, "warren_spawn_seconds_bucket", "le", "0.0025", NULL, NULL),
                         THREADS * PER_THREAD);
}

static void test_free_null(void **state)
{
        assert_null(metrics_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render),       cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_series_bound), cmocka_unit_test(test_series_name_cut),
                cmocka_unit_test(test_histograms),   cmocka_unit_test(test_concurrent),
                cmocka_unit_test(test_free_null),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
